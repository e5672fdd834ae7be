//! One analysis of an Experiment reconciled to its AnalysisRun (upstream
//! `reconcileAnalysisRun`), and its `analysisRuns[]` entry: the template is only verified until
//! the experiment is available; then the run `<experiment>-<analysis>` is created (`.1`, `.2`
//! ... after a collision with a run that is not ours), followed phase by phase, and terminated
//! when the experiment terminates.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::objects::owner_reference;
use super::templates::rfc3339;
use super::{Work, Write};
use crate::analysis::templates::{TemplateKey, TemplateNotFound};
use crate::api::common::AnalysisTemplateRef;
use crate::api::consts::label;
use crate::api::duration::DurationError;
use crate::api::run_spec::ArgsError;
use crate::api::{
    AnalysisPhase, AnalysisRun, Argument, Experiment, ExperimentAnalysisRunStatus,
    ExperimentAnalysisTemplateRef, RolloutAnalysis,
};
use crate::rollout::analysis_run::{
    collision_name, resolve_templates, run_spec, semantically_equal,
};
use crate::rollout::observed::time_to_chrono;
use crate::rollout::runs::{message_of, name_of, phase_of};
use crate::rollout::{Event, EventType};

/// How many `.N` names are tried before giving up on creating a run.
const MAX_COLLISIONS: usize = 100;

/// The empty phase upstream records for an analysis whose run does not exist yet.
pub fn no_phase() -> AnalysisPhase {
    AnalysisPhase::Other(String::new())
}

fn is_cluster(analysis: &ExperimentAnalysisTemplateRef) -> bool {
    analysis.cluster_scope == Some(true)
}

/// Reconciles `analysis`, updating `w.status.analysisRuns`.
pub(crate) fn reconcile(w: &mut Work<'_>, analysis: &ExperimentAnalysisTemplateRef) {
    let ex = &w.obs.experiment;
    let observed = ex.status.clone().unwrap_or_default();
    let previous = observed
        .analysis_runs
        .iter()
        .find(|run| run.name == analysis.name)
        .cloned()
        .unwrap_or_else(|| ExperimentAnalysisRunStatus {
            name: analysis.name.clone(),
            phase: no_phase(),
            ..ExperimentAnalysisRunStatus::default()
        });
    let mut next = previous.clone();
    decide(w, analysis, &previous, &mut next);

    if previous.phase != next.phase && next.phase != no_phase() {
        let mut message = format!(
            "AnalysisRun '{}' transitioned from {} -> {}",
            analysis.name, previous.phase, next.phase
        );
        if !next.message.is_empty() {
            message.push_str(": ");
            message.push_str(&next.message);
        }
        let type_ = match next.phase {
            AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive => {
                EventType::Warning
            }
            _ => EventType::Normal,
        };
        let reason = format!("AnalysisRun{}", next.phase);
        w.plan.event(type_, reason.clone(), message.clone());
        if let Some(rollout) = rollout_owner(ex) {
            // Upstream records these on the Rollout as warnings, whatever the phase.
            w.plan.writes.push(Write::RolloutEvent {
                rollout,
                event: Event {
                    type_: EventType::Warning,
                    reason,
                    message,
                },
            });
        }
    }
    match w
        .status
        .analysis_runs
        .iter_mut()
        .find(|run| run.name == next.name)
    {
        Some(slot) => *slot = next,
        None => w.status.analysis_runs.push(next),
    }
}

/// The name of the Rollout owning the experiment, if one does.
pub fn rollout_owner(ex: &Experiment) -> Option<String> {
    ex.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.kind == crate::api::consts::kind::ROLLOUT)
        .map(|owner| owner.name.clone())
}

