//! The end of every reconcile that reaches the status (spec §2, §2.1; upstream
//! `calculateRolloutConditions`, `persistRolloutStatus`): a strategy hands over its [`Draft`]
//! of the new status and this stage adds the conditions, the pause fields, the observed
//! generation and the phase, and writes the patch only when something changed. Nothing here
//! depends on the strategy.

use chrono::Duration;

use super::conditions::{self, ConditionInputs};
use super::observed::{
    rs_available, rs_name, rs_ready, rs_scale_down_deadline, rs_status_replicas, time_to_chrono,
};
use super::pause::PauseContext;
use super::phase::rollout_phase;
use super::plan::{EventType, Plan, Write};
use super::replicas::other::ScaleDownDeadline;
use super::world::View;
use crate::api::consts::{condition_type, event_reason, reason};
use crate::api::{RolloutCondition, RolloutPhase, RolloutStatus};

/// What a strategy decided about the status, before conditions and phase.
#[derive(Debug)]
pub(crate) struct Draft {
    /// The new status so far.
    pub status: RolloutStatus,
    /// The pause/abort decisions, final apart from the progress-deadline abort.
    pub pause: PauseContext,
    /// Set when a promotion window held a completed step: the phase message that says until
    /// when.
    pub window_wait: Option<String>,
    /// The current step is a pause, analysis or experiment (no progress deadline there).
    pub indefinite_step: bool,
    /// The events decided with the status (step completed, promoted, ...), before the
    /// condition events.
    pub plan: Plan,
    /// Blue-green: the active ReplicaSet is saturated (`None` for a canary).
    pub active_saturated: Option<bool>,
}

/// Upstream `calculateBaseStatus`, shared by both strategies: the status the earlier stages
/// accumulated (`new_status`) plus the counts and the current hash, the previous conditions
/// (minus `InvalidSpec`: this reconcile got past validation) and `promoteFull` while it is
/// pending. As upstream, `promoteFull` is compared with `new_status`'s `stableRS`, which no
/// stage has set yet: a pending full promotion stays until the promotion clears it.
pub(crate) fn base_status(v: &View<'_>, new_status: &RolloutStatus) -> RolloutStatus {
    let mut status = new_status.clone();
    status.current_pod_hash = v.current_pod_hash();
    status.replicas = v.rss.iter().map(rs_status_replicas).sum();
    status.updated_replicas = v.new_rs().map_or(0, rs_status_replicas);
    status.ready_replicas = v.rss.iter().map(rs_ready).sum();
    status.collision_count = v.prev.collision_count;
    status.conditions = v.prev.conditions.clone();
    conditions::remove(&mut status, condition_type::INVALID_SPEC);
    status.promote_full = status.current_pod_hash != status.stable_rs && v.prev.promote_full;
    status
}

/// Conditions, then persistence: the writes that end the reconcile.
pub(crate) fn conclude(v: &View<'_>, draft: Draft) -> Plan {
    let Draft {
        status,
        mut pause,
        window_wait,
        indefinite_step,
        mut plan,
        active_saturated,
    } = draft;
    let replica_failure = replica_failure(v);
    let scale_down_pending = v.others.iter().any(|&index| {
        matches!(rs_scale_down_deadline(&v.rss[index]), ScaleDownDeadline::At(at) if at > v.now)
    });
    let new_rs_name = v.new_rs().map(|rs| rs_name(rs).to_string());
    let name = v.name();
    let inputs = ConditionInputs {
        spec: &v.ro.spec,
        name,
        generation: v.generation(),
        revision: v.revision.unwrap_or(0),
        new_rs: new_rs_name.as_deref(),
        all_available: v.rss.iter().map(rs_available).sum(),
        replica_failure,
        indefinite_step,
        scale_down_pending,
        fully_promoted: v.fully_promoted(),
        active_saturated,
        now: v.now,
        now_time: v.now_time,
    };
    let status = conditions::calculate(&inputs, v.prev, status, &mut pause, &mut plan);
    let persisted = persist(v, &pause, window_wait.as_deref(), indefinite_step, status);
    plan.append(persisted);
    plan
}

/// The `ReplicaFailure` condition of the new ReplicaSet, else of any ReplicaSet.
fn replica_failure(v: &View<'_>) -> Option<RolloutCondition> {
    let failure_of = |rs: &k8s_openapi::api::apps::v1::ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|status| status.conditions.as_ref())
            .and_then(|list| {
                list.iter()
                    .find(|c| c.type_ == condition_type::REPLICA_FAILURE)
            })
            .map(|c| RolloutCondition {
                type_: condition_type::REPLICA_FAILURE.to_string(),
                status: c.status.clone(),
                last_update_time: c
                    .last_transition_time
                    .clone()
                    .unwrap_or_else(|| v.now_time.clone()),
                last_transition_time: c
                    .last_transition_time
                    .clone()
                    .unwrap_or_else(|| v.now_time.clone()),
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            })
    };
    v.new_rs()
        .and_then(failure_of)
        .or_else(|| v.rss.iter().find_map(failure_of))
}

