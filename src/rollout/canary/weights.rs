//! Traffic weight selection (spec §3.5, upstream `reconcileTrafficRouting`): the canary weight
//! the routers must apply, never ahead of the canary pods that can take it, and the
//! `status.canary.weights` record. The routers themselves are built in `crate::traffic`.

use crate::api::consts::event_reason;
use crate::api::{TrafficWeights, WeightDestination};
use crate::rollout::observed::{rs_available, rs_hash};
use crate::rollout::plan::{EventType, Plan, TrafficWeight, Write};
use crate::rollout::replicas::{at_desired_replica_counts, current_set_weight};
use crate::rollout::steps::{current_step, desired_routes, step_count};
use crate::rollout::world::View;

/// Inputs of [`desired_weight`], the pure core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightCase {
    /// Fully promoted with dynamicStableScale but the stable is not yet back at full size:
    /// weight stepped down with the stable's availability.
    DynamicRollback,
    /// `status.stableRS == status.currentPodHash`: everything to stable (which is the new RS).
    FullyPromoted,
    /// Aborted.
    Aborted,
    /// The new ReplicaSet is missing or has no available pod.
    NoCanaryPods,
    /// `status.promoteFull`.
    PromoteFull,
    /// Walking the steps.
    Steps,
    /// No steps (rolling update): no weight until promotion.
    NoSteps,
}

/// Upstream `calculateDesiredWeightOnAbortOrStableRollback`: 0, or with dynamicStableScale
/// whatever the stable's available pods can carry, never above the weight already applied.
fn abort_or_rollback_weight(v: &View<'_>, max_weight: i32) -> i32 {
    if !v.params.dynamic_stable_scale {
        return 0;
    }
    let replicas = i64::from(v.replicas().max(1));
    let stable_available = i64::from(v.stable_rs().map_or(0, rs_available));
    let carried = i64::from(max_weight) * stable_available / replicas;
    let mut weight = i32::try_from(i64::from(max_weight) - carried).unwrap_or(0);
    if let Some(weights) = v.prev.canary.weights.as_ref() {
        weight = weight.min(weights.canary.weight);
    }
    weight
}

/// Which rule of §3.5 applies; `rolling_back` is
/// [`View::dynamically_rolling_back_to_stable`] answered once by the caller.
pub(crate) fn weight_case(v: &View<'_>, rolling_back: bool) -> WeightCase {
    if rolling_back {
        WeightCase::DynamicRollback
    } else if v.fully_promoted() {
        WeightCase::FullyPromoted
    } else if v.aborted() {
        WeightCase::Aborted
    } else if v.new_rs().is_none_or(|rs| rs_available(rs) == 0) {
        WeightCase::NoCanaryPods
    } else if v.prev.promote_full {
        WeightCase::PromoteFull
    } else if current_step(v.steps(), v.prev).1.is_some() {
        WeightCase::Steps
    } else {
        WeightCase::NoSteps
    }
}

/// The canary weight for the routers (spec §3.5) in `case`: this is where the weight of a
/// step is decided.
pub(crate) fn desired_weight(v: &View<'_>, case: WeightCase) -> i32 {
    let max_weight = v.params.max_weight();
    match case {
        WeightCase::DynamicRollback | WeightCase::Aborted => {
            abort_or_rollback_weight(v, max_weight)
        }
        WeightCase::FullyPromoted | WeightCase::NoCanaryPods | WeightCase::NoSteps => 0,
        WeightCase::PromoteFull => {
            if v.params.dynamic_stable_scale {
                let available = i64::from(v.new_rs().map_or(0, rs_available));
                i32::try_from(i64::from(max_weight) * available / i64::from(v.replicas().max(1)))
                    .unwrap_or(max_weight)
            } else {
                v.prev
                    .canary
                    .weights
                    .as_ref()
                    .map_or(0, |weights| weights.canary.weight)
            }
        }
        WeightCase::Steps => {
            let steps = v.steps();
            let index = current_step(steps, v.prev).1.unwrap_or(0);
            let at_desired = at_desired_replica_counts(
                v.params,
                v.new_counts().as_ref(),
                v.stable_counts().as_ref(),
                &v.other_counts(),
                None,
            );
            if !at_desired {
                // The canary is not yet sized for this step: keep the previous step's weight.
                let before = usize::try_from(index).unwrap_or(0).min(steps.len());
                steps[..before]
                    .iter()
                    .rev()
                    .find_map(|step| step.set_weight)
                    .unwrap_or(0)
            } else if index != step_count(steps) {
                current_set_weight(v.params)
            } else {
                max_weight
            }
        }
    }
}

