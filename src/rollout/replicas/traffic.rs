//! Replica counts for a traffic-routed canary (spec §3.3): the router splits traffic, so the
//! canary is sized for its weight (or `setCanaryScale`) while the stable stays at full size,
//! or with `dynamicStableScale` shrinks only as traffic leaves it (upstream
//! `CalculateReplicaCountsForTrafficRoutedCanary`).

use super::inputs::{CanaryParams, ReplicaCounts, ReplicaSetCounts, WeightSplit};
use super::weight::{canary_replicas_or_weight, traffic_weight_to_replicas};

/// Raises a non-zero count to `minPodsPerReplicaSet` for high availability (upstream
/// `CheckMinPodsPerReplicaSet`); the minimum itself is capped at `spec.replicas`, so it never
/// asks for more pods than the Rollout has. Only with traffic routing; 0 stays 0.
pub fn apply_min_pods_per_replica_set(params: &CanaryParams, count: i32) -> i32 {
    if count == 0 || !params.traffic_routed {
        return count;
    }
    match params.min_pods_per_replica_set {
        Some(min_pods) => count.max(min_pods.min(params.replicas_or_default())),
        None => count,
    }
}

/// Desired canary and stable sizes with traffic routing.
///
/// * canary = explicit `setCanaryScale.replicas` (taken as is), else ⌈R·W/M⌉ raised by
///   [`apply_min_pods_per_replica_set`];
/// * without `dynamicStableScale` the stable stays at R, so an abort is instant;
/// * with it, stable = ⌈R·(M−W)/M⌉, but never below what the last applied stable traffic
///   weight needs (`weights`, written by the previous reconcile), and while aborting the canary
///   never drops below what the last applied canary weight needs; both then get the minimum.
///
/// `new_rs`/`stable_rs` only matter for the stepped-down abort weight of `dynamicStableScale`.
pub fn traffic_routed_canary_replica_counts(
    params: &CanaryParams,
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
    weights: Option<&WeightSplit>,
) -> ReplicaCounts {
    let replicas = params.replicas_or_default();
    let max_weight = params.max_weight();
    let wanted = canary_replicas_or_weight(params, new_rs, stable_rs);
    let mut canary = match wanted.replicas {
        Some(explicit) => explicit,
        None => apply_min_pods_per_replica_set(
            params,
            traffic_weight_to_replicas(replicas, wanted.weight, max_weight),
        ),
    };
    if !params.dynamic_stable_scale {
        return ReplicaCounts {
            canary,
            stable: replicas,
        };
    }

    let mut stable = traffic_weight_to_replicas(replicas, max_weight - wanted.weight, max_weight);
    if let Some(weights) = weights {
        // Going up: stable must stay large until traffic has actually left it.
        stable = stable.max(traffic_weight_to_replicas(
            replicas,
            weights.stable,
            max_weight,
        ));
        if params.status.abort {
            // Going back down: canary must stay large until traffic has actually left it.
            canary = canary.max(traffic_weight_to_replicas(
                replicas,
                weights.canary,
                max_weight,
            ));
        }
    }
    ReplicaCounts {
        canary: apply_min_pods_per_replica_set(params, canary),
        stable: apply_min_pods_per_replica_set(params, stable),
    }
}

#[cfg(test)]
mod tests {
    use super::super::inputs::{RolloutProgress, ScaleOverride, ScaleStep};
    use super::*;

    fn routed(replicas: i32, steps: Vec<ScaleStep>) -> CanaryParams {
        CanaryParams {
            replicas: Some(replicas),
            traffic_routed: true,
            steps,
            status: RolloutProgress {
                stable_rs: "stable".to_string(),
                current_pod_hash: "canary".to_string(),
                ..RolloutProgress::default()
            },
            ..CanaryParams::default()
        }
    }

    fn weight(value: i32) -> ScaleStep {
        ScaleStep {
            set_weight: Some(value),
            set_canary_scale: None,
        }
    }

    #[test]
    fn max_traffic_weight_scales_the_canary() {
        // 25 out of 50 is half: 5 of 10 pods.
        let mut params = routed(10, vec![weight(25)]);
        params.max_traffic_weight = Some(50);
        assert_eq!(
            traffic_routed_canary_replica_counts(&params, None, None, None),
            ReplicaCounts {
                canary: 5,
                stable: 10
            }
        );
    }

    #[test]
    fn min_pods_applies_to_weights_but_not_to_explicit_replicas() {
        let mut params = routed(
            10,
            vec![ScaleStep {
                set_weight: Some(5),
                set_canary_scale: Some(ScaleOverride {
                    replicas: Some(1),
                    weight: None,
                    match_traffic_weight: false,
                }),
            }],
        );
        params.min_pods_per_replica_set = Some(3);
        assert_eq!(
            traffic_routed_canary_replica_counts(&params, None, None, None).canary,
            1
        );
        assert_eq!(apply_min_pods_per_replica_set(&params, 1), 3);
        assert_eq!(apply_min_pods_per_replica_set(&params, 0), 0);
        assert_eq!(apply_min_pods_per_replica_set(&params, 7), 7);
        params.traffic_routed = false;
        assert_eq!(apply_min_pods_per_replica_set(&params, 1), 1);
    }

    #[test]
    fn dynamic_stable_scale_keeps_stable_until_traffic_leaves() {
        // Step moved to 60 % but the router still sends 80 % to stable.
        let mut params = routed(10, vec![weight(20), weight(60)]);
        params.dynamic_stable_scale = true;
        params.status.current_step_index = Some(1);
        let weights = WeightSplit {
            canary: 20,
            stable: 80,
        };
        assert_eq!(
            traffic_routed_canary_replica_counts(&params, None, None, Some(&weights)),
            ReplicaCounts {
                canary: 6,
                stable: 8
            }
        );
        // Once the router reports 60/40 the stable may shrink to 4.
        let moved = WeightSplit {
            canary: 60,
            stable: 40,
        };
        assert_eq!(
            traffic_routed_canary_replica_counts(&params, None, None, Some(&moved)),
            ReplicaCounts {
                canary: 6,
                stable: 4
            }
        );
    }
}
