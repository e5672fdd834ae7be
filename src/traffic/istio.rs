//! Istio router (spec §7.3): host-level split (VirtualService destinations naming the canary
//! and stable Services) and subset-level split (DestinationRule subsets labelled with the
//! pod-template hashes), for HTTP, TLS and TCP routes; managed routes live in `istio_routes`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::Rollout;
use crate::api::consts::{annotation, event_reason, label};
use crate::api::rollout_status::WeightDestination;
use crate::api::traffic_routing::{
    IstioDestinationRule, IstioTrafficRouting, IstioVirtualService, ManagedRoute, TcpRoute,
    TlsRoute,
};

use super::error::TrafficError;
use super::istio_routes::{self as routes, CanaryTarget};
use super::objects::{DesiredObject, Ownership, ResourceType, RouterEvent, json_equal, set_at};
use super::{RouterConfig, RouterInput, namespace, rollout_name};

/// Upstream's event reason for VirtualService updates (with the space, verbatim).
pub const UPDATED_VIRTUAL_SERVICE: &str = "Updated VirtualService";

fn istio_config(rollout: &Rollout) -> Result<&IstioTrafficRouting, TrafficError> {
    super::traffic_routing(rollout)?
        .istio
        .as_ref()
        .ok_or(TrafficError::NotConfigured("istio"))
}

/// The VirtualServices of the Rollout: `virtualServices` when set, else `virtualService`.
pub fn virtual_services(istio: &IstioTrafficRouting) -> Vec<IstioVirtualService> {
    match &istio.virtual_services {
        Some(list) => list.clone(),
        None => istio.virtual_service.iter().cloned().collect(),
    }
}

/// Splits a VirtualService reference `name` or `name.namespace` (upstream
/// `GetVirtualServiceNamespaceName`); the namespace defaults to `default_ns`.
pub fn virtual_service_ref(reference: &str, default_ns: &str) -> (String, String) {
    let mut fields = reference.split('.');
    let name = fields.next().unwrap_or_default().to_string();
    let ns = fields
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(default_ns)
        .to_string();
    (ns, name)
}

/// Objects to observe: every VirtualService and the DestinationRule.
pub fn watched(
    rollout: &Rollout,
    config: &RouterConfig,
) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    let istio = istio_config(rollout)?;
    let ns = namespace(rollout);
    let mut out: Vec<_> = virtual_services(istio)
        .iter()
        .map(|vs| {
            let (vs_ns, name) = virtual_service_ref(&vs.name, &ns);
            (
                ResourceType::virtual_service(&config.istio_api_version),
                vs_ns,
                name,
            )
        })
        .collect();
    if let Some(dr) = &istio.destination_rule {
        out.push((
            ResourceType::destination_rule(&config.istio_api_version),
            ns,
            dr.name.clone(),
        ));
    }
    Ok(out)
}

