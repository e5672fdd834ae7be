//! Metric providers behind one trait ([`Provider`]: run / resume / terminate /
//! garbage-collect), a [`Registry`] that picks the provider of a metric, and the helpers they
//! share (measurement constructors, condition evaluation, HTTP clients).
//!
//! Providers are the executors of the analysis layer: they do I/O and may take time, but
//! they never decide phases beyond one measurement. The time of a measurement comes from the
//! [`MeasureContext`], so backtests can run them on a virtual clock.

pub mod alertmanager;
pub mod cloudwatch;
pub mod datadog;
pub mod env;
pub mod flux_csv;
pub mod go_text;
pub mod graphite;
pub mod http;
pub mod influxdb;
pub mod job;
pub mod judge;
pub mod kayenta;
pub mod kube_jsonpath;
pub mod newrelic;
pub mod prometheus;
pub mod prometheus_result;
pub mod scrape;
pub mod scrape_query;
pub mod secrets;
pub mod skywalking;
pub mod wavefront;
pub mod web;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use thiserror::Error;

use crate::api::{AnalysisPhase, Measurement, Metric, MetricResult};
use crate::expr::{MetricValue, Verdict, evaluate_result_at};

/// Why a provider could not be built for a metric, or could not garbage-collect. The text
/// becomes the measurement message (upstream: provider construction failure ⇒ Error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProviderError {
    /// A provider field is unusable (`prometheus address is not configured`, a bad URL...).
    #[error("{0}")]
    Config(String),
    /// The metric names a provider Davy does not run (datadog, kayenta, an unknown plugin...).
    #[error("{0}")]
    Unsupported(String),
    /// A call to an external system failed.
    #[error("{0}")]
    Io(String),
}

impl ProviderError {
    /// A stable name for structured logs and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            ProviderError::Config(_) => "Config",
            ProviderError::Unsupported(_) => "Unsupported",
            ProviderError::Io(_) => "Io",
        }
    }
}

/// What a provider knows about the run it measures for.
#[derive(Debug, Clone)]
pub struct MeasureContext {
    /// The AnalysisRun's name, namespace and UID (job names and labels).
    pub run_name: String,
    /// The AnalysisRun's namespace.
    pub namespace: String,
    /// The AnalysisRun's UID.
    pub run_uid: String,
    /// The metric's result so far (counters for job numbering), if any.
    pub result: Option<MetricResult>,
    /// The measurement time: `startedAt` of a new measurement, `now()` in range queries and
    /// conditions.
    pub now: Timestamp,
    /// The run's `status.startedAt`, if it has started (Kayenta's `lookback`).
    pub run_started_at: Option<Timestamp>,
}

/// One metric provider.
///
/// `run` starts a measurement: synchronous providers return it complete (they may leave
/// `finishedAt` to the caller, which stamps its clock), asynchronous ones return it `Running`
/// with a `resumeAt`. `resume` polls an in-flight one; `terminate` stops it when the run
/// terminates. Errors are measurements with phase `Error` and a message, never `Err`.
pub trait Provider: Send + Sync {
    /// Upstream's provider type name (`Prometheus`, `WebMetric`, `Job`, ...).
    fn kind(&self) -> &'static str;

    /// Metadata stored on the metric result when it is created (`ResolvedPrometheusQuery`).
    fn metadata(&self, _metric: &Metric) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// Takes (or starts) a measurement.
    fn run<'a>(&'a self, ctx: &'a MeasureContext, metric: &'a Metric)
    -> BoxFuture<'a, Measurement>;

    /// Polls an in-flight measurement. The default returns it unchanged, as upstream's
    /// synchronous providers do.
    fn resume<'a>(
        &'a self,
        _ctx: &'a MeasureContext,
        _metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move { measurement })
    }

    /// Stops an in-flight measurement. The default returns it unchanged.
    fn terminate<'a>(
        &'a self,
        _ctx: &'a MeasureContext,
        _metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move { measurement })
    }

    /// Deletes what the provider keeps for measurements beyond the newest `limit`.
    fn garbage_collect<'a>(
        &'a self,
        _ctx: &'a MeasureContext,
        _metric: &'a Metric,
        _limit: usize,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Builds the provider of a `provider.plugin` entry from its free-form configuration.
