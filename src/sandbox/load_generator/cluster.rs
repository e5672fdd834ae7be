//! The split as the API describes it, read the way ingress-nginx reads it: an Ingress names a
//! Service and a port, the Service's EndpointSlices (label `kubernetes.io/service-name`) list
//! its endpoints, and only the `ready` ones get requests; a canary Ingress for the same host
//! and path adds the alternative backend and the routing rules.
//!
//! Nothing here knows about Rollouts: whatever Services an Ingress names (stable/canary, a
//! blue-green active Service whose selector moves, an Experiment's Services) are followed
//! through their slices, so traffic goes exactly where the Services' selectors point.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, ServiceBackendPort};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::load::{Split, WeightedBackend};
use super::routing::{CanaryRules, DEFAULT_ANNOTATION_PREFIX, go_parse_bool};

/// The label linking an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Which objects make up a canary split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTargets {
    /// Namespace of the Services, Pods and Ingresses.
    pub namespace: String,
    /// The Service the stable side routes to (Argo's `stableService`); with
    /// [`SplitTargets::from_ingress`] it is read from the stable Ingress instead.
    pub stable_service: String,
    /// The Service the canary side routes to (Argo's `canaryService`); with
    /// [`SplitTargets::from_ingress`] it is read from the canary Ingress instead.
    pub canary_service: String,
    /// The canary Ingress (Argo names it `<rollout>-<stableIngress>-canary`); `None` or absent
    /// means all traffic goes to stable (with a stable Ingress: the canary Ingress for the
    /// same host and path, if any, is found as ingress-nginx finds it).
    pub canary_ingress: Option<String>,
    /// The stable Ingress, when the Services are to be read from the Ingresses' backends.
    pub stable_ingress: Option<String>,
    /// The nginx annotation prefix (Argo's `annotationPrefix`).
    pub annotation_prefix: String,
    /// An SMI TrafficSplit (`split.smi-spec.io/v1alpha1`) whose weighted `backends` decide
    /// instead, when it exists (Argo's `trafficRouting.smi.trafficSplitName`).
    pub traffic_split: Option<String>,
    /// An Istio VirtualService (`networking.istio.io/v1alpha3`) and the name of its HTTP route
    /// (`None`: the first) whose destination weights decide instead, when it exists (Argo's
    /// `trafficRouting.istio.virtualService`, host-level splitting).
    pub virtual_service: Option<(String, Option<String>)>,
    /// An AWS Load Balancer Controller Ingress and the Service of its forward action (Argo's
    /// `trafficRouting.alb.ingress` and `rootService`, else `stableService`), whose
    /// `alb.ingress.kubernetes.io/actions.<service>` target-group weights decide instead, when
    /// the annotation exists.
    pub alb_action: Option<(String, String)>,
}

impl SplitTargets {
    /// Targets naming the two Services, with the default annotation prefix and no canary
    /// Ingress yet. Each Service's first port is the one requested.
    pub fn new(namespace: &str, stable_service: &str, canary_service: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            stable_service: stable_service.to_string(),
            canary_service: canary_service.to_string(),
            canary_ingress: None,
            stable_ingress: None,
            annotation_prefix: DEFAULT_ANNOTATION_PREFIX.to_string(),
            traffic_split: None,
            virtual_service: None,
            alb_action: None,
        }
    }

    /// Targets read from an Ingress, as ingress-nginx serves it: its first rule's first path
    /// (or its default backend) names the stable Service and port, and a canary Ingress
    /// (`<prefix>/canary: "true"`) with the same host and path names the canary Service.
    pub fn from_ingress(namespace: &str, stable_ingress: &str) -> Self {
        Self {
            stable_ingress: Some(stable_ingress.to_string()),
            ..Self::new(namespace, "", "")
        }
    }

    /// The same targets split by the TrafficSplit `name` once it exists.
    pub fn with_traffic_split(mut self, name: &str) -> Self {
        self.traffic_split = Some(name.to_string());
        self
    }

    /// The same targets split by the HTTP route `route` (`None`: the first) of the Istio
    /// VirtualService `name` once it exists.
    pub fn with_virtual_service(mut self, name: &str, route: Option<&str>) -> Self {
        self.virtual_service = Some((name.to_string(), route.map(str::to_string)));
        self
    }

    /// The same targets split by the forward action annotation for `service` on the ALB
    /// Ingress `ingress` once it is set.
    pub fn with_alb_action(mut self, ingress: &str, service: &str) -> Self {
        self.alb_action = Some((ingress.to_string(), service.to_string()));
        self
    }

    /// The same targets with a canary Ingress.
    pub fn with_canary_ingress(mut self, name: &str) -> Self {
        self.canary_ingress = Some(name.to_string());
        self
    }
}

