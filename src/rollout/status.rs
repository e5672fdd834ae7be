//! The new Rollout status of a canary reconcile (spec §2, §2.1, §3.6; upstream
//! `syncRolloutStatusCanary`, `calculateBaseStatus`, `persistRolloutStatus`): counts, hashes,
//! step advance, promotion, abort, conditions, phase; written only when it differs from what
//! was read, and only the fields the controller owns move.

use chrono::{DateTime, Duration, Utc};

use super::conditions::{self, ConditionInputs};
use super::context::Ctx;
use super::observed::{
    Observed, chrono_to_time, computed_steps_hash, rs_available, rs_hash, rs_name, rs_ready,
    rs_status_replicas, status_of, time_to_chrono,
};
use super::phase::rollout_phase;
use super::plan::{EventType, Plan, PlanError, Write};
use super::replicas::other::ScaleDownDeadline;
use super::steps::{current_step, is_indefinite_step, step_count, step_string};
use crate::api::consts::{condition_status, condition_type, event_reason, reason};
use crate::api::{CanaryStep, PauseReason, RolloutCondition, RolloutPhase, RolloutStatus};

/// `app=foo,tier=web`: the Rollout selector as `metav1.FormatLabelSelector` writes it (for the
/// scale subresource).
pub fn format_selector(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.clone().unwrap_or_default().join(",");
        parts.push(match requirement.operator.as_str() {
            "In" => format!("{} in ({values})", requirement.key),
            "NotIn" => format!("{} notin ({values})", requirement.key),
            "Exists" => requirement.key.clone(),
            "DoesNotExist" => format!("!{}", requirement.key),
            other => format!("{} {other} ({values})", requirement.key),
        });
    }
    if parts.is_empty() {
        "<none>".to_string()
    } else {
        parts.join(",")
    }
}

/// Upstream `calculateBaseStatus`: the accumulated `c.newStatus` plus counts, hashes and the
/// previous conditions (minus a resolved `InvalidSpec`).
fn base_status(ctx: &Ctx<'_>) -> RolloutStatus {
    let mut status = ctx.new_status.clone();
    status.current_pod_hash = ctx.current_pod_hash();
    status.replicas = ctx.rss.iter().map(rs_status_replicas).sum();
    status.updated_replicas = ctx.new_rs().map_or(0, rs_status_replicas);
    status.ready_replicas = ctx.rss.iter().map(rs_ready).sum();
    status.collision_count = ctx.prev.collision_count;
    status.conditions = ctx.prev.conditions.clone();
    conditions::remove(&mut status, condition_type::INVALID_SPEC);
    status.promote_full = status.current_pod_hash != status.stable_rs && ctx.prev.promote_full;
    status
}

/// Upstream `syncRolloutStatusCanary`: the status after this reconcile, then persisted.
pub(crate) fn sync_canary(ctx: &mut Ctx<'_>) {
    let mut status = base_status(ctx);
    status.available_replicas = ctx.rss.iter().map(rs_available).sum();
    status.hpa_replicas = ctx.rss.iter().map(rs_status_replicas).sum();
    status.selector = format_selector(ctx.ro.spec.selector.as_ref());
    status.canary.stable_ping_pong = ctx.prev.canary.stable_ping_pong.clone();
    status.canary.step_plugin_statuses = ctx.prev.canary.step_plugin_statuses.clone();
    status.stable_rs = ctx.prev.stable_rs.clone();
    status.current_step_hash = computed_steps_hash(ctx.ro);
    let steps = ctx.steps();
    let count = step_count(steps);
    let (step, mut index) = current_step(steps, &ctx.prev);

    if ctx.template_or_steps_changed() {
        reset(ctx, &mut status);
        if let Some(new_rs) = ctx.new_rs()
            && count > 0
        {
            if ctx.prev.stable_rs == rs_hash(new_rs) {
                ctx.plan.event(
                    EventType::Normal,
                    event_reason::SKIP_STEPS,
                    "Rollback to stable ReplicaSets",
                );
                status.current_step_index = Some(count);
            } else if ctx.rollback_within_window() && super::observed::rs_spec_replicas(new_rs) > 0
            {
                ctx.plan.event(
                    EventType::Normal,
                    event_reason::SKIP_STEPS,
                    "Rollback to active ReplicaSets within RollbackWindow",
                );
                status.current_step_index = Some(count);
            }
        }
        return finish(ctx, status);
    }

    if ctx.prev.promote_full || ctx.rollback_within_window() {
        ctx.pause.clear_pause();
        ctx.pause.remove_abort();
        if count > 0 {
            index = Some(count);
        }
    }
    if let Some(why) = should_full_promote(ctx) {
        promote_stable(ctx, &mut status, &why);
        return finish(ctx, status);
    }
    if ctx.aborted() {
        if count > 0 {
            status.current_step_index = Some(if status.stable_rs == status.current_pod_hash {
                count
            } else {
                0
            });
        }
        return finish(ctx, status);
    }
    if let (Some(step), Some(current)) = (step, index)
        && current < count
        && ctx.completed_current_step()
        && !held_by_window(ctx, step)
    {
        let text = step_string(step);
        let next = current + 1;
        index = Some(next);
        status.canary.current_step_analysis_run_status = None;
        ctx.plan.event(
            EventType::Normal,
            event_reason::ROLLOUT_STEP_COMPLETED,
            format!("Rollout step {next}/{count} completed ({text})"),
        );
        ctx.pause.remove_pause(PauseReason::CanaryPauseStep);
    }
    status.current_step_index = index;
    finish(ctx, status);
}

