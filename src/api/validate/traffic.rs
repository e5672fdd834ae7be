//! Rules 21–22 of spec §9: the Ingresses of an nginx/ALB canary must exist and route to the
//! stable (or ALB root) service; the Istio VirtualServices must exist and hold routes that send
//! traffic to both the stable and the canary service (or DestinationRule subsets). Texts follow
//! upstream's `validation_references.go` and `rollout/trafficrouting/istio`.
//!
//! A route destination's `host` matches a Service when it is the Service name or a longer DNS
//! name starting with it (`stable.ns.svc.cluster.local`).

use super::RuleViolation;
use std::collections::BTreeSet;

use serde_json::Value;

use crate::api::canary::CanaryStrategy;
use crate::api::rollout::Rollout;
use crate::api::traffic_routing::{
    IstioDestinationRule, IstioVirtualService, RolloutTrafficRouting,
};

use super::references::{References, rollout_ns, tr_path};
use super::{BadValue, ErrorList, FieldError, FieldPath};
use crate::api::go_quote::go_quote;

/// Go's `%#v` of a `[]string`.
fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn istio_path() -> FieldPath {
    FieldPath::new("spec")
        .child("strategy")
        .child("canary")
        .child("trafficRouting")
        .child("istio")
}

/// `name` or `name.namespace`, as upstream's `GetVirtualServiceNamespaceName` splits it.
fn vs_namespace_name(name: &str) -> (Option<&str>, &str) {
    match name.split_once('.') {
        Some((n, ns)) => (Some(ns), n),
        None => (None, name),
    }
}

fn traffic_routing(rollout: &Rollout) -> Option<&RolloutTrafficRouting> {
    rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.traffic_routing.as_ref())
}

/// The Rollout's VirtualService entries and the path errors about them are reported at.
fn configured_virtual_services(
    rollout: &Rollout,
) -> Option<(Vec<&IstioVirtualService>, FieldPath)> {
    let istio = traffic_routing(rollout)?.istio.as_ref()?;
    match &istio.virtual_services {
        Some(list) if !list.is_empty() => Some((
            list.iter().collect(),
            istio_path().child("virtualServices").child("name"),
        )),
        _ => Some((
            istio.virtual_service.iter().collect(),
            istio_path().child("virtualService").child("name"),
        )),
    }
}

