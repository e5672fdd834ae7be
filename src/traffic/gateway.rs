//! Gateway API router, configured as upstream's `argoproj-labs/gatewayAPI` plugin
//! (`trafficRouting.plugins["argoproj-labs/gatewayAPI"]`): in each named route, every backendRef
//! naming the canary Service gets weight `W` and every one naming the stable Service `100 − W`.
//! HTTPRoute header routes are rules appended for `setHeaderRoute` steps, tracked in the
//! plugin's ConfigMap (`argo-gatewayapi-configmap`, key `httpManagedRoutes`) exactly as the
//! plugin does, so either controller can take over from the other.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{HeaderRoutingMatch, Rollout, SetHeaderRoute};

use super::error::TrafficError;
use super::objects::{
    DesiredObject, GatewayRouteKind, Ownership, ResourceType, json_equal, set_at, str_at,
};
use super::{RouterInput, canary, namespace, service_name};

/// The plugin's name in `trafficRouting.plugins`.
pub const PLUGIN_NAME: &str = "argoproj-labs/gatewayAPI";

/// The plugin's default bookkeeping ConfigMap.
pub const DEFAULT_CONFIG_MAP: &str = "argo-gatewayapi-configmap";

/// ConfigMap key holding HTTPRoute managed routes: `{managedRoute: {httpRoute: ruleIndex}}`.
pub const HTTP_MANAGED_ROUTES_KEY: &str = "httpManagedRoutes";

/// The plugin configuration (upstream `GatewayAPITrafficRouting`, route selectors excepted).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiConfig {
    /// One HTTPRoute (header routes on).
    #[serde(default)]
    pub http_route: String,
    /// One GRPCRoute.
    #[serde(default)]
    pub grpc_route: String,
    /// One TCPRoute.
    #[serde(default)]
    pub tcp_route: String,
    /// One TLSRoute.
    #[serde(default)]
    pub tls_route: String,
    /// Namespace of the routes and the ConfigMap (default: the Rollout's).
    #[serde(default)]
    pub namespace: String,
    /// Bookkeeping ConfigMap name.
    #[serde(default)]
    pub config_map: String,
    /// HTTPRoutes.
    #[serde(default)]
    pub http_routes: Vec<RouteRef>,
    /// GRPCRoutes.
    #[serde(default)]
    pub grpc_routes: Vec<RouteRef>,
    /// TCPRoutes.
    #[serde(default)]
    pub tcp_routes: Vec<RouteRef>,
    /// TLSRoutes.
    #[serde(default)]
    pub tls_routes: Vec<RouteRef>,
}

/// `{name, useHeaderRoutes}` of a route list entry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRef {
    /// Route name.
    pub name: String,
    /// Whether `setHeaderRoute` adds rules to this route.
    #[serde(default)]
    pub use_header_routes: bool,
}

impl GatewayApiConfig {
    /// Reads the plugin block of `rollout`; single-route keys join the lists with header
    /// routes on (upstream `insertGatewayAPIRouteLists`).
    pub fn of(rollout: &Rollout) -> Result<Self, TrafficError> {
        let raw = super::traffic_routing(rollout)?
            .plugins
            .as_ref()
            .and_then(|p| p.get(PLUGIN_NAME))
            .ok_or(TrafficError::NotConfigured(PLUGIN_NAME))?;
        let mut cfg: GatewayApiConfig = serde_json::from_value(raw.clone())
            .map_err(|e| TrafficError::PluginConfig(e.to_string()))?;
        for (single, list) in [
            (&cfg.http_route, &mut cfg.http_routes),
            (&cfg.grpc_route, &mut cfg.grpc_routes),
            (&cfg.tcp_route, &mut cfg.tcp_routes),
            (&cfg.tls_route, &mut cfg.tls_routes),
        ] {
            if !single.is_empty() {
                list.push(RouteRef {
                    name: single.clone(),
                    use_header_routes: true,
                });
            }
        }
        if cfg.config_map.is_empty() {
            cfg.config_map = DEFAULT_CONFIG_MAP.to_string();
        }
        Ok(cfg)
    }

