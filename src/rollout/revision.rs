//! The new ReplicaSet and the revision (spec §3.9, upstream `syncReplicaSetRevision`,
//! `createDesiredReplicaSet`): the new ReplicaSet gets the next revision and the Rollout's
//! annotations, is created with 0 replicas when missing, and the Rollout mirrors its revision.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{
    Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

use super::conditions;
use super::observed::{computed_pod_hash, owner_reference, rs_annotation, rs_name, rs_revision};
use super::plan::{EventType, Plan, Write};
use super::world::View;
use crate::api::consts::{
    annotation, condition_status, condition_type, event_reason, label, reason,
};
use crate::api::{PodTemplateMetadata, Rollout, RolloutCondition};

/// Rollout annotations never copied onto ReplicaSets.
const NOT_COPIED: [&str; 5] = [
    annotation::LAST_APPLIED_CONFIGURATION,
    annotation::REVISION,
    annotation::REVISION_HISTORY,
    annotation::DESIRED_REPLICAS,
    annotation::NOTIFIED,
];

/// Rollout annotations that a ReplicaSet lacks or holds with another value.
fn copied_annotations(
    rollout: &Rollout,
    rs_annotations: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    rollout
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(key, _)| !NOT_COPIED.contains(&key.as_str()))
        .filter(|(key, value)| rs_annotations.and_then(|known| known.get(*key)) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// What the revision sync decided.
#[derive(Debug, Default)]
pub(crate) struct RevisionSync {
    /// Annotation updates, the ReplicaSet creation, the Rollout revision and their events.
    pub plan: Plan,
    /// The ReplicaSet this plan creates (stamped with the reconcile's time): from now on the
    /// new ReplicaSet.
    pub created: Option<ReplicaSet>,
    /// Annotations merged into the new ReplicaSet (index into the view's ReplicaSets).
    pub annotated: Option<(usize, BTreeMap<String, String>)>,
    /// The Rollout's revision after this sync.
    pub revision: Option<i64>,
    /// The Progressing condition the status gets (`NewReplicaSetCreated`, `FoundNewReplicaSet`).
    pub progressing: Option<RolloutCondition>,
}

/// Folds a [`RevisionSync`] into a strategy's reconcile state: its writes into `plan`, the
/// annotations and the created ReplicaSet into `sets`, the revision, and the Progressing
/// condition into `prev` (upstream's `c.rollout.Status`).
pub(crate) fn fold(
    decided: RevisionSync,
    plan: &mut Plan,
    sets: &mut super::world::ReplicaSets,
    revision: &mut Option<i64>,
    prev: &mut crate::api::RolloutStatus,
) {
    let RevisionSync {
        plan: written,
        created,
        annotated,
        revision: synced,
        progressing,
    } = decided;
    plan.append(written);
    if let Some((index, annotations)) = annotated
        && let Some(rs) = sets.all.get_mut(index)
    {
        rs.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(annotations);
    }
    if let Some(rs) = created {
        sets.add_new(rs);
    }
    *revision = synced;
    if let Some(condition) = progressing {
        conditions::set(prev, condition);
    }
}

/// Upstream `syncReplicaSetRevision` / `createDesiredReplicaSet`: the new ReplicaSet gets
/// revision max(older)+1 and the Rollout's annotations; the Rollout gets the same revision.
/// When `create` and there is no new ReplicaSet yet, it is created (with 0 replicas) and the
/// rest of the reconcile treats it as existing.
pub(crate) fn sync(v: &View<'_>, create: bool) -> RevisionSync {
    let mut out = RevisionSync {
        revision: v.revision,
        ..RevisionSync::default()
    };
    let max_old = v
        .rss
        .iter()
        .enumerate()
        .filter(|(index, _)| Some(*index) != v.new_rs)
        .filter_map(|(_, rs)| rs_revision(rs))
        .max()
        .unwrap_or(0);
    let new_revision = max_old + 1;
    match v.new_rs {
        Some(index) => {
            let rs = &v.rss[index];
            let mut changes = copied_annotations(v.ro, rs.metadata.annotations.as_ref());
            let old_text = rs_annotation(rs, annotation::REVISION).map(str::to_string);
            let old_revision = match old_text.as_deref() {
                None | Some("") => Some(0),
                Some(text) => text.parse::<i64>().ok(),
            };
            if let Some(old) = old_revision
                && old < new_revision
            {
                changes.insert(annotation::REVISION.to_string(), new_revision.to_string());
                // Reusing an older ReplicaSet (rollback): remember its earlier revisions.
                if let Some(old_text) = old_text.filter(|text| !text.is_empty()) {
                    let history = rs_annotation(rs, annotation::REVISION_HISTORY).unwrap_or("");
                    let history = if history.is_empty() {
                        old_text
                    } else {
                        format!("{history},{old_text}")
                    };
                    changes.insert(annotation::REVISION_HISTORY.to_string(), history);
                }
            }
            if !changes.is_empty() {
                out.plan.push(Write::UpdateReplicaSetAnnotations {
                    name: rs_name(rs).to_string(),
                    annotations: changes.clone(),
                });
                out.annotated = Some((index, changes));
                // Upstream returns here; the Rollout's revision follows next reconcile.
                return out;
            }
            let revision = rs_annotation(rs, annotation::REVISION).unwrap_or("");
            set_rollout_revision(v, &mut out, revision);
            if conditions::get(v.prev, condition_type::PROGRESSING).is_none() {
                let text = conditions::found_new_rs_message(rs_name(rs));
                out.progressing = Some(conditions::new_condition(
                    condition_type::PROGRESSING,
                    condition_status::TRUE,
                    reason::FOUND_NEW_REPLICA_SET,
                    &text,
                    v.now_time,
                ));
            }
        }
        None if create => {
            let rs = new_replica_set(v, new_revision);
            let name = rs_name(&rs).to_string();
            out.plan.push(Write::CreateReplicaSet(Box::new(rs.clone())));
            // The API server will stamp it now; the rest of this reconcile (rollback window,
            // creation order) must see it as the newest ReplicaSet.
            let mut rs = rs;
            rs.metadata.creation_timestamp = Some(v.now_time.clone());
            out.created = Some(rs);
            set_rollout_revision(v, &mut out, &new_revision.to_string());
            out.plan.event(
                EventType::Normal,
                event_reason::NEW_REPLICA_SET_CREATED,
                format!("Created ReplicaSet {name} (revision {new_revision})"),
            );
            out.progressing = Some(conditions::new_condition(
                condition_type::PROGRESSING,
                condition_status::TRUE,
                reason::NEW_REPLICA_SET_CREATED,
                &conditions::new_rs_created_message(&name),
                v.now_time,
            ));
        }
        None => {}
    }
    out
}

/// Mirrors the new ReplicaSet's revision onto the Rollout (event `RolloutUpdated`).
fn set_rollout_revision(v: &View<'_>, out: &mut RevisionSync, revision: &str) {
    let current =
        v.ro.metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(annotation::REVISION));
    if revision.is_empty() || current.map(String::as_str) == Some(revision) {
        return;
    }
    out.plan.push(Write::SetRolloutRevision {
        revision: revision.to_string(),
    });
    out.revision = revision.parse().ok();
    out.plan.event(
        EventType::Normal,
        event_reason::ROLLOUT_UPDATED,
        format!("Rollout updated to revision {revision}"),
    );
}

