//! The judge on a real baseline: Experiments run a `baseline` and a `canary` template side by
//! side in the sandbox (controller + simulator), and their analysis is
//! `analysis-templates/judge-baseline-vs-canary.yaml` against a real Prometheus scraping a
//! target that serves request counters for exactly the experiment's pod-template hashes. A
//! canary with 20 % more errors than its baseline is judged High and fails the experiment (an
//! experiment step would abort the Rollout, see `controller_experiments.rs`); a canary with the
//! same error rate passes. The per-second error rate swings between 0.89 % and 1.12 %; the
//! template's queries judge 1-minute rates, so the test waits until Prometheus holds 80 s.
//!
//! The template's `initialDelay` (5 m in production) is set to zero here so the judgement comes
//! as soon as Prometheus holds the 15 s window.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use std::time::Duration;

use common::prometheus::{MetricsTarget, Prometheus};
use davy::api::{AnalysisRun, AnalysisTemplate, Experiment};
use davy::experiment::objects::new_replica_set;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::{NS, World, experiment_phase};

/// Error rates in percent, one per second, mean 1.005 (`docs/judge.md`'s worked example).
const NOISE: [f64; 20] = [
    0.98, 1.05, 0.91, 1.12, 1.00, 0.95, 1.08, 0.89, 1.03, 0.97, 1.10, 0.93, 1.01, 1.06, 0.99, 0.92,
    1.04, 1.09, 0.96, 1.02,
];

fn rate_at(t: f64) -> f64 {
    NOISE[(t.max(0.0) as usize) % NOISE.len()]
}

/// Cumulative errors at `t` of a series whose per-second error rate is `factor ×` the noise
/// shifted by `offset` seconds.
fn errors(t: f64, factor: f64, offset: f64) -> f64 {
    let mut sum = 0.0;
    let mut s = 0.0;
    while s + 1.0 <= t {
        sum += rate_at(s + offset);
        s += 1.0;
    }
    factor * (sum + (t - s) * rate_at(s + offset))
}

/// Counters and latency buckets for each `(hash, error factor, noise offset)`.
fn exposition(series: &[(String, f64, f64)], t: f64) -> String {
    let mut out = String::from("# TYPE http_requests_total counter\n");
    for (hash, factor, offset) in series {
        let e = errors(t, *factor, *offset);
        let labels = format!("service=\"judged\",rollouts_pod_template_hash=\"{hash}\"");
        out.push_str(&format!(
            "http_requests_total{{{labels},code=\"200\"}} {}\n",
            100.0 * t - e
        ));
        out.push_str(&format!(
            "http_requests_total{{{labels},code=\"500\"}} {e}\n"
        ));
    }
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (hash, _, _) in series {
        for (le, share) in [("0.1", 90.0), ("0.5", 99.0), ("+Inf", 100.0)] {
            out.push_str(&format!(
                "http_request_duration_seconds_bucket{{service=\"judged\",rollouts_pod_template_hash=\"{hash}\",le=\"{le}\"}} {}\n",
                share * t
            ));
        }
    }
    out
}

/// An Experiment `name` with a baseline (v1) and a canary (`canary_image`) and the judge.
fn experiment(name: &str, canary_image: &str, prometheus: &str) -> Experiment {
    let template = |image: &str, role: &str| {
        json!({"metadata": {"labels": {"app": name, "role": role}},
               "spec": {"containers": [{"name": "app", "image": image}]}})
    };
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": name, "namespace": NS, "uid": "not-yet"},
        "spec": {
            "duration": "1h",
            "scaleDownDelaySeconds": 0,
            "templates": [
                {"name": "baseline", "selector": {"matchLabels": {"app": name, "role": "baseline"}},
                 "template": template("app:v1", "baseline")},
                {"name": "canary", "selector": {"matchLabels": {"app": name, "role": "canary"}},
                 "template": template(canary_image, "canary")}
            ],
            "analyses": [{
                "name": "judge", "templateName": "judge-baseline-vs-canary",
                "requiredForCompletion": true,
                "args": [
                    {"name": "service", "value": "judged"},
                    {"name": "baseline-hash", "value": "{{templates.baseline.podTemplateHash}}"},
                    {"name": "canary-hash", "value": "{{templates.canary.podTemplateHash}}"},
                    {"name": "prometheus-address", "value": prometheus},
                    {"name": "lookback", "value": "15s"},
                    {"name": "step", "value": "1s"}
                ]
            }]
        }
    }))
    .unwrap()
}

