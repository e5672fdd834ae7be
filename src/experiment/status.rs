//! An Experiment's phase, message, `availableAt` and conditions (upstream
//! `calculateStatus`, `calculateExperimentConditions`, `utils/experiment`), the spec checks
//! behind `InvalidSpec`, and when to look again.
//!
//! The phase is the worse of the templates' and the analyses': templates still coming up keep
//! it `Pending`, running templates make it `Running`; once the templates completed (the
//! duration passed, or the experiment terminated) the analyses decide; a failed, errored or
//! inconclusive analysis ends it early, and so does every `requiredForCompletion` analysis
//! succeeding.

use chrono::{DateTime, Utc};

use super::Work;
use super::templates::completed;
use crate::api::consts::{condition_status, condition_type, reason, template_status as ts};
use crate::api::{
    AnalysisPhase, Experiment, ExperimentStatus, RolloutCondition, TemplateSpec, TemplateStatus,
};
use crate::rollout::observed::{chrono_to_time, time_to_chrono};

/// `spec.progressDeadlineSeconds` (default 600).
pub fn progress_deadline_seconds(ex: &Experiment) -> i32 {
    ex.spec.progress_deadline_seconds.unwrap_or(600)
}

/// `spec.scaleDownDelaySeconds` (default 30).
pub fn scale_down_delay_seconds(ex: &Experiment) -> i32 {
    ex.spec.scale_down_delay_seconds.unwrap_or(30)
}

/// The entry of `templateStatuses[]` for `name`.
pub fn template_status(status: &ExperimentStatus, name: &str) -> Option<TemplateStatus> {
    status
        .template_statuses
        .iter()
        .find(|s| s.name == name)
        .cloned()
}

fn phase_completed(status: &ExperimentStatus) -> bool {
    status.phase.as_ref().is_some_and(AnalysisPhase::completed)
}

fn analysis_phase<'a>(status: &'a ExperimentStatus, name: &str) -> Option<&'a AnalysisPhase> {
    status
        .analysis_runs
        .iter()
        .find(|run| run.name == name)
        .map(|run| &run.phase)
}

fn has_required(ex: &Experiment) -> bool {
    ex.spec
        .analyses
        .iter()
        .flatten()
        .any(|a| a.required_for_completion == Some(true))
}

/// Upstream `RequiredAnalysisRunsSuccessful`: there are required analyses and all succeeded.
pub fn required_successful(ex: &Experiment, status: &ExperimentStatus) -> bool {
    let required: Vec<_> = ex
        .spec
        .analyses
        .iter()
        .flatten()
        .filter(|a| a.required_for_completion == Some(true))
        .collect();
    !required.is_empty()
        && required
            .iter()
            .all(|a| analysis_phase(status, &a.name) == Some(&AnalysisPhase::Successful))
}

/// Upstream `IsTerminating`: asked to, finished, a template failed, an analysis failed,
/// errored or was inconclusive, or every required analysis succeeded.
pub fn is_terminating(ex: &Experiment, status: &ExperimentStatus) -> bool {
    ex.spec.terminate == Some(true)
        || phase_completed(status)
        || status
            .template_statuses
            .iter()
            .any(|t| t.status == ts::FAILED || t.status == ts::ERROR)
        || status.analysis_runs.iter().any(|run| {
            matches!(
                run.phase,
                AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
            )
        })
        || required_successful(ex, status)
}

/// Upstream `PassedDurations`: whether `availableAt + duration` is behind `now`.
pub fn passed_duration(ex: &Experiment, status: &ExperimentStatus, now: DateTime<Utc>) -> bool {
    ends_at(ex, status).is_some_and(|end| now > end)
}

/// `availableAt + duration`, when both are known.
pub fn ends_at(ex: &Experiment, status: &ExperimentStatus) -> Option<DateTime<Utc>> {
    let duration = ex.spec.duration.as_ref().filter(|d| !d.is_empty())?;
    let duration = duration.to_duration().ok()?;
    let at = time_to_chrono(status.available_at.as_ref()?);
    Some(at + chrono::Duration::from_std(duration).ok()?)
}

/// Upstream `CalculateTemplateReplicasCount`: zero once the experiment finishes or terminates,
/// or the template completed; the template's replicas (default 1) otherwise.
pub fn desired_replicas(
    ex: &Experiment,
    status: &ExperimentStatus,
    template: &TemplateSpec,
) -> i32 {
    if is_terminating(ex, status) {
        return 0;
    }
    if template_status(status, &template.name).is_some_and(|t| completed(&t.status)) {
        return 0;
    }
    template.replicas.unwrap_or(1)
}

/// Template statuses best to worst (upstream `templateStatusOrder`).
fn template_rank(status: &str) -> usize {
    [
        ts::SUCCESSFUL,
        ts::RUNNING,
        ts::PROGRESSING,
        ts::ERROR,
        ts::FAILED,
    ]
    .iter()
    .position(|s| *s == status)
    .unwrap_or(0)
}

