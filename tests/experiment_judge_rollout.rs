//! The headline of the experiments work, end to end in the sandbox without Prometheus: a
//! Rollout's `experiment` step starts a baseline (`specRef: stable`) and a canary
//! (`specRef: canary`), and `analysis-templates/judge-baseline-vs-canary-scrape.yaml` judges
//! the two from their pods' own `/metrics` (`davy/judge` over `davy/scrape`). The pods are real
//! HTTP servers (simulator demo apps) and get real requests from the load generator through the
//! Rollout's Service: with no traffic router the experiment's pods carry the Rollout's labels,
//! so the Service's EndpointSlices list them next to the stable pods (as upstream).
//!
//! Every version answers with an error rate that drifts between 0.8 and 1.2 times its mean, the
//! same way at the same moment (the demo apps' `err<P>-*` tags): the stable and the baseline at
//! 10 %, a canary at 12 % (20 % worse) and one at 10 % (equal). The worse canary is judged High
//! and the Rollout aborts with upstream's message; the equal one passes and the Rollout
//! completes. The test also shows that one fixed threshold on the canary alone cannot tell
//! them apart: some step of the equal canary reads higher than some step of the worse one.
//!
//! Sizes: 30 steps of 2 s per side, about 60 requests per pod and second; the errors of a demo
//! app are spread evenly (at most one off per step), so the only noise is the drift, and the
//! judge's p-value for the 20 % canary is about 1e-4 (the 98 % interval of the shift stays
//! about twice the tolerance above zero), for the equal one about 0.5 or more.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use std::time::Duration;

use davy::api::{AnalysisRun, AnalysisTemplate};
use davy::sandbox::load_generator::{LoadConfig, LoadReport, SplitTargets, follow_split, run_load};
use davy::sandbox::simulator::SimulatorConfig;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use support::{NS, World, canary_rollout, controller_config, describe, rollout, simulator_config};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Steps judged per side (`lookback / step`).
const STEPS: u32 = 30;
/// Seconds between two scrapes.
const STEP_SECONDS: u32 = 2;
/// How long the judgement may take on a loaded debug build.
const JUDGE_DEADLINE: Duration = Duration::from_secs(300);

/// Polls `check` until it yields a value or `JUDGE_DEADLINE` passes.
async fn within<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    common::wait::eventually_within(what, JUDGE_DEADLINE, check).await
}

/// The Rollout `name` at 10 % errors, one replica, with the judged experiment step.
fn judged_rollout(name: &str) -> Value {
    let steps = json!([{"experiment": {
        "templates": [
            {"name": "baseline", "specRef": "stable", "replicas": 1,
             "metadata": {"labels": {"role": "baseline"}}},
            {"name": "canary", "specRef": "canary", "replicas": 1,
             "metadata": {"labels": {"role": "canary"}}}
        ],
        "analyses": [{
            "name": "judge", "templateName": "judge-baseline-vs-canary-scrape",
            "requiredForCompletion": true,
            "args": [
                {"name": "baseline-hash", "value": "{{templates.baseline.podTemplateHash}}"},
                {"name": "canary-hash", "value": "{{templates.canary.podTemplateHash}}"},
                {"name": "lookback", "value": format!("{}s", STEPS * STEP_SECONDS)},
                {"name": "step", "value": format!("{STEP_SECONDS}s")}
            ]
        }]
    }}]);
    canary_rollout(name, 1, steps, "app:err10-blue")
}

/// Sends 180 requests a second through the Service `name` (its ready endpoints, round robin)
/// until `cancel`.
async fn load_through(
    world: &World,
    name: &str,
    cancel: CancellationToken,
) -> JoinHandle<LoadReport> {
    let targets = SplitTargets::new(NS, name, name);
    let (split, _follow) = follow_split(
        world.client.clone(),
        targets,
        Duration::from_millis(100),
        cancel.clone(),
    )
    .await
    .expect("follow split");
    let config = LoadConfig {
        rate_per_second: 180.0,
        max_requests: None,
        max_duration: Some(Duration::from_secs(600)),
        max_in_flight: 32,
        seed: 7,
        ..LoadConfig::default()
    };
    tokio::spawn(async move { run_load(&config, split, cancel).await.expect("load") })
}

