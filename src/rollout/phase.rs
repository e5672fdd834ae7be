//! `status.phase` and `status.message` (spec §2.2): what the controller stores, and the
//! client-side reading the CLI uses. Argo CD shows the stored pair, so every string is upstream's.

use crate::api::consts::{condition_type, message, reason};
use crate::api::{RolloutPhase, RolloutSpec, RolloutStatus};

/// Upstream `CalculateRolloutPhase`: the first matching rule wins.
pub fn rollout_phase(spec: &RolloutSpec, status: &RolloutStatus) -> (RolloutPhase, String) {
    for condition in &status.conditions {
        if condition.type_ == condition_type::INVALID_SPEC {
            return (
                RolloutPhase::Degraded,
                format!("{}: {}", condition_type::INVALID_SPEC, condition.message),
            );
        }
    }
    for condition in &status.conditions {
        if condition.reason == reason::ROLLOUT_ABORTED
            || condition.reason == reason::PROGRESS_DEADLINE_EXCEEDED
        {
            return (
                RolloutPhase::Degraded,
                format!("{}: {}", condition.reason, condition.message),
            );
        }
    }
    if spec.paused == Some(true) {
        return (
            RolloutPhase::Paused,
            message::PHASE_MANUALLY_PAUSED.to_string(),
        );
    }
    if let Some(first) = status.pause_conditions.first() {
        return (RolloutPhase::Paused, first.reason.as_str().to_string());
    }
    if spec.restart_at.is_some() && spec.restart_at != status.restarted_at {
        return progressing(message::PHASE_RESTARTING);
    }
    let replicas = spec.replicas.unwrap_or(1);
    if status.updated_replicas < replicas {
        return progressing(message::PHASE_MORE_REPLICAS_NEED_UPDATE);
    }
    if status.available_replicas < status.updated_replicas {
        return progressing(message::PHASE_UPDATED_BECOMING_AVAILABLE);
    }
    if let Some(blue_green) = spec.strategy.blue_green.as_ref() {
        let active = &status.blue_green.active_selector;
        if active.is_empty() || *active != status.current_pod_hash {
            return progressing(message::PHASE_ACTIVE_SERVICE_CUTOVER_PENDING);
        }
        if status.stable_rs.is_empty() || status.stable_rs != status.current_pod_hash {
            let post_analysis_pending = blue_green.post_promotion_analysis.is_some()
                && status
                    .blue_green
                    .post_promotion_analysis_run_status
                    .as_ref()
                    .is_none_or(|run| !run.status.completed());
            return progressing(if post_analysis_pending {
                message::PHASE_WAITING_FOR_ANALYSIS
            } else {
                message::PHASE_WAITING_FOR_POST_PROMOTION
            });
        }
    }
    if let Some(canary) = spec.strategy.canary.as_ref() {
        if canary.traffic_routing.is_none() && status.replicas > status.updated_replicas {
            return progressing(message::PHASE_OLD_REPLICAS_PENDING_TERMINATION);
        }
        if status.stable_rs.is_empty() || status.stable_rs != status.current_pod_hash {
            return progressing(message::PHASE_WAITING_FOR_STEPS);
        }
    }
    (RolloutPhase::Healthy, String::new())
}

/// Upstream `GetRolloutPhase`, what the CLI shows: a spec change not yet observed, or a user
/// resume not yet processed, reads as Progressing before the stored phase is trusted.
pub fn client_phase(
    generation: Option<i64>,
    spec: &RolloutSpec,
    status: &RolloutStatus,
) -> (RolloutPhase, String) {
    if let (Ok(observed), Some(generation)) =
        (status.observed_generation.parse::<i64>(), generation)
        && observed != generation
    {
        return progressing(message::PHASE_WAITING_FOR_SPEC_OBSERVED);
    }
    if status.controller_pause && status.pause_conditions.is_empty() {
        return progressing(message::PHASE_WAITING_FOR_UNPAUSE);
    }
    match status.phase.clone() {
        Some(phase) => (phase, status.message.clone()),
        None => rollout_phase(spec, status),
    }
}

