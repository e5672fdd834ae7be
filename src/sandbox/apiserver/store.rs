//! The object store: objects by resource, namespace and name as JSON; the global
//! resourceVersion; the bounded event history that watches read; create/update/apply/delete.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::body::Decoded;
use super::builtins::{self, ClusterIp};
use super::endpoints::EndpointTracker;
use super::error::ApiError;
use super::fields::{self, Scope, Writer};
use super::index::{Candidates, LabelIndex, ordered_keys};
use super::resources::{GroupResource, Registry, ResourceDef, def_from_crd};
use super::rules::{self, meta_str};
use super::schema::{self, FieldValidation};
use super::selectors::LabelSelector;
use super::typed;

/// (namespace, name); the namespace is empty for cluster-scoped objects.
pub type ObjKey = (String, String);

/// An object's identity across resources.
pub type ObjRef = (GroupResource, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored change, as watches replay it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub def: Arc<ResourceDef>,
    pub kind: EventType,
    pub object: Arc<Value>,
}

/// Which object a write addresses.
#[derive(Debug, Clone, Copy)]
pub struct ObjectId<'a> {
    pub def: &'a Arc<ResourceDef>,
    /// Ignored for cluster-scoped kinds.
    pub ns: Option<&'a str>,
    pub name: &'a str,
}

/// Who writes, when, and whether to keep the result (`dryRun=All` does not).
#[derive(Debug, Clone, Copy)]
pub struct WriteCtx<'a> {
    pub now: DateTime<Utc>,
    pub manager: &'a str,
    pub api_version: &'a str,
    pub dry_run: bool,
    /// What to do about fields a custom resource's schema does not know.
    pub field_validation: FieldValidation,
    /// Where `Warning` headers for the response are collected (none: dropped).
    pub warnings: Option<&'a Mutex<Vec<String>>>,
    /// The request body as decoded, with its duplicate fields (none: a server-side write).
    pub decoded: Option<&'a Decoded>,
}

impl<'a> WriteCtx<'a> {
    /// A write by the server itself or a fixture: unknown fields pruned silently.
    pub fn internal(now: DateTime<Utc>, manager: &'a str, api_version: &'a str) -> Self {
        WriteCtx {
            now,
            manager,
            api_version,
            dry_run: false,
            field_validation: FieldValidation::Ignore,
            warnings: None,
            decoded: None,
        }
    }
}

impl WriteCtx<'_> {
    fn writer<'t>(&'t self, scope: Scope, time: &'t str) -> Writer<'t> {
        Writer {
            manager: self.manager,
            api_version: self.api_version,
            scope,
            time,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<Propagation>,
    /// `gracePeriodSeconds`: only Pods have a grace period.
    pub grace_period: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

/// What a DELETE did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// Gone; the last state.
    Removed(Arc<Value>),
    /// Finalizers hold it; it now carries a deletionTimestamp.
    Marked(Arc<Value>),
}

/// Work the garbage collector still has to do after a write.
#[derive(Debug, Clone)]
pub(super) enum GcTask {
    /// Delete (or, for other live owners, release) the dependents of a removed or
    /// foreground-deleting owner.
    Cascade { owner_uid: String, foreground: bool },
    /// A dependent went away; a foreground-deleting owner may now finish.
    Released { owner_uid: String },
    /// A namespace is terminating: delete what is in it (the namespace controller's work).
    NamespaceContents(String),
    /// An object in a terminating namespace went away.
    NamespaceCheck(String),
    /// Release the dependents of an owner deleted with the orphan policy, then let it go.
    Orphan { owner: ObjRef, owner_uid: String },
}

/// Everything under the store lock.
pub struct State {
    pub(super) registry: Registry,
    pub(super) tables: HashMap<GroupResource, BTreeMap<ObjKey, Arc<Value>>>,
    /// Labels of every stored object, kept in step with `tables` by `put` and `remove`.
    labels: LabelIndex,
    rv: u64,
    history: VecDeque<Event>,
    history_limit: usize,
    /// Watches from a resourceVersion below this get 410 Expired.
    floor: u64,
    /// owner uid -> objects naming it in ownerReferences.
    pub(super) dependents: HashMap<String, BTreeSet<ObjRef>>,
    /// Owners in foreground deletion, waiting for their dependents.
    pub(super) foreground: HashMap<String, ObjRef>,
    pub(super) terminating: HashSet<String>,
    pub(super) gc_queue: VecDeque<GcTask>,
    rng: u64,
    /// Cluster IPs held by Services, and where the allocator looks next.
    service_ips: HashSet<String>,
    next_service_ip: u32,
    /// Services whose EndpointSlices and Endpoints need an update, found through their selectors.
    pub(super) endpoints: EndpointTracker,
}

/// splitmix64: uids and generated names need uniqueness, not cryptographic randomness.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn key_of(def: &ResourceDef, ns: Option<&str>, name: &str) -> ObjKey {
    let ns = if def.namespaced {
        ns.unwrap_or_default()
    } else {
        ""
    };
    (ns.to_string(), name.to_string())
}

