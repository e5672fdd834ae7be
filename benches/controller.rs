//! Controller benchmarks on the in-process sandbox (API server, workload simulator, controller):
//!
//! (a) abort latency: from the AnalysisRun's status reading `Failed` to the canary Ingress's
//!     weight annotation reading `0`, both seen through watches, over N bounded iterations
//!     (p50/p99);
//! (b) reconcile cost of steady Rollouts: process CPU time (everything in-process: controller,
//!     API server, simulator, JSON both ways) divided by the reconciles counted on `/metrics`,
//!     and the pure `rollout::plan` alone on an observed steady Rollout.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) every size is small.

// Bench code: a failed unwrap aborts the measurement, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use davy::api::Rollout;
use davy::controller::{ControllerConfig, run};
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const NS: &str = "default";
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
const CANARY_INGRESS: &str = "bench-stable-ingress-canary";
const WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";

struct Sizes {
    abort_iterations: usize,
    steady_rollouts: usize,
    reconcile_rounds: usize,
    plan_calls: usize,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            abort_iterations: 20,
            steady_rollouts: 20,
            reconcile_rounds: 10,
            plan_calls: 20_000,
        }
    } else {
        Sizes {
            abort_iterations: 2,
            steady_rollouts: 2,
            reconcile_rounds: 2,
            plan_calls: 100,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(abort_latency(sizes.abort_iterations));
    runtime.block_on(reconcile_cost(
        sizes.steady_rollouts,
        sizes.reconcile_rounds,
        sizes.plan_calls,
    ));
}

struct World {
    _server: ApiServer,
    client: Client,
    shutdown: CancellationToken,
    controller: tokio::task::JoinHandle<()>,
    simulator: SimulatorHandle,
}

impl World {
    async fn start(metrics_addr: Option<SocketAddr>) -> World {
        let server = ApiServer::new();
        server.install_davy_crds().expect("install crds");
        let client = server.client();
        let simulator = Simulator::start(
            client.clone(),
            SimulatorConfig {
                namespace: Some(NS.to_string()),
                pod_ready_delay: Duration::from_millis(10),
                ..SimulatorConfig::default()
            },
        );
        let shutdown = CancellationToken::new();
        let controller = tokio::spawn({
            let client = client.clone();
            let shutdown = shutdown.clone();
            async move {
                // Fields added later (leader election...) keep their defaults.
                #[allow(clippy::needless_update)]
                let config = ControllerConfig {
                    namespace: Some(NS.to_string()),
                    metrics_addr,
                    ..ControllerConfig::default()
                };
                run(client, config, shutdown).await.expect("controller");
            }
        });
        World {
            _server: server,
            client,
            shutdown,
            controller,
            simulator,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.controller.await.expect("controller task");
        self.simulator.shutdown().await;
    }

    fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn create<K>(&self, object: Value)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let object: K = serde_json::from_value(object).expect("object");
        Api::<K>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &object)
            .await
            .expect("create");
    }

    async fn set_image(&self, name: &str, image: &str) {
        let patch: json_patch::Patch = serde_json::from_value(json!([{
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": image
        }]))
        .expect("patch");
        self.rollouts()
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
            .expect("set image");
    }

    /// Polls the Rollout until `check` holds on its status.
    async fn wait_status(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let rollout = self.rollouts().get(name).await.expect("get rollout");
            let status = serde_json::to_value(rollout.status).expect("status");
            if check(&status) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out: {what}; {status}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn rollout(name: &str, steps: Value, traffic: Option<Value>) -> Value {
    let mut canary = json!({"steps": steps});
    if let Some(traffic) = traffic {
        canary["trafficRouting"] = traffic;
        canary["canaryService"] = json!("bench-canary");
        canary["stableService"] = json!("bench-stable");
        canary["abortScaleDownDelaySeconds"] = json!(0);
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"canary": canary},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "demo:v0"}]}
            }
        }
    })
}

fn service(name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}
    })
}

/// A web endpoint answering `{"ok": false}`: every measurement of the bench's metric fails.
async fn failing_endpoint(cancel: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::Json(json!({"ok": false})) }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    format!("http://{addr}/")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// What the abort watch loop sees.
enum Seen {
    RunFailed(String),
    Weight(String),
}

