//! ReplicaSet writes of a canary reconcile: revision sync and creation of the new ReplicaSet
//! (spec §3.9), scaling stable → new → others with at most one of them moved per reconcile
//! (§3.3, §3.3.4), abort scale-down delay (§3.6), and revision-history cleanup (§1.1).

use std::collections::BTreeMap;

use chrono::Duration;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{
    Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};

use super::conditions;
use super::context::Ctx;
use super::observed::{
    computed_pod_hash, creation_time, math_weights, other_rs, rs_annotation, rs_hash, rs_name,
    rs_revision, rs_scale_down_deadline, rs_spec_replicas, rs_status_replicas,
};
use super::plan::{EventType, Write};
use super::replicas::other::{
    OtherReplicaSetAction, OtherScaleDownContext, ScaleDownDeadline, plan_other_replica_sets,
};
use super::replicas::{desired_replica_counts, stable_rs_exists};
use crate::api::consts::{
    API_VERSION, annotation, condition_status, condition_type, event_reason, kind, label, reason,
};
use crate::api::{PodTemplateMetadata, Rollout};

/// Rollout annotations never copied onto ReplicaSets.
const NOT_COPIED: [&str; 5] = [
    annotation::LAST_APPLIED_CONFIGURATION,
    annotation::REVISION,
    annotation::REVISION_HISTORY,
    annotation::DESIRED_REPLICAS,
    annotation::NOTIFIED,
];

/// The controller ownerReference pointing at the Rollout.
pub fn owner_reference(rollout: &Rollout) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_string(),
        kind: kind::ROLLOUT.to_string(),
        name: rollout.metadata.name.clone().unwrap_or_default(),
        uid: rollout.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

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

/// Upstream `syncReplicaSetRevision` / `createDesiredReplicaSet`: the new ReplicaSet gets
/// revision max(older)+1 and the Rollout's annotations; the Rollout gets the same revision.
/// When `create` and there is no new ReplicaSet yet, it is created (with 0 replicas) and the
/// rest of the reconcile treats it as existing.
pub(crate) fn sync_revision(ctx: &mut Ctx<'_>, create: bool) {
    let max_old = ctx
        .rss
        .iter()
        .enumerate()
        .filter(|(index, _)| Some(*index) != ctx.new_rs)
        .filter_map(|(_, rs)| rs_revision(rs))
        .max()
        .unwrap_or(0);
    let new_revision = max_old + 1;
    match ctx.new_rs {
        Some(index) => {
            let rs = &ctx.rss[index];
            let mut changes = copied_annotations(ctx.ro, rs.metadata.annotations.as_ref());
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
                let name = rs_name(rs).to_string();
                let target = ctx.rss[index]
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new);
                target.extend(changes.clone());
                ctx.plan.push(Write::UpdateReplicaSetAnnotations {
                    name,
                    annotations: changes,
                });
                // Upstream returns here; the Rollout's revision follows next reconcile.
                return;
            }
            let revision = rs_annotation(&ctx.rss[index], annotation::REVISION)
                .unwrap_or("")
                .to_string();
            set_rollout_revision(ctx, &revision);
            if conditions::get(&ctx.prev, condition_type::PROGRESSING).is_none() {
                let text = conditions::found_new_rs_message(rs_name(&ctx.rss[index]));
                let condition = conditions::new_condition(
                    condition_type::PROGRESSING,
                    condition_status::TRUE,
                    reason::FOUND_NEW_REPLICA_SET,
                    &text,
                    &ctx.now_time,
                );
                conditions::set(&mut ctx.prev, condition);
            }
        }
        None if create => {
            let rs = new_replica_set(ctx, new_revision);
            let name = rs_name(&rs).to_string();
            ctx.plan.push(Write::CreateReplicaSet(Box::new(rs.clone())));
            // The API server will stamp it now; the rest of this reconcile (rollback window,
            // creation order) must see it as the newest ReplicaSet.
            let mut rs = rs;
            rs.metadata.creation_timestamp = Some(ctx.now_time.clone());
            ctx.rss.push(rs);
            ctx.new_rs = Some(ctx.rss.len() - 1);
            set_rollout_revision(ctx, &new_revision.to_string());
            ctx.plan.event(
                EventType::Normal,
                event_reason::NEW_REPLICA_SET_CREATED,
                format!("Created ReplicaSet {name} (revision {new_revision})"),
            );
            let condition = conditions::new_condition(
                condition_type::PROGRESSING,
                condition_status::TRUE,
                reason::NEW_REPLICA_SET_CREATED,
                &conditions::new_rs_created_message(&name),
                &ctx.now_time,
            );
            conditions::set(&mut ctx.prev, condition);
        }
        None => {}
    }
}

