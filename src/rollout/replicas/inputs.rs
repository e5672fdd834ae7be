//! What the replica math reads and produces: small plain structs built from the Rollout and
//! its ReplicaSets ([`CanaryParams`], [`ReplicaSetCounts`]), int-or-percent fenceposts, and the
//! 64-bit helpers every rule shares. Nothing here imports the rest of the rollout core.

use thiserror::Error;

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
pub enum PodsOrPercent {
    /// An absolute pod count (`maxSurge: 3`).
    Int(i32),
    /// A string; always read as a percentage, `%` or not (`"25%"`, `"25"`).
    String(String),
}

impl PodsOrPercent {
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
    max_surge: Option<&PodsOrPercent>,
    max_unavailable: Option<&PodsOrPercent>,
    desired: i32,
) -> Result<(i32, i32), ReplicaMathError> {
    let default = PodsOrPercent::String(DEFAULT_SURGE_OR_UNAVAILABLE.to_string());
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
pub struct ScaleOverride {
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
pub struct ScaleStep {
    /// `setWeight`.
    pub set_weight: Option<i32>,
    /// `setCanaryScale`.
    pub set_canary_scale: Option<ScaleOverride>,
}

/// How `replicaProgressThreshold.value` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressThresholdKind {
    /// Percent of the desired canary count (`type: Percent`).
    Percent,
    /// Absolute number of available pods (`type: Pod`).
    Pod,
}

/// `spec.strategy.canary.replicaProgressThreshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressThreshold {
    /// How `value` is read.
    pub kind: ProgressThresholdKind,
    /// The threshold; a value ≤ 0 behaves as if no threshold were set.
    pub value: i32,
}

/// `status.canary.weights`: the traffic weights the router applied last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeightSplit {
    /// `canary.weight`.
    pub canary: i32,
    /// `stable.weight`.
    pub stable: i32,
}

/// The Rollout status fields the replica math reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutProgress {
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
    pub max_surge: Option<PodsOrPercent>,
    /// `maxUnavailable`; `None` = the default `"25"`.
    pub max_unavailable: Option<PodsOrPercent>,
    /// `steps`.
    pub steps: Vec<ScaleStep>,
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
    pub replica_progress_threshold: Option<ProgressThreshold>,
    /// The status fields.
    pub status: RolloutProgress,
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
    pub fn weight_is_max(&self) -> bool {
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

/// ⌈n / d⌉ for `d > 0`, correct for negative `n` (as Go's `math.Ceil` on the quotient).
pub(crate) fn ceil_div(n: i64, d: i64) -> i64 {
    -((-n).div_euclid(d))
}

/// Narrows a 64-bit intermediate to the API's int32, saturating instead of wrapping.
pub(crate) fn clamp_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX })
}
