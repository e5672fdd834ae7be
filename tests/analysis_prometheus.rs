//! The prometheus provider against a real Prometheus server (Debian's `prometheus`, started by
//! the test) and, for what a healthy server never does (slow answers, warnings, credentials
//! checks), against a small fake one. Also `davy analyze` end to end.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::prometheus::{MetricsTarget, Prometheus};
use davy::analysis::providers::Registry;
use davy::analysis::reconcile::Step;
use davy::analysis::runner::{Runner, StaticSecrets};
use davy::api::{AnalysisPhase, AnalysisRun, Measurement};
use k8s_openapi::jiff::Timestamp;

fn runner() -> Runner {
    Runner::new(
        Registry::new().with_prometheus_address(None),
        Arc::new(StaticSecrets::default()),
    )
}

/// An AnalysisRun holding one metric written in YAML (indented as a list item body).
fn run_with(metric: &str) -> AnalysisRun {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata: {{name: test, namespace: default}}\nspec:\n  metrics:\n  - {}\n",
        metric.trim().replace('\n', "\n    ")
    );
    serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn prometheus_metric(address: &str, query: &str, conditions: &str) -> String {
    format!(
        "name: m\n{conditions}\nprovider:\n  prometheus:\n    address: {address}\n    query: '{}'",
        query.replace('\'', "''")
    )
}

/// One reconcile at the real time; the metric's (only) measurement and the step.
async fn measure(run: &AnalysisRun) -> (Measurement, Step) {
    let step = runner()
        .reconcile(run, &Timestamp::now)
        .await
        .expect("the run is not complete");
    let measurement = step.status.metric_results[0]
        .measurements
        .last()
        .cloned()
        .expect("a measurement");
    (measurement, step)
}

struct Case {
    name: &'static str,
    query: &'static str,
    conditions: &'static str,
    phase: AnalysisPhase,
    value: &'static str,
    message: &'static str,
}

