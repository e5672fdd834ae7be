//! `spec.workloadRef` (spec §1.1): the pod template (and selector) a Rollout takes from a
//! Deployment, ReplicaSet or PodTemplate, as upstream's `Resolve` does, and the scale-down of
//! the referenced Deployment (`scaleDown: never | onsuccess | progressively`).
//!
//! Pure: the executor reads the referenced object and hands it over as a [`Workload`];
//! [`resolve`] gives back the Rollout the rest of the core plans from (the template is never
//! written back to the stored Rollout).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{PodTemplate, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::observed::rs_revision;
use super::plan::{Plan, Write};
use crate::api::consts::{annotation, scale_down};
use crate::api::rollout::ObjectRef;
use crate::api::validate::template_is_empty;
use crate::api::{Rollout, RolloutPhase, RolloutStatus};

/// The kinds a `workloadRef` may name (upstream's `infoByGroupKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// `apps/v1 Deployment`: template and selector.
    Deployment,
    /// `apps/v1 ReplicaSet`: template and selector.
    ReplicaSet,
    /// `v1 PodTemplate`: template only.
    PodTemplate,
}

impl WorkloadKind {
    /// The kind `reference` names, or upstream's error text for one it cannot resolve.
    pub fn of(reference: &ObjectRef) -> Result<WorkloadKind, String> {
        let api_version = reference.api_version.as_deref().unwrap_or("");
        let kind = reference.kind.as_deref().unwrap_or("");
        // Go's `schema.FromAPIVersionAndKind`: the group is what precedes the last `/`.
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let known = match (group, kind) {
            ("apps", "Deployment") => WorkloadKind::Deployment,
            ("apps", "ReplicaSet") => WorkloadKind::ReplicaSet,
            ("", "PodTemplate") => WorkloadKind::PodTemplate,
            _ => return Err(format!("workload of type {group}/{kind} is not supported")),
        };
        // Upstream asks discovery for the group-version; only `v1` of these groups exists.
        if version != "v1" {
            return Err("the server could not find the requested resource".to_string());
        }
        Ok(known)
    }

    /// The group-qualified resource, as apimachinery prints it in a NotFound error.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments.apps",
            WorkloadKind::ReplicaSet => "replicasets.apps",
            WorkloadKind::PodTemplate => "podtemplates",
        }
    }

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::PodTemplate => "PodTemplate",
        }
    }
}

/// What the executor found under a `workloadRef`, as the resolution reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workload {
    /// The pod template (`spec.template`, or `template` of a PodTemplate).
    pub template: Option<PodTemplateSpec>,
    /// The selector (`spec.selector`; none for a PodTemplate).
    pub selector: Option<LabelSelector>,
    /// `metadata.generation`.
    pub generation: i64,
    /// `spec.replicas` of a Deployment (what `scaleDown` changes); `None` for other kinds.
    pub replicas: Option<i32>,
}

impl From<&Deployment> for Workload {
    fn from(deployment: &Deployment) -> Self {
        let spec = deployment.spec.as_ref();
        Workload {
            template: spec.map(|spec| spec.template.clone()),
            selector: spec.map(|spec| spec.selector.clone()),
            generation: deployment.metadata.generation.unwrap_or(0),
            // The API server defaults an absent `spec.replicas` to 1.
            replicas: Some(spec.and_then(|spec| spec.replicas).unwrap_or(1)),
        }
    }
}

impl From<&ReplicaSet> for Workload {
    fn from(rs: &ReplicaSet) -> Self {
        let spec = rs.spec.as_ref();
        Workload {
            template: spec.and_then(|spec| spec.template.clone()),
            selector: spec.map(|spec| spec.selector.clone()),
            generation: rs.metadata.generation.unwrap_or(0),
            replicas: None,
        }
    }
}

impl From<&PodTemplate> for Workload {
    fn from(template: &PodTemplate) -> Self {
        Workload {
            template: template.template.clone(),
            selector: None,
            generation: template.metadata.generation.unwrap_or(0),
            replicas: None,
        }
    }
}

