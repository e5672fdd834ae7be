//! The workloads `spec.workloadRef` names (Deployments, ReplicaSets, PodTemplates): one cache
//! per kind, fed by a watch started the first time a Rollout names that kind (as upstream
//! creates its informers lazily, so a cluster without workloadRef Rollouts holds no
//! Deployment), and the index from a workload to the Rollouts naming it, so a change to the
//! workload reconciles them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplate;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::cache::{self, Cache};
use crate::api::Rollout;
use crate::rollout::workload::{Workload, WorkloadKind};

/// How long a reconcile waits for a just-started workload watch to list (upstream's
/// `informerSyncTimeout`).
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// (namespace, kind, name) of a referenced workload.
type WorkloadKey = (String, WorkloadKind, String);

/// Where lazily started watches get their client and send their triggers.
struct Starter {
    client: Client,
    namespace: Option<String>,
    triggers: mpsc::UnboundedSender<ObjectRef<Rollout>>,
    shutdown: CancellationToken,
}

/// The referenced workloads' caches and who references them (see the module docs).
#[derive(Default)]
pub struct Workloads {
    deployments: Arc<Cache<Deployment>>,
    replica_sets: Arc<Cache<ReplicaSet>>,
    pod_templates: Arc<Cache<PodTemplate>>,
    starter: Mutex<Option<Starter>>,
    started: Mutex<BTreeSet<WorkloadKind>>,
    index: Arc<RefIndex>,
}

/// The Rollouts naming each workload, kept from the Rollout watch.
#[derive(Default)]
struct RefIndex {
    state: Mutex<IndexState>,
}

#[derive(Default)]
struct IndexState {
    by_workload: HashMap<WorkloadKey, BTreeSet<String>>,
    by_rollout: HashMap<(String, String), WorkloadKey>,
}

impl RefIndex {
    fn update(&self, namespace: &str, rollout: &str, now: Option<WorkloadKey>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (namespace.to_string(), rollout.to_string());
        if let Some(old) = state.by_rollout.remove(&key)
            && let Some(names) = state.by_workload.get_mut(&old)
        {
            names.remove(rollout);
            if names.is_empty() {
                state.by_workload.remove(&old);
            }
        }
        if let Some(workload) = now {
            state
                .by_workload
                .entry(workload.clone())
                .or_default()
                .insert(rollout.to_string());
            state.by_rollout.insert(key, workload);
        }
    }

    fn rollouts(&self, key: &WorkloadKey) -> Vec<ObjectRef<Rollout>> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .by_workload
            .get(key)
            .into_iter()
            .flatten()
            .map(|name| ObjectRef::new(name).within(&key.0))
            .collect()
    }
}

/// The workload a Rollout names, if it names one of a supported kind.
fn referenced(rollout: &Rollout) -> Option<WorkloadKey> {
    let reference = rollout.spec.workload_ref.as_ref()?;
    let kind = WorkloadKind::of(reference).ok()?;
    Some((
        rollout.namespace().unwrap_or_default(),
        kind,
        reference.name.clone().unwrap_or_default(),
    ))
}

impl Workloads {
    /// Lets [`Workloads::update`] start watches on `client` (in `namespace`, or all), sending
    /// the Rollouts a workload change concerns to `triggers`, until `shutdown`. Without this
    /// (tools that reconcile by hand), workloads are read with a GET per reconcile.
    pub fn start_watching(
        &self,
        client: Client,
        namespace: Option<String>,
        triggers: mpsc::UnboundedSender<ObjectRef<Rollout>>,
        shutdown: CancellationToken,
    ) {
        *self.starter.lock().unwrap_or_else(PoisonError::into_inner) = Some(Starter {
            client,
            namespace,
            triggers,
            shutdown,
        });
    }

    /// Records the workload `rollout` names now (`deleted`: none), starting the watch of its
    /// kind if this is the first Rollout naming one.
    pub fn update(&self, rollout: &Rollout, deleted: bool) {
        let now = if deleted { None } else { referenced(rollout) };
        if let Some((_, kind, _)) = &now {
            self.ensure_watch(*kind);
        }
        self.index.update(
            rollout.metadata.namespace.as_deref().unwrap_or_default(),
            &rollout.name_any(),
            now,
        );
    }

