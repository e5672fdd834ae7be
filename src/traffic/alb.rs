//! AWS Load Balancer Controller router: edits each of the Rollout's Ingresses in place, setting
//! the `<prefix>/actions.<rootService>` forward action (canary, experiment and stable target
//! groups with their weights), `<prefix>/actions.<route>` / `<prefix>/conditions.<route>` for
//! header routes with the `use-annotation` path that activates them, and the
//! `rollouts.argoproj.io/managed-alb-annotations` bookkeeping, as upstream. Mirror routes are
//! no-ops, as upstream.

use serde_json::{Map, Value, json};

use crate::api::Rollout;
use crate::api::canary::SetHeaderRoute;
use crate::api::traffic_routing::AlbTrafficRouting;

use super::error::TrafficError;
use super::objects::{DesiredObject, Ownership, ResourceType, RouterEvent};
use super::{RouterInput, TrafficState, canary, namespace, stable_and_canary_services};

/// Annotation holding, per Rollout name, the ALB annotation keys it manages.
pub const MANAGED_ANNOTATIONS: &str = "rollouts.argoproj.io/managed-alb-annotations";

/// Event reason of every ALB Ingress write.
const PATCHING_ALB_INGRESS: &str = "PatchingALBIngress";

/// Longest stickiness duration AWS accepts (7 days).
const MAX_STICKINESS_SECONDS: i64 = 604_800;

fn alb_config(rollout: &Rollout) -> Result<&AlbTrafficRouting, TrafficError> {
    super::traffic_routing(rollout)?
        .alb
        .as_ref()
        .ok_or(TrafficError::NotConfigured("alb"))
}

/// The Ingresses: `ingresses` when set, else `ingress`.
pub fn ingresses(alb: &AlbTrafficRouting) -> Vec<String> {
    match &alb.ingresses {
        Some(list) => list.clone(),
        None => alb
            .ingress
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect(),
    }
}

/// The Service whose action annotation carries the weights: `rootService`, else stableService.
fn action_service(rollout: &Rollout, alb: &AlbTrafficRouting) -> Result<String, TrafficError> {
    Ok(alb
        .root_service
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            canary(rollout)
                .ok()
                .and_then(|c| c.stable_service.clone())
                .unwrap_or_default()
        }))
}

fn annotation_key(alb: &AlbTrafficRouting, kind: &str, name: &str) -> String {
    format!("{}/{kind}.{name}", alb.annotation_prefix())
}

/// Objects to observe: every Ingress.
pub fn watched(rollout: &Rollout) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    let ns = namespace(rollout);
    Ok(ingresses(alb_config(rollout)?)
        .into_iter()
        .map(|name| (ResourceType::ingress(), ns.clone(), name))
        .collect())
}

/// Each Ingress as `input.state` wants it: managed routes removed when asked, the header route
/// set or removed, then the weights of the forward action.
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let alb = alb_config(rollout)?;
    let ns = namespace(rollout);
    let resource = ResourceType::ingress();
    let mut out = Vec::new();
    for name in ingresses(alb) {
        let live = input.observed.get(&resource, &ns, &name).ok_or_else(|| {
            // The lister's NotFound wording (upstream reads Ingresses from its cache).
            TrafficError::ObjectNotFound {
                plural: "ingress".into(),
                group: resource.group.clone(),
                name: name.clone(),
            }
        })?;
        let object = desired_ingress(rollout, live, input.state)?;
        let message = match &input.state.header_route {
            Some(route) => format!(
                "Updating Ingress `{name}` to headerRoute '{}'",
                route.name.as_deref().unwrap_or_default()
            ),
            None => format!(
                "Updating Ingress `{name}` to desiredWeight '{}'",
                input.state.weight
            ),
        };
        out.push(DesiredObject {
            resource: resource.clone(),
            namespace: ns.clone(),
            name,
            object,
            ownership: Ownership::EditInPlace,
            on_create: None,
            on_update: Some(RouterEvent::new(PATCHING_ALB_INGRESS, message)),
        });
    }
    Ok(out)
}

