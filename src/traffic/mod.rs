//! Traffic routers (spec §7): for a Rollout, the observed router objects and the desired
//! traffic state, each router computes the objects it wants (pure); [`apply`] writes them.
//!
//! - `nginx`: the canary Ingress beside each stable Ingress (§7.1);
//! - `smi`: the TrafficSplit (§7.2);
//! - `istio`: VirtualService weights, DestinationRule subsets, managed header/mirror routes (§7.3);
//! - `gateway`: Gateway API route weights as the `argoproj-labs/gatewayAPI` plugin sets them;
//! - `alb`: AWS Load Balancer Controller action and condition annotations on the Ingresses;
//! - `ambassador`: canary Mappings with a `weight`;
//! - `traefik`: the weighted TraefikService;
//! - `apisix`: ApisixRoute backend weights and header-route copies;
//! - `appmesh`: App Mesh VirtualRouter weighted targets and VirtualNode hash selectors.
//!
//! The caller (the rollout layer) decides the weight, the hashes, which managed routes to set
//! or remove (§3.5), the Service selectors (§3.4) and `status.canary.weights`; routers only
//! turn that into objects, in upstream's order: remove managed routes, set the header route,
//! set the mirror route, update hashes, set the weight.

pub mod alb;
pub mod ambassador;
pub mod apisix;
pub mod apply;
pub mod appmesh;
pub mod error;
pub mod gateway;
pub mod istio;
mod istio_routes;
pub mod nginx;
pub mod objects;
pub mod smi;
pub mod traefik;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use crate::api::consts::{API_VERSION, kind};
use crate::api::rollout_status::WeightDestination;
use crate::api::traffic_routing::RolloutTrafficRouting;
use crate::api::{CanaryStrategy, Rollout, SetHeaderRoute, SetMirrorRoute};

pub use apply::{ApplyFailure, apply, observe};
pub use error::TrafficError;
pub use objects::{
    DesiredObject, GatewayRouteKind, ObjectKey, Observed, Ownership, PlannedWrite, ResourceType,
    RouterEvent, WriteAction, plan_write,
};
pub use smi::SmiApiVersion;

/// The traffic state a Rollout wants now (chosen by the rollout layer, spec §3.5).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrafficState {
    /// Canary weight, out of 100 (out of `maxTrafficWeight` for nginx).
    pub weight: i32,
    /// Pod-template hash of the canary ReplicaSet ("" when none).
    pub canary_hash: String,
    /// Pod-template hash of the stable ReplicaSet ("" when none).
    pub stable_hash: String,
    /// Experiment destinations with their weights (taken from the stable share).
    pub additional_destinations: Vec<WeightDestination>,
    /// Remove every route listed in `trafficRouting.managedRoutes` (promotion, abort,
    /// promote-full), before any header or mirror route below is applied.
    pub remove_managed_routes: bool,
    /// The current step's `setHeaderRoute` (only for revision > 1, as upstream).
    pub header_route: Option<SetHeaderRoute>,
    /// The current step's `setMirrorRoute` (only for revision > 1, as upstream).
    pub mirror_route: Option<SetMirrorRoute>,
}

/// Controller-wide router settings (upstream command-line flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// `--traffic-split-api-version` (default `v1alpha1`).
    pub smi_api_version: SmiApiVersion,
    /// `--istio-api-version` (default `v1alpha3`).
    pub istio_api_version: String,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            smi_api_version: SmiApiVersion::V1alpha1,
            istio_api_version: "v1alpha3".to_string(),
        }
    }
}

/// Everything a router's pure function reads.
#[derive(Clone, Copy, Debug)]
pub struct RouterInput<'a> {
    /// The Rollout.
    pub rollout: &'a Rollout,
    /// The router objects as observed.
    pub observed: &'a Observed,
    /// The desired traffic state.
    pub state: &'a TrafficState,
    /// Controller-wide settings.
    pub config: &'a RouterConfig,
}

