//! The blue-green strategy stage (spec §1.6, upstream `rolloutBlueGreen`): the order in which
//! the blue-green stages run, and how their outputs are folded into the plan.
//!
//! Like the canary stage, every stage reads a [`View`] and returns what it decided; only
//! [`reconcile`] holds the state. The shared stages are reused as they are: `revision`,
//! `restart`, `history`, `ephemeral`, `report`, the canary's write helpers for ReplicaSet scaling and
//! AnalysisRuns. The blue-green specific parts: [`services`] (preview and active selectors),
//! [`pause`] (`BlueGreenPause`), [`scale`] (preview size and old ReplicaSets), [`analysis`]
//! (pre- and post-promotion runs), [`status`] (promotion and counts), [`facts`] (the questions
//! they share).

pub(crate) mod analysis;
pub(crate) mod facts;
pub(crate) mod pause;
pub(crate) mod scale;
pub(crate) mod services;
pub(crate) mod status;

use std::collections::BTreeMap;

use chrono::Duration;

use super::canary::analysis::Reaction;
use super::pause::PauseContext;
use super::plan::Plan;
use super::report;
use super::revision;
use super::runs::RunState;
use super::world::{
    Inputs, ReplicaSets, View, initial_new_status, initial_pause, rollout_revision,
    service_selectors,
};
use super::{ephemeral, history, restart};
use crate::api::{PauseReason, RolloutStatus};
use pause::PauseDecision;

/// Decides one reconcile of a blue-green Rollout whose ReplicaSets were picked as `sets`.
pub(crate) fn reconcile(inputs: &Inputs<'_>, sets: ReplicaSets) -> Plan {
    let mut blue_green = BlueGreen {
        inputs,
        sets,
        prev: inputs.observed.clone(),
        revision: rollout_revision(inputs.ro),
        pause: initial_pause(inputs.ro, &inputs.observed),
        new_status: initial_new_status(&inputs.observed),
        runs: RunState::new(&inputs.obs.analysis_runs, &inputs.observed),
        selectors: service_selectors(inputs.obs),
        plan: Plan::default(),
    };
    blue_green.run();
    blue_green.plan
}

/// The state of one blue-green reconcile; only [`BlueGreen::run`] changes it.
struct BlueGreen<'a> {
    inputs: &'a Inputs<'a>,
    sets: ReplicaSets,
    prev: RolloutStatus,
    revision: Option<i64>,
    pause: PauseContext,
    new_status: RolloutStatus,
    runs: RunState,
    selectors: BTreeMap<String, String>,
    plan: Plan,
}

impl BlueGreen<'_> {
    fn view(&self) -> View<'_> {
        View::new(
            self.inputs,
            &self.sets,
            &self.prev,
            &self.pause,
            self.revision,
            &self.selectors,
        )
    }

    /// Upstream `reconcile` then `rolloutBlueGreen`.
    fn run(&mut self) {
        let view = self.view();
        if let Some(written) = report::bookkeeping(&view) {
            self.plan.append(written);
            return;
        }
        if view.is_scaling_event() {
            // Upstream `syncReplicasOnly`: sizes and counts only (HPA scaled the Rollout).
            self.sync_revision(false);
            let scaled = scale::decide(&self.view(), &self.runs);
            self.plan.append(scaled);
            let written = status::replicas_only(&self.view());
            self.plan.append(written);
            return;
        }
        self.sync_revision(true);

        // The preview Service follows the new ReplicaSet right after it exists.
        let previewed = services::preview(&self.view());
        self.plan.append(previewed.plan);
        self.selectors = previewed.selectors;
        if facts::pod_spec_changed(&self.view()) {
            self.conclude();
            return;
        }

        let restarted = restart::decide(&self.view());
        self.plan.append(restarted.plan);
        if restarted.restarted_at.is_some() {
            self.new_status.restarted_at = restarted.restarted_at;
        }

        let scaled = scale::decide(&self.view(), &self.runs);
        self.plan.append(scaled);
        let cleaned = history::cleanup(&self.view(), &self.runs);
        self.plan.append(cleaned.plan);
        self.runs
            .handled
            .extend(cleaned.deleted_runs.into_iter().map(|name| (true, name)));

        let (decision, waited) = pause::decide(&self.view(), &self.runs);
        self.plan.append(waited);
        match decision {
            PauseDecision::Add => self.pause.add_pause(PauseReason::BlueGreenPause),
            PauseDecision::Remove => self.pause.remove_pause(PauseReason::BlueGreenPause),
            PauseDecision::Keep => {}
        }

        let view = self.view();
        let activated = services::active(&view, &self.pause, &self.runs);
        self.plan.append(activated.plan);
        self.selectors = activated.selectors;

        let runs = std::mem::take(&mut self.runs);
        let analysed = analysis::decide(&self.view(), &self.pause, runs);
        let failed = analysed.plan.error.is_some();
        self.plan.append(analysed.plan);
        if failed {
            self.plan.requeue(Duration::seconds(10));
            return;
        }
        self.runs = analysed.runs;
        self.new_status.blue_green.pre_promotion_analysis_run_status = analysed.pre_status;
        self.new_status
            .blue_green
            .post_promotion_analysis_run_status = analysed.post_status;
        for reaction in analysed.reactions {
            match reaction {
                Reaction::Pause(reason) => self.pause.add_pause(reason),
                Reaction::Abort(message) => self.pause.add_abort(message),
            }
        }
        let relabelled = ephemeral::decide(&self.view());
        self.plan.append(relabelled);
        self.conclude();
    }

    /// Revision sync, creating the new ReplicaSet when `create`.
    fn sync_revision(&mut self, create: bool) {
        let decided = revision::sync(&self.view(), create);
        revision::fold(
            decided,
            &mut self.plan,
            &mut self.sets,
            &mut self.revision,
            &mut self.prev,
        );
    }

    /// The status stage, then the strategy-independent report.
    fn conclude(&mut self) {
        let draft = status::decide(&self.view(), &self.new_status, &self.runs);
        let written = report::conclude(&self.view(), draft);
        self.plan.append(written);
    }
}
