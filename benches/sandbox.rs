//! Sandbox API server throughput and memory: create, list and watch with 10,000 and 100,000
//! ConfigMaps through the in-process `kube::Client` (tower service, no socket, full JSON
//! encode/decode on both sides), lists by a label that selects one object (the label index),
//! and resident memory per stored object; then the lightweight workload simulator taking
//! 10,000 ReplicaSets of one Pod each to Ready.
//!
//! Each size runs in a child process of this binary so that memory freed by one run cannot be
//! reused by (and hide the growth of) the next.

// Bench code: a failed unwrap aborts the measurement, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use davy::sandbox::apiserver::ApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

const SIZES: &[usize] = &[10_000, 100_000];
const SIMULATED_REPLICA_SETS: usize = 10_000;
const SELECTOR_LISTS: usize = 1_000;
const SIM_ENV: &str = "DAVY_SANDBOX_BENCH_SIM";
const CONCURRENCY: usize = 8;
const CHILD_ENV: &str = "DAVY_SANDBOX_BENCH_N";

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:>9.0}/s ({:.2} s)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64()
    )
}

fn main() {
    if let Some(n) = std::env::var(CHILD_ENV).ok().and_then(|v| v.parse().ok()) {
        run(n);
        return;
    }
    if let Some(n) = std::env::var(SIM_ENV).ok().and_then(|v| v.parse().ok()) {
        simulate(n);
        return;
    }
    // `cargo test --all-targets` runs this binary without `--bench`: a small smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full { SIZES } else { &[200] };
    let exe = std::env::current_exe().expect("bench binary path");
    println!("sandbox API server, in-process kube::Client, {CONCURRENCY} concurrent writers");
    for n in sizes {
        let status = std::process::Command::new(&exe)
            .env(CHILD_ENV, n.to_string())
            .status()
            .expect("run bench child");
        assert!(status.success(), "bench for {n} objects failed");
    }
    let replica_sets = if full { SIMULATED_REPLICA_SETS } else { 20 };
    let status = std::process::Command::new(&exe)
        .env(SIM_ENV, replica_sets.to_string())
        .status()
        .expect("run simulator bench child");
    assert!(status.success(), "simulator bench failed");
}

