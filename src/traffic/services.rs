//! Service selector switching (spec §3.4): the checks a referenced Service must pass
//! (`InvalidSpec` otherwise), the guards before pointing a Service at a ReplicaSet, and the
//! merge patches that switch and release a Service. All pure; the executor sends the patches.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Service;
use serde_json::{Map, Value, json};

use crate::api::Rollout;
use crate::api::consts::{annotation, event_reason, label};

use super::objects::RouterEvent;

/// The role a Service plays for a Rollout (upstream `ServiceType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceRole {
    /// `canary.stableService`.
    Stable,
    /// `canary.canaryService`.
    Canary,
    /// `canary.pingPong.pingService`.
    Ping,
    /// `canary.pingPong.pongService`.
    Pong,
    /// `blueGreen.activeService`.
    Active,
    /// `blueGreen.previewService`.
    Preview,
}

impl ServiceRole {
    /// The spec field naming the Service (the path of its `InvalidSpec` error).
    pub fn field_path(self) -> &'static str {
        match self {
            ServiceRole::Stable => "spec.strategy.canary.stableService",
            ServiceRole::Canary => "spec.strategy.canary.canaryService",
            ServiceRole::Ping => "spec.strategy.canary.pingPong.pingService",
            ServiceRole::Pong => "spec.strategy.canary.pingPong.pongService",
            ServiceRole::Active => "spec.strategy.blueGreen.activeService",
            ServiceRole::Preview => "spec.strategy.blueGreen.previewService",
        }
    }
}

/// A Service that fails the Rollout's reference checks: a Kubernetes `field.Invalid` error,
/// whose `Display` is the text upstream puts in the `InvalidSpec` condition after
/// `The Rollout "<name>" is invalid: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpecError {
    /// Field path, e.g. `spec.strategy.canary.stableService`.
    pub field: &'static str,
    /// The Service name (the bad value).
    pub value: String,
    /// Upstream's detail message.
    pub message: String,
}

impl fmt::Display for ServiceSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Go's %q and Rust's {:?} agree on Kubernetes names.
        write!(
            f,
            "{}: Invalid value: {:?}: {}",
            self.field, self.value, self.message
        )
    }
}

impl std::error::Error for ServiceSpecError {}

fn selector(service: &Service) -> BTreeMap<String, String> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

fn managed_by(service: &Service) -> Option<&str> {
    service
        .metadata
        .annotations
        .as_ref()?
        .get(annotation::MANAGED_BY_ROLLOUTS)
        .map(String::as_str)
}

/// Upstream `ValidateService`: every selector key but the pod-template hash must match the
/// pod template's labels (or the role's ephemeral metadata labels), and the Service must not
/// be managed by another Rollout. For a `workloadRef` Rollout pass one whose template was
/// resolved from the referenced workload.
pub fn validate_service(
    rollout: &Rollout,
    service: &Service,
    role: ServiceRole,
) -> Vec<ServiceSpecError> {
    let name = service.metadata.name.clone().unwrap_or_default();
    let rollout_name = rollout.metadata.name.clone().unwrap_or_default();
    let template_labels = rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let role_labels = role_metadata_labels(rollout, role, &name);
    let mut errors = Vec::new();
    for (key, value) in selector(service) {
        if key == label::POD_TEMPLATE_HASH {
            continue;
        }
        let in_template = template_labels.get(&key) == Some(&value);
        let in_role = role_labels.get(&key) == Some(&value);
        if !in_template && !in_role {
            errors.push(ServiceSpecError {
                field: role.field_path(),
                value: name.clone(),
                message: format!("Service {name:?} has unmatch label {key:?} in rollout"),
            });
        }
    }
    if let Some(owner) = managed_by(service)
        && owner != rollout_name
    {
        errors.push(ServiceSpecError {
            field: role.field_path(),
            value: name.clone(),
            message: format!("Service {name:?} is managed by another Rollout"),
        });
    }
    errors
}

/// Labels of the role's ephemeral metadata (stable/canary/active/preview), when `service_name`
/// is the Service the strategy names for that role (upstream `validSvcSelectorForType`).
fn role_metadata_labels(
    rollout: &Rollout,
    role: ServiceRole,
    service_name: &str,
) -> BTreeMap<String, String> {
    let strategy = &rollout.spec.strategy;
    let pick = |named: Option<&String>, meta: Option<&crate::api::PodTemplateMetadata>| {
        if named.map(String::as_str) == Some(service_name) {
            meta.and_then(|m| m.labels.clone()).unwrap_or_default()
        } else {
            BTreeMap::new()
        }
    };
    match role {
        ServiceRole::Stable => strategy
            .canary
            .as_ref()
            .map(|c| pick(c.stable_service.as_ref(), c.stable_metadata.as_ref())),
        ServiceRole::Canary => strategy
            .canary
            .as_ref()
            .map(|c| pick(c.canary_service.as_ref(), c.canary_metadata.as_ref())),
        ServiceRole::Active => strategy
            .blue_green
            .as_ref()
            .map(|b| pick(Some(&b.active_service), b.active_metadata.as_ref())),
        ServiceRole::Preview => strategy
            .blue_green
            .as_ref()
            .map(|b| pick(b.preview_service.as_ref(), b.preview_metadata.as_ref())),
        ServiceRole::Ping | ServiceRole::Pong => None,
    }
    .unwrap_or_default()
}

