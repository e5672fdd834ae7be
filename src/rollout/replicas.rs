//! Inputs of the canary replica math and the rules shared by basic and traffic-routed canaries
//! (spec §3.2, §3.3): int-or-percent fenceposts, the weight the replica math uses, and whether
//! a step's ReplicaSet counts have been reached.
//!
//! The functions here work on small plain structs ([`CanaryParams`], [`ReplicaSetCounts`])
//! instead of the API types, so the whole algorithm is testable on values. The controller
//! builds these structs from the Rollout and its ReplicaSets before calling in.

use thiserror::Error;

use super::replicas_basic::basic_canary_replica_counts;
use super::replicas_traffic::traffic_routed_canary_replica_counts;

/// Upstream's max traffic weight when `trafficRouting.maxTrafficWeight` is unset (and always
/// for a basic canary, which has no traffic router).
pub const DEFAULT_MAX_WEIGHT: i32 = 100;
/// Upstream default for `maxSurge` and `maxUnavailable`: the *string* `"25"`, which the legacy
/// int-or-percent helper reads as 25 %.
pub const DEFAULT_SURGE_OR_UNAVAILABLE: &str = "25";
/// Upstream default for `abortScaleDownDelaySeconds` when traffic routing is used.
pub const DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;

/// Why an int-or-percent value could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplicaMathError {
    /// The string form did not parse as an integer after removing `%`.
    #[error("invalid int-or-percent value {0:?}")]
    InvalidIntOrPercent(String),
}

/// A Kubernetes int-or-string field (`maxSurge`, `maxUnavailable`) as written by the user.
///
/// Local to the rollout module until the `api` module's type is reconciled with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrPercent {
    /// An absolute pod count (`maxSurge: 3`).
    Int(i32),
    /// A string; always read as a percentage, `%` or not (`"25%"`, `"25"`).
    String(String),
}

impl IntOrPercent {
    /// Resolves the value against `total` pods like Kubernetes' legacy
    /// `intstr.GetValueFromIntOrPercent`: an int is taken as is; a string has every `%` removed
    /// and is then a percentage of `total`, rounded up or down as asked.
    ///
    /// Upstream uses this legacy helper (not the newer one that rejects `"25"`), which is why
    /// the default `"25"` means 25 % and `"3"` means 3 %, not 3 pods.
    pub fn scaled_value(&self, total: i32, round_up: bool) -> Result<i32, ReplicaMathError> {
        match self {
            Self::Int(value) => Ok(*value),
            Self::String(text) => {
                let digits = text.replace('%', "");
                let percent: i64 = digits
                    .parse()
                    .map_err(|_| ReplicaMathError::InvalidIntOrPercent(text.clone()))?;
                let scaled = percent.saturating_mul(i64::from(total));
                let value = if round_up {
                    ceil_div(scaled, 100)
                } else {
                    scaled.div_euclid(100)
                };
                Ok(clamp_i32(value))
            }
        }
    }
}

/// Resolves `maxSurge` (rounded up) and `maxUnavailable` (rounded down) against `desired`
/// pods; when both come out 0, `maxUnavailable` becomes 1 so the rollout can still move
/// (upstream `resolveFenceposts`). `None` means unset and takes the default `"25"`.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrPercent>,
    max_unavailable: Option<&IntOrPercent>,
    desired: i32,
) -> Result<(i32, i32), ReplicaMathError> {
    let default = IntOrPercent::String(DEFAULT_SURGE_OR_UNAVAILABLE.to_string());
    let surge = max_surge.unwrap_or(&default).scaled_value(desired, true)?;
    let mut unavailable = max_unavailable
        .unwrap_or(&default)
        .scaled_value(desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// What the replica math needs to know about one ReplicaSet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaSetCounts {
    /// `metadata.name`; a stable RS with the new RS's name is the same ReplicaSet.
    pub name: String,
    /// `spec.replicas`; `None` (unset) counts as 1, as the API server defaults it.
    pub spec_replicas: Option<i32>,
    /// `status.replicas` (pods created).
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
}

impl ReplicaSetCounts {
    /// `spec.replicas` with the Kubernetes default of 1.
    pub fn spec(&self) -> i32 {
        self.spec_replicas.unwrap_or(1)
    }
}

/// A `setCanaryScale` step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetCanaryScale {
    /// Explicit canary pod count.
    pub replicas: Option<i32>,
    /// Canary pods as a weight of `spec.replicas`.
    pub weight: Option<i32>,
    /// Cancels an earlier `setCanaryScale`: canary pods follow the traffic weight again.
    pub match_traffic_weight: bool,
}

