//! Garbage collection as in a cluster, through the real `kubectl` (`delete --cascade=…`) and
//! `kube::Client` (`DeleteParams`), compared with the behaviour the Kubernetes documentation
//! ("Garbage Collection", "Use Cascading Deletion") writes down:
//!
//! - background (kubectl's default): the owner is deleted at once; the collector deletes the
//!   dependents afterwards;
//! - foreground: the owner stays with `deletionTimestamp` and the `foregroundDeletion`
//!   finalizer until the collector has deleted every dependent with
//!   `blockOwnerDeletion: true` (dependents that do not block are deleted but not waited for);
//! - orphan: the owner stays with the `orphan` finalizer until the collector has removed the
//!   dependents' references to it; the dependents stay.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use common::kubectl::{Kubectl, kubectl_present};
use common::wait::eventually;

fn owner_ref(kind: &str, name: &str, uid: &str, block: bool) -> Value {
    json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid,
           "controller": true, "blockOwnerDeletion": block})
}

/// A Deployment owning a ReplicaSet (`<name>-rs`, blocking) owning two Pods, plus a second
/// ReplicaSet (`<name>-loose`) whose reference does not block.
async fn owner_chain(client: &Client, name: &str) {
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"spec": {"containers": []}}}}))
    .unwrap();
    let d = deploys.create(&pp, &d).await.unwrap();
    for (rs_name, block) in [
        (format!("{name}-rs"), true),
        (format!("{name}-loose"), false),
    ] {
        let rs: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": rs_name,
            "labels": {"owner": name},
            "ownerReferences": [owner_ref("Deployment", name, &d.uid().unwrap(), block)]},
            "spec": {"selector": {"matchLabels": {"app": name}}}}))
        .unwrap();
        rss.create(&pp, &rs).await.unwrap();
    }
    let rs = rss.get(&format!("{name}-rs")).await.unwrap();
    for i in 0..2 {
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": format!("{name}-pod-{i}"), "labels": {"app": name},
            "ownerReferences": [owner_ref("ReplicaSet", &rs.name_any(), &rs.uid().unwrap(), true)]},
            "spec": {"containers": []}}),
        )
        .unwrap();
        pods.create(&pp, &p).await.unwrap();
    }
}

async fn names<K>(api: &Api<K>, labels: &str) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default().labels(labels))
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect()
}

async fn hold(rss: &Api<ReplicaSet>, name: &str, finalizers: Value) {
    rss.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
    )
    .await
    .unwrap();
}