/// The judge's measurement of the experiment's AnalysisRun, once it is judged.
async fn judgement(world: &World, rollout: &str) -> Value {
    within(&format!("{rollout}'s judgement"), || async {
        let runs = world
            .api::<AnalysisRun>()
            .list(&ListParams::default())
            .await
            .unwrap();
        let run = runs
            .items
            .into_iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .find(|r| {
                r["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(rollout))
            });
        let Some(run) = run else {
            return Err("no AnalysisRun yet".to_string());
        };
        let measurement = &run["status"]["metricResults"][0]["measurements"][0];
        if measurement["metadata"]["error-rate.classification"].is_string() {
            Ok(measurement.clone())
        } else {
            Err(format!("{:#}", run["status"]))
        }
    })
    .await
}

/// The per-step samples the judge stored under `key`.
fn samples(measurement: &Value, key: &str) -> Vec<f64> {
    measurement["metadata"][key]
        .as_str()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_worse_than_its_baseline_aborts_and_an_equal_one_completes() {
    let simulator = SimulatorConfig {
        demo_apps: true,
        ..simulator_config()
    };
    let world = World::start_with(simulator, controller_config()).await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/analysis-templates/judge-baseline-vs-canary-scrape.yaml"
    ))
    .unwrap();
    let mut template: AnalysisTemplate = serde_saphyr::from_str(&text).unwrap();
    template.metadata.namespace = Some(NS.into());
    world
        .api::<AnalysisTemplate>()
        .create(&PostParams::default(), &template)
        .await
        .unwrap();

    let cancel = CancellationToken::new();
    let mut loads = Vec::new();
    for name in ["worse", "equal"] {
        world.create_service(name, name).await;
        world.create(&rollout(judged_rollout(name))).await;
        world.healthy(name).await;
        loads.push(load_through(&world, name, cancel.clone()).await);
    }
    world.set_image("worse", "app:err12-green").await;
    world.set_image("equal", "app:err10-yellow").await;

    let worse = judgement(&world, "worse").await;
    let equal = judgement(&world, "equal").await;

    // The judge: the worse canary High, the equal one Pass, from full series of real answers.
    let meta = &worse["metadata"];
    assert_eq!(meta["error-rate.classification"], "High", "{meta:#}");
    assert_eq!(worse["phase"], "Failed", "{worse:#}");
    assert_eq!(meta["error-rate.canaryCount"], STEPS.to_string());
    let ratio: f64 = meta["error-rate.meanRatio"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1.1..1.3).contains(&ratio), "mean ratio {ratio}");
    let meta = &equal["metadata"];
    assert_eq!(meta["error-rate.classification"], "Pass", "{meta:#}");
    assert_eq!(equal["phase"], "Successful", "{equal:#}");

    // Both sides are noisy: every series spans more than ±10 % of its mean.
    let worse_canary = samples(&worse, "error-rate.canarySamples");
    let equal_canary = samples(&equal, "error-rate.canarySamples");
    for (what, series) in [
        (
            "worse baseline",
            samples(&worse, "error-rate.baselineSamples"),
        ),
        ("worse canary", worse_canary.clone()),
        (
            "equal baseline",
            samples(&equal, "error-rate.baselineSamples"),
        ),
        ("equal canary", equal_canary.clone()),
    ] {
        let m = mean(&series);
        let lo = series.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = series.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert!(lo < 0.9 * m && hi > 1.1 * m, "{what}: {series:?}");
    }
    // A threshold on the canary alone: whatever the limit, one step of the equal canary reads
    // above one step of the worse canary, so a check at one of those moments fails the good
    // release or passes the bad one (e.g. a limit of 11 %).
    let equal_peak = equal_canary
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max);
    let worse_low = worse_canary.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(
        equal_peak > worse_low,
        "equal canary peak {equal_peak}, worse canary low {worse_low}"
    );
    let limit = 0.11;
    assert!(equal_canary.iter().any(|v| *v > limit), "{equal_canary:?}");
    assert!(worse_canary.iter().any(|v| *v <= limit), "{worse_canary:?}");

    // The Rollouts: the worse one aborted with upstream's message, the equal one completed.
    let aborted = within("worse to abort", || async {
        let status = world.status("worse").await;
        if status["abort"] == true && status["phase"] == "Degraded" {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert_eq!(
        aborted["message"],
        "RolloutAborted: Rollout aborted update to revision 2: Experiment analysis phase is \
         error/failed: Metric \"judge\" assessed Failed due to failed (1) > failureLimit (0): \
         \"Error Message: score 0 (Canary Failed: critical metric(s) error-rate): error-rate High\""
    );
    let done = within("equal to complete", || async {
        let status = world.status("equal").await;
        let complete = status["phase"] == "Healthy"
            && status["stableRS"].is_string()
            && status["stableRS"] == status["currentPodHash"]
            && status["currentStepIndex"] == 1;
        if complete {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert_eq!(done["canary"]["currentExperiment"], Value::Null);

    cancel.cancel();
    // The experiment's canary pod took its share of its Service's traffic (a third of 180
    // requests a second while the judge listened).
    for (load, version) in loads.into_iter().zip(["err12-green", "err10-yellow"]) {
        let report = load.await.unwrap();
        assert!(report.count_version(version) > 1500, "{report:?}");
        assert!(report.count(version, 500) > 100, "{report:?}");
    }
    world.stop().await;
}
