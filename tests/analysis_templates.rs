//! Every template of `analysis-templates/` run with `davy analyze --once`, once where it must
//! pass and once where it must fail: the Prometheus ones against a real Prometheus scraping a
//! target whose counters grow at chosen rates (a healthy `good` and an unhealthy `bad`
//! service side by side), the web and scrape ones against test HTTP servers.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::prometheus::{MetricsTarget, Prometheus};

fn template(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("analysis-templates")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

async fn analyze_once(file: &str, args: &[String]) -> (i32, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_davy"));
    command
        .args(["analyze", "--once", "-f", file])
        .env_remove("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS");
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

/// Two services at fixed request rates: `good` 0.05% errors and fast, `bad` 10% errors and
/// slow; the same traffic seen by ingress-nginx; an alert level per service.
fn exposition(t: f64) -> String {
    let mut out = String::new();
    out.push_str("# TYPE http_requests_total counter\n");
    for (service, ok, bad, code) in [("good", 100.0, 0.05, "500"), ("bad", 90.0, 10.0, "503")] {
        out.push_str(&format!(
            "http_requests_total{{service=\"{service}\",code=\"200\"}} {}\n",
            ok * t
        ));
        out.push_str(&format!(
            "http_requests_total{{service=\"{service}\",code=\"{code}\"}} {}\n",
            bad * t
        ));
    }
    // Cumulative buckets per second: good all under 100 ms, bad mostly around a second.
    let buckets = [
        ("good", [100.0, 100.0, 100.0, 100.0]),
        ("bad", [10.0, 20.0, 90.0, 100.0]),
    ];
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (service, counts) in buckets {
        for (le, c) in ["0.1", "0.5", "1", "+Inf"].iter().zip(counts) {
            out.push_str(&format!(
                "http_request_duration_seconds_bucket{{service=\"{service}\",le=\"{le}\"}} {}\n",
                c * t
            ));
        }
        out.push_str(&format!(
            "http_request_duration_seconds_count{{service=\"{service}\"}} {}\n",
            100.0 * t
        ));
    }
    out.push_str("# TYPE nginx_ingress_controller_requests counter\n");
    for (ingress, ok, bad) in [("good-canary", 100.0, 0.05), ("bad-canary", 90.0, 10.0)] {
        out.push_str(&format!(
            "nginx_ingress_controller_requests{{ingress=\"{ingress}\",namespace=\"demo\",status=\"200\"}} {}\n",
            ok * t
        ));
        out.push_str(&format!(
            "nginx_ingress_controller_requests{{ingress=\"{ingress}\",namespace=\"demo\",status=\"502\"}} {}\n",
            bad * t
        ));
    }
    out.push_str("# TYPE nginx_ingress_controller_request_duration_seconds histogram\n");
    for (ingress, counts) in [
        ("good-canary", [100.0, 100.0, 100.0, 100.0]),
        ("bad-canary", [10.0, 20.0, 90.0, 100.0]),
    ] {
        for (le, c) in ["0.1", "0.5", "1", "+Inf"].iter().zip(counts) {
            out.push_str(&format!(
                "nginx_ingress_controller_request_duration_seconds_bucket{{ingress=\"{ingress}\",namespace=\"demo\",le=\"{le}\"}} {}\n",
                c * t
            ));
        }
    }
    out.push_str("demo_alert_level{service=\"good\"} 0\ndemo_alert_level{service=\"bad\"} 1\n");
    out
}

const RULES: &str = "groups:\n- name: demo\n  rules:\n  - alert: DemoHigh\n    expr: demo_alert_level > 0.5\n    labels: {severity: critical}\n";

struct TemplateCase {
    file: &'static str,
    pass: Vec<String>,
    fail: Vec<String>,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_templates_pass_and_fail() {
    let target = MetricsTarget::start().await;
    target.set_generator(exposition);
    let prom = Prometheus::start_with_rules(&[&target], Some(RULES)).await;
    // Enough samples for 10 s rate windows, and the alert evaluated.
    prom.wait_for(
        "count_over_time(http_requests_total{service=\"good\",code=\"200\"}[10s])",
        Duration::from_secs(60),
        |r| {
            r[0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|n| n >= 5.0)
        },
    )
    .await;
    prom.wait_for_samples("ALERTS{alertstate=\"firing\"}").await;
    let address = format!("prometheus-address={}", prom.url);
    let with = |extra: &[&str]| {
        let mut list = args(extra);
        list.push(address.clone());
        list
    };
    let cases = vec![
        TemplateCase {
            file: "http-success-rate.yaml",
            pass: with(&["selector=service=\"good\"", "window=10s"]),
            fail: with(&["selector=service=\"bad\"", "window=10s"]),
        },
        TemplateCase {
            file: "http-latency-p99.yaml",
            pass: with(&["selector=service=\"good\"", "window=10s"]),
            fail: with(&["selector=service=\"bad\"", "window=10s"]),
        },
        TemplateCase {
            file: "nginx-success-rate.yaml",
            pass: with(&["ingress=good-canary", "namespace=demo", "window=10s"]),
            fail: with(&["ingress=bad-canary", "namespace=demo", "window=10s"]),
        },
        TemplateCase {
            file: "nginx-latency-p99.yaml",
            pass: with(&["ingress=good-canary", "namespace=demo", "window=10s"]),
            fail: with(&["ingress=bad-canary", "namespace=demo", "window=10s"]),
        },
        TemplateCase {
            file: "error-budget-burn-rate.yaml",
            pass: with(&[
                "selector=service=\"good\"",
                "long-window=10s",
                "short-window=5s",
            ]),
            fail: with(&[
                "selector=service=\"bad\"",
                "long-window=10s",
                "short-window=5s",
            ]),
        },
        TemplateCase {
            file: "no-firing-alerts.yaml",
            pass: with(&["alert-selector=service=\"good\""]),
            fail: with(&["alert-selector=service=\"bad\""]),
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let file = template(case.file);
        let (code, out) = analyze_once(&file, &case.pass).await;
        if code != 0 || !out.contains("Successful") {
            failures.push(format!("{} should pass (exit {code}):\n{out}", case.file));
        }
        let (code, out) = analyze_once(&file, &case.fail).await;
        if code != 1 || !out.contains("Run Failed: Metric") {
            failures.push(format!("{} should fail (exit {code}):\n{out}", case.file));
        }
    }
    println!(
        "prometheus templates: {} of {} checks passed",
        cases.len() * 2 - failures.len(),
        cases.len() * 2
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_health_check_template() {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/up",
            get(|| async { axum::Json(serde_json::json!({"status": "UP"})) }),
        )
        .route(
            "/down",
            get(|| async { axum::Json(serde_json::json!({"status": "DOWN"})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let file = template("web-health-check.yaml");
    let (code, out) = analyze_once(&file, &[format!("url={url}/up")]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Successful   \"UP\""), "{out}");
    let (code, out) = analyze_once(&file, &[format!("url={url}/down")]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Failed       \"DOWN\""), "{out}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_success_rate_template() {
    let good = MetricsTarget::start().await;
    good.set_generator(|t| {
        format!(
            "http_requests_total{{code=\"200\"}} {}\nhttp_requests_total{{code=\"500\"}} 0\n",
            100.0 * t
        )
    });
    let bad = MetricsTarget::start().await;
    bad.set_generator(|t| {
        format!(
            "http_requests_total{{code=\"200\"}} {}\nhttp_requests_total{{code=\"500\"}} {}\n",
            50.0 * t,
            50.0 * t
        )
    });
    let file = template("scrape-success-rate.yaml");
    let (code, out) = analyze_once(
        &file,
        &[format!("targets={}", good.url()), "window=1s".into()],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Successful   1"), "{out}");
    // Two targets, one of them bad: the ratio over both is 0.75.
    let both = format!("targets={},{}", good.url(), bad.url());
    let (code, out) = analyze_once(&file, &[both, "window=1s".into()]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Run Failed: Metric \"scrape-success-rate\""),
        "{out}"
    );
    // Nothing to scrape is a usage-free Error.
    let (code, out) = analyze_once(&file, &[]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no scrape targets"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_documented_and_name_their_required_args() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("analysis-templates");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            text.starts_with("# "),
            "{name}: starts with its documentation"
        );
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(doc["kind"], "AnalysisTemplate", "{name}");
        assert_eq!(
            format!("{}.yaml", doc["metadata"]["name"].as_str().unwrap()),
            name,
            "file named after the template"
        );
        let required: Vec<&str> = doc["spec"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a.get("value").is_none() && a.get("valueFrom").is_none())
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        let (code, out) = analyze_once(path.to_str().unwrap(), &[]).await;
        match required.first() {
            Some(first) => {
                assert_eq!(code, 64, "{name}: {out}");
                assert_eq!(
                    out,
                    format!("error: args.{first} was not resolved\n"),
                    "{name}"
                );
            }
            None => assert_ne!(code, 64, "{name}: {out}"),
        }
        checked += 1;
    }
    assert_eq!(
        checked, 14,
        "every template checked (8 of the analysis engine, 3 judge, 3 SaaS providers)"
    );
}

/// A usage error of `davy analyze` (an unknown flag, a missing `-f`) exits 64, not clap's 2.
#[test]
fn analyze_usage_errors_exit_64() {
    for args in [vec!["analyze", "--no-such-flag"], vec!["analyze", "--once"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_davy"))
            .args(&args)
            .output()
            .expect("run davy");
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.stderr.is_empty(),
            "{args:?}: the usage error is explained"
        );
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["analyze", "--help"])
        .output()
        .expect("run davy");
    assert_eq!(help.status.code(), Some(0), "help is not an error");
}