/// A selector switch to send: the merge patch and the `SwitchService` event.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectorSwitch {
    /// Merge patch for the Service.
    pub patch: Value,
    /// Event recorded on the Rollout after the patch succeeded.
    pub event: RouterEvent,
}

/// Upstream `switchServiceSelector`: the patch setting `spec.selector.rollouts-pod-template-hash`
/// to `new_hash` (plus the managed-by annotation the first time); `None` when the Service
/// already selects `new_hash` and is marked managed.
pub fn switch_selector(
    service: &Service,
    new_hash: &str,
    rollout_name: &str,
) -> Option<SelectorSwitch> {
    let current = selector(service).get(label::POD_TEMPLATE_HASH).cloned();
    let managed = managed_by(service).is_some();
    if current.as_deref() == Some(new_hash) && managed {
        return None;
    }
    let mut patch = json!({"spec": {"selector": {label::POD_TEMPLATE_HASH: new_hash}}});
    if !managed {
        patch["metadata"] = json!({"annotations": {annotation::MANAGED_BY_ROLLOUTS: rollout_name}});
    }
    let name = service.metadata.name.clone().unwrap_or_default();
    Some(SelectorSwitch {
        patch,
        event: RouterEvent::new(
            event_reason::SWITCH_SERVICE,
            format!(
                "Switched selector for service '{name}' from '{}' to '{new_hash}'",
                current.unwrap_or_default()
            ),
        ),
    })
}

/// What the guards of a ReplicaSet allow (spec, available replicas, hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetReplicaSet {
    /// Its pod-template hash.
    pub hash: String,
    /// `spec.replicas`.
    pub spec_replicas: Option<i32>,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
}

impl TargetReplicaSet {
    /// Upstream `IsReplicaSetAvailable`: spec > 0 and available ≥ spec.
    pub fn fully_available(&self) -> bool {
        self.spec_replicas
            .is_some_and(|s| s != 0 && self.available_replicas != 0 && s <= self.available_replicas)
    }
}

/// The outcome of [`ensure_targets`].
#[derive(Clone, Debug, PartialEq)]
pub enum TargetDecision {
    /// The Service already selects the ReplicaSet.
    AlreadyTargeted,
    /// Not yet: the reason, as upstream logs it.
    Delay(String),
    /// Switch now.
    Switch(SelectorSwitch),
}

/// Upstream `ensureSVCTargets`: point `service` at `rs` unless a guard holds — adopting a
/// Service not yet managed needs a fully available ReplicaSet, any switch needs at least one
/// available pod (both only when `check_availability`).
pub fn ensure_targets(
    service: &Service,
    rs: &TargetReplicaSet,
    check_availability: bool,
    rollout_name: &str,
) -> TargetDecision {
    let current = selector(service)
        .get(label::POD_TEMPLATE_HASH)
        .cloned()
        .unwrap_or_default();
    if current == rs.hash {
        return TargetDecision::AlreadyTargeted;
    }
    if check_availability && managed_by(service).is_none() && !rs.fully_available() {
        return TargetDecision::Delay(format!(
            "delaying service switch from {current} to {}: ReplicaSet not fully available",
            rs.hash
        ));
    }
    if check_availability && rs.available_replicas <= 0 {
        return TargetDecision::Delay(format!(
            "delaying service switch from {current} to {}: ReplicaSet has zero availability",
            rs.hash
        ));
    }
    match switch_selector(service, &rs.hash, rollout_name) {
        Some(switch) => TargetDecision::Switch(switch),
        None => TargetDecision::AlreadyTargeted,
    }
}

/// The patch releasing a Service no Rollout references any more: hash selector and managed-by
/// annotation removed. `None` when the Service carries neither.
pub fn release_patch(service: &Service) -> Option<Value> {
    let has_hash = selector(service).contains_key(label::POD_TEMPLATE_HASH);
    let has_annotation = managed_by(service).is_some();
    if !has_hash && !has_annotation {
        return None;
    }
    let mut patch = Map::new();
    if has_annotation {
        patch.insert(
            "metadata".into(),
            json!({"annotations": {annotation::MANAGED_BY_ROLLOUTS: null}}),
        );
    }
    if has_hash {
        patch.insert(
            "spec".into(),
            json!({"selector": {label::POD_TEMPLATE_HASH: null}}),
        );
    }
    Some(Value::Object(patch))
}
