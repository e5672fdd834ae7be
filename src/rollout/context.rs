//! The working state of one canary reconcile ([`Ctx`], upstream's `rolloutContext`) and the
//! pipeline that walks it (spec §3.1). Each stage lives in its own module and appends writes
//! to `ctx.plan`; a stage that changed something the next reconcile must see first ends the
//! reconcile ("stop after X"), which keeps every reconcile idempotent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::analysis::{self, RunState};
use super::conditions;
use super::observed::{
    Observed, by_creation, canary_of, canary_params, chrono_to_time, computed_pod_hash,
    computed_steps_hash, creation_time, find_new_rs, find_stable_rs, replicas_of, rs_annotation,
    rs_counts, rs_hash, status_of,
};
use super::pause::PauseContext;
use super::plan::{Plan, Write};
use super::replicas::{CanaryParams, ReplicaSetCounts};
use super::steps::{completed_pause_step, current_step, pause_remaining, steps_of};
use super::{replicaset, restart, services, status, weights};
use crate::api::consts::{annotation, label};
use crate::api::{CanaryStep, CanaryStrategy, PauseReason, Rollout, RolloutStatus};

/// Everything one reconcile knows and has decided so far.
pub(crate) struct Ctx<'a> {
    /// The observed world.
    pub obs: &'a Observed,
    /// The Rollout.
    pub ro: &'a Rollout,
    /// Its canary strategy.
    pub canary: &'a CanaryStrategy,
    /// The reconcile's time.
    pub now: DateTime<Utc>,
    /// `now` as stored in the API (whole seconds).
    pub now_time: Time,
    /// The status as read; the status patch is the difference from it.
    pub observed: RolloutStatus,
    /// Upstream's `c.rollout.Status`: the observed status plus the Progressing condition set
    /// when the new ReplicaSet was created or first found.
    pub prev: RolloutStatus,
    /// Owned ReplicaSets, plus the new one when this plan creates it.
    pub rss: Vec<ReplicaSet>,
    /// Index of the new ReplicaSet in `rss`.
    pub new_rs: Option<usize>,
    /// Index of the stable ReplicaSet in `rss` (may equal `new_rs`).
    pub stable_rs: Option<usize>,
    /// Indices of the other ReplicaSets, oldest first.
    pub others: Vec<usize>,
    /// The Rollout's `rollout.argoproj.io/revision`, as synced by this plan.
    pub revision: Option<i64>,
    /// The replica math's view of the Rollout and its observed status.
    pub params: CanaryParams,
    /// Pause/abort decisions.
    pub pause: PauseContext,
    /// Upstream's `c.newStatus`: weights, analysis run statuses and `restartedAt` decided
    /// along the way, folded into the final status.
    pub new_status: RolloutStatus,
    /// AnalysisRuns: current and other, and what this reconcile made current.
    pub runs: RunState,
    /// Current `rollouts-pod-template-hash` selector of each referenced Service.
    pub selectors: BTreeMap<String, String>,
    /// The promotion windows of the Rollout (Davy's `davy.dev/promotion-windows`), if any.
    pub windows: Option<super::windows::PromotionWindows>,
    /// Set when a window held a completed step: the phase message that says until when.
    pub window_wait: Option<String>,
    /// The plan being built.
    pub plan: Plan,
}

