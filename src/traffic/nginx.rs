//! ingress-nginx router (spec §7.1): for each stable Ingress, a canary Ingress
//! `<rollout>-<stableIngress>-canary` that copies the rules routing to the stable Service,
//! points them at the canary Service, and carries the `canary` / `canary-weight` annotations.
//! Header and mirror routes are no-ops here (users put `canary-by-header` in
//! `additionalIngressAnnotations`), as upstream.

use serde_json::{Map, Value, json};

use crate::api::Rollout;
use crate::api::consts::event_reason;
use crate::api::traffic_routing::NginxTrafficRouting;

use super::error::TrafficError;
use super::objects::{DesiredObject, Ownership, ResourceType, RouterEvent};
use super::{RouterInput, canary, controller_ref, namespace, rollout_name, service_name};

/// Suffix of every canary Ingress name.
pub const CANARY_INGRESS_SUFFIX: &str = "-canary";

/// Longest Kubernetes object name.
const MAX_NAME_LEN: usize = 253;

/// Annotation copied from the stable Ingress (ingress-nginx needs the class on the canary).
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// `<rollout>-<stableIngress>-canary`, the prefix cut so the whole name is at most 253
/// characters (upstream `GetCanaryIngressName`).
pub fn canary_ingress_name(rollout: &str, stable_ingress: &str) -> String {
    let mut prefix = format!("{rollout}-{stable_ingress}");
    let max = MAX_NAME_LEN - CANARY_INGRESS_SUFFIX.len();
    if prefix.len() > max {
        // Object names are ASCII; the boundary search only guards against a panic.
        let mut cut = max;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    format!("{prefix}{CANARY_INGRESS_SUFFIX}")
}

/// The stable Ingresses: `stableIngresses` when set, else `stableIngress`.
pub fn stable_ingresses(nginx: &NginxTrafficRouting) -> Vec<String> {
    match &nginx.stable_ingresses {
        Some(list) => list.clone(),
        None => nginx
            .stable_ingress
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect(),
    }
}

fn nginx_config(rollout: &Rollout) -> Result<&NginxTrafficRouting, TrafficError> {
    super::traffic_routing(rollout)?
        .nginx
        .as_ref()
        .ok_or(TrafficError::NotConfigured("nginx"))
}

/// Objects to observe: every stable Ingress and its canary Ingress.
pub fn watched(rollout: &Rollout) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    let ns = namespace(rollout);
    let name = rollout_name(rollout);
    Ok(stable_ingresses(nginx_config(rollout)?)
        .into_iter()
        .flat_map(|stable| {
            let canary = canary_ingress_name(&name, &stable);
            [
                (ResourceType::ingress(), ns.clone(), stable),
                (ResourceType::ingress(), ns.clone(), canary),
            ]
        })
        .collect())
}

/// The canary Ingress of every stable Ingress, at `input.state.weight`. Errors when a stable
/// Ingress was not observed or has no rule routing to the stable Service.
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let nginx = nginx_config(rollout)?;
    let ns = namespace(rollout);
    let name = rollout_name(rollout);
    let weight = input.state.weight;
    let mut out = Vec::new();
    for stable_name in stable_ingresses(nginx) {
        let stable = input
            .observed
            .get(&ResourceType::ingress(), &ns, &stable_name)
            .ok_or_else(|| TrafficError::StableIngressNotFound {
                name: stable_name.clone(),
            })?;
        let canary_name = canary_ingress_name(&name, &stable_name);
        let object = canary_ingress(rollout, stable, &stable_name, &canary_name, weight)?;
        out.push(DesiredObject {
            resource: ResourceType::ingress(),
            namespace: ns.clone(),
            name: canary_name.clone(),
            object,
            ownership: Ownership::Controlled,
            on_create: Some(RouterEvent::new(
                event_reason::CREATING_CANARY_INGRESS,
                format!("Creating canary ingress `{canary_name}` with weight `{weight}`"),
            )),
            on_update: Some(RouterEvent::new(
                event_reason::PATCHING_CANARY_INGRESS,
                format!("Updating Ingress `{canary_name}` to desiredWeight '{weight}'"),
            )),
        });
    }
    Ok(out)
}

/// The desired canary Ingress built from `stable` (upstream `buildCanaryIngress`).
pub fn canary_ingress(
    rollout: &Rollout,
    stable: &Value,
    stable_name: &str,
    canary_name: &str,
    weight: i32,
) -> Result<Value, TrafficError> {
    let strategy = canary(rollout)?;
    let nginx = nginx_config(rollout)?;
    let max_weight = super::traffic_routing(rollout)?.max_traffic_weight;
    let stable_service = service_name(
        &strategy.stable_service,
        "spec.strategy.canary.stableService",
    )?;
    let canary_service = service_name(
        &strategy.canary_service,
        "spec.strategy.canary.canaryService",
    )?;
    let prefix = nginx.annotation_prefix();

    let rules = canary_rules(stable, stable_service, canary_service);
    if rules.is_empty() {
        return Err(TrafficError::NoRulesForService {
            ingress: stable_name.to_string(),
            service: stable_service.to_string(),
        });
    }
    let mut spec = Map::new();
    spec.insert("rules".into(), Value::Array(rules));
    if let Some(tls) = stable.pointer("/spec/tls").filter(|t| !t.is_null()) {
        spec.insert("tls".into(), tls.clone());
    }
    if let Some(class) = stable
        .pointer("/spec/ingressClassName")
        .filter(|c| !c.is_null())
    {
        spec.insert("ingressClassName".into(), class.clone());
    }

    // Later entries win, in upstream's order: the class, additional annotations (prefixed),
    // canary annotations (verbatim), then the canary switch and weight.
    let mut annotations = Map::new();
    if let Some(class) = stable
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION))
    {
        annotations.insert(INGRESS_CLASS_ANNOTATION.into(), class.clone());
    }
    for (key, value) in nginx.additional_ingress_annotations.iter().flatten() {
        let key = if key.starts_with(prefix) {
            key.clone()
        } else {
            format!("{prefix}/{key}")
        };
        annotations.insert(key, Value::from(value.as_str()));
    }
    for (key, value) in nginx.canary_ingress_annotations.iter().flatten() {
        annotations.insert(key.clone(), Value::from(value.as_str()));
    }
    annotations.insert(format!("{prefix}/canary"), Value::from("true"));
    annotations.insert(
        format!("{prefix}/canary-weight"),
        Value::from(weight.to_string()),
    );
    if let Some(total) = max_weight {
        annotations.insert(
            format!("{prefix}/canary-weight-total"),
            Value::from(total.to_string()),
        );
    }

    Ok(json!({
        "apiVersion": ResourceType::ingress().api_version(),
        "kind": "Ingress",
        "metadata": {
            "name": canary_name,
            "namespace": namespace(rollout),
            "annotations": annotations,
            "ownerReferences": [controller_ref(rollout)?],
        },
        "spec": spec,
    }))
}

/// Every stable rule with at least one path whose backend is the stable Service, copied whole
/// with those backends renamed to the canary Service.
fn canary_rules(stable: &Value, stable_service: &str, canary_service: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for rule in stable
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut rule = rule.clone();
        let mut uses_stable = false;
        let paths = rule
            .pointer_mut("/http/paths")
            .and_then(Value::as_array_mut);
        for path in paths.into_iter().flatten() {
            if let Some(name) = path.pointer_mut("/backend/service/name")
                && name.as_str() == Some(stable_service)
            {
                *name = Value::from(canary_service);
                uses_stable = true;
            }
        }
        if uses_stable {
            out.push(rule);
        }
    }
    out
}