/// The new ReplicaSet as upstream creates it: `<rollout>-<hash>`, template labels plus the
/// hash, selector plus the hash, the Rollout's annotations, revision and desired replicas,
/// injected anti-affinity and ephemeral metadata, 0 replicas, owned by the Rollout.
fn new_replica_set(v: &View<'_>, revision: i64) -> ReplicaSet {
    let ro = v.ro;
    let hash = computed_pod_hash(ro);
    let mut template = ro.spec.template.clone().unwrap_or_default();
    let metadata = template.metadata.get_or_insert_with(ObjectMeta::default);
    let mut labels = metadata.labels.clone().unwrap_or_default();
    labels.insert(label::POD_TEMPLATE_HASH.to_string(), hash.clone());
    metadata.labels = Some(labels.clone());
    if let Some(spec) = template.spec.as_mut() {
        spec.affinity = replica_set_affinity(ro, spec.affinity.clone(), &hash);
    }
    let mut annotations = copied_annotations(ro, None);
    annotations.insert(annotation::REVISION.to_string(), revision.to_string());
    annotations.insert(
        annotation::DESIRED_REPLICAS.to_string(),
        v.replicas().to_string(),
    );
    // A brand-new rollout's first ReplicaSet becomes stable: it gets the stable metadata.
    // Blue-green: the pods behind the preview Service get `previewMetadata`, the first
    // ReplicaSet (active at once) `activeMetadata`.
    let ephemeral = match (v.blue_green, v.stable_rs.is_some()) {
        (Some(blue_green), true) => blue_green.preview_metadata.as_ref(),
        (Some(blue_green), false) => blue_green.active_metadata.as_ref(),
        (None, true) => v.canary.canary_metadata.as_ref(),
        (None, false) => v.canary.stable_metadata.as_ref(),
    };
    if let Some(injected) = ephemeral.filter(|m| m.labels.is_some() || m.annotations.is_some()) {
        let metadata = template.metadata.get_or_insert_with(ObjectMeta::default);
        if let Some(extra) = injected.labels.as_ref() {
            metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .extend(extra.clone());
        }
        if let Some(extra) = injected.annotations.as_ref() {
            metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(extra.clone());
        }
        if let Ok(json) = serde_json::to_string(&PodTemplateMetadata {
            labels: injected.labels.clone(),
            annotations: injected.annotations.clone(),
        }) {
            annotations.insert(annotation::EPHEMERAL_METADATA.to_string(), json);
        }
    }
    let mut selector = ro.spec.selector.clone().unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(label::POD_TEMPLATE_HASH.to_string(), hash.clone());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", v.name())),
            namespace: ro.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner_reference(ro)]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: ro.spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

