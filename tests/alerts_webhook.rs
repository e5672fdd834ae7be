//! Alert-driven aborts end to end: a real Alertmanager (and, in one test, a real Prometheus
//! evaluating an alert rule over the sandbox demo app's metrics) delivers to the controller's
//! webhook receiver, which aborts exactly the Rollouts the alert is meant for; plus the
//! receiver's answers to bad requests.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::ops::Deref;

use davy::api::Rollout;
use davy::controller::ControllerConfig;
use davy::controller::alerts::{self, AlertWebhookConfig};
use davy::controller::metrics::Metrics;
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::{SimulatorConfig, pod_endpoint};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::alertmanager::{
    AlertingPrometheus, Alertmanager, binary_or_skip, free_port, sum_counter,
};
use support::{NS, controller_config, eventually, rollout, simulator_config};

const TOKEN: &str = "s3cret-token";

/// A sandbox with a controller serving metrics and the alert webhook receiver (derefs to the
/// sandbox).
struct World {
    running: support::World,
    webhook: SocketAddr,
    metrics: SocketAddr,
}

impl Deref for World {
    type Target = support::World;

    fn deref(&self) -> &support::World {
        &self.running
    }
}

impl World {
    async fn start(demo_apps: bool) -> World {
        let webhook: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let simulator = SimulatorConfig {
            demo_apps,
            ..simulator_config()
        };
        let controller = ControllerConfig {
            metrics_addr: Some(metrics),
            alert_webhook: Some(AlertWebhookConfig::new(webhook, TOKEN)),
            ..controller_config()
        };
        let world = World {
            running: support::World::start_with(simulator, controller).await,
            webhook,
            metrics,
        };
        eventually("the webhook receiver to listen", || async {
            reqwest::Client::new()
                .post(world.webhook_url())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        world
    }

    fn webhook_url(&self) -> String {
        format!("http://{}{}", self.webhook, alerts::receiver::PATH)
    }

    async fn stop(self) {
        self.running.stop().await;
    }

    async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Events `RolloutAbortedByAlert` on `name`: their messages.
    async fn alert_events(&self, name: &str) -> Vec<String> {
        self.events(name)
            .await
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("RolloutAbortedByAlert"))
            .filter_map(|e| e.message)
            .collect()
    }

    /// Creates a two-replica canary Rollout (50 %, then an indefinite pause) on `image`, waits
    /// until it is Healthy, updates it to `new_image` and waits until it pauses mid-update.
    async fn mid_update(&self, name: &str, annotation: Option<&str>, image: &str, new_image: &str) {
        let mut annotations = serde_json::Map::new();
        if let Some(matchers) = annotation {
            annotations.insert("davy.dev/abort-on-alert".into(), json!(matchers));
        }
        let rollout: Rollout = rollout(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "app", "image": image}]}},
                "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
            }
        }));
        self.create(&rollout).await;
        eventually(&format!("{name} Healthy"), || async {
            let status = self.status(name).await;
            if status["phase"] == "Healthy" && status["stableRS"].is_string() {
                Ok(())
            } else {
                Err(status.to_string())
            }
        })
        .await;
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": new_image}]}}}});
        self.patch(name, patch).await;
        eventually(&format!("{name} paused mid-update"), || async {
            let status = self.status(name).await;
            if status["phase"] == "Paused"
                && status["currentStepIndex"] == 1
                && status["stableRS"] != status["currentPodHash"]
            {
                Ok(())
            } else {
                Err(status.to_string())
            }
        })
        .await;
    }

    async fn wait_aborted(&self, name: &str) -> Value {
        eventually(&format!("{name} aborted"), || async {
            let status = self.status(name).await;
            if status["abort"] == true && status["phase"] == "Degraded" {
                Ok(status)
            } else {
                Err(status.to_string())
            }
        })
        .await
    }

    async fn post(&self, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, String) {
        let mut request = reqwest::Client::new()
            .post(self.webhook_url())
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("post");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

/// The fingerprint Alertmanager gave the alert whose labels include `labels`.
async fn fingerprint(am: &Alertmanager, alertname: &str) -> String {
    let alerts = am.alerts().await;
    alerts
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["labels"]["alertname"] == alertname)
        .and_then(|a| a["fingerprint"].as_str())
        .unwrap_or_else(|| panic!("no {alertname} in {alerts}"))
        .to_string()
}

