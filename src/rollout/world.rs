//! What a reconcile's stages read: the [`Inputs`] fixed for the whole reconcile, the
//! [`ReplicaSets`] picked from the observed world, and the [`View`] a stage gets, which adds
//! what earlier stages decided (status conditions, revision, pause, Service selectors).
//!
//! A stage never changes a view: it returns what it decided and the pipeline folds that in
//! before it builds the next view. Every question about the current state ("aborted?", "the
//! new ReplicaSet's counts", "rollback within window?") is answered here, once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observed::{
    Observed, by_creation, canary_params, chrono_to_time, computed_pod_hash, computed_steps_hash,
    creation_time, find_new_rs, find_stable_rs, int_or_percent, replicas_of, rs_annotation,
    rs_available, rs_counts, rs_hash, rs_spec_replicas, status_of,
};
use super::pause::{ABORT_REASON_ANNOTATION, PauseContext};
use super::replicas::{CanaryParams, ReplicaSetCounts};
use super::steps::steps_of;
use super::windows::PromotionWindows;
use crate::api::consts::{annotation, label};
use crate::api::{
    BlueGreenStrategy, CanaryStep, CanaryStrategy, PauseReason, Rollout, RolloutStatus,
};

/// The strategy a reconcile runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Strategy<'a> {
    /// `spec.strategy.canary`.
    Canary(&'a CanaryStrategy),
    /// `spec.strategy.blueGreen`.
    BlueGreen(&'a BlueGreenStrategy),
}

impl<'a> Strategy<'a> {
    /// The strategy of a Rollout, if it has one.
    pub fn of(ro: &'a Rollout) -> Option<Self> {
        match (&ro.spec.strategy.canary, &ro.spec.strategy.blue_green) {
            (Some(canary), _) => Some(Strategy::Canary(canary)),
            (None, Some(blue_green)) => Some(Strategy::BlueGreen(blue_green)),
            (None, None) => None,
        }
    }
}

/// What the strategy-independent stages read as "the canary" of a blue-green Rollout: no
/// steps, no services, no metadata.
static NO_CANARY: std::sync::LazyLock<CanaryStrategy> =
    std::sync::LazyLock::new(CanaryStrategy::default);

/// What one reconcile reads and never changes.
pub(crate) struct Inputs<'a> {
    /// The observed world.
    pub obs: &'a Observed,
    /// The Rollout.
    pub ro: &'a Rollout,
    /// Its canary strategy (an empty one for blue-green).
    pub canary: &'a CanaryStrategy,
    /// Its blue-green strategy, if that is the strategy.
    pub blue_green: Option<&'a BlueGreenStrategy>,
    /// The reconcile's time.
    pub now: DateTime<Utc>,
    /// `now` as stored in the API (whole seconds).
    pub now_time: Time,
    /// The status as read; the status patch is the difference from it.
    pub observed: RolloutStatus,
    /// The replica math's view of the Rollout and its observed status.
    pub params: CanaryParams,
    /// The promotion windows of the Rollout (Davy's `davy.dev/promotion-windows`), if any.
    pub windows: Option<PromotionWindows>,
}

impl<'a> Inputs<'a> {
    /// The inputs of a reconcile of `strategy` at `now`.
    pub fn new(
        obs: &'a Observed,
        strategy: Strategy<'a>,
        now: DateTime<Utc>,
        windows: Option<PromotionWindows>,
    ) -> Self {
        let ro = &obs.rollout;
        let observed = status_of(ro);
        let mut params = canary_params(ro, &observed);
        let (canary, blue_green) = match strategy {
            Strategy::Canary(canary) => (canary, None),
            Strategy::BlueGreen(blue_green) => {
                // Restarts of a blue-green Rollout honour `blueGreen.maxUnavailable`.
                params.max_unavailable = Some(int_or_percent(&blue_green.max_unavailable()));
                (&*NO_CANARY, Some(blue_green))
            }
        };
        Inputs {
            obs,
            ro,
            canary,
            blue_green,
            now,
            now_time: chrono_to_time(now),
            params,
            observed,
            windows,
        }
    }
}

