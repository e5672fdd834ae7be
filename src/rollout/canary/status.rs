//! The new status of a canary reconcile (spec §2, §3.6; upstream `syncRolloutStatusCanary`,
//! `calculateBaseStatus`, `resetRolloutStatus`, `shouldFullPromote`, `promoteStable`): counts
//! and hashes, step advance, promotion, abort, and Davy's promotion windows. The result is a
//! [`Draft`] that `crate::rollout::report` finishes with conditions and phase.

use crate::api::consts::event_reason;
use crate::api::selector::format_label_selector;
use crate::api::{AnalysisPhase, CanaryStep, PauseReason, RolloutStatus};
use crate::rollout::observed::{
    computed_steps_hash, rs_available, rs_hash, rs_spec_replicas, rs_status_replicas,
};
use crate::rollout::pause::PauseContext;
use crate::rollout::plan::{EventType, Plan};
use crate::rollout::report::{self, Draft};
use crate::rollout::steps::{current_step, is_indefinite_step, step_count, step_string};
use crate::rollout::windows::waiting_message;
use crate::rollout::world::View;

use super::step::completed_current_step;

/// The status stage's working copy, private to this module.
struct Work {
    pause: PauseContext,
    plan: Plan,
    window_wait: Option<String>,
}

/// Upstream `syncRolloutStatusCanary`: the status after this reconcile, from `new_status`
/// (what the earlier stages decided: weights, analysis runs, restart) and the phase of the
/// current step's AnalysisRun. Step advance, full promotion, abort and reset are decided here.
pub(crate) fn decide(
    v: &View<'_>,
    new_status: &RolloutStatus,
    step_run: Option<AnalysisPhase>,
) -> Draft {
    let mut work = Work {
        pause: v.pause.clone(),
        plan: Plan::default(),
        window_wait: None,
    };
    let status = sync(v, &mut work, new_status, step_run);
    Draft {
        status,
        pause: work.pause,
        window_wait: work.window_wait,
        indefinite_step: is_indefinite_step(current_step(v.steps(), v.prev).0),
        plan: work.plan,
        active_saturated: None,
    }
}

fn sync(
    v: &View<'_>,
    w: &mut Work,
    new_status: &RolloutStatus,
    step_run: Option<AnalysisPhase>,
) -> RolloutStatus {
    let mut status = report::base_status(v, new_status);
    status.available_replicas = v.rss.iter().map(rs_available).sum();
    status.hpa_replicas = v.rss.iter().map(rs_status_replicas).sum();
    status.selector = format_label_selector(v.ro.spec.selector.as_ref());
    status.canary.stable_ping_pong = v.prev.canary.stable_ping_pong.clone();
    status.canary.step_plugin_statuses = v.prev.canary.step_plugin_statuses.clone();
    status.stable_rs = v.prev.stable_rs.clone();
    status.current_step_hash = computed_steps_hash(v.ro);
    let steps = v.steps();
    let count = step_count(steps);
    let (step, mut index) = current_step(steps, v.prev);

    if v.template_or_steps_changed() {
        reset(v, w, &mut status);
        if let Some(new_rs) = v.new_rs()
            && count > 0
        {
            if v.prev.stable_rs == rs_hash(new_rs) {
                w.plan.event(
                    EventType::Normal,
                    event_reason::SKIP_STEPS,
                    "Rollback to stable ReplicaSets",
                );
                status.current_step_index = Some(count);
            } else if v.rollback_within_window() && rs_spec_replicas(new_rs) > 0 {
                w.plan.event(
                    EventType::Normal,
                    event_reason::SKIP_STEPS,
                    "Rollback to active ReplicaSets within RollbackWindow",
                );
                status.current_step_index = Some(count);
            }
        }
        return status;
    }

    if v.prev.promote_full || v.rollback_within_window() {
        w.pause.clear_pause();
        w.pause.remove_abort();
        if count > 0 {
            index = Some(count);
        }
    }
    if let Some(why) = should_full_promote(v, &w.pause) {
        promote_stable(v, w, &mut status, &why);
        return status;
    }
    if w.pause.is_aborted(v.prev) {
        if count > 0 {
            status.current_step_index = Some(if status.stable_rs == status.current_pod_hash {
                count
            } else {
                0
            });
        }
        return status;
    }
    if let (Some(step), Some(current)) = (step, index)
        && current < count
        && completed_current_step(v, new_status.canary.weights.as_ref(), step_run)
        && !held_by_window(v, w, step)
    {
        let text = step_string(step);
        let next = current + 1;
        index = Some(next);
        status.canary.current_step_analysis_run_status = None;
        w.plan.event(
            EventType::Normal,
            event_reason::ROLLOUT_STEP_COMPLETED,
            format!("Rollout step {next}/{count} completed ({text})"),
        );
        w.pause.remove_pause(PauseReason::CanaryPauseStep);
    }
    status.current_step_index = index;
    status
}

