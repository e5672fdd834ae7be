//! The bounded load loop: real HTTP requests at a fixed rate to loopback pod endpoints, each
//! routed stable or canary with [`choose_backend`], answers counted by version and code. A
//! request whose endpoint does not answer is tried on the next one, as ingress-nginx does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::routing::{Backend, CanaryRules, SplitMix64, choose_backend, choose_weighted};
use crate::sandbox::demo_app::VERSION_HEADER;

/// ingress-nginx's default `proxy-next-upstream-tries`: attempts of one request in all.
pub const UPSTREAM_TRIES: usize = 3;

/// Where traffic may go right now: the pods behind each side and the canary Ingress's rules.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Endpoints of the stable side (loopback only; others are ignored).
    pub stable: Vec<SocketAddr>,
    /// Endpoints of the canary side (loopback only; others are ignored).
    pub canary: Vec<SocketAddr>,
    /// The canary Ingress's rules; `None` when there is no canary Ingress.
    pub rules: Option<CanaryRules>,
    /// A weighted split (an SMI TrafficSplit's backends): when not empty it decides instead of
    /// the stable/canary rules, each request going to one backend in proportion to its weight.
    pub weighted: Vec<WeightedBackend>,
}

/// One backend of a weighted split: a Service, its weight and its ready endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightedBackend {
    /// The Service's name.
    pub service: String,
    /// Its weight (any scale; only the proportions count).
    pub weight: i64,
    /// Its ready endpoints (loopback only are contacted).
    pub endpoints: Vec<SocketAddr>,
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

/// A fixed split.
impl SplitSource for Split {
    fn current(&mut self) -> Split {
        self.clone()
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
    /// Timeout of each attempt of a request (see [`UPSTREAM_TRIES`]).
    pub request_timeout: Duration,
    /// Requests in flight at most; the loop waits for a slot beyond that.
    pub max_in_flight: usize,
    /// Seed of the routing and tagging draws.
    pub seed: u64,
    /// Keep one [`RequestRecord`] per request in [`LoadReport::requests`] (for tests that
    /// check each request against what the Services selected at the time).
    pub record_requests: bool,
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
            record_requests: false,
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
    /// Routing decisions per side (a weighted split counts its first backend as stable, the
    /// others as canary).
    pub routed: BTreeMap<Backend, u64>,
    /// Routing decisions per Service of a weighted split.
    pub routed_services: BTreeMap<String, u64>,
    /// Answers per version (the `X-Davy-Version` header, `unknown` when absent) and status code.
    pub answers: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Requests that got no HTTP answer (connection refused, timeout, …) from any of the
    /// endpoints tried.
    pub transport_errors: u64,
    /// Requests answered by another endpoint of the same side after the first one failed
    /// (ingress-nginx's next-upstream retry); counted in `answers` too.
    pub retried: u64,
    /// Requests whose chosen side had no loopback endpoint (ingress-nginx would answer 503).
    pub unroutable: u64,
    /// When the first and the last unroutable request were routed (`None` without any), so a
    /// report can say when traffic found no ready backend.
    pub unroutable_span: Option<(std::time::Instant, std::time::Instant)>,
    /// Requests in flight when the run was cancelled, whose answers were not awaited.
    pub abandoned: u64,
    /// Every request in the order routed, when [`LoadConfig::record_requests`] is set.
    pub requests: Vec<RequestRecord>,
}

/// One request of a recorded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// When it was routed: the split it used was the one in force then.
    pub routed_at: std::time::Instant,
    /// The side chosen.
    pub backend: Backend,
    /// The endpoint it was sent to; `None` when the side had none (unroutable).
    pub target: Option<SocketAddr>,
    /// The answer's version (`X-Davy-Version`, `unknown` when absent) and status code; `None`
    /// without an answer (unroutable, transport error, abandoned).
    pub answer: Option<(String, u16)>,
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

    /// Answers with a status below 500, whatever the version.
    pub fn answered_ok(&self) -> u64 {
        self.answers
            .values()
            .flat_map(|by_code| by_code.iter())
            .filter(|(code, _)| **code < 500)
            .map(|(_, n)| n)
            .sum()
    }