    fn ensure_watch(&self, kind: WorkloadKind) {
        let starter = self.starter.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(starter) = starter.as_ref() else {
            return;
        };
        if !self
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(kind)
        {
            return;
        }
        tracing::info!(
            kind = kind.as_str(),
            "watching workloads named by workloadRef"
        );
        match kind {
            WorkloadKind::Deployment => self.spawn(starter, kind, self.deployments.clone()),
            WorkloadKind::ReplicaSet => self.spawn(starter, kind, self.replica_sets.clone()),
            WorkloadKind::PodTemplate => self.spawn(starter, kind, self.pod_templates.clone()),
        }
    }

    fn spawn<K>(&self, starter: &Starter, kind: WorkloadKind, cache: Arc<Cache<K>>)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let api: Api<K> = match &starter.namespace {
            Some(namespace) => Api::namespaced(starter.client.clone(), namespace),
            None => Api::all(starter.client.clone()),
        };
        let index = self.index.clone();
        let triggers = starter.triggers.clone();
        let shutdown = starter.shutdown.clone();
        tokio::spawn(async move {
            let concerns = move |object: &K| {
                let key = (
                    object.meta().namespace.clone().unwrap_or_default(),
                    kind,
                    object.meta().name.clone().unwrap_or_default(),
                );
                index.rollouts(&key)
            };
            let changed = move |rollout| {
                // The receiver only goes away at shutdown.
                let _ = triggers.send(rollout);
            };
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = cache::feed(cache, api, watcher::Config::default(), concerns, changed) => {}
            }
        });
    }

    fn is_watched(&self, kind: WorkloadKind) -> bool {
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&kind)
    }

    /// The workload `namespace/name` of `kind` (`Ok(None)`: it does not exist), from its
    /// cache when watched, else from the API server. The error is the resolution error text.
    pub async fn find(
        &self,
        client: &Client,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
    ) -> Result<Option<Workload>, String> {
        if self.is_watched(kind) {
            match kind {
                WorkloadKind::Deployment => cached(&self.deployments, kind, namespace, name).await,
                WorkloadKind::ReplicaSet => cached(&self.replica_sets, kind, namespace, name).await,
                WorkloadKind::PodTemplate => {
                    cached(&self.pod_templates, kind, namespace, name).await
                }
            }
        } else {
            match kind {
                WorkloadKind::Deployment => fetched::<Deployment>(client, namespace, name).await,
                WorkloadKind::ReplicaSet => fetched::<ReplicaSet>(client, namespace, name).await,
                WorkloadKind::PodTemplate => fetched::<PodTemplate>(client, namespace, name).await,
            }
        }
    }
}

async fn cached<K>(
    cache: &Cache<K>,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> Result<Option<Workload>, String>
where
    K: Resource + Clone,
    for<'a> Workload: From<&'a K>,
{
    if tokio::time::timeout(SYNC_TIMEOUT, cache.synced())
        .await
        .is_err()
    {
        // Go's `GroupVersionKind` string, as upstream's message prints it.
        let group_version = match kind {
            WorkloadKind::PodTemplate => "/v1",
            _ => "apps/v1",
        };
        return Err(format!(
            "failed to sync informer for {group_version}, Kind={}",
            kind.as_str()
        ));
    }
    Ok(cache
        .get(namespace, name)
        .map(|object| Workload::from(object.as_ref())))
}

async fn fetched<K>(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Workload>, String>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    for<'a> Workload: From<&'a K>,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map(|found| found.as_ref().map(Workload::from))
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(name: &str, workload: Option<&str>) -> Rollout {
        let mut spec = json!({"strategy": {"canary": {}}});
        if let Some(target) = workload {
            spec["workloadRef"] = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": target});
        }
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": "ns"}, "spec": spec
        }))
        .unwrap()
    }

    fn named(workloads: &Workloads, name: &str) -> Vec<String> {
        workloads
            .index
            .rollouts(&("ns".into(), WorkloadKind::Deployment, name.into()))
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    #[test]
    fn the_index_follows_references_renames_and_deletes() {
        let workloads = Workloads::default();
        workloads.update(&rollout("a", Some("web")), false);
        workloads.update(&rollout("b", Some("web")), false);
        assert_eq!(named(&workloads, "web"), ["a", "b"]);
        workloads.update(&rollout("a", Some("api")), false);
        assert_eq!(named(&workloads, "web"), ["b"]);
        assert_eq!(named(&workloads, "api"), ["a"]);
        workloads.update(&rollout("b", None), false);
        workloads.update(&rollout("a", Some("api")), true);
        assert!(named(&workloads, "web").is_empty());
        assert!(named(&workloads, "api").is_empty());
        // Without a starter nothing is watched: reads go to the API server.
        assert!(!workloads.is_watched(WorkloadKind::Deployment));
    }
}
