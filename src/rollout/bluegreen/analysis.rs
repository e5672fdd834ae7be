//! Pre- and post-promotion analysis of a blue-green Rollout (spec §4.8, upstream
//! `reconcileAnalysisRuns`, `reconcilePrePromotionAnalysisRun`,
//! `reconcilePostPromotionAnalysisRun`): the pre-promotion run starts once the preview is
//! saturated and must succeed before the active switch; the post-promotion run starts after
//! the switch and must succeed before the new ReplicaSet is stable. Failed or Error ⇒ abort,
//! Inconclusive ⇒ pause. Creating, terminating and deleting runs is the canary's code.

use crate::api::consts::rollout_type;
use crate::api::{
    AnalysisPhase, AnalysisRun, PauseReason, RolloutAnalysis, RolloutAnalysisRunStatus,
};
use crate::rollout::analysis_run::type_labels;
use crate::rollout::canary::analysis::{
    Reaction, Work, create_run, emit_phase_change, needs_new_run, react, retire_others, terminate,
};
use crate::rollout::pause::PauseContext;
use crate::rollout::plan::{Plan, PlanError};
use crate::rollout::runs::{RunState, message_of, name_of, phase_of};
use crate::rollout::world::View;

use super::facts::{fast_rollback, is_saturated, strategy};

/// What the analysis stage decided.
#[derive(Debug)]
pub(crate) struct Analysed {
    /// The run writes and events; `error` is set when a run could not be built.
    pub plan: Plan,
    /// The runs as the rest of the reconcile sees them.
    pub runs: RunState,
    /// Pauses and aborts the runs' phases ask for.
    pub reactions: Vec<Reaction>,
    /// `status.blueGreen.prePromotionAnalysisRunStatus`.
    pub pre_status: Option<RolloutAnalysisRunStatus>,
    /// `status.blueGreen.postPromotionAnalysisRunStatus`.
    pub post_status: Option<RolloutAnalysisRunStatus>,
}

/// Upstream `reconcileAnalysisRuns` for blue-green.
pub(crate) fn decide(v: &View<'_>, pause: &PauseContext, runs: RunState) -> Analysed {
    let mut work = Work::over(runs);
    if let Err(error) = reconcile(v, pause, &mut work) {
        work.plan.error = Some(error);
    }
    let mirror = |run: &AnalysisRun| RolloutAnalysisRunStatus {
        name: name_of(run),
        status: phase_of(run).unwrap_or_else(|| AnalysisPhase::Other(String::new())),
        message: message_of(run),
    };
    Analysed {
        pre_status: work.runs.pre.as_ref().map(mirror),
        post_status: work.runs.post.as_ref().map(mirror),
        plan: work.plan,
        runs: work.runs,
        reactions: work.reactions,
    }
}

fn reconcile(v: &View<'_>, pause: &PauseContext, w: &mut Work) -> Result<(), PlanError> {
    let cancel = v.fully_promoted()
        || pause.is_aborted(v.prev)
        || v.prev.promote_full
        || fast_rollback(v)
        || v.prev.stable_rs.is_empty();
    if cancel {
        // Blue-green keeps its runs as current once cancelled (the status still names them).
        let all: Vec<AnalysisRun> = w
            .runs
            .pre
            .iter()
            .chain(w.runs.post.iter())
            .chain(w.runs.others.iter())
            .cloned()
            .collect();
        for run in &all {
            terminate(w, run);
        }
        return Ok(());
    }
    let previous_pre = v.prev.blue_green.pre_promotion_analysis_run_status.clone();
    let previous_post = v.prev.blue_green.post_promotion_analysis_run_status.clone();
    let bg = strategy(v);
    w.runs.pre = reconcile_one(v, w, bg.pre_promotion_analysis.as_ref(), Kind::Pre)?;
    w.runs.post = reconcile_one(v, w, bg.post_promotion_analysis.as_ref(), Kind::Post)?;
    let current = [w.runs.pre.clone(), w.runs.post.clone()];
    retire_others(v, w, &current);
    let (pre, post) = (w.runs.pre.clone(), w.runs.post.clone());
    emit_phase_change(
        w,
        previous_post.as_ref(),
        post.as_ref(),
        rollout_type::POST_PROMOTION,
    );
    emit_phase_change(
        w,
        previous_pre.as_ref(),
        pre.as_ref(),
        rollout_type::PRE_PROMOTION,
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pre,
    Post,
}

/// Upstream `reconcilePre/PostPromotionAnalysisRun`.
fn reconcile_one(
    v: &View<'_>,
    w: &mut Work,
    analysis: Option<&RolloutAnalysis>,
    kind: Kind,
) -> Result<Option<AnalysisRun>, PlanError> {
    let current = match kind {
        Kind::Pre => w.runs.pre.clone(),
        Kind::Post => w.runs.post.clone(),
    };
    let Some(analysis) = analysis.filter(|a| a.templates.as_ref().is_some_and(|t| !t.is_empty()))
    else {
        if let Some(run) = current.as_ref() {
            terminate(w, run);
        }
        return Ok(None);
    };
    if skip(v, current.as_ref(), kind) {
        if let Some(run) = current.as_ref() {
            terminate(w, run);
        }
        return Ok(current);
    }
    if v.prev
        .pause_conditions
        .iter()
        .any(|c| c.reason == PauseReason::InconclusiveAnalysisRun)
    {
        return Ok(current);
    }
    if needs_new_run(current.as_ref(), v.prev) {
        let (label, infix) = match kind {
            Kind::Pre => (rollout_type::PRE_PROMOTION, "pre"),
            Kind::Post => (rollout_type::POST_PROMOTION, "post"),
        };
        let labels = type_labels(&v.current_pod_hash(), label, None);
        return create_run(v, w, analysis, Some(infix.to_string()), labels).map(Some);
    }
    if let Some(run) = current.as_ref() {
        let what = match kind {
            Kind::Pre => "Blue/green pre-promotion",
            Kind::Post => "Blue/green post-promotion",
        };
        react(w, run, what);
    }
    Ok(current)
}

/// Upstream `skipPrePromotionAnalysisRun` / `skipPostPromotionAnalysisRun`: not before there
/// is something to analyse (the preview saturated; after the switch for post-promotion), and
/// never again once promoted. A run already started is not skipped for pod churn.
fn skip(v: &View<'_>, current: Option<&AnalysisRun>, kind: Kind) -> bool {
    let hash = v.current_pod_hash();
    let active = &v.prev.blue_green.active_selector;
    let done = match kind {
        Kind::Pre => {
            v.prev.stable_rs == hash || active.is_empty() || *active == hash || hash.is_empty()
        }
        Kind::Post => v.prev.stable_rs == hash || *active != hash || hash.is_empty(),
    };
    if done {
        return true;
    }
    if current.is_some() {
        return false;
    }
    let Some(new_rs) = v.new_rs() else {
        return true;
    };
    match (kind, strategy(v).preview_replica_count) {
        (Kind::Pre, Some(preview)) => {
            crate::rollout::observed::rs_spec_replicas(new_rs) != preview
                || crate::rollout::observed::rs_available(new_rs) != preview
        }
        _ => !is_saturated(v, new_rs),
    }
}
