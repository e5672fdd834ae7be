//! Patch types: JSON merge patch, JSON patch, and strategic merge patch for built-in kinds.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::resources::{ListType, ResourceDef};

/// The patch flavour named by the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

const ACCEPTED: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            _ => Err(ApiError::UnsupportedMediaType(format!(
                "{ACCEPTED}, application/strategic-merge-patch+json"
            ))),
        }
    }
}

/// Applies a JSON merge patch, a JSON patch or a strategic merge patch to `target`.
pub fn apply_patch(
    def: &ResourceDef,
    kind: PatchKind,
    target: &Value,
    body: &Value,
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Merge => {
            if !body.is_object() {
                return Err(ApiError::BadRequest(
                    "merge patch must be a JSON object".into(),
                ));
            }
            let mut out = target.clone();
            json_patch::merge(&mut out, body);
            Ok(out)
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(body.clone())
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
            let mut out = target.clone();
            json_patch::patch(&mut out, &ops.0)
                .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            Ok(out)
        }
        PatchKind::Strategic => {
            if !def.builtin {
                return Err(ApiError::UnsupportedMediaType(ACCEPTED.into()));
            }
            strategic_merge(def, target, body)
        }
        PatchKind::Apply => Err(ApiError::Internal {
            code: 500,
            message: "apply patches go through server-side apply".into(),
        }),
    }
}

