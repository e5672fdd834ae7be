//! Questions the blue-green stages ask about a view (upstream `isBlueGreenFastTracked`,
//! `ReadyForPause`, `IsSaturated`, `isFastRollback`, `completedPrePromotionAnalysis`,
//! `CompletedBlueGreenPause`) and whether Davy's promotion windows hold the promotion,
//! answered once here.

use k8s_openapi::api::apps::v1::ReplicaSet;

use crate::api::consts::annotation;
use crate::api::{AnalysisPhase, BlueGreenStrategy, PauseReason};
use crate::rollout::observed::{
    creation_time, rs_annotation, rs_available, rs_hash, rs_scale_down_deadline, rs_spec_replicas,
    time_to_chrono,
};
use crate::rollout::pause::PauseContext;
use crate::rollout::replicas::blue_green::{PreviewScale, new_rs_replicas};
use crate::rollout::replicas::other::ScaleDownDeadline;
use crate::rollout::runs::{RunState, phase_of};
use crate::rollout::world::View;

/// The blue-green strategy of the view (an empty one for a canary, which never gets here).
pub(crate) fn strategy<'a>(v: &View<'a>) -> &'a BlueGreenStrategy {
    static EMPTY: std::sync::LazyLock<BlueGreenStrategy> =
        std::sync::LazyLock::new(BlueGreenStrategy::default);
    v.blue_green.unwrap_or(&EMPTY)
}

/// `blueGreen.previewService`, when set.
pub(crate) fn preview_service<'a>(v: &View<'a>) -> Option<&'a str> {
    strategy(v)
        .preview_service
        .as_deref()
        .filter(|name| !name.is_empty())
}

/// The hash the active Service selects now (empty when it selects none).
pub(crate) fn active_selector(v: &View<'_>) -> String {
    v.selectors
        .get(&strategy(v).active_service)
        .cloned()
        .unwrap_or_default()
}

/// Upstream `CheckPodSpecChange`: the new pod hash differs from `status.currentPodHash`.
pub(crate) fn pod_spec_changed(v: &View<'_>) -> bool {
    !v.prev.current_pod_hash.is_empty() && v.prev.current_pod_hash != v.current_pod_hash()
}

/// Upstream `IsSaturated`: `spec.replicas`, the `desired-replicas` annotation and the
/// available pods all equal the Rollout's replicas.
pub(crate) fn is_saturated(v: &View<'_>, rs: &ReplicaSet) -> bool {
    let replicas = v.replicas();
    rs_spec_replicas(rs) == replicas
        && rs_annotation(rs, annotation::DESIRED_REPLICAS).and_then(|text| text.parse::<i32>().ok())
            == Some(replicas)
        && rs_available(rs) == replicas
}

/// Upstream `NewRSNewReplicas` for blue-green, on the view.
pub(crate) fn desired_new_replicas(v: &View<'_>) -> i32 {
    let Some(new_rs) = v.new_rs() else {
        return v.replicas();
    };
    let active = &v.prev.blue_green.active_selector;
    let active_rs = (!active.is_empty())
        .then(|| v.rss.iter().find(|rs| rs_hash(rs) == active))
        .flatten();
    new_rs_replicas(&PreviewScale {
        replicas: v.replicas(),
        preview_replica_count: strategy(v).preview_replica_count,
        new_is_active: active_rs.is_none_or(|rs| rs_hash(rs) == rs_hash(new_rs)),
        promote_full: v.prev.promote_full,
        new_is_recorded_current: rs_hash(new_rs) == v.prev.current_pod_hash,
        paused: v.ro.spec.paused == Some(true) || !v.prev.pause_conditions.is_empty(),
        scale_up_preview_check_point: v.prev.blue_green.scale_up_preview_check_point,
    })
}

/// Upstream `ReadyForPause`: the new ReplicaSet has exactly its desired pods, all available.
pub(crate) fn ready_for_pause(v: &View<'_>) -> bool {
    let desired = desired_new_replicas(v);
    v.new_rs()
        .is_some_and(|rs| rs_spec_replicas(rs) == desired && rs_available(rs) == desired)
}

/// Upstream `isRollback`: going back to the stable, or to a ReplicaSet older than it.
fn is_rollback(v: &View<'_>) -> bool {
    let (Some(new_rs), Some(stable_rs)) = (v.new_rs(), v.stable_rs()) else {
        return false;
    };
    v.prev.stable_rs == rs_hash(new_rs)
        || creation_time(new_rs.metadata.creation_timestamp.as_ref())
            < creation_time(stable_rs.metadata.creation_timestamp.as_ref())
}

/// Upstream `isFastRollback` (spec §3.7): a rollback to the stable, within the rollback
/// window, or to a ReplicaSet still within its scale-down delay.
pub(crate) fn fast_rollback(v: &View<'_>) -> bool {
    if !is_rollback(v) {
        return false;
    }
    let within_delay = v.new_rs().is_some_and(|rs| {
        matches!(rs_scale_down_deadline(rs), ScaleDownDeadline::At(deadline) if deadline > v.now)
    });
    let to_stable = v.new_rs().is_some_and(|rs| v.prev.stable_rs == rs_hash(rs));
    v.rollback_within_window() || within_delay || to_stable
}

/// Upstream `isBlueGreenFastTracked`: no pause for a fast rollback, a full promotion, an
/// active Service that selects nothing yet, or one that already selects the new pods.
pub(crate) fn fast_tracked(v: &View<'_>, active: &str) -> bool {
    fast_rollback(v) || v.prev.promote_full || active.is_empty() || active == v.current_pod_hash()
}

