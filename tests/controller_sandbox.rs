//! The controller end to end on the sandbox API server with the workload simulator: the seed's
//! demo Rollout walks its canary steps, pauses, is promoted and ends Healthy.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use davy::api::Rollout;
use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;
use serde_json::json;
use support::{World, describe, eventually, read_docs};

/// The seed's demo (`examples/rollouts-demo.yaml`) with timed pauses shortened to 1 s.
fn demo_objects() -> (Rollout, Service) {
    let docs = read_docs("examples/rollouts-demo.yaml");
    let mut rollout = docs
        .iter()
        .find(|doc| doc["kind"] == "Rollout")
        .cloned()
        .expect("rollout doc");
    for step in rollout["spec"]["strategy"]["canary"]["steps"]
        .as_array_mut()
        .expect("steps")
    {
        if step["pause"]["duration"].is_number() {
            step["pause"]["duration"] = json!(1);
        }
    }
    let service = docs
        .iter()
        .find(|doc| doc["kind"] == "Service")
        .cloned()
        .expect("service doc");
    (
        serde_json::from_value(rollout).expect("rollout"),
        serde_json::from_value(service).expect("service"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_walks_the_canary_steps_and_is_promoted() {
    let world = World::start().await;
    let (rollout, service) = demo_objects();
    let services = world.api::<Service>();
    services
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");
    world.create(&rollout).await;

    let blue = eventually("the first revision to become Healthy", || async {
        let status = world.status("rollouts-demo").await;
        let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
        if status["phase"] == "Healthy" && !stable.is_empty() {
            Ok(stable)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert_eq!(world.rs_replicas(&blue).await, Some(2));

    world
        .set_image("rollouts-demo", "argoproj/rollouts-demo:yellow")
        .await;

    let yellow = eventually("step 1 paused with one canary pod", || async {
        let status = world.status("rollouts-demo").await;
        let current = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let paused = status["currentStepIndex"] == 1
            && status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
            && status["phase"] == "Paused";
        if paused && current != blue && world.rs_replicas(&current).await == Some(1) {
            Ok(current)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    let status = world.status("rollouts-demo").await;
    assert_eq!(status["stableRS"], blue.as_str());
    assert_eq!(world.rs_replicas(&blue).await, Some(2));
    // The demo names no canaryService/stableService: its Service is left alone.
    let selector = services
        .get("rollouts-demo")
        .await
        .expect("service")
        .spec
        .and_then(|spec| spec.selector)
        .unwrap_or_default();
    assert_eq!(
        selector.into_iter().collect::<Vec<_>>(),
        vec![("app".to_string(), "rollouts-demo".to_string())]
    );

    // Promote, as `kubectl argo rollouts promote` does for a canary pause step.
    world
        .patch_status("rollouts-demo", json!({"pauseConditions": null}))
        .await;

    eventually("the new revision to become stable and Healthy", || async {
        let status = world.status("rollouts-demo").await;
        let done = status["phase"] == "Healthy"
            && status["stableRS"] == yellow.as_str()
            && world.rs_replicas(&yellow).await == Some(2)
            && world.rs_replicas(&blue).await == Some(0);
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    let status = world.status("rollouts-demo").await;
    assert_eq!(status["currentStepIndex"], 8);
    assert!(status["pauseConditions"].is_null(), "{status}");

    // Fails, naming the missing one, unless every reason arrives.
    world
        .event_reasons_including(
            "rollouts-demo",
            &[
                "RolloutUpdated",
                "RolloutPaused",
                "RolloutStepCompleted",
                "ScalingReplicaSet",
                "RolloutCompleted",
            ],
        )
        .await;
    world.stop().await;
}