/// What the plan needs to know about a resolved reference.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedWorkload {
    /// The referenced object's name.
    pub name: String,
    /// Its kind.
    pub kind: Option<WorkloadKind>,
    /// Its `metadata.generation`, decimal (`rollout.argoproj.io/workload-generation` and
    /// `status.workloadObservedGeneration`).
    pub generation: String,
    /// The Rollout's `workload-generation` annotation as stored.
    pub recorded_generation: Option<String>,
    /// `spec.replicas` of a referenced Deployment.
    pub replicas: Option<i32>,
    /// `workloadRef.scaleDown` (empty means never).
    pub scale_down: String,
}

/// Upstream's `Resolve`: the Rollout with the workload's template (and its selector when the
/// Rollout has none) and the `workload-generation` annotation, plus what the plan reads about
/// the workload. `found` is the referenced object (`None`: it does not exist).
///
/// The error is what the `InvalidSpec` condition reports after `The Rollout "x" is invalid: `:
/// upstream's controller puts the resolution error there as it is (its `spec.workloadRef`
/// field error is only the reconcile's returned error).
pub fn resolve(
    rollout: &Rollout,
    found: Option<&Workload>,
) -> Result<(Rollout, ResolvedWorkload), String> {
    let Some(reference) = rollout.spec.workload_ref.as_ref() else {
        return Ok((rollout.clone(), ResolvedWorkload::default()));
    };
    if !template_is_empty(rollout.spec.template.as_ref()) {
        return Err("template must be empty for workload reference rollout".to_string());
    }
    let kind = WorkloadKind::of(reference)?;
    let name = reference.name.clone().unwrap_or_default();
    let Some(workload) = found else {
        // The lister's NotFound names the cache key, namespace included.
        let namespace = rollout.metadata.namespace.as_deref().unwrap_or("");
        return Err(format!(
            "{} \"{namespace}/{name}\" not found",
            kind.resource()
        ));
    };
    let mut resolved = rollout.clone();
    if let Some(template) = &workload.template {
        resolved.spec.template = Some(template.clone());
    }
    if resolved.spec.selector.is_none() {
        resolved.spec.selector = workload.selector.clone();
    }
    let generation = workload.generation.to_string();
    let recorded_generation = rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(annotation::WORKLOAD_GENERATION))
        .cloned();
    resolved
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            annotation::WORKLOAD_GENERATION.to_string(),
            generation.clone(),
        );
    Ok((
        resolved,
        ResolvedWorkload {
            name,
            kind: Some(kind),
            generation,
            recorded_generation,
            replicas: workload.replicas,
            scale_down: reference.scale_down.clone().unwrap_or_default(),
        },
    ))
}

/// The workload writes of a reconcile, after the strategy's own: the `workload-generation`
/// annotation when the workload changed (upstream patches it from its informer), and the
/// Deployment's scale-down.
///
/// Scale-down, as upstream (both only while the Rollout is at revision 1, a one-time
/// migration from the Deployment): `onsuccess` scales the Deployment to 0 once the Rollout,
/// as read, is Healthy and fully promoted; `progressively` scales it to `spec.replicas -
/// status.readyReplicas` while the new ReplicaSet comes up (or is scaled down again), and to
/// 0 once the Rollout is Healthy.
pub(crate) fn append_writes(
    rollout: &Rollout,
    workload: &ResolvedWorkload,
    new_rs: Option<&ReplicaSet>,
    plan: &mut Plan,
) {
    if workload.kind.is_none() {
        return;
    }
    if workload.recorded_generation.as_deref() != Some(workload.generation.as_str()) {
        plan.writes.insert(
            0,
            Write::SetWorkloadGeneration {
                generation: workload.generation.clone(),
            },
        );
    }
    let Some(target) = scale_down_target(rollout, workload, new_rs, plan) else {
        return;
    };
    let target = target.max(0);
    if workload.replicas != Some(target) {
        plan.push(Write::ScaleWorkload {
            name: workload.name.clone(),
            replicas: target,
        });
    }
}

