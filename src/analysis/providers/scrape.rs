//! The `davy/scrape` metric plugin: reads Prometheus text expositions straight from targets
//! (URLs, or the ready pods of a label selector) and computes one number, no Prometheus server
//! needed. Configured as `provider.plugin: {"davy/scrape": {...}}` so manifests stay valid
//! under the upstream CRD; the fields are documented in `docs/analysis.md`.
//!
//! Windowed values (a rate, or a ratio or quantile over `window`) take two scrapes: `run`
//! scrapes and stores the first snapshot in the measurement's metadata with `resumeAt` at the
//! end of the window, `resume` scrapes again and computes. The controller therefore never
//! blocks for a window, and a restart in between loses nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use prometheus_parse::Scrape;
use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::api::providers::WebMetricHeader;
use crate::api::{AnalysisPhase, Measurement, Metric};
use crate::expr::{MetricValue, format_sample_value};

use super::http::{client, error_text, with_headers};
use super::scrape_query::{
    Selector, Series, bucket_increase, bucket_series, counter_series, histogram_quantile, increase,
};
use super::{
    MeasureContext, PluginFactory, Provider, ProviderError, chrono_time, conclude, errored, started,
};
use crate::analysis::schedule::add as schedule_add;

/// The plugin name under `provider.plugin`.
pub const PLUGIN_NAME: &str = "davy/scrape";
/// Measurement metadata key holding the first snapshot of a windowed measurement.
pub const BASELINE: &str = "scrape-baseline";
/// Measurement metadata key with the number of targets scraped.
pub const TARGETS: &str = "scrape-targets";
/// Default per-scrape timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lists the scrape URLs of the ready pods matching a label selector; the controller supplies
/// one backed by the cluster ([`KubePodLister`]).
pub trait PodLister: Send + Sync {
    /// IPs of the Running and Ready pods in `namespace` matching `selector`
    /// (`k=v,k2=v2`).
    fn ready_pod_ips<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, kube::Error>>;
}

/// Why a scrape measurement has no snapshot.
#[derive(Debug, Error)]
pub enum ScrapeError {
    /// Pod targets without a cluster to list them from.
    #[error("pod targets need a Kubernetes cluster (no pod lister configured)")]
    NoPodLister,
    /// Listing the pods failed.
    #[error("{0}")]
    ListPods(#[from] kube::Error),
    /// Neither `targets` nor `pods` gave a URL.
    #[error("no scrape targets (targets and pods matched nothing)")]
    NoTargets,
    /// The target could not be reached or its answer not read.
    #[error("scrape {url}: {}", error_text(.source))]
    Fetch {
        /// The target.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The target answered with a non-2xx code.
    #[error("scrape {url}: received non 2xx response code: {status}")]
    Status {
        /// The target.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The answer is not the text exposition format.
    #[error("scrape {url}: {message}")]
    Parse {
        /// The target.
        url: String,
        /// The parser's message.
        message: String,
    },
}

/// A [`PodLister`] reading pods through the Kubernetes API.
#[derive(Clone)]
pub struct KubePodLister {
    client: kube::Client,
}

impl KubePodLister {
    /// A lister over `client`.
    pub fn new(client: kube::Client) -> KubePodLister {
        KubePodLister { client }
    }
}

impl PodLister for KubePodLister {
    fn ready_pod_ips<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, kube::Error>> {
        Box::pin(async move {
            use k8s_openapi::api::core::v1::Pod;
            let api: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), namespace);
            let pods = api
                .list(&kube::api::ListParams::default().labels(selector))
                .await?;
            Ok(pods
                .items
                .iter()
                .filter_map(|pod| {
                    let status = pod.status.as_ref()?;
                    let ready = status.phase.as_deref() == Some("Running")
                        && status
                            .conditions
                            .iter()
                            .flatten()
                            .any(|c| c.type_ == "Ready" && c.status == "True");
                    ready.then(|| status.pod_ip.clone()).flatten()
                })
                .collect())
        })
    }
}

/// Accepts `8080` or `"8080"` (arguments are always strings).
fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// `pods:` — scrape the run's pods instead of (or besides) fixed URLs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTargets {
    /// Equality-based label selector, `app=demo,rollouts-pod-template-hash=abc`; empty = none.
    #[serde(default)]
    pub selector: String,
    /// Port of the exposition (default 8080).
    #[serde(default, deserialize_with = "number_or_string")]
    pub port: Option<String>,
    /// Path (default `/metrics`).
    #[serde(default)]
    pub path: Option<String>,
    /// `http` (default) or `https`.
    #[serde(default)]
    pub scheme: Option<String>,
    /// Namespace (default: the AnalysisRun's).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `ratio:` — numerator and denominator selectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioConfig {
    /// Series selector of the numerator.
    pub numerator: String,
    /// Series selector of the denominator.
    pub denominator: String,
}