/// Analysis phases best to worst (upstream `analysisStatusOrder`); unknown ones rank best.
pub fn analysis_rank(phase: &AnalysisPhase) -> usize {
    use AnalysisPhase::*;
    match phase {
        Successful => 0,
        Running => 1,
        Pending => 2,
        Inconclusive => 3,
        Error => 4,
        Failed => 5,
        Other(_) => 0,
    }
}

/// The worst template status as an experiment phase, with its message.
fn assess_templates(ex: &Experiment, status: &ExperimentStatus) -> (AnalysisPhase, String) {
    let mut worst = ts::SUCCESSFUL.to_string();
    let mut message = String::new();
    for template in &ex.spec.templates {
        match template_status(status, &template.name) {
            None => {
                if template_rank(ts::PROGRESSING) > template_rank(&worst) {
                    worst = ts::PROGRESSING.to_string();
                }
            }
            Some(t) => {
                if template_rank(&t.status) > template_rank(&worst) {
                    worst = t.status.clone();
                    message = t.message.clone();
                }
            }
        }
    }
    let phase = match worst.as_str() {
        ts::PROGRESSING => AnalysisPhase::Pending,
        ts::FAILED => AnalysisPhase::Failed,
        ts::ERROR => AnalysisPhase::Error,
        ts::SUCCESSFUL => AnalysisPhase::Successful,
        _ => AnalysisPhase::Running,
    };
    (phase, message)
}

/// The worst analysis phase (Successful without analyses), with its message.
fn assess_analyses(ex: &Experiment, status: &ExperimentStatus) -> (AnalysisPhase, String) {
    let mut worst = AnalysisPhase::Successful;
    let mut message = String::new();
    for analysis in ex.spec.analyses.iter().flatten() {
        let Some(run) = status
            .analysis_runs
            .iter()
            .find(|r| r.name == analysis.name)
        else {
            continue;
        };
        if analysis_rank(&run.phase) > analysis_rank(&worst) {
            worst = run.phase.clone();
            message = run.message.clone();
        }
    }
    if required_successful(ex, status)
        && analysis_rank(&AnalysisPhase::Running) > analysis_rank(&worst)
    {
        return (
            AnalysisPhase::Successful,
            "Required AnalysisRuns completed".to_string(),
        );
    }
    if worst == AnalysisPhase::Pending {
        // The experiment's phase reads Running while its runs are pending.
        worst = AnalysisPhase::Running;
    }
    (worst, message)
}

/// Upstream `calculateStatus` and `calculateExperimentConditions` on `w.status`.
pub(crate) fn calculate(w: &mut Work<'_>) {
    let ex = &w.obs.experiment;
    let now = w.now;
    let status = &mut w.status;
    match status.phase.clone() {
        None => status.phase = Some(AnalysisPhase::Pending),
        Some(AnalysisPhase::Pending | AnalysisPhase::Running) => {
            let (templates, templates_message) = assess_templates(ex, status);
            let (analyses, analyses_message) = assess_analyses(ex, status);
            if templates == AnalysisPhase::Running && status.available_at.is_none() {
                status.available_at = Some(chrono_to_time(now));
            }
            let (phase, message) = if templates.completed() {
                let analyses_decide = analyses.completed() || has_required(ex);
                if templates == AnalysisPhase::Successful && analyses_decide {
                    (analyses, analyses_message)
                } else {
                    (templates, templates_message)
                }
            } else if (analyses.completed() && analyses != AnalysisPhase::Successful)
                || required_successful(ex, status)
            {
                (analyses, analyses_message)
            } else {
                (templates, templates_message)
            };
            status.phase = Some(phase);
            status.message = message;
        }
        Some(_) => {}
    }
    conditions(ex, status, now);
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> RolloutCondition {
    RolloutCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_update_time: chrono_to_time(now),
        last_transition_time: chrono_to_time(now),
        reason: reason.to_string(),
        message,
    }
}

/// Upstream `SetExperimentCondition`: no change when status and reason are the same; the
/// transition time kept when only the reason changes.
fn set_condition(status: &mut ExperimentStatus, mut new: RolloutCondition) {
    if let Some(current) = status.conditions.iter().find(|c| c.type_ == new.type_) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time = current.last_transition_time.clone();
        }
    }
    status.conditions.retain(|c| c.type_ != new.type_);
    status.conditions.push(new);
}

fn progressed(old: &ExperimentStatus, new: &ExperimentStatus) -> bool {
    if old.template_statuses.len() < new.template_statuses.len() {
        return true;
    }
    old.template_statuses.iter().any(|o| {
        new.template_statuses.iter().any(|n| {
            n.name == o.name
                && (
                    n.replicas,
                    n.updated_replicas,
                    n.ready_replicas,
                    n.available_replicas,
                ) != (
                    o.replicas,
                    o.updated_replicas,
                    o.ready_replicas,
                    o.available_replicas,
                )
        })
    })
}