/// The ReplicaSets a reconcile works on: the owned ones, plus the new one once this plan
/// creates it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplicaSets {
    /// All of them.
    pub all: Vec<ReplicaSet>,
    /// Index of the new ReplicaSet in `all`.
    pub new: Option<usize>,
    /// Index of the stable ReplicaSet in `all` (may equal `new`).
    pub stable: Option<usize>,
    /// Indices of the other ReplicaSets, oldest first.
    pub others: Vec<usize>,
}

impl ReplicaSets {
    /// Picks the new, the stable and the other ReplicaSets of the observed world.
    pub fn pick(obs: &Observed, status: &RolloutStatus) -> Self {
        let all = obs.replica_sets.clone();
        let new = find_new_rs(&obs.rollout, &all);
        let stable = find_stable_rs(&status.stable_rs, new, &all);
        let others = by_creation(&all)
            .into_iter()
            .filter(|index| Some(*index) != new && Some(*index) != stable)
            .collect();
        ReplicaSets {
            all,
            new,
            stable,
            others,
        }
    }

    /// Adds the ReplicaSet this plan creates as the new one.
    pub fn add_new(&mut self, rs: ReplicaSet) {
        self.all.push(rs);
        self.new = Some(self.all.len() - 1);
    }
}

/// Current `rollouts-pod-template-hash` selector of each referenced Service.
pub(crate) fn service_selectors(obs: &Observed) -> BTreeMap<String, String> {
    obs.services
        .iter()
        .map(|(name, service)| {
            let hash = service
                .spec
                .as_ref()
                .and_then(|spec| spec.selector.as_ref())
                .and_then(|selector| selector.get(label::POD_TEMPLATE_HASH))
                .cloned()
                .unwrap_or_default();
            (name.clone(), hash)
        })
        .collect()
}

/// The Rollout's `rollout.argoproj.io/revision`, as read.
pub(crate) fn rollout_revision(ro: &Rollout) -> Option<i64> {
    ro.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(annotation::REVISION))
        .and_then(|text| text.parse().ok())
}

/// The pause/abort state a reconcile starts from.
pub(crate) fn initial_pause(ro: &Rollout, observed: &RolloutStatus) -> PauseContext {
    let mut pause = PauseContext::default();
    // Upstream: a fully promoted rollout never stays aborted.
    if observed.abort && observed.stable_rs == observed.current_pod_hash {
        pause.remove_abort();
    }
    if observed.abort
        && let Some(reason) = ro
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(ABORT_REASON_ANNOTATION))
            .filter(|reason| !reason.is_empty())
    {
        pause.note_abort_reason(reason);
    }
    pause
}

/// Upstream's `c.newStatus` as a reconcile starts it: what carries over unchanged.
pub(crate) fn initial_new_status(observed: &RolloutStatus) -> RolloutStatus {
    let mut new_status = RolloutStatus {
        restarted_at: observed.restarted_at.clone(),
        alb: observed.alb.clone(),
        albs: observed.albs.clone(),
        duration: observed.duration.clone(),
        ..RolloutStatus::default()
    };
    new_status.canary.weights = observed.canary.weights.clone();
    new_status
}

/// A stage's read-only view of the reconcile so far.
pub(crate) struct View<'a> {
    /// The observed world.
    pub obs: &'a Observed,
    /// The Rollout.
    pub ro: &'a Rollout,
    /// Its canary strategy (an empty one for blue-green).
    pub canary: &'a CanaryStrategy,
    /// Its blue-green strategy, if that is the strategy.
    pub blue_green: Option<&'a BlueGreenStrategy>,
    /// The reconcile's time.
    pub now: DateTime<Utc>,
    /// `now` as stored in the API.
    pub now_time: &'a Time,
    /// The status as read.
    pub observed: &'a RolloutStatus,
    /// The replica math's view of the Rollout.
    pub params: &'a CanaryParams,
    /// Promotion windows, if any.
    pub windows: Option<&'a PromotionWindows>,
    /// All ReplicaSets (including one this plan creates).
    pub rss: &'a [ReplicaSet],
    /// Index of the new ReplicaSet in `rss`.
    pub new_rs: Option<usize>,
    /// Index of the stable ReplicaSet in `rss`.
    pub stable_rs: Option<usize>,
    /// Indices of the other ReplicaSets, oldest first.
    pub others: &'a [usize],
    /// Upstream's `c.rollout.Status`: the observed status plus the Progressing condition set
    /// when the new ReplicaSet was created or first found.
    pub prev: &'a RolloutStatus,
    /// Pause/abort decisions so far.
    pub pause: &'a PauseContext,
    /// The Rollout's revision, as synced by this plan.
    pub revision: Option<i64>,
    /// Current `rollouts-pod-template-hash` selector of each referenced Service.
    pub selectors: &'a BTreeMap<String, String>,
}