#[tokio::test]
async fn queries_against_a_real_prometheus() {
    let target = MetricsTarget::start().await;
    target.set_text("demo_value{service=\"a\"} 0.5\ndemo_value{service=\"b\"} 0.9\ndemo_nan NaN\n");
    let prom = Prometheus::start(&[&target]).await;
    prom.wait_for("demo_value", Duration::from_secs(30), |r| {
        r.as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    prom.wait_for_samples("demo_nan").await;
    // Three samples of `a` for the range query.
    prom.wait_for(
        "count_over_time(demo_value{service=\"a\"}[10s])",
        Duration::from_secs(30),
        |r| {
            r[0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|n| n >= 3.0)
        },
    )
    .await;
    use AnalysisPhase::*;
    let cases = [
        Case {
            name: "vector",
            query: r#"demo_value{service="a"}"#,
            conditions: "successCondition: result[0] == 0.5",
            phase: Successful,
            value: "[0.5]",
            message: "",
        },
        Case {
            name: "vector of two, failing",
            query: "sort(demo_value)",
            conditions: "successCondition: all(result, {# >= 0.8})",
            phase: Failed,
            value: "[0.5,0.9]",
            message: "",
        },
        Case {
            name: "scalar",
            query: "scalar(sum(demo_value))",
            conditions: "successCondition: result > 1.3 && result < 1.5",
            phase: Successful,
            value: "1.4",
            message: "",
        },
        Case {
            name: "empty result indexed",
            query: r#"demo_value{service="none"}"#,
            conditions: "successCondition: result[0] >= 0.5",
            phase: Error,
            value: "",
            message: "could not evaluate successCondition \"result[0] >= 0.5\": metric result is nil or empty: no data returned from the metric provider",
        },
        Case {
            name: "empty result guarded",
            query: r#"demo_value{service="none"}"#,
            conditions: "successCondition: len(result) == 0 || result[0] >= 0.5",
            phase: Successful,
            value: "[]",
            message: "",
        },
        Case {
            name: "NaN with a success condition only",
            query: "demo_nan",
            conditions: "successCondition: result[0] >= 0.5",
            phase: Failed,
            value: "[NaN]",
            message: "",
        },
        Case {
            name: "NaN with both conditions",
            query: "demo_nan",
            conditions: "successCondition: result[0] >= 0.5\nfailureCondition: result[0] < 0.5",
            phase: Inconclusive,
            value: "[NaN]",
            message: "",
        },
        Case {
            name: "NaN guarded",
            query: "demo_nan",
            conditions: "successCondition: isNaN(result[0])",
            phase: Successful,
            value: "[NaN]",
            message: "",
        },
        Case {
            name: "+Inf scalar",
            query: "scalar(vector(1) / 0)",
            conditions: "successCondition: isInf(result)",
            phase: Successful,
            value: "+Inf",
            message: "",
        },
        Case {
            name: "bad PromQL",
            query: "sum(rate(demo_value[1m])",
            conditions: "successCondition: result[0] >= 0",
            phase: Error,
            value: "",
            message: "bad_data: invalid parameter \"query\": 1:25: parse error: unclosed left parenthesis",
        },
        Case {
            name: "string result",
            query: "\"hello\"",
            conditions: "successCondition: true",
            phase: Error,
            value: "",
            message: "Prometheus metric type not supported",
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let run = run_with(&prometheus_metric(&prom.url, case.query, case.conditions));
        let (m, step) = measure(&run).await;
        let got = (m.phase.clone(), m.value.as_str(), m.message.as_str());
        let want = (case.phase.clone(), case.value, case.message);
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?}", case.name));
        }
        let resolved = step.status.metric_results[0]
            .metadata
            .get("ResolvedPrometheusQuery");
        if resolved.map(String::as_str) != Some(case.query) {
            failures.push(format!(
                "{}: ResolvedPrometheusQuery {resolved:?}",
                case.name
            ));
        }
    }
    // A range query: every sample of the last seconds.
    let range = run_with(&format!(
        "name: m\nsuccessCondition: len(result) >= 3 && all(result, {{# == 0.5}})\nprovider:\n  prometheus:\n    address: {}\n    query: 'demo_value{{service=\"a\"}}'\n    rangeQuery:\n      start: 'now() - duration(\"4s\")'\n      end: 'now()'\n      step: 1s",
        prom.url
    ));
    let (m, _) = measure(&range).await;
    let samples: Vec<&str> = m.value.trim_matches(['[', ']']).split(',').collect();
    if m.phase != Successful || samples.len() < 3 || samples.iter().any(|s| *s != "0.5") {
        failures.push(format!(
            "range query: {:?} {:?} {:?}",
            m.phase, m.value, m.message
        ));
    }
    println!(
        "prometheus cases: {} passed, {} failed",
        cases.len() + 1 - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_stopped_server_errors_until_the_run_errors() {
    let target = MetricsTarget::start().await;
    let mut prom = Prometheus::start(&[&target]).await;
    let address = prom.url.clone();
    prom.stop();
    let mut run = run_with(&format!(
        "{}\ninterval: 1m\nconsecutiveErrorLimit: 2",
        prometheus_metric(&address, "up", "successCondition: result[0] == 1")
    ));
    // A virtual clock: errors are retried 10 s later whatever the interval.
    let mut now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut phases = Vec::new();
    for _ in 0..3 {
        let at = now;
        let step = runner().reconcile(&run, &move || at).await.unwrap();
        let result = &step.status.metric_results[0];
        let last = result.measurements.last().unwrap();
        assert_eq!(last.phase, AnalysisPhase::Error);
        assert!(
            last.message.contains(&address["http://".len()..]) && last.message.contains("onnect"),
            "connection error expected: {}",
            last.message
        );
        phases.push(step.status.phase.clone().unwrap());
        if step.status.phase != Some(AnalysisPhase::Error) {
            let next = step.next_reconcile.unwrap();
            assert_eq!(next.duration_since(now).as_secs(), 10);
            now = next.checked_add(Duration::from_millis(1)).unwrap();
        }
        run.status = Some(step.status);
    }
    assert_eq!(
        phases,
        vec![
            AnalysisPhase::Running,
            AnalysisPhase::Running,
            AnalysisPhase::Error
        ]
    );
    let status = run.status.unwrap();
    let last_message = status.metric_results[0].measurements[2].message.clone();
    assert_eq!(
        status.message,
        format!(
            "Metric \"m\" assessed Error due to consecutiveErrors (3) > consecutiveErrorLimit (2): \"Error Message: {last_message}\""
        )
    );
    assert_eq!(status.metric_results[0].error, 3);
    assert_eq!(status.metric_results[0].count, 0);
}

/// What the fake server saw and answers.
#[derive(Default)]
struct FakeState {
    headers: Vec<BTreeMap<String, String>>,
    form: Vec<String>,
}

/// A Prometheus stand-in: `/api/v1/query` answers after `delay` with one sample and two
/// warnings, only with `Authorization: Bearer tok` when `token` is set; `/token` hands out
/// `tok` to client `id`/`secret`.
async fn fake_prometheus(
    delay: Duration,
    require_token: bool,
) -> (String, Arc<Mutex<FakeState>>, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    let state = Arc::new(Mutex::new(FakeState::default()));
    let seen = state.clone();
    let query = move |headers: HeaderMap, body: String| {
        let seen = seen.clone();
        async move {
            let map = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect::<BTreeMap<_, _>>();
            let authorized = !require_token
                || map.get("authorization").map(String::as_str) == Some("Bearer tok");
            {
                let mut s = seen.lock().unwrap();
                s.headers.push(map);
                s.form.push(body);
            }
            tokio::time::sleep(delay).await;
            if !authorized {
                return (StatusCode::UNAUTHORIZED, "unauthorized".to_string());
            }
            (
                StatusCode::OK,
                r#"{"status":"success","warnings":["w1","w2"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#
                    .to_string(),
            )
        }
    };
    let token = |headers: HeaderMap, body: String| async move {
        // client_id:client_secret = id:secret in a Basic header.
        let basic = headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some("Basic aWQ6c2VjcmV0");
        if basic
            && body.contains("grant_type=client_credentials")
            && body.contains("scope=read+write")
        {
            (
                StatusCode::OK,
                r#"{"access_token":"tok","token_type":"bearer"}"#.to_string(),
            )
        } else {
            (
                StatusCode::UNAUTHORIZED,
                format!("bad token request {body}"),
            )
        }
    };
    let app = axum::Router::new()
        .route("/api/v1/query", post(query))
        .route("/token", post(token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, state, task)
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_an_error() {
    let (url, _state, task) = fake_prometheus(Duration::from_secs(3), false).await;
    let run = run_with(&format!(
        "name: m\nsuccessCondition: 'true'\nprovider:\n  prometheus:\n    address: {url}\n    query: up\n    timeout: 1"
    ));
    let (m, _) = measure(&run).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert_eq!(
        m.message,
        format!("Post \"{url}/api/v1/query\": context deadline exceeded")
    );
    task.abort();
}

#[tokio::test]
async fn warnings_headers_and_basic_auth_reach_the_server() {
    let (url, state, task) = fake_prometheus(Duration::ZERO, false).await;
    let run = run_with(&format!(
        "name: m\nsuccessCondition: result[0] == 1\nprovider:\n  prometheus:\n    address: {url}\n    query: up\n    headers: [{{key: X-Scope-OrgID, value: tenant-1}}]\n    authentication:\n      basicAuth: {{username: user, password: pass}}"
    ));
    let (m, _) = measure(&run).await;
    assert_eq!(
        (m.phase.clone(), m.value.as_str()),
        (AnalysisPhase::Successful, "[1]")
    );
    assert_eq!(
        m.metadata.get("warnings").map(String::as_str),
        Some("\"w1\", \"w2\"")
    );
    let seen = state.lock().unwrap();
    assert_eq!(
        seen.headers[0].get("x-scope-orgid").map(String::as_str),
        Some("tenant-1")
    );
    // user:pass
    assert_eq!(
        seen.headers[0].get("authorization").map(String::as_str),
        Some("Basic dXNlcjpwYXNz")
    );
    assert!(
        seen.form[0].starts_with("query=up&time="),
        "{}",
        seen.form[0]
    );
    task.abort();
}

#[tokio::test]
async fn oauth2_client_credentials_token_is_used() {
    let (url, _state, task) = fake_prometheus(Duration::ZERO, true).await;
    let run = run_with(&format!(
        "name: m\nsuccessCondition: result[0] == 1\nprovider:\n  prometheus:\n    address: {url}\n    query: up\n    authentication:\n      oauth2: {{tokenUrl: '{url}/token', clientId: id, clientSecret: secret, scopes: [read, write]}}"
    ));
    let (m, _) = measure(&run).await;
    assert_eq!(
        (m.phase.clone(), m.message.as_str()),
        (AnalysisPhase::Successful, "")
    );
    let wrong = run_with(&format!(
        "name: m\nsuccessCondition: result[0] == 1\nprovider:\n  prometheus:\n    address: {url}\n    query: up\n    authentication:\n      oauth2: {{tokenUrl: '{url}/token', clientId: id, clientSecret: nope}}"
    ));
    let (m, _) = measure(&wrong).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert!(
        m.message.starts_with("oauth2: cannot fetch token: 401"),
        "{}",
        m.message
    );
    task.abort();
}

/// A measurement line of `davy analyze`'s text output, after the time.
fn row(metric: &str, phase: &str, value: &str) -> String {
    format!("{metric:<24} {phase:<12} {value}")
}

async fn davy(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_davy"));
    command
        .args(args)
        .env_remove("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("davy finished")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TEMPLATE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: value-check}
spec:
  args:
  - name: service
  - name: min
    value: "0.8"
  metrics:
  - name: value
    interval: 1s
    count: 2
    successCondition: result[0] >= {{args.min}}
    provider:
      prometheus:
        query: demo_value{service="{{args.service}}"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn davy_analyze_against_a_real_prometheus() {
    let target = MetricsTarget::start().await;
    target.set_text("demo_value{service=\"a\"} 0.5\ndemo_value{service=\"b\"} 0.9\n");
    let prom = Prometheus::start(&[&target]).await;
    prom.wait_for("demo_value", Duration::from_secs(30), |r| {
        r.as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.yaml");
    std::fs::write(&file, TEMPLATE).unwrap();
    let file = file.to_str().unwrap();
    let env = [("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS", prom.url.as_str())];

    let (code, out, err) = davy(
        &["analyze", "-f", file, "--arg", "service=b", "--once"],
        &env,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].ends_with(&row("value", "Successful", "[0.9]")),
        "{out}"
    );
    assert_eq!(lines[1], "Run Successful");

    let (code, out, _) = davy(
        &["analyze", "-f", file, "--arg", "service=a", "--once"],
        &env,
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.ends_with(
            "Run Failed: Metric \"value\" assessed Failed due to failed (1) > failureLimit (0)\n"
        ),
        "{out}"
    );

    // The real schedule: two measurements a second apart, then the verdict.
    let (code, out, _) = davy(
        &[
            "analyze",
            "-f",
            file,
            "--arg",
            "service=b",
            "--arg",
            "min=0.9",
            "-o",
            "json",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let objects: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 3, "{out}");
    assert_eq!(objects[0]["type"], "measurement");
    assert_eq!(objects[1]["value"], "[0.9]");
    assert_eq!(objects[2]["type"], "run");
    assert_eq!(objects[2]["phase"], "Successful");
    assert_eq!(objects[2]["metricResults"][0]["count"], 2);

    // Usage errors: upstream's message for a missing argument, exit 64.
    let (code, _, err) = davy(&["analyze", "-f", file, "--once"], &env).await;
    assert_eq!(
        (code, err.as_str()),
        (64, "error: args.service was not resolved\n")
    );
    let (code, _, err) = davy(&["analyze", "--once"], &env).await;
    assert_eq!((code, err.as_str()), (64, "error: -f FILE is required\n"));
    let (code, _, err) = davy(
        &[
            "analyze",
            "-f",
            file,
            "--arg",
            "service=b",
            "--once",
            "--duration",
            "1s",
        ],
        &env,
    )
    .await;
    assert_eq!(
        (code, err.as_str()),
        (64, "error: --once and --duration exclude each other\n")
    );

    // No address anywhere: the measurement errs, and with --once the run errs.
    let (code, out, _) = davy(
        &["analyze", "-f", file, "--arg", "service=b", "--once"],
        &[],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "{}  prometheus address is not configured",
            row("value", "Error", "-")
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn davy_analyze_backtest_replays_the_window() {
    let target = MetricsTarget::start().await;
    target.set_text("demo_value{service=\"b\"} 0.9\n");
    let prom = Prometheus::start(&[&target]).await;
    // Four seconds of data, then the value drops.
    prom.wait_for(
        "count_over_time(demo_value[20s])",
        Duration::from_secs(30),
        |r| {
            r[0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|n| n >= 4.0)
        },
    )
    .await;
    target.set_text("demo_value{service=\"b\"} 0.1\n");
    // The last three steps of the window see the new value.
    prom.wait_for("demo_value offset 2s", Duration::from_secs(30), |r| {
        r[0]["value"][1] == "0.1"
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.yaml");
    std::fs::write(&file, TEMPLATE.replace("count: 2", "failureLimit: 1")).unwrap();
    let env = [("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS", prom.url.as_str())];
    let (code, out, err) = davy(
        &[
            "analyze",
            "-f",
            file.to_str().unwrap(),
            "--arg",
            "service=b",
            "--backtest",
            "now-3s..now",
            "--step",
            "1s",
        ],
        &env,
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    // Four steps (both ends included), then the verdict line.
    assert_eq!(lines.len(), 5, "{out}{err}");
    assert!(
        lines[3].ends_with(&row("value", "Failed", "[0.1]")),
        "{out}"
    );
    assert!(lines[4].starts_with("Run Failed at "), "{out}");
    assert!(
        lines[4].ends_with("Metric \"value\" assessed Failed due to failed (2) > failureLimit (1)"),
        "{out}"
    );
    assert_eq!(code, 1, "{out}");
}
