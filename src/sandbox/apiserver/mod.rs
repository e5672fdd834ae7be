//! An in-process Kubernetes API server speaking the real REST protocol, for tests and the demo.
//!
//! One core, two transports: [`ApiServer::client`] hands kube-rs a `tower::Service` (no socket),
//! and [`ApiServer::serve`] listens on a loopback port for kubectl and other processes.
//! Semantics follow `reference/apiserver-double.md`: global resourceVersion, 409 on stale
//! writes, generation and status-subresource rules, no-op writes, merge/JSON/strategic patches,
//! server-side apply with managedFields, selectors, paging, watches with bookmarks and in-stream
//! 410, finalizers, owner-reference garbage collection, CRDs, discovery and minimal OpenAPI v3.
//!
//! Built-in kinds as kube-apiserver writes them where clients can tell (`builtins`): Secret
//! `stringData` folded into `data`, Service cluster IPs, Pod graceful deletion (a Pod bound to
//! a node keeps a `deletionTimestamp` for its grace period until a DELETE with grace 0 — the
//! simulated kubelet's — removes it). The same background task as kube-controller-manager
//! (`controllers`) keeps EndpointSlices and Endpoints from the ready and terminating Pods
//! behind each Service's selector (`endpoints`) and runs the owner-reference garbage collector
//! (`gc`: background, foreground and orphan propagation), after the write that called for it.
//!
//! Custom resources are pruned, defaulted and validated against their CRD's structural schema
//! (`schema`) and its CEL rules (`cel`), with `fieldValidation=Strict|Warn|Ignore` and
//! `Warning` headers; duplicate fields of any body are found while it is decoded (`body`).
//!
//! Known simplifications: Kubernetes' own CEL libraries are missing, a few string formats are
//! unchecked; every list page is read from the current state (the first page's
//! resourceVersion is reported throughout, so a watch from it replays any change in between).

mod body;
mod builtins;
mod cel;
mod controllers;
mod discovery;
mod endpoints;
mod error;
mod faults;
mod fields;
mod gc;
mod handlers;
mod http;
mod index;
mod patch;
mod render;
mod requests;
mod resources;
mod rules;
mod schema;
mod selectors;
mod service;
mod store;
mod typed;
mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::{ApiError, Cause};
pub use faults::{FaultStats, Faults, Verb};
pub use requests::{RequestCounts, Transport};
pub use service::{InProcessService, ServeHandle, kubeconfig_yaml};

use store::{State, Store, WriteCtx};

/// Supplies "now" for timestamps the server writes.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Failures of the programmatic helpers (the HTTP API answers with `Status` objects instead).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A document is not valid YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A document is not a CustomResourceDefinition.
    #[error("document {index} is a {kind}, not a CustomResourceDefinition")]
    NotACrd {
        /// The document's position in the file, from 0.
        index: usize,
        /// Its kind.
        kind: String,
    },
    /// The store rejected a CRD.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Reading the CRD file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub(crate) struct Inner {
    store: Arc<Store>,
    faults: Faults,
    requests: requests::RequestCounters,
    bookmark_interval: Duration,
    clock: Clock,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Whether the controller task ([`controllers`]) runs.
    controllers: std::sync::atomic::AtomicBool,
}

impl Inner {
    /// Starts the controller task once, when a tokio runtime is at hand (every request has one;
    /// a server built outside a runtime starts it with its first request).
    pub(crate) fn ensure_controllers(&self) {
        use std::sync::atomic::Ordering;
        if self.controllers.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.controllers.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = runtime.spawn(controllers::run(
            self.store.clone(),
            self.clock.clone(),
            self.shutdown.clone(),
        ));
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }
}

/// Configures an [`ApiServer`].
pub struct ApiServerBuilder {
    history_limit: usize,
    bookmark_interval: Duration,
    clock: Clock,
    seed: Option<u64>,
}

impl ApiServerBuilder {
    /// Watch events kept for replay (default 200,000). A watch that falls further behind gets 410
    /// and re-lists, as with a real server's watch cache.
    pub fn history_limit(mut self, events: usize) -> Self {
        self.history_limit = events;
        self
    }

    /// How often idle watches that asked for bookmarks get one (default 1 s).
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// The clock for creationTimestamp, deletionTimestamp and managedFields times.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Seed for uids and generated names (default: random per server).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The server, with the options given.
    pub fn build(self) -> ApiServer {
        let seed = self.seed.unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        });
        let store = Arc::new(Store::new(State::new(self.history_limit, seed)));
        let server = ApiServer {
            inner: Arc::new(Inner {
                faults: Faults::new(store.clone()),
                store,
                requests: requests::RequestCounters::default(),
                bookmark_interval: self.bookmark_interval,
                clock: self.clock,
                shutdown: CancellationToken::new(),
                tasks: Mutex::new(Vec::new()),
                controllers: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        server.create_default_namespaces();
        server.inner.ensure_controllers();
        server
    }
}

/// The sandbox API server. Cheap to clone; clones share one store.
#[derive(Clone)]
pub struct ApiServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("resource_version", &self.resource_version())
            .field("objects", &self.object_count())
            .finish()
    }
}