/// Strategic merge patch (k8s.io/apimachinery strategicpatch) for built-in kinds: lists with merge
/// keys merge item by item, and the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList` and
/// `$setElementOrder` directives are honoured.
pub fn strategic_merge(
    def: &ResourceDef,
    original: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let Some(patch_map) = patch.as_object() else {
        return Err(ApiError::BadRequest(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    let mut out = original.clone();
    let Some(target) = out.as_object_mut() else {
        return Err(ApiError::BadRequest("object is not a map".into()));
    };
    match merge_map(def, target, patch_map, &mut Vec::new())? {
        MapOutcome::Keep => Ok(out),
        MapOutcome::Delete => Ok(Value::Object(Map::new())),
    }
}

enum MapOutcome {
    Keep,
    Delete,
}

/// A patch value with its directives removed, for inserting where nothing merges with it.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn list_type(def: &ResourceDef, names: &[String]) -> ListType {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    def.list_type(&refs)
}

fn merge_map(
    def: &ResourceDef,
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    names: &mut Vec<String>,
) -> Result<MapOutcome, ApiError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(MapOutcome::Delete),
        Some("replace") => {
            if let Value::Object(m) = strip_directives(&Value::Object(patch.clone())) {
                *target = m;
            }
            return Ok(MapOutcome::Keep);
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown patch directive: {other}"
            )));
        }
    }
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        target.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    let mut orders: Vec<(&str, &Vec<Value>)> = Vec::new();
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            if let Some(order) = pv.as_array() {
                orders.push((field, order));
            }
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(gone)) = (target.get_mut(field), pv.as_array())
            {
                items.retain(|i| !gone.contains(i));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        names.push(k.clone());
        match pv {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(pm) => {
                let delete = match target.get_mut(k) {
                    Some(Value::Object(tm)) => {
                        matches!(merge_map(def, tm, pm, names)?, MapOutcome::Delete)
                    }
                    _ => {
                        let is_delete = pm.get("$patch").and_then(Value::as_str) == Some("delete");
                        if !is_delete {
                            target.insert(k.clone(), strip_directives(pv));
                        }
                        is_delete
                    }
                };
                if delete {
                    target.remove(k);
                }
            }
            Value::Array(pa) => {
                let merged = match target.get(k) {
                    Some(Value::Array(ta)) => merge_list(def, ta, pa, names)?,
                    _ => merge_list(def, &[], pa, names)?,
                };
                target.insert(k.clone(), Value::Array(merged));
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
        names.pop();
    }
    for (field, order) in orders {
        names.push(field.to_string());
        let lt = list_type(def, names);
        names.pop();
        if let Some(Value::Array(items)) = target.get_mut(field) {
            reorder(items, order, &lt);
        }
    }
    Ok(MapOutcome::Keep)
}

fn same_item(a: &Value, b: &Value, lt: &ListType) -> bool {
    match lt {
        ListType::Map(keys) => keys
            .first()
            .is_some_and(|k| a.get(k).is_some() && a.get(k) == b.get(k)),
        _ => a == b,
    }
}

/// Puts the items named by `$setElementOrder` first, in that order; the others keep theirs.
fn reorder(items: &mut Vec<Value>, order: &[Value], lt: &ListType) {
    let mut rest = std::mem::take(items);
    for o in order {
        if let Some(pos) = rest.iter().position(|i| same_item(i, o, lt)) {
            items.push(rest.remove(pos));
        }
    }
    items.extend(rest);
}

fn merge_list(
    def: &ResourceDef,
    target: &[Value],
    patch: &[Value],
    names: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|p| p.get("$patch").is_none())
            .map(strip_directives)
            .collect());
    }
    match list_type(def, names) {
        ListType::Atomic => Ok(patch.iter().map(strip_directives).collect()),
        ListType::Set => {
            let mut out = target.to_vec();
            for p in patch {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
            Ok(out)
        }
        ListType::Map(keys) => {
            let key = keys.first().cloned().unwrap_or_else(|| "name".into());
            let mut out = target.to_vec();
            for p in patch {
                let Some(pm) = p.as_object() else {
                    out.push(p.clone());
                    continue;
                };
                let Some(kv) = pm.get(&key) else {
                    return Err(ApiError::BadRequest(format!(
                        "map: {p} does not contain declared merge key: {key}"
                    )));
                };
                let pos = out.iter().position(|t| t.get(&key) == Some(kv));
                let is_delete = pm.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, is_delete) {
                    (Some(i), true) => {
                        out.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        let delete = match out.get_mut(i) {
                            Some(Value::Object(tm)) => {
                                matches!(merge_map(def, tm, pm, names)?, MapOutcome::Delete)
                            }
                            _ => false,
                        };
                        if delete {
                            out.remove(i);
                        }
                    }
                    (None, false) => out.push(strip_directives(p)),
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::apiserver::resources::Registry;
    use serde_json::json;

    fn def(group: &str, res: &str) -> std::sync::Arc<ResourceDef> {
        Registry::with_builtins().lookup(group, "v1", res).unwrap()
    }

    #[test]
    fn strategic_merges_containers_by_name_and_env_by_name() {
        let d = def("apps", "deployments");
        let orig = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "side", "image": "s:1"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "a:2", "env": [{"name": "Y", "$patch": "delete"}, {"name": "Z", "value": "3"}]}]}}}});
        let out = strategic_merge(&d, &orig, &patch).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "s:1"},
            {"name": "app", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Z", "value": "3"}]}]}}}})
        );
    }

    #[test]
    fn strategic_service_ports_by_port_and_finalizers_as_set() {
        let d = def("", "services");
        let orig = json!({"metadata": {"finalizers": ["a"]}, "spec": {"ports": [{"port": 80, "name": "http"}]}});
        let patch = json!({"metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {"ports": [{"port": 443, "name": "https"}, {"port": 80, "targetPort": 8080}]}});
        let out = strategic_merge(&d, &orig, &patch).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["b"]}, "spec": {"ports": [
            {"port": 80, "name": "http", "targetPort": 8080}, {"port": 443, "name": "https"}]}})
        );
    }

    #[test]
    fn strategic_replace_and_null_delete() {
        let d = def("", "configmaps");
        let orig = json!({"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "1"}}});
        let patch =
            json!({"data": {"$patch": "replace", "c": "3"}, "metadata": {"labels": {"x": null}}});
        let out = strategic_merge(&d, &orig, &patch).unwrap();
        assert_eq!(out, json!({"data": {"c": "3"}, "metadata": {"labels": {}}}));
    }

    #[test]
    fn strategic_on_custom_resource_is_415_and_json_patch_test_fails_422() {
        let mut cr = (*def("", "configmaps")).clone();
        cr.builtin = false;
        let err = apply_patch(&cr, PatchKind::Strategic, &json!({}), &json!({})).unwrap_err();
        assert_eq!(err.code(), 415);
        let ops = json!([{"op": "test", "path": "/a", "value": 2}]);
        let err = apply_patch(&cr, PatchKind::Json, &json!({"a": 1}), &ops).unwrap_err();
        assert_eq!(err.code(), 422);
        let ops = json!([{"op": "replace", "path": "/a", "value": 2}]);
        assert_eq!(
            apply_patch(&cr, PatchKind::Json, &json!({"a": 1}), &ops).unwrap(),
            json!({"a": 2})
        );
        assert_eq!(
            apply_patch(
                &cr,
                PatchKind::Merge,
                &json!({"a": 1, "b": 1}),
                &json!({"b": null})
            )
            .unwrap(),
            json!({"a": 1})
        );
        assert!(PatchKind::from_content_type("text/plain").is_err());
    }
}