/// Davy's promotion windows: outside every window a completed pause or analysis step stays
/// current (other steps still advance, aborts and `promoteFull` are not held); the phase says
/// when the next window opens and the reconcile comes back then.
fn held_by_window(ctx: &mut Ctx<'_>, step: &CanaryStep) -> bool {
    let Some(windows) = ctx.windows.as_ref() else {
        return false;
    };
    if ctx.prev.promote_full
        || (step.pause.is_none() && step.analysis.is_none())
        || windows.is_open(ctx.now)
    {
        return false;
    }
    let next = windows.next_open(ctx.now);
    if let Some(next) = next {
        ctx.plan.requeue(next - ctx.now);
    }
    ctx.window_wait = Some(super::windows::waiting_message(next));
    true
}

/// Upstream `resetRolloutStatus`: a new revision starts from step 0 with no pause, abort,
/// full promotion or analysis run; a pending restart is moot (all pods will be new).
fn reset(ctx: &mut Ctx<'_>, status: &mut RolloutStatus) {
    ctx.pause.clear_pause();
    ctx.pause.remove_abort();
    status.restarted_at = ctx.ro.spec.restart_at.clone();
    status.promote_full = false;
    status.blue_green.pre_promotion_analysis_run_status = None;
    status.blue_green.post_promotion_analysis_run_status = None;
    status.blue_green.scale_up_preview_check_point = false;
    status.canary.current_step_analysis_run_status = None;
    status.canary.current_background_analysis_run_status = None;
    status.canary.current_experiment = String::new();
    status.canary.step_plugin_statuses = Vec::new();
    status.current_step_index = (!ctx.steps().is_empty()).then_some(0);
}

/// Upstream `shouldFullPromote` for a canary (spec §3.6), in its order.
fn should_full_promote(ctx: &Ctx<'_>) -> Option<String> {
    if ctx.stable_rs.is_none() {
        return Some("Initial deploy".to_string());
    }
    if ctx.aborted() {
        return None;
    }
    if ctx
        .new_rs()
        .is_none_or(|rs| rs_available(rs) != ctx.replicas())
    {
        return None;
    }
    if ctx.prev.promote_full {
        return Some("Full promotion requested".to_string());
    }
    if ctx.rollback_within_window() {
        return Some("Rollback within window".to_string());
    }
    let count = step_count(ctx.steps());
    let index = current_step(ctx.steps(), &ctx.prev).1;
    (count == 0 || index == Some(count)).then(|| format!("Completed all {count} canary steps"))
}

/// Upstream `promoteStable`: the new ReplicaSet becomes stable (event `RolloutCompleted` the
/// first time), pauses, abort and full promotion end, all steps count as done.
fn promote_stable(ctx: &mut Ctx<'_>, status: &mut RolloutStatus, why: &str) {
    ctx.pause.clear_pause();
    ctx.pause.remove_abort();
    status.promote_full = false;
    status.blue_green.scale_up_preview_check_point = false;
    let count = step_count(ctx.steps());
    status.current_step_index = (count > 0).then_some(count);
    if status.stable_rs != status.current_pod_hash {
        status.stable_rs = status.current_pod_hash.clone();
        ctx.plan.event(
            EventType::Normal,
            event_reason::ROLLOUT_COMPLETED,
            format!(
                "Rollout completed update to revision {} ({}): {why}",
                ctx.revision.unwrap_or(0),
                status.current_pod_hash
            ),
        );
    }
}

