//! No request fails because of the rollout itself: the seed's Rollouts (the basic canary, the
//! nginx-routed canary with header routing, blue-green) are released, promoted, released again
//! and aborted under steady load sent as ingress-nginx would send it, and not one request finds
//! no ready backend (nor goes unanswered). Each release's own answers are counted too, so a test
//! whose traffic never reached the new version cannot pass.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use std::time::Duration;

use davy::sandbox::load_generator::{
    LoadConfig, LoadReport, SplitTargets, TaggedRequests, follow_split, run_load,
};
use davy::sandbox::simulator::SimulatorConfig;
use http::{HeaderMap, HeaderName, HeaderValue};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use support::{NS, World, controller_config, describe, eventually, read_docs, simulator_config};

const YELLOW: &str = "argoproj/rollouts-demo:yellow";
/// Answers 30% of requests with HTTP 500: its own errors, which are not the rollout's.
const BAD: &str = "argoproj/rollouts-demo:bad-yellow";

/// One of the seed's Rollouts and how traffic reaches it.
struct Scene {
    /// The manifest under `examples/`.
    manifest: &'static str,
    /// The Rollout's name.
    rollout: &'static str,
    /// Where the load goes.
    targets: SplitTargets,
    /// Requests that carry a header the routing looks at.
    tagged: Option<TaggedRequests>,
    /// Whether the new version takes part of the traffic before promotion (a canary does; a
    /// blue-green active Service does not).
    canary_gets_traffic: bool,
}

/// The manifest's documents (blue), with the delays shortened so the scale-downs after promotion
/// and abort happen while the load runs (the defaults are 30 s and 10 s pauses).
fn docs(manifest: &str) -> Vec<Value> {
    let mut docs = read_docs(&format!("examples/{manifest}"));
    for doc in &mut docs {
        if doc["kind"] != "Rollout" {
            continue;
        }
        let strategy = &mut doc["spec"]["strategy"];
        for name in ["canary", "blueGreen"] {
            let Some(s) = strategy.get_mut(name) else {
                continue;
            };
            // Only traffic-routed canaries and blue-green take scale-down delays.
            if name == "blueGreen" || s.get("trafficRouting").is_some() {
                s["scaleDownDelaySeconds"] = json!(2);
                s["abortScaleDownDelaySeconds"] = json!(2);
            }
            for step in s["steps"].as_array_mut().into_iter().flatten() {
                if step["pause"]["duration"].is_number() {
                    step["pause"]["duration"] = json!(1);
                }
            }
        }
    }
    docs
}

/// Load at 50 requests/s through `scene`'s targets until `cancel`.
async fn start_load(
    world: &World,
    scene: &Scene,
    cancel: CancellationToken,
) -> JoinHandle<LoadReport> {
    let (split, _follow) = follow_split(
        world.client.clone(),
        scene.targets.clone(),
        Duration::from_millis(100),
        cancel.clone(),
    )
    .await
    .expect("follow split");
    let config = LoadConfig {
        rate_per_second: 50.0,
        max_requests: None,
        max_duration: Some(Duration::from_secs(150)),
        tagged: scene.tagged.clone(),
        ..LoadConfig::default()
    };
    tokio::spawn(async move { run_load(&config, split, cancel).await.expect("load") })
}

/// The Pods with pod-template hash `hash` (terminating ones included), and how many are ready.
async fn pods(world: &World, hash: &str) -> (usize, usize) {
    let list = world
        .api::<Pod>()
        .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
        .await
        .expect("list pods");
    let ready = list
        .items
        .iter()
        .filter(|pod| {
            pod.metadata.deletion_timestamp.is_none()
                && pod
                    .status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
        .count();
    (list.items.len(), ready)
}

/// Sets `image` and waits for the Rollout to pause with the new pods ready; their hash.
async fn release_paused(world: &World, name: &str, image: &str, stable: &str) -> String {
    world.set_image(name, image).await;
    eventually(&format!("{image} paused with ready pods"), || async {
        let status = world.status(name).await;
        let current = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status["phase"] == "Paused"
            && !current.is_empty()
            && current != stable
            && pods(world, &current).await.1 > 0
        {
            Ok(current)
        } else {
            Err(describe(&status))
        }
    })
    .await
}

/// Requests the ready pods of `hash` have answered so far, from their own `/metrics`.
async fn served(world: &World, hash: &str) -> u64 {
    let list = world
        .api::<Pod>()
        .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
        .await
        .expect("list pods");
    let mut total = 0.0;
    for ip in list
        .items
        .iter()
        .filter_map(|pod| pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
    {
        let addr = std::net::SocketAddr::new(ip, 8080);
        // A pod going away between the list and the scrape simply counts nothing.
        for sample in support::scrape(addr).await.unwrap_or_default() {
            if sample.metric == "http_requests_total"
                && let prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) =
                    sample.value
            {
                total += v;
            }
        }
    }
    total as u64
}

/// Waits until the pods of `hash` answered at least `n` requests: the new version really
/// serves part of the traffic before the next move.
async fn serving(world: &World, hash: &str, n: u64) {
    eventually(&format!("{hash} serving {n} requests"), || async {
        let got = served(world, hash).await;
        if got >= n {
            Ok(())
        } else {
            Err(format!("{got} served"))
        }
    })
    .await;
}

/// Waits until the Rollout is in `phase` with `stable` as its stable ReplicaSet and every pod
/// of `gone` removed from the API (the scale-down done while the load ran).
async fn settled(world: &World, name: &str, phase: &str, stable: &str, gone: &str) {
    eventually(
        &format!("{phase} on {stable} with the {gone} pods gone"),
        || async {
            let status = world.status(name).await;
            let left = pods(world, gone).await.0;
            if status["phase"] == phase && status["stableRS"] == stable && left == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{} ({left} pods of {gone} left)",
                    describe(&status)
                ))
            }
        },
    )
    .await;
}