/// Davy's promotion windows: outside every window a completed pause or analysis step stays
/// current (other steps still advance, aborts and `promoteFull` are not held); the phase says
/// when the next window opens and the reconcile comes back then.
fn held_by_window(v: &View<'_>, w: &mut Work, step: &CanaryStep) -> bool {
    let Some(windows) = v.windows.as_ref() else {
        return false;
    };
    if v.prev.promote_full
        || (step.pause.is_none() && step.analysis.is_none())
        || windows.is_open(v.now)
    {
        return false;
    }
    let next = windows.next_open(v.now);
    if let Some(next) = next {
        w.plan.requeue(next - v.now);
    }
    w.window_wait = Some(waiting_message(next));
    true
}

/// Upstream `resetRolloutStatus`: a new revision starts from step 0 with no pause, abort,
/// full promotion or analysis run; a pending restart is moot (all pods will be new).
fn reset(v: &View<'_>, w: &mut Work, status: &mut RolloutStatus) {
    w.pause.clear_pause();
    w.pause.remove_abort();
    status.restarted_at = v.ro.spec.restart_at.clone();
    status.promote_full = false;
    status.blue_green.pre_promotion_analysis_run_status = None;
    status.blue_green.post_promotion_analysis_run_status = None;
    status.blue_green.scale_up_preview_check_point = false;
    status.canary.current_step_analysis_run_status = None;
    status.canary.current_background_analysis_run_status = None;
    status.canary.current_experiment = String::new();
    status.canary.step_plugin_statuses = Vec::new();
    status.current_step_index = (!v.steps().is_empty()).then_some(0);
}

/// Upstream `shouldFullPromote` for a canary (spec §3.6), in its order.
fn should_full_promote(v: &View<'_>, pause: &PauseContext) -> Option<String> {
    if v.stable_rs.is_none() {
        return Some("Initial deploy".to_string());
    }
    if pause.is_aborted(v.prev) {
        return None;
    }
    if v.new_rs().is_none_or(|rs| rs_available(rs) != v.replicas()) {
        return None;
    }
    if v.prev.promote_full {
        return Some("Full promotion requested".to_string());
    }
    if v.rollback_within_window() {
        return Some("Rollback within window".to_string());
    }
    let count = step_count(v.steps());
    let index = current_step(v.steps(), v.prev).1;
    (count == 0 || index == Some(count)).then(|| format!("Completed all {count} canary steps"))
}

/// Upstream `promoteStable`: the new ReplicaSet becomes stable (event `RolloutCompleted` the
/// first time), pauses, abort and full promotion end, all steps count as done.
fn promote_stable(v: &View<'_>, w: &mut Work, status: &mut RolloutStatus, why: &str) {
    w.pause.clear_pause();
    w.pause.remove_abort();
    status.promote_full = false;
    status.blue_green.scale_up_preview_check_point = false;
    let count = step_count(v.steps());
    status.current_step_index = (count > 0).then_some(count);
    if status.stable_rs != status.current_pod_hash {
        status.stable_rs = status.current_pod_hash.clone();
        w.plan.event(
            EventType::Normal,
            event_reason::ROLLOUT_COMPLETED,
            format!(
                "Rollout completed update to revision {} ({}): {why}",
                v.revision.unwrap_or(0),
                status.current_pod_hash
            ),
        );
    }
}
