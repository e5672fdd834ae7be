//! The simulated ReplicaSet controller: pure decisions (how many Pods to create, which to delete,
//! what the status says) and the reconcile that applies them through the API.
//!
//! Unlike kube-controller-manager it does not adopt orphan Pods that match the selector nor
//! release Pods whose labels stop matching: it manages exactly the Pods whose controller
//! ownerReference names the ReplicaSet's uid.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::pods::{is_ready, ready_since};
use super::{Context, FIELD_MANAGER, SimulatorError, non_negative};
use crate::sandbox::load_generator::SplitMix64;

/// Characters of generated name suffixes (Kubernetes' alphabet: lowercase, no vowels, no
/// look-alike digits, so suffixes never spell words).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A 5-character random name suffix.
pub fn name_suffix(rng: &mut SplitMix64) -> String {
    (0..5)
        .map(|_| {
            let i = (rng.next_u64() % SUFFIX_ALPHABET.len() as u64) as usize;
            char::from(SUFFIX_ALPHABET[i])
        })
        .collect()
}

/// What to do about the number of Pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleDecision {
    /// Create this many Pods.
    Create(usize),
    /// Delete these Pods (by name), most expendable first.
    Delete(Vec<String>),
    /// The count matches.
    Steady,
}

/// Whether a Pod counts towards its ReplicaSet: not terminating and not finished.
pub fn is_active(pod: &Pod) -> bool {
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    pod.metadata.deletion_timestamp.is_none() && !finished
}

/// Whether `pod`'s controller ownerReference points at the object with `uid`.
pub fn controlled_by(pod: &Pod, uid: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Decides creation or deletion for `desired` replicas over the active Pods (pure).
///
/// Deletion prefers, like kube-controller-manager: Pending before Running, not ready before
/// ready, then the newest first (name breaks ties, as timestamps have one-second resolution).
pub fn scale_decision(desired: i32, active: &[&Pod]) -> ScaleDecision {
    let desired = usize::try_from(desired.max(0)).unwrap_or(0);
    if active.len() < desired {
        return ScaleDecision::Create(desired - active.len());
    }
    if active.len() == desired {
        return ScaleDecision::Steady;
    }
    let mut ranked: Vec<&Pod> = active.to_vec();
    ranked.sort_by_key(|p| {
        let running = p
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|ph| ph == "Running");
        (
            running,
            is_ready(p),
            Reverse(p.metadata.creation_timestamp.clone()),
            Reverse(p.name_any()),
        )
    });
    ScaleDecision::Delete(
        ranked
            .iter()
            .take(active.len() - desired)
            .map(|p| p.name_any())
            .collect(),
    )
}

/// The status the ReplicaSet should show for its active Pods at `now` (pure), and how long
/// until a ready Pod becomes available (when one is waiting out `minReadySeconds`).
pub fn desired_status(
    rs: &ReplicaSet,
    active: &[&Pod],
    now: DateTime<Utc>,
) -> (ReplicaSetStatus, Option<Duration>) {
    let spec = rs.spec.as_ref();
    let min_ready = chrono::TimeDelta::seconds(
        spec.and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
            .max(0)
            .into(),
    );
    let template_labels: BTreeMap<String, String> = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut next_check: Option<Duration> = None;
    for pod in active {
        let labels = pod.metadata.labels.as_ref();
        if template_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        {
            fully_labeled += 1;
        }
        if !is_ready(pod) {
            continue;
        }
        ready += 1;
        let since = ready_since(pod).unwrap_or(now);
        let available_at = since + min_ready;
        if min_ready.is_zero() || available_at <= now {
            available += 1;
        } else {
            let wait = non_negative(available_at - now);
            next_check = Some(next_check.map_or(wait, |w| w.min(wait)));
        }
    }
    let status = ReplicaSetStatus {
        replicas: i32::try_from(active.len()).unwrap_or(i32::MAX),
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.metadata.generation,
        conditions: rs.status.as_ref().and_then(|s| s.conditions.clone()),
        ..ReplicaSetStatus::default()
    };
    (status, next_check)
}

