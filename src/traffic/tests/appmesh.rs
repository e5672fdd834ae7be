//! App Mesh VirtualRouter weighted targets and VirtualNode hash selectors.

use serde_json::{Value, json};

use super::super::{Observed, ResourceType, Router, TrafficState, appmesh};
use super::{assert_json, canary_rollout, run};

fn vsvc() -> Value {
    json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualService",
        "metadata": {"name": "my-svc", "namespace": "default"},
        "spec": {"provider": {"virtualRouter": {"virtualRouterRef": {"name": "my-vrouter"}}}},
    })
}

fn vrouter() -> Value {
    json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualRouter",
        "metadata": {"name": "my-vrouter", "namespace": "default"},
        "spec": {"routes": [
            {"name": "primary", "httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": [
                {"virtualNodeRef": {"name": "my-vn-canary"}, "weight": 0},
                {"virtualNodeRef": {"name": "my-vn-stable"}, "weight": 100},
                {"virtualNodeRef": {"name": "my-vn-canary", "namespace": "elsewhere"}, "weight": 3},
            ]}}},
            {"name": "other", "tcpRoute": {"action": {"weightedTargets": [
                {"virtualNodeRef": {"name": "my-vn-stable"}, "weight": 100},
            ]}}},
        ]},
    })
}

fn vnode(name: &str) -> Value {
    json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "my-app"}}},
    })
}

fn appmesh_rollout(routes: Value) -> crate::api::Rollout {
    canary_rollout(
        "my-rollout",
        json!({
            "trafficRouting": {"appMesh": {
                "virtualService": {"name": "my-svc", "routes": routes},
                "virtualNodeGroup": {
                    "canaryVirtualNodeRef": {"name": "my-vn-canary"},
                    "stableVirtualNodeRef": {"name": "my-vn-stable"},
                },
            }},
        }),
    )
}

fn observed() -> Observed {
    Observed::new()
        .with(vsvc())
        .with(vrouter())
        .with(vnode("my-vn-canary"))
        .with(vnode("my-vn-stable"))
}

#[test]
fn nodes_get_hashes_and_the_named_route_its_weights() {
    let state = TrafficState {
        weight: 30,
        canary_hash: "c4n4ry".into(),
        stable_hash: "st4bl3".into(),
        ..TrafficState::default()
    };
    let d = run(
        Router::AppMesh,
        &appmesh_rollout(json!(["primary"])),
        &observed(),
        &state,
    )
    .expect("desired");
    let names: Vec<(&str, &str)> = d
        .iter()
        .map(|d| (d.resource.kind.as_str(), d.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("VirtualNode", "my-vn-stable"),
            ("VirtualNode", "my-vn-canary"),
            ("VirtualRouter", "my-vrouter")
        ]
    );
    assert_json(
        &d[0].object["spec"]["podSelector"]["matchLabels"],
        &json!({"app": "my-app", "rollouts-pod-template-hash": "st4bl3"}),
    );
    assert_eq!(
        d[0].object["metadata"]["annotations"]["argo-rollouts.argoproj.io/managed-by-rollouts"],
        json!("my-rollout")
    );
    assert_eq!(
        d[1].object["spec"]["podSelector"]["matchLabels"]["rollouts-pod-template-hash"],
        json!("c4n4ry")
    );
    let routes = &d[2].object["spec"]["routes"];
    assert_json(
        &routes[0]["httpRoute"]["action"]["weightedTargets"],
        &json!([
            {"virtualNodeRef": {"name": "my-vn-canary"}, "weight": 30},
            {"virtualNodeRef": {"name": "my-vn-stable"}, "weight": 70},
            {"virtualNodeRef": {"name": "my-vn-canary", "namespace": "elsewhere"}, "weight": 3},
        ]),
    );
    // Not named: untouched.
    assert_eq!(routes[1], vrouter()["spec"]["routes"][1]);
}

#[test]
fn no_route_filter_edits_every_route_and_missing_hashes_get_placeholders() {
    let state = TrafficState {
        weight: 10,
        ..TrafficState::default()
    };
    let d = run(
        Router::AppMesh,
        &appmesh_rollout(Value::Null),
        &observed(),
        &state,
    )
    .expect("desired");
    assert_eq!(
        d[0].object["spec"]["podSelector"]["matchLabels"]["rollouts-pod-template-hash"],
        json!("stable-hash")
    );
    assert_eq!(
        d[1].object["spec"]["podSelector"]["matchLabels"]["rollouts-pod-template-hash"],
        json!("canary-hash")
    );
    assert_eq!(
        d[2].object["spec"]["routes"][1]["tcpRoute"]["action"]["weightedTargets"][0]["weight"],
        json!(90)
    );
}

#[test]
fn the_router_is_followed_from_the_service_and_missing_objects_are_named() {
    assert_eq!(
        appmesh::followed_refs(&ResourceType::appmesh_virtual_service(), &vsvc()),
        vec![(
            ResourceType::appmesh_virtual_router(),
            "default".to_string(),
            "my-vrouter".to_string()
        )]
    );
    assert!(appmesh::followed_refs(&ResourceType::virtual_service("v1alpha3"), &vsvc()).is_empty());
    let ro = appmesh_rollout(Value::Null);
    let state = TrafficState::default();
    let without_router = Observed::new()
        .with(vsvc())
        .with(vnode("my-vn-canary"))
        .with(vnode("my-vn-stable"));
    let err = run(Router::AppMesh, &ro, &without_router, &state).expect_err("router");
    assert_eq!(err.to_string(), "Virtual-router is missing");
    let err = run(Router::AppMesh, &ro, &Observed::new(), &state).expect_err("node");
    assert_eq!(err.to_string(), "Virtual-node is missing");
}
