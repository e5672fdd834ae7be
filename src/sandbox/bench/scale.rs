//! `davy bench scale`: the run itself. The sandbox (API server on 127.0.0.1, lightweight
//! simulator) lives in this process; the Rollouts are created before the controller starts, so
//! wave 1 measures a cold start over N existing Rollouts; wave 2 changes every image at once.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::process::{self, ControllerProcess};
use super::report::{self, ScaleReport};
use super::track::{Tracker, count_duplicates, view_of};
use super::{OutputFormat, ScaleArgs};
use crate::sandbox::apiserver::{ApiServer, RequestCounts, Transport};
use crate::sandbox::simulator::{Simulator, SimulatorConfig};

/// Where the Rollouts live.
const NAMESPACE: &str = "default";
/// The Lease namespace `davy controller` defaults to; created so that a controller that elects
/// finds it (the bench also turns election off).
const LEASE_NAMESPACE: &str = "argo-rollouts";
/// Each Rollout's timed pause.
const PAUSE: Duration = Duration::from_secs(1);
/// Requests in flight while creating or patching Rollouts.
const CONCURRENCY: usize = 64;
/// How often the waves' progress is checked, and printed.
const POLL: Duration = Duration::from_millis(100);
const PRINT_EVERY: Duration = Duration::from_secs(2);

fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// The name of Rollout `i` (zero-padded so that listings sort naturally).
pub fn rollout_name(i: usize) -> String {
    format!("bench-{i:05}")
}

/// Rollout `name`: `replicas` Pods of `image`, canary steps `setWeight: 50` then a timed pause,
/// no traffic routing and no analysis.
pub fn rollout_manifest(name: &str, replicas: u32, image: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {"canary": {"steps": [
                {"setWeight": 50},
                {"pause": {"duration": format!("{}s", PAUSE.as_secs())}},
            ]}},
        },
    })
}

/// Everything the run owns; dropping it stops the controller (kill on drop) and the sandbox.
struct Bench {
    server: ApiServer,
    client: Client,
    dir: PathBuf,
    tracker: Arc<Mutex<Tracker>>,
    stop: CancellationToken,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.stop.cancel();
        self.server.shutdown();
        // A temporary directory of our own; failing to remove it leaves two small files.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    // A poisoned tracker only means an observe panicked; its counts are still the best known.
    tracker.lock().unwrap_or_else(|p| p.into_inner())
}

/// A free loopback port for the controller's `/metrics` (bound, then released).
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Runs the benchmark; returns the exit code (1 when a wave timed out).
pub async fn run(args: &ScaleArgs) -> anyhow::Result<i32> {
    tokio::select! {
        result = run_inner(args) => result,
        _ = tokio::signal::ctrl_c() => {
            // Returning drops the run: the controller is killed, the sandbox stops.
            anyhow::bail!("interrupted")
        }
    }
}