/// The replicas the referenced Deployment should have now, if `scaleDown` says to change it.
fn scale_down_target(
    rollout: &Rollout,
    workload: &ResolvedWorkload,
    new_rs: Option<&ReplicaSet>,
    plan: &Plan,
) -> Option<i32> {
    if workload.kind != Some(WorkloadKind::Deployment) {
        return None;
    }
    let status = rollout.status.clone().unwrap_or_default();
    let healthy = status.phase == Some(RolloutPhase::Healthy);
    match workload.scale_down.as_str() {
        scale_down::ON_SUCCESS => {
            let revision = rollout
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(annotation::REVISION))
                .and_then(|text| text.parse::<i64>().ok());
            (revision == Some(1) && healthy && fully_promoted(&status)).then_some(0)
        }
        scale_down::PROGRESSIVELY => {
            let rs = new_rs?;
            let (name, revision) = (
                rs.metadata.name.clone().unwrap_or_default(),
                rs_revision(rs),
            );
            if revision != Some(1) {
                return None;
            }
            if healthy {
                return Some(0);
            }
            // The new ReplicaSet's scale this plan decided (`from > to`: scaled down again,
            // e.g. aborted, so the Deployment takes the load back).
            let scaled_down = plan.writes.iter().any(|write| {
                matches!(write, Write::ScaleReplicaSet { name: n, from, to, .. }
                    if *n == name && from > to)
            });
            let spec_replicas = rollout.spec.replicas?;
            let ready = status.ready_replicas;
            (ready > 0 || scaled_down).then_some(spec_replicas - ready)
        }
        _ => None,
    }
}

