//! The simulator's pure decisions (scale, status, pod stages), with explicit times.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use davy::sandbox::simulator::pods::{PodStage, decide};
use davy::sandbox::simulator::replicaset::{ScaleDecision, desired_status, scale_decision};
use davy::sandbox::simulator::{DEFAULT_POD_PORT, is_pod_ip, pod_ip_from, pod_port, to_time};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::simulator::replicaset;

fn pod_json(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).expect("pod")
}

fn ready_pod(name: &str, created: &str, ready_at: &str) -> Pod {
    pod_json(serde_json::json!({
        "metadata": { "name": name, "creationTimestamp": created, "labels": { "app": "x" } },
        "spec": { "containers": [ { "name": "main", "image": "demo:blue" } ] },
        "status": {
            "phase": "Running",
            "conditions": [ { "type": "Ready", "status": "True", "lastTransitionTime": ready_at } ]
        }
    }))
}

fn pending_pod(name: &str, created: &str) -> Pod {
    pod_json(serde_json::json!({
        "metadata": { "name": name, "creationTimestamp": created, "labels": { "app": "x" } },
        "spec": { "containers": [ { "name": "main", "image": "demo:blue" } ] },
        "status": { "phase": "Pending" }
    }))
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().expect("time")
}

#[test]
fn scale_down_removes_pending_then_newest_first() {
    let old = ready_pod("a", "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z");
    let new = ready_pod("b", "2026-01-01T00:01:00Z", "2026-01-01T00:01:05Z");
    let newest = ready_pod("c", "2026-01-01T00:02:00Z", "2026-01-01T00:02:05Z");
    let pending = pending_pod("d", "2025-12-31T00:00:00Z");
    let all = [&old, &new, &newest, &pending];
    assert_eq!(
        scale_decision(2, &all),
        ScaleDecision::Delete(vec!["d".to_string(), "c".to_string()])
    );
    assert_eq!(
        scale_decision(1, &all),
        ScaleDecision::Delete(vec!["d".to_string(), "c".to_string(), "b".to_string()])
    );
    assert_eq!(scale_decision(4, &all), ScaleDecision::Steady);
    assert_eq!(scale_decision(6, &all), ScaleDecision::Create(2));
    assert_eq!(
        scale_decision(-1, &[&old]),
        ScaleDecision::Delete(vec!["a".to_string()])
    );
}

#[test]
fn available_replicas_honour_min_ready_seconds() {
    let mut rs = replicaset("x", 3, "demo:blue");
    rs.metadata.generation = Some(4);
    if let Some(spec) = rs.spec.as_mut() {
        spec.min_ready_seconds = Some(10);
    }
    // The template labels are app=x and tier=web; only the pending pod has both.
    let long_ready = ready_pod("a", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    let just_ready = ready_pod("b", "2026-01-01T00:00:00Z", "2026-01-01T00:00:07Z");
    let mut pending = pending_pod("c", "2026-01-01T00:00:00Z");
    pending
        .labels_mut()
        .insert("tier".to_string(), "web".to_string());
    let pods = [&long_ready, &just_ready, &pending];
    let (status, next) = desired_status(&rs, &pods, at("2026-01-01T00:00:12Z"));
    assert_eq!(status.replicas, 3);
    assert_eq!(status.fully_labeled_replicas, Some(1));
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(1));
    assert_eq!(status.observed_generation, Some(4));
    assert_eq!(next, Some(Duration::from_secs(5)));
    let (status, next) = desired_status(&rs, &pods, at("2026-01-01T00:00:17Z"));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(next, None);
}

/// The address a Running pod's status shows in these decisions.
const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 3, 4, 5));

