//! `valueFrom.fieldRef` on a Rollout: the downward-API paths into its metadata (upstream's
//! `fieldpath.ExtractFieldPathAsString`) and plain `.`-separated paths into the rest of it.
//! One home for both, used by the Rollout core when it builds AnalysisRun arguments and by
//! validation, which must reject exactly the paths the core cannot resolve (rule 17).

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use crate::api::go_quote::go_quote;
use crate::api::rollout::Rollout;
use crate::api::validate::pod::qualified_name_errors;

/// Why a metadata field path cannot be resolved; the texts are Kubernetes'.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FieldRefError {
    /// The key in `metadata.labels['…']` is not a valid label/annotation key.
    #[error("invalid key subscript in {path}: {reasons}")]
    InvalidKey {
        /// The field path as written.
        path: String,
        /// The key's problems, `;`-separated.
        reasons: String,
    },
    /// A subscript on a field that is not a map.
    #[error("fieldPath {} does not support subscript", go_quote(.0))]
    NoSubscript(String),
    /// A metadata field the downward API does not offer.
    #[error("unsupported fieldPath: {0}")]
    Unsupported(String),
}

/// The value of a `metadata…` field path: `name`, `namespace`, `uid`, the `labels` /
/// `annotations` maps (one `key="value"` line each) or one key of them (`labels['app']`,
/// empty when absent).
pub fn metadata_field(rollout: &Rollout, field_path: &str) -> Result<String, FieldRefError> {
    let meta = &rollout.metadata;
    if let Some(rest) = field_path.strip_suffix("']")
        && let Some((path, subscript)) = rest.split_once("['")
        && !path.is_empty()
    {
        let annotations = path == "metadata.annotations";
        if !annotations && path != "metadata.labels" {
            return Err(FieldRefError::NoSubscript(field_path.to_string()));
        }
        // Annotation keys are case-insensitive to the downward API, label keys are not.
        let key = if annotations {
            subscript.to_lowercase()
        } else {
            subscript.to_string()
        };
        let reasons = qualified_name_errors(&key);
        if !reasons.is_empty() {
            return Err(FieldRefError::InvalidKey {
                path: field_path.to_string(),
                reasons: reasons.join(";"),
            });
        }
        let map = if annotations {
            meta.annotations.as_ref()
        } else {
            meta.labels.as_ref()
        };
        return Ok(map
            .and_then(|m| m.get(subscript))
            .cloned()
            .unwrap_or_default());
    }
    let lines = |m: Option<&BTreeMap<String, String>>| {
        m.into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", go_quote(v)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match field_path {
        "metadata.annotations" => Ok(lines(meta.annotations.as_ref())),
        "metadata.labels" => Ok(lines(meta.labels.as_ref())),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        other => Err(FieldRefError::Unsupported(other.to_string())),
    }
}

/// A `.`-separated path (segments may end in `[n]`) into `root`, ending at a primitive rendered
/// like Go's `%v`; `None` when a segment is absent or the end is not a primitive.
pub fn json_field(root: &Value, path: &str) -> Option<String> {
    let mut node = root;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (
                name,
                Some(rest.trim_end_matches(']').parse::<usize>().ok()?),
            ),
            None => (segment, None),
        };
        if !name.is_empty() {
            node = node.get(name)?;
        }
        if let Some(index) = index {
            node = node.get(index)?;
        }
    }
    match node {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout() -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web", "tier": "front"},
                         "annotations": {"owner": "team \"a\""}},
            "spec": {"replicas": 3}
        }))
        .unwrap()
    }

    #[test]
    fn metadata_paths_resolve_as_the_downward_api_does() {
        let r = rollout();
        assert_eq!(metadata_field(&r, "metadata.name").unwrap(), "web");
        assert_eq!(metadata_field(&r, "metadata.uid").unwrap(), "u-1");
        assert_eq!(
            metadata_field(&r, "metadata.labels").unwrap(),
            "app=\"web\"\ntier=\"front\""
        );
        assert_eq!(
            metadata_field(&r, "metadata.annotations").unwrap(),
            "owner=\"team \\\"a\\\"\""
        );
        assert_eq!(metadata_field(&r, "metadata.labels['app']").unwrap(), "web");
        assert_eq!(metadata_field(&r, "metadata.labels['none']").unwrap(), "");
        assert_eq!(
            metadata_field(&r, "metadata.name['x']")
                .unwrap_err()
                .to_string(),
            "fieldPath \"metadata.name['x']\" does not support subscript"
        );
        assert_eq!(
            metadata_field(&r, "metadata.bogus")
                .unwrap_err()
                .to_string(),
            "unsupported fieldPath: metadata.bogus"
        );
        assert!(matches!(
            metadata_field(&r, "metadata.labels['-bad-']"),
            Err(FieldRefError::InvalidKey { .. })
        ));
    }

    #[test]
    fn json_paths_reach_primitives_only() {
        let root = json!({"spec": {"replicas": 3, "list": [{"a": true}], "obj": {}}});
        assert_eq!(json_field(&root, "spec.replicas").as_deref(), Some("3"));
        assert_eq!(json_field(&root, "spec.list[0].a").as_deref(), Some("true"));
        assert_eq!(json_field(&root, "spec.obj"), None);
        assert_eq!(json_field(&root, "spec.missing"), None);
        assert_eq!(json_field(&root, "spec.list[9].a"), None);
    }
}