/// Upstream `GenerateReplicaSetAffinity`: while an update is in progress, keep new pods off
/// the nodes of stable pods (spec §1.2 `antiAffinity`).
fn replica_set_affinity(ro: &Rollout, affinity: Option<Affinity>, hash: &str) -> Option<Affinity> {
    let Some(anti) = ro
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|canary| canary.anti_affinity.as_ref())
        .or_else(|| {
            ro.spec
                .strategy
                .blue_green
                .as_ref()
                .and_then(|blue_green| blue_green.anti_affinity.as_ref())
        })
    else {
        return affinity;
    };
    let stable = ro
        .status
        .as_ref()
        .map_or("", |status| status.stable_rs.as_str());
    if stable.is_empty() || stable == hash {
        return affinity;
    }
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: label::POD_TEMPLATE_HASH.to_string(),
                operator: "In".to_string(),
                values: Some(vec![stable.to_string()]),
            }]),
            match_labels: None,
        }),
        namespaces: Some(vec![ro.metadata.namespace.clone().unwrap_or_default()]),
        topology_key: "kubernetes.io/hostname".to_string(),
        ..PodAffinityTerm::default()
    };
    let mut affinity = affinity.unwrap_or_default();
    let pod_anti = affinity
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default);
    match anti
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
    {
        Some(preferred) => pod_anti
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(WeightedPodAffinityTerm {
                weight: preferred.weight,
                pod_affinity_term: term,
            }),
        None => pod_anti
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term),
    }
    Some(affinity)
}

#[cfg(test)]
mod tests {
    use crate::rollout::fixtures::{at, new_hash, replica_set, rollout, world};
    use crate::rollout::plan;
    use crate::rollout::plan::Write;
    use serde_json::json;

    fn status_updating() -> serde_json::Value {
        json!({"stableRS": "s1", "currentPodHash": new_hash(), "currentStepIndex": 0,
               "observedGeneration": "1"})
    }