/// Upstream `persistRolloutStatus`: pause/abort fields, observed generation, phase; the patch
/// only when something changed, the pause/resume events, and the progress-deadline requeue.
pub(crate) fn persist(
    v: &View<'_>,
    pause: &PauseContext,
    window_wait: Option<&str>,
    indefinite_step: bool,
    mut status: RolloutStatus,
) -> Plan {
    let mut plan = Plan::default();
    pause.apply(v.prev, &mut status, v.now_time);
    if window_wait.is_some() && status.pause_conditions.is_empty() && v.prev.controller_pause {
        // A user resume held by a promotion window stays a resume until the window opens:
        // without the marker the next reconcile would pause the step again.
        status.controller_pause = true;
    }
    if v.ro.spec.workload_ref.is_none() {
        status.workload_observed_generation = String::new();
    } else {
        // Upstream: the generation the resolution recorded in the annotation this reconcile.
        status.workload_observed_generation = v.obs.workload.generation.clone();
    }
    status.observed_generation = v.generation().to_string();
    let (mut phase, mut message) = rollout_phase(&v.ro.spec, &status);
    if let Some(wait) = window_wait
        && phase != RolloutPhase::Degraded
    {
        // Argo CD reads Paused as Suspended: waiting for a time, not stuck.
        phase = RolloutPhase::Paused;
        message = wait.to_string();
    }
    status.phase = Some(phase);
    status.message = message;
    requeue_stuck(v, &mut plan, indefinite_step, &status);
    if status == *v.observed {
        return plan;
    }
    let was_paused = !v.prev.pause_conditions.is_empty();
    let now_paused = !status.pause_conditions.is_empty();
    let aborted = status.aborted_at.is_some();
    let first_reason = status
        .pause_conditions
        .first()
        .map(|c| c.reason.as_str().to_string());
    plan.push(Write::PatchStatus(Box::new(status)));
    if was_paused != now_paused {
        if let Some(first) = first_reason {
            plan.event(
                EventType::Normal,
                event_reason::ROLLOUT_PAUSED,
                format!("Rollout is paused ({first})"),
            );
        } else if !aborted {
            plan.event(
                EventType::Normal,
                event_reason::ROLLOUT_RESUMED,
                "Rollout is resumed",
            );
        }
    }
    plan
}

/// Upstream `requeueStuckRollout`: look again just after the progress deadline would pass.
fn requeue_stuck(v: &View<'_>, plan: &mut Plan, indefinite_step: bool, status: &RolloutStatus) {
    let Some(current) = conditions::get(v.prev, condition_type::PROGRESSING) else {
        return;
    };
    let paused = !v.prev.pause_conditions.is_empty() || v.ro.spec.paused == Some(true);
    if conditions::rollout_healthy(&v.ro.spec, v.generation(), v.prev, status)
        || current.reason == reason::PROGRESS_DEADLINE_EXCEEDED
        || paused
        || v.prev.abort
        || indefinite_step
    {
        return;
    }
    let deadline = i64::from(v.ro.spec.progress_deadline_seconds());
    let after = time_to_chrono(&current.last_update_time) + Duration::seconds(deadline) - v.now;
    plan.requeue(after + Duration::seconds(1));
}

/// The replicas-only path of a scaling event: the observed status with fresh counts.
pub(crate) fn replicas_only(v: &View<'_>, indefinite_step: bool) -> Plan {
    let mut status = v.prev.clone();
    status.available_replicas = v.rss.iter().map(rs_available).sum();
    status.hpa_replicas = v.rss.iter().map(rs_status_replicas).sum();
    persist(v, v.pause, None, indefinite_step, status)
}

/// The first stages of every strategy's pipeline (spec §3.1), one home for both: without
/// `spec.replicas` the plan writes 1 and stops (HPA needs the field; the write bumps the
/// generation and brings us back); with paused-condition bookkeeping due (generation observed)
/// it patches the conditions and stops. `None`: the strategy's own stages run.
pub(crate) fn bookkeeping(v: &View<'_>) -> Option<Plan> {
    if v.ro.spec.replicas.is_none() {
        let mut plan = Plan::default();
        plan.push(Write::PatchRolloutSpecReplicas { replicas: 1 });
        return Some(plan);
    }
    if v.generation_observed() {
        let updates = conditions::paused_condition_updates(&v.ro.spec, v.prev, v.now_time);
        if !updates.is_empty() {
            return Some(paused_conditions(v, updates));
        }
    }
    None
}

/// Writes the `Progressing`/`Paused` conditions upstream's `checkPausedConditions` patches,
/// then stops: the next reconcile continues from the patched status.
pub(crate) fn paused_conditions(v: &View<'_>, updates: Vec<RolloutCondition>) -> Plan {
    let mut plan = Plan::default();
    let mut status = v.prev.clone();
    for condition in updates {
        conditions::set(&mut status, condition);
    }
    status.observed_generation = v.generation().to_string();
    let (phase, message) = rollout_phase(&v.ro.spec, &status);
    status.phase = Some(phase);
    status.message = message;
    if status != *v.observed {
        plan.push(Write::PatchStatus(Box::new(status)));
    }
    plan
}