impl<'a> Ctx<'a> {
    /// The context of a canary Rollout; `None` for other strategies.
    pub fn new(obs: &'a Observed, now: DateTime<Utc>) -> Option<Self> {
        let ro = &obs.rollout;
        let canary = canary_of(ro)?;
        let observed = status_of(ro);
        let rss = obs.replica_sets.clone();
        let new_rs = find_new_rs(ro, &rss);
        let stable_rs = find_stable_rs(&observed.stable_rs, new_rs, &rss);
        let others = by_creation(&rss)
            .into_iter()
            .filter(|index| Some(*index) != new_rs && Some(*index) != stable_rs)
            .collect();
        let selectors = obs
            .services
            .iter()
            .map(|(name, service)| {
                let hash = service
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.selector.as_ref())
                    .and_then(|selector| selector.get(label::POD_TEMPLATE_HASH))
                    .cloned()
                    .unwrap_or_default();
                (name.clone(), hash)
            })
            .collect();
        let revision = ro
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(annotation::REVISION))
            .and_then(|text| text.parse().ok());
        let mut new_status = RolloutStatus {
            restarted_at: observed.restarted_at.clone(),
            alb: observed.alb.clone(),
            albs: observed.albs.clone(),
            duration: observed.duration.clone(),
            ..RolloutStatus::default()
        };
        new_status.canary.weights = observed.canary.weights.clone();
        let mut pause = PauseContext::default();
        // Upstream: a fully promoted rollout never stays aborted.
        if observed.abort && observed.stable_rs == observed.current_pod_hash {
            pause.remove_abort();
        }
        if observed.abort
            && let Some(reason) = ro
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(super::pause::ABORT_REASON_ANNOTATION))
                .filter(|reason| !reason.is_empty())
        {
            pause.note_abort_reason(reason);
        }
        Some(Ctx {
            obs,
            ro,
            canary,
            now,
            now_time: chrono_to_time(now),
            params: canary_params(ro, &observed),
            runs: RunState::new(&obs.analysis_runs, &observed),
            prev: observed.clone(),
            observed,
            rss,
            new_rs,
            stable_rs,
            others,
            revision,
            pause,
            new_status,
            selectors,
            windows: None,
            window_wait: None,
            plan: Plan::default(),
        })
    }

    /// The pipeline (spec §3.1).
    pub fn reconcile(&mut self) {
        if self.ro.spec.replicas.is_none() {
            // HPA needs the field; the write bumps the generation and brings us back.
            self.plan
                .push(Write::PatchRolloutSpecReplicas { replicas: 1 });
            return;
        }
        if self.generation_observed() {
            let updates =
                conditions::paused_condition_updates(&self.ro.spec, &self.prev, &self.now_time);
            if !updates.is_empty() {
                status::patch_conditions(self, updates);
                return;
            }
        }
        if self.is_scaling_event() {
            replicaset::sync_revision(self, false);
            replicaset::reconcile_canary_replica_sets(self);
            status::persist_replicas_only(self);
            return;
        }
        if self.template_or_steps_changed() {
            replicaset::sync_revision(self, false);
            status::sync_canary(self);
            return;
        }
        replicaset::sync_revision(self, true);
        restart::reconcile(self);
        replicaset::cleanup_history(self);
        services::reconcile(self);
        weights::reconcile(self);
        if let Err(error) = analysis::reconcile(self) {
            self.plan.error = Some(error);
            self.plan.requeue(chrono::Duration::seconds(10));
            return;
        }
        if self.pause.has_add_pause() || self.pause.has_add_abort() {
            // An Inconclusive run paused, or a failed one aborted: write that first, so no
            // ReplicaSet moves on a decision this reconcile just overturned.
            status::sync_canary(self);
            return;
        }
        if replicaset::reconcile_canary_replica_sets(self) {
            status::sync_canary(self);
            return;
        }
        self.reconcile_canary_pause();
        status::sync_canary(self);
    }

    /// The steps of the strategy.
    pub fn steps(&self) -> &'a [CanaryStep] {
        steps_of(self.canary)
    }

    /// `spec.replicas` (default 1).
    pub fn replicas(&self) -> i32 {
        replicas_of(self.ro)
    }

    /// The Rollout's name.
    pub fn name(&self) -> &'a str {
        self.ro.metadata.name.as_deref().unwrap_or("")
    }

    /// `metadata.generation`.
    pub fn generation(&self) -> i64 {
        self.ro.metadata.generation.unwrap_or(0)
    }

    /// The status already reports the current generation.
    pub fn generation_observed(&self) -> bool {
        self.prev.observed_generation == self.generation().to_string()
    }

    /// Aborted (requested, decided this reconcile, and not lifted).
    pub fn aborted(&self) -> bool {
        self.pause.is_aborted(&self.prev)
    }

    /// Upstream `IsFullyPromoted` on the status as read.
    pub fn fully_promoted(&self) -> bool {
        self.prev.stable_rs == self.prev.current_pod_hash
    }

    /// The new ReplicaSet.
    pub fn new_rs(&self) -> Option<&ReplicaSet> {
        self.new_rs.map(|index| &self.rss[index])
    }

    /// The stable ReplicaSet.
    pub fn stable_rs(&self) -> Option<&ReplicaSet> {
        self.stable_rs.map(|index| &self.rss[index])
    }

    /// Replica-math counts of the new ReplicaSet.
    pub fn new_counts(&self) -> Option<ReplicaSetCounts> {
        self.new_rs().map(rs_counts)
    }

    /// Replica-math counts of the stable ReplicaSet.
    pub fn stable_counts(&self) -> Option<ReplicaSetCounts> {
        self.stable_rs().map(rs_counts)
    }

    /// Replica-math counts of the other ReplicaSets, oldest first.
    pub fn other_counts(&self) -> Vec<ReplicaSetCounts> {
        self.others
            .iter()
            .map(|&index| rs_counts(&self.rss[index]))
            .collect()
    }

    /// The pod-template hash of the new ReplicaSet, or the computed one before it exists.
    pub fn current_pod_hash(&self) -> String {
        match self.new_rs() {
            Some(rs) => rs_hash(rs).to_string(),
            None => computed_pod_hash(self.ro),
        }
    }

    /// `spec.paused`, or an `InconclusiveAnalysisRun` pause: ReplicaSets stay as they are.
    pub fn halted(&self) -> bool {
        self.ro.spec.paused == Some(true)
            || self
                .prev
                .pause_conditions
                .iter()
                .any(|condition| condition.reason == PauseReason::InconclusiveAnalysisRun)
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was last scaled for a different
    /// `spec.replicas` (HPA or user scaled the Rollout).
    fn is_scaling_event(&self) -> bool {
        let replicas = self.replicas();
        self.rss.iter().any(|rs| {
            super::observed::rs_spec_replicas(rs) > 0
                && rs_annotation(rs, annotation::DESIRED_REPLICAS)
                    .and_then(|text| text.parse::<i32>().ok())
                    .is_some_and(|desired| desired != replicas)
        })
    }

    /// Upstream `PodTemplateOrStepsChanged`: the steps hash or the new pod hash differs from
    /// what the status recorded (a new revision, spec §3.6).
    pub fn template_or_steps_changed(&self) -> bool {
        let steps_changed = !self.prev.current_step_hash.is_empty()
            && self.prev.current_step_hash != computed_steps_hash(self.ro);
        let pod_changed = !self.prev.current_pod_hash.is_empty()
            && self.prev.current_pod_hash != self.current_pod_hash();
        steps_changed || pod_changed
    }

    /// Upstream `isRollbackWithinWindow` (spec §3.7): the new ReplicaSet is older than the
    /// stable one and fewer than `rollbackWindow.revisions` ReplicaSets were created between them.
    pub fn rollback_within_window(&self) -> bool {
        let (Some(new_rs), Some(stable_rs)) = (self.new_rs(), self.stable_rs()) else {
            return false;
        };
        let created = |rs: &ReplicaSet| creation_time(rs.metadata.creation_timestamp.as_ref());
        let (new_at, stable_at) = (created(new_rs), created(stable_rs));
        if new_at >= stable_at {
            return false;
        }
        let Some(revisions) = self
            .ro
            .spec
            .rollback_window
            .as_ref()
            .and_then(|window| window.revisions)
            .filter(|revisions| *revisions > 0)
        else {
            return false;
        };
        let between = self
            .rss
            .iter()
            .filter(|rs| rs_annotation(rs, annotation::EXPERIMENT_NAME).is_none_or(str::is_empty))
            .filter(|rs| created(rs) < stable_at && new_at < created(rs))
            .count();
        i64::try_from(between).unwrap_or(i64::MAX) < i64::from(revisions)
    }

    /// Upstream `reconcileCanaryPause`: on a pause step, add the `CanaryPauseStep` condition
    /// unless the user already resumed it; schedule a look at a timed pause's expiry.
    fn reconcile_canary_pause(&mut self) {
        if self.ro.spec.paused == Some(true) || self.prev.promote_full || self.aborted() {
            return;
        }
        let (Some(step), Some(_)) = current_step(self.steps(), &self.prev) else {
            return;
        };
        let Some(pause) = step.pause.as_ref() else {
            return;
        };
        let started = self
            .prev
            .pause_conditions
            .iter()
            .any(|condition| condition.reason == PauseReason::CanaryPauseStep);
        if !started {
            if !self.prev.controller_pause {
                self.pause.add_pause(PauseReason::CanaryPauseStep);
                if let Some(seconds) = super::steps::pause_duration_seconds(pause) {
                    self.plan.requeue(chrono::Duration::seconds(seconds));
                }
            }
            return;
        }
        if let Some(remaining) = pause_remaining(pause, &self.prev, self.now) {
            self.plan.requeue(remaining);
        }
    }

    /// Upstream `completedCurrentCanaryStep`.
    pub fn completed_current_step(&self) -> bool {
        if self.ro.spec.paused == Some(true) {
            return false;
        }
        let (Some(step), _) = current_step(self.steps(), &self.prev) else {
            return false;
        };
        if let Some(pause) = step.pause.as_ref() {
            return completed_pause_step(pause, &self.prev, self.now);
        }
        if step.set_canary_scale.is_some() || step.set_weight.is_some() {
            let weights = super::observed::math_weights(self.new_status.canary.weights.as_ref());
            let at_desired = super::replicas::at_desired_replica_counts(
                &self.params,
                self.new_counts().as_ref(),
                self.stable_counts().as_ref(),
                &self.other_counts(),
                weights.as_ref(),
            );
            let unverified = step.set_weight.is_some()
                && self
                    .new_status
                    .canary
                    .weights
                    .as_ref()
                    .is_some_and(|weights| weights.verified == Some(false));
            return at_desired && !unverified;
        }
        if step.analysis.is_some() {
            return self.runs.step_phase() == Some(crate::api::AnalysisPhase::Successful);
        }
        step.set_header_route.is_some() || step.set_mirror_route.is_some()
    }
}
