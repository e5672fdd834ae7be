//! The objects routers read and write, as untyped JSON: resource types, observed objects keyed
//! by identity, the desired objects a router returns, and the pure decision of what write (if
//! any) turns a live object into a desired one.
//!
//! Routers stay untyped on purpose: VirtualServices, TrafficSplits and HTTPRoutes carry fields
//! Davy does not model, and every one of them must survive a round trip through Davy untouched.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::TrafficError;

/// An API resource type: group, version, kind and plural (what a dynamic client needs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceType {
    /// API group, "" for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Ingress`.
    pub kind: String,
    /// Lower-case plural, e.g. `ingresses`.
    pub plural: String,
}

impl ResourceType {
    fn new(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        ResourceType {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
        }
    }

    /// `networking.k8s.io/v1` Ingress.
    pub fn ingress() -> Self {
        Self::new("networking.k8s.io", "v1", "Ingress", "ingresses")
    }

    /// Core `v1` Service.
    pub fn service() -> Self {
        Self::new("", "v1", "Service", "services")
    }

    /// Core `v1` ConfigMap.
    pub fn config_map() -> Self {
        Self::new("", "v1", "ConfigMap", "configmaps")
    }

    /// SMI TrafficSplit at `version` (`v1alpha1`, `v1alpha2`, `v1alpha3`).
    pub fn traffic_split(version: &str) -> Self {
        Self::new(
            "split.smi-spec.io",
            version,
            "TrafficSplit",
            "trafficsplits",
        )
    }

    /// Istio VirtualService at `version` (upstream default `v1alpha3`).
    pub fn virtual_service(version: &str) -> Self {
        Self::new(
            "networking.istio.io",
            version,
            "VirtualService",
            "virtualservices",
        )
    }

    /// Istio DestinationRule at `version`.
    pub fn destination_rule(version: &str) -> Self {
        Self::new(
            "networking.istio.io",
            version,
            "DestinationRule",
            "destinationrules",
        )
    }

    /// Traefik `TraefikService` (upstream default `traefik.io/v1alpha1`).
    pub fn traefik_service() -> Self {
        Self::new(
            "traefik.io",
            "v1alpha1",
            "TraefikService",
            "traefikservices",
        )
    }

    /// Ambassador `Mapping` (upstream default `getambassador.io/v2`).
    pub fn ambassador_mapping() -> Self {
        Self::new("getambassador.io", "v2", "Mapping", "mappings")
    }

    /// APISIX `ApisixRoute` (upstream default `apisix.apache.org/v2`).
    pub fn apisix_route() -> Self {
        Self::new("apisix.apache.org", "v2", "ApisixRoute", "apisixroutes")
    }

    /// App Mesh `VirtualService` (upstream default CRD version `v1beta2`).
    pub fn appmesh_virtual_service() -> Self {
        Self::new(
            "appmesh.k8s.aws",
            "v1beta2",
            "VirtualService",
            "virtualservices",
        )
    }

    /// App Mesh `VirtualRouter`.
    pub fn appmesh_virtual_router() -> Self {
        Self::new(
            "appmesh.k8s.aws",
            "v1beta2",
            "VirtualRouter",
            "virtualrouters",
        )
    }

    /// App Mesh `VirtualNode`.
    pub fn appmesh_virtual_node() -> Self {
        Self::new("appmesh.k8s.aws", "v1beta2", "VirtualNode", "virtualnodes")
    }

    /// Gateway API route kinds as the gatewayAPI plugin reads them: HTTPRoute and GRPCRoute at
    /// `v1`, TCPRoute and TLSRoute at `v1alpha2`.
    pub fn gateway_route(kind: GatewayRouteKind) -> Self {
        match kind {
            GatewayRouteKind::Http => {
                Self::new("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
            }
            GatewayRouteKind::Grpc => {
                Self::new("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes")
            }
            GatewayRouteKind::Tcp => Self::new(
                "gateway.networking.k8s.io",
                "v1alpha2",
                "TCPRoute",
                "tcproutes",
            ),
            GatewayRouteKind::Tls => Self::new(
                "gateway.networking.k8s.io",
                "v1alpha2",
                "TLSRoute",
                "tlsroutes",
            ),
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The identity of object `name` of this type in `namespace`.
    pub fn key(&self, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: self.group.clone(),
            kind: self.kind.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The API server's NotFound error for object `name` of this type.
    pub fn not_found(&self, name: &str) -> TrafficError {
        TrafficError::ObjectNotFound {
            plural: self.plural.clone(),
            group: self.group.clone(),
            name: name.to_string(),
        }
    }
}

/// The Gateway API route kinds the gatewayAPI plugin manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GatewayRouteKind {
    /// HTTPRoute.
    Http,
    /// GRPCRoute.
    Grpc,
    /// TCPRoute.
    Tcp,
    /// TLSRoute.
    Tls,
}

/// Identity of an object regardless of its served version (a VirtualService read as
/// `v1beta1` is the same object as the `v1alpha3` one the Rollout names).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// API group, "" for core.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a JSON object from its `apiVersion`, `kind`, `metadata.namespace` and
    /// `metadata.name`; `None` when a field is missing.
    pub fn of(object: &Value) -> Option<ObjectKey> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let group = api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or_default();
        Some(ObjectKey {
            group: group.to_string(),
            kind: object.get("kind")?.as_str()?.to_string(),
            namespace: str_at(object, &["metadata", "namespace"])
                .unwrap_or_default()
                .to_string(),
            name: str_at(object, &["metadata", "name"])?.to_string(),
        })
    }
}

/// The router objects the caller observed (from watches or GETs), by identity. A router reads
/// only what is here; absence means "does not exist".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    objects: BTreeMap<ObjectKey, Value>,
}