/// Deploys blue, then under load: yellow released, promoted, Healthy with blue scaled down;
/// bad-yellow released, aborted, Degraded with its pods scaled down. The load's report.
async fn release_promote_abort(scene: &Scene) -> LoadReport {
    let simulator = SimulatorConfig {
        demo_apps: true,
        ..simulator_config()
    };
    let world = World::start_with(simulator, controller_config()).await;
    world.apply_docs(&docs(scene.manifest)).await;
    let name = scene.rollout;
    let blue = world.healthy(name).await;

    let cancel = CancellationToken::new();
    let load = start_load(&world, scene, cancel.clone()).await;

    let yellow = release_paused(&world, name, YELLOW, &blue).await;
    if scene.canary_gets_traffic {
        serving(&world, &yellow, 10).await;
    }
    world
        .patch_status(name, json!({"pauseConditions": null}))
        .await;
    settled(&world, name, "Healthy", &yellow, &blue).await;

    let bad = release_paused(&world, name, BAD, &yellow).await;
    if scene.canary_gets_traffic {
        serving(&world, &bad, 10).await;
    }
    world.patch_status(name, json!({"abort": true})).await;
    settled(&world, name, "Degraded", &yellow, &bad).await;

    cancel.cancel();
    let report = load.await.expect("load task");
    world.stop().await;
    report
}

/// The assertions every scene shares.
fn assert_no_drops(scene: &Scene, report: &LoadReport) {
    let name = scene.manifest;
    println!("{name}: {report:?}");
    assert_eq!(
        report.unroutable, 0,
        "{name}: requests with no ready backend"
    );
    assert_eq!(
        report.transport_errors, 0,
        "{name}: requests without an answer"
    );
    for version in ["blue", "yellow"] {
        assert!(
            report.count_version(version) > 0,
            "{name}: no answer from {version}: {:?}",
            report.answers
        );
    }
    if scene.canary_gets_traffic {
        assert!(
            report.count_version("bad-yellow") >= 10,
            "{name}: the bad canary got no traffic: {:?}",
            report.answers
        );
    }
    // Whatever failed was the bad release's own answers.
    let errors = report.server_errors();
    assert!(
        errors.keys().all(|version| version == "bad-yellow"),
        "{name}: {errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_canary_drops_nothing() {
    let scene = Scene {
        manifest: "rollouts-demo.yaml",
        rollout: "rollouts-demo",
        targets: SplitTargets::new(NS, "rollouts-demo", "rollouts-demo"),
        tagged: None,
        canary_gets_traffic: true,
    };
    let report = release_promote_abort(&scene).await;
    assert_no_drops(&scene, &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_canary_with_header_routing_drops_nothing() {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-canary"),
        HeaderValue::from_static("iwantsit"),
    );
    let scene = Scene {
        manifest: "rollouts-demo-header-routing.yaml",
        rollout: "rollouts-demo",
        // As ingress-nginx serves it: the stable Ingress's backend and the canary Ingress the
        // controller writes for the same host and path.
        targets: SplitTargets::from_ingress(NS, "user-profile-ingress"),
        // A third of the users send the header that selects the canary.
        tagged: Some(TaggedRequests {
            fraction: 0.3,
            headers,
        }),
        canary_gets_traffic: true,
    };
    let report = release_promote_abort(&scene).await;
    assert_no_drops(&scene, &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_drops_nothing_on_the_active_service() {
    let scene = Scene {
        manifest: "rollout-bluegreen.yaml",
        rollout: "rollout-bluegreen",
        targets: SplitTargets::new(NS, "rollout-bluegreen-active", "rollout-bluegreen-active"),
        tagged: None,
        canary_gets_traffic: false,
    };
    let report = release_promote_abort(&scene).await;
    assert_no_drops(&scene, &report);
}
