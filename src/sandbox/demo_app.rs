//! The sandbox demo app: a real HTTP server per simulated Pod whose behaviour follows its image tag.
//!
//! Each instance listens on a loopback address (a free port of 127.0.0.1, or the exact address
//! the simulator chose for its Pod) and serves:
//! - `/metrics`: Prometheus text exposition with `http_requests_total{code,version}` and the
//!   `http_request_duration_seconds{version}` histogram (the default Prometheus buckets);
//! - every other path (`/` in particular): a small JSON answer naming the version and colour,
//!   with the version also in the `X-Davy-Version` response header.
//!
//! The tag is the part of the image after the last `:` (a digest `@…` is ignored first, and an
//! image without a tag is `latest`). `bad-*` answers every request whose sequence number modulo
//! 10 is below 3 with a 500 (exactly 30%, deterministic so tests can count); `slow-*` delays every
//! answer (200 ms unless [`DemoAppOptions::slow_latency`] says otherwise, or `slow-<N>ms` names
//! it); `err<P>-*` (`err10-blue`) answers about P % of requests with a 500, the rate drifting
//! with the wall clock between 0.8 P and 1.2 P (P whole, 0 to 100) the same way for every app (see [`DRIFT`]), so
//! two apps of the same P are equally noisy at the same moment; any other tag (`blue`,
//! `yellow`, `green`, …) is healthy.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The response header carrying the answering app's version (the image tag).
pub const VERSION_HEADER: &str = "x-davy-version";

/// Upper bounds of the `http_request_duration_seconds` buckets: the Prometheus client default.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Latency a `slow-*` tag adds when the tag does not name one.
pub const DEFAULT_SLOW_LATENCY: Duration = Duration::from_millis(200);

/// The shared drift of an `err<P>-*` app's error rate: the factor applied to P during each
/// second of the wall clock (`unix seconds % 20`), a slow wave between 0.8 and 1.2, mean 1. It stands for
/// the load and dependency changes every version of a service sees at once, which makes an
/// absolute error rate noisy while a baseline and a canary of the same release stay equal.
pub const DRIFT: [f64; 20] = [
    1.00, 1.06, 1.12, 1.16, 1.19, 1.20, 1.19, 1.16, 1.12, 1.06, 1.00, 0.94, 0.88, 0.84, 0.81, 0.80,
    0.81, 0.84, 0.88, 0.94,
];

/// Errors starting a demo app.
#[derive(Debug, thiserror::Error)]
pub enum DemoAppError {
    /// The loopback listener could not be bound.
    #[error("demo app: cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed (`AddrInUse` when another listener holds it).
        #[source]
        source: std::io::Error,
    },
}

/// Tunables for a demo app that are not encoded in the image.
#[derive(Debug, Clone)]
pub struct DemoAppOptions {
    /// Latency added to every answer of a `slow-*` image whose tag names none.
    pub slow_latency: Duration,
}

impl Default for DemoAppOptions {
    fn default() -> Self {
        Self {
            slow_latency: DEFAULT_SLOW_LATENCY,
        }
    }
}

/// What a demo app does, derived from its image alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    /// The image tag; the `version` label of every metric.
    pub version: String,
    /// The colour named in the answer: the tag without its `bad-`/`slow-` prefix.
    pub colour: String,
    /// Whether every request with sequence number `n % 10 < 3` answers 500.
    pub failing: bool,
    /// Latency added before answering.
    pub latency: Duration,
    /// `err<P>-*`: the mean error rate in whole percent (drifting with [`DRIFT`]).
    pub error_percent: Option<u32>,
}

/// The tag of an image reference: after the last `:` of the name part, `latest` when absent.
pub fn image_tag(image: &str) -> &str {
    // A digest (`name@sha256:…`) is not a tag; a `:` before the last `/` is a registry port.
    let name = image.split('@').next().unwrap_or(image);
    let last_segment_start = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_segment_start..].rfind(':') {
        Some(i) => &name[last_segment_start + i + 1..],
        None => "latest",
    }
}

/// Decides the behaviour of the demo app for `image` (pure).
pub fn behaviour_for_image(image: &str, options: &DemoAppOptions) -> Behaviour {
    let tag = image_tag(image);
    let drifting = tag.strip_prefix("err").and_then(|rest| {
        let (percent, colour) = rest.split_once('-')?;
        let percent: u32 = percent.parse().ok()?;
        (percent <= 100).then_some((percent, colour))
    });
    if let Some((percent, colour)) = drifting {
        return Behaviour {
            version: tag.to_string(),
            colour: colour.to_string(),
            failing: false,
            latency: Duration::ZERO,
            error_percent: Some(percent),
        };
    }
    let (failing, latency, colour) = if let Some(rest) = tag.strip_prefix("bad-") {
        (true, Duration::ZERO, rest)
    } else if let Some(rest) = tag.strip_prefix("slow-") {
        let latency = parse_millis(rest).unwrap_or(options.slow_latency);
        (false, latency, rest)
    } else {
        (false, Duration::ZERO, tag)
    };
    Behaviour {
        version: tag.to_string(),
        colour: colour.to_string(),
        failing,
        latency,
        error_percent: None,
    }
}

