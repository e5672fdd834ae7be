//! The dashboard's JSON views: pure functions from a namespace's objects and the clock to what
//! the page draws (the rollout list, one rollout's tree, and each metric's measurements as a
//! series with the condition's threshold).

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::api::{AnalysisRun, Rollout};
use crate::cli::get::info::{AnalysisRunInfo, ReplicaSetInfo};
use crate::cli::get::{Objects, RolloutInfo, age, rollout_info};

/// The rows of the rollout list, sorted by name.
pub fn list_view(rollouts: &[Rollout], objects: Objects<'_>, now: Timestamp) -> Value {
    let mut rows: Vec<Value> = rollouts
        .iter()
        .map(|ro| {
            let info = rollout_info(ro, objects);
            let mut row = header(&info, now);
            row["images"] = json!(images(&info.replica_sets));
            row
        })
        .collect();
    rows.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Value::Array(rows)
}

/// The images of the ReplicaSets that still run pods, newest revision first, without repeats.
fn images(sets: &[ReplicaSetInfo]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for rs in sets.iter().filter(|rs| rs.replicas > 0) {
        for image in &rs.images {
            if !out.contains(image) {
                out.push(image.clone());
            }
        }
    }
    out
}

/// One rollout's tree: header fields, revisions with their ReplicaSets and pods, analysis runs
/// with their metrics' series, experiments.
pub fn rollout_view(
    ro: &Rollout,
    objects: Objects<'_>,
    runs: &[AnalysisRun],
    now: Timestamp,
) -> Value {
    let info = rollout_info(ro, objects);
    let containers: Vec<Value> = ro
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .map(|c| json!({"name": c.name, "image": c.image}))
                .collect()
        })
        .unwrap_or_default();
    let mut view = header(&info, now);
    let tree = json!({
        "containers": containers,
        "replicaSets": info.replica_sets.iter().map(|rs| replica_set_view(rs, now)).collect::<Vec<_>>(),
        "analysisRuns": info.analysis_runs.iter().map(|ar| analysis_view(ar, runs, now)).collect::<Vec<_>>(),
        "experiments": info.experiments.iter().map(|ex| json!({
            "name": ex.name,
            "status": ex.status,
            "message": ex.message,
            "icon": ex.icon,
            "revision": ex.revision,
            "age": age(ex.created, now),
            "replicaSets": ex.replica_sets.iter().map(|rs| replica_set_view(rs, now)).collect::<Vec<_>>(),
            "analysisRuns": ex.analysis_runs.iter().map(|ar| analysis_view(ar, runs, now)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    if let (Some(view_fields), Value::Object(tree_fields)) = (view.as_object_mut(), tree) {
        view_fields.extend(tree_fields);
    }
    view
}

/// What the list row and the tree both show of a rollout: `get rollout`'s header fields.
fn header(info: &RolloutInfo, now: Timestamp) -> Value {
    json!({
        "name": info.name,
        "namespace": info.namespace,
        "strategy": info.strategy,
        "status": info.status,
        "message": info.message,
        "icon": info.icon,
        "step": info.step,
        "setWeight": info.set_weight,
        "actualWeight": info.actual_weight,
        "desired": info.desired,
        "current": info.current,
        "updated": info.updated,
        "ready": info.ready,
        "available": info.available,
        "age": age(info.created, now),
    })
}

fn replica_set_view(rs: &ReplicaSetInfo, now: Timestamp) -> Value {
    let mut tags = Vec::new();
    for (on, tag) in [
        (rs.stable, "stable"),
        (rs.canary, "canary"),
        (rs.active, "active"),
        (rs.preview, "preview"),
        (rs.ping, "ping"),
        (rs.pong, "pong"),
    ] {
        if on {
            tags.push(tag);
        }
    }
    json!({
        "name": rs.name,
        "revision": rs.revision,
        "status": rs.status,
        "icon": rs.icon,
        "tags": tags,
        "replicas": rs.replicas,
        "available": rs.available,
        "images": rs.images,
        "age": age(rs.created, now),
        "pods": rs.pods.iter().map(|p| json!({
            "name": p.name,
            "status": p.status,
            "icon": p.icon,
            "ready": p.ready,
            "restarts": p.restarts,
            "age": age(p.created, now),
        })).collect::<Vec<_>>(),
    })
}

fn analysis_view(info: &AnalysisRunInfo, runs: &[AnalysisRun], now: Timestamp) -> Value {
    let run = runs
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(info.name.as_str()));
    json!({
        "name": info.name,
        "status": info.status,
        "icon": info.icon,
        "revision": info.revision,
        "successful": info.successful,
        "failed": info.failed,
        "inconclusive": info.inconclusive,
        "error": info.error,
        "age": age(info.created, now),
        "metrics": run.map(metric_series).unwrap_or_default(),
    })
}

/// Each metric of `run` as a chartable series: its measurements' numeric values over time and
/// the thresholds its conditions compare `result` with.
pub fn metric_series(run: &AnalysisRun) -> Vec<Value> {
    let results = run
        .status
        .as_ref()
        .map(|s| s.metric_results.as_slice())
        .unwrap_or_default();
    run.spec
        .metrics
        .iter()
        .map(|metric| {
            let result = results.iter().find(|r| r.name == metric.name);
            let points: Vec<Value> = result
                .map(|r| r.measurements.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    let at = m.finished_at.as_ref().or(m.started_at.as_ref());
                    json!({
                        "at": at.map(|t| t.0.as_millisecond()),
                        "value": numeric_value(&m.value),
                        "text": m.value,
                        "phase": m.phase.to_string(),
                    })
                })
                .collect();
            let thresholds: Vec<Value> = [
                ("success", metric.success_condition.as_deref()),
                ("failure", metric.failure_condition.as_deref()),
            ]
            .into_iter()
            .filter_map(|(kind, cond)| {
                let t = threshold(cond?)?;
                Some(json!({"kind": kind, "op": t.op, "value": t.value, "condition": cond}))
            })
            .collect();
            json!({
                "name": metric.name,
                "phase": result.map(|r| r.phase.to_string()).unwrap_or_default(),
                "points": points,
                "thresholds": thresholds,
            })
        })
        .collect()
}

/// The number a measurement's text holds: a plain number, or the first element of a vector
/// result (`[0.97]`, `[0.97, 0.5]`); `None` for anything else.
pub fn numeric_value(text: &str) -> Option<f64> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let first = inner.split(',').next()?.trim();
    first.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A comparison of the metric's result against a constant, found in a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The operator as written with `result` on its left (`>=`, `<`, ...).
    pub op: String,
    /// The constant.
    pub value: f64,
}

/// The first `result… OP number` (or `number OP result…`, turned around) in `condition`, so the
/// chart can draw the line a measurement must stay on one side of.
pub fn threshold(condition: &str) -> Option<Threshold> {
    // Built once per call: conditions are short and the dashboard renders on change only.
    let forward =
        regex::Regex::new(r"result[^<>=!&|]*?\s*(>=|<=|==|!=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)")
            .ok()?;
    if let Some(c) = forward.captures(condition) {
        return Some(Threshold {
            op: c[1].to_string(),
            value: c[2].parse().ok()?,
        });
    }
    let backward =
        regex::Regex::new(r"(-?[0-9]+(?:\.[0-9]+)?)\s*(>=|<=|==|!=|>|<)\s*[A-Za-z(]*result")
            .ok()?;
    let c = backward.captures(condition)?;
    let op = match &c[2] {
        ">=" => "<=",
        "<=" => ">=",
        ">" => "<",
        "<" => ">",
        other => other,
    };
    Some(Threshold {
        op: op.to_string(),
        value: c[1].parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_found_on_either_side() {
        assert_eq!(
            threshold("result[0] >= 0.95"),
            Some(Threshold {
                op: ">=".into(),
                value: 0.95
            })
        );
        assert_eq!(
            threshold("0.05 > result"),
            Some(Threshold {
                op: "<".into(),
                value: 0.05
            })
        );
        assert_eq!(
            threshold("len(result) == 0 || result[0] < 10"),
            Some(Threshold {
                op: "==".into(),
                value: 0.0
            })
        );
        assert_eq!(threshold("result.status == 'ok'"), None);
    }

    #[test]
    fn numeric_values_of_scalars_and_vectors() {
        assert_eq!(numeric_value("0.97"), Some(0.97));
        assert_eq!(numeric_value("[0.5, 0.7]"), Some(0.5));
        assert_eq!(numeric_value(" [3] "), Some(3.0));
        assert_eq!(numeric_value("NaN"), None);
        assert_eq!(numeric_value("{\"a\":1}"), None);
        assert_eq!(numeric_value(""), None);
    }
}
