//! Upstream's experiment-step examples (`../shared/conformance/argo-examples/examples`) run to
//! completion in the sandbox with the controller: `rollout-experiment-step.yaml` (its
//! `random-fail` template is a Job that fails at random; here a template of the same name
//! that passes stands in, so the test is deterministic), `rollout-baseline-vs-canary.yaml` and
//! `rollout-canary-preview.yaml`. None has a duration or a required analysis, so (as upstream)
//! each experiment runs until the step is promoted, which terminates it. The SMI variant
//! (`traffic-routing-experiment-step/rollout-smi-experiment-step.yaml`) runs with demo apps
//! and real requests through its TrafficSplit: the load generator splits by the backends'
//! weights, so the experiment's Service gets its `weight: 5` share; the Istio host-split
//! variant (`istio-host-split-experiment-step.yaml`) likewise through its VirtualService's
//! route weights (`weight: 20`). The ALB variant's experiment target group in the forward
//! action is covered by the ALB router's tests (`src/traffic/tests/alb.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use davy::api::Rollout;
use davy::sandbox::load_generator::{LoadConfig, SplitTargets, resolve_split, run_load};
use davy::sandbox::simulator::SimulatorConfig;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{ApiResource, DynamicObject};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{
    NS, World, create_verdict_template, describe, eventually, experiment_phase, verdict_server,
};
use tokio_util::sync::CancellationToken;

