//! The workload simulator: a ReplicaSet controller and a kubelet-like Pod lifecycle, written
//! against any `kube::Client` (the sandbox API server in tests and demos).
//!
//! - ReplicaSets ([`replicaset`]): Pods are created and deleted to match `spec.replicas`
//!   (named `<rs>-<5 random characters>`, with the template's labels and a controller
//!   ownerReference); the status counts `replicas`, `fullyLabeledReplicas`, `readyReplicas`,
//!   `availableReplicas` (honouring `minReadySeconds`) and `observedGeneration`.
//! - Pods ([`pods`]): Pending, then Running and Ready [`SimulatorConfig::pod_ready_delay`]
//!   after the simulator first sees them. An image whose tag starts with
//!   [`PULL_ERROR_MARKER`] stays Pending with `ErrImagePull`, then `ImagePullBackOff`.
//! - With [`SimulatorConfig::demo_apps`], each running Pod is backed by a real
//!   [`DemoApp`](super::demo_app::DemoApp) for its first container's image, listening on the
//!   Pod's own loopback address (random in 127.0.0.0/8 outside 127.0.0.0/24, see
//!   [`pod_ip_from`]) and its first container's first `containerPort` (8080 when none), as in
//!   a cluster: `http://<status.podIP>:<containerPort>` reaches it. The port is also published
//!   in the annotation [`PORT_ANNOTATION`].

pub mod pods;
pub mod replicaset;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::demo_app::{DemoAppHandle, DemoAppOptions};
use super::load_generator::SplitMix64;

/// Pod annotation holding the loopback port of the Pod's demo app (its IP is `status.podIP`).
pub const PORT_ANNOTATION: &str = "sandbox.davy.dev/port";

/// Image tag prefix that makes the simulated image pull fail (`app:pull-error`,
/// `app:pull-error-v2`): the Pod stays Pending and never becomes ready.
pub const PULL_ERROR_MARKER: &str = "pull-error";

/// The field manager of every write the simulator makes.
pub use crate::api::field_manager::SIMULATOR as FIELD_MANAGER;

/// The wall clock the simulator writes into statuses; injectable so decisions can be replayed.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at the wall-clock time and then advances with tokio's clock, so tests
/// under `tokio::time::pause` see timestamps consistent with their timers. Share one with the
/// sandbox API server: `ApiServer::builder().clock(Arc::new(move || c.now()))`.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading the wall-clock time now.
    pub fn new() -> Self {
        Self {
            base: Utc::now(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::TimeDelta::from_std(self.start.elapsed()).unwrap_or_default();
        self.base + elapsed
    }
}

/// Any `Fn() -> DateTime<Utc>` is a clock (the API server's clock type is one).
impl<F: Fn() -> DateTime<Utc> + Send + Sync + 'static> Clock for F {
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Only this namespace; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// Time from first seeing a Pod to Running and Ready (and to `ErrImagePull` for the marker).
    pub pod_ready_delay: Duration,
    /// Back each running Pod with a real demo app on a loopback port.
    pub demo_apps: bool,
    /// Options of those demo apps.
    pub demo_app_options: DemoAppOptions,
    /// Retry delay after a failed reconcile.
    pub retry_delay: Duration,
    /// Longest time a deleted Pod stays Terminating (not ready) before the simulated kubelet
    /// removes it: its grace period, capped at this so that tests and demos need not wait 30 s.
    pub max_termination: Duration,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            pod_ready_delay: Duration::from_millis(500),
            demo_apps: false,
            demo_app_options: DemoAppOptions::default(),
            retry_delay: Duration::from_millis(200),
            max_termination: Duration::from_millis(200),
        }
    }
}

/// Errors of one reconcile (they are logged and retried, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// A request to the API server failed.
    #[error("simulator: API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A demo app could not start.
    #[error("simulator: {0}")]
    DemoApp(#[from] super::demo_app::DemoAppError),
    /// An object lacks a field the simulator needs.
    #[error("simulator: {0}")]
    Invalid(String),
}

