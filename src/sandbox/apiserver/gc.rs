//! Deletion: finalizers, propagation policies (background, foreground, orphan), owner-reference
//! garbage collection, namespace termination and delete-collection.
//!
//! The collector runs asynchronously, as kube-controller-manager's does: a DELETE only removes
//! or marks the owner and queues the work; the controller task ([`super::controllers`]) then
//! deletes the dependents (background: after the owner is gone; foreground: while the owner
//! waits with the `foregroundDeletion` finalizer for the dependents that block it) or releases
//! them (orphan: the owner waits with the `orphan` finalizer until their references to it are
//! removed). So clients see the intermediate states a controller sees in a cluster.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::builtins;
use super::error::ApiError;
use super::resources::{GroupResource, ResourceDef};
use super::rules::{self, meta_str};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{
    Deleted, GcTask, ObjKey, ObjRef, Propagation, State, WriteCtx, key_of, pods_gr,
};

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

impl State {
    /// Deletes one existing object under a propagation policy. Objects with finalizers are only
    /// marked; the rest are removed and their dependents queued for the collector.
    pub(super) fn delete_object(
        &mut self,
        def: &Arc<ResourceDef>,
        key: ObjKey,
        policy: Propagation,
        grace: Option<i64>,
        now: DateTime<Utc>,
    ) -> Deleted {
        let Some(cur) = self.get(&def.gr, &key) else {
            return Deleted::Removed(Arc::new(Value::Null));
        };
        let mut obj = (*cur).clone();
        let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
        // As kube-apiserver does, the policy's finalizer goes on whether or not there are
        // dependents; the collector takes it off once it has dealt with them.
        let hold = match policy {
            _ if def.gr == GroupResource::new("", "namespaces") => None,
            Propagation::Orphan => Some(ORPHAN),
            Propagation::Foreground => Some(FOREGROUND),
            Propagation::Background => None,
        };
        if let Some(hold) = hold {
            let mut fins = rules::finalizers(&obj);
            if !fins.iter().any(|f| f == hold) {
                fins.push(hold.into());
                rules::set_finalizers(&mut obj, &fins);
            }
        }
        if def.gr == pods_gr() {
            let grace = builtins::pod_grace_seconds(&obj, grace);
            if grace > 0 {
                // Graceful: marked with the deadline; a second DELETE may only bring it forward.
                let deadline = rules::timestamp(now + chrono::TimeDelta::seconds(grace));
                let current = meta_str(&obj, "deletionTimestamp").map(str::to_string);
                if current.as_ref().is_none_or(|c| deadline < *c) {
                    rules::set_meta(&mut obj, "deletionTimestamp", json!(deadline));
                    rules::set_meta(&mut obj, "deletionGracePeriodSeconds", json!(grace));
                }
                let out = self.commit_update(def, key.clone(), &cur, obj);
                self.queue_hold(hold, def, key, uid);
                return Deleted::Marked(out);
            }
            if rules::is_deleting(&obj) {
                rules::set_meta(&mut obj, "deletionGracePeriodSeconds", json!(0));
            }
        }
        if def.gr == GroupResource::new("", "namespaces") {
            // As in a cluster: the namespace is marked Terminating and kept, and the namespace
            // controller (the collector's task) deletes its contents, then the namespace.
            let ns = key.1.clone();
            self.terminating.insert(ns.clone());
            if let Some(m) = obj.as_object_mut() {
                m.insert("status".into(), json!({"phase": "Terminating"}));
            }
            rules::mark_deleting(def, &mut obj, now);
            let out = self.commit_update(def, key, &cur, obj);
            self.gc_queue.push_back(GcTask::NamespaceContents(ns));
            return Deleted::Marked(out);
        }
        if rules::finalizers(&obj).is_empty() {
            return Deleted::Removed(self.remove(def, key, obj));
        }
        rules::mark_deleting(def, &mut obj, now);
        let out = self.commit_update(def, key.clone(), &cur, obj);
        self.queue_hold(hold, def, key, uid);
        Deleted::Marked(out)
    }

    /// Queues the collector's part of a foreground or orphan deletion.
    fn queue_hold(&mut self, hold: Option<&str>, def: &ResourceDef, key: ObjKey, uid: String) {
        match hold {
            Some(FOREGROUND) => {
                self.foreground
                    .insert(uid.clone(), (def.gr.clone(), key.0, key.1));
                self.gc_queue.push_back(GcTask::Cascade {
                    owner_uid: uid,
                    foreground: true,
                });
            }
            Some(_) => self.gc_queue.push_back(GcTask::Orphan {
                owner: (def.gr.clone(), key.0, key.1),
                owner_uid: uid,
            }),
            None => {}
        }
    }