/// A Service and the port an Ingress backend names (`None`: the Service's first port).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendRef {
    /// The Service's name.
    pub service: String,
    /// The Service port, by number or name.
    pub port: Option<ServiceBackendPort>,
}

/// The endpoints a backend gets requests on, from the Service's slices: of every `ready`
/// endpoint (an unset `ready` counts as ready, as in ingress-nginx), its addresses with the
/// slice port named as the Service port is. Sorted, without duplicates.
pub fn ready_endpoints(
    service: &Service,
    port: Option<&ServiceBackendPort>,
    slices: &[EndpointSlice],
) -> Vec<SocketAddr> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let chosen = match port {
        None => ports.first(),
        Some(want) => ports.iter().find(|p| {
            want.number.is_some_and(|n| n == p.port)
                || want
                    .name
                    .as_deref()
                    .is_some_and(|n| !n.is_empty() && Some(n) == p.name.as_deref())
        }),
    };
    let Some(chosen) = chosen else {
        return Vec::new();
    };
    let port_name = chosen.name.clone().unwrap_or_default();
    let protocol = chosen.protocol.clone().unwrap_or_else(|| "TCP".into());
    let mut out: Vec<SocketAddr> = Vec::new();
    for slice in slices {
        let Some(slice_port) = slice.ports.iter().flatten().find(|p| {
            p.name.clone().unwrap_or_default() == port_name
                && p.protocol.clone().unwrap_or_else(|| "TCP".into()) == protocol
        }) else {
            continue;
        };
        let Some(number) = slice_port.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let ready = endpoint.conditions.as_ref().and_then(|c| c.ready);
            if ready == Some(false) {
                continue;
            }
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<IpAddr>() {
                    out.push(SocketAddr::new(ip, number));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The ready endpoints of a Service's port (`None`: its first), from its EndpointSlices. A
/// missing Service has none; so has one whose slices are not written yet.
pub async fn backend_endpoints(
    client: &Client,
    namespace: &str,
    backend: &BackendRef,
) -> Result<Vec<SocketAddr>, kube::Error> {
    if backend.service.is_empty() {
        return Ok(Vec::new());
    }
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let Some(svc) = services.get_opt(&backend.service).await? else {
        return Ok(Vec::new());
    };
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let slices = slices
        .list(&ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={}", backend.service)))
        .await?
        .items;
    Ok(ready_endpoints(&svc, backend.port.as_ref(), &slices))
}

/// The ready endpoints of a Service's first port, from its EndpointSlices.
pub async fn service_endpoints(
    client: &Client,
    namespace: &str,
    service: &str,
) -> Result<Vec<SocketAddr>, kube::Error> {
    let backend = BackendRef {
        service: service.to_string(),
        port: None,
    };
    backend_endpoints(client, namespace, &backend).await
}

fn service_backend(backend: &IngressBackend) -> Option<BackendRef> {
    let svc = backend.service.as_ref()?;
    Some(BackendRef {
        service: svc.name.clone(),
        port: svc.port.clone(),
    })
}

/// The host, path and backend an Ingress routes first: its first rule's first path, else its
/// default backend (host and path empty).
pub fn ingress_route(ingress: &Ingress) -> Option<(String, String, BackendRef)> {
    let spec = ingress.spec.as_ref()?;
    for rule in spec.rules.iter().flatten() {
        let host = rule.host.clone().unwrap_or_default();
        for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
            if let Some(backend) = service_backend(&path.backend) {
                return Some((host, path.path.clone().unwrap_or_default(), backend));
            }
        }
    }
    let backend = service_backend(spec.default_backend.as_ref()?)?;
    Some((String::new(), String::new(), backend))
}

/// The backend a canary Ingress adds for `host` and `path` (its rule for them, else its
/// default backend for an Ingress routed by its default backend).
fn canary_backend(canary: &Ingress, host: &str, path: &str) -> Option<BackendRef> {
    let spec = canary.spec.as_ref()?;
    for rule in spec.rules.iter().flatten() {
        if rule.host.as_deref().unwrap_or_default() != host {
            continue;
        }
        for p in rule.http.iter().flat_map(|h| h.paths.iter()) {
            if p.path.as_deref().unwrap_or_default() == path {
                return service_backend(&p.backend);
            }
        }
    }
    if host.is_empty() && path.is_empty() {
        return service_backend(spec.default_backend.as_ref()?);
    }
    None
}

fn canary_rules(ingress: &Ingress, prefix: &str) -> Option<CanaryRules> {
    let annotations: BTreeMap<String, String> =
        ingress.metadata.annotations.clone().unwrap_or_default();
    CanaryRules::from_annotations(&annotations, prefix)
}

fn is_canary(ingress: &Ingress, prefix: &str) -> bool {
    ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&format!("{prefix}/canary")))
        .is_some_and(|v| go_parse_bool(v))
}