fn run(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let server = ApiServer::builder().history_limit(n + 1000).build();
        let api: Api<ConfigMap> = Api::default_namespaced(server.client());
        // Warm up allocator and client before measuring memory.
        api.list(&ListParams::default()).await.expect("warm-up list");
        let start_rv = server.resource_version();
        let rss_before = rss_bytes();

        let t = Instant::now();
        futures::stream::iter(0..n)
            .map(|i| {
                let api = api.clone();
                async move {
                    let cm: ConfigMap = serde_json::from_value(json!({
                        "metadata": {"name": format!("cm-{i:06}"), "labels": {"app": "bench", "shard": (i % 10).to_string(), "id": format!("cm-{i:06}")}},
                        "data": {"key": format!("value-{i}"), "other": "a short constant string"}
                    }))
                    .expect("configmap");
                    api.create(&PostParams::default(), &cm).await.map(|_| ())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .expect("creates");
        let create = t.elapsed();
        let rss_after = rss_bytes();

        let t = Instant::now();
        let mut lp = ListParams::default().limit(500);
        let mut listed = 0;
        loop {
            let page = api.list(&lp).await.expect("list page");
            listed += page.items.len();
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        let list_paged = t.elapsed();
        assert_eq!(listed, n);

        let t = Instant::now();
        let all = api.list(&ListParams::default()).await.expect("list");
        let list_once = t.elapsed();
        assert_eq!(all.items.len(), n);
        drop(all);

        let lists = SELECTOR_LISTS.min(n);
        let t = Instant::now();
        for i in 0..lists {
            let id = (i * 7919) % n;
            let lp = ListParams::default().labels(&format!("id=cm-{id:06}"));
            let found = api.list(&lp).await.expect("selector list");
            assert_eq!(found.items.len(), 1);
        }
        let list_selected = t.elapsed();

        let t = Instant::now();
        let replayed = count_watch(&api, &start_rv.to_string(), n).await;
        let watch_replay = t.elapsed();
        let t = Instant::now();
        let initial = count_watch(&api, "0", n).await;
        let watch_initial = t.elapsed();

        let per_object = rss_after.saturating_sub(rss_before) as f64 / n as f64;
        println!("--- {n} ConfigMaps ---");
        println!("create (POST)                  {}", rate(n, create));
        println!("list, pages of 500             {}", rate(listed, list_paged));
        println!("list, one page                 {}", rate(n, list_once));
        println!("list by a 1-object selector    {}", rate(lists, list_selected));
        println!("watch, history replay          {}", rate(replayed, watch_replay));
        println!("watch, initial ADDED (rv=0)    {}", rate(initial, watch_initial));
        println!(
            "memory: RSS +{:.1} MiB, {:.0} bytes per stored object (object, managedFields, history event)",
            rss_after.saturating_sub(rss_before) as f64 / (1024.0 * 1024.0),
            per_object
        );
        server.shutdown();
    });
}

/// The lightweight simulator at scale: `n` ReplicaSets of one Pod created at once, then the
/// time until every one reports its Pod ready.
fn simulate(n: usize) {
    use davy::sandbox::simulator::{Simulator, SimulatorConfig};
    use k8s_openapi::api::apps::v1::ReplicaSet;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let server = ApiServer::new();
        let client = server.client();
        let simulator = Simulator::start(
            client.clone(),
            SimulatorConfig {
                namespace: Some("default".into()),
                pod_ready_delay: Duration::from_millis(500),
                demo_apps: false,
                ..SimulatorConfig::default()
            },
        );
        let api: Api<ReplicaSet> = Api::default_namespaced(client);
        let t = Instant::now();
        futures::stream::iter(0..n)
            .map(|i| {
                let api = api.clone();
                async move {
                    let name = format!("rs-{i:05}");
                    let rs: ReplicaSet = serde_json::from_value(json!({
                        "metadata": {"name": name},
                        "spec": {
                            "replicas": 1,
                            "selector": {"matchLabels": {"app": name}},
                            "template": {
                                "metadata": {"labels": {"app": name}},
                                "spec": {"containers": [{"name": "app", "image": "bench/app:v1"}]},
                            },
                        },
                    }))
                    .expect("replicaset");
                    api.create(&PostParams::default(), &rs).await.map(|_| ())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .expect("creates");
        let created = t.elapsed();
        let deadline = Instant::now() + Duration::from_secs(600);
        let ready = loop {
            let list = api.list(&ListParams::default()).await.expect("list rs");
            let ready = list
                .items
                .iter()
                .filter(|rs| rs.status.as_ref().and_then(|s| s.ready_replicas) == Some(1))
                .count();
            if ready == n {
                break t.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "{ready}/{n} ReplicaSets ready after 600 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        println!("--- simulator: {n} ReplicaSets x 1 Pod (lightweight, Ready after 0.5 s) ---");
        println!("create ReplicaSets             {}", rate(n, created));
        println!(
            "all Pods Ready                 {:.2} s after the first create",
            ready.as_secs_f64()
        );
        println!("objects stored                 {}", server.object_count());
        simulator.shutdown().await;
        server.shutdown();
    });
}

/// Opens a watch and counts events until `n` ADDED events have arrived.
async fn count_watch(api: &Api<ConfigMap>, rv: &str, n: usize) -> usize {
    let wp = WatchParams::default().disable_bookmarks();
    let mut stream = api.watch(&wp, rv).await.expect("watch").boxed();
    let mut seen = 0;
    while seen < n {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(_))) => seen += 1,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("watch error: {e}"),
            None => panic!("watch ended after {seen} events"),
        }
    }
    seen
}
