//! A promotion window end to end: the controller on the sandbox API server with the workload
//! simulator holds the seed's demo Rollout at its pause step, with the message naming when the
//! window opens, until a 6-field (seconds) cron window opens, then promotes it; and a blue-green
//! Rollout whose active Service switches only once its window opens.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use davy::api::Rollout;
use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;
use serde_json::json;
use support::{World, describe, eventually, read_docs};

const NAME: &str = "rollouts-demo";

/// The seed's demo (`examples/rollouts-demo.yaml`) with two steps: half the pods, a 1 s pause.
fn demo_objects() -> (Rollout, Service) {
    let docs = read_docs("examples/rollouts-demo.yaml");
    let mut rollout = docs
        .iter()
        .find(|doc| doc["kind"] == "Rollout")
        .cloned()
        .expect("rollout doc");
    rollout["spec"]["strategy"]["canary"]["steps"] =
        json!([{"setWeight": 50}, {"pause": {"duration": 1}}]);
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

/// The first multiple of 20 s at least 15 s after `now` (room to reach the pause step first).
fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = now.timestamp() + 15;
    let start = (earliest + 19) / 20 * 20;
    DateTime::from_timestamp(start, 0).expect("in range")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_waits_at_its_pause_for_the_window_then_promotes() {
    let world = World::start().await;
    let (rollout, service) = demo_objects();
    let services = world.api::<Service>();
    services
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");
    world.create(&rollout).await;
    let blue = eventually("the first revision to become Healthy", || async {
        let status = world.status(NAME).await;
        let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
        if status["phase"] == "Healthy" && !stable.is_empty() {
            Ok(stable)
        } else {
            Err(describe(&status))
        }
    })
    .await;

    // One window a day, opening at `opens` (6 fields: second first) for 10 s; then the new
    // image.
    let opens = window_start(Utc::now());
    let schedule = format!(
        "{} {} {} * * *",
        opens.second(),
        opens.minute(),
        opens.hour()
    );
    let windows = json!([{"schedule": schedule, "duration": "10s"}]).to_string();
    let annotate = json!({"metadata": {"annotations": {"davy.dev/promotion-windows": windows}}});
    world.patch(NAME, annotate).await;
    world.set_image(NAME, "argoproj/rollouts-demo:yellow").await;

    let waiting = format!(
        "Waiting for promotion window: next opens at {}",
        opens.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let yellow = eventually("the expired pause step held by the window", || async {
        let status = world.status(NAME).await;
        let current = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let held = status["currentStepIndex"] == 1
            && status["phase"] == "Paused"
            && status["message"] == waiting.as_str()
            && status["pauseConditions"][0]["reason"] == "CanaryPauseStep";
        if held && current != blue {
            Ok(current)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert!(Utc::now() < opens, "held only after the window opened");
    assert_eq!(world.rs_replicas(&yellow).await, Some(1));
    assert_eq!(world.rs_replicas(&blue).await, Some(1));

    eventually(
        "the window to open and the new revision to be promoted",
        || async {
            let status = world.status(NAME).await;
            let past_pause = status["currentStepIndex"].as_i64().unwrap_or(0) >= 2;
            assert!(
                !past_pause || Utc::now() >= opens,
                "advanced before the window opened: {}",
                describe(&status)
            );
            let done = status["phase"] == "Healthy"
                && status["stableRS"] == yellow.as_str()
                && world.rs_replicas(&yellow).await == Some(2)
                && world.rs_replicas(&blue).await == Some(0);
            if done { Ok(()) } else { Err(describe(&status)) }
        },
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_rollout_switches_only_when_the_window_opens() {
    let world = World::start().await;
    let name = "bgw";
    world.create_service(&format!("{name}-active"), name).await;
    world.create_service(&format!("{name}-preview"), name).await;
    world
        .create(&support::rollout(support::blue_green_rollout(
            name,
            1,
            json!({}),
            "argoproj/rollouts-demo:blue",
        )))
        .await;
    let blue = world.healthy(name).await;

    let opens = window_start(Utc::now());
    let schedule = format!(
        "{} {} {} * * *",
        opens.second(),
        opens.minute(),
        opens.hour()
    );
    let windows = json!([{"schedule": schedule, "duration": "10s"}]).to_string();
    let annotate = json!({"metadata": {"annotations": {"davy.dev/promotion-windows": windows}}});
    world.patch(name, annotate).await;
    world.set_image(name, "argoproj/rollouts-demo:green").await;

    // Automatic promotion would switch as soon as the preview is ready: the window holds it.
    let waiting = format!(
        "Waiting for promotion window: next opens at {}",
        opens.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let green = eventually("the switch held by the window", || async {
        let status = world.status(name).await;
        let current = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let held = status["phase"] == "Paused"
            && status["message"] == waiting.as_str()
            && status["blueGreen"]["activeSelector"] == blue.as_str()
            && status["blueGreen"]["previewSelector"] == current.as_str();
        if held && current != blue {
            Ok(current)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert!(Utc::now() < opens, "held only after the window opened");
    assert_eq!(world.selector_of(&format!("{name}-active")).await, blue);

    eventually(
        "the window to open and the active Service to switch",
        || async {
            let active = world.selector_of(&format!("{name}-active")).await;
            assert!(
                active == blue || Utc::now() >= opens,
                "switched before the window opened"
            );
            let status = world.status(name).await;
            if active == green
                && status["stableRS"] == green.as_str()
                && status["phase"] == "Healthy"
            {
                Ok(())
            } else {
                Err(describe(&status))
            }
        },
    )
    .await;
    world.stop().await;
}
