//! Istio VirtualService / DestinationRule (spec §7.3).

use serde_json::{Value, json};

use super::super::{Observed, Ownership, ResourceType, Router, RouterEvent, TrafficState};
use super::{assert_json, canary_rollout, run, weight};
use crate::api::rollout_status::WeightDestination;
use crate::api::{SetHeaderRoute, SetMirrorRoute};

fn vs(name: &str, ns: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "5"},
        "spec": spec,
    })
}

fn dest(host: &str, w: i64) -> Value {
    json!({"destination": {"host": host}, "weight": w})
}

fn host_split(istio: Value, managed: Option<Value>) -> crate::api::Rollout {
    let mut tr = json!({"istio": istio});
    if let Some(m) = managed {
        tr["managedRoutes"] = m;
    }
    canary_rollout(
        "istio-host-split",
        json!({
            "canaryService": "istio-host-split-canary",
            "stableService": "istio-host-split-stable",
            "trafficRouting": tr,
        }),
    )
}

/// The upstream example `istio-host-split-experiment-step.yaml` at its experiment step:
/// canary 10, experiment 20 (destination added), stable 70 (host given as an FQDN), an unknown
/// destination removed.
#[test]
fn host_split_sets_weights_and_experiment_destinations() {
    let ro = host_split(
        json!({"virtualService": {"name": "istio-host-split-vsvc", "routes": ["primary"]}}),
        None,
    );
    let live = vs(
        "istio-host-split-vsvc",
        "default",
        json!({"hosts": ["istio-host-split"], "http": [{"name": "primary", "route": [
            dest("istio-host-split-stable.default.svc.cluster.local", 100),
            dest("istio-host-split-canary", 0),
            dest("leftover-experiment", 0),
        ]}]}),
    );
    let state = TrafficState {
        weight: 10,
        additional_destinations: vec![WeightDestination {
            weight: 20,
            service_name: "istio-host-split-experiment-istio".into(),
            pod_template_hash: "e1".into(),
        }],
        ..TrafficState::default()
    };
    let desired = run(
        Router::Istio,
        &ro,
        &Observed::new().with(live.clone()),
        &state,
    )
    .expect("ok");
    assert_eq!(desired.len(), 1);
    let d = &desired[0];
    assert_eq!(d.ownership, Ownership::EditInPlace);
    assert_eq!(d.resource, ResourceType::virtual_service("v1alpha3"));
    let mut expected = live;
    expected["spec"]["http"][0]["route"] = json!([
        dest("istio-host-split-stable.default.svc.cluster.local", 70),
        dest("istio-host-split-canary", 10),
        dest("istio-host-split-experiment-istio", 20),
    ]);
    assert_json(&d.object, &expected);
    assert_eq!(
        d.on_update,
        Some(RouterEvent::new(
            "Updated VirtualService",
            "VirtualService `istio-host-split-vsvc` set to desiredWeight '10'"
        ))
    );
}

/// The upstream example `istio-subset-split.yaml` plus an additional subset: the
/// DestinationRule first (hash labels, managed-by, stray subset dropped, extra fields kept),
/// then the VirtualService (the additional subset's 10 kept and taken from the stable share).
#[test]
fn subset_split_updates_destination_rule_then_weights() {
    let ro = canary_rollout(
        "istio-subset-split",
        json!({"trafficRouting": {"istio": {
            "virtualService": {"name": "istio-subset-split-vsvc", "routes": ["primary"]},
            "destinationRule": {
                "name": "istio-subset-split-destrule",
                "canarySubsetName": "canary",
                "stableSubsetName": "stable",
                "additionalSubsetNames": ["mirror"],
            },
        }}}),
    );
    let sub = |s: &str, w: i64| json!({"destination": {"host": "istio-subset-split", "subset": s}, "weight": w});
    let live_vs = vs(
        "istio-subset-split-vsvc",
        "default",
        json!({"http": [{"name": "primary", "route": [sub("stable", 90), sub("canary", 0), sub("mirror", 10)]}]}),
    );
    let live_dr = json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "DestinationRule",
        "metadata": {"name": "istio-subset-split-destrule", "namespace": "default", "annotations": {"keep": "1"}},
        "spec": {"host": "istio-subset-split", "subsets": [
            {"name": "stable", "labels": {"app": "istio-subset-split"}},
            {"name": "canary", "labels": {"app": "istio-subset-split"}, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
            {"name": "mirror", "labels": {"app": "mirror"}},
            {"name": "stale", "labels": {"app": "old"}},
        ]},
    });
    let state = TrafficState {
        weight: 10,
        canary_hash: "c1".into(),
        stable_hash: "s1".into(),
        ..TrafficState::default()
    };
    let observed = Observed::new().with(live_vs.clone()).with(live_dr);
    let desired = run(Router::Istio, &ro, &observed, &state).expect("ok");
    assert_eq!(desired.len(), 2);
    assert_eq!(desired[0].resource.kind, "DestinationRule");
    assert_json(
        &desired[0].object,
        &json!({
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "DestinationRule",
            "metadata": {
                "name": "istio-subset-split-destrule",
                "namespace": "default",
                "annotations": {"keep": "1", "argo-rollouts.argoproj.io/managed-by-rollouts": "istio-subset-split"},
            },
            "spec": {"host": "istio-subset-split", "subsets": [
                {"name": "stable", "labels": {"app": "istio-subset-split", "rollouts-pod-template-hash": "s1"}},
                {"name": "canary", "labels": {"app": "istio-subset-split", "rollouts-pod-template-hash": "c1"}, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
                {"name": "mirror", "labels": {"app": "mirror"}},
            ]},
        }),
    );
    assert_eq!(
        desired[0].on_update,
        Some(RouterEvent::new(
            "UpdatedDestinationRule",
            "DestinationRule istio-subset-split-destrule subset updated (canary: c1, stable: s1)"
        ))
    );
    let mut expected = live_vs;
    expected["spec"]["http"][0]["route"] =
        json!([sub("stable", 80), sub("canary", 10), sub("mirror", 10)]);
    assert_json(&desired[1].object, &expected);
}