/// `quantile:` — a histogram and the quantile wanted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantileConfig {
    /// The quantile, 0 to 1 (a number or a string).
    #[serde(deserialize_with = "number_or_string")]
    pub q: Option<String>,
    /// The histogram's base metric name.
    pub histogram: String,
}

/// The plugin configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Exposition URLs; an entry may hold several, comma-separated; empty entries are skipped.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Pods to scrape, found by label selector, instead of or besides the fixed `targets`.
    #[serde(default)]
    pub pods: Option<PodTargets>,
    /// Time between the two scrapes of a windowed value (Go duration; default 0 = one scrape,
    /// values since the targets started).
    #[serde(default)]
    pub window: Option<String>,
    /// Timeout of each scrape, in seconds.
    #[serde(default, deserialize_with = "number_or_string")]
    pub timeout_seconds: Option<String>,
    /// Headers sent with each scrape.
    #[serde(default)]
    pub headers: Vec<WebMetricHeader>,
    /// Skip TLS certificate verification.
    #[serde(default)]
    pub insecure: bool,
    /// Sum of the matching samples at one scrape.
    #[serde(default)]
    pub sum: Option<String>,
    /// Per-second increase of the matching counters over the window.
    #[serde(default)]
    pub rate: Option<String>,
    /// Ratio of two counters' rates.
    #[serde(default)]
    pub ratio: Option<RatioConfig>,
    /// A histogram quantile.
    #[serde(default)]
    pub quantile: Option<QuantileConfig>,
}

#[derive(Debug, Clone)]
enum ValueKind {
    Sum(Selector),
    Rate(Selector),
    Ratio(Selector, Selector),
    Quantile(f64, Selector),
}

/// What one target contributes, per input (`sum`, `num`, `den`, `buckets`).
pub(super) type TargetSnapshot = BTreeMap<String, Series>;
/// Target URL → its snapshot.
pub(super) type Snapshot = BTreeMap<String, TargetSnapshot>;

/// A configured scrape metric.
pub struct ScrapeProvider {
    config: ScrapeConfig,
    kind: ValueKind,
    window: Duration,
    client: reqwest::Client,
    pods: Option<Arc<dyn PodLister>>,
}

fn config_error(message: impl std::fmt::Display) -> ProviderError {
    ProviderError::Config(format!("invalid {PLUGIN_NAME} config: {message}"))
}

