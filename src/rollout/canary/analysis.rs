//! The Rollout side of analysis (spec §4.8, upstream `rollout/analysis.go`): which runs are
//! current, creating step and background runs, reacting to their phases (Inconclusive ⇒ pause,
//! Failed/Error ⇒ abort), terminating runs no longer wanted, and the run history limits.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::consts::{annotation, label, rollout_type};
use crate::api::{
    AnalysisPhase, AnalysisRun, PauseReason, RolloutAnalysis, RolloutAnalysisRunStatus,
    RolloutStatus,
};
use crate::rollout::analysis_run::{
    ArgSources, build_args, collision_name, resolve_templates, run_base_name, run_labels, run_spec,
    semantically_equal, step_index_label, type_labels,
};
use crate::rollout::observed::{
    creation_time, owner_reference, rs_hash, rs_name, rs_scale_down_deadline,
};
use crate::rollout::plan::{EventType, Plan, PlanError, Write};
use crate::rollout::replicas::other::ScaleDownDeadline;
use crate::rollout::runs::{RunState, message_of, name_of, phase_of};
use crate::rollout::steps::{before_starting_step, current_step};
use crate::rollout::world::View;

/// How many `.N` suffixes are tried before giving up on a run name.
const MAX_COLLISIONS: usize = 100;

/// What a run's phase asks of the Rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// Pause with this reason (an Inconclusive run).
    Pause(PauseReason),
    /// Abort with this message (a Failed or Error run).
    Abort(String),
}

/// What the analysis stage decided.
#[derive(Debug)]
pub(crate) struct Analysed {
    /// The run writes and events, in order; `error` is set when a run could not be built.
    pub plan: Plan,
    /// The runs as the rest of the reconcile sees them.
    pub runs: RunState,
    /// Pauses and aborts the current runs' phases ask for, in order.
    pub reactions: Vec<Reaction>,
    /// `status.canary.currentStepAnalysisRunStatus`.
    pub step_status: Option<RolloutAnalysisRunStatus>,
    /// `status.canary.currentBackgroundAnalysisRunStatus`.
    pub background_status: Option<RolloutAnalysisRunStatus>,
}

/// The stage's working copy (the blue-green analysis stage uses it too).
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// The runs as decided so far.
    pub(crate) runs: RunState,
    /// Pauses and aborts asked for so far.
    pub(crate) reactions: Vec<Reaction>,
    /// The run writes and events so far.
    pub(crate) plan: Plan,
    step_status: Option<RolloutAnalysisRunStatus>,
    background_status: Option<RolloutAnalysisRunStatus>,
}

impl Work {
    /// A working copy over `runs`, nothing decided yet.
    pub(crate) fn over(runs: RunState) -> Self {
        Work {
            runs,
            ..Work::default()
        }
    }
}

/// Upstream `reconcileAnalysisRuns` for a canary, on the runs as `runs` holds them. An error
/// stops the reconcile (the run could not be built); upstream retries with backoff, so does
/// the executor.
pub(crate) fn decide(v: &View<'_>, runs: RunState) -> Analysed {
    let mut work = Work {
        runs,
        reactions: Vec::new(),
        plan: Plan::default(),
        step_status: None,
        background_status: None,
    };
    if let Err(error) = reconcile(v, &mut work) {
        work.plan.error = Some(error);
    }
    Analysed {
        plan: work.plan,
        runs: work.runs,
        reactions: work.reactions,
        step_status: work.step_status,
        background_status: work.background_status,
    }
}

fn reconcile(v: &View<'_>, w: &mut Work) -> Result<(), PlanError> {
    let rollback_to_scale_down_delay = v
        .new_rs()
        .is_some_and(|rs| rs_scale_down_deadline(rs) != ScaleDownDeadline::Absent);
    if v.aborted()
        || v.prev.promote_full
        || rollback_to_scale_down_delay
        || v.prev.stable_rs.is_empty()
        || v.rollback_within_window()
    {
        let all: Vec<AnalysisRun> = w
            .runs
            .step
            .iter()
            .chain(w.runs.background.iter())
            .chain(w.runs.others.iter())
            .cloned()
            .collect();
        for run in &all {
            terminate(w, run);
        }
        set_current(w);
        return Ok(());
    }
    let step = reconcile_step(v, w)?;
    let background = reconcile_background(v, w)?;
    let previous_step = v.prev.canary.current_step_analysis_run_status.clone();
    let previous_background = v.prev.canary.current_background_analysis_run_status.clone();
    w.runs.step = step;
    w.runs.background = background;
    set_current(w);
    // A run just adopted under its name must not be terminated as an "other" one.
    let current = [w.runs.step.clone(), w.runs.background.clone()];
    retire_others(v, w, &current);
    let step_run = w.runs.step.clone();
    let background_run = w.runs.background.clone();
    emit_phase_change(
        w,
        previous_step.as_ref(),
        step_run.as_ref(),
        rollout_type::STEP,
    );
    emit_phase_change(
        w,
        previous_background.as_ref(),
        background_run.as_ref(),
        rollout_type::BACKGROUND,
    );
    Ok(())
}

