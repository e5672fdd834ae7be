//! Traffic routers against the in-process sandbox API server: observe → desired → apply for
//! the nginx canary Ingress (create, patch keeping a user's annotation, no-op, refusal of an
//! Ingress another object controls), the SMI TrafficSplit, Istio objects edited in place
//! (including the conflict on a stale read) and Gateway API header routes with the plugin's
//! ConfigMap.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use davy::api::Rollout;
use davy::sandbox::apiserver::ApiServer;
use davy::traffic::{
    ApplyFailure, Observed, RouterConfig, RouterEvent, TrafficError, TrafficState, apply,
    desired_all, observe, routers,
};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

/// The seed's header-routing setup.
const HEADER_ROUTING: &str = include_str!("../examples/rollouts-demo-header-routing.yaml");

fn setup() -> (ApiServer, Client) {
    let server = ApiServer::new();
    // Davy's own CRDs: the Rollout must exist so owner references point at a real object.
    server.install_davy_crds().expect("davy crds");
    server
        .install_crds_from_yaml(common::router_crds::ROUTER_CRDS)
        .expect("router crds");
    let client = server.client();
    (server, client)
}

fn dynamic(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version,
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn ingresses(client: &Client) -> Api<DynamicObject> {
    dynamic(client, "networking.k8s.io", "v1", "Ingress", "ingresses")
}

async fn create(api: &Api<DynamicObject>, doc: Value) -> Value {
    let obj: DynamicObject = serde_json::from_value(doc).expect("object");
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    serde_json::to_value(created).expect("json")
}

async fn get(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.expect("get")).expect("json")
}

/// Creates `rollout_doc` in the sandbox and returns it decoded (with its uid).
async fn create_rollout(client: &Client, rollout_doc: Value) -> Rollout {
    let api = dynamic(client, "argoproj.io", "v1alpha1", "Rollout", "rollouts");
    let created = create(&api, rollout_doc).await;
    serde_json::from_value(created).expect("rollout decodes")
}

/// One reconcile of the routers: observe what they watch, compute, apply.
async fn reconcile(
    client: &Client,
    rollout: &Rollout,
    state: &TrafficState,
) -> Result<Vec<RouterEvent>, ApplyFailure> {
    let config = RouterConfig::default();
    let mut refs = Vec::new();
    for router in routers(rollout).expect("routers") {
        refs.extend(router.watched(rollout, &config).expect("watched"));
    }
    let observed: Observed = observe(client, &refs).await.expect("observe");
    let desired =
        desired_all(rollout, &observed, state, &config).map_err(|error| ApplyFailure {
            events: Vec::new(),
            error,
        })?;
    let uid = rollout.metadata.uid.clone().expect("uid");
    apply(client, &uid, &desired).await
}

fn weight(w: i32) -> TrafficState {
    TrafficState {
        weight: w,
        ..TrafficState::default()
    }
}