impl ScrapeProvider {
    /// Reads and checks the plugin configuration.
    pub fn new(
        config: &serde_json::Value,
        pods: Option<Arc<dyn PodLister>>,
    ) -> Result<ScrapeProvider, ProviderError> {
        let config: ScrapeConfig = serde_json::from_value(config.clone()).map_err(config_error)?;
        let sel = |s: &str| Selector::parse(s).map_err(config_error);
        let mut kinds = Vec::new();
        if let Some(s) = &config.sum {
            kinds.push(ValueKind::Sum(sel(s)?));
        }
        if let Some(s) = &config.rate {
            kinds.push(ValueKind::Rate(sel(s)?));
        }
        if let Some(r) = &config.ratio {
            kinds.push(ValueKind::Ratio(sel(&r.numerator)?, sel(&r.denominator)?));
        }
        if let Some(q) = &config.quantile {
            let text = q.q.clone().unwrap_or_default();
            let value: f64 = text
                .trim()
                .parse()
                .map_err(|_| config_error(format!("quantile q {text:?} is not a number")))?;
            kinds.push(ValueKind::Quantile(value, sel(&q.histogram)?));
        }
        let kind = match kinds.len() {
            1 => kinds.remove(0),
            0 => {
                return Err(config_error(
                    "one of sum, rate, ratio or quantile is required",
                ));
            }
            _ => {
                return Err(config_error(
                    "only one of sum, rate, ratio or quantile may be set",
                ));
            }
        };
        let window = match config
            .window
            .as_deref()
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            None => Duration::ZERO,
            Some(w) => crate::api::parse_go_duration(w)
                .map_err(|e| config_error(format!("window: {e}")))?,
        };
        if matches!(kind, ValueKind::Rate(_)) && window.is_zero() {
            return Err(config_error("rate needs a window"));
        }
        let timeout = match config.timeout_seconds.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_TIMEOUT,
            Some(t) => Duration::from_secs(
                t.parse::<u64>()
                    .map_err(|_| config_error(format!("timeoutSeconds {t:?} is not a number")))?
                    .max(1),
            ),
        };
        let client = client(timeout, config.insecure)?;
        Ok(ScrapeProvider {
            config,
            kind,
            window,
            client,
            pods,
        })
    }

    /// Whether this metric needs two scrapes.
    fn windowed(&self) -> bool {
        !self.window.is_zero() && !matches!(self.kind, ValueKind::Sum(_))
    }

    async fn target_urls(&self, ctx: &MeasureContext) -> Result<Vec<String>, ScrapeError> {
        let mut urls: Vec<String> = self
            .config
            .targets
            .iter()
            .flat_map(|t| t.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        if let Some(pods) = self
            .config
            .pods
            .as_ref()
            .filter(|p| !p.selector.trim().is_empty())
        {
            let lister = self.pods.as_ref().ok_or(ScrapeError::NoPodLister)?;
            let namespace = pods
                .namespace
                .clone()
                .unwrap_or_else(|| ctx.namespace.clone());
            let ips = lister
                .ready_pod_ips(&namespace, pods.selector.trim())
                .await?;
            let scheme = pods.scheme.as_deref().unwrap_or("http");
            let port = pods.port.as_deref().unwrap_or("8080");
            let path = pods.path.as_deref().unwrap_or("/metrics");
            for ip in ips {
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip
                };
                urls.push(format!("{scheme}://{host}:{port}{path}"));
            }
        }
        if urls.is_empty() {
            return Err(ScrapeError::NoTargets);
        }
        Ok(urls)
    }

    async fn scrape_one(&self, url: &str, ctx: &MeasureContext) -> Result<Scrape, ScrapeError> {
        let fetch = |source| ScrapeError::Fetch {
            url: url.to_string(),
            source,
        };
        let request = with_headers(self.client.get(url), &self.config.headers);
        let response = request.send().await.map_err(fetch)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(ScrapeError::Status {
                url: url.to_string(),
                status,
            });
        }
        let text = response.text().await.map_err(fetch)?;
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape::parse_at(lines, chrono_time(ctx.now)).map_err(|e| ScrapeError::Parse {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    /// Scrapes every target and keeps what the value needs.
    pub(super) async fn snapshot(&self, ctx: &MeasureContext) -> Result<Snapshot, ScrapeError> {
        let urls = self.target_urls(ctx).await?;
        let scrapes = join_all(urls.iter().map(|u| self.scrape_one(u, ctx))).await;
        let mut snapshot = Snapshot::new();
        for (url, scrape) in urls.into_iter().zip(scrapes) {
            let scrape = scrape?;
            let mut inputs = TargetSnapshot::new();
            match &self.kind {
                ValueKind::Sum(s) | ValueKind::Rate(s) => {
                    inputs.insert("sum".into(), counter_series(&scrape, s));
                }
                ValueKind::Ratio(n, d) => {
                    inputs.insert("num".into(), counter_series(&scrape, n));
                    inputs.insert("den".into(), counter_series(&scrape, d));
                }
                ValueKind::Quantile(_, h) => {
                    inputs.insert("buckets".into(), bucket_series(&scrape, h));
                }
            }
            // NaN samples cannot be stored as JSON and carry nothing to add up.
            for series in inputs.values_mut() {
                series.retain(|_, v| !v.is_nan());
            }
            snapshot.insert(url, inputs);
        }
        Ok(snapshot)
    }

    /// The value from a snapshot and, for windowed values, the baseline before it.
    pub(super) fn compute(&self, before: Option<&Snapshot>, after: &Snapshot, elapsed: f64) -> f64 {
        let empty = TargetSnapshot::new();
        let no_series = Series::new();
        let delta = |input: &str| -> f64 {
            after
                .iter()
                .map(|(url, now)| {
                    let then = before.and_then(|b| b.get(url)).unwrap_or(&empty);
                    let then = then.get(input).unwrap_or(&no_series);
                    increase(then, now.get(input).unwrap_or(&no_series))
                })
                .sum()
        };
        match &self.kind {
            ValueKind::Sum(_) => delta("sum"),
            ValueKind::Rate(_) => {
                if elapsed > 0.0 {
                    delta("sum") / elapsed
                } else {
                    f64::NAN
                }
            }
            ValueKind::Ratio(..) => delta("num") / delta("den"),
            ValueKind::Quantile(q, _) => {
                let mut buckets = BTreeMap::new();
                for (url, now) in after {
                    let then = before.and_then(|b| b.get(url)).unwrap_or(&empty);
                    let then = then.get("buckets").unwrap_or(&no_series);
                    for (le, count) in
                        bucket_increase(then, now.get("buckets").unwrap_or(&no_series))
                    {
                        *buckets.entry(le).or_insert(0.0) += count;
                    }
                }
                histogram_quantile(*q, &buckets)
            }
        }
    }

    fn finish(
        &self,
        mut measurement: Measurement,
        metric: &Metric,
        ctx: &MeasureContext,
        value: f64,
        targets: usize,
    ) -> Measurement {
        measurement.metadata.remove(BASELINE);
        measurement.resume_at = None;
        measurement
            .metadata
            .insert(TARGETS.to_string(), targets.to_string());
        conclude(
            measurement,
            metric,
            &MetricValue::Float(value),
            format_sample_value(value),
            ctx,
        )
    }

    async fn start(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let mut measurement = started(ctx);
        let snapshot = match self.snapshot(ctx).await {
            Ok(s) => s,
            Err(error) => return errored(measurement, error.to_string()),
        };
        if !self.windowed() {
            let value = self.compute(None, &snapshot, 0.0);
            return self.finish(measurement, metric, ctx, value, snapshot.len());
        }
        match serde_json::to_string(&snapshot) {
            Ok(text) => {
                measurement.metadata.insert(BASELINE.to_string(), text);
                measurement.resume_at = Some(Time(schedule_add(ctx.now, self.window)));
                measurement
            }
            Err(e) => errored(measurement, format!("cannot store scrape baseline: {e}")),
        }
    }

    async fn complete(
        &self,
        ctx: &MeasureContext,
        metric: &Metric,
        measurement: Measurement,
    ) -> Measurement {
        let baseline: Snapshot = match measurement
            .metadata
            .get(BASELINE)
            .map(|text| serde_json::from_str(text))
        {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                return errored(measurement, format!("unreadable scrape baseline: {e}"));
            }
            None => return errored(measurement, "scrape baseline missing"),
        };
        let snapshot = match self.snapshot(ctx).await {
            Ok(s) => s,
            Err(error) => return errored(measurement, error.to_string()),
        };
        let started_at = measurement.started_at.as_ref().map_or(ctx.now, |t| t.0);
        let elapsed = ctx.now.duration_since(started_at).as_secs_f64();
        let value = self.compute(Some(&baseline), &snapshot, elapsed);
        self.finish(measurement, metric, ctx, value, snapshot.len())
    }
}

