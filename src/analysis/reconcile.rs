//! One reconcile of an AnalysisRun as two pure steps around the measurements (spec §4.5):
//! [`prepare`] resolves arguments, validates and lists the due tasks; the executor measures;
//! [`apply`] records the measurements, assesses metrics and run, trims history and says when
//! to look again. The clock is the `now` parameter of each step.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{
    AnalysisPhase, AnalysisRun, AnalysisRunStatus, Measurement, Metric, MetricResult,
};

use super::args::{mask_secrets, resolve_metrics_without_secrets};
use super::measure::{index_by_name, record, trim_measurements};
use super::rules::{dry_run_metrics, retention_limits};
use super::run_phase::{assess_run, is_terminating};
use super::schedule::{MetricTask, metric_tasks, next_reconcile};
use crate::api::validate::analysis::validate_metrics;

/// The message set on a measurement that was in flight when the run terminated and that its
/// provider closed without a verdict of its own.
pub const METRIC_TERMINATED: &str = "Metric Terminated";

/// What to do with a run now.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// The run is complete: nothing to measure (only TTL garbage collection remains).
    Completed,
    /// The run cannot be measured; `step` marks it Error with upstream's message.
    Invalid(Step),
    /// Measure `plan.tasks`, then call [`apply`].
    Measure(Plan),
}

/// The resolved view of a run that [`apply`] needs back.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `spec.metrics` with arguments resolved (secret arguments as a placeholder).
    pub metrics: Vec<Metric>,
    /// Metrics in dry-run mode.
    pub dry_run: BTreeSet<String>,
    /// Measurement limits from `measurementRetention`.
    pub retention: BTreeMap<String, i32>,
    /// `spec.terminate`, or a non-dry-run metric already failed: in-flight measurements are
    /// terminated instead of resumed.
    pub terminating: bool,
    /// The measurements due now.
    pub tasks: Vec<MetricTask>,
}

/// What a provider returned for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The measurement task this outcome belongs to.
    pub task: MetricTask,
    /// The new or updated measurement.
    pub measurement: Measurement,
    /// Provider metadata for the metric result (`ResolvedPrometheusQuery`); used when the
    /// result is created.
    pub metadata: BTreeMap<String, String>,
}

/// An event to record on the run (reason and message as upstream's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisEvent {
    /// Event reason (`AnalysisRun<Phase>`, `Metric<Phase>`).
    pub reason: String,
    /// Event message.
    pub message: String,
    /// Warning for Failed/Error, Normal otherwise.
    pub warning: bool,
}

/// The result of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The new status (write it back only when it differs from the stored one).
    pub status: AnalysisRunStatus,
    /// The events to emit, in order.
    pub events: Vec<AnalysisEvent>,
    /// Metrics whose history was trimmed, with their limit: call the provider's
    /// `garbage_collect` for each.
    pub garbage_collect: Vec<(String, usize)>,
    /// When to reconcile again (`None`: only on a change of the object).
    pub next_reconcile: Option<Timestamp>,
}

fn is_warning(phase: &AnalysisPhase) -> bool {
    matches!(phase, AnalysisPhase::Failed | AnalysisPhase::Error)
}

fn run_completed_event(phase: &AnalysisPhase) -> AnalysisEvent {
    AnalysisEvent {
        reason: format!("AnalysisRun{phase}"),
        message: format!("Analysis Completed. Result: {phase}"),
        warning: is_warning(phase),
    }
}

/// Marks the run Error with `message` (an invalid spec, unresolvable arguments, an unreadable
/// secret), as upstream does before measuring anything.
pub fn errored(run: &AnalysisRun, message: String, now: Timestamp) -> Step {
    let mut status = run.status.clone().unwrap_or_default();
    status.phase = Some(AnalysisPhase::Error);
    status.message = message;
    if status.completed_at.is_none() {
        status.completed_at = Some(Time(now));
    }
    Step {
        status,
        events: vec![run_completed_event(&AnalysisPhase::Error)],
        garbage_collect: Vec::new(),
        next_reconcile: None,
    }
}