/// Mirrors the new ReplicaSet's revision onto the Rollout (event `RolloutUpdated`).
fn set_rollout_revision(ctx: &mut Ctx<'_>, revision: &str) {
    let current = ctx
        .ro
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(annotation::REVISION));
    if revision.is_empty() || current.map(String::as_str) == Some(revision) {
        return;
    }
    ctx.plan.push(Write::SetRolloutRevision {
        revision: revision.to_string(),
    });
    ctx.revision = revision.parse().ok();
    ctx.plan.event(
        EventType::Normal,
        event_reason::ROLLOUT_UPDATED,
        format!("Rollout updated to revision {revision}"),
    );
}

/// The new ReplicaSet as upstream creates it: `<rollout>-<hash>`, template labels plus the
/// hash, selector plus the hash, the Rollout's annotations, revision and desired replicas,
/// injected anti-affinity and ephemeral metadata, 0 replicas, owned by the Rollout.
fn new_replica_set(ctx: &Ctx<'_>, revision: i64) -> ReplicaSet {
    let ro = ctx.ro;
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
        ctx.replicas().to_string(),
    );
    // A brand-new rollout's first ReplicaSet becomes stable: it gets the stable metadata.
    let ephemeral = if ctx.stable_rs.is_some() {
        ctx.canary.canary_metadata.as_ref()
    } else {
        ctx.canary.stable_metadata.as_ref()
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
            name: Some(format!("{}-{hash}", ctx.name())),
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

/// Upstream `shouldDelayScaleDownOnAbort`: a traffic-routed abort keeps the canary up for
/// `abortScaleDownDelaySeconds` (not with an explicit 0, nor with `dynamicStableScale` unless
/// the delay was set explicitly).
pub(crate) fn should_delay_scale_down_on_abort(ctx: &Ctx<'_>) -> bool {
    if !ctx.aborted() || ctx.stable_rs.is_none() || !ctx.params.traffic_routed {
        return false;
    }
    let spec = &ctx.ro.spec;
    // dynamicStableScale keeps no canary around unless a delay was written explicitly.
    spec.abort_scale_down_delay_seconds().is_some()
        && (!ctx.params.dynamic_stable_scale || spec.abort_scale_down_delay_was_set())
}

/// Scales `rss[index]` from `from` to `to`, refreshing `desired-replicas`; returns whether the
/// size changed (an annotation-only refresh is not a scaling).
fn scale(ctx: &mut Ctx<'_>, index: usize, from: i32, to: i32) -> bool {
    let rs = &ctx.rss[index];
    let replicas = ctx.replicas();
    let annotation_stale =
        rs_annotation(rs, annotation::DESIRED_REPLICAS) != Some(replicas.to_string().as_str());
    if from == to && !annotation_stale {
        return false;
    }
    let mut annotations = BTreeMap::from([(
        annotation::DESIRED_REPLICAS.to_string(),
        Some(replicas.to_string()),
    )]);
    if to == 0
        && !should_delay_scale_down_on_abort(ctx)
        && rs_scale_down_deadline(rs) != ScaleDownDeadline::Absent
    {
        annotations.insert(annotation::SCALE_DOWN_DEADLINE.to_string(), None);
    }
    let name = rs_name(rs).to_string();
    let revision = rs_revision(rs).unwrap_or(0);
    ctx.plan.push(Write::ScaleReplicaSet {
        name: name.clone(),
        from,
        to,
        annotations,
    });
    if from == to {
        return false;
    }
    let direction = if from < to { "up" } else { "down" };
    ctx.plan.event(
        EventType::Normal,
        event_reason::SCALING_REPLICA_SET,
        format!("Scaled {direction} ReplicaSet {name} (revision {revision}) from {from} to {to}"),
    );
    true
}

/// Upstream `reconcileCanaryReplicaSets`: unless halted, clear stale scale-down deadlines, then
/// scale the stable, else the new, else the other ReplicaSets. Returns whether one was scaled
/// (the reconcile then only writes the status).
pub(crate) fn reconcile_canary_replica_sets(ctx: &mut Ctx<'_>) -> bool {
    if ctx.halted() {
        return false;
    }
    remove_scale_down_deadlines(ctx);
    let new_counts = ctx.new_counts();
    let stable_counts = ctx.stable_counts();
    let others = ctx.other_counts();
    if stable_rs_exists(new_counts.as_ref(), stable_counts.as_ref())
        && let Some(stable) = ctx.stable_rs
    {
        // The stable uses the weights of the previous reconcile, so it shrinks only after
        // traffic left it (upstream note in reconcileCanaryStableReplicaSet).
        let weights = math_weights(ctx.prev.canary.weights.as_ref());
        let desired = desired_replica_counts(
            &ctx.params,
            new_counts.as_ref(),
            stable_counts.as_ref(),
            &others,
            weights.as_ref(),
        );
        let from = rs_spec_replicas(&ctx.rss[stable]);
        if scale(ctx, stable, from, desired.stable) {
            return true;
        }
    }
    if let Some(new_index) = ctx.new_rs {
        let weights = math_weights(ctx.new_status.canary.weights.as_ref());
        let mut desired = desired_replica_counts(
            &ctx.params,
            new_counts.as_ref(),
            stable_counts.as_ref(),
            &others,
            weights.as_ref(),
        )
        .canary;
        if should_delay_scale_down_on_abort(ctx) {
            match rs_scale_down_deadline(&ctx.rss[new_index]) {
                ScaleDownDeadline::At(deadline) if deadline > ctx.now => {
                    ctx.plan.requeue(deadline - ctx.now);
                    return false;
                }
                ScaleDownDeadline::At(_) => desired = 0,
                ScaleDownDeadline::Unparseable => {}
                ScaleDownDeadline::Absent => {
                    // Annotate only once the stable can take all traffic; keep the canary
                    // scaled up until then.
                    let stable_ready = ctx
                        .stable_rs()
                        .is_some_and(|rs| super::observed::rs_available(rs) == ctx.replicas());
                    if stable_ready {
                        let seconds = ctx.ro.spec.abort_scale_down_delay_seconds().unwrap_or(0);
                        let deadline = ctx.now + Duration::seconds(i64::from(seconds));
                        let name = rs_name(&ctx.rss[new_index]).to_string();
                        ctx.plan.push(Write::SetScaleDownDeadline {
                            name,
                            deadline: deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        });
                        ctx.plan.requeue(Duration::seconds(i64::from(seconds)));
                    }
                    return false;
                }
            }
        }
        let from = rs_spec_replicas(&ctx.rss[new_index]);
        if scale(ctx, new_index, from, desired) {
            return true;
        }
    }
    reconcile_other_replica_sets(ctx)
}

/// Upstream `removeScaleDownDeadlines`: the new and stable ReplicaSets must not carry a
/// deadline (we may have moved back to one still within its delay), except the canary while
/// an abort delay runs.
fn remove_scale_down_deadlines(ctx: &mut Ctx<'_>) {
    let mut targets = Vec::new();
    if let Some(new_rs) = ctx.new_rs
        && !should_delay_scale_down_on_abort(ctx)
    {
        targets.push(new_rs);
    }
    if let Some(stable) = ctx.stable_rs
        && !targets.contains(&stable)
    {
        targets.push(stable);
    }
    for index in targets {
        if rs_scale_down_deadline(&ctx.rss[index]) != ScaleDownDeadline::Absent {
            let name = rs_name(&ctx.rss[index]).to_string();
            ctx.plan.push(Write::ClearScaleDownDeadline { name });
        }
    }
}

/// Whether a ReplicaSet is still referenced by the status or a Service (traffic routing must
/// not scale those down, spec §3.3.4).
fn referenced(ctx: &Ctx<'_>, index: usize) -> bool {
    let hash = rs_hash(&ctx.rss[index]);
    if hash.is_empty() {
        return false;
    }
    let status = &ctx.prev;
    let mut references = vec![
        status.stable_rs.as_str(),
        status.current_pod_hash.as_str(),
        status.blue_green.active_selector.as_str(),
        status.blue_green.preview_selector.as_str(),
    ];
    if let Some(weights) = status.canary.weights.as_ref() {
        references.push(weights.canary.pod_template_hash.as_str());
        references.push(weights.stable.pod_template_hash.as_str());
    }
    for service in [
        ctx.canary.canary_service.as_ref(),
        ctx.canary.stable_service.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(selected) = ctx.selectors.get(service) {
            references.push(selected.as_str());
        }
    }
    references.contains(&hash)
}

/// Scales the other ReplicaSets down (spec §3.3.4); true when any got smaller.
fn reconcile_other_replica_sets(ctx: &mut Ctx<'_>) -> bool {
    let others: Vec<_> = ctx
        .others
        .iter()
        .map(|&index| {
            other_rs(
                &ctx.rss[index],
                ctx.params.traffic_routed && referenced(ctx, index),
            )
        })
        .collect();
    let scale_ctx = OtherScaleDownContext {
        params: &ctx.params,
        fully_promoted: ctx.fully_promoted(),
        scale_down_delay_seconds: ctx.canary.scale_down_delay_seconds,
        scale_down_delay_revision_limit: ctx.canary.scale_down_delay_revision_limit,
        now: ctx.now,
    };
    let decided = plan_other_replica_sets(
        &scale_ctx,
        ctx.new_counts().as_ref(),
        ctx.stable_counts().as_ref(),
        &others,
    );
    if let Some(after) = decided.requeue_after {
        ctx.plan.requeue(after);
    }
    let mut scaled_down = false;
    for action in decided.actions {
        match action {
            OtherReplicaSetAction::Scale { name, from, to } => {
                if let Some(index) = ctx.rss.iter().position(|rs| rs_name(rs) == name) {
                    scaled_down |= scale(ctx, index, from, to) && to < from;
                }
            }
            OtherReplicaSetAction::SetScaleDownDeadline {
                name, annotation, ..
            } => {
                ctx.plan.push(Write::SetScaleDownDeadline {
                    name,
                    deadline: annotation,
                });
            }
        }
    }
    scaled_down
}

/// Upstream `reconcileRevisionHistoryLimit`: beyond `revisionHistoryLimit` (default 10) other
/// ReplicaSets, delete the oldest ones that are fully scaled down, with their AnalysisRuns.
pub(crate) fn cleanup_history(ctx: &mut Ctx<'_>) {
    let limit = usize::try_from(ctx.ro.spec.revision_history_limit()).unwrap_or(0);
    let mut cleanable: Vec<usize> = ctx
        .others
        .iter()
        .copied()
        .filter(|&index| ctx.rss[index].metadata.deletion_timestamp.is_none())
        .collect();
    if cleanable.len() <= limit {
        return;
    }
    cleanable.sort_by_key(|&index| {
        (
            creation_time(ctx.rss[index].metadata.creation_timestamp.as_ref()),
            rs_name(&ctx.rss[index]).to_string(),
        )
    });
    let excess = cleanable.len() - limit;
    for &index in &cleanable[..excess] {
        let rs = &ctx.rss[index];
        let generation = rs.metadata.generation.unwrap_or(0);
        let observed_generation = rs
            .status
            .as_ref()
            .and_then(|status| status.observed_generation)
            .unwrap_or(0);
        if rs_status_replicas(rs) != 0
            || rs_spec_replicas(rs) != 0
            || generation > observed_generation
        {
            continue;
        }
        let hash = rs_hash(rs).to_string();
        ctx.plan.push(Write::DeleteReplicaSet {
            name: rs_name(rs).to_string(),
        });
        if !hash.is_empty() {
            super::analysis::delete_runs_of_hash(ctx, &hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rollout::fixtures::{at, new_hash, replica_set, rollout, world};
    use crate::rollout::plan::{Write, plan};
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
