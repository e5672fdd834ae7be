//! `spec.strategy.canary` and its steps (spec §1.2, §1.3).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{AnalysisRunMetadata, DryRun, PodTemplateMetadata, StringMatch, or_zero};
use super::duration::DurationString;
use super::int_or_string::IntOrStr;
use super::rollout::{
    AnalysisRunArgument, AntiAffinity, RolloutAnalysis, RolloutAnalysisBackground,
};
use super::traffic_routing::RolloutTrafficRouting;

/// `spec.strategy.canary`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Service selecting only canary pods.
    pub canary_service: Option<String>,
    /// Service selecting only stable pods.
    pub stable_service: Option<String>,
    /// The release plan; absent means a rolling update.
    pub steps: Option<Vec<CanaryStep>>,
    /// Traffic routers.
    pub traffic_routing: Option<RolloutTrafficRouting>,
    /// Pods that may be unavailable (default 25%, rounded down).
    pub max_unavailable: Option<IntOrStr>,
    /// Pods above `replicas` (default 25%, rounded up).
    pub max_surge: Option<IntOrStr>,
    /// Background analysis running during the whole update.
    pub analysis: Option<RolloutAnalysisBackground>,
    /// Anti-affinity injected into the new ReplicaSet.
    pub anti_affinity: Option<AntiAffinity>,
    /// Ephemeral metadata of canary pods.
    pub canary_metadata: Option<PodTemplateMetadata>,
    /// Ephemeral metadata of stable pods.
    pub stable_metadata: Option<PodTemplateMetadata>,
    /// Delay before scaling down the previous stable (default 30 with traffic routing).
    pub scale_down_delay_seconds: Option<i32>,
    /// Old ReplicaSets allowed to wait for their scale-down delay (default unlimited).
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Delay before scaling the canary down after an abort (default 30, 0 = never).
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Scale the stable down as canary weight rises (traffic routing only).
    pub dynamic_stable_scale: Option<bool>,
    /// Ping-pong services instead of selector swaps.
    pub ping_pong: Option<PingPongSpec>,
    /// Minimum non-zero pods per ReplicaSet (traffic routing only).
    pub min_pods_per_replica_set: Option<i32>,
    /// When a step counts as "at desired replicas" (default 100% available).
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
}

/// `pingPong: {pingService, pongService}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PingPongSpec {
    /// Ping service name.
    #[serde(default, deserialize_with = "or_zero")]
    pub ping_service: String,
    /// Pong service name.
    #[serde(default, deserialize_with = "or_zero")]
    pub pong_service: String,
}

/// `replicaProgressThreshold: {type: Percent|Pod, value}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaProgressThreshold {
    /// `Percent` or `Pod`.
    #[serde(default, rename = "type", deserialize_with = "or_zero")]
    pub type_: String,
    /// Percentage or pod count.
    #[serde(default, deserialize_with = "or_zero")]
    pub value: i32,
}

/// One canary step; validation requires one kind per step.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// Percentage of traffic (or replicas) for the canary.
    pub set_weight: Option<i32>,
    /// Pause for a duration, or until promoted when empty.
    pub pause: Option<RolloutPause>,
    /// Run an Experiment.
    pub experiment: Option<RolloutExperimentStep>,
    /// Run an AnalysisRun and wait for it.
    pub analysis: Option<RolloutAnalysis>,
    /// Scale the canary without changing traffic.
    pub set_canary_scale: Option<SetCanaryScale>,
    /// Route requests with a header to the canary.
    pub set_header_route: Option<SetHeaderRoute>,
    /// Mirror matching requests to the canary.
    pub set_mirror_route: Option<SetMirrorRoute>,
    /// A step plugin.
    pub plugin: Option<PluginStep>,
}

/// `pause: {}` or `pause: {duration: 30s}`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPause {
    /// Seconds (int) or a duration string; absent means until promoted.
    pub duration: Option<IntOrStr>,
}

