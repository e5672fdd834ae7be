//! kube-rs watches against the sandbox API server's in-process transport: watchers that re-list
//! after a compaction (in-stream 410), streaming lists, raw watch events and bookmarks, and a
//! kube-runtime Controller reconciling a custom kind.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

use common::sandbox::{Widget, WidgetStatus, cm, setup, widget};

const WAIT: Duration = Duration::from_secs(10);

/// Polls `check` until it yields a value or the deadline passes.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn describe(ev: &Result<watcher::Event<ConfigMap>, watcher::Error>) -> String {
    match ev {
        Ok(watcher::Event::Init) => "Init".into(),
        Ok(watcher::Event::InitApply(o)) => format!("InitApply({})", o.name_any()),
        Ok(watcher::Event::InitDone) => "InitDone".into(),
        Ok(watcher::Event::Apply(o)) => format!("Apply({})", o.name_any()),
        Ok(watcher::Event::Delete(o)) => format!("Delete({})", o.name_any()),
        Err(watcher::Error::WatchError(s)) => format!("Err({})", s.code),
        Err(e) => format!("Err({e})"),
    }
}

async fn next_events(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    n: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(e)) => out.push(e),
            _ => panic!("watcher stalled after {out:?}"),
        }
    }
    out
}

fn spawn_watcher(
    api: Api<ConfigMap>,
    config: watcher::Config,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, config));
        while let Some(ev) = stream.next().await {
            if tx.send(describe(&ev)).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test]
async fn watcher_relists_after_compaction_410() {
    let (server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default());
    assert_eq!(
        next_events(&mut rx, 3).await,
        ["Init", "InitApply(a)", "InitDone"]
    );
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    assert_eq!(next_events(&mut rx, 1).await, ["Apply(b)"]);

    server.faults().compact();
    assert_eq!(
        next_events(&mut rx, 5).await,
        [
            "Err(410)",
            "Init",
            "InitApply(a)",
            "InitApply(b)",
            "InitDone"
        ]
    );
    api.create(&PostParams::default(), &cm("c", json!({})))
        .await
        .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(next_events(&mut rx, 2).await, ["Apply(c)", "Delete(a)"]);

    // A dropped watch resumes from its last resourceVersion without a re-list.
    server.faults().drop_watches();
    api.create(&PostParams::default(), &cm("d", json!({})))
        .await
        .unwrap();
    assert_eq!(next_events(&mut rx, 1).await, ["Apply(d)"]);
    assert_eq!(server.faults().stats().compactions, 1);
}

#[tokio::test]
async fn streaming_list_watcher_uses_initial_events() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default().streaming_lists());
    assert_eq!(
        next_events(&mut rx, 3).await,
        ["Init", "InitApply(a)", "InitDone"]
    );
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    assert_eq!(next_events(&mut rx, 1).await, ["Apply(b)"]);
}

#[tokio::test]
async fn raw_watch_events_bookmarks_and_noop_writes() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let a = api
        .create(&PostParams::default(), &cm("a", json!({"k": "1"})))
        .await
        .unwrap();
    let wp = WatchParams::default();
    let mut stream = api
        .watch(&wp, &a.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    api.replace("a", &PostParams::default(), &a).await.unwrap(); // no-op: no event
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    // Bookmarks may arrive at any point; the changes must come in order, and a bookmark at or
    // past the deletion must follow.
    let mut seen = Vec::new();
    let mut deleted_rv = None;
    loop {
        let ev = tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.data.unwrap()["k"])),
            WatchEvent::Deleted(o) => {
                deleted_rv = o.metadata.resource_version.clone();
                seen.push(format!("DELETED {}", o.data.unwrap()["k"]));
            }
            WatchEvent::Bookmark(b) => {
                let rv: u64 = b.metadata.resource_version.parse().unwrap();
                if deleted_rv
                    .as_ref()
                    .is_some_and(|d| rv >= d.parse::<u64>().unwrap())
                {
                    break;
                }
            }
            other => seen.push(format!("{other:?}")),
        }
    }
    assert_eq!(seen, ["MODIFIED 2", "DELETED 2"]);
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(w: Arc<Widget>, client: Arc<Client>) -> Result<Action, ReconcileError> {
    let api: Api<Widget> = Api::namespaced((*client).clone(), &w.namespace().unwrap_or_default());
    let status =
        json!({"status": {"ready": w.spec.size, "observedGeneration": w.metadata.generation}});
    api.patch_status(
        &w.name_any(),
        &PatchParams::default(),
        &Patch::Merge(status),
    )
    .await?;
    Ok(Action::await_change())
}

#[tokio::test]
async fn controller_reconciles_custom_kind() {
    let (server, client) = setup();
    let api: Api<Widget> = Api::default_namespaced(client.clone());
    let ctl = Controller::new(api.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(50)),
            Arc::new(client.clone()),
        )
        .for_each(|_| async {});
    server.spawn(ctl);
    api.create(&PostParams::default(), &widget("w1", 3))
        .await
        .unwrap();
    let converged = |size: i64, generation: i64| {
        let api = api.clone();
        move || {
            let api = api.clone();
            async move {
                let w = api.get("w1").await.ok()?;
                (w.status
                    == Some(WidgetStatus {
                        ready: size,
                        observed_generation: generation,
                    }))
                .then_some(())
            }
        }
    };
    eventually("first reconcile", converged(3, 1)).await;
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 5}})),
    )
    .await
    .unwrap();
    eventually("reconcile of the spec change", converged(5, 2)).await;
    server.shutdown();
}
