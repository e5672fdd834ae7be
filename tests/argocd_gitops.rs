//! The seed's GitOps loop, seen the way Argo CD sees it: the seed's Rollout
//! (`examples/rollouts-demo.yaml`, with a background analysis and 1 s timed pauses) is synced
//! by server-side apply of the manifest "in Git", Argo CD's own `health.lua` reads the Rollout
//! at every stage and its own action scripts are the buttons. Health goes Progressing →
//! Suspended at the manual pause → (resume) Healthy; a bad version aborted with Argo CD's
//! `abort` is Degraded and stays Degraded through further syncs that leave the template alone;
//! reverting the template in Git to the stable image is a fast rollback (no new ReplicaSet, no
//! canary steps, no pause, no AnalysisRun) back to Healthy.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use std::time::Duration;

use common::argocd_health::rollout_health;
use common::argocd_lua;
use davy::api::AnalysisRun;
use davy::sandbox::simulator::SimulatorConfig;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::{
    NS, World, controller_config, create_verdict_template, describe, eventually, read_docs,
    simulator_config, verdict_server,
};

const NAME: &str = "rollouts-demo";

/// The seed's Rollout as Git holds it with `image`: 1 s timed pauses instead of 10 s, and a
/// background analysis (the web verdict template, passing) so a fast rollback can be seen to
/// start none.
fn manifest(image: &str, verdict_url: &str, history: i64) -> Value {
    let mut doc = read_docs("examples/rollouts-demo.yaml")
        .into_iter()
        .find(|d| d["kind"] == "Rollout")
        .unwrap();
    doc["metadata"]["namespace"] = json!(NS);
    doc["spec"]["revisionHistoryLimit"] = json!(history);
    let canary = &mut doc["spec"]["strategy"]["canary"];
    for step in canary["steps"].as_array_mut().unwrap() {
        if step["pause"]["duration"].is_number() {
            step["pause"]["duration"] = json!(1);
        }
    }
    canary["analysis"] = json!({
        "templates": [{"templateName": "verdict"}],
        "args": [{"name": "url", "value": format!("{verdict_url}/pass")}]
    });
    doc["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!(format!("argoproj/rollouts-demo:{image}"));
    doc
}

/// An Argo CD sync: the manifest server-side applied by Argo CD's field manager.
async fn sync(world: &World, manifest: &Value) {
    world
        .rollouts()
        .patch(
            NAME,
            &PatchParams::apply("argocd-controller").force(),
            &Patch::Apply(manifest),
        )
        .await
        .expect("sync");
}

/// Runs Argo CD's `action` script and applies its result as Argo CD does (the object as a
/// merge patch, its status through `/status`).
async fn act(world: &World, action: &str) {
    let before = world.rollout_json(NAME).await;
    let after = argocd_lua::act("Rollout", action, &before).unwrap();
    let mut patch = argocd_lua::merge_patch(&before, &after).expect("the action changes something");
    let status = patch.as_object_mut().unwrap().remove("status");
    let api = world.rollouts();
    if !patch.as_object().unwrap().is_empty() {
        api.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    if let Some(status) = status {
        api.patch_status(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    }
}

/// Argo CD's health of the Rollout now.
async fn health(world: &World) -> (String, String) {
    let health = rollout_health(&world.rollout_json(NAME).await);
    (health.status, health.message)
}

/// Polls Argo CD's health until it is `wanted`; returns every distinct status seen on the way,
/// in order, ending with `wanted`.
async fn health_until(world: &World, wanted: &str) -> Vec<String> {
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    eventually(&format!("Argo CD health {wanted}"), || async {
        let (status, message) = health(world).await;
        let mut seen = seen.lock().unwrap();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == wanted {
            Ok(())
        } else {
            Err(format!("{status} ({message}); seen {seen:?}"))
        }
    })
    .await;
    seen.into_inner().unwrap()
}

async fn analysis_runs(world: &World) -> usize {
    world
        .api::<AnalysisRun>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len()
}

async fn replica_sets(world: &World) -> Vec<String> {
    let mut names: Vec<String> = world
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|rs| rs.metadata.name)
        .collect();
    names.sort();
    names
}

async fn count_events(world: &World, reason: &str) -> usize {
    world
        .events(NAME)
        .await
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| e.count.unwrap_or(1).max(1) as usize)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_degraded_until_git_is_reverted_then_healthy_without_a_rollout() {
    if argocd_lua::scripts_dir().is_none() {
        return;
    }
    // Pods take 1 s to become ready, so the Progressing stretches are seen by polling.
    let simulator = SimulatorConfig {
        pod_ready_delay: Duration::from_secs(1),
        ..simulator_config()
    };
    let world = World::start_with(simulator, controller_config()).await;
    let verdict = verdict_server().await;
    create_verdict_template(&world, "verdict", 1000).await;

    // First sync: blue goes straight to 100 %.
    sync(&world, &manifest("blue", &verdict, 2)).await;
    let seen = health_until(&world, "Healthy").await;
    assert!(seen.contains(&"Progressing".to_string()), "{seen:?}");
    let blue = world.healthy(NAME).await;

    // Git says yellow: Progressing while the canary pod starts, then Suspended at `pause: {}`.
    sync(&world, &manifest("yellow", &verdict, 2)).await;
    let seen = health_until(&world, "Suspended").await;
    assert_eq!(
        seen.first().map(String::as_str),
        Some("Progressing"),
        "{seen:?}"
    );
    assert_eq!(
        health(&world).await,
        ("Suspended".to_string(), "CanaryPauseStep".to_string())
    );
    assert_eq!(world.status(NAME).await["currentStepIndex"], 1);
    // Argo CD's resume: through the timed pauses (Suspended or Progressing) to Healthy.
    act(&world, "resume").await;
    let seen = health_until(&world, "Healthy").await;
    assert!(
        seen.iter().all(|s| s != "Degraded"),
        "never Degraded on the way: {seen:?}"
    );
    let yellow = world.healthy(NAME).await;
    assert_ne!(yellow, blue);
    let status = world.status(NAME).await;
    assert_eq!(status["currentStepIndex"], 8, "{}", describe(&status));

    // Git says bad-yellow; at the manual pause the operator presses Argo CD's abort.
    sync(&world, &manifest("bad-yellow", &verdict, 2)).await;
    health_until(&world, "Suspended").await;
    let bad = world.status(NAME).await["currentPodHash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(bad, yellow);
    act(&world, "abort").await;
    health_until(&world, "Degraded").await;
    let (_, message) = health(&world).await;
    assert!(
        message.starts_with("RolloutAborted: Rollout aborted update to revision 3"),
        "{message}"
    );
    eventually("the canary scaled down", || async {
        match world.rs_replicas(&bad).await {
            Some(0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(world.rs_replicas(&yellow).await, Some(2));

    // Another sync that leaves the template alone (Git changed something else): once the
    // controller has seen that generation, the Rollout is still Degraded — only reverting the
    // template clears it.
    sync(&world, &manifest("bad-yellow", &verdict, 3)).await;
    eventually("the new generation observed", || async {
        let rollout = world.rollout_json(NAME).await;
        let generation = rollout["metadata"]["generation"].as_i64().unwrap_or(0);
        // Davy writes observedGeneration as a string, as upstream.
        let observed = rollout["status"]["observedGeneration"]
            .as_str()
            .and_then(|g| g.parse::<i64>().ok());
        if observed == Some(generation) {
            Ok(())
        } else {
            Err(describe(&rollout["status"]))
        }
    })
    .await;
    assert_eq!(health(&world).await.0, "Degraded");
    assert_eq!(world.status(NAME).await["abort"], true);

    // Revert in Git: the template is yellow's again. A fast rollback: the stable ReplicaSet is
    // the current one at once, no step runs, no pause, no analysis, no new ReplicaSet.
    let runs_before = analysis_runs(&world).await;
    let replica_sets_before = replica_sets(&world).await;
    let paused_before = count_events(&world, "RolloutPaused").await;
    sync(&world, &manifest("yellow", &verdict, 3)).await;
    let seen = health_until(&world, "Healthy").await;
    assert!(
        !seen.iter().any(|s| s == "Suspended"),
        "no pause on the way back: {seen:?}"
    );
    let status = world.status(NAME).await;
    assert_eq!(status["stableRS"], yellow.as_str(), "{}", describe(&status));
    assert_eq!(status["currentPodHash"], yellow.as_str());
    assert_eq!(status["currentStepIndex"], 8);
    assert!(
        status["abort"].is_null() || status["abort"] == false,
        "{status}"
    );
    assert!(status["pauseConditions"].is_null(), "{status}");
    assert_eq!(world.rs_replicas(&yellow).await, Some(2));
    assert_eq!(world.rs_replicas(&bad).await, Some(0));
    assert_eq!(replica_sets(&world).await, replica_sets_before);
    assert_eq!(analysis_runs(&world).await, runs_before, "no AnalysisRun");
    assert_eq!(count_events(&world, "RolloutPaused").await, paused_before);
    world.event_reasons_including(NAME, &["SkipSteps"]).await;
    assert_eq!(health(&world).await, ("Healthy".to_string(), String::new()));
    world.stop().await;
}
