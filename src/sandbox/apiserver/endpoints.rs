//! The EndpointSlice and Endpoints controllers of kube-controller-manager, run by the sandbox:
//! for every Service with a selector, the ready (and the terminating) Pods it selects become
//! `discovery.k8s.io/v1` EndpointSlices and one `core/v1` Endpoints object.
//!
//! What the slices hold is decided by pure functions ([`pod_endpoint`], [`desired_groups`],
//! [`slice_body`], [`endpoints_body`]); the store only records which Services a write may have
//! affected ([`EndpointTracker`]: a Service's own writes, and a Pod's through an index of the
//! Services' selectors by label, so a Pod write never scans every Service), and the controller
//! task ([`super::controllers`]) brings those Services' slices up to date afterwards, as the real
//! controllers do asynchronously.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::fields::Scope;
use super::resources::{GroupResource, ResourceDef};
use super::rules::{self, meta_str};
use super::selectors::LabelSelector;
use super::store::{ObjKey, ObjectId, Propagation, State, WriteCtx, key_of, pods_gr, services_gr};

/// The label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages an EndpointSlice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on the slices the EndpointSlice controller keeps.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The label both controllers add for a headless Service.
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Where EndpointSlices are stored.
/// kube-controller-manager's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

pub fn endpointslices_gr() -> GroupResource {
    GroupResource::new("discovery.k8s.io", "endpointslices")
}

/// Where Endpoints are stored.
pub fn endpoints_gr() -> GroupResource {
    GroupResource::new("", "endpoints")
}

/// One port of an endpoint: the Service port's name, the Pod port it resolves to, the protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlicePort {
    /// The Service port's name (empty when it has none).
    pub name: String,
    /// The Pod's port number the `targetPort` resolves to.
    pub port: i64,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
}

/// One Pod as an endpoint of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEndpoint {
    /// The Pod's `status.podIP`.
    pub ip: String,
    /// The node it is bound to.
    pub node_name: Option<String>,
    /// The Pod's name, for `targetRef`.
    pub pod_name: String,
    /// The Pod's uid, for `targetRef`.
    pub pod_uid: String,
    /// Gets traffic: Ready and not terminating (or the Service publishes not-ready addresses).
    pub ready: bool,
    /// The Pod's Ready condition, whether or not it terminates.
    pub serving: bool,
    /// The Pod has a `deletionTimestamp`.
    pub terminating: bool,
}

/// The Service's selector when the controllers keep endpoints for it: a non-empty selector on a
/// Service that is not `ExternalName`.
pub fn service_selector(svc: &Value) -> Option<BTreeMap<String, String>> {
    let spec = svc.get("spec")?;
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return None;
    }
    let selector: BTreeMap<String, String> = spec
        .get("selector")?
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    (!selector.is_empty()).then_some(selector)
}

fn labels_of(obj: &Value) -> BTreeMap<&str, &str> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, obj: &Value) -> bool {
    let labels = labels_of(obj);
    selector
        .iter()
        .all(|(k, v)| labels.get(k.as_str()) == Some(&v.as_str()))
}

fn is_pod_ready(pod: &Value) -> bool {
    pod.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Ready")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

/// The Pod port a Service port's `targetPort` names (kubelet's `FindPort`): a number as it is,
/// a name through the containers' named ports of the same protocol.
fn find_port(pod: &Value, target: &Value, protocol: &str) -> Option<i64> {
    match target {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod
            .get("spec")
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .find(|p| {
                p.get("name").and_then(Value::as_str) == Some(name.as_str())
                    && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == protocol
            })
            .and_then(|p| p.get("containerPort").and_then(Value::as_i64)),
        _ => None,
    }
}

/// The Pod's ports for the Service, in Service port order; a port the Pod cannot resolve (a
/// named `targetPort` it does not declare) is left out, as the controller does.
fn endpoint_ports(svc: &Value, pod: &Value) -> Vec<SlicePort> {
    svc.get("spec")
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            let target = p.get("targetPort").or_else(|| p.get("port"))?;
            Some(SlicePort {
                name: p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                port: find_port(pod, target, protocol)?,
                protocol: protocol.to_string(),
            })
        })
        .collect()
}

