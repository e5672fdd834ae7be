//! CRD generation for the five kinds, from the types, adjusted to match upstream's CRDs:
//! no status subresource on the analysis kinds and Experiment (their controllers write status
//! with a plain merge patch), `spec.selector` immutable and `blueGreen.activeService` required on
//! Rollout, int-or-string fields in upstream's form, and no descriptions, defaults or nullable
//! flags in the schemas (see [`normalise_schema`]).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::analysis::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate};
use super::consts::kind;
use super::experiment::Experiment;
use super::rollout::Rollout;

/// Why the CRDs could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A CRD did not have the shape this module edits (a bug in the generator).
    #[error("generated {kind} CRD has no {what}")]
    Shape {
        /// Kind of the CRD.
        kind: &'static str,
        /// What was missing.
        what: &'static str,
    },
    /// JSON conversion failed.
    #[error("CRD JSON conversion failed: {0}")]
    Json(#[from] serde_json::Error),
    /// YAML serialization failed.
    #[error("CRD YAML serialization failed: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

/// The five CRDs as JSON, in the order of [`kind::ALL`].
pub fn crd_values() -> Result<Vec<Value>, CrdError> {
    let generated: [(&'static str, CustomResourceDefinition); 5] = [
        (kind::ROLLOUT, Rollout::crd()),
        (kind::ANALYSIS_TEMPLATE, AnalysisTemplate::crd()),
        (
            kind::CLUSTER_ANALYSIS_TEMPLATE,
            ClusterAnalysisTemplate::crd(),
        ),
        (kind::ANALYSIS_RUN, AnalysisRun::crd()),
        (kind::EXPERIMENT, Experiment::crd()),
    ];
    let mut out = Vec::with_capacity(generated.len());
    for (k, crd) in generated {
        let mut value = serde_json::to_value(&crd)?;
        adjust(k, &mut value)?;
        out.push(value);
    }
    Ok(out)
}

/// The five CRDs, typed (e.g. to register them in the sandbox API server).
pub fn crds() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    crd_values()?
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(CrdError::from))
        .collect()
}

/// The five CRDs as one multi-document YAML stream (what `davy crds` prints).
pub fn crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for value in crd_values()? {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&value)?);
    }
    Ok(out)
}

fn adjust(k: &'static str, crd: &mut Value) -> Result<(), CrdError> {
    let version = crd.pointer_mut("/spec/versions/0").ok_or(CrdError::Shape {
        kind: k,
        what: "spec.versions[0]",
    })?;
    let schema = version
        .pointer_mut("/schema/openAPIV3Schema")
        .ok_or(CrdError::Shape {
            kind: k,
            what: "openAPIV3Schema",
        })?;
    normalise_schema(schema);
    if k == kind::ROLLOUT {
        let selector = schema
            .pointer_mut("/properties/spec/properties/selector")
            .and_then(Value::as_object_mut)
            .ok_or(CrdError::Shape {
                kind: k,
                what: "spec.selector schema",
            })?;
        selector.insert(
            "x-kubernetes-validations".into(),
            json!([{"rule": "self == oldSelf", "message": ".spec.selector is immutable"}]),
        );
        // Upstream's CRD requires `activeService` (the field has no `omitempty`): the API server
        // answers `spec.strategy.blueGreen.activeService: Required value` without it.
        let blue_green = schema
            .pointer_mut("/properties/spec/properties/strategy/properties/blueGreen")
            .and_then(Value::as_object_mut)
            .ok_or(CrdError::Shape {
                kind: k,
                what: "spec.strategy.blueGreen schema",
            })?;
        blue_green.insert("required".into(), json!(["activeService"]));
    } else {
        // Spec §0: `subresources: {}` — status is written with a merge patch on the object.
        let version = version.as_object_mut().ok_or(CrdError::Shape {
            kind: k,
            what: "version object",
        })?;
        version.insert("subresources".into(), json!({}));
    }
    Ok(())
}

/// Normalises a schema and every sub-schema (never touching property names):
/// - drops `description` and `title` (upstream ships none);
/// - drops `default`: schemars derives it from `#[serde(default)]`, and the API server would
///   then write those values into stored objects, which upstream never does;
/// - drops `nullable`: upstream's schemas have none, so explicit nulls get pruned as there;
/// - writes int-or-string fields in upstream's form, `anyOf: [{type: integer}, {type: string}]`;
/// - puts `type` and `format` first.
fn normalise_schema(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    for key in ["description", "title", "default", "nullable"] {
        obj.remove(key);
    }
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        obj.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    // `type` and `format` first, whatever order schemars produced them in, for readable
    // and stable output.
    let mut reordered = serde_json::Map::with_capacity(obj.len());
    for key in ["type", "format"] {
        if let Some(v) = obj.remove(key) {
            reordered.insert(key.into(), v);
        }
    }
    reordered.append(obj);
    *obj = reordered;
    for (key, child) in obj.iter_mut() {
        match key.as_str() {
            "properties" | "patternProperties" | "definitions" => {
                if let Some(map) = child.as_object_mut() {
                    map.values_mut().for_each(normalise_schema);
                }
            }
            "items" | "additionalProperties" | "not" | "additionalItems" => match child {
                Value::Array(list) => list.iter_mut().for_each(normalise_schema),
                other => normalise_schema(other),
            },
            "anyOf" | "allOf" | "oneOf" => {
                if let Value::Array(list) = child {
                    list.iter_mut().for_each(normalise_schema);
                }
            }
            _ => {}
        }
    }
}
