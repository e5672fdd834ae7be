//! Pure write rules of the API server: create/update preparation, generation, status isolation,
//! no-op detection, deletion marking, defaults and the `scale` subresource view.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::fields::Scope;
use super::resources::ResourceDef;
use super::selectors::selector_string;

/// RFC 3339 with whole seconds, as the API server writes timestamps.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(key)).and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("metadata").and_then(Value::as_object_mut)
}

pub fn set_meta(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(key.to_string(), value);
        }
    }
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, fins: &[String]) {
    if let Some(m) = meta_mut(obj) {
        if fins.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert("finalizers".into(), json!(fins));
        }
    }
}

pub fn is_deleting(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|t| !t.is_null()))
}

/// The uids named in `metadata.ownerReferences`.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    owner_refs(obj)
        .iter()
        .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
        .collect()
}

pub fn owner_refs(obj: &Value) -> Vec<Value> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whether `name` is a lowercase RFC 1123 subdomain (or label, for namespaces).
pub fn validate_name(def: &ResourceDef, name: &str) -> Result<(), ApiError> {
    let label_only = def.gr.resource == "namespaces";
    let max = if label_only { 63 } else { 253 };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    let ok = name.len() <= max
        && if label_only {
            part_ok(name)
        } else {
            name.split('.').all(part_ok)
        };
    if ok {
        return Ok(());
    }
    let what = if label_only { "label" } else { "subdomain" };
    Err(ApiError::invalid(
        &def.gr.group,
        &def.kind,
        name,
        "metadata.name",
        format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 {what} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ),
    ))
}

/// Defaults the real API server fills in that clients commonly read back.
pub fn apply_defaults(def: &ResourceDef, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    match (def.gr.group.as_str(), def.gr.resource.as_str()) {
        ("apps", "deployments") | ("apps", "replicasets") => {
            if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("replicas").or_insert(json!(1));
                if def.gr.resource == "deployments" {
                    spec.entry("revisionHistoryLimit").or_insert(json!(10));
                    spec.entry("progressDeadlineSeconds").or_insert(json!(600));
                }
            }
        }
        ("", "secrets") => super::builtins::normalize_secret(map),
        ("", "pods") => {
            if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("terminationGracePeriodSeconds")
                    .or_insert(json!(super::builtins::DEFAULT_POD_GRACE_SECONDS));
            }
        }
        ("", "services") => {
            if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("type").or_insert(json!("ClusterIP"));
                for port in spec
                    .get_mut("ports")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(p) = port.as_object_mut() {
                        p.entry("protocol").or_insert(json!("TCP"));
                        if let Some(n) = p.get("port").cloned() {
                            p.entry("targetPort").or_insert(n);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Status the server sets when an object with a status subresource is created.
fn initial_status(def: &ResourceDef) -> Option<Value> {
    match (def.gr.group.as_str(), def.gr.resource.as_str()) {
        ("", "namespaces") => Some(json!({"phase": "Active"})),
        ("", "pods") => Some(json!({"phase": "Pending"})),
        _ => None,
    }
}

/// Fills server-owned metadata of a new object. `name` is already resolved (generateName).
pub fn prepare_create(
    def: &ResourceDef,
    ns: Option<&str>,
    mut obj: Value,
    uid: &str,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let name = meta_str(&obj, "name").unwrap_or_default().to_string();
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the object provided is not a JSON object".into(),
        ));
    };
    map.insert(
        "apiVersion".into(),
        json!(def.api_version(def.storage_version())),
    );
    map.insert("kind".into(), json!(def.kind));
    if def.status {
        map.remove("status");
        if let Some(s) = initial_status(def) {
            map.insert("status".into(), s);
        }
    }
    // The namespace controller's finalizer, which kube-apiserver puts on every new namespace.
    if def.gr.group.is_empty() && def.gr.resource == "namespaces" {
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut()
            && !spec.contains_key("finalizers")
        {
            spec.insert("finalizers".into(), json!(["kubernetes"]));
        }
    }
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Err(ApiError::BadRequest("metadata must be an object".into()));
    };
    if name.is_empty() {
        return Err(ApiError::invalid(
            &def.gr.group,
            &def.kind,
            "",
            "metadata.name",
            "Required value: name or generateName is required".into(),
        ));
    }
    validate_name(def, &name)?;
    match (def.namespaced, ns) {
        (true, Some(ns)) => {
            if meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|b| !b.is_empty() && b != ns)
            {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            meta.insert("namespace".into(), json!(ns));
        }
        (true, None) => {
            return Err(ApiError::BadRequest(
                "a namespace is required for this resource".into(),
            ));
        }
        (false, _) => {
            meta.remove("namespace");
        }
    }
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(k);
    }
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(timestamp(now)));
    if def.generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    apply_defaults(def, &mut obj);
    Ok(obj)
}

