//! CRD types of the `argoproj.io/v1alpha1` kinds (Rollout, AnalysisTemplate,
//! ClusterAnalysisTemplate, AnalysisRun, Experiment), their defaults, the int-or-string and
//! duration types, well-known strings, and CRD generation.
//!
//! Conventions (see each module):
//! - spec types keep what the user wrote: optional fields are `Option`, skipped when absent
//!   (`#[skip_serializing_none]` on the type writes that rule once for all its `Option`
//!   fields), so decode → encode returns the input; unknown fields are ignored when decoding;
//! - status types mirror upstream's Go encoding (zero values omitted), since the controller
//!   owns them;
//! - defaults are methods in `defaults`, never written into objects;
//! - free-form parts (`trafficRouting.plugins`, `steps[].plugin.config`, `provider.plugin`,
//!   `web.jsonBody`, `stepPluginStatuses[].status`) are `serde_json` values kept verbatim.

pub mod analysis;
pub mod canary;
pub mod common;
pub mod consts;
pub mod crd;
pub mod defaults;
pub mod duration;
pub mod experiment;
pub mod field_manager;
pub mod field_ref;
pub mod go_quote;
pub mod int_or_string;
pub mod json_diff;
pub mod object;
pub mod phase;
pub mod providers;
pub mod rollout;
pub mod rollout_status;
pub mod run_spec;
pub mod selector;
pub mod traffic_routing;
pub mod args;
pub mod validate;

pub use analysis::{
    AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, AnalysisTemplate, AnalysisTemplateSpec,
    Argument, ClusterAnalysisTemplate, ClusterAnalysisTemplateSpec, Measurement, Metric,
    MetricResult, RunSummary, SecretKeyRef, TtlStrategy, ValueFrom,
};
pub use canary::{
    CanaryStep, CanaryStrategy, HeaderRoutingMatch, PingPongSpec, PluginStep,
    ReplicaProgressThreshold, RolloutExperimentStep, RolloutExperimentStepAnalysisTemplateRef,
    RolloutExperimentTemplate, RolloutPause, RouteMatch, SetCanaryScale, SetHeaderRoute,
    SetMirrorRoute, TemplateService,
};
pub use common::{
    AnalysisRunMetadata, AnalysisTemplateRef, DryRun, FieldRef, MeasurementRetention,
    PodTemplateMetadata, StringMatch,
};
pub use defaults::EffectiveCount;
pub use duration::{
    DurationError, DurationString, go_duration_nanos, parse_duration, parse_go_duration,
};
pub use experiment::{
    Experiment, ExperimentAnalysisRunStatus, ExperimentAnalysisTemplateRef, ExperimentSpec,
    ExperimentStatus, TemplateSpec, TemplateStatus,
};
pub use int_or_string::{IntOrStr, IntOrStrError, Rounding};
pub use json_diff::{JsonDifference, json_diff};
pub use object::{DavyObject, davy_kind};
pub use phase::{AnalysisPhase, PauseReason, RolloutPhase};
pub use providers::MetricProvider;
pub use rollout::{
    AnalysisRunArgument, AnalysisRunStrategy, AntiAffinity, ArgumentValueFrom, BlueGreenStrategy,
    ObjectRef, RollbackWindowSpec, Rollout, RolloutAnalysis, RolloutAnalysisBackground,
    RolloutSpec, RolloutStrategy,
};
pub use rollout_status::{
    BlueGreenStatus, CanaryStatus, PauseCondition, RolloutAnalysisRunStatus, RolloutCondition,
    RolloutStatus, StepPluginStatus, TrafficWeights, WeightDestination,
};
pub use traffic_routing::RolloutTrafficRouting;
