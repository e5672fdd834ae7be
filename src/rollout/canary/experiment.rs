//! The Rollout side of the `experiment` step (upstream `rollout/experiment.go`): the Experiment
//! built from the step (`<rollout>-<hash>-<revision>-<step>`, templates from the stable or
//! canary ReplicaSet), created when the step starts, followed (Successful ⇒ the step completes,
//! Inconclusive ⇒ `InconclusiveExperiment` pause, Failed/Error ⇒ abort), terminated on abort,
//! full promotion or when the step is left, and deleted beyond the history limits; plus the
//! weighted destinations a Running experiment adds to the traffic split.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::analysis::Reaction;
use crate::api::consts::{annotation, label, spec_ref};
use crate::api::{
    AnalysisPhase, Experiment, ExperimentAnalysisTemplateRef, ExperimentSpec, PauseReason,
    RolloutExperimentStep, TemplateService, TemplateSpec, WeightDestination,
};
use crate::rollout::analysis_run::{ArgSources, build_args};
use crate::rollout::observed::{computed_pod_hash, creation_time, owner_reference, rs_hash};
use crate::rollout::plan::{EventType, Plan, PlanError, Write};
use crate::rollout::steps::current_step;
use crate::rollout::world::View;

/// How many `-N` names are tried before giving up on an Experiment name.
const MAX_COLLISIONS: usize = 100;

/// What the experiment stage decided.
#[derive(Debug, Default)]
pub(crate) struct Experimented {
    /// Creations, terminations, deletions and events.
    pub plan: Plan,
    /// `status.canary.currentExperiment` after this reconcile.
    pub current_name: String,
    /// The phase of the step's experiment (for the step's completion).
    pub phase: Option<AnalysisPhase>,
    /// The pause or abort its phase asks for.
    pub reactions: Vec<Reaction>,
}

fn name_of(ex: &Experiment) -> String {
    ex.metadata.name.clone().unwrap_or_default()
}

fn phase_of(ex: &Experiment) -> Option<AnalysisPhase> {
    ex.status.as_ref().and_then(|status| status.phase.clone())
}

fn finished(ex: &Experiment) -> bool {
    phase_of(ex).is_some_and(|phase| phase.completed())
}

/// The experiment `status.canary.currentExperiment` names, if observed.
pub(crate) fn current<'a>(v: &View<'a>) -> Option<&'a Experiment> {
    let name = &v.prev.canary.current_experiment;
    if name.is_empty() {
        return None;
    }
    v.obs.experiments.iter().find(|ex| &name_of(ex) == name)
}

/// The current step's experiment step, if the current step is one.
fn experiment_step<'a>(v: &View<'a>) -> Option<&'a RolloutExperimentStep> {
    current_step(v.steps(), v.prev).0?.experiment.as_ref()
}

/// Upstream `reconcileExperiments`.
pub(crate) fn decide(v: &View<'_>) -> Experimented {
    let mut out = Experimented::default();
    let current = current(v);
    let others: Vec<&Experiment> = v
        .obs
        .experiments
        .iter()
        .filter(|ex| current.is_none_or(|c| name_of(c) != name_of(ex)))
        .collect();
    if v.aborted() || v.prev.promote_full {
        for ex in current.into_iter().chain(others.iter().copied()) {
            terminate(&mut out.plan, ex);
        }
        return out;
    }
    let inconclusive_analysis = v
        .prev
        .pause_conditions
        .iter()
        .any(|c| c.reason == PauseReason::InconclusiveAnalysisRun);
    if inconclusive_analysis {
        return out;
    }
    let step = experiment_step(v);
    let mut current_ex = current.cloned();
    if let Some(step) = step {
        if current_ex.is_none() {
            // The baseline is the stable ReplicaSet: no experiment before there is one.
            let (Some(stable), Some(new)) = (v.stable_rs(), v.new_rs()) else {
                return out;
            };
            let built = match from_step(v, step, stable, new) {
                Ok(built) => built,
                Err(error) => {
                    out.plan.error = Some(PlanError::Analysis(error.to_string()));
                    return out;
                }
            };
            let Some(created) = create(v, &mut out.plan, built) else {
                out.plan.error = Some(PlanError::Analysis(
                    "too many Experiment name collisions".to_string(),
                ));
                return out;
            };
            current_ex = Some(created);
        }
        if let Some(ex) = current_ex.as_ref() {
            let phase = phase_of(ex);
            out.phase = phase.clone();
            match phase {
                Some(AnalysisPhase::Inconclusive) => out
                    .reactions
                    .push(Reaction::Pause(PauseReason::InconclusiveExperiment)),
                Some(AnalysisPhase::Error | AnalysisPhase::Failed) => {
                    let mut message = "Experiment analysis phase is error/failed".to_string();
                    let detail = ex
                        .status
                        .as_ref()
                        .map(|s| s.message.clone())
                        .unwrap_or_default();
                    if !detail.is_empty() {
                        message.push_str(": ");
                        message.push_str(&detail);
                    }
                    out.reactions.push(Reaction::Abort(message));
                }
                // A successful experiment is no longer current.
                Some(AnalysisPhase::Successful) => {}
                _ => out.current_name = name_of(ex),
            }
        }
    }
    let mut others: Vec<&Experiment> = others;
    if step.is_none()
        && let Some(ex) = current
    {
        others.push(ex);
    }
    for ex in &others {
        terminate(&mut out.plan, ex);
    }
    delete_beyond_history(v, &mut out.plan, &others);
    out
}

