//! ingress-nginx's canary routing decision, as a pure function of the canary Ingress's
//! annotations, the request's headers and cookies, and a random draw.
//!
//! A copy of `route_to_alternative_balancer` (`rootfs/etc/nginx/lua/balancer.lua`) over the
//! annotations ingress-nginx's canary parser reads (`internal/ingress/annotations/canary`).

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName};
use regex::Regex;

/// The annotation prefix ingress-nginx reads unless configured otherwise.
pub const DEFAULT_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";

/// The weight base ingress-nginx uses unless `canary-weight-total` raises it.
pub const DEFAULT_WEIGHT_TOTAL: i64 = 100;

/// The `canary-by-header-pattern` rule: the pattern as written and, when it compiles, the regex.
#[derive(Debug, Clone)]
pub struct HeaderPattern {
    /// The annotation's value.
    pub source: String,
    /// The compiled pattern; `None` when it does not compile (ingress-nginx then routes to
    /// stable whenever the header is present, after logging the match error).
    pub regex: Option<Regex>,
}

/// The canary routing rules of one canary Ingress, as ingress-nginx parses its annotations.
#[derive(Debug, Clone)]
pub struct CanaryRules {
    /// `canary-by-header`: the request header that may force the choice.
    pub header: Option<String>,
    /// `canary-by-header-value`: the header value that selects canary (checked before the pattern).
    pub header_value: Option<String>,
    /// `canary-by-header-pattern`: a regex the header value may match to select canary.
    pub header_pattern: Option<HeaderPattern>,
    /// `canary-by-cookie`: the cookie whose value `always`/`never` forces the choice.
    pub cookie: Option<String>,
    /// `canary-weight` (0 when absent or not an integer).
    pub weight: i64,
    /// `canary-weight-total` (100 when absent or not an integer).
    pub weight_total: i64,
}

impl CanaryRules {
    /// Reads the rules from a canary Ingress's annotations, `prefix` being the annotation prefix
    /// (usually [`DEFAULT_ANNOTATION_PREFIX`]). `None` when `<prefix>/canary` is not a true
    /// boolean: ingress-nginx then does not treat the Ingress as a canary at all.
    pub fn from_annotations(annotations: &BTreeMap<String, String>, prefix: &str) -> Option<Self> {
        let get = |name: &str| {
            annotations
                .get(&format!("{prefix}/{name}"))
                .map(String::as_str)
        };
        if !get("canary").is_some_and(go_parse_bool) {
            return None;
        }
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_string);
        let int = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
        Some(Self {
            header: non_empty("canary-by-header"),
            header_value: non_empty("canary-by-header-value"),
            header_pattern: non_empty("canary-by-header-pattern").map(|source| HeaderPattern {
                regex: Regex::new(&source).ok(),
                source,
            }),
            cookie: non_empty("canary-by-cookie"),
            weight: int("canary-weight").unwrap_or(0),
            weight_total: int("canary-weight-total").unwrap_or(DEFAULT_WEIGHT_TOTAL),
        })
    }

    /// A weight-only rule set (what Argo Rollouts writes when no header routing is configured).
    pub fn weighted(weight: i64) -> Self {
        Self {
            header: None,
            header_value: None,
            header_pattern: None,
            cookie: None,
            weight,
            weight_total: DEFAULT_WEIGHT_TOTAL,
        }
    }

    /// The weight base actually used: `canary-weight-total` only counts when above 100
    /// (ingress-nginx ignores smaller totals).
    pub fn effective_weight_total(&self) -> i64 {
        self.weight_total.max(DEFAULT_WEIGHT_TOTAL)
    }
}

/// Go's `strconv.ParseBool` for true values (false and malformed values both mean "not a canary").
pub(super) fn go_parse_bool(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// Which side of the split serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// The stable Ingress's backend.
    Stable,
    /// The canary Ingress's backend.
    Canary,
}