/// What the traffic stage decided.
#[derive(Debug, Default)]
pub(crate) struct Weighed {
    /// The router write and its event.
    pub plan: Plan,
    /// `status.canary.weights` after this reconcile.
    pub weights: Option<TrafficWeights>,
    /// An abort took the traffic off the canary: its Service must select the stable pods
    /// again, before the router write.
    pub canary_back_to_stable: bool,
}

/// Decides the router write and the weights status for this reconcile, from `weights`, the
/// `status.canary.weights` decided so far, and `experiment`, the weighted destinations of a
/// running experiment step (upstream adds them while walking the steps or while the canary
/// has no available pod).
pub(crate) fn decide(
    v: &View<'_>,
    weights: Option<&TrafficWeights>,
    experiment: Vec<WeightDestination>,
) -> Weighed {
    let mut out = Weighed {
        weights: weights.cloned(),
        ..Weighed::default()
    };
    if v.canary.traffic_routing.is_none() {
        out.weights = None;
        return out;
    }
    let max_weight = v.params.max_weight();
    let rolling_back_from = v.dynamically_rolling_back_to_stable();
    let case = weight_case(v, rolling_back_from.is_some());
    let weight = desired_weight(v, case);
    let additional = if matches!(case, WeightCase::Steps | WeightCase::NoCanaryPods) {
        experiment
    } else {
        Vec::new()
    };
    let additional_weight: i32 = additional.iter().map(|d| d.weight).sum();
    let stable_hash = v
        .stable_rs()
        .map(|rs| rs_hash(rs).to_string())
        .unwrap_or_default();
    let canary_hash = match rolling_back_from {
        Some(previous) => previous,
        None => v
            .new_rs()
            .map(|rs| rs_hash(rs).to_string())
            .unwrap_or_default(),
    };
    if case == WeightCase::Aborted && (!v.params.dynamic_stable_scale || weight == 0) {
        // Once traffic left the canary, its Service selects the stable pods again.
        out.canary_back_to_stable = true;
    }
    let keeps_routes = matches!(
        case,
        WeightCase::Steps | WeightCase::NoCanaryPods | WeightCase::NoSteps
    ) && v.revision.is_some_and(|revision| revision > 1);
    let (header_routes, mirror_routes) = match current_step(v.steps(), v.prev).1 {
        Some(index) if keeps_routes => desired_routes(v.steps(), index),
        _ => (Vec::new(), Vec::new()),
    };
    out.plan.push(Write::SetTrafficWeight(TrafficWeight {
        weight,
        max_weight,
        canary_hash: canary_hash.clone(),
        stable_hash: stable_hash.clone(),
        additional: additional.clone(),
        header_routes,
        mirror_routes,
    }));
    let new_weights = TrafficWeights {
        canary: WeightDestination {
            weight,
            service_name: v.canary.canary_service.clone().unwrap_or_default(),
            pod_template_hash: canary_hash,
        },
        stable: WeightDestination {
            weight: max_weight - weight - additional_weight,
            service_name: v.canary.stable_service.clone().unwrap_or_default(),
            pod_template_hash: stable_hash,
        },
        additional,
        verified: None,
    };
    let previous = v.prev.canary.weights.clone();
    let modified = previous.as_ref().is_none_or(|known| {
        known.canary != new_weights.canary
            || known.stable != new_weights.stable
            || known.additional != new_weights.additional
    });
    if modified {
        // Upstream's wording: only a changed canary weight is described (hash-only changes
        // give "Traffic weight updated ").
        let detail = match previous.as_ref() {
            None => format!("to {weight}"),
            Some(known) if known.canary.weight != weight => {
                format!("from {} to {weight}", known.canary.weight)
            }
            Some(_) => String::new(),
        };
        out.plan.event(
            EventType::Normal,
            event_reason::TRAFFIC_WEIGHT_UPDATED,
            format!("Traffic weight updated {detail}"),
        );
        out.weights = Some(new_weights);
    } else if let Some(known) = out.weights.as_mut() {
        // Only ALB verifies weights; for every router Davy runs there is nothing to verify.
        known.verified = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::fixtures::{at, new_hash, replica_set, rollout, world};
    use crate::rollout::world::with_start_view;
    use serde_json::{Value, json};

    /// (name, status, new RS (spec, available), stable RS, expected).
    type Case = (
        &'static str,
        Value,
        (i32, i32),
        Option<(i32, i32)>,
        (WeightCase, i32),
    );

    fn case(status: Value, new: (i32, i32), stable: Option<(i32, i32)>) -> (WeightCase, i32) {
        let steps = json!([{"setWeight": 25}, {"pause": {}}, {"setWeight": 75}]);
        let mut sets = vec![replica_set(&new_hash(), new.0, new.1, 2, 2)];
        if let Some((spec, available)) = stable {
            sets.push(replica_set("s1", spec, available, 1, 1));
        }
        let observed = world(rollout(4, steps, true, status), sets);
        with_start_view(&observed, at(0), |view| {
            let rolling_back = view.dynamically_rolling_back_to_stable().is_some();
            let case = weight_case(view, rolling_back);
            (case, desired_weight(view, case))
        })
        .expect("canary")
    }

    #[test]
    fn weight_follows_spec_3_5() {
        let hash = new_hash();
        let updating = |index: i32| json!({"stableRS": "s1", "currentPodHash": hash, "currentStepIndex": index});
        let cases: Vec<Case> = vec![
            (
                "initial deploy",
                json!({}),
                (4, 4),
                None,
                (WeightCase::FullyPromoted, 0),
            ),
            (
                "first step reached",
                updating(0),
                (1, 1),
                Some((4, 4)),
                (WeightCase::Steps, 25),
            ),
            (
                "canary pods not available",
                updating(0),
                (1, 0),
                Some((4, 4)),
                (WeightCase::NoCanaryPods, 0),
            ),
            (
                "next step not yet sized: previous weight",
                updating(2),
                (1, 1),
                Some((4, 4)),
                (WeightCase::Steps, 25),
            ),
            (
                "next step sized",
                updating(2),
                (3, 3),
                Some((4, 4)),
                (WeightCase::Steps, 75),
            ),
            (
                "all steps done",
                updating(3),
                (4, 4),
                Some((4, 4)),
                (WeightCase::Steps, 100),
            ),
            (
                "aborted",
                json!({"stableRS": "s1", "currentPodHash": hash, "currentStepIndex": 2, "abort": true}),
                (3, 3),
                Some((4, 4)),
                (WeightCase::Aborted, 0),
            ),
            (
                "promote full keeps the applied weight",
                json!({"stableRS": "s1", "currentPodHash": hash, "currentStepIndex": 0, "promoteFull": true,
                       "canary": {"weights": {"canary": {"weight": 25}, "stable": {"weight": 75}}}}),
                (2, 2),
                Some((4, 4)),
                (WeightCase::PromoteFull, 25),
            ),
            (
                "fully promoted",
                json!({"stableRS": hash, "currentPodHash": hash, "currentStepIndex": 3}),
                (4, 4),
                Some((4, 4)),
                (WeightCase::FullyPromoted, 0),
            ),
        ];
        for (name, status, new, stable, expected) in cases {
            assert_eq!(case(status, new, stable), expected, "{name}");
        }
    }
}
