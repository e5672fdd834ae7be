//! The load loop against real demo apps: routing, exact answer counts, split changes, cancellation.

use std::collections::BTreeMap;
use std::time::Duration;

use davy::sandbox::demo_app::DemoApp;
use davy::sandbox::load_generator::{
    Backend, CanaryRules, DEFAULT_ANNOTATION_PREFIX, LoadConfig, Split, TaggedRequests, run_load,
};
use tokio_util::sync::CancellationToken;

use super::fast_load;
use super::routing::{annotations, headers};

const P: &str = DEFAULT_ANNOTATION_PREFIX;

#[tokio::test]
async fn load_follows_weight_and_counts_answers_exactly() {
    let stable = DemoApp::start("demo:blue").await.expect("stable");
    let canary = DemoApp::start("demo:bad-red").await.expect("canary");
    let split = Split {
        stable: vec![stable.addr()],
        canary: vec![canary.addr()],
        rules: Some(CanaryRules::weighted(100)),
        weighted: Vec::new(),
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
        weighted: Vec::new(),
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
            weighted: Vec::new(),
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
        weighted: Vec::new(),
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
        weighted: Vec::new(),
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
        weighted: Vec::new(),
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