/// Server-owned metadata an update can never change.
const IMMUTABLE_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "name",
    "namespace",
    "resourceVersion",
];

/// Builds the object an update would store: preconditions, status isolation, immutable metadata,
/// the finalizer rule for deleting objects, defaults and the generation bump.
/// `keep_managed` keeps the candidate's managedFields (server-side apply computed them).
pub fn prepare_update(
    def: &ResourceDef,
    old: &Value,
    candidate: Value,
    scope: Scope,
    keep_managed: bool,
) -> Result<Value, ApiError> {
    if !candidate.is_object() {
        return Err(ApiError::BadRequest(
            "the object provided is not a JSON object".into(),
        ));
    }
    let name = meta_str(old, "name").unwrap_or_default();
    if let Some(n) = meta_str(&candidate, "name").filter(|n| !n.is_empty() && *n != name) {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let old_ns = meta_str(old, "namespace").unwrap_or_default();
    if def.namespaced
        && meta_str(&candidate, "namespace").is_some_and(|n| !n.is_empty() && n != old_ns)
    {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    let wanted_rv = meta_str(&candidate, "resourceVersion").unwrap_or_default();
    if !wanted_rv.is_empty() && Some(wanted_rv) != meta_str(old, "resourceVersion") {
        return Err(ApiError::stale(&def.gr.group, &def.gr.resource, name));
    }
    let mut new = match scope {
        Scope::Status => {
            let mut n = old.clone();
            copy_field(&mut n, &candidate, "status");
            if keep_managed {
                copy_meta(&mut n, &candidate, "managedFields");
            }
            n
        }
        Scope::Main | Scope::Scale => {
            let mut n = candidate;
            if let Some(m) = n.as_object_mut() {
                m.insert(
                    "apiVersion".into(),
                    old.get("apiVersion").cloned().unwrap_or(Value::Null),
                );
                m.insert("kind".into(), json!(def.kind));
            }
            if def.status {
                copy_field(&mut n, old, "status");
            }
            if n.get("metadata").is_none_or(|m| !m.is_object()) {
                set_meta(&mut n, "name", json!(name));
            }
            for k in IMMUTABLE_META {
                copy_meta(&mut n, old, k);
            }
            if !keep_managed {
                copy_meta(&mut n, old, "managedFields");
            }
            apply_defaults(def, &mut n);
            n
        }
    };
    if is_deleting(old) {
        let before = finalizers(old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                &def.gr.group,
                &def.kind,
                name,
                "metadata.finalizers",
                format!(
                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                ),
            ));
        }
    }
    if def.generation && spec_changed(old, &new, def.status) {
        let g = meta(old)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        set_meta(&mut new, "generation", json!(g + 1));
    }
    Ok(new)
}

/// Sets `key` of `to` to that of `from`, or removes it when `from` lacks it.
fn copy_field(to: &mut Value, from: &Value, key: &str) {
    if let Some(m) = to.as_object_mut() {
        match from.get(key) {
            Some(v) => {
                m.insert(key.to_string(), v.clone());
            }
            None => {
                m.remove(key);
            }
        }
    }
}

fn copy_meta(to: &mut Value, from: &Value, key: &str) {
    let v = meta(from).and_then(|m| m.get(key)).cloned();
    if let Some(m) = meta_mut(to) {
        match v {
            Some(v) => {
                m.insert(key.to_string(), v);
            }
            None => {
                m.remove(key);
            }
        }
    }
}

/// Whether anything outside `metadata` (and `status`, when it has its own endpoint) differs.
pub fn spec_changed(old: &Value, new: &Value, ignore_status: bool) -> bool {
    let skip = |k: &str| {
        k == "metadata" || k == "apiVersion" || k == "kind" || (ignore_status && k == "status")
    };
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    a.iter()
        .filter(|(k, _)| !skip(k))
        .any(|(k, v)| b.get(k) != Some(v))
        || b.iter()
            .filter(|(k, _)| !skip(k))
            .any(|(k, _)| !a.contains_key(k))
}

