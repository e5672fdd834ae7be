//! Blue-green Rollouts end to end on the in-process sandbox (API server + workload simulator +
//! `davy::controller::run`): the manual gate (preview gets the new pods, active keeps the old
//! ones, `BlueGreenPause`, promote switches, old stack scaled down after the delay) with load
//! sent through the active Service, `autoPromotionSeconds`, pre- and post-promotion analysis
//! failing, `previewReplicaCount`, a `spec.replicas` change mid-rollout, and every blue-green
//! manifest of upstream's examples reaching Healthy — with Argo CD's health read at each stage;
//! running pods relabelled when their stack changes role (ephemeral metadata); and recorded
//! load checked request by request against the Services' selectors across the switch.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use std::time::Duration;

use davy::sandbox::load_generator::{LoadConfig, SplitTargets, follow_split, run_load};
use davy::sandbox::simulator::SimulatorConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::argocd_health::rollout_health;
use support::{
    Sandbox, World, blue_green_rollout, controller_config, describe, eventually, rollout,
    simulator_config,
};

/// Argo CD's (status, message) of the Rollout now.
async fn health(sandbox: &Sandbox, name: &str) -> (String, String) {
    let health = rollout_health(&sandbox.rollout_json(name).await);
    (health.status, health.message)
}

/// Creates the two Services and the Rollout, waits until it is Healthy with the active
/// Service on the first ReplicaSet; that hash.
async fn deploy(sandbox: &Sandbox, name: &str, replicas: i32, extra: Value) -> String {
    sandbox
        .create_service(&format!("{name}-active"), name)
        .await;
    sandbox
        .create_service(&format!("{name}-preview"), name)
        .await;
    sandbox
        .create(&rollout(blue_green_rollout(
            name,
            replicas,
            extra,
            "argoproj/rollouts-demo:blue",
        )))
        .await;
    let blue = sandbox.healthy(name).await;
    assert_eq!(sandbox.selector_of(&format!("{name}-active")).await, blue);
    assert_eq!(
        health(sandbox, name).await,
        ("Healthy".to_string(), String::new())
    );
    blue
}

/// Sets the green image and waits for the new hash to be recorded; returns it.
async fn update(sandbox: &Sandbox, name: &str, blue: &str) -> String {
    sandbox
        .set_image(name, "argoproj/rollouts-demo:green")
        .await;
    eventually("the new revision", || async {
        let status = sandbox.status(name).await;
        match status["currentPodHash"].as_str() {
            Some(hash) if hash != blue => Ok(hash.to_string()),
            _ => Err(describe(&status)),
        }
    })
    .await
}

