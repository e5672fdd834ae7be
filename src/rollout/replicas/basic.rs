//! Replica counts for a basic canary (no traffic router, spec §3.3): the pod ratio is the
//! traffic split, so counts are approximated to the weight and moved within maxSurge and
//! maxUnavailable (upstream `CalculateReplicaCountsForBasicCanary`).

use super::inputs::{CanaryParams, ReplicaCounts, ReplicaSetCounts, ceil_div, clamp_i32};
use super::reached::stable_rs_exists;
use super::weight::canary_replicas_or_weight;

/// The canary/stable split closest to `weight` (upstream
/// `approximateWeightedCanaryStableReplicaCounts`), before any surge/availability limits.
///
/// The split may use `replicas` or, when `max_surge > 0`, `replicas + 1` pods in total. For a
/// weight strictly between 0 and max neither side is rounded to 0, unless there is one replica
/// and no surge. When two splits are equally close the earlier candidate wins, and a canary
/// share exactly halfway between two counts takes the larger canary count.
///
/// Closeness is computed in `f64` exactly as upstream does, so equal-looking ties are broken
/// the same way.
pub fn approximate_weighted_counts(
    replicas: i32,
    weight: i32,
    max_weight: i32,
    max_surge: i32,
) -> ReplicaCounts {
    if replicas == 0 {
        return ReplicaCounts::default();
    }
    let max_weight = max_weight.max(1);
    let total = i64::from(replicas);
    let scaled = total * i64::from(weight);
    let ceil = clamp_i32(ceil_div(scaled, i64::from(max_weight)));
    let floor = clamp_i32(scaled.div_euclid(i64::from(max_weight)));
    let tied =
        |pods: i32| (f64::from(pods) * (f64::from(weight) / f64::from(max_weight))).fract() == 0.5;
    let zero_allowed = weight == max_weight || weight == 0 || (replicas == 1 && max_surge == 0);

    // (canary, total) candidates in upstream's order; the order decides ties.
    let mut options: Vec<(i32, i32)> = Vec::with_capacity(4);
    if ceil < replicas || zero_allowed {
        options.push((ceil, replicas));
    }
    if !tied(replicas) && (floor != 0 || zero_allowed) {
        options.push((floor, replicas));
    }
    if max_surge > 0 {
        let surged = replicas.saturating_add(1);
        options.push((ceil, surged));
        if !tied(surged) && (floor != 0 || zero_allowed) {
            options.push((floor, surged));
        }
    }

    let delta = |(canary, total): (i32, i32)| {
        let actual = (i64::from(canary) * i64::from(max_weight)) as f64 / f64::from(total);
        (actual - f64::from(weight)).abs()
    };
    let mut best: Option<((i32, i32), f64)> = None;
    for option in options {
        let distance = delta(option);
        if best.is_none_or(|(_, best_distance)| distance < best_distance) {
            best = Some((option, distance));
        }
    }
    match best {
        Some(((canary, total), _)) => ReplicaCounts {
            canary,
            stable: total - canary,
        },
        // Unreachable with replicas > 0 (some candidate always qualifies); upstream's fallback.
        None => ReplicaCounts {
            canary: 0,
            stable: replicas,
        },
    }
}

/// Pods of `rs` that count as "up" when deciding how far to scale down (upstream
/// `GetReplicasForScaleDown`): `spec` if spec < available (the surplus is about to go away
/// anyway), otherwise `spec` when availability may be ignored, else `available`. 0 for no RS.
pub fn replicas_for_scale_down(rs: Option<&ReplicaSetCounts>, ignore_availability: bool) -> i32 {
    let Some(rs) = rs else {
        return 0;
    };
    if rs.spec() < rs.available_replicas || ignore_availability {
        rs.spec()
    } else {
        rs.available_replicas
    }
}

