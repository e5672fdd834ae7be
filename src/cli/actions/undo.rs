//! `undo NAME [--to-revision N]`: the pure part — which owned ReplicaSet holds the revision,
//! whether the rollout already runs its template, and the JSON patch that restores it.

use serde_json::{Value, json};

use crate::api::consts::{annotation, label};

use super::super::kube::CliError;

/// One owned ReplicaSet, reduced to what undo needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// `rollout.argoproj.io/revision` (0 when absent, as upstream reads it).
    pub number: i64,
    /// Its `spec.template` as JSON.
    pub template: Value,
}

/// The revision number of a ReplicaSet's annotations; an unparsable value is skipped.
pub fn revision_of(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> Option<i64> {
    match annotations.and_then(|a| a.get(annotation::REVISION)) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

/// Upstream `rolloutRevision`: `to_revision` 0 picks the second-highest revision (the one
/// before the current), any other number that exact revision.
pub fn pick_revision<'a>(
    rollout: &str,
    revisions: &'a [Revision],
    to_revision: i64,
) -> Result<&'a Revision, CliError> {
    if to_revision > 0 {
        return revisions
            .iter()
            .find(|r| r.number == to_revision)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "unable to find specified revision {to_revision} in history"
                ))
            });
    }
    let mut latest: Option<&Revision> = None;
    let mut previous: Option<&Revision> = None;
    for r in revisions {
        if latest.is_none_or(|l| l.number < r.number) {
            previous = latest;
            latest = Some(r);
        } else if previous.is_none_or(|p| p.number < r.number) {
            previous = Some(r);
        }
    }
    previous.ok_or_else(|| CliError::Usage(format!("no revision found for rollout {rollout:?}")))
}

/// The template without the `rollouts-pod-template-hash` label.
pub fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(label::POD_TEMPLATE_HASH);
    }
    t
}

/// Upstream `equalIgnoreHash` (apimachinery's `DeepDerivative`): every field set in `current`
/// equals the one in `target`; fields `current` leaves unset (null, "", [], {}) are ignored,
/// because the API server defaults ReplicaSet templates but not Rollout templates.
pub fn equal_ignore_hash(current: &Value, target: &Value) -> bool {
    // A Rollout without a template (workloadRef) never matches, as upstream's `found` check.
    !current.is_null() && derivative(&without_hash(current), &without_hash(target))
}

fn derivative(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, _) => true,
        (Value::String(s), _) if s.is_empty() => true,
        (Value::Array(x), _) if x.is_empty() => true,
        (Value::Object(x), _) if x.is_empty() => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| derivative(p, q))
        }
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .all(|(k, v)| derivative(v, y.get(k).unwrap_or(&Value::Null))),
        _ => a == b,
    }
}

/// Where the restored template goes: the Rollout itself, or the workload its `workloadRef`
/// names (upstream `undoWorkloadRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoTarget {
    /// `spec.template` of the Rollout.
    Rollout,
    /// `spec.template` of this object (`(group, version, kind, plural, name)`).
    Workload {
        /// API group ("" for core).
        group: &'static str,
        /// Kind.
        kind: &'static str,
        /// Plural resource.
        plural: &'static str,
        /// Object name.
        name: String,
    },
}

/// Upstream's choice by `workloadRef.kind`: Deployment, ReplicaSet or PodTemplate; anything
/// else is `workload of type X is not supported`.
pub fn undo_target(
    workload_kind: Option<&str>,
    workload_name: Option<&str>,
) -> Result<UndoTarget, CliError> {
    let Some(kind) = workload_kind else {
        return Ok(UndoTarget::Rollout);
    };
    let name = workload_name.unwrap_or_default().to_string();
    let (group, kind, plural) = match kind {
        "Deployment" => ("apps", "Deployment", "deployments"),
        "ReplicaSet" => ("apps", "ReplicaSet", "replicasets"),
        "PodTemplate" => ("", "PodTemplate", "podtemplates"),
        other => {
            return Err(CliError::Usage(format!(
                "workload of type {other} is not supported"
            )));
        }
    };
    Ok(UndoTarget::Workload {
        group,
        kind,
        plural,
        name,
    })
}

/// The JSON patch that restores `template` (hash label removed) into `spec.template`.
pub fn restore_patch(template: &Value) -> Value {
    json!([{"op": "replace", "path": "/spec/template", "value": without_hash(template)}])
}

/// The line printed when the rollout already runs the revision's template.
pub fn skipped_message(to_revision: i64) -> String {
    format!("skipped rollback (current template already matches revision {to_revision})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(n: i64, image: &str) -> Revision {
        Revision {
            number: n,
            template: json!({
                "metadata": {"labels": {"app": "x", "rollouts-pod-template-hash": format!("h{n}")}},
                "spec": {"containers": [{"name": "c", "image": image, "terminationMessagePath": "/dev/termination-log"}]}
            }),
        }
    }

    #[test]
    fn default_picks_the_second_highest_revision() {
        let revs = [rev(2, "b"), rev(3, "c"), rev(1, "a")];
        assert_eq!(pick_revision("r", &revs, 0).unwrap().number, 2);
        assert_eq!(pick_revision("r", &revs, 1).unwrap().number, 1);
        assert_eq!(
            pick_revision("r", &revs, 7).unwrap_err().to_string(),
            "unable to find specified revision 7 in history"
        );
        assert_eq!(
            pick_revision("r", &revs[..1], 0).unwrap_err().to_string(),
            "no revision found for rollout \"r\""
        );
    }

    #[test]
    fn equality_ignores_hash_and_server_defaults() {
        let current = json!({
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "b"}]}
        });
        assert!(equal_ignore_hash(&current, &rev(2, "b").template));
        assert!(!equal_ignore_hash(&current, &rev(1, "a").template));
    }

    #[test]
    fn restore_patch_replaces_the_template_without_hash() {
        let patch = restore_patch(&rev(1, "a").template);
        assert_eq!(patch[0]["op"], "replace");
        assert_eq!(patch[0]["path"], "/spec/template");
        assert_eq!(patch[0]["value"]["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(revision_of(None), Some(0));
        assert!(!equal_ignore_hash(&Value::Null, &rev(1, "a").template));
    }

    #[test]
    fn workload_targets_and_selectors() {
        assert_eq!(undo_target(None, None).unwrap(), UndoTarget::Rollout);
        assert_eq!(
            undo_target(Some("Deployment"), Some("d")).unwrap(),
            UndoTarget::Workload {
                group: "apps",
                kind: "Deployment",
                plural: "deployments",
                name: "d".into()
            }
        );
        assert_eq!(
            undo_target(Some("StatefulSet"), Some("s"))
                .unwrap_err()
                .to_string(),
            "workload of type StatefulSet is not supported"
        );
    }
}