async fn run_inner(args: &ScaleArgs) -> anyhow::Result<i32> {
    let bench = start_sandbox(args).await?;
    let handle = bench
        .server
        .serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("serving the sandbox API on 127.0.0.1")?;
    let kubeconfig = bench.dir.join("kubeconfig");
    bench
        .server
        .write_kubeconfig(&kubeconfig, handle.addr())
        .context("writing the kubeconfig")?;

    create_rollouts(&bench.client, args).await?;
    tokio::spawn(follow_rollouts(
        bench.client.clone(),
        bench.tracker.clone(),
        bench.stop.clone(),
    ));

    let metrics_port = free_port().context("finding a free port for /metrics")?;
    let metrics_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, metrics_port));
    let mut controller_args = vec![
        "--metrics-addr".to_string(),
        metrics_addr.to_string(),
        "--leader-elect=false".to_string(),
    ];
    if let Some(threads) = args.rollout_threads {
        controller_args.push(format!("--rollout-threads={threads}"));
    }
    if let Some(debounce) = &args.reconcile_debounce {
        controller_args.push(format!("--reconcile-debounce={debounce}"));
    }
    let log = bench.dir.join("controller.log");
    let requests_before = bench.server.request_counts(Transport::Http);
    let mut controller = ControllerProcess::start(&kubeconfig, &controller_args, &log)
        .context("starting `davy controller`")?;
    let started = Instant::now();
    let sandbox_cpu_before = process::own_cpu_seconds();

    let mut report = ScaleReport {
        rollouts: args.rollouts,
        ..ScaleReport::default()
    };
    let wave1 = wait_wave(1, &bench, &mut controller, &log, args, started).await?;
    report.seconds_to_all_healthy = wave1;
    let mut completed = wave1.is_some();
    if completed {
        lock(&bench.tracker).start_second_wave();
        let changed = Instant::now();
        update_images(&bench.client, args).await?;
        let wave2 = wait_wave(2, &bench, &mut controller, &log, args, changed).await?;
        report.seconds_to_all_updated_healthy = wave2;
        completed = wave2.is_some();
    }
    let run_seconds = started.elapsed().as_secs_f64();
    report.sandbox_cpu_seconds = match (sandbox_cpu_before, process::own_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    report.sandbox_peak_rss_bytes = process::own_memory().map(|m| m.peak_rss);
    report.healthy = lock(&bench.tracker).healthy();
    report.completed = completed;

    // Figures of the busy part, then of the idle controller.
    let reconciles = scrape_reconciles(metrics_addr).await;
    report.reconciles_per_second = reconciles.map(|n| n / run_seconds.max(1e-9));
    let busy_cpu = controller.cpu_seconds();
    tokio::time::sleep(args.idle).await;
    let idle_cpu = controller.cpu_seconds();
    report.controller_cpu_seconds = idle_cpu;
    report.controller_idle_cpu_percent = match (busy_cpu, idle_cpu) {
        (Some(a), Some(b)) => Some((b - a) / args.idle.as_secs_f64().max(1e-9) * 100.0),
        _ => None,
    };
    if let Some(memory) = controller.memory() {
        report.controller_peak_rss_bytes = Some(memory.peak_rss);
        report.controller_steady_rss_bytes = Some(memory.rss);
    }
    let requests = difference(
        bench.server.request_counts(Transport::Http),
        requests_before,
    );
    report.api_requests_per_rollout = Some(requests.total() as f64 / args.rollouts as f64);
    report.api_requests = requests;
    {
        let tracker = lock(&bench.tracker);
        report.pauses_measured = tracker.lateness().len();
        report.step_lateness_p50_seconds = report::quantile(tracker.lateness(), 0.5);
        report.step_lateness_p99_seconds = report::quantile(tracker.lateness(), 0.99);
    }
    report.duplicate_replica_sets = duplicate_replica_sets(&bench.client).await?;
    controller.stop().await;
    handle.shutdown().await;

    let report = report.rounded();
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print!("{}", report::render_text(&report)),
    }
    Ok(if completed { 0 } else { 1 })
}

async fn start_sandbox(args: &ScaleArgs) -> anyhow::Result<Bench> {
    let dir = std::env::temp_dir().join(format!("davy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let server = ApiServer::new();
    server
        .install_davy_crds()
        .context("installing Davy's CRDs")?;
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}});
    server
        .create_object("", "namespaces", None, namespace, "davy-bench")
        .context("creating the Lease namespace")?;
    let client = server.client();
    let stop = CancellationToken::new();
    let simulator = Simulator::start(
        client.clone(),
        SimulatorConfig {
            namespace: Some(NAMESPACE.to_string()),
            pod_ready_delay: args.pod_ready_delay,
            demo_apps: false,
            ..SimulatorConfig::default()
        },
    );
    let until = stop.clone();
    // The simulator stops with the run (its handle's shutdown waits for its tasks).
    server.spawn(async move {
        until.cancelled().await;
        simulator.shutdown().await;
    });
    Ok(Bench {
        server,
        client,
        dir,
        tracker: Arc::new(Mutex::new(Tracker::new(PAUSE))),
        stop,
    })
}

