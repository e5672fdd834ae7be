//! Well-known upstream strings, verbatim: API group, kinds, condition types and reasons, phase
//! messages, pause reasons, event reasons, label and annotation keys (spec §2.2–§2.4, §3.9,
//! §4.3, §10.6). Argo CD's health check, notification triggers and the CLI key on these, so
//! they must never be reworded.

/// API group of every Davy kind.
pub const GROUP: &str = "argoproj.io";
/// API version of every Davy kind.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every Davy kind.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Kind names.
pub mod kind {
    /// The Rollout kind.
    pub const ROLLOUT: &str = "Rollout";
    /// The AnalysisTemplate kind.
    pub const ANALYSIS_TEMPLATE: &str = "AnalysisTemplate";
    /// The ClusterAnalysisTemplate kind (cluster-scoped).
    pub const CLUSTER_ANALYSIS_TEMPLATE: &str = "ClusterAnalysisTemplate";
    /// The AnalysisRun kind.
    pub const ANALYSIS_RUN: &str = "AnalysisRun";
    /// The Experiment kind.
    pub const EXPERIMENT: &str = "Experiment";
    /// Every kind Davy serves, in CRD output order.
    pub const ALL: [&str; 5] = [
        ROLLOUT,
        ANALYSIS_TEMPLATE,
        CLUSTER_ANALYSIS_TEMPLATE,
        ANALYSIS_RUN,
        EXPERIMENT,
    ];
}

/// Rollout condition types (spec §2.3).
pub mod condition_type {
    /// Progress of the update.
    pub const PROGRESSING: &str = "Progressing";
    /// Mirrors `spec.paused || pauseConditions`.
    pub const PAUSED: &str = "Paused";
    /// Minimum availability.
    pub const AVAILABLE: &str = "Available";
    /// Fully promoted and healthy.
    pub const HEALTHY: &str = "Healthy";
    /// `stableRS == currentPodHash`.
    pub const COMPLETED: &str = "Completed";
    /// Copied from a ReplicaSet's ReplicaFailure condition.
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Experiment condition: the experiment reached the desired state and runs.
    pub const RUNNING: &str = "Running";
}

/// Condition status values.
pub mod condition_status {
    /// `True`.
    pub const TRUE: &str = "True";
    /// `False`.
    pub const FALSE: &str = "False";
    /// `Unknown`.
    pub const UNKNOWN: &str = "Unknown";
}