    #[test]
    fn the_new_replica_set_is_created_as_upstream_names_and_labels_it() {
        let mut ro = rollout(3, json!([{"setWeight": 50}]), false, status_updating());
        ro.spec.min_ready_seconds = Some(5);
        if let Some(canary) = ro.spec.strategy.canary.as_mut() {
            canary.anti_affinity = serde_json::from_value(
                json!({"requiredDuringSchedulingIgnoredDuringExecution": {}}),
            )
            .ok();
        }
        let observed = world(ro, vec![replica_set("s1", 3, 3, 1, 1)]);
        let decided = plan(&observed, at(0));
        let Some(Write::CreateReplicaSet(rs)) = decided.writes.first() else {
            panic!("first write creates the ReplicaSet: {:?}", decided.writes);
        };
        let hash = new_hash();
        assert_eq!(rs.metadata.name, Some(format!("demo-{hash}")));
        let labels = rs.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("rollouts-pod-template-hash"), Some(&hash));
        assert_eq!(labels.get("app").map(String::as_str), Some("demo"));
        let annotations = rs.metadata.annotations.clone().unwrap_or_default();
        let got: Vec<(&str, &str)> = annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("rollout.argoproj.io/desired-replicas", "3"),
                ("rollout.argoproj.io/revision", "2"),
                ("team", "a")
            ]
        );
        let spec = rs.spec.clone().unwrap_or_default();
        assert_eq!((spec.replicas, spec.min_ready_seconds), (Some(0), Some(5)));
        assert_eq!(
            spec.selector
                .match_labels
                .clone()
                .unwrap_or_default()
                .get("rollouts-pod-template-hash"),
            Some(&hash)
        );
        let owner = &rs.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("Rollout", "demo", Some(true))
        );
        let anti = spec
            .template
            .and_then(|t| t.spec)
            .and_then(|s| s.affinity)
            .and_then(|a| a.pod_anti_affinity)
            .and_then(|p| p.required_during_scheduling_ignored_during_execution)
            .unwrap_or_default();
        let term = &anti[0];
        assert_eq!(term.topology_key, "kubernetes.io/hostname");
        let expression = &term
            .label_selector
            .clone()
            .unwrap_or_default()
            .match_expressions
            .unwrap_or_default()[0];
        assert_eq!(
            (expression.key.as_str(), expression.values.clone()),
            ("rollouts-pod-template-hash", Some(vec!["s1".to_string()]))
        );
        // Then, in the same plan: the Rollout revision, events, and the first scale-up.
        assert!(
            !decided.writes.contains(&Write::SetRolloutRevision {
                revision: "2".into()
            }),
            "the Rollout is already at revision 2"
        );
        let reasons: Vec<&str> = decided.events().map(|e| e.reason.as_str()).collect();
        assert!(
            reasons.starts_with(&["NewReplicaSetCreated", "ScalingReplicaSet"]),
            "{reasons:?}"
        );
    }

    #[test]
    fn reusing_an_older_replica_set_bumps_its_revision_and_keeps_history() {
        let hash = new_hash();
        let ro = rollout(2, json!([{"setWeight": 50}]), false, status_updating());
        let observed = world(
            ro,
            vec![
                replica_set(&hash, 0, 0, 1, 1),
                replica_set("s1", 2, 2, 3, 2),
            ],
        );
        let decided = plan(&observed, at(0));
        let update = decided.writes.iter().find_map(|w| match w {
            Write::UpdateReplicaSetAnnotations { name, annotations } => {
                Some((name.clone(), annotations.clone()))
            }
            _ => None,
        });
        let (name, annotations) = update.expect("revision sync");
        assert_eq!(name, format!("demo-{hash}"));
        assert_eq!(
            annotations
                .get("rollout.argoproj.io/revision")
                .map(String::as_str),
            Some("4")
        );
        assert_eq!(
            annotations
                .get("rollout.argoproj.io/revision-history")
                .map(String::as_str),
            Some("1")
        );
        assert_eq!(annotations.get("team").map(String::as_str), Some("a"));
    }
}
