//! Inputs of the canary replica math and the rules shared by basic and traffic-routed canaries
//! (spec §3.2, §3.3): int-or-percent fenceposts, the weight the replica math uses, and whether
//! a step's ReplicaSet counts have been reached.
//!
//! The functions here work on small plain structs ([`CanaryParams`], [`ReplicaSetCounts`])
//! instead of the API types, so the whole algorithm is testable on values. The controller
//! builds these structs from the Rollout and its ReplicaSets before calling in.
//!
//! Files: `inputs` (the structs and fenceposts), `weight` (the weight or pod count a step asks
//! for), `reached` (whether counts were reached), `basic` and `traffic` (the two ways to split
//! replicas), `other` (scaling down older ReplicaSets). This module dispatches between basic
//! and traffic-routed math; none of these files imports anything outside `replicas/`.

pub mod basic;
pub mod blue_green;
pub mod inputs;
pub mod other;
pub mod reached;
pub mod traffic;
pub mod weight;

use basic::basic_canary_replica_counts;
pub use inputs::*;
pub use reached::*;
use traffic::traffic_routed_canary_replica_counts;
pub use weight::*;

/// The canary and stable counts for the current state: basic-canary math without traffic
/// routing, traffic-routed math with it. `other_rss` is read only by the basic math,
/// `weights` only by the traffic-routed math.
pub fn desired_replica_counts(
    params: &CanaryParams,
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
    other_rss: &[ReplicaSetCounts],
    weights: Option<&WeightSplit>,
) -> ReplicaCounts {
    if params.traffic_routed {
        traffic_routed_canary_replica_counts(params, new_rs, stable_rs, weights)
    } else {
        basic_canary_replica_counts(params, new_rs, stable_rs, other_rss)
    }
}