/// The DestinationRule (when its subsets change) then every VirtualService that changes.
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let istio = istio_config(rollout)?;
    let tr = super::traffic_routing(rollout)?;
    let managed: &[ManagedRoute] = tr.managed_routes.as_deref().unwrap_or_default();
    let ns = namespace(rollout);
    let version = &input.config.istio_api_version;
    let mut out = Vec::new();

    let dr = match &istio.destination_rule {
        Some(cfg) => {
            let resource = ResourceType::destination_rule(version);
            let live = input
                .observed
                .get(&resource, &ns, &cfg.name)
                .ok_or_else(|| resource.not_found(&cfg.name))?;
            Some((cfg, live))
        }
        None => None,
    };
    if let Some((cfg, live)) = dr {
        let want = destination_rule(rollout, cfg, live, input.state)?;
        if !json_equal(&want, live) {
            out.push(DesiredObject {
                resource: ResourceType::destination_rule(version),
                namespace: ns.clone(),
                name: cfg.name.clone(),
                object: want,
                ownership: Ownership::EditInPlace,
                on_create: None,
                on_update: Some(RouterEvent::new(
                    event_reason::UPDATED_DESTINATION_RULE,
                    format!(
                        "DestinationRule {} subset updated ({}: {}, {}: {})",
                        cfg.name,
                        cfg.canary_subset_name,
                        input.state.canary_hash,
                        cfg.stable_subset_name,
                        input.state.stable_hash
                    ),
                )),
            });
        }
    }

    let (_, canary_service) = super::stable_and_canary_services(rollout, false);
    let dr_host = dr
        .and_then(|(_, live)| live.pointer("/spec/host"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty());
    let target = CanaryTarget {
        host: dr_host.unwrap_or(&canary_service),
        subset: dr
            .map(|(cfg, _)| cfg.canary_subset_name.as_str())
            .unwrap_or(""),
    };
    for vs_cfg in virtual_services(istio) {
        let resource = ResourceType::virtual_service(version);
        let (vs_ns, vs_name) = virtual_service_ref(&vs_cfg.name, &ns);
        let live = input
            .observed
            .get(&resource, &vs_ns, &vs_name)
            .ok_or_else(|| resource.not_found(&vs_name))?;
        let mut vs = live.clone();
        if input.state.remove_managed_routes {
            routes::remove_managed_routes(&mut vs, managed);
        }
        if let Some(step) = &input.state.header_route {
            routes::set_header_route(&mut vs, &vs_cfg, step, &target)?;
        }
        if let Some(step) = &input.state.mirror_route {
            routes::set_mirror_route(&mut vs, &vs_cfg, step, &target)?;
        }
        set_weight(
            &mut vs,
            rollout,
            &vs_cfg,
            input.state.weight,
            &input.state.additional_destinations,
        )?;
        // Order only what changed (as upstream); re-adding an existing managed route moves it,
        // so compare again once ordered.
        if json_equal(&vs, live) {
            continue;
        }
        routes::order_routes(&mut vs, managed);
        if json_equal(&vs, live) {
            continue;
        }
        out.push(DesiredObject {
            resource,
            namespace: vs_ns,
            name: vs_name.clone(),
            object: vs,
            ownership: Ownership::EditInPlace,
            on_create: None,
            on_update: Some(RouterEvent::new(
                UPDATED_VIRTUAL_SERVICE,
                format!(
                    "VirtualService `{vs_name}` set to desiredWeight '{}'",
                    input.state.weight
                ),
            )),
        });
    }
    Ok(out)
}

/// Names and subsets that identify the canary and stable destinations of a route.
struct Targets<'a> {
    canary_svc: &'a str,
    stable_svc: &'a str,
    canary_subset: &'a str,
    stable_subset: &'a str,
    additional_subsets: &'a [String],
}

