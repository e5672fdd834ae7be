//! Ephemeral metadata (spec §3.11; upstream `reconcileEphemeralMetadata`,
//! `SyncReplicaSetEphemeralPodMetadata`, `SyncEphemeralPodMetadata`): the labels and
//! annotations a ReplicaSet's pods carry for the role it plays. While an update runs, the new
//! ReplicaSet gets `canaryMetadata` (blue-green: `previewMetadata`) and the stable one
//! `stableMetadata` (`activeMetadata`); once the new one is stable it gets the stable metadata;
//! every other ReplicaSet loses what was injected. What was injected is recorded in the
//! ReplicaSet annotation `rollout.argoproj.io/ephemeral-metadata`, so only those keys are ever
//! removed (a sidecar injector's labels are left alone).
//!
//! [`decide`] says which ReplicaSets change role; [`sync_meta`] is the rule for one object's
//! labels and annotations, used for the pod template here and by the executor for each running
//! Pod of such a ReplicaSet (which it lists by the `rollouts-pod-template-hash` label, only for
//! a [`Write::SyncEphemeralMetadata`]).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::{Map, Value, json};

use super::observed::{rs_annotation, rs_hash, rs_name, rs_spec_replicas};
use super::plan::{Plan, Write};
use super::world::View;
use crate::api::PodTemplateMetadata;
use crate::api::consts::annotation;

/// Labels and annotations to set (`Some`) or remove (`None`) on one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaPatch {
    /// Label changes.
    pub labels: BTreeMap<String, Option<String>>,
    /// Annotation changes.
    pub annotations: BTreeMap<String, Option<String>>,
}

impl MetaPatch {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }

    /// The JSON merge patch of an object's `metadata` for these changes (`null` removes a key).
    pub fn metadata_patch(&self) -> Value {
        let to_map = |changes: &BTreeMap<String, Option<String>>| {
            changes
                .iter()
                .map(|(key, value)| {
                    (
                        key.clone(),
                        value.clone().map_or(Value::Null, Value::String),
                    )
                })
                .collect::<Map<String, Value>>()
        };
        let mut metadata = Map::new();
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), Value::Object(to_map(&self.labels)));
        }
        if !self.annotations.is_empty() {
            metadata.insert(
                "annotations".into(),
                Value::Object(to_map(&self.annotations)),
            );
        }
        Value::Object(metadata)
    }
}

/// Upstream `SyncEphemeralPodMetadata` on one object's `labels` and `annotations`: set every
/// desired key that differs, and remove every key recorded in `existing` that is no longer
/// desired (keys nobody injected are never touched). Empty when nothing changes.
pub fn sync_meta(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
    existing: Option<&PodTemplateMetadata>,
    desired: Option<&PodTemplateMetadata>,
) -> MetaPatch {
    let side = |current: Option<&BTreeMap<String, String>>,
                existing: Option<&BTreeMap<String, String>>,
                desired: Option<&BTreeMap<String, String>>| {
        let mut changes = BTreeMap::new();
        for (key, value) in desired.into_iter().flatten() {
            if current.and_then(|c| c.get(key)) != Some(value) {
                changes.insert(key.clone(), Some(value.clone()));
            }
        }
        for key in existing.into_iter().flat_map(BTreeMap::keys) {
            let still_desired = desired.is_some_and(|d| d.contains_key(key));
            if !still_desired && current.is_some_and(|c| c.contains_key(key)) {
                changes.insert(key.clone(), None);
            }
        }
        changes
    };
    MetaPatch {
        labels: side(
            labels,
            existing.and_then(|e| e.labels.as_ref()),
            desired.and_then(|d| d.labels.as_ref()),
        ),
        annotations: side(
            annotations,
            existing.and_then(|e| e.annotations.as_ref()),
            desired.and_then(|d| d.annotations.as_ref()),
        ),
    }
}

