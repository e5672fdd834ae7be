//! Live copies of a namespace's objects for the dashboard: one set of watches per namespace,
//! shared by every open page, and a counter that ticks on each change so pages are pushed a
//! new snapshot instead of polling.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::view::{list_view, rollout_view};
use crate::api::{AnalysisRun, Experiment, Rollout};
use crate::cli::get::Objects;

/// The watched objects of one namespace.
pub struct Namespace {
    rollouts: Store<Rollout>,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    analysis_runs: Store<AnalysisRun>,
    experiments: Store<Experiment>,
    changed: watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A watch of `api` into a store; every applied or deleted object ticks `tick`.
fn keep<K>(api: Api<K>, tick: Arc<watch::Sender<u64>>) -> (Store<K>, JoinHandle<()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if event.is_ok() {
                tick.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    });
    (reader, task)
}

fn owned<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.state().iter().map(|o| o.as_ref().clone()).collect()
}

impl Namespace {
    /// Starts the watches of namespace `ns`.
    fn start(client: &Client, ns: &str) -> Namespace {
        let (tx, changed) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let (rollouts, a) = keep(Api::namespaced(client.clone(), ns), tx.clone());
        let (replica_sets, b) = keep(Api::namespaced(client.clone(), ns), tx.clone());
        let (pods, c) = keep(Api::namespaced(client.clone(), ns), tx.clone());
        let (analysis_runs, d) = keep(Api::namespaced(client.clone(), ns), tx.clone());
        let (experiments, e) = keep(Api::namespaced(client.clone(), ns), tx);
        Namespace {
            rollouts,
            replica_sets,
            pods,
            analysis_runs,
            experiments,
            changed,
            tasks: vec![a, b, c, d, e],
        }
    }

    /// Waits until every watch has listed once (so a first snapshot is not empty by accident).
    pub async fn ready(&self) -> bool {
        self.rollouts.wait_until_ready().await.is_ok()
            && self.replica_sets.wait_until_ready().await.is_ok()
            && self.pods.wait_until_ready().await.is_ok()
            && self.analysis_runs.wait_until_ready().await.is_ok()
            && self.experiments.wait_until_ready().await.is_ok()
    }

    /// A receiver that sees the change counter move.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    /// The list view and, when `rollout` names one that exists, its tree.
    pub fn snapshot(&self, rollout: Option<&str>, now: Timestamp) -> Snapshot {
        let rollouts = owned(&self.rollouts);
        let replica_sets = owned(&self.replica_sets);
        let pods = owned(&self.pods);
        let analysis_runs = owned(&self.analysis_runs);
        let experiments = owned(&self.experiments);
        let objects = Objects {
            replica_sets: &replica_sets,
            pods: &pods,
            experiments: &experiments,
            analysis_runs: &analysis_runs,
        };
        let tree = rollout.and_then(|name| {
            rollouts
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
                .map(|ro| rollout_view(ro, objects, &analysis_runs, now))
        });
        Snapshot {
            list: list_view(&rollouts, objects, now),
            rollout: tree,
        }
    }
}

/// What a page shows at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// The rollout list.
    pub list: Value,
    /// The selected rollout's tree, if it exists.
    pub rollout: Option<Value>,
}

/// The namespaces pages have asked for, each watched once.
pub struct Namespaces {
    client: Client,
    watched: Mutex<HashMap<String, Arc<Namespace>>>,
}

impl Namespaces {
    /// No namespace watched yet.
    pub fn new(client: Client) -> Namespaces {
        Namespaces {
            client,
            watched: Mutex::new(HashMap::new()),
        }
    }

    /// The watches of `ns`, started on first use.
    pub fn get(&self, ns: &str) -> Arc<Namespace> {
        let mut map = self
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(ns.to_string())
            .or_insert_with(|| Arc::new(Namespace::start(&self.client, ns)))
            .clone()
    }
}
