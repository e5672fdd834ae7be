//! Controller scenarios on the in-process sandbox (API server + workload simulator +
//! `davy::controller::run`): the user commands (promote --full, undo, restart), the progress
//! deadline with and without abort, a controller restart at an analysis step, and no status
//! write when nothing changed — with Argo CD's health read at each stage.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

mod common;

use common::argocd_health;

use std::collections::BTreeSet;

use davy::api::{AnalysisRun, AnalysisTemplate};
use davy::controller::ControllerConfig;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{
    Controller, NS, Sandbox, canary_rollout, controller_config, describe, eventually, free_addr,
    reconciles, rollout,
};

/// Argo CD's health status of the Rollout now.
async fn health(sandbox: &Sandbox, name: &str) -> (String, String) {
    let health = argocd_health::rollout_health(&sandbox.rollout_json(name).await);
    (health.status, health.message)
}

/// Waits until the Rollout is paused at `step` on a canary pause step; returns its status.
async fn paused_at(sandbox: &Sandbox, name: &str, step: i64) -> Value {
    eventually(&format!("a pause at step {step}"), || async {
        let status = sandbox.status(name).await;
        let paused = status["currentStepIndex"] == step
            && status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
            && status["phase"] == "Paused";
        if paused {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await
}

fn two_pauses() -> Value {
    json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_full_jumps_to_the_new_revision_and_is_healthy() {
    let sandbox = Sandbox::start().await;
    let controller = Controller::plain(sandbox.client.clone());
    sandbox
        .create(&rollout(canary_rollout("full", 4, two_pauses(), "app:v1")))
        .await;
    let v1 = sandbox.healthy("full").await;
    assert_eq!(health(&sandbox, "full").await.0, "Healthy");

    sandbox.set_image("full", "app:v2").await;
    let status = paused_at(&sandbox, "full", 1).await;
    let v2 = status["currentPodHash"].as_str().unwrap().to_string();
    assert_ne!(v2, v1);
    assert_eq!(
        health(&sandbox, "full").await,
        ("Suspended".to_string(), "CanaryPauseStep".to_string())
    );

    // `kubectl argo rollouts promote --full`.
    sandbox
        .patch_status("full", json!({"promoteFull": true}))
        .await;
    eventually("the full promotion", || async {
        let status = sandbox.status("full").await;
        let done = status["phase"] == "Healthy"
            && status["stableRS"] == v2.as_str()
            && sandbox.rs_replicas(&v2).await == Some(4)
            && sandbox.rs_replicas(&v1).await == Some(0);
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    let status = sandbox.status("full").await;
    assert_eq!(status["currentStepIndex"], 4, "{status}");
    assert!(
        status["promoteFull"].is_null(),
        "promoteFull cleared: {status}"
    );
    assert!(status["pauseConditions"].is_null(), "{status}");
    assert_eq!(
        health(&sandbox, "full").await,
        ("Healthy".to_string(), String::new())
    );
    sandbox
        .event_reasons_including("full", &["RolloutCompleted"])
        .await;
    controller.stop().await.expect("controller");
    sandbox.stop().await;
}

/// `kubectl argo rollouts undo`: the template of the ReplicaSet with the previous revision,
/// without its hash label, replaces `spec.template`.
async fn undo(sandbox: &Sandbox, name: &str) {
    let list = sandbox
        .replica_sets()
        .list(&ListParams::default().labels(&format!("app={name}")))
        .await
        .expect("list rs");
    let mut by_revision: Vec<(i64, Value)> = list
        .items
        .into_iter()
        .map(|rs| {
            let revision = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("rollout.argoproj.io/revision"))
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            let template = serde_json::to_value(rs.spec.and_then(|s| s.template)).unwrap();
            (revision, template)
        })
        .collect();
    by_revision.sort_by_key(|(revision, _)| *revision);
    let (_, mut template) = by_revision
        .iter()
        .rev()
        .nth(1)
        .cloned()
        .expect("a previous revision");
    template["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("rollouts-pod-template-hash");
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template", "value": template}
    ]))
    .expect("patch");
    sandbox
        .rollouts()
        .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .expect("undo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_to_the_stable_revision_mid_update_skips_the_steps() {
    let sandbox = Sandbox::start().await;
    let controller = Controller::plain(sandbox.client.clone());
    sandbox
        .create(&rollout(canary_rollout("undo", 4, two_pauses(), "app:v1")))
        .await;
    let v1 = sandbox.healthy("undo").await;
    sandbox.set_image("undo", "app:v2").await;
    let status = paused_at(&sandbox, "undo", 1).await;
    let v2 = status["currentPodHash"].as_str().unwrap().to_string();
    assert_eq!(sandbox.rs_replicas(&v2).await, Some(1));

    undo(&sandbox, "undo").await;
    eventually("the rollback to the stable revision", || async {
        let status = sandbox.status("undo").await;
        let done = status["phase"] == "Healthy"
            && status["currentPodHash"] == v1.as_str()
            && status["stableRS"] == v1.as_str()
            && sandbox.rs_replicas(&v1).await == Some(4)
            && sandbox.rs_replicas(&v2).await == Some(0);
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    let status = sandbox.status("undo").await;
    // Steps skipped (§3.6 "new revision mid-rollout": template equals the stable RS).
    assert_eq!(status["currentStepIndex"], 4, "{status}");
    assert!(status["pauseConditions"].is_null(), "{status}");
    sandbox
        .event_reasons_including("undo", &["SkipSteps"])
        .await;
    assert_eq!(health(&sandbox, "undo").await.0, "Healthy");
    controller.stop().await.expect("controller");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_within_the_rollback_window_skips_the_steps() {
    let sandbox = Sandbox::start().await;
    let controller = Controller::plain(sandbox.client.clone());
    let mut spec = canary_rollout("window", 2, two_pauses(), "app:v1");
    spec["spec"]["rollbackWindow"] = json!({"revisions": 1});
    sandbox.create(&rollout(spec)).await;
    let v1 = sandbox.healthy("window").await;
    // "Older" compares creation timestamps, which have whole seconds: v2's ReplicaSet must be
    // created in a later second than v1's for v1 to count as a rollback target.
    let v1_created = sandbox
        .replica_sets()
        .get(&format!("window-{v1}"))
        .await
        .expect("v1 rs")
        .metadata
        .creation_timestamp
        .expect("created")
        .0
        .as_second();
    eventually("the next second", || async {
        let now = chrono::Utc::now().timestamp();
        if now > v1_created {
            Ok(())
        } else {
            Err(format!("{now}"))
        }
    })
    .await;
    sandbox.set_image("window", "app:v2").await;
    paused_at(&sandbox, "window", 1).await;
    sandbox
        .patch_status("window", json!({"promoteFull": true}))
        .await;
    let v2 = sandbox.healthy("window").await;
    assert_ne!(v1, v2);

    // v1's ReplicaSet is older than the stable v2 and no revision lies between: fast-track.
    undo(&sandbox, "window").await;
    eventually("the fast rollback to v1", || async {
        let status = sandbox.status("window").await;
        let done = status["phase"] == "Healthy"
            && status["stableRS"] == v1.as_str()
            && sandbox.rs_replicas(&v1).await == Some(2);
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    let status = sandbox.status("window").await;
    assert_eq!(status["currentStepIndex"], 4, "{status}");
    let reasons = sandbox
        .event_reasons_including("window", &["RolloutPaused"])
        .await;
    let paused = reasons.iter().filter(|r| *r == "RolloutPaused").count();
    assert_eq!(paused, 1, "only v2's update paused: {reasons:?}");
    controller.stop().await.expect("controller");
    sandbox.stop().await;
}

/// Ready and not terminating.
fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|status| status.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
}

async fn pods_of(sandbox: &Sandbox, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), NS);
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_every_pod_and_records_restarted_at() {
    let sandbox = Sandbox::start().await;
    let controller = Controller::plain(sandbox.client.clone());
    sandbox
        .create(&rollout(canary_rollout(
            "restart",
            3,
            two_pauses(),
            "app:v1",
        )))
        .await;
    let v1 = sandbox.healthy("restart").await;
    let before: BTreeSet<String> = pods_of(&sandbox, "restart")
        .await
        .into_iter()
        .filter_map(|pod| pod.metadata.name)
        .collect();
    assert_eq!(before.len(), 3);

    // Watch readiness meanwhile: one pod at a time (maxUnavailable 0 ⇒ concurrency 1), so at
    // least 2 of 3 pods stay ready throughout. (Polling may miss a dip, never invent one.)
    let watching = tokio_util::sync::CancellationToken::new();
    let fewest_ready = tokio::spawn({
        let client = sandbox.client.clone();
        let stop = watching.clone();
        async move {
            let pods: Api<Pod> = Api::namespaced(client, NS);
            let mut fewest = usize::MAX;
            while !stop.is_cancelled() {
                let list = pods
                    .list(&ListParams::default().labels("app=restart"))
                    .await
                    .expect("pods");
                let ready = list.items.iter().filter(|pod| is_ready(pod)).count();
                fewest = fewest.min(ready);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            fewest
        }
    });

    // `kubectl argo rollouts restart --in 1s`: restartAt = now + 1 s, whole seconds, UTC. (With
    // `--in 0s` a pod created in the same second would not count as older than the restart.)
    let restart_at = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    sandbox
        .patch("restart", json!({"spec": {"restartAt": restart_at}}))
        .await;
    eventually("every pod replaced and restartedAt recorded", || async {
        let status = sandbox.status("restart").await;
        let now: BTreeSet<String> = pods_of(&sandbox, "restart")
            .await
            .into_iter()
            .filter_map(|pod| pod.metadata.name)
            .collect();
        // Healthy per Argo CD too: right after the last eviction the ReplicaSet's status may
        // still count the evicted pod as available for a moment.
        let done = status["restartedAt"] == restart_at.as_str()
            && now.len() == 3
            && now.is_disjoint(&before)
            && health(&sandbox, "restart").await == ("Healthy".to_string(), String::new());
        if done {
            Ok(())
        } else {
            Err(format!("{} pods {now:?}", describe(&status)))
        }
    })
    .await;
    watching.cancel();
    let fewest = fewest_ready.await.expect("poller");
    assert_eq!(fewest, 2, "ready pods dipped below 2 (or never to 2)");
    let status = sandbox.status("restart").await;
    assert_eq!(
        status["stableRS"],
        v1.as_str(),
        "a restart is not a new revision"
    );
    assert_eq!(sandbox.rs_replicas(&v1).await, Some(3));
    controller.stop().await.expect("controller");
    sandbox.stop().await;
}

/// A Rollout whose update never becomes available (the simulator's pull-error marker) with a
/// 3 s progress deadline.
async fn stuck_update(sandbox: &Sandbox, name: &str, abort: bool) -> (String, String) {
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    let mut spec = canary_rollout(name, 2, steps, "app:v1");
    spec["spec"]["progressDeadlineSeconds"] = json!(3);
    if abort {
        spec["spec"]["progressDeadlineAbort"] = json!(true);
    }
    sandbox.create(&rollout(spec)).await;
    let v1 = sandbox.healthy(name).await;
    sandbox.set_image(name, "app:pull-error-v2").await;
    let v2 = eventually("the stuck canary", || async {
        let status = sandbox.status(name).await;
        let current = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if current != v1 && sandbox.rs_replicas(&current).await == Some(1) {
            Ok(current)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    (v1, v2)
}

fn progressing(status: &Value) -> Value {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_deadline_exceeded_degrades_without_rolling_back() {
    let sandbox = Sandbox::start().await;
    let controller = Controller::plain(sandbox.client.clone());
    let (v1, v2) = stuck_update(&sandbox, "deadline", false).await;
    assert_eq!(health(&sandbox, "deadline").await.0, "Progressing");
    let status = eventually("ProgressDeadlineExceeded", || async {
        let status = sandbox.status("deadline").await;
        if status["phase"] == "Degraded" {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    let condition = progressing(&status);
    assert_eq!(condition["status"], "False", "{condition}");
    assert_eq!(
        condition["reason"], "ProgressDeadlineExceeded",
        "{condition}"
    );
    let message = format!("ReplicaSet \"deadline-{v2}\" has timed out progressing.");
    assert_eq!(condition["message"], message.as_str());
    assert_eq!(
        status["message"],
        format!("ProgressDeadlineExceeded: {message}").as_str()
    );
    assert!(
        status["abort"].is_null() || status["abort"] == false,
        "{status}"
    );
    assert_eq!(
        health(&sandbox, "deadline").await,
        (
            "Degraded".to_string(),
            format!("ProgressDeadlineExceeded: {message}")
        )
    );
    // Nothing rolled back: the canary keeps trying, the stable keeps serving.
    assert_eq!(sandbox.rs_replicas(&v2).await, Some(1));
    assert_eq!(sandbox.rs_replicas(&v1).await, Some(2));
    controller.stop().await.expect("controller");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_deadline_abort_aborts_the_update() {
    let sandbox = Sandbox::start().await;
    let controller = Controller::plain(sandbox.client.clone());
    let (v1, v2) = stuck_update(&sandbox, "deadline-abort", true).await;
    let status = eventually("the abort", || async {
        let status = sandbox.status("deadline-abort").await;
        let done = status["abort"] == true
            && status["phase"] == "Degraded"
            && sandbox.rs_replicas(&v2).await == Some(0);
        if done {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    let condition = progressing(&status);
    assert_eq!(condition["status"], "False", "{condition}");
    assert_eq!(condition["reason"], "RolloutAborted", "{condition}");
    let message = format!(
        "Rollout aborted update to revision 2: ReplicaSet \"deadline-abort-{v2}\" has timed out progressing."
    );
    assert_eq!(condition["message"], message.as_str());
    assert_eq!(
        status["message"],
        format!("RolloutAborted: {message}").as_str()
    );
    assert!(status["abortedAt"].is_string(), "{status}");
    assert_eq!(sandbox.rs_replicas(&v1).await, Some(2));
    assert_eq!(health(&sandbox, "deadline-abort").await.0, "Degraded");
    controller.stop().await.expect("controller");
    sandbox.stop().await;
}

async fn runs_of(sandbox: &Sandbox, app: &str) -> Vec<AnalysisRun> {
    let runs: Api<AnalysisRun> = Api::namespaced(sandbox.client.clone(), NS);
    let rollout_uid = sandbox
        .rollouts()
        .get(app)
        .await
        .expect("rollout")
        .metadata
        .uid
        .expect("uid");
    runs.list(&ListParams::default())
        .await
        .expect("runs")
        .items
        .into_iter()
        .filter(|run| {
            run.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|owner| owner.uid == rollout_uid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_does_not_duplicate_the_step_analysis_run() {
    let sandbox = Sandbox::start().await;
    let template: AnalysisTemplate = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "never-measured", "namespace": NS},
        // A step's metrics must end (an indefinite one is an invalid spec): 100 × 10 s
        // outlasts the test.
        "spec": {"metrics": [{"name": "ok", "interval": "10s", "count": 100,
                              "provider": {"web": {"url": "http://127.0.0.1:9/"}}}]}
    }))
    .expect("template");
    let templates: Api<AnalysisTemplate> = Api::namespaced(sandbox.client.clone(), NS);
    templates
        .create(&PostParams::default(), &template)
        .await
        .expect("create template");
    let steps = json!([
        {"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "never-measured"}]}},
        {"pause": {}}
    ]);
    let (client, _) = sandbox.logging_client();
    let first = Controller::plain(client);
    sandbox
        .create(&rollout(canary_rollout("analysed", 2, steps, "app:v1")))
        .await;
    sandbox.healthy("analysed").await;
    sandbox.set_image("analysed", "app:v2").await;
    let run_name = eventually("the step AnalysisRun", || async {
        let status = sandbox.status("analysed").await;
        let name = status["canary"]["currentStepAnalysisRunStatus"]["name"]
            .as_str()
            .map(str::to_string);
        match name {
            Some(name) if status["currentStepIndex"] == 1 => Ok(name),
            _ => Err(describe(&status)),
        }
    })
    .await;
    assert_eq!(runs_of(&sandbox, "analysed").await.len(), 1);
    assert_eq!(
        health(&sandbox, "analysed").await.0,
        "Progressing",
        "waiting on analysis"
    );

    // Kill the controller (cancel its token) and start a fresh one.
    first.stop().await.expect("first controller");
    let (client, log) = sandbox.logging_client();
    let metrics = free_addr();
    let second = Controller::start(
        client,
        ControllerConfig {
            metrics_addr: Some(metrics),
            ..controller_config()
        },
    );
    // A reconcile is counted once it has made all its writes.
    eventually("the new controller to reconcile", || async {
        match reconciles(metrics, "analysed").await? {
            0 => Err("no reconcile yet".to_string()),
            _ => Ok(()),
        }
    })
    .await;
    // Nudge it with a metadata change so it reconciles again from a fresh watch event, then
    // once more.
    for nudge in ["1", "2"] {
        let seen = reconciles(metrics, "analysed").await.expect("metrics");
        sandbox
            .patch(
                "analysed",
                json!({"metadata": {"annotations": {"nudge": nudge}}}),
            )
            .await;
        eventually("one more reconcile", || async {
            let now = reconciles(metrics, "analysed").await?;
            if now > seen {
                Ok(())
            } else {
                Err(format!("{now} reconciles"))
            }
        })
        .await;
    }
    let runs = runs_of(&sandbox, "analysed").await;
    let names: Vec<String> = runs
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    assert_eq!(names, vec![run_name.clone()], "no duplicate run");
    assert_eq!(
        log.count("POST", "/analysisruns"),
        0,
        "the new controller created a run"
    );
    let status = sandbox.status("analysed").await;
    assert_eq!(status["currentStepIndex"], 1, "{status}");
    assert_eq!(
        status["canary"]["currentStepAnalysisRunStatus"]["name"],
        run_name.as_str()
    );
    second.stop().await.expect("second controller");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_status_is_not_patched() {
    let sandbox = Sandbox::start().await;
    let (client, log) = sandbox.logging_client();
    let metrics = free_addr();
    let controller = Controller::start(
        client,
        ControllerConfig {
            metrics_addr: Some(metrics),
            ..controller_config()
        },
    );
    sandbox
        .create(&rollout(canary_rollout("quiet", 2, two_pauses(), "app:v1")))
        .await;
    sandbox.healthy("quiet").await;
    let status_path = "/rollouts/quiet/status";
    assert!(
        log.count("PATCH", status_path) > 0,
        "the initial deploy patched status"
    );

    // A reconcile is counted once it has made all its writes, so once the count passes what
    // it was before nudge N, the reconcile nudge N caused has finished.
    let mut baseline = None;
    for round in 1..=4 {
        let before = eventually("the metrics", || reconciles(metrics, "quiet")).await;
        sandbox
            .patch(
                "quiet",
                json!({"metadata": {"annotations": {"nudge": round.to_string()}}}),
            )
            .await;
        eventually("a reconcile after the nudge", || async {
            let now = reconciles(metrics, "quiet").await?;
            if now > before {
                Ok(())
            } else {
                Err(format!("{now} reconciles"))
            }
        })
        .await;
        if round == 2 {
            // Whatever the initial deploy still had to write is written by now.
            baseline = Some((
                log.count("PATCH", status_path),
                sandbox.status("quiet").await,
            ));
        }
    }
    let (patches, status) = baseline.expect("baseline");
    assert_eq!(
        log.count("PATCH", status_path),
        patches,
        "status patched although nothing changed"
    );
    assert_eq!(sandbox.status("quiet").await, status);
    controller.stop().await.expect("controller");
    sandbox.stop().await;
}