/// The documents of an example under `examples/<dir>/<file>`, or `None` without the data.
fn example_in(dir: &str, file: &str) -> Option<Vec<Value>> {
    let root = common::conformance_dir()?;
    let path = root
        .join("argo-examples")
        .join("examples")
        .join(dir)
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(serde_saphyr::from_multiple(&text).unwrap())
}

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
            // The Ingress in front of a mesh only names the stable Service; the load generator
            // starts at the mesh's split.
            Some("Ingress") => {}
            Some("VirtualService") => {
                let resource = ApiResource {
                    group: "networking.istio.io".into(),
                    version: "v1alpha3".into(),
                    api_version: "networking.istio.io/v1alpha3".into(),
                    kind: "VirtualService".into(),
                    plural: "virtualservices".into(),
                };
                let api: Api<DynamicObject> =
                    Api::namespaced_with(world.client.clone(), NS, &resource);
                let object: DynamicObject = serde_json::from_value(doc).unwrap();
                api.create(&PostParams::default(), &object).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_smi_experiment_step_example_gives_the_experiment_its_weight() {
    let Some(docs) = example_in(
        "traffic-routing-experiment-step",
        "rollout-smi-experiment-step.yaml",
    ) else {
        return;
    };
    let simulator = SimulatorConfig {
        demo_apps: true,
        ..support::simulator_config()
    };
    let world = World::start_with(simulator, support::controller_config()).await;
    world
        .server
        .install_crds_from_yaml(common::router_crds::ROUTER_CRDS)
        .unwrap();
    let name = apply(&world, &docs).await;
    world.healthy(&name).await;
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
    let resource = ApiResource {
        group: "split.smi-spec.io".into(),
        version: "v1alpha1".into(),
        api_version: "split.smi-spec.io/v1alpha1".into(),
        kind: "TrafficSplit".into(),
        plural: "trafficsplits".into(),
    };
    let splits: Api<DynamicObject> = Api::namespaced_with(world.client.clone(), NS, &resource);
    let experiment_service = format!("{experiment}-experiment-smi");
    let targets = SplitTargets::new(
        NS,
        "rollout-smi-experiment-stable",
        "rollout-smi-experiment-canary",
    )
    .with_traffic_split("rollout-smi-experiment-trafficsplit");
    // The TrafficSplit as upstream writes it at the step, each backend with ready pods.
    let split = eventually("the experiment's weight in the TrafficSplit", || async {
        let ts = splits
            .get_opt("rollout-smi-experiment-trafficsplit")
            .await
            .unwrap();
        let backends = ts
            .as_ref()
            .map(|t| t.data["spec"]["backends"].clone())
            .unwrap_or_default();
        let split = resolve_split(&world.client, &targets).await.unwrap();
        let weights: Vec<(String, i64, usize)> = split
            .weighted
            .iter()
            .map(|b| (b.service.clone(), b.weight, b.endpoints.len()))
            .collect();
        // The experiment's template is the canary's pod spec unchanged, so its pods carry the
        // canary's pod-template hash and each of the two Services selects both pods (as
        // upstream): two endpoints each.
        let want = [
            ("rollout-smi-experiment-canary".to_string(), 5, 2),
            ("rollout-smi-experiment-stable".to_string(), 90, 1),
            (experiment_service.clone(), 5, 2),
        ];
        let mut sorted = weights.clone();
        sorted.sort();
        let mut want = want.to_vec();
        want.sort();
        if sorted == want {
            Ok(split)
        } else {
            Err(format!("{backends} → {weights:?}"))
        }
    })
    .await;
    let config = LoadConfig {
        rate_per_second: 400.0,
        max_requests: Some(2000),
        max_in_flight: 32,
        seed: 11,
        ..LoadConfig::default()
    };
    let report = run_load(&config, split, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.transport_errors + report.unroutable, 0, "{report:?}");
    let to = |service: &str| report.routed_services.get(service).copied().unwrap_or(0);
    // 5 % of 2000 is 100 (binomial σ ≈ 10; the seeded draws give the same split every run).
    let experiment_share = to(&experiment_service);
    assert!(
        (60..=140).contains(&experiment_share),
        "{experiment_share}: {report:?}"
    );
    assert!(
        (60..=140).contains(&to("rollout-smi-experiment-canary")),
        "{report:?}"
    );
    assert_eq!(
        report.count_version("yellow"),
        experiment_share + to("rollout-smi-experiment-canary"),
        "the experiment's pods run the canary spec and answered its share"
    );
    assert_eq!(
        report.count_version("blue"),
        to("rollout-smi-experiment-stable")
    );
    // Without a duration the experiment runs until the step is left: promote, then the update
    // completes and the experiment is terminated.
    let next = world.status(&name).await["currentStepIndex"]
        .as_i64()
        .unwrap()
        + 1;
    world
        .rollouts()
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"pauseConditions": null, "currentStepIndex": next}})),
        )
        .await
        .unwrap();
    world.healthy(&name).await;
    let ex = experiment_phase(&world, &experiment, "Successful").await;
    assert_eq!(ex["spec"]["terminate"], true);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_host_split_experiment_step_example_gives_the_experiment_its_weight() {
    let Some(docs) = example_in(
        "traffic-routing-experiment-step",
        "istio-host-split-experiment-step.yaml",
    ) else {
        return;
    };
    let simulator = SimulatorConfig {
        demo_apps: true,
        ..support::simulator_config()
    };
    let world = World::start_with(simulator, support::controller_config()).await;
    world
        .server
        .install_crds_from_yaml(common::router_crds::ROUTER_CRDS)
        .unwrap();
    let name = apply(&world, &docs).await;
    world.healthy(&name).await;
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
    let experiment_service = format!("{experiment}-experiment-istio");
    let targets = SplitTargets::new(NS, "istio-host-split-stable", "istio-host-split-canary")
        .with_virtual_service("istio-host-split-vsvc", Some("primary"));
    // setWeight 10, then the template's weight 20 (the rest to stable); the experiment's pods
    // share the canary's pod-template hash, so both Services select both (as upstream).
    let split = eventually("the experiment's weight in the VirtualService", || async {
        let split = resolve_split(&world.client, &targets).await.unwrap();
        let mut got: Vec<(String, i64, usize)> = split
            .weighted
            .iter()
            .map(|b| (b.service.clone(), b.weight, b.endpoints.len()))
            .collect();
        got.sort();
        let mut want = vec![
            ("istio-host-split-canary".to_string(), 10, 2),
            ("istio-host-split-stable".to_string(), 70, 1),
            (experiment_service.clone(), 20, 2),
        ];
        want.sort();
        if got == want {
            Ok(split)
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    let config = LoadConfig {
        rate_per_second: 400.0,
        max_requests: Some(2000),
        max_in_flight: 32,
        seed: 13,
        ..LoadConfig::default()
    };
    let report = run_load(&config, split, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.transport_errors + report.unroutable, 0, "{report:?}");
    let to = |service: &str| report.routed_services.get(service).copied().unwrap_or(0);
    // 20 % of 2000 is 400 (binomial σ ≈ 18; the seeded draws repeat exactly).
    let experiment_share = to(&experiment_service);
    assert!((320..=480).contains(&experiment_share), "{report:?}");
    assert!(
        (140..=260).contains(&to("istio-host-split-canary")),
        "{report:?}"
    );
    assert_eq!(
        report.count_version("yellow"),
        experiment_share + to("istio-host-split-canary")
    );
    assert_eq!(report.count_version("blue"), to("istio-host-split-stable"));
    let next = world.status(&name).await["currentStepIndex"]
        .as_i64()
        .unwrap()
        + 1;
    world
        .rollouts()
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"pauseConditions": null, "currentStepIndex": next}})),
        )
        .await
        .unwrap();
    world.healthy(&name).await;
    let ex = experiment_phase(&world, &experiment, "Successful").await;
    assert_eq!(ex["spec"]["terminate"], true);
    world.stop().await;
}