/// Sets the weights of the routes the Rollout names (upstream `reconcileVirtualService`),
/// after validating that each has a canary and a stable destination.
pub fn set_weight(
    vs: &mut Value,
    rollout: &Rollout,
    vs_cfg: &IstioVirtualService,
    weight: i32,
    additional: &[WeightDestination],
) -> Result<(), TrafficError> {
    let (stable_svc, canary_svc) = super::stable_and_canary_services(rollout, false);
    let istio = istio_config(rollout)?;
    let managed: &[ManagedRoute] = super::traffic_routing(rollout)?
        .managed_routes
        .as_deref()
        .unwrap_or_default();
    let dr = istio.destination_rule.as_ref();
    let targets = Targets {
        canary_svc: &canary_svc,
        stable_svc: &stable_svc,
        canary_subset: dr.map(|d| d.canary_subset_name.as_str()).unwrap_or(""),
        stable_subset: dr.map(|d| d.stable_subset_name.as_str()).unwrap_or(""),
        additional_subsets: dr
            .and_then(|d| d.additional_subset_names.as_deref())
            .unwrap_or_default(),
    };

    let names = vs_cfg.routes.clone().unwrap_or_default();
    let mut http_indexes = Vec::new();
    if let Some(http) = routes::http_routes(vs) {
        http_indexes = routes::http_route_indexes(&names, http)?;
        for i in &http_indexes {
            validate_destinations(&http[*i], dr, &targets)?;
        }
        if names.is_empty() && routes::unmanaged_count(http, managed) > 1 {
            return Err(TrafficError::InvalidRoute(
                "spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes".to_string(),
            ));
        }
        // Mirror routes carry a copy of the weighted route: keep it in step.
        for name in routes::managed_mirror_route_names(vs, managed) {
            if let Some(i) = http
                .iter()
                .position(|r| r.get("name").and_then(Value::as_str) == Some(&name))
                && !http_indexes.contains(&i)
            {
                http_indexes.push(i);
            }
        }
    }
    let tls_cfg = vs_cfg.tls_routes.clone().unwrap_or_default();
    let tls_indexes = l4_indexes(
        vs,
        "tls",
        dr,
        &targets,
        |routes| tls_route_indexes(&tls_cfg, routes),
        tls_cfg.is_empty(),
    )?;
    let tcp_cfg = vs_cfg.tcp_routes.clone().unwrap_or_default();
    let tcp_indexes = l4_indexes(
        vs,
        "tcp",
        dr,
        &targets,
        |routes| tcp_route_indexes(&tcp_cfg, routes),
        tcp_cfg.is_empty(),
    )?;

    for (kind, indexes) in [
        ("http", http_indexes),
        ("tls", tls_indexes),
        ("tcp", tcp_indexes),
    ] {
        for i in indexes {
            if let Some(route) = vs.pointer_mut(&format!("/spec/{kind}/{i}")) {
                weigh_route(route, &targets, weight, additional);
            }
        }
    }
    Ok(())
}

/// Indexes of the TLS or TCP routes to edit, validated like upstream `ValidateTlsRoutes` /
/// `ValidateTcpRoutes`; empty when the VirtualService has no such routes.
fn l4_indexes(
    vs: &Value,
    kind: &str,
    dr: Option<&IstioDestinationRule>,
    targets: &Targets<'_>,
    find: impl Fn(&[Value]) -> Result<Vec<usize>, TrafficError>,
    unconfigured: bool,
) -> Result<Vec<usize>, TrafficError> {
    let Some(list) = vs
        .pointer(&format!("/spec/{kind}"))
        .and_then(Value::as_array)
    else {
        return Ok(Vec::new());
    };
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let indexes = find(list)?;
    for i in &indexes {
        validate_destinations(&list[*i], dr, targets)?;
    }
    if unconfigured && list.len() > 1 {
        let field = if kind == "tls" {
            "tlsRoutes"
        } else {
            "tcpRoutes"
        };
        return Err(TrafficError::InvalidRoute(format!(
            "spec.{kind}[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.{field}"
        )));
    }
    Ok(indexes)
}

/// Ports of a TLS/TCP route's matches and its SNI hosts (deduplicated, sorted).
fn match_ports_and_hosts(route: &Value) -> (Vec<i64>, Vec<String>) {
    let mut ports = Vec::new();
    let mut hosts = Vec::new();
    for m in route
        .get("match")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        ports.push(m.get("port").and_then(Value::as_i64).unwrap_or(0));
        for h in m
            .get("sniHosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            hosts.extend(h.as_str().map(str::to_string));
        }
    }
    ports.sort_unstable();
    ports.dedup();
    hosts.sort();
    hosts.dedup();
    (ports, hosts)
}

/// The route's single port (0 without matches); `None` when its matches name several ports.
fn single_port(ports: &[i64]) -> Option<i64> {
    match ports {
        [] => Some(0),
        [p] => Some(*p),
        _ => None,
    }
}