#[tokio::test]
async fn nginx_canary_ingress_create_patch_and_ownership_refusal() {
    let (_server, client) = setup();
    let docs: Vec<Value> = serde_saphyr::from_multiple(HEADER_ROUTING).expect("example");
    let rollout_doc = docs
        .iter()
        .find(|d| d["kind"] == "Rollout")
        .cloned()
        .expect("rollout");
    let stable = docs
        .iter()
        .find(|d| d["kind"] == "Ingress")
        .cloned()
        .expect("ingress");
    create(&ingresses(&client), stable).await;
    let rollout = create_rollout(&client, rollout_doc).await;
    let canary_name = "rollouts-demo-user-profile-ingress-canary";

    // Create.
    let events = reconcile(&client, &rollout, &weight(0))
        .await
        .expect("create");
    assert_eq!(
        events,
        vec![RouterEvent::new(
            "CreatingCanaryIngress",
            format!("Creating canary ingress `{canary_name}` with weight `0`")
        )]
    );
    let canary = get(&ingresses(&client), canary_name).await;
    assert_eq!(
        canary["metadata"]["annotations"],
        json!({
            "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
            "nginx.ingress.kubernetes.io/canary-by-header-value": "iwantsit",
            "nginx.ingress.kubernetes.io/canary-by-cookie": "Canary",
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": "0",
        })
    );
    assert_eq!(
        canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        json!("rollouts-demo-canary")
    );
    assert_eq!(
        canary["metadata"]["ownerReferences"][0]["uid"],
        json!(rollout.metadata.uid)
    );
    assert_eq!(
        canary["metadata"]["managedFields"][0]["manager"],
        json!("davy-controller")
    );

    // A user annotates the canary Ingress; the weight patch keeps it.
    let user = PatchParams::default();
    ingresses(&client)
        .patch(
            canary_name,
            &user,
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/owner": "team-a"}}})),
        )
        .await
        .expect("user patch");
    let events = reconcile(&client, &rollout, &weight(20))
        .await
        .expect("patch");
    assert_eq!(
        events,
        vec![RouterEvent::new(
            "PatchingCanaryIngress",
            format!("Updating Ingress `{canary_name}` to desiredWeight '20'")
        )]
    );
    let canary = get(&ingresses(&client), canary_name).await;
    assert_eq!(
        canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"],
        json!("20")
    );
    assert_eq!(
        canary["metadata"]["annotations"]["example.com/owner"],
        json!("team-a")
    );

    // Same state again: nothing to write.
    let events = reconcile(&client, &rollout, &weight(20))
        .await
        .expect("no-op");
    assert!(events.is_empty(), "{events:?}");

    // A second Rollout whose canary Ingress name is already taken by an unowned Ingress.
    let mut other = docs
        .iter()
        .find(|d| d["kind"] == "Rollout")
        .cloned()
        .expect("rollout");
    other["metadata"]["name"] = json!("other");
    let other = create_rollout(&client, other).await;
    let mut squatter = get(&ingresses(&client), "user-profile-ingress").await;
    squatter["metadata"] =
        json!({"name": "other-user-profile-ingress-canary", "namespace": "default"});
    create(&ingresses(&client), squatter).await;
    let failure = reconcile(&client, &other, &weight(0))
        .await
        .expect_err("refused");
    assert_eq!(
        failure.error,
        TrafficError::CanaryIngressNotControlled("other-user-profile-ingress-canary".into())
    );
    assert_eq!(
        failure.to_string(),
        "canary ingress `other-user-profile-ingress-canary` controlled by different object"
    );
}

fn canary_rollout_doc(name: &str, traffic_routing: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
            "strategy": {"canary": {
                "stableService": format!("{name}-stable"),
                "canaryService": format!("{name}-canary"),
                "trafficRouting": traffic_routing,
            }},
        },
    })
}

#[tokio::test]
async fn smi_traffic_split_is_created_then_patched() {
    let (_server, client) = setup();
    let rollout = create_rollout(&client, canary_rollout_doc("mesh", json!({"smi": {}}))).await;
    let splits = dynamic(
        &client,
        "split.smi-spec.io",
        "v1alpha1",
        "TrafficSplit",
        "trafficsplits",
    );

    let events = reconcile(&client, &rollout, &weight(5))
        .await
        .expect("create");
    assert_eq!(
        events,
        vec![RouterEvent::new(
            "TrafficSplitCreated",
            "TrafficSplit `mesh` created"
        )]
    );
    let events = reconcile(&client, &rollout, &weight(40))
        .await
        .expect("patch");
    assert!(
        events.is_empty(),
        "upstream records no event on patch: {events:?}"
    );
    let split = get(&splits, "mesh").await;
    assert_eq!(
        split["spec"],
        json!({"service": "mesh-stable", "backends": [
            {"service": "mesh-canary", "weight": "40"},
            {"service": "mesh-stable", "weight": "60"},
        ]})
    );
}

