//! The Experiment core: pure decisions about one `Experiment` (spec §1.3 experiment step,
//! upstream `experiments/`). [`plan()`] turns what was observed (the Experiment, the
//! ReplicaSets, Services and AnalysisRuns it owns, the templates its analyses name) and a time
//! into a [`Plan`] of writes; no I/O and no clock.
//!
//! One reconcile, in upstream's order:
//! - an invalid spec only sets the `InvalidSpec` condition ([`status::verify_spec`]);
//! - each template is reconciled to its ReplicaSet and Service ([`templates`]): created with
//!   zero replicas, scaled up on the next pass, scaled down (after `scaleDownDelaySeconds`)
//!   once the experiment finishes or terminates; its `templateStatuses[]` entry follows;
//! - each analysis is reconciled to its AnalysisRun ([`analyses`]): its template verified
//!   until the templates are available, then the run created, followed and terminated;
//! - the phase, message, `availableAt` and conditions are computed from both ([`status`]);
//! - the status is written when it changed, and a requeue asked for at the next deadline
//!   (`availableAt + duration`, a template's progress deadline, a scale-down deadline).
//!
//! A failed create, scale or delete of a template's ReplicaSet or Service, or a failed create
//! of an AnalysisRun, puts that template or analysis in `Error` with the API's message, as
//! upstream ([`failures`]); other failed writes are retried by the next reconcile, which
//! recomputes everything from what it then observes.

pub mod analyses;
pub mod failures;
pub mod objects;
pub mod status;
pub mod templates;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;

use crate::api::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, ExperimentStatus,
};
use crate::rollout::{Event, EventType};

/// Everything one Experiment decision reads, as plain API values.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The Experiment as read.
    pub experiment: Experiment,
    /// ReplicaSets of the namespace that may be the experiment's (claimed by owner uid and the
    /// `experiment.argoproj.io/*` annotations, as upstream).
    pub replica_sets: Vec<ReplicaSet>,
    /// Services that may be the experiment's (claimed the same way).
    pub services: Vec<Service>,
    /// AnalysisRuns the experiment owns or its status names.
    pub analysis_runs: Vec<AnalysisRun>,
    /// AnalysisTemplates the analyses may name.
    pub analysis_templates: Vec<AnalysisTemplate>,
    /// ClusterAnalysisTemplates the analyses may name.
    pub cluster_analysis_templates: Vec<ClusterAnalysisTemplate>,
}

impl Observed {
    /// An observation of `experiment` alone; add the rest field by field.
    pub fn new(experiment: Experiment) -> Self {
        Observed {
            experiment,
            replica_sets: Vec::new(),
            services: Vec::new(),
            analysis_runs: Vec::new(),
            analysis_templates: Vec::new(),
            cluster_analysis_templates: Vec::new(),
        }
    }
}

/// One write of an Experiment reconcile, applied in order by the executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create this ReplicaSet (complete object, zero replicas). AlreadyExists is success.
    CreateReplicaSet(Box<ReplicaSet>),
    /// Set `spec.replicas` of a template's ReplicaSet.
    ScaleReplicaSet {
        /// ReplicaSet name.
        name: String,
        /// New `spec.replicas`.
        replicas: i32,
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
    /// Create this Service. AlreadyExists is success when the Service is the template's.
    CreateService(Box<Service>),
    /// Delete a template's Service (NotFound is success).
    DeleteService {
        /// Service name.
        name: String,
    },
    /// Create this AnalysisRun (complete object).
    CreateAnalysisRun(Box<AnalysisRun>),
    /// Merge-patch `spec.terminate: true` onto an AnalysisRun.
    TerminateAnalysisRun {
        /// AnalysisRun name.
        name: String,
    },
    /// Merge-patch the Experiment's status (no status subresource) to this one.
    PatchStatus(Box<ExperimentStatus>),
    /// An event on the Experiment.
    Event(Event),
    /// An event on the Rollout owning the Experiment (upstream copies AnalysisRun transitions
    /// there so the Rollout's notifications see them).
    RolloutEvent {
        /// The Rollout's name.
        rollout: String,
        /// The event.
        event: Event,
    },
}

