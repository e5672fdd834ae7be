//! The controller process: kube-runtime watches that reconcile Rollouts through the pure
//! rollout core ([`rollouts`]) and apply plans with the [`executor`] (ReplicaSets, Services,
//! AnalysisRuns and traffic routers), AnalysisRuns through the analysis runner
//! ([`analysisruns`]), plus `/metrics` and `/healthz` ([`metrics`]), and the optional
//! Alertmanager webhook receiver ([`alerts`]).
//!
//! With [`ControllerConfig::leader_election`] only the holder of the Lease reconciles
//! ([`leader`]); `/metrics` and `/healthz` are served either way.

pub mod alerts;
pub mod analysisruns;
pub mod backoff;
pub mod executor;
pub mod leader;
pub mod metrics;
pub mod rollouts;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::api::{AnalysisRun, Rollout};
use metrics::Metrics;

/// How the controller runs.
#[derive(Debug, Clone, Default)]
pub struct ControllerConfig {
    /// Only this namespace; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// Where to serve `/metrics` and `/healthz` (upstream: `:8090`); `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
    /// Campaign for this Lease and reconcile only while holding it; `None` reconciles at once.
    pub leader_election: Option<leader::LeaderElection>,
    /// The Alertmanager webhook receiver; `None` (the default) serves none.
    pub alert_webhook: Option<alerts::AlertWebhookConfig>,
}

/// Failures that stop the controller.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The alert webhook listener could not bind.
    #[error("alert webhook receiver on {addr}: {source}")]
    AlertWebhook {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The metrics listener could not bind.
    #[error("metrics server on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The leader lease was lost; the reconcilers were stopped.
    #[error(transparent)]
    LeaderLost(#[from] leader::LeaderError),
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` is cancelled, then lets in-flight reconciles finish.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = config.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ControllerError::Metrics { addr, source })?;
        tokio::spawn(serve_metrics(listener, metrics.clone(), shutdown.clone()));
    }
    if let Some(webhook) = config.alert_webhook.clone() {
        let addr = webhook.listen;
        alerts::start(
            client.clone(),
            config.namespace.clone(),
            webhook,
            metrics.clone(),
            shutdown.clone(),
        )
        .await
        .map_err(|source| ControllerError::AlertWebhook { addr, source })?;
    }
    match config.leader_election {
        Some(election) => {
            let namespace = config.namespace;
            leader::run_elected(client.clone(), election, shutdown, move |leading| {
                run_reconcilers(client, namespace, metrics, leading)
            })
            .await?
        }
        None => run_reconcilers(client, config.namespace, metrics, shutdown).await,
    }
}

/// Runs the reconcilers until `shutdown` is cancelled, then lets in-flight reconciles finish.
async fn run_reconcilers(
    client: Client,
    namespace: Option<String>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    let namespace = namespace.as_deref();
    let ctx = Arc::new(rollouts::Context::new(client.clone(), metrics.clone()));
    let rollout_api: Api<Rollout> = api(&client, namespace);
    let rollout_controller = Controller::new(rollout_api, watcher::Config::default());
    let rollout_store = rollout_controller.store();
    let rollout_controller = rollout_controller
        .owns(
            api::<ReplicaSet>(&client, namespace),
            watcher::Config::default(),
        )
        .owns(
            api::<AnalysisRun>(&client, namespace),
            watcher::Config::default(),
        )
        .watches(
            api::<Service>(&client, namespace),
            watcher::Config::default(),
            rollouts::service_owner,
        )
        .watches(
            api::<Ingress>(&client, namespace),
            watcher::Config::default(),
            move |ingress| rollouts::ingress_rollouts(&rollout_store, &ingress),
        )
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(rollouts::reconcile, rollouts::error_policy, ctx);
    let run_ctx = Arc::new(analysisruns::Context::new(client.clone(), metrics));
    let run_controller = Controller::new(
        api::<AnalysisRun>(&client, namespace),
        watcher::Config::default(),
    )
    // A measurement Job finishing resumes its run without waiting for the poll.
    .owns(api::<Job>(&client, namespace), watcher::Config::default())
    .graceful_shutdown_on(shutdown.clone().cancelled_owned())
    .run(analysisruns::reconcile, analysisruns::error_policy, run_ctx);
    futures::join!(
        drain(rollout_controller, "rollout controller"),
        drain(run_controller, "analysisrun controller"),
    );
    Ok(())
}

/// Runs a controller stream to its end (shutdown), logging reconcile errors.
async fn drain<S, T, E>(stream: S, what: &'static str)
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        if let Err(error) = item {
            tracing::debug!(%error, "{what}");
        }
    }
}

/// Serves `/metrics` and `/healthz` until shutdown.
async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    use axum::routing::get;
    let router = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        );
    if let Err(error) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::warn!(%error, "metrics server stopped");
    }
}