/// Whether the ReplicaSets have reached the counts of the current step (upstream
/// `AtDesiredReplicaCountsForCanary`), which gates completing a `setWeight` or
/// `setCanaryScale` step:
/// * the new RS meets [`replica_progress_threshold_met`] for its desired count;
/// * the stable RS has spec and created pods equal to its desired count (availability is not
///   checked), except with traffic routing and `dynamicStableScale`;
/// * basic canary only: no other RS has available pods (they would receive traffic).
pub fn at_desired_replica_counts(
    params: &CanaryParams,
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
    other_rss: &[ReplicaSetCounts],
    weights: Option<&WeightSplit>,
) -> bool {
    let desired = desired_replica_counts(params, new_rs, stable_rs, other_rss, weights);
    if !replica_progress_threshold_met(
        params.replica_progress_threshold.as_ref(),
        new_rs,
        desired.canary,
    ) {
        return false;
    }
    if (!params.traffic_routed || !params.dynamic_stable_scale)
        && !all_desired_are_created(stable_rs, desired.stable)
    {
        return false;
    }
    if !params.traffic_routed && other_rss.iter().any(|rs| rs.available_replicas != 0) {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(value: i32) -> Option<PodsOrPercent> {
        Some(PodsOrPercent::Int(value))
    }

    fn text(value: &str) -> Option<PodsOrPercent> {
        Some(PodsOrPercent::String(value.to_string()))
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        // (maxSurge, maxUnavailable, replicas) -> (surge, unavailable)
        let table = [
            (text("25%"), text("25%"), 10, (3, 2)),
            (text("25"), text("25"), 10, (3, 2)),
            (None, None, 10, (3, 2)),
            (text("3"), int(0), 10, (1, 0)),
            (text("0%"), text("0%"), 10, (0, 1)),
            (int(0), text("5%"), 10, (0, 1)),
            (int(2), int(1), 10, (2, 1)),
            (text("100%"), int(0), 4, (4, 0)),
            (text("1%"), text("1%"), 1, (1, 0)),
        ];
        for (surge, unavailable, replicas, expected) in table {
            let got = resolve_fenceposts(surge.as_ref(), unavailable.as_ref(), replicas);
            assert_eq!(got, Ok(expected), "{surge:?} {unavailable:?} of {replicas}");
        }
    }

    #[test]
    fn unparseable_fencepost_is_an_error_and_resolves_to_zero_in_params() {
        let bad = PodsOrPercent::String("a lot".to_string());
        assert_eq!(
            bad.scaled_value(10, true),
            Err(ReplicaMathError::InvalidIntOrPercent("a lot".to_string()))
        );
        let params = CanaryParams {
            replicas: Some(10),
            max_surge: Some(bad),
            max_unavailable: int(3),
            ..CanaryParams::default()
        };
        assert_eq!(params.max_surge_pods(), 0);
        assert_eq!(params.max_unavailable_pods(), 0);
    }

    #[test]
    fn max_unavailable_is_capped_at_replicas() {
        let params = CanaryParams {
            replicas: Some(3),
            max_surge: int(0),
            max_unavailable: int(7),
            ..CanaryParams::default()
        };
        assert_eq!(params.max_unavailable_pods(), 3);
        let zero = CanaryParams {
            replicas: Some(0),
            ..params
        };
        assert_eq!(zero.max_unavailable_pods(), 0);
    }

    #[test]
    fn max_weight_only_configurable_with_traffic_routing() {
        let mut params = CanaryParams {
            max_traffic_weight: Some(1000),
            ..CanaryParams::default()
        };
        assert_eq!(params.max_weight(), 100);
        params.traffic_routed = true;
        assert_eq!(params.max_weight(), 1000);
    }

    #[test]
    fn set_weight_is_searched_backwards_from_the_current_step() {
        let steps = vec![
            ScaleStep {
                set_weight: Some(20),
                ..ScaleStep::default()
            },
            ScaleStep::default(),
            ScaleStep {
                set_weight: Some(40),
                ..ScaleStep::default()
            },
            ScaleStep::default(),
        ];
        let at = |index: Option<i32>| {
            let params = CanaryParams {
                steps: steps.clone(),
                status: RolloutProgress {
                    current_step_index: index,
                    ..RolloutProgress::default()
                },
                ..CanaryParams::default()
            };
            current_set_weight(&params)
        };
        assert_eq!(at(None), 20);
        assert_eq!(at(Some(1)), 20);
        assert_eq!(at(Some(3)), 40);
        assert_eq!(at(Some(4)), 100);
        assert_eq!(current_set_weight(&CanaryParams::default()), 100);
        let pause_first = CanaryParams {
            steps: vec![ScaleStep::default(), steps[0].clone()],
            ..CanaryParams::default()
        };
        assert_eq!(current_set_weight(&pause_first), 0);
    }

    #[test]
    fn match_traffic_weight_cancels_an_earlier_set_canary_scale() {
        let scale = |replicas, match_traffic_weight| ScaleStep {
            set_weight: None,
            set_canary_scale: Some(ScaleOverride {
                replicas,
                weight: None,
                match_traffic_weight,
            }),
        };
        let params = CanaryParams {
            traffic_routed: true,
            steps: vec![
                scale(Some(3), false),
                scale(None, true),
                ScaleStep::default(),
            ],
            status: RolloutProgress {
                stable_rs: "a".to_string(),
                current_pod_hash: "b".to_string(),
                current_step_index: Some(0),
                ..RolloutProgress::default()
            },
            ..CanaryParams::default()
        };
        assert_eq!(
            effective_set_canary_scale(&params).and_then(|s| s.replicas),
            Some(3)
        );
        let later = CanaryParams {
            status: RolloutProgress {
                current_step_index: Some(2),
                ..params.status.clone()
            },
            ..params.clone()
        };
        assert_eq!(effective_set_canary_scale(&later), None);
    }

    #[test]
    fn traffic_weight_to_replicas_rounds_up_like_go_ceil() {
        assert_eq!(traffic_weight_to_replicas(10, 33, 100), 4);
        assert_eq!(traffic_weight_to_replicas(10, -5, 100), 0);
        assert_eq!(traffic_weight_to_replicas(10, -15, 100), -1);
        assert_eq!(traffic_weight_to_replicas(4, 200, 100), 8);
        assert_eq!(traffic_weight_to_replicas(3, 1, 1000), 1);
    }

    #[test]
    fn stable_rs_exists_compares_names() {
        let rs = |name: &str| ReplicaSetCounts {
            name: name.to_string(),
            ..ReplicaSetCounts::default()
        };
        assert!(!stable_rs_exists(None, None));
        assert!(!stable_rs_exists(Some(&rs("a")), None));
        assert!(stable_rs_exists(None, Some(&rs("a"))));
        assert!(stable_rs_exists(Some(&rs("a")), Some(&rs("b"))));
        assert!(!stable_rs_exists(Some(&rs("a")), Some(&rs("a"))));
    }

    #[test]
    fn percent_threshold_is_compared_exactly() {
        // 29 of 100 is exactly 29 %: a float ratio (0.29 * 100) would come out just below.
        let threshold = ProgressThreshold {
            kind: ProgressThresholdKind::Percent,
            value: 29,
        };
        let rs = ReplicaSetCounts {
            available_replicas: 29,
            ..ReplicaSetCounts::default()
        };
        assert!(replica_progress_threshold_met(
            Some(&threshold),
            Some(&rs),
            100
        ));
        let short = ReplicaSetCounts {
            available_replicas: 28,
            ..rs
        };
        assert!(!replica_progress_threshold_met(
            Some(&threshold),
            Some(&short),
            100
        ));
    }
}
