//! APISIX ApisixRoute weights and header-route copies.

use serde_json::{Value, json};

use super::super::{Observed, Ownership, Router, TrafficState, WriteAction, plan_write};
use super::{UID, assert_json, canary_rollout, owner, run, weight};
use crate::api::canary::{HeaderRoutingMatch, SetHeaderRoute};
use crate::api::common::StringMatch;

fn route() -> Value {
    json!({
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": "rollouts-apisix-route", "namespace": "default",
                     "resourceVersion": "9", "uid": "r-uid"},
        "spec": {"http": [{
            "name": "rollouts-apisix",
            "match": {"paths": ["/*"], "methods": ["GET"]},
            "backends": [
                {"serviceName": "rollout-apisix-canary-stable", "servicePort": 80},
                {"serviceName": "rollout-apisix-canary-canary", "servicePort": 80},
            ],
        }]},
    })
}

fn apisix_rollout() -> crate::api::Rollout {
    canary_rollout(
        "rollout-apisix-canary",
        json!({
            "stableService": "rollout-apisix-canary-stable",
            "canaryService": "rollout-apisix-canary-canary",
            "trafficRouting": {
                "managedRoutes": [{"name": "set-header"}],
                "apisix": {"route": {"name": "rollouts-apisix-route",
                                     "rules": ["rollouts-apisix"]}},
            },
        }),
    )
}

#[test]
fn weights_the_rule_backends() {
    let d = run(
        Router::Apisix,
        &apisix_rollout(),
        &Observed::new().with(route()),
        &weight(25),
    )
    .expect("desired");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].ownership, Ownership::EditInPlace);
    assert_json(
        &d[0].object["spec"]["http"][0]["backends"],
        &json!([
            {"serviceName": "rollout-apisix-canary-stable", "servicePort": 80, "weight": 75},
            {"serviceName": "rollout-apisix-canary-canary", "servicePort": 80, "weight": 25},
        ]),
    );
    let mut bad = route();
    bad["spec"]["http"][0]["name"] = json!("other");
    let err = run(
        Router::Apisix,
        &apisix_rollout(),
        &Observed::new().with(bad),
        &weight(5),
    )
    .expect_err("rule");
    assert_eq!(
        err.to_string(),
        "Apisix http route rule rollouts-apisix not found"
    );
}

fn header(matches: Option<Vec<StringMatch>>) -> SetHeaderRoute {
    SetHeaderRoute {
        name: Some("set-header".into()),
        match_: matches.map(|list| {
            list.into_iter()
                .map(|m| HeaderRoutingMatch {
                    header_name: "trace".into(),
                    header_value: Some(m),
                })
                .collect()
        }),
    }
}

#[test]
fn header_route_is_a_controlled_copy_to_the_canary_and_is_deleted_on_removal() {
    let ro = apisix_rollout();
    let state = TrafficState {
        weight: 20,
        header_route: Some(header(Some(vec![
            StringMatch {
                exact: Some("debug".into()),
                ..StringMatch::default()
            },
            StringMatch {
                prefix: Some("dev".into()),
                ..StringMatch::default()
            },
        ]))),
        ..TrafficState::default()
    };
    let d = run(Router::Apisix, &ro, &Observed::new().with(route()), &state).expect("desired");
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].name, "set-header");
    assert_eq!(d[0].ownership, Ownership::Controlled);
    assert_json(
        &d[0].object,
        &json!({
            "apiVersion": "apisix.apache.org/v2",
            "kind": "ApisixRoute",
            "metadata": {"name": "set-header", "namespace": "default",
                         "ownerReferences": [owner("rollout-apisix-canary")]},
            "spec": {"http": [{
                "name": "rollouts-apisix",
                "match": {"paths": ["/*"], "methods": ["GET"], "exprs": [
                    {"subject": {"scope": "Header", "name": "trace"}, "op": "Equal",
                     "value": "debug"},
                    {"subject": {"scope": "Header", "name": "trace"}, "op": "RegexMatch",
                     "value": "^dev.*"},
                ]},
                "backends": [
                    {"serviceName": "rollout-apisix-canary-canary", "servicePort": 80,
                     "weight": 100},
                ],
                "priority": 1,
            }]},
        }),
    );
    assert_eq!(d[1].name, "rollouts-apisix-route");

    // Promotion: the copy (ours) is deleted.
    let mut copy = d[0].object.clone();
    copy["metadata"]["resourceVersion"] = json!("1");
    let observed = Observed::new().with(route()).with(copy.clone());
    let state = TrafficState {
        remove_managed_routes: true,
        ..TrafficState::default()
    };
    let d = run(Router::Apisix, &ro, &observed, &state).expect("desired");
    assert_eq!(d[0].ownership, Ownership::AbsentIfControlled);
    let write = plan_write(&d[0], Some(&copy), UID)
        .expect("plan")
        .expect("write");
    assert_eq!(write.action, WriteAction::Delete);
    // Someone else's object of that name is left alone on removal, refused on set.
    let mut foreign = copy.clone();
    foreign["metadata"]["ownerReferences"] = json!([]);
    assert_eq!(plan_write(&d[0], Some(&foreign), UID).expect("plan"), None);
    let observed = Observed::new().with(route()).with(foreign);
    let state = TrafficState {
        header_route: Some(header(Some(vec![StringMatch {
            exact: Some("x".into()),
            ..StringMatch::default()
        }]))),
        ..TrafficState::default()
    };
    let err = run(Router::Apisix, &ro, &observed, &state).expect_err("foreign");
    assert_eq!(
        err.to_string(),
        "duplicate ApisixRoute [set-header] already exists"
    );
}