/// Upstream `needsBlueGreenControllerPause`: `autoPromotionEnabled: false` or
/// `autoPromotionSeconds > 0`.
pub(crate) fn needs_controller_pause(v: &View<'_>) -> bool {
    let bg = strategy(v);
    !bg.auto_promotion_enabled() || bg.auto_promotion_seconds() > 0
}

/// Upstream `completedPrePromotionAnalysis`: none configured, or the current one succeeded.
pub(crate) fn completed_pre_promotion(v: &View<'_>, runs: &RunState) -> bool {
    strategy(v).pre_promotion_analysis.is_none()
        || runs
            .pre
            .as_ref()
            .and_then(phase_of)
            .is_some_and(|phase| phase == AnalysisPhase::Successful)
}

/// Davy's promotion windows: outside every window (and without `promote --full`) the
/// Rollout does not move past its pause or its analyses.
pub(crate) fn held_by_window(v: &View<'_>) -> bool {
    v.windows
        .is_some_and(|windows| !v.prev.promote_full && !windows.is_open(v.now))
}

/// Upstream `CompletedBlueGreenPause`, held by Davy's promotion windows: outside a window the
/// pause is never complete, so neither the preview scale-up, the active switch nor the
/// removal of `BlueGreenPause` happens.
pub(crate) fn completed_pause(v: &View<'_>, pause: &PauseContext) -> bool {
    !held_by_window(v) && pause_over(v, pause)
}

/// Upstream `CompletedBlueGreenPause` itself: the automated pause is over, because a human
/// resumed, `autoPromotionSeconds` passed, or no pause was needed.
pub(crate) fn pause_over(v: &View<'_>, pause: &PauseContext) -> bool {
    let condition = v
        .prev
        .pause_conditions
        .iter()
        .find(|c| c.reason == PauseReason::BlueGreenPause);
    let bg = strategy(v);
    if pause.has_add_pause() {
        return false;
    }
    if v.prev.blue_green.scale_up_preview_check_point {
        return true;
    }
    if bg.auto_promotion_enabled() {
        let seconds = bg.auto_promotion_seconds();
        if seconds == 0 {
            return true;
        }
        return condition.is_some_and(|c| {
            v.now > time_to_chrono(&c.start_time) + chrono::Duration::seconds(i64::from(seconds))
        });
    }
    v.prev.controller_pause && condition.is_none()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::rollout::fixtures::{at, blue_green_rollout, new_hash, replica_set, world};
    use crate::rollout::world::with_start_view;

    /// `completed_pause` and `fast_tracked` on a world with the stable `s1` (created at 0) and
    /// the new ReplicaSet (created at `new_created`), the active Service selecting `active`.
    fn ask(bg: Value, status: Value, new_created: i64, active: &str) -> (bool, bool) {
        let ro = blue_green_rollout(2, bg, status);
        let mut observed = world(
            ro,
            vec![
                replica_set("s1", 2, 2, 1, 0),
                replica_set(&new_hash(), 2, 2, 2, new_created),
            ],
        );
        let service = serde_json::from_value(json!({
            "metadata": {"name": "demo-active"},
            "spec": {"selector": {"app": "demo", "rollouts-pod-template-hash": active}}
        }))
        .expect("service");
        observed.services.insert("demo-active".to_string(), service);
        with_start_view(&observed, at(100), |v| {
            (
                completed_pause(v, &PauseContext::default()),
                fast_tracked(v, &active_selector(v)),
            )
        })
        .expect("a strategy")
    }

    #[test]
    fn pause_completion_and_fast_tracking_follow_upstream() {
        let paused_at = |seconds: i64| {
            json!({"stableRS": "s1", "currentPodHash": new_hash(), "controllerPause": true,
                   "pauseConditions": [{"reason": "BlueGreenPause",
                                        "startTime": crate::rollout::observed::chrono_to_time(at(seconds))}]})
        };
        let resumed =
            json!({"stableRS": "s1", "currentPodHash": new_hash(), "controllerPause": true});
        let manual = json!({"autoPromotionEnabled": false});
        let cases = [
            // (case, blueGreen, status, new RS created at, active selector, (completed, fast))
            (
                "auto promotion, no delay",
                json!({}),
                resumed.clone(),
                10,
                "s1",
                (true, false),
            ),
            (
                "manual, still paused",
                manual.clone(),
                paused_at(50),
                10,
                "s1",
                (false, false),
            ),
            (
                "manual, user resumed",
                manual.clone(),
                resumed.clone(),
                10,
                "s1",
                (true, false),
            ),
            (
                "seconds not yet passed",
                json!({"autoPromotionSeconds": 60}),
                paused_at(50),
                10,
                "s1",
                (false, false),
            ),
            (
                "seconds passed",
                json!({"autoPromotionSeconds": 30}),
                paused_at(50),
                10,
                "s1",
                (true, false),
            ),
            (
                "active selects nothing",
                manual.clone(),
                paused_at(50),
                10,
                "",
                (false, true),
            ),
            (
                "active already new",
                manual.clone(),
                paused_at(50),
                10,
                &new_hash(),
                (false, true),
            ),
            (
                "rollback to an older RS",
                manual.clone(),
                paused_at(50),
                -10,
                "s1",
                (false, false),
            ),
        ];
        let mut failures = Vec::new();
        for (case, bg, status, created, active, want) in cases {
            let got = ask(bg, status, created, active);
            if got != want {
                failures.push(format!("{case}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