impl State {
    pub fn new(history_limit: usize, seed: u64) -> Self {
        State {
            registry: Registry::with_builtins(),
            tables: HashMap::new(),
            labels: LabelIndex::default(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            floor: 0,
            dependents: HashMap::new(),
            foreground: HashMap::new(),
            terminating: HashSet::new(),
            gc_queue: VecDeque::new(),
            rng: seed,
            service_ips: HashSet::new(),
            next_service_ip: 0,
            endpoints: EndpointTracker::default(),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    pub fn object_count(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }

    fn uid(&mut self) -> String {
        let a = next_random(&mut self.rng);
        let b = next_random(&mut self.rng);
        // RFC 4122 version 4 layout.
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    /// Marks every retained event as too old: the next watch from an earlier RV gets 410.
    /// The RV is bumped so that a fresh list has a version a watch can start from.
    pub fn compact(&mut self) -> u64 {
        self.rv += 1;
        self.floor = self.rv;
        self.history.clear();
        self.rv
    }

    pub fn get(&self, gr: &GroupResource, key: &ObjKey) -> Option<Arc<Value>> {
        self.tables.get(gr).and_then(|t| t.get(key)).cloned()
    }

    /// Objects of a resource in key order, optionally in one namespace, strictly after `after`.
    pub fn range<'a>(
        &'a self,
        gr: &GroupResource,
        ns: Option<&'a str>,
        after: Option<&ObjKey>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Value>> + 'a> {
        use std::ops::Bound;
        let Some(table) = self.tables.get(gr) else {
            return Box::new(std::iter::empty());
        };
        let start = match (after, ns) {
            (Some(k), _) => Bound::Excluded(k.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let iter = table.range((start, Bound::Unbounded));
        match ns {
            Some(ns) => Box::new(iter.take_while(move |(k, _)| k.0 == ns).map(|(_, v)| v)),
            None => Box::new(iter.map(|(_, v)| v)),
        }
    }

    /// Objects of a resource that may match `labels`, in key order, optionally in one
    /// namespace, strictly after `after`: the label index's candidates when the selector has
    /// an `=` or `in` requirement, else every object. Callers still apply the selector.
    pub fn select<'a>(
        &'a self,
        gr: &GroupResource,
        ns: Option<&'a str>,
        after: Option<&ObjKey>,
        labels: &LabelSelector,
    ) -> Box<dyn Iterator<Item = &'a Arc<Value>> + 'a> {
        match self.labels.candidates(gr, labels) {
            Candidates::All => self.range(gr, ns, after),
            Candidates::Among(sets) => {
                let Some(table) = self.tables.get(gr) else {
                    return Box::new(std::iter::empty());
                };
                let keys = ordered_keys(&sets, ns, after);
                Box::new(keys.into_iter().filter_map(move |k| table.get(k)))
            }
        }
    }

    /// Events with an RV above `rv`, oldest first.
    pub fn events_after(&self, rv: u64) -> impl Iterator<Item = &Event> {
        let start = self.history.partition_point(|e| e.rv <= rv);
        self.history.range(start..)
    }

    fn record(&mut self, def: &Arc<ResourceDef>, kind: EventType, object: Arc<Value>) {
        self.history.push_back(Event {
            rv: self.rv,
            def: def.clone(),
            kind,
            object,
        });
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.floor = self.floor.max(e.rv);
            }
        }
    }

    fn index_owners(
        &mut self,
        def: &ResourceDef,
        key: &ObjKey,
        old: Option<&Value>,
        new: Option<&Value>,
    ) {
        let before: Vec<String> = old.map(rules::owner_uids).unwrap_or_default();
        let after: Vec<String> = new.map(rules::owner_uids).unwrap_or_default();
        let me: ObjRef = (def.gr.clone(), key.0.clone(), key.1.clone());
        for uid in before.iter().filter(|u| !after.contains(u)) {
            if let Some(set) = self.dependents.get_mut(uid) {
                set.remove(&me);
                if set.is_empty() {
                    self.dependents.remove(uid);
                }
            }
        }
        for uid in after.iter().filter(|u| !before.contains(u)) {
            self.dependents
                .entry(uid.clone())
                .or_default()
                .insert(me.clone());
        }
    }

    /// Stores a new version with the next RV and records the event.
    fn put(
        &mut self,
        def: &Arc<ResourceDef>,
        key: ObjKey,
        mut obj: Value,
        kind: EventType,
    ) -> Arc<Value> {
        self.rv += 1;
        rules::set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
        let obj = Arc::new(obj);
        let old = self
            .tables
            .entry(def.gr.clone())
            .or_default()
            .insert(key.clone(), obj.clone());
        self.index_owners(def, &key, old.as_deref(), Some(&obj));
        self.labels
            .update(&def.gr, &key, old.as_deref(), Some(&obj));
        self.note_endpoints(def, &key, old.as_deref(), Some(&obj));
        self.record(def, kind, obj.clone());
        obj
    }

    /// Records which Services' endpoints a Pod or Service write may have changed.
    fn note_endpoints(
        &mut self,
        def: &ResourceDef,
        key: &ObjKey,
        old: Option<&Value>,
        new: Option<&Value>,
    ) {
        if def.gr == pods_gr() {
            self.endpoints.pod_changed(&key.0, old, new);
        } else if def.gr == services_gr() {
            self.endpoints.service_changed(key, new);
        }
    }

    /// Removes an object for good, records DELETED with its last state, and queues GC work.
    pub(super) fn remove(
        &mut self,
        def: &Arc<ResourceDef>,
        key: ObjKey,
        mut last: Value,
    ) -> Arc<Value> {
        self.rv += 1;
        rules::set_meta(&mut last, "resourceVersion", json!(self.rv.to_string()));
        let last = Arc::new(last);
        let old = self.tables.get_mut(&def.gr).and_then(|t| t.remove(&key));
        self.index_owners(def, &key, old.as_deref(), None);
        self.labels.update(&def.gr, &key, old.as_deref(), None);
        self.note_endpoints(def, &key, old.as_deref(), None);
        self.record(def, EventType::Deleted, last.clone());
        if def.gr == services_gr()
            && let Some(ip) = builtins::allocated_ip(&last)
        {
            self.service_ips.remove(&ip);
        }
        if let Some(uid) = meta_str(&last, "uid") {
            if self.dependents.contains_key(uid) {
                self.gc_queue.push_back(GcTask::Cascade {
                    owner_uid: uid.to_string(),
                    foreground: false,
                });
            }
            self.foreground.remove(uid);
        }
        for owner_uid in rules::owner_uids(&last) {
            self.gc_queue.push_back(GcTask::Released { owner_uid });
        }
        if def.namespaced && self.terminating.contains(&key.0) {
            self.gc_queue
                .push_back(GcTask::NamespaceCheck(key.0.clone()));
        }
        if def.gr == crd_gr() {
            self.unregister_crd(&last);
        }
        last
    }

    /// Deleting a CRD stops serving its kind and deletes every object of it.
    fn unregister_crd(&mut self, crd: &Value) {
        let Ok(def) = def_from_crd(crd) else { return };
        let Some(def) = self.registry.remove(&def.gr) else {
            return;
        };
        let objects: Vec<(ObjKey, Arc<Value>)> = self
            .tables
            .get(&def.gr)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (key, obj) in objects {
            self.remove(&def, key, (*obj).clone());
        }
        self.tables.remove(&def.gr);
        self.labels.remove_resource(&def.gr);
    }

    fn namespace_usable(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let Some(ns) = ns.filter(|_| def.namespaced) else {
            return Ok(());
        };
        let nsgr = GroupResource::new("", "namespaces");
        if self.get(&nsgr, &(String::new(), ns.to_string())).is_none() {
            return Err(ApiError::not_found("", "namespaces", ns));
        }
        if self.terminating.contains(ns) {
            let what = if name.is_empty() {
                def.gr.qualified()
            } else {
                format!("{} {name:?}", def.gr.qualified())
            };
            return Err(ApiError::Forbidden(format!(
                "{what} is forbidden: unable to create new content in namespace {ns} because it is being terminated"
            )));
        }
        Ok(())
    }

    /// The CRD hook: validates the definition, sets its status, and returns the kind it serves.
    fn crd_hook(
        &self,
        def: &ResourceDef,
        obj: &mut Value,
    ) -> Result<Option<ResourceDef>, ApiError> {
        if def.gr != crd_gr() {
            return Ok(None);
        }
        let served = def_from_crd(obj)?;
        if let Some(existing) = self.registry.get(&served.gr)
            && existing.builtin
        {
            return Err(ApiError::invalid(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                meta_str(obj, "name").unwrap_or_default(),
                "spec.group",
                "Invalid value: the group and resource are served by a built-in kind".into(),
            ));
        }
        if let Some(m) = obj.as_object_mut() {
            let names = m
                .get("spec")
                .and_then(|s| s.get("names"))
                .cloned()
                .unwrap_or(json!({}));
            let t = m
                .get("metadata")
                .and_then(|md| md.get("creationTimestamp"))
                .cloned()
                .unwrap_or(Value::Null);
            let cond = |ty: &str, reason: &str| json!({"type": ty, "status": "True", "lastTransitionTime": t, "reason": reason, "message": ""});
            m.insert(
                "status".into(),
                json!({
                    "conditions": [cond("NamesAccepted", "NoConflicts"), cond("Established", "InitialNamesAccepted")],
                    "acceptedNames": names,
                    "storedVersions": [served.storage_version()],
                }),
            );
        }
        Ok(Some(served))
    }

    /// POST: creates an object. `track` records the writer in managedFields (apply already did).
    pub fn create(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        mut body: Value,
        ctx: &WriteCtx,
        track: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let mut name = meta_str(&body, "name").unwrap_or_default().to_string();
        self.namespace_usable(def, ns, &name)?;
        if name.is_empty()
            && let Some(prefix) = meta_str(&body, "generateName").map(str::to_string)
        {
            const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
            loop {
                let mut r = next_random(&mut self.rng);
                let suffix: String = (0..5)
                    .map(|_| {
                        let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
                        r /= ALPHABET.len() as u64;
                        c
                    })
                    .collect();
                name = format!("{prefix}{suffix}");
                if self.get(&def.gr, &key_of(def, ns, &name)).is_none() {
                    break;
                }
            }
            rules::set_meta(&mut body, "name", json!(name));
        }
        let uid = self.uid();
        let mut obj = rules::prepare_create(def, ns, body, &uid, ctx.now)?;
        check_schema(def, &name, &mut obj, None, ctx)?;
        let key = key_of(def, ns, &name);
        if self.get(&def.gr, &key).is_some() {
            return Err(ApiError::AlreadyExists {
                group: def.gr.group.clone(),
                resource: def.gr.resource.clone(),
                name,
            });
        }
        let served = self.crd_hook(def, &mut obj)?;
        let service_ip = if def.gr == services_gr() {
            self.assign_cluster_ip(def, &name, &mut obj)?
        } else {
            None
        };
        if track {
            let time = rules::timestamp(ctx.now);
            fields::track_update(def, None, &mut obj, &ctx.writer(Scope::Main, &time));
        }
        if ctx.dry_run {
            return Ok(Arc::new(obj));
        }
        if let Some(ip) = service_ip {
            self.service_ips.insert(ip);
        }
        let stored = self.put(def, key, obj, EventType::Added);
        if let Some(served) = served {
            self.registry.insert(served);
        }
        Ok(stored)
    }

    /// Gives a new Service its cluster IP: the requested one when it is in range and free, else
    /// the next free one. Returns the address to mark as held once the Service is stored.
    fn assign_cluster_ip(
        &mut self,
        def: &ResourceDef,
        name: &str,
        obj: &mut Value,
    ) -> Result<Option<String>, ApiError> {
        let ip = match builtins::cluster_ip_request(obj) {
            ClusterIp::NotApplicable | ClusterIp::Headless => return Ok(None),
            ClusterIp::Requested(ip) => {
                builtins::check_requested_ip(def, name, &ip)?;
                if self.service_ips.contains(&ip) {
                    return Err(ApiError::invalid(
                        &def.gr.group,
                        &def.kind,
                        name,
                        "spec.clusterIPs",
                        format!(
                            "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
                        ),
                    ));
                }
                ip
            }
            ClusterIp::Allocate => {
                // The counter moves on from the last address given, so a free one is normally
                // the first tried; the bound only matters once the whole range is held.
                let free = (0..builtins::SERVICE_IPS).find_map(|_| {
                    let ip = builtins::nth_service_ip(self.next_service_ip);
                    self.next_service_ip = self.next_service_ip.wrapping_add(1);
                    (!self.service_ips.contains(&ip)).then_some(ip)
                });
                free.ok_or_else(|| ApiError::Internal {
                    code: 500,
                    message: "failed to allocate a serviceIP: range is full".into(),
                })?
            }
        };
        builtins::set_cluster_ip(obj, &ip);
        Ok(Some(ip))
    }

    /// PUT or PATCH: `f` turns the stored object into the candidate; the write rules do the rest.
    /// `track` records the writer in managedFields (server-side apply already did).
    pub fn update(
        &mut self,
        id: ObjectId,
        scope: Scope,
        ctx: &WriteCtx,
        track: bool,
        f: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let ObjectId { def, ns, name } = id;
        let key = key_of(def, ns, name);
        let old = self
            .get(&def.gr, &key)
            .ok_or_else(|| ApiError::not_found(&def.gr.group, &def.gr.resource, name))?;
        let candidate = f(&old)?;
        let mut new = rules::prepare_update(def, &old, candidate, scope, !track)?;
        check_schema(def, name, &mut new, Some(&old), ctx)?;
        if def.gr == services_gr() && scope == Scope::Main {
            builtins::keep_cluster_ip(def, &old, &mut new)?;
        }
        let served = self.crd_hook(def, &mut new)?;
        if track {
            let time = rules::timestamp(ctx.now);
            fields::track_update(def, Some(&old), &mut new, &ctx.writer(scope, &time));
        }
        if ctx.dry_run {
            return Ok(Arc::new(new));
        }
        let out = self.commit_update(def, key, &old, new);
        if let Some(served) = served {
            self.registry.insert(served);
        }
        Ok(out)
    }

    /// Stores an updated object unless nothing changed; an update that empties the finalizers of
    /// a deleting object removes it.
    pub(super) fn commit_update(
        &mut self,
        def: &Arc<ResourceDef>,
        key: ObjKey,
        old: &Arc<Value>,
        new: Value,
    ) -> Arc<Value> {
        if rules::unchanged(old, &new) {
            return old.clone();
        }
        // A Pod in its grace period stays until the kubelet (the simulator) deletes it with
        // grace 0, whatever else is written to it meanwhile.
        // A namespace also waits for the finalizers of its spec (the namespace controller's).
        let spec_held = new
            .get("spec")
            .and_then(|s| s.get("finalizers"))
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if rules::is_deleting(&new)
            && rules::finalizers(&new).is_empty()
            && !spec_held
            && builtins::deletion_grace(&new) == 0
        {
            return self.remove(def, key, new);
        }
        self.put(def, key, new, EventType::Modified)
    }

    /// Server-side apply; creates the object when absent. Returns the object and whether it was created.
    pub fn apply(
        &mut self,
        id: ObjectId,
        applied: &Value,
        scope: Scope,
        ctx: &WriteCtx,
        force: bool,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let ObjectId { def, ns, name } = id;
        let time = rules::timestamp(ctx.now);
        let writer = ctx.writer(scope, &time);
        if self.get(&def.gr, &key_of(def, ns, name)).is_none() {
            if scope != Scope::Main {
                return Err(ApiError::not_found(&def.gr.group, &def.gr.resource, name));
            }
            let mut candidate = fields::server_side_apply(def, None, applied, &writer, force)?;
            rules::set_meta(&mut candidate, "name", json!(name));
            return Ok((self.create(def, ns, candidate, ctx, false)?, true));
        }
        let out = self.update(id, scope, ctx, false, |old| {
            fields::server_side_apply(def, Some(old), applied, &writer, force)
        })?;
        Ok((out, false))
    }

    /// DELETE with finalizers, preconditions and propagation.
    pub fn delete(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOpts,
        ctx: &WriteCtx,
    ) -> Result<Deleted, ApiError> {
        let key = key_of(def, ns, name);
        let cur = self
            .get(&def.gr, &key)
            .ok_or_else(|| ApiError::not_found(&def.gr.group, &def.gr.resource, name))?;
        let conflict = |detail: String| ApiError::Conflict {
            group: def.gr.group.clone(),
            resource: def.gr.resource.clone(),
            name: name.to_string(),
            detail,
        };
        let uid = meta_str(&cur, "uid").unwrap_or_default().to_string();
        if let Some(want) = opts.precondition_uid.as_deref().filter(|w| *w != uid) {
            return Err(conflict(format!(
                "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
            )));
        }
        let rv = meta_str(&cur, "resourceVersion").unwrap_or_default();
        if let Some(want) = opts.precondition_rv.as_deref().filter(|w| *w != rv) {
            return Err(conflict(format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
            )));
        }
        if ctx.dry_run {
            return Ok(Deleted::Removed(cur));
        }
        let out = self.delete_object(
            def,
            key,
            opts.propagation.unwrap_or(Propagation::Background),
            opts.grace_period,
            ctx.now,
        );
        Ok(out)
    }
}

/// The request's field problems under `fieldValidation`: duplicate fields of the body (every
/// kind), and for a custom resource the fields its CRD's schema does not know (pruned) —
/// refused under `Strict` (400), warned about under `Warn`, ignored under `Ignore`. Then a
/// custom resource is defaulted and validated (422 `Invalid` with every cause).
fn check_schema(
    def: &ResourceDef,
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
    ctx: &WriteCtx,
) -> Result<(), ApiError> {
    let outcome = match def.schema.as_deref().filter(|_| !def.builtin) {
        Some(schema) => schema::process(schema, obj, old),
        None if def.builtin => schema::Outcome {
            unknown: typed::prune_unknown(&def.gr.group, &def.gr.resource, obj),
            causes: Vec::new(),
        },
        None => schema::Outcome::default(),
    };
    let unknown: Vec<String> = outcome
        .unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    let (strict_dups, warn_dups) = match ctx.decoded {
        Some(d) => (d.strict_errors(), d.duplicates.clone()),
        None => (Vec::new(), Vec::new()),
    };
    // kube-apiserver decodes a built-in kind in one strict pass (the conformance test reads
    // `unknown field "spec.x", duplicate field "spec.replicas"`); a custom resource's
    // duplicates come from decoding, its unknown fields from the later pruning.
    let (strict, warn): (Vec<String>, Vec<String>) = if def.builtin {
        (
            unknown.iter().cloned().chain(strict_dups).collect(),
            unknown.iter().cloned().chain(warn_dups).collect(),
        )
    } else {
        (
            strict_dups
                .into_iter()
                .chain(unknown.iter().cloned())
                .collect(),
            warn_dups
                .into_iter()
                .chain(unknown.iter().cloned())
                .collect(),
        )
    };
    match ctx.field_validation {
        FieldValidation::Strict if !strict.is_empty() => {
            let kind = &def.kind;
            return Err(ApiError::BadRequest(format!(
                "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                def.storage_version(),
                strict.join(", ")
            )));
        }
        FieldValidation::Warn if !warn.is_empty() => {
            if let Some(w) = ctx.warnings {
                w.lock().unwrap_or_else(|p| p.into_inner()).extend(warn);
            }
        }
        _ => {}
    }
    if outcome.causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::Invalid {
        group: def.gr.group.clone(),
        kind: def.kind.clone(),
        name: name.to_string(),
        causes: outcome.causes,
    })
}