/// What `rollout.argoproj.io/ephemeral-metadata` records as injected (`None`: absent or
/// unreadable, as upstream's `ParseExistingPodMetadata`).
pub fn recorded(rs: &ReplicaSet) -> Option<PodTemplateMetadata> {
    rs_annotation(rs, annotation::EPHEMERAL_METADATA)
        .and_then(|text| serde_json::from_str(text).ok())
}

/// The record for `desired`: its JSON, or `None` (no annotation) when nothing is injected.
pub fn record_of(desired: Option<&PodTemplateMetadata>) -> Option<String> {
    desired
        .filter(|m| !is_empty(Some(m)))
        .and_then(|m| serde_json::to_string(m).ok())
}

fn is_empty(metadata: Option<&PodTemplateMetadata>) -> bool {
    metadata.is_none_or(|m| {
        m.labels.as_ref().is_none_or(BTreeMap::is_empty)
            && m.annotations.as_ref().is_none_or(BTreeMap::is_empty)
    })
}

/// The same metadata, or `None` when it injects nothing (so `{}` and absent compare equal).
fn normalised(metadata: Option<&PodTemplateMetadata>) -> Option<PodTemplateMetadata> {
    (!is_empty(metadata)).then(|| {
        let m = metadata.cloned().unwrap_or_default();
        PodTemplateMetadata {
            labels: m.labels.filter(|l| !l.is_empty()),
            annotations: m.annotations.filter(|a| !a.is_empty()),
        }
    })
}

/// The role metadata of the two strategies: (new ReplicaSet during an update, stable).
fn role_metadata<'a>(
    v: &View<'a>,
) -> (
    Option<&'a PodTemplateMetadata>,
    Option<&'a PodTemplateMetadata>,
) {
    match v.blue_green {
        Some(bg) => (bg.preview_metadata.as_ref(), bg.active_metadata.as_ref()),
        None => (
            v.canary.canary_metadata.as_ref(),
            v.canary.stable_metadata.as_ref(),
        ),
    }
}

/// Upstream `reconcileEphemeralMetadata`: one [`Write::SyncEphemeralMetadata`] for every
/// ReplicaSet whose pod template or record does not match its role. Nothing when the strategy
/// configures no ephemeral metadata at all.
pub(crate) fn decide(v: &View<'_>) -> Plan {
    let mut plan = Plan::default();
    let (new_metadata, stable_metadata) = role_metadata(v);
    if new_metadata.is_none() && stable_metadata.is_none() {
        return plan;
    }
    let Some(new_rs) = v.new_rs() else {
        return plan;
    };
    let fully_rolled_out = v.prev.stable_rs.is_empty() || v.prev.stable_rs == rs_hash(new_rs);
    let mut roles: Vec<(&ReplicaSet, Option<&PodTemplateMetadata>)> = Vec::new();
    if fully_rolled_out {
        roles.push((new_rs, stable_metadata));
    } else {
        roles.push((new_rs, new_metadata));
        if let Some(stable_rs) = v.stable_rs()
            && rs_name(stable_rs) != rs_name(new_rs)
        {
            roles.push((stable_rs, stable_metadata));
        }
    }
    for &index in v.others {
        let rs = &v.rss[index];
        if roles.iter().all(|(taken, _)| rs_name(taken) != rs_name(rs)) {
            roles.push((rs, None));
        }
    }
    for (rs, desired) in roles {
        if let Some(write) = sync_replica_set(rs, desired) {
            plan.push(write);
        }
    }
    plan
}

/// The write bringing `rs` to `desired`, if its template or its record differ from it.
pub fn sync_replica_set(rs: &ReplicaSet, desired: Option<&PodTemplateMetadata>) -> Option<Write> {
    let desired = normalised(desired);
    let existing = recorded(rs);
    let template_meta = rs
        .spec
        .as_ref()
        .and_then(|spec| spec.template.as_ref())
        .and_then(|template| template.metadata.as_ref());
    let template = sync_meta(
        template_meta.and_then(|m| m.labels.as_ref()),
        template_meta.and_then(|m| m.annotations.as_ref()),
        existing.as_ref(),
        desired.as_ref(),
    );
    let record = record_of(desired.as_ref());
    // The record is written last (after the Pods), so a record that differs also means Pods
    // an interrupted earlier sync may have missed.
    if template.is_empty() && normalised(existing.as_ref()) == desired {
        return None;
    }
    Some(Write::SyncEphemeralMetadata {
        name: rs_name(rs).to_string(),
        uid: rs.metadata.uid.clone().unwrap_or_default(),
        hash: rs_hash(rs).to_string(),
        template,
        existing,
        desired,
        record,
        pods: rs_spec_replicas(rs) > 0,
    })
}