/// Desired new and stable ReplicaSet sizes for a basic canary, one reconcile's worth of
/// movement (spec §3.3 steps 1–5):
///
/// 1. the target split from [`approximate_weighted_counts`] with the weight of
///    [`canary_replicas_or_weight`] (`setCanaryScale` never applies without traffic routing);
///    with no separate stable RS the new RS targets `spec.replicas`;
/// 2. scale up within `spec.replicas + maxSurge` total pods, stable first, then canary;
/// 3. while any other RS still has `spec.replicas > 0`, nothing is scaled down (they drain
///    first, see `other`);
/// 4. scale down only above `spec.replicas − maxUnavailable` available pods: the canary when the
///    weight is falling (abort), else the stable; then re-balance to stay within both limits.
pub fn basic_canary_replica_counts(
    params: &CanaryParams,
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
    other_rss: &[ReplicaSetCounts],
) -> ReplicaCounts {
    let replicas = params.replicas_or_default();
    let weight = canary_replicas_or_weight(params, new_rs, stable_rs).weight;
    let max_surge = params.max_surge_pods();
    let target = approximate_weighted_counts(replicas, weight, params.max_weight(), max_surge);
    let (mut desired_new, mut desired_stable) = (target.canary, target.stable);

    let mut new_count = new_rs.map_or(0, ReplicaSetCounts::spec);
    let mut stable_count = 0;
    let scale_stable = stable_rs_exists(new_rs, stable_rs);
    // `scale_stable` guarantees a stable RS; keep it as an Option-free binding for the math.
    let separate_stable = stable_rs.filter(|_| scale_stable);
    if let Some(stable) = separate_stable {
        stable_count = stable.spec();
    } else {
        // No distinct stable: the new RS simply goes to 100 %.
        desired_new = replicas;
        desired_stable = 0;
    }

    let max_allowed = replicas + max_surge;
    let others_spec: i32 = other_rss.iter().map(ReplicaSetCounts::spec).sum();
    let current_total = others_spec
        + new_rs.map_or(0, ReplicaSetCounts::spec)
        + separate_stable.map_or(0, ReplicaSetCounts::spec);
    let mut scale_up = max_allowed - current_total;

    if let Some(stable) = separate_stable
        && stable.spec() < desired_stable
        && scale_up > 0
    {
        if stable.spec() + scale_up < desired_stable {
            stable_count = stable.spec() + scale_up;
            scale_up = 0;
        } else {
            stable_count = desired_stable;
            scale_up -= desired_stable - stable.spec();
        }
    }
    if let Some(new) = new_rs
        && new.spec() < desired_new
        && scale_up > 0
    {
        new_count = (new.spec() + scale_up).min(desired_new);
    }

    if others_spec > 0 {
        return ReplicaCounts {
            canary: new_count,
            stable: stable_count,
        };
    }

    let min_available = replicas - params.max_unavailable_pods();
    // Growing canary: stable pods may be counted even if unavailable (so a crash-looping stable
    // cannot block the rollout); shrinking canary (abort): the same for canary pods.
    let increasing = new_rs.is_none_or(|new| desired_new >= new.spec());
    // Upstream passes the stable RS here even when it is the new RS itself; kept for parity.
    let countable = replicas_for_scale_down(new_rs, !increasing)
        + replicas_for_scale_down(stable_rs, increasing);
    if countable <= min_available {
        return ReplicaCounts {
            canary: new_count,
            stable: stable_count,
        };
    }
    let scale_down = countable - min_available;

    if !increasing {
        new_count = scale_down_toward(new_rs, desired_new, scale_down, new_count);
        (new_count, stable_count) = adjust_within_limits(
            new_rs,
            stable_rs,
            new_count,
            stable_count,
            max_allowed,
            min_available,
        );
    } else if scale_stable {
        stable_count = scale_down_toward(stable_rs, desired_stable, scale_down, stable_count);
        (stable_count, new_count) = adjust_within_limits(
            stable_rs,
            new_rs,
            stable_count,
            new_count,
            max_allowed,
            min_available,
        );
    }
    ReplicaCounts {
        canary: new_count,
        stable: stable_count,
    }
}

/// Scales `rs` down by up to `scale_down`, but not below `desired`; leaves `current` alone when
/// the RS is not above its desired size.
fn scale_down_toward(
    rs: Option<&ReplicaSetCounts>,
    desired: i32,
    scale_down: i32,
    current: i32,
) -> i32 {
    match rs {
        Some(rs) if rs.spec() > desired => desired.max(rs.spec() - scale_down),
        _ => current,
    }
}

/// Re-balances after a scale-down so the pair stays within `max_allowed` total pods and keeps
/// `min_available` available pods (upstream `adjustReplicaWithinLimits`). `drain` is the RS
/// being scaled down, `adjust` the other one; returns the new `(drain, adjust)` counts.
///
/// The adjust RS first gives up whatever exceeds the surge limit; then, if that cost
/// availability below the floor, it gets back as many of its available pods as needed; any
/// surge excess that re-creates comes off the drain RS.
fn adjust_within_limits(
    drain_rs: Option<&ReplicaSetCounts>,
    adjust_rs: Option<&ReplicaSetCounts>,
    mut drain: i32,
    mut adjust: i32,
    max_allowed: i32,
    min_available: i32,
) -> (i32, i32) {
    let over_limit = (adjust + drain - max_allowed).max(0);
    let mut total_available = drain_rs.map_or(0, |rs| rs.available_replicas.min(drain));
    if let Some(adjust_rs) = adjust_rs {
        adjust -= over_limit;
        total_available += adjust_rs.available_replicas.min(adjust);
        let lost_available = (adjust_rs.available_replicas - adjust).max(0);
        let still_needed = (min_available - total_available).max(0);
        adjust += lost_available.min(still_needed);
        drain -= (adjust + drain - max_allowed).max(0);
    }
    (drain, adjust)
}

#[cfg(test)]
mod tests {
    use super::super::inputs::{PodsOrPercent, RolloutProgress, ScaleStep};
    use super::*;