/// The Pod as an endpoint of the Service, with its ports; `None` when it is no endpoint at all:
/// no `podIP` yet, or finished (`Succeeded`, `Failed`). Terminating Pods are endpoints with
/// `terminating: true` and are not `ready` (`serving` still follows the Pod's Ready condition);
/// `publishNotReadyAddresses` makes every endpoint ready.
pub fn pod_endpoint(svc: &Value, pod: &Value) -> Option<(Vec<SlicePort>, PodEndpoint)> {
    let status = pod.get("status")?;
    let phase = status.get("phase").and_then(Value::as_str);
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip = status
        .get("podIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())?;
    let serving = is_pod_ready(pod);
    let terminating = rules::is_deleting(pod);
    let publish = svc
        .get("spec")
        .and_then(|s| s.get("publishNotReadyAddresses"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let endpoint = PodEndpoint {
        ip: ip.to_string(),
        node_name: pod
            .get("spec")
            .and_then(|s| s.get("nodeName"))
            .and_then(Value::as_str)
            .map(str::to_string),
        pod_name: meta_str(pod, "name").unwrap_or_default().to_string(),
        pod_uid: meta_str(pod, "uid").unwrap_or_default().to_string(),
        ready: publish || (serving && !terminating),
        serving,
        terminating,
    };
    Some((endpoint_ports(svc, pod), endpoint))
}

/// The Service's endpoints grouped by their ports (one EndpointSlice per group), each group's
/// endpoints ordered by Pod name. Pods the selector does not match are ignored.
pub fn desired_groups<'a>(
    svc: &Value,
    pods: impl IntoIterator<Item = &'a Value>,
) -> BTreeMap<Vec<SlicePort>, Vec<PodEndpoint>> {
    let mut groups: BTreeMap<Vec<SlicePort>, Vec<PodEndpoint>> = BTreeMap::new();
    let Some(selector) = service_selector(svc) else {
        return groups;
    };
    for pod in pods {
        if !selects(&selector, pod) {
            continue;
        }
        if let Some((ports, ep)) = pod_endpoint(svc, pod) {
            groups.entry(ports).or_default().push(ep);
        }
    }
    for eps in groups.values_mut() {
        eps.sort_by(|a, b| a.pod_name.cmp(&b.pod_name));
    }
    groups
}

fn is_headless(svc: &Value) -> bool {
    svc.get("spec")
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
        == Some("None")
}

/// The labels both controllers give their objects: the Service's own, plus the headless label.
fn copied_labels(svc: &Value) -> Map<String, Value> {
    let mut labels: Map<String, Value> = svc
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.remove(SERVICE_NAME_LABEL);
    labels.remove(MANAGED_BY_LABEL);
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), json!(""));
    }
    labels
}

fn target_ref(ns: &str, ep: &PodEndpoint) -> Value {
    json!({"kind": "Pod", "namespace": ns, "name": ep.pod_name, "uid": ep.pod_uid})
}

fn port_json(p: &SlicePort) -> Value {
    json!({"name": p.name, "port": p.port, "protocol": p.protocol})
}

/// An EndpointSlice for one group of the Service's endpoints (without `metadata.name`: a new
/// one is named by `generateName: <service>-`). `ports` and `endpoints` both empty is the
/// placeholder slice of a Service that selects no endpoint (its `ports` are unset).
pub fn slice_body(svc: &Value, ports: &[SlicePort], endpoints: &[PodEndpoint]) -> Value {
    let name = meta_str(svc, "name").unwrap_or_default();
    let ns = meta_str(svc, "namespace").unwrap_or_default();
    let mut labels = copied_labels(svc);
    labels.insert(SERVICE_NAME_LABEL.into(), json!(name));
    labels.insert(MANAGED_BY_LABEL.into(), json!(CONTROLLER_NAME));
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|ep| {
            let mut e = json!({
                "addresses": [ep.ip],
                "conditions": {"ready": ep.ready, "serving": ep.serving, "terminating": ep.terminating},
                "targetRef": target_ref(ns, ep),
            });
            if let Some(node) = &ep.node_name {
                e["nodeName"] = json!(node);
            }
            e
        })
        .collect();
    let mut slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": format!("{name}-"),
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Service", "name": name,
                "uid": meta_str(svc, "uid").unwrap_or_default(),
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "addressType": "IPv4",
        // Go's nil slice, as kube-apiserver returns the placeholder's.
        "endpoints": if eps.is_empty() { Value::Null } else { json!(eps) },
    });
    if !ports.is_empty() || !endpoints.is_empty() {
        slice["ports"] = json!(ports.iter().map(port_json).collect::<Vec<_>>());
    }
    slice
}

