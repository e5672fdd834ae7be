//! nginx canary Ingress (spec §7.1).

use serde_json::{Value, json};

use super::super::nginx::canary_ingress_name;
use super::super::{
    Observed, Ownership, ResourceType, Router, RouterEvent, TrafficError, WriteAction, plan_write,
};
use super::{assert_json, canary_rollout, owner, rollout, run, weight};

/// The seed's header-routing example, as committed in `examples/`.
const HEADER_ROUTING: &str = include_str!("../../../examples/rollouts-demo-header-routing.yaml");

fn example_docs() -> Vec<Value> {
    serde_saphyr::from_multiple(HEADER_ROUTING).expect("example parses")
}

#[test]
fn seed_header_routing_setup_gives_header_cookie_and_weight_zero() {
    let docs = example_docs();
    let ro = docs
        .iter()
        .find(|d| d["kind"] == "Rollout")
        .cloned()
        .expect("rollout");
    let mut ingress = docs
        .iter()
        .find(|d| d["kind"] == "Ingress")
        .cloned()
        .expect("ingress");
    ingress["metadata"]["namespace"] = json!("default");
    let ro = rollout(ro);
    let observed = Observed::new().with(ingress);

    let desired = run(Router::Nginx, &ro, &observed, &weight(0)).expect("desired");

    assert_eq!(desired.len(), 1);
    let d = &desired[0];
    assert_eq!(d.name, "rollouts-demo-user-profile-ingress-canary");
    assert_eq!(d.namespace, "default");
    assert_eq!(d.ownership, Ownership::Controlled);
    assert_eq!(d.resource, ResourceType::ingress());
    assert_json(
        &d.object,
        &json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "rollouts-demo-user-profile-ingress-canary",
                "namespace": "default",
                "annotations": {
                    "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
                    "nginx.ingress.kubernetes.io/canary-by-header-value": "iwantsit",
                    "nginx.ingress.kubernetes.io/canary-by-cookie": "Canary",
                    "nginx.ingress.kubernetes.io/canary": "true",
                    "nginx.ingress.kubernetes.io/canary-weight": "0",
                },
                "ownerReferences": [owner("rollouts-demo")],
            },
            "spec": {
                "ingressClassName": "nginx",
                "rules": [{
                    "host": "rollouts-demo.local",
                    "http": {"paths": [{
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": "rollouts-demo-canary", "port": {"name": "http"}}},
                    }]},
                }],
            },
        }),
    );
    assert_eq!(
        d.on_create,
        Some(RouterEvent::new(
            "CreatingCanaryIngress",
            "Creating canary ingress `rollouts-demo-user-profile-ingress-canary` with weight `0`"
        ))
    );
    assert_eq!(
        d.on_update,
        Some(RouterEvent::new(
            "PatchingCanaryIngress",
            "Updating Ingress `rollouts-demo-user-profile-ingress-canary` to desiredWeight '0'"
        ))
    );
}

fn stable_ingress(name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"team": "a"},
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                "nginx.ingress.kubernetes.io/rewrite-target": "/",
            },
        },
        "spec": {
            "tls": [{"hosts": ["a.example"], "secretName": "a-tls"}],
            "rules": rules,
        },
    })
}

fn path(p: &str, svc: &str) -> Value {
    json!({"path": p, "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": 80}}}})
}

/// stableIngresses, rule filtering, tls and class copy, both annotation maps, a custom prefix
/// and maxTrafficWeight, at weight 30.
#[test]
fn stable_ingresses_copy_matching_rules_and_annotations() {
    let ro = canary_rollout(
        "web",
        json!({
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "trafficRouting": {
                "maxTrafficWeight": 1000,
                "nginx": {
                    "annotationPrefix": "custom.nginx.org",
                    "stableIngresses": ["one", "two"],
                    "additionalIngressAnnotations": {
                        "canary-by-header": "X-Canary",
                        "custom.nginx.org/canary-by-cookie": "c",
                        "canary": "false",
                    },
                    "canaryIngressAnnotations": {"example.com/team": "web"},
                },
            },
        }),
    );
    let one = stable_ingress(
        "one",
        json!([
            {"host": "a.example", "http": {"paths": [path("/", "web-stable"), path("/other", "other")]}},
            {"host": "b.example", "http": {"paths": [path("/", "other")]}},
        ]),
    );
    let two = stable_ingress(
        "two",
        json!([{"host": "c.example", "http": {"paths": [path("/api", "web-stable")]}}]),
    );
    let observed = Observed::new().with(one).with(two);

    let desired = run(Router::Nginx, &ro, &observed, &weight(30)).expect("desired");

    let names: Vec<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec!["web-one-canary", "web-two-canary"]);
    let annotations = json!({
        "kubernetes.io/ingress.class": "nginx",
        "custom.nginx.org/canary-by-header": "X-Canary",
        "custom.nginx.org/canary-by-cookie": "c",
        "custom.nginx.org/canary": "true",
        "custom.nginx.org/canary-weight": "30",
        "custom.nginx.org/canary-weight-total": "1000",
        "example.com/team": "web",
    });
    assert_json(
        &desired[0].object,
        &json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "web-one-canary",
                "namespace": "default",
                "annotations": annotations,
                "ownerReferences": [owner("web")],
            },
            "spec": {
                "tls": [{"hosts": ["a.example"], "secretName": "a-tls"}],
                "rules": [
                    {"host": "a.example", "http": {"paths": [path("/", "web-canary"), path("/other", "other")]}},
                ],
            },
        }),
    );
    assert_json(
        &desired[1].object["spec"]["rules"],
        &json!([{"host": "c.example", "http": {"paths": [path("/api", "web-canary")]}}]),
    );
    assert_json(&desired[1].object["metadata"]["annotations"], &annotations);
}