fn with_port(host: &str, w: i64) -> Value {
    json!({"destination": {"host": host, "port": {"number": 8080}}, "weight": w})
}

/// setHeaderRoute on the single unnamed route: the managed route goes on top, is stable on
/// a second reconcile, and disappears with the managed routes.
#[test]
fn header_route_is_added_on_top_and_removed() {
    let ro = host_split(
        json!({"virtualService": {"name": "vsvc"}}),
        Some(json!([{"name": "set-header-1"}])),
    );
    let primary = json!({"route": [with_port("istio-host-split-stable", 100), with_port("istio-host-split-canary", 0)]});
    let live = vs("vsvc", "default", json!({"http": [primary.clone()]}));
    let step: SetHeaderRoute = serde_json::from_value(json!({
        "name": "set-header-1",
        "match": [
            {"headerName": "version", "headerValue": {"exact": "2"}},
            {"headerName": "agent", "headerValue": {"regex": "Chrome.*"}},
        ],
    }))
    .expect("step");
    let state = TrafficState {
        header_route: Some(step),
        ..weight(0)
    };
    let desired = run(
        Router::Istio,
        &ro,
        &Observed::new().with(live.clone()),
        &state,
    )
    .expect("ok");
    let header = json!({
        "name": "set-header-1",
        "match": [
            {"headers": {"version": {"exact": "2"}}},
            {"headers": {"agent": {"regex": "Chrome.*"}}},
        ],
        "route": [{"destination": {"host": "istio-host-split-canary", "port": {"number": 8080}}, "weight": 100}],
    });
    let mut expected = live.clone();
    expected["spec"]["http"] = json!([header, primary]);
    assert_json(&desired[0].object, &expected);

    let again = run(
        Router::Istio,
        &ro,
        &Observed::new().with(expected.clone()),
        &state,
    )
    .expect("ok");
    assert!(
        again.is_empty(),
        "second reconcile changes nothing: {again:?}"
    );

    let remove = TrafficState {
        remove_managed_routes: true,
        ..weight(0)
    };
    let removed = run(Router::Istio, &ro, &Observed::new().with(expected), &remove).expect("ok");
    assert_json(&removed[0].object, &live);
}

/// The upstream example `istio-mirror.yaml` at its setMirrorRoute step (weight 0): the mirror
/// route copies the weighted route, mirrors 50% of POST /color* to the canary, sits on top.
#[test]
fn mirror_route_copies_the_weighted_route() {
    let ro = host_split(
        json!({"virtualService": {"name": "istio-host-split-vsvc", "routes": ["primary"]}}),
        Some(json!([{"name": "mirror-route"}])),
    );
    let primary = json!({"name": "primary", "route": [
        {"destination": {"host": "istio-host-split-stable", "port": {"number": 80}}, "weight": 100},
        {"destination": {"host": "istio-host-split-canary"}, "weight": 0},
    ]});
    let live = vs(
        "istio-host-split-vsvc",
        "default",
        json!({"http": [primary.clone()]}),
    );
    let step: SetMirrorRoute = serde_json::from_value(json!({
        "name": "mirror-route",
        "percentage": 50,
        "match": [{"method": {"exact": "POST"}, "path": {"prefix": "/color"}}],
    }))
    .expect("step");
    let state = TrafficState {
        mirror_route: Some(step),
        ..weight(0)
    };
    let desired = run(
        Router::Istio,
        &ro,
        &Observed::new().with(live.clone()),
        &state,
    )
    .expect("ok");
    let mut expected = live;
    expected["spec"]["http"] = json!([
        {
            "name": "mirror-route",
            "match": [{"method": {"exact": "POST"}, "uri": {"prefix": "/color"}}],
            "route": [
                {"destination": {"host": "istio-host-split-stable", "port": {"number": 80}}, "weight": 100},
                {"destination": {"host": "istio-host-split-canary"}, "weight": 0},
            ],
            "mirror": {"host": "istio-host-split-canary", "port": {"number": 80}},
            "mirrorPercentage": {"value": 50},
        },
        primary,
    ]);
    assert_json(&desired[0].object, &expected);

    // A later setWeight moves the mirror route's copy too.
    let moved = run(
        Router::Istio,
        &ro,
        &Observed::new().with(expected.clone()),
        &weight(30),
    )
    .expect("ok");
    let http = &moved[0].object["spec"]["http"];
    for i in 0..2 {
        assert_eq!(http[i]["route"][0]["weight"], json!(70), "route {i}");
        assert_eq!(http[i]["route"][1]["weight"], json!(30), "route {i}");
    }
}