async fn create_rollouts(client: &Client, args: &ScaleArgs) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &rollout_resource());
    futures::stream::iter(0..args.rollouts)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = rollout_name(i);
                let manifest = rollout_manifest(&name, args.replicas, "davy-bench/app:v1");
                let object: DynamicObject = serde_json::from_value(manifest)?;
                api.create(&PostParams::default(), &object)
                    .await
                    .with_context(|| format!("creating Rollout {name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

async fn update_images(client: &Client, args: &ScaleArgs) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &rollout_resource());
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "davy-bench/app:v2"}
    ]}}}});
    futures::stream::iter(0..args.rollouts)
        .map(|i| {
            let api = api.clone();
            let patch = &patch;
            async move {
                let name = rollout_name(i);
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .with_context(|| format!("changing the image of Rollout {name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

/// Feeds every Rollout change into the tracker, stamped with the time it arrived.
async fn follow_rollouts(client: Client, tracker: Arc<Mutex<Tracker>>, stop: CancellationToken) {
    let api: Api<DynamicObject> = Api::namespaced_with(client, NAMESPACE, &rollout_resource());
    let events = watcher(api, watcher::Config::default());
    let mut events = std::pin::pin!(events);
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = events.next() => event,
        };
        let seen = Utc::now();
        match event {
            None => return,
            Some(Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj))) => {
                if let Ok(value) = serde_json::to_value(&obj) {
                    lock(&tracker).observe(&view_of(&value), seen);
                }
            }
            Some(Ok(watcher::Event::Delete(obj))) => {
                lock(&tracker).forget(obj.metadata.name.as_deref().unwrap_or_default());
            }
            Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
            Some(Err(error)) => {
                tracing::debug!(%error, "bench: the Rollout watch failed; it is retried");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Waits until every Rollout is Healthy on the wave's revision; the seconds it took, or `None`
/// at the timeout. Fails when the controller exits.
async fn wait_wave(
    wave: u8,
    bench: &Bench,
    controller: &mut ControllerProcess,
    log: &std::path::Path,
    args: &ScaleArgs,
    since: Instant,
) -> anyhow::Result<Option<f64>> {
    let mut next_print = Instant::now() + PRINT_EVERY;
    loop {
        let healthy = lock(&bench.tracker).healthy();
        let elapsed = since.elapsed();
        if healthy >= args.rollouts {
            eprintln!(
                "{}",
                report::progress_line(wave, healthy, args.rollouts, elapsed.as_secs_f64())
            );
            return Ok(Some(elapsed.as_secs_f64()));
        }
        if let Some(status) = controller.exited() {
            let output = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = output.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            anyhow::bail!(
                "`davy controller` exited ({status}) during wave {wave}; its last output:\n{}",
                tail.join("\n")
            );
        }
        if elapsed >= args.timeout {
            eprintln!(
                "{} — timed out after {} s",
                report::progress_line(wave, healthy, args.rollouts, elapsed.as_secs_f64()),
                args.timeout.as_secs_f64()
            );
            return Ok(None);
        }
        if Instant::now() >= next_print {
            eprintln!(
                "{}",
                report::progress_line(wave, healthy, args.rollouts, elapsed.as_secs_f64())
            );
            next_print += PRINT_EVERY;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The controller's total Rollout reconciles from its `/metrics`, if it answers.
async fn scrape_reconciles(addr: SocketAddr) -> Option<f64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .ok()?;
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    report::reconcile_count(&text)
}

fn difference(after: RequestCounts, before: RequestCounts) -> RequestCounts {
    RequestCounts {
        get: after.get - before.get,
        list: after.list - before.list,
        watch: after.watch - before.watch,
        create: after.create - before.create,
        update: after.update - before.update,
        patch: after.patch - before.patch,
        delete: after.delete - before.delete,
        other: after.other - before.other,
    }
}

/// ReplicaSets beyond the first per (controlling owner, pod-template hash) in the namespace.
async fn duplicate_replica_sets(client: &Client) -> anyhow::Result<usize> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), NAMESPACE);
    let list = api
        .list(&ListParams::default())
        .await
        .context("listing ReplicaSets")?;
    let keys: Vec<(String, String)> = list
        .items
        .iter()
        .map(|rs| {
            let owner = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| o.uid.clone())
                .unwrap_or_default();
            let hash = rs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("rollouts-pod-template-hash"))
                .cloned()
                .unwrap_or_default();
            (owner, hash)
        })
        .collect();
    Ok(count_duplicates(&keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_have_two_steps_and_the_image() {
        let m = rollout_manifest(&rollout_name(7), 3, "x:v1");
        assert_eq!(m["metadata"]["name"], "bench-00007");
        assert_eq!(m["spec"]["replicas"], 3);
        assert_eq!(
            m["spec"]["template"]["spec"]["containers"][0]["image"],
            "x:v1"
        );
        let steps = m["spec"]["strategy"]["canary"]["steps"].as_array().unwrap();
        assert_eq!(steps[0]["setWeight"], 50);
        assert_eq!(steps[1]["pause"]["duration"], "1s");
        // A Rollout manifest the API types accept.
        serde_json::from_value::<crate::api::Rollout>(m).unwrap();
    }
}