impl Observed {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an object; objects without apiVersion/kind/name are ignored.
    pub fn insert(&mut self, object: Value) {
        if let Some(key) = ObjectKey::of(&object) {
            self.objects.insert(key, object);
        }
    }

    /// Builder form of [`Observed::insert`].
    pub fn with(mut self, object: Value) -> Self {
        self.insert(object);
        self
    }

    /// The observed object of type `resource` named `name` in `namespace`.
    pub fn get(&self, resource: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&resource.key(namespace, name))
    }

    /// Number of objects held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// A Kubernetes Event the caller should record on the Rollout after a successful write
/// (upstream's reason and message, verbatim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterEvent {
    /// Event reason, e.g. `CreatingCanaryIngress`.
    pub reason: String,
    /// Event message.
    pub message: String,
}

impl RouterEvent {
    /// A Normal event.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        RouterEvent {
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// Who owns an object a router writes, which decides how it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Created by the router and controlled by the Rollout (canary Ingress, TrafficSplit,
    /// plugin ConfigMap): created when absent; refused when another controller owns it.
    Controlled,
    /// The user's object, edited in place (VirtualService, DestinationRule, HTTPRoute): must
    /// exist; written with the observed `resourceVersion` so a concurrent edit conflicts
    /// instead of being overwritten.
    EditInPlace,
    /// A bookkeeping object shared with other Rollouts and with upstream (the gatewayAPI
    /// plugin's ConfigMap): created when absent, without owner; otherwise written like
    /// `EditInPlace`.
    Shared,
    /// An object that must not exist (an Ambassador canary Mapping at weight 0): deleted when
    /// present, whoever owns it, as upstream does.
    Absent,
    /// An object of ours that must not exist (an APISIX header route being removed): deleted
    /// when present and controlled by the Rollout, left alone when another object controls it.
    AbsentIfControlled,
}

/// One object as a router wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    /// Its type.
    pub resource: ResourceType,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The desired object. `Controlled`: only the managed fields (metadata name, namespace,
    /// annotations, ownerReferences, and `spec`). `EditInPlace`: the whole observed object with
    /// the router's changes.
    pub object: Value,
    /// How it is written.
    pub ownership: Ownership,
    /// Event recorded when the write creates it.
    pub on_create: Option<RouterEvent>,
    /// Event recorded when the write patches it.
    pub on_update: Option<RouterEvent>,
}

/// The write that brings a live object to its desired state.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteAction {
    /// POST the object.
    Create(Value),
    /// JSON merge patch (`application/merge-patch+json`).
    Patch(Value),
    /// DELETE the object.
    Delete,
}

/// A write decided by [`plan_write`].
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedWrite {
    /// Type of the object.
    pub resource: ResourceType,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// What to send.
    pub action: WriteAction,
    /// Event to record once the write succeeded.
    pub event: Option<RouterEvent>,
}

