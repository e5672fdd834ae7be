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
pub mod cache;
pub mod config;
pub mod events;
pub mod executor;
pub mod expectations;
pub mod experiments;
pub mod leader;
pub mod metrics;
pub mod notifications;
pub mod rollouts;
pub mod workloads;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::controller::{self as runtime_controller, Controller};
use kube::runtime::reflector::{self, ObjectRef, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::consts::label;
use crate::api::{AnalysisRun, Experiment, Rollout};
use metrics::Metrics;
use rollouts::Caches;

/// Rollout reconciles in flight at once when [`ControllerConfig::max_concurrent_reconciles`]
/// is not set: enough to keep the API server busy, few enough that a wave of 10,000 changes
/// does not hold 10,000 plans in memory at once.
pub const DEFAULT_CONCURRENT_RECONCILES: u16 = 32;

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
    /// Rollout reconciles in flight at once (`None`: [`DEFAULT_CONCURRENT_RECONCILES`]).
    pub max_concurrent_reconciles: Option<u16>,
    /// Trailing-edge debounce of Rollout reconciles (zero: none); see `--reconcile-debounce`.
    pub debounce: std::time::Duration,
    /// `--instance-id`: reconcile only the objects labelled
    /// `argo-rollouts.argoproj.io/controller-instance-id` with this value; `None`: only the
    /// objects without that label.
    pub instance_id: Option<String>,
    /// Namespace of the `argo-rollouts-config` ConfigMap to watch (the controller's own);
    /// `None` reads none.
    pub config_namespace: Option<String>,
    /// The namespace of `argo-rollouts-notification-configmap` and its Secret (the
    /// controller's); `None` sends no notifications.
    pub notifications_namespace: Option<String>,
}

/// The label selector of the watches of Rollouts, AnalysisRuns, Experiments and analysis
/// templates for `instance_id` (upstream's `InstanceIDRequirement`): the objects labelled
/// with it, or without an instance-id label when there is none. The caches then never hold
/// another instance's objects.
pub fn instance_id_selector(instance_id: Option<&str>) -> String {
    match instance_id.filter(|id| !id.is_empty()) {
        Some(id) => format!("{}={id}", label::CONTROLLER_INSTANCE_ID),
        None => format!("!{}", label::CONTROLLER_INSTANCE_ID),
    }
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
    let concurrency = config
        .max_concurrent_reconciles
        .unwrap_or(DEFAULT_CONCURRENT_RECONCILES);
    let scope = Scope {
        namespace: config.namespace,
        selector: instance_id_selector(config.instance_id.as_deref()),
        config_namespace: config.config_namespace,
        notifications: config.notifications_namespace,
    };
    match config.leader_election {
        Some(election) => {
            let debounce = config.debounce;
            leader::run_elected(client.clone(), election, shutdown, move |leading| {
                let runtime = runtime_controller::Config::default()
                    .concurrency(concurrency)
                    .debounce(debounce);
                run_reconcilers(client, scope, metrics, runtime, leading)
            })
            .await?
        }
        None => {
            let runtime = runtime_controller::Config::default()
                .concurrency(concurrency)
                .debounce(config.debounce);
            run_reconcilers(client, scope, metrics, runtime, shutdown).await
        }
    }
}

/// What one controller instance reconciles: a namespace (or all) and its instance-id selector.
#[derive(Debug, Clone)]
struct Scope {
    namespace: Option<String>,
    selector: String,
    config_namespace: Option<String>,
    /// The namespace of the notification ConfigMap and Secret; `None` sends none.
    notifications: Option<String>,
}

impl Scope {
    /// A watch of this instance's objects of a kind that carries the instance-id label.
    fn watch(&self) -> watcher::Config {
        watcher::Config::default().labels(&self.selector)
    }
}

/// Where a cached object's change is sent: the Rollout controller's trigger queue, or the
/// Experiment controller's. One watch per kind feeds both, so an owned kind is decoded once
/// however many controllers react to it (the Experiment controller had its own ReplicaSet and
/// AnalysisRun watches: every ReplicaSet event was decoded twice).
#[derive(Clone)]
struct Triggers {
    rollouts: mpsc::UnboundedSender<ObjectRef<Rollout>>,
    experiments: mpsc::UnboundedSender<ObjectRef<Experiment>>,
}

/// The controller owner an object's change concerns.
enum Owner {
    Rollout(ObjectRef<Rollout>),
    Experiment(ObjectRef<Experiment>),
}

/// The Rollout or Experiment that controls `object`, if either does.
fn owner_of<K: kube::Resource>(object: &K) -> Option<Owner> {
    if let Some(rollout) = rollouts::rollout_owner(object) {
        return Some(Owner::Rollout(rollout));
    }
    let namespace = object.meta().namespace.as_deref()?;
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true) && owner.kind == "Experiment")
        .map(|owner| Owner::Experiment(ObjectRef::new(&owner.name).within(namespace)))
}