/// A demo app bound to the Pod it serves.
#[derive(Debug)]
struct PodApp {
    namespace: String,
    name: String,
    app: DemoAppHandle,
}

/// State shared by the reconcilers.
pub(crate) struct Context {
    client: Client,
    config: SimulatorConfig,
    clock: Arc<dyn Clock>,
    /// Demo apps by Pod uid.
    apps: Mutex<HashMap<String, PodApp>>,
    /// When each Pod (by uid) was first seen; the start-up delay counts from there.
    first_seen: Mutex<HashMap<String, DateTime<Utc>>>,
    rng: Mutex<SplitMix64>,
}

impl Context {
    fn api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    fn apps(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodApp>> {
        // A poisoned map only means a reconcile panicked; its entries are still valid.
        self.apps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn first_seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, DateTime<Utc>>> {
        self.first_seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, SplitMix64> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn random_suffix(&self) -> String {
        replicaset::name_suffix(&mut self.rng())
    }

    /// A random Pod address (see [`pod_ip_from`]).
    fn random_pod_ip(&self) -> Ipv4Addr {
        let mut rng = self.rng();
        // Fewer than 1% of the draws are refused, so 64 draws never all fail in practice; the
        // fallback only keeps the loop bounded.
        (0..64)
            .find_map(|_| pod_ip_from(rng.next_u64()))
            .unwrap_or(Ipv4Addr::new(127, 1, 0, 1))
    }
}

/// Entry point of the simulator.
pub struct Simulator;

impl Simulator {
    /// Starts the ReplicaSet controller and the Pod lifecycle on `client` with the system clock.
    pub fn start(client: Client, config: SimulatorConfig) -> SimulatorHandle {
        Self::start_with_clock(client, config, Arc::new(SystemClock))
    }

    /// Starts the simulator with an explicit clock for the timestamps it writes.
    pub fn start_with_clock(
        client: Client,
        config: SimulatorConfig,
        clock: Arc<dyn Clock>,
    ) -> SimulatorHandle {
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            // std's randomly keyed hasher is a ready source of a per-process random seed.
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        };
        let ctx = Arc::new(Context {
            client,
            config,
            clock,
            apps: Mutex::new(HashMap::new()),
            first_seen: Mutex::new(HashMap::new()),
            rng: Mutex::new(SplitMix64::new(seed)),
        });
        let cancel = CancellationToken::new();
        let namespace = ctx.config.namespace.clone();
        let rs_api: Api<ReplicaSet> = ctx.api(namespace.as_deref());
        let pod_api: Api<Pod> = ctx.api(namespace.as_deref());

        let rs_controller = Controller::new(rs_api, watcher::Config::default())
            .owns(pod_api.clone(), watcher::Config::default())
            .graceful_shutdown_on(cancel.clone().cancelled_owned())
            .run(
                replicaset::reconcile,
                |_, error, ctx: Arc<Context>| retry(error, &ctx),
                ctx.clone(),
            );
        let pod_controller = Controller::new(pod_api.clone(), watcher::Config::default())
            .graceful_shutdown_on(cancel.clone().cancelled_owned())
            .run(
                pods::reconcile,
                |_, error, ctx: Arc<Context>| retry(error, &ctx),
                ctx.clone(),
            );
        let tasks = vec![
            tokio::spawn(drain("replicaset", rs_controller)),
            tokio::spawn(drain("pod", pod_controller)),
            tokio::spawn(pods::track_deletions(pod_api, ctx.clone(), cancel.clone())),
        ];
        SimulatorHandle { ctx, cancel, tasks }
    }
}

fn retry(error: &SimulatorError, ctx: &Context) -> Action {
    tracing::debug!(%error, "simulator reconcile failed; retrying");
    Action::requeue(ctx.config.retry_delay)
}

/// Runs a controller stream to its end, logging failures (the controller retries them itself).
async fn drain<T, E: std::fmt::Display>(
    what: &'static str,
    stream: impl futures::Stream<Item = Result<T, E>>,
) {
    use futures::StreamExt;
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        if let Err(error) = item {
            tracing::debug!(controller = what, %error, "simulator controller error");
        }
    }
}

/// The running simulator; [`SimulatorHandle::shutdown`] (or dropping it) stops it and its demo apps.
pub struct SimulatorHandle {
    ctx: Arc<Context>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl SimulatorHandle {
    /// The loopback address of the demo app backing Pod `namespace/name`, if it has one.
    pub fn demo_app_addr(&self, namespace: &str, name: &str) -> Option<SocketAddr> {
        self.ctx
            .apps()
            .values()
            .find(|a| a.namespace == namespace && a.name == name)
            .map(|a| a.app.addr())
    }

    /// How many demo apps are running.
    pub fn demo_app_count(&self) -> usize {
        self.ctx.apps().len()
    }

    /// Stops the controllers and every demo app, and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            // A join error means the task panicked; there is nothing left to stop.
            let _ = task.await;
        }
        let apps: Vec<PodApp> = self.ctx.apps().drain().map(|(_, a)| a).collect();
        for app in apps {
            app.app.shutdown().await;
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
        // Dropping the handles stops the demo apps.
        self.ctx.apps().clear();
    }
}

/// The demo app endpoint a Pod publishes: `status.podIP` and the [`PORT_ANNOTATION`], when
/// both are present, the IP is loopback, and the Pod is Ready. Traffic generators use this.
pub fn pod_endpoint(pod: &Pod) -> Option<SocketAddr> {
    if !pods::is_ready(pod) || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ip: IpAddr = pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
    let port: u16 = pod
        .metadata
        .annotations
        .as_ref()?
        .get(PORT_ANNOTATION)?
        .parse()
        .ok()?;
    ip.is_loopback().then_some(SocketAddr::new(ip, port))
}

/// The loopback address written as `status.hostIP`: every simulated Pod runs on this one node.
pub const POD_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The one node's name, set as `spec.nodeName` on the Pods the simulator creates (it schedules
/// them at once); a bound Pod is deleted gracefully, as in a cluster.
pub const NODE_NAME: &str = "sandbox-node";

/// The port a Pod's demo app listens on when its first container declares no `containerPort`
/// (the `davy/scrape` provider's default port too).
pub const DEFAULT_POD_PORT: u16 = 8080;

/// The Pod address drawn from 64 random bits: `127.X.Y.Z` from three of their bytes, refused
/// (`None`) inside 127.0.0.0/24 (left to the host's own services, 127.0.0.1 above all) and for
/// `Z` 0 or 255, so no Pod gets a network or broadcast-looking address. Linux routes all of
/// 127.0.0.0/8 to the loopback interface, so any of these can be bound without set-up.
pub fn pod_ip_from(bits: u64) -> Option<Ipv4Addr> {
    let [x, y, z, ..] = bits.to_le_bytes();
    let refused = (x == 0 && y == 0) || z == 0 || z == 255;
    (!refused).then_some(Ipv4Addr::new(127, x, y, z))
}

/// Whether `ip` is one [`pod_ip_from`] can give.
pub fn is_pod_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, x, y, z] = v4.octets();
            a == 127 && !(x == 0 && y == 0) && z != 0 && z != 255
        }
        IpAddr::V6(_) => false,
    }
}

/// The port a Pod's demo app listens on: its first container's first `containerPort`, or
/// [`DEFAULT_POD_PORT`] when it declares none (or an invalid one).
pub fn pod_port(pod: &Pod) -> u16 {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref()?.first())
        .and_then(|p| u16::try_from(p.container_port).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_POD_PORT)
}

/// A Kubernetes timestamp from a chrono one (sub-second precision is kept in memory; the API
/// serialises whole seconds).
pub fn to_time(t: DateTime<Utc>) -> Time {
    let ts = k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    Time(ts)
}

/// A chrono timestamp from a Kubernetes one.
pub fn from_time(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// `d` as a std duration, zero when negative.
fn non_negative(d: chrono::TimeDelta) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}
