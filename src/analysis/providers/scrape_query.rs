//! Pure half of the `davy/scrape` provider: PromQL-style series selectors, snapshots of the
//! matching samples of each scraped target, and the values computed from one or two
//! snapshots (counter rate, ratio of counter sums, histogram quantile).
//!
//! Snapshots are plain maps so that the first scrape of a windowed measurement can be stored in
//! the measurement's metadata and survive a controller restart before the second scrape.

use std::collections::BTreeMap;

use prometheus_parse::{Sample, Scrape, Value};
use regex::Regex;
use thiserror::Error;

/// Why a selector or a computation failed; the text ends up in the measurement message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// The series selector does not parse.
    #[error("invalid series selector {selector:?}: {reason}")]
    Selector {
        /// The selector as written.
        selector: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `=~` or `!~` regex does not compile.
    #[error("invalid regex {regex:?} in series selector: {reason}")]
    Regex {
        /// The regex as written.
        regex: String,
        /// The compiler's complaint.
        reason: String,
    },
}

/// How one label is compared, as in PromQL.
#[derive(Debug, Clone)]
pub enum MatchOp {
    /// `label="value"`.
    Equal(String),
    /// `label!="value"`.
    NotEqual(String),
    /// Anchored like PromQL (`^(?:re)$`).
    Matches(Regex),
    /// `label!~"re"`, anchored like `=~`.
    NotMatches(Regex),
}

/// `metric{label="v", other=~"re"}`: a metric name and label matchers.
#[derive(Debug, Clone)]
pub struct Selector {
    /// The metric name.
    pub metric: String,
    /// The label matchers, in order.
    pub matchers: Vec<(String, MatchOp)>,
}

impl Selector {
    /// Parses the PromQL instant-selector syntax: `name`, `name{...}` or `{__name__="name",...}`;
    /// operators `=`, `!=`, `=~`, `!~`; values in double or single quotes.
    pub fn parse(text: &str) -> Result<Selector, QueryError> {
        let bad = |reason: &str| QueryError::Selector {
            selector: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        let (name, rest) = match trimmed.find('{') {
            Some(i) => (trimmed[..i].trim(), &trimmed[i..]),
            None => (trimmed, ""),
        };
        if !name.is_empty() && !is_metric_name(name) {
            return Err(bad("bad metric name"));
        }
        let mut metric = name.to_string();
        let mut matchers = Vec::new();
        if !rest.is_empty() {
            let Some(body) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
                return Err(bad("expected `{...}` after the metric name"));
            };
            let mut chars = body.chars().peekable();
            loop {
                skip_ws(&mut chars);
                if chars.peek().is_none() {
                    break;
                }
                let mut label = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        label.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if label.is_empty() {
                    return Err(bad("expected a label name"));
                }
                skip_ws(&mut chars);
                let op = match (chars.next(), chars.peek().copied()) {
                    (Some('='), Some('~')) => {
                        chars.next();
                        "=~"
                    }
                    (Some('='), _) => "=",
                    (Some('!'), Some('=')) => {
                        chars.next();
                        "!="
                    }
                    (Some('!'), Some('~')) => {
                        chars.next();
                        "!~"
                    }
                    _ => return Err(bad("expected one of =, !=, =~, !~")),
                };
                skip_ws(&mut chars);
                let value =
                    read_quoted(&mut chars).ok_or_else(|| bad("expected a quoted value"))?;
                let op = match op {
                    "=" => MatchOp::Equal(value),
                    "!=" => MatchOp::NotEqual(value),
                    "=~" => MatchOp::Matches(anchored(&value)?),
                    _ => MatchOp::NotMatches(anchored(&value)?),
                };
                if label == "__name__" {
                    match op {
                        MatchOp::Equal(v) if metric.is_empty() => metric = v,
                        _ => return Err(bad("__name__ supports only = without a metric name")),
                    }
                } else {
                    matchers.push((label, op));
                }
                skip_ws(&mut chars);
                match chars.next() {
                    Some(',') | None => {}
                    Some(_) => return Err(bad("expected `,` between matchers")),
                }
            }
        }
        if metric.is_empty() {
            return Err(bad("a metric name is required"));
        }
        Ok(Selector { metric, matchers })
    }

    /// Whether a sample's labels satisfy every matcher (a missing label reads as "").
    pub fn matches_labels(&self, labels: &prometheus_parse::Labels) -> bool {
        self.matchers.iter().all(|(name, op)| {
            let value = labels.get(name).unwrap_or("");
            match op {
                MatchOp::Equal(v) => value == v,
                MatchOp::NotEqual(v) => value != v,
                MatchOp::Matches(re) => re.is_match(value),
                MatchOp::NotMatches(re) => !re.is_match(value),
            }
        })
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn skip_ws(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
}

fn read_quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let quote = chars.next().filter(|c| *c == '"' || *c == '\'')?;
    let mut out = String::new();
    loop {
        match chars.next()? {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                c => out.push(c),
            },
            c if c == quote => return Some(out),
            c => out.push(c),
        }
    }
}

