//! Invalid Rollouts reach `InvalidSpec` from the running controller, with upstream's message,
//! phase `Degraded` and a Warning event, while every other Rollout is still served; fixing the
//! spec (or creating what it references) clears the condition.
//!
//! The spec rules come from upstream's own validation tests (`vectors/validation.yaml`): every
//! invalid case of every rule family is created in one sandbox. Cases written for a part of the
//! spec (a canary strategy, a step, anti-affinity) get the selector and template a whole Rollout
//! needs, so that their own rule is the first one broken.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

mod common;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::{NS, World, canary_rollout, describe, eventually, rollout};

/// The `InvalidSpec` condition's message, if the Rollout has one.
fn invalid_spec(status: &Value) -> Option<String> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "InvalidSpec")
        .map(|c| c["message"].as_str().unwrap_or_default().to_string())
}

/// Waits until Rollout `name` is Degraded with an `InvalidSpec` condition containing `text`.
async fn wait_invalid(world: &World, name: &str, text: &str) -> String {
    let prefix = format!("The Rollout \"{name}\" is invalid: ");
    eventually(
        &format!("{name} to be InvalidSpec with {text:?}"),
        || async {
            let status = world.status(name).await;
            match invalid_spec(&status) {
                Some(message)
                    if message.starts_with(&prefix)
                        && message.contains(text)
                        && status["phase"] == "Degraded"
                        && status["message"] == format!("InvalidSpec: {message}") =>
                {
                    Ok(message)
                }
                _ => Err(format!(
                    "{} conditions={}",
                    describe(&status),
                    status["conditions"]
                )),
            }
        },
    )
    .await
}

/// The part of a case's expectation the condition message must contain, if the case is invalid.
fn expected_text(case: &Value) -> Option<String> {
    let expected = &case["expected"];
    if expected["valid"] == true {
        return None;
    }
    if let Some(detail) = expected["first_error"]["detail"].as_str() {
        return Some(detail.to_string());
    }
    if let Some(string) = expected["first_error"]["string"].as_str() {
        // `<field>: <body>`: the field's root differs from the validator the case calls.
        return Some(
            string
                .split_once(": ")
                .map_or(string, |(_, body)| body)
                .to_string(),
        );
    }
    if let Some(first) = expected["errors"][0].as_str() {
        return Some(first.to_string());
    }
    // Only an error count: any InvalidSpec will do.
    expected["error_count"].as_u64().map(|_| String::new())
}