/// The decisions of one Experiment reconcile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Writes, in order.
    pub writes: Vec<Write>,
    /// Reconcile again after this long even without a watch event.
    pub requeue_after: Option<Duration>,
}

impl Plan {
    fn event(&mut self, type_: EventType, reason: impl Into<String>, message: impl Into<String>) {
        self.writes.push(Write::Event(Event {
            type_,
            reason: reason.into(),
            message: message.into(),
        }));
    }

    /// Keeps the earliest requeue; a deadline already passed is looked at again in a second.
    fn requeue(&mut self, after: chrono::Duration) {
        let after = after
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1));
        self.requeue_after = Some(self.requeue_after.map_or(after, |known| known.min(after)));
    }

    /// The status this plan writes, if any.
    pub fn status(&self) -> Option<&ExperimentStatus> {
        self.writes.iter().rev().find_map(|write| match write {
            Write::PatchStatus(status) => Some(status.as_ref()),
            _ => None,
        })
    }

    /// The events on the Experiment, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.writes.iter().filter_map(|write| match write {
            Write::Event(event) => Some(event),
            _ => None,
        })
    }
}

/// What the template and analysis passes share while one reconcile runs.
pub(crate) struct Work<'a> {
    /// The observation.
    pub obs: &'a Observed,
    /// The time of the decision.
    pub now: DateTime<Utc>,
    /// The status being built (starts as the observed one).
    pub status: ExperimentStatus,
    /// The experiment's ReplicaSet of each template, as this reconcile leaves it.
    pub replica_sets: BTreeMap<String, ReplicaSet>,
    /// The experiment's Service of each template, as this reconcile leaves it.
    pub services: BTreeMap<String, Service>,
    /// Upstream `isTerminating`, from the observed status.
    pub terminating: bool,
    /// The writes.
    pub plan: Plan,
}

/// Decides one reconcile of the Experiment in `obs` at `now`.
pub fn plan(obs: &Observed, now: DateTime<Utc>) -> Plan {
    let ex = &obs.experiment;
    let observed = ex.status.clone().unwrap_or_default();
    let mut plan = Plan::default();
    if ex.metadata.deletion_timestamp.is_some() {
        return plan;
    }
    if let Some(invalid) = status::invalid_spec_status(ex, &observed, now) {
        patch_status(&mut plan, &observed, invalid);
        return plan;
    }
    let mut work = Work {
        obs,
        now,
        status: observed.clone(),
        replica_sets: objects::claimed_replica_sets(ex, &obs.replica_sets),
        services: objects::claimed_services(ex, &obs.services),
        terminating: status::is_terminating(ex, &observed),
        plan,
    };
    for template in &ex.spec.templates {
        templates::reconcile(&mut work, template);
    }
    for analysis in ex.spec.analyses.iter().flatten() {
        analyses::reconcile(&mut work, analysis);
    }
    status::calculate(&mut work);
    let mut plan = std::mem::take(&mut work.plan);
    if let Some(after) = status::requeue_after(ex, &work.status, now) {
        plan.requeue(after);
    }
    let new_phase = work.status.phase.clone();
    patch_status(&mut plan, &observed, work.status);
    if observed.phase != new_phase {
        let phase = new_phase.map(|p| p.to_string()).unwrap_or_default();
        let type_ = if matches!(phase.as_str(), "Error" | "Failed" | "Inconclusive") {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let old = observed.phase.map(|p| p.to_string()).unwrap_or_default();
        plan.event(
            type_,
            format!("Experiment{phase}"),
            format!("Experiment transitioned from {old} -> {phase}"),
        );
    }
    plan
}

fn patch_status(plan: &mut Plan, observed: &ExperimentStatus, new: ExperimentStatus) {
    if *observed != new {
        plan.writes.push(Write::PatchStatus(Box::new(new)));
    }
}