/// Step 1–3 of a reconcile: resolve arguments without secrets, validate the metrics and the
/// dryRun / measurementRetention rules, and list the due measurements.
pub fn prepare(run: &AnalysisRun, now: Timestamp) -> Prepared {
    let no_status = AnalysisRunStatus::default();
    let status = run.status.as_ref().unwrap_or(&no_status);
    if status.phase.as_ref().is_some_and(|p| p.completed()) {
        return Prepared::Completed;
    }
    let args = run.spec.args.as_deref().unwrap_or(&[]);
    let metrics = match resolve_metrics_without_secrets(&run.spec.metrics, args) {
        Ok(metrics) => metrics,
        Err(err) => {
            return Prepared::Invalid(errored(
                run,
                format!("Unable to resolve metric arguments: {err}"),
                now,
            ));
        }
    };
    if let Err(err) = validate_metrics(&metrics) {
        return Prepared::Invalid(errored(run, format!("Analysis spec invalid: {err}"), now));
    }
    let dry_run = match dry_run_metrics(run.spec.dry_run.as_deref().unwrap_or(&[]), &metrics) {
        Ok(names) => names,
        Err(err) => {
            return Prepared::Invalid(errored(run, format!("Analysis spec invalid: {err}"), now));
        }
    };
    let retention = match retention_limits(
        run.spec.measurement_retention.as_deref().unwrap_or(&[]),
        &metrics,
    ) {
        Ok(limits) => limits,
        Err(err) => {
            return Prepared::Invalid(errored(run, format!("Analysis spec invalid: {err}"), now));
        }
    };
    let terminate = run.spec.terminate.unwrap_or(false);
    let terminating = is_terminating(terminate, &status.metric_results);
    let tasks = metric_tasks(terminate, status, &metrics, now);
    Prepared::Measure(Plan {
        metrics,
        dry_run,
        retention,
        terminating,
        tasks,
    })
}

/// Steps 4–7: records `outcomes` (the executor's measurements for `plan.tasks`, in any
/// order), assesses every metric and the run, trims history and computes the next reconcile.
/// `secrets` are the secret argument values read for this reconcile, masked in every message.
pub fn apply(
    run: &AnalysisRun,
    plan: &Plan,
    outcomes: Vec<Outcome>,
    secrets: &[String],
    now: Timestamp,
) -> Step {
    let mut status = run.status.clone().unwrap_or_default();
    let mut index = index_by_name(&status.metric_results);
    for outcome in outcomes {
        let name = outcome.task.metric.clone();
        let position = index.get(&name).copied();
        let result = match position {
            Some(i) => &mut status.metric_results[i],
            None => {
                status.metric_results.push(MetricResult {
                    name: name.clone(),
                    phase: AnalysisPhase::Running,
                    dry_run: plan.dry_run.contains(&name),
                    metadata: outcome
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), mask_secrets(v, secrets)))
                        .collect(),
                    ..MetricResult::default()
                });
                let last = status.metric_results.len() - 1;
                index.insert(name.clone(), last);
                &mut status.metric_results[last]
            }
        };
        let mut measurement = outcome.measurement;
        if outcome.task.resumes_incomplete
            && plan.terminating
            && matches!(
                measurement.phase,
                AnalysisPhase::Successful | AnalysisPhase::Inconclusive
            )
        {
            measurement.message = METRIC_TERMINATED.to_string();
        }
        record(
            result,
            measurement,
            outcome.task.resumes_incomplete,
            now,
            secrets,
        );
    }

    let terminate = run.spec.terminate.unwrap_or(false);
    let previous = status.phase.clone();
    let assessment = assess_run(terminate, &mut status, &plan.metrics, &plan.dry_run, now);
    let mut events: Vec<AnalysisEvent> = assessment
        .transitions
        .iter()
        .filter(|t| t.to.completed())
        .map(|t| AnalysisEvent {
            reason: format!("Metric{}", t.to),
            message: format!("Metric '{}' Completed. Result: {}", t.metric, t.to),
            warning: is_warning(&t.to),
        })
        .collect();
    if previous.as_ref() != Some(&assessment.phase) {
        if assessment.phase.completed() {
            events.push(run_completed_event(&assessment.phase));
            if status.completed_at.is_none() {
                status.completed_at = Some(Time(now));
            }
        }
        status.phase = Some(assessment.phase);
        status.message = mask_secrets(&assessment.message, secrets);
    }
    let garbage_collect = trim_measurements(&mut status, &plan.retention);
    let next_reconcile = if status.phase.as_ref().is_some_and(|p| p.completed()) {
        None
    } else {
        next_reconcile(&status, &plan.metrics, now)
    };
    Step {
        status,
        events,
        garbage_collect,
        next_reconcile,
    }
}

/// When a completed run should be deleted (`spec.ttlStrategy`): `completedAt` plus
/// secondsAfterSuccess for Successful runs, secondsAfterFailure for Failed ones, else (and
/// when the specific one is unset) secondsAfterCompletion. `None` without a TTL.
pub fn ttl_deadline(run: &AnalysisRun) -> Option<Timestamp> {
    let ttl = run.spec.ttl_strategy.as_ref()?;
    let status = run.status.as_ref()?;
    let completed_at = status.completed_at.as_ref()?.0;
    let specific = match status.phase.as_ref()? {
        AnalysisPhase::Successful => ttl.seconds_after_success,
        AnalysisPhase::Failed => ttl.seconds_after_failure,
        _ => None,
    };
    let seconds = specific.or(ttl.seconds_after_completion)?;
    let seconds = u64::try_from(seconds).unwrap_or(0);
    Some(super::schedule::add(
        completed_at,
        std::time::Duration::from_secs(seconds),
    ))
}