fn tls_route_indexes(cfg: &[TlsRoute], routes: &[Value]) -> Result<Vec<usize>, TrafficError> {
    if cfg.is_empty() {
        return Ok(vec![0]);
    }
    let mut out = Vec::new();
    for want in cfg {
        let mut want_hosts = want.sni_hosts.clone().unwrap_or_default();
        want_hosts.sort();
        let found: Vec<usize> = routes
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                let (ports, hosts) = match_ports_and_hosts(r);
                single_port(&ports) == Some(want.port.unwrap_or(0)) && hosts == want_hosts
            })
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(TrafficError::InvalidRoute(
                "No matching TLS routes found in the defined Virtual Service.".to_string(),
            ));
        }
        out.extend(found);
    }
    Ok(out)
}

fn tcp_route_indexes(cfg: &[TcpRoute], routes: &[Value]) -> Result<Vec<usize>, TrafficError> {
    if cfg.is_empty() {
        return Ok(vec![0]);
    }
    let mut out = Vec::new();
    for want in cfg {
        let found: Vec<usize> = routes
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                single_port(&match_ports_and_hosts(r).0) == Some(want.port.unwrap_or(0))
            })
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(TrafficError::InvalidRoute(
                "No matching TCP routes found in the defined Virtual Service.".to_string(),
            ));
        }
        out.extend(found);
    }
    Ok(out)
}

/// The destination's host up to the first dot (`svc.ns.svc.cluster.local` → `svc`); "" when
/// the host starts with a dot (upstream `getHost`).
fn short_host(dest: &Value) -> &str {
    let host = dest
        .pointer("/destination/host")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match host.find('.') {
        Some(0) => "",
        Some(i) => &host[..i],
        None => host,
    }
}

