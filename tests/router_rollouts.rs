//! Each built-in router (ALB, Traefik, Ambassador, APISIX, App Mesh) driven by the controller
//! in the sandbox: the fixture manifests (shapes of upstream's e2e and example manifests, in
//! `tests/fixtures/routers`, among them ping-pong canaries naming no canaryService or
//! stableService) lint clean, reconcile, and the router objects carry upstream's weights at
//! the canary step and after promotion or abort.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use davy::sandbox::load_generator::{SplitTargets, resolve_split};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};
use support::{NS, World, describe, eventually};

const FIXTURES: &str = "tests/fixtures/routers";

fn fixture(file: &str) -> Vec<Value> {
    support::read_docs(&format!("{FIXTURES}/{file}"))
}

/// The API resource of a fixture document's kind.
fn resource(doc: &Value) -> ApiResource {
    let api_version = doc["apiVersion"].as_str().unwrap().to_string();
    let kind = doc["kind"].as_str().unwrap().to_string();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let plural = match kind.as_str() {
        "Ingress" => "ingresses".to_string(),
        "Rollout" => "rollouts".to_string(),
        other => format!("{}s", other.to_lowercase()),
    };
    ApiResource {
        group,
        version,
        api_version,
        kind,
        plural,
    }
}

fn dynamic(world: &World, ar: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(world.client.clone(), NS, ar)
}

/// A sandbox with the router CRDs and a controller.
async fn start() -> World {
    let world = World::start().await;
    world
        .server
        .install_crds_from_yaml(common::router_crds::ROUTER_CRDS)
        .unwrap();
    world
}

