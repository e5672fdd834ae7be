//! `spec.strategy.canary.trafficRouting` (spec §1.5): one block per router. Davy executes
//! nginx, SMI, Istio and Gateway API (plugin); the others are decoded and kept so manifests
//! written for upstream still parse and round-trip.

use super::common::or_zero;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// All routers of a canary; several may be set at once (e.g. istio + plugins).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrafficRouting {
    /// Istio VirtualService / DestinationRule.
    pub istio: Option<IstioTrafficRouting>,
    /// ingress-nginx canary Ingress.
    pub nginx: Option<NginxTrafficRouting>,
    /// AWS ALB ingress.
    pub alb: Option<AlbTrafficRouting>,
    /// SMI TrafficSplit.
    pub smi: Option<SmiTrafficRouting>,
    /// Ambassador mappings.
    pub ambassador: Option<AmbassadorTrafficRouting>,
    /// AWS App Mesh.
    pub app_mesh: Option<AppMeshTrafficRouting>,
    /// Traefik weighted service.
    pub traefik: Option<TraefikTrafficRouting>,
    /// Routes the controller manages (order = precedence).
    pub managed_routes: Option<Vec<ManagedRoute>>,
    /// Apache APISIX route.
    pub apisix: Option<ApisixTrafficRouting>,
    /// Router plugins: plugin name → free configuration, kept verbatim.
    // `default` keeps the field optional in the schema: `schema_with` hides the Option.
    #[serde(default)]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub plugins: Option<serde_json::Map<String, serde_json::Value>>,
    /// Total weight (default 100; nginx and plugins only).
    pub max_traffic_weight: Option<i32>,
}

/// `managedRoutes[]: {name}` (upstream spells the Go type `MangedRoutes`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRoute {
    /// Route name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
}

/// `istio`: exactly one of virtualService / virtualServices.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioTrafficRouting {
    /// One VirtualService.
    pub virtual_service: Option<IstioVirtualService>,
    /// Subset-level split.
    pub destination_rule: Option<IstioDestinationRule>,
    /// Several VirtualServices.
    pub virtual_services: Option<Vec<IstioVirtualService>>,
}

/// A VirtualService and the routes in it to edit.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioVirtualService {
    /// VirtualService name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// HTTP route names (omitted: the single HTTP route).
    pub routes: Option<Vec<String>>,
    /// TLS routes by port and SNI hosts.
    pub tls_routes: Option<Vec<TlsRoute>>,
    /// TCP routes by port.
    pub tcp_routes: Option<Vec<TcpRoute>>,
}

/// A TLS route of a VirtualService.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsRoute {
    /// Port.
    pub port: Option<i64>,
    /// SNI hosts.
    pub sni_hosts: Option<Vec<String>>,
}

/// A TCP route of a VirtualService.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpRoute {
    /// Port.
    pub port: Option<i64>,
}

/// A DestinationRule whose subsets get the pod-template hashes.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioDestinationRule {
    /// DestinationRule name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Subset pointed at the canary.
    #[serde(default, deserialize_with = "or_zero")]
    pub canary_subset_name: String,
    /// Subset pointed at the stable.
    #[serde(default, deserialize_with = "or_zero")]
    pub stable_subset_name: String,
    /// Subsets left untouched.
    pub additional_subset_names: Option<Vec<String>>,
}

/// `nginx`: exactly one of stableIngress / stableIngresses.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NginxTrafficRouting {
    /// Annotation prefix (default `nginx.ingress.kubernetes.io`).
    pub annotation_prefix: Option<String>,
    /// The stable Ingress.
    pub stable_ingress: Option<String>,
    /// Extra canary annotations, keys prefixed with the annotation prefix.
    pub additional_ingress_annotations: Option<BTreeMap<String, String>>,
    /// Extra canary annotations, keys verbatim.
    pub canary_ingress_annotations: Option<BTreeMap<String, String>>,
    /// Several stable Ingresses.
    pub stable_ingresses: Option<Vec<String>>,
}

/// `alb`: exactly one of ingress / ingresses.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbTrafficRouting {
    /// The Ingress.
    pub ingress: Option<String>,
    /// Port the action routes to (required).
    #[serde(default, deserialize_with = "or_zero")]
    pub service_port: i32,
    /// Service in the Ingress that gets the action (default stableService).
    pub root_service: Option<String>,
    /// Annotation prefix (default `alb.ingress.kubernetes.io`).
    pub annotation_prefix: Option<String>,
    /// Target-group stickiness.
    pub stickiness_config: Option<StickinessConfig>,
    /// Several Ingresses.
    pub ingresses: Option<Vec<String>>,
}

/// ALB `stickinessConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StickinessConfig {
    /// Enabled.
    #[serde(default, deserialize_with = "or_zero")]
    pub enabled: bool,
    /// Stickiness duration.
    #[serde(default, deserialize_with = "or_zero")]
    pub duration_seconds: i64,
}

/// `smi`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmiTrafficRouting {
    /// Root service (default stableService).
    pub root_service: Option<String>,
    /// TrafficSplit name (default the rollout name).
    pub traffic_split_name: Option<String>,
}

/// `ambassador`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmbassadorTrafficRouting {
    /// Mapping names.
    #[serde(default, deserialize_with = "or_zero")]
    pub mappings: Vec<String>,
}

/// `appMesh`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshTrafficRouting {
    /// Virtual service and router.
    pub virtual_service: Option<AppMeshVirtualService>,
    /// Canary and stable virtual nodes.
    pub virtual_node_group: Option<AppMeshVirtualNodeGroup>,
}

/// App Mesh virtual service.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualService {
    /// Name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Route names.
    pub routes: Option<Vec<String>>,
}

/// App Mesh virtual nodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualNodeGroup {
    /// Canary virtual node.
    #[serde(default, deserialize_with = "or_zero")]
    pub canary_virtual_node_ref: AppMeshVirtualNodeReference,
    /// Stable virtual node.
    #[serde(default, deserialize_with = "or_zero")]
    pub stable_virtual_node_ref: AppMeshVirtualNodeReference,
}

/// A VirtualNode reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualNodeReference {
    /// VirtualNode name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
}

/// `traefik`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraefikTrafficRouting {
    /// TraefikService name.
    #[serde(default, deserialize_with = "or_zero")]
    pub weighted_traefik_service_name: String,
}

/// `apisix`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApisixTrafficRouting {
    /// The route.
    pub route: Option<ApisixRoute>,
}

/// An APISIX route and its rules.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApisixRoute {
    /// Route name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// HTTP rule names.
    pub rules: Option<Vec<String>>,
}
