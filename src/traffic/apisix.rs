//! Apache APISIX router: edits the `ApisixRoute` in place, setting the canary and stable
//! backend weights of each named HTTP rule; a header route is a second ApisixRoute named after
//! the route, copied from the first and controlled by the Rollout, whose rules send everything
//! to the canary when the header expressions match (priority one above the original); removing
//! managed routes deletes those copies, as upstream. Mirror routes are no-ops, as upstream.

use serde_json::{Map, Value, json};

use crate::api::Rollout;
use crate::api::canary::SetHeaderRoute;
use crate::api::traffic_routing::ApisixTrafficRouting;

use super::error::TrafficError;
use super::objects::{DesiredObject, Ownership, ResourceType, is_controlled_by};
use super::{RouterInput, canary, controller_ref, namespace};

const FAILED_TYPE_ASSERTION: &str = "Failed type assertion for Apisix http route";

fn apisix_config(rollout: &Rollout) -> Result<&ApisixTrafficRouting, TrafficError> {
    super::traffic_routing(rollout)?
        .apisix
        .as_ref()
        .ok_or(TrafficError::NotConfigured("apisix"))
}

fn route_name(rollout: &Rollout) -> Result<String, TrafficError> {
    Ok(apisix_config(rollout)?
        .route
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default())
}

/// The rule names to edit: `route.rules`, else the route name.
fn rule_names(rollout: &Rollout) -> Result<Vec<String>, TrafficError> {
    let config = apisix_config(rollout)?;
    Ok(match config.route.as_ref().and_then(|r| r.rules.clone()) {
        Some(rules) => rules,
        None => vec![route_name(rollout)?],
    })
}

/// Objects to observe: the route, every managed route (header-route copies).
pub fn watched(rollout: &Rollout) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    let ns = namespace(rollout);
    let resource = ResourceType::apisix_route();
    let mut out = vec![(resource.clone(), ns.clone(), route_name(rollout)?)];
    for route in super::traffic_routing(rollout)?
        .managed_routes
        .iter()
        .flatten()
    {
        out.push((resource.clone(), ns.clone(), route.name.clone()));
    }
    Ok(out)
}

/// Managed-route removals, the header route, then the route's weights.
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let ns = namespace(rollout);
    let resource = ResourceType::apisix_route();
    let name = route_name(rollout)?;
    let live = input
        .observed
        .get(&resource, &ns, &name)
        .ok_or_else(|| resource.not_found(&name))?;
    let entry = |name: String, object: Value, ownership| DesiredObject {
        resource: resource.clone(),
        namespace: ns.clone(),
        name,
        object,
        ownership,
        on_create: None,
        on_update: None,
    };
    let mut out = Vec::new();
    if input.state.remove_managed_routes {
        for route in super::traffic_routing(rollout)?
            .managed_routes
            .iter()
            .flatten()
        {
            out.push(entry(
                route.name.clone(),
                Value::Null,
                Ownership::AbsentIfControlled,
            ));
        }
    }
    if let Some(route) = &input.state.header_route {
        let header_name = route.name.clone().unwrap_or_default();
        let existing = input.observed.get(&resource, &ns, &header_name);
        let uid = rollout.metadata.uid.as_deref().unwrap_or_default();
        if let Some(existing) = existing
            && !is_controlled_by(existing, uid)
        {
            return Err(TrafficError::InvalidRoute(format!(
                "duplicate ApisixRoute [{header_name}] already exists"
            )));
        }
        match (&route.match_, existing) {
            (None, None) => {}
            (None, Some(_)) => {
                out.push(entry(
                    header_name,
                    Value::Null,
                    Ownership::AbsentIfControlled,
                ));
            }
            (Some(_), existing) => {
                let object = header_route(rollout, live, existing, route)?;
                out.push(entry(header_name, object, Ownership::Controlled));
            }
        }
    }
    let mut object = live.clone();
    let strategy = canary(rollout)?;
    let canary_svc = strategy.canary_service.clone().unwrap_or_default();
    let stable_svc = strategy.stable_service.clone().unwrap_or_default();
    let weight = i64::from(input.state.weight);
    for rule in rule_names(rollout)? {
        let backends = backends(http_route(&mut object, &rule)?)?;
        set_backend_weight(backends, &canary_svc, weight)?;
        set_backend_weight(backends, &stable_svc, 100 - weight)?;
    }
    out.push(entry(name, object, Ownership::EditInPlace));
    Ok(out)
}

