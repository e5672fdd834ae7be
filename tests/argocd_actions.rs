//! Argo CD's resource actions on a Rollout that Davy runs: the UI's buttons are Argo CD's own
//! `discovery.lua` and `action.lua` scripts (run under Lua 5.1), applied the way Argo CD
//! applies them (the changed object as a merge patch, then its status through `/status`),
//! against the sandbox with the controller. Each action must do under Davy what it does under
//! Argo Rollouts, and the buttons offered must follow the state, at every stage. Each action
//! also has the same effect as the matching `kubectl davy` verb: two identical Rollouts, one
//! driven by Argo CD's buttons and one by the real `davy` binary, end every stage in the same
//! state.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use common::argocd_health::rollout_health;
use common::argocd_lua;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use support::{World, canary_rollout, describe, eventually, rollout};

const NAME: &str = "buttons";

/// The actions Argo CD offers on the Rollout now: name → enabled.
async fn offered(world: &World, name: &str) -> BTreeMap<String, bool> {
    let object = world.rollout_json(name).await;
    argocd_lua::discover("Rollout", &object)
        .unwrap()
        .into_iter()
        .collect()
}

/// Runs Argo CD's `action` on the Rollout and applies the result as Argo CD does.
async fn act(world: &World, name: &str, action: &str) {
    let before = world.rollout_json(name).await;
    let after = argocd_lua::act("Rollout", action, &before).unwrap();
    let Some(mut patch) = argocd_lua::merge_patch(&before, &after) else {
        panic!("{action} changed nothing on {before}");
    };
    let status = patch.as_object_mut().unwrap().remove("status");
    let api = world.rollouts();
    if !patch.as_object().unwrap().is_empty() {
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("{action}: patch {patch}: {e}"));
    }
    if let Some(status) = status {
        let body = json!({ "status": status });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .unwrap_or_else(|e| panic!("{action}: patch status {body}: {e}"));
    }
}

/// Waits until the status satisfies `done`; returns it.
async fn wait(world: &World, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for(world, NAME, what, done).await
}