fn progressing(text: &str) -> (RolloutPhase, String) {
    (RolloutPhase::Progressing, text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        AnalysisPhase, BlueGreenStrategy, CanaryStrategy, PauseCondition, PauseReason,
        RolloutAnalysis, RolloutAnalysisRunStatus, RolloutCondition, RolloutTrafficRouting,
    };
    use crate::rollout::observed::chrono_to_time;
    use chrono::DateTime;

    fn condition(type_: &str, reason: &str, message: &str) -> RolloutCondition {
        let zero = chrono_to_time(DateTime::UNIX_EPOCH);
        RolloutCondition {
            type_: type_.to_string(),
            status: "False".to_string(),
            last_update_time: zero.clone(),
            last_transition_time: zero,
            reason: reason.to_string(),
            message: message.to_string(),
        }
    }

    fn canary_spec(replicas: i32, traffic: bool) -> RolloutSpec {
        let mut spec = RolloutSpec {
            replicas: Some(replicas),
            ..RolloutSpec::default()
        };
        spec.strategy.canary = Some(CanaryStrategy {
            traffic_routing: traffic.then(RolloutTrafficRouting::default),
            ..CanaryStrategy::default()
        });
        spec
    }

    fn healthy_status(replicas: i32) -> RolloutStatus {
        RolloutStatus {
            replicas,
            updated_replicas: replicas,
            available_replicas: replicas,
            current_pod_hash: "new".to_string(),
            stable_rs: "new".to_string(),
            ..RolloutStatus::default()
        }
    }

    #[test]
    fn every_phase_rule_in_order() {
        let time = chrono_to_time(DateTime::UNIX_EPOCH);
        let spec = canary_spec(2, false);
        let mut paused_spec = spec.clone();
        paused_spec.paused = Some(true);
        let mut restart_spec = spec.clone();
        restart_spec.restart_at = Some(time.clone());
        let aborted = RolloutStatus {
            conditions: vec![condition(
                "Progressing",
                "RolloutAborted",
                "Rollout aborted update to revision 2",
            )],
            ..healthy_status(2)
        };
        let timed_out = RolloutStatus {
            conditions: vec![condition(
                "Progressing",
                "ProgressDeadlineExceeded",
                "ReplicaSet \"demo-abc\" has timed out progressing.",
            )],
            ..healthy_status(2)
        };
        let invalid = RolloutStatus {
            conditions: vec![
                condition("Progressing", "RolloutAborted", "x"),
                condition(
                    "InvalidSpec",
                    "InvalidSpec",
                    "The Rollout \"demo\" is invalid: bad",
                ),
            ],
            ..healthy_status(2)
        };
        let pause = RolloutStatus {
            pause_conditions: vec![PauseCondition {
                reason: PauseReason::CanaryPauseStep,
                start_time: time.clone(),
            }],
            ..healthy_status(2)
        };
        let restarted = RolloutStatus {
            restarted_at: Some(time.clone()),
            ..healthy_status(2)
        };
        let cases: Vec<(&RolloutSpec, RolloutStatus, RolloutPhase, &str)> = vec![
            (
                &spec,
                invalid,
                RolloutPhase::Degraded,
                "InvalidSpec: The Rollout \"demo\" is invalid: bad",
            ),
            (
                &spec,
                aborted.clone(),
                RolloutPhase::Degraded,
                "RolloutAborted: Rollout aborted update to revision 2",
            ),
            (
                &paused_spec,
                aborted,
                RolloutPhase::Degraded,
                "RolloutAborted: Rollout aborted update to revision 2",
            ),
            (
                &spec,
                timed_out,
                RolloutPhase::Degraded,
                "ProgressDeadlineExceeded: ReplicaSet \"demo-abc\" has timed out progressing.",
            ),
            (
                &paused_spec,
                pause.clone(),
                RolloutPhase::Paused,
                "manually paused",
            ),
            (&spec, pause, RolloutPhase::Paused, "CanaryPauseStep"),
            (
                &restart_spec,
                healthy_status(2),
                RolloutPhase::Progressing,
                "rollout is restarting",
            ),
            (&restart_spec, restarted, RolloutPhase::Healthy, ""),
            (
                &spec,
                RolloutStatus {
                    updated_replicas: 1,
                    ..healthy_status(2)
                },
                RolloutPhase::Progressing,
                "more replicas need to be updated",
            ),
            (
                &spec,
                RolloutStatus {
                    available_replicas: 1,
                    ..healthy_status(2)
                },
                RolloutPhase::Progressing,
                "updated replicas are still becoming available",
            ),
            (
                &spec,
                RolloutStatus {
                    replicas: 3,
                    ..healthy_status(2)
                },
                RolloutPhase::Progressing,
                "old replicas are pending termination",
            ),
            (
                &spec,
                RolloutStatus {
                    stable_rs: "old".into(),
                    ..healthy_status(2)
                },
                RolloutPhase::Progressing,
                "waiting for all steps to complete",
            ),
            (
                &spec,
                RolloutStatus {
                    stable_rs: String::new(),
                    ..healthy_status(2)
                },
                RolloutPhase::Progressing,
                "waiting for all steps to complete",
            ),
            (&spec, healthy_status(2), RolloutPhase::Healthy, ""),
        ];
        for (index, (spec, status, phase, text)) in cases.into_iter().enumerate() {
            assert_eq!(
                rollout_phase(spec, &status),
                (phase, text.to_string()),
                "case {index}"
            );
        }
    }

    #[test]
    fn traffic_routing_tolerates_old_replicas_during_scale_down_delay() {
        let spec = canary_spec(2, true);
        let status = RolloutStatus {
            replicas: 4,
            ..healthy_status(2)
        };
        assert_eq!(
            rollout_phase(&spec, &status),
            (RolloutPhase::Healthy, String::new())
        );
    }

    #[test]
    fn blue_green_rules() {
        let mut spec = RolloutSpec {
            replicas: Some(1),
            ..RolloutSpec::default()
        };
        spec.strategy.blue_green = Some(BlueGreenStrategy::default());
        let mut status = healthy_status(1);
        assert_eq!(
            rollout_phase(&spec, &status).1,
            "active service cutover pending"
        );
        status.blue_green.active_selector = "new".to_string();
        assert_eq!(rollout_phase(&spec, &status).0, RolloutPhase::Healthy);
        status.stable_rs = "old".to_string();
        assert_eq!(
            rollout_phase(&spec, &status).1,
            "waiting for post-promotion verification to complete"
        );
        if let Some(blue_green) = spec.strategy.blue_green.as_mut() {
            blue_green.post_promotion_analysis = Some(RolloutAnalysis::default());
        }
        assert_eq!(
            rollout_phase(&spec, &status).1,
            "waiting for analysis to complete"
        );
        status.blue_green.post_promotion_analysis_run_status = Some(RolloutAnalysisRunStatus {
            name: "run".into(),
            status: AnalysisPhase::Successful,
            message: String::new(),
        });
        assert_eq!(
            rollout_phase(&spec, &status).1,
            "waiting for post-promotion verification to complete"
        );
    }

    #[test]
    fn client_phase_gates() {
        let spec = canary_spec(1, false);
        let mut status = RolloutStatus {
            observed_generation: "1".to_string(),
            phase: Some(RolloutPhase::Healthy),
            ..healthy_status(1)
        };
        assert_eq!(
            client_phase(Some(2), &spec, &status).1,
            "waiting for rollout spec update to be observed"
        );
        assert_eq!(
            client_phase(Some(1), &spec, &status).0,
            RolloutPhase::Healthy
        );
        status.controller_pause = true;
        assert_eq!(
            client_phase(Some(1), &spec, &status).1,
            "waiting for rollout to unpause"
        );
        status.controller_pause = false;
        status.phase = None;
        status.stable_rs = "old".into();
        assert_eq!(
            client_phase(Some(1), &spec, &status).1,
            "waiting for all steps to complete"
        );
    }
}