/// Reads the split through the stable Ingress: its backend, then the canary Ingress (the named
/// one, else the first by name that is a canary for the same host and path).
async fn resolve_ingress_split(
    client: &Client,
    targets: &SplitTargets,
    stable_ingress: &str,
) -> Result<Split, kube::Error> {
    let ns = &targets.namespace;
    let prefix = &targets.annotation_prefix;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let Some(stable) = ingresses.get_opt(stable_ingress).await? else {
        return Ok(Split::default());
    };
    let Some((host, path, stable_backend)) = ingress_route(&stable) else {
        return Ok(Split::default());
    };
    let canary = match &targets.canary_ingress {
        Some(name) => ingresses.get_opt(name).await?,
        None => {
            let mut all = ingresses.list(&ListParams::default()).await?.items;
            all.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            all.into_iter().find(|i| {
                i.metadata.name.as_deref() != Some(stable_ingress)
                    && is_canary(i, prefix)
                    && canary_backend(i, &host, &path).is_some()
            })
        }
    };
    let canary = canary
        .filter(|c| is_canary(c, prefix))
        .and_then(|c| Some((canary_backend(&c, &host, &path)?, canary_rules(&c, prefix)?)));
    let stable = backend_endpoints(client, ns, &stable_backend).await?;
    let (canary, rules) = match canary {
        Some((backend, rules)) => (backend_endpoints(client, ns, &backend).await?, Some(rules)),
        None => (Vec::new(), None),
    };
    Ok(Split {
        stable,
        canary,
        rules,
        weighted: Vec::new(),
    })
}

/// The weighted `(service, weight)` backends of a TrafficSplit's spec (pure); entries without
/// a service are skipped. A weight is an integer (v1alpha2 on) or an integer quantity string
/// (v1alpha1's `resource.Quantity`, `"5"`); anything else counts as 0.
pub fn traffic_split_backends(spec: &serde_json::Value) -> Vec<(String, i64)> {
    spec.get("backends")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let service = b.get("service")?.as_str()?.to_string();
            let weight = match b.get("weight") {
                Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
                Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
                _ => 0,
            };
            Some((service, weight))
        })
        .collect()
}

/// The `(service, weight)` destinations of a VirtualService's HTTP route `route` (`None`: the
/// first) (pure). A host is a Service name, possibly qualified (`svc.ns.svc.cluster.local`:
/// the part before the first dot); a missing weight is 0, or 100 for a route's only
/// destination, as Istio reads it.
pub fn virtual_service_backends(
    spec: &serde_json::Value,
    route: Option<&str>,
) -> Vec<(String, i64)> {
    let routes = spec
        .get("http")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let chosen = match route {
        Some(name) => routes
            .iter()
            .find(|r| r.get("name").and_then(serde_json::Value::as_str) == Some(name)),
        None => routes.first(),
    };
    let destinations = chosen
        .and_then(|r| r.get("route"))
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let only = destinations.len() == 1;
    destinations
        .iter()
        .filter_map(|d| {
            let host = d.get("destination")?.get("host")?.as_str()?;
            let service = host.split('.').next().unwrap_or(host).to_string();
            let weight = d
                .get("weight")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(if only { 100 } else { 0 });
            Some((service, weight))
        })
        .collect()
}

