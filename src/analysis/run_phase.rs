//! The phase and message of a whole AnalysisRun from its metrics (spec §4.7, upstream
//! `assessRunStatus`, `IsTerminating`, `IsWorse`): fail-fast termination, dry-run metrics and
//! the run and dry-run summaries.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{AnalysisPhase, AnalysisRunStatus, Metric, MetricResult, RunSummary};

use super::measure::index_by_name;
use super::metric_phase::{assess_metric, exceeded_limit};

/// The run message when it was terminated and no metric explains the outcome.
pub const RUN_TERMINATED: &str = "Run Terminated";

/// Upstream's order of phases from best to worst.
const ORDER: [AnalysisPhase; 6] = [
    AnalysisPhase::Successful,
    AnalysisPhase::Running,
    AnalysisPhase::Pending,
    AnalysisPhase::Inconclusive,
    AnalysisPhase::Error,
    AnalysisPhase::Failed,
];

fn rank(phase: &AnalysisPhase) -> usize {
    ORDER.iter().position(|p| p == phase).unwrap_or(0)
}

/// Whether `new` is strictly worse than `current`.
pub fn is_worse(current: &AnalysisPhase, new: &AnalysisPhase) -> bool {
    rank(new) > rank(current)
}

/// The worse of two phases (`left` on a tie).
pub fn worst(left: &AnalysisPhase, right: &AnalysisPhase) -> AnalysisPhase {
    if is_worse(left, right) {
        right.clone()
    } else {
        left.clone()
    }
}

/// A run stops taking new measurements when it was told to (`spec.terminate`) or when any
/// metric not in dry-run mode already ended Failed, Error or Inconclusive (fail fast).
pub fn is_terminating(terminate: bool, results: &[MetricResult]) -> bool {
    terminate
        || results.iter().any(|r| {
            !r.dry_run
                && matches!(
                    r.phase,
                    AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
                )
        })
}

/// A metric whose phase changed during the assessment (the controller emits an event
/// `Metric<Phase>` for completed ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricTransition {
    /// The metric's name.
    pub metric: String,
    /// Its phase before this assessment.
    pub from: AnalysisPhase,
    /// Its phase now.
    pub to: AnalysisPhase,
}

/// The outcome of [`assess_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAssessment {
    /// The run's phase.
    pub phase: AnalysisPhase,
    /// The run's message.
    pub message: String,
    /// Metrics whose phase changed.
    pub transitions: Vec<MetricTransition>,
}

/// Re-assesses every metric result in `status` (phase, and message on a change), fills the run
/// and dry-run summaries and `startedAt` (with `now` when unset), and returns the run's phase
/// and message. `metrics` are the run's metrics with arguments resolved; `dry_run` names the
/// metrics in dry-run mode.
pub fn assess_run(
    terminate: bool,
    status: &mut AnalysisRunStatus,
    metrics: &[Metric],
    dry_run: &BTreeSet<String>,
    now: Timestamp,
) -> RunAssessment {
    let terminating = is_terminating(terminate, &status.metric_results);
    if status.started_at.is_none() {
        status.started_at = Some(Time(now));
    }
    let mut worst_phase: Option<AnalysisPhase> = None;
    let mut worst_message = if terminate {
        RUN_TERMINATED.to_string()
    } else {
        String::new()
    };
    let mut everything_completed = true;
    let mut summary = RunSummary::default();
    let mut dry_summary = RunSummary::default();
    let mut transitions = Vec::new();
    let index = index_by_name(&status.metric_results);

    for metric in metrics {
        let is_dry = dry_run.contains(&metric.name);
        if is_dry {
            dry_summary.count += 1;
        } else {
            summary.count += 1;
        }
        let Some(result) = index
            .get(&metric.name)
            .and_then(|&i| status.metric_results.get_mut(i))
        else {
            // Not started yet (an initial delay, or nothing measured so far).
            everything_completed = false;
            continue;
        };
        let phase = assess_metric(metric, result, terminating);
        if result.phase != phase {
            transitions.push(MetricTransition {
                metric: metric.name.clone(),
                from: result.phase.clone(),
                to: phase.clone(),
            });
            if let Some(last) = result.measurements.last() {
                result.message = last.message.clone();
            }
            result.phase = phase.clone();
        }
        if !phase.completed() {
            everything_completed = false;
            continue;
        }
        let limit = exceeded_limit(metric, result);
        let target = if is_dry {
            &mut dry_summary
        } else {
            &mut summary
        };
        // Upstream counts by the exceeded limit, and anything else as a success.
        match limit.as_ref().map(|(p, _)| p) {
            Some(AnalysisPhase::Error) => target.error += 1,
            Some(AnalysisPhase::Failed) => target.failed += 1,
            Some(AnalysisPhase::Inconclusive) => target.inconclusive += 1,
            _ => target.successful += 1,
        }
        if is_dry {
            // Dry-run verdicts never decide the run; they only explain themselves.
            if worst_phase.is_none() {
                worst_phase = Some(AnalysisPhase::Successful);
            }
            if let Some((_, why)) = &limit {
                result.message = format!("Metric assessed {phase} due to {why}");
            }
        } else if worst_phase.as_ref().is_none_or(|w| is_worse(w, &phase)) {
            worst_phase = Some(phase.clone());
            if let Some((_, why)) = &limit {
                worst_message = format!("Metric \"{}\" assessed {phase} due to {why}", metric.name);
                if !result.message.is_empty() {
                    worst_message.push_str(&format!(": \"Error Message: {}\"", result.message));
                }
            }
        }
    }
    status.run_summary = summary;
    status.dry_run_summary = Some(dry_summary);
    let worst_message = worst_message.trim().to_string();
    let (phase, message) = if terminating {
        (
            worst_phase.unwrap_or(AnalysisPhase::Successful),
            worst_message,
        )
    } else {
        match worst_phase {
            Some(worst) if everything_completed => (worst, worst_message),
            _ => (AnalysisPhase::Running, String::new()),
        }
    };
    RunAssessment {
        phase,
        message,
        transitions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_severity() {
        use AnalysisPhase::*;
        assert!(is_worse(&Successful, &Inconclusive));
        assert!(is_worse(&Error, &Failed));
        assert!(!is_worse(&Failed, &Error));
        assert_eq!(worst(&Inconclusive, &Error), Error);
    }

    #[test]
    fn dry_run_failures_do_not_terminate() {
        let results = vec![MetricResult {
            name: "a".into(),
            phase: AnalysisPhase::Failed,
            dry_run: true,
            ..MetricResult::default()
        }];
        assert!(!is_terminating(false, &results));
        assert!(is_terminating(true, &results));
    }
}
