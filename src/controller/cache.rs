//! The controller's shared read caches: one watch per kind feeds an in-memory index that every
//! reconcile reads, so a reconcile costs what its own Rollout owns, not what the namespace
//! holds.
//!
//! A [`Cache`] keeps objects by namespace and name, and by the uid of their controller owner
//! (the Rollout of a ReplicaSet or AnalysisRun). Objects lose their `managedFields` and their
//! `kubectl.kubernetes.io/last-applied-configuration` annotation on the way in: nothing the
//! controller decides reads them, and they are most of an object's size. The controller only
//! ever patches (never replaces) objects, so what was dropped here is never written back.
//!
//! A cache may lag the API server: a reconcile right after our own write can read the object
//! as it was before. [`super::expectations`] is what keeps such a reconcile from acting twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::Config};
use kube::{Api, Resource};
use tokio::sync::watch;

/// The annotation `kubectl apply` keeps a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// (namespace, name); the namespace is empty for cluster-scoped objects.
type Key = (String, String);

/// Drops what no decision reads (see the module docs) from an object entering a cache.
pub fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The uid of an object's controller owner, if it has one.
fn controller_uid<K: Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true))
        .map(|owner| owner.uid.as_str())
}

fn key_of<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The indexed objects of one kind.
struct Index<K> {
    by_namespace: HashMap<String, BTreeMap<String, Arc<K>>>,
    by_owner: HashMap<String, BTreeSet<Key>>,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Index {
            by_namespace: HashMap::new(),
            by_owner: HashMap::new(),
        }
    }
}

impl<K: Resource> Index<K> {
    fn insert(&mut self, object: K) {
        let key = key_of(&object);
        self.remove(&key);
        if let Some(uid) = controller_uid(&object) {
            self.by_owner
                .entry(uid.to_string())
                .or_default()
                .insert(key.clone());
        }
        self.by_namespace
            .entry(key.0)
            .or_default()
            .insert(key.1, Arc::new(object));
    }

    fn remove(&mut self, key: &Key) {
        let Some(names) = self.by_namespace.get_mut(&key.0) else {
            return;
        };
        let Some(old) = names.remove(&key.1) else {
            return;
        };
        if names.is_empty() {
            self.by_namespace.remove(&key.0);
        }
        if let Some(uid) = controller_uid(old.as_ref())
            && let Some(keys) = self.by_owner.get_mut(uid)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.by_owner.remove(uid);
            }
        }
    }

    fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.by_namespace.get(namespace)?.get(name).cloned()
    }

    fn len(&self) -> usize {
        self.by_namespace.values().map(BTreeMap::len).sum()
    }
}

struct State<K> {
    live: Index<K>,
    /// The objects of a re-list in progress; swapped in whole at its end, so readers never see
    /// a half-listed kind.
    relisting: Option<Index<K>>,
}

/// An indexed, watch-fed cache of one kind (see the module docs).
pub struct Cache<K> {
    state: RwLock<State<K>>,
    synced: watch::Sender<bool>,
}

impl<K: Resource> Default for Cache<K> {
    fn default() -> Self {
        Cache {
            state: RwLock::new(State {
                live: Index::default(),
                relisting: None,
            }),
            synced: watch::Sender::new(false),
        }
    }
}

impl<K: Resource + Clone> Cache<K> {
    /// An empty cache that has not synced.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State<K>> {
        // A panic while holding the lock leaves a consistent index (every mutation is a single
        // map operation), so a poisoned lock is still safe to read.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State<K>> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies one watch event (the watch task calls this; tests may call it directly).
    pub fn apply(&self, event: Event<K>) {
        let mut state = self.write();
        match event {
            Event::Apply(mut object) => {
                slim(&mut object);
                state.live.insert(object);
            }
            Event::Delete(object) => state.live.remove(&key_of(&object)),
            Event::Init => state.relisting = Some(Index::default()),
            Event::InitApply(mut object) => {
                slim(&mut object);
                match state.relisting.as_mut() {
                    Some(relisting) => relisting.insert(object),
                    None => state.live.insert(object),
                }
            }
            Event::InitDone => {
                if let Some(relisted) = state.relisting.take() {
                    state.live = relisted;
                }
                drop(state);
                self.synced.send_replace(true);
            }
        }
    }

