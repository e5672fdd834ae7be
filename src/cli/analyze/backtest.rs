//! `davy analyze --backtest START..END --step D`: each Prometheus metric's query is evaluated
//! over the window with one `query_range` call, every step is judged by the metric's
//! conditions, and the same measurements are fed through the AnalysisRun rules on a virtual
//! clock (interval = step) to show what the run would have concluded, and when.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value as Json;

use crate::analysis::args::{resolve_metric, values};
use crate::analysis::providers::prometheus::{PrometheusProvider, RESOLVED_QUERY};
use crate::analysis::providers::{MeasureContext, conclude, errored, started};
use crate::analysis::reconcile::{Outcome, Prepared, apply, prepare};
use crate::analysis::runner::Runner;
use crate::analysis::schedule::add;
use crate::api::{AnalysisPhase, AnalysisRun, DurationString, Measurement, Metric};
use crate::expr::{MetricValue, format_sample_list, format_sample_value, parse_go_float};

use super::output::{Format, measurement_line, run_line};
use super::{EXIT_USAGE, exit_code};

/// Parses `now`, `now-1h30m` or an RFC 3339 instant.
fn instant(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let d = crate::api::parse_go_duration(ago).map_err(|e| e.to_string())?;
        return now.checked_sub(d).map_err(|e| format!("{text:?}: {e}"));
    }
    text.parse::<Timestamp>()
        .map_err(|e| format!("{text:?} is not `now`, `now-<duration>` or an RFC 3339 time: {e}"))
}

/// One metric's values at each step: the measurement value and what `result` is bound to.
struct Series {
    metric: Metric,
    /// Scalar queries give a number, vector queries a list (learnt from one instant query).
    scalar: bool,
    /// Step instant (unix ms) → sample values of every series at that instant.
    points: BTreeMap<i64, Vec<f64>>,
    query: String,
}

impl Series {
    fn at(&self, t: Timestamp) -> (MetricValue, String) {
        let values = self
            .points
            .get(&t.as_millisecond())
            .cloned()
            .unwrap_or_default();
        if self.scalar {
            let v = values.first().copied().unwrap_or(f64::NAN);
            (MetricValue::Float(v), format_sample_value(v))
        } else {
            let text = format_sample_list(&values);
            (MetricValue::FloatList(values), text)
        }
    }
}

fn matrix_points(data: &Json) -> BTreeMap<i64, Vec<f64>> {
    let mut points: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for stream in data
        .get("result")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        for point in stream
            .get("values")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(t), Some(v)) = (
                point.get(0).and_then(Json::as_f64),
                point.get(1).and_then(Json::as_str).and_then(parse_go_float),
            ) else {
                continue;
            };
            points
                .entry((t * 1000.0).round() as i64)
                .or_default()
                .push(v);
        }
    }
    points
}