/// The Service's Endpoints object (named as the Service): per port group a subset with the
/// ready addresses and the not-ready ones; terminating Pods are left out unless the Service
/// publishes not-ready addresses. No endpoint at all leaves `subsets` unset.
pub fn endpoints_body(svc: &Value, groups: &BTreeMap<Vec<SlicePort>, Vec<PodEndpoint>>) -> Value {
    let name = meta_str(svc, "name").unwrap_or_default();
    let ns = meta_str(svc, "namespace").unwrap_or_default();
    let address = |ep: &PodEndpoint| {
        let mut a = json!({"ip": ep.ip, "targetRef": target_ref(ns, ep)});
        if let Some(node) = &ep.node_name {
            a["nodeName"] = json!(node);
        }
        a
    };
    let mut subsets = Vec::new();
    for (ports, eps) in groups {
        let mut ready: Vec<&PodEndpoint> = eps.iter().filter(|e| e.ready).collect();
        let mut not_ready: Vec<&PodEndpoint> =
            eps.iter().filter(|e| !e.ready && !e.terminating).collect();
        if ready.is_empty() && not_ready.is_empty() {
            continue;
        }
        ready.sort_by(|a, b| a.ip.cmp(&b.ip));
        not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
        let mut subset = Map::new();
        if !ready.is_empty() {
            subset.insert(
                "addresses".into(),
                json!(ready.iter().map(|e| address(e)).collect::<Vec<_>>()),
            );
        }
        if !not_ready.is_empty() {
            subset.insert(
                "notReadyAddresses".into(),
                json!(not_ready.iter().map(|e| address(e)).collect::<Vec<_>>()),
            );
        }
        if !ports.is_empty() {
            let ports: Vec<Value> = ports
                .iter()
                .map(|p| {
                    let mut v = json!({"port": p.port, "protocol": p.protocol});
                    if !p.name.is_empty() {
                        v["name"] = json!(p.name);
                    }
                    v
                })
                .collect();
            subset.insert("ports".into(), json!(ports));
        }
        subsets.push(Value::Object(subset));
    }
    let mut out = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns, "labels": copied_labels(svc)},
    });
    if !subsets.is_empty() {
        out["subsets"] = json!(subsets);
    }
    out
}

/// What about a Pod its Services' endpoints depend on; other Pod writes (annotations, most of
/// the status) need no endpoint update.
fn pod_projection(pod: &Value) -> Value {
    let spec = pod.get("spec");
    let status = pod.get("status");
    json!([
        pod.get("metadata").and_then(|m| m.get("labels")),
        meta_str(pod, "deletionTimestamp"),
        spec.and_then(|s| s.get("nodeName")),
        spec.and_then(|s| s.get("containers"))
            .and_then(Value::as_array)
            .map(|cs| cs.iter().map(|c| c.get("ports")).collect::<Vec<_>>()),
        status.and_then(|s| s.get("podIP")),
        status.and_then(|s| s.get("phase")),
        is_pod_ready(pod),
    ])
}

/// The Services whose endpoints need an update, and an index of every Service's selector so a
/// Pod write finds the Services selecting it without a scan: each Service is filed under the
/// first `key=value` pair of its selector, which every Pod it selects carries.
#[derive(Debug, Default)]
pub struct EndpointTracker {
    by_label: HashMap<(String, String, String), BTreeSet<String>>,
    selectors: HashMap<ObjKey, BTreeMap<String, String>>,
    /// Services (namespace, name) to bring up to date.
    pub dirty: BTreeSet<ObjKey>,
}

