//! The `davy/judge` metric plugin: fetches a baseline and a canary sample per configured
//! metric with Prometheus range queries (one query per scope), judges each pair with the pure
//! statistical judge ([`crate::analysis::stats`]) and returns the summary score as the
//! measurement value. Configured as `provider.plugin: {"davy/judge": {...}}`; the fields are
//! documented in `docs/judge.md`.
//!
//! Without Prometheus (`prometheus:` left out), each scope of a metric is a `davy/scrape`
//! value (`scrape.baseline` / `scrape.canary`) read from the pods' own `/metrics`: the
//! measurement scrapes both scopes every `step` (each time a `resumeAt`, the series so far in
//! the measurement's metadata, so the controller never blocks and a restart loses nothing)
//! and judges the per-step values once `lookback` is covered.
//!
//! Pure parts (configuration, sample extraction, scorecard → measurement) are separate
//! functions so they are tested without a server; the provider only adds the queries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;
use thiserror::Error;

use crate::analysis::stats::score::{ScoreClassification, classify_score};
use crate::analysis::stats::{
    Classification, MetricConfig, MetricJudgement, Scorecard, ScoredMetric, Thresholds, classify,
    score,
};
use crate::api::duration::parse_go_duration;
use crate::api::providers::PrometheusMetric;
use crate::api::{AnalysisPhase, Measurement, Metric};
use crate::expr::format_sample_value;

use super::prometheus::{PrometheusProvider, QueryError};
use super::scrape::{PodLister, ScrapeProvider, Snapshot};
use super::{MeasureContext, PluginFactory, Provider, ProviderError, errored, started};
use crate::analysis::schedule::add as schedule_add;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The plugin name under `provider.plugin`.
pub const PLUGIN_NAME: &str = "davy/judge";
/// `lookback` when neither the config nor the metric's `interval` gives one.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(600);
/// `step` when the config gives none.
pub const DEFAULT_STEP: Duration = Duration::from_secs(30);
/// Keys of a judged metric that belong to the provider rather than to [`MetricConfig`].
const PROVIDER_KEYS: &[&str] = &["name", "queries", "scrape", "weight"];
/// Measurement metadata key holding a scrape-sourced series in progress.
pub const SCRAPE_STATE: &str = "judge-scrape-series";

/// Accepts `30` or `"30"`: template arguments always render as strings.
fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<Json>::deserialize(d)? {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => Ok(n.as_f64()),
        Some(Json::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number"))),
        Some(other) => Err(serde::de::Error::custom(format!("{other} is not a number"))),
    }
}

/// `prometheus:` — the server both scopes are queried on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusConfig {
    address: String,
    /// Seconds (default 30, as the prometheus provider).
    #[serde(default, deserialize_with = "number_or_string")]
    timeout: Option<f64>,
}

/// `thresholds:` — summary score → measurement phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsConfig {
    #[serde(default, deserialize_with = "number_or_string")]
    pass: Option<f64>,
    #[serde(default, deserialize_with = "number_or_string")]
    marginal: Option<f64>,
}

/// `queries:` of one metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Queries {
    baseline: String,
    canary: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    prometheus: Option<PrometheusConfig>,
    #[serde(default)]
    lookback: Option<String>,
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    thresholds: Option<ThresholdsConfig>,
    metrics: Vec<serde_json::Map<String, Json>>,
}

/// One judged metric: its name (also its group), its two queries, weight and judge options.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedMetric {
    /// The metric's name in the judgement.
    pub name: String,
    /// PromQL for the baseline sample.
    pub baseline_query: String,
    /// PromQL for the canary sample.
    pub canary_query: String,
    /// Without Prometheus: the `davy/scrape` configurations of the baseline and the canary.
    pub scrape: Option<(Json, Json)>,
    /// Group weight in percent; `None` shares what the explicit weights leave of 100.
    pub weight: Option<f64>,
    /// How the metric is classified.
    pub config: MetricConfig,
}

/// The parsed plugin configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeConfig {
    /// Prometheus base URL; empty when the samples are scraped from the pods.
    pub address: String,
    /// Timeout of each query.
    pub timeout: Duration,
    /// `None`: the metric's `interval`, else [`DEFAULT_LOOKBACK`].
    pub lookback: Option<Duration>,
    /// Resolution of the range queries.
    pub step: Duration,
    /// Score thresholds.
    pub thresholds: Thresholds,
    /// The metrics to judge.
    pub metrics: Vec<JudgedMetric>,
}

fn config_error(message: impl std::fmt::Display) -> ProviderError {
    ProviderError::Config(format!("{PLUGIN_NAME}: {message}"))
}

