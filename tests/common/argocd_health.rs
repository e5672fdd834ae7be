//! Argo CD's health assessment of `argoproj.io` kinds (ecosystem-anchors §1.1, §1.3), so tests
//! can assert how Argo CD would show a Davy status. Each check runs Argo CD's own `health.lua`
//! under Lua 5.1 (`super::argocd_lua`) and a port of it, and fails the test when the two
//! disagree: the script is the authority, the port keeps the tests meaningful where the
//! conformance folder is absent.
//!
//! Works on untyped JSON because the checks also read legacy fields (`status.canary.stableRS`,
//! hash-valued `observedGeneration`) that Davy's types do not carry.

#![allow(dead_code)]

use serde_json::Value;

use super::argocd_lua;

/// An Argo CD health status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `Healthy`, `Progressing`, `Suspended`, `Degraded` or `Unknown`.
    pub status: String,
    /// The message Argo CD shows.
    pub message: String,
}

fn health(status: &str, message: &str) -> Health {
    Health {
        status: status.to_string(),
        message: message.to_string(),
    }
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// Lua `tonumber` on a string or number field; plain integer parsing (see the anchors note).
fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn generation_observed(rollout: &Value) -> bool {
    let Some(status) = rollout.get("status").filter(|s| !s.is_null()) else {
        return false;
    };
    let generation = number(&rollout["metadata"]["generation"]).unwrap_or(0);
    match number(&status["observedGeneration"]) {
        // Non-numeric (legacy pod-template hash) or larger than the generation: v0.9 and older.
        None => true,
        Some(observed) if observed > generation => true,
        Some(observed) => observed == generation,
    }
}

fn workload_generation_observed(rollout: &Value) -> bool {
    let annotations = &rollout["metadata"]["annotations"];
    if rollout["spec"]["workloadRef"].is_null() || annotations.is_null() {
        return true;
    }
    number(&annotations["rollout.argoproj.io/workload-generation"])
        == number(&rollout["status"]["workloadObservedGeneration"])
}

/// The port of Argo CD's `argoproj.io/Rollout` health.
fn rollout_port(rollout: &Value) -> Health {
    if !generation_observed(rollout) || !workload_generation_observed(rollout) {
        return health(
            "Progressing",
            "Waiting for rollout spec update to be observed",
        );
    }
    let status = &rollout["status"];
    if let Some(phase) = status["phase"].as_str() {
        let mapped = if phase == "Paused" {
            "Suspended"
        } else {
            phase
        };
        return health(mapped, status["message"].as_str().unwrap_or(""));
    }
    for condition in status["conditions"].as_array().into_iter().flatten() {
        let type_ = condition["type"].as_str().unwrap_or("");
        let reason = condition["reason"].as_str().unwrap_or("");
        let message = condition["message"].as_str().unwrap_or("");
        if type_ == "InvalidSpec"
            || (type_ == "Progressing"
                && (reason == "RolloutAborted" || reason == "ProgressDeadlineExceeded"))
        {
            return health("Degraded", message);
        }
    }
    let paused_conditions = status["pauseConditions"]
        .as_array()
        .is_some_and(|list| !list.is_empty());
    if paused_conditions || rollout["spec"]["paused"].as_bool() == Some(true) {
        return health("Suspended", "Rollout is paused");
    }
    let Some(current) = status["currentPodHash"].as_str() else {
        return health(
            "Progressing",
            "Waiting for rollout to finish: status has not been reconciled.",
        );
    };
    let desired = rollout["spec"]["replicas"].as_i64().unwrap_or(1);
    let updated = int(&status["updatedReplicas"]);
    if updated < desired {
        return health(
            "Progressing",
            "Waiting for roll out to finish: More replicas need to be updated",
        );
    }
    if int(&status["availableReplicas"]) < updated {
        return health(
            "Progressing",
            "Waiting for roll out to finish: updated replicas are still becoming available",
        );
    }
    let stable = status["stableRS"]
        .as_str()
        .or_else(|| status["canary"]["stableRS"].as_str())
        .unwrap_or("");
    if !rollout["spec"]["strategy"]["blueGreen"].is_null() {
        if status["blueGreen"].is_null()
            || status["blueGreen"]["activeSelector"].as_str() != Some(current)
        {
            return health("Progressing", "active service cutover pending");
        }
        if !stable.is_empty() && stable != current {
            return health("Progressing", "waiting for analysis to complete");
        }
    } else if !rollout["spec"]["strategy"]["canary"].is_null() {
        if int(&status["replicas"]) > updated {
            return health(
                "Progressing",
                "Waiting for roll out to finish: old replicas are pending termination",
            );
        }
        if stable.is_empty() || stable != current {
            return health("Progressing", "Waiting for rollout to finish steps");
        }
    }
    health("Healthy", "")
}

/// The port of Argo CD's `argoproj.io/AnalysisRun` health.
fn analysis_run_port(run: &Value) -> Option<Health> {
    let status = &run["status"];
    if status.is_null() {
        return Some(health(
            "Progressing",
            "Waiting for analysis run to finish: status has not been reconciled.",
        ));
    }
    let message = status["message"].as_str().filter(|m| !m.is_empty());
    let (code, default) = match status["phase"].as_str()? {
        "Pending" | "Running" => return Some(health("Progressing", "Analysis run is running")),
        "Successful" => ("Healthy", "Analysis run completed successfully"),
        "Failed" => ("Degraded", "Analysis run failed"),
        "Error" => ("Degraded", "Analysis run had an error"),
        "Inconclusive" => ("Unknown", "Analysis run was inconclusive"),
        _ => return None,
    };
    Some(health(code, message.unwrap_or(default)))
}

/// The port of Argo CD's `argoproj.io/Experiment` health (its own message is never used).
fn experiment_port(experiment: &Value) -> Option<Health> {
    let status = &experiment["status"];
    if status.is_null() {
        return Some(health(
            "Progressing",
            "Waiting for experiment to finish: status has not been reconciled.",
        ));
    }
    Some(match status["phase"].as_str()? {
        "Pending" => health("Progressing", "Experiment is pending"),
        "Running" => health("Progressing", "Experiment is running"),
        "Successful" => health("Healthy", "Experiment is successful"),
        "Failed" => health("Degraded", "Experiment has failed"),
        "Error" => health("Degraded", "Experiment had an error"),
        _ => return None,
    })
}

/// Fails when Argo CD's `<kind>/health.lua` judges `object` otherwise than the port did.
fn agree(kind: &str, object: &Value, port: Option<&Health>) {
    let Some((status, message)) = argocd_lua::health(kind, object) else {
        return;
    };
    let script = (!status.is_empty()).then_some(Health { status, message });
    assert_eq!(
        script.as_ref(),
        port,
        "Argo CD's {kind} health.lua (left) and the port (right) disagree on {object}"
    );
}

/// Argo CD's `argoproj.io/Rollout` health.
pub fn rollout_health(rollout: &Value) -> Health {
    let port = rollout_port(rollout);
    agree("Rollout", rollout, Some(&port));
    port
}

/// Argo CD's `argoproj.io/AnalysisRun` health; `None` is "no health" (an unknown phase).
pub fn analysis_run_health(run: &Value) -> Option<Health> {
    let port = analysis_run_port(run);
    agree("AnalysisRun", run, port.as_ref());
    port
}

/// Argo CD's `argoproj.io/Experiment` health; `None` is "no health" (an unknown phase).
pub fn experiment_health(experiment: &Value) -> Option<Health> {
    let port = experiment_port(experiment);
    agree("Experiment", experiment, port.as_ref());
    port
}