impl<'a> View<'a> {
    /// A view of `inputs` and the state decided so far.
    pub fn new(
        inputs: &'a Inputs<'a>,
        sets: &'a ReplicaSets,
        prev: &'a RolloutStatus,
        pause: &'a PauseContext,
        revision: Option<i64>,
        selectors: &'a BTreeMap<String, String>,
    ) -> Self {
        View {
            obs: inputs.obs,
            ro: inputs.ro,
            canary: inputs.canary,
            blue_green: inputs.blue_green,
            now: inputs.now,
            now_time: &inputs.now_time,
            observed: &inputs.observed,
            params: &inputs.params,
            windows: inputs.windows.as_ref(),
            rss: &sets.all,
            new_rs: sets.new,
            stable_rs: sets.stable,
            others: &sets.others,
            prev,
            pause,
            revision,
            selectors,
        }
    }

    /// The steps of the strategy.
    pub fn steps(&self) -> &'a [CanaryStep] {
        steps_of(self.canary)
    }

    /// `spec.replicas` (default 1).
    pub fn replicas(&self) -> i32 {
        replicas_of(self.ro)
    }

    /// The Rollout's name.
    pub fn name(&self) -> &'a str {
        self.ro.metadata.name.as_deref().unwrap_or("")
    }

    /// `metadata.generation`.
    pub fn generation(&self) -> i64 {
        self.ro.metadata.generation.unwrap_or(0)
    }

    /// The status already reports the current generation.
    pub fn generation_observed(&self) -> bool {
        self.prev.observed_generation == self.generation().to_string()
    }

    /// Aborted (requested, decided this reconcile, and not lifted).
    pub fn aborted(&self) -> bool {
        self.pause.is_aborted(self.prev)
    }

    /// Upstream `IsFullyPromoted` on the status as read.
    pub fn fully_promoted(&self) -> bool {
        self.prev.stable_rs == self.prev.current_pod_hash
    }

    /// The new ReplicaSet.
    pub fn new_rs(&self) -> Option<&'a ReplicaSet> {
        self.new_rs.map(|index| &self.rss[index])
    }

    /// The stable ReplicaSet.
    pub fn stable_rs(&self) -> Option<&'a ReplicaSet> {
        self.stable_rs.map(|index| &self.rss[index])
    }

    /// Replica-math counts of the new ReplicaSet.
    pub fn new_counts(&self) -> Option<ReplicaSetCounts> {
        self.new_rs().map(rs_counts)
    }

    /// Replica-math counts of the stable ReplicaSet.
    pub fn stable_counts(&self) -> Option<ReplicaSetCounts> {
        self.stable_rs().map(rs_counts)
    }

    /// Replica-math counts of the other ReplicaSets, oldest first.
    pub fn other_counts(&self) -> Vec<ReplicaSetCounts> {
        self.others
            .iter()
            .map(|&index| rs_counts(&self.rss[index]))
            .collect()
    }

    /// The pod-template hash of the new ReplicaSet, or the computed one before it exists.
    pub fn current_pod_hash(&self) -> String {
        match self.new_rs() {
            Some(rs) => rs_hash(rs).to_string(),
            None => computed_pod_hash(self.ro),
        }
    }

    /// `spec.paused`, or an `InconclusiveAnalysisRun` pause: ReplicaSets stay as they are.
    pub fn halted(&self) -> bool {
        self.ro.spec.paused == Some(true)
            || self
                .prev
                .pause_conditions
                .iter()
                .any(|condition| condition.reason == PauseReason::InconclusiveAnalysisRun)
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was last scaled for a different
    /// `spec.replicas` (HPA or user scaled the Rollout).
    pub fn is_scaling_event(&self) -> bool {
        let replicas = self.replicas();
        self.rss.iter().any(|rs| {
            rs_spec_replicas(rs) > 0
                && rs_annotation(rs, annotation::DESIRED_REPLICAS)
                    .and_then(|text| text.parse::<i32>().ok())
                    .is_some_and(|desired| desired != replicas)
        })
    }

    /// Upstream `PodTemplateOrStepsChanged`: the steps hash or the new pod hash differs from
    /// what the status recorded (a new revision, spec §3.6).
    pub fn template_or_steps_changed(&self) -> bool {
        let steps_changed = !self.prev.current_step_hash.is_empty()
            && self.prev.current_step_hash != computed_steps_hash(self.ro);
        let pod_changed = !self.prev.current_pod_hash.is_empty()
            && self.prev.current_pod_hash != self.current_pod_hash();
        steps_changed || pod_changed
    }

    /// Upstream `isRollbackWithinWindow` (spec §3.7): the new ReplicaSet is older than the
    /// stable one and fewer than `rollbackWindow.revisions` ReplicaSets were created between them.
    pub fn rollback_within_window(&self) -> bool {
        let (Some(new_rs), Some(stable_rs)) = (self.new_rs(), self.stable_rs()) else {
            return false;
        };
        let created = |rs: &ReplicaSet| creation_time(rs.metadata.creation_timestamp.as_ref());
        let (new_at, stable_at) = (created(new_rs), created(stable_rs));
        if new_at >= stable_at {
            return false;
        }
        let Some(revisions) = self
            .ro
            .spec
            .rollback_window
            .as_ref()
            .and_then(|window| window.revisions)
            .filter(|revisions| *revisions > 0)
        else {
            return false;
        };
        let between = self
            .rss
            .iter()
            .filter(|rs| rs_annotation(rs, annotation::EXPERIMENT_NAME).is_none_or(str::is_empty))
            .filter(|rs| created(rs) < stable_at && new_at < created(rs))
            .count();
        i64::try_from(between).unwrap_or(i64::MAX) < i64::from(revisions)
    }

    /// Upstream `IsDynamicallyRollingBackToStable`: fully promoted to a ReplicaSet that is not
    /// where the canary weight last pointed, with dynamicStableScale, while that ReplicaSet is
    /// not yet fully available. Returns the hash the canary weight still points at.
    pub fn dynamically_rolling_back_to_stable(&self) -> Option<String> {
        if !self.fully_promoted()
            || !self.params.traffic_routed
            || !self.params.dynamic_stable_scale
        {
            return None;
        }
        let weights = self.prev.canary.weights.as_ref()?;
        let new_rs = self.new_rs()?;
        let previous = weights.canary.pod_template_hash.clone();
        (previous != rs_hash(new_rs) && rs_available(new_rs) < self.replicas()).then_some(previous)
    }

    /// Upstream `shouldDelayScaleDownOnAbort`: a traffic-routed abort keeps the canary up for
    /// `abortScaleDownDelaySeconds` (not with an explicit 0, nor with `dynamicStableScale`
    /// unless the delay was set explicitly).
    pub fn should_delay_scale_down_on_abort(&self) -> bool {
        // A blue-green preview is kept like a traffic-routed canary; a basic canary is not.
        let keeps_preview = self.blue_green.is_some() || self.params.traffic_routed;
        if !self.aborted() || self.stable_rs.is_none() || !keeps_preview {
            return false;
        }
        let spec = &self.ro.spec;
        // dynamicStableScale keeps no canary around unless a delay was written explicitly.
        spec.abort_scale_down_delay_seconds().is_some()
            && (!self.params.dynamic_stable_scale || spec.abort_scale_down_delay_was_set())
    }
}

/// Runs `check` on the view a canary reconcile of `obs` starts from (unit tests of stages).
#[cfg(test)]
pub(crate) fn with_start_view<R>(
    obs: &Observed,
    now: DateTime<Utc>,
    check: impl FnOnce(&View<'_>) -> R,
) -> Option<R> {
    let strategy = Strategy::of(&obs.rollout)?;
    let inputs = Inputs::new(obs, strategy, now, None);
    let sets = ReplicaSets::pick(obs, &inputs.observed);
    let pause = initial_pause(inputs.ro, &inputs.observed);
    let selectors = service_selectors(obs);
    let prev = inputs.observed.clone();
    let view = View::new(
        &inputs,
        &sets,
        &prev,
        &pause,
        rollout_revision(inputs.ro),
        &selectors,
    );
    Some(check(&view))
}