fn duration_field(name: &str, text: Option<&str>) -> Result<Option<Duration>, ProviderError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => match parse_go_duration(t) {
            Ok(d) if !d.is_zero() => Ok(Some(d)),
            Ok(_) => Err(config_error(format!("{name} must be positive"))),
            Err(e) => Err(config_error(format!("invalid {name}: {e}"))),
        },
    }
}

/// Parses and checks the plugin configuration (after `{{args.*}}` substitution).
pub fn parse_config(config: &Json) -> Result<JudgeConfig, ProviderError> {
    let raw: RawConfig = serde_json::from_value(config.clone()).map_err(config_error)?;
    let scraped = raw.prometheus.is_none();
    let (address, timeout) = match &raw.prometheus {
        Some(p) => (p.address.clone(), p.timeout),
        None => (String::new(), None),
    };
    if !scraped && address.trim().is_empty() {
        return Err(config_error("prometheus.address is required"));
    }
    let timeout = match timeout {
        None => 30.0,
        Some(t) if t.is_finite() && t > 0.0 => t,
        Some(t) => {
            return Err(config_error(format!(
                "prometheus.timeout {t} must be positive"
            )));
        }
    };
    let defaults = Thresholds {
        pass: 75.0,
        marginal: 50.0,
    };
    let thresholds = match raw.thresholds {
        None => defaults,
        Some(t) => Thresholds {
            pass: t.pass.unwrap_or(defaults.pass),
            marginal: t.marginal.unwrap_or(defaults.marginal),
        },
    };
    if thresholds.marginal > thresholds.pass {
        return Err(config_error(format!(
            "thresholds.marginal ({}) is above thresholds.pass ({})",
            thresholds.marginal, thresholds.pass
        )));
    }
    if raw.metrics.is_empty() {
        return Err(config_error("metrics: at least one metric is required"));
    }
    let known: Vec<String> = match serde_json::to_value(MetricConfig::default()) {
        Ok(Json::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut metrics: Vec<JudgedMetric> = Vec::new();
    for (index, entry) in raw.metrics.iter().enumerate() {
        let name = entry
            .get("name")
            .and_then(Json::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| config_error(format!("metrics[{index}]: name is required")))?
            .to_string();
        let what = |m: &str| config_error(format!("metric {name:?}: {m}"));
        if metrics.iter().any(|m| m.name == name) {
            return Err(what("duplicate name"));
        }
        let mut options = serde_json::Map::new();
        for (key, value) in entry {
            if PROVIDER_KEYS.contains(&key.as_str()) {
                continue;
            }
            if !known.contains(key) {
                return Err(what(&format!("unknown field {key:?}")));
            }
            options.insert(key.clone(), value.clone());
        }
        let (queries, scrape) = if scraped {
            let scope = |name: &str| {
                entry
                    .get("scrape")
                    .and_then(|s| s.get(name))
                    .filter(|s| s.is_object())
                    .cloned()
                    .ok_or_else(|| {
                        what("without prometheus, scrape.baseline and scrape.canary are required")
                    })
            };
            let pair = (scope("baseline")?, scope("canary")?);
            let none = Queries {
                baseline: String::new(),
                canary: String::new(),
            };
            (none, Some(pair))
        } else {
            let queries: Queries = entry
                .get("queries")
                .cloned()
                .ok_or_else(|| what("queries.baseline and queries.canary are required"))
                .and_then(|q| {
                    serde_json::from_value(q).map_err(|e| what(&format!("queries: {e}")))
                })?;
            (queries, None)
        };
        #[derive(Deserialize)]
        struct Weight(#[serde(deserialize_with = "number_or_string")] Option<f64>);
        let weight = match entry.get("weight") {
            None => None,
            Some(w) => serde_json::from_value::<Weight>(w.clone())
                .map_err(|e| what(&format!("weight: {e}")))?
                .0
                .filter(|w| w.is_finite() && *w >= 0.0)
                .map(Some)
                .ok_or_else(|| what("weight must be a number ≥ 0"))?,
        };
        let config: MetricConfig =
            serde_json::from_value(Json::Object(options)).map_err(|e| what(&e.to_string()))?;
        metrics.push(JudgedMetric {
            name,
            baseline_query: queries.baseline,
            canary_query: queries.canary,
            scrape,
            weight,
            config,
        });
    }
    Ok(JudgeConfig {
        address,
        timeout: Duration::from_secs_f64(timeout),
        lookback: duration_field("lookback", raw.lookback.as_deref())?,
        step: duration_field("step", raw.step.as_deref())?.unwrap_or(DEFAULT_STEP),
        thresholds,
        metrics,
    })
}

/// Why a range query gave no samples to judge.
#[derive(Debug, Error)]
pub enum SampleError {
    /// The query failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The answer is not a range vector.
    #[error("expected a range vector (matrix), got {0:?}")]
    NotMatrix(String),
    /// A sample value is not a number.
    #[error("sample value {0:?} is not a number")]
    NotANumber(String),
    /// The query matched nothing.
    #[error("the query returned no samples")]
    Empty,
}

/// A failed fetch of one side (baseline or canary) of one metric.
#[derive(Debug, Error)]
#[error("metric {metric:?}, {scope} query: {cause}")]
pub struct FetchError {
    /// The metric's name.
    metric: String,
    /// `baseline` or `canary`.
    scope: &'static str,
    /// What went wrong.
    cause: SampleError,
}

/// Every sample of every series of a range-query answer (`data` of the API envelope). PromQL
/// infinities (x/0) become NaN so the metric's NaN strategy decides about them. `Err` when the
/// answer holds no sample at all: in Prometheus that means the query matched nothing (a wrong
/// label, a hash with no pods yet), not "no traffic" — 0/0 still yields NaN samples.
pub fn range_samples(data: &Json) -> Result<Vec<f64>, SampleError> {
    let kind = data.get("resultType").and_then(Json::as_str).unwrap_or("");
    if kind != "matrix" {
        return Err(SampleError::NotMatrix(kind.to_string()));
    }
    let mut samples = Vec::new();
    for series in data
        .get("result")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        for point in series
            .get("values")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let text = point.get(1).and_then(Json::as_str).unwrap_or("");
            let value = text
                .parse::<f64>()
                .map_err(|_| SampleError::NotANumber(text.to_string()))?;
            samples.push(if value.is_finite() { value } else { f64::NAN });
        }
    }
    if samples.is_empty() {
        return Err(SampleError::Empty);
    }
    Ok(samples)
}

/// The measurement phase of a summary score (Kayenta provider: ≥ pass Successful, ≥ marginal
/// Inconclusive, else Failed).
pub fn phase_of_score(score: f64, thresholds: Thresholds) -> AnalysisPhase {
    match classify_score(score, thresholds) {
        ScoreClassification::Pass => AnalysisPhase::Successful,
        ScoreClassification::Marginal => AnalysisPhase::Inconclusive,
        ScoreClassification::Fail => AnalysisPhase::Failed,
    }
}

/// Judges every metric's samples (`(baseline, canary)` in config order) and scores them.
pub fn judge_all(
    config: &JudgeConfig,
    samples: &[(Vec<f64>, Vec<f64>)],
) -> (Vec<MetricJudgement>, Scorecard) {
    let judgements: Vec<MetricJudgement> = config
        .metrics
        .iter()
        .zip(samples)
        .map(|(m, (baseline, canary))| classify(baseline, canary, &m.config))
        .collect();
    let scored: Vec<ScoredMetric> = config
        .metrics
        .iter()
        .zip(&judgements)
        .map(|(m, j)| ScoredMetric::new(&m.name, std::slice::from_ref(&m.name), m.config.muted, j))
        .collect();
    let weights: BTreeMap<String, f64> = config
        .metrics
        .iter()
        .filter_map(|m| m.weight.map(|w| (m.name.clone(), w)))
        .collect();
    let card = score(&scored, &weights, config.thresholds);
    (judgements, card)
}

fn number(value: f64) -> String {
    format_sample_value(value)
}

/// Completes `measurement` from the judgements: value = score, phase by the thresholds,
/// metadata `score`, `classification`, `reason` and per metric `<name>.classification`,
/// `.reason`, `.pValue`, `.estimate`, `.ciLow`, `.ciHigh`, `.meanRatio`, `.cles`,
/// `.baselineCount`, `.canaryCount` (the numbers only when computed). A non-Successful
/// measurement's message says why.
pub fn complete(
    mut measurement: Measurement,
    config: &JudgeConfig,
    judgements: &[MetricJudgement],
    card: &Scorecard,
) -> Measurement {
    measurement.phase = phase_of_score(card.score, config.thresholds);
    measurement.value = number(card.score);
    let meta = &mut measurement.metadata;
    meta.insert("score".into(), number(card.score));
    meta.insert(
        "classification".into(),
        format!("{:?}", card.classification),
    );
    if let Some(reason) = &card.reason {
        meta.insert("reason".into(), reason.clone());
    }
    for (m, j) in config.metrics.iter().zip(judgements) {
        let key = |field: &str| format!("{}.{field}", m.name);
        meta.insert(key("classification"), j.classification.as_str().into());
        if !j.reason.is_empty() {
            meta.insert(key("reason"), j.reason.clone());
        }
        if let Some(s) = &j.statistics {
            meta.insert(key("pValue"), number(s.p_value));
            meta.insert(key("estimate"), number(s.estimate));
            meta.insert(key("ciLow"), number(s.ci_low));
            meta.insert(key("ciHigh"), number(s.ci_high));
        }
        if let Some(r) = j.mean_ratio {
            meta.insert(key("meanRatio"), number(r));
        }
        if let Some(c) = j.cles {
            meta.insert(key("cles"), number(c));
        }
        let count = |d: &Option<crate::analysis::stats::transform::Descriptive>| {
            d.as_ref().map_or(0, |d| d.count).to_string()
        };
        meta.insert(key("baselineCount"), count(&j.baseline));
        meta.insert(key("canaryCount"), count(&j.canary));
    }
    if measurement.phase != AnalysisPhase::Successful {
        let flagged: Vec<String> = config
            .metrics
            .iter()
            .zip(judgements)
            .filter(|(m, j)| !m.config.muted && j.classification != Classification::Pass)
            .map(|(m, j)| format!("{} {}", m.name, j.classification.as_str()))
            .collect();
        let mut message = format!("score {}", number(card.score));
        if let Some(reason) = &card.reason {
            message.push_str(&format!(" ({reason})"));
        }
        if !flagged.is_empty() {
            message.push_str(&format!(": {}", flagged.join(", ")));
        }
        measurement.message = message;
    }
    measurement
}

/// One scope's query of one metric.
#[derive(Debug, Clone)]
struct ScopeQuery {
    metric: String,
    scope: &'static str,
    provider: PrometheusProvider,
}

/// One side's per-step values (`None`: NaN, which JSON cannot hold).
pub type StepValues = Vec<Option<f64>>;

/// The series a scrape-sourced measurement has gathered so far (stored in its metadata).
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct ScrapeSeries {
    /// When the last snapshots were taken (Unix seconds).
    pub at: f64,
    /// The last snapshots, `(baseline, canary)` per metric.
    last: Vec<(Snapshot, Snapshot)>,
    /// The per-step values so far, `(baseline, canary)` per metric (`None`: NaN).
    pub samples: Vec<(StepValues, StepValues)>,
}

/// How many per-step values a scrape-sourced judgement needs: `lookback / step`, at least 2.
pub fn scrape_intervals(lookback: Duration, step: Duration) -> usize {
    let steps = lookback.as_secs_f64() / step.as_secs_f64().max(1e-3);
    (steps.round() as usize).max(2)
}

/// The `davy/judge` provider.
pub struct JudgeProvider {
    config: JudgeConfig,
    /// `(baseline, canary)` per metric, in config order (Prometheus source).
    queries: Vec<(ScopeQuery, ScopeQuery)>,
    /// `(baseline, canary)` per metric, in config order (scrape source).
    scrapes: Vec<(ScrapeProvider, ScrapeProvider)>,
}

impl JudgeProvider {
    /// Parses the configuration and builds one Prometheus client per query.
    pub fn new(config: &Json) -> Result<JudgeProvider, ProviderError> {
        Self::with_pods(config, None)
    }

    /// As [`JudgeProvider::new`], with the pod lister scrape-sourced scopes find pods with.
    pub fn with_pods(
        config: &Json,
        pods: Option<Arc<dyn PodLister>>,
    ) -> Result<JudgeProvider, ProviderError> {
        let config = parse_config(config)?;
        if config.address.is_empty() {
            let scope = |metric: &JudgedMetric, name: &str, spec: &Json| {
                let mut spec = spec.clone();
                // The window is the step between snapshots; `rate` insists on one.
                if let Some(map) = spec.as_object_mut() {
                    map.entry("window")
                        .or_insert_with(|| Json::String("1s".into()));
                }
                ScrapeProvider::new(&spec, pods.clone()).map_err(|e| {
                    config_error(format!("metric {:?}, scrape.{name}: {e}", metric.name))
                })
            };
            let scrapes = config
                .metrics
                .iter()
                .map(|m| {
                    let (b, c) = m.scrape.clone().unwrap_or_default();
                    Ok((scope(m, "baseline", &b)?, scope(m, "canary", &c)?))
                })
                .collect::<Result<Vec<_>, ProviderError>>()?;
            return Ok(JudgeProvider {
                config,
                queries: Vec::new(),
                scrapes,
            });
        }
        let build = |metric: &JudgedMetric, scope: &'static str, query: &str| {
            let spec = PrometheusMetric {
                address: Some(config.address.clone()),
                query: Some(query.to_string()),
                timeout: Some(config.timeout.as_secs().max(1) as i64),
                ..PrometheusMetric::default()
            };
            PrometheusProvider::new(&spec, None)
                .map(|provider| ScopeQuery {
                    metric: metric.name.clone(),
                    scope,
                    provider,
                })
                .map_err(config_error)
        };
        let queries = config
            .metrics
            .iter()
            .map(|m| {
                Ok((
                    build(m, "baseline", &m.baseline_query)?,
                    build(m, "canary", &m.canary_query)?,
                ))
            })
            .collect::<Result<Vec<_>, ProviderError>>()?;
        Ok(JudgeProvider {
            config,
            queries,
            scrapes: Vec::new(),
        })
    }

    /// Snapshots of every scope, `(baseline, canary)` per metric.
    async fn snapshots(&self, ctx: &MeasureContext) -> Result<Vec<(Snapshot, Snapshot)>, String> {
        let all = self
            .scrapes
            .iter()
            .zip(&self.config.metrics)
            .map(|((b, c), m)| async move {
                let (before, after) = futures::join!(b.snapshot(ctx), c.snapshot(ctx));
                let name = &m.name;
                Ok::<_, String>((
                    before.map_err(|e| format!("metric {name:?}, baseline scrape: {e}"))?,
                    after.map_err(|e| format!("metric {name:?}, canary scrape: {e}"))?,
                ))
            });
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for result in join_all(all).await {
            match result {
                Ok(pair) => out.push(pair),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors.join("; "))
        }
    }

    fn seconds(ts: Timestamp) -> f64 {
        ts.as_second() as f64 + f64::from(ts.subsec_nanosecond()) / 1e9
    }

    /// Stores `series` in the measurement and asks to be resumed one step later.
    fn keep(
        &self,
        mut measurement: Measurement,
        ctx: &MeasureContext,
        series: &ScrapeSeries,
    ) -> Measurement {
        match serde_json::to_string(series) {
            Ok(text) => {
                measurement.metadata.insert(SCRAPE_STATE.to_string(), text);
                measurement.resume_at = Some(Time(schedule_add(ctx.now, self.config.step)));
                measurement
            }
            Err(e) => errored(measurement, format!("cannot store the scraped series: {e}")),
        }
    }

    async fn scrape_start(&self, ctx: &MeasureContext) -> Measurement {
        let measurement = started(ctx);
        match self.snapshots(ctx).await {
            Ok(last) => {
                let series = ScrapeSeries {
                    at: Self::seconds(ctx.now),
                    samples: vec![(Vec::new(), Vec::new()); last.len()],
                    last,
                };
                self.keep(measurement, ctx, &series)
            }
            Err(e) => errored(measurement, e),
        }
    }

    async fn scrape_resume(
        &self,
        ctx: &MeasureContext,
        metric: &Metric,
        mut measurement: Measurement,
    ) -> Measurement {
        let Some(text) = measurement.metadata.remove(SCRAPE_STATE) else {
            return errored(measurement, "the scraped series is missing");
        };
        let mut series: ScrapeSeries = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => return errored(measurement, format!("unreadable scraped series: {e}")),
        };
        let now = match self.snapshots(ctx).await {
            Ok(now) => now,
            Err(e) => return errored(measurement, e),
        };
        let elapsed = Self::seconds(ctx.now) - series.at;
        let finite = |v: f64| v.is_finite().then_some(v);
        for (((b, c), (before, after)), (bs, cs)) in self
            .scrapes
            .iter()
            .zip(series.last.iter().zip(&now))
            .zip(series.samples.iter_mut())
        {
            bs.push(finite(b.compute(Some(&before.0), &after.0, elapsed)));
            cs.push(finite(c.compute(Some(&before.1), &after.1, elapsed)));
        }
        series.last = now;
        series.at = Self::seconds(ctx.now);
        let gathered = series.samples.first().map_or(0, |(b, _)| b.len());
        if gathered < scrape_intervals(self.lookback(metric), self.config.step) {
            return self.keep(measurement, ctx, &series);
        }
        measurement.resume_at = None;
        let nan = |v: &StepValues| v.iter().map(|x| x.unwrap_or(f64::NAN)).collect();
        let samples: Vec<(Vec<f64>, Vec<f64>)> = series
            .samples
            .iter()
            .map(|(b, c)| (nan(b), nan(c)))
            .collect();
        let text = |v: &Vec<f64>| v.iter().map(|x| number(*x)).collect::<Vec<_>>().join(",");
        for (m, (b, c)) in self.config.metrics.iter().zip(&samples) {
            measurement
                .metadata
                .insert(format!("{}.baselineSamples", m.name), text(b));
            measurement
                .metadata
                .insert(format!("{}.canarySamples", m.name), text(c));
        }
        let (judgements, card) = judge_all(&self.config, &samples);
        complete(measurement, &self.config, &judgements, &card)
    }

    /// The window: `lookback`, else the metric's interval, else [`DEFAULT_LOOKBACK`].
    fn lookback(&self, metric: &Metric) -> Duration {
        self.config
            .lookback
            .or_else(|| {
                metric
                    .interval
                    .as_ref()
                    .filter(|i| !i.is_empty())
                    .and_then(|i| i.to_go_duration().ok())
                    .filter(|d| !d.is_zero())
            })
            .unwrap_or(DEFAULT_LOOKBACK)
    }

    async fn fetch(
        &self,
        q: &ScopeQuery,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<f64>, FetchError> {
        let answer = match q.provider.range(start, end, self.config.step).await {
            Ok(answer) => range_samples(&answer.data),
            Err(error) => Err(SampleError::Query(error)),
        };
        answer.map_err(|cause| FetchError {
            metric: q.metric.clone(),
            scope: q.scope,
            cause,
        })
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let measurement = started(ctx);
        let end = ctx.now;
        let lookback =
            SignedDuration::try_from(self.lookback(metric)).unwrap_or(SignedDuration::ZERO);
        let start = end.checked_sub(lookback).unwrap_or(end);
        let fetches = self.queries.iter().map(|(b, c)| async move {
            let (baseline, canary) =
                futures::join!(self.fetch(b, start, end), self.fetch(c, start, end));
            Ok::<_, FetchError>((baseline?, canary?))
        });
        let mut samples = Vec::with_capacity(self.queries.len());
        let mut errors = Vec::new();
        for result in join_all(fetches).await {
            match result {
                Ok(pair) => samples.push(pair),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return errored(measurement, errors.join("; "));
        }
        let (judgements, card) = judge_all(&self.config, &samples);
        complete(measurement, &self.config, &judgements, &card)
    }
}

impl Provider for JudgeProvider {
    fn kind(&self) -> &'static str {
        "DavyJudge"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        if self.scrapes.is_empty() {
            Box::pin(self.measure(ctx, metric))
        } else {
            Box::pin(self.scrape_start(ctx))
        }
    }

    fn resume<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        if self.scrapes.is_empty() {
            Box::pin(async move { measurement })
        } else {
            Box::pin(self.scrape_resume(ctx, metric, measurement))
        }
    }

    /// Ends a scraped series early without a verdict (the run reports `Metric Terminated`).
    fn terminate<'a>(
        &'a self,
        _ctx: &'a MeasureContext,
        _metric: &'a Metric,
        mut measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            if measurement.metadata.remove(SCRAPE_STATE).is_some() {
                measurement.resume_at = None;
                measurement.phase = AnalysisPhase::Successful;
            }
            measurement
        })
    }
}

