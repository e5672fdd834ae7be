//! Pod graceful deletion: the API server keeps a bound Pod with a `deletionTimestamp` for its
//! grace period (an unbound one goes at once), and the simulated kubelet shows it not ready
//! and removes it after the grace period, capped by `max_termination`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::pods::{Termination, is_ready, termination};
use davy::sandbox::simulator::{NODE_NAME, Simulator, SimulatorConfig};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::simulator::replicaset;

const DEADLINE: Duration = Duration::from_secs(20);

fn pod(name: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "main", "image": "app:v1"}]});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

#[tokio::test]
async fn bound_pods_wait_out_their_grace_period_and_unbound_ones_go_at_once() {
    let server = ApiServer::new();
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let pp = PostParams::default();

    pods.create(&pp, &pod("loose", None)).await.unwrap();
    pods.delete("loose", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        pods.get_opt("loose").await.unwrap().is_none(),
        "an unbound Pod is removed at once"
    );

    let created = pods.create(&pp, &pod("bound", Some("n1"))).await.unwrap();
    assert_eq!(
        created
            .spec
            .as_ref()
            .unwrap()
            .termination_grace_period_seconds,
        Some(30),
        "defaulted"
    );
    let before = Utc::now();
    let marked = pods
        .delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    // Pods come back as the object from a DELETE (as from kube-apiserver), marked or not.
    let marked = marked.left().expect("the Pod object");
    assert!(
        pods.get_opt("bound").await.unwrap().is_some(),
        "kept while terminating"
    );
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    let deadline = marked.metadata.deletion_timestamp.clone().unwrap();
    let deadline = DateTime::from_timestamp(deadline.0.as_second(), 0).unwrap();
    let ahead = (deadline - before).num_seconds();
    assert!((29..=31).contains(&ahead), "deadline {ahead} s ahead");
    // Writes during the grace period do not remove it.
    pods.patch(
        "bound",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
    assert!(pods.get_opt("bound").await.unwrap().is_some());
    // A DELETE with grace 0 (what a kubelet sends) ends it.
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete("bound", &params).await.unwrap();
    assert!(pods.get_opt("bound").await.unwrap().is_none());
}

#[test]
fn termination_decisions() {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let mut p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:30Z", "deletionGracePeriodSeconds": 30},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "main", "image": "a", "imageID": "", "ready": true, "restartCount": 0}]}
    }))
    .unwrap();
    let cap = Duration::from_secs(2);
    let Some(Termination::MarkNotReady(status)) = termination(&p, at("2026-01-01T00:00:00Z"), cap)
    else {
        panic!("a ready terminating Pod is first marked not ready");
    };
    p.status = Some(*status);
    assert!(!is_ready(&p));
    // Asked at 00:00:00 with 30 s of grace, capped at 2 s.
    assert_eq!(
        termination(&p, at("2026-01-01T00:00:01.5Z"), cap),
        Some(Termination::RemoveIn(Duration::from_millis(500)))
    );
    assert_eq!(
        termination(&p, at("2026-01-01T00:00:02Z"), cap),
        Some(Termination::RemoveNow)
    );
    // A shorter grace period than the cap is honoured as it is.
    p.metadata.deletion_grace_period_seconds = Some(1);
    p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-01-01T00:00:01Z".parse().unwrap(),
    ));
    assert_eq!(
        termination(&p, at("2026-01-01T00:00:00.25Z"), cap),
        Some(Termination::RemoveIn(Duration::from_millis(750)))
    );
    p.metadata.deletion_timestamp = None;
    assert_eq!(termination(&p, at("2026-01-01T00:00:00Z"), cap), None);
}

#[tokio::test]
async fn scaled_down_pods_terminate_not_ready_then_go() {
    let server = ApiServer::new();
    let client = server.client();
    let sim = Simulator::start(
        client.clone(),
        SimulatorConfig {
            namespace: Some("default".into()),
            pod_ready_delay: Duration::from_millis(50),
            max_termination: Duration::from_millis(300),
            ..SimulatorConfig::default()
        },
    );
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    rss.create(&PostParams::default(), &replicaset("web", 2, "app:v1"))
        .await
        .unwrap();
    let selector = ListParams::default().labels("app=web");
    let ready_pods = tokio::time::timeout(DEADLINE, async {
        loop {
            let list = pods.list(&selector).await.unwrap();
            if list.items.len() == 2 && list.items.iter().all(is_ready) {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("two ready Pods");
    for p in &ready_pods.items {
        assert_eq!(
            p.spec.as_ref().unwrap().node_name.as_deref(),
            Some(NODE_NAME)
        );
    }

    let rv = ready_pods.metadata.resource_version.clone().unwrap();
    let mut events = pods
        .watch(&WatchParams::default().labels("app=web"), &rv)
        .await
        .unwrap()
        .boxed();
    rss.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();

    // The deleted Pod: marked, then not ready while terminating, then gone.
    let mut victim: Option<String> = None;
    let mut seen_not_ready = false;
    tokio::time::timeout(DEADLINE, async {
        while let Some(event) = events.next().await {
            match event.unwrap() {
                WatchEvent::Modified(p) if p.metadata.deletion_timestamp.is_some() => {
                    victim.get_or_insert(p.name_any());
                    if !is_ready(&p) {
                        seen_not_ready = true;
                    }
                }
                WatchEvent::Deleted(p) if victim.as_deref() == Some(p.name_any().as_str()) => {
                    return;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the scaled-down Pod is removed");
    assert!(
        seen_not_ready,
        "the terminating Pod showed not ready before it went"
    );
    let left = pods.list(&selector).await.unwrap();
    assert_eq!(left.items.len(), 1);
    sim.shutdown().await;
}