/// Condition reasons (spec §2.3).
pub mod reason {
    /// Progressing=True: the controller created the new ReplicaSet.
    pub const NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
    /// Progressing=True: found the new ReplicaSet and no Progressing condition existed.
    pub const FOUND_NEW_REPLICA_SET: &str = "FoundNewReplicaSet";
    /// Progressing=True: progress observed.
    pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
    /// Progressing=True: a fully promoted rollout lost availability.
    pub const REPLICA_SET_NOT_AVAILABLE: &str = "ReplicaSetNotAvailable";
    /// Progressing=True: the Healthy predicate holds.
    pub const NEW_REPLICA_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
    /// Progressing=False: the progress deadline passed.
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// Progressing=False: aborted.
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    /// Progressing=Unknown (and Paused condition): paused.
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    /// Progressing=Unknown: resumed.
    pub const ROLLOUT_RESUMED: &str = "RolloutResumed";
    /// Progressing=Unknown: abort cleared.
    pub const ROLLOUT_RETRY: &str = "RolloutRetry";
    /// Progressing=False: ReplicaSet creation failed.
    pub const REPLICA_SET_CREATE_ERROR: &str = "ReplicaSetCreateError";
    /// Available condition reason.
    pub const AVAILABLE_REASON: &str = "AvailableReason";
    /// Healthy condition reason.
    pub const ROLLOUT_HEALTHY: &str = "RolloutHealthy";
    /// Completed condition reason (also its message).
    pub const ROLLOUT_COMPLETED: &str = "RolloutCompleted";
    /// InvalidSpec condition reason.
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Fixed condition and phase messages (spec §2.2, §2.3).
pub mod message {
    /// Paused condition / RolloutPaused reason.
    pub const ROLLOUT_PAUSED: &str = "Rollout is paused";
    /// RolloutResumed reason.
    pub const ROLLOUT_RESUMED: &str = "Rollout is resumed";
    /// RolloutRetry reason.
    pub const ROLLOUT_RETRY: &str = "Retrying Rollout after abort";
    /// Available=True.
    pub const AVAILABLE: &str = "Rollout has minimum availability";
    /// Available=False and ReplicaSetNotAvailable.
    pub const NOT_AVAILABLE: &str = "Rollout does not have minimum availability";
    /// Healthy=True.
    pub const HEALTHY: &str = "Rollout is healthy";
    /// Healthy=False.
    pub const NOT_HEALTHY: &str = "Rollout is not healthy";
    /// Completed condition message.
    pub const COMPLETED: &str = "RolloutCompleted";
    /// Phase message: `spec.paused`.
    pub const PHASE_MANUALLY_PAUSED: &str = "manually paused";
    /// Phase message: restart in progress.
    pub const PHASE_RESTARTING: &str = "rollout is restarting";
    /// Phase message: fewer updated replicas than desired.
    pub const PHASE_MORE_REPLICAS_NEED_UPDATE: &str = "more replicas need to be updated";
    /// Phase message: updated replicas not yet available.
    pub const PHASE_UPDATED_BECOMING_AVAILABLE: &str =
        "updated replicas are still becoming available";
    /// Phase message: blue-green active service not switched yet.
    pub const PHASE_ACTIVE_SERVICE_CUTOVER_PENDING: &str = "active service cutover pending";
    /// Phase message: blue-green post-promotion analysis pending.
    pub const PHASE_WAITING_FOR_ANALYSIS: &str = "waiting for analysis to complete";
    /// Phase message: blue-green waiting for post-promotion verification.
    pub const PHASE_WAITING_FOR_POST_PROMOTION: &str =
        "waiting for post-promotion verification to complete";
    /// Phase message: basic canary draining old replicas.
    pub const PHASE_OLD_REPLICAS_PENDING_TERMINATION: &str = "old replicas are pending termination";
    /// Phase message: canary steps remaining.
    pub const PHASE_WAITING_FOR_STEPS: &str = "waiting for all steps to complete";
    /// Client-side phase message: generation not observed yet.
    pub const PHASE_WAITING_FOR_SPEC_OBSERVED: &str =
        "waiting for rollout spec update to be observed";
    /// Client-side phase message: user resumed, controller has not reacted yet.
    pub const PHASE_WAITING_FOR_UNPAUSE: &str = "waiting for rollout to unpause";
    /// Client-side phase message: referenced workload generation not observed yet.
    pub const PHASE_WAITING_FOR_WORKLOAD_OBSERVED: &str =
        "waiting for rollout spec update to be observed for the reference workload";
}

/// Pause condition reasons (spec §2), as strings; see also [`crate::api::PauseReason`].
pub mod pause_reason {
    /// A `pause` step.
    pub const CANARY_PAUSE_STEP: &str = "CanaryPauseStep";
    /// Blue-green waiting for promotion.
    pub const BLUE_GREEN_PAUSE: &str = "BlueGreenPause";
    /// An AnalysisRun ended Inconclusive.
    pub const INCONCLUSIVE_ANALYSIS_RUN: &str = "InconclusiveAnalysisRun";
    /// An Experiment ended Inconclusive.
    pub const INCONCLUSIVE_EXPERIMENT: &str = "InconclusiveExperiment";
}

/// Phase strings (see also the enums [`crate::api::RolloutPhase`], [`crate::api::AnalysisPhase`]).
pub mod phase {
    /// Rollout phase.
    pub const HEALTHY: &str = "Healthy";
    /// Rollout phase.
    pub const PROGRESSING: &str = "Progressing";
    /// Rollout phase.
    pub const PAUSED: &str = "Paused";
    /// Rollout phase.
    pub const DEGRADED: &str = "Degraded";
    /// Analysis phase.
    pub const PENDING: &str = "Pending";
    /// Analysis phase.
    pub const RUNNING: &str = "Running";
    /// Analysis phase.
    pub const SUCCESSFUL: &str = "Successful";
    /// Analysis phase.
    pub const FAILED: &str = "Failed";
    /// Analysis phase.
    pub const ERROR: &str = "Error";
    /// Analysis phase.
    pub const INCONCLUSIVE: &str = "Inconclusive";
}

/// Kubernetes event reasons emitted on Rollouts (spec §2.4); notification triggers derive
/// from them (`on-` + kebab-case).
pub mod event_reason {
    /// Rollout seen for the first time.
    pub const ROLLOUT_ADDED_TO_INFORMER: &str = "RolloutAddedToInformer";
    /// "Rollout updated to revision N".
    pub const ROLLOUT_UPDATED: &str = "RolloutUpdated";
    /// "Created ReplicaSet X (revision N)".
    pub const NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
    /// "Scaled up|down ReplicaSet X (revision N) from A to B".
    pub const SCALING_REPLICA_SET: &str = "ScalingReplicaSet";
    /// "Rollout step i/n completed (setWeight: 20)".
    pub const ROLLOUT_STEP_COMPLETED: &str = "RolloutStepCompleted";
    /// "Rollout is paused (CanaryPauseStep)".
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    /// Resumed.
    pub const ROLLOUT_RESUMED: &str = "RolloutResumed";
    /// Aborted.
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    /// "Rollout completed update to revision N (hash): <reason>".
    pub const ROLLOUT_COMPLETED: &str = "RolloutCompleted";
    /// "Rollout not completed, started update to revision N (hash)".
    pub const ROLLOUT_NOT_COMPLETED: &str = "RolloutNotCompleted";
    /// "Traffic weight updated from A to B".
    pub const TRAFFIC_WEIGHT_UPDATED: &str = "TrafficWeightUpdated";
    /// Service selector switched.
    pub const SWITCH_SERVICE: &str = "SwitchService";
    /// Steps skipped ("Rollback to stable ReplicaSets").
    pub const SKIP_STEPS: &str = "SkipSteps";
    /// Prefix of `AnalysisRun<Phase>` events.
    pub const ANALYSIS_RUN_PREFIX: &str = "AnalysisRun";
    /// Canary Ingress created.
    pub const CREATING_CANARY_INGRESS: &str = "CreatingCanaryIngress";
    /// Canary Ingress patched.
    pub const PATCHING_CANARY_INGRESS: &str = "PatchingCanaryIngress";
    /// SMI TrafficSplit created.
    pub const TRAFFIC_SPLIT_CREATED: &str = "TrafficSplitCreated";
    /// Istio DestinationRule updated.
    pub const UPDATED_DESTINATION_RULE: &str = "UpdatedDestinationRule";
    /// Traffic router error.
    pub const TRAFFIC_ROUTING_ERROR: &str = "TrafficRoutingError";
    /// Rollout deleted.
    pub const ROLLOUT_DELETED: &str = "RolloutDeleted";
}

/// Label keys (spec §3.9, §4.3, §10.6).
pub mod label {
    /// Pod-template hash on ReplicaSets, pods, Service selectors, AnalysisRuns, DR subsets.
    pub const POD_TEMPLATE_HASH: &str = "rollouts-pod-template-hash";
    /// Controller instance segregation.
    pub const CONTROLLER_INSTANCE_ID: &str = "argo-rollouts.argoproj.io/controller-instance-id";
    /// How a Rollout created an AnalysisRun (values in [`super::rollout_type`]).
    pub const ROLLOUT_TYPE: &str = "rollout-type";
    /// Step index of a step AnalysisRun.
    pub const STEP_INDEX: &str = "step-index";
    /// AnalysisRun uid on analysis Jobs and their pods.
    pub const ANALYSIS_RUN_UID: &str = "analysisrun.argoproj.io/uid";
}

/// Values of the `rollout-type` label.
pub mod rollout_type {
    /// Step analysis.
    pub const STEP: &str = "Step";
    /// Background analysis.
    pub const BACKGROUND: &str = "Background";
    /// Blue-green pre-promotion analysis.
    pub const PRE_PROMOTION: &str = "PrePromotion";
    /// Blue-green post-promotion analysis.
    pub const POST_PROMOTION: &str = "PostPromotion";
}

/// Annotation keys (spec §3.9, §4.3, §5.3, §10.6).
pub mod annotation {
    /// ReplicaSet (and Rollout) revision number.
    pub const REVISION: &str = "rollout.argoproj.io/revision";
    /// Previous revisions of a reused ReplicaSet, comma-separated.
    pub const REVISION_HISTORY: &str = "rollout.argoproj.io/revision-history";
    /// Desired replicas at the last scale.
    pub const DESIRED_REPLICAS: &str = "rollout.argoproj.io/desired-replicas";
    /// JSON of the injected ephemeral metadata.
    pub const EPHEMERAL_METADATA: &str = "rollout.argoproj.io/ephemeral-metadata";
    /// Generation of the referenced workload (workloadRef).
    pub const WORKLOAD_GENERATION: &str = "rollout.argoproj.io/workload-generation";
    /// RFC3339 time after which an old ReplicaSet is scaled down (note: no prefix).
    pub const SCALE_DOWN_DEADLINE: &str = "scale-down-deadline";
    /// Marks Services/DestinationRules/AppMesh objects managed (not owned) by a Rollout.
    pub const MANAGED_BY_ROLLOUTS: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
    /// ReplicaSet restarted at the given time.
    pub const RESTARTED_AFTER: &str = "argo-rollouts.argoproj.io/restarted-after";
    /// AnalysisRun name on analysis Jobs.
    pub const ANALYSIS_RUN_NAME: &str = "analysisrun.argoproj.io/name";
    /// AnalysisRun namespace on analysis Jobs.
    pub const ANALYSIS_RUN_NAMESPACE: &str = "analysisrun.argoproj.io/namespace";
    /// Metric name on analysis Jobs.
    pub const ANALYSIS_RUN_METRIC_NAME: &str = "analysisrun.argoproj.io/metric-name";
    /// ALB actions managed by the controller.
    pub const MANAGED_ALB_ACTIONS: &str = "rollouts.argoproj.io/managed-alb-actions";
    /// Prefix of notification subscriptions (`<prefix><trigger>.<service>`).
    pub const NOTIFICATIONS_SUBSCRIBE_PREFIX: &str = "notifications.argoproj.io/subscribe.";
    /// Notification bookkeeping (not copied to ReplicaSets).
    pub const NOTIFIED: &str = "notified.notifications.argoproj.io";
    /// Experiment name on experiment ReplicaSets.
    pub const EXPERIMENT_NAME: &str = "experiment.argoproj.io/name";
    /// Experiment template name on experiment ReplicaSets.
    pub const EXPERIMENT_TEMPLATE_NAME: &str = "experiment.argoproj.io/template-name";
    /// kubectl's last-applied configuration (not copied to ReplicaSets).
    pub const LAST_APPLIED_CONFIGURATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
}

/// Values of `workloadRef.scaleDown`.
pub mod scale_down {
    /// Never scale the referenced Deployment (also the empty value).
    pub const NEVER: &str = "never";
    /// Scale it to 0 once revision 1 is healthy.
    pub const ON_SUCCESS: &str = "onsuccess";
    /// Scale it down progressively during revision 1.
    pub const PROGRESSIVELY: &str = "progressively";
}

/// Values of `valueFrom.podTemplateHashValue`.
pub mod pod_template_hash_value {
    /// Hash of the stable ReplicaSet.
    pub const STABLE: &str = "Stable";
    /// Hash of the new ReplicaSet.
    pub const LATEST: &str = "Latest";
}

/// Values of experiment template `specRef`.
pub mod spec_ref {
    /// The new ReplicaSet's template.
    pub const CANARY: &str = "canary";
    /// The stable ReplicaSet's template.
    pub const STABLE: &str = "stable";
}

/// Values of `status.canary.stablePingPong`.
pub mod ping_pong {
    /// The ping service is stable.
    pub const PING: &str = "ping";
    /// The pong service is stable.
    pub const PONG: &str = "pong";
}

/// Values of `replicaProgressThreshold.type`.
pub mod progress_threshold_type {
    /// `value` is a percentage of desired replicas.
    pub const PERCENT: &str = "Percent";
    /// `value` is a number of pods.
    pub const POD: &str = "Pod";
}

/// Step plugin operations and phases (`status.canary.stepPluginStatuses[]`).
pub mod step_plugin {
    /// Operation: run the step.
    pub const OPERATION_RUN: &str = "Run";
    /// Operation: terminate the step.
    pub const OPERATION_TERMINATE: &str = "Terminate";
    /// Operation: abort the step.
    pub const OPERATION_ABORT: &str = "Abort";
    /// Phase: running.
    pub const PHASE_RUNNING: &str = "Running";
    /// Phase: successful.
    pub const PHASE_SUCCESSFUL: &str = "Successful";
    /// Phase: failed.
    pub const PHASE_FAILED: &str = "Failed";
    /// Phase: error.
    pub const PHASE_ERROR: &str = "Error";
}

/// `status.duration.completionStatus` values.
pub mod completion_status {
    /// Promoted through the steps.
    pub const PROMOTED: &str = "Promoted";
    /// Promoted with `promote --full`.
    pub const FAST_PROMOTED: &str = "FastPromoted";
    /// Aborted.
    pub const ABORTED: &str = "Aborted";
    /// Replaced by a newer revision.
    pub const SUPERSEDED: &str = "Superseded";
    /// Rolled back.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// Rolled back within the rollback window.
    pub const FAST_ROLLED_BACK: &str = "FastRolledBack";
}

/// Experiment template statuses (`status.templateStatuses[].status`).
pub mod template_status {
    /// Scaling up.
    pub const PROGRESSING: &str = "Progressing";
    /// Running.
    pub const RUNNING: &str = "Running";
    /// Successful.
    pub const SUCCESSFUL: &str = "Successful";
    /// Failed.
    pub const FAILED: &str = "Failed";
    /// Error.
    pub const ERROR: &str = "Error";
}

/// Davy's own annotation keys (features beyond upstream; upstream ignores them).
pub mod davy_annotation {
    /// On a Rollout: the promotion windows, a YAML or JSON list of
    /// `{schedule, duration, kind?, timeZone?}` (see `docs/promotion-windows.md`).
    pub const PROMOTION_WINDOWS: &str = "davy.dev/promotion-windows";
}