/// Waits until the status of `name` satisfies `done`; returns it.
async fn wait_for(world: &World, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("{name}: {what}"), || async {
        let status = world.status(name).await;
        if done(&status) {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await
}

fn paused_at(status: &Value, step: i64) -> bool {
    status["phase"] == "Paused"
        && status["currentStepIndex"] == step
        && status["pauseConditions"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
}

fn enabled(actions: &BTreeMap<String, bool>) -> Vec<&str> {
    actions
        .iter()
        .filter(|(_, on)| **on)
        .map(|(name, _)| name.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_argocd_rollout_action_works_on_a_davy_rollout() {
    if argocd_lua::scripts_dir().is_none() {
        return;
    }
    let world = World::start().await;
    let steps = json!([{"setWeight": 50}, {"pause": {}}, {"setWeight": 75}, {"pause": {}}]);
    world
        .create(&rollout(canary_rollout(NAME, 2, steps, "demo:blue")))
        .await;
    let blue = world.healthy(NAME).await;
    assert_eq!(
        enabled(&offered(&world, NAME).await),
        vec!["restart"],
        "a fully promoted Rollout offers only restart"
    );

    // An update pauses at the indefinite pause: resume, abort, pause, promote-full and
    // skip-current-step are offered; resume moves to the next pause.
    world.set_image(NAME, "demo:green").await;
    wait(&world, "paused at step 1", |s| paused_at(s, 1)).await;
    assert_eq!(
        enabled(&offered(&world, NAME).await),
        vec![
            "abort",
            "pause",
            "promote-full",
            "restart",
            "resume",
            "skip-current-step"
        ]
    );
    let health = rollout_health(&world.rollout_json(NAME).await);
    assert_eq!(health.status, "Suspended", "{health:?}");
    act(&world, NAME, "resume").await;
    wait(&world, "paused at step 3 after resume", |s| paused_at(s, 3)).await;

    // skip-current-step at the last pause completes the update.
    act(&world, NAME, "skip-current-step").await;
    let green = world.healthy(NAME).await;
    assert_ne!(green, blue);

    // abort: traffic and replicas back to stable, Degraded; then retry is offered, abort not.
    world.set_image(NAME, "demo:yellow").await;
    wait(&world, "paused at step 1 (yellow)", |s| paused_at(s, 1)).await;
    act(&world, NAME, "abort").await;
    let aborted = wait(&world, "aborted", |s| {
        s["abort"] == true && s["phase"] == "Degraded"
    })
    .await;
    assert_eq!(aborted["stableRS"], green.as_str());
    let health = rollout_health(&world.rollout_json(NAME).await);
    assert_eq!(health.status, "Degraded", "{health:?}");
    let actions = offered(&world, NAME).await;
    assert!(actions["retry"], "{actions:?}");
    assert!(!actions["abort"], "{actions:?}");

    // retry: the update starts over and pauses again.
    act(&world, NAME, "retry").await;
    wait(&world, "paused at step 1 after retry", |s| {
        paused_at(s, 1) && s["abort"].is_null()
    })
    .await;

    // pause: spec.paused holds the Rollout even once its pause condition is gone.
    act(&world, NAME, "pause").await;
    assert_eq!(world.rollout_json(NAME).await["spec"]["paused"], true);
    let actions = offered(&world, NAME).await;
    assert!(!actions["pause"], "{actions:?}");
    assert!(actions["resume"], "{actions:?}");
    act(&world, NAME, "resume").await;
    wait(&world, "paused at step 3 after resume", |s| paused_at(s, 3)).await;
    assert_eq!(world.rollout_json(NAME).await["spec"]["paused"], false);

    // promote-full: straight to the end.
    act(&world, NAME, "promote-full").await;
    let yellow = world.healthy(NAME).await;
    assert_ne!(yellow, green);
    assert_eq!(enabled(&offered(&world, NAME).await), vec!["restart"]);

    // restart: every pod is replaced and status.restartedAt records the request.
    act(&world, NAME, "restart").await;
    let restart_at = world.rollout_json(NAME).await["spec"]["restartAt"].clone();
    assert!(restart_at.is_string(), "{restart_at}");
    // restartedAt is recorded once no pod is older than the request, which can be before the
    // last replacement is available (the ReplicaSet's status follows the deletion a moment
    // later, so the phase may read Healthy, then Progressing, then Healthy): wait for Argo CD's
    // verdict on the whole object, not one snapshot.
    eventually(
        "restartedAt recorded and Argo CD health Healthy",
        || async {
            let object = world.rollout_json(NAME).await;
            let health = rollout_health(&object);
            if object["status"]["restartedAt"] == restart_at && health.status == "Healthy" {
                Ok(())
            } else {
                Err(format!("{health:?} {}", describe(&object["status"])))
            }
        },
    )
    .await;
    world.stop().await;
}

/// What a user (and Argo CD) sees of a Rollout, without what differs between two Rollouts of
/// other names (hashes, times, names in messages).
fn shape(object: &Value, name: &str) -> Value {
    let status = &object["status"];
    let reasons: Vec<Value> = status["pauseConditions"]
        .as_array()
        .map(|conditions| conditions.iter().map(|c| c["reason"].clone()).collect())
        .unwrap_or_default();
    let truthy = |v: &Value| v.as_bool().unwrap_or(false);
    json!({
        "phase": status["phase"],
        "message": status["message"].as_str().unwrap_or_default().replace(name, "<name>"),
        "currentStepIndex": status["currentStepIndex"],
        "abort": truthy(&status["abort"]),
        "promoteFull": truthy(&status["promoteFull"]),
        "controllerPause": truthy(&status["controllerPause"]),
        "pauseConditions": reasons,
        "specPaused": truthy(&object["spec"]["paused"]),
        "restarted": status["restartedAt"].is_string(),
        "health": rollout_health(object).status,
    })
}

/// Runs the real `davy` binary with `args` against the sandbox's kubeconfig; asserts exit 0.
async fn davy(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", support::NS])
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "davy {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Waits until both Rollouts satisfy `done` and are in the same state (the verb and the action
/// may take effect a reconcile apart, so the comparison waits too); returns that state.
async fn stage(world: &World, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let (by_argocd, by_davy) = ("by-argocd", "by-davy");
    eventually(
        &format!("{what}, the same for Argo CD's action and the davy verb"),
        || async {
            let a = world.rollout_json(by_argocd).await;
            let b = world.rollout_json(by_davy).await;
            let (shape_a, shape_b) = (shape(&a, by_argocd), shape(&b, by_davy));
            if done(&a["status"]) && done(&b["status"]) && shape_a == shape_b {
                Ok(shape_a)
            } else {
                Err(format!("by Argo CD: {shape_a}\nby davy:    {shape_b}"))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_argocd_action_does_what_the_matching_davy_verb_does() {
    if argocd_lua::scripts_dir().is_none() {
        return;
    }
    let world = World::start().await;
    let http = world
        .server
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    world
        .server
        .write_kubeconfig(&kubeconfig, http.addr())
        .unwrap();
    let (by_argocd, by_davy) = ("by-argocd", "by-davy");
    let steps = json!([{"setWeight": 50}, {"pause": {}}, {"setWeight": 75}, {"pause": {}}]);
    for name in [by_argocd, by_davy] {
        world
            .create(&rollout(canary_rollout(
                name,
                2,
                steps.clone(),
                "demo:blue",
            )))
            .await;
        world.healthy(name).await;
    }

    let paused_1 = |s: &Value| paused_at(s, 1);
    let paused_3 = |s: &Value| paused_at(s, 3);
    let healthy = |s: &Value| s["phase"] == "Healthy" && s["currentStepIndex"] == 4;

    for name in [by_argocd, by_davy] {
        world.set_image(name, "demo:green").await;
    }
    stage(&world, "paused at step 1", paused_1).await;

    // resume ↔ promote: on to the next pause.
    act(&world, by_argocd, "resume").await;
    davy(&kubeconfig, &["promote", by_davy]).await;
    stage(&world, "paused at step 3", paused_3).await;

    // skip-current-step ↔ promote at the last pause: the update completes.
    act(&world, by_argocd, "skip-current-step").await;
    davy(&kubeconfig, &["promote", by_davy]).await;
    stage(&world, "healthy on green", healthy).await;

    // abort ↔ abort.
    for name in [by_argocd, by_davy] {
        world.set_image(name, "demo:yellow").await;
    }
    stage(&world, "paused at step 1 (yellow)", paused_1).await;
    act(&world, by_argocd, "abort").await;
    davy(&kubeconfig, &["abort", by_davy]).await;
    let aborted = stage(&world, "aborted", |s| {
        s["phase"] == "Degraded" && s["abort"] == true
    })
    .await;
    assert_eq!(aborted["health"], "Degraded");

    // retry ↔ retry rollout.
    act(&world, by_argocd, "retry").await;
    davy(&kubeconfig, &["retry", "rollout", by_davy]).await;
    stage(&world, "paused at step 1 after retry", |s| {
        paused_at(s, 1) && s["abort"] != true
    })
    .await;

    // pause ↔ pause: spec.paused on both.
    act(&world, by_argocd, "pause").await;
    davy(&kubeconfig, &["pause", by_davy]).await;
    let paused = stage(&world, "paused by the user", |s| s["phase"] == "Paused").await;
    assert_eq!(paused["specPaused"], true, "{paused}");

    // Out of a user's pause both are resumed with Argo CD's resume: `davy promote` there (its
    // status patch lands before its spec patch) leaves the Rollout at its pause step, where
    // Argo CD's resume (spec first) moves on — a difference left to the CLI's owners.
    act(&world, by_argocd, "resume").await;
    act(&world, by_davy, "resume").await;
    let resumed = stage(&world, "paused at step 3 after resume", paused_3).await;
    assert_eq!(resumed["specPaused"], false, "{resumed}");

    // promote-full ↔ promote --full.
    act(&world, by_argocd, "promote-full").await;
    davy(&kubeconfig, &["promote", "--full", by_davy]).await;
    stage(&world, "healthy on yellow", healthy).await;

    // restart ↔ restart: every pod replaced, restartedAt recorded, Healthy.
    act(&world, by_argocd, "restart").await;
    davy(&kubeconfig, &["restart", by_davy]).await;
    stage(&world, "restarted", |s| {
        s["restartedAt"].is_string() && s["phase"] == "Healthy"
    })
    .await;
    drop(http);
    world.stop().await;
}