fn managed_without_time(m: &Map<String, Value>) -> Vec<Value> {
    m.get("managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    let mut e = e.clone();
                    if let Some(o) = e.as_object_mut() {
                        o.remove("time");
                    }
                    e
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A write is a no-op when only the resourceVersion or managedFields timestamps would change.
pub fn unchanged(old: &Value, new: &Value) -> bool {
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return old == new;
    };
    if a.len() != b.len()
        || a.iter()
            .any(|(k, v)| k != "metadata" && b.get(k) != Some(v))
    {
        return false;
    }
    let empty = Map::new();
    let ma = meta(old).unwrap_or(&empty);
    let mb = meta(new).unwrap_or(&empty);
    let bookkeeping = |k: &str| k == "resourceVersion" || k == "managedFields";
    let count = |m: &Map<String, Value>| m.keys().filter(|k| !bookkeeping(k)).count();
    count(ma) == count(mb)
        && ma
            .iter()
            .filter(|(k, _)| !bookkeeping(k))
            .all(|(k, v)| mb.get(k) == Some(v))
        && managed_without_time(ma) == managed_without_time(mb)
}

/// Marks an object as being deleted (`markAsDeleting`); false if it already was.
pub fn mark_deleting(def: &ResourceDef, obj: &mut Value, now: DateTime<Utc>) -> bool {
    if is_deleting(obj) {
        return false;
    }
    set_meta(obj, "deletionTimestamp", json!(timestamp(now)));
    set_meta(obj, "deletionGracePeriodSeconds", json!(0));
    if def.generation {
        let g = meta(obj)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        set_meta(obj, "generation", json!(g + 1));
    }
    true
}

fn path_segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect()
}

fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path_segments(path).iter().try_fold(obj, |v, k| v.get(k))
}

/// The `autoscaling/v1` `Scale` view of an object.
pub fn scale_of(def: &ResourceDef, obj: &Value) -> Option<Value> {
    let paths = def.scale.as_ref()?;
    let m = meta(obj)?;
    let mut scale_meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            scale_meta.insert(k.into(), v.clone());
        }
    }
    let spec = get_path(obj, &paths.spec_replicas)
        .cloned()
        .unwrap_or(json!(0));
    let status = get_path(obj, &paths.status_replicas)
        .cloned()
        .unwrap_or(json!(0));
    let selector = match &paths.label_selector {
        Some(p) => get_path(obj, p).and_then(Value::as_str).map(str::to_string),
        None => obj
            .get("spec")
            .and_then(|s| s.get("selector"))
            .map(selector_string),
    };
    let mut status_obj = json!({"replicas": status});
    if let (Some(sel), Some(o)) = (selector, status_obj.as_object_mut()) {
        o.insert("selector".into(), json!(sel));
    }
    Some(json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
        "spec": {"replicas": spec}, "status": status_obj,
    }))
}