/// Upstream `reconcileStepBasedAnalysisRun`.
fn reconcile_step(v: &View<'_>, w: &mut Work) -> Result<Option<AnalysisRun>, PlanError> {
    let mut current = w.runs.step.clone();
    if !v.prev.pause_conditions.is_empty() || v.prev.abort {
        return Ok(current);
    }
    let (step, index) = current_step(v.steps(), v.prev);
    let (Some(analysis), Some(index)) = (step.and_then(|step| step.analysis.as_ref()), index)
    else {
        if let Some(run) = current.as_ref() {
            terminate(w, run);
        }
        return Ok(None);
    };
    // A run of another step (the user skipped or promoted past it) is not this step's run.
    if let Some(run) = current.as_ref()
        && step_index_label(run).is_some_and(|label| label != index)
    {
        terminate(w, run);
        w.runs.others.push(run.clone());
        current = None;
    }
    if needs_new_run(current.as_ref(), v.prev) {
        let labels = type_labels(&v.current_pod_hash(), rollout_type::STEP, Some(index));
        return create_run(v, w, analysis, Some(index.to_string()), labels).map(Some);
    }
    if let Some(run) = current.as_ref() {
        react(w, run, "Step-based");
    }
    Ok(current)
}

/// Upstream `reconcileBackgroundAnalysisRun`.
fn reconcile_background(v: &View<'_>, w: &mut Work) -> Result<Option<AnalysisRun>, PlanError> {
    let current = w.runs.background.clone();
    let Some(analysis) = v
        .canary
        .analysis
        .as_ref()
        .map(|background| &background.analysis)
    else {
        if let Some(run) = current.as_ref() {
            terminate(w, run);
        }
        return Ok(None);
    };
    if v.fully_promoted()
        || v.prev.stable_rs.is_empty()
        || v.prev.current_pod_hash.is_empty()
        || before_starting_step(v.canary, v.prev)
    {
        // Promoted: the run has done its job (upstream terminates it one reconcile later).
        if let Some(run) = current.as_ref() {
            terminate(w, run);
            w.runs.others.push(run.clone());
        }
        return Ok(None);
    }
    if v.prev
        .pause_conditions
        .iter()
        .any(|c| c.reason == PauseReason::InconclusiveAnalysisRun)
    {
        return Ok(current);
    }
    if needs_new_run(current.as_ref(), v.prev) {
        let labels = type_labels(&v.current_pod_hash(), rollout_type::BACKGROUND, None);
        return create_run(v, w, analysis, None, labels).map(Some);
    }
    if let Some(run) = current.as_ref() {
        react(w, run, "Background");
    }
    Ok(current)
}

/// Upstream `needsNewAnalysisRun`: none yet; or the user resumed an Inconclusive pause; or the
/// user retried an abort (`abortedAt` still set).
pub(crate) fn needs_new_run(current: Option<&AnalysisRun>, status: &RolloutStatus) -> bool {
    let Some(run) = current else {
        return true;
    };
    let blue_green_pause = status
        .pause_conditions
        .iter()
        .any(|c| c.reason == PauseReason::BlueGreenPause);
    if status.controller_pause && !blue_green_pause {
        return phase_of(run) == Some(AnalysisPhase::Inconclusive);
    }
    status.aborted_at.is_some()
}

