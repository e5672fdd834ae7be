//! Pause and abort bookkeeping of one reconcile (upstream `pauseContext`, spec §2.1): the
//! decisions taken along the pipeline, merged into the new status at the end without losing
//! what users wrote.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{PauseCondition, PauseReason, RolloutStatus};

/// Rollout annotation giving the reason of an abort requested from outside (Davy's alert
/// receiver sets it just before `status.abort: true`; a user may set it before
/// `kubectl argo rollouts abort`). It is appended to the `RolloutAborted` message when the abort
/// is first recorded, unless the controller decided the abort itself (analysis, deadline).
pub const ABORT_REASON_ANNOTATION: &str = "davy.dev/abort-reason";

/// Pause/abort changes decided during one reconcile.
#[derive(Debug, Clone, Default)]
pub struct PauseContext {
    add_pause: Vec<PauseReason>,
    remove_pause: Vec<PauseReason>,
    clear_pause: bool,
    add_abort: bool,
    remove_abort: bool,
    abort_message: String,
}

impl PauseContext {
    /// A pause condition was added this reconcile.
    pub fn has_add_pause(&self) -> bool {
        !self.add_pause.is_empty()
    }

    /// An abort was decided this reconcile (analysis, progress deadline).
    pub fn has_add_abort(&self) -> bool {
        self.add_abort
    }

    /// Aborted: decided now, or requested in the observed status and not lifted now.
    pub fn is_aborted(&self, observed: &RolloutStatus) -> bool {
        !self.remove_abort && (self.add_abort || observed.abort)
    }

    /// The reason given with an abort decided this reconcile (empty for a user abort).
    pub fn abort_message(&self) -> &str {
        &self.abort_message
    }

    /// Aborts with `message` (appended to the `RolloutAborted` condition message).
    pub fn add_abort(&mut self, message: impl Into<String>) {
        self.add_abort = true;
        self.abort_message = message.into();
    }

    /// Gives a requested abort its reason (the [`ABORT_REASON_ANNOTATION`]) without deciding
    /// an abort: the observed `status.abort` still decides; a reason set by [`add_abort`]
    /// wins.
    ///
    /// [`add_abort`]: PauseContext::add_abort
    pub fn note_abort_reason(&mut self, reason: &str) {
        if self.abort_message.is_empty() {
            self.abort_message = reason.to_string();
        }
    }

    /// Lifts any abort (promotion, new revision, fully promoted).
    pub fn remove_abort(&mut self) {
        self.remove_abort = true;
    }

    /// Adds a pause condition (kept with its original start time if it already exists).
    pub fn add_pause(&mut self, reason: PauseReason) {
        self.add_pause.push(reason);
    }

    /// Removes a pause condition.
    pub fn remove_pause(&mut self, reason: PauseReason) {
        self.remove_pause.push(reason);
    }

    /// Drops all pause conditions (promotion, full promotion, new revision).
    pub fn clear_pause(&mut self) {
        self.clear_pause = true;
    }