fn conditions(ex: &Experiment, status: &mut ExperimentStatus, now: DateTime<Utc>) {
    let old = ex.status.clone().unwrap_or_default();
    let name = ex.metadata.name.as_deref().unwrap_or_default();
    if old
        .conditions
        .iter()
        .any(|c| c.type_ == condition_type::INVALID_SPEC)
    {
        status
            .conditions
            .retain(|c| c.type_ != condition_type::INVALID_SPEC);
    }
    if status.phase == Some(AnalysisPhase::Successful) {
        set_condition(
            status,
            condition(
                condition_type::PROGRESSING,
                condition_status::FALSE,
                "ExperimentCompleted",
                format!("Experiment {name:?} has successfully ran and completed."),
                now,
            ),
        );
    } else if progressed(&old, status) {
        let mut new = condition(
            condition_type::PROGRESSING,
            condition_status::TRUE,
            reason::REPLICA_SET_UPDATED,
            format!("Experiment {name:?} is progressing."),
            now,
        );
        // Progress refreshes the update time but keeps a true condition's transition time.
        if let Some(current) = old
            .conditions
            .iter()
            .find(|c| c.type_ == condition_type::PROGRESSING)
        {
            if current.status == condition_status::TRUE {
                new.last_transition_time = current.last_transition_time.clone();
            }
            status
                .conditions
                .retain(|c| c.type_ != condition_type::PROGRESSING);
        }
        set_condition(status, new);
    } else if old.available_at.is_some() && !passed_duration(ex, &old, now) {
        set_condition(
            status,
            condition(
                condition_type::PROGRESSING,
                condition_status::TRUE,
                reason::NEW_REPLICA_SET_AVAILABLE,
                format!("Experiment {name:?} is running."),
                now,
            ),
        );
    }
}

/// Upstream `VerifyExperimentSpec`: the first problem of the templates, as the message of the
/// `InvalidSpec` condition.
pub fn verify_spec(ex: &Experiment) -> Option<String> {
    let name = ex.metadata.name.as_deref().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for (i, template) in ex.spec.templates.iter().enumerate() {
        let Some(selector) = template.selector.as_ref() else {
            return Some(format!(
                "Rollout has missing field '.Spec.Templates[{i}].Selector'"
            ));
        };
        let everything = selector.match_labels.is_none() && selector.match_expressions.is_none();
        if everything {
            return Some(format!(
                "This experiment is selecting all pods at index {i}. A non-empty selector is required."
            ));
        }
        if template.min_ready_seconds.unwrap_or(0) > progress_deadline_seconds(ex) {
            return Some(format!(
                "MinReadySeconds cannot be longer than ProgressDeadlineSeconds. Check template index {i}"
            ));
        }
        if template.name.is_empty() {
            return Some(format!(
                "Experiment {name} has empty template name at index {i}"
            ));
        }
        if !seen.insert(template.name.as_str()) {
            return Some(format!(
                "Experiment {name} has repeated template name '{}' in templates",
                template.name
            ));
        }
    }
    None
}

/// The status of an invalid experiment (only its `InvalidSpec` condition changes), or `None`
/// when the spec is valid.
pub fn invalid_spec_status(
    ex: &Experiment,
    observed: &ExperimentStatus,
    now: DateTime<Utc>,
) -> Option<ExperimentStatus> {
    let message = verify_spec(ex)?;
    let mut status = observed.clone();
    let previous = observed
        .conditions
        .iter()
        .find(|c| c.type_ == condition_type::INVALID_SPEC);
    let new = match previous {
        // The same problem again only refreshes the update time.
        Some(previous) if previous.message == message => {
            let mut same = previous.clone();
            same.last_update_time = chrono_to_time(now);
            same
        }
        _ => {
            status
                .conditions
                .retain(|c| c.type_ != condition_type::INVALID_SPEC);
            condition(
                condition_type::INVALID_SPEC,
                condition_status::TRUE,
                reason::INVALID_SPEC,
                message,
                now,
            )
        }
    };
    set_condition(&mut status, new);
    Some(status)
}

/// Upstream `calculateEnqueueDuration`: the earliest of `availableAt + duration` and each
/// unavailable template's progress deadline; nothing once terminating.
pub fn requeue_after(
    ex: &Experiment,
    status: &ExperimentStatus,
    now: DateTime<Utc>,
) -> Option<chrono::Duration> {
    if is_terminating(ex, status) {
        return None;
    }
    let mut next = ends_at(ex, status)
        .filter(|end| now <= *end)
        .map(|end| end - now);
    let deadline = chrono::Duration::seconds(i64::from(progress_deadline_seconds(ex)));
    for template in &ex.spec.templates {
        let Some(t) = template_status(status, &template.name) else {
            continue;
        };
        if t.status != ts::PROGRESSING && t.status != ts::RUNNING {
            continue;
        }
        let desired = desired_replicas(ex, status, template);
        if t.available_replicas != desired
            && let Some(at) = t.last_transition_time.as_ref()
        {
            let left = time_to_chrono(at) + deadline - now;
            next = Some(next.map_or(left, |known| known.min(left)));
        }
    }
    next
}
