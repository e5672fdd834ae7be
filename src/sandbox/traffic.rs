//! The sandbox traffic generator: ingress-nginx's canary routing decision and a bounded load loop.
//!
//! [`choose_backend`] is a pure copy of ingress-nginx's `route_to_alternative_balancer`
//! (`rootfs/etc/nginx/lua/balancer.lua`) over the annotations its canary parser reads
//! (`internal/ingress/annotations/canary`): the header rule first, then the cookie rule, then
//! the weight. [`run_load`] sends real HTTP requests at a bounded rate to loopback pod endpoints,
//! choosing stable or canary per request with that decision, so the metrics an analysis reads
//! come from real answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use regex::Regex;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::demo_app::VERSION_HEADER;

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
fn go_parse_bool(v: &str) -> bool {
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

/// Where traffic may go right now: the pods behind each side and the canary Ingress's rules.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Endpoints of the stable side (loopback only; others are ignored).
    pub stable: Vec<SocketAddr>,
    /// Endpoints of the canary side (loopback only; others are ignored).
    pub canary: Vec<SocketAddr>,
    /// The canary Ingress's rules; `None` when there is no canary Ingress.
    pub rules: Option<CanaryRules>,
}

/// Yields the split in force for the next request.
pub trait SplitSource: Send {
    /// The current split.
    fn current(&mut self) -> Split;
}

impl SplitSource for watch::Receiver<Split> {
    fn current(&mut self) -> Split {
        self.borrow_and_update().clone()
    }
}

impl<F: FnMut() -> Split + Send> SplitSource for F {
    fn current(&mut self) -> Split {
        self()
    }
}

/// Requests that carry extra headers (a canary header, a `Cookie`), for a fraction of the load.
#[derive(Debug, Clone)]
pub struct TaggedRequests {
    /// Fraction in `[0, 1]` of requests that carry `headers`.
    pub fraction: f64,
    /// Headers added to those requests; they count for routing and are sent to the pod.
    pub headers: HeaderMap,
}

/// How much load to send and how.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Requests started per second (> 0).
    pub rate_per_second: f64,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
    /// Stop after this long. At least one of the two limits must be set.
    pub max_duration: Option<Duration>,
    /// Path requested on the pods.
    pub path: String,
    /// Optional tagged share of the requests.
    pub tagged: Option<TaggedRequests>,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Requests in flight at most; the loop waits for a slot beyond that.
    pub max_in_flight: usize,
    /// Seed of the routing and tagging draws.
    pub seed: u64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            rate_per_second: 50.0,
            max_requests: Some(100),
            max_duration: None,
            path: "/".to_string(),
            tagged: None,
            request_timeout: Duration::from_secs(5),
            max_in_flight: 64,
            seed: 1,
        }
    }
}

/// Errors of the load loop.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The configuration cannot run (bad rate, no limit, bad fraction, no slots).
    #[error("traffic: invalid load configuration: {0}")]
    InvalidConfig(&'static str),
    /// The HTTP client could not be built.
    #[error("traffic: cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// What a load run observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Requests decided (routed, failed or unroutable).
    pub sent: u64,
    /// Routing decisions per side.
    pub routed: BTreeMap<Backend, u64>,
    /// Answers per version (the `X-Davy-Version` header, `unknown` when absent) and status code.
    pub answers: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Requests that got no HTTP answer (connection refused, timeout, …).
    pub transport_errors: u64,
    /// Requests whose chosen side had no loopback endpoint (ingress-nginx would answer 503).
    pub unroutable: u64,
    /// Requests in flight when the run was cancelled, whose answers were not awaited.
    pub abandoned: u64,
}

impl LoadReport {
    /// Answers from `version` with status `code`.
    pub fn count(&self, version: &str, code: u16) -> u64 {
        self.answers
            .get(version)
            .and_then(|by_code| by_code.get(&code))
            .copied()
            .unwrap_or(0)
    }

    /// All answers from `version`, whatever the code.
    pub fn count_version(&self, version: &str) -> u64 {
        self.answers
            .get(version)
            .map_or(0, |by_code| by_code.values().sum())
    }

    /// Requests routed to `backend`.
    pub fn routed_to(&self, backend: Backend) -> u64 {
        self.routed.get(&backend).copied().unwrap_or(0)
    }
}

/// The outcome of one request, folded into the report.
enum Outcome {
    Answer { version: String, code: u16 },
    TransportError,
}