/// Conditions, then persistence.
fn finish(ctx: &mut Ctx<'_>, status: RolloutStatus) {
    let replica_failure = replica_failure(ctx);
    let scale_down_pending = ctx.others.iter().any(|&index| {
        matches!(super::observed::rs_scale_down_deadline(&ctx.rss[index]), ScaleDownDeadline::At(at) if at > ctx.now)
    });
    let new_rs_name = ctx.new_rs().map(|rs| rs_name(rs).to_string());
    let name = ctx.name();
    let inputs = ConditionInputs {
        spec: &ctx.ro.spec,
        name,
        generation: ctx.generation(),
        revision: ctx.revision.unwrap_or(0),
        new_rs: new_rs_name.as_deref(),
        all_available: ctx.rss.iter().map(rs_available).sum(),
        replica_failure,
        indefinite_step: is_indefinite_step(current_step(ctx.steps(), &ctx.prev).0),
        scale_down_pending,
        fully_promoted: ctx.fully_promoted(),
        now: ctx.now,
        now_time: &ctx.now_time.clone(),
    };
    let prev = ctx.prev.clone();
    let status = conditions::calculate(&inputs, &prev, status, &mut ctx.pause, &mut ctx.plan);
    persist(ctx, status);
}

/// The `ReplicaFailure` condition of the new ReplicaSet, else of any ReplicaSet.
fn replica_failure(ctx: &Ctx<'_>) -> Option<RolloutCondition> {
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
                    .unwrap_or_else(|| ctx.now_time.clone()),
                last_transition_time: c
                    .last_transition_time
                    .clone()
                    .unwrap_or_else(|| ctx.now_time.clone()),
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            })
    };
    ctx.new_rs()
        .and_then(failure_of)
        .or_else(|| ctx.rss.iter().find_map(failure_of))
}

/// Upstream `persistRolloutStatus`: pause/abort fields, observed generation, phase; the patch
/// only when something changed, the pause/resume events, and the progress-deadline requeue.
fn persist(ctx: &mut Ctx<'_>, mut status: RolloutStatus) {
    ctx.pause.apply(&ctx.prev, &mut status, &ctx.now_time);
    if ctx.window_wait.is_some() && status.pause_conditions.is_empty() && ctx.prev.controller_pause
    {
        // A user resume held by a promotion window stays a resume until the window opens:
        // without the marker the next reconcile would pause the step again.
        status.controller_pause = true;
    }
    if ctx.ro.spec.workload_ref.is_none() {
        status.workload_observed_generation = String::new();
    } else {
        status.workload_observed_generation = ctx.prev.workload_observed_generation.clone();
    }
    status.observed_generation = ctx.generation().to_string();
    let (mut phase, mut message) = rollout_phase(&ctx.ro.spec, &status);
    if let Some(wait) = ctx.window_wait.as_ref()
        && phase != RolloutPhase::Degraded
    {
        // Argo CD reads Paused as Suspended: waiting for a time, not stuck.
        phase = RolloutPhase::Paused;
        message = wait.clone();
    }
    status.phase = Some(phase);
    status.message = message;
    requeue_stuck(ctx, &status);
    if status == ctx.observed {
        return;
    }
    let was_paused = !ctx.prev.pause_conditions.is_empty();
    let now_paused = !status.pause_conditions.is_empty();
    let aborted = status.aborted_at.is_some();
    let first_reason = status
        .pause_conditions
        .first()
        .map(|c| c.reason.as_str().to_string());
    ctx.plan.push(Write::PatchStatus(Box::new(status)));
    if was_paused != now_paused {
        if let Some(first) = first_reason {
            ctx.plan.event(
                EventType::Normal,
                event_reason::ROLLOUT_PAUSED,
                format!("Rollout is paused ({first})"),
            );
        } else if !aborted {
            ctx.plan.event(
                EventType::Normal,
                event_reason::ROLLOUT_RESUMED,
                "Rollout is resumed",
            );
        }
    }
}

