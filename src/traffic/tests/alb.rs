//! AWS ALB Ingress annotations: forward action, header routes, managed-route removal, several
//! Ingresses, stickiness and ping-pong, with the annotation texts upstream writes.

use serde_json::{Value, json};

use super::super::{Observed, Ownership, Router, TrafficError, TrafficState, plan_write};
use super::{UID, assert_json, canary_rollout, run, weight};
use crate::api::canary::{HeaderRoutingMatch, SetHeaderRoute};
use crate::api::common::StringMatch;
use crate::api::rollout_status::WeightDestination;

fn ingress(name: &str, service: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": "default",
            "resourceVersion": "7",
            "annotations": {"kubernetes.io/ingress.class": "alb"},
        },
        "spec": {"rules": [{"http": {"paths": [{
            "path": "/*",
            "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": service, "port": {"name": "use-annotation"}}},
        }]}}]},
    })
}

fn alb_rollout(alb: Value, extra: Value) -> crate::api::Rollout {
    let mut canary = json!({
        "stableService": "stable-svc",
        "canaryService": "canary-svc",
        "trafficRouting": {"alb": alb},
    });
    if let (Some(c), Some(e)) = (canary.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if k == "trafficRouting" {
                for (rk, rv) in v.as_object().into_iter().flatten() {
                    c["trafficRouting"][rk] = rv.clone();
                }
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    canary_rollout("rollout", canary)
}

fn annotation(object: &Value, key: &str) -> Value {
    object["metadata"]["annotations"][key].clone()
}

#[test]
fn weight_sets_the_forward_action_on_the_root_service_and_the_managed_list() {
    let ro = alb_rollout(
        json!({"ingress": "ingress", "servicePort": 80, "rootService": "root-svc"}),
        json!({}),
    );
    let observed = Observed::new().with(ingress("ingress", "root-svc"));
    let desired = run(Router::Alb, &ro, &observed, &weight(10)).expect("desired");
    assert_eq!(desired.len(), 1);
    let d = &desired[0];
    assert_eq!(d.ownership, Ownership::EditInPlace);
    assert_eq!(
        annotation(&d.object, "alb.ingress.kubernetes.io/actions.root-svc"),
        json!(
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"canary-svc","ServicePort":"80","Weight":10},{"ServiceName":"stable-svc","ServicePort":"80","Weight":90}]}}"#
        )
    );
    assert_eq!(
        annotation(&d.object, "rollouts.argoproj.io/managed-alb-annotations"),
        json!(r#"{"rollout":["alb.ingress.kubernetes.io/actions.root-svc"]}"#)
    );
    // The write is a merge patch of the two annotations, guarded by the read version.
    let write = plan_write(d, Some(&ingress("ingress", "root-svc")), UID)
        .expect("plan")
        .expect("write");
    let super::super::WriteAction::Patch(patch) = write.action else {
        panic!("{:?}", write.action)
    };
    assert_eq!(
        patch["metadata"]["annotations"]
            .as_object()
            .expect("annotations")
            .len(),
        2
    );
    assert_eq!(patch["metadata"]["resourceVersion"], json!("7"));
    assert!(patch.get("spec").is_none(), "{patch}");
    assert_eq!(
        write.event.expect("event").message,
        "Updating Ingress `ingress` to desiredWeight '10'"
    );
}

#[test]
fn experiment_destinations_stickiness_and_several_ingresses() {
    let ro = alb_rollout(
        json!({
            "ingresses": ["one", "two"],
            "servicePort": 443,
            "stickinessConfig": {"enabled": true, "durationSeconds": 3600},
        }),
        json!({}),
    );
    let observed = Observed::new()
        .with(ingress("one", "stable-svc"))
        .with(ingress("two", "stable-svc"));
    let state = TrafficState {
        weight: 20,
        additional_destinations: vec![WeightDestination {
            service_name: "ex-svc".into(),
            pod_template_hash: "h".into(),
            weight: 30,
        }],
        ..TrafficState::default()
    };
    let desired = run(Router::Alb, &ro, &observed, &state).expect("desired");
    let names: Vec<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    for d in &desired {
        assert_eq!(
            annotation(&d.object, "alb.ingress.kubernetes.io/actions.stable-svc"),
            json!(
                r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"canary-svc","ServicePort":"443","Weight":20},{"ServiceName":"ex-svc","ServicePort":"443","Weight":30},{"ServiceName":"stable-svc","ServicePort":"443","Weight":50}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":3600}}}"#
            )
        );
    }
}

