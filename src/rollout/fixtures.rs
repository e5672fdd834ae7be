//! Test fixtures for the rollout modules' unit tables: Rollouts and ReplicaSets built from a
//! few numbers (compiled only for tests).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::observed::{Observed, chrono_to_time};
use crate::api::Rollout;

/// 2026-03-01T12:00:00Z plus `seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_366_400 + seconds, 0).expect("in range")
}

/// A canary Rollout named `demo` with `replicas`, these steps, optional traffic routing, and
/// the given status (JSON).
pub fn rollout(replicas: i32, steps: Value, traffic: bool, status: Value) -> Rollout {
    let mut canary = json!({"steps": steps});
    if traffic {
        canary["canaryService"] = json!("demo-canary");
        canary["stableService"] = json!("demo-stable");
        canary["trafficRouting"] = json!({"nginx": {"stableIngress": "demo"}});
    }
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1,
                     "annotations": {"rollout.argoproj.io/revision": "2", "team": "a"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                         "spec": {"containers": [{"name": "c", "image": "img:2"}]}},
            "strategy": {"canary": canary}
        },
        "status": status
    }))
    .expect("valid Rollout")
}

/// A ReplicaSet `demo-<hash>` with spec/available pods, a revision, created at `created`.
pub fn replica_set(
    hash: &str,
    spec: i32,
    available: i32,
    revision: i64,
    created: i64,
) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("demo-{hash}")),
            labels: Some(BTreeMap::from([(
                "rollouts-pod-template-hash".to_string(),
                hash.to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (
                    "rollout.argoproj.io/revision".to_string(),
                    revision.to_string(),
                ),
                (
                    "rollout.argoproj.io/desired-replicas".to_string(),
                    spec.max(0).to_string(),
                ),
            ])),
            creation_timestamp: Some(chrono_to_time(at(created))),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(spec),
            ..ReplicaSetSpec::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas: spec,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            ..ReplicaSetStatus::default()
        }),
    }
}

/// An observed world of one Rollout and its ReplicaSets; the new one is the ReplicaSet whose
/// hash is the Rollout's computed hash, so callers name it with [`new_hash`].
pub fn world(rollout: Rollout, replica_sets: Vec<ReplicaSet>) -> Observed {
    let mut observed = Observed::new(rollout);
    observed.replica_sets = replica_sets;
    observed
}

/// The hash Davy computes for a fixture Rollout's template.
pub fn new_hash() -> String {
    super::observed::computed_pod_hash(&rollout(1, json!([]), false, json!({})))
}

/// A blue-green Rollout named `demo` with `replicas`, the `blueGreen` fields `blue_green`
/// (active Service `demo-active` unless given) and the given status (JSON).
pub fn blue_green_rollout(replicas: i32, blue_green: Value, status: Value) -> Rollout {
    let mut strategy = json!({"activeService": "demo-active"});
    if let (Some(target), Some(extra)) = (strategy.as_object_mut(), blue_green.as_object()) {
        target.extend(extra.clone());
    }
    let mut ro = rollout(replicas, json!([]), false, status);
    ro.spec.strategy.canary = None;
    ro.spec.strategy.blue_green = serde_json::from_value(strategy).ok();
    ro
}
