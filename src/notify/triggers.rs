//! Triggers: the trigger an Event reason fires (`RolloutAborted` → `on-rollout-aborted`), the
//! trigger format (`- when: ..., send: [...]`), and which templates a trigger sends.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// One condition of a trigger (notifications-engine's `triggers.Condition`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// An expr-lang expression over the template variables; empty sends on every event.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub when: String,
    /// Templates to send when the condition holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send: Vec<String>,
    /// What people read about the condition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Accepted for compatibility; an Event fires a trigger once already (see the docs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub once_per: String,
}

static FIRST_CAP: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new("(.)([A-Z][a-z]+)").ok());
static ALL_CAP: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new("([a-z0-9])([A-Z])").ok());

/// The trigger an Event `reason` fires: `on-` and the reason in kebab case, split as upstream
/// splits it (`AnalysisRunFailed` → `on-analysis-run-failed`).
pub fn trigger_for_reason(reason: &str) -> String {
    let mut name = reason.to_string();
    if let Some(first) = FIRST_CAP.as_ref() {
        name = first.replace_all(&name, "${1}-${2}").into_owned();
    }
    if let Some(all) = ALL_CAP.as_ref() {
        name = all.replace_all(&name, "${1}-${2}").into_owned();
    }
    format!("on-{}", name.to_lowercase())
}

/// The outcome of one condition for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionResult {
    /// The condition's `when` (empty: always).
    pub when: String,
    /// Whether it holds.
    pub triggered: bool,
    /// The templates it sends.
    pub templates: Vec<String>,
}

/// Evaluates each condition of `conditions` against `vars` (the template variables as JSON).
/// A condition whose expression does not compile or run is reported as an error, the others
/// still count.
pub fn run(
    conditions: &[Condition],
    vars: &serde_json::Value,
) -> Vec<Result<ConditionResult, String>> {
    conditions
        .iter()
        .map(|condition| {
            let triggered = if condition.when.trim().is_empty() {
                // Upstream Argo Rollouts sends on an empty condition: the Event is the trigger.
                true
            } else {
                eval_when(&condition.when, vars)?
            };
            Ok(ConditionResult {
                when: condition.when.clone(),
                triggered,
                templates: condition.send.clone(),
            })
        })
        .collect()
}

/// `when` as expr-lang evaluates it, with each top-level variable bound.
fn eval_when(when: &str, vars: &serde_json::Value) -> Result<bool, String> {
    let mut context = expr::Context::default();
    if let serde_json::Value::Object(map) = vars {
        for (key, value) in map {
            context.insert(key.clone(), to_expr(value));
        }
    }
    match expr::eval(when, &context) {
        Ok(expr::Value::Bool(value)) => Ok(value),
        Ok(other) => Err(format!("condition {when:?} gave {other:?}, not a boolean")),
        Err(error) => Err(format!("condition {when:?}: {error}")),
    }
}

/// JSON as expr-lang values (objects become maps, whole numbers integers).
fn to_expr(json: &serde_json::Value) -> expr::Value {
    use serde_json::Value as Json;
    match json {
        Json::Null => expr::Value::Nil,
        Json::Bool(b) => expr::Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => expr::Value::Integer(i),
            None => expr::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => expr::Value::String(s.clone()),
        Json::Array(items) => expr::Value::Array(items.iter().map(to_expr).collect()),
        Json::Object(map) => map.iter().map(|(k, v)| (k.clone(), to_expr(v))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_become_upstream_trigger_names() {
        for (reason, trigger) in [
            ("RolloutAborted", "on-rollout-aborted"),
            ("RolloutCompleted", "on-rollout-completed"),
            ("RolloutStepCompleted", "on-rollout-step-completed"),
            ("RolloutUpdated", "on-rollout-updated"),
            ("RolloutPaused", "on-rollout-paused"),
            ("AnalysisRunRunning", "on-analysis-run-running"),
            ("AnalysisRunError", "on-analysis-run-error"),
            ("AnalysisRunFailed", "on-analysis-run-failed"),
            ("ScalingReplicaSet", "on-scaling-replica-set"),
            ("NewReplicaSetCreated", "on-new-replica-set-created"),
        ] {
            assert_eq!(trigger_for_reason(reason), trigger, "{reason}");
        }
    }

    #[test]
    fn an_empty_condition_always_sends_and_others_are_evaluated() {
        let conditions: Vec<Condition> = serde_saphyr::from_str(
            "- send: [a]\n- when: rollout.status.phase == 'Degraded'\n  send: [b]\n- when: 'rollout.status.phase =='\n  send: [c]\n",
        )
        .unwrap();
        let vars = json!({"rollout": {"status": {"phase": "Healthy"}}});
        let results = run(&conditions, &vars);
        assert!(results[0].as_ref().unwrap().triggered);
        assert!(!results[1].as_ref().unwrap().triggered);
        assert!(results[2].is_err(), "{:?}", results[2]);
        let degraded = json!({"rollout": {"status": {"phase": "Degraded"}}});
        assert!(run(&conditions, &degraded)[1].as_ref().unwrap().triggered);
    }
}