/// Creates every document of the fixture; returns the Rollout's name.
async fn apply(world: &World, docs: &[Value]) -> String {
    let mut name = String::new();
    for doc in docs {
        let mut doc = doc.clone();
        doc["metadata"]["namespace"] = json!(NS);
        if doc["kind"] == "Rollout" {
            name = doc["metadata"]["name"].as_str().unwrap().to_string();
            world.create(&support::rollout(doc)).await;
            continue;
        }
        let ar = resource(&doc);
        let object: DynamicObject = serde_json::from_value(doc).unwrap();
        dynamic(world, &ar)
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    name
}

/// The object `name` of `api_version`/`kind`, `None` when absent.
async fn get(world: &World, api_version: &str, kind: &str, name: &str) -> Option<Value> {
    let ar = resource(&json!({"apiVersion": api_version, "kind": kind}));
    dynamic(world, &ar)
        .get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

/// Waits until `check` of the object (or of its absence) holds.
async fn object_until<F>(
    world: &World,
    what: &str,
    api_version: &str,
    kind: &str,
    name: &str,
    check: F,
) where
    F: Fn(Option<&Value>) -> bool,
{
    eventually(what, || async {
        let object = get(world, api_version, kind, name).await;
        if check(object.as_ref()) {
            Ok(())
        } else {
            Err(format!("{object:?}"))
        }
    })
    .await;
}

/// Deploys the fixture, updates the image and waits for the paused canary step.
async fn to_paused_step(world: &World, docs: &[Value]) -> String {
    let name = apply(world, docs).await;
    world.healthy(&name).await;
    world
        .set_image(&name, "argoproj/rollouts-demo:yellow")
        .await;
    eventually("the canary step's pause", || async {
        let status = world.status(&name).await;
        let paused = status["pauseConditions"]
            .as_array()
            .is_some_and(|p| !p.is_empty());
        if paused {
            Ok(())
        } else {
            Err(describe(&status))
        }
    })
    .await;
    name
}

/// Skips the pause (the last step), then waits for the update to complete.
async fn promote(world: &World, name: &str) {
    let steps = world.rollout_json(name).await["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .unwrap()
        .len();
    world
        .patch_status(
            name,
            json!({"pauseConditions": null, "currentStepIndex": steps}),
        )
        .await;
    world.healthy(name).await;
}

fn lint(file: &str) -> (Option<i32>, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(file);
    let out = Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["lint", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn every_router_fixture_lints_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 9, "{files:?}");
    for file in &files {
        assert_eq!(lint(file), (Some(0), String::new()), "{file}");
    }
}

/// The ALB forward action annotation of the Ingress `name` on `service`.
async fn alb_action(world: &World, ingress: &str, service: &str) -> Option<Value> {
    let object = get(world, "networking.k8s.io/v1", "Ingress", ingress).await?;
    let text = object["metadata"]["annotations"]
        [format!("alb.ingress.kubernetes.io/actions.{service}")]
    .as_str()?
    .to_string();
    serde_json::from_str(&text).ok()
}

fn groups(action: &Value) -> Vec<(String, i64)> {
    action["ForwardConfig"]["TargetGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            (
                g["ServiceName"].as_str().unwrap_or_default().to_string(),
                g["Weight"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

async fn alb_weights_until(world: &World, ingress: &str, service: &str, want: &[(&str, i64)]) {
    let want: Vec<(String, i64)> = want.iter().map(|(s, w)| (s.to_string(), *w)).collect();
    eventually("the ALB action's weights", || async {
        let action = alb_action(world, ingress, service).await;
        match &action {
            Some(a) if groups(a) == want => Ok(()),
            _ => Err(format!("{action:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_canary_weights_at_the_step_and_after_promotion() {
    let world = start().await;
    let name = to_paused_step(&world, &fixture("alb-canary.yaml")).await;
    alb_weights_until(
        &world,
        "alb-canary-ingress",
        "alb-canary-root",
        &[("alb-canary-canary", 10), ("alb-canary-stable", 90)],
    )
    .await;
    let action = alb_action(&world, "alb-canary-ingress", "alb-canary-root")
        .await
        .unwrap();
    assert_eq!(
        action["ForwardConfig"]["TargetGroupStickinessConfig"],
        json!({"Enabled": true, "DurationSeconds": 3600})
    );
    let ingress = get(
        &world,
        "networking.k8s.io/v1",
        "Ingress",
        "alb-canary-ingress",
    )
    .await
    .unwrap();
    assert_eq!(
        ingress["metadata"]["annotations"]["rollouts.argoproj.io/managed-alb-annotations"],
        json!(r#"{"alb-canary":["alb.ingress.kubernetes.io/actions.alb-canary-root"]}"#)
    );
    // The load generator follows the same annotation.
    let targets =
        SplitTargets::new(NS, "", "").with_alb_action("alb-canary-ingress", "alb-canary-root");
    let split = resolve_split(&world.client, &targets).await.unwrap();
    let weights: Vec<(String, i64)> = split
        .weighted
        .iter()
        .map(|b| (b.service.clone(), b.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("alb-canary-canary".to_string(), 10),
            ("alb-canary-stable".to_string(), 90)
        ]
    );
    // The user's annotation and rules are untouched.
    assert_eq!(
        ingress["metadata"]["annotations"]["kubernetes.io/ingress.class"],
        json!("alb")
    );
    promote(&world, &name).await;
    alb_weights_until(
        &world,
        "alb-canary-ingress",
        "alb-canary-root",
        &[("alb-canary-canary", 0), ("alb-canary-stable", 100)],
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_several_ingresses_weights_at_the_step_and_after_abort() {
    let world = start().await;
    let name = to_paused_step(&world, &fixture("alb-multi-ingress.yaml")).await;
    for ingress in ["alb-multi-ingress", "alb-multi-ingress-private"] {
        alb_weights_until(
            &world,
            ingress,
            "alb-multi-stable",
            &[("alb-multi-canary", 20), ("alb-multi-stable", 80)],
        )
        .await;
    }
    world.patch_status(&name, json!({"abort": true})).await;
    for ingress in ["alb-multi-ingress", "alb-multi-ingress-private"] {
        alb_weights_until(
            &world,
            ingress,
            "alb-multi-stable",
            &[("alb-multi-canary", 0), ("alb-multi-stable", 100)],
        )
        .await;
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_ping_pong_routes_between_ping_and_pong_at_the_step() {
    let world = start().await;
    to_paused_step(&world, &fixture("alb-pingpong.yaml")).await;
    // status.canary.stablePingPong unset: the pong Service is the stable one.
    alb_weights_until(
        &world,
        "alb-pingpong-ingress",
        "alb-pingpong-root",
        &[("ping-service", 25), ("pong-service", 75)],
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_header_route_is_added_at_its_step_and_removed_on_promotion() {
    let world = start().await;
    let name = to_paused_step(&world, &fixture("alb-header-route.yaml")).await;
    let action_key = "alb.ingress.kubernetes.io/actions.header-route";
    let condition_key = "alb.ingress.kubernetes.io/conditions.header-route";
    object_until(&world, "the header route on the Ingress", "networking.k8s.io/v1", "Ingress", "alb-header-ingress", |o| {
        o.is_some_and(|o| {
            let a = &o["metadata"]["annotations"];
            a[condition_key]
                == json!(r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"Custom-Header","values":["Mozilla"]}}]"#)
                && a[action_key]
                    == json!(r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"alb-header-canary","ServicePort":"80","Weight":100}]}}"#)
                && o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
                    == json!({"name": "header-route", "port": {"name": "use-annotation"}})
        })
    })
    .await;
    alb_weights_until(
        &world,
        "alb-header-ingress",
        "alb-header-action1",
        &[("alb-header-canary", 20), ("alb-header-stable", 80)],
    )
    .await;
    promote(&world, &name).await;
    object_until(
        &world,
        "the header route removed",
        "networking.k8s.io/v1",
        "Ingress",
        "alb-header-ingress",
        |o| {
            o.is_some_and(|o| {
                let a = &o["metadata"]["annotations"];
                a.get(action_key).is_none()
                    && a.get(condition_key).is_none()
                    && o["spec"]["rules"][0]["http"]["paths"]
                        .as_array()
                        .map(Vec::len)
                        == Some(1)
            })
        },
    )
    .await;
    world.stop().await;
}

fn weight_of(list: &Value, key: &str, name: &str) -> Option<i64> {
    list.as_array()?
        .iter()
        .find(|e| e[key] == name)
        .and_then(|e| e["weight"].as_i64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_service_weights_at_the_step_and_after_promotion() {
    let world = start().await;
    let name = to_paused_step(&world, &fixture("traefik.yaml")).await;
    let weights = |canary: i64, stable: i64| {
        move |o: Option<&Value>| {
            o.is_some_and(|o| {
                let services = &o["spec"]["weighted"]["services"];
                weight_of(services, "name", "traefik-canary") == Some(canary)
                    && weight_of(services, "name", "traefik-stable") == Some(stable)
            })
        }
    };
    let (v, k, n) = ("traefik.io/v1alpha1", "TraefikService", "traefik-service");
    object_until(&world, "the step's weights", v, k, n, weights(30, 70)).await;
    promote(&world, &name).await;
    object_until(&world, "the promoted weights", v, k, n, weights(0, 100)).await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambassador_canary_mapping_is_created_weighted_and_deleted_after_promotion() {
    let world = start().await;
    let name = to_paused_step(&world, &fixture("ambassador.yaml")).await;
    let (v, k) = ("getambassador.io/v2", "Mapping");
    object_until(
        &world,
        "the canary Mapping at the step",
        v,
        k,
        "echo-mapping-canary",
        |o| {
            o.is_some_and(|o| {
                o["spec"]["weight"] == 30
                    && o["spec"]["service"] == "echo-canary:80"
                    && o["spec"]["prefix"] == "/echo"
            })
        },
    )
    .await;
    promote(&world, &name).await;
    object_until(
        &world,
        "the canary Mapping deleted",
        v,
        k,
        "echo-mapping-canary",
        |o| o.is_none(),
    )
    .await;
    // The base Mapping is never written.
    let base = get(&world, v, k, "echo-mapping").await.unwrap();
    assert!(base["spec"].get("weight").is_none(), "{base}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apisix_route_weights_and_header_route_at_the_step_and_after_promotion() {
    let world = start().await;
    let name = to_paused_step(&world, &fixture("apisix.yaml")).await;
    let (v, k) = ("apisix.apache.org/v2", "ApisixRoute");
    let weights = |canary: i64, stable: i64| {
        move |o: Option<&Value>| {
            o.is_some_and(|o| {
                let backends = &o["spec"]["http"][0]["backends"];
                weight_of(backends, "serviceName", "rollout-apisix-canary-canary") == Some(canary)
                    && weight_of(backends, "serviceName", "rollout-apisix-canary-stable")
                        == Some(stable)
            })
        }
    };
    object_until(
        &world,
        "the step's weights",
        v,
        k,
        "rollouts-apisix-route",
        weights(40, 60),
    )
    .await;
    object_until(&world, "the header route", v, k, "set-header", |o| {
        o.is_some_and(|o| {
            let rule = &o["spec"]["http"][0];
            rule["backends"]
                == json!([{"serviceName": "rollout-apisix-canary-canary", "servicePort": 80, "weight": 100}])
                && rule["match"]["exprs"]
                    == json!([{"subject": {"scope": "Header", "name": "trace"}, "op": "Equal", "value": "debug"}])
                && rule["priority"] == 1
        })
    })
    .await;
    promote(&world, &name).await;
    object_until(
        &world,
        "the promoted weights",
        v,
        k,
        "rollouts-apisix-route",
        weights(0, 100),
    )
    .await;
    object_until(
        &world,
        "the header route deleted",
        v,
        k,
        "set-header",
        |o| o.is_none(),
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appmesh_router_weights_and_node_hashes_at_the_step_and_after_abort() {
    let world = start().await;
    let name = apply(&world, &fixture("appmesh.yaml")).await;
    let stable = world.healthy(&name).await;
    world
        .set_image(&name, "argoproj/rollouts-demo:yellow")
        .await;
    let (v, router) = ("appmesh.k8s.aws/v1beta2", "VirtualRouter");
    let weights = |canary: i64, stable: i64| {
        move |o: Option<&Value>| {
            o.is_some_and(|o| {
                let targets = &o["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"];
                let of = |node: &str| {
                    targets.as_array().and_then(|list| {
                        list.iter()
                            .find(|t| t["virtualNodeRef"]["name"] == node)
                            .and_then(|t| t["weight"].as_i64())
                    })
                };
                of("my-vn-canary") == Some(canary) && of("my-vn-stable") == Some(stable)
            })
        }
    };
    object_until(
        &world,
        "the step's weights",
        v,
        router,
        "my-vrouter",
        weights(25, 75),
    )
    .await;
    let canary = world.status(&name).await["currentPodHash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(canary, stable);
    let hash = |o: Option<&Value>| {
        o.and_then(|o| {
            o["spec"]["podSelector"]["matchLabels"]["rollouts-pod-template-hash"].as_str()
        })
        .unwrap_or_default()
        .to_string()
    };
    let node = |n: &'static str| get(&world, v, "VirtualNode", n);
    assert_eq!(hash(node("my-vn-stable").await.as_ref()), stable);
    assert_eq!(hash(node("my-vn-canary").await.as_ref()), canary);
    world.patch_status(&name, json!({"abort": true})).await;
    object_until(
        &world,
        "the aborted weights",
        v,
        router,
        "my-vrouter",
        weights(0, 100),
    )
    .await;
    world.stop().await;
}