/// Upstream `requeueStuckRollout`: look again just after the progress deadline would pass.
fn requeue_stuck(ctx: &mut Ctx<'_>, status: &RolloutStatus) {
    let Some(current) = conditions::get(&ctx.prev, condition_type::PROGRESSING) else {
        return;
    };
    let paused = !ctx.prev.pause_conditions.is_empty() || ctx.ro.spec.paused == Some(true);
    if conditions::rollout_healthy(&ctx.ro.spec, ctx.generation(), &ctx.prev, status)
        || current.reason == reason::PROGRESS_DEADLINE_EXCEEDED
        || paused
        || ctx.prev.abort
        || is_indefinite_step(current_step(ctx.steps(), &ctx.prev).0)
    {
        return;
    }
    let deadline = i64::from(ctx.ro.spec.progress_deadline_seconds());
    let after = time_to_chrono(&current.last_update_time) + Duration::seconds(deadline) - ctx.now;
    ctx.plan.requeue(after + Duration::seconds(1));
}

/// The replicas-only path of a scaling event: the observed status with fresh counts.
pub(crate) fn persist_replicas_only(ctx: &mut Ctx<'_>) {
    let mut status = ctx.prev.clone();
    status.available_replicas = ctx.rss.iter().map(rs_available).sum();
    status.hpa_replicas = ctx.rss.iter().map(rs_status_replicas).sum();
    persist(ctx, status);
}

/// Writes the `Progressing`/`Paused` conditions upstream's `checkPausedConditions` patches,
/// then stops: the next reconcile continues from the patched status.
pub(crate) fn patch_conditions(ctx: &mut Ctx<'_>, updates: Vec<RolloutCondition>) {
    let mut status = ctx.prev.clone();
    for condition in updates {
        conditions::set(&mut status, condition);
    }
    status.observed_generation = ctx.generation().to_string();
    let (phase, message) = rollout_phase(&ctx.ro.spec, &status);
    status.phase = Some(phase);
    status.message = message;
    if status != ctx.observed {
        ctx.plan.push(Write::PatchStatus(Box::new(status)));
    }
}

/// An invalid spec (spec §2.3 `InvalidSpec`): only the condition, the observed generation and
/// the phase are written; nothing else is reconciled.
pub fn invalid_spec_plan(obs: &Observed, now: DateTime<Utc>) -> Plan {
    let error = obs.validation_errors.first().cloned().unwrap_or_default();
    invalid_spec_plan_for(obs, &error, now)
}

/// [`invalid_spec_plan`] for this error (e.g. an invalid `davy.dev/promotion-windows`).
pub fn invalid_spec_plan_for(obs: &Observed, error: &str, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan::default();
    let ro = &obs.rollout;
    let observed = status_of(ro);
    let name = ro.metadata.name.clone().unwrap_or_default();
    let text = conditions::invalid_spec_message(&name, error);
    let mut status = observed.clone();
    let unchanged =
        conditions::get(&status, condition_type::INVALID_SPEC).is_some_and(|c| c.message == text);
    if !unchanged {
        conditions::remove(&mut status, condition_type::INVALID_SPEC);
        conditions::set(
            &mut status,
            conditions::new_condition(
                condition_type::INVALID_SPEC,
                condition_status::TRUE,
                reason::INVALID_SPEC,
                &text,
                &chrono_to_time(now),
            ),
        );
    }
    status.observed_generation = ro.metadata.generation.unwrap_or(0).to_string();
    let (phase, message) = rollout_phase(&ro.spec, &status);
    status.phase = Some(phase);
    status.message = message;
    if status != observed {
        plan.push(Write::PatchStatus(Box::new(status)));
    }
    plan.error = Some(PlanError::InvalidSpec(text));
    plan.requeue(Duration::seconds(10));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
    use std::collections::BTreeMap;

    #[test]
    fn selectors_format_like_metav1() {
        let labels = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        let requirement = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        };
        let cases = [
            (None, ""),
            (Some(LabelSelector::default()), "<none>"),
            (
                Some(LabelSelector {
                    match_labels: labels(&[("app", "demo")]),
                    match_expressions: None,
                }),
                "app=demo",
            ),
            (
                Some(LabelSelector {
                    match_labels: labels(&[("tier", "web"), ("app", "demo")]),
                    match_expressions: None,
                }),
                "app=demo,tier=web",
            ),
            (
                Some(LabelSelector {
                    match_labels: labels(&[("app", "demo")]),
                    match_expressions: Some(vec![
                        requirement("env", "In", &["a", "b"]),
                        requirement("skip", "DoesNotExist", &[]),
                        requirement("has", "Exists", &[]),
                        requirement("zone", "NotIn", &["x"]),
                    ]),
                }),
                "app=demo,env in (a,b),!skip,has,zone notin (x)",
            ),
        ];
        for (selector, text) in cases {
            assert_eq!(format_selector(selector.as_ref()), text);
        }
    }
}
