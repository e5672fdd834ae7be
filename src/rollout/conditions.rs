//! Rollout conditions (spec §2.3, upstream `utils/conditions` and `calculateRolloutConditions`):
//! setting rules, the Healthy/Progressing/TimedOut predicates, the paused-condition bookkeeping
//! and the progress deadline (§3.10). Every reason and message is upstream's.

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observed::time_to_chrono;
use super::pause::PauseContext;
use super::plan::{EventType, Plan};
use crate::api::consts::{condition_status, condition_type, event_reason, message, reason};
use crate::api::{RolloutCondition, RolloutSpec, RolloutStatus};

/// `Created new replica set "<rs>"`.
pub fn new_rs_created_message(rs: &str) -> String {
    format!("Created new replica set \"{rs}\"")
}

/// `Found new replica set "<rs>"`.
pub fn found_new_rs_message(rs: &str) -> String {
    format!("Found new replica set \"{rs}\"")
}

/// `ReplicaSet "<rs>" has timed out progressing.` (also the progress-deadline abort reason).
pub fn timed_out_message(rollout: &str, rs: Option<&str>) -> String {
    match rs {
        Some(rs) => format!("ReplicaSet \"{rs}\" has timed out progressing."),
        None => format!("Rollout \"{rollout}\" has timed out progressing."),
    }
}

/// `The Rollout "<name>" is invalid: <error>`.
pub fn invalid_spec_message(rollout: &str, error: &str) -> String {
    format!("The Rollout \"{rollout}\" is invalid: {error}")
}

/// A condition with both timestamps at `now`.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    text: &str,
    now: &Time,
) -> RolloutCondition {
    RolloutCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_update_time: now.clone(),
        last_transition_time: now.clone(),
        reason: reason.to_string(),
        message: text.to_string(),
    }
}

/// The condition of a type.
pub fn get<'a>(status: &'a RolloutStatus, type_: &str) -> Option<&'a RolloutCondition> {
    status
        .conditions
        .iter()
        .find(|condition| condition.type_ == type_)
}