#[test]
fn canary_ingress_name_is_cut_to_253_characters() {
    assert_eq!(canary_ingress_name("ro", "ing"), "ro-ing-canary");
    let long_rollout = "r".repeat(200);
    let long_ingress = "i".repeat(100);
    let name = canary_ingress_name(&long_rollout, &long_ingress);
    assert_eq!(name.len(), 253);
    let expected = format!("{}-{}-canary", "r".repeat(200), "i".repeat(45));
    assert_eq!(name, expected);
}

fn simple_rollout() -> crate::api::Rollout {
    canary_rollout(
        "web",
        json!({
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "trafficRouting": {"nginx": {"stableIngress": "web"}},
        }),
    )
}

#[test]
fn errors_carry_upstream_messages() {
    let ro = simple_rollout();
    let err = run(Router::Nginx, &ro, &Observed::new(), &weight(10)).expect_err("missing");
    assert_eq!(
        err.to_string(),
        "error retrieving stableIngress `web` from cache: ingress.networking.k8s.io \"web\" not found"
    );
    let other = stable_ingress("web", json!([{"http": {"paths": [path("/", "other")]}}]));
    let err = run(
        Router::Nginx,
        &ro,
        &Observed::new().with(other),
        &weight(10),
    )
    .expect_err("no rules");
    assert_eq!(
        err,
        TrafficError::NoRulesForService {
            ingress: "web".into(),
            service: "web-stable".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "ingress `web` has no rules using service web-stable backend"
    );
}

/// The write decisions against a live canary Ingress: create, patch keeping extra annotations
/// and labels, no-op, refusal when another object controls it.
#[test]
fn writes_create_patch_noop_and_refuse() {
    let ro = simple_rollout();
    let stable = stable_ingress(
        "web",
        json!([{"http": {"paths": [path("/", "web-stable")]}}]),
    );
    let observed = Observed::new().with(stable);
    let desired = run(Router::Nginx, &ro, &observed, &weight(40)).expect("desired");
    let d = &desired[0];

    let create = plan_write(d, None, super::UID)
        .expect("plan")
        .expect("write");
    assert_eq!(create.action, WriteAction::Create(d.object.clone()));
    assert_eq!(create.event, d.on_create);

    // The live object as a user left it: weight 10, an extra annotation and label, a stale tls.
    let mut live = d.object.clone();
    live["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] = json!("10");
    live["metadata"]["annotations"]["example.com/keep"] = json!("yes");
    live["metadata"]["labels"] = json!({"keep": "me"});
    live["metadata"]["resourceVersion"] = json!("77");
    live["spec"]["defaultBackend"] = json!({"service": {"name": "x", "port": {"number": 1}}});
    live["status"] = json!({"loadBalancer": {}});
    let patch = plan_write(d, Some(&live), super::UID)
        .expect("plan")
        .expect("write");
    assert_eq!(
        patch.action,
        WriteAction::Patch(json!({
            "metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "40"}},
            "spec": {"defaultBackend": null},
        }))
    );
    assert_eq!(
        patch.event,
        Some(RouterEvent::new(
            "PatchingCanaryIngress",
            "Updating Ingress `web-web-canary` to desiredWeight '40'"
        ))
    );

    assert_eq!(
        plan_write(d, Some(&d.object), super::UID).expect("plan"),
        None
    );

    let mut foreign = d.object.clone();
    foreign["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    let err = plan_write(d, Some(&foreign), super::UID).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "canary ingress `web-web-canary` controlled by different object"
    );
    let mut no_owner = d.object.clone();
    no_owner["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("ownerReferences");
    assert!(plan_write(d, Some(&no_owner), super::UID).is_err());
}
