//! The current canary step: whether it is complete (upstream `completedCurrentCanaryStep`) and
//! whether a pause step starts now (upstream `reconcileCanaryPause`).

use chrono::Duration;

use crate::api::{AnalysisPhase, PauseReason, TrafficWeights};
use crate::rollout::observed::math_weights;
use crate::rollout::plan::Plan;
use crate::rollout::replicas::at_desired_replica_counts;
use crate::rollout::steps::{
    completed_pause_step, current_step, pause_duration_seconds, pause_remaining,
};
use crate::rollout::world::View;

/// Upstream `completedCurrentCanaryStep`, with `weights` the `status.canary.weights` of this
/// reconcile and `step_run` the phase of the current step's AnalysisRun (or Experiment).
pub(crate) fn completed_current_step(
    v: &View<'_>,
    weights: Option<&TrafficWeights>,
    step_run: Option<AnalysisPhase>,
) -> bool {
    if v.ro.spec.paused == Some(true) {
        return false;
    }
    let (Some(step), _) = current_step(v.steps(), v.prev) else {
        return false;
    };
    if let Some(pause) = step.pause.as_ref() {
        return completed_pause_step(pause, v.prev, v.now);
    }
    if step.set_canary_scale.is_some() || step.set_weight.is_some() {
        let at_desired = at_desired_replica_counts(
            v.params,
            v.new_counts().as_ref(),
            v.stable_counts().as_ref(),
            &v.other_counts(),
            math_weights(weights).as_ref(),
        );
        let unverified = step.set_weight.is_some()
            && weights.is_some_and(|weights| weights.verified == Some(false));
        return at_desired && !unverified;
    }
    // `step_run` is the phase of the step's AnalysisRun, or of its Experiment.
    if step.analysis.is_some() || step.experiment.is_some() {
        return step_run == Some(AnalysisPhase::Successful);
    }
    step.set_header_route.is_some() || step.set_mirror_route.is_some()
}

/// What the pause-step stage decided.
#[derive(Debug, Default)]
pub(crate) struct PauseStep {
    /// When to look again (a timed pause's expiry).
    pub plan: Plan,
    /// The `CanaryPauseStep` pause starts now.
    pub pause: bool,
}

/// Upstream `reconcileCanaryPause`: on a pause step, add the `CanaryPauseStep` condition
/// unless the user already resumed it; schedule a look at a timed pause's expiry.
pub(crate) fn pause_step(v: &View<'_>) -> PauseStep {
    let mut out = PauseStep::default();
    if v.ro.spec.paused == Some(true) || v.prev.promote_full || v.aborted() {
        return out;
    }
    let (Some(step), Some(_)) = current_step(v.steps(), v.prev) else {
        return out;
    };
    let Some(pause) = step.pause.as_ref() else {
        return out;
    };
    let started = v
        .prev
        .pause_conditions
        .iter()
        .any(|condition| condition.reason == PauseReason::CanaryPauseStep);
    if !started {
        if !v.prev.controller_pause {
            out.pause = true;
            if let Some(seconds) = pause_duration_seconds(pause) {
                out.plan.requeue(Duration::seconds(seconds));
            }
        }
        return out;
    }
    if let Some(remaining) = pause_remaining(pause, v.prev, v.now) {
        out.plan.requeue(remaining);
    }
    out
}