/// Decides the write turning `live` (the object as it is now, `None` when absent) into
/// `desired`, for the Rollout whose uid is `rollout_uid`. `Ok(None)` when nothing differs.
///
/// Annotations and labels are merged (keys only on the live object are kept, as upstream's
/// canary Ingress does with annotations a user added); everything else outside `metadata` and
/// `status` is made equal to the desired object (keys only on the live object are nulled).
pub fn plan_write(
    desired: &DesiredObject,
    live: Option<&Value>,
    rollout_uid: &str,
) -> Result<Option<PlannedWrite>, TrafficError> {
    let planned = |action, event: &Option<RouterEvent>| PlannedWrite {
        resource: desired.resource.clone(),
        namespace: desired.namespace.clone(),
        name: desired.name.clone(),
        action,
        event: event.clone(),
    };
    if matches!(
        desired.ownership,
        Ownership::Absent | Ownership::AbsentIfControlled
    ) {
        let remove = live.is_some_and(|live| {
            desired.ownership == Ownership::Absent || is_controlled_by(live, rollout_uid)
        });
        return Ok(remove.then(|| planned(WriteAction::Delete, &desired.on_update)));
    }
    let Some(live) = live else {
        return match desired.ownership {
            Ownership::Controlled => Ok(Some(planned(
                WriteAction::Create(desired.object.clone()),
                &desired.on_create,
            ))),
            Ownership::EditInPlace => Err(desired.resource.not_found(&desired.name)),
            Ownership::Shared => Ok(Some(planned(
                WriteAction::Create(desired.object.clone()),
                &desired.on_create,
            ))),
            Ownership::Absent | Ownership::AbsentIfControlled => Ok(None),
        };
    };
    if desired.ownership == Ownership::Controlled && !is_controlled_by(live, rollout_uid) {
        return Err(not_controlled(&desired.resource, &desired.name));
    }
    let Some(mut patch) = object_patch(live, &desired.object) else {
        return Ok(None);
    };
    if desired.ownership != Ownership::Controlled
        && let Some(rv) = str_at(&desired.object, &["metadata", "resourceVersion"])
    {
        // Optimistic concurrency: the desired object was computed from this version.
        set_at(
            &mut patch,
            &["metadata", "resourceVersion"],
            Value::from(rv),
        );
    }
    Ok(Some(planned(WriteAction::Patch(patch), &desired.on_update)))
}

/// The refusal for an object of ours that another controller owns, in upstream's words.
fn not_controlled(resource: &ResourceType, name: &str) -> TrafficError {
    match resource.kind.as_str() {
        "Ingress" => TrafficError::CanaryIngressNotControlled(name.to_string()),
        "TrafficSplit" => TrafficError::TrafficSplitNotOwned(name.to_string()),
        kind => TrafficError::NotControlled {
            kind: kind.to_string(),
            name: name.to_string(),
        },
    }
}

/// True when `object` has a controller owner reference with `uid` (upstream `IsControlledBy`).
pub fn is_controlled_by(object: &Value, uid: &str) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("controller").and_then(Value::as_bool) == Some(true)
                    && r.get("uid").and_then(Value::as_str) == Some(uid)
            })
        })
}

/// The merge patch from `live` to `desired` under the rules of [`plan_write`].
fn object_patch(live: &Value, desired: &Value) -> Option<Value> {
    let mut patch = Map::new();
    let mut metadata = Map::new();
    for field in ["annotations", "labels"] {
        let want = desired.pointer(&format!("/metadata/{field}"));
        let have = live.pointer(&format!("/metadata/{field}"));
        if let Some(want) = want
            && let Some(diff) = merge_diff(have.unwrap_or(&Value::Null), want, false)
        {
            metadata.insert(field.to_string(), diff);
        }
    }
    if !metadata.is_empty() {
        patch.insert("metadata".into(), Value::Object(metadata));
    }
    let skip = ["apiVersion", "kind", "metadata", "status"];
    let empty = Map::new();
    let want = desired.as_object().unwrap_or(&empty);
    let have = live.as_object().unwrap_or(&empty);
    for (key, value) in want.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
        if let Some(diff) = merge_diff(have.get(key).unwrap_or(&Value::Null), value, true) {
            patch.insert(key.clone(), diff);
        }
    }
    for key in have.keys().filter(|k| !skip.contains(&k.as_str())) {
        if !want.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// RFC 7386 merge patch turning `live` into `desired`; `None` when equal. Keys present only in
/// `live` are nulled when `prune` (unless already null there: in a merge patch null and
/// absent are the same), kept otherwise. Arrays and values that change type are replaced
/// whole; numbers compare by value (`5` equals `5.0`). The one merge diff of the crate: the
/// controller's status and AnalysisRun patches use it too.
pub fn merge_diff(live: &Value, desired: &Value, prune: bool) -> Option<Value> {
    match (live, desired) {
        (Value::Object(have), Value::Object(want)) => {
            let mut patch = Map::new();
            for (key, value) in want {
                match have.get(key) {
                    Some(old) => {
                        if let Some(diff) = merge_diff(old, value, prune) {
                            patch.insert(key.clone(), diff);
                        }
                    }
                    None if value.is_null() => {}
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            if prune {
                for (key, _) in have
                    .iter()
                    .filter(|(key, value)| !want.contains_key(*key) && !value.is_null())
                {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (a, b) if json_equal(a, b) => None,
        (_, b) => Some(b.clone()),
    }
}

/// JSON equality where `5` and `5.0` are the same number (Istio weights come back as either).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The string at `path` (object keys) in `value`.
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_str)
}

/// Sets `path` (object keys) in `value` to `new`, creating objects on the way (and replacing
/// non-objects found on the way).
pub fn set_at(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        *value = new;
        return;
    };
    let mut cur = value;
    for key in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        cur = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Value::Object(map) = cur {
        map.insert(last.to_string(), new);
    }
}
