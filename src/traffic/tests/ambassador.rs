//! Ambassador canary Mappings: created from the base Mapping, weighted, set to 0 then deleted.

use serde_json::{Value, json};

use super::super::{Observed, Ownership, Router, WriteAction, plan_write};
use super::{UID, assert_json, canary_rollout, run, weight};

fn mapping(name: &str, service: &str, weight: Option<i64>) -> Value {
    let mut m = json!({
        "apiVersion": "getambassador.io/v2",
        "kind": "Mapping",
        "metadata": {"name": name, "namespace": "default", "uid": "m-uid",
                     "resourceVersion": "4", "labels": {"team": "a"}},
        "spec": {"prefix": "/echo", "rewrite": "/", "service": service},
    });
    if let Some(w) = weight {
        m["spec"]["weight"] = json!(w);
    }
    m
}

fn ambassador_rollout() -> crate::api::Rollout {
    canary_rollout(
        "rollout",
        json!({
            "stableService": "echo",
            "canaryService": "echo-canary",
            "trafficRouting": {"ambassador": {"mappings": ["echo-mapping"]}},
        }),
    )
}

#[test]
fn creates_the_canary_mapping_from_the_base_one_without_its_metadata() {
    let observed = Observed::new().with(mapping("echo-mapping", "echo.default:8080", None));
    let desired = run(
        Router::Ambassador,
        &ambassador_rollout(),
        &observed,
        &weight(20),
    )
    .expect("desired");
    assert_eq!(desired.len(), 1);
    let d = &desired[0];
    assert_eq!(d.name, "echo-mapping-canary");
    assert_eq!(d.ownership, Ownership::Shared);
    assert_json(
        &d.object,
        &json!({
            "apiVersion": "getambassador.io/v2",
            "kind": "Mapping",
            "spec": {"prefix": "/echo", "rewrite": "/", "service": "echo-canary.default:8080",
                     "weight": 20},
            "metadata": {"name": "echo-mapping-canary", "namespace": "default"},
        }),
    );
    let write = plan_write(d, None, UID).expect("plan").expect("write");
    assert_eq!(write.action, WriteAction::Create(d.object.clone()));
    assert_eq!(
        write.event.expect("event").message,
        "Set canary mapping weight to 20"
    );
}

#[test]
fn weight_zero_creates_nothing_sets_zero_then_deletes() {
    let ro = ambassador_rollout();
    let base = mapping("echo-mapping", "echo.default:8080", None);
    // No canary Mapping and weight 0: nothing to write.
    let d = run(
        Router::Ambassador,
        &ro,
        &Observed::new().with(base.clone()),
        &weight(0),
    )
    .expect("desired");
    assert_eq!(plan_write(&d[0], None, UID).expect("plan"), None);
    // A canary Mapping at 40: first set to 0.
    let canary = mapping("echo-mapping-canary", "echo-canary.default:8080", Some(40));
    let observed = Observed::new().with(base.clone()).with(canary.clone());
    let d = run(Router::Ambassador, &ro, &observed, &weight(0)).expect("desired");
    let write = plan_write(&d[0], Some(&canary), UID)
        .expect("plan")
        .expect("write");
    assert_eq!(
        write.action,
        WriteAction::Patch(json!({"spec": {"weight": 0}, "metadata": {"resourceVersion": "4"}}))
    );
    // Found at 0: deleted.
    let at_zero = mapping("echo-mapping-canary", "echo-canary.default:8080", Some(0));
    let observed = Observed::new().with(base).with(at_zero.clone());
    let d = run(Router::Ambassador, &ro, &observed, &weight(0)).expect("desired");
    assert_eq!(d[0].ownership, Ownership::Absent);
    let write = plan_write(&d[0], Some(&at_zero), UID)
        .expect("plan")
        .expect("write");
    assert_eq!(write.action, WriteAction::Delete);
}

#[test]
fn a_weighted_base_mapping_is_refused() {
    let observed = Observed::new().with(mapping("echo-mapping", "echo", Some(10)));
    let err = run(
        Router::Ambassador,
        &ambassador_rollout(),
        &observed,
        &weight(5),
    )
    .expect_err("weighted base");
    assert_eq!(
        err.to_string(),
        "Ambassador mapping \"echo-mapping\" can not define weight"
    );
    let err = run(
        Router::Ambassador,
        &ambassador_rollout(),
        &Observed::new(),
        &weight(5),
    )
    .expect_err("absent base");
    assert_eq!(
        err.to_string(),
        "mappings.getambassador.io \"echo-mapping\" not found"
    );
}