/// The VirtualServices the Rollout names: `(namespace, name)`, the namespace `None` for the
/// Rollout's own (`name.namespace` names another).
pub fn virtual_service_refs(rollout: &Rollout) -> Vec<(Option<&str>, &str)> {
    configured_virtual_services(rollout)
        .map(|(entries, _)| {
            entries
                .into_iter()
                .map(|entry| vs_namespace_name(&entry.name))
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's `ValidateRolloutVirtualServicesConfig` and `GetReferencedVirtualServices`: the
/// VirtualServices found; configuration and look-up errors go to `errs`.
pub fn lookup_virtual_services<'a>(
    rollout: &Rollout,
    refs: &'a References,
    errs: &mut ErrorList,
) -> Vec<&'a Value> {
    let mut found = Vec::new();
    let Some(istio) = traffic_routing(rollout).and_then(|t| t.istio.as_ref()) else {
        return found;
    };
    let multiple = istio
        .virtual_services
        .as_ref()
        .is_some_and(|l| !l.is_empty());
    if multiple == istio.virtual_service.is_some() {
        errs.push(FieldError::internal(
            istio_path(),
            "either VirtualService or VirtualServices must be configured",
        ));
        return found;
    }
    let Some((entries, path)) = configured_virtual_services(rollout) else {
        return found;
    };
    for entry in entries {
        let (ns, name) = vs_namespace_name(&entry.name);
        let ns = ns.or(rollout.metadata.namespace.as_deref());
        match refs.virtual_service(ns, name) {
            Some(vs) => found.push(vs),
            None if refs.known.virtual_services => {
                errs.push(FieldError::invalid(
                    path.clone(),
                    BadValue::str(name),
                    format!("virtualservices.networking.istio.io \"{name}\" not found"),
                ));
                return found;
            }
            None => {}
        }
    }
    found
}

fn host_matches(host: &str, service: &str) -> bool {
    !service.is_empty()
        && (host == service
            || host
                .strip_prefix(service)
                .is_some_and(|rest| rest.starts_with('.')))
}

/// Upstream's `validateVirtualServiceRouteDestinations`.
fn validate_destinations(
    route: Option<&Value>,
    stable: &str,
    canary: &str,
    rule: Option<&IstioDestinationRule>,
) -> Result<(), RuleViolation> {
    let dests = route
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let field = |d: &Value, f: &str| {
        d.pointer(&format!("/destination/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let has_host = |svc: &str| dests.iter().any(|d| host_matches(&field(d, "host"), svc));
    let has_subset = |s: &str| !s.is_empty() && dests.iter().any(|d| field(d, "subset") == s);
    match rule {
        Some(dr) => {
            if !has_subset(&dr.canary_subset_name) {
                return Err(RuleViolation(format!(
                    "Canary DestinationRule subset '{}' not found in route",
                    dr.canary_subset_name
                )));
            }
            if !has_subset(&dr.stable_subset_name) {
                return Err(RuleViolation(format!(
                    "Stable DestinationRule subset '{}' not found in route",
                    dr.stable_subset_name
                )));
            }
        }
        None => {
            if !has_host(canary) {
                return Err(RuleViolation(format!(
                    "Canary Service '{canary}' not found in route"
                )));
            }
            if !has_host(stable) {
                return Err(RuleViolation(format!(
                    "Stable Service '{stable}' not found in route"
                )));
            }
        }
    }
    Ok(())
}

/// The (stable, canary) Services Istio routes name (upstream `GetStableAndCanaryServices` with
/// ping-pong not preferred): the ping and pong Services, by `status.canary.stablePingPong`,
/// only when neither stableService nor canaryService is set.
fn istio_services(rollout: &Rollout) -> (String, String) {
    let Some(canary) = rollout.spec.strategy.canary.as_ref() else {
        return (String::new(), String::new());
    };
    let stable = canary.stable_service.clone().unwrap_or_default();
    let canary_svc = canary.canary_service.clone().unwrap_or_default();
    match &canary.ping_pong {
        Some(pp) if stable.is_empty() && canary_svc.is_empty() => {
            let stable_is_ping = rollout
                .status
                .as_ref()
                .is_some_and(|s| s.canary.stable_ping_pong == crate::api::consts::ping_pong::PING);
            if stable_is_ping {
                (pp.ping_service.clone(), pp.pong_service.clone())
            } else {
                (pp.pong_service.clone(), pp.ping_service.clone())
            }
        }
        _ => (stable, canary_svc),
    }
}

struct RouteCtx<'a> {
    stable: &'a str,
    canary: &'a str,
    rule: Option<&'a IstioDestinationRule>,
}

fn validate_http_routes(
    ctx: &RouteCtx<'_>,
    tr: &RolloutTrafficRouting,
    names: &[String],
    routes: &[Value],
) -> Result<(), RuleViolation> {
    let name_of = |r: &Value| {
        r.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let indexes: Vec<usize> = if names.is_empty() {
        routes
            .iter()
            .position(|r| name_of(r).is_empty())
            .into_iter()
            .collect()
    } else {
        let mut out = Vec::new();
        for n in names {
            match routes.iter().position(|r| &name_of(r) == n) {
                Some(i) => out.push(i),
                None => {
                    return Err(RuleViolation(format!(
                        "HTTP Route '{n}' is not found in the defined Virtual Service."
                    )));
                }
            }
        }
        out
    };
    for i in indexes {
        validate_destinations(routes[i].get("route"), ctx.stable, ctx.canary, ctx.rule)?;
    }
    let managed: BTreeSet<&str> = tr
        .managed_routes
        .iter()
        .flatten()
        .map(|r| r.name.as_str())
        .collect();
    let unmanaged = routes
        .iter()
        .filter(|r| !managed.contains(name_of(r).as_str()))
        .count();
    if names.is_empty() && unmanaged > 1 {
        return Err(RuleViolation("spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes".to_string()));
    }
    Ok(())
}

/// The single port of a TLS/TCP route's matches (0 when none), `None` when several differ.
fn route_port(route: &Value) -> Option<i64> {
    let ports: BTreeSet<i64> = route
        .get("match")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| m.get("port").and_then(Value::as_i64).unwrap_or(0))
        .collect();
    match ports.len() {
        0 => Some(0),
        1 => ports.first().copied(),
        _ => None,
    }
}

fn route_sni_hosts(route: &Value) -> BTreeSet<String> {
    route
        .get("match")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|m| {
            m.get("sniHosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|h| h.as_str().map(str::to_string))
        .collect()
}

fn validate_port_routes(
    ctx: &RouteCtx<'_>,
    kind: &str,
    wanted: &[(i64, Option<BTreeSet<String>>)],
    routes: &[Value],
) -> Result<(), RuleViolation> {
    let indexes: Vec<usize> = if wanted.is_empty() {
        if routes.is_empty() { vec![] } else { vec![0] }
    } else {
        let mut out = Vec::new();
        for (port, hosts) in wanted {
            let matching: Vec<usize> = routes
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    route_port(r) == Some(*port)
                        && hosts.as_ref().is_none_or(|h| *h == route_sni_hosts(r))
                })
                .map(|(i, _)| i)
                .collect();
            if matching.is_empty() {
                return Err(RuleViolation(format!(
                    "No matching {kind} routes found in the defined Virtual Service."
                )));
            }
            out.extend(matching);
        }
        out
    };
    for i in indexes {
        validate_destinations(routes[i].get("route"), ctx.stable, ctx.canary, ctx.rule)?;
    }
    if wanted.is_empty() && routes.len() > 1 {
        let (field, cfg) = if kind == "TLS" {
            ("tls", "tlsRoutes")
        } else {
            ("tcp", "tcpRoutes")
        };
        return Err(RuleViolation(format!(
            "spec.{field}[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.{cfg}"
        )));
    }
    Ok(())
}

/// Upstream's `ValidateVirtualService` for one VirtualService object found for the Rollout.
pub fn validate_virtual_service(rollout: &Rollout, vs: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(canary) = rollout.spec.strategy.canary.as_ref() else {
        return errs;
    };
    let Some(tr) = canary.traffic_routing.as_ref() else {
        return errs;
    };
    let Some(istio) = tr.istio.as_ref() else {
        errs.push(FieldError::invalid(
            istio_path(),
            BadValue::str(rollout.metadata.name.as_deref().unwrap_or("")),
            "Rollout object is not configured with Istio traffic routing",
        ));
        return errs;
    };
    let Some((entries, path)) = configured_virtual_services(rollout) else {
        return errs;
    };
    let vs_name = vs
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (stable, canary_svc) = istio_services(rollout);
    let ctx = RouteCtx {
        stable: &stable,
        canary: &canary_svc,
        rule: istio.destination_rule.as_ref(),
    };
    let Some(entry) = entries
        .into_iter()
        .find(|e| vs_namespace_name(&e.name).1 == vs_name)
    else {
        return errs;
    };
    let list = |key: &str| {
        vs.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
    };
    let (http, tls, tcp) = (list("http"), list("tls"), list("tcp"));
    let invalid = |msg: String| FieldError::invalid(path.clone(), BadValue::str(vs_name), msg);
    if http.is_none() && tls.is_none() && tcp.is_none() {
        errs.push(invalid(
            "Unable to get any of the HTTP, TCP or TLS routes for the Istio VirtualService"
                .to_string(),
        ));
    }
    if let Some(routes) = http
        && let Err(e) =
            validate_http_routes(&ctx, tr, entry.routes.as_deref().unwrap_or(&[]), routes)
    {
        errs.push(invalid(format!(
            "Istio VirtualService has invalid HTTP routes. Error: {e}"
        )));
    }
    if let Some(routes) = tls {
        let wanted: Vec<(i64, Option<BTreeSet<String>>)> = entry
            .tls_routes
            .iter()
            .flatten()
            .map(|r| {
                let hosts: BTreeSet<String> = r.sni_hosts.iter().flatten().cloned().collect();
                (r.port.unwrap_or(0), Some(hosts))
            })
            .collect();
        if let Err(e) = validate_port_routes(&ctx, "TLS", &wanted, routes) {
            errs.push(invalid(format!(
                "Istio VirtualService has invalid TLS routes. Error: {e}"
            )));
        }
    }
    if let Some(routes) = tcp {
        let wanted: Vec<(i64, Option<BTreeSet<String>>)> = entry
            .tcp_routes
            .iter()
            .flatten()
            .map(|r| (r.port.unwrap_or(0), None))
            .collect();
        if let Err(e) = validate_port_routes(&ctx, "TCP", &wanted, routes) {
            errs.push(invalid(format!(
                "Istio VirtualService has invalid TCP routes. Error: {e}"
            )));
        }
    }
    errs
}

/// Upstream's `HasRuleWithService` for v1 (`backend.service.name`) and v1beta1
/// (`backend.serviceName`) Ingresses.
pub fn ingress_has_rule_with_service(ingress: &Value, service: &str) -> bool {
    let rules = ingress.pointer("/spec/rules").and_then(Value::as_array);
    rules.into_iter().flatten().any(|rule| {
        let paths = rule.pointer("/http/paths").and_then(Value::as_array);
        paths.into_iter().flatten().any(|p| {
            let v1 = p.pointer("/backend/service/name").and_then(Value::as_str);
            let v1beta1 = p.pointer("/backend/serviceName").and_then(Value::as_str);
            v1 == Some(service) || v1beta1 == Some(service)
        })
    })
}

pub(super) fn lookup_ingresses<'a>(
    rollout: &Rollout,
    refs: &'a References,
    errs: &mut ErrorList,
) -> Vec<&'a Value> {
    let ns = rollout_ns(rollout);
    let mut found = Vec::new();
    let Some(tr) = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.traffic_routing.as_ref())
    else {
        return found;
    };
    let (router, list_field, single_field, list, single) = if let Some(alb) = &tr.alb {
        (
            "alb",
            "ingresses",
            "ingress",
            alb.ingresses.as_ref(),
            alb.ingress.as_deref(),
        )
    } else if let Some(nginx) = &tr.nginx {
        // Upstream spells the list's path `StableIngresses` here.
        (
            "nginx",
            "StableIngresses",
            "stableIngress",
            nginx.stable_ingresses.as_ref(),
            nginx.stable_ingress.as_deref(),
        )
    } else {
        return found;
    };
    let not_found = |name: &str| format!("ingress.networking.k8s.io \"{name}\" not found");
    match list {
        Some(names) => {
            for name in names {
                match refs.ingress(ns, name) {
                    Some(i) => found.push(i),
                    None if refs.known.ingresses => {
                        errs.push(FieldError::invalid(
                            tr_path().child(router).child(list_field),
                            BadValue::Go(go_string_slice(names)),
                            not_found(name),
                        ));
                        break;
                    }
                    None => {}
                }
            }
        }
        None => {
            let name = single.unwrap_or("");
            match refs.ingress(ns, name) {
                Some(i) => found.push(i),
                None if refs.known.ingresses && !name.is_empty() => errs.push(FieldError::invalid(
                    tr_path().child(router).child(single_field),
                    BadValue::str(name),
                    not_found(name),
                )),
                None => {}
            }
        }
    }
    found
}