#[test]
fn kubectl_cascade_policies() {
    if !kubectl_present() {
        return;
    }
    let env = Kubectl::start();
    let client = env.client();
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());

    // Background: kubectl returns once the owner is gone; the dependents follow.
    env.block_on(owner_chain(&client, "bg"));
    let out = env.ok(&["delete", "deployment", "bg"]);
    assert_eq!(out.trim(), "deployment.apps \"bg\" deleted");
    env.block_on(eventually("background dependents gone", || async {
        let left = (names(&rss, "owner=bg").await, names(&pods, "app=bg").await);
        (left.0.is_empty() && left.1.is_empty())
            .then_some(())
            .ok_or(format!("{left:?}"))
    }));

    // Orphan: the owner goes once the collector released its dependents, which stay.
    env.block_on(owner_chain(&client, "or"));
    env.ok(&["delete", "deployment", "or", "--cascade=orphan"]);
    let rs = env.get_json(&["get", "replicaset", "or-rs"]);
    assert!(rs["metadata"].get("ownerReferences").is_none(), "{rs:#}");
    assert_eq!(env.block_on(names(&pods, "app=or")).len(), 2);

    // Foreground: with a blocking dependent held by a finalizer, the owner stays marked.
    env.block_on(owner_chain(&client, "fg"));
    env.block_on(hold(&rss, "fg-rs", json!(["example.dev/hold"])));
    env.block_on(hold(&rss, "fg-loose", json!(["example.dev/hold"])));
    env.ok(&[
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ]);
    env.block_on(eventually("the blocking dependent marked", || async {
        let rs = rss.get("fg-rs").await.unwrap();
        let pods_left = names(&pods, "app=fg").await;
        (rs.metadata.deletion_timestamp.is_some() && pods_left.is_empty())
            .then_some(())
            .ok_or(format!("{pods_left:?}"))
    }));
    let owner = env.get_json(&["get", "deployment", "fg"]);
    assert!(
        owner["metadata"]["deletionTimestamp"].is_string(),
        "{owner:#}"
    );
    assert_eq!(
        owner["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    // Releasing the blocking dependent lets the owner go, though the loose one is still held.
    env.block_on(hold(&rss, "fg-rs", Value::Null));
    env.ok(&["wait", "--for=delete", "deployment/fg", "--timeout=60s"]);
    let loose = env.block_on(rss.get("fg-loose")).unwrap();
    assert!(
        loose.metadata.deletion_timestamp.is_some(),
        "the loose dependent is deleted too"
    );
    let out = env.run(&["get", "deployment", "fg"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (NotFound): deployments.apps \"fg\" not found"
    );
}

#[tokio::test]
async fn kube_client_sees_the_intermediate_states() {
    let server = davy::sandbox::apiserver::ApiServer::new();
    let client = server.client();
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());

    owner_chain(&client, "fg").await;
    hold(&rss, "fg-rs", json!(["example.dev/hold"])).await;
    let owner = deploys
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("the owner is returned, marked");
    assert!(owner.metadata.deletion_timestamp.is_some());
    assert_eq!(
        owner.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    eventually("the blocking dependent marked", || async {
        let rs = rss.get("fg-rs").await.unwrap();
        rs.metadata
            .deletion_timestamp
            .is_some()
            .then_some(())
            .ok_or("not yet".to_string())
    })
    .await;
    assert!(
        deploys.get_opt("fg").await.unwrap().is_some(),
        "still waiting"
    );
    hold(&rss, "fg-rs", Value::Null).await;
    eventually("owner gone", || async {
        let d = deploys.get_opt("fg").await.unwrap();
        d.is_none().then_some(()).ok_or("still there".to_string())
    })
    .await;

    // Orphan without dependents: marked with the finalizer, then gone.
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "alone"},
        "spec": {"selector": {"matchLabels": {"app": "alone"}}, "template": {"spec": {"containers": []}}}}))
    .unwrap();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let marked = deploys
        .delete("alone", &DeleteParams::orphan())
        .await
        .unwrap()
        .left()
        .expect("marked");
    assert_eq!(marked.metadata.finalizers, Some(vec!["orphan".to_string()]));
    eventually("orphaned owner gone", || async {
        let d = deploys.get_opt("alone").await.unwrap();
        d.is_none().then_some(()).ok_or("still there".to_string())
    })
    .await;
    server.shutdown();
}

/// Namespace deletion as in a cluster (the Kubernetes documentation, "Namespaces"): the DELETE
/// answers the namespace with `status.phase: Terminating` and a `deletionTimestamp`; while
/// the namespace controller deletes its contents, creating anything in it is 403 `Forbidden`
/// (`configmaps "late" is forbidden: unable to create new content in namespace doomed
/// because it is being terminated`); once empty it loses its `kubernetes` finalizer and goes.
#[tokio::test]
async fn namespace_deletion_is_asynchronous() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    let (server, client) = common::sandbox::setup();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let created = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().finalizers.unwrap(),
        ["kubernetes"],
        "kube-apiserver's finalizer on every namespace"
    );
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    // A finalizer holds one ConfigMap, so the namespace stays Terminating for a while.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "held", "finalizers": ["example.dev/hold"]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &common::sandbox::cm("free", json!({})),
    )
    .await
    .unwrap();

    let answer = namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let marked = answer.left().expect("the namespace itself, not a Status");
    assert_eq!(
        marked.status.as_ref().unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(
        marked.spec.as_ref().unwrap().finalizers.as_deref().unwrap(),
        ["kubernetes"]
    );

    let err = cms
        .create(
            &PostParams::default(),
            &common::sandbox::cm("late", json!({})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert_eq!(
        status.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );

    // The contents go in the background; the held one waits for its finalizer.
    eventually("the free ConfigMap deleted", || async {
        match cms.get_opt("free").await.unwrap() {
            None => Ok(()),
            Some(_) => Err("still there".into()),
        }
    })
    .await;
    let held = cms.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let ns = namespaces.get("doomed").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the namespace gone", || async {
        match namespaces.get_opt("doomed").await.unwrap() {
            None => Ok(()),
            Some(ns) => Err(format!("{:?}", ns.status)),
        }
    })
    .await;
    drop(server);
}

#[test]
fn kubectl_delete_namespace_waits_for_it() {
    if !kubectl_present() {
        return;
    }
    let env = Kubectl::start();
    env.apply(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: gone}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: gone}\ndata: {a: b}\n",
    );
    let out = env.ok(&["delete", "namespace", "gone"]);
    assert_eq!(out.trim(), "namespace \"gone\" deleted");
    let out = env.run(&["get", "namespace", "gone"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("namespaces \"gone\" not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