/// The pod-template hash the controller will give `template` of `ex` (the same pure function).
fn hash_of(ex: &Experiment, template: usize) -> String {
    let rs = new_replica_set(ex, &ex.spec.templates[template], None);
    rs.metadata.labels.unwrap()["rollouts-pod-template-hash"].clone()
}

async fn judge_metadata(world: &World, run: &str) -> Value {
    let run: AnalysisRun = world.api().get(run).await.unwrap();
    let value = serde_json::to_value(run).unwrap();
    value["status"]["metricResults"][0]["measurements"][0]["metadata"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_worse_than_its_baseline_fails_and_an_equal_one_passes() {
    let target = MetricsTarget::start().await;
    let prom = Prometheus::start(&[&target]).await;
    let worse = experiment("worse", "app:v2", &prom.url);
    let equal = experiment("equal", "app:v3", &prom.url);
    let series = vec![
        (hash_of(&worse, 0), 1.0, 0.0),
        // 20 % more errors, in step with the baseline's noise.
        (hash_of(&worse, 1), 1.2, 0.0),
        (hash_of(&equal, 0), 1.0, 0.0),
        // The same noisy rate, started 7 s later in the cycle.
        (hash_of(&equal, 1), 1.0, 7.0),
    ];
    assert_ne!(series[0].0, series[1].0);
    target.set_generator(move |t| exposition(&series, t));
    prom.wait_for(
        "count_over_time(http_requests_total{service=\"judged\",code=\"500\"}[80s])",
        Duration::from_secs(120),
        |r| {
            r.as_array().is_some_and(|rows| {
                rows.len() == 4
                    && rows.iter().all(|row| {
                        row["value"][1]
                            .as_str()
                            .and_then(|v| v.parse::<f64>().ok())
                            .is_some_and(|n| n >= 78.0)
                    })
            })
        },
    )
    .await;

    let world = World::start().await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/analysis-templates/judge-baseline-vs-canary.yaml"
    ))
    .unwrap();
    let mut template: AnalysisTemplate = serde_saphyr::from_str(&text).unwrap();
    template.metadata.namespace = Some(NS.into());
    template.spec.metrics[0].initial_delay = None;
    world
        .api::<AnalysisTemplate>()
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    for ex in [&worse, &equal] {
        let mut ex = ex.clone();
        ex.metadata.uid = None;
        world
            .api::<Experiment>()
            .create(&PostParams::default(), &ex)
            .await
            .unwrap();
    }

    let failed = experiment_phase(&world, "worse", "Failed").await;
    assert_eq!(failed["status"]["analysisRuns"][0]["phase"], "Failed");
    let metadata = judge_metadata(&world, "worse-judge").await;
    assert_eq!(
        metadata["error-rate.classification"], "High",
        "{metadata:#}"
    );
    let ratio: f64 = metadata["error-rate.meanRatio"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((ratio - 1.2).abs() < 0.02, "mean ratio {ratio}");

    let passed = experiment_phase(&world, "equal", "Successful").await;
    assert_eq!(
        passed["status"]["message"],
        "Required AnalysisRuns completed"
    );
    let metadata = judge_metadata(&world, "equal-judge").await;
    assert_eq!(
        metadata["error-rate.classification"], "Pass",
        "{metadata:#}"
    );
    world.stop().await;
}