/// Upstream's `ValidateIngress`: the Ingress must route to the stable (or ALB root) service.
pub(super) fn validate_ingress(canary: &CanaryStrategy, ingress: &Value) -> ErrorList {
    let Some(tr) = &canary.traffic_routing else {
        return ErrorList::new();
    };
    let ing_name = ingress
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let stable = canary.stable_service.as_deref().unwrap_or("");
    // As upstream: the nginx rules apply to an Ingress nginx names, the ALB ones otherwise
    // (a Rollout may configure both routers).
    let nginx = tr.nginx.as_ref().filter(|n| {
        n.stable_ingress.as_deref() == Some(ing_name)
            || n.stable_ingresses.iter().flatten().any(|i| i == ing_name)
    });
    let (path, service, name) = if let Some(nginx) = nginx {
        let in_list = nginx
            .stable_ingresses
            .iter()
            .flatten()
            .any(|n| n == ing_name);
        if in_list {
            (
                tr_path().child("nginx").child("stableIngresses"),
                stable,
                ing_name,
            )
        } else {
            (
                tr_path().child("nginx").child("stableIngress"),
                stable,
                nginx.stable_ingress.as_deref().unwrap_or(""),
            )
        }
    } else if let Some(alb) = &tr.alb {
        let service = alb
            .root_service
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(stable);
        let in_list = alb.ingresses.iter().flatten().any(|n| n == ing_name);
        if in_list {
            (tr_path().child("alb").child("ingresses"), service, ing_name)
        } else {
            (
                tr_path().child("alb").child("ingress"),
                service,
                alb.ingress.as_deref().unwrap_or(""),
            )
        }
    } else {
        return ErrorList::new();
    };
    if ingress_has_rule_with_service(ingress, service) {
        return ErrorList::new();
    }
    vec![FieldError::invalid(
        path,
        BadValue::str(name),
        format!("ingress `{ing_name}` has no rules using service {service} backend"),
    )]
}
