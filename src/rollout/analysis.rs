//! The Rollout side of analysis (spec §4.8, upstream `rollout/analysis.go`): which runs are
//! current, creating step and background runs, reacting to their phases (Inconclusive ⇒ pause,
//! Failed/Error ⇒ abort), terminating runs no longer wanted, and the run history limits.

use std::collections::BTreeSet;

use super::analysis_run::{
    ArgSources, build_args, collision_name, resolve_templates, run_base_name, run_labels, run_spec,
    semantically_equal, step_index_label, type_labels,
};
use super::context::Ctx;
use super::observed::{creation_time, rs_hash, rs_name};
use super::plan::{EventType, PlanError, Write};
use super::replicaset::owner_reference;
use super::steps::{before_starting_step, current_step};
use crate::api::consts::{annotation, label, rollout_type};
use crate::api::{
    AnalysisPhase, AnalysisRun, PauseReason, RolloutAnalysis, RolloutAnalysisRunStatus,
    RolloutStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// How many `.N` suffixes are tried before giving up on a run name.
const MAX_COLLISIONS: usize = 100;

/// AnalysisRuns of the Rollout as this reconcile sees them.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// The run `status.canary.currentStepAnalysisRunStatus` names (or the one made current now).
    pub step: Option<AnalysisRun>,
    /// The run `status.canary.currentBackgroundAnalysisRunStatus` names (or made current now).
    pub background: Option<AnalysisRun>,
    /// Owned runs the status does not name.
    pub others: Vec<AnalysisRun>,
    /// Runs this plan terminates or deletes already (no duplicate writes).
    handled: BTreeSet<(bool, String)>,
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
        let mut state = RunState::default();
        for run in runs {
            let name = Some(name_of(run));
            if name == step_name && state.step.is_none() {
                state.step = Some(run.clone());
            } else if name == background_name && state.background.is_none() {
                state.background = Some(run.clone());
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

fn phase_of(run: &AnalysisRun) -> Option<AnalysisPhase> {
    run.status.as_ref().and_then(|status| status.phase.clone())
}

fn message_of(run: &AnalysisRun) -> String {
    run.status
        .as_ref()
        .map(|status| status.message.clone())
        .unwrap_or_default()
}

fn name_of(run: &AnalysisRun) -> String {
    run.metadata.name.clone().unwrap_or_default()
}

/// Upstream `reconcileAnalysisRuns` for a canary. An error stops the reconcile (the run could
/// not be built); upstream retries with backoff, so does the executor.
pub(crate) fn reconcile(ctx: &mut Ctx<'_>) -> Result<(), PlanError> {
    let rollback_to_scale_down_delay = ctx.new_rs().is_some_and(|rs| {
        super::observed::rs_scale_down_deadline(rs)
            != super::replicas::other::ScaleDownDeadline::Absent
    });
    if ctx.aborted()
        || ctx.prev.promote_full
        || rollback_to_scale_down_delay
        || ctx.prev.stable_rs.is_empty()
        || ctx.rollback_within_window()
    {
        let all: Vec<AnalysisRun> = ctx
            .runs
            .step
            .iter()
            .chain(ctx.runs.background.iter())
            .chain(ctx.runs.others.iter())
            .cloned()
            .collect();
        for run in &all {
            terminate(ctx, run);
        }
        set_current(ctx);
        return Ok(());
    }
    let step = reconcile_step(ctx)?;
    let background = reconcile_background(ctx)?;
    let previous_step = ctx.prev.canary.current_step_analysis_run_status.clone();
    let previous_background = ctx
        .prev
        .canary
        .current_background_analysis_run_status
        .clone();
    ctx.runs.step = step;
    ctx.runs.background = background;
    set_current(ctx);
    // A run just adopted under its name must not be terminated as an "other" one.
    let current: BTreeSet<String> = ctx
        .runs
        .step
        .iter()
        .chain(ctx.runs.background.iter())
        .map(name_of)
        .collect();
    let others: Vec<AnalysisRun> = ctx
        .runs
        .others
        .iter()
        .filter(|run| !current.contains(&name_of(run)))
        .cloned()
        .collect();
    for run in &others {
        terminate(ctx, run);
    }
    delete_beyond_history(ctx, &others);
    let step_run = ctx.runs.step.clone();
    let background_run = ctx.runs.background.clone();
    emit_phase_change(
        ctx,
        previous_step.as_ref(),
        step_run.as_ref(),
        rollout_type::STEP,
    );
    emit_phase_change(
        ctx,
        previous_background.as_ref(),
        background_run.as_ref(),
        rollout_type::BACKGROUND,
    );
    Ok(())
}

/// Upstream `reconcileStepBasedAnalysisRun`.
fn reconcile_step(ctx: &mut Ctx<'_>) -> Result<Option<AnalysisRun>, PlanError> {
    let mut current = ctx.runs.step.clone();
    if !ctx.prev.pause_conditions.is_empty() || ctx.prev.abort {
        return Ok(current);
    }
    let (step, index) = current_step(ctx.steps(), &ctx.prev);
    let (Some(analysis), Some(index)) = (step.and_then(|step| step.analysis.as_ref()), index)
    else {
        if let Some(run) = current.as_ref() {
            terminate(ctx, run);
        }
        return Ok(None);
    };
    // A run of another step (the user skipped or promoted past it) is not this step's run.
    if let Some(run) = current.as_ref()
        && step_index_label(run).is_some_and(|label| label != index)
    {
        terminate(ctx, run);
        ctx.runs.others.push(run.clone());
        current = None;
    }
    if needs_new_run(current.as_ref(), &ctx.prev) {
        let labels = type_labels(&ctx.current_pod_hash(), rollout_type::STEP, Some(index));
        return create_run(ctx, analysis, Some(index.to_string()), labels).map(Some);
    }
    if let Some(run) = current.as_ref() {
        react(ctx, run, "Step-based");
    }
    Ok(current)
}

/// Upstream `reconcileBackgroundAnalysisRun`.
fn reconcile_background(ctx: &mut Ctx<'_>) -> Result<Option<AnalysisRun>, PlanError> {
    let current = ctx.runs.background.clone();
    let Some(analysis) = ctx
        .canary
        .analysis
        .as_ref()
        .map(|background| &background.analysis)
    else {
        if let Some(run) = current.as_ref() {
            terminate(ctx, run);
        }
        return Ok(None);
    };
    if ctx.fully_promoted()
        || ctx.prev.stable_rs.is_empty()
        || ctx.prev.current_pod_hash.is_empty()
        || before_starting_step(ctx.canary, &ctx.prev)
    {
        // Promoted: the run has done its job (upstream terminates it one reconcile later).
        if let Some(run) = current.as_ref() {
            terminate(ctx, run);
            ctx.runs.others.push(run.clone());
        }
        return Ok(None);
    }
    if ctx
        .prev
        .pause_conditions
        .iter()
        .any(|c| c.reason == PauseReason::InconclusiveAnalysisRun)
    {
        return Ok(current);
    }
    if needs_new_run(current.as_ref(), &ctx.prev) {
        let labels = type_labels(&ctx.current_pod_hash(), rollout_type::BACKGROUND, None);
        return create_run(ctx, analysis, None, labels).map(Some);
    }
    if let Some(run) = current.as_ref() {
        react(ctx, run, "Background");
    }
    Ok(current)
}

/// Upstream `needsNewAnalysisRun`: none yet; or the user resumed an Inconclusive pause; or the
/// user retried an abort (`abortedAt` still set).
fn needs_new_run(current: Option<&AnalysisRun>, status: &RolloutStatus) -> bool {
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
fn react(ctx: &mut Ctx<'_>, run: &AnalysisRun, kind: &str) {
    match phase_of(run) {
        Some(AnalysisPhase::Inconclusive) => {
            ctx.pause.add_pause(PauseReason::InconclusiveAnalysisRun)
        }
        Some(AnalysisPhase::Failed | AnalysisPhase::Error) => {
            let mut text = format!("{kind} analysis phase error/failed");
            let detail = message_of(run);
            if !detail.is_empty() {
                text = format!("{text}: {detail}");
            }
            ctx.pause.add_abort(text);
        }
        _ => {}
    }
}

/// Builds the run for `analysis` and either adopts an equal, unfinished run of ours already
/// under one of its candidate names (a reconcile that crashed after creating it) or creates it
/// under the first free name.
fn create_run(
    ctx: &mut Ctx<'_>,
    analysis: &RolloutAnalysis,
    infix: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
) -> Result<AnalysisRun, PlanError> {
    let stable_hash = ctx
        .stable_rs()
        .map(|rs| rs_hash(rs).to_string())
        .unwrap_or_default();
    let latest_hash = ctx.current_pod_hash();
    let sources = ArgSources {
        rollout: ctx.ro,
        stable_hash: &stable_hash,
        latest_hash: &latest_hash,
    };
    let args = build_args(analysis.args.as_deref().unwrap_or(&[]), &sources)
        .map_err(PlanError::Analysis)?;
    if ctx.new_rs().is_none_or(|rs| rs_hash(rs).is_empty()) {
        let name = ctx.new_rs().map(rs_name).unwrap_or("").to_string();
        return Err(PlanError::Analysis(format!(
            "Latest ReplicaSet '{name}' has no pod hash in the labels"
        )));
    }
    let (namespaced, cluster) = resolve_templates(
        analysis,
        &ctx.obs.analysis_templates,
        &ctx.obs.cluster_analysis_templates,
    )
    .map_err(PlanError::Analysis)?;
    let spec = run_spec(
        &namespaced,
        &cluster,
        &args,
        analysis.dry_run.as_deref().unwrap_or(&[]),
        analysis.measurement_retention.as_deref().unwrap_or(&[]),
    )
    .map_err(PlanError::Analysis)?;
    let revision = ctx.revision.map(|r| r.to_string()).unwrap_or_default();
    let base = run_base_name(ctx.name(), &latest_hash, &revision, infix.as_deref());
    let mut annotations =
        std::collections::BTreeMap::from([(annotation::REVISION.to_string(), revision)]);
    if let Some(extra) = analysis
        .analysis_run_metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
    {
        annotations.extend(extra.clone());
    }
    let uid = ctx.ro.metadata.uid.clone().unwrap_or_default();
    for n in 0..MAX_COLLISIONS {
        let name = collision_name(&base, n);
        let Some(existing) = ctx
            .obs
            .analysis_runs
            .iter()
            .find(|run| name_of(run) == name)
        else {
            let run = AnalysisRun {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: ctx.ro.metadata.namespace.clone(),
                    labels: Some(run_labels(labels, analysis, ctx.ro)),
                    annotations: Some(annotations),
                    owner_references: Some(vec![owner_reference(ctx.ro)]),
                    ..ObjectMeta::default()
                },
                spec,
                status: None,
            };
            ctx.plan
                .push(Write::CreateAnalysisRun(Box::new(run.clone())));
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
fn terminate(ctx: &mut Ctx<'_>, run: &AnalysisRun) {
    let finished = phase_of(run).is_some_and(|phase| phase.completed());
    let name = name_of(run);
    if run.spec.terminate == Some(true)
        || finished
        || !ctx.runs.handled.insert((false, name.clone()))
    {
        return;
    }
    ctx.plan.push(Write::TerminateAnalysisRun { name });
}

fn delete(ctx: &mut Ctx<'_>, run: &AnalysisRun) {
    let name = name_of(run);
    if run.metadata.deletion_timestamp.is_some() || !ctx.runs.handled.insert((true, name.clone())) {
        return;
    }
    ctx.plan.push(Write::DeleteAnalysisRun { name });
}

/// Deletes the other runs labelled with `hash` (their ReplicaSet is being deleted).
pub(crate) fn delete_runs_of_hash(ctx: &mut Ctx<'_>, hash: &str) {
    let doomed: Vec<AnalysisRun> = ctx
        .runs
        .others
        .iter()
        .filter(|run| {
            run.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(label::POD_TEMPLATE_HASH))
                .map(String::as_str)
                == Some(hash)
        })
        .cloned()
        .collect();
    for run in &doomed {
        delete(ctx, run);
    }
}

/// Upstream `FilterAnalysisRunsToDelete`: newest first, keep `successfulRunHistoryLimit`
/// Successful and `unsuccessfulRunHistoryLimit` Failed/Error/Inconclusive runs (5 each); runs
/// whose ReplicaSet no longer exists go too.
fn delete_beyond_history(ctx: &mut Ctx<'_>, others: &[AnalysisRun]) {
    let keep_successful = ctx.ro.spec.successful_run_history_limit();
    let keep_unsuccessful = ctx.ro.spec.unsuccessful_run_history_limit();
    let hashes: BTreeSet<&str> = ctx.rss.iter().map(rs_hash).collect();
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
        delete(ctx, run);
    }
}

/// Mirrors the current runs into `status.canary` (`{name, status, message}`).
fn set_current(ctx: &mut Ctx<'_>) {
    let mirror = |run: &AnalysisRun| RolloutAnalysisRunStatus {
        name: name_of(run),
        // A run not yet assessed has an empty phase, which upstream writes as "".
        status: phase_of(run).unwrap_or_else(|| AnalysisPhase::Other(String::new())),
        message: message_of(run),
    };
    ctx.new_status.canary.current_step_analysis_run_status = ctx.runs.step.as_ref().map(mirror);
    ctx.new_status.canary.current_background_analysis_run_status =
        ctx.runs.background.as_ref().map(mirror);
}

/// Upstream `emitAnalysisRunStatusChanges`: `AnalysisRun<Phase>` when the current run's phase
/// differs from what the status recorded for it.
fn emit_phase_change(
    ctx: &mut Ctx<'_>,
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
    ctx.plan.event(
        type_,
        &format!("AnalysisRun{}", phase.as_str()),
        format!(
            "{kind} Analysis Run '{}' Status New: '{}' Previous: '{before}'",
            name_of(run),
            phase.as_str()
        ),
    );
}