fn decide(
    w: &mut Work<'_>,
    analysis: &ExperimentAnalysisTemplateRef,
    previous: &ExperimentAnalysisRunStatus,
    next: &mut ExperimentAnalysisRunStatus,
) {
    let ex = &w.obs.experiment;
    let available = ex
        .status
        .as_ref()
        .and_then(|status| status.available_at.as_ref())
        .is_some();
    if !available {
        // Runs start once every template is available; until then the template must exist.
        if let Err(error) = verify_template(w, analysis) {
            let kind = if is_cluster(analysis) {
                "ClusterAnalysisTemplate"
            } else {
                "AnalysisTemplate"
            };
            next.phase = AnalysisPhase::Error;
            next.message = format!(
                "{kind} verification failed for analysis '{}': {error}",
                analysis.name
            );
        }
        return;
    }
    if previous.analysis_run.is_empty() {
        if w.terminating {
            return;
        }
        match create_run(w, analysis) {
            Ok(name) => {
                next.phase = AnalysisPhase::Pending;
                next.analysis_run = name;
            }
            Err(error) => {
                next.phase = AnalysisPhase::Error;
                next.message = format!(
                    "Failed to create AnalysisRun for analysis '{}': {error}",
                    analysis.name
                );
            }
        }
        return;
    }
    if previous.phase.completed() {
        return;
    }
    let Some(run) = w
        .obs
        .analysis_runs
        .iter()
        .find(|run| name_of(run) == previous.analysis_run)
    else {
        next.phase = AnalysisPhase::Error;
        next.message = format!(
            "analysisruns.argoproj.io \"{}\" not found",
            previous.analysis_run
        );
        return;
    };
    if w.terminating {
        let finished = phase_of(run).is_some_and(|phase| phase.completed());
        if !finished && run.spec.terminate != Some(true) {
            w.plan.event(
                EventType::Normal,
                "AnalysisRunTerminating",
                format!("Terminating {} ({})", analysis.name, previous.analysis_run),
            );
            w.plan.writes.push(Write::TerminateAnalysisRun {
                name: previous.analysis_run.clone(),
            });
        }
        return;
    }
    next.phase = phase_of(run).unwrap_or_else(no_phase);
    next.message = message_of(run);
}

fn as_rollout_analysis(analysis: &ExperimentAnalysisTemplateRef) -> RolloutAnalysis {
    RolloutAnalysis {
        templates: Some(vec![AnalysisTemplateRef {
            template_name: Some(analysis.template_name.clone()),
            cluster_scope: analysis.cluster_scope,
        }]),
        ..RolloutAnalysis::default()
    }
}

/// Why an Experiment's AnalysisRun could not be built; the texts are upstream's (the template
/// status message carries them).
#[derive(Debug, thiserror::Error)]
pub enum RunBuildError {
    /// A referenced (Cluster)AnalysisTemplate does not exist.
    #[error(transparent)]
    TemplateNotFound(#[from] TemplateNotFound),
    /// An argument names a `{{...}}` tag the Experiment cannot fill.
    #[error("failed to resolve {{{{{0}}}}}")]
    Unresolved(String),
    /// `spec.duration` is not a duration.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// The templates and arguments do not combine into a run.
    #[error(transparent)]
    Args(#[from] ArgsError),
    /// Every candidate name is taken by another run.
    #[error("too many AnalysisRun name collisions for '{0}'")]
    Collisions(String),
}

/// Upstream only checks that the named template itself exists before the run is due.
fn verify_template(
    w: &Work<'_>,
    analysis: &ExperimentAnalysisTemplateRef,
) -> Result<(), RunBuildError> {
    let named = |name: Option<&String>| name == Some(&analysis.template_name);
    let found = if is_cluster(analysis) {
        w.obs
            .cluster_analysis_templates
            .iter()
            .any(|t| named(t.metadata.name.as_ref()))
    } else {
        w.obs
            .analysis_templates
            .iter()
            .any(|t| named(t.metadata.name.as_ref()))
    };
    if found {
        return Ok(());
    }
    Err(RunBuildError::TemplateNotFound(TemplateNotFound(
        TemplateKey {
            name: analysis.template_name.clone(),
            cluster: is_cluster(analysis),
        },
    )))
}

/// Upstream `ResolveExperimentArgsValue`: `{{templates.<name>.podTemplateHash}}`,
/// `{{templates.<name>.replicaset.name}}`, `{{experiment.availableAt}}` and
/// `{{experiment.finishedAt}}` in argument values; any other `{{...}}` is an error. A
/// `valueFrom` is dropped, as upstream does.
pub fn resolve_args(
    args: &[Argument],
    ex: &Experiment,
    replica_sets: &BTreeMap<String, k8s_openapi::api::apps::v1::ReplicaSet>,
) -> Result<Vec<Argument>, RunBuildError> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    if let Some(at) = ex.status.as_ref().and_then(|s| s.available_at.as_ref()) {
        let at = time_to_chrono(at);
        values.insert("experiment.availableAt".into(), rfc3339(at));
        if let Some(duration) = ex.spec.duration.as_ref().filter(|d| !d.is_empty()) {
            let duration = duration.to_duration()?;
            let ends = at + chrono::Duration::from_std(duration).unwrap_or_default();
            values.insert("experiment.finishedAt".into(), rfc3339(ends));
        }
    }
    for template in &ex.spec.templates {
        if let Some(rs) = replica_sets.get(&template.name) {
            let hash = rs
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(label::POD_TEMPLATE_HASH))
                .cloned()
                .unwrap_or_default();
            values.insert(format!("templates.{}.podTemplateHash", template.name), hash);
            values.insert(
                format!("templates.{}.replicaset.name", template.name),
                rs.metadata.name.clone().unwrap_or_default(),
            );
        }
    }
    args.iter()
        .map(|arg| {
            let value = match arg.value.as_deref() {
                Some(text) => Some(substitute(text, &values)?),
                None => None,
            };
            Ok(Argument {
                name: arg.name.clone(),
                value,
                value_from: None,
            })
        })
        .collect()
}