/// The merge patch of a ReplicaSet for its pod template's part of a sync.
pub fn template_patch(template: &MetaPatch) -> Value {
    json!({"spec": {"template": {"metadata": template.metadata_patch()}}})
}

/// The merge patch of a ReplicaSet writing (or removing) its record.
pub fn record_patch(record: Option<&str>) -> Value {
    json!({"metadata": {"annotations": {annotation::EPHEMERAL_METADATA: record}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> PodTemplateMetadata {
        PodTemplateMetadata {
            labels: (!labels.is_empty()).then(|| map(labels)),
            annotations: (!annotations.is_empty()).then(|| map(annotations)),
        }
    }

    fn changes(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    /// (case, labels, annotations, recorded, desired, expected changes)
    type Case<'a> = (
        &'a str,
        BTreeMap<String, String>,
        BTreeMap<String, String>,
        Option<&'a PodTemplateMetadata>,
        Option<&'a PodTemplateMetadata>,
        MetaPatch,
    );

    #[test]
    fn sync_meta_sets_desired_and_removes_only_what_was_injected() {
        let preview = meta(&[("role", "preview")], &[("note", "p")]);
        let active = meta(&[("role", "active")], &[]);
        let cases: Vec<Case<'_>> = vec![
            (
                "preview to active: label rewritten, preview-only annotation removed",
                map(&[("app", "x"), ("role", "preview")]),
                map(&[("note", "p"), ("sidecar", "on")]),
                Some(&preview),
                Some(&active),
                MetaPatch {
                    labels: changes(&[("role", Some("active"))]),
                    annotations: changes(&[("note", None)]),
                },
            ),
            (
                "already in line: nothing",
                map(&[("app", "x"), ("role", "active")]),
                map(&[]),
                Some(&active),
                Some(&active),
                MetaPatch::default(),
            ),
            (
                "no role any more: injected keys go, others stay",
                map(&[("app", "x"), ("role", "active")]),
                map(&[("sidecar", "on")]),
                Some(&active),
                None,
                MetaPatch {
                    labels: changes(&[("role", None)]),
                    annotations: BTreeMap::new(),
                },
            ),
            (
                "nothing recorded: nothing removed, desired added",
                map(&[("app", "x")]),
                map(&[]),
                None,
                Some(&preview),
                MetaPatch {
                    labels: changes(&[("role", Some("preview"))]),
                    annotations: changes(&[("note", Some("p"))]),
                },
            ),
            (
                "recorded key already gone: nothing to remove",
                map(&[("app", "x")]),
                map(&[]),
                Some(&active),
                None,
                MetaPatch::default(),
            ),
        ];
        let mut failures = Vec::new();
        for (case, labels, annotations, existing, desired, want) in cases {
            let got = sync_meta(Some(&labels), Some(&annotations), existing, desired);
            if got != want {
                failures.push(format!("{case}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn metadata_patch_nulls_removed_keys() {
        let patch = MetaPatch {
            labels: changes(&[("role", Some("active"))]),
            annotations: changes(&[("note", None)]),
        };
        assert_eq!(
            patch.metadata_patch(),
            json!({"labels": {"role": "active"}, "annotations": {"note": null}})
        );
        assert_eq!(MetaPatch::default().metadata_patch(), json!({}));
        assert_eq!(
            record_patch(None),
            json!({"metadata": {"annotations": {annotation::EPHEMERAL_METADATA: null}}})
        );
    }
}