/// The header route: the existing copy, or a new copy of `route`, whose rules send everything
/// to the canary when `header` matches.
fn header_route(
    rollout: &Rollout,
    route: &Value,
    existing: Option<&Value>,
    header: &SetHeaderRoute,
) -> Result<Value, TrafficError> {
    let is_new = existing.is_none();
    let mut object = match existing {
        Some(existing) => existing.clone(),
        None => {
            let mut copy = route.clone();
            let mut metadata = Map::new();
            metadata.insert(
                "name".into(),
                json!(header.name.as_deref().unwrap_or_default()),
            );
            metadata.insert("namespace".into(), json!(namespace(rollout)));
            for field in ["labels", "annotations"] {
                if let Some(value) = route.pointer(&format!("/metadata/{field}")) {
                    metadata.insert(field.into(), value.clone());
                }
            }
            metadata.insert("ownerReferences".into(), json!([controller_ref(rollout)?]));
            if let Some(map) = copy.as_object_mut() {
                map.insert("metadata".into(), Value::Object(metadata));
                map.remove("status");
            }
            copy
        }
    };
    let strategy = canary(rollout)?;
    let canary_svc = strategy.canary_service.clone().unwrap_or_default();
    let stable_svc = strategy.stable_service.clone().unwrap_or_default();
    for rule in rule_names(rollout)? {
        let http = http_route(&mut object, &rule)?;
        let list = backends(http)?;
        set_backend_weight(list, &canary_svc, 100)?;
        remove_backend(list, &stable_svc)?;
        let Some(http) = http.as_object_mut() else {
            return Err(TrafficError::InvalidRoute(FAILED_TYPE_ASSERTION.into()));
        };
        if is_new {
            let priority = http.get("priority").and_then(Value::as_i64).unwrap_or(0);
            http.insert("priority".into(), json!(priority + 1));
        }
        let exprs: Vec<Value> = header
            .match_
            .iter()
            .flatten()
            .flat_map(|m| {
                let value = m.header_value.clone().unwrap_or_default();
                exprs(
                    &m.header_name,
                    value.exact.as_deref().unwrap_or_default(),
                    value.regex.as_deref().unwrap_or_default(),
                    value.prefix.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        let mut matcher = http
            .get("match")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        matcher.insert("exprs".into(), Value::Array(exprs));
        http.insert("match".into(), Value::Object(matcher));
    }
    Ok(object)
}

/// APISIX header expressions for one match (upstream `apisixExprs`).
pub fn exprs(header: &str, exact: &str, regex: &str, prefix: &str) -> Vec<Value> {
    let subject = json!({"scope": "Header", "name": header});
    let mut out = Vec::new();
    if !exact.is_empty() {
        out.push(json!({"subject": subject, "op": "Equal", "value": exact}));
    }
    if !regex.is_empty() {
        out.push(json!({"subject": subject, "op": "RegexMatch", "value": regex}));
    }
    if !prefix.is_empty() {
        out.push(json!({"subject": subject, "op": "RegexMatch", "value": format!("^{prefix}.*")}));
    }
    out
}

/// The `spec.http` entry named `rule`.
fn http_route<'a>(object: &'a mut Value, rule: &str) -> Result<&'a mut Value, TrafficError> {
    let routes = object
        .pointer_mut("/spec/http")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| {
            TrafficError::InvalidRoute("spec.http was not found in Apisix Route manifest".into())
        })?;
    for route in routes.iter() {
        let Some(map) = route.as_object() else {
            return Err(TrafficError::InvalidRoute(FAILED_TYPE_ASSERTION.into()));
        };
        match map.get("name") {
            None => {
                return Err(TrafficError::InvalidRoute(
                    "Apisix http route rule name field not found".into(),
                ));
            }
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(TrafficError::InvalidRoute(format!(
                    "{FAILED_TYPE_ASSERTION} rule name"
                )));
            }
        }
    }
    routes
        .iter_mut()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(rule))
        .ok_or_else(|| {
            TrafficError::InvalidRoute(format!("Apisix http route rule {rule} not found"))
        })
}

fn backends(http: &mut Value) -> Result<&mut Vec<Value>, TrafficError> {
    match http.get_mut("backends") {
        None => Err(TrafficError::InvalidRoute(
            "Apisix http route backends not found".into(),
        )),
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(TrafficError::InvalidRoute(format!(
            "{FAILED_TYPE_ASSERTION} backends"
        ))),
    }
}

fn backend_name(backend: &Value) -> Result<&str, TrafficError> {
    if !backend.is_object() {
        return Err(TrafficError::InvalidRoute(format!(
            "{FAILED_TYPE_ASSERTION} backends"
        )));
    }
    backend
        .get("serviceName")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TrafficError::InvalidRoute("serviceName field was not found in backend".into())
        })
}

fn set_backend_weight(
    backends: &mut [Value],
    service: &str,
    weight: i64,
) -> Result<(), TrafficError> {
    for backend in backends.iter_mut() {
        if backend_name(backend)? == service {
            if let Some(map) = backend.as_object_mut() {
                map.insert("weight".into(), json!(weight));
            }
            return Ok(());
        }
    }
    Err(TrafficError::InvalidRoute(format!(
        "apisix route {service} backend was not found"
    )))
}

fn remove_backend(backends: &mut Vec<Value>, service: &str) -> Result<(), TrafficError> {
    for backend in backends.iter() {
        backend_name(backend)?;
    }
    backends.retain(|b| b.get("serviceName").and_then(Value::as_str) != Some(service));
    Ok(())
}