/// `live` with the changes `state` asks for, in upstream's order.
pub fn desired_ingress(
    rollout: &Rollout,
    live: &Value,
    state: &TrafficState,
) -> Result<Value, TrafficError> {
    let alb = alb_config(rollout)?;
    let tr = super::traffic_routing(rollout)?;
    let mut ingress = live.clone();
    let rollout_name = super::rollout_name(rollout);
    let managed_routes: Vec<&str> = tr
        .managed_routes
        .iter()
        .flatten()
        .map(|r| r.name.as_str())
        .collect();

    if state.remove_managed_routes && !managed_routes.is_empty() {
        let mut keys = Vec::new();
        for route in &managed_routes {
            keys.push(annotation_key(alb, "actions", route));
            keys.push(annotation_key(alb, "conditions", route));
        }
        let mut annotations = annotations_of(&ingress);
        for key in &keys {
            annotations.insert(key.clone(), Value::Null);
        }
        update_managed(&mut annotations, &rollout_name, false, &keys)?;
        set_annotations(&mut ingress, annotations);
        for route in &managed_routes {
            remove_path_by_service(&mut ingress, route);
        }
    }

    if let Some(route) = &state.header_route {
        set_header_route(rollout, alb, &mut ingress, route, &managed_routes)?;
    }

    let service = action_service(rollout, alb)?;
    if !has_rule_with_service(&ingress, &service) {
        return Err(TrafficError::InvalidRoute(format!(
            "ingress does not have service `{service}` in rules"
        )));
    }
    let key = annotation_key(alb, "actions", &service);
    let action = forward_action(rollout, alb, state)?;
    let mut annotations = annotations_of(&ingress);
    annotations.insert(key.clone(), Value::from(action));
    update_managed(&mut annotations, &rollout_name, true, &[key])?;
    set_annotations(&mut ingress, annotations);
    Ok(ingress)
}

/// The forward action of the weights (upstream `getForwardActionString`): canary, each
/// experiment destination, then stable with what is left of 100.
pub fn forward_action(
    rollout: &Rollout,
    alb: &AlbTrafficRouting,
    state: &TrafficState,
) -> Result<String, TrafficError> {
    let (stable, canary_svc) = stable_and_canary_services(rollout, true);
    let port = alb.service_port.to_string();
    let mut groups = vec![target_group(&canary_svc, &port, i64::from(state.weight))];
    let mut stable_weight = 100 - state.weight;
    for dest in &state.additional_destinations {
        groups.push(target_group(
            &dest.service_name,
            &port,
            i64::from(dest.weight),
        ));
        stable_weight -= dest.weight;
    }
    groups.push(target_group(&stable, &port, i64::from(stable_weight)));
    action_string(alb, groups)
}

/// The header route's action: everything to the canary.
fn header_action(rollout: &Rollout, alb: &AlbTrafficRouting) -> Result<String, TrafficError> {
    let (_, canary_svc) = stable_and_canary_services(rollout, true);
    let port = alb.service_port.to_string();
    action_string(alb, vec![target_group(&canary_svc, &port, 100)])
}

/// Go's `ALBTargetGroup` with `omitempty` names and ports.
fn target_group(service: &str, port: &str, weight: i64) -> Value {
    let mut group = Map::new();
    if !service.is_empty() {
        group.insert("ServiceName".into(), Value::from(service));
    }
    if !port.is_empty() {
        group.insert("ServicePort".into(), Value::from(port));
    }
    group.insert("Weight".into(), Value::from(weight));
    Value::Object(group)
}

fn action_string(alb: &AlbTrafficRouting, groups: Vec<Value>) -> Result<String, TrafficError> {
    let mut forward = Map::new();
    forward.insert("TargetGroups".into(), Value::Array(groups));
    if let Some(sticky) = alb.stickiness_config.as_ref().filter(|s| s.enabled) {
        if !(1..=MAX_STICKINESS_SECONDS).contains(&sticky.duration_seconds) {
            return Err(TrafficError::InvalidRoute(
                "TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!"
                    .into(),
            ));
        }
        forward.insert(
            "TargetGroupStickinessConfig".into(),
            json!({"Enabled": true, "DurationSeconds": sticky.duration_seconds}),
        );
    }
    let action = json!({"Type": "forward", "ForwardConfig": forward});
    // Field order is the Go struct's (serde_json keeps insertion order here).
    Ok(action.to_string())
}

/// The conditions of a header route: one `http-header` condition per header name, exact
/// values of the same header merged into its `values`.
pub fn header_conditions(route: &SetHeaderRoute) -> String {
    let Some(matches) = &route.match_ else {
        // Go marshals the nil slice as `null`.
        return "null".into();
    };
    let mut conditions: Vec<(String, Vec<String>)> = Vec::new();
    for m in matches {
        let exact = m
            .header_value
            .as_ref()
            .and_then(|v| v.exact.clone())
            .unwrap_or_default();
        match conditions
            .iter_mut()
            .find(|(name, _)| *name == m.header_name)
        {
            Some((_, values)) => values.push(exact),
            None => conditions.push((m.header_name.clone(), vec![exact])),
        }
    }
    if conditions.is_empty() {
        return "null".into();
    }
    Value::Array(
        conditions
            .into_iter()
            .map(|(name, values)| {
                json!({
                    "field": "http-header",
                    "httpHeaderConfig": {"httpHeaderName": name, "values": values},
                })
            })
            .collect(),
    )
    .to_string()
}