#[test]
fn pod_addresses_are_loopback_outside_127_0_0_0_24() {
    // Bytes taken little-endian: X, Y, Z of 127.X.Y.Z.
    assert_eq!(pod_ip_from(0x0003_0201), Some(Ipv4Addr::new(127, 1, 2, 3)));
    assert_eq!(
        pod_ip_from(0xff00_0107),
        None,
        "no .0 (the high bytes are unused)"
    );
    assert_eq!(pod_ip_from(0x0001_0000), None, "127.0.0.1 is the host's");
    assert_eq!(pod_ip_from(0x00fe_0000), None, "127.0.0.0/24 is refused");
    assert_eq!(pod_ip_from(0x0001_0100), Some(Ipv4Addr::new(127, 0, 1, 1)));
    assert_eq!(pod_ip_from(0x00ff_0100), None, "no .255");
    let drawn: Vec<Ipv4Addr> = (0..1000u64)
        .filter_map(|n| pod_ip_from(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    assert!(drawn.len() > 980, "{}", drawn.len());
    assert!(drawn.iter().all(|ip| is_pod_ip(IpAddr::V4(*ip))));
    assert!(!is_pod_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert!(!is_pod_ip(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))));
    assert!(is_pod_ip(IP));

    let port_of =
        |spec: serde_json::Value| pod_port(&pod_json(serde_json::json!({ "spec": spec })));
    assert_eq!(
        port_of(serde_json::json!({ "containers": [
            { "name": "a", "ports": [ { "containerPort": 9090 }, { "containerPort": 9091 } ] },
            { "name": "b", "ports": [ { "containerPort": 7070 } ] }
        ] })),
        9090
    );
    assert_eq!(
        port_of(serde_json::json!({ "containers": [ { "name": "a" } ] })),
        DEFAULT_POD_PORT
    );
    assert_eq!(DEFAULT_POD_PORT, 8080);
}

#[test]
fn pod_stages_follow_the_delay_and_the_pull_error_marker() {
    let seen = at("2026-01-01T00:00:00Z");
    let delay = Duration::from_secs(2);
    let fresh = pod_json(serde_json::json!({
        "metadata": { "name": "p" },
        "spec": { "containers": [ { "name": "main", "image": "demo:blue" } ] }
    }));
    let d = decide(&fresh, seen, at("2026-01-01T00:00:01Z"), delay, IP);
    assert_eq!(d.stage, PodStage::Starting);
    assert_eq!(d.recheck, Some(Duration::from_secs(1)));
    let written = d.write.expect("first status");
    assert_eq!(written.phase.as_deref(), Some("Pending"));
    let d = decide(&fresh, seen, at("2026-01-01T00:00:02Z"), delay, IP);
    assert_eq!(d.stage, PodStage::Running);
    let status = d.write.expect("running status");
    assert_eq!(status.pod_ip.as_deref(), Some("127.3.4.5"));
    assert_eq!(
        status.pod_ips.as_ref().map(|ips| ips[0].ip.as_str()),
        Some("127.3.4.5")
    );
    // Every simulated pod runs on the one node, 127.0.0.1.
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .expect("ready condition");
    assert_eq!(ready.status, "True");
    assert_eq!(
        ready.last_transition_time,
        Some(to_time(at("2026-01-01T00:00:02Z")))
    );

    // A running pod is left alone, whatever the clock says.
    let mut running = fresh.clone();
    running.status = Some(status);
    let d = decide(
        &running,
        at("2026-01-01T01:00:00Z"),
        at("2026-01-01T01:00:00Z"),
        delay,
        IP,
    );
    assert_eq!(
        (d.stage, d.write, d.recheck),
        (PodStage::Running, None, None)
    );

    let broken = pod_json(serde_json::json!({
        "metadata": { "name": "q" },
        "spec": { "containers": [ { "name": "main", "image": "registry:5000/demo:pull-error" } ] }
    }));
    let stage_at = |t: &str| decide(&broken, seen, at(t), delay, IP).stage;
    assert_eq!(stage_at("2026-01-01T00:00:01Z"), PodStage::Starting);
    assert_eq!(stage_at("2026-01-01T00:00:03Z"), PodStage::PullFailed);
    assert_eq!(stage_at("2026-01-01T00:00:04Z"), PodStage::PullBackOff);
    let status = decide(&broken, seen, at("2026-01-01T00:00:03Z"), delay, IP)
        .write
        .expect("status");
    let waiting = status.container_statuses.as_ref().expect("containers")[0]
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone());
    assert_eq!(waiting.as_deref(), Some("ErrImagePull"));
    assert_eq!(status.phase.as_deref(), Some("Pending"));
}