    /// Every configured route with its kind, in the plugin's order (HTTP, GRPC, TCP, TLS).
    pub fn routes(&self) -> Vec<(GatewayRouteKind, &RouteRef)> {
        let lists = [
            (GatewayRouteKind::Http, &self.http_routes),
            (GatewayRouteKind::Grpc, &self.grpc_routes),
            (GatewayRouteKind::Tcp, &self.tcp_routes),
            (GatewayRouteKind::Tls, &self.tls_routes),
        ];
        lists
            .into_iter()
            .flat_map(|(kind, list)| list.iter().map(move |r| (kind, r)))
            .collect()
    }

    fn namespace_for(&self, rollout: &Rollout) -> String {
        if self.namespace.is_empty() {
            namespace(rollout)
        } else {
            self.namespace.clone()
        }
    }
}

/// Objects to observe: every route and the bookkeeping ConfigMap.
pub fn watched(rollout: &Rollout) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    let cfg = GatewayApiConfig::of(rollout)?;
    let ns = cfg.namespace_for(rollout);
    let mut out: Vec<_> = cfg
        .routes()
        .into_iter()
        .map(|(kind, r)| {
            (
                ResourceType::gateway_route(kind),
                ns.clone(),
                r.name.clone(),
            )
        })
        .collect();
    out.push((ResourceType::config_map(), ns, cfg.config_map.clone()));
    Ok(out)
}

/// `{managedRoute: {routeName: ruleIndex}}` as the plugin stores it.
type ManagedRouteMap = BTreeMap<String, BTreeMap<String, usize>>;

/// Every route whose weights (or header rules) change, then the ConfigMap when its
/// bookkeeping changes.
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let cfg = GatewayApiConfig::of(rollout)?;
    let routes = cfg.routes();
    if routes.is_empty() {
        return Err(TrafficError::PluginConfig(
            "No routes configured. One of 'tcpRoutes', 'httpRoutes', 'tcpRoute' or 'httpRoute' should be set".to_string(),
        ));
    }
    let strategy = canary(rollout)?;
    let canary_svc = service_name(
        &strategy.canary_service,
        "spec.strategy.canary.canaryService",
    )?;
    let stable_svc = service_name(
        &strategy.stable_service,
        "spec.strategy.canary.stableService",
    )?;
    let ns = cfg.namespace_for(rollout);
    let managed_names: Vec<String> = super::traffic_routing(rollout)?
        .managed_routes
        .iter()
        .flatten()
        .map(|m| m.name.clone())
        .collect();

    let cm_resource = ResourceType::config_map();
    let live_cm = input.observed.get(&cm_resource, &ns, &cfg.config_map);
    let mut managed: ManagedRouteMap = match live_cm
        .and_then(|cm| str_at(cm, &["data", HTTP_MANAGED_ROUTES_KEY]))
        .filter(|s| !s.is_empty())
    {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| TrafficError::PluginConfig(e.to_string()))?
        }
        None => ManagedRouteMap::new(),
    };
    let managed_before = managed.clone();

    let mut out = Vec::new();
    for (kind, route_ref) in routes {
        let resource = ResourceType::gateway_route(kind);
        let live = input
            .observed
            .get(&resource, &ns, &route_ref.name)
            .ok_or_else(|| resource.not_found(&route_ref.name))?;
        let mut route = live.clone();
        if kind == GatewayRouteKind::Http && route_ref.use_header_routes {
            if input.state.remove_managed_routes {
                for name in &managed_names {
                    remove_managed_rule(&mut route, &mut managed, name, &route_ref.name);
                }
            }
            if let Some(step) = &input.state.header_route {
                set_header_rule(
                    &mut route,
                    &mut managed,
                    step,
                    &route_ref.name,
                    canary_svc,
                    stable_svc,
                )?;
            }
        }
        let skip: Vec<usize> = managed
            .values()
            .filter_map(|m| m.get(&route_ref.name).copied())
            .collect();
        set_weights(
            &mut route,
            kind,
            canary_svc,
            stable_svc,
            input.state.weight,
            &skip,
        )?;
        if !json_equal(&route, live) {
            out.push(DesiredObject {
                resource,
                namespace: ns.clone(),
                name: route_ref.name.clone(),
                object: route,
                ownership: Ownership::EditInPlace,
                on_create: None,
                on_update: None,
            });
        }
    }
    if managed != managed_before {
        out.push(config_map(live_cm, &cfg.config_map, &ns, &managed)?);
    }
    Ok(out)
}

