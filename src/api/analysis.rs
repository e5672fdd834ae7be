//! The analysis kinds (spec §4.1–§4.4): `AnalysisTemplate`, `ClusterAnalysisTemplate`
//! (cluster-scoped, same spec), `AnalysisRun`, and the `Metric` they share. Providers are in
//! `providers.rs`.
//!
//! AnalysisRun status follows upstream's Go encoding (zero values omitted), like Rollout status.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{
    AnalysisTemplateRef, DryRun, FieldRef, MeasurementRetention, is_zero, or_zero,
};
use super::duration::DurationString;
use super::int_or_string::IntOrStr;
use super::phase::{AnalysisPhase, empty_as_none};
use super::providers::MetricProvider;

/// Metrics and arguments of an analysis, namespaced.
#[skip_serializing_none]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    plural = "analysistemplates",
    namespaced,
    shortname = "at",
    derive = "PartialEq",
    doc = "AnalysisTemplate holds the template for performing canary analysis",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// Metrics to measure.
    #[serde(default, deserialize_with = "or_zero")]
    pub metrics: Vec<Metric>,
    /// Arguments; one without value or valueFrom must be supplied by the caller.
    pub args: Option<Vec<Argument>>,
    /// Metrics evaluated in dry-run mode.
    pub dry_run: Option<Vec<DryRun>>,
    /// Measurement retention rules.
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Templates whose metrics and args are merged into this one.
    pub templates: Option<Vec<AnalysisTemplateRef>>,
}

/// Spec of a ClusterAnalysisTemplate: the same fields as an AnalysisTemplate's.
///
/// A separate type only because each kind needs its own spec struct; it dereferences to
/// [`AnalysisTemplateSpec`] so code handling templates treats both kinds alike.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    plural = "clusteranalysistemplates",
    shortname = "cat",
    derive = "PartialEq",
    doc = "ClusterAnalysisTemplate holds the template for performing canary analysis",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
#[serde(transparent)]
pub struct ClusterAnalysisTemplateSpec(pub AnalysisTemplateSpec);

impl Deref for ClusterAnalysisTemplateSpec {
    type Target = AnalysisTemplateSpec;

    fn deref(&self) -> &AnalysisTemplateSpec {
        &self.0
    }
}

impl DerefMut for ClusterAnalysisTemplateSpec {
    fn deref_mut(&mut self) -> &mut AnalysisTemplateSpec {
        &mut self.0
    }
}

impl From<AnalysisTemplateSpec> for ClusterAnalysisTemplateSpec {
    fn from(spec: AnalysisTemplateSpec) -> Self {
        ClusterAnalysisTemplateSpec(spec)
    }
}

/// One metric: how often to measure, what counts as success, and where to read it.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Unique name within the run.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Time between measurements (Go duration string).
    pub interval: Option<DurationString>,
    /// Delay before the first measurement.
    pub initial_delay: Option<DurationString>,
    /// Number of measurements (see `Metric::effective_count`).
    pub count: Option<IntOrStr>,
    /// Expression deciding a successful measurement.
    pub success_condition: Option<String>,
    /// Expression deciding a failed measurement.
    pub failure_condition: Option<String>,
    /// Failed measurements tolerated (default 0; -1 disables).
    pub failure_limit: Option<IntOrStr>,
    /// Inconclusive measurements tolerated (default 0).
    pub inconclusive_limit: Option<IntOrStr>,
    /// Consecutive errors tolerated (default 4).
    pub consecutive_error_limit: Option<IntOrStr>,
    /// Consecutive successes that end the metric Successful (default 0 = off).
    pub consecutive_success_limit: Option<IntOrStr>,
    /// Where the measurement comes from; exactly one provider.
    #[serde(default, deserialize_with = "or_zero")]
    pub provider: MetricProvider,
}

/// A template argument: a value, a secret reference, a field reference, or nothing (required).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// Argument name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Literal value.
    pub value: Option<String>,
    /// Where to read the value.
    pub value_from: Option<ValueFrom>,
}

