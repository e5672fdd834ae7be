//! Istio managed routes (spec §7.3): the HTTP routes `setHeaderRoute` and `setMirrorRoute`
//! steps add to a VirtualService, kept above the user's routes in `managedRoutes` order and
//! removed on promotion or abort. Works on the VirtualService JSON in place.

use serde_json::{Map, Value, json};

use crate::api::common::StringMatch;
use crate::api::traffic_routing::{IstioVirtualService, ManagedRoute};
use crate::api::{HeaderRoutingMatch, RouteMatch, SetHeaderRoute, SetMirrorRoute};

use super::error::TrafficError;

/// Where a managed route sends requests: the canary host and subset.
pub(crate) struct CanaryTarget<'a> {
    /// The DestinationRule's host when one is configured, else the canary Service.
    pub host: &'a str,
    /// The canary subset name ("" without a DestinationRule).
    pub subset: &'a str,
}

/// The `spec.http` routes of a VirtualService, when present.
pub(crate) fn http_routes(vs: &Value) -> Option<&Vec<Value>> {
    vs.pointer("/spec/http").and_then(Value::as_array)
}

fn http_routes_mut(vs: &mut Value) -> Option<&mut Vec<Value>> {
    vs.pointer_mut("/spec/http").and_then(Value::as_array_mut)
}

fn route_name(route: &Value) -> Option<&str> {
    route.get("name").and_then(Value::as_str)
}

/// Removes every HTTP route named in `managed` (upstream `RemoveManagedRoutes`).
pub(crate) fn remove_managed_routes(vs: &mut Value, managed: &[ManagedRoute]) {
    if managed.is_empty() {
        return;
    }
    if let Some(routes) = http_routes_mut(vs) {
        routes.retain(|r| {
            !managed
                .iter()
                .any(|m| route_name(r) == Some(m.name.as_str()))
        });
    }
}

fn remove_route(vs: &mut Value, name: &str) -> Result<(), TrafficError> {
    let routes = http_routes_mut(vs).ok_or_else(spec_http_not_found)?;
    routes.retain(|r| route_name(r) != Some(name));
    Ok(())
}

fn spec_http_not_found() -> TrafficError {
    TrafficError::InvalidRoute("spec.http not found".to_string())
}

/// Index of the first HTTP route `setWeight` edits: the first route named in `names`, or the
/// first unnamed route when `names` is empty (upstream `getHttpRouteIndexesToPatch`).
pub(crate) fn http_route_indexes(
    names: &[String],
    routes: &[Value],
) -> Result<Vec<usize>, TrafficError> {
    if names.is_empty() {
        return Ok(routes
            .iter()
            .position(|r| route_name(r).unwrap_or_default().is_empty())
            .into_iter()
            .collect());
    }
    names
        .iter()
        .map(|name| {
            routes
                .iter()
                .position(|r| route_name(r) == Some(name.as_str()))
                .ok_or_else(|| {
                    TrafficError::InvalidRoute(format!(
                        "HTTP Route '{name}' is not found in the defined Virtual Service."
                    ))
                })
        })
        .collect()
}

/// The weighted destinations of the first route `setWeight` edits, normalised as upstream's
/// typed decode/encode does (host, subset, port number; weight omitted when 0).
fn set_weight_route(vs_cfg: &IstioVirtualService, vs: &Value) -> Result<Vec<Value>, TrafficError> {
    let routes = http_routes(vs).ok_or_else(spec_http_not_found)?;
    let names = vs_cfg.routes.clone().unwrap_or_default();
    let indexes = http_route_indexes(&names, routes)?;
    let Some(route) = indexes.first().map(|i| &routes[*i]) else {
        return Ok(Vec::new());
    };
    Ok(route
        .get("route")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(normalised_destination)
        .collect())
}

fn normalised_destination(dest: &Value) -> Value {
    let mut d = Map::new();
    for key in ["host", "subset"] {
        if let Some(v) = dest
            .pointer(&format!("/destination/{key}"))
            .and_then(Value::as_str)
            && !v.is_empty()
        {
            d.insert(key.into(), Value::from(v));
        }
    }
    if let Some(port) = dest.pointer("/destination/port") {
        let mut p = Map::new();
        if let Some(n) = port
            .get("number")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
        {
            p.insert("number".into(), Value::from(n));
        }
        d.insert("port".into(), Value::Object(p));
    }
    let mut out = Map::new();
    out.insert("destination".into(), Value::Object(d));
    if let Some(w) = dest
        .get("weight")
        .and_then(Value::as_i64)
        .filter(|w| *w != 0)
    {
        out.insert("weight".into(), Value::from(w));
    }
    Value::Object(out)
}

/// The port of the first weighted destination (upstream `getVirtualServiceCanaryPort`).
fn canary_port(route: &[Value]) -> Option<u64> {
    route
        .first()?
        .pointer("/destination/port/number")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
}

/// Applies a `setHeaderRoute` step: removes the route of that name, and when the step has a
/// match, appends `{name, match, route: [canary weight 100]}` (upstream
/// `reconcileVirtualServiceHeaderRoutes`).
pub(crate) fn set_header_route(
    vs: &mut Value,
    vs_cfg: &IstioVirtualService,
    step: &SetHeaderRoute,
    target: &CanaryTarget<'_>,
) -> Result<(), TrafficError> {
    let name = step.name.clone().unwrap_or_default();
    remove_route(vs, &name)?;
    let Some(matches) = &step.match_ else {
        return Ok(());
    };
    // Upstream ignores a failure to find the weighted route here and uses port 0.
    let port = set_weight_route(vs_cfg, vs)
        .ok()
        .and_then(|r| canary_port(&r));
    let route = json!({
        "name": name,
        "match": matches.iter().map(header_match).collect::<Vec<_>>(),
        "route": [route_destination(target, port, 100)],
    });
    http_routes_mut(vs)
        .ok_or_else(spec_http_not_found)?
        .push(route);
    Ok(())
}

