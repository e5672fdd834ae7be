//! The web provider against a local HTTP server: methods, bodies, headers, JSONPath, text
//! answers, non-2xx answers, timeouts and OAuth2.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use davy::analysis::providers::Registry;
use davy::analysis::runner::{Runner, StaticSecrets};
use davy::api::{AnalysisPhase, AnalysisRun, Measurement};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

async fn echo(
    method: axum::http::Method,
    headers: HeaderMap,
    body: String,
) -> axum::Json<serde_json::Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    axum::Json(json!({
        "method": method.as_str(),
        "contentType": header("content-type"),
        "token": header("x-token"),
        "body": body,
    }))
}

async fn server() -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .route(
            "/json",
            get(|| async {
                axum::Json(json!({"data": {"ok": true, "success-rate": 0.99,
                    "items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]}}))
            }),
        )
        .route("/text", get(|| async { "I am OK" }))
        .route(
            "/unavailable",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route("/echo", post(echo).put(echo))
        .route(
            "/token",
            post(|body: String| async move {
                if body.contains("client_id=id") || body.contains("grant_type=client_credentials") {
                    (StatusCode::OK, r#"{"access_token":"tok"}"#.to_string())
                } else {
                    (StatusCode::BAD_REQUEST, String::new())
                }
            }),
        )
        .route(
            "/secure",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer tok") => (StatusCode::OK, r#"{"ok":true}"#.to_string()),
                    _ => (StatusCode::UNAUTHORIZED, String::new()),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

/// One measurement of a web metric whose body (under `provider:`) is `web_yaml`.
async fn measure(conditions: &str, web_yaml: &str) -> Measurement {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata: {{name: t, namespace: default}}\nspec:\n  metrics:\n  - name: m\n{}\n    provider:\n      web:\n{}\n",
        conditions
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        web_yaml
            .lines()
            .map(|l| format!("        {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let run: AnalysisRun = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let runner = Runner::new(Registry::new(), Arc::new(StaticSecrets::default()));
    let step = runner.reconcile(&run, &Timestamp::now).await.unwrap();
    step.status.metric_results[0].measurements[0].clone()
}

struct Case {
    name: &'static str,
    conditions: &'static str,
    web: String,
    phase: AnalysisPhase,
    value: &'static str,
    message: String,
}

#[tokio::test]
async fn web_metric_cases() {
    let (url, task) = server().await;
    use AnalysisPhase::*;
    let cases = vec![
        Case {
            name: "boolean field",
            conditions: "successCondition: result == true",
            web: format!("url: {url}/json\njsonPath: '{{$.data.ok}}'"),
            phase: Successful,
            value: "true",
            message: String::new(),
        },
        Case {
            name: "dashed name without $",
            conditions: "successCondition: result >= 0.95",
            web: format!("url: {url}/json\njsonPath: '{{.data.success-rate}}'"),
            phase: Successful,
            value: "0.99",
            message: String::new(),
        },
        Case {
            name: "filter, number as float",
            conditions: "successCondition: result == 2.0",
            web: format!("url: {url}/json\njsonPath: '{{.data.items[?(@.name==\"b\")].v}}'"),
            phase: Successful,
            value: "2",
            message: String::new(),
        },
        Case {
            name: "first of several matches, a string",
            conditions: "successCondition: result == \"b\"",
            web: format!("url: {url}/json\njsonPath: '{{$.data.items[*].name}}'"),
            phase: Failed,
            value: "\"a\"",
            message: String::new(),
        },
        Case {
            name: "whole document by default",
            conditions: "successCondition: result.data.ok && result.data.items[1].v == 2",
            web: format!("url: {url}/json"),
            phase: Successful,
            value: r#"{"data":{"items":[{"name":"a","v":1},{"name":"b","v":2}],"ok":true,"success-rate":0.99}}"#,
            message: String::new(),
        },
        Case {
            name: "plain text",
            conditions: "successCondition: result == \"I am OK\"",
            web: format!("url: {url}/text"),
            phase: Successful,
            value: "I am OK",
            message: String::new(),
        },
        Case {
            name: "non-2xx",
            conditions: "successCondition: result == true",
            web: format!("url: {url}/unavailable"),
            phase: Error,
            value: "",
            message: "received non 2xx response code: 503".to_string(),
        },
        Case {
            name: "no match",
            conditions: "successCondition: result == true",
            web: format!("url: {url}/json\njsonPath: '{{$.data.missing}}'"),
            phase: Error,
            value: "",
            message: "result of web metric produced no value".to_string(),
        },
        Case {
            name: "POST jsonBody with a header",
            conditions: "successCondition: result.contentType == \"application/json\" && result.token == \"t1\" && result.body == \"{\\\"a\\\":1}\"",
            web: format!(
                "url: {url}/echo\nmethod: POST\nheaders: [{{key: X-Token, value: t1}}]\njsonBody: {{a: 1}}"
            ),
            phase: Successful,
            value: r#"{"body":"{\"a\":1}","contentType":"application/json","method":"POST","token":"t1"}"#,
            message: String::new(),
        },
        Case {
            name: "PUT text body",
            conditions: "successCondition: result == \"PUT hello\"",
            web: format!("url: {url}/echo\nmethod: PUT\nbody: hello\njsonPath: '{{$.method}}'"),
            phase: Failed,
            value: "\"PUT\"",
            message: String::new(),
        },
        Case {
            name: "slower than timeoutSeconds",
            conditions: "successCondition: result == \"late\"",
            web: format!("url: {url}/slow\ntimeoutSeconds: 1"),
            phase: Error,
            value: "",
            message: format!(
                "Get \"{url}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ),
        },
        Case {
            name: "oauth2 client credentials",
            conditions: "successCondition: result == true",
            web: format!(
                "url: {url}/secure\njsonPath: '{{$.ok}}'\nauthentication:\n  oauth2: {{tokenUrl: '{url}/token', clientId: id, clientSecret: s}}"
            ),
            phase: Successful,
            value: "true",
            message: String::new(),
        },
        Case {
            name: "body with GET is rejected",
            conditions: "successCondition: result == true",
            web: format!("url: {url}/json\nbody: x"),
            phase: Error,
            value: "",
            message: "a web metric body needs method POST or PUT".to_string(),
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let m = measure(case.conditions, &case.web).await;
        let got = (m.phase.clone(), m.value.as_str(), m.message.as_str());
        let want = (case.phase.clone(), case.value, case.message.as_str());
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?}", case.name));
        }
    }
    println!(
        "web cases: {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    task.abort();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