/// The error the plugin reports when a backendRef is missing from a route of `kind`.
fn backend_ref_not_found(kind: GatewayRouteKind) -> TrafficError {
    let kind = match kind {
        GatewayRouteKind::Http => "httpRoute",
        GatewayRouteKind::Grpc => "grpcRoute",
        GatewayRouteKind::Tcp => "tcpRoute",
        GatewayRouteKind::Tls => "tlsRoute",
    };
    TrafficError::InvalidRoute(format!("backendRef was not found in {kind}"))
}

fn rules_mut(route: &mut Value) -> Option<&mut Vec<Value>> {
    route
        .pointer_mut("/spec/rules")
        .and_then(Value::as_array_mut)
}

fn ref_name(backend_ref: &Value) -> &str {
    backend_ref
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Sets `weight` on every canary backendRef outside the managed rules `skip`, and `100 − W`
/// on every stable backendRef (upstream `setHTTPRouteWeight`); errors when either Service has
/// no backendRef at all.
pub fn set_weights(
    route: &mut Value,
    kind: GatewayRouteKind,
    canary_svc: &str,
    stable_svc: &str,
    weight: i32,
    skip: &[usize],
) -> Result<(), TrafficError> {
    let rules = rules_mut(route).ok_or_else(|| backend_ref_not_found(kind))?;
    let refs_named = |rules: &Vec<Value>, name: &str| {
        rules.iter().any(|r| {
            r.get("backendRefs")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|b| ref_name(b) == name))
        })
    };
    if !refs_named(rules, canary_svc) || !refs_named(rules, stable_svc) {
        return Err(backend_ref_not_found(kind));
    }
    for (index, rule) in rules.iter_mut().enumerate() {
        let refs = rule.get_mut("backendRefs").and_then(Value::as_array_mut);
        for backend_ref in refs.into_iter().flatten() {
            let name = ref_name(backend_ref).to_string();
            if name == canary_svc && !skip.contains(&index) {
                set_at(backend_ref, &["weight"], json!(weight));
            } else if name == stable_svc {
                set_at(backend_ref, &["weight"], json!(100 - weight));
            }
        }
    }
    Ok(())
}

/// Removes the header rule of managed route `name` from HTTPRoute `route_name`, shifting the
/// recorded indexes above it (upstream `removeManagedHTTPRouteEntry`).
fn remove_managed_rule(
    route: &mut Value,
    managed: &mut ManagedRouteMap,
    name: &str,
    route_name: &str,
) {
    let Some(index) = managed.get_mut(name).and_then(|m| m.remove(route_name)) else {
        return;
    };
    if managed.get(name).is_some_and(BTreeMap::is_empty) {
        managed.remove(name);
    }
    for entry in managed.values_mut() {
        if let Some(i) = entry.get_mut(route_name)
            && *i > index
        {
            *i -= 1;
        }
    }
    if let Some(rules) = rules_mut(route)
        && index < rules.len()
    {
        rules.remove(index);
    }
}

