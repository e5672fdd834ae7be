//! The split as the API describes it: the ready Pods behind the stable and canary Services
//! (their demo-app endpoints, see [`pod_endpoint`]) and the canary Ingress's routing rules.
//!
//! Endpoints are read from Pods directly, as the simulator publishes them, because the sandbox
//! runs no endpoints controller.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::load::Split;
use super::routing::{CanaryRules, DEFAULT_ANNOTATION_PREFIX};
use crate::sandbox::simulator::pod_endpoint;

/// Which objects make up a canary split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTargets {
    /// Namespace of the Services, Pods and Ingress.
    pub namespace: String,
    /// The Service the stable Ingress routes to (Argo's `stableService`).
    pub stable_service: String,
    /// The Service the canary Ingress routes to (Argo's `canaryService`).
    pub canary_service: String,
    /// The canary Ingress (Argo names it `<rollout>-<stableIngress>-canary`); `None` or absent
    /// means all traffic goes to stable.
    pub canary_ingress: Option<String>,
    /// The nginx annotation prefix (Argo's `annotationPrefix`).
    pub annotation_prefix: String,
}

impl SplitTargets {
    /// Targets with the default annotation prefix and no canary Ingress yet.
    pub fn new(namespace: &str, stable_service: &str, canary_service: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            stable_service: stable_service.to_string(),
            canary_service: canary_service.to_string(),
            canary_ingress: None,
            annotation_prefix: DEFAULT_ANNOTATION_PREFIX.to_string(),
        }
    }

    /// The same targets with a canary Ingress.
    pub fn with_canary_ingress(mut self, name: &str) -> Self {
        self.canary_ingress = Some(name.to_string());
        self
    }
}

/// The endpoints of the ready Pods a Service selects, sorted. A missing Service or one without
/// a selector has none.
pub async fn service_endpoints(
    client: &Client,
    namespace: &str,
    service: &str,
) -> Result<Vec<SocketAddr>, kube::Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let Some(svc) = services.get_opt(service).await? else {
        return Ok(Vec::new());
    };
    let selector = svc.spec.and_then(|s| s.selector).filter(|s| !s.is_empty());
    let Some(selector) = selector else {
        return Ok(Vec::new());
    };
    let query = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut endpoints: Vec<SocketAddr> = pods
        .list(&ListParams::default().labels(&query))
        .await?
        .items
        .iter()
        .filter_map(pod_endpoint)
        .collect();
    endpoints.sort();
    Ok(endpoints)
}

/// Reads the current split from the API.
pub async fn resolve_split(client: &Client, targets: &SplitTargets) -> Result<Split, kube::Error> {
    let stable = service_endpoints(client, &targets.namespace, &targets.stable_service).await?;
    let canary = service_endpoints(client, &targets.namespace, &targets.canary_service).await?;
    let rules = match &targets.canary_ingress {
        Some(name) => {
            let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &targets.namespace);
            ingresses.get_opt(name).await?.and_then(|ing| {
                CanaryRules::from_annotations(
                    &ing.metadata.annotations.unwrap_or_default(),
                    &targets.annotation_prefix,
                )
            })
        }
        None => None,
    };
    Ok(Split {
        stable,
        canary,
        rules,
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
