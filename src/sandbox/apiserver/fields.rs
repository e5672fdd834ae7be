//! Field ownership: `managedFields` (fieldsV1) bookkeeping and server-side apply with conflicts.
//!
//! A field set is a set of paths in fieldsV1 notation (`f:name`, `k:{"name":"c"}`, `v:"x"`, `.`).
//! The approximation of structured-merge-diff: associative lists use the resource's merge keys,
//! every other list is atomic; ownership moves to whoever last changed a field.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::resources::{ListType, ResourceDef};

pub type FieldPath = Vec<String>;
pub type FieldSet = BTreeSet<FieldPath>;

/// Metadata the server owns; never part of a field set.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
];

/// Which part of an object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Main,
    Status,
    Scale,
}

impl Scope {
    pub fn subresource(self) -> &'static str {
        match self {
            Scope::Main => "",
            Scope::Status => "status",
            Scope::Scale => "scale",
        }
    }
}

/// The leaf paths of an object's fields.
pub fn field_set(def: &ResourceDef, obj: &Value) -> FieldSet {
    let mut out = BTreeSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        let mut names = vec![k.clone()];
        let mut path = vec![format!("f:{k}")];
        if k == "metadata" {
            for (mk, mv) in v.as_object().into_iter().flatten() {
                if SERVER_META.contains(&mk.as_str()) {
                    continue;
                }
                names.push(mk.clone());
                path.push(format!("f:{mk}"));
                walk(def, mv, &mut names, &mut path, &mut out);
                names.pop();
                path.pop();
            }
            continue;
        }
        walk(def, v, &mut names, &mut path, &mut out);
    }
    out
}

fn list_type_at(def: &ResourceDef, names: &[String]) -> ListType {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    def.list_type(&refs)
}

fn item_key(item: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), item.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m).to_string()
}

fn walk(
    def: &ResourceDef,
    v: &Value,
    names: &mut Vec<String>,
    path: &mut FieldPath,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, sub) in m {
                names.push(k.clone());
                path.push(format!("f:{k}"));
                walk(def, sub, names, path, out);
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match list_type_at(def, names) {
            ListType::Map(keys) => {
                for item in items {
                    path.push(format!("k:{}", item_key(item, &keys)));
                    let mut dot = path.clone();
                    dot.push(".".into());
                    out.insert(dot);
                    for (k, sub) in item.as_object().into_iter().flatten() {
                        names.push(k.clone());
                        path.push(format!("f:{k}"));
                        walk(def, sub, names, path, out);
                        names.pop();
                        path.pop();
                    }
                    path.pop();
                }
            }
            ListType::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListType::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn key_matches(item: &Value, want: &Map<String, Value>) -> bool {
    want.iter()
        .all(|(k, v)| item.get(k).unwrap_or(&Value::Null) == v)
}

/// The value a path points at, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path {
        if seg == "." {
            return Some(cur);
        }
        cur = if let Some(k) = seg.strip_prefix("f:") {
            cur.get(k)?
        } else if let Some(k) = seg.strip_prefix("k:") {
            let want: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur.as_array()?.iter().find(|it| key_matches(it, &want))?
        } else if let Some(v) = seg.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur.as_array()?.iter().find(|it| **it == want)?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// Removes the field a path points at (a key, a list item or a set member).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let (first, rest) = match path.split_first() {
        Some(split) => split,
        None => return,
    };
    let last = rest.is_empty() || (rest.len() == 1 && rest[0] == ".");
    if let Some(k) = first.strip_prefix("f:") {
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        if rest.is_empty() {
            map.remove(k);
        } else if let Some(child) = map.get_mut(k) {
            remove_at(child, rest);
        }
    } else if let Some(k) = first.strip_prefix("k:") {
        let (Ok(want), Some(items)) = (
            serde_json::from_str::<Map<String, Value>>(k),
            obj.as_array_mut(),
        ) else {
            return;
        };
        if last {
            items.retain(|it| !key_matches(it, &want));
        } else if let Some(child) = items.iter_mut().find(|it| key_matches(it, &want)) {
            remove_at(child, rest);
        }
    } else if let Some(v) = first.strip_prefix("v:") {
        let (Ok(want), Some(items)) = (serde_json::from_str::<Value>(v), obj.as_array_mut()) else {
            return;
        };
        items.retain(|it| *it != want);
    }
}

/// A field path as kubectl prints it in conflicts: `.spec.containers[name="app"].image`.
pub fn render_path(path: &[String]) -> String {
    let mut s = String::new();
    for seg in path {
        if let Some(k) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(k);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = seg.strip_prefix("v:") {
            s.push_str(&format!("[{v}]"));
        }
    }
    s
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            let next = cur.entry(seg.clone()).or_insert_with(|| json!({}));
            match next.as_object_mut() {
                Some(m) => cur = m,
                None => break,
            }
        }
    }
    Value::Object(root)
}

fn from_fields_v1(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    for (k, child) in v.as_object().into_iter().flatten() {
        path.push(k.clone());
        if child.as_object().is_none_or(Map::is_empty) {
            out.insert(path.clone());
        } else {
            from_fields_v1(child, path, out);
        }
        path.pop();
    }
}