/// Applies a `setHeaderRoute` step to an HTTPRoute (upstream `setHTTPHeaderRoute`): without a
/// match the managed rule is removed; with one, a rule sending matching requests to the canary
/// backend is appended (replacing an earlier rule of the same name) and its index recorded.
fn set_header_rule(
    route: &mut Value,
    managed: &mut ManagedRouteMap,
    step: &SetHeaderRoute,
    route_name: &str,
    canary_svc: &str,
    stable_svc: &str,
) -> Result<(), TrafficError> {
    let name = step.name.clone().unwrap_or_default();
    remove_managed_rule(route, managed, &name, route_name);
    let Some(matches) = &step.match_ else {
        return Ok(());
    };
    let headers = matches
        .iter()
        .map(header_match)
        .collect::<Result<Vec<_>, _>>()?;
    let rules = rules_mut(route).ok_or_else(|| backend_ref_not_found(GatewayRouteKind::Http))?;
    // Upstream takes the first rule with backendRefs as the template.
    let template = rules
        .iter()
        .find(|r| {
            r.get("backendRefs")
                .and_then(Value::as_array)
                .is_some_and(|refs| !refs.is_empty())
        })
        .ok_or_else(|| backend_ref_not_found(GatewayRouteKind::Http))?;
    let has_stable = template["backendRefs"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|b| ref_name(b) == stable_svc));
    let canary_ref = template["backendRefs"]
        .as_array()
        .and_then(|refs| refs.iter().find(|b| ref_name(b) == canary_svc));
    let (Some(canary_ref), true) = (canary_ref, has_stable) else {
        return Err(backend_ref_not_found(GatewayRouteKind::Http));
    };
    let mut backend = Map::new();
    backend.insert("group".into(), json!(""));
    backend.insert("kind".into(), json!("Service"));
    backend.insert("name".into(), json!(canary_svc));
    if let Some(port) = canary_ref.get("port") {
        backend.insert("port".into(), port.clone());
    }
    let rule_matches: Vec<Value> = template
        .get("matches")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let mut out = Map::new();
            if let Some(path) = m.get("path") {
                out.insert("path".into(), path.clone());
            }
            out.insert("headers".into(), Value::Array(headers.clone()));
            if let Some(q) = m.get("queryParams") {
                out.insert("queryParams".into(), q.clone());
            }
            Value::Object(out)
        })
        .collect();
    rules.push(json!({"matches": rule_matches, "backendRefs": [backend]}));
    managed
        .entry(name)
        .or_default()
        .insert(route_name.to_string(), rules.len() - 1);
    Ok(())
}

/// A Gateway API header match: exact, prefix as `<prefix>.*` regular expression, or regex.
fn header_match(m: &HeaderRoutingMatch) -> Result<Value, TrafficError> {
    let value = m.header_value.clone().unwrap_or_default();
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (kind, text) = if let Some(exact) = nonempty(&value.exact) {
        ("Exact", exact)
    } else if let Some(prefix) = nonempty(&value.prefix) {
        ("RegularExpression", format!("{prefix}.*"))
    } else if let Some(regex) = nonempty(&value.regex) {
        ("RegularExpression", regex)
    } else {
        return Err(TrafficError::InvalidRoute(
            "invalid header match type".to_string(),
        ));
    };
    Ok(json!({"type": kind, "name": m.header_name, "value": text}))
}

/// The bookkeeping ConfigMap with `httpManagedRoutes` updated (other keys kept).
fn config_map(
    live: Option<&Value>,
    name: &str,
    ns: &str,
    managed: &ManagedRouteMap,
) -> Result<DesiredObject, TrafficError> {
    let text =
        serde_json::to_string(managed).map_err(|e| TrafficError::PluginConfig(e.to_string()))?;
    let mut object = live.cloned().unwrap_or_else(|| {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
        })
    });
    set_at(
        &mut object,
        &["data", HTTP_MANAGED_ROUTES_KEY],
        Value::from(text),
    );
    Ok(DesiredObject {
        resource: ResourceType::config_map(),
        namespace: ns.to_string(),
        name: name.to_string(),
        object,
        ownership: Ownership::Shared,
        on_create: None,
        on_update: None,
    })
}