#[test]
fn out_of_range_stickiness_and_missing_rule_are_refused_with_upstreams_words() {
    let ro = alb_rollout(
        json!({"ingress": "ingress", "servicePort": 80,
               "stickinessConfig": {"enabled": true, "durationSeconds": 0}}),
        json!({}),
    );
    let observed = Observed::new().with(ingress("ingress", "stable-svc"));
    let err = run(Router::Alb, &ro, &observed, &weight(5)).expect_err("stickiness");
    assert_eq!(
        err.to_string(),
        "TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!"
    );
    let ro = alb_rollout(json!({"ingress": "ingress", "servicePort": 80}), json!({}));
    let observed = Observed::new().with(ingress("ingress", "other"));
    let err = run(Router::Alb, &ro, &observed, &weight(5)).expect_err("rule");
    assert_eq!(
        err.to_string(),
        "ingress does not have service `stable-svc` in rules"
    );
    let err = run(Router::Alb, &ro, &Observed::new(), &weight(5)).expect_err("absent");
    assert_eq!(
        err,
        TrafficError::ObjectNotFound {
            plural: "ingress".into(),
            group: "networking.k8s.io".into(),
            name: "ingress".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "ingress.networking.k8s.io \"ingress\" not found"
    );
}

#[test]
fn ping_pong_routes_to_the_ping_and_pong_services_by_status() {
    let mut ro = alb_rollout(
        json!({"ingress": "ingress", "servicePort": 80, "rootService": "root"}),
        json!({"pingPong": {"pingService": "ping", "pongService": "pong"}}),
    );
    let observed = Observed::new().with(ingress("ingress", "root"));
    // No status yet: stable is pong (the value is not "ping").
    let d = run(Router::Alb, &ro, &observed, &weight(25)).expect("desired");
    assert_eq!(
        annotation(&d[0].object, "alb.ingress.kubernetes.io/actions.root"),
        json!(
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"ping","ServicePort":"80","Weight":25},{"ServiceName":"pong","ServicePort":"80","Weight":75}]}}"#
        )
    );
    let mut status = crate::api::rollout_status::RolloutStatus::default();
    status.canary.stable_ping_pong = "ping".into();
    ro.status = Some(status);
    let d = run(Router::Alb, &ro, &observed, &weight(25)).expect("desired");
    assert_eq!(
        annotation(&d[0].object, "alb.ingress.kubernetes.io/actions.root"),
        json!(
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"pong","ServicePort":"80","Weight":25},{"ServiceName":"ping","ServicePort":"80","Weight":75}]}}"#
        )
    );
}

fn header_route(matches: Option<Vec<(&str, &str)>>) -> SetHeaderRoute {
    SetHeaderRoute {
        name: Some("header-route".into()),
        match_: matches.map(|list| {
            list.into_iter()
                .map(|(name, exact)| HeaderRoutingMatch {
                    header_name: name.into(),
                    header_value: Some(StringMatch {
                        exact: Some(exact.into()),
                        ..StringMatch::default()
                    }),
                })
                .collect()
        }),
    }
}

#[test]
fn header_route_adds_action_condition_and_annotation_path_then_removal_drops_them() {
    let ro = alb_rollout(
        json!({"ingress": "ingress", "servicePort": 80}),
        json!({"trafficRouting": {"managedRoutes": [{"name": "header-route"}]}}),
    );
    let live = ingress("ingress", "stable-svc");
    let observed = Observed::new().with(live.clone());
    let state = TrafficState {
        weight: 0,
        header_route: Some(header_route(Some(vec![
            ("Custom-Header", "a"),
            ("Custom-Header", "b"),
            ("Other", "c"),
        ]))),
        ..TrafficState::default()
    };
    let d = run(Router::Alb, &ro, &observed, &state).expect("desired");
    let object = &d[0].object;
    assert_eq!(
        annotation(object, "alb.ingress.kubernetes.io/actions.header-route"),
        json!(
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"canary-svc","ServicePort":"80","Weight":100}]}}"#
        )
    );
    assert_eq!(
        annotation(object, "alb.ingress.kubernetes.io/conditions.header-route"),
        json!(
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"Custom-Header","values":["a","b"]}},{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"Other","values":["c"]}}]"#
        )
    );
    assert_eq!(
        annotation(object, "rollouts.argoproj.io/managed-alb-annotations"),
        json!(
            r#"{"rollout":["alb.ingress.kubernetes.io/actions.header-route","alb.ingress.kubernetes.io/conditions.header-route","alb.ingress.kubernetes.io/actions.stable-svc"]}"#
        )
    );
    // The header route's path comes first: it is the first managed route.
    assert_json(
        &object["spec"]["rules"][0]["http"]["paths"],
        &json!([
            {"path": "/*", "pathType": "ImplementationSpecific",
             "backend": {"service": {"name": "header-route", "port": {"name": "use-annotation"}}}},
            {"path": "/*", "pathType": "ImplementationSpecific",
             "backend": {"service": {"name": "stable-svc", "port": {"name": "use-annotation"}}}},
        ]),
    );

    // Promotion removes the managed route: annotations nulled (deleted by the merge patch),
    // the path gone, the Rollout's managed list keeps only the weight action.
    let with_route = object.clone();
    let observed = Observed::new().with(with_route.clone());
    let state = TrafficState {
        weight: 0,
        remove_managed_routes: true,
        ..TrafficState::default()
    };
    let d = run(Router::Alb, &ro, &observed, &state).expect("desired");
    let write = plan_write(&d[0], Some(&with_route), UID)
        .expect("plan")
        .expect("write");
    let super::super::WriteAction::Patch(patch) = write.action else {
        panic!("{:?}", write.action)
    };
    let annotations = &patch["metadata"]["annotations"];
    assert_eq!(
        annotations["alb.ingress.kubernetes.io/actions.header-route"],
        Value::Null
    );
    assert!(
        annotations
            .as_object()
            .expect("annotations")
            .contains_key("alb.ingress.kubernetes.io/conditions.header-route")
    );
    assert_eq!(
        annotations["rollouts.argoproj.io/managed-alb-annotations"],
        json!(r#"{"rollout":["alb.ingress.kubernetes.io/actions.stable-svc"]}"#)
    );
    assert_eq!(
        patch["spec"]["rules"][0]["http"]["paths"]
            .as_array()
            .expect("paths")
            .len(),
        1
    );
}