pub(super) fn pods_gr() -> GroupResource {
    GroupResource::new("", "pods")
}

pub(super) fn services_gr() -> GroupResource {
    GroupResource::new("", "services")
}

pub fn crd_gr() -> GroupResource {
    GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
}

/// The store: state under one lock plus the signal that wakes watches.
pub struct Store {
    state: Mutex<State>,
    signal: watch::Sender<Signal>,
}

/// What watches wait on: a new resourceVersion, or a request to end every open watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signal {
    pub rv: u64,
    pub drops: u64,
}

impl Store {
    pub fn new(state: State) -> Self {
        let (signal, _) = watch::channel(Signal::default());
        Store {
            state: Mutex::new(state),
            signal,
        }
    }

    /// The lock for reads. A panic while holding it leaves consistent data (every write builds
    /// the new value before swapping it in), so a poisoned lock is still used.
    pub fn read(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a write under the lock, then wakes the watches.
    pub fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, rv) = {
            let mut state = self.read();
            let out = f(&mut state);
            (out, state.rv)
        };
        self.signal.send_if_modified(|s| {
            let changed = s.rv != rv;
            s.rv = rv;
            changed
        });
        out
    }

    pub fn subscribe(&self) -> watch::Receiver<Signal> {
        self.signal.subscribe()
    }

    /// Ends every open watch (they see a closed stream and re-watch).
    pub fn drop_watches(&self) {
        self.signal.send_modify(|s| s.drops += 1);
    }
}