fn terminate(plan: &mut Plan, ex: &Experiment) {
    if ex.spec.terminate != Some(true) && !finished(ex) {
        plan.push(Write::TerminateExperiment { name: name_of(ex) });
    }
}

/// Upstream `createExperimentWithCollisionHandling`: an unfinished equal experiment of ours
/// under the name is adopted; any other holder moves us on to `-1`, `-2`, ...
fn create(v: &View<'_>, plan: &mut Plan, mut built: Experiment) -> Option<Experiment> {
    let base = name_of(&built);
    let uid = v.ro.metadata.uid.clone().unwrap_or_default();
    for n in 0..MAX_COLLISIONS {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let Some(existing) = v.obs.experiments.iter().find(|ex| name_of(ex) == name) else {
            built.metadata.name = Some(name.clone());
            plan.push(Write::CreateExperiment(Box::new(built.clone())));
            plan.event(
                EventType::Normal,
                "ExperimentCreated",
                format!("Created Experiment '{name}'"),
            );
            return Some(built);
        };
        let ours = existing
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|owner| owner.controller == Some(true) && owner.uid == uid);
        if ours && !finished(existing) && semantically_equal(&existing.spec, &built.spec) {
            return Some(existing.clone());
        }
    }
    None
}

/// Upstream `IsSemanticallyEqual`: the specs without `terminate`.
fn semantically_equal(left: &ExperimentSpec, right: &ExperimentSpec) -> bool {
    let mut left = left.clone();
    let mut right = right.clone();
    left.terminate = None;
    right.terminate = None;
    left == right
}

/// Why the step's Experiment could not be built; the texts are upstream's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    /// A template's `specRef` is neither `stable` nor `canary`.
    #[error("Invalid template step SpecRef: must be canary or stable")]
    SpecRef,
    /// An analysis argument's `fieldRef` does not resolve.
    #[error(transparent)]
    FieldRef(#[from] crate::api::field_ref::FieldRefError),
}