/// The parts of one canary step the replica math reads; steps of other kinds (pause, analysis,
/// ...) are present with both fields `None` so that step indices line up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CanaryStep {
    /// `setWeight`.
    pub set_weight: Option<i32>,
    /// `setCanaryScale`.
    pub set_canary_scale: Option<SetCanaryScale>,
}

/// How `replicaProgressThreshold.value` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressThresholdType {
    /// Percent of the desired canary count (`type: Percent`).
    Percent,
    /// Absolute number of available pods (`type: Pod`).
    Pod,
}

/// `spec.strategy.canary.replicaProgressThreshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaProgressThreshold {
    /// How `value` is read.
    pub kind: ProgressThresholdType,
    /// The threshold; a value ≤ 0 behaves as if no threshold were set.
    pub value: i32,
}

/// `status.canary.weights`: the traffic weights the router applied last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficWeights {
    /// `canary.weight`.
    pub canary: i32,
    /// `stable.weight`.
    pub stable: i32,
}

/// The Rollout status fields the replica math reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CanaryStatus {
    /// `status.stableRS` (pod-template hash); empty before the first promotion.
    pub stable_rs: String,
    /// `status.currentPodHash`.
    pub current_pod_hash: String,
    /// `status.currentStepIndex`; `None` means step 0.
    pub current_step_index: Option<i32>,
    /// `status.promoteFull`.
    pub promote_full: bool,
    /// `status.abort`.
    pub abort: bool,
}

/// A canary Rollout as the replica math sees it. The controller builds this from the Rollout
/// (`spec.replicas`, `spec.strategy.canary.*`, `status`); a blue-green or strategy-less Rollout
/// maps to the defaults (no steps, no traffic routing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CanaryParams {
    /// `spec.replicas`; `None` counts as 1.
    pub replicas: Option<i32>,
    /// `maxSurge`; `None` = the default `"25"`.
    pub max_surge: Option<IntOrPercent>,
    /// `maxUnavailable`; `None` = the default `"25"`.
    pub max_unavailable: Option<IntOrPercent>,
    /// `steps`.
    pub steps: Vec<CanaryStep>,
    /// `trafficRouting` is present (an empty `trafficRouting: {}` counts).
    pub traffic_routed: bool,
    /// `trafficRouting.maxTrafficWeight`; `None` = 100.
    pub max_traffic_weight: Option<i32>,
    /// `dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// `minPodsPerReplicaSet`.
    pub min_pods_per_replica_set: Option<i32>,
    /// `abortScaleDownDelaySeconds`; `None` = unset (distinct from an explicit 0).
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// `replicaProgressThreshold`.
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
    /// The status fields.
    pub status: CanaryStatus,
}

impl CanaryParams {
    /// `spec.replicas` with its default of 1.
    pub fn replicas_or_default(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    /// M: the weight that means "all traffic". Only a traffic router has a configurable one.
    pub fn max_weight(&self) -> i32 {
        match self.max_traffic_weight {
            Some(weight) if self.traffic_routed => weight,
            _ => DEFAULT_MAX_WEIGHT,
        }
    }

    /// Resolved `maxSurge` in pods. An unparseable value gives 0, as upstream, which relies on
    /// validation to have rejected it.
    pub fn max_surge_pods(&self) -> i32 {
        resolve_fenceposts(
            self.max_surge.as_ref(),
            self.max_unavailable.as_ref(),
            self.replicas_or_default(),
        )
        .map_or(0, |(surge, _)| surge)
    }

    /// Resolved `maxUnavailable` in pods, never above `spec.replicas` (0 when replicas is 0;
    /// 0 for an unparseable value, as upstream).
    pub fn max_unavailable_pods(&self) -> i32 {
        let replicas = self.replicas_or_default();
        if replicas == 0 {
            return 0;
        }
        let unavailable = resolve_fenceposts(
            self.max_surge.as_ref(),
            self.max_unavailable.as_ref(),
            replicas,
        )
        .map_or(0, |(_, unavailable)| unavailable);
        unavailable.min(replicas)
    }

    /// `abortScaleDownDelaySeconds` with its default: `None` means "never scale the canary down
    /// on abort" (an explicit 0 with traffic routing); a basic canary always gives `Some(0)`.
    pub fn abort_scale_down_delay_or_default(&self) -> Option<i32> {
        if !self.traffic_routed {
            return Some(0);
        }
        match self.abort_scale_down_delay_seconds {
            Some(0) => None,
            Some(seconds) => Some(seconds),
            None => Some(DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS),
        }
    }

    /// Index of the current step, or `None` when there are no steps or all were executed.
    pub fn current_step_index(&self) -> Option<usize> {
        // A negative index cannot come from the controller; read it as step 0 rather than fail.
        let index = usize::try_from(self.status.current_step_index.unwrap_or(0)).unwrap_or(0);
        (index < self.steps.len()).then_some(index)
    }

    /// Whether the new pod template is already the stable one, or there is no stable yet, or a
    /// full promotion was requested: then the canary gets all the weight.
    fn weight_is_max(&self) -> bool {
        self.status.promote_full
            || self.status.stable_rs.is_empty()
            || self.status.current_pod_hash == self.status.stable_rs
    }
}

/// The two replica counts the math produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaCounts {
    /// Desired `spec.replicas` of the new (canary) ReplicaSet.
    pub canary: i32,
    /// Desired `spec.replicas` of the stable ReplicaSet.
    pub stable: i32,
}

