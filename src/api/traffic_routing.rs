//! `spec.strategy.canary.trafficRouting` (spec §1.5): one block per router. Davy executes
//! nginx, SMI, Istio and Gateway API (plugin); the others are decoded and kept so manifests
//! written for upstream still parse and round-trip.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// All routers of a canary; several may be set at once (e.g. istio + plugins).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrafficRouting {
    /// Istio VirtualService / DestinationRule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioTrafficRouting>,
    /// ingress-nginx canary Ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxTrafficRouting>,
    /// AWS ALB ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbTrafficRouting>,
    /// SMI TrafficSplit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smi: Option<SmiTrafficRouting>,
    /// Ambassador mappings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambassador: Option<AmbassadorTrafficRouting>,
    /// AWS App Mesh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_mesh: Option<AppMeshTrafficRouting>,
    /// Traefik weighted service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikTrafficRouting>,
    /// Routes the controller manages (order = precedence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_routes: Option<Vec<ManagedRoute>>,
    /// Apache APISIX route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apisix: Option<ApisixTrafficRouting>,
    /// Router plugins: plugin name → free configuration, kept verbatim.
    // `default` keeps the field optional in the schema: `schema_with` hides the Option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub plugins: Option<serde_json::Map<String, serde_json::Value>>,
    /// Total weight (default 100; nginx and plugins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
}

/// `managedRoutes[]: {name}` (upstream spells the Go type `MangedRoutes`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRoute {
    /// Route name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub name: String,
}

/// `istio`: exactly one of virtualService / virtualServices.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioTrafficRouting {
    /// One VirtualService.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<IstioVirtualService>,
    /// Subset-level split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_rule: Option<IstioDestinationRule>,
    /// Several VirtualServices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_services: Option<Vec<IstioVirtualService>>,
}

/// A VirtualService and the routes in it to edit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioVirtualService {
    /// VirtualService name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub name: String,
    /// HTTP route names (omitted: the single HTTP route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    /// TLS routes by port and SNI hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_routes: Option<Vec<TlsRoute>>,
    /// TCP routes by port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_routes: Option<Vec<TcpRoute>>,
}

/// A TLS route of a VirtualService.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsRoute {
    /// Port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// SNI hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni_hosts: Option<Vec<String>>,
}

/// A TCP route of a VirtualService.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpRoute {
    /// Port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

/// A DestinationRule whose subsets get the pod-template hashes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioDestinationRule {
    /// DestinationRule name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub name: String,
    /// Subset pointed at the canary.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub canary_subset_name: String,
    /// Subset pointed at the stable.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub stable_subset_name: String,
    /// Subsets left untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_subset_names: Option<Vec<String>>,
}

/// `nginx`: exactly one of stableIngress / stableIngresses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NginxTrafficRouting {
    /// Annotation prefix (default `nginx.ingress.kubernetes.io`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// The stable Ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_ingress: Option<String>,
    /// Extra canary annotations, keys prefixed with the annotation prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_ingress_annotations: Option<BTreeMap<String, String>>,
    /// Extra canary annotations, keys verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_ingress_annotations: Option<BTreeMap<String, String>>,
    /// Several stable Ingresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_ingresses: Option<Vec<String>>,
}

/// `alb`: exactly one of ingress / ingresses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbTrafficRouting {
    /// The Ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    /// Port the action routes to (required).
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub service_port: i32,
    /// Service in the Ingress that gets the action (default stableService).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// Annotation prefix (default `alb.ingress.kubernetes.io`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// Target-group stickiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stickiness_config: Option<StickinessConfig>,
    /// Several Ingresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingresses: Option<Vec<String>>,
}

/// ALB `stickinessConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StickinessConfig {
    /// Enabled.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub enabled: bool,
    /// Stickiness duration.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub duration_seconds: i64,
}

/// `smi`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmiTrafficRouting {
    /// Root service (default stableService).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// TrafficSplit name (default the rollout name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_split_name: Option<String>,
}

/// `ambassador`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmbassadorTrafficRouting {
    /// Mapping names.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub mappings: Vec<String>,
}

/// `appMesh`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshTrafficRouting {
    /// Virtual service and router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<AppMeshVirtualService>,
    /// Canary and stable virtual nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_node_group: Option<AppMeshVirtualNodeGroup>,
}

/// App Mesh virtual service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualService {
    /// Name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub name: String,
    /// Route names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
}

/// App Mesh virtual nodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualNodeGroup {
    /// Canary virtual node.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub canary_virtual_node_ref: AppMeshVirtualNodeReference,
    /// Stable virtual node.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub stable_virtual_node_ref: AppMeshVirtualNodeReference,
}

/// A VirtualNode reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualNodeReference {
    /// VirtualNode name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub name: String,
}

/// `traefik`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraefikTrafficRouting {
    /// TraefikService name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub weighted_traefik_service_name: String,
}

/// `apisix`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApisixTrafficRouting {
    /// The route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<ApisixRoute>,
}

/// An APISIX route and its rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApisixRoute {
    /// Route name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub name: String,
    /// HTTP rule names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<String>>,
}