/// `"350ms"` → 350 ms; anything else is not a latency.
fn parse_millis(s: &str) -> Option<Duration> {
    let digits = s.strip_suffix("ms")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().map(Duration::from_millis)
}

/// Whether request number `sequence` (counting from 0) of a failing app answers 500.
pub fn fails_request(sequence: u64) -> bool {
    sequence % 10 < 3
}

/// The error rate (a fraction) of an `err<P>-*` app during the wall-clock second `unix_second`.
pub fn drifting_error_rate(percent: u32, unix_second: u64) -> f64 {
    let drift = DRIFT[(unix_second % DRIFT.len() as u64) as usize];
    (f64::from(percent) / 100.0 * drift).clamp(0.0, 1.0)
}

/// Whether the next request fails at error rate `rate`, given the error credit carried from
/// the previous ones; returns the new credit. Errors are spread evenly rather than drawn at
/// random, so any run of requests holds its rate's share of errors to within one: the only
/// noise an analysis sees is the drift, and a test can choose sample sizes knowing that.
pub fn spend_error_credit(credit: f64, rate: f64) -> (bool, f64) {
    let credit = credit + rate;
    if credit >= 1.0 {
        (true, credit - 1.0)
    } else {
        (false, credit)
    }
}

/// The request counters and latency histogram of one app.
#[derive(Debug, Default)]
struct Stats {
    by_code: BTreeMap<u16, u64>,
    bucket_counts: [u64; DURATION_BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
    /// The error credit of an `err<P>-*` app ([`spend_error_credit`]).
    error_credit: f64,
}

impl Stats {
    fn record(&mut self, code: u16, seconds: f64) {
        *self.by_code.entry(code).or_insert(0) += 1;
        for (count, bound) in self.bucket_counts.iter_mut().zip(DURATION_BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        self.duration_sum += seconds;
        self.duration_count += 1;
    }
}

/// Renders the Prometheus text exposition for one app.
fn render_metrics(version: &str, stats: &Stats) -> String {
    let v = escape_label_value(version);
    let mut out = String::new();
    out.push_str("# HELP http_requests_total Requests answered, by status code and version.\n");
    out.push_str("# TYPE http_requests_total counter\n");
    for (code, count) in &stats.by_code {
        let _ = writeln!(
            out,
            "http_requests_total{{code=\"{code}\",version=\"{v}\"}} {count}"
        );
    }
    out.push_str("# HELP http_request_duration_seconds Time to answer a request, by version.\n");
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (count, bound) in stats.bucket_counts.iter().zip(DURATION_BUCKETS) {
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"{bound}\"}} {count}"
        );
    }
    let n = stats.duration_count;
    let _ = writeln!(
        out,
        "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"+Inf\"}} {n}"
    );
    let _ = writeln!(
        out,
        "http_request_duration_seconds_sum{{version=\"{v}\"}} {}",
        stats.duration_sum
    );
    let _ = writeln!(
        out,
        "http_request_duration_seconds_count{{version=\"{v}\"}} {n}"
    );
    out
}

/// Escapes a label value as the exposition format requires.
fn escape_label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// State shared by the handlers of one app.
#[derive(Debug)]
struct AppState {
    image: String,
    behaviour: Behaviour,
    sequence: AtomicU64,
    stats: Mutex<Stats>,
}

impl AppState {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        // A poisoned lock only means a handler panicked mid-update; the counters are still usable.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn answer(State(state): State<Arc<AppState>>) -> Response {
    let started = tokio::time::Instant::now();
    let sequence = state.sequence.fetch_add(1, Ordering::SeqCst);
    if !state.behaviour.latency.is_zero() {
        tokio::time::sleep(state.behaviour.latency).await;
    }
    let drifted = state.behaviour.error_percent.is_some_and(|percent| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut stats = state.stats();
        let (fails, credit) =
            spend_error_credit(stats.error_credit, drifting_error_rate(percent, now));
        stats.error_credit = credit;
        fails
    });
    let code = if drifted || (state.behaviour.failing && fails_request(sequence)) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "version": state.behaviour.version,
        "color": state.behaviour.colour,
        "image": state.image,
        "status": code.as_u16(),
    });
    state
        .stats()
        .record(code.as_u16(), started.elapsed().as_secs_f64());
    let mut response = (code, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&state.behaviour.version) {
        response.headers_mut().insert(VERSION_HEADER, value);
    }
    response
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = render_metrics(&state.behaviour.version, &state.stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Entry point for starting demo apps.
pub struct DemoApp;

impl DemoApp {
    /// Starts a demo app for `image` on a free port of 127.0.0.1 with default options.
    pub async fn start(image: &str) -> Result<DemoAppHandle, DemoAppError> {
        Self::start_with(image, &DemoAppOptions::default()).await
    }

    /// Starts a demo app for `image` on a free port of 127.0.0.1.
    pub async fn start_with(
        image: &str,
        options: &DemoAppOptions,
    ) -> Result<DemoAppHandle, DemoAppError> {
        Self::start_at(image, options, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a demo app for `image` listening on exactly `addr` (port 0: a free one).
    pub async fn start_at(
        image: &str,
        options: &DemoAppOptions,
        addr: SocketAddr,
    ) -> Result<DemoAppHandle, DemoAppError> {
        let bind_error = |source| DemoAppError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let state = Arc::new(AppState {
            image: image.to_string(),
            behaviour: behaviour_for_image(image, options),
            sequence: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
        });
        let router = Router::new()
            .route("/metrics", get(metrics))
            .fallback(answer)
            .with_state(state.clone());
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "demo app server stopped with an error");
            }
        });
        tracing::debug!(%addr, image, "demo app started");
        Ok(DemoAppHandle {
            addr,
            state,
            cancel,
            task: Some(task),
        })
    }
}

