//! [`TrafficError`]: what a traffic router can fail with. Messages are upstream's, verbatim,
//! because they end up in `TrafficRoutingError` events and `InvalidSpec` conditions that users
//! and tools already search for.

use thiserror::Error;

/// A traffic-router failure. `Display` gives upstream's message; [`TrafficError::category`] a
/// stable short name for metric labels and logs.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TrafficError {
    /// The Rollout has no canary strategy or no router block this function needs.
    #[error("rollout has no {0} configuration")]
    NotConfigured(&'static str),
    /// The Rollout lacks a field the router needs (uid for owner references, a service name).
    #[error("rollout is missing {0}")]
    MissingField(&'static str),
    /// The stable Ingress was not observed.
    #[error(
        "error retrieving stableIngress `{name}` from cache: ingress.networking.k8s.io \"{name}\" not found"
    )]
    StableIngressNotFound {
        /// Stable Ingress name.
        name: String,
    },
    /// No rule of the stable Ingress routes to the stable Service.
    #[error("ingress `{ingress}` has no rules using service {service} backend")]
    NoRulesForService {
        /// Stable Ingress name.
        ingress: String,
        /// Stable Service name.
        service: String,
    },
    /// The canary Ingress exists but another object is its controller.
    #[error("canary ingress `{0}` controlled by different object")]
    CanaryIngressNotControlled(String),
    /// The TrafficSplit exists but this Rollout is not its controller.
    #[error("Rollout does not own TrafficSplit `{0}`")]
    TrafficSplitNotOwned(String),
    /// A generic object of ours exists but this Rollout is not its controller.
    #[error("{kind} `{name}` controlled by different object")]
    NotControlled {
        /// Kind of the object.
        kind: String,
        /// Its name.
        name: String,
    },
    /// An object the router edits in place (VirtualService, DestinationRule, HTTPRoute) is
    /// absent; the message is the API server's NotFound text.
    #[error("{plural}.{group} \"{name}\" not found")]
    ObjectNotFound {
        /// Resource plural, e.g. `virtualservices`.
        plural: String,
        /// API group, e.g. `networking.istio.io`.
        group: String,
        /// Object name.
        name: String,
    },
    /// The routed object does not have the shape the Rollout expects (a named route missing,
    /// a destination missing, a backendRef missing); message verbatim from upstream.
    #[error("{0}")]
    InvalidRoute(String),
    /// A router plugin's configuration could not be read.
    #[error("{0}")]
    PluginConfig(String),
    /// A router plugin Davy does not implement.
    #[error("traffic router plugin `{0}` is not supported")]
    UnsupportedPlugin(String),
    /// The API server refused a read or a write.
    #[error("{message}")]
    Api {
        /// HTTP status code when the server answered (409 conflict, 404, ...).
        code: Option<u16>,
        /// The error text.
        message: String,
    },
}

impl TrafficError {
    /// Stable category, for metric labels and structured logs.
    pub fn category(&self) -> &'static str {
        match self {
            TrafficError::NotConfigured(_) | TrafficError::MissingField(_) => "Config",
            TrafficError::PluginConfig(_) | TrafficError::UnsupportedPlugin(_) => "Plugin",
            TrafficError::StableIngressNotFound { .. } | TrafficError::ObjectNotFound { .. } => {
                "NotFound"
            }
            TrafficError::NoRulesForService { .. } | TrafficError::InvalidRoute(_) => {
                "InvalidRoute"
            }
            TrafficError::CanaryIngressNotControlled(_)
            | TrafficError::TrafficSplitNotOwned(_)
            | TrafficError::NotControlled { .. } => "NotControlled",
            TrafficError::Api {
                code: Some(409), ..
            } => "Conflict",
            TrafficError::Api { .. } => "Api",
        }
    }

    /// True when retrying later can succeed without a spec change (API errors, conflicts,
    /// objects not yet present).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TrafficError::Api { .. }
                | TrafficError::ObjectNotFound { .. }
                | TrafficError::StableIngressNotFound { .. }
        )
    }
}

impl From<kube::Error> for TrafficError {
    fn from(e: kube::Error) -> Self {
        match &e {
            // The server's own message reads like upstream's (`x "y" not found`).
            kube::Error::Api(status) if !status.message.is_empty() => TrafficError::Api {
                code: Some(status.code),
                message: status.message.clone(),
            },
            kube::Error::Api(status) => TrafficError::Api {
                code: Some(status.code),
                message: e.to_string(),
            },
            _ => TrafficError::Api {
                code: None,
                message: e.to_string(),
            },
        }
    }
}
