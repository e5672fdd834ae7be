//! Small types shared by several kinds (labels/annotations blocks, dry-run and retention
//! rules, string matches) and the serde/schema helpers the kind modules use.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Extra `labels` and `annotations` (ephemeral metadata, experiment templates, AnalysisRun
/// metadata, analysis Job metadata).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateMetadata {
    /// Labels to add.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations to add.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Labels and annotations copied onto created AnalysisRuns (same shape as pod metadata).
pub type AnalysisRunMetadata = PodTemplateMetadata;

/// A metric to evaluate in dry-run mode (`metricName` is a Go regex, `.*` for all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// Metric name pattern.
    #[serde(default, deserialize_with = "or_zero")]
    pub metric_name: String,
}

/// How many measurements to keep for metrics matching `metricName` (a Go regex).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    /// Metric name pattern.
    #[serde(default, deserialize_with = "or_zero")]
    pub metric_name: String,
    /// Measurements to keep.
    #[serde(default, deserialize_with = "or_zero")]
    pub limit: i32,
}

/// A reference to an (Cluster)AnalysisTemplate by name.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    /// Template name.
    pub template_name: Option<String>,
    /// Look the name up among ClusterAnalysisTemplates.
    pub cluster_scope: Option<bool>,
}

/// A `{fieldPath}` reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// Path of the field to read.
    #[serde(default, deserialize_with = "or_zero")]
    pub field_path: String,
}

/// Exactly one of exact/prefix/regex (checked by validation, not by decoding).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// Exact match.
    pub exact: Option<String>,
    /// Prefix match.
    pub prefix: Option<String>,
    /// Regular-expression match.
    pub regex: Option<String>,
}

/// Schema of a free-form object kept verbatim (`x-kubernetes-preserve-unknown-fields`).
pub(crate) fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// The zero time, for required timestamps missing from a stored object (Go decodes them as
/// the zero time instead of failing).
pub(crate) fn zero_time() -> Time {
    Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// Decodes `null` as the type's default, as Go's JSON decoder leaves a non-pointer field at
/// its zero value on `null` (`abort: null` written by old CLIs, `creationTimestamp: null`).
pub(crate) fn or_zero<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Decodes a required timestamp, reading `null` as the zero time (Go semantics).
pub(crate) fn null_as_zero_time<'de, D>(deserializer: D) -> Result<Time, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Time>::deserialize(deserializer)?.unwrap_or_else(zero_time))
}

/// Decodes a string field that old objects may hold as a number (legacy `observedGeneration`).
pub(crate) fn string_or_number<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(serde::de::Error::custom(format!(
                    "expected a string, found {other}"
                )));
            }
        },
    )
}

/// Go's `omitempty`: omits a value equal to its zero value (`""`, `0`, `false`, an empty list
/// or map, an empty status block). With [`or_zero`] a status field spells Go's encoding in
/// one line: `#[serde(default, skip_serializing_if = "is_zero", deserialize_with = "or_zero")]`.
pub(crate) fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
