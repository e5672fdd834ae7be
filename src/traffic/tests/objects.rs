//! Router discovery, merge diffs and write planning for edited-in-place and shared objects.

use serde_json::json;

use super::super::objects::merge_diff;
use super::super::{
    DesiredObject, Observed, Ownership, ResourceType, Router, TrafficError, WriteAction,
    plan_write, routers,
};
use super::canary_rollout;

#[test]
fn routers_follow_upstream_order_and_reject_unknown_plugins() {
    let ro = canary_rollout(
        "r",
        json!({"trafficRouting": {
            "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "x"}},
            "smi": {},
            "nginx": {"stableIngress": "i"},
            "istio": {"virtualService": {"name": "v"}},
        }}),
    );
    assert_eq!(
        routers(&ro),
        Ok(vec![
            Router::Istio,
            Router::Nginx,
            Router::Smi,
            Router::GatewayApi
        ])
    );
    let ro = canary_rollout("r", json!({"trafficRouting": {"plugins": {"acme/x": {}}}}));
    assert_eq!(
        routers(&ro),
        Err(TrafficError::UnsupportedPlugin("acme/x".into()))
    );
    assert_eq!(routers(&canary_rollout("r", json!({}))), Ok(vec![]));
    let ro = canary_rollout(
        "r",
        json!({"trafficRouting": {
            "apisix": {"route": {"name": "a"}},
            "traefik": {"weightedTraefikServiceName": "t"},
            "appMesh": {},
            "ambassador": {"mappings": ["m"]},
            "smi": {},
            "alb": {"ingress": "i", "servicePort": 80},
        }}),
    );
    assert_eq!(
        routers(&ro),
        Ok(vec![
            Router::Alb,
            Router::Smi,
            Router::Ambassador,
            Router::AppMesh,
            Router::Traefik,
            Router::Apisix
        ])
    );
}

#[test]
fn merge_diff_prunes_only_when_asked() {
    let live = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
    let want = json!({"a": 1.0, "b": {"c": 5}, "e": [1]});
    assert_eq!(
        merge_diff(&live, &want, true),
        Some(json!({"b": {"c": 5, "d": null}, "e": [1]}))
    );
    assert_eq!(
        merge_diff(&live, &want, false),
        Some(json!({"b": {"c": 5}, "e": [1]}))
    );
    assert_eq!(merge_diff(&live, &live, true), None);
}

fn in_place(object: serde_json::Value, ownership: Ownership) -> DesiredObject {
    DesiredObject {
        resource: ResourceType::virtual_service("v1alpha3"),
        namespace: "default".into(),
        name: "vs".into(),
        object,
        ownership,
        on_create: None,
        on_update: None,
    }
}

/// Edited objects must exist and are patched with the observed resourceVersion; shared ones
/// are created when absent.
#[test]
fn edit_in_place_and_shared_writes() {
    let observed = json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "default", "resourceVersion": "12"},
        "spec": {"http": [{"route": [{"weight": 100}]}], "hosts": ["a"]},
    });
    let mut want = observed.clone();
    want["spec"]["http"][0]["route"][0]["weight"] = json!(80);
    let d = in_place(want, Ownership::EditInPlace);
    assert_eq!(
        plan_write(&d, None, "u").expect_err("absent").to_string(),
        "virtualservices.networking.istio.io \"vs\" not found"
    );
    let write = plan_write(&d, Some(&observed), "u")
        .expect("plan")
        .expect("write");
    assert_eq!(
        write.action,
        WriteAction::Patch(json!({
            "metadata": {"resourceVersion": "12"},
            "spec": {"http": [{"route": [{"weight": 80}]}]},
        }))
    );

    let shared = in_place(
        json!({"kind": "ConfigMap", "data": {"k": "v"}}),
        Ownership::Shared,
    );
    let write = plan_write(&shared, None, "u")
        .expect("plan")
        .expect("write");
    assert_eq!(write.action, WriteAction::Create(shared.object.clone()));

    let mut observed_set = Observed::new();
    observed_set.insert(observed);
    assert_eq!(observed_set.len(), 1);
    assert!(
        observed_set
            .get(&ResourceType::virtual_service("v1beta1"), "default", "vs")
            .is_some(),
        "lookup ignores the served version"
    );
}