/// A traffic router configured on a Rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    /// Istio VirtualService / DestinationRule.
    Istio,
    /// ingress-nginx canary Ingress.
    Nginx,
    /// SMI TrafficSplit.
    Smi,
    /// The `argoproj-labs/gatewayAPI` plugin.
    GatewayApi,
    /// AWS Load Balancer Controller Ingress annotations.
    Alb,
    /// Ambassador canary Mappings.
    Ambassador,
    /// AWS App Mesh VirtualRouter and VirtualNodes.
    AppMesh,
    /// Traefik weighted TraefikService.
    Traefik,
    /// Apache APISIX ApisixRoute.
    Apisix,
}

impl Router {
    /// Upstream's router type name (log and event wording).
    pub fn name(self) -> &'static str {
        match self {
            Router::Istio => "Istio",
            Router::Nginx => "Nginx",
            Router::Smi => "SMI",
            Router::GatewayApi => "GatewayAPI",
            Router::Alb => "ALB",
            Router::Ambassador => "Ambassador",
            Router::AppMesh => "AppMesh",
            Router::Traefik => "Traefik",
            Router::Apisix => "Apisix",
        }
    }

    /// The objects this router reads: observe them and pass them in [`RouterInput::observed`].
    pub fn watched(
        self,
        rollout: &Rollout,
        config: &RouterConfig,
    ) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
        match self {
            Router::Istio => istio::watched(rollout, config),
            Router::Nginx => nginx::watched(rollout),
            Router::Smi => smi::watched(rollout, config),
            Router::GatewayApi => gateway::watched(rollout),
            Router::Alb => alb::watched(rollout),
            Router::Ambassador => ambassador::watched(rollout),
            Router::AppMesh => appmesh::watched(rollout),
            Router::Traefik => traefik::watched(rollout),
            Router::Apisix => apisix::watched(rollout),
        }
    }

    /// The objects this router wants for `input` (pure).
    pub fn desired(self, input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
        match self {
            Router::Istio => istio::desired(input),
            Router::Nginx => nginx::desired(input),
            Router::Smi => smi::desired(input),
            Router::GatewayApi => gateway::desired(input),
            Router::Alb => alb::desired(input),
            Router::Ambassador => ambassador::desired(input),
            Router::AppMesh => appmesh::desired(input),
            Router::Traefik => traefik::desired(input),
            Router::Apisix => apisix::desired(input),
        }
    }

    /// Weight verification (upstream `VerifyWeight`): `None` = not applicable, which is what
    /// every router here answers. Only ALB verifies upstream, and only when the controller runs
    /// with `--alb-verify-weight` (off by default), by asking the AWS API for the target group
    /// weights; Davy does not talk to AWS.
    pub fn verify(self, _input: &RouterInput<'_>) -> Option<bool> {
        None
    }

    /// Whether `setHeaderRoute` steps have an effect with this router.
    pub fn supports_header_routes(self) -> bool {
        matches!(
            self,
            Router::Istio | Router::GatewayApi | Router::Alb | Router::Apisix
        )
    }

    /// Whether `setMirrorRoute` steps have an effect with this router.
    pub fn supports_mirror_routes(self) -> bool {
        matches!(self, Router::Istio)
    }
}

/// Routers configured on `rollout`, in upstream's order (istio, nginx, alb, smi, ambassador,
/// appMesh, traefik, apisix, plugins); empty without traffic routing. Errors on a router
/// plugin Davy does not implement.
pub fn routers(rollout: &Rollout) -> Result<Vec<Router>, TrafficError> {
    let Some(tr) = traffic_routing_opt(rollout) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (set, router) in [
        (tr.istio.is_some(), Router::Istio),
        (tr.nginx.is_some(), Router::Nginx),
        (tr.alb.is_some(), Router::Alb),
        (tr.smi.is_some(), Router::Smi),
        (tr.ambassador.is_some(), Router::Ambassador),
        (tr.app_mesh.is_some(), Router::AppMesh),
        (tr.traefik.is_some(), Router::Traefik),
        (tr.apisix.is_some(), Router::Apisix),
    ] {
        if set {
            out.push(router);
        }
    }
    for name in tr.plugins.iter().flat_map(|p| p.keys()) {
        if name == gateway::PLUGIN_NAME {
            out.push(Router::GatewayApi);
        } else {
            return Err(TrafficError::UnsupportedPlugin(name.clone()));
        }
    }
    Ok(out)
}

