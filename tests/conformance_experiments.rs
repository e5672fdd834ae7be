//! Upstream's experiment-step examples (`../shared/conformance/argo-examples/examples`) run to
//! completion in the sandbox with the controller: `rollout-experiment-step.yaml` (its
//! `random-fail` template is a Job that fails at random; here a template of the same name
//! that passes stands in, so the test is deterministic), `rollout-baseline-vs-canary.yaml` and
//! `rollout-canary-preview.yaml`. None has a duration or a required analysis, so (as upstream)
//! each experiment runs until the step is promoted, which terminates it. The ALB, SMI and Istio variants need routers the sandbox
//! does not serve and are left out.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use davy::api::Rollout;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{
    NS, World, create_verdict_template, describe, eventually, experiment_phase, verdict_server,
};

/// The example's documents, or `None` (with the notice) when the conformance data is absent.
fn example(file: &str) -> Option<Vec<Value>> {
    let dir = common::conformance_dir()?;
    let path = dir.join("argo-examples").join("examples").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(serde_saphyr::from_multiple(&text).unwrap())
}

/// Creates the example's Services and Rollout (in [`NS`]); returns the Rollout's name.
async fn apply(world: &World, docs: &[Value]) -> String {
    let mut name = String::new();
    for doc in docs {
        let mut doc = doc.clone();
        doc["metadata"]["namespace"] = json!(NS);
        match doc["kind"].as_str() {
            Some("Service") => {
                let svc: Service = serde_json::from_value(doc).unwrap();
                world
                    .api::<Service>()
                    .create(&PostParams::default(), &svc)
                    .await
                    .unwrap();
            }
            Some("Rollout") => {
                let rollout: Rollout = serde_json::from_value(doc).unwrap();
                name = rollout.metadata.name.clone().unwrap();
                world.create(&rollout).await;
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
    name
}

/// Deploys the example, updates its image and waits for the experiment step's Experiment;
/// `promote` skips the step once the Experiment runs. Returns the Experiment's name once the
/// update completed.
async fn run_example(world: &World, docs: &[Value], promote: bool) -> String {
    let name = apply(world, docs).await;
    let stable = world.healthy(&name).await;
    world
        .set_image(&name, "argoproj/rollouts-demo:yellow")
        .await;
    let experiment = eventually("the step's Experiment", || async {
        let status = world.status(&name).await;
        match status["canary"]["currentExperiment"].as_str() {
            Some(ex) if !ex.is_empty() => Ok(ex.to_string()),
            _ => Err(describe(&status)),
        }
    })
    .await;
    if promote {
        // Promoted once it runs and its analyses (if any) passed.
        eventually(
            "the Experiment running with its analyses passed",
            || async {
                let ex = support::experiment_json(world, &experiment).await;
                let runs = ex["status"]["analysisRuns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let passed = runs.iter().all(|run| run["phase"] == "Successful");
                if ex["status"]["phase"] == "Running" && passed {
                    Ok(())
                } else {
                    Err(format!("{:#}", ex["status"]))
                }
            },
        )
        .await;
        let status = world.status(&name).await;
        let next = status["currentStepIndex"].as_i64().unwrap() + 1;
        // `davy promote` on a step that is not paused: skip to the next one.
        world
            .rollouts()
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"pauseConditions": null, "currentStepIndex": next}}),
                ),
            )
            .await
            .unwrap();
    }
    let done = world.healthy(&name).await;
    assert_ne!(done, stable, "{name}: the update completed");
    experiment
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_experiment_step_example_completes() {
    let Some(docs) = example("rollout-experiment-step.yaml") else {
        return;
    };
    let world = World::start().await;
    let url = verdict_server().await;
    create_verdict_template(&world, "random-fail", 1).await;
    // The stand-in template's only argument.
    let mut docs = docs;
    docs[0]["spec"]["strategy"]["canary"]["steps"][1]["experiment"]["analyses"][0]["args"] =
        json!([{"name": "url", "value": format!("{url}/pass")}]);
    // Without a duration or a required analysis the experiment runs until the step is left.
    let experiment = run_example(&world, &docs, true).await;
    let ex = experiment_phase(&world, &experiment, "Successful").await;
    assert_eq!(ex["status"]["analysisRuns"][0]["phase"], "Successful");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_baseline_vs_canary_example_completes_when_promoted() {
    let Some(docs) = example("rollout-baseline-vs-canary.yaml") else {
        return;
    };
    let world = World::start().await;
    let experiment = run_example(&world, &docs, true).await;
    let ex = experiment_phase(&world, &experiment, "Successful").await;
    assert_eq!(
        ex["spec"]["terminate"], true,
        "terminated when the step was left"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_canary_preview_example_completes_when_promoted() {
    let Some(docs) = example("rollout-canary-preview.yaml") else {
        return;
    };
    let world = World::start().await;
    let experiment = run_example(&world, &docs, true).await;
    let ex = experiment_phase(&world, &experiment, "Successful").await;
    assert_eq!(
        ex["spec"]["templates"][0]["selector"]["matchLabels"]["app"],
        "rollout-canary-preview"
    );
    world.stop().await;
}