impl Default for ApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiServer {
    /// A server with the built-in kinds and the namespaces `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease`.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder with the default options.
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder {
            history_limit: 200_000,
            bookmark_interval: Duration::from_secs(1),
            clock: Arc::new(Utc::now),
            seed: None,
        }
    }

    fn create_default_namespaces(&self) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            // Creating these in a fresh store cannot fail (valid names, empty store).
            let _ = self.create_object("", "namespaces", None, body, "sandbox");
        }
    }

    /// The in-process transport, for `kube::Client::new(service, namespace)`.
    pub fn service(&self) -> InProcessService {
        self.inner.ensure_controllers();
        InProcessService {
            inner: self.inner.clone(),
        }
    }

    /// A kube client talking to this server in-process (default namespace `default`).
    /// Must be called inside a tokio runtime: kube's request buffer spawns a task.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.service(), "default")
    }

    /// Serves the API over HTTP on `addr` (use port 0 for a free port).
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<ServeHandle> {
        self.inner.ensure_controllers();
        service::serve(self.inner.clone(), addr).await
    }

    /// Fault injection for reliability tests.
    pub fn faults(&self) -> Faults {
        self.inner.faults.clone()
    }

    /// Requests served so far over `transport` (the HTTP count is what other processes, such
    /// as a `davy controller` pointed at [`ApiServer::serve`], asked for).
    pub fn request_counts(&self, transport: Transport) -> RequestCounts {
        self.inner.requests.snapshot(transport)
    }

    /// Writes a kubeconfig pointing at `http://addr`.
    pub fn write_kubeconfig(&self, path: &Path, addr: SocketAddr) -> std::io::Result<()> {
        service::write_kubeconfig(path, addr)
    }

    /// Installs Davy's own CRDs from the committed `manifests/crds.yaml` (tests/crds.rs keeps
    /// it equal to the generator's output): parsing it is several times faster than generating
    /// the schemas, which every sandbox start would otherwise pay (seconds in a debug build).
    pub fn install_davy_crds(&self) -> Result<Vec<String>, SandboxError> {
        self.install_crds_from_yaml(include_str!("../../../manifests/crds.yaml"))
    }

    /// Creates (or updates) every CustomResourceDefinition in a multi-document YAML string, so
    /// their kinds are served at once. Returns the CRD names in order.
    pub fn install_crds_from_yaml(&self, yaml: &str) -> Result<Vec<String>, SandboxError> {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(yaml).map_err(|e| SandboxError::Yaml(e.to_string()))?;
        self.install_crds(docs.into_iter().filter(|d| !d.is_null()))
    }

    /// Creates (or updates) CustomResourceDefinitions given as JSON values (e.g.
    /// `davy::api::crd::crd_values()`, which skips a YAML round trip). Returns their names.
    pub fn install_crds(
        &self,
        crds: impl IntoIterator<Item = Value>,
    ) -> Result<Vec<String>, SandboxError> {
        let mut names = Vec::new();
        for (index, doc) in crds.into_iter().enumerate() {
            let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind != "CustomResourceDefinition" {
                return Err(SandboxError::NotACrd {
                    index,
                    kind: kind.to_string(),
                });
            }
            let name = rules::meta_str(&doc, "name")
                .unwrap_or_default()
                .to_string();
            let ctx_now = (self.inner.clock)();
            let ctx = WriteCtx::internal(ctx_now, "davy-sandbox", "apiextensions.k8s.io/v1");
            let gr = store::crd_gr();
            self.inner.store.write(|s| -> Result<(), ApiError> {
                let def = s.registry().get(&gr).ok_or(ApiError::RouteNotFound)?;
                if s.get(&gr, &(String::new(), name.clone())).is_some() {
                    let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
                    let id = store::ObjectId {
                        def: &def,
                        ns: None,
                        name: &name,
                    };
                    s.update(id, fields::Scope::Main, &ctx, true, |old| {
                        let mut new = old.clone();
                        if let Some(m) = new.as_object_mut() {
                            m.insert("spec".into(), spec);
                        }
                        Ok(new)
                    })?;
                } else {
                    s.create(&def, None, doc, &ctx, true)?;
                }
                Ok(())
            })?;
            names.push(name);
        }
        Ok(names)
    }

    /// Creates an object directly (no HTTP), e.g. for fixtures; `group` "" is the core group.
    pub fn create_object(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        body: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let ctx = WriteCtx::internal((self.inner.clock)(), manager, "");
        self.inner.store.write(|s| {
            let def = s
                .registry()
                .all()
                .find(|d| d.gr.group == group && d.gr.resource == resource)
                .cloned()
                .ok_or(ApiError::RouteNotFound)?;
            s.create(&def, namespace, body, &ctx, true)
                .map(|o| (*o).clone())
        })
    }

    /// Runs a background task (a simulator, a controller) tied to this server: it is aborted by
    /// [`ApiServer::shutdown`]. Must be called inside a tokio runtime.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task);
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Ends every watch and listener and aborts background tasks. The store stays readable.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.abort();
        }
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.store.read().resource_version()
    }

    /// Number of stored objects of every kind (namespaces included).
    pub fn object_count(&self) -> usize {
        self.inner.store.read().object_count()
    }
}