/// Reads the object's managedFields.
pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    let entries = obj
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array);
    let s = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    entries
        .into_iter()
        .flatten()
        .map(|e| {
            let mut fields = BTreeSet::new();
            if let Some(f) = e.get("fieldsV1") {
                from_fields_v1(f, &mut Vec::new(), &mut fields);
            }
            ManagedEntry {
                manager: s(e, "manager"),
                operation: s(e, "operation"),
                api_version: s(e, "apiVersion"),
                time: s(e, "time"),
                subresource: s(e, "subresource"),
                fields,
            }
        })
        .collect()
}

/// Writes managedFields back, dropping entries that own nothing.
pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut m = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.fields),
            });
            if let (false, Some(o)) = (e.subresource.is_empty(), m.as_object_mut()) {
                o.insert("subresource".into(), json!(e.subresource));
            }
            m
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Who is writing, for managedFields.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub scope: Scope,
    /// RFC 3339 time of the write.
    pub time: &'a str,
}

fn entry_mut<'e>(
    entries: &'e mut Vec<ManagedEntry>,
    w: &Writer,
    operation: &str,
) -> &'e mut ManagedEntry {
    let sub = w.scope.subresource();
    let pos = entries
        .iter()
        .position(|e| e.manager == w.manager && e.operation == operation && e.subresource == sub);
    let idx = match pos {
        Some(i) => i,
        None => {
            entries.push(ManagedEntry {
                manager: w.manager.to_string(),
                operation: operation.to_string(),
                api_version: w.api_version.to_string(),
                time: w.time.to_string(),
                subresource: sub.to_string(),
                fields: BTreeSet::new(),
            });
            entries.len() - 1
        }
    };
    &mut entries[idx]
}

/// Records an ordinary (non-apply) write: the writer takes the fields it changed.
pub fn track_update(def: &ResourceDef, old: Option<&Value>, new: &mut Value, w: &Writer) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_fields = field_set(def, new);
    let changed: FieldSet = match old {
        None => new_fields.clone(),
        Some(old) => new_fields
            .iter()
            .filter(|p| {
                p.last().is_some_and(|s| s == ".") && value_at(old, p).is_none()
                    || p.last().is_none_or(|s| s != ".") && value_at(old, p) != value_at(new, p)
            })
            .cloned()
            .collect(),
    };
    let mut touched = false;
    for e in entries.iter_mut() {
        let before = e.fields.len();
        e.fields.retain(|p| new_fields.contains(p));
        if e.manager != w.manager {
            e.fields.retain(|p| !changed.contains(p));
        }
        touched |= before != e.fields.len();
    }
    if !changed.is_empty() {
        let e = entry_mut(&mut entries, w, "Update");
        e.fields.extend(changed);
        e.time = w.time.to_string();
        e.api_version = w.api_version.to_string();
        touched = true;
    }
    if touched || old.is_none() {
        write_managed(new, &entries);
    }
}

/// Merges an applied configuration into a live object: maps recursively, associative lists by
/// key, sets by value, everything else replaced.
fn merge_applied(def: &ResourceDef, live: &mut Value, applied: &Value, names: &mut Vec<String>) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                if av.is_null() {
                    l.remove(k);
                    continue;
                }
                names.push(k.clone());
                match l.get_mut(k) {
                    Some(lv) => merge_applied(def, lv, av, names),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
                names.pop();
            }
        }
        (Value::Array(l), Value::Array(a)) => match list_type_at(def, names) {
            ListType::Map(keys) => {
                for item in a {
                    let want: Map<String, Value> = keys
                        .iter()
                        .map(|k| (k.clone(), item.get(k).cloned().unwrap_or(Value::Null)))
                        .collect();
                    match l.iter_mut().find(|li| key_matches(li, &want)) {
                        Some(existing) => merge_applied(def, existing, item, names),
                        None => l.push(item.clone()),
                    }
                }
            }
            ListType::Set => {
                for item in a {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListType::Atomic => *l = a.clone(),
        },
        (l, a) => *l = a.clone(),
    }
}

fn in_scope(def: &ResourceDef, scope: Scope, path: &FieldPath) -> bool {
    let is_status = path.first().is_some_and(|s| s == "f:status");
    match scope {
        Scope::Status => is_status,
        Scope::Main | Scope::Scale => !(def.status && is_status),
    }
}

