//! What a failed write of an Experiment reconcile leaves in its status (upstream
//! `experiments/experiment.go`): a template whose ReplicaSet or Service could not be created,
//! scaled or deleted gets `status: Error` and upstream's message with the API's; an analysis
//! whose AnalysisRun could not be created gets `phase: Error`. The experiment's phase follows
//! from those on the next reconcile (an `Error` template or analysis makes it `Error`), which
//! then stops instead of retrying the write for ever. The executor goes on with the plan's
//! other writes and writes this status in place of the plan's.

use crate::api::consts::template_status as ts;
use crate::api::{AnalysisPhase, Experiment, ExperimentStatus, TemplateStatus};
use crate::rollout::analysis_run::collision_name;
use crate::rollout::{Event, EventType};

use super::Write;
use super::objects::{replica_set_name, service_name};
use super::templates::set_template_status;

/// Upstream tries `.1` … suffixes when a run name is taken; a run of those names is the
/// analysis's.
const PROBED_SUFFIXES: usize = 20;

fn template_of_replica_set<'a>(ex: &'a Experiment, rs: &str) -> Option<&'a str> {
    ex.spec
        .templates
        .iter()
        .find(|t| replica_set_name(ex, &t.name) == rs)
        .map(|t| t.name.as_str())
}

fn template_of_service<'a>(ex: &'a Experiment, svc: &str) -> Option<&'a str> {
    ex.spec
        .templates
        .iter()
        .find(|t| service_name(ex, t) == svc || replica_set_name(ex, &t.name) == svc)
        .map(|t| t.name.as_str())
}

fn analysis_of_run<'a>(ex: &'a Experiment, run: &str) -> Option<&'a str> {
    let ex_name = ex.metadata.name.as_deref().unwrap_or_default();
    ex.spec.analyses.iter().flatten().find_map(|a| {
        let base = format!("{ex_name}-{}", a.name);
        (0..PROBED_SUFFIXES)
            .any(|n| collision_name(&base, n) == run)
            .then_some(a.name.as_str())
    })
}

/// The template `name`'s status marked `Error` with `message`, and upstream's transition
/// event; no change and no event when it already completed (a completed status never changes).
fn template_error(status: &mut ExperimentStatus, name: &str, message: String) -> Option<Event> {
    let mut entry = status
        .template_statuses
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .unwrap_or_else(|| TemplateStatus {
            name: name.to_string(),
            ..TemplateStatus::default()
        });
    if super::templates::completed(&entry.status) {
        return None;
    }
    let previous = std::mem::replace(&mut entry.status, ts::ERROR.to_string());
    entry.message = message.clone();
    set_template_status(&mut status.template_statuses, entry);
    Some(Event {
        type_: EventType::Warning,
        reason: format!("Template{}", ts::ERROR),
        message: format!("Template '{name}' transitioned from {previous} -> Error: {message}"),
    })
}

/// The analysis `name`'s run status marked `Error` with `message`, and the transition event;
/// no change and no event when it already completed.
fn analysis_error(status: &mut ExperimentStatus, name: &str, message: String) -> Option<Event> {
    let entry = status.analysis_runs.iter_mut().find(|r| r.name == name)?;
    if entry.phase.completed() {
        return None;
    }
    let previous = std::mem::replace(&mut entry.phase, AnalysisPhase::Error);
    entry.message = message.clone();
    Some(Event {
        type_: EventType::Warning,
        reason: format!("AnalysisRun{}", AnalysisPhase::Error),
        message: format!("AnalysisRun '{name}' transitioned from {previous} -> Error: {message}"),
    })
}

/// The status to write after `failed` (a write of a plan for `ex`) failed with the API's
/// `error` text: `status` (what the plan meant to write) with the template or analysis in
/// `Error`, and the transition event when it was not in `Error` yet. `None` for a write that
/// is only retried (status patches, annotations, terminations, events) or that names no
/// template or analysis of `ex`.
pub fn after_failed_write(
    ex: &Experiment,
    status: &ExperimentStatus,
    failed: &Write,
    error: &str,
) -> Option<(ExperimentStatus, Option<Event>)> {
    let mut status = status.clone();
    let event = match failed {
        Write::CreateReplicaSet(rs) => {
            let name = rs.metadata.name.as_deref().unwrap_or_default();
            let template = template_of_replica_set(ex, name)?;
            template_error(
                &mut status,
                template,
                format!("Failed to create ReplicaSet for template '{template}': {error}"),
            )
        }
        Write::ScaleReplicaSet { name, replicas } => {
            let template = template_of_replica_set(ex, name)?;
            template_error(
                &mut status,
                template,
                format!(
                    "Unable to scale ReplicaSet for template '{template}' to desired replica count '{replicas}': {error}"
                ),
            )
        }
        Write::CreateService(svc) => {
            let name = svc.metadata.name.as_deref().unwrap_or_default();
            let template = template_of_service(ex, name)?;
            template_error(
                &mut status,
                template,
                format!("Failed to create Service {name} for template '{template}': {error}"),
            )
        }
        Write::DeleteService { name } => {
            let template = template_of_service(ex, name)?;
            template_error(
                &mut status,
                template,
                format!("Failed to delete Service for template '{template}': {error}"),
            )
        }
        Write::CreateAnalysisRun(run) => {
            let name = run.metadata.name.as_deref().unwrap_or_default();
            let analysis = analysis_of_run(ex, name)?;
            // The run was never created: the status must not name it.
            if let Some(entry) = status.analysis_runs.iter_mut().find(|r| r.name == analysis) {
                entry.analysis_run.clear();
            }
            analysis_error(
                &mut status,
                analysis,
                format!("Failed to create AnalysisRun for analysis '{analysis}': {error}"),
            )
        }
        _ => return None,
    };
    Some((status, event))
}