/// Runs the backtest and prints it; the exit code is the concluded phase.
pub async fn run(
    mut run: AnalysisRun,
    runner: &Runner,
    window: &str,
    step: Duration,
    format: Format,
) -> anyhow::Result<i32> {
    let usage = |message: String| {
        eprintln!("error: {message}");
        Ok(EXIT_USAGE)
    };
    let now = Timestamp::now();
    let Some((start, end)) = window.split_once("..") else {
        return usage(format!("--backtest {window:?}: expected START..END"));
    };
    let (start, end) = match (instant(start, now), instant(end, now)) {
        (Ok(s), Ok(e)) if s <= e => (s, e),
        (Ok(_), Ok(_)) => return usage(format!("--backtest {window:?}: END is before START")),
        (Err(e), _) | (_, Err(e)) => return usage(format!("--backtest: {e}")),
    };
    // Secret arguments come from the file's Secrets, as for a live run.
    let mut args = run.spec.args.clone().unwrap_or_default();
    for arg in &mut args {
        if let Some(r) = arg
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.clone())
        {
            match runner.secrets.get("", &r.name, &r.key).await {
                Ok(v) => arg.value = Some(v),
                Err(e) => return usage(format!("Unable to resolve metric arguments: {e}")),
            }
        }
    }
    let arg_values = values(&args);
    let mut series = BTreeMap::new();
    for metric in &run.spec.metrics {
        let resolved = match resolve_metric(metric, &arg_values) {
            Ok(m) => m,
            Err(e) => return usage(format!("Unable to resolve metric arguments: {e}")),
        };
        let Some(prom) = resolved.provider.prometheus.clone() else {
            return usage(format!(
                "metric {:?}: --backtest replays Prometheus metrics only",
                metric.name
            ));
        };
        if prom.range_query.is_some() {
            return usage(format!(
                "metric {:?}: --backtest replays instant queries only (this one has rangeQuery)",
                metric.name
            ));
        }
        let provider = match PrometheusProvider::new(&prom, runner.registry.prometheus_address()) {
            Ok(p) => p,
            Err(e) => return usage(format!("metric {:?}: {e}", metric.name)),
        };
        let kind = provider.instant(start).await;
        let scalar = matches!(&kind, Ok(a) if a.data.get("resultType").and_then(Json::as_str) == Some("scalar"));
        let points = match provider.range(start, end, step).await {
            Ok(answer) => matrix_points(&answer.data),
            Err(e) => {
                eprintln!("error: metric {:?}: {e}", metric.name);
                return Ok(super::EXIT_ERROR);
            }
        };
        series.insert(
            metric.name.clone(),
            Series {
                metric: resolved,
                scalar,
                points,
                query: provider.query().to_string(),
            },
        );
    }
    // Every metric measures once per step; initial delays do not apply to a replay.
    for metric in &mut run.spec.metrics {
        metric.interval = Some(DurationString(format!("{}ms", step.as_millis())));
        metric.initial_delay = None;
    }
    run.status = None;
    let mut printed = BTreeSet::new();
    let mut concluded: Option<(Timestamp, crate::api::AnalysisRunStatus)> = None;
    let mut t = start;
    while t <= end {
        for (name, s) in &series {
            let ctx = context(&run, t);
            let (result, text) = s.at(t);
            let m = conclude(started(&ctx), &s.metric, &result, text, &ctx);
            let key = (t.as_millisecond(), name.clone());
            if printed.insert(key) {
                println!("{}", measurement_line(format, name, &finish(m, t)));
            }
        }
        if concluded.is_none() {
            // Due metrics at `t` (a hair later: upstream measures strictly after the interval).
            let plan = match prepare(&run, add(t, Duration::from_millis(1))) {
                Prepared::Measure(plan) => plan,
                Prepared::Invalid(step) => {
                    return usage(step.status.message);
                }
                Prepared::Completed => break,
            };
            let outcomes = plan
                .tasks
                .iter()
                .map(|task| {
                    let ctx = context(&run, t);
                    let measurement = match series.get(&task.metric) {
                        Some(s) => {
                            let (result, text) = s.at(t);
                            conclude(started(&ctx), &s.metric, &result, text, &ctx)
                        }
                        None => errored(started(&ctx), "no replay data"),
                    };
                    let metadata = series
                        .get(&task.metric)
                        .map(|s| BTreeMap::from([(RESOLVED_QUERY.to_string(), s.query.clone())]))
                        .unwrap_or_default();
                    Outcome {
                        task: task.clone(),
                        measurement: finish(measurement, t),
                        metadata,
                    }
                })
                .collect();
            let step_result = apply(&run, &plan, outcomes, &[], t);
            run.status = Some(step_result.status);
            let status = run.status.clone().unwrap_or_default();
            if status.phase.as_ref().is_some_and(|p| p.completed()) {
                concluded = Some((t, status));
            }
        }
        t = add(t, step);
    }
    let (at, status) = match concluded {
        Some(done) => done,
        None => {
            // The window ended first: the run is terminated there, as a promotion would.
            run.spec.terminate = Some(true);
            let at = end;
            match prepare(&run, at) {
                Prepared::Measure(plan) => {
                    let step_result = apply(&run, &plan, Vec::new(), &[], at);
                    (at, step_result.status)
                }
                _ => (at, run.status.clone().unwrap_or_default()),
            }
        }
    };
    let at_text = at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    println!("{}", run_line(format, &status, Some(at_text)));
    Ok(exit_code(&status.phase.unwrap_or(AnalysisPhase::Running)))
}

fn context(run: &AnalysisRun, now: Timestamp) -> MeasureContext {
    MeasureContext {
        run_name: run.metadata.name.clone().unwrap_or_default(),
        namespace: run.metadata.namespace.clone().unwrap_or_default(),
        run_uid: run.metadata.uid.clone().unwrap_or_default(),
        result: None,
        now,
        run_started_at: run
            .status
            .as_ref()
            .and_then(|s| s.started_at.as_ref())
            .map(|t| t.0),
    }
}

/// A replayed measurement starts and ends at its step.
fn finish(mut m: Measurement, t: Timestamp) -> Measurement {
    m.started_at = Some(Time(t));
    m.finished_at = Some(Time(t));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        assert_eq!(instant("now", now).unwrap(), now);
        assert_eq!(
            instant("now-1h", now).unwrap(),
            "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            instant("2026-01-01T00:30:00Z", now).unwrap(),
            "2026-01-01T00:30:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(instant("yesterday", now).is_err());
    }
}
