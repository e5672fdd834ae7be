//! The `BlueGreenPause` (upstream `reconcileBlueGreenPause`): with `autoPromotionEnabled:
//! false` or `autoPromotionSeconds > 0`, once the new ReplicaSet is ready and the
//! pre-promotion analysis succeeded, the Rollout pauses before the active switch; a user
//! resume or the end of `autoPromotionSeconds` lifts it (inside a promotion window only: the
//! status stage then looks again when the next one opens).

use chrono::Duration;

use crate::api::PauseReason;
use crate::rollout::observed::time_to_chrono;
use crate::rollout::plan::Plan;
use crate::rollout::runs::RunState;
use crate::rollout::world::View;

use super::facts::{
    active_selector, completed_pause, completed_pre_promotion, fast_tracked, held_by_window,
    needs_controller_pause, ready_for_pause, strategy,
};

/// What the pause stage asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PauseDecision {
    /// Leave the pause conditions as they are.
    Keep,
    /// Add the `BlueGreenPause` condition.
    Add,
    /// Remove the `BlueGreenPause` condition.
    Remove,
}

/// The decision and when to look again (the end of `autoPromotionSeconds`).
pub(crate) fn decide(v: &View<'_>, runs: &RunState) -> (PauseDecision, Plan) {
    let mut plan = Plan::default();
    let decision = reconcile(v, runs, &mut plan);
    (decision, plan)
}

fn reconcile(v: &View<'_>, runs: &RunState, plan: &mut Plan) -> PauseDecision {
    if v.prev.abort || !ready_for_pause(v) || v.halted() {
        return PauseDecision::Keep;
    }
    let active = active_selector(v);
    if fast_tracked(v, &active)
        || v.prev.blue_green.scale_up_preview_check_point
        || !needs_controller_pause(v)
    {
        return PauseDecision::Remove;
    }
    if !completed_pre_promotion(v, runs) {
        return PauseDecision::Keep;
    }
    let condition = v
        .prev
        .pause_conditions
        .iter()
        .find(|c| c.reason == PauseReason::BlueGreenPause);
    match condition {
        Some(condition) => {
            if completed_pause(v, v.pause) {
                return PauseDecision::Remove;
            }
            let seconds = strategy(v).auto_promotion_seconds();
            if seconds > 0 && !held_by_window(v) {
                let end =
                    time_to_chrono(&condition.start_time) + Duration::seconds(i64::from(seconds));
                plan.requeue(end - v.now + Duration::seconds(1));
            }
            PauseDecision::Keep
        }
        // A controller pause without the condition is a user resume (`promote`).
        None if !v.prev.controller_pause => PauseDecision::Add,
        None => PauseDecision::Keep,
    }
}