async fn abort_latency(iterations: usize) {
    let world = World::start(None).await;
    let cancel = CancellationToken::new();
    let url = failing_endpoint(cancel.clone()).await;
    let template = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "fails", "namespace": NS},
        "spec": {"metrics": [{
            "name": "ok",
            "successCondition": "result == true",
            "provider": {"web": {"url": url, "jsonPath": "{$.ok}"}}
        }]}
    });
    let template: DynamicObject = serde_json::from_value(template).expect("template");
    let templates: Api<DynamicObject> =
        Api::namespaced_with(world.client.clone(), NS, &resource("AnalysisTemplate"));
    templates
        .create(&PostParams::default(), &template)
        .await
        .expect("create template");
    world
        .create::<Service>(service("bench-stable", "bench"))
        .await;
    world
        .create::<Service>(service("bench-canary", "bench"))
        .await;
    world
        .create::<Ingress>(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "stable-ingress", "namespace": NS},
            "spec": {"rules": [{"host": "bench.local", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "bench-stable", "port": {"number": 80}}}
            }]}}]}
        }))
        .await;
    let steps = json!([
        {"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "fails"}]}}
    ]);
    let traffic = json!({"nginx": {"stableIngress": "stable-ingress"}});
    world
        .create::<Rollout>(rollout("bench", steps, Some(traffic)))
        .await;
    world
        .wait_status("bench", "first revision Healthy", |s| {
            s["phase"] == "Healthy"
        })
        .await;

    // Both watches feed one channel, stamped on arrival.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Seen)>();
    let runs: Api<DynamicObject> =
        Api::namespaced_with(world.client.clone(), NS, &resource("AnalysisRun"));
    let watch_runs = tokio::spawn({
        let tx = tx.clone();
        async move {
            let mut stream = std::pin::pin!(watcher::watcher(runs, watcher::Config::default()));
            while let Some(Ok(event)) = stream.next().await {
                if let watcher::Event::Apply(run) | watcher::Event::InitApply(run) = event
                    && run.data["status"]["phase"] == "Failed"
                {
                    let name = run.metadata.name.clone().unwrap_or_default();
                    let _ = tx.send((Instant::now(), Seen::RunFailed(name)));
                }
            }
        }
    });
    let ingresses: Api<Ingress> = Api::namespaced(world.client.clone(), NS);
    let watch_ingress = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher::watcher(ingresses, watcher::Config::default()));
        while let Some(Ok(event)) = stream.next().await {
            if let watcher::Event::Apply(ingress) | watcher::Event::InitApply(ingress) = event
                && ingress.metadata.name.as_deref() == Some(CANARY_INGRESS)
            {
                let weight = ingress
                    .metadata
                    .annotations
                    .and_then(|a| a.get(WEIGHT).cloned())
                    .unwrap_or_default();
                let _ = tx.send((Instant::now(), Seen::Weight(weight)));
            }
        }
    });

    let mut latencies = Vec::with_capacity(iterations);
    let mut failed_runs = std::collections::BTreeSet::new();
    for i in 1..=iterations {
        world.set_image("bench", &format!("demo:v{i}")).await;
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        let mut failed_at: Option<Instant> = None;
        let mut weight_up = false;
        let latency = loop {
            let next = tokio::time::timeout_at(deadline, rx.recv()).await;
            let Ok(Some((at, seen))) = next else {
                panic!("iteration {i}: timed out waiting for the abort");
            };
            match seen {
                // Only a run not seen failing before counts (watch re-lists repeat objects).
                Seen::RunFailed(name) => {
                    if failed_runs.insert(name) && failed_at.is_none() {
                        failed_at = Some(at);
                    }
                }
                Seen::Weight(weight) if weight != "0" => weight_up = true,
                Seen::Weight(_) => {
                    if let Some(failed) = failed_at.filter(|_| weight_up) {
                        break at.saturating_duration_since(failed);
                    }
                }
            }
        };
        latencies.push(latency);
        world
            .wait_status("bench", "aborted", |s| s["phase"] == "Degraded")
            .await;
    }
    watch_runs.abort();
    watch_ingress.abort();
    cancel.cancel();
    world.stop().await;
    latencies.sort();
    println!(
        "abort latency (AnalysisRun Failed -> canary weight 0), {} iterations: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn resource(kind: &str) -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
    }
}

/// User plus system CPU time of this process (Linux `/proc/self/stat`, clock ticks of 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Sum of `rollout_reconcile_count` on the controller's `/metrics`.
async fn reconcile_count(addr: SocketAddr) -> u64 {
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| line.starts_with("rollout_reconcile_count"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn reconcile_cost(rollouts: usize, rounds: usize, plan_calls: usize) {
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
        probe.local_addr().expect("probe addr")
    };
    let world = World::start(Some(addr)).await;
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    for i in 0..rollouts {
        world
            .create::<Rollout>(rollout(&format!("steady-{i}"), steps.clone(), None))
            .await;
    }
    for i in 0..rollouts {
        world
            .wait_status(&format!("steady-{i}"), "steady Healthy", |s| {
                s["phase"] == "Healthy"
            })
            .await;
    }
    // Let the last status writes settle before counting.
    let mut before = reconcile_count(addr).await;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = reconcile_count(addr).await;
        if now == before {
            break;
        }
        before = now;
    }
    let cpu_before = process_cpu();
    let started = Instant::now();
    for round in 0..rounds {
        for i in 0..rollouts {
            let patch = json!({"metadata": {"annotations": {"bench/round": round.to_string()}}});
            world
                .rollouts()
                .patch(
                    &format!("steady-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .expect("annotate");
        }
    }
    let expected = before + (rollouts * rounds) as u64;
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut after = reconcile_count(addr).await;
    // The controller may coalesce several changes of one Rollout into one reconcile.
    while after < expected && Instant::now() < deadline {
        let previous = after;
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = reconcile_count(addr).await;
        if after == previous {
            break;
        }
    }
    let wall = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let reconciles = after.saturating_sub(before).max(1);
    println!(
        "steady reconciles: {rollouts} Rollouts x {rounds} rounds = {reconciles} reconciles in {:.2} s; process CPU {:.0} ms = {:.2} ms per reconcile (controller + API server + simulator)",
        wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3 / reconciles as f64,
    );

    // The pure decision alone, on what the controller observes for one steady Rollout.
    let rollout = world.rollouts().get("steady-0").await.expect("get rollout");
    let caches = davy::controller::rollouts::Caches::listed(&world.client, NS)
        .await
        .expect("list caches");
    let observed = davy::controller::rollouts::observe(&world.client, &caches, &rollout)
        .await
        .expect("observe");
    world.stop().await;
    let now = chrono::Utc::now();
    let started = Instant::now();
    let mut writes = 0;
    for _ in 0..plan_calls {
        writes += std::hint::black_box(davy::rollout::plan(&observed, now))
            .writes
            .len();
    }
    let took = started.elapsed();
    println!(
        "pure rollout::plan on a steady Rollout: {plan_calls} calls, {:.1} us per call ({writes} writes in total)",
        took.as_secs_f64() * 1e6 / plan_calls as f64,
    );
}
