//! Sandbox workload tests: the demo app's answers and metrics, ingress-nginx canary routing, the
//! load loop against real demo apps, and the workload simulator on the sandbox API server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use davy::sandbox::demo_app::{DemoApp, DemoAppOptions};
use davy::sandbox::traffic::{
    Backend, CanaryRules, DEFAULT_ANNOTATION_PREFIX, LoadConfig, Split, TaggedRequests,
    choose_backend, run_load,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use prometheus_parse::{Scrape, Value};
use tokio_util::sync::CancellationToken;

const P: &str = DEFAULT_ANNOTATION_PREFIX;

fn http() -> reqwest::Client {
    // Loopback only: never route test traffic through a proxy from the environment.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

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

// ---------------------------------------------------------------------------------------------
// ingress-nginx canary routing table

struct Case {
    name: &'static str,
    annotations: &'static [(&'static str, &'static str)],
    headers: &'static [(&'static str, &'static str)],
    draw: f64,
    expected: Option<Backend>,
}

const CANARY: Option<Backend> = Some(Backend::Canary);
const STABLE: Option<Backend> = Some(Backend::Stable);

fn annotations(pairs: &[(&str, &str)], prefix: &str) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| {
            let key = if k.contains('/') {
                (*k).to_string()
            } else {
                format!("{prefix}/{k}")
            };
            (key, (*v).to_string())
        })
        .collect()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    map
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Whether the Ingress is a canary at all (`expected: None` = no rules parsed).
    Case { name: "no canary annotation", annotations: &[("canary-weight", "100")], headers: &[], draw: 0.0, expected: None },
    Case { name: "canary false", annotations: &[("canary", "false"), ("canary-weight", "100")], headers: &[], draw: 0.0, expected: None },
    Case { name: "canary malformed", annotations: &[("canary", "yes"), ("canary-weight", "100")], headers: &[], draw: 0.0, expected: None },
    Case { name: "canary True (Go ParseBool)", annotations: &[("canary", "True"), ("canary-weight", "100")], headers: &[], draw: 0.0, expected: CANARY },
    Case { name: "canary 1 (Go ParseBool)", annotations: &[("canary", "1"), ("canary-weight", "100")], headers: &[], draw: 0.0, expected: CANARY },
    Case { name: "other prefix ignored", annotations: &[("other.io/canary", "true"), ("other.io/canary-weight", "100")], headers: &[], draw: 0.0, expected: None },
    // Weight.
    Case { name: "weight absent is 0", annotations: &[("canary", "true")], headers: &[], draw: 0.0, expected: STABLE },
    Case { name: "weight 0 lowest draw", annotations: &[("canary", "true"), ("canary-weight", "0")], headers: &[], draw: 0.0, expected: STABLE },
    Case { name: "weight 100 highest draw", annotations: &[("canary", "true"), ("canary-weight", "100")], headers: &[], draw: 0.999_999, expected: CANARY },
    Case { name: "weight 20 roll 20", annotations: &[("canary", "true"), ("canary-weight", "20")], headers: &[], draw: 0.195, expected: CANARY },
    Case { name: "weight 20 roll 21", annotations: &[("canary", "true"), ("canary-weight", "20")], headers: &[], draw: 0.2, expected: STABLE },
    Case { name: "weight 1 roll 1", annotations: &[("canary", "true"), ("canary-weight", "1")], headers: &[], draw: 0.0, expected: CANARY },
    Case { name: "weight malformed is 0", annotations: &[("canary", "true"), ("canary-weight", "abc")], headers: &[], draw: 0.0, expected: STABLE },
    Case { name: "negative weight", annotations: &[("canary", "true"), ("canary-weight", "-5")], headers: &[], draw: 0.0, expected: STABLE },
    Case { name: "weight above total", annotations: &[("canary", "true"), ("canary-weight", "150")], headers: &[], draw: 0.999, expected: CANARY },
    Case { name: "total 1000 roll 200", annotations: &[("canary", "true"), ("canary-weight", "200"), ("canary-weight-total", "1000")], headers: &[], draw: 0.1995, expected: CANARY },
    Case { name: "total 1000 roll 201", annotations: &[("canary", "true"), ("canary-weight", "200"), ("canary-weight-total", "1000")], headers: &[], draw: 0.2, expected: STABLE },
    Case { name: "total below 100 ignored", annotations: &[("canary", "true"), ("canary-weight", "50"), ("canary-weight-total", "50")], headers: &[], draw: 0.5, expected: STABLE },
    Case { name: "total malformed is 100", annotations: &[("canary", "true"), ("canary-weight", "50"), ("canary-weight-total", "x")], headers: &[], draw: 0.495, expected: CANARY },
    // Header, no value.
    Case { name: "header always", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary")], headers: &[("x-canary", "always")], draw: 0.999, expected: CANARY },
    Case { name: "header never beats weight 100", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-weight", "100")], headers: &[("X-Canary", "never")], draw: 0.0, expected: STABLE },
    Case { name: "header other value falls to weight", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-weight", "100")], headers: &[("X-Canary", "yes")], draw: 0.5, expected: CANARY },
    Case { name: "header values are case-sensitive", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary")], headers: &[("X-Canary", "Always")], draw: 0.5, expected: STABLE },
    Case { name: "header absent falls to weight", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-weight", "100")], headers: &[("X-Other", "never")], draw: 0.5, expected: CANARY },
    Case { name: "empty header annotation", annotations: &[("canary", "true"), ("canary-by-header", "")], headers: &[("X-Canary", "always")], draw: 0.5, expected: STABLE },
    Case { name: "first header value counts", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary")], headers: &[("X-Canary", "always"), ("X-Canary", "never")], draw: 0.5, expected: CANARY },
    // Header with a value.
    Case { name: "header value matches", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2")], headers: &[("X-Version", "v2")], draw: 0.999, expected: CANARY },
    Case { name: "header value mismatch falls to weight", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2"), ("canary-weight", "30")], headers: &[("X-Version", "v1")], draw: 0.1, expected: CANARY },
    Case { name: "header value mismatch falls to weight (stable)", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2"), ("canary-weight", "30")], headers: &[("X-Version", "v1")], draw: 0.9, expected: STABLE },
    Case { name: "with a value, always is just a value", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2")], headers: &[("X-Version", "always")], draw: 0.5, expected: STABLE },
    Case { name: "with a value, never does not force stable", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2"), ("canary-weight", "100")], headers: &[("X-Version", "never")], draw: 0.5, expected: CANARY },
    Case { name: "header value without header annotation", annotations: &[("canary", "true"), ("canary-by-header-value", "v2")], headers: &[("X-Version", "v2")], draw: 0.5, expected: STABLE },
    // Header pattern.
    Case { name: "pattern matches", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "^v[23]$")], headers: &[("X-Version", "v3")], draw: 0.999, expected: CANARY },
    Case { name: "pattern is unanchored", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "beta")], headers: &[("X-Version", "v2-beta-1")], draw: 0.999, expected: CANARY },
    Case { name: "pattern mismatch falls to weight", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "^v[23]$"), ("canary-weight", "100")], headers: &[("X-Version", "v4")], draw: 0.5, expected: CANARY },
    Case { name: "pattern mismatch, never is not special", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "^v[23]$"), ("canary-weight", "100")], headers: &[("X-Version", "never")], draw: 0.5, expected: CANARY },
    Case { name: "value wins over pattern", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "a"), ("canary-by-header-pattern", ".*")], headers: &[("X-Version", "b")], draw: 0.5, expected: STABLE },
    Case { name: "broken pattern with header is stable", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "("), ("canary-weight", "100")], headers: &[("X-Version", "v2")], draw: 0.5, expected: STABLE },
    Case { name: "broken pattern without header", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "("), ("canary-weight", "100")], headers: &[], draw: 0.5, expected: CANARY },
    // Cookie.
    Case { name: "cookie always", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "canary=always")], draw: 0.999, expected: CANARY },
    Case { name: "cookie never beats weight 100", annotations: &[("canary", "true"), ("canary-by-cookie", "canary"), ("canary-weight", "100")], headers: &[("cookie", "canary=never")], draw: 0.0, expected: STABLE },
    Case { name: "cookie other value falls to weight", annotations: &[("canary", "true"), ("canary-by-cookie", "canary"), ("canary-weight", "100")], headers: &[("cookie", "canary=1")], draw: 0.0, expected: CANARY },
    Case { name: "cookie among others", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "session=abc; canary=always; theme=dark")], draw: 0.5, expected: CANARY },
    Case { name: "cookie in a second Cookie header", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "a=b"), ("cookie", "canary=always")], draw: 0.5, expected: CANARY },
    Case { name: "cookie name matched like nginx (case-insensitive)", annotations: &[("canary", "true"), ("canary-by-cookie", "Canary")], headers: &[("cookie", "canary=always")], draw: 0.5, expected: CANARY },
    Case { name: "cookie name is not a prefix match", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "canary_x=always")], draw: 0.5, expected: STABLE },
    Case { name: "cookie value is case-sensitive", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "canary=ALWAYS")], draw: 0.5, expected: STABLE },
    // Precedence: header, then cookie, then weight.
    Case { name: "header never beats cookie always", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-by-cookie", "canary")], headers: &[("X-Canary", "never"), ("cookie", "canary=always")], draw: 0.5, expected: STABLE },
    Case { name: "header always beats cookie never", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-by-cookie", "canary")], headers: &[("X-Canary", "always"), ("cookie", "canary=never")], draw: 0.5, expected: CANARY },
    Case { name: "undecided header then cookie always", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-by-cookie", "canary")], headers: &[("X-Canary", "maybe"), ("cookie", "canary=always")], draw: 0.5, expected: CANARY },
    Case { name: "header value mismatch then cookie never", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2"), ("canary-by-cookie", "canary"), ("canary-weight", "100")], headers: &[("X-Version", "v1"), ("cookie", "canary=never")], draw: 0.5, expected: STABLE },
    Case { name: "Argo prefixes additionalIngressAnnotations", annotations: &[("nginx.ingress.kubernetes.io/canary", "true"), ("nginx.ingress.kubernetes.io/canary-by-header", "X-Canary"), ("nginx.ingress.kubernetes.io/canary-weight", "0")], headers: &[("X-Canary", "always")], draw: 0.5, expected: CANARY },
];

#[test]
fn canary_routing_table() {
    let mut failures = Vec::new();
    for case in CASES {
        let rules = CanaryRules::from_annotations(&annotations(case.annotations, P), P);
        let got = rules
            .as_ref()
            .map(|r| choose_backend(Some(r), &headers(case.headers), case.draw));
        if got != case.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                case.name, case.expected, got
            ));
        }
    }
    println!(
        "canary routing cases: {} passed",
        CASES.len() - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn custom_annotation_prefix() {
    let custom = "custom.ingress.io";
    let a = annotations(&[("canary", "true"), ("canary-weight", "100")], custom);
    assert!(CanaryRules::from_annotations(&a, P).is_none());
    let rules = CanaryRules::from_annotations(&a, custom).expect("canary under custom prefix");
    assert_eq!(rules.weight, 100);
    assert_eq!(
        choose_backend(Some(&rules), &HeaderMap::new(), 0.5),
        Backend::Canary
    );
}

#[test]
fn no_canary_ingress_routes_everything_to_stable() {
    let h = headers(&[("X-Canary", "always"), ("cookie", "canary=always")]);
    assert_eq!(choose_backend(None, &h, 0.0), Backend::Stable);
}

#[test]
fn weight_share_over_evenly_spread_draws_is_exact() {
    // 1000 evenly spread draws land exactly `weight` per mille on canary.
    for (weight, total, expected) in [(20, 100, 200), (5, 100, 50), (250, 1000, 250), (0, 100, 0)] {
        let a = annotations(
            &[
                ("canary", "true"),
                ("canary-weight", &weight.to_string()),
                ("canary-weight-total", &total.to_string()),
            ],
            P,
        );
        let rules = CanaryRules::from_annotations(&a, P).expect("rules");
        let canary = (0..1000)
            .filter(|i| {
                choose_backend(Some(&rules), &HeaderMap::new(), f64::from(*i) / 1000.0)
                    == Backend::Canary
            })
            .count();
        assert_eq!(canary, expected, "weight {weight}/{total}");
    }
}

// ---------------------------------------------------------------------------------------------
// Load loop against real demo apps

fn fast_load(requests: u64) -> LoadConfig {
    LoadConfig {
        rate_per_second: 2000.0,
        max_requests: Some(requests),
        max_duration: None,
        ..LoadConfig::default()
    }
}

#[tokio::test]
async fn load_follows_weight_and_counts_answers_exactly() {
    let stable = DemoApp::start("demo:blue").await.expect("stable");
    let canary = DemoApp::start("demo:bad-red").await.expect("canary");
    let split = Split {
        stable: vec![stable.addr()],
        canary: vec![canary.addr()],
        rules: Some(CanaryRules::weighted(100)),
    };
    let report = run_load(
        &fast_load(50),
        move || split.clone(),
        CancellationToken::new(),
    )
    .await
    .expect("load");
    assert_eq!(report.sent, 50);
    assert_eq!(report.routed_to(Backend::Canary), 50);
    // 50 requests to a bad app: sequence numbers 0-2, 10-12, … 40-42 fail.
    assert_eq!(report.count("bad-red", 500), 15);
    assert_eq!(report.count("bad-red", 200), 35);
    assert_eq!(report.count_version("blue"), 0);
    assert_eq!(report.transport_errors, 0);
    assert_eq!(canary.answered(), BTreeMap::from([(200, 35), (500, 15)]));
}

#[tokio::test]
async fn tagged_requests_reach_canary_through_the_header_rule() {
    let stable = DemoApp::start("demo:blue").await.expect("stable");
    let canary = DemoApp::start("demo:yellow").await.expect("canary");
    let a = annotations(
        &[
            ("canary", "true"),
            ("canary-by-header", "X-Canary"),
            ("canary-weight", "0"),
        ],
        P,
    );
    let (tx, rx) = tokio::sync::watch::channel(Split {
        stable: vec![stable.addr()],
        canary: vec![canary.addr()],
        rules: CanaryRules::from_annotations(&a, P),
    });
    let mut config = fast_load(200);
    config.tagged = Some(TaggedRequests {
        fraction: 0.25,
        headers: headers(&[("X-Canary", "always")]),
    });
    let report = run_load(&config, rx, CancellationToken::new())
        .await
        .expect("load");
    drop(tx);
    let to_canary = report.routed_to(Backend::Canary);
    // Only tagged requests reach canary at weight 0: about a quarter of 200.
    assert!((25..=75).contains(&to_canary), "{to_canary}");
    assert_eq!(report.count("yellow", 200), to_canary);
    assert_eq!(report.count("blue", 200), 200 - to_canary);
    assert_eq!(canary.answered(), BTreeMap::from([(200, to_canary)]));
}

#[tokio::test]
async fn split_changes_apply_to_the_next_request() {
    let stable = DemoApp::start("demo:blue").await.expect("stable");
    let canary = DemoApp::start("demo:green").await.expect("canary");
    let (s, c) = (stable.addr(), canary.addr());
    let mut calls = 0;
    let source = move || {
        calls += 1;
        Split {
            stable: vec![s],
            canary: vec![c],
            rules: Some(CanaryRules::weighted(if calls <= 12 { 0 } else { 100 })),
        }
    };
    let report = run_load(&fast_load(20), source, CancellationToken::new())
        .await
        .expect("load");
    assert_eq!(report.count("blue", 200), 12);
    assert_eq!(report.count("green", 200), 8);
}

#[tokio::test]
async fn round_robin_over_pods_and_unroutable_without_endpoints() {
    let a = DemoApp::start("demo:blue").await.expect("a");
    let b = DemoApp::start("demo:blue").await.expect("b");
    let split = Split {
        stable: vec![a.addr(), b.addr(), "10.0.0.1:80".parse().expect("addr")],
        canary: vec![],
        rules: Some(CanaryRules::weighted(0)),
    };
    let report = run_load(
        &fast_load(10),
        move || split.clone(),
        CancellationToken::new(),
    )
    .await
    .expect("load");
    // The non-loopback endpoint is never contacted.
    assert_eq!(a.answered(), BTreeMap::from([(200, 5)]));
    assert_eq!(b.answered(), BTreeMap::from([(200, 5)]));
    assert_eq!(report.count("blue", 200), 10);

    let empty = Split {
        stable: vec![],
        canary: vec![],
        rules: None,
    };
    let report = run_load(
        &fast_load(7),
        move || empty.clone(),
        CancellationToken::new(),
    )
    .await
    .expect("load");
    assert_eq!(report.unroutable, 7);
    assert_eq!(report.sent, 7);
}

#[tokio::test]
async fn cancellation_stops_an_open_ended_load() {
    let app = DemoApp::start("demo:blue").await.expect("app");
    let split = Split {
        stable: vec![app.addr()],
        canary: vec![],
        rules: None,
    };
    let config = LoadConfig {
        rate_per_second: 200.0,
        max_requests: None,
        max_duration: Some(Duration::from_secs(600)),
        ..LoadConfig::default()
    };
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move { run_load(&config, move || split.clone(), cancel).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.answered().get(&200).copied().unwrap_or(0) < 5 {
        assert!(tokio::time::Instant::now() < deadline, "no load arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    let report = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("stops on cancellation")
        .expect("join")
        .expect("load");
    assert!(report.sent >= 5, "{report:?}");
    assert_eq!(
        report.count("blue", 200) + report.abandoned + report.transport_errors,
        report.sent
    );
}

#[tokio::test]
async fn invalid_load_configs_are_refused() {
    let unbounded = LoadConfig {
        max_requests: None,
        max_duration: None,
        ..LoadConfig::default()
    };
    assert!(
        run_load(&unbounded, Split::default, CancellationToken::new())
            .await
            .is_err()
    );
}