fn fully_promoted(status: &RolloutStatus) -> bool {
    !status.stable_rs.is_empty() && status.stable_rs == status.current_pod_hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(workload_ref: serde_json::Value, extra: serde_json::Value) -> Rollout {
        let mut value = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "ro", "namespace": "ns"},
            "spec": {"replicas": 5, "workloadRef": workload_ref,
                     "strategy": {"canary": {"steps": [{"setWeight": 20}]}}}
        });
        if let (Some(spec), Some(extra)) = (value["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(value).unwrap()
    }

    fn deployment(generation: i64, replicas: i32) -> Workload {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "generation": generation},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "blue"}]}}}
        }))
        .unwrap();
        Workload::from(&deployment)
    }

    fn deploy_ref(name: &str) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name})
    }

    #[test]
    fn a_deployment_gives_its_template_selector_and_generation() {
        let ro = rollout(deploy_ref("web"), json!({}));
        let (resolved, workload) = resolve(&ro, Some(&deployment(3, 0))).unwrap();
        let template = resolved.spec.template.unwrap();
        assert_eq!(
            template.spec.unwrap().containers[0].image.as_deref(),
            Some("blue")
        );
        assert_eq!(
            resolved.spec.selector.unwrap().match_labels.unwrap()["app"],
            "web"
        );
        assert_eq!(
            resolved.metadata.annotations.unwrap()[annotation::WORKLOAD_GENERATION],
            "3"
        );
        assert_eq!(workload.generation, "3");
        assert_eq!(workload.recorded_generation, None);
        assert_eq!(workload.kind, Some(WorkloadKind::Deployment));
        // The stored Rollout is untouched.
        assert!(ro.spec.template.is_none());
    }

    #[test]
    fn the_rollouts_own_selector_wins() {
        let ro = rollout(
            deploy_ref("web"),
            json!({"selector": {"matchLabels": {"app": "mine"}}}),
        );
        let (resolved, _) = resolve(&ro, Some(&deployment(1, 0))).unwrap();
        assert_eq!(
            resolved.spec.selector.unwrap().match_labels.unwrap()["app"],
            "mine"
        );
    }

    #[test]
    fn resolution_errors_read_as_upstreams() {
        let missing = rollout(deploy_ref("gone"), json!({}));
        assert_eq!(
            resolve(&missing, None).unwrap_err(),
            "deployments.apps \"ns/gone\" not found"
        );
        let pod_template = rollout(
            json!({"apiVersion": "v1", "kind": "PodTemplate", "name": "pt"}),
            json!({}),
        );
        assert!(resolve(&pod_template, None).unwrap_err() == "podtemplates \"ns/pt\" not found");
        let stateful = rollout(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "s"}),
            json!({}),
        );
        assert!(
            resolve(&stateful, None).unwrap_err()
                == "workload of type apps/StatefulSet is not supported"
        );
        let with_template = rollout(
            deploy_ref("web"),
            json!({"template": {"metadata": {"labels": {"app": "web"}}}}),
        );
        assert!(
            resolve(&with_template, Some(&deployment(1, 0))).unwrap_err()
                == "template must be empty for workload reference rollout"
        );
    }

    fn rs(revision: &str, replicas: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "ro-abc", "annotations": {annotation::REVISION: revision}},
            "spec": {"replicas": replicas, "selector": {}}
        }))
        .unwrap()
    }

    fn with_status(mut ro: Rollout, status: serde_json::Value, revision: &str) -> Rollout {
        ro.status = Some(serde_json::from_value(status).unwrap());
        ro.metadata.annotations = Some(BTreeMap::from([(
            annotation::REVISION.to_string(),
            revision.to_string(),
        )]));
        ro
    }

    fn writes(ro: &Rollout, workload: &ResolvedWorkload, new_rs: Option<&ReplicaSet>) -> Plan {
        let mut plan = Plan::default();
        append_writes(ro, workload, new_rs, &mut plan);
        plan
    }

    fn resolved(scale: &str, replicas: i32) -> ResolvedWorkload {
        ResolvedWorkload {
            name: "web".into(),
            kind: Some(WorkloadKind::Deployment),
            generation: "2".into(),
            recorded_generation: Some("2".into()),
            replicas: Some(replicas),
            scale_down: scale.into(),
        }
    }

    #[test]
    fn a_changed_generation_is_recorded_first() {
        let ro = rollout(deploy_ref("web"), json!({}));
        let mut workload = resolved("never", 3);
        assert!(writes(&ro, &workload, None).writes.is_empty());
        workload.recorded_generation = Some("1".into());
        assert_eq!(
            writes(&ro, &workload, None).writes,
            [Write::SetWorkloadGeneration {
                generation: "2".into()
            }]
        );
    }

    #[test]
    fn onsuccess_scales_the_deployment_to_zero_once_revision_one_is_healthy() {
        let base = rollout(deploy_ref("web"), json!({}));
        let healthy = json!({"phase": "Healthy", "stableRS": "abc", "currentPodHash": "abc"});
        let progressing = json!({"phase": "Progressing", "stableRS": "", "currentPodHash": "abc"});
        let scale = |ro: &Rollout, replicas| writes(ro, &resolved("onsuccess", replicas), None);
        assert_eq!(
            scale(&with_status(base.clone(), healthy.clone(), "1"), 3).writes,
            [Write::ScaleWorkload {
                name: "web".into(),
                replicas: 0
            }]
        );
        // Already at 0, not healthy yet, or a later revision: nothing.
        assert!(
            scale(&with_status(base.clone(), healthy.clone(), "1"), 0)
                .writes
                .is_empty()
        );
        assert!(
            scale(&with_status(base.clone(), progressing, "1"), 3)
                .writes
                .is_empty()
        );
        assert!(scale(&with_status(base, healthy, "2"), 3).writes.is_empty());
    }

    #[test]
    fn progressively_follows_the_ready_replicas_of_revision_one() {
        let base = rollout(deploy_ref("web"), json!({}));
        let workload = resolved("progressively", 5);
        let ready = |n: i32| json!({"phase": "Progressing", "readyReplicas": n});
        let target = |ro: &Rollout, new_rs: &ReplicaSet| -> Vec<Write> {
            writes(ro, &workload, Some(new_rs)).writes
        };
        let scale_to = |replicas| {
            vec![Write::ScaleWorkload {
                name: "web".into(),
                replicas,
            }]
        };
        assert_eq!(
            target(&with_status(base.clone(), ready(2), "1"), &rs("1", 2)),
            scale_to(3)
        );
        // Nothing ready yet: the Deployment keeps serving.
        assert!(target(&with_status(base.clone(), ready(0), "1"), &rs("1", 1)).is_empty());
        assert_eq!(
            target(
                &with_status(
                    base.clone(),
                    json!({"phase": "Healthy", "readyReplicas": 5}),
                    "1"
                ),
                &rs("1", 5)
            ),
            scale_to(0)
        );
        // Revision 2 is not a migration any more.
        assert!(target(&with_status(base, ready(2), "2"), &rs("2", 2)).is_empty());
    }
}