/// A running demo app; dropping it stops the server (in-flight answers still complete).
#[derive(Debug)]
pub struct DemoAppHandle {
    addr: SocketAddr,
    state: Arc<AppState>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl DemoAppHandle {
    /// The loopback address the app listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The image the app was started for.
    pub fn image(&self) -> &str {
        &self.state.image
    }

    /// The behaviour derived from the image.
    pub fn behaviour(&self) -> &Behaviour {
        &self.state.behaviour
    }

    /// Requests answered so far, by status code (the same numbers `/metrics` shows).
    pub fn answered(&self) -> BTreeMap<u16, u64> {
        self.state.stats().by_code.clone()
    }

    /// Stops the server and waits until it no longer accepts connections.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            // The task only ends by itself or by cancellation; a join error means it panicked,
            // which the server already logged.
            let _ = task.await;
        }
    }
}

impl Drop for DemoAppHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(image_tag("argoproj/rollouts-demo:blue"), "blue");
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("registry:5000/app"), "latest");
        assert_eq!(image_tag("registry:5000/app:bad-red"), "bad-red");
        assert_eq!(image_tag("app:green@sha256:abcd"), "green");
        assert_eq!(image_tag("app@sha256:abcd"), "latest");
    }

    #[test]
    fn behaviours() {
        let o = DemoAppOptions {
            slow_latency: Duration::from_millis(50),
        };
        assert_eq!(
            behaviour_for_image("x:blue", &o),
            Behaviour {
                version: "blue".into(),
                colour: "blue".into(),
                failing: false,
                latency: Duration::ZERO,
                error_percent: None,
            }
        );
        let drifting = behaviour_for_image("x:err10-blue", &o);
        assert_eq!(drifting.error_percent, Some(10));
        assert_eq!(drifting.colour, "blue");
        assert_eq!(behaviour_for_image("x:errx-blue", &o).error_percent, None);
        let bad = behaviour_for_image("x:bad-red", &o);
        assert!(bad.failing);
        assert_eq!(bad.colour, "red");
        assert_eq!(bad.version, "bad-red");
        assert_eq!(
            behaviour_for_image("x:slow-yellow", &o).latency,
            Duration::from_millis(50)
        );
        assert_eq!(
            behaviour_for_image("x:slow-350ms", &o).latency,
            Duration::from_millis(350)
        );
        assert_eq!(
            behaviour_for_image("x:slow-ms", &o).latency,
            Duration::from_millis(50)
        );
    }

    #[test]
    fn exactly_three_in_ten_fail() {
        let failed = (0..100).filter(|n| fails_request(*n)).count();
        assert_eq!(failed, 30);
        assert!(fails_request(0) && fails_request(2) && !fails_request(3) && fails_request(12));
    }

    #[test]
    fn drift_keeps_the_mean_and_errors_stay_within_one() {
        let mean = DRIFT.iter().sum::<f64>() / DRIFT.len() as f64;
        assert!((mean - 1.0).abs() < 1e-9, "{mean}");
        assert!((drifting_error_rate(10, 5) - 0.12).abs() < 1e-12);
        let (mut credit, mut errors) = (0.0, 0);
        for n in 1..=1000 {
            let (fails, next) = spend_error_credit(credit, 0.1);
            credit = next;
            errors += u32::from(fails);
            assert!((f64::from(errors) - 0.1 * f64::from(n)).abs() <= 1.0, "{n}");
        }
        assert!((99..=100).contains(&errors), "{errors}");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut s = Stats::default();
        s.record(200, 0.003);
        s.record(500, 0.2);
        s.record(200, 20.0);
        assert_eq!(s.bucket_counts, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        let text = render_metrics("blue", &s);
        assert!(text.contains("http_requests_total{code=\"200\",version=\"blue\"} 2\n"));
        assert!(text.contains("http_requests_total{code=\"500\",version=\"blue\"} 1\n"));
        assert!(
            text.contains("http_request_duration_seconds_bucket{version=\"blue\",le=\"+Inf\"} 3\n")
        );
        assert!(text.contains("http_request_duration_seconds_count{version=\"blue\"} 3\n"));
    }
}
