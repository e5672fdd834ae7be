//! The controller's `/metrics` over HTTP on 127.0.0.1 during a sandbox rollout, parsed with
//! `prometheus-parse`: upstream's names, labels and values (spec §10.5).

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use davy::api::AnalysisTemplate;
use davy::controller::ControllerConfig;
use kube::Api;
use kube::api::PostParams;
use prometheus_parse::{Sample, Value as PromValue};
use serde_json::json;
use support::{
    Controller, NS, Sandbox, canary_rollout, describe, eventually, free_addr, rollout, scrape,
};

/// The value of the one sample of `metric` whose labels include `labels`.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    match found.as_slice() {
        [one] => match &one.value {
            PromValue::Gauge(v) | PromValue::Counter(v) | PromValue::Untyped(v) => Ok(*v),
            PromValue::Histogram(buckets) => Ok(buckets.last().map_or(0.0, |b| b.count)),
            other => Err(format!("{metric}: unexpected {other:?}")),
        },
        _ => Err(format!("{metric} {labels:?}: {} samples", found.len())),
    }
}

/// The label names of the samples of `metric`, sorted.
fn label_names(samples: &[Sample], metric: &str) -> Vec<String> {
    let sample = samples
        .iter()
        .find(|s| s.metric == metric)
        .unwrap_or_else(|| panic!("no {metric}"));
    let mut names: Vec<String> = sample.labels.keys().map(|k| k.to_string()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_serves_upstream_names_labels_and_values() {
    let sandbox = Sandbox::start().await;
    let addr = free_addr();
    let controller = Controller::start(
        sandbox.client.clone(),
        ControllerConfig {
            namespace: Some(NS.to_string()),
            metrics_addr: Some(addr),
            leader_election: None,
            alert_webhook: None,
            max_concurrent_reconciles: None,
            ..Default::default()
        },
    );
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    sandbox
        .create(&rollout(canary_rollout("metered", 2, steps, "app:v1")))
        .await;
    sandbox.healthy("metered").await;
    sandbox.set_image("metered", "app:v2").await;
    eventually(
        "the update to pause at step 1 with 1 canary available",
        || async {
            let status = sandbox.status("metered").await;
            let done = status["currentStepIndex"] == 1
                && status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
                && status["updatedReplicas"] == 1
                && status["availableReplicas"] == 2
                && status["replicas"] == 2;
            if done { Ok(()) } else { Err(describe(&status)) }
        },
    )
    .await;

    let id = [("namespace", NS), ("name", "metered")];
    let samples = eventually("/metrics to show the paused rollout", || async {
        let samples = scrape(addr).await?;
        let info = value(
            &samples,
            "rollout_info",
            &[
                id[0],
                id[1],
                ("phase", "Paused"),
                ("strategy", "canary"),
                ("traffic_router", ""),
            ],
        )?;
        let available = value(&samples, "rollout_info_replicas_available", &id)?;
        if info == 1.0 && available == 2.0 {
            Ok(samples)
        } else {
            Err(format!("rollout_info {info}, available {available}"))
        }
    })
    .await;
    let get = |metric: &str, labels: &[(&str, &str)]| value(&samples, metric, labels).unwrap();

    assert_eq!(
        label_names(&samples, "rollout_info"),
        ["name", "namespace", "phase", "strategy", "traffic_router"]
    );
    assert_eq!(get("rollout_info_replicas_desired", &id), 2.0);
    assert_eq!(get("rollout_info_replicas_updated", &id), 1.0);
    assert_eq!(get("rollout_info_replicas_unavailable", &id), 0.0);
    assert_eq!(
        label_names(&samples, "rollout_info_replicas_desired"),
        ["name", "namespace"]
    );
    for (phase, expected) in [
        ("Completed", 0.0),
        ("Progressing", 0.0),
        ("Paused", 1.0),
        ("Timeout", 0.0),
        ("Error", 0.0),
        ("Abort", 0.0),
    ] {
        let labels = [id[0], id[1], ("strategy", "canary"), ("phase", phase)];
        assert_eq!(
            get("rollout_phase", &labels),
            expected,
            "rollout_phase {phase}"
        );
    }
    let events = |reason: &str| {
        get(
            "rollout_events_total",
            &[id[0], id[1], ("type", "Normal"), ("reason", reason)],
        )
    };
    assert_eq!(events("RolloutPaused"), 1.0);
    assert_eq!(events("NewReplicaSetCreated"), 2.0);
    assert_eq!(
        label_names(&samples, "rollout_events_total"),
        ["name", "namespace", "reason", "type"]
    );

    // The histogram: every reconcile falls in the +Inf bucket, and _count agrees.
    let reconciles = get("rollout_reconcile", &id);
    assert!(reconciles >= 3.0, "{reconciles} reconciles");
    let count = samples
        .iter()
        .find(|s| s.metric == "rollout_reconcile_count" && s.labels.get("name") == Some("metered"));
    match count.map(|s| &s.value) {
        Some(PromValue::Untyped(v) | PromValue::Counter(v) | PromValue::Gauge(v)) => {
            assert_eq!(*v, reconciles)
        }
        other => panic!("rollout_reconcile_count: {other:?}"),
    }
    assert!(
        samples
            .iter()
            .all(|s| s.metric != "rollout_reconcile_error"),
        "no reconcile failed, so no error series"
    );
    assert_eq!(
        get(
            "argo_rollouts_controller_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("healthz")
        .text()
        .await
        .expect("healthz body");
    assert_eq!(health, "ok");

    controller.stop().await.expect("controller");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_serves_the_step_analysis_run() {
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
    Api::<AnalysisTemplate>::namespaced(sandbox.client.clone(), NS)
        .create(&PostParams::default(), &template)
        .await
        .expect("create template");
    let addr = free_addr();
    let controller = Controller::start(
        sandbox.client.clone(),
        ControllerConfig {
            namespace: Some(NS.to_string()),
            metrics_addr: Some(addr),
            leader_election: None,
            alert_webhook: None,
            max_concurrent_reconciles: None,
            ..Default::default()
        },
    );
    let steps = json!([
        {"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "never-measured"}]}}
    ]);
    sandbox
        .create(&rollout(canary_rollout("judged", 2, steps, "app:v1")))
        .await;
    sandbox.healthy("judged").await;
    sandbox.set_image("judged", "app:v2").await;
    let run = eventually("the step AnalysisRun", || async {
        let status = sandbox.status("judged").await;
        status["canary"]["currentStepAnalysisRunStatus"]["name"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| describe(&status))
    })
    .await;
    let id = [("namespace", NS), ("name", run.as_str())];
    // The AnalysisRun reconciler measures it: the web metric's target refuses connections, so
    // each measurement is an Error, the metric stays Running below its consecutive error limit.
    let samples = eventually("/metrics to show the running run", || async {
        let samples = scrape(addr).await?;
        value(
            &samples,
            "analysis_run_info",
            &[id[0], id[1], ("phase", "Running")],
        )?;
        value(&samples, "analysis_run_reconcile", &[id[0], id[1]])?;
        Ok(samples)
    })
    .await;
    let get = |metric: &str, labels: &[(&str, &str)]| value(&samples, metric, labels).unwrap();
    assert_eq!(
        label_names(&samples, "analysis_run_info"),
        ["name", "namespace", "phase"]
    );
    assert_eq!(
        get("analysis_run_phase", &[id[0], id[1], ("phase", "Running")]),
        1.0
    );
    assert_eq!(
        get("analysis_run_phase", &[id[0], id[1], ("phase", "Pending")]),
        0.0
    );
    assert!(get("analysis_run_reconcile", &id) >= 1.0);
    let metric = [id[0], id[1], ("metric", "ok"), ("type", "Web")];
    assert_eq!(get("analysis_run_metric_type", &metric), 1.0);
    let mut running = metric.to_vec();
    running.extend([("dry_run", "false"), ("phase", "Running")]);
    assert_eq!(get("analysis_run_metric_phase", &running), 1.0);
    assert_eq!(
        label_names(&samples, "analysis_run_metric_phase"),
        ["dry_run", "metric", "name", "namespace", "phase", "type"]
    );
    controller.stop().await.expect("controller");
    sandbox.stop().await;
}