#[tokio::test]
async fn istio_objects_are_edited_in_place_and_stale_reads_conflict() {
    let (_server, client) = setup();
    let vsvcs = dynamic(
        &client,
        "networking.istio.io",
        "v1alpha3",
        "VirtualService",
        "virtualservices",
    );
    let drules = dynamic(
        &client,
        "networking.istio.io",
        "v1alpha3",
        "DestinationRule",
        "destinationrules",
    );
    let sub = |s: &str, w: i64| json!({"destination": {"host": "svc", "subset": s}, "weight": w});
    create(
        &vsvcs,
        json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": "vsvc", "namespace": "default"},
            "spec": {"hosts": ["svc"], "http": [{"name": "primary", "route": [sub("stable", 100), sub("canary", 0)]}]},
        }),
    )
    .await;
    create(
        &drules,
        json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
            "metadata": {"name": "dr", "namespace": "default"},
            "spec": {"host": "svc", "subsets": [{"name": "stable", "labels": {"app": "svc"}}, {"name": "canary", "labels": {"app": "svc"}}]},
        }),
    )
    .await;
    let rollout = create_rollout(
        &client,
        canary_rollout_doc(
            "svc",
            json!({"istio": {
                "virtualService": {"name": "vsvc", "routes": ["primary"]},
                "destinationRule": {"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable"},
            }}),
        ),
    )
    .await;
    let state = TrafficState {
        weight: 25,
        canary_hash: "c1".into(),
        stable_hash: "s1".into(),
        ..TrafficState::default()
    };
    let events = reconcile(&client, &rollout, &state).await.expect("apply");
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec!["UpdatedDestinationRule", "Updated VirtualService"]
    );
    let vs = get(&vsvcs, "vsvc").await;
    assert_eq!(
        vs["spec"]["http"][0]["route"],
        json!([sub("stable", 75), sub("canary", 25)])
    );
    assert_eq!(vs["spec"]["hosts"], json!(["svc"]));
    let dr = get(&drules, "dr").await;
    assert_eq!(
        dr["spec"]["subsets"],
        json!([
            {"name": "stable", "labels": {"app": "svc", "rollouts-pod-template-hash": "s1"}},
            {"name": "canary", "labels": {"app": "svc", "rollouts-pod-template-hash": "c1"}},
        ])
    );
    assert_eq!(
        dr["metadata"]["annotations"]["argo-rollouts.argoproj.io/managed-by-rollouts"],
        json!("svc")
    );

    // Observe, then someone edits the VirtualService before Davy writes: 409, not a clobber.
    let config = RouterConfig::default();
    let mut refs = Vec::new();
    for router in routers(&rollout).expect("routers") {
        refs.extend(router.watched(&rollout, &config).expect("watched"));
    }
    let observed = observe(&client, &refs).await.expect("observe");
    vsvcs
        .patch(
            "vsvc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hosts": ["svc", "svc.example"]}})),
        )
        .await
        .expect("user edit");
    let desired = desired_all(&rollout, &observed, &weight(50), &config).expect("desired");
    let failure = apply(
        &client,
        rollout.metadata.uid.as_deref().expect("uid"),
        &desired,
    )
    .await
    .expect_err("conflict");
    match failure.error {
        TrafficError::Api {
            code: Some(409), ..
        } => {}
        other => panic!("expected a 409 conflict, got {other:?}"),
    }
    assert_eq!(
        get(&vsvcs, "vsvc").await["spec"]["hosts"],
        json!(["svc", "svc.example"])
    );
}

#[tokio::test]
async fn gateway_header_route_writes_route_and_plugin_config_map() {
    let (_server, client) = setup();
    let routes = dynamic(
        &client,
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "httproutes",
    );
    let configmaps = dynamic(&client, "", "v1", "ConfigMap", "configmaps");
    let backend = |n: &str, w: i64| json!({"name": n, "port": 80, "weight": w});
    create(
        &routes,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web-route", "namespace": "default"},
            "spec": {"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [backend("gw-stable", 100), backend("gw-canary", 0)]}]},
        }),
    )
    .await;
    let mut doc = canary_rollout_doc(
        "gw",
        json!({
            "managedRoutes": [{"name": "hdr"}],
            "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "web-route", "namespace": "default"}},
        }),
    );
    doc["metadata"]["name"] = json!("gw");
    let rollout = create_rollout(&client, doc).await;
    let state = TrafficState {
        weight: 10,
        header_route: Some(
            serde_json::from_value(json!({"name": "hdr", "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}))
                .expect("step"),
        ),
        ..TrafficState::default()
    };
    reconcile(&client, &rollout, &state).await.expect("apply");
    let route = get(&routes, "web-route").await;
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"],
        json!([backend("gw-stable", 90), backend("gw-canary", 10)])
    );
    assert_eq!(
        route["spec"]["rules"][1]["matches"][0]["headers"],
        json!([{"type": "Exact", "name": "X-Canary", "value": "yes"}])
    );
    let cm = get(&configmaps, "argo-gatewayapi-configmap").await;
    assert_eq!(
        cm["data"],
        json!({"httpManagedRoutes": "{\"hdr\":{\"web-route\":1}}"})
    );

    let done = TrafficState {
        remove_managed_routes: true,
        ..weight(0)
    };
    reconcile(&client, &rollout, &done).await.expect("promote");
    let route = get(&routes, "web-route").await;
    assert_eq!(route["spec"]["rules"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        get(&configmaps, "argo-gatewayapi-configmap").await["data"],
        json!({"httpManagedRoutes": "{}"})
    );
}