impl Provider for ScrapeProvider {
    fn kind(&self) -> &'static str {
        "DavyScrape"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.start(ctx, metric))
    }

    fn resume<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.complete(ctx, metric, measurement))
    }

    /// Ends a window early without a verdict of its own (the run reports `Metric Terminated`).
    fn terminate<'a>(
        &'a self,
        _ctx: &'a MeasureContext,
        _metric: &'a Metric,
        mut measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            measurement.metadata.remove(BASELINE);
            measurement.resume_at = None;
            measurement.phase = AnalysisPhase::Successful;
            measurement
        })
    }
}

/// The [`PluginFactory`] registered under [`PLUGIN_NAME`].
pub fn factory(pods: Option<Arc<dyn PodLister>>) -> PluginFactory {
    Arc::new(move |config| {
        ScrapeProvider::new(config, pods.clone()).map(|p| Box::new(p) as Box<dyn Provider>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_plugin() {
        let err = |c: serde_json::Value| ScrapeProvider::new(&c, None).err().map(|e| e.to_string());
        assert_eq!(
            err(json!({"targets": ["http://x"]})),
            Some(
                "invalid davy/scrape config: one of sum, rate, ratio or quantile is required"
                    .into()
            )
        );
        assert_eq!(
            err(json!({"targets": ["http://x"], "rate": "x"})),
            Some("invalid davy/scrape config: rate needs a window".into())
        );
        assert!(err(json!({"targets": [], "sum": "x", "bogus": 1})).is_some());
        assert!(err(json!({"sum": "x", "rate": "y", "window": "1s"})).is_some());
        assert_eq!(
            err(json!({"sum": "x", "pods": {"selector": "a=b", "port": "8080"}})),
            None
        );
    }

    #[test]
    fn ratio_over_a_window_uses_increases() {
        let p = ScrapeProvider::new(
            &json!({"targets": ["t"], "window": "10s", "ratio": {"numerator": "r{code!~\"5..\"}", "denominator": "r"}}),
            None,
        )
        .unwrap();
        let snap = |ok: f64, bad: f64| -> Snapshot {
            let num: Series = [("code=\"200\"".to_string(), ok)].into();
            let den: Series = [
                ("code=\"200\"".to_string(), ok),
                ("code=\"500\"".to_string(), bad),
            ]
            .into();
            BTreeMap::from([(
                "t".to_string(),
                BTreeMap::from([("num".to_string(), num), ("den".to_string(), den)]),
            )])
        };
        // 90 good and 10 bad requests during the window, whatever came before.
        let value = p.compute(Some(&snap(1000.0, 500.0)), &snap(1090.0, 510.0), 10.0);
        assert_eq!(value, 0.9);
        // Without a baseline: totals since start.
        assert_eq!(p.compute(None, &snap(90.0, 10.0), 0.0), 0.9);
        // No traffic: 0/0.
        assert!(
            p.compute(Some(&snap(5.0, 5.0)), &snap(5.0, 5.0), 10.0)
                .is_nan()
        );
    }
}