impl Triggers {
    /// Sends to the Rollout queue (the receiver only goes away at shutdown).
    fn to_rollouts(&self) -> impl FnMut(ObjectRef<Rollout>) + Send + 'static {
        let rollouts = self.rollouts.clone();
        move |rollout| {
            let _ = rollouts.send(rollout);
        }
    }

    /// Sends each owner to its controller's queue.
    fn to_owners(&self) -> impl FnMut(Owner) + Send + 'static {
        let triggers = self.clone();
        move |owner| match owner {
            Owner::Rollout(rollout) => {
                let _ = triggers.rollouts.send(rollout);
            }
            Owner::Experiment(experiment) => {
                let _ = triggers.experiments.send(experiment);
            }
        }
    }
}

/// Starts one watch per cached kind, each feeding its cache and sending the Rollouts (and,
/// for ReplicaSets and AnalysisRuns, the Experiments) its changes concern to `triggers`.
fn start_caches(
    client: &Client,
    scope: &Scope,
    caches: &Caches,
    stable_ingresses: Arc<rollouts::StableIngressIndex>,
    triggers: &Triggers,
    tasks: &mut JoinSet<()>,
) {
    let namespace = scope.namespace.as_deref();
    let all = watcher::Config::default;
    // Only ReplicaSets a Rollout made carry this label; Deployments' ReplicaSets are not read.
    let owned_rs = all().labels(label::POD_TEMPLATE_HASH);
    tasks.spawn(cache::feed(
        caches.replica_sets.clone(),
        api(client, namespace),
        owned_rs,
        owner_of,
        triggers.to_owners(),
    ));
    tasks.spawn(cache::feed(
        caches.analysis_runs.clone(),
        api(client, namespace),
        scope.watch(),
        owner_of,
        triggers.to_owners(),
    ));
    tasks.spawn(cache::feed(
        caches.experiments.clone(),
        api(client, namespace),
        scope.watch(),
        rollouts::rollout_owner,
        triggers.to_rollouts(),
    ));
    tasks.spawn(cache::feed(
        caches.services.clone(),
        api(client, namespace),
        all(),
        rollouts::service_owner,
        triggers.to_rollouts(),
    ));
    tasks.spawn(cache::feed(
        caches.ingresses.clone(),
        api(client, namespace),
        all(),
        move |ingress| rollouts::ingress_rollouts(&stable_ingresses, ingress),
        triggers.to_rollouts(),
    ));
    // A template change is picked up at the next reconcile of the Rollouts naming it (an
    // invalid spec is looked at again every 10 s).
    // Templates are an instance's too, as upstream filters their informers.
    tasks.spawn(cache::feed(
        caches.analysis_templates.clone(),
        api(client, namespace),
        scope.watch(),
        |_: &_| None,
        triggers.to_rollouts(),
    ));
    tasks.spawn(cache::feed(
        caches.cluster_analysis_templates.clone(),
        Api::all(client.clone()),
        scope.watch(),
        |_: &_| None,
        triggers.to_rollouts(),
    ));
}