/// The factory registered under [`PLUGIN_NAME`]; `pods` lets scrape-sourced scopes find the
/// pods of a label selector.
pub fn factory(pods: Option<Arc<dyn PodLister>>) -> PluginFactory {
    Arc::new(move |config| {
        JudgeProvider::with_pods(config, pods.clone()).map(|p| Box::new(p) as Box<dyn Provider>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Json {
        json!({
            "prometheus": {"address": "http://127.0.0.1:9090", "timeout": "5"},
            "lookback": "20s",
            "step": "1s",
            "thresholds": {"pass": 95, "marginal": 75},
            "metrics": [
                {"name": "errors", "queries": {"baseline": "b", "canary": "c"},
                 "weight": 70, "direction": "increase", "critical": true},
                {"name": "latency", "queries": {"baseline": "b2", "canary": "c2"}}
            ]
        })
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            pass: 95.0,
            marginal: 75.0,
        }
    }

    #[test]
    fn score_to_phase() {
        let cases = [
            (100.0, AnalysisPhase::Successful),
            (95.0, AnalysisPhase::Successful),
            (94.99, AnalysisPhase::Inconclusive),
            (75.0, AnalysisPhase::Inconclusive),
            (74.99, AnalysisPhase::Failed),
            (0.0, AnalysisPhase::Failed),
        ];
        for (score, phase) in cases {
            assert_eq!(phase_of_score(score, thresholds()), phase, "score {score}");
        }
    }

    #[test]
    fn parses_the_documented_config() {
        let c = parse_config(&config()).unwrap();
        assert_eq!(c.address, "http://127.0.0.1:9090");
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.lookback, Some(Duration::from_secs(20)));
        assert_eq!(c.step, Duration::from_secs(1));
        assert_eq!(c.thresholds, thresholds());
        assert_eq!(c.metrics.len(), 2);
        assert_eq!(c.metrics[0].weight, Some(70.0));
        assert_eq!(c.metrics[0].baseline_query, "b");
        assert_eq!(c.metrics[0].canary_query, "c");
        assert!(c.metrics[0].config.critical);
        assert_eq!(c.metrics[1].weight, None);
        assert_eq!(c.metrics[1].config, MetricConfig::default());
    }

    #[test]
    fn without_prometheus_each_scope_is_a_scrape_value() {
        let scope = |hash: &str| {
            json!({"pods": {"selector": format!("rollouts-pod-template-hash={hash}")},
                   "ratio": {"numerator": "http_requests_total{code=~\"5..\"}",
                             "denominator": "http_requests_total"}})
        };
        let config = json!({
            "lookback": "60s", "step": "2s",
            "metrics": [{"name": "error-rate", "direction": "increase",
                         "scrape": {"baseline": scope("b"), "canary": scope("c")}}]
        });
        let c = parse_config(&config).unwrap();
        assert_eq!(c.address, "");
        let (b, _) = c.metrics[0].scrape.clone().unwrap();
        assert_eq!(b["pods"]["selector"], "rollouts-pod-template-hash=b");
        let provider = JudgeProvider::with_pods(&config, None).unwrap();
        assert_eq!(provider.scrapes.len(), 1);
        assert!(provider.queries.is_empty());
        assert_eq!(
            scrape_intervals(Duration::from_secs(60), Duration::from_secs(2)),
            30
        );
        assert_eq!(
            scrape_intervals(Duration::from_secs(1), Duration::from_secs(2)),
            2
        );
        let errors = [
            (
                json!({"metrics": [{"name": "m", "scrape": {"baseline": scope("b")}}]}),
                "davy/judge: metric \"m\": without prometheus, scrape.baseline and scrape.canary are required",
            ),
            (
                json!({"metrics": [{"name": "m", "queries": {"baseline": "b", "canary": "c"}}]}),
                "davy/judge: metric \"m\": without prometheus, scrape.baseline and scrape.canary are required",
            ),
        ];
        for (config, message) in errors {
            assert_eq!(parse_config(&config).unwrap_err().to_string(), message);
        }
        let bad = json!({"metrics": [{"name": "m", "scrape": {
            "baseline": {"pods": {"selector": "a=b"}}, "canary": scope("c")}}]});
        let message = JudgeProvider::with_pods(&bad, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            message.contains("metric \"m\", scrape.baseline"),
            "{message}"
        );
    }

    #[test]
    fn defaults_and_config_errors() {
        let c = parse_config(&json!({
            "prometheus": {"address": "http://p:9090"},
            "metrics": [{"name": "m", "queries": {"baseline": "b", "canary": "c"}}]
        }))
        .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.lookback, None);
        assert_eq!(c.step, DEFAULT_STEP);
        assert_eq!(
            c.thresholds,
            Thresholds {
                pass: 75.0,
                marginal: 50.0
            }
        );
        // One threshold given, the other defaulted; numbers may come as strings (arguments).
        let mut partial = config();
        partial["thresholds"] = json!({"pass": "90"});
        partial["metrics"][0]["weight"] = json!("60");
        let c = parse_config(&partial).unwrap();
        assert_eq!(
            c.thresholds,
            Thresholds {
                pass: 90.0,
                marginal: 50.0
            }
        );
        assert_eq!(c.metrics[0].weight, Some(60.0));
        let err = |mutate: &dyn Fn(&mut Json)| {
            let mut c = config();
            mutate(&mut c);
            parse_config(&c).unwrap_err().to_string()
        };
        assert_eq!(
            err(&|c| c["metrics"][0]["colour"] = json!("red")),
            "davy/judge: metric \"errors\": unknown field \"colour\""
        );
        assert_eq!(
            err(&|c| c["metrics"][1]["name"] = json!("errors")),
            "davy/judge: metric \"errors\": duplicate name"
        );
        assert_eq!(
            err(&|c| c["step"] = json!("0s")),
            "davy/judge: step must be positive"
        );
        assert_eq!(
            err(&|c| c["prometheus"]["address"] = json!("")),
            "davy/judge: prometheus.address is required"
        );
        assert_eq!(
            err(&|c| c["thresholds"]["marginal"] = json!(99)),
            "davy/judge: thresholds.marginal (99) is above thresholds.pass (95)"
        );
        assert_eq!(
            err(&|c| c["metrics"] = json!([])),
            "davy/judge: metrics: at least one metric is required"
        );
        assert!(
            err(&|c| c["metrics"][0]["queries"] = json!({"baseline": "b"}))
                .starts_with("davy/judge: metric \"errors\": queries: missing field `canary`"),
        );
    }

    #[test]
    fn samples_of_every_series_with_infinities_as_nan() {
        let data = json!({"resultType": "matrix", "result": [
            {"metric": {"a": "1"}, "values": [[1, "1.5"], [2, "NaN"]]},
            {"metric": {"a": "2"}, "values": [[1, "+Inf"], [2, "2"]]}
        ]});
        let s = range_samples(&data).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0], 1.5);
        assert!(s[1].is_nan());
        assert!(s[2].is_nan());
        assert_eq!(s[3], 2.0);
        let empty = json!({"resultType": "matrix", "result": []});
        assert_eq!(
            range_samples(&empty).unwrap_err().to_string(),
            "the query returned no samples"
        );
        let vector = json!({"resultType": "vector", "result": []});
        assert_eq!(
            range_samples(&vector).unwrap_err().to_string(),
            "expected a range vector (matrix), got \"vector\""
        );
    }

    fn baseline() -> Vec<f64> {
        vec![
            0.98, 1.05, 0.91, 1.12, 1.00, 0.95, 1.08, 0.89, 1.03, 0.97, 1.10, 0.93, 1.01, 1.06,
            0.99, 0.92, 1.04, 1.09, 0.96, 1.02,
        ]
    }

    #[test]
    fn a_critical_high_metric_fails_with_its_numbers_in_metadata() {
        let c = parse_config(&config()).unwrap();
        let canary: Vec<f64> = baseline().iter().map(|v| v * 1.3).collect();
        let samples = vec![(baseline(), canary), (baseline(), baseline())];
        let (judgements, card) = judge_all(&c, &samples);
        assert_eq!(judgements[0].classification, Classification::High);
        assert_eq!(judgements[1].classification, Classification::Pass);
        assert_eq!(card.score, 0.0);
        let m = complete(Measurement::default(), &c, &judgements, &card);
        assert_eq!(m.phase, AnalysisPhase::Failed);
        assert_eq!(m.value, "0");
        assert_eq!(
            m.message,
            "score 0 (Canary Failed: critical metric(s) errors): errors High"
        );
        assert_eq!(m.metadata["errors.classification"], "High");
        assert_eq!(m.metadata["latency.classification"], "Pass");
        assert_eq!(m.metadata["errors.baselineCount"], "20");
        assert_eq!(m.metadata["classification"], "Fail");
        let stats = judgements[0].statistics.as_ref().unwrap();
        assert_eq!(
            m.metadata["errors.pValue"],
            format_sample_value(stats.p_value)
        );
        assert_eq!(
            m.metadata["errors.ciLow"],
            format_sample_value(stats.ci_low)
        );
        assert_eq!(
            m.metadata["errors.ciHigh"],
            format_sample_value(stats.ci_high)
        );
        assert_eq!(
            m.metadata["errors.meanRatio"],
            format_sample_value(judgements[0].mean_ratio.unwrap())
        );
    }

    #[test]
    fn a_non_critical_high_metric_weighs_the_score_down() {
        let mut raw = config();
        raw["metrics"][0]["critical"] = json!(false);
        let c = parse_config(&raw).unwrap();
        let canary: Vec<f64> = baseline().iter().map(|v| v * 1.3).collect();
        // errors (weight 70) High, latency (the remaining 30) Pass: score 30 → Failed.
        let (j, card) = judge_all(
            &c,
            &[(baseline(), canary.clone()), (baseline(), baseline())],
        );
        let m = complete(Measurement::default(), &c, &j, &card);
        assert_eq!((m.phase, m.value.as_str()), (AnalysisPhase::Failed, "30"));
        assert_eq!(m.message, "score 30: errors High");
        // The other way round: latency High, errors Pass: score 70 → Failed below 75.
        let (j, card) = judge_all(&c, &[(baseline(), baseline()), (baseline(), canary)]);
        let m = complete(Measurement::default(), &c, &j, &card);
        assert_eq!((m.phase, m.value.as_str()), (AnalysisPhase::Failed, "70"));
        // With marginal 70 the same score is Inconclusive.
        raw["thresholds"]["marginal"] = json!(70);
        let c = parse_config(&raw).unwrap();
        let m = complete(Measurement::default(), &c, &j, &card);
        assert_eq!(m.phase, AnalysisPhase::Inconclusive);
        // Equal samples: 100, Successful, no message.
        let (j, card) = judge_all(&c, &[(baseline(), baseline()), (baseline(), baseline())]);
        let m = complete(Measurement::default(), &c, &j, &card);
        assert_eq!(
            (m.phase, m.value.as_str()),
            (AnalysisPhase::Successful, "100")
        );
        assert_eq!(m.message, "");
    }
}