pub type PluginFactory =
    Arc<dyn Fn(&serde_json::Value) -> Result<Box<dyn Provider>, ProviderError> + Send + Sync>;

/// Chooses the provider of a metric. Holds what providers need from outside: the Job client
/// (in a cluster), the pod lister of the scrape provider, the default Prometheus address and
/// the `provider.plugin` factories by name (`davy/scrape`, `davy/judge` and `davy/alertmanager`
/// are registered by default).
#[derive(Clone, Default)]
pub struct Registry {
    jobs: Option<Arc<dyn job::JobClient>>,
    pods: Option<Arc<dyn scrape::PodLister>>,
    prometheus_address: Option<String>,
    plugins: BTreeMap<String, PluginFactory>,
    secrets: Option<Arc<dyn secrets::SecretSource>>,
    controller_namespace: String,
    datadog_env: Option<env::DatadogEnv>,
    aws: env::AwsEnv,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("jobs", &self.jobs.is_some())
            .field("pods", &self.pods.is_some())
            .field("prometheus_address", &self.prometheus_address)
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.is_some())
            .field("controller_namespace", &self.controller_namespace)
            .field("datadog_env", &self.datadog_env.is_some())
            .field("aws", &self.aws)
            .finish()
    }
}

impl Registry {
    /// A registry without cluster access, reading its start-up configuration from the
    /// environment once here: the default Prometheus address
    /// (`ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`), the controller namespace, Datadog's `DD_*` keys
    /// and the AWS credentials of CloudWatch ([`env`]).
    pub fn new() -> Registry {
        let mut registry = Registry {
            prometheus_address: std::env::var(prometheus::ADDRESS_ENV)
                .ok()
                .filter(|a| !a.is_empty()),
            controller_namespace: env::controller_namespace(),
            datadog_env: env::DatadogEnv::from_env(),
            aws: env::AwsEnv::from_env(),
            ..Registry::default()
        };
        let pods = registry.pods.clone();
        registry
            .plugins
            .insert(scrape::PLUGIN_NAME.to_string(), scrape::factory(pods));
        registry.plugins.insert(
            alertmanager::PLUGIN_NAME.to_string(),
            alertmanager::factory(),
        );
        registry
            .plugins
            .insert(judge::PLUGIN_NAME.to_string(), judge::factory(None));
        registry
    }

    /// Runs `job` metrics through `client`.
    pub fn with_jobs(mut self, client: Arc<dyn job::JobClient>) -> Registry {
        self.jobs = Some(client);
        self
    }

    /// Lets `davy/scrape` metrics find pods by label selector.
    pub fn with_pods(mut self, lister: Arc<dyn scrape::PodLister>) -> Registry {
        self.pods = Some(lister.clone());
        self.plugins.insert(
            scrape::PLUGIN_NAME.to_string(),
            scrape::factory(Some(lister.clone())),
        );
        self.plugins
            .insert(judge::PLUGIN_NAME.to_string(), judge::factory(Some(lister)));
        self
    }

    /// Overrides the default Prometheus address (instead of the environment variable).
    pub fn with_prometheus_address(mut self, address: Option<String>) -> Registry {
        self.prometheus_address = address;
        self
    }

    /// Reads provider Secrets (`datadog`, `newrelic`, `influxdb`, `wavefront-api-tokens`)
    /// through `source`.
    pub fn with_secrets(mut self, source: Arc<dyn secrets::SecretSource>) -> Registry {
        self.secrets = Some(source);
        self
    }