/// `setCanaryScale` (traffic routing only).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    /// Canary pods = ceil(replicas × weight / maxTrafficWeight).
    pub weight: Option<i32>,
    /// Explicit canary pod count.
    pub replicas: Option<i32>,
    /// Cancel earlier setCanaryScale steps.
    pub match_traffic_weight: Option<bool>,
}

/// `setHeaderRoute`: no `match` removes the route.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// Managed route name (listed in `trafficRouting.managedRoutes`).
    pub name: Option<String>,
    /// Header matches.
    #[serde(rename = "match")]
    pub match_: Option<Vec<HeaderRoutingMatch>>,
}

/// One header match of a `setHeaderRoute` step.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoutingMatch {
    /// Request header name.
    #[serde(default, deserialize_with = "or_zero")]
    pub header_name: String,
    /// How the header value matches.
    pub header_value: Option<StringMatch>,
}

/// `setMirrorRoute` (Istio or plugins).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetMirrorRoute {
    /// Managed route name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Request matches; absent removes the route.
    #[serde(rename = "match")]
    pub match_: Option<Vec<RouteMatch>>,
    /// Percentage of matching traffic mirrored (default 100).
    pub percentage: Option<i32>,
}

/// One request match of a `setMirrorRoute` step.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// HTTP method match.
    pub method: Option<StringMatch>,
    /// URL path match.
    pub path: Option<StringMatch>,
    /// Header matches by header name.
    pub headers: Option<std::collections::BTreeMap<String, StringMatch>>,
}

/// `plugin: {name, config}` step; `config` is free JSON kept verbatim.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginStep {
    /// Plugin name as configured in `argo-rollouts-config`.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Plugin configuration.
    // `default` keeps the field optional in the schema: `schema_with` hides the Option.
    #[serde(default)]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub config: Option<serde_json::Value>,
}

/// `experiment` step.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStep {
    /// ReplicaSets to run.
    #[serde(default, deserialize_with = "or_zero")]
    pub templates: Vec<RolloutExperimentTemplate>,
    /// How long the experiment runs (duration string).
    pub duration: Option<DurationString>,
    /// Analyses run by the experiment.
    pub analyses: Option<Vec<RolloutExperimentStepAnalysisTemplateRef>>,
    /// Metrics evaluated in dry-run mode.
    pub dry_run: Option<Vec<DryRun>>,
    /// Labels and annotations for the experiment's AnalysisRuns.
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
    /// Delay before the experiment's ReplicaSets are scaled down.
    pub scale_down_delay_seconds: Option<i32>,
}

/// A ReplicaSet of an experiment step.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentTemplate {
    /// Template name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// `canary` or `stable`: whose pod template to use.
    #[serde(default, deserialize_with = "or_zero")]
    pub spec_ref: String,
    /// Pods to run (default 1).
    pub replicas: Option<i32>,
    /// Extra labels and annotations for the ReplicaSet's pods.
    pub metadata: Option<PodTemplateMetadata>,
    /// Selector override.
    pub selector: Option<LabelSelector>,
    /// Traffic weight for the template (traffic routing only).
    pub weight: Option<i32>,
    /// Generate a Service for the template.
    pub service: Option<TemplateService>,
}

/// `service: {name}` of an experiment template.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateService {
    /// Service name (generated when empty).
    pub name: Option<String>,
}

/// An analysis of an experiment step.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStepAnalysisTemplateRef {
    /// Name of this analysis within the experiment.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Template name.
    #[serde(default, deserialize_with = "or_zero")]
    pub template_name: String,
    /// Look the template up among ClusterAnalysisTemplates.
    pub cluster_scope: Option<bool>,
    /// Arguments.
    pub args: Option<Vec<AnalysisRunArgument>>,
    /// The experiment waits for this analysis to complete.
    pub required_for_completion: Option<bool>,
}