impl EndpointTracker {
    /// A Service was written (`new`) or removed (`None`).
    pub fn service_changed(&mut self, key: &ObjKey, new: Option<&Value>) {
        if let Some(old) = self.selectors.remove(key)
            && let Some((k, v)) = old.iter().next()
        {
            let slot = (key.0.clone(), k.clone(), v.clone());
            if let Some(set) = self.by_label.get_mut(&slot) {
                set.remove(&key.1);
                if set.is_empty() {
                    self.by_label.remove(&slot);
                }
            }
        }
        if let Some(selector) = new.and_then(service_selector) {
            if let Some((k, v)) = selector.iter().next() {
                self.by_label
                    .entry((key.0.clone(), k.clone(), v.clone()))
                    .or_default()
                    .insert(key.1.clone());
            }
            self.selectors.insert(key.clone(), selector);
        }
        self.dirty.insert(key.clone());
    }

    /// A Pod in `ns` changed from `old` to `new` (`None`: absent): the Services selecting it
    /// before or after need an update, if anything their endpoints show changed.
    pub fn pod_changed(&mut self, ns: &str, old: Option<&Value>, new: Option<&Value>) {
        if old.map(pod_projection) == new.map(pod_projection) {
            return;
        }
        for pod in [old, new].into_iter().flatten() {
            for (k, v) in labels_of(pod) {
                let slot = (ns.to_string(), k.to_string(), v.to_string());
                let Some(names) = self.by_label.get(&slot) else {
                    continue;
                };
                for name in names {
                    let key = (ns.to_string(), name.clone());
                    if self.selectors.get(&key).is_some_and(|s| selects(s, pod)) {
                        self.dirty.insert(key);
                    }
                }
            }
        }
    }
}

impl State {
    /// Brings up to `budget` Services' endpoints up to date; whether some are left.
    pub(super) fn sync_endpoints(&mut self, ctx: &WriteCtx, budget: usize) -> bool {
        for _ in 0..budget {
            let Some(key) = self.endpoints.dirty.pop_first() else {
                return false;
            };
            self.sync_service_endpoints(&key, ctx);
        }
        !self.endpoints.dirty.is_empty()
    }

    /// The managed slices of one Service, in key order.
    fn managed_slices(&self, ns: &str, service: &str) -> Vec<Arc<Value>> {
        let Ok(selector) = LabelSelector::parse(&format!(
            "{SERVICE_NAME_LABEL}={service},{MANAGED_BY_LABEL}={CONTROLLER_NAME}"
        )) else {
            return Vec::new();
        };
        self.select(&endpointslices_gr(), Some(ns), None, &selector)
            .filter(|o| selector.matches(o))
            .cloned()
            .collect()
    }