    /// HTTP 5xx answered by the pods themselves, per version: the release's own errors (a
    /// missing backend is [`LoadReport::unroutable`], never counted here).
    pub fn server_errors(&self) -> BTreeMap<String, u64> {
        self.answers
            .iter()
            .filter_map(|(version, by_code)| {
                let n: u64 = by_code
                    .iter()
                    .filter(|(code, _)| **code >= 500)
                    .map(|(_, n)| n)
                    .sum();
                (n > 0).then(|| (version.clone(), n))
            })
            .collect()
    }
}

/// The outcome of one request, folded into the report.
enum Outcome {
    Answer {
        version: String,
        code: u16,
        /// Answered by another endpoint after the first failed to connect or answer.
        retried: bool,
    },
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
    let mut weighted_rr: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_flight: JoinSet<(Option<usize>, Outcome)> = JoinSet::new();
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
        let draw = rng.next_f64();
        let weights: Vec<i64> = split.weighted.iter().map(|b| b.weight).collect();
        let (backend, endpoints, rr) = match choose_weighted(&weights, draw) {
            Some(i) => {
                let chosen = &split.weighted[i];
                let backend = if i == 0 {
                    Backend::Stable
                } else {
                    Backend::Canary
                };
                *report
                    .routed_services
                    .entry(chosen.service.clone())
                    .or_insert(0) += 1;
                (
                    backend,
                    &chosen.endpoints,
                    weighted_rr.entry(chosen.service.clone()).or_insert(0),
                )
            }
            None => {
                let backend = choose_backend(split.rules.as_ref(), headers, draw);
                match backend {
                    Backend::Stable => (backend, &split.stable, &mut round_robin[0]),
                    Backend::Canary => (backend, &split.canary, &mut round_robin[1]),
                }
            }
        };
        *report.routed.entry(backend).or_insert(0) += 1;
        let slot = config.record_requests.then(|| {
            report.requests.push(RequestRecord {
                routed_at: std::time::Instant::now(),
                backend,
                target: None,
                answer: None,
            });
            report.requests.len() - 1
        });
        let loopback: Vec<SocketAddr> = endpoints
            .iter()
            .filter(|a| a.ip().is_loopback())
            .copied()
            .collect();
        if loopback.is_empty() {
            report.unroutable += 1;
            let now = std::time::Instant::now();
            let first = report.unroutable_span.map_or(now, |(first, _)| first);
            report.unroutable_span = Some((first, now));
            continue;
        }
        // ingress-nginx's `proxy-next-upstream: error timeout`: a request whose connection
        // fails is tried again on the next endpoint of the same backend, up to
        // `proxy-next-upstream-tries` times in all (a pod that just stopped is not a failure
        // the user sees while other endpoints are listed).
        let targets: Vec<SocketAddr> = (0..UPSTREAM_TRIES)
            .map(|i| loopback[rr.wrapping_add(i) % loopback.len()])
            .collect();
        *rr = rr.wrapping_add(1);
        if let Some(record) = slot.and_then(|index| report.requests.get_mut(index)) {
            record.target = targets.first().copied();
        }
        let client = client.clone();
        let path = config.path.clone();
        let headers = headers.clone();
        in_flight.spawn(async move {
            let _permit = permit;
            let mut outcome = Outcome::TransportError;
            for (attempt, target) in targets.iter().enumerate() {
                let request = client
                    .get(format!("http://{target}{path}"))
                    .headers(headers.clone());
                if let Ok(answer) = request.send().await {
                    outcome = Outcome::Answer {
                        version: answer
                            .headers()
                            .get(VERSION_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("unknown")
                            .to_string(),
                        code: answer.status().as_u16(),
                        retried: attempt > 0,
                    };
                    break;
                }
            }
            (slot, outcome)
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

fn record(report: &mut LoadReport, done: Result<(Option<usize>, Outcome), tokio::task::JoinError>) {
    match done {
        Ok((
            slot,
            Outcome::Answer {
                version,
                code,
                retried,
            },
        )) => {
            if retried {
                report.retried += 1;
            }
            if let Some(record) = slot.and_then(|index| report.requests.get_mut(index)) {
                record.answer = Some((version.clone(), code));
            }
            *report
                .answers
                .entry(version)
                .or_default()
                .entry(code)
                .or_insert(0) += 1;
        }
        Ok((_, Outcome::TransportError)) => report.transport_errors += 1,
        // Aborted on cancellation: the request was sent but its answer is unknown.
        Err(_) => report.abandoned += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
