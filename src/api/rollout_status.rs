//! `Rollout.status` (spec §2): what the controller reports and what user commands write
//! (`abort`, `promoteFull`, `currentStepIndex`, cleared `pauseConditions`).
//!
//! Unlike spec types, status types mirror upstream's Go encoding: plain values where Go has
//! plain values, omitted when zero (`omitempty`), `Option` where Go has a pointer. The
//! controller owns these objects, so encoding them the way upstream does keeps merge patches
//! and diffs identical to upstream's. Decoding is as lenient as Go's: `null` reads as the zero
//! value.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{is_zero, or_zero, zero_time};
use super::phase::{AnalysisPhase, PauseReason, RolloutPhase, empty_as_none};

/// Observed state of a Rollout.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Abort requested (user) or decided (controller).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub abort: bool,
    /// Why the controller paused; users clear the list to resume.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub pause_conditions: Vec<PauseCondition>,
    /// The controller added a pause condition (see spec §2).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub controller_pause: bool,
    /// When the controller first reconciled the abort.
    pub aborted_at: Option<Time>,
    /// Pod-template hash of the new ReplicaSet.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub current_pod_hash: String,
    /// Hash of `canary.steps`.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub current_step_hash: String,
    /// Σ status.replicas of owned ReplicaSets.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub replicas: i32,
    /// status.replicas of the new ReplicaSet.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub updated_replicas: i32,
    /// Ready replicas.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub ready_replicas: i32,
    /// Available replicas.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub available_replicas: i32,
    /// Index of the step being executed; `len(steps)` when done; none without steps.
    pub current_step_index: Option<i32>,
    /// Hash-collision counter.
    pub collision_count: Option<i32>,
    /// `metadata.generation` observed, as a decimal string.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "super::common::string_or_number"
    )]
    pub observed_generation: String,
    /// Conditions (spec §2.3).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub conditions: Vec<RolloutCondition>,
    /// Canary state (always written, `{}` when empty, as upstream does for this struct).
    #[serde(default, deserialize_with = "or_zero")]
    pub canary: CanaryStatus,
    /// Blue-green state (always written, like `canary`).
    #[serde(default, deserialize_with = "or_zero")]
    pub blue_green: BlueGreenStatus,
    /// Replicas receiving traffic, for the HPA (scale subresource); spelled `HPAReplicas`.
    #[serde(
        rename = "HPAReplicas",
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "or_zero"
    )]
    pub hpa_replicas: i32,
    /// Selector of pods receiving traffic (`app=foo`), for the scale subresource.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub selector: String,
    /// Pod-template hash of the stable ReplicaSet (a hash, not a name).
    #[serde(
        rename = "stableRS",
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "or_zero"
    )]
    pub stable_rs: String,
    /// Last `spec.restartAt` fully honoured.
    pub restarted_at: Option<Time>,
    /// Skip remaining steps, analysis and pauses.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub promote_full: bool,
    /// Phase (spec §2.2); an empty phase decodes as none.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub phase: Option<RolloutPhase>,
    /// Reason text for the phase.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
    /// Generation of the referenced workload observed.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "super::common::string_or_number"
    )]
    pub workload_observed_generation: String,
    /// ALB load balancer and target groups.
    pub alb: Option<AlbStatus>,
    /// ALB status per Ingress.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub albs: Vec<AlbStatus>,
    /// Timing of the current update (newer upstream field).
    pub duration: Option<RolloutDurationStatus>,
}

/// A pause the controller added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    /// Why.
    pub reason: PauseReason,
    /// Since when.
    #[serde(
        default = "zero_time",
        deserialize_with = "super::common::null_as_zero_time"
    )]
    pub start_time: Time,
}

/// A Rollout (or Experiment) condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCondition {
    /// Condition type (see `consts::condition_type`).
    #[serde(rename = "type", default, deserialize_with = "or_zero")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default, deserialize_with = "or_zero")]
    pub status: String,
    /// Last time the condition was updated.
    #[serde(
        default = "zero_time",
        deserialize_with = "super::common::null_as_zero_time"
    )]
    pub last_update_time: Time,
    /// Last time the status changed.
    #[serde(
        default = "zero_time",
        deserialize_with = "super::common::null_as_zero_time"
    )]
    pub last_transition_time: Time,
    /// Machine-readable reason (see `consts::reason`).
    #[serde(default, deserialize_with = "or_zero")]
    pub reason: String,
    /// Human-readable message.
    #[serde(default, deserialize_with = "or_zero")]
    pub message: String,
}

