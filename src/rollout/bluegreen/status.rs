//! The new status of a blue-green reconcile (spec §2; upstream `syncRolloutStatusBlueGreen`,
//! `shouldFullPromote`, `promoteStable`, `calculateScaleUpPreviewCheckPoint`): counts, the
//! Service selectors, promotion to stable, the preview scale-up checkpoint, and Davy's
//! promotion windows. The result is a
//! [`Draft`] that `crate::rollout::report` finishes with conditions and phase.

use k8s_openapi::api::apps::v1::ReplicaSet;

use crate::api::consts::{condition_status, condition_type, event_reason};
use crate::api::selector::format_label_selector;
use crate::api::{AnalysisPhase, RolloutStatus};
use crate::rollout::conditions;
use crate::rollout::observed::{rs_available, rs_hash, rs_ready, rs_status_replicas};
use crate::rollout::pause::PauseContext;
use crate::rollout::plan::{EventType, Plan};
use crate::rollout::report::{self, Draft};
use crate::rollout::runs::{RunState, phase_of};
use crate::rollout::world::View;

use super::facts::{
    active_selector, completed_pause, completed_pre_promotion, fast_rollback, fast_tracked,
    held_by_window, is_saturated, pause_over, pod_spec_changed, preview_service, ready_for_pause,
    strategy,
};
use crate::rollout::windows::waiting_message;

/// Upstream `syncRolloutStatusBlueGreen`: the status after this reconcile, from `new_status`
/// (analysis run statuses and `restartedAt` decided earlier) and the current runs.
pub(crate) fn decide(v: &View<'_>, new_status: &RolloutStatus, runs: &RunState) -> Draft {
    let mut pause = v.pause.clone();
    let mut plan = Plan::default();
    let mut status = report::base_status(v, new_status);
    status.stable_rs = v.prev.stable_rs.clone();
    if pod_spec_changed(v) {
        reset(v, &mut pause, &mut status);
    }
    if v.prev.promote_full || v.rollback_within_window() {
        pause.clear_pause();
        pause.remove_abort();
    }
    status.blue_green.preview_selector = preview_service(v)
        .and_then(|service| v.selectors.get(service))
        .cloned()
        .unwrap_or_default();
    status.blue_green.active_selector = active_selector(v);
    match should_full_promote(v, &pause, &status, runs) {
        Some(why) => promote_stable(v, &mut pause, &mut plan, &mut status, &why),
        None => {
            status.blue_green.scale_up_preview_check_point =
                scale_up_preview_check_point(v, &pause, runs);
        }
    }
    let window_wait = window_wait(v, &pause, &status, runs, &mut plan);
    let active_rs = active_rs(v, &status.blue_green.active_selector);
    apply_active_counts(v, &mut status, active_rs);
    Draft {
        status,
        pause,
        indefinite_step: paused_condition_true(v.prev) || window_wait.is_some(),
        window_wait,
        plan,
        active_saturated: Some(active_rs.is_some_and(|rs| is_saturated(v, rs))),
    }
}

/// The replicas-only path of a scaling event (upstream `syncReplicasOnly`): the observed
/// status with the active ReplicaSet's counts.
pub(crate) fn replicas_only(v: &View<'_>) -> Plan {
    let mut status = v.prev.clone();
    let active = active_rs(v, &status.blue_green.active_selector);
    match active {
        Some(rs) => {
            status.hpa_replicas = rs_status_replicas(rs);
            status.available_replicas = rs_available(rs);
        }
        None => {
            status.hpa_replicas = v.rss.iter().map(rs_status_replicas).sum();
            status.available_replicas = v.rss.iter().map(rs_available).sum();
        }
    }
    report::persist(v, v.pause, None, paused_condition_true(v.prev), status)
}

/// Upstream `isIndefiniteStep` for blue-green: the `Paused` condition is True.
fn paused_condition_true(status: &RolloutStatus) -> bool {
    conditions::get(status, condition_type::PAUSED)
        .is_some_and(|c| c.status == condition_status::TRUE)
}

fn active_rs<'a>(v: &View<'a>, hash: &str) -> Option<&'a ReplicaSet> {
    (!hash.is_empty())
        .then(|| v.rss.iter().find(|rs| rs_hash(rs) == hash))
        .flatten()
}

/// Counts read through the active ReplicaSet (all ReplicaSets while none is active).
fn apply_active_counts(v: &View<'_>, status: &mut RolloutStatus, active: Option<&ReplicaSet>) {
    match active {
        Some(rs) => {
            status.hpa_replicas = rs_status_replicas(rs);
            status.selector = format_label_selector(rs.spec.as_ref().map(|spec| &spec.selector));
            status.available_replicas = rs_available(rs);
            status.ready_replicas = rs_ready(rs);
        }
        None => {
            status.hpa_replicas = v.rss.iter().map(rs_status_replicas).sum();
            status.selector = format_label_selector(v.ro.spec.selector.as_ref());
            status.available_replicas = v.rss.iter().map(rs_available).sum();
        }
    }
}