fn set_header_route(
    rollout: &Rollout,
    alb: &AlbTrafficRouting,
    ingress: &mut Value,
    route: &SetHeaderRoute,
    managed_routes: &[&str],
) -> Result<(), TrafficError> {
    let name = route.name.as_deref().unwrap_or_default();
    let action_key = annotation_key(alb, "actions", name);
    let condition_key = annotation_key(alb, "conditions", name);
    let add = route.match_.is_some();
    let mut annotations = annotations_of(ingress);
    if add {
        annotations.insert(
            action_key.clone(),
            Value::from(header_action(rollout, alb)?),
        );
        annotations.insert(condition_key.clone(), Value::from(header_conditions(route)));
    } else {
        annotations.insert(action_key.clone(), Value::Null);
        annotations.insert(condition_key.clone(), Value::Null);
    }
    update_managed(
        &mut annotations,
        &super::rollout_name(rollout),
        add,
        &[action_key, condition_key],
    )?;
    set_annotations(ingress, annotations);
    let has_rule = has_rule_with_service(ingress, name);
    if has_rule && !add {
        remove_path_by_service(ingress, name);
    }
    if !has_rule && add {
        create_annotation_path(ingress, name);
    }
    sort_paths(ingress, managed_routes);
    Ok(())
}

/// The annotations of `ingress` (empty when none).
fn annotations_of(ingress: &Value) -> Map<String, Value> {
    ingress
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Sets the annotations; `null` values mean "remove" (the merge patch deletes them).
fn set_annotations(ingress: &mut Value, annotations: Map<String, Value>) {
    super::objects::set_at(
        ingress,
        &["metadata", "annotations"],
        Value::Object(annotations),
    );
}

/// Adds or removes `keys` from this Rollout's entry of [`MANAGED_ANNOTATIONS`].
fn update_managed(
    annotations: &mut Map<String, Value>,
    rollout_name: &str,
    add: bool,
    keys: &[String],
) -> Result<(), TrafficError> {
    let text = annotations
        .get(MANAGED_ANNOTATIONS)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut managed: std::collections::BTreeMap<String, Option<Vec<String>>> = if text.is_empty() {
        Default::default()
    } else {
        serde_json::from_str(text).map_err(|e| TrafficError::InvalidRoute(e.to_string()))?
    };
    let mut mine = managed
        .get(rollout_name)
        .cloned()
        .flatten()
        .unwrap_or_default();
    for key in keys {
        if add {
            if !mine.contains(key) {
                mine.push(key.clone());
            }
        } else {
            mine.retain(|k| k != key);
        }
    }
    managed.insert(rollout_name.to_string(), Some(mine));
    // Go marshals a map with sorted keys, as the BTreeMap does.
    let text = serde_json::to_string(&managed).map_err(|e| TrafficError::Api {
        code: None,
        message: e.to_string(),
    })?;
    annotations.insert(MANAGED_ANNOTATIONS.into(), Value::from(text));
    Ok(())
}

fn rules_mut(ingress: &mut Value) -> impl Iterator<Item = &mut Vec<Value>> {
    ingress
        .pointer_mut("/spec/rules")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|rule| {
            rule.pointer_mut("/http/paths")
                .and_then(Value::as_array_mut)
        })
}

fn backend_service(path: &Value) -> &str {
    path.pointer("/backend/service/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether a rule's path routes to `service` (upstream `HasRuleWithService`).
pub fn has_rule_with_service(ingress: &Value, service: &str) -> bool {
    ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.pointer("/http/paths").and_then(Value::as_array))
        .flatten()
        .any(|path| backend_service(path) == service)
}

/// Removes, in each rule, the first path routing to `service`.
fn remove_path_by_service(ingress: &mut Value, service: &str) {
    for paths in rules_mut(ingress) {
        if let Some(i) = paths.iter().position(|p| backend_service(p) == service) {
            paths.remove(i);
        }
    }
}

/// Puts the `/*` path to the `use-annotation` port of `action` first in each rule.
fn create_annotation_path(ingress: &mut Value, action: &str) {
    let path = json!({
        "path": "/*",
        "pathType": "ImplementationSpecific",
        "backend": {"service": {"name": action, "port": {"name": "use-annotation"}}},
    });
    for paths in rules_mut(ingress) {
        paths.insert(0, path.clone());
    }
}

/// Orders each rule's paths by their Service's place in `managedRoutes` (others last, in
/// their order), as upstream's stable sort does.
fn sort_paths(ingress: &mut Value, managed_routes: &[&str]) {
    let rank = |path: &Value| {
        let service = backend_service(path);
        managed_routes
            .iter()
            .position(|r| *r == service)
            .unwrap_or(managed_routes.len())
    };
    for paths in rules_mut(ingress) {
        paths.sort_by_key(|p| rank(p));
    }
}
