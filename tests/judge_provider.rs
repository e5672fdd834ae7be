//! The `davy/judge` provider against a real Prometheus (Debian's `prometheus`, started by the
//! test) scraping a target whose values the test controls: a canary whose error rate is 30 %
//! above the baseline's is judged High and fails the run, an equal one passes; errors name
//! the metric and the scope. Also `davy analyze --once` on `analysis-templates/judge-error-rate.yaml`
//! with the real binary.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::prometheus::{MetricsTarget, Prometheus};
use davy::analysis::providers::{MeasureContext, Registry};
use davy::analysis::runner::{Runner, StaticSecrets};
use davy::api::{AnalysisPhase, AnalysisRun, Measurement, Metric};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// Error rates in percent (`docs/judge.md`'s worked example, mean 1.005), one per second.
const BASELINE: [f64; 20] = [
    0.98, 1.05, 0.91, 1.12, 1.00, 0.95, 1.08, 0.89, 1.03, 0.97, 1.10, 0.93, 1.01, 1.06, 0.99, 0.92,
    1.04, 1.09, 0.96, 1.02,
];

fn rate_at(t: f64) -> f64 {
    BASELINE[(t.max(0.0) as usize) % BASELINE.len()]
}

/// Gauges: `high` has a canary 30 % above the baseline; `equal` has a canary drawing the same
/// values in another order (same distribution, never the same sample at the same time).
fn gauges(t: f64) -> String {
    let b = rate_at(t);
    let shifted = rate_at(t + 7.0);
    format!(
        "# TYPE demo_error_percent gauge\n\
         demo_error_percent{{case=\"high\",scope=\"baseline\"}} {b}\n\
         demo_error_percent{{case=\"high\",scope=\"canary\"}} {}\n\
         demo_error_percent{{case=\"equal\",scope=\"baseline\"}} {b}\n\
         demo_error_percent{{case=\"equal\",scope=\"canary\"}} {shifted}\n",
        b * 1.3
    )
}

/// The `davy/judge` config of one error-rate metric over the last 20 s, every second.
fn judge_config(address: &str, case: &str, metric: &str) -> Value {
    let query = |scope: &str| format!("{metric}{{case=\"{case}\",scope=\"{scope}\"}}");
    json!({
        "prometheus": {"address": address, "timeout": 5},
        "lookback": "20s",
        "step": "1s",
        "thresholds": {"pass": 95, "marginal": 75},
        "metrics": [{
            "name": "error-rate",
            "queries": {"baseline": query("baseline"), "canary": query("canary")},
            "direction": "increase",
            "critical": true
        }]
    })
}

fn metric(config: Value) -> Metric {
    serde_json::from_value(json!({
        "name": "judge",
        "count": 1,
        "provider": {"plugin": {"davy/judge": config}}
    }))
    .unwrap()
}

/// One measurement by the provider `Registry::new()` picks for the plugin.
async fn measure(config: Value) -> Measurement {
    let metric = metric(config);
    let provider = Registry::new()
        .provider_for(&metric)
        .expect("davy/judge is registered");
    assert_eq!(provider.kind(), "DavyJudge");
    let ctx = MeasureContext {
        run_name: "run".into(),
        namespace: "default".into(),
        run_uid: "uid".into(),
        result: None,
        now: Timestamp::now(),
        run_started_at: None,
    };
    provider.run(&ctx, &metric).await
}

/// The whole run through the analysis runner: its phase after the one measurement.
async fn run_phase(config: Value) -> (AnalysisPhase, Measurement) {
    let run: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "judge", "namespace": "default"},
        "spec": {"metrics": [serde_json::to_value(metric(config)).unwrap()]}
    }))
    .unwrap();
    let runner = Runner::new(Registry::new(), Arc::new(StaticSecrets::default()));
    let step = runner
        .reconcile(&run, &Timestamp::now)
        .await
        .expect("a step");
    let measurement = step.status.metric_results[0]
        .measurements
        .last()
        .cloned()
        .expect("a measurement");
    (step.status.phase.expect("a run phase"), measurement)
}