    /// Writes `abort`, `abortedAt`, `pauseConditions` and `controllerPause` into `new_status`
    /// (upstream `CalculatePauseStatus`). `new_status` must come in with the pause fields the
    /// caller wants kept when nothing changes: empty in the normal path, the observed ones in
    /// the replicas-only path.
    ///
    /// * aborted ⇒ `abort: true`, `abortedAt` kept or set to `now`; pause fields untouched;
    /// * otherwise `abort: false`, no `abortedAt`; unless cleared, the observed conditions minus
    ///   removed ones plus new ones (new ones set `controllerPause`); an empty result leaves
    ///   the pause fields of `new_status` as they came.
    pub fn apply(&self, observed: &RolloutStatus, new_status: &mut RolloutStatus, now: &Time) {
        if self.is_aborted(observed) {
            new_status.abort = true;
            new_status.aborted_at =
                Some(observed.aborted_at.clone().unwrap_or_else(|| now.clone()));
            return;
        }
        new_status.abort = false;
        new_status.aborted_at = None;
        if self.clear_pause {
            return;
        }
        let mut controller_pause = observed.controller_pause;
        let mut conditions: Vec<PauseCondition> = observed
            .pause_conditions
            .iter()
            .filter(|condition| !self.remove_pause.contains(&condition.reason))
            .cloned()
            .collect();
        for reason in &self.add_pause {
            let exists = observed
                .pause_conditions
                .iter()
                .chain(conditions.iter())
                .any(|condition| &condition.reason == reason);
            if !exists {
                conditions.push(PauseCondition {
                    reason: reason.clone(),
                    start_time: now.clone(),
                });
                controller_pause = true;
            }
        }
        if conditions.is_empty() {
            return;
        }
        new_status.controller_pause = controller_pause;
        new_status.pause_conditions = conditions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::observed::chrono_to_time;
    use chrono::DateTime;

    fn at(seconds: i64) -> Time {
        chrono_to_time(DateTime::from_timestamp(seconds, 0).unwrap_or_default())
    }

    fn paused(reason: PauseReason, since: i64) -> PauseCondition {
        PauseCondition {
            reason,
            start_time: at(since),
        }
    }

    #[test]
    fn adding_a_pause_sets_controller_pause_and_keeps_existing_start_times() {
        let observed = RolloutStatus {
            pause_conditions: vec![paused(PauseReason::CanaryPauseStep, 10)],
            controller_pause: true,
            ..RolloutStatus::default()
        };
        let mut pause = PauseContext::default();
        pause.add_pause(PauseReason::CanaryPauseStep);
        pause.add_pause(PauseReason::InconclusiveAnalysisRun);
        let mut new_status = RolloutStatus::default();
        pause.apply(&observed, &mut new_status, &at(50));
        assert_eq!(
            new_status.pause_conditions,
            vec![
                paused(PauseReason::CanaryPauseStep, 10),
                paused(PauseReason::InconclusiveAnalysisRun, 50)
            ]
        );
        assert!(new_status.controller_pause);
        assert!(!new_status.abort);
    }

    #[test]
    fn no_pause_left_resets_controller_pause() {
        // A user cleared the conditions: controllerPause true, no conditions.
        let observed = RolloutStatus {
            controller_pause: true,
            ..RolloutStatus::default()
        };
        let mut new_status = RolloutStatus::default();
        PauseContext::default().apply(&observed, &mut new_status, &at(1));
        assert!(!new_status.controller_pause);
        assert!(new_status.pause_conditions.is_empty());
    }

    #[test]
    fn abort_drops_pause_conditions_and_keeps_the_first_aborted_at() {
        let observed = RolloutStatus {
            abort: true,
            aborted_at: Some(at(5)),
            pause_conditions: vec![paused(PauseReason::CanaryPauseStep, 1)],
            ..RolloutStatus::default()
        };
        let mut new_status = RolloutStatus::default();
        PauseContext::default().apply(&observed, &mut new_status, &at(9));
        assert!(new_status.abort);
        assert_eq!(new_status.aborted_at, Some(at(5)));
        assert!(new_status.pause_conditions.is_empty());

        let mut pause = PauseContext::default();
        pause.add_abort("Step-based analysis phase error/failed");
        let mut fresh = RolloutStatus::default();
        pause.apply(&RolloutStatus::default(), &mut fresh, &at(9));
        assert_eq!((fresh.abort, fresh.aborted_at), (true, Some(at(9))));
    }

    #[test]
    fn retry_clears_abort_and_aborted_at() {
        let observed = RolloutStatus {
            abort: false,
            aborted_at: Some(at(5)),
            ..RolloutStatus::default()
        };
        let mut new_status = RolloutStatus::default();
        PauseContext::default().apply(&observed, &mut new_status, &at(9));
        assert_eq!((new_status.abort, new_status.aborted_at), (false, None));
        let mut lifted = PauseContext::default();
        lifted.remove_abort();
        assert!(!lifted.is_aborted(&RolloutStatus {
            abort: true,
            ..RolloutStatus::default()
        }));
    }

    #[test]
    fn clear_and_remove_drop_conditions() {
        let observed = RolloutStatus {
            pause_conditions: vec![
                paused(PauseReason::CanaryPauseStep, 1),
                paused(PauseReason::InconclusiveAnalysisRun, 2),
            ],
            controller_pause: true,
            ..RolloutStatus::default()
        };
        let mut remove = PauseContext::default();
        remove.remove_pause(PauseReason::CanaryPauseStep);
        let mut new_status = RolloutStatus::default();
        remove.apply(&observed, &mut new_status, &at(3));
        assert_eq!(
            new_status.pause_conditions,
            vec![paused(PauseReason::InconclusiveAnalysisRun, 2)]
        );
        let mut clear = PauseContext::default();
        clear.clear_pause();
        let mut cleared = RolloutStatus::default();
        clear.apply(&observed, &mut cleared, &at(3));
        assert!(cleared.pause_conditions.is_empty());
        assert!(!cleared.controller_pause);
    }

    /// The abort-reason annotation reaches the `RolloutAborted` message (and so the phase
    /// message) of a user-requested abort; without it the message is upstream's.
    #[test]
    fn abort_reason_annotation_is_appended_to_the_aborted_message() {
        use crate::rollout::fixtures::{new_hash, replica_set, rollout, world};
        let hash = new_hash();
        let message_for = |reason: Option<&str>| {
            let mut ro = rollout(
                2,
                serde_json::json!([{"setWeight": 50}, {"pause": {}}]),
                false,
                serde_json::json!({"abort": true, "stableRS": "old", "currentPodHash": hash,
                                   "currentStepIndex": 1}),
            );
            if let Some(reason) = reason {
                ro.metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(ABORT_REASON_ANNOTATION.to_string(), reason.to_string());
            }
            let mut replica_sets = vec![
                replica_set("old", 1, 1, 1, 0),
                replica_set(&hash, 1, 1, 2, 10),
            ];
            for rs in &mut replica_sets {
                // Sized for the Rollout's 2 replicas: no scaling event.
                rs.metadata.annotations.get_or_insert_default().insert(
                    "rollout.argoproj.io/desired-replicas".to_string(),
                    "2".to_string(),
                );
            }
            let observed = world(ro, replica_sets);
            let plan = crate::rollout::plan(&observed, crate::rollout::fixtures::at(100));
            let status = plan.status().cloned().unwrap_or_default();
            let progressing = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Progressing")
                .map(|c| (c.reason.clone(), c.message.clone()));
            (progressing, status.message)
        };
        assert_eq!(
            message_for(Some(
                "Aborted by alert HighErrorRate (fingerprint 1a2b3c4d5e6f7a8b)"
            )),
            (
                Some((
                    "RolloutAborted".to_string(),
                    "Rollout aborted update to revision 2: Aborted by alert HighErrorRate \
                     (fingerprint 1a2b3c4d5e6f7a8b)"
                        .to_string()
                )),
                "RolloutAborted: Rollout aborted update to revision 2: Aborted by alert \
                 HighErrorRate (fingerprint 1a2b3c4d5e6f7a8b)"
                    .to_string()
            )
        );
        assert_eq!(
            message_for(None),
            (
                Some((
                    "RolloutAborted".to_string(),
                    "Rollout aborted update to revision 2".to_string()
                )),
                "RolloutAborted: Rollout aborted update to revision 2".to_string()
            )
        );
    }
}