/// Inconclusive ⇒ `InconclusiveAnalysisRun` pause; Failed/Error ⇒ abort with upstream's message.
pub(crate) fn react(w: &mut Work, run: &AnalysisRun, kind: &str) {
    match phase_of(run) {
        Some(AnalysisPhase::Inconclusive) => w
            .reactions
            .push(Reaction::Pause(PauseReason::InconclusiveAnalysisRun)),
        Some(AnalysisPhase::Failed | AnalysisPhase::Error) => {
            let mut text = format!("{kind} analysis phase error/failed");
            let detail = message_of(run);
            if !detail.is_empty() {
                text = format!("{text}: {detail}");
            }
            w.reactions.push(Reaction::Abort(text));
        }
        _ => {}
    }
}

/// Builds the run for `analysis` and either adopts an equal, unfinished run of ours already
/// under one of its candidate names (a reconcile that crashed after creating it) or creates it
/// under the first free name.
pub(crate) fn create_run(
    v: &View<'_>,
    w: &mut Work,
    analysis: &RolloutAnalysis,
    infix: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
) -> Result<AnalysisRun, PlanError> {
    let stable_hash = v
        .stable_rs()
        .map(|rs| rs_hash(rs).to_string())
        .unwrap_or_default();
    let latest_hash = v.current_pod_hash();
    let sources = ArgSources {
        rollout: v.ro,
        stable_hash: &stable_hash,
        latest_hash: &latest_hash,
    };
    let args = build_args(analysis.args.as_deref().unwrap_or(&[]), &sources)
        .map_err(|e| PlanError::Analysis(e.to_string()))?;
    if v.new_rs().is_none_or(|rs| rs_hash(rs).is_empty()) {
        let name = v.new_rs().map(rs_name).unwrap_or("").to_string();
        return Err(PlanError::Analysis(format!(
            "Latest ReplicaSet '{name}' has no pod hash in the labels"
        )));
    }
    let (namespaced, cluster) = resolve_templates(
        analysis,
        &v.obs.analysis_templates,
        &v.obs.cluster_analysis_templates,
    )
    .map_err(|e| PlanError::Analysis(e.to_string()))?;
    let spec = run_spec(
        &namespaced,
        &cluster,
        &args,
        analysis.dry_run.as_deref().unwrap_or(&[]),
        analysis.measurement_retention.as_deref().unwrap_or(&[]),
    )
    .map_err(|e| PlanError::Analysis(e.to_string()))?;
    let revision = v.revision.map(|r| r.to_string()).unwrap_or_default();
    let base = run_base_name(v.name(), &latest_hash, &revision, infix.as_deref());
    let mut annotations =
        std::collections::BTreeMap::from([(annotation::REVISION.to_string(), revision)]);
    if let Some(extra) = analysis
        .analysis_run_metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
    {
        annotations.extend(extra.clone());
    }
    let uid = v.ro.metadata.uid.clone().unwrap_or_default();
    for n in 0..MAX_COLLISIONS {
        let name = collision_name(&base, n);
        let Some(existing) = v.obs.analysis_runs.iter().find(|run| name_of(run) == name) else {
            let run = AnalysisRun {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: v.ro.metadata.namespace.clone(),
                    labels: Some(run_labels(labels, analysis, v.ro)),
                    annotations: Some(annotations),
                    owner_references: Some(vec![owner_reference(v.ro)]),
                    ..ObjectMeta::default()
                },
                spec,
                status: None,
            };
            w.plan.push(Write::CreateAnalysisRun(Box::new(run.clone())));
            return Ok(run);
        };
        let ours = existing
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|owner| owner.controller == Some(true) && owner.uid == uid);
        let unfinished = phase_of(existing).is_none_or(|phase| !phase.completed());
        if ours && unfinished && semantically_equal(&existing.spec, &spec) {
            return Ok(existing.clone());
        }
    }
    Err(PlanError::Analysis(format!(
        "too many AnalysisRun name collisions for '{base}'"
    )))
}

/// Merge-patches `spec.terminate: true` unless already terminating or finished.
pub(crate) fn terminate(w: &mut Work, run: &AnalysisRun) {
    let finished = phase_of(run).is_some_and(|phase| phase.completed());
    let name = name_of(run);
    if run.spec.terminate == Some(true) || finished || !w.runs.handled.insert((false, name.clone()))
    {
        return;
    }
    w.plan.push(Write::TerminateAnalysisRun { name });
}

