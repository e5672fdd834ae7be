//! The demo app: answers by image tag, exact counts in its Prometheus exposition.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use davy::sandbox::demo_app::{DemoApp, DemoAppOptions};
use prometheus_parse::{Scrape, Value};

use super::http;

async fn scrape(addr: SocketAddr) -> Scrape {
    let text = http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body");
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("exposition parses")
}

fn counter(scrape: &Scrape, code: &str, version: &str) -> Option<f64> {
    scrape.samples.iter().find_map(|s| {
        let matches = s.metric == "http_requests_total"
            && s.labels.get("code") == Some(code)
            && s.labels.get("version") == Some(version);
        match (&s.value, matches) {
            (Value::Counter(v), true) => Some(*v),
            _ => None,
        }
    })
}

fn histogram(scrape: &Scrape, version: &str) -> Vec<(f64, f64)> {
    scrape
        .samples
        .iter()
        .find_map(|s| match &s.value {
            Value::Histogram(h)
                if s.metric == "http_request_duration_seconds"
                    && s.labels.get("version") == Some(version) =>
            {
                Some(h.iter().map(|b| (b.less_than, b.count)).collect())
            }
            _ => None,
        })
        .unwrap_or_default()
}

fn untyped(scrape: &Scrape, metric: &str) -> Option<f64> {
    scrape.samples.iter().find_map(|s| match &s.value {
        Value::Untyped(v) if s.metric == metric => Some(*v),
        _ => None,
    })
}

async fn get_codes(addr: SocketAddr, n: usize) -> BTreeMap<u16, u64> {
    let client = http();
    let mut codes = BTreeMap::new();
    for _ in 0..n {
        let answer = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("answer");
        *codes.entry(answer.status().as_u16()).or_insert(0) += 1;
    }
    codes
}

#[tokio::test]
async fn bad_demo_app_fails_exactly_three_in_ten_and_counts_them() {
    let app = DemoApp::start("argoproj/rollouts-demo:bad-red")
        .await
        .expect("start");
    assert!(app.addr().ip().is_loopback());
    // 25 requests: sequence numbers 0-2, 10-12 and 20-22 fail.
    let codes = get_codes(app.addr(), 25).await;
    assert_eq!(codes, BTreeMap::from([(200, 16), (500, 9)]));

    let body: serde_json::Value = http()
        .get(format!("http://{}/", app.addr()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    // The 26th request (sequence 25) succeeds.
    assert_eq!(body["version"], "bad-red");
    assert_eq!(body["color"], "red");
    assert_eq!(body["status"], 200);

    let s = scrape(app.addr()).await;
    assert_eq!(counter(&s, "200", "bad-red"), Some(17.0));
    assert_eq!(counter(&s, "500", "bad-red"), Some(9.0));
    let h = histogram(&s, "bad-red");
    assert_eq!(h.len(), 12, "11 buckets and +Inf: {h:?}");
    assert_eq!(h.last().map(|b| b.1), Some(26.0));
    assert!(h.last().is_some_and(|b| b.0.is_infinite()));
    assert_eq!(
        untyped(&s, "http_request_duration_seconds_count"),
        Some(26.0)
    );
    assert_eq!(app.answered(), BTreeMap::from([(200, 17), (500, 9)]));
    app.shutdown().await;
}

#[tokio::test]
async fn healthy_demo_app_answers_ok_and_names_its_version() {
    let app = DemoApp::start("argoproj/rollouts-demo:blue")
        .await
        .expect("start");
    let answer = http()
        .get(format!("http://{}/", app.addr()))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        answer
            .headers()
            .get("x-davy-version")
            .and_then(|v| v.to_str().ok()),
        Some("blue")
    );
    let codes = get_codes(app.addr(), 9).await;
    assert_eq!(codes, BTreeMap::from([(200, 9)]));
    let s = scrape(app.addr()).await;
    assert_eq!(counter(&s, "200", "blue"), Some(10.0));
    assert_eq!(counter(&s, "500", "blue"), None);
    let addr = app.addr();
    app.shutdown().await;
    assert!(
        http().get(format!("http://{addr}/")).send().await.is_err(),
        "a stopped app refuses connections"
    );
}

#[tokio::test]
async fn slow_demo_app_answers_after_its_latency() {
    let options = DemoAppOptions {
        slow_latency: Duration::from_millis(60),
    };
    let app = DemoApp::start_with("demo:slow-yellow", &options)
        .await
        .expect("start");
    assert_eq!(get_codes(app.addr(), 4).await, BTreeMap::from([(200, 4)]));
    let s = scrape(app.addr()).await;
    let h = histogram(&s, "slow-yellow");
    // Every answer waited at least 60 ms, so none falls in the buckets up to 50 ms.
    let at_most = |le: f64| h.iter().find(|b| b.0 == le).map(|b| b.1);
    assert_eq!(at_most(0.05), Some(0.0));
    assert_eq!(at_most(f64::INFINITY), Some(4.0));
    assert_eq!(counter(&s, "200", "slow-yellow"), Some(4.0));
}

#[tokio::test]
async fn dropping_the_handle_stops_the_app() {
    let app = DemoApp::start("demo:green").await.expect("start");
    let addr = app.addr();
    assert_eq!(get_codes(addr, 1).await, BTreeMap::from([(200, 1)]));
    drop(app);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Dropping only signals the server; poll until it has closed its listener.
    loop {
        let fresh = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        if fresh.get(format!("http://{addr}/")).send().await.is_err() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "app still answers");
        tokio::task::yield_now().await;
    }
}