    fn sync_service_endpoints(&mut self, key: &ObjKey, ctx: &WriteCtx) {
        let (ns, name) = (key.0.as_str(), key.1.as_str());
        let (Some(slices_def), Some(endpoints_def)) = (
            self.registry.get(&endpointslices_gr()),
            self.registry.get(&endpoints_gr()),
        ) else {
            return;
        };
        let existing = self.managed_slices(ns, name);
        let svc = self.get(&services_gr(), key);
        let selector = svc.as_deref().and_then(service_selector);
        let (Some(svc), Some(selector)) = (svc, selector) else {
            // Gone, or no selector: the controllers keep nothing for it. A Service without a
            // selector keeps Endpoints its user writes; a deleted one loses its own.
            for slice in existing {
                self.delete_named(&slices_def, ns, &slice, ctx);
            }
            if self.get(&services_gr(), key).is_none()
                && let Some(ep) = self.get(&endpoints_gr(), &key_of(&endpoints_def, Some(ns), name))
            {
                self.delete_named(&endpoints_def, ns, &ep, ctx);
            }
            return;
        };
        let pods = {
            let labels = LabelSelector::parse(
                &selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            match labels {
                Ok(labels) => self
                    .select(&pods_gr(), Some(ns), None, &labels)
                    .cloned()
                    .collect::<Vec<_>>(),
                Err(_) => Vec::new(),
            }
        };
        let groups = desired_groups(&svc, pods.iter().map(|p| p.as_ref()));
        // The endpointslice controller's `--max-endpoints-per-slice` (default 100): a group
        // of more endpoints is spread over several slices with the same ports.
        let mut wanted: Vec<Value> = groups
            .iter()
            .flat_map(|(ports, eps)| {
                eps.chunks(MAX_ENDPOINTS_PER_SLICE)
                    .map(|chunk| slice_body(&svc, ports, chunk))
            })
            .collect();
        if wanted.is_empty() {
            wanted.push(slice_body(&svc, &[], &[]));
        }
        let mut spare = existing;
        for body in wanted {
            // Reuse the slice that already has these ports, else any spare one.
            let at = spare
                .iter()
                .position(|s| s.get("ports") == body.get("ports"))
                .or(if spare.is_empty() { None } else { Some(0) });
            match at.map(|i| spare.remove(i)) {
                Some(slice) => {
                    let slice_name = meta_str(&slice, "name").unwrap_or_default().to_string();
                    let id = ObjectId {
                        def: &slices_def,
                        ns: Some(ns),
                        name: &slice_name,
                    };
                    let result = self.update(id, Scope::Main, ctx, true, |old| {
                        let mut new = old.clone();
                        for field in ["addressType", "endpoints"] {
                            new[field] = body[field].clone();
                        }
                        match body.get("ports") {
                            Some(p) => new["ports"] = p.clone(),
                            None => {
                                if let Some(m) = new.as_object_mut() {
                                    m.remove("ports");
                                }
                            }
                        }
                        for field in ["labels", "ownerReferences"] {
                            rules::set_meta(&mut new, field, body["metadata"][field].clone());
                        }
                        Ok(new)
                    });
                    if let Err(error) = result {
                        tracing::debug!(%error, service = name, "updating an EndpointSlice failed");
                    }
                }
                None => {
                    if let Err(error) = self.create(&slices_def, Some(ns), body, ctx, true) {
                        tracing::debug!(%error, service = name, "creating an EndpointSlice failed");
                    }
                }
            }
        }
        for slice in spare {
            self.delete_named(&slices_def, ns, &slice, ctx);
        }
        let body = endpoints_body(&svc, &groups);
        let ep_key = key_of(&endpoints_def, Some(ns), name);
        let result = if self.get(&endpoints_gr(), &ep_key).is_some() {
            let id = ObjectId {
                def: &endpoints_def,
                ns: Some(ns),
                name,
            };
            self.update(id, Scope::Main, ctx, true, |old| {
                let mut new = old.clone();
                match body.get("subsets") {
                    Some(s) => new["subsets"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("subsets");
                        }
                    }
                }
                rules::set_meta(&mut new, "labels", body["metadata"]["labels"].clone());
                Ok(new)
            })
        } else {
            self.create(&endpoints_def, Some(ns), body, ctx, true)
        };
        if let Err(error) = result {
            tracing::debug!(%error, service = name, "writing Endpoints failed");
        }
    }

    fn delete_named(&mut self, def: &Arc<ResourceDef>, ns: &str, obj: &Value, ctx: &WriteCtx) {
        let key = key_of(def, Some(ns), meta_str(obj, "name").unwrap_or_default());
        self.delete_object(def, key, Propagation::Background, None, ctx.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(selector: Value, ports: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u-svc", "labels": {"team": "a"}},
               "spec": {"selector": selector, "ports": ports}})
    }