fn header_match(m: &HeaderRoutingMatch) -> Value {
    let value = m
        .header_value
        .as_ref()
        .map(string_match)
        .unwrap_or_default();
    let mut headers = Map::new();
    headers.insert(m.header_name.clone(), Value::Object(value));
    json!({ "headers": headers })
}

/// A StringMatch with only its non-empty fields (Go `omitempty` on strings).
fn string_match(m: &StringMatch) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in [
        ("exact", &m.exact),
        ("regex", &m.regex),
        ("prefix", &m.prefix),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            out.insert(key.into(), Value::from(v));
        }
    }
    out
}

fn route_destination(target: &CanaryTarget<'_>, port: Option<u64>, weight: i64) -> Value {
    let mut dest = Map::new();
    dest.insert("host".into(), Value::from(target.host));
    if let Some(port) = port {
        dest.insert("port".into(), json!({ "number": port }));
    }
    if !target.subset.is_empty() {
        dest.insert("subset".into(), Value::from(target.subset));
    }
    json!({ "weight": weight, "destination": dest })
}

/// Applies a `setMirrorRoute` step: removes the route of that name, and when the step has a
/// match, puts `{name, match, route: <copy of the weighted route>, mirror: canary,
/// mirrorPercentage}` first (upstream `reconcileVirtualServiceMirrorRoutes`).
pub(crate) fn set_mirror_route(
    vs: &mut Value,
    vs_cfg: &IstioVirtualService,
    step: &SetMirrorRoute,
    target: &CanaryTarget<'_>,
) -> Result<(), TrafficError> {
    remove_route(vs, &step.name)?;
    let Some(matches) = &step.match_ else {
        return Ok(());
    };
    let route = set_weight_route(vs_cfg, vs)?;
    let mut mirror = Map::new();
    mirror.insert("host".into(), Value::from(target.host));
    if !target.subset.is_empty() {
        mirror.insert("subset".into(), Value::from(target.subset));
    }
    if let Some(port) = route.first().and_then(|d| d.pointer("/destination/port")) {
        mirror.insert("port".into(), port.clone());
    }
    let percent = step.percentage();
    // Go's `Percent.Value float64 omitempty` drops a zero percentage.
    let percentage = if percent == 0 {
        json!({})
    } else {
        json!({ "value": percent })
    };
    let mirror_route = json!({
        "name": step.name,
        "match": matches.iter().map(mirror_match).collect::<Vec<_>>(),
        "route": route,
        "mirror": mirror,
        "mirrorPercentage": percentage,
    });
    http_routes_mut(vs)
        .ok_or_else(spec_http_not_found)?
        .insert(0, mirror_route);
    Ok(())
}

/// An Istio HTTPMatchRequest from a rollout RouteMatch (`path` becomes `uri`).
fn mirror_match(m: &RouteMatch) -> Value {
    let mut out = Map::new();
    if let Some(method) = &m.method {
        out.insert("method".into(), Value::Object(string_match(method)));
    }
    if let Some(path) = &m.path {
        out.insert("uri".into(), Value::Object(string_match(path)));
    }
    if let Some(headers) = m.headers.as_ref().filter(|h| !h.is_empty()) {
        let map: Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::Object(string_match(v))))
            .collect();
        out.insert("headers".into(), Value::Object(map));
    }
    Value::Object(out)
}

/// Names of the managed routes that are mirror routes present in the VirtualService: their
/// copied weighted route follows `setWeight` too.
pub(crate) fn managed_mirror_route_names(vs: &Value, managed: &[ManagedRoute]) -> Vec<String> {
    http_routes(vs)
        .into_iter()
        .flatten()
        .filter(|r| r.get("mirror").is_some_and(|m| !m.is_null()))
        .filter_map(route_name)
        .filter(|name| managed.iter().any(|m| m.name == *name))
        .map(str::to_string)
        .collect()
}

/// Puts the managed routes first, in `managed` order, then the others in their order
/// (upstream `orderRoutes`); no-op without managed routes.
pub(crate) fn order_routes(vs: &mut Value, managed: &[ManagedRoute]) {
    if managed.is_empty() {
        return;
    }
    let Some(routes) = http_routes_mut(vs) else {
        return;
    };
    let is_managed = |r: &Value| {
        managed
            .iter()
            .any(|m| route_name(r) == Some(m.name.as_str()))
    };
    let mut ordered: Vec<Value> = Vec::with_capacity(routes.len());
    for m in managed {
        ordered.extend(
            routes
                .iter()
                .filter(|r| route_name(r) == Some(m.name.as_str()))
                .cloned(),
        );
    }
    ordered.extend(routes.iter().filter(|r| !is_managed(r)).cloned());
    *routes = ordered;
}

/// Routes that are not managed routes (for the "exactly one route" check).
pub(crate) fn unmanaged_count(routes: &[Value], managed: &[ManagedRoute]) -> usize {
    routes
        .iter()
        .filter(|r| {
            !managed
                .iter()
                .any(|m| route_name(r) == Some(m.name.as_str()))
        })
        .count()
}
