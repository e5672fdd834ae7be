//! The Experiment controller end to end on the sandbox (API server + workload simulator +
//! `davy::controller::run`): a standalone Experiment runs its templates for its duration,
//! measures, succeeds and scales down; a failing analysis fails it; `terminate` ends it — with
//! Argo CD's health read at each stage.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

mod common;

use common::argocd_health;

use davy::api::Experiment;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{
    NS, World, create_verdict_template, eventually, experiment_json, experiment_phase,
    verdict_server,
};

fn health(ex: &Value) -> (String, String) {
    let health = argocd_health::experiment_health(ex).expect("a phase Argo CD knows");
    (health.status, health.message)
}

fn experiment(name: &str, extra: Value) -> Experiment {
    let template = |image: &str, port: bool| {
        let mut container = json!({"name": "app", "image": image});
        if port {
            container["ports"] =
                json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}]);
        }
        json!({"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}})
    };
    let mut value = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleDownDelaySeconds": 0,
            "templates": [
                {"name": "baseline", "selector": {"matchLabels": {"app": name}},
                 "template": template("app:v1", true), "service": {}},
                {"name": "canary", "replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": template("app:v2", false)}
            ]
        }
    });
    for (key, v) in extra.as_object().unwrap() {
        value["spec"][key] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

async fn create(world: &World, ex: &Experiment) {
    world
        .api::<Experiment>()
        .create(&PostParams::default(), ex)
        .await
        .expect("create experiment");
}

async fn rs_replicas(world: &World, name: &str) -> Option<i32> {
    let rs = world.api::<ReplicaSet>().get_opt(name).await.unwrap()?;
    rs.spec.and_then(|spec| spec.replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_runs_for_its_duration_measures_succeeds_and_scales_down() {
    let world = World::start().await;
    let url = verdict_server().await;
    create_verdict_template(&world, "verdict", 2).await;
    let analyses = json!([{"name": "check", "templateName": "verdict",
                           "args": [{"name": "url", "value": format!("{url}/pass")}]}]);
    create(
        &world,
        &experiment("exp", json!({"duration": "4s", "analyses": analyses})),
    )
    .await;

    let running = experiment_phase(&world, "exp", "Running").await;
    assert_eq!(
        health(&running),
        ("Progressing".into(), "Experiment is running".into())
    );
    assert!(running["status"]["availableAt"].is_string());
    let baseline: ReplicaSet = world.api().get("exp-baseline").await.unwrap();
    assert_eq!(
        baseline.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Experiment"
    );
    assert_eq!(rs_replicas(&world, "exp-canary").await, Some(2));
    let svc: Service = world.api().get("exp-baseline").await.unwrap();
    assert_eq!(
        svc.spec.as_ref().unwrap().selector,
        baseline.metadata.labels.clone()
    );
    assert!(
        world
            .api::<Service>()
            .get_opt("exp-canary")
            .await
            .unwrap()
            .is_none(),
        "no service without `service`"
    );

    let done = experiment_phase(&world, "exp", "Successful").await;
    assert_eq!(
        health(&done),
        ("Healthy".into(), "Experiment is successful".into())
    );
    assert_eq!(
        done["status"]["analysisRuns"][0]["analysisRun"],
        "exp-check"
    );
    assert_eq!(done["status"]["analysisRuns"][0]["phase"], "Successful");
    assert_eq!(
        done["status"]["conditions"][0]["reason"],
        "ExperimentCompleted"
    );
    eventually("the templates scaled down and the service gone", || async {
        let scaled = (
            rs_replicas(&world, "exp-baseline").await,
            rs_replicas(&world, "exp-canary").await,
        );
        let svc = world
            .api::<Service>()
            .get_opt("exp-baseline")
            .await
            .unwrap();
        if scaled == (Some(0), Some(0)) && svc.is_none() {
            Ok(())
        } else {
            Err(format!("{scaled:?} service={}", svc.is_some()))
        }
    })
    .await;
    // Events are sent off the reconcile's write chain: wait for them, then check each.
    let reasons = world
        .event_reasons_including(
            "exp",
            &[
                "ExperimentPending",
                "ExperimentRunning",
                "ExperimentSuccessful",
                "TemplateRunning",
                "AnalysisRunSuccessful",
            ],
        )
        .await;
    for reason in [
        "ExperimentPending",
        "ExperimentRunning",
        "ExperimentSuccessful",
        "TemplateRunning",
        "AnalysisRunSuccessful",
    ] {
        assert!(
            reasons.contains(&reason.to_string()),
            "{reason} in {reasons:?}"
        );
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_analysis_fails_the_experiment_before_its_duration() {
    let world = World::start().await;
    let url = verdict_server().await;
    create_verdict_template(&world, "verdict", 1).await;
    let analyses = json!([{"name": "check", "templateName": "verdict",
                           "args": [{"name": "url", "value": format!("{url}/fail")}]}]);
    create(
        &world,
        &experiment("bad", json!({"duration": "1h", "analyses": analyses})),
    )
    .await;
    let failed = experiment_phase(&world, "bad", "Failed").await;
    assert_eq!(
        health(&failed),
        ("Degraded".into(), "Experiment has failed".into())
    );
    assert_eq!(failed["status"]["analysisRuns"][0]["phase"], "Failed");
    eventually("the templates scaled down", || async {
        match rs_replicas(&world, "bad-canary").await {
            Some(0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_ends_an_experiment_without_a_duration() {
    let world = World::start().await;
    create(&world, &experiment("open", json!({}))).await;
    experiment_phase(&world, "open", "Running").await;
    world
        .api::<Experiment>()
        .patch(
            "open",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"terminate": true}})),
        )
        .await
        .unwrap();
    let done = experiment_phase(&world, "open", "Successful").await;
    assert_eq!(
        done["status"]["templateStatuses"][0]["status"],
        "Successful"
    );
    eventually("the templates scaled down", || async {
        match rs_replicas(&world, "open-baseline").await {
            Some(0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(health(&experiment_json(&world, "open").await).0, "Healthy");
    world.stop().await;
}

/// A canary Rollout `name` whose steps run an experiment (baseline = stable, canary = canary)
/// with the verdict analysis against `verdict_url`, then finish.
fn experiment_step_rollout(name: &str, verdict_url: &str) -> davy::api::Rollout {
    let steps = json!([
        {"setWeight": 25},
        {"experiment": {
            "duration": "3s",
            "templates": [
                {"name": "baseline", "specRef": "stable"},
                {"name": "canary", "specRef": "canary"}
            ],
            "analyses": [{"name": "compare", "templateName": "verdict",
                          "args": [{"name": "url", "value": verdict_url}]}]
        }},
        {"setWeight": 50}
    ]);
    support::rollout(support::canary_rollout(name, 4, steps, "app:v1"))
}

fn rollout_health(status_json: &Value) -> (String, String) {
    let health = argocd_health::rollout_health(status_json);
    (health.status, health.message)
}

/// The Experiment the Rollout's status names as current, once it has one.
async fn current_experiment(world: &World, name: &str) -> String {
    eventually("the Rollout's current experiment", || async {
        let status = world.status(name).await;
        match status["canary"]["currentExperiment"].as_str() {
            Some(ex) if !ex.is_empty() => Ok(ex.to_string()),
            _ => Err(support::describe(&status)),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_step_runs_baseline_and_canary_then_the_rollout_completes() {
    let world = World::start().await;
    let url = verdict_server().await;
    create_verdict_template(&world, "verdict", 2).await;
    world
        .create(&experiment_step_rollout("exro", &format!("{url}/pass")))
        .await;
    let stable = world.healthy("exro").await;
    world.set_image("exro", "app:v2").await;

    let name = current_experiment(&world, "exro").await;
    let ex = experiment_json(&world, &name).await;
    let status = world.status("exro").await;
    let canary_hash = status["currentPodHash"].as_str().unwrap().to_string();
    assert_eq!(name, format!("exro-{canary_hash}-2-1"), "upstream's name");
    assert_eq!(ex["metadata"]["ownerReferences"][0]["kind"], "Rollout");
    assert_eq!(
        ex["metadata"]["labels"]["rollouts-pod-template-hash"],
        canary_hash
    );
    assert_eq!(
        ex["metadata"]["annotations"]["rollout.argoproj.io/revision"],
        "2"
    );
    assert_eq!(ex["spec"]["templates"][0]["name"], "baseline");
    assert_eq!(
        ex["spec"]["templates"][0]["template"]["spec"]["containers"][0]["image"], "app:v1",
        "the baseline runs the stable pod template"
    );
    assert_eq!(
        ex["spec"]["templates"][1]["template"]["spec"]["containers"][0]["image"],
        "app:v2"
    );
    assert_eq!(status["currentStepIndex"], 1);
    assert_eq!(
        rollout_health(&world.rollout_json("exro").await).0,
        "Progressing"
    );

    world.healthy("exro").await;
    let status = world.status("exro").await;
    assert_ne!(status["stableRS"], stable.as_str());
    assert_eq!(
        status["canary"]["currentExperiment"],
        Value::Null,
        "{status:#}"
    );
    let ex = experiment_phase(&world, &name, "Successful").await;
    assert_eq!(ex["status"]["analysisRuns"][0]["phase"], "Successful");
    assert_eq!(
        rollout_health(&world.rollout_json("exro").await),
        ("Healthy".into(), String::new())
    );
    world
        .event_reasons_including("exro", &["ExperimentCreated"])
        .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_experiment_aborts_the_rollout_with_upstreams_message() {
    let world = World::start().await;
    let url = verdict_server().await;
    create_verdict_template(&world, "verdict", 1).await;
    world
        .create(&experiment_step_rollout("exbad", &format!("{url}/fail")))
        .await;
    let stable = world.healthy("exbad").await;
    world.set_image("exbad", "app:v2").await;
    let name = current_experiment(&world, "exbad").await;
    let status = eventually("the abort", || async {
        let status = world.status("exbad").await;
        if status["abort"] == true && status["phase"] == "Degraded" {
            Ok(status)
        } else {
            Err(support::describe(&status))
        }
    })
    .await;
    let message = status["message"].as_str().unwrap();
    assert_eq!(
        message,
        "RolloutAborted: Rollout aborted update to revision 2: Experiment analysis phase is \
         error/failed: Metric \"verdict\" assessed Failed due to failed (1) > failureLimit (0)"
    );
    assert_eq!(status["stableRS"], stable.as_str());
    assert_eq!(
        rollout_health(&world.rollout_json("exbad").await).0,
        "Degraded"
    );
    let ex = experiment_phase(&world, &name, "Failed").await;
    assert_eq!(health(&ex).0, "Degraded");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_api_refuses_put_the_template_in_error_and_the_experiment_follows() {
    let world = World::start().await;
    // The API server refuses names that are not lowercase RFC 1123, as a cluster would: a
    // template's ReplicaSet in one experiment, a template's Service in the other.
    let mut bad_rs = experiment("refused", json!({}));
    bad_rs.spec.templates[1].name = "Canary".into();
    let mut bad_svc = experiment("refused-svc", json!({}));
    bad_svc.spec.templates[0].service =
        Some(serde_json::from_value(json!({"name": "Bad_Name"})).unwrap());
    create(&world, &bad_rs).await;
    create(&world, &bad_svc).await;
    let template = |ex: &Value, name: &str| {
        ex["status"]["templateStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap()
    };
    for (experiment, name, prefix) in [
        (
            "refused",
            "Canary",
            "Failed to create ReplicaSet for template 'Canary': ReplicaSet.apps \"refused-Canary\" is invalid: metadata.name: Invalid value: \"refused-Canary\"",
        ),
        (
            "refused-svc",
            "baseline",
            "Failed to create Service Bad_Name for template 'baseline': Service \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\"",
        ),
    ] {
        let ex = experiment_phase(&world, experiment, "Error").await;
        let status = template(&ex, name);
        assert_eq!(status["status"], "Error", "{status:#}");
        let message = status["message"].as_str().unwrap();
        assert!(message.starts_with(prefix), "{message}");
        assert_eq!(health(&ex).0, "Degraded", "{experiment}");
    }
    // Nothing was made for the refused template.
    assert_eq!(rs_replicas(&world, "refused-Canary").await, None);
    world.stop().await;
}