/// Server-side apply of `applied` by `w.manager` onto `live` (None: the object is new).
/// Returns the candidate object, with managedFields already updated.
pub fn server_side_apply(
    def: &ResourceDef,
    live: Option<&Value>,
    applied: &Value,
    w: &Writer,
    force: bool,
) -> Result<Value, ApiError> {
    let applied_fields: FieldSet = field_set(def, applied)
        .into_iter()
        .filter(|p| in_scope(def, w.scope, p))
        .collect();
    let empty = json!({});
    let live_obj = live.unwrap_or(&empty);
    let mut entries = read_managed(live_obj);

    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    for e in entries.iter().filter(|e| e.manager != w.manager) {
        for p in e.fields.intersection(&applied_fields) {
            let is_item = p.last().is_some_and(|s| s == ".");
            if !is_item && value_at(live_obj, p) != value_at(applied, p) {
                conflicts.push((e.manager.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(ApiError::ApplyConflict {
                conflicts: conflicts
                    .iter()
                    .map(|(m, p)| (m.clone(), render_path(p)))
                    .collect(),
            });
        }
        for e in entries.iter_mut() {
            e.fields
                .retain(|p| !conflicts.iter().any(|(m, cp)| *m == e.manager && cp == p));
        }
    }

    let previous: FieldSet = entries
        .iter()
        .find(|e| {
            e.manager == w.manager
                && e.operation == "Apply"
                && e.subresource == w.scope.subresource()
        })
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    let mut result = live_obj.clone();
    let mut scoped = applied.clone();
    if let Some(m) = scoped.as_object_mut() {
        match w.scope {
            Scope::Status => m.retain(|k, _| k == "status"),
            Scope::Main | Scope::Scale if def.status => {
                m.remove("status");
            }
            _ => {}
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    merge_applied(def, &mut result, &scoped, &mut Vec::new());

    // Fields this manager applied before but no longer does are removed unless someone else owns them.
    for p in previous.difference(&applied_fields) {
        let owned_elsewhere = entries
            .iter()
            .any(|e| !(e.manager == w.manager && e.operation == "Apply") && e.fields.contains(p));
        if !owned_elsewhere {
            remove_at(&mut result, p);
        }
    }

    let e = entry_mut(&mut entries, w, "Apply");
    if e.fields != applied_fields {
        e.time = w.time.to_string();
    }
    e.fields = applied_fields;
    e.api_version = w.api_version.to_string();
    write_managed(&mut result, &entries);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::apiserver::resources::Registry;

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "apps/v1",
            scope: Scope::Main,
            time: "2026-01-01T00:00:00Z",
        }
    }

    fn deploy_def() -> std::sync::Arc<ResourceDef> {
        Registry::with_builtins()
            .lookup("apps", "v1", "deployments")
            .unwrap()
    }

    #[test]
    fn field_set_uses_merge_keys() {
        let def = deploy_def();
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let set = field_set(&def, &obj);
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(set.contains(&p(&["f:metadata", "f:labels", "f:a"])));
        assert!(set.contains(&p(&["f:metadata", "f:finalizers", "v:\"x\""])));
        assert!(set.contains(&p(&[
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"c\"}",
            "."
        ])));
        assert!(set.contains(&p(&[
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"c\"}",
            "f:image"
        ])));
        assert!(
            !set.iter()
                .any(|x| x[0] == "f:apiVersion" || x.get(1).is_some_and(|s| s == "f:name"))
        );
        assert_eq!(
            value_at(
                &obj,
                &p(&[
                    "f:spec",
                    "f:template",
                    "f:spec",
                    "f:containers",
                    "k:{\"name\":\"c\"}",
                    "f:image"
                ])
            ),
            Some(&json!("i"))
        );
        let back = {
            let mut s = BTreeSet::new();
            from_fields_v1(&to_fields_v1(&set), &mut Vec::new(), &mut s);
            s
        };
        assert_eq!(back, set);
    }

    #[test]
    fn apply_conflicts_unless_forced_and_removes_dropped_fields() {
        let def = deploy_def();
        let applied = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2, "paused": true}});
        let first = server_side_apply(&def, None, &applied, &writer("alice"), false).unwrap();
        assert_eq!(first["spec"], json!({"replicas": 2, "paused": true}));
        let bob = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3}});
        let err = server_side_apply(&def, Some(&first), &bob, &writer("bob"), false).unwrap_err();
        assert_eq!(
            err,
            ApiError::ApplyConflict {
                conflicts: vec![("alice".into(), ".spec.replicas".into())]
            }
        );
        // Same value: shared ownership, no conflict.
        let same = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}});
        assert!(server_side_apply(&def, Some(&first), &same, &writer("bob"), false).is_ok());
        let forced = server_side_apply(&def, Some(&first), &bob, &writer("bob"), true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let owners = read_managed(&forced);
        let alice = owners.iter().find(|e| e.manager == "alice").unwrap();
        assert_eq!(alice.fields.len(), 1, "alice keeps only spec.paused");
        // alice stops applying `paused`: it is removed; replicas (bob's now) stays.
        let alice2 = json!({"metadata": {"name": "d"}, "spec": {}});
        let after =
            server_side_apply(&def, Some(&forced), &alice2, &writer("alice"), false).unwrap();
        assert_eq!(after["spec"], json!({"replicas": 3}));
    }

    #[test]
    fn update_takes_ownership_of_changed_fields() {
        let def = deploy_def();
        let applied = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}});
        let live = server_side_apply(&def, None, &applied, &writer("alice"), false).unwrap();
        let mut edited = live.clone();
        edited["spec"]["replicas"] = json!(5);
        track_update(&def, Some(&live), &mut edited, &writer("kubectl-edit"));
        let err =
            server_side_apply(&def, Some(&edited), &applied, &writer("alice"), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\": .spec.replicas"
        );
    }
}
