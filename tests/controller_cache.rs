//! The cached Rollout reconciler and its expectations: a reconcile run right after our own
//! create, while the cache has not seen it yet, must not act again — the race that listing from
//! the API server at every reconcile used to avoid.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use std::sync::Arc;

use davy::controller::expectations::{Check, Kind};
use davy::controller::metrics::Metrics;
use davy::controller::rollouts::{self, Caches, Context};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::watcher::Event;
use serde_json::json;
use support::{NS, Sandbox, canary_rollout, rollout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_before_the_cache_caught_up_creates_nothing_twice() {
    let sandbox = Sandbox::start().await;
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    sandbox
        .create(&rollout(canary_rollout("race", 1, steps, "demo:blue")))
        .await;
    let (client, log) = sandbox.logging_client();
    // Caches listed once and never watched: they stay as they were before the first reconcile.
    let caches = Arc::new(Caches::listed(&client, NS).await.expect("list caches"));
    assert!(caches.replica_sets.is_empty());
    let ctx = Arc::new(Context::new(
        client.clone(),
        Arc::new(Metrics::default()),
        caches.clone(),
    ));
    let stale = Arc::new(sandbox.rollouts().get("race").await.expect("get rollout"));

    rollouts::reconcile(stale.clone(), ctx.clone())
        .await
        .expect("first reconcile");
    assert_eq!(
        log.count("POST", "/replicasets"),
        1,
        "the first reconcile creates the ReplicaSet"
    );
    let writes_after_first = log.writes_except_leases();
    assert!(!ctx.expectations.is_empty(), "the create is expected");

    // Same stale Rollout, same stale cache (no ReplicaSet in it): nothing may be written.
    let action = rollouts::reconcile(stale.clone(), ctx.clone())
        .await
        .expect("second reconcile");
    assert_eq!(
        log.count("POST", "/replicasets"),
        1,
        "a reconcile on a stale cache created the ReplicaSet again"
    );
    assert_eq!(log.writes_except_leases(), writes_after_first);
    assert_ne!(action, Action::await_change(), "it looks again later");

    // The cache catches up (as its watch would deliver): the Rollout goes on, still one RS.
    let listed = sandbox
        .replica_sets()
        .list(&ListParams::default())
        .await
        .expect("list rs")
        .items;
    assert_eq!(listed.len(), 1);
    for rs in listed {
        caches.replica_sets.apply(Event::Apply(rs));
    }
    let fresh = Arc::new(sandbox.rollouts().get("race").await.expect("get rollout"));
    let uid = fresh.metadata.uid.clone().unwrap_or_default();
    let check = ctx
        .expectations
        .check(&uid, std::time::Instant::now(), |kind, name| match kind {
            Kind::Rollout => fresh.metadata.resource_version.clone(),
            Kind::ReplicaSet => caches.replica_sets.resource_version(NS, name),
            _ => None,
        });
    assert_eq!(
        check,
        Check::Met,
        "the caches show every write of the first reconcile"
    );
    rollouts::reconcile(fresh, ctx.clone())
        .await
        .expect("third reconcile");
    let replica_sets: Vec<ReplicaSet> = sandbox
        .replica_sets()
        .list(&ListParams::default())
        .await
        .expect("list rs")
        .items;
    assert_eq!(replica_sets.len(), 1, "{replica_sets:?}");
    assert_eq!(log.count("POST", "/replicasets"), 1);
    sandbox.stop().await;
}