/// Replaces each `{{tag}}` (trimmed) with its value; the first unknown tag is an error.
fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, RunBuildError> {
    let mut out = String::new();
    let mut rest = text;
    let mut unresolved = None;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let tag = &rest[start + 2..start + 2 + len];
        match values.get(tag.trim()) {
            Some(value) => out.push_str(value),
            None => {
                unresolved.get_or_insert_with(|| RunBuildError::Unresolved(tag.to_string()));
            }
        }
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    match unresolved {
        Some(error) => Err(error),
        None => Ok(out),
    }
}

/// Builds the run of `analysis` (upstream `newAnalysisRun` + `CreateWithCollisionCounter`):
/// an unfinished equal run of ours is adopted, any other name holder skipped.
fn create_run(
    w: &mut Work<'_>,
    analysis: &ExperimentAnalysisTemplateRef,
) -> Result<String, RunBuildError> {
    let ex = &w.obs.experiment;
    let args = resolve_args(analysis.args.as_deref().unwrap_or(&[]), ex, &w.replica_sets)?;
    let (namespaced, cluster) = resolve_templates(
        &as_rollout_analysis(analysis),
        &w.obs.analysis_templates,
        &w.obs.cluster_analysis_templates,
    )?;
    let spec = run_spec(
        &namespaced,
        &cluster,
        &args,
        ex.spec.dry_run.as_deref().unwrap_or(&[]),
        ex.spec.measurement_retention.as_deref().unwrap_or(&[]),
    )?;
    let mut labels = BTreeMap::new();
    if let Some(id) = ex
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(label::CONTROLLER_INSTANCE_ID))
    {
        labels.insert(label::CONTROLLER_INSTANCE_ID.to_string(), id.clone());
    }
    let metadata = ex.spec.analysis_run_metadata.as_ref();
    labels.extend(metadata.and_then(|m| m.labels.clone()).unwrap_or_default());
    let annotations = metadata
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    let base = format!(
        "{}-{}",
        ex.metadata.name.as_deref().unwrap_or_default(),
        analysis.name
    );
    let uid = ex.metadata.uid.clone().unwrap_or_default();
    for n in 0..MAX_COLLISIONS {
        let name = collision_name(&base, n);
        let Some(existing) = w.obs.analysis_runs.iter().find(|run| name_of(run) == name) else {
            let run = AnalysisRun {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: ex.metadata.namespace.clone(),
                    labels: (!labels.is_empty()).then_some(labels),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    owner_references: Some(vec![owner_reference(ex)]),
                    ..ObjectMeta::default()
                },
                spec,
                status: None,
            };
            w.plan.writes.push(Write::CreateAnalysisRun(Box::new(run)));
            return Ok(name);
        };
        let ours = existing
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|owner| owner.controller == Some(true) && owner.uid == uid);
        let unfinished = phase_of(existing).is_none_or(|phase| !phase.completed());
        if ours && unfinished && semantically_equal(&existing.spec, &spec) {
            return Ok(name);
        }
    }
    Err(RunBuildError::Collisions(base))
}
