//! Alert-driven abort latency on the in-process sandbox (API server, workload simulator,
//! controller with its webhook receiver on 127.0.0.1):
//!
//! * `receiver POST → status.abort`: from sending a version-4 notification straight to the
//!   receiver (what Alertmanager does) to `status.abort: true` readable from the API server;
//! * `Alertmanager POST → status.abort`: from posting the alert to a real Alertmanager
//!   (`group_wait: 0s`; skipped without the binary) to the same;
//! * `→ canary weight 0`: to the canary Ingress's `canary-weight` annotation reading `0`. It
//!   needs traffic weights in the executor (branch `arctl`); until then it reports "not applied".
//!
//! Bounded: `ITERATIONS` Rollouts per series (2 when run by `cargo test` without `--bench`).
//! Latencies are observed by polling every 2 ms, so they carry up to 2 ms of polling error.

// Bench code: a failed unwrap aborts the measurement, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use davy::api::Rollout;
use davy::controller::alerts::{AlertWebhookConfig, receiver::PATH};
use davy::controller::{ControllerConfig, run};
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::{Simulator, SimulatorConfig};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ITERATIONS: usize = 20;
const NS: &str = "default";
const TOKEN: &str = "bench-token";
const WAIT: Duration = Duration::from_secs(30);
const WEIGHT_WAIT: Duration = Duration::from_secs(3);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    if samples.is_empty() {
        println!("{what:<40} not applied (no sample)");
        return;
    }
    println!(
        "{what:<40} n={:<3} p50 {:>8.1} ms   p99 {:>8.1} ms   max {:>8.1} ms",
        samples.len(),
        percentile(&samples, 50.0).as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}

async fn until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

async fn status(api: &Api<Rollout>, name: &str) -> Value {
    let rollout = api.get(name).await.expect("get rollout");
    serde_json::to_value(rollout.status.unwrap_or_default()).expect("status")
}

/// Creates `n` traffic-routed canary Rollouts (nginx, 2 replicas, 50 % then an indefinite
/// pause), waits until they are Healthy, updates them all and waits until all pause mid-update.
async fn prepare(client: &Client, prefix: &str, n: usize) -> Vec<String> {
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NS);
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), NS);
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for name in &names {
        for svc in [format!("{name}-stable"), format!("{name}-canary")] {
            let service: Service = serde_json::from_value(json!({
                "metadata": {"name": svc, "namespace": NS},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}
            }))
            .expect("service");
            services
                .create(&PostParams::default(), &service)
                .await
                .expect("create service");
        }
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": NS},
            "spec": {"rules": [{"host": format!("{name}.local"), "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": format!("{name}-stable"), "port": {"number": 80}}}}]}}]}
        }))
        .expect("ingress");
        ingresses
            .create(&PostParams::default(), &ingress)
            .await
            .expect("create ingress");
        let rollout: Rollout = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "app", "image": "app:blue"}]}},
                "strategy": {"canary": {
                    "canaryService": format!("{name}-canary"),
                    "stableService": format!("{name}-stable"),
                    "trafficRouting": {"nginx": {"stableIngress": name}},
                    "steps": [{"setWeight": 50}, {"pause": {}}]}}
            }
        }))
        .expect("rollout");
        rollouts
            .create(&PostParams::default(), &rollout)
            .await
            .expect("create rollout");
    }
    for name in &names {
        until(WAIT, || async {
            status(&rollouts, name).await["phase"] == "Healthy"
        })
        .await
        .unwrap_or_else(|| panic!("{name} never Healthy"));
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:green"}]}}}});
        rollouts
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("update");
    }
    for name in &names {
        until(WAIT, || async {
            let s = status(&rollouts, name).await;
            s["phase"] == "Paused" && s["currentStepIndex"] == 1
        })
        .await
        .unwrap_or_else(|| panic!("{name} never paused mid-update"));
    }
    names
}

fn payload(name: &str, i: usize) -> String {
    json!({
        "version": "4", "groupKey": format!("{{}}:{{alertname=\"Bench{i}\"}}"), "status": "firing",
        "receiver": "davy", "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": format!("Bench{i}"), "rollout": name, "namespace": NS},
                    "annotations": {}, "startsAt": chrono::Utc::now().to_rfc3339(),
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                    "fingerprint": format!("{i:016x}")}]
    })
    .to_string()
}

