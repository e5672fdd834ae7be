//! When each metric is measured (spec §4.5 steps 3 and 7, upstream `generateMetricTasks` and
//! `calculateNextReconcileTime`): initial delay, interval, the 10 s retry after an error, the
//! effective count, and `resumeAt` of in-flight measurements.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::{AnalysisPhase, AnalysisRunStatus, Measurement, Metric, MetricResult};

use super::metric_phase::count_reached;
use super::run_phase::is_terminating;

/// An errored measurement is retried after 10 s, whatever the metric's interval.
use crate::api::defaults::DEFAULT_ERROR_RETRY_INTERVAL as ERROR_RETRY_INTERVAL;

/// One metric to measure now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricTask {
    /// Index of the metric in `spec.metrics`.
    pub index: usize,
    /// The metric's name.
    pub metric: String,
    /// True when the task continues the last measurement (no `finishedAt` yet): resume it, or
    /// terminate it when the run is terminating.
    pub resumes_incomplete: bool,
}

/// `ts + d`, saturating at the largest instant.
pub fn add(ts: Timestamp, d: Duration) -> Timestamp {
    ts.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn result<'a>(status: &'a AnalysisRunStatus, name: &str) -> Option<&'a MetricResult> {
    status.metric_results.iter().find(|r| r.name == name)
}

fn last_measurement<'a>(status: &'a AnalysisRunStatus, name: &str) -> Option<&'a Measurement> {
    result(status, name).and_then(|r| r.measurements.last())
}

fn completed(status: &AnalysisRunStatus, name: &str) -> bool {
    result(status, name).is_some_and(|r| r.phase.completed())
}

/// A metric duration field (`interval`, `initialDelay`) parsed with Go's grammar; `None` when
/// unset or empty, `Some(Err)` when unparseable (upstream then skips the metric).
fn duration_of(field: &Option<crate::api::DurationString>) -> Option<Result<Duration, ()>> {
    field
        .as_ref()
        .filter(|d| !d.is_empty())
        .map(|d| d.to_go_duration().map_err(|_| ()))
}

/// The metrics to measure at `now`, in metric order. `metrics` are the run's metrics with
/// arguments resolved (so `interval: "{{args.i}}"` is a duration here).
pub fn metric_tasks(
    terminate: bool,
    status: &AnalysisRunStatus,
    metrics: &[Metric],
    now: Timestamp,
) -> Vec<MetricTask> {
    let terminating = is_terminating(terminate, &status.metric_results);
    let mut tasks = Vec::new();
    for (index, metric) in metrics.iter().enumerate() {
        if completed(status, &metric.name) {
            continue;
        }
        let task = |resumes_incomplete| MetricTask {
            index,
            metric: metric.name.clone(),
            resumes_incomplete,
        };
        let last = last_measurement(status, &metric.name);
        if let Some(last) = last.filter(|m| m.finished_at.is_none()) {
            if last.resume_at.as_ref().is_some_and(|r| r.0 > now) {
                continue;
            }
            tasks.push(task(true));
            continue;
        }
        if terminating {
            continue;
        }
        let Some(last) = last else {
            if let Some(delay) = duration_of(&metric.initial_delay) {
                let (Some(started), Ok(delay)) = (&status.started_at, delay) else {
                    continue;
                };
                if add(started.0, delay) > now {
                    continue;
                }
            }
            tasks.push(task(false));
            continue;
        };
        if result(status, &metric.name).is_some_and(|r| count_reached(metric, r)) {
            continue;
        }
        let interval = if last.phase == AnalysisPhase::Error {
            ERROR_RETRY_INTERVAL
        } else {
            match duration_of(&metric.interval) {
                Some(Ok(interval)) => interval,
                Some(Err(())) => continue,
                None => ERROR_RETRY_INTERVAL,
            }
        };
        // `finishedAt` is set here: the in-flight case returned above.
        if let Some(finished) = &last.finished_at
            && now > add(finished.0, interval)
        {
            tasks.push(task(false));
        }
    }
    tasks
}

/// When the run needs looking at again: the earliest over unfinished metrics of the end of an
/// initial delay, an in-flight measurement's `resumeAt`, and `finishedAt` + interval (or + 10 s
/// after an error). `None` when nothing is scheduled.
pub fn next_reconcile(
    status: &AnalysisRunStatus,
    metrics: &[Metric],
    now: Timestamp,
) -> Option<Timestamp> {
    let mut earliest: Option<Timestamp> = None;
    let mut consider = |t: Timestamp| {
        if earliest.is_none_or(|e| t < e) {
            earliest = Some(t);
        }
    };
    for metric in metrics {
        if completed(status, &metric.name) {
            continue;
        }
        let Some(last) = last_measurement(status, &metric.name) else {
            if let Some(Ok(delay)) = duration_of(&metric.initial_delay) {
                let start = status.started_at.as_ref().map_or(now, |t| t.0);
                consider(add(start, delay));
            }
            continue;
        };
        let Some(finished) = &last.finished_at else {
            if let Some(resume) = &last.resume_at {
                consider(resume.0);
            }
            continue;
        };
        if result(status, &metric.name).is_some_and(|r| count_reached(metric, r)) {
            continue;
        }
        let interval = if last.phase == AnalysisPhase::Error {
            ERROR_RETRY_INTERVAL
        } else {
            match duration_of(&metric.interval) {
                Some(Ok(interval)) => interval,
                // Unparseable, or no interval and no error: nothing to repeat.
                _ => continue,
            }
        };
        consider(add(finished.0, interval));
    }
    earliest
}