    /// Whether the first full list has been read.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first full list has been read.
    pub async fn synced(&self) {
        let mut receiver = self.synced.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = receiver.wait_for(|synced| *synced).await;
    }

    /// The object `namespace/name` (namespace empty for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.read().live.get(namespace, name)
    }

    /// The objects whose controller owner has this uid.
    pub fn owned_by(&self, uid: &str) -> Vec<Arc<K>> {
        let state = self.read();
        let Some(keys) = state.live.by_owner.get(uid) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|(namespace, name)| state.live.get(namespace, name))
            .collect()
    }

    /// The objects of one namespace, by name.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.read()
            .live
            .by_namespace
            .get(namespace)
            .map(|names| names.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The resourceVersion of `namespace/name`, if cached.
    pub fn resource_version(&self, namespace: &str, name: &str) -> Option<String> {
        self.read()
            .live
            .get(namespace, name)
            .and_then(|object| object.meta().resource_version.clone())
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.read().live.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Feeds `cache` from a watch of `api` until the stream ends (it does not: the watcher retries
/// with backoff), handing the owners each change concerns to `changed`.
pub async fn feed<K, F, I, T>(
    cache: Arc<Cache<K>>,
    api: Api<K>,
    config: Config,
    concerns: F,
    changed: impl FnMut(T),
) where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(&K) -> I,
    I: IntoIterator<Item = T>,
{
    let events = watch_with_backoff(api, config).filter_map(|event| async move {
        match event {
            Ok(event) => Some(event),
            Err(error) => {
                tracing::warn!(kind = %K::kind(&()), %error, "watch failed; retrying");
                None
            }
        }
    });
    feed_events(&cache, events, concerns, changed).await;
}

/// Applies each event of `events` to `cache`, then calls `changed` with the owners the
/// event concerns (those of a list's objects at the list's end): the cache first, so a reconcile a trigger starts reads the change that
/// started it (the other order lost the last ReplicaSet status update of a Rollout now and
/// then, leaving it Progressing for good).
pub async fn feed_events<K, S, F, I, T>(
    cache: &Cache<K>,
    events: S,
    concerns: F,
    mut changed: impl FnMut(T),
) where
    K: Resource + Clone,
    S: Stream<Item = Event<K>>,
    F: Fn(&K) -> I,
    I: IntoIterator<Item = T>,
{
    let mut events = std::pin::pin!(events);
    // A (re-)list's objects become visible together at its end; so do their triggers.
    let mut listed: Vec<T> = Vec::new();
    while let Some(event) = events.next().await {
        let concerned: Vec<T> = match &event {
            Event::Apply(object) | Event::Delete(object) => concerns(object).into_iter().collect(),
            Event::InitApply(object) => {
                listed.extend(concerns(object));
                Vec::new()
            }
            Event::Init => {
                listed.clear();
                Vec::new()
            }
            Event::InitDone => std::mem::take(&mut listed),
        };
        cache.apply(event);
        concerned.into_iter().for_each(&mut changed);
    }
}

/// A watch stream with kube-runtime's default backoff, so a failing API server is retried
/// without a busy loop.
fn watch_with_backoff<K>(
    api: Api<K>,
    config: Config,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, config).default_backoff()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Rollout;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use kube::runtime::reflector::ObjectRef;

    fn rs(name: &str, owner: Option<&str>, rv: &str) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        uid: uid.into(),
                        controller: Some(true),
                        kind: "Rollout".into(),
                        name: "r".into(),
                        api_version: "argoproj.io/v1alpha1".into(),
                        ..OwnerReference::default()
                    }]
                }),
                annotations: Some(
                    [(LAST_APPLIED.to_string(), "{...}".to_string())]
                        .into_iter()
                        .collect(),
                ),
                managed_fields: Some(vec![Default::default()]),
                ..ObjectMeta::default()
            },
            ..ReplicaSet::default()
        }
    }

    #[test]
    fn indexes_by_owner_and_follows_updates_and_deletes() {
        let cache = Cache::<ReplicaSet>::new();
        cache.apply(Event::Apply(rs("a", Some("u1"), "1")));
        cache.apply(Event::Apply(rs("b", Some("u1"), "2")));
        cache.apply(Event::Apply(rs("c", Some("u2"), "3")));
        cache.apply(Event::Apply(rs("d", None, "4")));
        let names = |uid: &str| -> Vec<String> {
            cache
                .owned_by(uid)
                .iter()
                .map(|rs| rs.metadata.name.clone().unwrap_or_default())
                .collect()
        };
        assert_eq!(names("u1"), ["a", "b"]);
        assert_eq!(names("u2"), ["c"]);
        // An owner change moves the object between owners.
        cache.apply(Event::Apply(rs("b", Some("u2"), "5")));
        assert_eq!(names("u1"), ["a"]);
        assert_eq!(names("u2"), ["b", "c"]);
        assert_eq!(cache.resource_version("ns", "b").as_deref(), Some("5"));
        cache.apply(Event::Delete(rs("a", Some("u1"), "6")));
        assert!(names("u1").is_empty());
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.in_namespace("ns").len(), 3);
        assert!(cache.in_namespace("other").is_empty());
    }

    #[tokio::test]
    async fn a_trigger_fires_only_once_the_cache_holds_the_change() {
        let cache = Cache::<ReplicaSet>::new();
        let events = futures::stream::iter([
            Event::Init,
            Event::InitApply(rs("a", Some("u1"), "1")),
            Event::InitApply(rs("b", Some("u1"), "1")),
            Event::InitDone,
            Event::Apply(rs("a", Some("u1"), "2")),
            Event::Delete(rs("a", Some("u1"), "3")),
        ]);
        let mut seen = Vec::new();
        feed_events(
            &cache,
            events,
            |rs: &ReplicaSet| {
                let rv = rs.metadata.resource_version.clone().unwrap_or_default();
                Some(ObjectRef::<Rollout>::new(&rv).within("ns"))
            },
            |rollout| {
                // What a reconcile started now would read.
                seen.push((rollout.name.clone(), cache.resource_version("ns", "a")));
            },
        )
        .await;
        assert_eq!(
            seen,
            [
                ("1".to_string(), Some("1".to_string())),
                ("1".to_string(), Some("1".to_string())),
                ("2".to_string(), Some("2".to_string())),
                ("3".to_string(), None),
            ]
        );
    }

    #[test]
    fn drops_managed_fields_and_last_applied() {
        let cache = Cache::<ReplicaSet>::new();
        cache.apply(Event::Apply(rs("a", None, "1")));
        let cached = cache.get("ns", "a").unwrap();
        assert!(cached.metadata.managed_fields.is_none());
        assert!(cached.metadata.annotations.is_none());
    }

    #[test]
    fn a_relist_replaces_the_whole_kind_at_its_end_and_marks_synced() {
        let cache = Cache::<ReplicaSet>::new();
        assert!(!cache.is_synced());
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(rs("a", Some("u1"), "1")));
        cache.apply(Event::InitDone);
        assert!(cache.is_synced());
        assert_eq!(cache.len(), 1);
        // A re-list after a watch gap: `a` was deleted meanwhile, `b` created.
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(rs("b", Some("u1"), "7")));
        // Readers still see the old, complete list until the re-list ends.
        assert!(cache.get("ns", "a").is_some());
        cache.apply(Event::InitDone);
        assert!(cache.get("ns", "a").is_none());
        assert_eq!(cache.owned_by("u1").len(), 1);
    }
}