/// The case as a whole Rollout named `name`, or `None` for cases no Rollout can carry.
fn case_rollout(case: &Value, name: &str) -> Option<Value> {
    let function = case["function"].as_str().unwrap_or("");
    let labels = json!({"app": name});
    let base = || {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "spec": {"strategy": {"canary": {}}}
        })
    };
    let mut value = if function.starts_with("ValidateRolloutStrategyAntiAffinity") {
        let mut value = base();
        value["spec"]["strategy"]["canary"]["antiAffinity"] = case["antiAffinity"].clone();
        value
    } else if function.starts_with("hasMultipleStepsType") {
        let mut value = base();
        value["spec"]["strategy"]["canary"]["steps"] = json!([case["step"].clone()]);
        value
    } else {
        case["rollout"].clone()
    };
    value.get("spec")?;
    value["metadata"] = json!({"name": name, "namespace": NS});
    if !function.starts_with("ValidateRollout ") && function != "ValidateRollout" {
        // A part-of-the-spec case: give it what a whole Rollout needs.
        let spec = &mut value["spec"];
        if spec.get("selector").is_none() && spec.get("workloadRef").is_none() {
            spec["selector"] = json!({"matchLabels": labels});
        }
        if spec.get("template").is_none() && spec.get("workloadRef").is_none() {
            spec["template"] = json!({
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "demo:blue"}]}
            });
        }
    }
    Some(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_vector_case_gets_invalid_spec_while_others_are_served() {
    let Some(dir) = common::conformance_dir() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("vectors/validation.yaml")).expect("vectors");
    let vectors: Value = serde_saphyr::from_str(&text).expect("vectors YAML");
    let world = World::start().await;

    // A healthy neighbour, rolled through a canary while the invalid ones sit there.
    let steps = json!([{"setWeight": 50}, {"pause": {"duration": 1}}]);
    world
        .create(&rollout(canary_rollout("neighbour", 1, steps, "demo:blue")))
        .await;

    let mut created = Vec::new();
    for (index, case) in vectors["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
    {
        let Some(mut text) = expected_text(case) else {
            continue;
        };
        if case["rollout"]["spec"].get("workloadRef").is_some() {
            // The controller resolves the reference before it validates, as upstream's does,
            // and reports the resolution error as it is (no field path, no error type).
            text = text.trim_start_matches("Internal error: ").to_string();
        }
        let name = format!("case-{index}");
        let Some(value) = case_rollout(case, &name) else {
            println!(
                "NOTICE: case {index} ({}) has no Rollout form",
                case["name"]
            );
            continue;
        };
        let Ok(parsed) = serde_json::from_value(value) else {
            println!("NOTICE: case {index} ({}) does not decode", case["name"]);
            continue;
        };
        world
            .rollouts()
            .create(&PostParams::default(), &parsed)
            .await
            .expect("create case rollout");
        created.push((name, text, case["name"].clone()));
    }
    assert!(created.len() >= 60, "only {} invalid cases", created.len());

    world.healthy("neighbour").await;
    world.set_image("neighbour", "demo:yellow").await;
    for (name, text, case) in &created {
        let message = wait_invalid(&world, name, text).await;
        // The event is the plan's last write: it may land just after the status shows.
        eventually(&format!("{case}: the InvalidSpec event"), || async {
            let events = world.events(name).await;
            if events.iter().any(|e| {
                e.reason.as_deref() == Some("InvalidSpec")
                    && e.message.as_deref() == Some(message.as_str())
            }) {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        })
        .await;
    }
    // Nothing else happened for them: no ReplicaSet was made for any invalid Rollout.
    let replica_sets = world
        .replica_sets()
        .list(&Default::default())
        .await
        .expect("list rs")
        .items;
    for rs in &replica_sets {
        let name = rs.metadata.name.as_deref().unwrap_or_default();
        assert!(
            name.starts_with("neighbour-"),
            "{name} made for an invalid Rollout"
        );
    }
    // And the neighbour finished its canary meanwhile.
    let stable = world.healthy("neighbour").await;
    let status = world.status("neighbour").await;
    assert_eq!(status["stableRS"], stable.as_str());
    assert!(!replica_sets.is_empty(), "the neighbour has ReplicaSets");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixing_the_spec_clears_invalid_spec_and_the_rollout_deploys() {
    let world = World::start().await;
    let steps = json!([{"setWeight": 150}]);
    world
        .create(&rollout(canary_rollout("fixme", 1, steps, "demo:blue")))
        .await;
    let message = wait_invalid(
        &world,
        "fixme",
        "setWeight: Invalid value: 150: SetWeight needs to be between 0 and 100",
    )
    .await;
    // The event is the plan's last write: it may land just after the status shows.
    let events = eventually("the InvalidSpec event", || async {
        let events = world.events("fixme").await;
        if events
            .iter()
            .any(|e| e.reason.as_deref() == Some("InvalidSpec"))
        {
            Ok(events)
        } else {
            Err(format!("{events:?}"))
        }
    })
    .await;
    let invalid: Vec<_> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("InvalidSpec"))
        .collect();
    assert_eq!(invalid.len(), 1, "{events:?}");
    assert_eq!(invalid[0].type_.as_deref(), Some("Warning"));
    assert_eq!(invalid[0].message.as_deref(), Some(message.as_str()));

    world
        .patch(
            "fixme",
            json!({"spec": {"strategy": {"canary": {"steps": [{"setWeight": 50}]}}}}),
        )
        .await;
    world.healthy("fixme").await;
    let status = world.status("fixme").await;
    assert_eq!(invalid_spec(&status), None, "{}", status["conditions"]);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_references_are_invalid_until_they_exist() {
    let world = World::start().await;
    let mut value = canary_rollout("refs", 1, json!([{"setWeight": 50}]), "demo:blue");
    value["spec"]["strategy"]["canary"]["stableService"] = json!("refs-stable");
    value["spec"]["strategy"]["canary"]["canaryService"] = json!("refs-canary");
    world.create(&rollout(value)).await;
    wait_invalid(
        &world,
        "refs",
        "spec.strategy.canary.stableService: Invalid value: \"refs-stable\": service \"refs-stable\" not found",
    )
    .await;

    let mut templated = canary_rollout(
        "templated",
        1,
        json!([{"analysis": {"templates": [{"templateName": "absent"}]}}]),
        "demo:blue",
    );
    templated["metadata"]["name"] = json!("templated");
    world.create(&rollout(templated)).await;
    wait_invalid(&world, "templated", "AnalysisTemplate 'absent' not found").await;

    for name in ["refs-stable", "refs-canary"] {
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app": "refs"}, "ports": [{"port": 80}]}
        }))
        .expect("service");
        world
            .api::<Service>()
            .create(&PostParams::default(), &service)
            .await
            .expect("create service");
    }
    // The invalid spec is looked at again within 10 s; then the Rollout deploys.
    world.healthy("refs").await;
    assert_eq!(invalid_spec(&world.status("refs").await), None);
    // The other is still invalid.
    assert!(invalid_spec(&world.status("templated").await).is_some());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_virtual_service_is_invalid_until_it_exists() {
    let world = World::start().await;
    world
        .server
        .install_crds_from_yaml(common::router_crds::ROUTER_CRDS)
        .expect("istio crd");
    for name in ["mesh-stable", "mesh-canary"] {
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app": "mesh"}, "ports": [{"port": 80}]}
        }))
        .expect("service");
        world
            .api::<Service>()
            .create(&PostParams::default(), &service)
            .await
            .expect("create service");
    }
    let mut value = canary_rollout("mesh", 1, json!([{"setWeight": 20}]), "demo:blue");
    value["spec"]["strategy"]["canary"]["stableService"] = json!("mesh-stable");
    value["spec"]["strategy"]["canary"]["canaryService"] = json!("mesh-canary");
    value["spec"]["strategy"]["canary"]["trafficRouting"] =
        json!({"istio": {"virtualService": {"name": "mesh-vs", "routes": ["primary"]}}});
    world.create(&rollout(value)).await;
    wait_invalid(
        &world,
        "mesh",
        "spec.strategy.canary.trafficRouting.istio.virtualService.name: Invalid value: \"mesh-vs\": virtualservices.networking.istio.io \"mesh-vs\" not found",
    )
    .await;

    let resource = kube::discovery::ApiResource {
        group: "networking.istio.io".into(),
        version: "v1alpha3".into(),
        api_version: "networking.istio.io/v1alpha3".into(),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
    };
    let vs: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": "mesh-vs", "namespace": NS},
        "spec": {"hosts": ["mesh"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "mesh-stable"}, "weight": 100},
            {"destination": {"host": "mesh-canary"}, "weight": 0}
        ]}]}
    }))
    .expect("virtual service");
    kube::Api::<kube::api::DynamicObject>::namespaced_with(world.client.clone(), NS, &resource)
        .create(&PostParams::default(), &vs)
        .await
        .expect("create virtual service");
    // Looked at again within the invalid-spec requeue; then the Rollout deploys.
    world.healthy("mesh").await;
    assert_eq!(invalid_spec(&world.status("mesh").await), None);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_rollout_needs_its_active_service() {
    use kube::api::{ApiResource, DynamicObject};
    let world = World::start().await;
    let mut value = support::blue_green_rollout("noactive", 1, json!({}), "demo:blue");
    let blue_green = value["spec"]["strategy"]["blueGreen"]
        .as_object_mut()
        .expect("blueGreen");
    blue_green.remove("activeService");

    // Without the key the API server refuses it, as upstream's CRD makes it refuse.
    let resource = ApiResource::erase::<davy::api::Rollout>(&());
    let raw: Api<DynamicObject> = Api::namespaced_with(world.client.clone(), NS, &resource);
    let object: DynamicObject = serde_json::from_value(value.clone()).expect("object");
    let refused = raw
        .create(&PostParams::default(), &object)
        .await
        .expect_err("a blue-green Rollout without activeService is refused");
    assert!(
        refused
            .to_string()
            .contains("spec.strategy.blueGreen.activeService: Required value"),
        "{refused}"
    );

    // An empty name passes the schema; the controller then reports it, and makes nothing.
    value["spec"]["strategy"]["blueGreen"]["activeService"] = json!("");
    world.create(&rollout(value)).await;
    let message = wait_invalid(
        &world,
        "noactive",
        "spec.strategy.blueGreen.activeService: Required value",
    )
    .await;
    assert_eq!(
        message,
        "The Rollout \"noactive\" is invalid: spec.strategy.blueGreen.activeService: Required value"
    );
    let replica_sets = world
        .replica_sets()
        .list(&Default::default())
        .await
        .expect("list rs")
        .items;
    assert!(replica_sets.is_empty(), "{replica_sets:?}");
    world.stop().await;
}
