//! The canary weight or pod count the steps ask for (spec §3.2): the `setWeight` and
//! `setCanaryScale` in effect, the abort ladder of `dynamicStableScale`, and weight → pods.

use super::inputs::{
    CanaryParams, ReplicaSetCounts, ReplicasOrWeight, ScaleOverride, ceil_div, clamp_i32,
};

/// The `setWeight` in effect (upstream `GetCurrentSetWeight`): 0 when aborted; M when there are
/// no steps or all were executed; otherwise the nearest `setWeight` at or before the current
/// step, 0 if none.
pub fn current_set_weight(params: &CanaryParams) -> i32 {
    if params.status.abort {
        return 0;
    }
    let Some(index) = params.current_step_index() else {
        return params.max_weight();
    };
    params.steps[..=index]
        .iter()
        .rev()
        .find_map(|step| step.set_weight)
        .unwrap_or(0)
}

/// The `setCanaryScale` in effect (upstream `UseSetCanaryScale`): the nearest one at or before
/// the current step, unless it says `matchTrafficWeight`. Only with traffic routing, and not
/// while aborted unless `abortScaleDownDelaySeconds` is explicitly 0 (canary left up).
pub fn effective_set_canary_scale(params: &CanaryParams) -> Option<&ScaleOverride> {
    if !params.traffic_routed {
        return None;
    }
    if params.status.abort && params.abort_scale_down_delay_or_default().is_some() {
        return None;
    }
    let index = params.current_step_index()?;
    let scale = params.steps[..=index]
        .iter()
        .rev()
        .find_map(|step| step.set_canary_scale.as_ref())?;
    (!scale.match_traffic_weight).then_some(scale)
}

/// The canary weight the steps ask for (upstream `GetDesiredCanaryWeight`).
///
/// Normally [`current_set_weight`]. An aborted rollout with `dynamicStableScale` and both
/// ReplicaSets present instead steps back down the `setWeight` ladder (§3.6 abort): scanning
/// the steps from last to first, the first weight whose pod count ⌈R·w/M⌉ is below the canary
/// pods still needed, 0 if none. "Still needed" is `R − stable.available`, raised to
/// `canary.available` unless a non-zero `abortScaleDownDelaySeconds` was set explicitly (then
/// the canary's own size no longer holds the weight up).
pub fn desired_canary_weight(
    params: &CanaryParams,
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
) -> i32 {
    let (true, true, Some(new_rs), Some(stable_rs)) = (
        params.status.abort,
        params.dynamic_stable_scale,
        new_rs,
        stable_rs,
    ) else {
        return current_set_weight(params);
    };
    let replicas = params.replicas_or_default();
    let max_weight = params.max_weight();
    let explicit_delay =
        matches!(params.abort_scale_down_delay_seconds, Some(seconds) if seconds != 0);
    let stable_gap = replicas - stable_rs.available_replicas;
    let canary_needed = if explicit_delay {
        stable_gap
    } else {
        stable_gap.max(new_rs.available_replicas)
    };
    params
        .steps
        .iter()
        .rev()
        .filter_map(|step| step.set_weight)
        .find(|&weight| traffic_weight_to_replicas(replicas, weight, max_weight) < canary_needed)
        .unwrap_or(0)
}

/// The canary pod count or weight the replica math starts from (upstream
/// `GetCanaryReplicasOrWeight`): M when fully promoted, at initial deploy or on `promoteFull`
/// (whatever the steps or `abort` say); else the effective `setCanaryScale`; else
/// [`desired_canary_weight`].
pub fn canary_replicas_or_weight(
    params: &CanaryParams,
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
) -> ReplicasOrWeight {
    if params.weight_is_max() {
        return ReplicasOrWeight {
            replicas: None,
            weight: params.max_weight(),
        };
    }
    if let Some(scale) = effective_set_canary_scale(params) {
        if let Some(replicas) = scale.replicas {
            return ReplicasOrWeight {
                replicas: Some(replicas),
                weight: 0,
            };
        }
        if let Some(weight) = scale.weight {
            return ReplicasOrWeight {
                replicas: None,
                weight,
            };
        }
    }
    ReplicasOrWeight {
        replicas: None,
        weight: desired_canary_weight(params, new_rs, stable_rs),
    }
}

/// Pods needed to carry `weight` out of `max_weight` of `replicas`, rounded up
/// (upstream `trafficWeightToReplicas`). Computed in 64 bits, so large weights cannot overflow.
pub fn traffic_weight_to_replicas(replicas: i32, weight: i32, max_weight: i32) -> i32 {
    // A zero max weight is rejected by validation; avoid dividing by it anyway.
    let max_weight = i64::from(max_weight.max(1));
    clamp_i32(ceil_div(
        i64::from(weight) * i64::from(replicas),
        max_weight,
    ))
}