/// The weighted `(service, weight)` target groups of an ALB forward action annotation (pure),
/// as the AWS Load Balancer Controller reads `{"Type":"forward","ForwardConfig":
/// {"TargetGroups":[{"ServiceName":…,"ServicePort":…,"Weight":…}]}}`; groups without a
/// Service (an ARN) are skipped, a missing weight is 0. Empty when the text is not an action.
pub fn alb_action_backends(action: &str) -> Vec<(String, i64)> {
    let Ok(action) = serde_json::from_str::<serde_json::Value>(action) else {
        return Vec::new();
    };
    action
        .pointer("/ForwardConfig/TargetGroups")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let service = g.get("ServiceName")?.as_str()?.to_string();
            let weight = g
                .get("Weight")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            Some((service, weight))
        })
        .collect()
}

/// The ALB Ingress's forward action for `service` with ready endpoints; `None` when the
/// Ingress or its annotation is absent.
async fn resolve_alb_action(
    client: &Client,
    namespace: &str,
    ingress: &str,
    service: &str,
) -> Result<Option<Vec<WeightedBackend>>, kube::Error> {
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let Some(found) = ingresses.get_opt(ingress).await? else {
        return Ok(None);
    };
    let key = format!(
        "{}/actions.{service}",
        crate::api::defaults::DEFAULT_ALB_ANNOTATION_PREFIX
    );
    let Some(action) = found
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&key))
    else {
        return Ok(None);
    };
    let backends = alb_action_backends(action);
    Ok(Some(weighted_endpoints(client, namespace, backends).await?))
}