/// `status.canary`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The current step's AnalysisRun.
    pub current_step_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The background AnalysisRun.
    pub current_background_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// Name of the running Experiment.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub current_experiment: String,
    /// Weights last written to the traffic router (traffic routing only).
    pub weights: Option<TrafficWeights>,
    /// `ping` or `pong`: which ping-pong service is stable.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub stable_ping_pong: String,
    /// Step plugin states.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub step_plugin_statuses: Vec<StepPluginStatus>,
}

/// `{name, status, message}` of an AnalysisRun the Rollout follows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisRunStatus {
    /// AnalysisRun name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Its phase.
    #[serde(default, deserialize_with = "or_zero")]
    pub status: AnalysisPhase,
    /// Its message.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
}

/// Weights written to the traffic router; stable = max weight − canary − Σ additional.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    /// Canary destination.
    #[serde(default, deserialize_with = "or_zero")]
    pub canary: WeightDestination,
    /// Stable destination.
    #[serde(default, deserialize_with = "or_zero")]
    pub stable: WeightDestination,
    /// Experiment destinations.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub additional: Vec<WeightDestination>,
    /// Weight verified (ALB only); `false` blocks step completion.
    pub verified: Option<bool>,
}

/// One weighted destination.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    /// Weight (always written, even 0).
    #[serde(default, deserialize_with = "or_zero")]
    pub weight: i32,
    /// Service receiving it.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub service_name: String,
    /// Pod-template hash behind the service.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub pod_template_hash: String,
}

/// State of one step plugin invocation; `status` is the plugin's own free JSON.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepPluginStatus {
    /// Step index.
    #[serde(default, deserialize_with = "or_zero")]
    pub index: i32,
    /// Plugin name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// `Run`, `Terminate` or `Abort`.
    #[serde(default, deserialize_with = "or_zero")]
    pub operation: String,
    /// `Running`, `Successful`, `Failed` or `Error`.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub phase: String,
    /// Message.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub message: String,
    /// Start time.
    pub started_at: Option<Time>,
    /// Last update.
    pub updated_at: Option<Time>,
    /// End time.
    pub finished_at: Option<Time>,
    /// Backoff before the next attempt (duration string).
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub backoff: String,
    /// Executions so far.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub executions: i32,
    /// The plugin is disabled.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub disabled: bool,
    /// Plugin-owned state, kept verbatim.
    // `default` keeps the field optional in the schema: `schema_with` hides the Option.
    #[serde(default)]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub status: Option<serde_json::Value>,
}

/// `status.blueGreen`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStatus {
    /// Hash the preview service selects.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub preview_selector: String,
    /// Hash the active service selects.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub active_selector: String,
    /// Preview ready to be scaled up once unpaused.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub scale_up_preview_check_point: bool,
    /// Pre-promotion AnalysisRun.
    pub pre_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// Post-promotion AnalysisRun.
    pub post_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
}

/// ALB resources of one Ingress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbStatus {
    /// Load balancer.
    #[serde(default, deserialize_with = "or_zero")]
    pub load_balancer: AwsResourceRef,
    /// Canary target group.
    #[serde(default, deserialize_with = "or_zero")]
    pub canary_target_group: AwsResourceRef,
    /// Stable target group.
    #[serde(default, deserialize_with = "or_zero")]
    pub stable_target_group: AwsResourceRef,
    /// Ingress name.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub ingress: String,
}

/// `{name, arn, fullName}` of an AWS resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsResourceRef {
    /// Name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// ARN.
    #[serde(default, deserialize_with = "or_zero")]
    pub arn: String,
    /// Full name.
    #[serde(default, deserialize_with = "or_zero")]
    pub full_name: String,
}

/// `status.duration`: timing of the current update.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutDurationStatus {
    /// When the update started.
    pub rollout_started_at: Option<Time>,
    /// When the current manual pause started.
    pub manual_pause_started_at: Option<Time>,
    /// Seconds spent manually paused.
    pub total_manual_pause_duration_seconds: Option<i64>,
    /// When the update finished.
    pub finished_at: Option<Time>,
    /// Promoted, FastPromoted, Aborted, Superseded, RolledBack or FastRolledBack.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]
    pub completion_status: String,
}