/// Decides stable or canary for one request, as ingress-nginx does (pure).
///
/// `rules` is `None` when there is no canary Ingress (everything goes to stable). `draw` is a
/// uniform random number in `[0, 1)`; it stands for ingress-nginx's `math.random(total)` as
/// `floor(draw * total) + 1`, and the request goes to canary when that is `<= weight`.
///
/// Order: the `canary-by-header` header, when present in the request, selects canary if it equals
/// `canary-by-header-value` (or, with no value, matches `canary-by-header-pattern`, or, with
/// neither, is `always`); with neither value nor pattern, `never` selects stable; anything else
/// falls through. Then the `canary-by-cookie` cookie: `always` → canary, `never` → stable.
/// Then the weight out of [`CanaryRules::effective_weight_total`].
pub fn choose_backend(rules: Option<&CanaryRules>, headers: &HeaderMap, draw: f64) -> Backend {
    let Some(rules) = rules else {
        return Backend::Stable;
    };
    if let Some(value) = rules
        .header
        .as_deref()
        .and_then(|h| request_header(headers, h))
    {
        if let Some(expected) = &rules.header_value {
            if value == *expected {
                return Backend::Canary;
            }
        } else if let Some(pattern) = &rules.header_pattern {
            match &pattern.regex {
                Some(regex) if regex.is_match(&value) => return Backend::Canary,
                Some(_) => {}
                None => return Backend::Stable,
            }
        } else if value == "always" {
            return Backend::Canary;
        } else if value == "never" {
            return Backend::Stable;
        }
    }
    if let Some(value) = rules
        .cookie
        .as_deref()
        .and_then(|c| request_cookie(headers, c))
    {
        if value == "always" {
            return Backend::Canary;
        } else if value == "never" {
            return Backend::Stable;
        }
    }
    let total = rules.effective_weight_total();
    // Same as `math.random(total) <= weight` with the draw mapped onto 1..=total.
    let roll = ((draw.clamp(0.0, 1.0) * total as f64).floor() as i64 + 1).min(total);
    if roll <= rules.weight {
        Backend::Canary
    } else {
        Backend::Stable
    }
}

/// Picks one of several weighted backends (an SMI TrafficSplit's `backends`, an Istio route's
/// destinations) for a uniform `draw` in `[0, 1)`: backend `i` with probability
/// `weight_i / Σ weights`; negative weights count as 0. `None` when no weight is positive.
pub fn choose_weighted(weights: &[i64], draw: f64) -> Option<usize> {
    let total: i64 = weights.iter().map(|w| (*w).max(0)).sum();
    if total <= 0 {
        return None;
    }
    let roll = ((draw.clamp(0.0, 1.0) * total as f64).floor() as i64).min(total - 1);
    let mut upto = 0;
    for (i, w) in weights.iter().enumerate() {
        upto += (*w).max(0);
        if roll < upto {
            return Some(i);
        }
    }
    None
}

/// The first value of a request header (nginx's `$http_<name>`), matched case-insensitively.
fn request_header(headers: &HeaderMap, name: &str) -> Option<String> {
    let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// A cookie's value (nginx's `$cookie_<name>`): the first `name=value` pair of the `Cookie`
/// headers whose name matches case-insensitively, as nginx compares them.
fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|line| {
            String::from_utf8_lossy(line.as_bytes())
                .split(';')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
}

/// A small deterministic pseudo-random generator (SplitMix64): good enough for routing draws
/// and sampling, reproducible from a seed, and free of extra dependencies.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_choice_follows_the_weights() {
        let cases: [(&[i64], f64, Option<usize>); 8] = [
            (&[90, 5, 5], 0.0, Some(0)),
            (&[90, 5, 5], 0.899, Some(0)),
            (&[90, 5, 5], 0.9, Some(1)),
            (&[90, 5, 5], 0.95, Some(2)),
            (&[90, 5, 5], 0.999_999, Some(2)),
            (&[0, 10], 0.0, Some(1)),
            (&[-5, 0], 0.5, None),
            (&[], 0.5, None),
        ];
        for (weights, draw, want) in cases {
            assert_eq!(choose_weighted(weights, draw), want, "{weights:?} {draw}");
        }
    }

    #[test]
    fn splitmix_is_uniform_enough() {
        let mut r = SplitMix64::new(7);
        let n = 10_000;
        let below_half = (0..n).filter(|_| r.next_f64() < 0.5).count();
        assert!((4_800..5_200).contains(&below_half), "{below_half}");
    }
}