/// Upstream `GetExperimentFromTemplate`: the Experiment the step asks for.
pub(crate) fn from_step(
    v: &View<'_>,
    step: &RolloutExperimentStep,
    stable: &ReplicaSet,
    new: &ReplicaSet,
) -> Result<Experiment, StepError> {
    let ro = v.ro;
    let pod_hash = computed_pod_hash(ro);
    let index = v.prev.current_step_index.unwrap_or(0);
    let revision = v.revision.map(|r| r.to_string()).unwrap_or_default();
    let mut labels: BTreeMap<String, String> = ro.metadata.labels.clone().unwrap_or_default();
    labels.insert(label::POD_TEMPLATE_HASH.to_string(), pod_hash.clone());
    let rollout_name = ro.metadata.name.clone().unwrap_or_default();
    let mut templates = Vec::new();
    for t in &step.templates {
        let source = match t.spec_ref.as_str() {
            spec_ref::CANARY => new,
            spec_ref::STABLE => stable,
            _ => return Err(StepError::SpecRef),
        };
        let rs_spec = source.spec.clone().unwrap_or_default();
        let mut template = rs_spec.template.unwrap_or_default();
        let mut selector = t.selector.clone().unwrap_or(rs_spec.selector);
        if let Some(extra) = t.metadata.as_ref().and_then(|m| m.labels.as_ref()) {
            let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
            let template_labels = meta.labels.get_or_insert_with(BTreeMap::new);
            let match_labels = selector.match_labels.get_or_insert_with(BTreeMap::new);
            for (key, value) in extra {
                template_labels.insert(key.clone(), value.clone());
                match_labels.insert(key.clone(), value.clone());
            }
        }
        if let Some(extra) = t.metadata.as_ref().and_then(|m| m.annotations.as_ref()) {
            let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
            meta.annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(extra.clone());
        }
        let service = (t.weight.is_some() || t.service.is_some()).then(|| TemplateService {
            name: t
                .service
                .as_ref()
                .and_then(|s| s.name.clone())
                .filter(|name| !name.is_empty()),
        });
        templates.push(TemplateSpec {
            name: t.name.clone(),
            replicas: t.replicas,
            min_ready_seconds: rs_spec.min_ready_seconds,
            selector: Some(selector),
            template,
            service,
        });
    }
    let stable_hash = rs_hash(stable).to_string();
    let latest_hash = v.current_pod_hash();
    let sources = ArgSources {
        rollout: ro,
        stable_hash: &stable_hash,
        latest_hash: &latest_hash,
    };
    let mut analyses = Vec::new();
    for analysis in step.analyses.iter().flatten() {
        let args = build_args(analysis.args.as_deref().unwrap_or(&[]), &sources)?;
        analyses.push(ExperimentAnalysisTemplateRef {
            name: analysis.name.clone(),
            template_name: analysis.template_name.clone(),
            cluster_scope: analysis.cluster_scope,
            args: Some(args),
            required_for_completion: analysis.required_for_completion,
        });
    }
    Ok(Experiment {
        metadata: ObjectMeta {
            name: Some(format!("{rollout_name}-{pod_hash}-{revision}-{index}")),
            namespace: ro.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                annotation::REVISION.to_string(),
                revision,
            )])),
            owner_references: Some(vec![owner_reference(ro)]),
            ..ObjectMeta::default()
        },
        spec: ExperimentSpec {
            templates,
            duration: step.duration.clone(),
            progress_deadline_seconds: ro.spec.progress_deadline_seconds,
            terminate: None,
            analyses: (!analyses.is_empty()).then_some(analyses),
            scale_down_delay_seconds: step.scale_down_delay_seconds,
            dry_run: step.dry_run.clone(),
            measurement_retention: None,
            analysis_run_metadata: step.analysis_run_metadata.clone(),
        },
        status: None,
    })
}

/// Upstream `FilterExperimentsToDelete`: experiments of ReplicaSets that are gone, and those
/// beyond the successful / unsuccessful history limits (newest kept).
fn delete_beyond_history(v: &View<'_>, plan: &mut Plan, others: &[&Experiment]) {
    let keep_successful = v.ro.spec.successful_run_history_limit();
    let keep_unsuccessful = v.ro.spec.unsuccessful_run_history_limit();
    let hashes: BTreeSet<&str> = v
        .rss
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .map(rs_hash)
        .collect();
    let mut sorted: Vec<&Experiment> = others.to_vec();
    sorted.sort_by_key(|ex| {
        std::cmp::Reverse((
            creation_time(ex.metadata.creation_timestamp.as_ref()),
            name_of(ex),
        ))
    });
    let (mut successful, mut unsuccessful) = (0, 0);
    for ex in sorted {
        if ex.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let hash = ex
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(label::POD_TEMPLATE_HASH));
        let doomed = match (hash, phase_of(ex)) {
            (None, _) => true,
            (Some(hash), _) if !hashes.contains(hash.as_str()) => true,
            (_, Some(AnalysisPhase::Successful)) => {
                successful += 1;
                successful > keep_successful
            }
            (
                _,
                Some(AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive),
            ) => {
                unsuccessful += 1;
                unsuccessful > keep_unsuccessful
            }
            _ => false,
        };
        if doomed {
            plan.push(Write::DeleteExperiment { name: name_of(ex) });
        }
    }
}

/// Upstream `calculateWeightDestinationsFromExperiment`: while the step's experiment runs,
/// each template with a `weight` gets that share on its Service.
pub(crate) fn weight_destinations(v: &View<'_>) -> Vec<WeightDestination> {
    let (Some(step), Some(ex)) = (experiment_step(v), current(v)) else {
        return Vec::new();
    };
    if phase_of(ex) != Some(AnalysisPhase::Running) {
        return Vec::new();
    }
    let statuses = ex
        .status
        .as_ref()
        .map(|s| s.template_statuses.as_slice())
        .unwrap_or_default();
    statuses
        .iter()
        .filter_map(|status| {
            let weight = step
                .templates
                .iter()
                .find(|t| t.name == status.name)
                .and_then(|t| t.weight)?;
            Some(WeightDestination {
                weight,
                service_name: status.service_name.clone(),
                pod_template_hash: status.pod_template_hash.clone(),
            })
        })
        .collect()
}