    /// Whether a Secret source is set.
    pub fn has_secrets(&self) -> bool {
        self.secrets.is_some()
    }

    /// Where provider Secrets live (instead of `POD_NAMESPACE` / the service account's).
    pub fn with_controller_namespace(mut self, namespace: &str) -> Registry {
        self.controller_namespace = namespace.to_string();
        self
    }

    /// Datadog credentials standing for the `DD_*` variables (`None`: none set).
    pub fn with_datadog_env(mut self, env: Option<env::DatadogEnv>) -> Registry {
        self.datadog_env = env;
        self
    }

    /// AWS credentials, region and endpoint standing for the `AWS_*` variables.
    pub fn with_aws(mut self, aws: env::AwsEnv) -> Registry {
        self.aws = aws;
        self
    }

    /// The default Prometheus address, if any.
    pub fn prometheus_address(&self) -> Option<&str> {
        self.prometheus_address.as_deref()
    }

    /// Registers a `provider.plugin` name (e.g. `davy/judge`).
    pub fn with_plugin(mut self, name: &str, factory: PluginFactory) -> Registry {
        self.plugins.insert(name.to_string(), factory);
        self
    }

    /// The provider for `metric` (with arguments resolved), or why there is none.
    pub fn provider_for(&self, metric: &Metric) -> Result<Box<dyn Provider>, ProviderError> {
        let p = &metric.provider;
        if let Some(prom) = &p.prometheus {
            return Ok(Box::new(prometheus::PrometheusProvider::new(
                prom,
                self.prometheus_address.as_deref(),
            )?));
        }
        if let Some(web) = &p.web {
            return Ok(Box::new(web::WebProvider::new(web)?));
        }
        if p.job.is_some() {
            let client = self.jobs.clone().ok_or_else(|| {
                ProviderError::Unsupported(
                    "job metrics need a Kubernetes cluster (no Job client configured)".to_string(),
                )
            })?;
            return Ok(Box::new(job::JobProvider::new(client)));
        }
        if let Some(spec) = &p.datadog {
            return Ok(Box::new(datadog::DatadogProvider::new(
                spec,
                self.secret_reader(),
                self.datadog_env.clone(),
            )?));
        }
        if let Some(spec) = &p.new_relic {
            return Ok(Box::new(newrelic::NewRelicProvider::new(
                spec,
                self.secret_reader(),
            )));
        }
        if let Some(spec) = &p.wavefront {
            return Ok(Box::new(wavefront::WavefrontProvider::new(
                spec,
                self.secret_reader(),
            )));
        }
        if let Some(spec) = &p.influxdb {
            return Ok(Box::new(influxdb::InfluxdbProvider::new(
                spec,
                self.secret_reader(),
            )));
        }
        if let Some(spec) = &p.graphite {
            return Ok(Box::new(graphite::GraphiteProvider::new(spec)?));
        }
        if let Some(spec) = &p.skywalking {
            return Ok(Box::new(skywalking::SkyWalkingProvider::new(spec)?));
        }
        if let Some(spec) = &p.kayenta {
            return Ok(Box::new(kayenta::KayentaProvider::new(spec)?));
        }
        if let Some(spec) = &p.cloud_watch {
            return Ok(Box::new(cloudwatch::CloudWatchProvider::new(
                spec,
                self.aws.clone(),
            )?));
        }
        if let Some(plugin) = &p.plugin {
            let mut entries = plugin.iter();
            let (Some((name, config)), None) = (entries.next(), entries.next()) else {
                return Err(ProviderError::Config(
                    "exactly one plugin per metric is supported".to_string(),
                ));
            };
            let factory = self.plugins.get(name).ok_or_else(|| {
                ProviderError::Unsupported(format!("metric plugin {name:?} is not available"))
            })?;
            return factory(config);
        }
        match p.kinds().first() {
            Some(kind) => Err(ProviderError::Unsupported(format!(
                "the {kind} metric provider is not supported by Davy"
            ))),
            None => Err(ProviderError::Config("no provider specified".to_string())),
        }
    }
}