/// The desired objects of every router of `rollout`, in router order.
pub fn desired_all(
    rollout: &Rollout,
    observed: &Observed,
    state: &TrafficState,
    config: &RouterConfig,
) -> Result<Vec<DesiredObject>, TrafficError> {
    let input = RouterInput {
        rollout,
        observed,
        state,
        config,
    };
    let mut out = Vec::new();
    for router in routers(rollout)? {
        out.extend(router.desired(&input)?);
    }
    Ok(out)
}

/// The canary strategy of `rollout`.
pub(crate) fn canary(rollout: &Rollout) -> Result<&CanaryStrategy, TrafficError> {
    rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .ok_or(TrafficError::NotConfigured("canary strategy"))
}

fn traffic_routing_opt(rollout: &Rollout) -> Option<&RolloutTrafficRouting> {
    rollout
        .spec
        .strategy
        .canary
        .as_ref()?
        .traffic_routing
        .as_ref()
}

/// `spec.strategy.canary.trafficRouting` of `rollout`.
pub(crate) fn traffic_routing(rollout: &Rollout) -> Result<&RolloutTrafficRouting, TrafficError> {
    traffic_routing_opt(rollout).ok_or(TrafficError::NotConfigured("trafficRouting"))
}

/// The Rollout's namespace ("default" when unset, as kubectl would have filled it in).
pub(crate) fn namespace(rollout: &Rollout) -> String {
    rollout
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string())
}

/// The Rollout's name.
pub(crate) fn rollout_name(rollout: &Rollout) -> String {
    rollout.metadata.name.clone().unwrap_or_default()
}

/// The controller owner reference to `rollout` (upstream `NewControllerRef`).
pub(crate) fn controller_ref(rollout: &Rollout) -> Result<Value, TrafficError> {
    let uid = rollout
        .metadata
        .uid
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or(TrafficError::MissingField("metadata.uid"))?;
    Ok(json!({
        "apiVersion": API_VERSION,
        "kind": kind::ROLLOUT,
        "name": rollout_name(rollout),
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }))
}

/// A non-empty service name from the canary strategy, or `MissingField`.
pub(crate) fn service_name<'a>(
    name: &'a Option<String>,
    field: &'static str,
) -> Result<&'a str, TrafficError> {
    name.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(TrafficError::MissingField(field))
}

/// The (stable, canary) Service names (upstream `GetStableAndCanaryServices`): with a
/// `pingPong` block the ping and pong Services, ordered by `status.canary.stablePingPong`, when
/// `ping_pong_preferred` (ALB) or when neither stableService nor canaryService is set; the
/// canary's stableService and canaryService otherwise.
pub(crate) fn stable_and_canary_services(
    rollout: &Rollout,
    ping_pong_preferred: bool,
) -> (String, String) {
    let Some(strategy) = rollout.spec.strategy.canary.as_ref() else {
        return (String::new(), String::new());
    };
    let stable = strategy.stable_service.clone().unwrap_or_default();
    let canary = strategy.canary_service.clone().unwrap_or_default();
    if let Some(pp) = &strategy.ping_pong
        && (ping_pong_preferred || (stable.is_empty() && canary.is_empty()))
    {
        let stable_is_ping = rollout
            .status
            .as_ref()
            .is_some_and(|s| s.canary.stable_ping_pong == crate::api::consts::ping_pong::PING);
        return if stable_is_ping {
            (pp.ping_service.clone(), pp.pong_service.clone())
        } else {
            (pp.pong_service.clone(), pp.ping_service.clone())
        };
    }
    (stable, canary)
}
