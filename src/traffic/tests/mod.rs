//! Table tests of the routers: exact desired objects for hand-written inputs, written from the
//! spec text (§7) and upstream's behaviour, never from this code's output.

mod alb;
mod ambassador;
mod apisix;
mod appmesh;
mod gateway;
mod istio;
mod nginx;
mod objects;
mod smi;
mod traefik;

use serde_json::{Value, json};

use crate::api::Rollout;

use super::{DesiredObject, Observed, RouterConfig, RouterInput, TrafficState};

/// Uid every test Rollout carries.
pub(super) const UID: &str = "3f1c-uid";

/// A Rollout from JSON, with namespace `default` and uid [`UID`] unless given.
pub(super) fn rollout(mut doc: Value) -> Rollout {
    let meta = doc["metadata"].as_object_mut().expect("metadata");
    meta.entry("namespace").or_insert(json!("default"));
    meta.entry("uid").or_insert(json!(UID));
    serde_json::from_value(doc).expect("rollout decodes")
}

/// A canary Rollout named `name` whose canary block is `canary`.
pub(super) fn canary_rollout(name: &str, canary: Value) -> Rollout {
    rollout(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}},
            "strategy": {"canary": canary},
        },
    }))
}

/// The controller owner reference tests expect on created objects.
pub(super) fn owner(name: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": name,
        "uid": UID,
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A state with only a weight.
pub(super) fn weight(w: i32) -> TrafficState {
    TrafficState {
        weight: w,
        ..TrafficState::default()
    }
}

/// Runs `router` with the default config.
pub(super) fn run(
    router: super::Router,
    rollout: &Rollout,
    observed: &Observed,
    state: &TrafficState,
) -> Result<Vec<DesiredObject>, super::TrafficError> {
    run_with(router, rollout, observed, state, &RouterConfig::default())
}

/// Runs `router` with `config`.
pub(super) fn run_with(
    router: super::Router,
    rollout: &Rollout,
    observed: &Observed,
    state: &TrafficState,
    config: &RouterConfig,
) -> Result<Vec<DesiredObject>, super::TrafficError> {
    router.desired(&RouterInput {
        rollout,
        observed,
        state,
        config,
    })
}

/// Asserts JSON equality with both values printed on failure.
#[track_caller]
pub(super) fn assert_json(actual: &Value, expected: &Value) {
    assert!(
        actual == expected,
        "actual:\n{}\nexpected:\n{}",
        serde_json::to_string_pretty(actual).unwrap_or_default(),
        serde_json::to_string_pretty(expected).unwrap_or_default()
    );
}