    fn rs(name: &str, spec: i32, available: i32) -> ReplicaSetCounts {
        ReplicaSetCounts {
            name: name.to_string(),
            spec_replicas: Some(spec),
            replicas: spec,
            available_replicas: available,
        }
    }

    fn canary(replicas: i32, weight: i32, surge: i32, unavailable: i32) -> CanaryParams {
        CanaryParams {
            replicas: Some(replicas),
            max_surge: Some(PodsOrPercent::Int(surge)),
            max_unavailable: Some(PodsOrPercent::Int(unavailable)),
            steps: vec![ScaleStep {
                set_weight: Some(weight),
                set_canary_scale: None,
            }],
            status: RolloutProgress {
                stable_rs: "stable".to_string(),
                current_pod_hash: "canary".to_string(),
                ..RolloutProgress::default()
            },
            ..CanaryParams::default()
        }
    }

    /// The worked split examples of spec §3.3 step 1.
    #[test]
    fn spec_split_examples() {
        // (replicas, weight, surge) -> (canary, stable)
        let table = [
            (10, 41, 0, (4, 6)),
            (10, 10, 1, (1, 9)),
            (1, 5, 1, (1, 1)),
            (3, 50, 0, (2, 1)),
            (3, 50, 1, (2, 2)),
        ];
        for (replicas, weight, surge, (canary, stable)) in table {
            assert_eq!(
                approximate_weighted_counts(replicas, weight, 100, surge),
                ReplicaCounts { canary, stable },
                "R={replicas} W={weight} S={surge}"
            );
        }
    }

    #[test]
    fn split_honours_a_max_weight_other_than_100() {
        // 10 % expressed out of 1000.
        assert_eq!(
            approximate_weighted_counts(10, 100, 1000, 0),
            ReplicaCounts {
                canary: 1,
                stable: 9
            }
        );
    }

    /// The worked examples in upstream's doc comment on the basic canary math (spec §3.3),
    /// starting from a fully available stable RS and an empty canary.
    #[test]
    fn documented_scaling_examples() {
        // (replicas, weight, new spec, stable spec, unavailable, surge) -> (canary, stable)
        let table = [
            (10, 10, 0, 10, 1, 1, (1, 9)),
            (10, 30, 0, 10, 0, 3, (3, 10)),
            (10, 30, 0, 10, 5, 0, (0, 7)),
            // The doc comment still says 1/9 here, from before the approximate split: 1 of 11
            // pods (9.1 %) is closer to 5 % than 1 of 10, so the stable keeps all 10.
            (10, 5, 0, 10, 1, 1, (1, 10)),
            (1, 5, 0, 1, 0, 1, (1, 1)),
            (1, 95, 0, 1, 0, 1, (1, 1)),
        ];
        for (replicas, weight, new_spec, stable_spec, unavailable, surge, expected) in table {
            let params = canary(replicas, weight, surge, unavailable);
            let got = basic_canary_replica_counts(
                &params,
                Some(&rs("canary", new_spec, new_spec)),
                Some(&rs("stable", stable_spec, stable_spec)),
                &[],
            );
            assert_eq!(
                (got.canary, got.stable),
                expected,
                "R={replicas} W={weight} new={new_spec} stable={stable_spec} U={unavailable} S={surge}"
            );
        }
    }

    #[test]
    fn abort_drains_canary_within_max_unavailable() {
        // Aborted at 50 % of 4: weight 0, canary shrinks first, stable grows into the surge.
        let mut params = canary(4, 50, 1, 0);
        params.status.abort = true;
        let got = basic_canary_replica_counts(
            &params,
            Some(&rs("canary", 2, 2)),
            Some(&rs("stable", 2, 2)),
            &[],
        );
        assert_eq!(
            got,
            ReplicaCounts {
                canary: 2,
                stable: 3
            }
        );
        let next = basic_canary_replica_counts(
            &params,
            Some(&rs("canary", 2, 2)),
            Some(&rs("stable", 3, 3)),
            &[],
        );
        // No surge room left: only the canary moves this time.
        assert_eq!(
            next,
            ReplicaCounts {
                canary: 1,
                stable: 3
            }
        );
    }

    #[test]
    fn other_replica_sets_block_scale_down_but_not_scale_up() {
        let params = canary(10, 30, 2, 1);
        let got = basic_canary_replica_counts(
            &params,
            Some(&rs("canary", 0, 0)),
            Some(&rs("stable", 7, 7)),
            &[rs("older", 3, 3)],
        );
        assert_eq!(
            got,
            ReplicaCounts {
                canary: 2,
                stable: 7
            }
        );
    }

    #[test]
    fn scale_down_counts_spec_when_surplus_is_leaving() {
        assert_eq!(replicas_for_scale_down(Some(&rs("a", 3, 5)), false), 3);
        assert_eq!(replicas_for_scale_down(Some(&rs("a", 3, 2)), true), 3);
        assert_eq!(replicas_for_scale_down(Some(&rs("a", 3, 2)), false), 2);
        assert_eq!(replicas_for_scale_down(None, true), 0);
    }
}
