//! Whether ReplicaSets have reached a desired count: the stable exists, all desired pods
//! created or available, and the `replicaProgressThreshold` rule.

use super::inputs::{ProgressThreshold, ProgressThresholdKind, ReplicaSetCounts};

/// Whether a separate stable ReplicaSet exists: present and not the new RS itself (compared by
/// name, as upstream `CheckStableRSExists`).
pub fn stable_rs_exists(
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
) -> bool {
    match (new_rs, stable_rs) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(new_rs), Some(stable_rs)) => new_rs.name != stable_rs.name,
    }
}

/// The ReplicaSet exists with `spec.replicas` and available pods both exactly `desired`.
pub fn all_desired_are_available(rs: Option<&ReplicaSetCounts>, desired: i32) -> bool {
    rs.is_some_and(|rs| rs.spec() == desired && rs.available_replicas == desired)
}

/// The ReplicaSet exists with `spec.replicas` and created pods (`status.replicas`) both
/// exactly `desired`; availability is not looked at.
pub fn all_desired_are_created(rs: Option<&ReplicaSetCounts>, desired: i32) -> bool {
    rs.is_some_and(|rs| rs.spec() == desired && rs.replicas == desired)
}

/// Whether the canary ReplicaSet has enough available pods for the step (upstream
/// `ReplicaProgressThresholdMet`). Without a threshold (or with a value ≤ 0) that is
/// [`all_desired_are_available`]. `Pod`: at least `value` available pods. `Percent`: available
/// pods are at least `value` % of `desired`, compared exactly in integers; always met when
/// `desired` is 0.
pub fn replica_progress_threshold_met(
    threshold: Option<&ProgressThreshold>,
    rs: Option<&ReplicaSetCounts>,
    desired: i32,
) -> bool {
    let Some(rs) = rs else {
        return false;
    };
    let threshold = match threshold {
        Some(threshold) if threshold.value > 0 => threshold,
        _ => return all_desired_are_available(Some(rs), desired),
    };
    match threshold.kind {
        ProgressThresholdKind::Pod => rs.available_replicas >= threshold.value,
        ProgressThresholdKind::Percent => {
            desired == 0
                || i64::from(rs.available_replicas) * 100
                    >= i64::from(threshold.value) * i64::from(desired)
        }
    }
}
