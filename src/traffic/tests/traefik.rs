//! Traefik weighted TraefikService.

use serde_json::{Value, json};

use super::super::{Observed, Ownership, ResourceType, Router, TrafficError};
use super::{assert_json, canary_rollout, run, weight};

fn traefik_service(services: Value) -> Value {
    json!({
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "TraefikService",
        "metadata": {"name": "traefik-service", "namespace": "default", "resourceVersion": "3"},
        "spec": {"weighted": {"services": services}},
    })
}

fn traefik_rollout() -> crate::api::Rollout {
    canary_rollout(
        "rollout",
        json!({
            "stableService": "stable-svc",
            "canaryService": "canary-svc",
            "trafficRouting": {"traefik": {"weightedTraefikServiceName": "traefik-service"}},
        }),
    )
}

#[test]
fn weights_the_canary_and_the_stable_service_keeping_the_rest() {
    let live = traefik_service(json!([
        {"name": "stable-svc", "port": 80},
        {"name": "canary-svc", "port": 80},
        {"name": "mirror", "port": 80, "weight": 7},
    ]));
    let observed = Observed::new().with(live);
    let desired = run(Router::Traefik, &traefik_rollout(), &observed, &weight(30)).expect("ok");
    assert_eq!(desired.len(), 1);
    assert_eq!(desired[0].resource, ResourceType::traefik_service());
    assert_eq!(desired[0].ownership, Ownership::EditInPlace);
    assert_json(
        &desired[0].object["spec"]["weighted"]["services"],
        &json!([
            {"name": "stable-svc", "port": 80, "weight": 70},
            {"name": "canary-svc", "port": 80, "weight": 30},
            {"name": "mirror", "port": 80, "weight": 7},
        ]),
    );
}

#[test]
fn missing_objects_and_services_give_upstreams_errors() {
    let ro = traefik_rollout();
    let err = run(Router::Traefik, &ro, &Observed::new(), &weight(1)).expect_err("absent");
    assert_eq!(
        err.to_string(),
        "traefikservices.traefik.io \"traefik-service\" not found"
    );
    let mut no_list = traefik_service(json!([]));
    no_list["spec"] = json!({});
    let err = run(
        Router::Traefik,
        &ro,
        &Observed::new().with(no_list),
        &weight(1),
    )
    .expect_err("no services");
    assert_eq!(
        err,
        TrafficError::InvalidRoute(
            "spec.weighted.services was not found in traefik service manifest".into()
        )
    );
    let only_stable = traefik_service(json!([{"name": "stable-svc"}]));
    let err = run(
        Router::Traefik,
        &ro,
        &Observed::new().with(only_stable),
        &weight(1),
    )
    .expect_err("no canary");
    assert_eq!(err.to_string(), "traefik canary service was not found");
    let only_canary = traefik_service(json!([{"name": "canary-svc"}]));
    let err = run(
        Router::Traefik,
        &ro,
        &Observed::new().with(only_canary),
        &weight(1),
    )
    .expect_err("no stable");
    assert_eq!(err.to_string(), "traefik stable service was not found");
}