fn delete(w: &mut Work, run: &AnalysisRun) {
    let name = name_of(run);
    if run.metadata.deletion_timestamp.is_some() || !w.runs.handled.insert((true, name.clone())) {
        return;
    }
    w.plan.push(Write::DeleteAnalysisRun { name });
}

/// Upstream `FilterAnalysisRunsToDelete`: newest first, keep `successfulRunHistoryLimit`
/// Successful and `unsuccessfulRunHistoryLimit` Failed/Error/Inconclusive runs (5 each); runs
/// whose ReplicaSet no longer exists go too.
/// Every run of the Rollout that is not one of `current` (by name): terminated, and those
/// beyond the history limits deleted. Shared by the canary and blue-green analysis stages.
pub(crate) fn retire_others(v: &View<'_>, w: &mut Work, current: &[Option<AnalysisRun>]) {
    let current: BTreeSet<String> = current.iter().flatten().map(name_of).collect();
    let others: Vec<AnalysisRun> = w
        .runs
        .others
        .iter()
        .filter(|run| !current.contains(&name_of(run)))
        .cloned()
        .collect();
    for run in &others {
        terminate(w, run);
    }
    delete_beyond_history(v, w, &others);
}

pub(crate) fn delete_beyond_history(v: &View<'_>, w: &mut Work, others: &[AnalysisRun]) {
    let keep_successful = v.ro.spec.successful_run_history_limit();
    let keep_unsuccessful = v.ro.spec.unsuccessful_run_history_limit();
    let hashes: BTreeSet<&str> = v.rss.iter().map(rs_hash).collect();
    let mut sorted: Vec<&AnalysisRun> = others.iter().collect();
    sorted.sort_by_key(|run| {
        std::cmp::Reverse((
            creation_time(run.metadata.creation_timestamp.as_ref()),
            name_of(run),
        ))
    });
    let (mut successful, mut unsuccessful) = (0, 0);
    let mut doomed = Vec::new();
    for run in sorted {
        if run.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let hash = run
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(label::POD_TEMPLATE_HASH));
        if hash.is_some_and(|hash| !hashes.contains(hash.as_str())) {
            doomed.push(run.clone());
            continue;
        }
        match phase_of(run) {
            Some(AnalysisPhase::Successful) => {
                if successful < keep_successful {
                    successful += 1;
                } else {
                    doomed.push(run.clone());
                }
            }
            Some(AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive) => {
                if unsuccessful < keep_unsuccessful {
                    unsuccessful += 1;
                } else {
                    doomed.push(run.clone());
                }
            }
            _ => {}
        }
    }
    for run in &doomed {
        delete(w, run);
    }
}

/// Mirrors the current runs into `status.canary` (`{name, status, message}`).
fn set_current(w: &mut Work) {
    let mirror = |run: &AnalysisRun| RolloutAnalysisRunStatus {
        name: name_of(run),
        // A run not yet assessed has an empty phase, which upstream writes as "".
        status: phase_of(run).unwrap_or_else(|| AnalysisPhase::Other(String::new())),
        message: message_of(run),
    };
    w.step_status = w.runs.step.as_ref().map(mirror);
    w.background_status = w.runs.background.as_ref().map(mirror);
}

/// Upstream `emitAnalysisRunStatusChanges`: `AnalysisRun<Phase>` when the current run's phase
/// differs from what the status recorded for it.
pub(crate) fn emit_phase_change(
    w: &mut Work,
    previous: Option<&RolloutAnalysisRunStatus>,
    run: Option<&AnalysisRun>,
    kind: &str,
) {
    let Some(run) = run else {
        return;
    };
    let Some(phase) = phase_of(run).filter(|phase| !phase.as_str().is_empty()) else {
        return;
    };
    let changed = match previous {
        None => true,
        Some(previous) => previous.name == name_of(run) && previous.status != phase,
    };
    if !changed {
        return;
    }
    let before = previous.map_or("NoPreviousStatus".to_string(), |p| {
        p.status.as_str().to_string()
    });
    let type_ = if matches!(phase, AnalysisPhase::Failed | AnalysisPhase::Error) {
        EventType::Warning
    } else {
        EventType::Normal
    };
    w.plan.event(
        type_,
        &format!("AnalysisRun{}", phase.as_str()),
        format!(
            "{kind} Analysis Run '{}' Status New: '{}' Previous: '{before}'",
            name_of(run),
            phase.as_str()
        ),
    );
}
