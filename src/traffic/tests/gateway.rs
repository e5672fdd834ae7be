//! Gateway API routes as the `argoproj-labs/gatewayAPI` plugin sets them.

use serde_json::{Value, json};

use super::super::{Observed, Ownership, ResourceType, Router, TrafficState};
use super::{assert_json, canary_rollout, run, weight};
use crate::api::SetHeaderRoute;

fn gateway_rollout(config: Value, managed: Option<Value>) -> crate::api::Rollout {
    let mut tr = json!({"plugins": {"argoproj-labs/gatewayAPI": config}});
    if let Some(m) = managed {
        tr["managedRoutes"] = m;
    }
    canary_rollout(
        "demo",
        json!({
            "canaryService": "argo-rollouts-canary-service",
            "stableService": "argo-rollouts-stable-service",
            "trafficRouting": tr,
        }),
    )
}

fn backend(name: &str, w: i64) -> Value {
    json!({"group": "", "kind": "Service", "name": name, "port": 80, "weight": w})
}

fn http_route(name: &str, ns: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "9"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": rules},
    })
}

const CANARY: &str = "argo-rollouts-canary-service";
const STABLE: &str = "argo-rollouts-stable-service";

/// `httpRoute` + `namespace`: every canary backendRef gets W, every stable one 100 − W, in
/// every rule.
#[test]
fn http_route_weights_in_every_rule() {
    let ro = gateway_rollout(
        json!({"httpRoute": "argo-rollouts-http-route", "namespace": "gw-ns"}),
        None,
    );
    let live = http_route(
        "argo-rollouts-http-route",
        "gw-ns",
        json!([
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [backend(STABLE, 100), backend(CANARY, 0)]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/b"}}], "backendRefs": [backend(STABLE, 100), backend("other", 1)]},
        ]),
    );
    let desired = run(
        Router::GatewayApi,
        &ro,
        &Observed::new().with(live.clone()),
        &weight(30),
    )
    .expect("ok");
    assert_eq!(desired.len(), 1);
    let d = &desired[0];
    assert_eq!(
        d.resource,
        ResourceType::gateway_route(super::super::GatewayRouteKind::Http)
    );
    assert_eq!(d.namespace, "gw-ns");
    assert_eq!(d.ownership, Ownership::EditInPlace);
    let mut expected = live;
    expected["spec"]["rules"][0]["backendRefs"] = json!([backend(STABLE, 70), backend(CANARY, 30)]);
    expected["spec"]["rules"][1]["backendRefs"] = json!([backend(STABLE, 70), backend("other", 1)]);
    assert_json(&d.object, &expected);
}

/// `httpRoutes` and `grpcRoute` together, namespace defaulting to the Rollout's; a route
/// missing a backendRef gives the plugin's error; no routes at all too.
#[test]
fn route_lists_grpc_and_errors() {
    let ro = gateway_rollout(
        json!({"httpRoutes": [{"name": "a"}, {"name": "b", "useHeaderRoutes": true}], "grpcRoute": "g"}),
        None,
    );
    let rules = json!([{"backendRefs": [backend(STABLE, 100), backend(CANARY, 0)]}]);
    let mut grpc = http_route("g", "default", rules.clone());
    grpc["kind"] = json!("GRPCRoute");
    let observed = Observed::new()
        .with(http_route("a", "default", rules.clone()))
        .with(http_route("b", "default", rules))
        .with(grpc);
    let desired = run(Router::GatewayApi, &ro, &observed, &weight(50)).expect("ok");
    let names: Vec<(&str, &str)> = desired
        .iter()
        .map(|d| (d.resource.kind.as_str(), d.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("HTTPRoute", "a"), ("HTTPRoute", "b"), ("GRPCRoute", "g")]
    );
    for d in &desired {
        assert_json(
            &d.object["spec"]["rules"][0]["backendRefs"],
            &json!([backend(STABLE, 50), backend(CANARY, 50)]),
        );
    }

    let ro = gateway_rollout(json!({"httpRoute": "a"}), None);
    let only_stable = http_route(
        "a",
        "default",
        json!([{"backendRefs": [backend(STABLE, 100)]}]),
    );
    let err = run(
        Router::GatewayApi,
        &ro,
        &Observed::new().with(only_stable),
        &weight(5),
    )
    .expect_err("missing");
    assert_eq!(err.to_string(), "backendRef was not found in httpRoute");

    let ro = gateway_rollout(json!({"namespace": "x"}), None);
    let err = run(Router::GatewayApi, &ro, &Observed::new(), &weight(5)).expect_err("no routes");
    assert_eq!(
        err.to_string(),
        "No routes configured. One of 'tcpRoutes', 'httpRoutes', 'tcpRoute' or 'httpRoute' should be set"
    );
}

/// setHeaderRoute appends a rule to the canary with the header matches and records its index
/// in the plugin's ConfigMap; weights skip that rule; promotion removes both.
#[test]
fn header_route_rule_and_config_map() {
    let ro = gateway_rollout(json!({"httpRoute": "r"}), Some(json!([{"name": "hdr"}])));
    let main_rule = json!({
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [backend(STABLE, 100), backend(CANARY, 0)],
    });
    let live = http_route("r", "default", json!([main_rule.clone()]));
    let step: SetHeaderRoute = serde_json::from_value(json!({
        "name": "hdr",
        "match": [{"headerName": "X-Canary", "headerValue": {"prefix": "yes"}}],
    }))
    .expect("step");
    let state = TrafficState {
        header_route: Some(step),
        ..weight(0)
    };
    let desired = run(
        Router::GatewayApi,
        &ro,
        &Observed::new().with(live.clone()),
        &state,
    )
    .expect("ok");
    assert_eq!(desired.len(), 2);
    let header_rule = json!({
        "matches": [{
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"type": "RegularExpression", "name": "X-Canary", "value": "yes.*"}],
        }],
        "backendRefs": [{"group": "", "kind": "Service", "name": CANARY, "port": 80}],
    });
    let mut with_header = live.clone();
    with_header["spec"]["rules"] = json!([main_rule, header_rule]);
    assert_json(&desired[0].object, &with_header);
    assert_eq!(desired[1].ownership, Ownership::Shared);
    assert_json(
        &desired[1].object,
        &json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "argo-gatewayapi-configmap", "namespace": "default"},
            "data": {"httpManagedRoutes": "{\"hdr\":{\"r\":1}}"},
        }),
    );

    // Next step at weight 20: the header rule keeps its weightless canary backend.
    let cm = desired[1].object.clone();
    let observed = Observed::new().with(with_header.clone()).with(cm.clone());
    let moved = run(Router::GatewayApi, &ro, &observed, &weight(20)).expect("ok");
    assert_eq!(moved.len(), 1);
    assert_json(
        &moved[0].object["spec"]["rules"][1]["backendRefs"],
        &json!([{"group": "", "kind": "Service", "name": CANARY, "port": 80}]),
    );
    assert_json(
        &moved[0].object["spec"]["rules"][0]["backendRefs"],
        &json!([backend(STABLE, 80), backend(CANARY, 20)]),
    );

    let promoted = TrafficState {
        remove_managed_routes: true,
        ..weight(0)
    };
    let done = run(Router::GatewayApi, &ro, &observed, &promoted).expect("ok");
    assert_json(&done[0].object, &live);
    assert_json(&done[1].object["data"], &json!({"httpManagedRoutes": "{}"}));
}