/// Upstream `SetRolloutCondition`: a condition with the same status and reason as the existing
/// one is a no-op (its message is kept); otherwise it replaces it at the end of the list,
/// keeping `lastTransitionTime` when the status is unchanged. Returns whether it changed.
pub fn set(status: &mut RolloutStatus, mut condition: RolloutCondition) -> bool {
    if let Some(current) = get(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return false;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove(status, &condition.type_.clone());
    status.conditions.push(condition);
    true
}

/// Removes the condition of a type.
pub fn remove(status: &mut RolloutStatus, type_: &str) {
    status
        .conditions
        .retain(|condition| condition.type_ != type_);
}

/// Upstream `RolloutHealthy` for a canary: all steps executed, the new RS is stable, exactly
/// `spec.replicas` pods in total, updated and available, and the generation was already
/// observed before this reconcile.
pub fn rollout_healthy(
    spec: &RolloutSpec,
    generation: i64,
    prev: &RolloutStatus,
    new_status: &RolloutStatus,
) -> bool {
    let replicas = spec.replicas.unwrap_or(1);
    let basics = new_status.updated_replicas == replicas
        && new_status.available_replicas == replicas
        && prev.observed_generation == generation.to_string();
    if let Some(blue_green) = spec.strategy.blue_green.as_ref() {
        // Blue-green is done once the Services select the new pods.
        let current = &new_status.current_pod_hash;
        let preview_done = blue_green
            .preview_service
            .as_deref()
            .is_none_or(str::is_empty)
            || new_status.blue_green.preview_selector == *current;
        return basics && new_status.blue_green.active_selector == *current && preview_done;
    }
    let step_count = spec
        .strategy
        .canary
        .as_ref()
        .and_then(|canary| canary.steps.as_ref())
        .map_or(0, Vec::len);
    let executed_all_steps = match (step_count, new_status.current_step_index) {
        (0, _) | (_, None) => true,
        (count, Some(index)) => i64::try_from(count).ok() == Some(i64::from(index)),
    };
    let current_is_stable =
        !new_status.stable_rs.is_empty() && new_status.stable_rs == new_status.current_pod_hash;
    executed_all_steps
        && current_is_stable
        && new_status.replicas == replicas
        && new_status.updated_replicas == replicas
        && new_status.available_replicas == replicas
        && prev.observed_generation == generation.to_string()
}

/// Upstream `RolloutProgressing` for a blue-green Rollout: as for a canary, but the strategy's
/// own progress is a change of the active or preview selector.
pub fn blue_green_progressing(prev: &RolloutStatus, new_status: &RolloutStatus) -> bool {
    let old_replicas_before = prev.replicas - prev.updated_replicas;
    let old_replicas_now = new_status.replicas - new_status.updated_replicas;
    new_status.updated_replicas != prev.updated_replicas
        || old_replicas_now < old_replicas_before
        || new_status.ready_replicas > prev.ready_replicas
        || new_status.available_replicas > prev.available_replicas
        || prev.blue_green.active_selector != new_status.blue_green.active_selector
        || prev.blue_green.preview_selector != new_status.blue_green.preview_selector
}

/// Upstream `RolloutProgressing` for the strategy of `spec`.
fn progressing_for(spec: &RolloutSpec, prev: &RolloutStatus, new_status: &RolloutStatus) -> bool {
    if spec.strategy.blue_green.is_some() {
        blue_green_progressing(prev, new_status)
    } else {
        rollout_progressing(prev, new_status)
    }
}

/// Upstream `RolloutProgressing` for a canary: something moved since the previous status.
pub fn rollout_progressing(prev: &RolloutStatus, new_status: &RolloutStatus) -> bool {
    let step_changed = matches!(
        (prev.current_step_index, new_status.current_step_index),
        (Some(old), Some(new)) if old != new
    );
    let strategy_progress = prev.stable_rs != new_status.stable_rs
        || step_changed
        || prev.current_step_hash != new_status.current_step_hash;
    let old_replicas_before = prev.replicas - prev.updated_replicas;
    let old_replicas_now = new_status.replicas - new_status.updated_replicas;
    new_status.updated_replicas != prev.updated_replicas
        || old_replicas_now < old_replicas_before
        || new_status.ready_replicas > prev.ready_replicas
        || new_status.available_replicas > prev.available_replicas
        || strategy_progress
}

/// Progress deadline check (spec §3.10) on the Progressing condition of `status`: never for a
/// completed, aborted or paused rollout; always once timed out; otherwise when
/// `lastUpdateTime + deadline` is in the past.
pub fn rollout_timed_out(
    status: &RolloutStatus,
    deadline_seconds: i32,
    now: DateTime<Utc>,
) -> bool {
    let Some(condition) = get(status, condition_type::PROGRESSING) else {
        return false;
    };
    match condition.reason.as_str() {
        reason::NEW_REPLICA_SET_AVAILABLE | reason::ROLLOUT_ABORTED | reason::ROLLOUT_PAUSED => {
            false
        }
        reason::PROGRESS_DEADLINE_EXCEEDED => true,
        _ => {
            time_to_chrono(&condition.last_update_time)
                + Duration::seconds(i64::from(deadline_seconds))
                < now
        }
    }
}

/// The `Progressing`/`Paused` conditions upstream's `checkPausedConditions` would patch
/// (paused ⇔ `spec.paused` or pause conditions; `RolloutRetry` once an abort was lifted).
/// Empty when already in sync.
pub fn paused_condition_updates(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    now: &Time,
) -> Vec<RolloutCondition> {
    let progressing = get(status, condition_type::PROGRESSING);
    let progressing_paused = progressing.is_some_and(|c| c.reason == reason::ROLLOUT_PAUSED);
    let aborted_condition = progressing.is_some_and(|c| c.reason == reason::ROLLOUT_ABORTED);
    let is_paused = !status.pause_conditions.is_empty() || spec.paused == Some(true);
    let mut updates = Vec::new();
    if is_paused != progressing_paused && !aborted_condition {
        updates.push(if is_paused {
            new_condition(
                condition_type::PROGRESSING,
                condition_status::UNKNOWN,
                reason::ROLLOUT_PAUSED,
                message::ROLLOUT_PAUSED,
                now,
            )
        } else {
            new_condition(
                condition_type::PROGRESSING,
                condition_status::UNKNOWN,
                reason::ROLLOUT_RESUMED,
                message::ROLLOUT_RESUMED,
                now,
            )
        });
    }
    if !status.abort && aborted_condition {
        updates.push(new_condition(
            condition_type::PROGRESSING,
            condition_status::UNKNOWN,
            reason::ROLLOUT_RETRY,
            message::ROLLOUT_RETRY,
            now,
        ));
    }
    let paused_true =
        get(status, condition_type::PAUSED).is_some_and(|c| c.status == condition_status::TRUE);
    if is_paused != paused_true && !aborted_condition {
        let value = if is_paused {
            condition_status::TRUE
        } else {
            condition_status::FALSE
        };
        updates.push(new_condition(
            condition_type::PAUSED,
            value,
            reason::ROLLOUT_PAUSED,
            message::ROLLOUT_PAUSED,
            now,
        ));
    }
    updates
}

/// What [`calculate`] needs besides the statuses.
pub struct ConditionInputs<'a> {
    /// The Rollout spec.
    pub spec: &'a RolloutSpec,
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.generation`.
    pub generation: i64,
    /// The Rollout's revision (for the abort and not-completed messages).
    pub revision: i64,
    /// The new ReplicaSet's name, if it exists.
    pub new_rs: Option<&'a str>,
    /// Σ available pods of all ReplicaSets.
    pub all_available: i32,
    /// A `ReplicaFailure` condition copied from a ReplicaSet.
    pub replica_failure: Option<RolloutCondition>,
    /// The current step is a pause, analysis or experiment (no progress deadline there).
    pub indefinite_step: bool,
    /// Another ReplicaSet waits for its scale-down deadline (no progress deadline then).
    pub scale_down_pending: bool,
    /// `status.stableRS == status.currentPodHash` in the observed status.
    pub fully_promoted: bool,
    /// Blue-green: the ReplicaSet the active Service selects is saturated (`None` for a
    /// canary, whose availability counts every ReplicaSet).
    pub active_saturated: Option<bool>,
    /// The current time and the same as an API timestamp.
    pub now: DateTime<Utc>,
    /// `now` as stored.
    pub now_time: &'a Time,
}

/// Upstream `calculateRolloutConditions` for a canary, with the progress-deadline abort folded
/// in (spec §2.1 order): Healthy, the abort condition, Progressing (available / progressing /
/// timed out), Available, ReplicaFailure, Completed. Events go to `plan`.
pub fn calculate(
    inputs: &ConditionInputs<'_>,
    prev: &RolloutStatus,
    mut new_status: RolloutStatus,
    pause: &mut PauseContext,
    plan: &mut Plan,
) -> RolloutStatus {
    let now = inputs.now_time;
    let is_paused = !prev.pause_conditions.is_empty() || inputs.spec.paused == Some(true);
    let healthy = rollout_healthy(inputs.spec, inputs.generation, prev, &new_status);
    let mut became_unhealthy = false;
    if !is_paused && healthy {
        set(
            &mut new_status,
            new_condition(
                condition_type::HEALTHY,
                condition_status::TRUE,
                reason::ROLLOUT_HEALTHY,
                message::HEALTHY,
                now,
            ),
        );
    } else if get(prev, condition_type::HEALTHY).is_some() {
        became_unhealthy = set(
            &mut new_status,
            new_condition(
                condition_type::HEALTHY,
                condition_status::FALSE,
                reason::ROLLOUT_HEALTHY,
                message::NOT_HEALTHY,
                now,
            ),
        );
    }

    let deadline = inputs.spec.progress_deadline_seconds();
    let mut is_aborted = pause.is_aborted(prev);
    if !is_aborted
        && inputs.spec.progress_deadline_abort()
        && !inputs.fully_promoted
        && !healthy
        && !progressing_for(inputs.spec, prev, &new_status)
        && !inputs.indefinite_step
        && !inputs.scale_down_pending
        && rollout_timed_out(&new_status, deadline, inputs.now)
    {
        pause.add_abort(timed_out_message(inputs.name, inputs.new_rs));
        is_aborted = true;
    }
    if is_aborted {
        let mut text = format!("Rollout aborted update to revision {}", inputs.revision);
        if !pause.abort_message().is_empty() {
            text = format!("{text}: {}", pause.abort_message());
        }
        let condition = new_condition(
            condition_type::PROGRESSING,
            condition_status::FALSE,
            reason::ROLLOUT_ABORTED,
            &text,
            now,
        );
        if set(&mut new_status, condition) {
            plan.event(EventType::Warning, event_reason::ROLLOUT_ABORTED, text);
        }
    }

    let current = get(prev, condition_type::PROGRESSING).cloned();
    if !is_aborted {
        if healthy {
            let text = format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                inputs.new_rs.unwrap_or("")
            );
            set(
                &mut new_status,
                new_condition(
                    condition_type::PROGRESSING,
                    condition_status::TRUE,
                    reason::NEW_REPLICA_SET_AVAILABLE,
                    &text,
                    now,
                ),
            );
        } else if progressing_for(inputs.spec, prev, &new_status) || became_unhealthy {
            let (why, text) =
                if new_status.stable_rs == new_status.current_pod_hash && became_unhealthy {
                    (
                        reason::REPLICA_SET_NOT_AVAILABLE,
                        message::NOT_AVAILABLE.to_string(),
                    )
                } else {
                    let text = match inputs.new_rs {
                        Some(rs) => format!("ReplicaSet \"{rs}\" is progressing."),
                        None => format!("Rollout \"{}\" is progressing.", inputs.name),
                    };
                    (reason::REPLICA_SET_UPDATED, text)
                };
            let mut condition = new_condition(
                condition_type::PROGRESSING,
                condition_status::TRUE,
                why,
                &text,
                now,
            );
            if let Some(current) = current.as_ref() {
                if current.status == condition_status::TRUE {
                    condition.last_transition_time = current.last_transition_time.clone();
                }
                remove(&mut new_status, condition_type::PROGRESSING);
            }
            set(&mut new_status, condition);
        } else if !inputs.indefinite_step
            && !inputs.scale_down_pending
            && rollout_timed_out(&new_status, deadline, inputs.now)
        {
            let text = timed_out_message(inputs.name, inputs.new_rs);
            set(
                &mut new_status,
                new_condition(
                    condition_type::PROGRESSING,
                    condition_status::FALSE,
                    reason::PROGRESS_DEADLINE_EXCEEDED,
                    &text,
                    now,
                ),
            );
        }
    }

    let replicas = inputs.spec.replicas.unwrap_or(1);
    let has_minimum = inputs
        .active_saturated
        .unwrap_or(inputs.all_available >= replicas);
    let available = if has_minimum {
        new_condition(
            condition_type::AVAILABLE,
            condition_status::TRUE,
            reason::AVAILABLE_REASON,
            message::AVAILABLE,
            now,
        )
    } else {
        new_condition(
            condition_type::AVAILABLE,
            condition_status::FALSE,
            reason::AVAILABLE_REASON,
            message::NOT_AVAILABLE,
            now,
        )
    };
    set(&mut new_status, available);

    match inputs.replica_failure.clone() {
        Some(failure) => {
            set(&mut new_status, failure);
        }
        None => remove(&mut new_status, condition_type::REPLICA_FAILURE),
    }

    let completed =
        !new_status.stable_rs.is_empty() && new_status.stable_rs == new_status.current_pod_hash;
    if completed {
        set(
            &mut new_status,
            new_condition(
                condition_type::COMPLETED,
                condition_status::TRUE,
                reason::ROLLOUT_COMPLETED,
                message::COMPLETED,
                now,
            ),
        );
    } else if set(
        &mut new_status,
        new_condition(
            condition_type::COMPLETED,
            condition_status::FALSE,
            reason::ROLLOUT_COMPLETED,
            message::COMPLETED,
            now,
        ),
    ) {
        plan.event(
            EventType::Normal,
            event_reason::ROLLOUT_NOT_COMPLETED,
            format!(
                "Rollout not completed, started update to revision {} ({})",
                inputs.revision + 1,
                new_status.current_pod_hash
            ),
        );
    }
    new_status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::observed::chrono_to_time;

    fn at(seconds: i64) -> Time {
        chrono_to_time(DateTime::from_timestamp(seconds, 0).unwrap_or_default())
    }

    fn when(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap_or_default()
    }

    #[test]
    fn set_is_a_no_op_for_same_status_and_reason_and_keeps_transition_time() {
        let mut status = RolloutStatus::default();
        assert!(set(
            &mut status,
            new_condition("Progressing", "False", "RolloutAborted", "first", &at(1))
        ));
        assert!(!set(
            &mut status,
            new_condition("Progressing", "False", "RolloutAborted", "second", &at(2))
        ));
        assert_eq!(status.conditions[0].message, "first");
        assert!(set(
            &mut status,
            new_condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                "x",
                &at(3)
            )
        ));
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(status.conditions[0].last_transition_time, at(1));
        assert_eq!(status.conditions[0].last_update_time, at(3));
        assert!(set(
            &mut status,
            new_condition("Available", "True", "AvailableReason", "y", &at(4))
        ));
        assert!(set(
            &mut status,
            new_condition("Progressing", "True", "ReplicaSetUpdated", "z", &at(5))
        ));
        assert_eq!(
            status.conditions[1].type_, "Progressing",
            "replaced conditions move to the end"
        );
        assert_eq!(status.conditions[1].last_transition_time, at(5));
    }

    #[test]
    fn timed_out_follows_the_progressing_condition() {
        let mut status = RolloutStatus::default();
        assert!(!rollout_timed_out(&status, 10, when(100)));
        set(
            &mut status,
            new_condition("Progressing", "True", "ReplicaSetUpdated", "m", &at(0)),
        );
        assert!(!rollout_timed_out(&status, 10, when(10)));
        assert!(rollout_timed_out(&status, 10, when(11)));
        for (why, expected) in [
            ("NewReplicaSetAvailable", false),
            ("RolloutAborted", false),
            ("RolloutPaused", false),
            ("ProgressDeadlineExceeded", true),
        ] {
            let mut status = RolloutStatus::default();
            set(
                &mut status,
                new_condition("Progressing", "Unknown", why, "m", &at(50)),
            );
            assert_eq!(rollout_timed_out(&status, 10, when(51)), expected, "{why}");
        }
    }

    #[test]
    fn progressing_detects_any_movement() {
        let prev = RolloutStatus {
            replicas: 3,
            updated_replicas: 1,
            ready_replicas: 3,
            available_replicas: 3,
            current_step_index: Some(1),
            ..RolloutStatus::default()
        };
        assert!(!rollout_progressing(&prev, &prev.clone()));
        let cases = [
            RolloutStatus {
                updated_replicas: 2,
                replicas: 4,
                ..prev.clone()
            },
            RolloutStatus {
                replicas: 2,
                ..prev.clone()
            },
            RolloutStatus {
                ready_replicas: 4,
                ..prev.clone()
            },
            RolloutStatus {
                available_replicas: 4,
                ..prev.clone()
            },
            RolloutStatus {
                current_step_index: Some(2),
                ..prev.clone()
            },
            RolloutStatus {
                stable_rs: "x".into(),
                ..prev.clone()
            },
            RolloutStatus {
                current_step_hash: "x".into(),
                ..prev.clone()
            },
        ];
        for (index, case) in cases.iter().enumerate() {
            assert!(rollout_progressing(&prev, case), "case {index}");
        }
        assert!(!rollout_progressing(
            &prev,
            &RolloutStatus {
                current_step_index: None,
                ..prev.clone()
            }
        ));
    }

    #[test]
    fn paused_conditions_follow_pause_state() {
        let spec = RolloutSpec {
            paused: Some(true),
            ..RolloutSpec::default()
        };
        let updates = paused_condition_updates(&spec, &RolloutStatus::default(), &at(1));
        let got: Vec<(&str, &str, &str)> = updates
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Progressing", "Unknown", "RolloutPaused"),
                ("Paused", "True", "RolloutPaused")
            ]
        );

        let mut status = RolloutStatus::default();
        for condition in updates {
            set(&mut status, condition);
        }
        assert!(paused_condition_updates(&spec, &status, &at(2)).is_empty());
        let resumed = paused_condition_updates(&RolloutSpec::default(), &status, &at(3));
        let got: Vec<(&str, &str)> = resumed
            .iter()
            .map(|c| (c.reason.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("RolloutResumed", "Unknown"), ("RolloutPaused", "False")]
        );

        let mut aborted = RolloutStatus::default();
        set(
            &mut aborted,
            new_condition("Progressing", "False", "RolloutAborted", "m", &at(1)),
        );
        assert!(
            paused_condition_updates(
                &spec,
                &RolloutStatus {
                    abort: true,
                    ..aborted.clone()
                },
                &at(2)
            )
            .is_empty()
        );
        let retry = paused_condition_updates(&RolloutSpec::default(), &aborted, &at(2));
        assert_eq!(retry.len(), 1);
        assert_eq!(
            (retry[0].reason.as_str(), retry[0].message.as_str()),
            ("RolloutRetry", "Retrying Rollout after abort")
        );
    }
}