    fn dependents_of(&self, owner_uid: &str) -> Vec<ObjRef> {
        self.dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Orphan policy: dependents lose their reference to the owner and stay.
    fn orphan(&mut self, owner_uid: &str) {
        for (gr, ns, name) in self.dependents_of(owner_uid) {
            self.drop_owner_ref(&gr, (ns, name), owner_uid);
        }
    }

    fn drop_owner_ref(&mut self, gr: &GroupResource, key: ObjKey, owner_uid: &str) {
        let (Some(def), Some(cur)) = (self.registry.get(gr), self.get(gr, &key)) else {
            return;
        };
        let mut obj = (*cur).clone();
        let refs: Vec<Value> = rules::owner_refs(&obj)
            .into_iter()
            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid))
            .collect();
        rules::set_meta(&mut obj, "ownerReferences", json!(refs));
        if refs.is_empty()
            && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("ownerReferences");
        }
        self.commit_update(&def, key, &cur, obj);
    }

    /// Whether the owner an ownerReference names still exists with that uid.
    fn owner_alive(&self, owner_ref: &Value, dependent_ns: &str) -> bool {
        let s = |k: &str| owner_ref.get(k).and_then(Value::as_str).unwrap_or_default();
        let group = s("apiVersion")
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or_default();
        let Some(def) = self
            .registry
            .all()
            .find(|d| d.gr.group == group && d.kind == s("kind"))
        else {
            return false;
        };
        let key = key_of(def, Some(dependent_ns), s("name"));
        self.get(&def.gr, &key)
            .is_some_and(|o| meta_str(&o, "uid") == Some(s("uid")) && !rules::is_deleting(&o))
    }

    fn namespace_empty(&self, ns: &str) -> bool {
        self.tables.iter().all(|(gr, _)| {
            let namespaced = self.registry.get(gr).is_some_and(|d| d.namespaced);
            !namespaced || self.range(gr, Some(ns), None).next().is_none()
        })
    }

    fn delete_namespace_contents(&mut self, ns: &str, now: DateTime<Utc>) {
        let grs: Vec<GroupResource> = self.tables.keys().cloned().collect();
        for gr in grs {
            let Some(def) = self.registry.get(&gr).filter(|d| d.namespaced) else {
                continue;
            };
            let keys: Vec<ObjKey> = self
                .range(&gr, Some(ns), None)
                .filter(|o| !rules::is_deleting(o))
                .map(|o| {
                    (
                        ns.to_string(),
                        meta_str(o, "name").unwrap_or_default().to_string(),
                    )
                })
                .collect();
            for key in keys {
                self.delete_object(&def, key, Propagation::Background, None, now);
            }
        }
    }

    /// Runs up to `budget` of the collector's queued tasks; whether some are left.
    pub(super) fn run_gc(&mut self, now: DateTime<Utc>, budget: usize) -> bool {
        for _ in 0..budget {
            let Some(task) = self.gc_queue.pop_front() else {
                return false;
            };
            match task {
                GcTask::Orphan { owner, owner_uid } => self.finish_orphaning(owner, &owner_uid),
                GcTask::Cascade {
                    owner_uid,
                    foreground,
                } => self.cascade(&owner_uid, foreground, now),
                GcTask::Released { owner_uid } => self.release(&owner_uid),
                GcTask::NamespaceContents(ns) => {
                    self.delete_namespace_contents(&ns, now);
                    self.gc_queue.push_back(GcTask::NamespaceCheck(ns));
                }
                GcTask::NamespaceCheck(ns) => self.finish_namespace(ns),
            }
        }
        !self.gc_queue.is_empty()
    }

    /// An empty terminating namespace loses the `kubernetes` finalizer of its spec and goes
    /// (or waits for the finalizers of its metadata).
    fn finish_namespace(&mut self, ns: String) {
        if !self.terminating.contains(&ns) || !self.namespace_empty(&ns) {
            return;
        }
        let gr = GroupResource::new("", "namespaces");
        let key = (String::new(), ns.clone());
        let (Some(def), Some(cur)) = (self.registry.get(&gr), self.get(&gr, &key)) else {
            self.terminating.remove(&ns);
            return;
        };
        let mut obj = (*cur).clone();
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("finalizers".into(), json!([]));
        }
        if rules::finalizers(&obj).is_empty() {
            self.terminating.remove(&ns);
            self.remove(&def, key, obj);
        } else {
            self.commit_update(&def, key, &cur, obj);
        }
    }

    /// Orphan policy, the collector's part: the dependents lose their reference to the owner,
    /// then the owner loses its `orphan` finalizer (and goes, when it was the last).
    fn finish_orphaning(&mut self, owner: ObjRef, owner_uid: &str) {
        self.orphan(owner_uid);
        let (gr, ns, name) = owner;
        let key = (ns, name);
        if let (Some(def), Some(cur)) = (self.registry.get(&gr), self.get(&gr, &key))
            && meta_str(&cur, "uid") == Some(owner_uid)
        {
            let mut obj = (*cur).clone();
            let fins: Vec<String> = rules::finalizers(&obj)
                .into_iter()
                .filter(|f| f != ORPHAN)
                .collect();
            rules::set_finalizers(&mut obj, &fins);
            self.commit_update(&def, key, &cur, obj);
        }
    }

    /// Whether an object still names `owner_uid` with `blockOwnerDeletion: true`.
    fn blocks(&self, dependent: &ObjRef, owner_uid: &str) -> bool {
        let (gr, ns, name) = dependent;
        self.get(gr, &(ns.clone(), name.clone())).is_some_and(|d| {
            rules::owner_refs(&d).iter().any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(owner_uid)
                    && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
            })
        })
    }

    fn cascade(&mut self, owner_uid: &str, foreground: bool, now: DateTime<Utc>) {
        for (gr, ns, name) in self.dependents_of(owner_uid) {
            let key = (ns, name);
            let (Some(def), Some(dep)) = (self.registry.get(&gr), self.get(&gr, &key)) else {
                continue;
            };
            if rules::is_deleting(&dep) {
                continue;
            }
            let other_owner = rules::owner_refs(&dep).iter().any(|r| {
                r.get("uid").and_then(Value::as_str) != Some(owner_uid)
                    && self.owner_alive(r, &key.0)
            });
            if other_owner {
                self.drop_owner_ref(&gr, key, owner_uid);
                continue;
            }
            let policy = if foreground {
                Propagation::Foreground
            } else {
                Propagation::Background
            };
            self.delete_object(&def, key, policy, None, now);
        }
        if foreground {
            // Dependents that do not block may still be there; the owner need not wait for them.
            self.gc_queue.push_back(GcTask::Released {
                owner_uid: owner_uid.to_string(),
            });
        }
    }

    /// A dependent went away: a foreground owner without dependents that block it
    /// (`blockOwnerDeletion: true`) drops its finalizer.
    fn release(&mut self, owner_uid: &str) {
        let Some((gr, ns, name)) = self.foreground.get(owner_uid).cloned() else {
            return;
        };
        if self
            .dependents_of(owner_uid)
            .iter()
            .any(|d| self.blocks(d, owner_uid))
        {
            return;
        }
        self.foreground.remove(owner_uid);
        let key = (ns, name);
        if let (Some(def), Some(owner)) = (self.registry.get(&gr), self.get(&gr, &key)) {
            let mut obj = (*owner).clone();
            let fins: Vec<String> = rules::finalizers(&obj)
                .into_iter()
                .filter(|f| f != FOREGROUND)
                .collect();
            rules::set_finalizers(&mut obj, &fins);
            self.commit_update(&def, key, &owner, obj);
        }
    }

    /// DELETE on a collection: deletes every matching object (background propagation).
    pub fn delete_collection(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        ctx: &WriteCtx,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let keys: Vec<(ObjKey, Arc<Value>)> = self
            .select(&def.gr, ns, None, labels)
            .filter(|o| labels.matches(o) && fields.matches(o))
            .map(|o| {
                let key = key_of(
                    def,
                    ns.or(meta_str(o, "namespace")),
                    meta_str(o, "name").unwrap_or_default(),
                );
                (key, o.clone())
            })
            .collect();
        if ctx.dry_run {
            return Ok(keys.into_iter().map(|(_, o)| o).collect());
        }
        let mut out = Vec::new();
        for (key, _) in keys {
            match self.delete_object(def, key, Propagation::Background, None, ctx.now) {
                Deleted::Removed(o) | Deleted::Marked(o) => out.push(o),
            }
        }
        Ok(out)
    }
}