fn abort_metric(text: &str, rollout: &str, alertname: &str) -> f64 {
    sum_counter(
        text,
        "davy_alert_aborts_total",
        &format!("alertname=\"{alertname}\",namespace=\"{NS}\",rollout=\"{rollout}\""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_alerts_abort_exactly_the_matching_rollouts() {
    let Some(binary) = binary_or_skip("alerts_webhook") else {
        return;
    };
    let world = World::start(false).await;
    world
        .mid_update(
            "web",
            Some(r#"alertname="HighErrorRate",service="web""#),
            "app:blue",
            "app:green",
        )
        .await;
    world.mid_update("api", None, "app:blue", "app:green").await;
    world
        .mid_update("shop", None, "app:blue", "app:green")
        .await;
    let am = Alertmanager::start(&binary, Some((&world.webhook_url(), TOKEN))).await;

    // 1. Matched by the annotation: only `web` is aborted, with the alert in its message.
    am.fire(json!({"alertname": "HighErrorRate", "service": "web", "severity": "critical"}))
        .await;
    let status = world.wait_aborted("web").await;
    let fp = fingerprint(&am, "HighErrorRate").await;
    let reason = format!("Aborted by alert HighErrorRate (fingerprint {fp})");
    assert_eq!(
        status["message"],
        format!("RolloutAborted: Rollout aborted update to revision 2: {reason}"),
        "{status}"
    );
    assert_eq!(world.alert_events("web").await, vec![reason.clone()]);
    // The abort is written under the webhook's own field manager, on the object and on its
    // status, so `managedFields` tells it from the controller's writes.
    let managed = world.rollout_json("web").await["metadata"]["managedFields"].clone();
    let by_alerts: Vec<&str> = managed
        .as_array()
        .expect("managedFields")
        .iter()
        .filter(|entry| entry["manager"] == "davy-alerts")
        .filter_map(|entry| entry["subresource"].as_str().or(Some("")))
        .collect();
    assert!(
        by_alerts.contains(&"") && by_alerts.contains(&"status"),
        "{managed}"
    );
    let text = world.metrics_text().await;
    assert_eq!(abort_metric(&text, "web", "HighErrorRate"), 1.0, "{text}");

    // 2. A resolved alert naming `api` (delivered with a firing one that matches nothing)
    //    does not abort it; a later alert naming `shop` by labels does. The receiver handles
    //    notifications in order, so once `shop` is aborted, the resolved one was handled.
    let now = chrono::Utc::now();
    am.post(json!([
        {"labels": {"alertname": "CanaryBad", "service": "nothing"}},
        {"labels": {"alertname": "CanaryBad", "rollout": "api", "namespace": NS},
         "startsAt": (now - chrono::Duration::milliseconds(900)).to_rfc3339(),
         "endsAt": (now - chrono::Duration::milliseconds(500)).to_rfc3339()}
    ]))
    .await;
    eventually("Alertmanager to deliver the CanaryBad group", || async {
        let sent = am
            .counter(
                "alertmanager_notifications_total",
                "integration=\"webhook\"",
            )
            .await;
        if sent >= 2.0 {
            Ok(())
        } else {
            Err(format!("{sent} sent"))
        }
    })
    .await;
    am.fire(json!({"alertname": "ShopDown", "rollout": "shop", "namespace": NS}))
        .await;
    world.wait_aborted("shop").await;
    let api = world.status("api").await;
    assert_eq!(api["abort"], Value::Null, "api: {api}");
    assert_eq!(api["phase"], "Paused", "api: {api}");
    assert!(world.alert_events("api").await.is_empty());
    let shop_fp = fingerprint(&am, "ShopDown").await;
    assert_eq!(
        world.alert_events("shop").await,
        vec![format!("Aborted by alert ShopDown (fingerprint {shop_fp})")]
    );

    // 3. The same notification delivered twice (an HA pair, a retry) is processed once.
    let payload = json!({
        "version": "4", "groupKey": "{}:{alertname=\"ApiDown\"}", "status": "firing",
        "receiver": "davy", "truncatedAlerts": 0,
        "groupLabels": {"alertname": "ApiDown"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": am.url,
        "alerts": [{"status": "firing",
                    "labels": {"alertname": "ApiDown", "rollout": "api", "namespace": NS},
                    "annotations": {}, "startsAt": chrono::Utc::now().to_rfc3339(),
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                    "fingerprint": "00000000000000aa"}]
    })
    .to_string();
    assert_eq!(
        world.post(Some(TOKEN), payload.clone()).await,
        (202, "queued\n".into())
    );
    assert_eq!(
        world.post(Some(TOKEN), payload.clone()).await,
        (200, "duplicate notification: already queued\n".into())
    );
    world.wait_aborted("api").await;
    assert_eq!(
        world.post(Some(TOKEN), payload).await.0,
        200,
        "a redelivery after the abort is harmless too"
    );
    let text = world.metrics_text().await;
    assert_eq!(abort_metric(&text, "api", "ApiDown"), 1.0, "{text}");
    assert_eq!(abort_metric(&text, "shop", "ShopDown"), 1.0, "{text}");
    assert_eq!(abort_metric(&text, "web", "HighErrorRate"), 1.0, "{text}");
    assert_eq!(
        world.alert_events("api").await,
        vec!["Aborted by alert ApiDown (fingerprint 00000000000000aa)".to_string()]
    );
    drop(am);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_rejects_bad_requests() {
    let server = ApiServer::new();
    let shutdown = CancellationToken::new();
    let mut config = AlertWebhookConfig::new("127.0.0.1:0".parse().unwrap(), TOKEN);
    config.max_body_bytes = 4096;
    let addr = alerts::start(
        server.client(),
        Some(NS.to_string()),
        config,
        std::sync::Arc::new(Metrics::default()),
        shutdown.clone(),
    )
    .await
    .expect("receiver");
    let url = format!("http://{addr}{}", alerts::receiver::PATH);
    let post = |token: Option<&'static str>, body: String| {
        let url = url.clone();
        async move {
            let mut request = reqwest::Client::new().post(url).body(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("post");
            (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            )
        }
    };
    let resolved =
        json!({"version": "4", "groupKey": "g", "status": "resolved", "alerts": []}).to_string();
    assert_eq!(post(None, resolved.clone()).await.0, 401);
    assert_eq!(post(Some("s3cret-tokem"), resolved.clone()).await.0, 401);
    assert_eq!(post(Some("s3cret-token2"), resolved.clone()).await.0, 401);
    assert_eq!(
        post(Some(TOKEN), "{\"version\": \"4\",".into()).await,
        (
            400,
            "malformed Alertmanager payload: EOF while parsing a value at line 1 column 16\n"
                .into()
        )
    );
    assert_eq!(
        post(
            Some(TOKEN),
            json!({"version": "4", "status": "firing"}).to_string()
        )
        .await,
        (
            400,
            "malformed Alertmanager payload: missing field `groupKey`\n".into()
        )
    );
    assert_eq!(
        post(
            Some(TOKEN),
            json!({"version": "5", "groupKey": "g", "status": "firing"}).to_string()
        )
        .await,
        (
            400,
            "unsupported Alertmanager payload version \"5\" (this receiver understands \"4\")\n"
                .into()
        )
    );
    let oversize = format!("{{\"version\": \"4\", \"pad\": \"{}\"}}", "x".repeat(5000));
    assert_eq!(
        post(Some(TOKEN), oversize.clone()).await,
        (413, "body larger than 4096 bytes\n".into())
    );
    // Unauthenticated requests learn nothing about size or shape.
    assert_eq!(post(None, oversize).await.0, 401);
    assert_eq!(
        post(Some(TOKEN), resolved).await,
        (200, "no firing alert: nothing to do\n".into())
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_alert_rule_over_the_demo_app_aborts_the_bad_canary() {
    let Some(binary) = binary_or_skip("alerts_webhook (prometheus)") else {
        return;
    };
    let world = World::start(true).await;
    world
        .mid_update(
            "demo",
            None,
            "argoproj/rollouts-demo:blue",
            "argoproj/rollouts-demo:bad-1",
        )
        .await;
    let canary_hash = world.status("demo").await["currentPodHash"]
        .as_str()
        .expect("hash")
        .to_string();
    let pods = world.api::<Pod>();
    let canary = eventually("the canary pod's demo app", || async {
        let list = pods
            .list(
                &ListParams::default().labels(&format!("rollouts-pod-template-hash={canary_hash}")),
            )
            .await
            .map_err(|e| e.to_string())?;
        list.items
            .iter()
            .find_map(pod_endpoint)
            .ok_or_else(|| format!("{} pods, none serving", list.items.len()))
    })
    .await;
    let am = Alertmanager::start(&binary, Some((&world.webhook_url(), TOKEN))).await;
    let rules = "groups:\n  - name: canary\n    rules:\n      - alert: CanaryErrors\n        \
                 expr: sum(http_requests_total{code=\"500\"}) > 0\n        \
                 labels: {rollout: demo, namespace: default}\n";
    let prometheus = AlertingPrometheus::start(&[canary], rules, &am.addr).await;

    // Traffic to the bad canary: 3 of every 10 requests fail.
    let client = reqwest::Client::new();
    let mut failed = 0;
    for _ in 0..20 {
        let response = client
            .get(format!("http://{canary}/"))
            .send()
            .await
            .expect("demo app");
        if response.status().as_u16() == 500 {
            failed += 1;
        }
    }
    assert_eq!(failed, 6);

    let status = eventually("demo aborted by the rule's alert", || async {
        let status = world.status("demo").await;
        if status["abort"] == true && status["phase"] == "Degraded" {
            Ok(status)
        } else {
            Err(format!(
                "{status}; prometheus alerts {}",
                prometheus.alerts().await
            ))
        }
    })
    .await;
    let fp = fingerprint(&am, "CanaryErrors").await;
    assert_eq!(
        status["message"],
        format!(
            "RolloutAborted: Rollout aborted update to revision 2: Aborted by alert CanaryErrors (fingerprint {fp})"
        )
    );
    let text = world.metrics_text().await;
    assert_eq!(abort_metric(&text, "demo", "CanaryErrors"), 1.0, "{text}");
    drop(prometheus);
    drop(am);
    world.stop().await;
}
