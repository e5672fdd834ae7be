//! The `Rollout` kind (spec §1.1, §1.4, §1.6): top-level spec, strategy selection, blue-green,
//! analysis references and arguments. Canary lives in `canary.rs`, traffic routing in
//! `traffic_routing.rs`, status in `rollout_status.rs`.
//!
//! Spec types keep exactly what the user wrote: every optional field is an `Option` that is
//! skipped when absent, so decode → encode gives back the input (the lint compares them).
//! Defaults live in `defaults.rs` and are never written into stored objects.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::canary::CanaryStrategy;
use super::common::{
    AnalysisRunMetadata, AnalysisTemplateRef, DryRun, FieldRef, MeasurementRetention,
    PodTemplateMetadata, or_zero,
};
use super::int_or_string::IntOrStr;
use super::rollout_status::RolloutStatus;

/// Desired state of a Rollout.
#[skip_serializing_none]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Rollout",
    plural = "rollouts",
    namespaced,
    status = "RolloutStatus",
    shortname = "ro",
    derive = "PartialEq",
    doc = "Rollout is a specification for a Rollout resource",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.HPAReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".spec.replicas","description":"Number of desired pods"}"#,
    printcolumn = r#"{"name":"Current","type":"integer","jsonPath":".status.replicas","description":"Total number of non-terminated pods targeted by this rollout"}"#,
    printcolumn = r#"{"name":"Up-to-date","type":"integer","jsonPath":".status.updatedReplicas","description":"Total number of non-terminated pods targeted by this rollout that have the desired template spec"}"#,
    printcolumn = r#"{"name":"Available","type":"integer","jsonPath":".status.availableReplicas","description":"Total number of available pods (ready for at least minReadySeconds) targeted by this rollout"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Desired pods (default 1; the controller writes 1 back when absent).
    pub replicas: Option<i32>,
    /// Pod selector; required unless `workloadRef` is set; immutable.
    pub selector: Option<LabelSelector>,
    /// Pod template; required unless `workloadRef` is set.
    pub template: Option<PodTemplateSpec>,
    /// Takes template and selector from a Deployment, ReplicaSet or PodTemplate.
    pub workload_ref: Option<ObjectRef>,
    /// Seconds a new pod must be ready to count as available (default 0).
    pub min_ready_seconds: Option<i32>,
    /// Window in which a rollback is fast-tracked.
    pub rollback_window: Option<RollbackWindowSpec>,
    /// Exactly one of canary or blueGreen (checked by validation); always written, as Go does.
    #[serde(default, deserialize_with = "or_zero")]
    pub strategy: RolloutStrategy,
    /// Old ReplicaSets kept (default 10).
    pub revision_history_limit: Option<i32>,
    /// Manual pause.
    pub paused: Option<bool>,
    /// Seconds without progress before `ProgressDeadlineExceeded` (default 600).
    pub progress_deadline_seconds: Option<i32>,
    /// Abort when the progress deadline passes (default false).
    pub progress_deadline_abort: Option<bool>,
    /// Restart pods created before this time.
    pub restart_at: Option<Time>,
    /// AnalysisRun history limits.
    pub analysis: Option<AnalysisRunStrategy>,
}

/// `spec.workloadRef`: where the pod template comes from.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// API version of the referent (`apps/v1`, `v1`).
    pub api_version: Option<String>,
    /// Kind of the referent (`Deployment`, `ReplicaSet`, `PodTemplate`).
    pub kind: Option<String>,
    /// Name of the referent.
    pub name: Option<String>,
    /// `never`, `onsuccess` or `progressively`.
    pub scale_down: Option<String>,
}

/// `spec.rollbackWindow`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackWindowSpec {
    /// Revisions within which a rollback skips steps.
    pub revisions: Option<i32>,
}

/// `spec.analysis`: how many finished AnalysisRuns and Experiments to keep.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStrategy {
    /// Successful runs kept (default 5).
    pub successful_run_history_limit: Option<i32>,
    /// Failed, Error and Inconclusive runs kept (default 5).
    pub unsuccessful_run_history_limit: Option<i32>,
}

