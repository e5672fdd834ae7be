//! Each simulated Pod on its own loopback address: a restarted simulator brings a Pod's demo app
//! back on the `podIP` the Pod already shows when that address is free, and moves it (the status
//! follows) when another listener holds it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::Utc;
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::pods::{PodStage, status_for};
use davy::sandbox::simulator::{
    PORT_ANNOTATION, Simulator, SimulatorConfig, is_pod_ip, pod_endpoint,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use super::http;

const DEADLINE: Duration = Duration::from_secs(20);
const PORT: u16 = 9090;

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": "default", "labels": { "app": "addr" } },
        "spec": { "containers": [ {
            "name": "main",
            "image": "demo:green",
            "ports": [ { "name": "http", "containerPort": PORT } ]
        } ] }
    }))
    .expect("pod")
}

/// Polls both pods until each publishes an endpoint; fails after [`DEADLINE`].
async fn endpoints(api: &Api<Pod>) -> (SocketAddr, SocketAddr, Pod) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let kept = api.get("kept").await.expect("get kept");
        let moved = api.get("moved").await.expect("get moved");
        if let (Some(k), Some(m)) = (pod_endpoint(&kept), pod_endpoint(&moved)) {
            // The moved pod publishes its new address once its status has followed.
            if m.ip() != IpAddr::V4(Ipv4Addr::new(127, 77, 1, 3)) {
                return (k, m, moved);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for both endpoints: {:?} {:?}",
            kept.status.and_then(|s| s.pod_ip),
            moved.status.and_then(|s| s.pod_ip)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_restarted_simulator_keeps_free_pod_addresses_and_moves_taken_ones() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let kept_ip = IpAddr::V4(Ipv4Addr::new(127, 77, 1, 2));
    let taken_ip = IpAddr::V4(Ipv4Addr::new(127, 77, 1, 3));
    // Another process already listens on the moved pod's address and port.
    let holder = std::net::TcpListener::bind((taken_ip, PORT)).expect("hold the address");
    // Both pods were made Running by a simulator that has gone away (their apps with it).
    let now = Utc::now();
    for (name, ip) in [("kept", kept_ip), ("moved", taken_ip)] {
        let created = api
            .create(&PostParams::default(), &pod(name))
            .await
            .expect("create pod");
        let status = status_for(&created, PodStage::Running, now, now, ip);
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await
        .expect("running status");
    }

    let sim = Simulator::start(
        client.clone(),
        SimulatorConfig {
            namespace: Some("default".to_string()),
            pod_ready_delay: Duration::from_millis(100),
            demo_apps: true,
            ..SimulatorConfig::default()
        },
    );
    let (kept, moved, moved_pod) = endpoints(&api).await;
    assert_eq!(kept, SocketAddr::new(kept_ip, PORT));
    assert_eq!(moved.port(), PORT);
    assert!(is_pod_ip(moved.ip()), "{moved}");
    assert_eq!(
        moved_pod.annotations().get(PORT_ANNOTATION),
        Some(&PORT.to_string())
    );
    let pod_ips: Vec<String> = moved_pod
        .status
        .and_then(|s| s.pod_ips)
        .into_iter()
        .flatten()
        .map(|p| p.ip)
        .collect();
    assert_eq!(pod_ips, vec![moved.ip().to_string()]);
    assert_eq!(sim.demo_app_addr("default", "kept"), Some(kept));
    assert_eq!(sim.demo_app_addr("default", "moved"), Some(moved));
    // Both answer on the address their status shows.
    for endpoint in [kept, moved] {
        let answer = http()
            .get(format!("http://{endpoint}/"))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200, "{endpoint}");
    }

    sim.shutdown().await;
    drop(holder);
    server.shutdown();
}
