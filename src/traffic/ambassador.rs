//! Ambassador router: for each base Mapping `<m>`, a canary Mapping `<m>-canary` copied from it
//! (metadata dropped, the stable Service in `spec.service` replaced by the canary Service) with
//! `spec.weight` set to the canary weight. At weight 0 no canary Mapping is created, and an
//! existing one is first set to weight 0 and then deleted, as upstream. Header and mirror
//! routes are no-ops, as upstream.
//!
//! Upstream sets the weight to 0 and deletes five seconds later in the same call so Envoy sees
//! the weight change before the Mapping goes; here the deletion comes on the next reconcile
//! that finds the canary Mapping already at weight 0, which gives the same order without a
//! sleep in the controller.

use serde_json::{Value, json};

use crate::api::Rollout;
use crate::api::traffic_routing::AmbassadorTrafficRouting;

use super::error::TrafficError;
use super::objects::{DesiredObject, Ownership, ResourceType, RouterEvent};
use super::{RouterInput, canary, namespace};

/// Event reason of every weight change.
const CANARY_MAPPING_WEIGHT_UPDATE: &str = "CanaryMappingWeightUpdate";

/// Longest base Mapping name kept before the `-canary` suffix.
const MAX_BASE_NAME: usize = 246;

fn ambassador_config(rollout: &Rollout) -> Result<&AmbassadorTrafficRouting, TrafficError> {
    super::traffic_routing(rollout)?
        .ambassador
        .as_ref()
        .ok_or(TrafficError::NotConfigured("ambassador"))
}

/// `<base>-canary`, the base cut to 246 bytes (upstream `buildCanaryMappingName`).
pub fn canary_mapping_name(base: &str) -> String {
    let mut cut = base.len().min(MAX_BASE_NAME);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-canary", &base[..cut])
}

/// Objects to observe: each base Mapping and its canary Mapping.
pub fn watched(rollout: &Rollout) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    let ns = namespace(rollout);
    Ok(ambassador_config(rollout)?
        .mappings
        .iter()
        .flat_map(|base| {
            [
                (ResourceType::ambassador_mapping(), ns.clone(), base.clone()),
                (
                    ResourceType::ambassador_mapping(),
                    ns.clone(),
                    canary_mapping_name(base),
                ),
            ]
        })
        .collect())
}

/// Integer `spec.weight` of a Mapping, 0 when absent (upstream `GetMappingWeight`).
pub fn mapping_weight(mapping: &Value) -> i64 {
    mapping
        .pointer("/spec/weight")
        .and_then(Value::as_i64)
        .unwrap_or_default()
}

/// The canary Mapping of each base Mapping at `input.state.weight`.
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let ns = namespace(rollout);
    let resource = ResourceType::ambassador_mapping();
    let weight = input.state.weight;
    let event = RouterEvent::new(
        CANARY_MAPPING_WEIGHT_UPDATE,
        format!("Set canary mapping weight to {weight}"),
    );
    let mut out = Vec::new();
    for base_name in &ambassador_config(rollout)?.mappings {
        let name = canary_mapping_name(base_name);
        let live = input.observed.get(&resource, &ns, &name);
        let (object, ownership) = match live {
            None if weight == 0 => (Value::Null, Ownership::Absent),
            None => (
                new_canary_mapping(input, base_name, &name, weight)?,
                Ownership::Shared,
            ),
            Some(live) if weight == 0 && mapping_weight(live) == 0 => {
                (Value::Null, Ownership::Absent)
            }
            Some(live) => {
                let mut object = live.clone();
                super::objects::set_at(&mut object, &["spec", "weight"], json!(weight));
                (object, Ownership::Shared)
            }
        };
        out.push(DesiredObject {
            resource: resource.clone(),
            namespace: ns.clone(),
            name,
            object,
            ownership,
            on_create: Some(event.clone()),
            on_update: Some(event.clone()),
        });
    }
    Ok(out)
}

/// The canary Mapping built from the base Mapping (upstream `buildCanaryMapping`).
fn new_canary_mapping(
    input: &RouterInput<'_>,
    base_name: &str,
    name: &str,
    weight: i32,
) -> Result<Value, TrafficError> {
    let ns = namespace(input.rollout);
    let base = input
        .observed
        .get(&ResourceType::ambassador_mapping(), &ns, base_name)
        .ok_or_else(|| TrafficError::ObjectNotFound {
            plural: "mappings".into(),
            group: "getambassador.io".into(),
            name: base_name.to_string(),
        })?;
    if mapping_weight(base) != 0 {
        return Err(TrafficError::InvalidRoute(format!(
            "Ambassador mapping {} can not define weight",
            crate::api::go_quote::go_quote(base_name)
        )));
    }
    let strategy = canary(input.rollout)?;
    let stable = strategy.stable_service.clone().unwrap_or_default();
    let canary_svc = strategy.canary_service.clone().unwrap_or_default();
    let mut object = base.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    super::objects::set_at(&mut object, &["metadata", "name"], json!(name));
    super::objects::set_at(&mut object, &["metadata", "namespace"], json!(ns));
    let service = base
        .pointer("/spec/service")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .replacen(&stable, &canary_svc, 1);
    super::objects::set_at(&mut object, &["spec", "service"], json!(service));
    super::objects::set_at(&mut object, &["spec", "weight"], json!(weight));
    Ok(object)
}