/// `spec.strategy`: exactly one of the two.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Blue-green strategy.
    pub blue_green: Option<BlueGreenStrategy>,
    /// Canary strategy.
    pub canary: Option<CanaryStrategy>,
}

impl RolloutStrategy {
    /// True when neither strategy is set.
    pub fn is_empty(&self) -> bool {
        self.blue_green.is_none() && self.canary.is_none()
    }
}

/// `spec.strategy.blueGreen` (spec §1.6).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Service switched to the new version at promotion (required).
    #[serde(default, deserialize_with = "or_zero")]
    pub active_service: String,
    /// Service pointing at the new version before promotion.
    pub preview_service: Option<String>,
    /// Replicas of the preview stack before promotion.
    pub preview_replica_count: Option<i32>,
    /// Promote automatically (default true).
    pub auto_promotion_enabled: Option<bool>,
    /// Delay before automatic promotion (default 0).
    pub auto_promotion_seconds: Option<i32>,
    /// Pods that may be unavailable during a restart (default 25%).
    pub max_unavailable: Option<IntOrStr>,
    /// Delay before scaling down the previous ReplicaSet (default 30).
    pub scale_down_delay_seconds: Option<i32>,
    /// Old ReplicaSets allowed to wait for their scale-down delay (default unlimited).
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Analysis that must succeed before the active service switches.
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    /// Anti-affinity injected into the new ReplicaSet.
    pub anti_affinity: Option<AntiAffinity>,
    /// Analysis that must succeed after the switch before the release is stable.
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    /// Ephemeral metadata of preview pods.
    pub preview_metadata: Option<PodTemplateMetadata>,
    /// Ephemeral metadata of active pods.
    pub active_metadata: Option<PodTemplateMetadata>,
    /// Delay before scaling down the preview ReplicaSet after an abort (default 30, 0 = never).
    pub abort_scale_down_delay_seconds: Option<i32>,
}

/// Anti-affinity injected into the new ReplicaSet: exactly one of the two.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AntiAffinity {
    /// Soft rule with a weight 1..100.
    pub preferred_during_scheduling_ignored_during_execution:
        Option<PreferredDuringSchedulingIgnoredDuringExecution>,
    /// Hard rule.
    pub required_during_scheduling_ignored_during_execution:
        Option<RequiredDuringSchedulingIgnoredDuringExecution>,
}

/// `preferredDuringSchedulingIgnoredDuringExecution: {weight}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferredDuringSchedulingIgnoredDuringExecution {
    /// Weight 1..100.
    #[serde(default, deserialize_with = "or_zero")]
    pub weight: i32,
}

/// `requiredDuringSchedulingIgnoredDuringExecution: {}` (no fields).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequiredDuringSchedulingIgnoredDuringExecution {}

/// An analysis invocation: step analysis, blue-green pre/post promotion (spec §1.4).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    /// Templates combined into one AnalysisRun.
    pub templates: Option<Vec<AnalysisTemplateRef>>,
    /// Arguments passed to the templates.
    pub args: Option<Vec<AnalysisRunArgument>>,
    /// Metrics evaluated in dry-run mode.
    pub dry_run: Option<Vec<DryRun>>,
    /// Measurement retention rules.
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Labels and annotations for the created AnalysisRun.
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
}

/// Background analysis: an analysis plus the step it starts at.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisBackground {
    /// The analysis itself (fields inline, as upstream).
    #[serde(flatten)]
    pub analysis: RolloutAnalysis,
    /// Create the run once `currentStepIndex >= startingStep` (default 0).
    pub starting_step: Option<i32>,
}

/// An argument given by a Rollout or an Experiment: a value or where to read it from.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunArgument {
    /// Argument name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Literal value.
    pub value: Option<String>,
    /// Where to read the value.
    pub value_from: Option<ArgumentValueFrom>,
}

/// `valueFrom` of a Rollout argument.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArgumentValueFrom {
    /// `Stable` or `Latest`: a ReplicaSet's pod-template hash.
    pub pod_template_hash_value: Option<String>,
    /// A path into the Rollout.
    pub field_ref: Option<FieldRef>,
}