/// Upstream `resetRolloutStatus` for a new pod template.
fn reset(v: &View<'_>, pause: &mut PauseContext, status: &mut RolloutStatus) {
    pause.clear_pause();
    pause.remove_abort();
    status.restarted_at = v.ro.spec.restart_at.clone();
    status.promote_full = false;
    status.blue_green.pre_promotion_analysis_run_status = None;
    status.blue_green.post_promotion_analysis_run_status = None;
    status.blue_green.scale_up_preview_check_point = false;
    status.current_step_index = None;
}

/// Upstream `shouldFullPromote` for blue-green, in its order.
fn should_full_promote(
    v: &View<'_>,
    pause: &PauseContext,
    status: &RolloutStatus,
    runs: &RunState,
) -> Option<String> {
    let active = &status.blue_green.active_selector;
    if v.stable_rs.is_none() || active.is_empty() {
        // The active Service is switched to the first ReplicaSet only once it is stable.
        return Some("Initial deploy".to_string());
    }
    if *active != status.current_pod_hash {
        return None;
    }
    if v.prev.promote_full {
        return Some("Full promotion requested".to_string());
    }
    if fast_rollback(v) {
        return Some(if v.rollback_within_window() {
            "Rollback within window".to_string()
        } else {
            "Fast rollback".to_string()
        });
    }
    if pause.is_aborted(v.prev) {
        return None;
    }
    if strategy(v).post_promotion_analysis.is_some()
        && (!post_promotion_succeeded(runs) || held_by_window(v))
    {
        // Davy's promotion windows hold a successful post-promotion analysis too: the previous
        // stack stays stable (and up) until a window opens.
        return None;
    }
    Some("Completed blue-green update".to_string())
}

fn post_promotion_succeeded(runs: &RunState) -> bool {
    runs.post.as_ref().and_then(phase_of) == Some(AnalysisPhase::Successful)
}

/// Davy's promotion windows: when they hold a promotion that would happen now — the pause is
/// over and the pre-promotion analysis succeeded but the active Service still selects the old
/// stack, or the post-promotion analysis succeeded but the new stack is not stable yet — the
/// phase message says when the next window opens, and the reconcile comes back then.
fn window_wait(
    v: &View<'_>,
    pause: &PauseContext,
    status: &RolloutStatus,
    runs: &RunState,
    plan: &mut Plan,
) -> Option<String> {
    let windows = v.windows?;
    if !held_by_window(v) || pause.is_aborted(v.prev) || v.halted() {
        return None;
    }
    let active = &status.blue_green.active_selector;
    let new_hash = &status.current_pod_hash;
    let before_switch = active != new_hash
        && !fast_tracked(v, active)
        && ready_for_pause(v)
        && pause_over(v, pause)
        && completed_pre_promotion(v, runs);
    let after_switch = active == new_hash
        && status.stable_rs != *new_hash
        && strategy(v).post_promotion_analysis.is_some()
        && post_promotion_succeeded(runs);
    if !before_switch && !after_switch {
        return None;
    }
    let next = windows.next_open(v.now);
    if let Some(next) = next {
        plan.requeue(next - v.now);
    }
    Some(waiting_message(next))
}

/// Upstream `promoteStable`: the new ReplicaSet becomes stable (event `RolloutCompleted` the
/// first time); pauses, abort, full promotion and the checkpoint end.
fn promote_stable(
    v: &View<'_>,
    pause: &mut PauseContext,
    plan: &mut Plan,
    status: &mut RolloutStatus,
    why: &str,
) {
    pause.clear_pause();
    pause.remove_abort();
    status.promote_full = false;
    status.blue_green.scale_up_preview_check_point = false;
    if status.stable_rs != status.current_pod_hash {
        status.stable_rs = status.current_pod_hash.clone();
        plan.event(
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

/// Upstream `calculateScaleUpPreviewCheckPoint`: a one-way switch, set once the preview has
/// its `previewReplicaCount` available after the pause and the pre-promotion analysis.
fn scale_up_preview_check_point(v: &View<'_>, pause: &PauseContext, runs: &RunState) -> bool {
    let Some(preview) = strategy(v).preview_replica_count else {
        return false;
    };
    if v.prev.blue_green.scale_up_preview_check_point {
        return true;
    }
    if !completed_pre_promotion(v, runs) || !completed_pause(v, pause) {
        return false;
    }
    v.new_rs().is_some_and(|rs| rs_available(rs) == preview)
}
