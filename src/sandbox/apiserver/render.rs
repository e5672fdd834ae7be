//! JSON rendering of responses: objects in the requested version, lists, watch event lines.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Value, json};

use super::resources::ResourceDef;

/// Appends an object as JSON, with `apiVersion` rewritten when the request named another
/// served version (CRD versions share one storage here, as with conversion strategy `None`).
pub fn write_object(buf: &mut Vec<u8>, obj: &Value, api_version: &str) {
    let same = obj.get("apiVersion").and_then(Value::as_str) == Some(api_version);
    let result = if same {
        serde_json::to_writer(&mut *buf, obj)
    } else {
        let mut o = obj.clone();
        if let Some(m) = o.as_object_mut() {
            m.insert("apiVersion".into(), json!(api_version));
        }
        serde_json::to_writer(&mut *buf, &o)
    };
    // Writing a Value into a Vec cannot fail; a failure would only truncate this one body.
    let _ = result;
}

pub fn object_bytes(obj: &Value, api_version: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512);
    write_object(&mut buf, obj, api_version);
    buf
}

/// List metadata: the resourceVersion always; `continue` and `remainingItemCount` only when more
/// pages exist.
pub struct ListMeta {
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

/// A `<Kind>List` body from already-selected items.
pub fn list_body(
    def: &ResourceDef,
    api_version: &str,
    items: &[Arc<Value>],
    meta: &ListMeta,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256 + items.len() * 512);
    let mut md = json!({"resourceVersion": meta.resource_version.to_string()});
    if let (Some(c), Some(m)) = (&meta.continue_token, md.as_object_mut()) {
        m.insert("continue".into(), json!(c));
        if let Some(r) = meta.remaining {
            m.insert("remainingItemCount".into(), json!(r));
        }
    }
    let _ = write!(
        buf,
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        json!(def.list_kind),
        json!(api_version),
        md
    );
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_object(&mut buf, item, api_version);
    }
    buf.extend_from_slice(b"]}");
    buf
}

/// One watch line: `{"type":"ADDED","object":{...}}\n`.
pub fn event_line(buf: &mut Vec<u8>, kind: &str, obj: &Value, api_version: &str) {
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(b"\",\"object\":");
    write_object(buf, obj, api_version);
    buf.extend_from_slice(b"}\n");
}

/// A BOOKMARK line: the watched kind carrying only a resourceVersion (and, after initial events
/// of a streaming list, the `k8s.io/initial-events-end` annotation).
pub fn bookmark_line(
    buf: &mut Vec<u8>,
    def: &ResourceDef,
    api_version: &str,
    rv: u64,
    initial_end: bool,
) {
    let mut md = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if let (true, Some(m)) = (initial_end, md.as_object_mut()) {
        m.insert(
            "annotations".into(),
            json!({"k8s.io/initial-events-end": "true"}),
        );
    }
    let obj = json!({"kind": def.kind, "apiVersion": api_version, "metadata": md});
    event_line(buf, "BOOKMARK", &obj, api_version);
}

/// The in-stream ERROR event for a too-old resourceVersion (code 410, reason Expired).
pub fn expired_line(buf: &mut Vec<u8>, requested: u64, floor: u64) {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {requested} ({floor})"),
        "reason": "Expired", "code": 410,
    });
    event_line(buf, "ERROR", &status, "v1");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::apiserver::resources::Registry;

    #[test]
    fn list_and_lines() {
        let def = Registry::with_builtins()
            .lookup("", "v1", "configmaps")
            .unwrap();
        let items = vec![Arc::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        )];
        let body = list_body(
            &def,
            "v1",
            &items,
            &ListMeta {
                resource_version: 7,
                continue_token: Some("c".into()),
                remaining: Some(3),
            },
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kind"], "ConfigMapList");
        assert_eq!(
            v["metadata"],
            json!({"resourceVersion": "7", "continue": "c", "remainingItemCount": 3})
        );
        assert_eq!(v["items"][0]["metadata"]["name"], "a");
        let mut buf = Vec::new();
        expired_line(&mut buf, 3, 9);
        let e: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(e["type"], "ERROR");
        assert_eq!(e["object"]["code"], 410);
        assert_eq!(e["object"]["message"], "too old resource version: 3 (9)");
        let mut buf = Vec::new();
        bookmark_line(&mut buf, &def, "v1", 12, true);
        let b: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        assert!(buf.ends_with(b"\n"));
    }

    #[test]
    fn object_version_is_rewritten() {
        let obj = json!({"apiVersion": "example.dev/v1", "kind": "Widget"});
        let v: Value = serde_json::from_slice(&object_bytes(&obj, "example.dev/v1alpha1")).unwrap();
        assert_eq!(v["apiVersion"], "example.dev/v1alpha1");
    }
}
