//! The objects an Experiment owns, as upstream names and labels them: the ReplicaSet
//! `<experiment>-<template>` and its Service (the ReplicaSet's name, or `service.name`), both
//! annotated `experiment.argoproj.io/name` and `experiment.argoproj.io/template-name` and
//! controlled by the Experiment; and which existing objects an Experiment claims.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::consts::{API_VERSION, annotation, kind, label};
use crate::api::{Experiment, TemplateSpec};
use crate::rollout::hash;

/// The controller ownerReference pointing at the Experiment.
pub fn owner_reference(ex: &Experiment) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_string(),
        kind: kind::EXPERIMENT.to_string(),
        name: ex.metadata.name.clone().unwrap_or_default(),
        uid: ex.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn experiment_name(ex: &Experiment) -> &str {
    ex.metadata.name.as_deref().unwrap_or_default()
}

/// `experiment.argoproj.io/name` and `experiment.argoproj.io/template-name`.
pub fn annotations(ex: &Experiment, template: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            annotation::EXPERIMENT_NAME.to_string(),
            experiment_name(ex).to_string(),
        ),
        (
            annotation::EXPERIMENT_TEMPLATE_NAME.to_string(),
            template.to_string(),
        ),
    ])
}

/// `<experiment>-<template>`: the ReplicaSet of a template.
pub fn replica_set_name(ex: &Experiment, template: &str) -> String {
    format!("{}-{template}", experiment_name(ex))
}

/// The name of the Service a template gets when created: `service.name`, else the
/// ReplicaSet's name.
pub fn service_name(ex: &Experiment, template: &TemplateSpec) -> String {
    template
        .service
        .as_ref()
        .and_then(|service| service.name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| replica_set_name(ex, &template.name))
}

/// The template an object of the experiment belongs to: controlled by the experiment and
/// annotated with its name and a template name.
fn claimed_template<'a>(ex: &Experiment, meta: &'a ObjectMeta) -> Option<&'a str> {
    let uid = ex.metadata.uid.as_deref().unwrap_or_default();
    let controlled = meta
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.controller == Some(true) && owner.uid == uid);
    let annotations = meta.annotations.as_ref()?;
    if !controlled
        || annotations
            .get(annotation::EXPERIMENT_NAME)
            .map(String::as_str)
            != Some(experiment_name(ex))
    {
        return None;
    }
    let template = annotations.get(annotation::EXPERIMENT_TEMPLATE_NAME)?;
    let defined = ex.spec.templates.iter().any(|t| &t.name == template);
    (defined && !template.is_empty()).then_some(template.as_str())
}

fn claim<K: Clone>(
    ex: &Experiment,
    objects: &[K],
    meta: impl Fn(&K) -> &ObjectMeta,
) -> BTreeMap<String, K> {
    let mut claimed = BTreeMap::new();
    for object in objects {
        if let Some(template) = claimed_template(ex, meta(object)) {
            // Upstream refuses to reconcile when two objects claim one template; the first
            // one (by name) is kept instead, so the experiment still makes progress.
            claimed
                .entry(template.to_string())
                .or_insert_with(|| object.clone());
        }
    }
    claimed
}

/// The experiment's ReplicaSet of each template.
pub fn claimed_replica_sets(ex: &Experiment, all: &[ReplicaSet]) -> BTreeMap<String, ReplicaSet> {
    claim(ex, all, |rs| &rs.metadata)
}

/// The experiment's Service of each template.
pub fn claimed_services(ex: &Experiment, all: &[Service]) -> BTreeMap<String, Service> {
    claim(ex, all, |svc| &svc.metadata)
}

/// The ReplicaSet of `template` (upstream `newReplicaSetFromTemplate`): the pod template with
/// `rollouts-pod-template-hash` set to the template's hash (and added to the selector), the
/// template's labels on the ReplicaSet, zero replicas.
pub fn new_replica_set(
    ex: &Experiment,
    template: &TemplateSpec,
    collision_count: Option<i32>,
) -> ReplicaSet {
    let mut pod_template = template.template.clone();
    if let Some(labels) = pod_template
        .metadata
        .as_mut()
        .and_then(|m| m.labels.as_mut())
    {
        labels.remove(label::POD_TEMPLATE_HASH);
    }
    let value = serde_json::to_value(&pod_template).unwrap_or_default();
    let pod_hash = hash::pod_template_hash(&value, collision_count);
    let meta = pod_template
        .metadata
        .get_or_insert_with(ObjectMeta::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(label::POD_TEMPLATE_HASH.to_string(), pod_hash.clone());
    let labels = meta.labels.clone().unwrap_or_default();
    let mut selector = template.selector.clone().unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(label::POD_TEMPLATE_HASH.to_string(), pod_hash);
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(replica_set_name(ex, &template.name)),
            namespace: ex.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(ex)]),
            annotations: Some(annotations(ex, &template.name)),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: template.min_ready_seconds,
            selector,
            template: Some(pod_template),
        }),
        status: None,
    }
}

/// The ports of a template Service: one per container port, targeting it by number.
pub fn service_ports(rs: &ReplicaSet) -> Vec<ServicePort> {
    let containers = rs
        .spec
        .as_ref()
        .and_then(|spec| spec.template.as_ref())
        .and_then(|template| template.spec.as_ref())
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .flat_map(|container| container.ports.iter().flatten())
        .map(|port| ServicePort {
            name: port.name.clone().filter(|name| !name.is_empty()),
            protocol: port.protocol.clone(),
            port: port.container_port,
            target_port: Some(IntOrString::Int(port.container_port)),
            ..ServicePort::default()
        })
        .collect()
}

/// The Service of `template`: named [`service_name`], selecting the ReplicaSet's labels.
pub fn new_service(ex: &Experiment, template: &TemplateSpec, rs: &ReplicaSet) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(service_name(ex, template)),
            namespace: ex.metadata.namespace.clone(),
            owner_references: Some(vec![owner_reference(ex)]),
            annotations: Some(annotations(ex, &template.name)),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: rs.metadata.labels.clone(),
            ports: Some(service_ports(rs)),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