/// TLS routes matched by port and SNI hosts, TCP routes by port; others untouched.
#[test]
fn tls_and_tcp_routes_are_matched_by_port() {
    let ro = host_split(
        json!({"virtualService": {
            "name": "vsvc",
            "tlsRoutes": [{"port": 443, "sniHosts": ["a.com"]}],
            "tcpRoutes": [{"port": 3001}],
        }}),
        None,
    );
    let l4 = |port: i64, sni: Option<&str>| {
        let mut m = json!({"port": port});
        if let Some(h) = sni {
            m["sniHosts"] = json!([h]);
        }
        json!({"match": [m], "route": [dest("istio-host-split-stable", 100), dest("istio-host-split-canary", 0)]})
    };
    let live = vs(
        "vsvc",
        "default",
        json!({
            "tls": [l4(443, Some("a.com")), l4(8443, Some("b.com"))],
            "tcp": [l4(3000, None), l4(3001, None)],
        }),
    );
    let desired = run(
        Router::Istio,
        &ro,
        &Observed::new().with(live.clone()),
        &weight(25),
    )
    .expect("ok");
    let moved = json!([
        dest("istio-host-split-stable", 75),
        dest("istio-host-split-canary", 25)
    ]);
    let mut expected = live;
    expected["spec"]["tls"][0]["route"] = moved.clone();
    expected["spec"]["tcp"][1]["route"] = moved;
    assert_json(&desired[0].object, &expected);
}

#[test]
fn weights_are_never_negative_and_unchanged_services_are_not_written() {
    let ro = host_split(json!({"virtualService": {"name": "vsvc.other-ns"}}), None);
    let live = vs(
        "vsvc",
        "other-ns",
        json!({"http": [{"route": [dest("istio-host-split-stable", 100), dest("istio-host-split-canary", 0)]}]}),
    );
    let state = TrafficState {
        weight: 90,
        additional_destinations: vec![WeightDestination {
            weight: 20,
            service_name: "exp".into(),
            pod_template_hash: "e".into(),
        }],
        ..TrafficState::default()
    };
    let desired = run(
        Router::Istio,
        &ro,
        &Observed::new().with(live.clone()),
        &state,
    )
    .expect("ok");
    assert_eq!(desired[0].namespace, "other-ns");
    assert_json(
        &desired[0].object["spec"]["http"][0]["route"],
        &json!([
            dest("istio-host-split-stable", 0),
            dest("istio-host-split-canary", 90),
            dest("exp", 20)
        ]),
    );
    let same = run(Router::Istio, &ro, &Observed::new().with(live), &weight(0)).expect("ok");
    assert!(same.is_empty());
}

#[test]
fn validation_errors_carry_upstream_messages() {
    let two_routes = json!({"http": [
        {"name": "a", "route": [dest("istio-host-split-stable", 100), dest("istio-host-split-canary", 0)]},
        {"name": "b", "route": [dest("istio-host-split-stable", 100)]},
    ]});
    let cases: Vec<(Value, Value, &str)> = vec![
        (
            json!({"name": "vsvc", "routes": ["missing"]}),
            two_routes.clone(),
            "HTTP Route 'missing' is not found in the defined Virtual Service.",
        ),
        (
            json!({"name": "vsvc", "routes": ["b"]}),
            two_routes.clone(),
            "Canary Service 'istio-host-split-canary' not found in route",
        ),
        (
            json!({"name": "vsvc"}),
            json!({"http": [{"route": []}, {"route": []}]}),
            "Canary Service 'istio-host-split-canary' not found in route",
        ),
        (
            json!({"name": "vsvc"}),
            json!({"http": [
                {"route": [dest("istio-host-split-stable", 100), dest("istio-host-split-canary", 0)]},
                {"name": "b", "route": []},
            ]}),
            "spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes",
        ),
        (
            json!({"name": "vsvc", "tcpRoutes": [{"port": 9}]}),
            json!({"tcp": [{"match": [{"port": 1}], "route": []}]}),
            "No matching TCP routes found in the defined Virtual Service.",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (vs_cfg, spec, message)) in cases.into_iter().enumerate() {
        let ro = host_split(json!({"virtualService": vs_cfg}), None);
        let observed = Observed::new().with(vs("vsvc", "default", spec));
        match run(Router::Istio, &ro, &observed, &weight(10)) {
            Err(e) if e.to_string() == message => {}
            other => failures.push(format!("case {i}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    let ro = host_split(json!({"virtualService": {"name": "nope"}}), None);
    let err = run(Router::Istio, &ro, &Observed::new(), &weight(1)).expect_err("absent");
    assert_eq!(
        err.to_string(),
        "virtualservices.networking.istio.io \"nope\" not found"
    );
}
