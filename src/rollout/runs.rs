//! The AnalysisRuns of a Rollout as one reconcile sees them ([`RunState`]): which are current,
//! which are other, and which this plan already terminates or deletes.

use std::collections::BTreeSet;

use crate::api::{AnalysisPhase, AnalysisRun, RolloutStatus};

/// AnalysisRuns of the Rollout as this reconcile sees them.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// The run `status.canary.currentStepAnalysisRunStatus` names (or the one made current now).
    pub step: Option<AnalysisRun>,
    /// The run `status.canary.currentBackgroundAnalysisRunStatus` names (or made current now).
    pub background: Option<AnalysisRun>,
    /// The run `status.blueGreen.prePromotionAnalysisRunStatus` names.
    pub pre: Option<AnalysisRun>,
    /// The run `status.blueGreen.postPromotionAnalysisRunStatus` names.
    pub post: Option<AnalysisRun>,
    /// Owned runs the status does not name.
    pub others: Vec<AnalysisRun>,
    /// Runs this plan terminates or deletes already (no duplicate writes).
    pub(crate) handled: BTreeSet<(bool, String)>,
}

impl RunState {
    /// Splits the owned runs by the names the status records (upstream
    /// `FilterCurrentRolloutAnalysisRuns`).
    pub fn new(runs: &[AnalysisRun], status: &RolloutStatus) -> Self {
        let name_of = |run: &AnalysisRun| run.metadata.name.clone().unwrap_or_default();
        let step_name = status
            .canary
            .current_step_analysis_run_status
            .as_ref()
            .map(|s| s.name.clone());
        let background_name = status
            .canary
            .current_background_analysis_run_status
            .as_ref()
            .map(|s| s.name.clone());
        let pre_name = status
            .blue_green
            .pre_promotion_analysis_run_status
            .as_ref()
            .map(|s| s.name.clone());
        let post_name = status
            .blue_green
            .post_promotion_analysis_run_status
            .as_ref()
            .map(|s| s.name.clone());
        let mut state = RunState::default();
        for run in runs {
            let name = Some(name_of(run));
            if name == step_name && state.step.is_none() {
                state.step = Some(run.clone());
            } else if name == background_name && state.background.is_none() {
                state.background = Some(run.clone());
            } else if name == pre_name && state.pre.is_none() {
                state.pre = Some(run.clone());
            } else if name == post_name && state.post.is_none() {
                state.post = Some(run.clone());
            } else {
                state.others.push(run.clone());
            }
        }
        state
    }

    /// Phase of the current step run.
    pub fn step_phase(&self) -> Option<AnalysisPhase> {
        self.step.as_ref().and_then(phase_of)
    }
}

pub(crate) fn phase_of(run: &AnalysisRun) -> Option<AnalysisPhase> {
    run.status.as_ref().and_then(|status| status.phase.clone())
}

pub(crate) fn message_of(run: &AnalysisRun) -> String {
    run.status
        .as_ref()
        .map(|status| status.message.clone())
        .unwrap_or_default()
}

pub(crate) fn name_of(run: &AnalysisRun) -> String {
    run.metadata.name.clone().unwrap_or_default()
}
