//! The `davy/alertmanager` metric plugin against a real Alertmanager: Successful while no
//! matching alert is active, Failed while one fires, Error when Alertmanager is unreachable.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use davy::analysis::providers::{MeasureContext, Registry};
use davy::api::{AnalysisPhase, Measurement, Metric};
use serde_json::json;

use common::alertmanager::{Alertmanager, binary_or_skip, free_port};

fn metric(address: &str) -> Metric {
    serde_json::from_value(json!({
        "name": "no-alerts",
        "provider": {"plugin": {"davy/alertmanager": {
            "address": address,
            "matchers": "alertname=\"CanaryErrorRate\",rollout=~\"demo|web\""
        }}}
    }))
    .unwrap()
}

async fn measure(metric: &Metric) -> Measurement {
    let ctx = MeasureContext {
        run_name: "run".into(),
        namespace: "default".into(),
        run_uid: "uid".into(),
        result: None,
        now: k8s_openapi::jiff::Timestamp::now(),
        run_started_at: None,
    };
    // Registered by default: no with_plugin needed.
    let provider = Registry::new().provider_for(metric).expect("provider");
    provider.run(&ctx, metric).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_while_a_matching_alert_fires_and_succeeds_otherwise() {
    let Some(binary) = binary_or_skip("alerts_provider") else {
        return;
    };
    let am = Alertmanager::start(&binary, None).await;
    let metric = metric(&am.url);

    let quiet = measure(&metric).await;
    assert_eq!(
        (quiet.phase.clone(), quiet.value.as_str()),
        (AnalysisPhase::Successful, "0"),
        "{quiet:?}"
    );

    // Alerts that do not match: another name, another rollout (regex is anchored: "demo2").
    am.fire(json!({"alertname": "Other", "rollout": "demo"}))
        .await;
    am.fire(json!({"alertname": "CanaryErrorRate", "rollout": "demo2"}))
        .await;
    let unrelated = measure(&metric).await;
    assert_eq!(
        (unrelated.phase.clone(), unrelated.value.as_str()),
        (AnalysisPhase::Successful, "0"),
        "{unrelated:?}; alerts {}",
        am.alerts().await
    );

    am.fire(json!({"alertname": "CanaryErrorRate", "rollout": "demo", "severity": "critical"}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let m = measure(&metric).await;
        if m.phase == AnalysisPhase::Failed {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "never Failed: {m:?}; {}",
            am.alerts().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed.value, "1");
    assert!(
        failed.message.starts_with("firing: CanaryErrorRate ("),
        "{}",
        failed.message
    );

    // Resolving it (an end time in the past) makes the metric pass again.
    am.post(json!([{
        "labels": {"alertname": "CanaryErrorRate", "rollout": "demo", "severity": "critical"},
        "endsAt": (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339()
    }]))
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = measure(&metric).await;
        if m.phase == AnalysisPhase::Successful {
            assert_eq!(m.value, "0");
            break;
        }
        assert!(Instant::now() < deadline, "never Successful again: {m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_unreachable_alertmanager_is_an_error() {
    let metric = metric(&format!("http://127.0.0.1:{}", free_port()));
    let m = measure(&metric).await;
    assert_eq!(m.phase, AnalysisPhase::Error, "{m:?}");
    assert!(
        m.message.starts_with("alertmanager request failed"),
        "{}",
        m.message
    );
}
