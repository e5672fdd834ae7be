//! SMI TrafficSplit (spec §7.2).

use serde_json::json;

use super::super::{
    Observed, Ownership, ResourceType, Router, RouterConfig, RouterEvent, SmiApiVersion,
    TrafficState, plan_write,
};
use super::{assert_json, canary_rollout, owner, run, run_with, weight};
use crate::api::rollout_status::WeightDestination;

fn smi_rollout(smi: serde_json::Value) -> crate::api::Rollout {
    canary_rollout(
        "rollout-smi-experiment",
        json!({
            "stableService": "rollout-smi-experiment-stable",
            "canaryService": "rollout-smi-experiment-canary",
            "trafficRouting": {"smi": smi},
        }),
    )
}

/// The upstream example `rollout-smi-experiment-step.yaml` at its experiment step: canary 5,
/// experiment 5, stable 90, weights as v1alpha1 quantities.
#[test]
fn v1alpha1_split_with_experiment_uses_quantity_weights() {
    let ro = smi_rollout(json!({"trafficSplitName": "rollout-smi-experiment-trafficsplit"}));
    let state = TrafficState {
        weight: 5,
        additional_destinations: vec![WeightDestination {
            weight: 5,
            service_name: "rollout-smi-experiment-experiment-smi".into(),
            pod_template_hash: "abc".into(),
        }],
        ..TrafficState::default()
    };
    let desired = run(Router::Smi, &ro, &Observed::new(), &state).expect("desired");
    assert_eq!(desired.len(), 1);
    let d = &desired[0];
    assert_eq!(d.resource, ResourceType::traffic_split("v1alpha1"));
    assert_eq!(d.ownership, Ownership::Controlled);
    assert_json(
        &d.object,
        &json!({
            "apiVersion": "split.smi-spec.io/v1alpha1",
            "kind": "TrafficSplit",
            "metadata": {
                "name": "rollout-smi-experiment-trafficsplit",
                "namespace": "default",
                "ownerReferences": [owner("rollout-smi-experiment")],
            },
            "spec": {
                "service": "rollout-smi-experiment-stable",
                "backends": [
                    {"service": "rollout-smi-experiment-canary", "weight": "5"},
                    {"service": "rollout-smi-experiment-experiment-smi", "weight": "5"},
                    {"service": "rollout-smi-experiment-stable", "weight": "90"},
                ],
            },
        }),
    );
    assert_eq!(
        d.on_create,
        Some(RouterEvent::new(
            "TrafficSplitCreated",
            "TrafficSplit `rollout-smi-experiment-trafficsplit` created"
        ))
    );
}

/// v1alpha2 / v1alpha3 write integer weights; the split defaults to the Rollout name and the
/// root service is `rootService` when set.
#[test]
fn v1alpha2_and_v1alpha3_use_integer_weights() {
    let ro = smi_rollout(json!({"rootService": "rollout-linkerd"}));
    for (version, text) in [
        (SmiApiVersion::V1alpha2, "v1alpha2"),
        (SmiApiVersion::V1alpha3, "v1alpha3"),
    ] {
        let config = RouterConfig {
            smi_api_version: version,
            ..RouterConfig::default()
        };
        let desired =
            run_with(Router::Smi, &ro, &Observed::new(), &weight(20), &config).expect("desired");
        assert_eq!(desired[0].name, "rollout-smi-experiment");
        assert_json(
            &desired[0].object,
            &json!({
                "apiVersion": format!("split.smi-spec.io/{text}"),
                "kind": "TrafficSplit",
                "metadata": {
                    "name": "rollout-smi-experiment",
                    "namespace": "default",
                    "ownerReferences": [owner("rollout-smi-experiment")],
                },
                "spec": {
                    "service": "rollout-linkerd",
                    "backends": [
                        {"service": "rollout-smi-experiment-canary", "weight": 20},
                        {"service": "rollout-smi-experiment-stable", "weight": 80},
                    ],
                },
            }),
        );
    }
    assert_eq!(
        SmiApiVersion::parse("v1alpha3"),
        Some(SmiApiVersion::V1alpha3)
    );
    assert_eq!(SmiApiVersion::parse("v1"), None);
}

#[test]
fn existing_split_is_patched_or_refused() {
    let ro = smi_rollout(json!({}));
    let desired = run(Router::Smi, &ro, &Observed::new(), &weight(0)).expect("desired");
    let d = &desired[0];
    let mut live = d.object.clone();
    live["spec"]["backends"][0]["weight"] = json!("30");
    live["spec"]["backends"][1]["weight"] = json!("70");
    let write = plan_write(d, Some(&live), super::UID)
        .expect("plan")
        .expect("write");
    assert_eq!(
        write.action,
        super::super::WriteAction::Patch(json!({"spec": {"backends": [
            {"service": "rollout-smi-experiment-canary", "weight": "0"},
            {"service": "rollout-smi-experiment-stable", "weight": "100"},
        ]}}))
    );
    assert_eq!(write.event, None);
    live["metadata"]["ownerReferences"] = json!([]);
    let err = plan_write(d, Some(&live), super::UID).expect_err("not owned");
    assert_eq!(
        err.to_string(),
        "Rollout does not own TrafficSplit `rollout-smi-experiment`"
    );
}