    fn pod(name: &str, labels: Value, ip: Option<&str>, ready: bool, deleting: bool) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "uid": format!("u-{name}"), "labels": labels},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        });
        if let Some(ip) = ip {
            p["status"]["podIP"] = json!(ip);
        }
        if deleting {
            p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        p
    }

    #[test]
    fn ready_terminating_and_unaddressed_pods() {
        let s = svc(
            json!({"app": "web"}),
            json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                   {"name": "raw", "port": 81, "targetPort": 9000, "protocol": "TCP"}]),
        );
        let pods = [
            pod("a", json!({"app": "web"}), Some("10.0.0.1"), true, false),
            pod("b", json!({"app": "web"}), Some("10.0.0.2"), true, true),
            pod("c", json!({"app": "web"}), Some("10.0.0.3"), false, false),
            pod("d", json!({"app": "web"}), None, true, false),
            pod("e", json!({"app": "api"}), Some("10.0.0.5"), true, false),
        ];
        let groups = desired_groups(&s, pods.iter());
        assert_eq!(groups.len(), 1);
        let (ports, eps) = groups.iter().next().unwrap();
        assert_eq!(
            ports
                .iter()
                .map(|p| (p.name.as_str(), p.port))
                .collect::<Vec<_>>(),
            [("http", 8080), ("raw", 9000)]
        );
        let conds: Vec<_> = eps
            .iter()
            .map(|e| (e.pod_name.as_str(), e.ready, e.serving, e.terminating))
            .collect();
        assert_eq!(
            conds,
            [
                ("a", true, true, false),
                ("b", false, true, true),
                ("c", false, false, false)
            ]
        );
        let slice = slice_body(&s, ports, eps);
        assert_eq!(slice["metadata"]["generateName"], "web-");
        assert_eq!(slice["metadata"]["labels"][SERVICE_NAME_LABEL], "web");
        assert_eq!(
            slice["metadata"]["labels"][MANAGED_BY_LABEL],
            CONTROLLER_NAME
        );
        assert_eq!(slice["metadata"]["labels"]["team"], "a");
        assert_eq!(slice["metadata"]["ownerReferences"][0]["uid"], "u-svc");
        assert_eq!(
            slice["ports"][0],
            json!({"name": "http", "port": 8080, "protocol": "TCP"})
        );
        assert_eq!(slice["endpoints"][1]["conditions"]["terminating"], true);
        let ep = endpoints_body(&s, &groups);
        let subset = &ep["subsets"][0];
        assert_eq!(subset["addresses"].as_array().unwrap().len(), 1);
        assert_eq!(subset["addresses"][0]["ip"], "10.0.0.1");
        // Terminating "b" is left out; not-ready "c" is listed as such.
        assert_eq!(subset["notReadyAddresses"][0]["ip"], "10.0.0.3");
        assert_eq!(subset["notReadyAddresses"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn unresolvable_named_port_is_left_out_and_empty_service_has_a_placeholder() {
        let s = svc(
            json!({"app": "web"}),
            json!([{"port": 80, "targetPort": "grpc"}]),
        );
        let p = pod("a", json!({"app": "web"}), Some("10.0.0.1"), true, false);
        let groups = desired_groups(&s, [&p]);
        assert_eq!(groups.keys().next().unwrap(), &Vec::<SlicePort>::new());
        let placeholder = slice_body(&s, &[], &[]);
        assert!(placeholder.get("ports").is_none());
        assert_eq!(placeholder["endpoints"], Value::Null);
        assert!(
            endpoints_body(&s, &BTreeMap::new())
                .get("subsets")
                .is_none()
        );
    }

    #[test]
    fn tracker_finds_services_by_selector_label() {
        let mut t = EndpointTracker::default();
        let key = ("ns".to_string(), "web".to_string());
        t.service_changed(
            &key,
            Some(&svc(json!({"app": "web", "hash": "1"}), json!([]))),
        );
        t.dirty.clear();
        let p1 = pod("a", json!({"app": "web", "hash": "1"}), None, false, false);
        let p2 = pod(
            "a",
            json!({"app": "web", "hash": "1"}),
            Some("10.0.0.1"),
            false,
            false,
        );
        t.pod_changed("ns", None, Some(&p1));
        assert!(t.dirty.contains(&key));
        t.dirty.clear();
        // Another namespace, or labels the selector does not match: nothing to do.
        t.pod_changed("other", None, Some(&p1));
        let p3 = pod(
            "b",
            json!({"app": "web", "hash": "2"}),
            Some("10.0.0.2"),
            true,
            false,
        );
        t.pod_changed("ns", None, Some(&p3));
        assert!(t.dirty.is_empty());
        // An annotation-only change is not looked at.
        let mut p2b = p2.clone();
        p2b["metadata"]["annotations"] = json!({"x": "y"});
        t.pod_changed("ns", Some(&p2), Some(&p2b));
        assert!(t.dirty.is_empty());
        t.pod_changed("ns", Some(&p1), Some(&p2));
        assert!(t.dirty.contains(&key));
        // Relabelled away from the selector: the Service that selected it before is updated.
        t.dirty.clear();
        t.pod_changed("ns", Some(&p2), Some(&p3));
        assert!(t.dirty.contains(&key));
    }
}