/// Waits until the Rollout pauses with `BlueGreenPause`.
async fn blue_green_paused(sandbox: &Sandbox, name: &str) -> Value {
    eventually("the BlueGreenPause", || async {
        let status = sandbox.status(name).await;
        if status["phase"] == "Paused" && status["pauseConditions"][0]["reason"] == "BlueGreenPause"
        {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await
}

/// `kubectl argo rollouts promote` on a paused blue-green Rollout.
async fn promote(sandbox: &Sandbox, name: &str) {
    sandbox
        .patch_status(name, json!({"pauseConditions": null}))
        .await;
}

/// Waits until `name` is Degraded; returns its status.
async fn degraded(sandbox: &Sandbox, name: &str) -> Value {
    eventually("a Degraded rollout", || async {
        let status = sandbox.status(name).await;
        if status["phase"] == "Degraded" {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_gate_preview_then_promote_then_old_stack_scaled_down() {
    let simulator = SimulatorConfig {
        demo_apps: true,
        ..simulator_config()
    };
    let world = World::start_with(simulator, controller_config()).await;
    let extra = json!({"autoPromotionEnabled": false, "scaleDownDelaySeconds": 3});
    let blue = deploy(&world, "bg", 2, extra).await;

    // Load through the active Service for the whole test (bounded at 60 s).
    let cancel = CancellationToken::new();
    let (split, _follow) = follow_split(
        world.client.clone(),
        SplitTargets::new(support::NS, "bg-active", "bg-preview"),
        Duration::from_millis(100),
        cancel.clone(),
    )
    .await
    .expect("follow split");
    let config = LoadConfig {
        rate_per_second: 40.0,
        max_requests: None,
        max_duration: Some(Duration::from_secs(60)),
        ..LoadConfig::default()
    };
    let load_cancel = cancel.clone();
    let before = tokio::spawn(async move { run_load(&config, split, load_cancel).await });

    let green = update(&world, "bg", &blue).await;
    let status = blue_green_paused(&world, "bg").await;
    assert_eq!(status["message"], "BlueGreenPause");
    assert_eq!(status["blueGreen"]["activeSelector"], blue.as_str());
    assert_eq!(status["blueGreen"]["previewSelector"], green.as_str());
    assert_eq!(world.selector_of("bg-active").await, blue);
    assert_eq!(world.selector_of("bg-preview").await, green);
    assert_eq!(world.rs_replicas(&green).await, Some(2));
    assert_eq!(world.rs_replicas(&blue).await, Some(2));
    assert_eq!(
        health(&world, "bg").await,
        ("Suspended".to_string(), "BlueGreenPause".to_string())
    );
    // While paused the active Service, and so every request, reaches only blue pods.
    cancel.cancel();
    let report = before.await.expect("load task").expect("load");
    assert!(report.count_version("blue") > 0, "{report:?}");
    assert_eq!(report.count_version("green"), 0, "{report:?}");
    assert_eq!(report.unroutable, 0, "{report:?}");

    promote(&world, "bg").await;
    eventually("the active switch and the new stable", || async {
        let status = world.status("bg").await;
        let done = status["stableRS"] == green.as_str()
            && status["blueGreen"]["activeSelector"] == green.as_str()
            && status["phase"] == "Healthy";
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    assert_eq!(world.selector_of("bg-active").await, green);
    assert_eq!(
        health(&world, "bg").await,
        ("Healthy".to_string(), String::new())
    );
    // The old stack waits for its scale-down deadline, then goes to zero.
    let old = world
        .replica_sets()
        .get(&format!("bg-{blue}"))
        .await
        .expect("old rs");
    let annotations = old.metadata.annotations.unwrap_or_default();
    assert!(
        annotations.contains_key("scale-down-deadline")
            || old.spec.and_then(|s| s.replicas) == Some(0),
        "{annotations:?}"
    );
    eventually("the old stack scaled down", || async {
        match world.rs_replicas(&blue).await {
            Some(0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // After the switch, load through the active Service reaches only green pods.
    let cancel = CancellationToken::new();
    let (split, _follow) = follow_split(
        world.client.clone(),
        SplitTargets::new(support::NS, "bg-active", "bg-preview"),
        Duration::from_millis(100),
        cancel.clone(),
    )
    .await
    .expect("follow split");
    let config = LoadConfig {
        rate_per_second: 40.0,
        max_requests: Some(40),
        ..LoadConfig::default()
    };
    let report = run_load(&config, split, cancel).await.expect("load");
    assert!(report.count_version("green") > 0, "{report:?}");
    assert_eq!(report.count_version("blue"), 0, "{report:?}");
    world
        .event_reasons_including("bg", &["SwitchService", "RolloutCompleted"])
        .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_promotion_seconds_promotes_after_the_pause() {
    let world = World::start().await;
    let blue = deploy(&world, "auto", 1, json!({"autoPromotionSeconds": 2})).await;
    let green = update(&world, "auto", &blue).await;
    blue_green_paused(&world, "auto").await;
    assert_eq!(world.selector_of("auto-active").await, blue);
    eventually("the automatic promotion", || async {
        let status = world.status("auto").await;
        if status["stableRS"] == green.as_str() && status["phase"] == "Healthy" {
            Ok(())
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert_eq!(world.selector_of("auto-active").await, green);
    world.stop().await;
}

/// A local HTTP server answering `/pass` with `{"ok": true}` and `/fail` with `{"ok": false}`.
async fn gate_server() -> String {
    let app = axum::Router::new()
        .route(
            "/pass",
            axum::routing::get(|| async { axum::Json(json!({"ok": true})) }),
        )
        .route(
            "/fail",
            axum::routing::get(|| async { axum::Json(json!({"ok": false})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}")
}

/// An AnalysisTemplate `gate` with one web measurement of `{{args.url}}`.
fn gate_template() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "gate", "namespace": support::NS},
        "spec": {"args": [{"name": "url"}],
                 "metrics": [{"name": "gate", "count": 1, "interval": "1s",
                              "successCondition": "result == true",
                              "provider": {"web": {"url": "{{args.url}}", "jsonPath": "{$.ok}"}}}]}
    })
}

fn gate(url: &str) -> Value {
    json!({"templates": [{"templateName": "gate"}], "args": [{"name": "url", "value": url}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_pre_promotion_analysis_aborts_without_switching() {
    let world = World::start().await;
    let url = gate_server().await;
    world.create_template(gate_template()).await;
    let extra = json!({"prePromotionAnalysis": gate(&format!("{url}/fail")),
                       "abortScaleDownDelaySeconds": 1});
    let blue = deploy(&world, "pre", 2, extra).await;
    let green = update(&world, "pre", &blue).await;
    let status = degraded(&world, "pre").await;
    assert_eq!(status["abort"], true, "{status}");
    assert_eq!(status["stableRS"], blue.as_str());
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with(
                "RolloutAborted: Rollout aborted update to revision 2: Blue/green pre-promotion analysis phase error/failed"
            ),
        "{status}"
    );
    assert_eq!(
        status["blueGreen"]["prePromotionAnalysisRunStatus"]["status"],
        "Failed"
    );
    assert_eq!(world.selector_of("pre-active").await, blue);
    assert_eq!(health(&world, "pre").await.0, "Degraded");
    // The preview is scaled down after the abort delay; the active never moved.
    eventually("the preview scaled down", || async {
        match world.rs_replicas(&green).await {
            Some(0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(world.selector_of("pre-active").await, blue);
    assert_eq!(world.rs_replicas(&blue).await, Some(2));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_post_promotion_analysis_switches_back() {
    let world = World::start().await;
    let url = gate_server().await;
    world.create_template(gate_template()).await;
    let extra = json!({"postPromotionAnalysis": gate(&format!("{url}/fail"))});
    let blue = deploy(&world, "post", 2, extra).await;
    let green = update(&world, "post", &blue).await;
    // The switch happens first (the post-promotion run needs the new pods behind the active
    // Service, and is only started once it selects them)... The gate fails at its first
    // measurement, so the switch and the switch back can both land between two polls: the
    // run's status is the lasting proof that green was switched to.
    eventually("the switch to green", || async {
        let selected = world.selector_of("post-active").await;
        let post_run =
            world.status("post").await["blueGreen"]["postPromotionAnalysisRunStatus"].is_object();
        if selected == green || post_run {
            Ok(())
        } else {
            Err(selected)
        }
    })
    .await;
    // ...then the failed run aborts and the active Service goes back to blue.
    let status = degraded(&world, "post").await;
    assert_eq!(status["stableRS"], blue.as_str());
    assert_eq!(
        status["blueGreen"]["postPromotionAnalysisRunStatus"]["status"], "Failed",
        "{status}"
    );
    eventually("the switch back to blue", || async {
        let selected = world.selector_of("post-active").await;
        if selected == blue {
            Ok(())
        } else {
            Err(selected)
        }
    })
    .await;
    assert_eq!(world.rs_replicas(&blue).await, Some(2));
    assert_eq!(health(&world, "post").await.0, "Degraded");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_replica_count_then_a_replicas_change_mid_rollout() {
    let world = World::start().await;
    let extra = json!({"autoPromotionEnabled": false, "previewReplicaCount": 1});
    let blue = deploy(&world, "prc", 3, extra).await;
    let green = update(&world, "prc", &blue).await;
    blue_green_paused(&world, "prc").await;
    assert_eq!(world.rs_replicas(&green).await, Some(1));
    assert_eq!(world.rs_replicas(&blue).await, Some(3));

    // An HPA-style change of spec.replicas while paused: the active stack follows it, the
    // preview keeps its previewReplicaCount.
    world.patch("prc", json!({"spec": {"replicas": 4}})).await;
    eventually("the active stack resized", || async {
        let sizes = (
            world.rs_replicas(&blue).await,
            world.rs_replicas(&green).await,
        );
        if sizes == (Some(4), Some(1)) {
            Ok(())
        } else {
            Err(format!("{sizes:?}"))
        }
    })
    .await;
    blue_green_paused(&world, "prc").await;

    promote(&world, "prc").await;
    eventually("the promotion at full size", || async {
        let status = world.status("prc").await;
        let done = status["stableRS"] == green.as_str()
            && status["phase"] == "Healthy"
            && world.rs_replicas(&green).await == Some(4);
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    assert_eq!(world.selector_of("prc-active").await, green);
    assert_eq!(
        health(&world, "prc").await,
        ("Healthy".to_string(), String::new())
    );
    world.stop().await;
}

/// Every blue-green Rollout of upstream's examples that is plain YAML (the Helm template is
/// not) reaches Healthy with its Services, then again after an update and a promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_examples_reach_healthy() {
    let Some(dir) = common::conformance_dir() else {
        return;
    };
    let examples = dir.join("argo-examples").join("examples");
    let mut files = Vec::new();
    for entry in walk(&examples) {
        let text = std::fs::read_to_string(&entry).unwrap();
        if text.contains("blueGreen:") && !text.contains("{{") {
            files.push(entry);
        }
    }
    assert!(!files.is_empty(), "no blue-green example found");
    for file in files {
        reaches_healthy_twice(&file).await;
    }
}

/// The project's `examples/rollout-bluegreen.yaml` does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_project_blue_green_example_reaches_healthy() {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rollout-bluegreen.yaml");
    reaches_healthy_twice(&file).await;
}

/// Applies the manifests of `file` on a fresh sandbox with a controller: the Rollout becomes
/// Healthy, then Healthy again on a new image (promoted when it pauses).
async fn reaches_healthy_twice(file: &std::path::Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    for doc in &mut docs {
        doc["metadata"]["namespace"] = json!(support::NS);
    }
    let name = docs
        .iter()
        .find(|d| d["kind"] == "Rollout")
        .and_then(|d| d["metadata"]["name"].as_str())
        .expect("a Rollout")
        .to_string();
    let world = World::start().await;
    world.apply_docs(&docs).await;
    let first = world.healthy(&name).await;
    assert_eq!(
        health(&world, &name).await,
        ("Healthy".to_string(), String::new()),
        "{}",
        file.display()
    );
    world.set_image(&name, "argoproj/rollouts-demo:green").await;
    eventually(
        &format!("{}: the update to be Healthy", file.display()),
        || async {
            let status = world.status(&name).await;
            if status["pauseConditions"][0]["reason"] == "BlueGreenPause" {
                promote(&world, &name).await;
            }
            let stable = status["stableRS"].as_str().unwrap_or_default();
            if status["phase"] == "Healthy" && !stable.is_empty() && stable != first {
                Ok(())
            } else {
                Err(describe(&status))
            }
        },
    )
    .await;
    world.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The live Pods with this hash, sorted by name.
async fn live_pods(world: &Sandbox, hash: &str) -> Vec<k8s_openapi::api::core::v1::Pod> {
    let pods = world
        .api::<k8s_openapi::api::core::v1::Pod>()
        .list(
            &kube::api::ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")),
        )
        .await
        .expect("list pods")
        .items;
    let mut pods: Vec<_> = pods
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

/// `role` label and `stage` annotation of every live Pod with this hash (sorted by name).
async fn pod_roles(world: &Sandbox, hash: &str) -> Vec<(Option<String>, Option<String>)> {
    live_pods(world, hash)
        .await
        .iter()
        .map(|pod| {
            (
                pod.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("role"))
                    .cloned(),
                pod.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("stage"))
                    .cloned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_pods_are_relabelled_when_their_stack_changes_role() {
    let world = World::start().await;
    let extra = json!({
        "autoPromotionEnabled": false,
        "scaleDownDelaySeconds": 30,
        "activeMetadata": {"labels": {"role": "active"}},
        "previewMetadata": {"labels": {"role": "preview"}, "annotations": {"stage": "review"}}
    });
    let blue = deploy(&world, "meta", 2, extra).await;
    let active = (Some("active".to_string()), None);
    let preview = (Some("preview".to_string()), Some("review".to_string()));
    assert_eq!(pod_roles(&world, &blue).await, vec![active.clone(); 2]);

    let green = update(&world, "meta", &blue).await;
    blue_green_paused(&world, "meta").await;
    assert_eq!(pod_roles(&world, &green).await, vec![preview.clone(); 2]);
    assert_eq!(pod_roles(&world, &blue).await, vec![active.clone(); 2]);
    let names = |pods: Vec<k8s_openapi::api::core::v1::Pod>| {
        pods.into_iter()
            .map(|pod| pod.metadata.name.unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let green_names = names(live_pods(&world, &green).await);

    promote(&world, "meta").await;
    // The same green pods (no restart) become the active ones; the blue pods, still up for
    // the scale-down delay, lose the injected label.
    eventually("the pods relabelled", || async {
        let green_pods = pod_roles(&world, &green).await;
        let blue_pods = pod_roles(&world, &blue).await;
        if green_pods == vec![active.clone(); 2] && blue_pods == vec![(None, None); 2] {
            Ok(())
        } else {
            Err(format!("green {green_pods:?} blue {blue_pods:?}"))
        }
    })
    .await;
    let status = world.status("meta").await;
    assert_eq!(status["stableRS"], green.as_str(), "{}", describe(&status));
    assert_eq!(world.rs_replicas(&blue).await, Some(2));
    assert_eq!(names(live_pods(&world, &green).await), green_names);
    world.stop().await;
}

/// Polls a Service's `rollouts-pod-template-hash` selector until `cancel`; every value with
/// the instant it was first seen (a change is seen at most one poll plus one GET late).
fn record_selector(
    world: &Sandbox,
    service: &str,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<Vec<(std::time::Instant, String)>> {
    let api = world.api::<k8s_openapi::api::core::v1::Service>();
    let service = service.to_string();
    tokio::spawn(async move {
        let mut seen: Vec<(std::time::Instant, String)> = Vec::new();
        while !cancel.is_cancelled() {
            if let Ok(found) = api.get(&service).await {
                let hash = found
                    .spec
                    .and_then(|spec| spec.selector)
                    .and_then(|selector| selector.get("rollouts-pod-template-hash").cloned())
                    .unwrap_or_default();
                if seen.last().is_none_or(|(_, last)| *last != hash) {
                    seen.push((std::time::Instant::now(), hash));
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
        seen
    })
}

/// Recorded load through one Service (all traffic on its side) until `cancel`.
async fn recorded_load(
    world: &Sandbox,
    service: &str,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<davy::sandbox::load_generator::LoadReport> {
    let (split, follow) = follow_split(
        world.client.clone(),
        SplitTargets::new(support::NS, service, service),
        Duration::from_millis(100),
        cancel.clone(),
    )
    .await
    .expect("follow split");
    let config = LoadConfig {
        rate_per_second: 50.0,
        max_requests: None,
        max_duration: Some(Duration::from_secs(120)),
        record_requests: true,
        ..LoadConfig::default()
    };
    // The split follower stops on `cancel` as well.
    drop(follow);
    tokio::spawn(async move { run_load(&config, split, cancel).await.expect("load") })
}

/// How long after a selector change requests may still follow the previous one: the
/// EndpointSlices are rewritten after the Service (as in Kubernetes) and the load generator
/// re-reads them every 100 ms.
const PROPAGATION: Duration = Duration::from_secs(1);
/// How long each phase of the per-request test sends load (several times `PROPAGATION`).
const PHASE: Duration = Duration::from_secs(3);

/// Lets `duration` pass while the load runs (gathering requests, not waiting for a state).
async fn hold(duration: Duration) {
    let since = std::time::Instant::now();
    eventually("the load phase", || async {
        if since.elapsed() >= duration {
            Ok(())
        } else {
            Err(format!("{:?} of {duration:?}", since.elapsed()))
        }
    })
    .await;
}
/// How late the selector recorder may see a change (one poll and one GET).
const RECORDER_SLACK: Duration = Duration::from_millis(500);

/// Requests whose answering pod's hash the Service did not select at any moment from
/// `PROPAGATION` before the request was routed up to when it was routed (widened by
/// `RECORDER_SLACK`); `hash_of` maps a version header to its hash.
fn misrouted(
    report: &davy::sandbox::load_generator::LoadReport,
    timeline: &[(std::time::Instant, String)],
    hash_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (index, request) in report.requests.iter().enumerate() {
        let Some((version, code)) = &request.answer else {
            continue;
        };
        let Some(hash) = hash_of(version) else {
            wrong.push(format!("#{index}: unknown version {version} ({code})"));
            continue;
        };
        let from = request
            .routed_at
            .checked_sub(PROPAGATION)
            .unwrap_or(request.routed_at);
        let to = request.routed_at + RECORDER_SLACK;
        let selected = timeline.iter().enumerate().any(|(i, (start, selected))| {
            let end = timeline.get(i + 1).map(|(next, _)| *next);
            *selected == hash && *start <= to && end.is_none_or(|end| end >= from)
        });
        if !selected {
            let at = timeline
                .first()
                .map(|(t0, _)| request.routed_at.saturating_duration_since(*t0));
            wrong.push(format!(
                "#{index} at {at:?}: {version} ({hash}) not selected"
            ));
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_reaches_a_pod_its_service_selects_across_the_switch() {
    let simulator = SimulatorConfig {
        demo_apps: true,
        ..simulator_config()
    };
    let world = World::start_with(simulator, controller_config()).await;
    let extra = json!({"autoPromotionEnabled": false, "scaleDownDelaySeconds": 5});
    let blue = deploy(&world, "req", 2, extra).await;

    let cancel = CancellationToken::new();
    let active_selectors = record_selector(&world, "req-active", cancel.clone());
    let preview_selectors = record_selector(&world, "req-preview", cancel.clone());
    let active_load = recorded_load(&world, "req-active", cancel.clone()).await;
    let preview_load = recorded_load(&world, "req-preview", cancel.clone()).await;

    // Load on the blue stack alone, then on the paused preview, long enough that a request
    // reaching the wrong stack cannot pass as propagation lag.
    hold(PHASE).await;
    let green = update(&world, "req", &blue).await;
    blue_green_paused(&world, "req").await;
    let green_ready = std::time::Instant::now();
    hold(PHASE).await;
    promote(&world, "req").await;
    eventually("the promotion and the old stack scaled down", || async {
        let status = world.status("req").await;
        let done = status["stableRS"] == green.as_str()
            && status["phase"] == "Healthy"
            && world.rs_replicas(&blue).await == Some(0);
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    // Some more load once everything settled.
    hold(PHASE).await;
    cancel.cancel();
    let active = active_load.await.expect("active load");
    let preview = preview_load.await.expect("preview load");
    let active_timeline = active_selectors.await.expect("active selectors");
    let preview_timeline = preview_selectors.await.expect("preview selectors");

    let hash_of = |version: &str| match version {
        "blue" => Some(blue.clone()),
        "green" => Some(green.clone()),
        _ => None,
    };
    let hashes = |timeline: &[(std::time::Instant, String)]| {
        timeline.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>()
    };
    // Each Service moved once, from blue to green: the active one at the promotion, the
    // preview one at the update.
    assert_eq!(hashes(&active_timeline), vec![blue.clone(), green.clone()]);
    assert_eq!(hashes(&preview_timeline), vec![blue.clone(), green.clone()]);
    assert!(active_timeline[1].0 >= preview_timeline[1].0 + PHASE);
    assert!(preview_timeline[1].0 >= preview_timeline[0].0 + PHASE);
    for (name, report, timeline) in [
        ("active", &active, &active_timeline),
        ("preview", &preview, &preview_timeline),
    ] {
        // Both versions answered on each Service, and no request was lost.
        assert!(
            report.count_version("blue") > 0,
            "{name}: {:?}",
            report.answers
        );
        assert!(
            report.count_version("green") > 0,
            "{name}: {:?}",
            report.answers
        );
        assert_eq!(report.transport_errors, 0, "{name}");
        let wrong = misrouted(report, timeline, &hash_of);
        assert!(wrong.is_empty(), "{name}: {wrong:#?}");
        // Requests without a pod: only on the preview Service, which (as upstream's) selects
        // the new stack as soon as it exists, before its pods are ready (and until the load
        // generator has read the slices that list them).
        let switched = timeline[1].0;
        let unroutable: Vec<_> = report
            .requests
            .iter()
            .filter(|r| r.target.is_none())
            .map(|r| r.routed_at)
            .collect();
        assert_eq!(unroutable.len() as u64, report.unroutable, "{name}");
        if name == "active" {
            assert!(
                unroutable.is_empty(),
                "{name}: {} unroutable",
                unroutable.len()
            );
        }
        assert!(
            unroutable
                .iter()
                .all(|&at| at + RECORDER_SLACK >= switched && at <= green_ready + PROPAGATION),
            "{name}: unroutable outside the preview's switch to unready pods: switch {:?}, ready {:?}, at {:?}",
            switched.saturating_duration_since(timeline[0].0),
            green_ready.saturating_duration_since(timeline[0].0),
            unroutable
                .iter()
                .map(|at| at.saturating_duration_since(timeline[0].0))
                .collect::<Vec<_>>()
        );
        let lag = report
            .requests
            .iter()
            .filter(|r| r.answer.as_ref().is_some_and(|(v, _)| v == "blue"))
            .filter_map(|r| r.routed_at.checked_duration_since(switched))
            .max();
        println!("{name}: last blue answer routed {lag:?} after the switch was seen");
        // Long after its last switch, the Service's requests reached only green pods.
        let late_blue = report
            .requests
            .iter()
            .filter(|r| r.routed_at > switched + PROPAGATION)
            .filter(|r| r.answer.as_ref().is_some_and(|(v, _)| v == "blue"))
            .count();
        assert_eq!(late_blue, 0, "{name}");
    }
    // No request on the active Service reached green before the promotion switched it.
    let promoted = active_timeline[1].0;
    let early_green = active
        .requests
        .iter()
        .filter(|r| r.routed_at + RECORDER_SLACK < promoted)
        .filter(|r| r.answer.as_ref().is_some_and(|(v, _)| v == "green"))
        .count();
    assert_eq!(early_green, 0);
    world.stop().await;
}