/// Either an explicit canary pod count (`setCanaryScale.replicas`) or a weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicasOrWeight {
    /// Explicit canary pod count; when set, `weight` is 0.
    pub replicas: Option<i32>,
    /// Canary weight out of [`CanaryParams::max_weight`].
    pub weight: i32,
}

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
pub fn effective_set_canary_scale(params: &CanaryParams) -> Option<&SetCanaryScale> {
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
    threshold: Option<&ReplicaProgressThreshold>,
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
        ProgressThresholdType::Pod => rs.available_replicas >= threshold.value,
        ProgressThresholdType::Percent => {
            desired == 0
                || i64::from(rs.available_replicas) * 100
                    >= i64::from(threshold.value) * i64::from(desired)
        }
    }
}

/// The canary and stable counts for the current state: basic-canary math without traffic
/// routing, traffic-routed math with it. `other_rss` is read only by the basic math,
/// `weights` only by the traffic-routed math.
pub fn desired_replica_counts(
    params: &CanaryParams,
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
    other_rss: &[ReplicaSetCounts],
    weights: Option<&TrafficWeights>,
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
    weights: Option<&TrafficWeights>,
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

/// ⌈n / d⌉ for `d > 0`, correct for negative `n` (as Go's `math.Ceil` on the quotient).
pub(crate) fn ceil_div(n: i64, d: i64) -> i64 {
    -((-n).div_euclid(d))
}

/// Narrows a 64-bit intermediate to the API's int32, saturating instead of wrapping.
pub(crate) fn clamp_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(value: i32) -> Option<IntOrPercent> {
        Some(IntOrPercent::Int(value))
    }

    fn text(value: &str) -> Option<IntOrPercent> {
        Some(IntOrPercent::String(value.to_string()))
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
        let bad = IntOrPercent::String("a lot".to_string());
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
            CanaryStep {
                set_weight: Some(20),
                ..CanaryStep::default()
            },
            CanaryStep::default(),
            CanaryStep {
                set_weight: Some(40),
                ..CanaryStep::default()
            },
            CanaryStep::default(),
        ];
        let at = |index: Option<i32>| {
            let params = CanaryParams {
                steps: steps.clone(),
                status: CanaryStatus {
                    current_step_index: index,
                    ..CanaryStatus::default()
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
            steps: vec![CanaryStep::default(), steps[0].clone()],
            ..CanaryParams::default()
        };
        assert_eq!(current_set_weight(&pause_first), 0);
    }

    #[test]
    fn match_traffic_weight_cancels_an_earlier_set_canary_scale() {
        let scale = |replicas, match_traffic_weight| CanaryStep {
            set_weight: None,
            set_canary_scale: Some(SetCanaryScale {
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
                CanaryStep::default(),
            ],
            status: CanaryStatus {
                stable_rs: "a".to_string(),
                current_pod_hash: "b".to_string(),
                current_step_index: Some(0),
                ..CanaryStatus::default()
            },
            ..CanaryParams::default()
        };
        assert_eq!(
            effective_set_canary_scale(&params).and_then(|s| s.replicas),
            Some(3)
        );
        let later = CanaryParams {
            status: CanaryStatus {
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
        let threshold = ReplicaProgressThreshold {
            kind: ProgressThresholdType::Percent,
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