impl Registry {
    /// The Secret source and the namespace provider Secrets are read from.
    fn secret_reader(&self) -> SecretReader {
        SecretReader {
            source: self.secrets.clone(),
            controller_namespace: self.controller_namespace.clone(),
        }
    }
}

/// How a provider reads its Secret when it measures (construction is synchronous, so the read
/// happens in `run`; a failure is the measurement's error, as upstream's construction failure).
#[derive(Clone)]
pub struct SecretReader {
    source: Option<Arc<dyn secrets::SecretSource>>,
    /// The controller's namespace.
    pub controller_namespace: String,
}

impl std::fmt::Debug for SecretReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretReader")
            .field("source", &self.source.is_some())
            .field("controller_namespace", &self.controller_namespace)
            .finish()
    }
}

impl SecretReader {
    /// Every key of Secret `name` in `namespace`.
    pub async fn read(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, secrets::SecretError> {
        match &self.source {
            Some(source) => source.data(namespace, name).await,
            None => Err(secrets::SecretError::NotFound(name.to_string())),
        }
    }

    /// Every key of Secret `name` in the controller's namespace.
    pub async fn read_controller(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, secrets::SecretError> {
        self.read(&self.controller_namespace, name).await
    }

    /// Every key of the Secret a provider's `profile` names (an empty or missing profile means
    /// the provider's `default` Secret), in the controller's namespace, as upstream's
    /// newRelic and influxdb providers look theirs up.
    pub async fn read_profile(
        &self,
        profile: Option<&str>,
        default: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        let name = profile.filter(|p| !p.is_empty()).unwrap_or(default);
        self.read_controller(name).await.map_err(|e| e.to_string())
    }
}

/// A new measurement started at `ctx.now`.
pub fn started(ctx: &MeasureContext) -> Measurement {
    Measurement {
        phase: AnalysisPhase::Running,
        started_at: Some(Time(ctx.now)),
        ..Measurement::default()
    }
}

/// `measurement` marked Error with `message` (upstream `MarkMeasurementError`). `finishedAt`
/// is left to the caller, which stamps the time the measurement really ended, so the 10 s
/// error retry counts from there.
pub fn errored(mut measurement: Measurement, message: impl Into<String>) -> Measurement {
    measurement.phase = AnalysisPhase::Error;
    measurement.message = message.into();
    measurement
}

/// The measurement phase of a condition verdict.
pub fn phase_of(verdict: Verdict) -> AnalysisPhase {
    match verdict {
        Verdict::Successful => AnalysisPhase::Successful,
        Verdict::Failed => AnalysisPhase::Failed,
        Verdict::Inconclusive => AnalysisPhase::Inconclusive,
        Verdict::Error => AnalysisPhase::Error,
    }
}

/// `jiff` instant → `chrono` instant (the condition language's clock type).
pub fn chrono_time(ts: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(ts.as_second(), ts.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

/// `chrono` instant → `jiff` instant.
pub fn jiff_time(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Concludes `measurement` with `value` as the metric's conditions decide at `ctx.now`
/// (upstream `EvaluateResult`): the value text is kept unless the evaluation errs.
pub fn conclude(
    mut measurement: Measurement,
    metric: &Metric,
    result: &MetricValue,
    value: String,
    ctx: &MeasureContext,
) -> Measurement {
    let (verdict, message) = evaluate_result_at(
        result,
        metric.success_condition.as_deref().unwrap_or(""),
        metric.failure_condition.as_deref().unwrap_or(""),
        chrono_time(ctx.now),
    );
    measurement.phase = phase_of(verdict);
    if verdict == Verdict::Error {
        measurement.message = message.unwrap_or_default();
    } else {
        measurement.value = value;
    }
    measurement
}