/// Times abort and canary weight 0 for each Rollout after `send` fires its alert.
async fn measure<S, Fut>(
    client: &Client,
    names: &[String],
    mut send: S,
) -> (Vec<Duration>, Vec<Duration>)
where
    S: FnMut(usize, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NS);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), NS);
    let (mut aborts, mut weights) = (Vec::new(), Vec::new());
    let mut weights_applied = true;
    for (i, name) in names.iter().enumerate() {
        let started = Instant::now();
        send(i, name.clone()).await;
        let aborted = until(WAIT, || async {
            status(&rollouts, name).await["abort"] == true
        })
        .await
        .unwrap_or_else(|| panic!("{name} never aborted"));
        aborts.push(started.elapsed().min(aborted + started.elapsed()));
        if !weights_applied {
            continue;
        }
        let canary = format!("{name}-{name}-canary");
        let zero = until(WEIGHT_WAIT, || async {
            ingresses
                .get_opt(&canary)
                .await
                .ok()
                .flatten()
                .is_some_and(|ing| {
                    ing.metadata
                        .annotations
                        .unwrap_or_default()
                        .get("nginx.ingress.kubernetes.io/canary-weight")
                        == Some(&"0".to_string())
                })
        })
        .await;
        match zero {
            Some(_) => weights.push(started.elapsed()),
            // No canary Ingress managed yet (traffic weights not in the executor): stop trying.
            None => weights_applied = false,
        }
    }
    (aborts, weights)
}

fn alertmanager_binary() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|d| [d.join("prometheus-alertmanager"), d.join("alertmanager")])
        .find(|c| c.is_file())
}

async fn start_alertmanager(
    binary: &PathBuf,
    dir: &tempfile::TempDir,
    webhook: &str,
) -> (Child, String) {
    std::fs::write(dir.path().join("token"), TOKEN).expect("token");
    let config = format!(
        "route: {{receiver: davy, group_by: ['alertname'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}\n\
         receivers:\n  - name: davy\n    webhook_configs:\n      - url: '{webhook}'\n        \
         http_config: {{authorization: {{type: Bearer, credentials_file: '{}'}}}}\n",
        dir.path().join("token").display()
    );
    std::fs::write(dir.path().join("am.yml"), config).expect("config");
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.path().join("am.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    until(WAIT, || async {
        http.get(format!("{url}/-/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await
    .expect("alertmanager ready");
    (child, url)
}

fn main() {
    let iterations = if std::env::args().any(|a| a == "--bench") {
        ITERATIONS
    } else {
        2
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(iterations));
}

async fn bench(iterations: usize) {
    let server = ApiServer::new();
    server.install_davy_crds().expect("crds");
    let client = server.client();
    let simulator = Simulator::start(
        client.clone(),
        SimulatorConfig {
            namespace: Some(NS.to_string()),
            pod_ready_delay: Duration::from_millis(50),
            ..SimulatorConfig::default()
        },
    );
    let webhook: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let shutdown = CancellationToken::new();
    let controller = tokio::spawn({
        let (client, shutdown) = (client.clone(), shutdown.clone());
        async move {
            #[allow(clippy::needless_update)]
            let config = ControllerConfig {
                namespace: Some(NS.to_string()),
                metrics_addr: None,
                alert_webhook: Some(AlertWebhookConfig::new(webhook, TOKEN)),
                ..ControllerConfig::default()
            };
            run(client, config, shutdown).await.expect("controller");
        }
    });
    let url = format!("http://{webhook}{PATH}");
    let http = reqwest::Client::new();
    until(WAIT, || async { http.post(&url).send().await.is_ok() })
        .await
        .expect("receiver listening");
    println!("alert-driven abort latency, sandbox in-process, {iterations} Rollouts per series");

    let names = prepare(&client, "direct", iterations).await;
    let (aborts, weights) = measure(&client, &names, |i, name| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http
                .post(&url)
                .bearer_auth(TOKEN)
                .body(payload(&name, i))
                .send()
                .await
                .expect("post");
            assert_eq!(response.status().as_u16(), 202);
        }
    })
    .await;
    report("receiver POST -> status.abort", aborts);
    report("receiver POST -> canary weight 0", weights);

    if let Some(binary) = alertmanager_binary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut child, am) = start_alertmanager(&binary, &dir, &url).await;
        let names = prepare(&client, "am", iterations).await;
        let (aborts, weights) = measure(&client, &names, |i, name| {
            let (http, am) = (http.clone(), am.clone());
            async move {
                let alerts = json!([{"labels": {"alertname": format!("AmBench{i}"), "rollout": name, "namespace": NS}}]);
                let response = http.post(format!("{am}/api/v2/alerts")).json(&alerts).send().await.expect("post alert");
                assert!(response.status().is_success());
            }
        })
        .await;
        report("Alertmanager POST -> status.abort", aborts);
        report("Alertmanager POST -> canary weight 0", weights);
        let _ = child.kill();
        let _ = child.wait();
    } else {
        println!("Alertmanager series skipped: no prometheus-alertmanager binary");
    }
    shutdown.cancel();
    let _ = controller.await;
    simulator.shutdown().await;
}
