//! Traefik router: edits the weighted `TraefikService` in place, giving the canary Service the
//! canary weight and the stable Service the rest of 100 under `spec.weighted.services`, as
//! upstream. Header and mirror routes are no-ops, as upstream.

use serde_json::Value;

use crate::api::Rollout;
use crate::api::traffic_routing::TraefikTrafficRouting;

use super::error::TrafficError;
use super::objects::{DesiredObject, Ownership, ResourceType};
use super::{RouterInput, canary, namespace};

fn traefik_config(rollout: &Rollout) -> Result<&TraefikTrafficRouting, TrafficError> {
    super::traffic_routing(rollout)?
        .traefik
        .as_ref()
        .ok_or(TrafficError::NotConfigured("traefik"))
}

/// Objects to observe: the weighted TraefikService.
pub fn watched(rollout: &Rollout) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    Ok(vec![(
        ResourceType::traefik_service(),
        namespace(rollout),
        traefik_config(rollout)?
            .weighted_traefik_service_name
            .clone(),
    )])
}

/// The TraefikService with the canary at `weight` and the stable at `100 - weight`.
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let name = traefik_config(rollout)?
        .weighted_traefik_service_name
        .clone();
    let ns = namespace(rollout);
    let resource = ResourceType::traefik_service();
    let live = input
        .observed
        .get(&resource, &ns, &name)
        .ok_or_else(|| resource.not_found(&name))?;
    let strategy = canary(rollout)?;
    let canary_svc = strategy.canary_service.clone().unwrap_or_default();
    let stable_svc = strategy.stable_service.clone().unwrap_or_default();
    let weight = i64::from(input.state.weight);
    let mut object = live.clone();
    let services = object
        .pointer_mut("/spec/weighted/services")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| {
            TrafficError::InvalidRoute(
                "spec.weighted.services was not found in traefik service manifest".into(),
            )
        })?;
    set_weight(
        services,
        &canary_svc,
        weight,
        "traefik canary service was not found",
    )?;
    set_weight(
        services,
        &stable_svc,
        100 - weight,
        "traefik stable service was not found",
    )?;
    Ok(vec![DesiredObject {
        resource,
        namespace: ns,
        name,
        object,
        ownership: Ownership::EditInPlace,
        on_create: None,
        on_update: None,
    }])
}

/// Sets `weight` on the first service named `service` (upstream `getService`).
fn set_weight(
    services: &mut [Value],
    service: &str,
    weight: i64,
    missing: &str,
) -> Result<(), TrafficError> {
    for entry in services.iter_mut() {
        let Some(map) = entry.as_object_mut() else {
            return Err(TrafficError::InvalidRoute(
                "Failed type assertion setting weight for traefik service".into(),
            ));
        };
        let Some(name) = map.get("name").and_then(Value::as_str) else {
            return Err(TrafficError::InvalidRoute(
                "name field was not found in service".into(),
            ));
        };
        if name == service {
            map.insert("weight".into(), Value::from(weight));
            return Ok(());
        }
    }
    Err(TrafficError::InvalidRoute(missing.into()))
}
