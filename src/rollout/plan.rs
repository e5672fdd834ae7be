//! The output of one reconcile: [`Plan`], an ordered list of [`Write`]s the executor applies
//! verbatim, and when to look again. This is the vocabulary every stage answers in; the entry
//! point that builds a plan is `crate::rollout::pipeline::plan`.
//!
//! Applying a plan: perform the writes in order and stop at the first failure (the next
//! reconcile recomputes everything from what is then observed, so a partly applied plan is
//! safe). Events are writes too, so they are emitted only once what they announce happened.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;

use crate::api::{
    AnalysisRun, Experiment, RolloutStatus, SetHeaderRoute, SetMirrorRoute, WeightDestination,
};

/// `Normal` or `Warning`, as Kubernetes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Informational.
    Normal,
    /// Something went wrong (abort, failed analysis).
    Warning,
}

impl EventType {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// A Kubernetes event on the Rollout (reasons per spec §2.4, also notification triggers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Normal or Warning.
    pub type_: EventType,
    /// Upstream reason, e.g. `RolloutStepCompleted`.
    pub reason: String,
    /// Upstream message text.
    pub message: String,
}

/// What the traffic router must converge to (spec §3.5). The router helper builds its own
/// objects (canary Ingress, TrafficSplit, VirtualService, HTTPRoute) from this.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficWeight {
    /// Canary weight, out of `max_weight`.
    pub weight: i32,
    /// `trafficRouting.maxTrafficWeight` (default 100).
    pub max_weight: i32,
    /// Pod-template hash traffic to the canary reaches.
    pub canary_hash: String,
    /// Pod-template hash traffic to the stable reaches.
    pub stable_hash: String,
    /// The weighted Services of a running `experiment` step's templates.
    pub additional: Vec<WeightDestination>,
    /// Managed header routes that must exist, in step order (empty: remove them all).
    pub header_routes: Vec<SetHeaderRoute>,
    /// Managed mirror routes that must exist, in step order (empty: remove them all).
    pub mirror_routes: Vec<SetMirrorRoute>,
}

/// One write, small enough to apply without further decisions.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create this ReplicaSet (complete object, `spec.replicas: 0`). On AlreadyExists with an
    /// equal template owned by the Rollout, treat as success.
    CreateReplicaSet(Box<ReplicaSet>),
    /// Merge these annotations into a ReplicaSet (revision sync, spec §3.9).
    UpdateReplicaSetAnnotations {
        /// ReplicaSet name.
        name: String,
        /// Annotations to set.
        annotations: BTreeMap<String, String>,
    },
    /// Set `spec.replicas` and the annotations (value `None` removes the key). `from == to`
    /// means only the `desired-replicas` annotation is refreshed.
    ScaleReplicaSet {
        /// ReplicaSet name.
        name: String,
        /// Current `spec.replicas`.
        from: i32,
        /// New `spec.replicas`.
        to: i32,
        /// `rollout.argoproj.io/desired-replicas` and, on a full scale-down, `scale-down-deadline: None`.
        annotations: BTreeMap<String, Option<String>>,
    },
    /// Add `scale-down-deadline: <deadline>` to a ReplicaSet.
    SetScaleDownDeadline {
        /// ReplicaSet name.
        name: String,
        /// RFC 3339, UTC, whole seconds.
        deadline: String,
    },
    /// Remove `scale-down-deadline` from a ReplicaSet.
    ClearScaleDownDeadline {
        /// ReplicaSet name.
        name: String,
    },
    /// Delete an old ReplicaSet (revision history limit).
    DeleteReplicaSet {
        /// ReplicaSet name.
        name: String,
    },
    /// Set the Rollout's `rollout.argoproj.io/revision` annotation.
    SetRolloutRevision {
        /// The revision, decimal.
        revision: String,
    },
    /// Set the Rollout's `rollout.argoproj.io/workload-generation` annotation (the referenced
    /// workload changed).
    SetWorkloadGeneration {
        /// The workload's `metadata.generation`, decimal.
        generation: String,
    },
    /// Set `spec.replicas` of the Deployment the Rollout's `workloadRef` names (`scaleDown`).
    ScaleWorkload {
        /// Deployment name.
        name: String,
        /// New `spec.replicas`.
        replicas: i32,
    },
    /// Write `spec.replicas` of the Rollout (it was absent; HPA needs it).
    PatchRolloutSpecReplicas {
        /// The value (1).
        replicas: i32,
    },
    /// Point a Service's `rollouts-pod-template-hash` selector at `hash`.
    PatchService {
        /// Service name.
        name: String,
        /// Pod-template hash to select.
        hash: String,
        /// When set, also add `argo-rollouts.argoproj.io/managed-by-rollouts: <rollout>`.
        managed_by: Option<String>,
    },
    /// Converge the traffic router(s) to this weight and these routes.
    SetTrafficWeight(TrafficWeight),
    /// Create this AnalysisRun (complete object). On AlreadyExists, requeue: the next plan sees
    /// it and either adopts it or picks the next `.N` name.
    CreateAnalysisRun(Box<AnalysisRun>),
    /// Merge-patch `spec.terminate: true` onto an AnalysisRun.
    TerminateAnalysisRun {
        /// AnalysisRun name.
        name: String,
    },
    /// Delete an AnalysisRun (history limits, or its ReplicaSet is gone).
    DeleteAnalysisRun {
        /// AnalysisRun name.
        name: String,
    },
    /// Create this Experiment (complete object; an `experiment` step). On AlreadyExists,
    /// requeue: the next plan sees it and adopts it or picks the next `-N` name.
    CreateExperiment(Box<Experiment>),
    /// Merge-patch `spec.terminate: true` onto an Experiment.
    TerminateExperiment {
        /// Experiment name.
        name: String,
    },
    /// Delete an Experiment (history limits, or its ReplicaSet is gone).
    DeleteExperiment {
        /// Experiment name.
        name: String,
    },
    /// Bring a ReplicaSet's ephemeral metadata to its role (spec §3.11), in this order: patch
    /// its pod template with `template`, then (when `pods`) every Pod it controls, listed by
    /// `rollouts-pod-template-hash=<hash>`, with [`crate::rollout::ephemeral::sync_meta`] from
    /// `existing` to `desired`, then write `record` as its `ephemeral-metadata` annotation
    /// (`None` removes it). Pods created meanwhile already get the new template.
    SyncEphemeralMetadata {
        /// ReplicaSet name.
        name: String,
        /// ReplicaSet uid (the Pods' controller).
        uid: String,
        /// Its `rollouts-pod-template-hash`.
        hash: String,
        /// The pod template's label and annotation changes (may be empty).
        template: crate::rollout::ephemeral::MetaPatch,
        /// What the record says was injected so far.
        existing: Option<crate::api::PodTemplateMetadata>,
        /// What its role wants injected.
        desired: Option<crate::api::PodTemplateMetadata>,
        /// The new record (JSON of `desired`).
        record: Option<String>,
        /// Whether it has pods to relabel (`spec.replicas > 0`).
        pods: bool,
    },
    /// Evict a Pod through the Eviction API (`spec.restartAt`); a 429 is not an error.
    EvictPod {
        /// Pod name.
        name: String,
    },
    /// Merge-patch the status subresource with the difference between the observed status and
    /// this one. Only present when they differ.
    PatchStatus(Box<RolloutStatus>),
    /// Emit an event on the Rollout.
    Event(Event),
}