/// Waits until the last 20 s hold at least 20 scrapes of `selector`.
async fn wait_for_window(prom: &Prometheus, selector: &str) {
    prom.wait_for(
        &format!("count_over_time({selector}[20s])"),
        Duration::from_secs(60),
        |r| {
            r[0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|n| n >= 20.0)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judges_samples_from_a_real_prometheus() {
    let target = MetricsTarget::start().await;
    target.set_generator(gauges);
    let mut prom = Prometheus::start(&[&target]).await;
    wait_for_window(&prom, "demo_error_percent{case=\"high\",scope=\"canary\"}").await;

    // 30 % more errors: High, critical, score 0, Failed — and the run fails.
    let m = measure(judge_config(&prom.url, "high", "demo_error_percent")).await;
    assert_eq!(m.phase, AnalysisPhase::Failed, "{m:?}");
    assert_eq!(m.value, "0");
    assert_eq!(m.metadata["error-rate.classification"], "High");
    assert_eq!(m.metadata["classification"], "Fail");
    let count: usize = m.metadata["error-rate.baselineCount"].parse().unwrap();
    assert!(
        (20..=22).contains(&count),
        "20 s every 1 s: {count} samples"
    );
    let ratio: f64 = m.metadata["error-rate.meanRatio"].parse().unwrap();
    assert!((ratio - 1.3).abs() < 1e-9, "mean ratio {ratio}");
    let low: f64 = m.metadata["error-rate.ciLow"].parse().unwrap();
    let high: f64 = m.metadata["error-rate.ciHigh"].parse().unwrap();
    assert!(
        0.2 < low && low <= high && high < 0.4,
        "interval [{low}, {high}]"
    );
    let p: f64 = m.metadata["error-rate.pValue"].parse().unwrap();
    assert!(p < 1e-4, "p-value {p}");
    assert_eq!(
        m.message,
        "score 0 (Canary Failed: critical metric(s) error-rate): error-rate High"
    );
    let (phase, m) = run_phase(judge_config(&prom.url, "high", "demo_error_percent")).await;
    assert_eq!(m.metadata["error-rate.classification"], "High");
    assert_eq!(phase, AnalysisPhase::Failed);

    // Same distribution: Pass, 100, Successful — and the run succeeds.
    let m = measure(judge_config(&prom.url, "equal", "demo_error_percent")).await;
    assert_eq!(m.metadata["error-rate.classification"], "Pass", "{m:?}");
    assert_eq!(
        (m.phase.clone(), m.value.as_str()),
        (AnalysisPhase::Successful, "100")
    );
    assert!(
        m.metadata.contains_key("error-rate.pValue"),
        "the test ran: {m:?}"
    );
    assert_eq!(m.message, "");
    let (phase, _) = run_phase(judge_config(&prom.url, "equal", "demo_error_percent")).await;
    assert_eq!(phase, AnalysisPhase::Successful);

    // A query matching nothing: Error naming the metric and the scope.
    let mut config = judge_config(&prom.url, "equal", "demo_error_percent");
    config["metrics"][0]["queries"]["canary"] = json!("demo_error_percent{case=\"none\"}");
    let m = measure(config).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert_eq!(
        m.message,
        "metric \"error-rate\", canary query: the query returned no samples"
    );

    // Prometheus down: Error for both scopes.
    let url = prom.url.clone();
    prom.stop();
    let m = measure(judge_config(&url, "high", "demo_error_percent")).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert!(
        m.message
            .starts_with("metric \"error-rate\", baseline query: "),
        "{}",
        m.message
    );
}

/// The template's counters: service `judged`, hashes `stable`, `bad` (30 % more errors) and
/// `good` (the same traffic as `stable`), 100 requests/s each, errors per second following
/// [`BASELINE`], and identical latency histograms.
fn counters(t: f64) -> String {
    // Errors so far: whole cycles of BASELINE, then the part of the current one.
    let cycle: f64 = BASELINE.iter().sum();
    let errors = |factor: f64| {
        let whole = (t / 20.0).floor();
        let mut sum = whole * cycle;
        let mut s = whole * 20.0;
        while s + 1.0 <= t {
            sum += rate_at(s);
            s += 1.0;
        }
        factor * (sum + (t - s) * rate_at(s))
    };
    let mut out = String::from("# TYPE http_requests_total counter\n");
    for (hash, factor) in [("stable", 1.0), ("bad", 1.3), ("good", 1.0)] {
        let e = errors(factor);
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
    for hash in ["stable", "bad", "good"] {
        for (le, share) in [("0.1", 90.0), ("0.5", 99.0), ("+Inf", 100.0)] {
            out.push_str(&format!(
                "http_request_duration_seconds_bucket{{service=\"judged\",rollouts_pod_template_hash=\"{hash}\",le=\"{le}\"}} {}\n",
                share * t
            ));
        }
    }
    out
}

async fn analyze_once(args: &[String]) -> (i32, String) {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/analysis-templates/judge-error-rate.yaml"
    );
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_davy"));
    command.args(["analyze", "--once", "-o", "json", "-f", file]);
    for arg in args {
        command.args(["--arg", arg]);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("davy finished")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The JSON line of the `judge` measurement.
fn measurement_line(out: &str) -> Value {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "measurement")
        .unwrap_or_else(|| panic!("no measurement line in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_template_with_davy_analyze() {
    let target = MetricsTarget::start().await;
    target.set_generator(counters);
    let prom = Prometheus::start(&[&target]).await;
    // rate(...[1m]) needs two scrapes; 20 s of them fill the window judged.
    wait_for_window(
        &prom,
        "http_requests_total{rollouts_pod_template_hash=\"bad\",code=\"500\"}",
    )
    .await;
    let args = |canary: &str| -> Vec<String> {
        vec![
            "service=judged".into(),
            "baseline-hash=stable".into(),
            format!("canary-hash={canary}"),
            format!("prometheus-address={}", prom.url),
            "lookback=15s".into(),
            "step=1s".into(),
        ]
    };

    let (code, out) = analyze_once(&args("bad")).await;
    assert_eq!(code, 1, "{out}");
    let m = measurement_line(&out);
    assert_eq!(m["phase"], "Failed", "{out}");
    assert_eq!(m["value"], "0", "{out}");
    assert_eq!(m["metadata"]["error-rate.classification"], "High", "{out}");
    assert_eq!(
        m["metadata"]["p95-latency-ms.classification"], "Pass",
        "{out}"
    );
    let ratio: f64 = m["metadata"]["error-rate.meanRatio"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((ratio - 1.3).abs() < 0.01, "mean ratio {ratio}");

    let (code, out) = analyze_once(&args("good")).await;
    assert_eq!(code, 0, "{out}");
    let m = measurement_line(&out);
    assert_eq!(m["phase"], "Successful", "{out}");
    assert_eq!(m["value"], "100", "{out}");
    assert_eq!(m["metadata"]["error-rate.classification"], "Pass", "{out}");
    assert_eq!(
        m["metadata"]["p95-latency-ms.classification"], "Pass",
        "{out}"
    );
}