fn subset(dest: &Value) -> &str {
    dest.pointer("/destination/subset")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Upstream `validateVirtualServiceRouteDestinations`: a route edited by `setWeight` needs the
/// canary and stable subsets (with a DestinationRule) or Services (without).
fn validate_destinations(
    route: &Value,
    dr: Option<&IstioDestinationRule>,
    t: &Targets<'_>,
) -> Result<(), TrafficError> {
    let dests: &[Value] = route
        .get("route")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let has = |pred: &dyn Fn(&Value) -> bool| dests.iter().any(pred);
    match dr {
        Some(dr) => {
            if !has(&|d| !dr.canary_subset_name.is_empty() && subset(d) == dr.canary_subset_name) {
                return Err(TrafficError::InvalidRoute(format!(
                    "Canary DestinationRule subset '{}' not found in route",
                    dr.canary_subset_name
                )));
            }
            if !has(&|d| !dr.stable_subset_name.is_empty() && subset(d) == dr.stable_subset_name) {
                return Err(TrafficError::InvalidRoute(format!(
                    "Stable DestinationRule subset '{}' not found in route",
                    dr.stable_subset_name
                )));
            }
        }
        None => {
            if !has(&|d| !t.canary_svc.is_empty() && short_host(d) == t.canary_svc) {
                return Err(TrafficError::InvalidRoute(format!(
                    "Canary Service '{}' not found in route",
                    t.canary_svc
                )));
            }
            if !has(&|d| !t.stable_svc.is_empty() && short_host(d) == t.stable_svc) {
                return Err(TrafficError::InvalidRoute(format!(
                    "Stable Service '{}' not found in route",
                    t.stable_svc
                )));
            }
        }
    }
    Ok(())
}

/// Sets one route's destination weights (upstream `processRoutes`): canary `W`; experiment
/// Services their weight (added when missing); subsets in `additionalSubsetNames` untouched;
/// stable the rest of 100, never negative; any other destination removed.
fn weigh_route(route: &mut Value, t: &Targets<'_>, weight: i32, additional: &[WeightDestination]) {
    let Some(dests) = route.get_mut("route").and_then(Value::as_array_mut) else {
        return;
    };
    let untouched: i64 = dests
        .iter()
        .filter(|d| {
            t.additional_subsets
                .iter()
                .any(|s| !s.is_empty() && s == subset(d))
        })
        .map(|d| d.get("weight").and_then(Value::as_i64).unwrap_or(0))
        .sum();
    let experiments: i64 = additional.iter().map(|d| i64::from(d.weight)).sum();
    let stable_weight = (100 - i64::from(weight) - experiments - untouched).max(0);
    let mut pending: BTreeMap<&str, &WeightDestination> = additional
        .iter()
        .map(|d| (d.service_name.as_str(), d))
        .collect();
    let mut kept = Vec::with_capacity(dests.len());
    for mut dest in dests.drain(..) {
        let host = short_host(&dest).to_string();
        let sub = subset(&dest).to_string();
        let is = |svc: &str, set: &str| {
            (!svc.is_empty() && host == svc) || (!sub.is_empty() && sub == set)
        };
        if host.is_empty() {
            kept.push(dest);
        } else if is(t.canary_svc, t.canary_subset) {
            set_at(&mut dest, &["weight"], json!(weight));
            kept.push(dest);
        } else if is(t.stable_svc, t.stable_subset) {
            set_at(&mut dest, &["weight"], json!(stable_weight));
            kept.push(dest);
        } else if t
            .additional_subsets
            .iter()
            .any(|s| !s.is_empty() && *s == sub)
        {
            kept.push(dest);
        } else if let Some(exp) = pending.remove(host.as_str()) {
            set_at(&mut dest, &["weight"], json!(exp.weight));
            kept.push(dest);
        }
    }
    for exp in additional {
        if pending.remove(exp.service_name.as_str()).is_some() {
            kept.push(json!({"destination": {"host": exp.service_name}, "weight": exp.weight}));
        }
    }
    *dests = kept;
}

/// The DestinationRule with its canary and stable subsets labelled with the hashes (upstream
/// `UpdateHash`): experiment subsets labelled or added, `additionalSubsetNames` kept, any
/// other subset dropped, and the managed-by annotation set.
pub fn destination_rule(
    rollout: &Rollout,
    cfg: &IstioDestinationRule,
    live: &Value,
    state: &super::TrafficState,
) -> Result<Value, TrafficError> {
    let mut dr = live.clone();
    set_at(
        &mut dr,
        &["metadata", "annotations", annotation::MANAGED_BY_ROLLOUTS],
        Value::from(rollout_name(rollout)),
    );
    let mut pending: BTreeMap<&str, &WeightDestination> = state
        .additional_destinations
        .iter()
        .map(|d| (d.service_name.as_str(), d))
        .collect();
    let additional = cfg.additional_subset_names.as_deref().unwrap_or_default();
    let mut subsets = Vec::new();
    for mut subset in dr
        .pointer("/spec/subsets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let name = subset
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let hash = if name == cfg.canary_subset_name {
            Some(state.canary_hash.as_str())
        } else if name == cfg.stable_subset_name {
            Some(state.stable_hash.as_str())
        } else if let Some(dest) = pending.get(name.as_str()) {
            let hash = dest.pod_template_hash.as_str();
            if !hash.is_empty() {
                pending.remove(name.as_str());
            }
            Some(hash)
        } else if additional.contains(&name) {
            None
        } else {
            continue;
        };
        if let Some(hash) = hash {
            label_subset(&mut subset, hash);
        }
        subsets.push(subset);
    }
    for dest in &state.additional_destinations {
        if pending.remove(dest.service_name.as_str()).is_some() {
            subsets.push(json!({
                "name": dest.service_name,
                "labels": {label::POD_TEMPLATE_HASH: dest.pod_template_hash},
            }));
        }
    }
    set_at(&mut dr, &["spec", "subsets"], Value::Array(subsets));
    Ok(dr)
}

/// Sets (or, for an empty hash, removes) the pod-template-hash label of a subset.
fn label_subset(subset: &mut Value, hash: &str) {
    if hash.is_empty() {
        if let Some(labels) = subset.get_mut("labels").and_then(Value::as_object_mut) {
            labels.remove(label::POD_TEMPLATE_HASH);
        }
    } else {
        set_at(
            subset,
            &["labels", label::POD_TEMPLATE_HASH],
            Value::from(hash),
        );
    }
}