/// Whether the stored status already says what `desired` says (absent counts are zero).
pub fn status_matches(current: Option<&ReplicaSetStatus>, desired: &ReplicaSetStatus) -> bool {
    let Some(c) = current else {
        return false;
    };
    let n = |v: Option<i32>| v.unwrap_or(0);
    c.replicas == desired.replicas
        && n(c.fully_labeled_replicas) == n(desired.fully_labeled_replicas)
        && n(c.ready_replicas) == n(desired.ready_replicas)
        && n(c.available_replicas) == n(desired.available_replicas)
        && c.observed_generation == desired.observed_generation
}

/// A new Pod for `rs` named `name` (pure): the template with a controller ownerReference.
pub fn pod_for(rs: &ReplicaSet, name: &str) -> Result<Pod, SimulatorError> {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .ok_or_else(|| {
            SimulatorError::Invalid(format!("ReplicaSet {} has no template", rs.name_any()))
        })?;
    let uid = rs.metadata.uid.clone().ok_or_else(|| {
        SimulatorError::Invalid(format!("ReplicaSet {} has no uid", rs.name_any()))
    })?;
    let template_meta = template.metadata.unwrap_or_default();
    // Scheduled at creation: there is one node, so the scheduler's choice is known.
    let spec = template.spec.map(|mut spec| {
        spec.node_name = Some(super::NODE_NAME.to_string());
        spec
    });
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: rs.metadata.namespace.clone(),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".to_string(),
                kind: "ReplicaSet".to_string(),
                name: rs.name_any(),
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    })
}

/// A label selector as the `labelSelector` query parameter.
pub fn selector_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// Reconciles one ReplicaSet: lists its Pods (strongly consistent, so no expectations are
/// needed), creates or deletes Pods, then patches the status when it changed.
pub(crate) async fn reconcile(
    rs: Arc<ReplicaSet>,
    ctx: Arc<Context>,
) -> Result<Action, SimulatorError> {
    let namespace = rs.namespace().ok_or_else(|| {
        SimulatorError::Invalid(format!("ReplicaSet {} has no namespace", rs.name_any()))
    })?;
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let selector = rs
        .spec
        .as_ref()
        .map(|s| selector_query(&s.selector))
        .unwrap_or_default();
    let listed = pods.list(&ListParams::default().labels(&selector)).await?;
    let mut active: Vec<&Pod> = listed
        .items
        .iter()
        .filter(|p| controlled_by(p, &uid) && is_active(p))
        .collect();

    // A ReplicaSet being deleted keeps its Pods for the garbage collector and makes no new ones.
    if rs.metadata.deletion_timestamp.is_none() {
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        match scale_decision(desired, &active) {
            ScaleDecision::Create(n) => {
                for _ in 0..n {
                    create_pod(&pods, &rs, &ctx).await?;
                }
                // The Pod watch brings the new Pods back here for the status.
                return Ok(Action::await_change());
            }
            ScaleDecision::Delete(names) => {
                for name in &names {
                    match pods.delete(name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.is_not_found() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                active.retain(|p| !names.contains(&p.name_any()));
            }
            ScaleDecision::Steady => {}
        }
    }

    let (status, next_check) = desired_status(&rs, &active, ctx.clock.now());
    if !status_matches(rs.status.as_ref(), &status) {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = serde_json::json!({ "status": status });
        api.patch_status(&rs.name_any(), &patch_params(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(next_check.map_or_else(Action::await_change, Action::requeue))
}

/// Creates one Pod with a fresh random name, retrying on the rare name collision.
async fn create_pod(pods: &Api<Pod>, rs: &ReplicaSet, ctx: &Context) -> Result<(), SimulatorError> {
    const ATTEMPTS: usize = 5;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    for attempt in 1..=ATTEMPTS {
        let name = format!("{}-{}", rs.name_any(), ctx.random_suffix());
        match pods.create(&params, &pod_for(rs, &name)?).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.is_already_exists() && attempt < ATTEMPTS => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Parameters of the simulator's merge patches.
pub(crate) fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}
