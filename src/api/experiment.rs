//! The `Experiment` kind: ReplicaSets run side by side for a while, with analyses
//! (created by experiment steps). Status follows upstream's Go encoding.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::analysis::Argument;
use super::canary::TemplateService;
use super::common::{AnalysisRunMetadata, DryRun, MeasurementRetention, is_zero, or_zero};
use super::duration::DurationString;
use super::phase::{AnalysisPhase, empty_as_none};
use super::rollout_status::RolloutCondition;

/// Desired state of an Experiment.
#[skip_serializing_none]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Experiment",
    plural = "experiments",
    namespaced,
    status = "ExperimentStatus",
    shortname = "exp",
    derive = "PartialEq",
    doc = "Experiment is a specification for an Experiment resource",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase","description":"Experiment status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSpec {
    /// ReplicaSets to run.
    #[serde(default, deserialize_with = "or_zero")]
    pub templates: Vec<TemplateSpec>,
    /// How long to run once available (runs until terminated when absent).
    pub duration: Option<DurationString>,
    /// Seconds without progress before failing (default 600).
    pub progress_deadline_seconds: Option<i32>,
    /// Stop the experiment.
    pub terminate: Option<bool>,
    /// Analyses run during the experiment.
    pub analyses: Option<Vec<ExperimentAnalysisTemplateRef>>,
    /// Delay before scaling the ReplicaSets down (default 30).
    pub scale_down_delay_seconds: Option<i32>,
    /// Metrics evaluated in dry-run mode.
    pub dry_run: Option<Vec<DryRun>>,
    /// Measurement retention rules.
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Labels and annotations of the created AnalysisRuns.
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
}

/// One ReplicaSet of an Experiment.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    /// Template name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Pods (default 1).
    pub replicas: Option<i32>,
    /// Seconds a pod must be ready to be available.
    pub min_ready_seconds: Option<i32>,
    /// Pod selector.
    pub selector: Option<LabelSelector>,
    /// Pod template.
    #[serde(default, deserialize_with = "or_zero")]
    pub template: PodTemplateSpec,
    /// Generate a Service.
    pub service: Option<TemplateService>,
}

/// An analysis of an Experiment.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisTemplateRef {
    /// Name of the analysis within the experiment.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Template name.
    #[serde(default, deserialize_with = "or_zero")]
    pub template_name: String,
    /// Look the template up among ClusterAnalysisTemplates.
    pub cluster_scope: Option<bool>,
    /// Arguments.
    pub args: Option<Vec<Argument>>,
    /// The experiment waits for this analysis.
    pub required_for_completion: Option<bool>,
}

/// Observed state of an Experiment.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// Phase (analysis phases); empty decodes as none.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub phase: Option<AnalysisPhase>,
    /// Why.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
    /// Per-template ReplicaSet state.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub template_statuses: Vec<TemplateStatus>,
    /// When all templates became available.
    pub available_at: Option<Time>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub conditions: Vec<RolloutCondition>,
    /// AnalysisRuns of the experiment.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub analysis_runs: Vec<ExperimentAnalysisRunStatus>,
}

/// State of one template's ReplicaSet.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatus {
    /// Template name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Pods.
    #[serde(default, deserialize_with = "or_zero")]
    pub replicas: i32,
    /// Updated pods.
    #[serde(default, deserialize_with = "or_zero")]
    pub updated_replicas: i32,
    /// Ready pods.
    #[serde(default, deserialize_with = "or_zero")]
    pub ready_replicas: i32,
    /// Available pods.
    #[serde(default, deserialize_with = "or_zero")]
    pub available_replicas: i32,
    /// Hash-collision counter.
    pub collision_count: Option<i32>,
    /// Progressing, Running, Successful, Failed or Error.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub status: String,
    /// Why.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
    /// Last status change.
    pub last_transition_time: Option<Time>,
    /// Generated Service.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub service_name: String,
    /// Pod-template hash of the ReplicaSet.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub pod_template_hash: String,
}

/// `{name, analysisRun, phase, message}` of an experiment analysis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisRunStatus {
    /// Analysis name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// AnalysisRun name.
    #[serde(default, deserialize_with = "or_zero")]
    pub analysis_run: String,
    /// Its phase.
    #[serde(default, deserialize_with = "or_zero")]
    pub phase: AnalysisPhase,
    /// Its message.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
}