/// Runs the reconcilers until `shutdown` is cancelled, then lets in-flight reconciles finish.
async fn run_reconcilers(
    client: Client,
    scope: Scope,
    metrics: Arc<Metrics>,
    runtime: runtime_controller::Config,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    let namespace = scope.namespace.as_deref();
    tracing::info!(
        namespace = namespace.unwrap_or("(all)"),
        selector = %scope.selector,
        ?runtime,
        "starting the Rollout and AnalysisRun controllers"
    );
    let caches = Arc::new(Caches::default());
    let ctx = Arc::new(rollouts::Context::new(
        client.clone(),
        metrics.clone(),
        caches.clone(),
    ));
    let (rollout_store, writer) = reflector::store::<Rollout>();
    let forget = ctx.clone();
    let stable_ingresses = Arc::new(rollouts::StableIngressIndex::default());
    let index = stable_ingresses.clone();
    let workloads = caches.workloads.clone();
    let rollout_stream = reflector(
        writer,
        watcher::watcher(api::<Rollout>(&client, namespace), scope.watch())
            .default_backoff()
            .modify(cache::slim)
            .inspect(move |event| {
                match event {
                    Ok(watcher::Event::Apply(rollout) | watcher::Event::InitApply(rollout)) => {
                        index.update(rollout, false);
                        workloads.update(rollout, false);
                    }
                    // A deleted Rollout leaves no series and no pending expectations behind.
                    Ok(watcher::Event::Delete(rollout)) => {
                        index.update(rollout, true);
                        workloads.update(rollout, true);
                        forget.forget(rollout);
                    }
                    _ => {}
                }
            }),
    )
    .applied_objects();
    let (rollout_triggers, triggered) = mpsc::unbounded_channel();
    let (experiment_triggers, experiments_triggered) = mpsc::unbounded_channel();
    let triggers = Triggers {
        rollouts: rollout_triggers,
        experiments: experiment_triggers,
    };
    let watches_stop = shutdown.child_token();
    caches.workloads.start_watching(
        client.clone(),
        scope.namespace.clone(),
        triggers.rollouts.clone(),
        watches_stop.clone(),
    );
    let mut tasks = JoinSet::new();
    start_caches(
        &client,
        &scope,
        &caches,
        stable_ingresses,
        &triggers,
        &mut tasks,
    );
    tasks.spawn(prune_expectations(ctx.clone()));
    if let Some(config_namespace) = scope.config_namespace.clone() {
        tasks.spawn(config::watch(
            client.clone(),
            config_namespace,
            ctx.config.clone(),
        ));
    }
    if let Some(notifications) = scope.notifications.clone() {
        let notifier = notifications::start(
            client.clone(),
            notifications,
            rollout_store.clone(),
            caches.analysis_runs.clone(),
            metrics.clone(),
            &mut tasks,
        );
        ctx.events.notify_to(notifier);
    }
    let triggered = receiver_stream(triggered);
    let rollout_controller = Controller::for_stream(rollout_stream, rollout_store)
        .reconcile_on(triggered)
        .with_config(runtime)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(rollouts::reconcile, rollouts::error_policy, ctx);
    let run_ctx = Arc::new(analysisruns::Context::new(client.clone(), metrics));
    let run_controller = Controller::new(api::<AnalysisRun>(&client, namespace), scope.watch())
        // A measurement Job finishing resumes its run without waiting for the poll.
        .owns(api::<Job>(&client, namespace), watcher::Config::default())
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(analysisruns::reconcile, analysisruns::error_policy, run_ctx);
    let experiment_controller = experiment_controller(
        &client,
        &scope,
        receiver_stream(experiments_triggered),
        &shutdown,
    );
    futures::join!(
        drain(rollout_controller, "rollout controller"),
        drain(run_controller, "analysisrun controller"),
        drain(experiment_controller, "experiment controller"),
    );
    tasks.abort_all();
    watches_stop.cancel();
    Ok(())
}

/// The items of `receiver` as a stream.
fn receiver_stream<T>(receiver: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

/// The Experiment controller: reconciles on Experiment changes and on `owned_changes`, the
/// Experiments whose ReplicaSets and AnalysisRuns changed (from the shared caches' watches).
fn experiment_controller(
    client: &Client,
    scope: &Scope,
    owned_changes: impl futures::Stream<Item = ObjectRef<Experiment>> + Send + 'static,
    shutdown: &CancellationToken,
) -> impl futures::Stream<
    Item = Result<
        (ObjectRef<Experiment>, kube::runtime::controller::Action),
        runtime_controller::Error<experiments::ExperimentError, watcher::Error>,
    >,
> {
    let ctx = Arc::new(experiments::Context::new(client.clone()));
    Controller::new(
        api::<Experiment>(client, scope.namespace.as_deref()),
        scope.watch(),
    )
    .reconcile_on(owned_changes)
    .graceful_shutdown_on(shutdown.clone().cancelled_owned())
    .run(experiments::reconcile, experiments::error_policy, ctx)
}

/// Drops, once a minute, the expectations of Rollouts that were deleted while waiting.
async fn prune_expectations(ctx: Arc<rollouts::Context>) {
    let mut tick = tokio::time::interval(expectations::TIMEOUT * 2);
    loop {
        tick.tick().await;
        ctx.expectations.prune(std::time::Instant::now());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn owned_by(kind: &str, controller: bool) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some("rs".into()),
                namespace: Some("ns".into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "argoproj.io/v1alpha1".into(),
                    kind: kind.into(),
                    name: "owner".into(),
                    uid: "u".into(),
                    controller: Some(controller),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_instance_sees_its_own_label_and_the_default_one_only_unlabelled_objects() {
        assert_eq!(
            instance_id_selector(Some("blue")),
            "argo-rollouts.argoproj.io/controller-instance-id=blue"
        );
        assert_eq!(
            instance_id_selector(None),
            "!argo-rollouts.argoproj.io/controller-instance-id"
        );
        assert_eq!(instance_id_selector(Some("")), instance_id_selector(None));
    }

    #[test]
    fn a_change_goes_to_the_controller_of_its_owner_kind() {
        assert!(matches!(
            owner_of(&owned_by("Rollout", true)),
            Some(Owner::Rollout(r)) if r.name == "owner" && r.namespace.as_deref() == Some("ns")
        ));
        assert!(matches!(
            owner_of(&owned_by("Experiment", true)),
            Some(Owner::Experiment(e)) if e.name == "owner" && e.namespace.as_deref() == Some("ns")
        ));
        // Not the controller, or another kind: nobody is triggered.
        assert!(owner_of(&owned_by("Experiment", false)).is_none());
        assert!(owner_of(&owned_by("Deployment", true)).is_none());
    }
}