/// The object with its spec replicas set from a `Scale` body.
pub fn with_scale(def: &ResourceDef, obj: &Value, scale: &Value) -> Result<Value, ApiError> {
    let paths = def.scale.as_ref().ok_or(ApiError::RouteNotFound)?;
    let replicas = scale
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .cloned()
        .unwrap_or(json!(0));
    if !replicas.is_i64() {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            meta_str(obj, "name").unwrap_or_default(),
            "spec.replicas",
            "Invalid value: must be an integer".into(),
        ));
    }
    let mut out = obj.clone();
    let segs = path_segments(&paths.spec_replicas);
    let Some((last, parents)) = segs.split_last() else {
        return Err(ApiError::RouteNotFound);
    };
    let mut cur = &mut out;
    for p in parents {
        let Some(m) = cur.as_object_mut() else {
            return Err(ApiError::BadRequest(format!(
                "{} is not an object",
                paths.spec_replicas
            )));
        };
        cur = m.entry(p.to_string()).or_insert_with(|| json!({}));
    }
    if let Some(m) = cur.as_object_mut() {
        m.insert(last.to_string(), replicas);
    }
    if let Some(rv) = scale.get("metadata").and_then(|m| m.get("resourceVersion")) {
        set_meta(&mut out, "resourceVersion", rv.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::apiserver::resources::{Registry, ResourceDef};
    use std::sync::Arc;

    fn widget(status: bool) -> ResourceDef {
        let mut d = (*Registry::with_builtins()
            .lookup("apps", "v1", "deployments")
            .unwrap())
        .clone();
        d.builtin = false;
        d.status = status;
        d
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn created(def: &ResourceDef) -> Value {
        let body =
            json!({"metadata": {"name": "w"}, "spec": {"replicas": 1}, "status": {"ready": 1}});
        let mut o = prepare_create(def, Some("default"), body, "u1", now()).unwrap();
        set_meta(&mut o, "resourceVersion", json!("5"));
        o
    }

    #[test]
    fn create_sets_metadata_and_drops_status() {
        let o = created(&widget(true));
        assert_eq!(o["metadata"]["generation"], 1);
        assert_eq!(o["metadata"]["uid"], "u1");
        assert_eq!(o["metadata"]["creationTimestamp"], "2026-01-02T03:04:05Z");
        assert_eq!(o["metadata"]["namespace"], "default");
        assert!(o.get("status").is_none());
        assert!(created(&widget(false)).get("status").is_some());
    }

    #[test]
    fn generation_rules_with_status_subresource() {
        let def = widget(true);
        let old = created(&def);
        let mut labels = old.clone();
        labels["metadata"]["labels"] = json!({"a": "b"});
        assert_eq!(
            prepare_update(&def, &old, labels, Scope::Main, false).unwrap()["metadata"]["generation"],
            1
        );
        let mut status = old.clone();
        status["status"] = json!({"ready": 3});
        let main = prepare_update(&def, &old, status.clone(), Scope::Main, false).unwrap();
        assert!(main.get("status").is_none(), "main endpoint ignores status");
        assert!(unchanged(&old, &main));
        let st = prepare_update(&def, &old, status, Scope::Status, false).unwrap();
        assert_eq!(st["status"]["ready"], 3);
        assert_eq!(st["metadata"]["generation"], 1);
        let mut spec = old.clone();
        spec["spec"]["replicas"] = json!(4);
        spec["metadata"]["uid"] = json!("other");
        let upd = prepare_update(&def, &old, spec.clone(), Scope::Main, false).unwrap();
        assert_eq!(upd["metadata"]["generation"], 2);
        assert_eq!(upd["metadata"]["uid"], "u1");
        let via_status = prepare_update(&def, &old, spec, Scope::Status, false).unwrap();
        assert_eq!(via_status["spec"]["replicas"], 1, "/status ignores spec");
    }

    #[test]
    fn without_status_subresource_status_bumps_generation() {
        let def = widget(false);
        let old = created(&def);
        let mut s = old.clone();
        s["status"] = json!({"ready": 3});
        assert_eq!(
            prepare_update(&def, &old, s, Scope::Main, false).unwrap()["metadata"]["generation"],
            2
        );
    }

    #[test]
    fn stale_resource_version_conflicts() {
        let def = widget(true);
        let old = created(&def);
        let mut c = old.clone();
        c["metadata"]["resourceVersion"] = json!("4");
        assert_eq!(
            prepare_update(&def, &old, c, Scope::Main, false)
                .unwrap_err()
                .code(),
            409
        );
    }

    #[test]
    fn deleting_objects_take_no_new_finalizers() {
        let def = widget(true);
        let mut old = created(&def);
        assert!(mark_deleting(&def, &mut old, now()));
        assert!(!mark_deleting(&def, &mut old, now()));
        assert_eq!(old["metadata"]["generation"], 2);
        let mut c = old.clone();
        set_finalizers(&mut c, &["x".into()]);
        assert_eq!(
            prepare_update(&def, &old, c, Scope::Main, false)
                .unwrap_err()
                .code(),
            422
        );
    }

    #[test]
    fn names_are_validated() {
        let def = widget(true);
        assert!(validate_name(&def, "a.b-c").is_ok());
        let err = validate_name(&def, "Bad_Name").unwrap_err();
        assert_eq!(err.code(), 422);
        let ns: Arc<ResourceDef> = Registry::with_builtins()
            .lookup("", "v1", "namespaces")
            .unwrap();
        assert!(validate_name(&ns, "a.b").is_err());
    }

    #[test]
    fn scale_view_and_update() {
        let reg = Registry::with_builtins();
        let def = reg.lookup("apps", "v1", "deployments").unwrap();
        let d = json!({"metadata": {"name": "d", "namespace": "n", "resourceVersion": "3"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}}}, "status": {"replicas": 1}});
        let s = scale_of(&def, &d).unwrap();
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(s["status"], json!({"replicas": 1, "selector": "app=x"}));
        let upd = with_scale(&def, &d, &json!({"spec": {"replicas": 5}})).unwrap();
        assert_eq!(upd["spec"]["replicas"], 5);
    }
}