/// Why a reconcile could not finish; the executor counts it as a reconcile error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The spec is invalid (the `InvalidSpec` condition says why).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// An AnalysisRun could not be built (missing template, unresolved argument, ...).
    #[error("analysis: {0}")]
    Analysis(String),
}

impl PlanError {
    /// A stable name for structured logs and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            PlanError::InvalidSpec(_) => "InvalidSpec",
            PlanError::Analysis(_) => "Analysis",
        }
    }
}

/// The decisions of one reconcile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Writes, in order.
    pub writes: Vec<Write>,
    /// Reconcile again after this long even without a watch event.
    pub requeue_after: Option<Duration>,
    /// Set when the reconcile stopped on an error (writes before it are still valid).
    pub error: Option<PlanError>,
}

impl Plan {
    /// Adds a write.
    pub fn push(&mut self, write: Write) {
        self.writes.push(write);
    }

    /// Adds an event.
    pub fn event(&mut self, type_: EventType, reason: &str, message: impl Into<String>) {
        self.writes.push(Write::Event(Event {
            type_,
            reason: reason.to_string(),
            message: message.into(),
        }));
    }

    /// Keeps the earliest requeue. Negative or zero waits become one second, so a deadline that
    /// has just passed is re-checked promptly without a hot loop.
    pub fn requeue(&mut self, after: chrono::Duration) {
        let after = after
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1));
        self.requeue_after = Some(self.requeue_after.map_or(after, |known| known.min(after)));
    }

    /// Adds the writes of a later stage, keeping the earliest requeue; its error, if any,
    /// becomes this plan's.
    pub fn append(&mut self, later: Plan) {
        self.writes.extend(later.writes);
        if let Some(after) = later.requeue_after {
            self.requeue_after = Some(self.requeue_after.map_or(after, |known| known.min(after)));
        }
        if later.error.is_some() {
            self.error = later.error;
        }
    }

    /// The status this plan writes, if any.
    pub fn status(&self) -> Option<&RolloutStatus> {
        self.writes.iter().rev().find_map(|write| match write {
            Write::PatchStatus(status) => Some(status.as_ref()),
            _ => None,
        })
    }

    /// The events of this plan, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.writes.iter().filter_map(|write| match write {
            Write::Event(event) => Some(event),
            _ => None,
        })
    }
}