fn validate(config: &LoadConfig) -> Result<(), TrafficError> {
    if !(config.rate_per_second.is_finite() && config.rate_per_second > 0.0) {
        return Err(TrafficError::InvalidConfig("rate_per_second must be > 0"));
    }
    if config.max_requests.is_none() && config.max_duration.is_none() {
        return Err(TrafficError::InvalidConfig(
            "set max_requests or max_duration so the load stops by itself",
        ));
    }
    if let Some(tagged) = &config.tagged
        && !(0.0..=1.0).contains(&tagged.fraction)
    {
        return Err(TrafficError::InvalidConfig(
            "tagged fraction must be within [0, 1]",
        ));
    }
    if config.max_in_flight == 0 {
        return Err(TrafficError::InvalidConfig("max_in_flight must be > 0"));
    }
    Ok(())
}

/// Sends load until `max_requests` were sent, `max_duration` passed, or `cancel` fires, and
/// reports the answers. On cancellation requests in flight are abandoned; otherwise they are
/// awaited (each bounded by `request_timeout`). Only loopback endpoints are ever contacted.
pub async fn run_load(
    config: &LoadConfig,
    mut source: impl SplitSource,
    cancel: CancellationToken,
) -> Result<LoadReport, TrafficError> {
    validate(config)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(config.request_timeout)
        .build()
        .map_err(TrafficError::Client)?;
    let period = Duration::from_secs_f64(1.0 / config.rate_per_second);
    let start = Instant::now();
    let deadline = config.max_duration.map(|d| start + d);
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let slots = Arc::new(Semaphore::new(config.max_in_flight));
    let mut rng = SplitMix64::new(config.seed);
    let mut round_robin = [0usize; 2];
    let mut in_flight: JoinSet<Outcome> = JoinSet::new();
    let mut report = LoadReport::default();
    let no_headers = HeaderMap::new();
    let cancelled = loop {
        if config.max_requests.is_some_and(|max| report.sent >= max) {
            break false;
        }
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break true,
            _ = until_deadline => break false,
            _ = ticks.tick() => {}
        }
        let permit = tokio::select! {
            biased;
            _ = cancel.cancelled() => break true,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                // The semaphore is never closed; treat it as the end of the run anyway.
                Err(_) => break false,
            },
        };
        while let Some(done) = in_flight.try_join_next() {
            record(&mut report, done);
        }
        report.sent += 1;
        let split = source.current();
        let headers = match &config.tagged {
            Some(tagged) if rng.next_f64() < tagged.fraction => &tagged.headers,
            _ => &no_headers,
        };
        let backend = choose_backend(split.rules.as_ref(), headers, rng.next_f64());
        *report.routed.entry(backend).or_insert(0) += 1;
        let (endpoints, rr) = match backend {
            Backend::Stable => (&split.stable, &mut round_robin[0]),
            Backend::Canary => (&split.canary, &mut round_robin[1]),
        };
        let loopback: Vec<SocketAddr> = endpoints
            .iter()
            .filter(|a| a.ip().is_loopback())
            .copied()
            .collect();
        if loopback.is_empty() {
            report.unroutable += 1;
            continue;
        }
        let target = loopback[*rr % loopback.len()];
        *rr = rr.wrapping_add(1);
        let request = client
            .get(format!("http://{target}{}", config.path))
            .headers(headers.clone());
        in_flight.spawn(async move {
            let _permit = permit;
            match request.send().await {
                Ok(answer) => Outcome::Answer {
                    version: answer
                        .headers()
                        .get(VERSION_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("unknown")
                        .to_string(),
                    code: answer.status().as_u16(),
                },
                Err(_) => Outcome::TransportError,
            }
        });
    };
    if cancelled {
        in_flight.abort_all();
    }
    while let Some(done) = in_flight.join_next().await {
        record(&mut report, done);
    }
    Ok(report)
}

fn record(report: &mut LoadReport, done: Result<Outcome, tokio::task::JoinError>) {
    match done {
        Ok(Outcome::Answer { version, code }) => {
            *report
                .answers
                .entry(version)
                .or_default()
                .entry(code)
                .or_insert(0) += 1;
        }
        Ok(Outcome::TransportError) => report.transport_errors += 1,
        // Aborted on cancellation: the request was sent but its answer is unknown.
        Err(_) => report.abandoned += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_uniform_enough() {
        let mut r = SplitMix64::new(7);
        let n = 10_000;
        let below_half = (0..n).filter(|_| r.next_f64() < 0.5).count();
        assert!((4_800..5_200).contains(&below_half), "{below_half}");
    }

    #[test]
    fn validation() {
        let mut c = LoadConfig::default();
        assert!(validate(&c).is_ok());
        c.rate_per_second = 0.0;
        assert!(validate(&c).is_err());
        c.rate_per_second = 10.0;
        c.max_requests = None;
        assert!(validate(&c).is_err());
    }
}