/// `valueFrom` of a template argument.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A key of a Secret in the run's namespace.
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A path into the Rollout (resolved by the Rollout, not the analysis controller).
    pub field_ref: Option<FieldRef>,
}

/// `secretKeyRef: {name, key}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Key in the Secret.
    #[serde(default, deserialize_with = "or_zero")]
    pub key: String,
}

/// An instantiation of templates: measured by the analysis controller.
#[skip_serializing_none]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisRun",
    plural = "analysisruns",
    namespaced,
    status = "AnalysisRunStatus",
    shortname = "ar",
    derive = "PartialEq",
    doc = "AnalysisRun is an instantiation of an AnalysisTemplate",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase","description":"AnalysisRun status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// Metrics, copied from the templates with `{{args.x}}` placeholders unresolved.
    #[serde(default, deserialize_with = "or_zero")]
    pub metrics: Vec<Metric>,
    /// Merged arguments.
    pub args: Option<Vec<Argument>>,
    /// Stop measuring (promotion, abort, user).
    pub terminate: Option<bool>,
    /// Metrics evaluated in dry-run mode.
    pub dry_run: Option<Vec<DryRun>>,
    /// Measurement retention rules.
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Delete the run this long after it completes.
    pub ttl_strategy: Option<TtlStrategy>,
}

/// `ttlStrategy`: seconds after completion before the run is deleted.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    /// Any completion (used when the specific one is unset).
    pub seconds_after_completion: Option<i32>,
    /// Failed runs.
    pub seconds_after_failure: Option<i32>,
    /// Successful runs.
    pub seconds_after_success: Option<i32>,
}

/// Observed state of an AnalysisRun (spec §4.4).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// Run phase; upstream's empty phase of a new run decodes as none.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub phase: Option<AnalysisPhase>,
    /// Why the run is in this phase.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
    /// One entry per metric.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub metric_results: Vec<MetricResult>,
    /// Set at the first assessment.
    pub started_at: Option<Time>,
    /// Final phases of non-dry-run metrics (omitted when all zero).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub run_summary: RunSummary,
    /// Final phases of dry-run metrics.
    pub dry_run_summary: Option<RunSummary>,
    /// Set when the run completes.
    pub completed_at: Option<Time>,
}

/// Counts of metrics by final phase.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Metrics counted.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub count: i32,
    /// Successful metrics.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub successful: i32,
    /// Failed metrics.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub failed: i32,
    /// Inconclusive metrics.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub inconclusive: i32,
    /// Errored metrics.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub error: i32,
}

/// Results of one metric: counters and the most recent measurements.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// Metric name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Metric phase.
    #[serde(default, deserialize_with = "or_zero")]
    pub phase: AnalysisPhase,
    /// Most recent measurements (10 by default).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub measurements: Vec<Measurement>,
    /// Last measurement message when the phase changed.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
    /// successful + failed + inconclusive (errors excluded).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub count: i32,
    /// Successful measurements.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub successful: i32,
    /// Failed measurements.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub failed: i32,
    /// Inconclusive measurements.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub inconclusive: i32,
    /// Errored measurements.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub error: i32,
    /// Errors in a row.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub consecutive_error: i32,
    /// Successes in a row.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub consecutive_success: i32,
    /// The metric runs in dry-run mode.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub dry_run: bool,
    /// Provider metadata (Prometheus: `ResolvedPrometheusQuery`).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub metadata: BTreeMap<String, String>,
}

/// One measurement.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// Measurement phase.
    #[serde(default, deserialize_with = "or_zero")]
    pub phase: AnalysisPhase,
    /// Message (errors, "Metric Terminated").
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
    /// Start.
    pub started_at: Option<Time>,
    /// End (unset while in flight).
    pub finished_at: Option<Time>,
    /// The measured value, rendered as text.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub value: String,
    /// Provider metadata (job name, warnings...).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub metadata: BTreeMap<String, String>,
    /// When to poll an in-flight measurement again.
    pub resume_at: Option<Time>,
}