/// A namespaced object of a kind that may not be served (a foreign CRD); `None` when the
/// object or the kind is absent.
async fn get_foreign(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
    name: &str,
) -> Result<Option<DynamicObject>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    match api.get_opt(name).await {
        Ok(found) => Ok(found),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Each `(service, weight)` with the Service's ready endpoints.
async fn weighted_endpoints(
    client: &Client,
    namespace: &str,
    backends: Vec<(String, i64)>,
) -> Result<Vec<WeightedBackend>, kube::Error> {
    let mut out = Vec::new();
    for (service, weight) in backends {
        let endpoints = service_endpoints(client, namespace, &service).await?;
        out.push(WeightedBackend {
            service,
            weight,
            endpoints,
        });
    }
    Ok(out)
}

/// The VirtualService's route destinations with their ready endpoints; `None` when absent.
async fn resolve_virtual_service(
    client: &Client,
    namespace: &str,
    name: &str,
    route: Option<&str>,
) -> Result<Option<Vec<WeightedBackend>>, kube::Error> {
    let resource = ApiResource {
        group: "networking.istio.io".into(),
        version: "v1alpha3".into(),
        api_version: "networking.istio.io/v1alpha3".into(),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
    };
    let Some(vs) = get_foreign(client, namespace, &resource, name).await? else {
        return Ok(None);
    };
    let spec = vs.data.get("spec").cloned().unwrap_or_default();
    let backends = virtual_service_backends(&spec, route);
    Ok(Some(weighted_endpoints(client, namespace, backends).await?))
}

/// The TrafficSplit `name`'s backends with their ready endpoints; `None` when it is absent.
async fn resolve_traffic_split(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Vec<WeightedBackend>>, kube::Error> {
    let resource = ApiResource {
        group: "split.smi-spec.io".into(),
        version: "v1alpha1".into(),
        api_version: "split.smi-spec.io/v1alpha1".into(),
        kind: "TrafficSplit".into(),
        plural: "trafficsplits".into(),
    };
    let Some(split) = get_foreign(client, namespace, &resource, name).await? else {
        return Ok(None);
    };
    let spec = split.data.get("spec").cloned().unwrap_or_default();
    let backends = traffic_split_backends(&spec);
    Ok(Some(weighted_endpoints(client, namespace, backends).await?))
}

/// Reads the current split from the API.
pub async fn resolve_split(client: &Client, targets: &SplitTargets) -> Result<Split, kube::Error> {
    if let Some(name) = &targets.traffic_split
        && let Some(weighted) = resolve_traffic_split(client, &targets.namespace, name).await?
    {
        return Ok(Split {
            weighted,
            ..Split::default()
        });
    }
    if let Some((name, route)) = &targets.virtual_service
        && let Some(weighted) =
            resolve_virtual_service(client, &targets.namespace, name, route.as_deref()).await?
    {
        return Ok(Split {
            weighted,
            ..Split::default()
        });
    }
    if let Some((ingress, service)) = &targets.alb_action
        && let Some(weighted) =
            resolve_alb_action(client, &targets.namespace, ingress, service).await?
    {
        return Ok(Split {
            weighted,
            ..Split::default()
        });
    }
    if let Some(stable_ingress) = &targets.stable_ingress {
        return resolve_ingress_split(client, targets, stable_ingress).await;
    }
    let stable = service_endpoints(client, &targets.namespace, &targets.stable_service).await?;
    let canary = service_endpoints(client, &targets.namespace, &targets.canary_service).await?;
    let rules = match &targets.canary_ingress {
        Some(name) => {
            let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &targets.namespace);
            ingresses
                .get_opt(name)
                .await?
                .and_then(|ing| canary_rules(&ing, &targets.annotation_prefix))
        }
        None => None,
    };
    Ok(Split {
        stable,
        canary,
        rules,
        weighted: Vec::new(),
    })
}

/// Resolves the split now, then again every `every` until `cancel` fires, publishing each result
/// on the returned channel (a [`SplitSource`](super::SplitSource) for [`run_load`](super::run_load)).
/// A failed refresh keeps the previous split.
pub async fn follow_split(
    client: Client,
    targets: SplitTargets,
    every: Duration,
    cancel: CancellationToken,
) -> Result<(watch::Receiver<Split>, JoinHandle<()>), kube::Error> {
    let first = resolve_split(&client, &targets).await?;
    let (tx, rx) = watch::channel(first);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match resolve_split(&client, &targets).await {
                Ok(split) => {
                    if tx.send(split).is_err() {
                        // Nobody listens any more.
                        return;
                    }
                }
                Err(error) => tracing::debug!(%error, "split refresh failed; keeping the last one"),
            }
        }
    });
    Ok((rx, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_service_route_destinations() {
        let spec = serde_json::json!({"http": [
            {"name": "other", "route": [{"destination": {"host": "x"}}]},
            {"name": "primary", "route": [
                {"destination": {"host": "stable"}, "weight": 70},
                {"destination": {"host": "canary.ns.svc.cluster.local"}, "weight": 10},
                {"destination": {"host": "ex-svc"}, "weight": 20},
                {"destination": {"host": "idle"}}
            ]}
        ]});
        assert_eq!(
            virtual_service_backends(&spec, Some("primary")),
            vec![
                ("stable".to_string(), 70),
                ("canary".to_string(), 10),
                ("ex-svc".to_string(), 20),
                ("idle".to_string(), 0)
            ]
        );
        // The first route by default; an only destination takes everything.
        assert_eq!(
            virtual_service_backends(&spec, None),
            vec![("x".to_string(), 100)]
        );
        assert_eq!(virtual_service_backends(&spec, Some("missing")), vec![]);
    }

    #[test]
    fn alb_forward_action_target_groups() {
        let action = r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"canary","ServicePort":"80","Weight":10},{"TargetGroupArn":"arn:x","Weight":5},{"ServiceName":"stable","ServicePort":"80","Weight":90}]}}"#;
        assert_eq!(
            alb_action_backends(action),
            vec![("canary".to_string(), 10), ("stable".to_string(), 90)]
        );
        assert!(alb_action_backends("not json").is_empty());
    }

    #[test]
    fn traffic_split_weights_as_numbers_or_quantities() {
        let spec = serde_json::json!({"backends": [
            {"service": "stable", "weight": "90"},
            {"service": "canary", "weight": 5},
            {"service": "odd", "weight": "5m"},
            {"weight": 5}
        ]});
        assert_eq!(
            traffic_split_backends(&spec),
            vec![
                ("stable".to_string(), 90),
                ("canary".to_string(), 5),
                ("odd".to_string(), 0)
            ]
        );
    }
}
