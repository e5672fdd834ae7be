//! The canary strategy stage (spec §3.1, upstream `rolloutCanary`): the order in which the
//! canary stages run, and how their outputs are folded into the plan.
//!
//! Every stage is a function from a read-only [`View`] (plus what it reads beyond it) to a
//! value saying what it decided; [`reconcile`] alone holds the state of the reconcile and
//! folds each value in before it builds the next view. A stage that changed something the
//! next reconcile must see first ends the reconcile ("stop after X"), which keeps every
//! reconcile idempotent.
//!
//! Where things are decided: the canary weight in [`weights`], the ReplicaSet sizes in
//! [`scale`] (from `crate::rollout::replicas`), the Service selectors in [`services`], the
//! AnalysisRuns in [`analysis`], the current step in [`step`], the new status in [`status`].

pub(crate) mod analysis;
pub(crate) mod experiment;
pub(crate) mod scale;
pub(crate) mod services;
pub(crate) mod status;
pub(crate) mod step;
pub(crate) mod weights;

use std::collections::BTreeMap;

use chrono::Duration;

use super::pause::PauseContext;
use super::plan::Plan;
use super::report::{self, Draft};
use super::revision;
use super::runs::RunState;
use super::steps::{current_step, is_indefinite_step};
use super::world::{
    Inputs, ReplicaSets, View, initial_new_status, initial_pause, rollout_revision,
    service_selectors,
};
use super::{ephemeral, history, restart};
use crate::api::{AnalysisPhase, PauseReason, RolloutStatus};
use analysis::Reaction;

/// Decides one reconcile of a canary Rollout whose ReplicaSets were picked as `sets`.
pub(crate) fn reconcile(inputs: &Inputs<'_>, sets: ReplicaSets) -> Plan {
    let mut canary = Canary::new(inputs, sets);
    canary.run();
    canary.plan
}

/// The state of one canary reconcile: what the stages decided so far. Only [`Canary::run`]
/// changes it, by folding in stage outputs.
struct Canary<'a> {
    inputs: &'a Inputs<'a>,
    sets: ReplicaSets,
    /// Upstream's `c.rollout.Status`: the observed status plus the Progressing condition set
    /// when the new ReplicaSet was created or first found.
    prev: RolloutStatus,
    revision: Option<i64>,
    pause: PauseContext,
    /// Upstream's `c.newStatus`: weights, analysis run statuses and `restartedAt` decided
    /// along the way, folded into the final status.
    new_status: RolloutStatus,
    runs: RunState,
    selectors: BTreeMap<String, String>,
    /// The phase of the current `experiment` step's Experiment, once the stage ran.
    experiment_phase: Option<AnalysisPhase>,
    plan: Plan,
}

impl<'a> Canary<'a> {
    fn new(inputs: &'a Inputs<'a>, sets: ReplicaSets) -> Self {
        Canary {
            inputs,
            sets,
            prev: inputs.observed.clone(),
            revision: rollout_revision(inputs.ro),
            pause: initial_pause(inputs.ro, &inputs.observed),
            new_status: initial_new_status(&inputs.observed),
            runs: RunState::new(&inputs.obs.analysis_runs, &inputs.observed),
            selectors: service_selectors(inputs.obs),
            experiment_phase: None,
            plan: Plan::default(),
        }
    }

    /// The view the next stage gets.
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

    /// The pipeline (spec §3.1).
    fn run(&mut self) {
        let view = self.view();
        if let Some(written) = report::bookkeeping(&view) {
            self.plan.append(written);
            return;
        }
        let scaling_event = view.is_scaling_event();
        let new_revision = view.template_or_steps_changed();
        if scaling_event {
            self.sync_revision(false);
            let scaled = scale::decide(&self.view(), self.new_status.canary.weights.as_ref());
            self.plan.append(scaled.plan);
            let view = self.view();
            let indefinite = is_indefinite_step(current_step(view.steps(), view.prev).0);
            let written = report::replicas_only(&view, indefinite);
            self.plan.append(written);
            return;
        }
        if new_revision {
            self.sync_revision(false);
            self.conclude();
            return;
        }
        self.sync_revision(true);

        let restarted = restart::decide(&self.view());
        self.plan.append(restarted.plan);
        if restarted.restarted_at.is_some() {
            self.new_status.restarted_at = restarted.restarted_at;
        }

        let relabelled = ephemeral::decide(&self.view());
        self.plan.append(relabelled);

        let cleaned = history::cleanup(&self.view(), &self.runs);
        self.plan.append(cleaned.plan);
        self.runs
            .handled
            .extend(cleaned.deleted_runs.into_iter().map(|name| (true, name)));

        let selected = services::decide(&self.view());
        self.plan.append(selected.plan);
        self.selectors = selected.selectors;

        let destinations = experiment::weight_destinations(&self.view());
        let weighed = weights::decide(
            &self.view(),
            self.new_status.canary.weights.as_ref(),
            destinations,
        );
        if weighed.canary_back_to_stable {
            let selected = services::canary_back_to_stable(&self.view());
            self.plan.append(selected.plan);
            self.selectors = selected.selectors;
        }
        self.plan.append(weighed.plan);
        self.new_status.canary.weights = weighed.weights;

        let experimented = experiment::decide(&self.view());
        let failed = experimented.plan.error.is_some();
        self.plan.append(experimented.plan);
        if failed {
            self.plan.requeue(Duration::seconds(10));
            return;
        }
        self.new_status.canary.current_experiment = experimented.current_name;
        self.experiment_phase = experimented.phase;
        for reaction in experimented.reactions {
            match reaction {
                Reaction::Pause(reason) => self.pause.add_pause(reason),
                Reaction::Abort(message) => self.pause.add_abort(message),
            }
        }

        let runs = std::mem::take(&mut self.runs);
        let analysed = analysis::decide(&self.view(), runs);
        let failed = analysed.plan.error.is_some();
        self.plan.append(analysed.plan);
        if failed {
            self.plan.requeue(Duration::seconds(10));
            return;
        }
        self.runs = analysed.runs;
        self.new_status.canary.current_step_analysis_run_status = analysed.step_status;
        self.new_status
            .canary
            .current_background_analysis_run_status = analysed.background_status;
        for reaction in analysed.reactions {
            match reaction {
                Reaction::Pause(reason) => self.pause.add_pause(reason),
                Reaction::Abort(message) => self.pause.add_abort(message),
            }
        }
        if self.pause.has_add_pause() || self.pause.has_add_abort() {
            // An Inconclusive run paused, or a failed one aborted: write that first, so no
            // ReplicaSet moves on a decision this reconcile just overturned.
            self.conclude();
            return;
        }

        let scaled = scale::decide(&self.view(), self.new_status.canary.weights.as_ref());
        self.plan.append(scaled.plan);
        if scaled.scaled {
            self.conclude();
            return;
        }

        let paused = step::pause_step(&self.view());
        self.plan.append(paused.plan);
        if paused.pause {
            self.pause.add_pause(PauseReason::CanaryPauseStep);
        }
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

    /// The status stage, then the strategy-independent report (conditions, phase, patch).
    fn conclude(&mut self) {
        let view = self.view();
        let on_experiment = current_step(view.steps(), view.prev)
            .0
            .is_some_and(|step| step.experiment.is_some());
        let step_run = if on_experiment {
            self.experiment_phase.clone()
        } else {
            self.runs.step_phase()
        };
        let draft: Draft = status::decide(&self.view(), &self.new_status, step_run);
        let written = report::conclude(&self.view(), draft);
        self.plan.append(written);
    }
}