fn anchored(re: &str) -> Result<Regex, QueryError> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| QueryError::Regex {
        regex: re.to_string(),
        reason: e.to_string(),
    })
}

/// Matching series of one scraped target: series key (sorted labels) → value.
pub type Series = BTreeMap<String, f64>;

/// Sum of every sample (counter, gauge or untyped) of the selector's metric whose labels match,
/// per series.
pub fn counter_series(scrape: &Scrape, selector: &Selector) -> Series {
    let mut out = Series::new();
    for sample in &scrape.samples {
        if sample.metric != selector.metric || !selector.matches_labels(&sample.labels) {
            continue;
        }
        let value = match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            Value::Histogram(_) | Value::Summary(_) => continue,
        };
        *out.entry(sample.labels.to_string()).or_insert(0.0) += value;
    }
    out
}

/// Cumulative bucket counts of the selector's histogram, per series and `le`, keyed
/// `<labels>|<le>`. Accepts typed histograms (`# TYPE x histogram`) and untyped `x_bucket`
/// samples with an `le` label (expositions without TYPE lines).
pub fn bucket_series(scrape: &Scrape, selector: &Selector) -> Series {
    let mut out = Series::new();
    let bucket_name = format!("{}_bucket", selector.metric);
    for sample in &scrape.samples {
        match &sample.value {
            Value::Histogram(buckets) if sample.metric == selector.metric => {
                if !selector.matches_labels(&sample.labels) {
                    continue;
                }
                for b in buckets {
                    let key = format!("{}|{}", sample.labels, b.less_than);
                    *out.entry(key).or_insert(0.0) += b.count;
                }
            }
            Value::Untyped(v) | Value::Counter(v) if sample.metric == bucket_name => {
                if let Some((labels, le)) = split_le(sample)
                    && selector.matches_labels(&sample.labels)
                {
                    *out.entry(format!("{labels}|{le}")).or_insert(0.0) += v;
                }
            }
            _ => {}
        }
    }
    out
}

fn split_le(sample: &Sample) -> Option<(String, f64)> {
    let le = sample.labels.get("le")?;
    let le = match le {
        "+Inf" | "Inf" | "inf" => f64::INFINITY,
        other => other.parse().ok()?,
    };
    let rest: BTreeMap<&str, &str> = sample
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "le")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let text = rest
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(",");
    Some((text, le))
}

/// How much each series grew between two snapshots of one target, summed. A series whose value
/// dropped was reset (a restarted process), so its whole new value counts, as Prometheus'
/// `increase` does; a series that appeared in between counts from zero.
pub fn increase(before: &Series, after: &Series) -> f64 {
    after
        .iter()
        .map(|(key, &now)| match before.get(key) {
            Some(&then) if now >= then => now - then,
            _ => now,
        })
        .sum()
}

/// Per-`le` increase of bucket counts between two snapshots (same reset rule as [`increase`]),
/// summed over series: the input of [`histogram_quantile`].
pub fn bucket_increase(before: &Series, after: &Series) -> BTreeMap<OrderedBound, f64> {
    let mut out = BTreeMap::new();
    for (key, &now) in after {
        let delta = match before.get(key) {
            Some(&then) if now >= then => now - then,
            _ => now,
        };
        if let Some(le) = key.rsplit('|').next().and_then(|s| s.parse::<f64>().ok()) {
            *out.entry(OrderedBound(le)).or_insert(0.0) += delta;
        }
    }
    out
}

/// A bucket upper bound usable as a map key (bounds are never NaN: they come from parsing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderedBound(pub f64);

impl Eq for OrderedBound {}

impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Prometheus' `histogram_quantile` over cumulative buckets (upper bound → count): linear
/// interpolation inside the bucket holding the rank; NaN without observations or without a
/// `+Inf` bucket; the highest finite bound when the rank falls in the `+Inf` bucket.
pub fn histogram_quantile(q: f64, buckets: &BTreeMap<OrderedBound, f64>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let mut list: Vec<(f64, f64)> = buckets.iter().map(|(b, c)| (b.0, *c)).collect();
    if list.len() < 2 || list.last().is_none_or(|(b, _)| *b != f64::INFINITY) {
        return f64::NAN;
    }
    // Counts must not decrease with the bound; scrapes taken mid-update can break that.
    for i in 1..list.len() {
        if list[i].1 < list[i - 1].1 {
            list[i].1 = list[i - 1].1;
        }
    }
    let observations = list[list.len() - 1].1;
    if observations <= 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = list
        .iter()
        .position(|(_, c)| *c >= rank)
        .unwrap_or(list.len() - 1);
    if b == list.len() - 1 {
        return list[list.len() - 2].0;
    }
    if b == 0 && list[0].0 <= 0.0 {
        return list[0].0;
    }
    let (mut start, end, mut count) = (0.0, list[b].0, list[b].1);
    if b > 0 {
        start = list[b - 1].0;
        count -= list[b - 1].1;
        rank -= list[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape::parse_at(lines, chrono::DateTime::UNIX_EPOCH).unwrap()
    }

    const EXPOSITION: &str = r#"
# TYPE http_requests_total counter
http_requests_total{code="200",path="/"} 90
http_requests_total{code="500",path="/"} 7
http_requests_total{code="503",path="/x"} 3
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{path="/",le="0.1"} 50
http_request_duration_seconds_bucket{path="/",le="0.5"} 90
http_request_duration_seconds_bucket{path="/",le="1"} 99
http_request_duration_seconds_bucket{path="/",le="+Inf"} 100
http_request_duration_seconds_sum{path="/"} 20
http_request_duration_seconds_count{path="/"} 100
"#;

    fn total(scrape: &Scrape, sel: &str) -> f64 {
        counter_series(scrape, &Selector::parse(sel).unwrap())
            .values()
            .sum()
    }

    #[test]
    fn selector_filters_like_promql() {
        let s = scrape(EXPOSITION);
        assert_eq!(total(&s, "http_requests_total"), 100.0);
        assert_eq!(total(&s, r#"http_requests_total{code!~"5.."}"#), 90.0);
        assert_eq!(total(&s, r#"http_requests_total{code=~"5.."}"#), 10.0);
        assert_eq!(
            total(&s, r#"http_requests_total{code="500", path='/'}"#),
            7.0
        );
        assert_eq!(
            total(&s, r#"{__name__="http_requests_total",code!="200"}"#),
            10.0
        );
        // Anchored: "5" alone matches no code.
        assert_eq!(total(&s, r#"http_requests_total{code=~"5"}"#), 0.0);
        // A label the series lacks reads as the empty string.
        assert_eq!(total(&s, r#"http_requests_total{method=""}"#), 100.0);
    }

    #[test]
    fn selector_errors_name_the_selector() {
        let err = Selector::parse("http_requests_total{code=5}").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid series selector "http_requests_total{code=5}": expected a quoted value"#
        );
        assert!(Selector::parse("{code=\"1\"}").is_err());
        assert!(Selector::parse(r#"x{code=~"("}"#).is_err());
    }

    #[test]
    fn increase_handles_resets_and_new_series() {
        let before: Series = [("a".to_string(), 10.0), ("b".to_string(), 50.0)].into();
        let after: Series = [
            ("a".to_string(), 15.0),
            ("b".to_string(), 4.0),
            ("c".to_string(), 2.0),
        ]
        .into();
        assert_eq!(increase(&before, &after), 5.0 + 4.0 + 2.0);
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let s = scrape(EXPOSITION);
        let sel = Selector::parse("http_request_duration_seconds").unwrap();
        let buckets = bucket_increase(&Series::new(), &bucket_series(&s, &sel));
        // rank 50 of 100 sits exactly at the top of the first bucket.
        assert_eq!(histogram_quantile(0.5, &buckets), 0.1);
        // rank 95: in (0.5, 1], 5 of the 9 observations in it.
        let p95 = histogram_quantile(0.95, &buckets);
        assert!((p95 - (0.5 + 0.5 * 5.0 / 9.0)).abs() < 1e-12, "{p95}");
        // rank 99.5 lands in +Inf: the highest finite bound.
        assert_eq!(histogram_quantile(0.995, &buckets), 1.0);
        assert!(histogram_quantile(0.5, &BTreeMap::new()).is_nan());
        assert_eq!(histogram_quantile(-1.0, &buckets), f64::NEG_INFINITY);
    }

    #[test]
    fn untyped_buckets_are_accepted() {
        let s =
            scrape("lat_bucket{le=\"1\"} 3\nlat_bucket{le=\"2\"} 4\nlat_bucket{le=\"+Inf\"} 4\n");
        let sel = Selector::parse("lat").unwrap();
        let buckets = bucket_increase(&Series::new(), &bucket_series(&s, &sel));
        assert_eq!(histogram_quantile(0.5, &buckets), 1.0 * 2.0 / 3.0);
    }
}
