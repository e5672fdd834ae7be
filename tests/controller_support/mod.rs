//! What the controller test files share (included with `#[path]`): an in-process sandbox API
//! server with the workload simulator, controllers started and stopped by token, clients that
//! log the requests they send, a sandbox with a controller running on it ([`World`]), Rollout
//! builders, manifest reading and a polling `eventually`.

#![allow(dead_code)]

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use davy::api::Rollout;
use davy::controller::{ControllerConfig, ControllerError, run};
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// How long any condition may take before a test fails: generous, as the slowest files (demo
/// apps, analysis windows, promotion windows) need it on a loaded debug build.
pub const DEADLINE: Duration = Duration::from_secs(90);
/// The namespace every test works in.
pub const NS: &str = "default";

/// Polls `check` until it yields a value or [`DEADLINE`] passes (then fails with `what` and the
/// last state `check` described).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The simulator as most tests run it: [`NS`] only, pods Ready after 100 ms.
pub fn simulator_config() -> SimulatorConfig {
    SimulatorConfig {
        namespace: Some(NS.to_string()),
        pod_ready_delay: Duration::from_millis(100),
        ..SimulatorConfig::default()
    }
}

/// A controller for [`NS`] without leader election, metrics or alert webhook.
pub fn controller_config() -> ControllerConfig {
    ControllerConfig {
        namespace: Some(NS.to_string()),
        ..ControllerConfig::default()
    }
}

/// The YAML documents of the file at `path` (relative to the crate root), as JSON.
pub fn read_docs(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// One request a logging client sent: method and path with query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
}

/// The requests a client sent, shared with the test.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Request>>>);

impl RequestLog {
    /// Every request so far, in order.
    pub fn all(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }

    /// Requests so far matching `method` whose path contains `fragment`, except the watchers'
    /// requests (watches, and their initial lists, which are paged with `limit=`), so a count of
    /// lists is a count of reconciles.
    pub fn count(&self, method: &str, fragment: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.path.contains(fragment))
            .filter(|r| !r.path.contains("watch=true") && !r.path.contains("limit="))
            .count()
    }

    /// Writes (POST, PUT, PATCH, DELETE) so far, except to Leases and Events (a reconcile's
    /// events are sent by a background task, so they may land after the reconcile returned).
    pub fn writes_except_leases(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                r.method != "GET" && !r.path.contains("/leases") && !r.path.contains("/events")
            })
            .count()
    }
}

/// The sandbox: API server with Davy's CRDs and the workload simulator.
pub struct Sandbox {
    /// The API server.
    pub server: ApiServer,
    /// A client for the test itself.
    pub client: Client,
    simulator: Option<SimulatorHandle>,
}

impl Sandbox {
    /// Starts the server and the simulator with [`simulator_config`].
    pub async fn start() -> Sandbox {
        Sandbox::start_with(simulator_config()).await
    }

    /// Starts the server and the simulator with `simulator` (e.g. with demo apps).
    pub async fn start_with(simulator: SimulatorConfig) -> Sandbox {
        let server = ApiServer::new();
        server.install_davy_crds().expect("install crds");
        let client = server.client();
        let simulator = Simulator::start(client.clone(), simulator);
        Sandbox {
            server,
            client,
            simulator: Some(simulator),
        }
    }

    /// A client whose requests are recorded in the returned log.
    pub fn logging_client(&self) -> (Client, RequestLog) {
        let log = RequestLog::default();
        let record = log.clone();
        let service = tower::ServiceBuilder::new()
            .map_request(move |req: http::Request<kube::client::Body>| {
                let path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                record.0.lock().unwrap().push(Request {
                    method: req.method().to_string(),
                    path,
                });
                req
            })
            .service(self.server.service());
        (Client::new(service, NS), log)
    }

    /// Stops the simulator.
    pub async fn stop(mut self) {
        if let Some(simulator) = self.simulator.take() {
            simulator.shutdown().await;
        }
    }

    /// The API of the namespaced kind `K` in [`NS`].
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    /// The Rollouts API.
    pub fn rollouts(&self) -> Api<Rollout> {
        self.api()
    }

    /// The ReplicaSets API.
    pub fn replica_sets(&self) -> Api<ReplicaSet> {
        self.api()
    }

    /// The reasons of the Events on `name`, once every one of `wanted` is among them (the
    /// controller sends a reconcile's events from a background task, so they can land a little
    /// after the state the test saw).
    pub async fn event_reasons_including(&self, name: &str, wanted: &[&str]) -> Vec<String> {
        eventually(&format!("events {wanted:?} on {name}"), || async {
            let reasons: Vec<String> = self
                .events(name)
                .await
                .into_iter()
                .filter_map(|event| event.reason)
                .collect();
            match wanted.iter().find(|w| !reasons.iter().any(|r| r == *w)) {
                None => Ok(reasons),
                Some(missing) => Err(format!("no {missing} in {reasons:?}")),
            }
        })
        .await
    }

    /// The Events whose involved object is named `name`.
    pub async fn events(&self, name: &str) -> Vec<Event> {
        self.api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|event| event.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    /// The Rollout as JSON.
    pub async fn rollout_json(&self, name: &str) -> Value {
        let rollout = self.rollouts().get(name).await.expect("get rollout");
        serde_json::to_value(rollout).expect("rollout json")
    }

    /// The Rollout's status as JSON.
    pub async fn status(&self, name: &str) -> Value {
        self.rollout_json(name).await["status"].clone()
    }

    /// Creates a Rollout.
    pub async fn create(&self, rollout: &Rollout) {
        self.rollouts()
            .create(&PostParams::default(), rollout)
            .await
            .expect("create rollout");
    }

    /// Merge-patches the Rollout's spec (or metadata).
    pub async fn patch(&self, name: &str, patch: Value) {
        self.rollouts()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("patch rollout");
    }

    /// Merge-patches the Rollout's status subresource, as the CLI does.
    pub async fn patch_status(&self, name: &str, status: Value) {
        self.rollouts()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .expect("patch rollout status");
    }

    /// Sets the first container's image.
    pub async fn set_image(&self, name: &str, image: &str) {
        let patch: json_patch::Patch = serde_json::from_value(json!([{
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": image
        }]))
        .expect("patch");
        self.rollouts()
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
            .expect("set image");
    }

    /// `spec.replicas` of the ReplicaSet with pod-template hash `hash`.
    pub async fn rs_replicas(&self, hash: &str) -> Option<i32> {
        let list = self
            .replica_sets()
            .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
            .await
            .expect("list rs");
        list.items
            .first()
            .and_then(|rs| rs.spec.as_ref().and_then(|spec| spec.replicas))
    }

    /// Waits until the Rollout is Healthy with a stable RS; returns the stable hash.
    pub async fn healthy(&self, name: &str) -> String {
        eventually("the Rollout to become Healthy", || async {
            let status = self.status(name).await;
            let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
            if status["phase"] == "Healthy"
                && !stable.is_empty()
                && status["currentPodHash"] == stable.as_str()
            {
                Ok(stable)
            } else {
                Err(describe(&status))
            }
        })
        .await
    }
}

/// A running controller.
pub struct Controller {
    /// Cancelling this stops it.
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ControllerError>>,
}

impl Controller {
    /// Starts `davy::controller::run` with `config` on `client`.
    pub fn start(client: Client, config: ControllerConfig) -> Controller {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(client, config, shutdown.clone()));
        Controller { shutdown, task }
    }

    /// Starts a controller with [`controller_config`].
    pub fn plain(client: Client) -> Controller {
        Controller::start(client, controller_config())
    }

    /// Cancels it and returns how `run` ended.
    pub async fn stop(self) -> Result<(), ControllerError> {
        self.shutdown.cancel();
        self.task.await.expect("controller task")
    }

    /// Waits for `run` to end by itself.
    pub async fn join(self) -> Result<(), ControllerError> {
        self.task.await.expect("controller task")
    }

    /// Whether `run` has returned.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// A sandbox with one controller running on it; derefs to the [`Sandbox`].
pub struct World {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// The controller.
    pub controller: Controller,
}

impl World {
    /// A [`Sandbox::start`] with a [`Controller::plain`].
    pub async fn start() -> World {
        World::start_with(simulator_config(), controller_config()).await
    }

    /// A sandbox whose simulator runs with `simulator` and a controller with `controller`.
    pub async fn start_with(simulator: SimulatorConfig, controller: ControllerConfig) -> World {
        let sandbox = Sandbox::start_with(simulator).await;
        let controller = Controller::start(sandbox.client.clone(), controller);
        World {
            sandbox,
            controller,
        }
    }

    /// Stops the controller (failing if `run` failed), then the sandbox.
    pub async fn stop(self) {
        self.controller.stop().await.expect("controller");
        self.sandbox.stop().await;
    }
}

impl Deref for World {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

/// A free loopback port (bound and released; the controller binds it right after).
pub fn free_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// The samples a controller serves on `addr`'s `/metrics`.
pub async fn scrape(addr: std::net::SocketAddr) -> Result<Vec<prometheus_parse::Sample>, String> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let lines = text.lines().map(|line| Ok(line.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .map(|scrape| scrape.samples)
        .map_err(|e| e.to_string())
}

/// How many reconciles of Rollout `name` (in [`NS`]) the controller serving `/metrics` on
/// `addr` has finished, writes included (`rollout_reconcile_count`); 0 before the first.
pub async fn reconciles(addr: std::net::SocketAddr, name: &str) -> Result<u64, String> {
    let samples = scrape(addr).await?;
    let count = samples
        .iter()
        .find(|s| {
            s.metric == "rollout_reconcile_count"
                && s.labels.get("name") == Some(name)
                && s.labels.get("namespace") == Some(NS)
        })
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        });
    Ok(count as u64)
}

/// A canary Rollout `name` (label `app: <name>`) with `replicas`, `steps` and `image`.
pub fn canary_rollout(name: &str, replicas: i32, steps: Value, image: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"canary": {"steps": steps}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
}

/// Parses a Rollout.
pub fn rollout(value: Value) -> Rollout {
    serde_json::from_value(value).expect("rollout")
}

/// A one-line summary of a status for timeout messages.
pub fn describe(status: &Value) -> String {
    format!(
        "phase={} message={} step={} stable={} current={} pause={} abort={}",
        status["phase"],
        status["message"],
        status["currentStepIndex"],
        status["stableRS"],
        status["currentPodHash"],
        status["pauseConditions"],
        status["abort"]
    )
}

/// A blue-green Rollout `name` (label `app: <name>`) with `replicas` and `image`, active
/// Service `<name>-active`, preview Service `<name>-preview`, and the `extra` fields of
/// `blueGreen` (e.g. `autoPromotionEnabled`).
pub fn blue_green_rollout(name: &str, replicas: i32, extra: Value, image: &str) -> Value {
    let mut strategy = json!({
        "activeService": format!("{name}-active"),
        "previewService": format!("{name}-preview"),
    });
    if let (Some(target), Some(more)) = (strategy.as_object_mut(), extra.as_object()) {
        target.extend(more.clone());
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"blueGreen": strategy},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image,
                                         "ports": [{"containerPort": 8080}]}]}
            }
        }
    })
}

impl Sandbox {
    /// Creates a Service `name` selecting `app: <app>` on port 80 → 8080.
    pub async fn create_service(&self, name: &str, app: &str) {
        let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app": app},
                     "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}]}
        }))
        .expect("service");
        self.api::<k8s_openapi::api::core::v1::Service>()
            .create(&PostParams::default(), &service)
            .await
            .expect("create service");
    }

    /// The `rollouts-pod-template-hash` a Service selects (empty when none).
    pub async fn selector_of(&self, service: &str) -> String {
        let found = self
            .api::<k8s_openapi::api::core::v1::Service>()
            .get(service)
            .await
            .expect("get service");
        found
            .spec
            .and_then(|spec| spec.selector)
            .and_then(|selector| selector.get("rollouts-pod-template-hash").cloned())
            .unwrap_or_default()
    }

    /// Creates an AnalysisTemplate from JSON.
    pub async fn create_template(&self, template: Value) {
        let template: davy::api::AnalysisTemplate =
            serde_json::from_value(template).expect("template");
        self.api::<davy::api::AnalysisTemplate>()
            .create(&PostParams::default(), &template)
            .await
            .expect("create template");
    }

    /// Creates every document of a manifest (Rollout, Service, Ingress, AnalysisTemplate).
    pub async fn apply_docs(&self, docs: &[Value]) {
        for doc in docs {
            match doc["kind"].as_str().unwrap_or_default() {
                "Rollout" => self.create(&rollout(doc.clone())).await,
                "AnalysisTemplate" => self.create_template(doc.clone()).await,
                "Service" => {
                    let service: k8s_openapi::api::core::v1::Service =
                        serde_json::from_value(doc.clone()).expect("service");
                    self.api::<k8s_openapi::api::core::v1::Service>()
                        .create(&PostParams::default(), &service)
                        .await
                        .expect("create service");
                }
                "Ingress" => {
                    let ingress: k8s_openapi::api::networking::v1::Ingress =
                        serde_json::from_value(doc.clone()).expect("ingress");
                    self.api::<k8s_openapi::api::networking::v1::Ingress>()
                        .create(&PostParams::default(), &ingress)
                        .await
                        .expect("create ingress");
                }
                other => panic!("unexpected kind {other}"),
            }
        }
    }
}

/// A verdict server on 127.0.0.1: `GET /pass` answers `{"ok": true}`, `GET /fail`
/// `{"ok": false}`; returns its base URL (the server stops with the test's runtime).
pub async fn verdict_server() -> String {
    let app = axum::Router::new()
        .route(
            "/pass",
            axum::routing::get(|| async { axum::Json(json!({"ok": true})) }),
        )
        .route(
            "/fail",
            axum::routing::get(|| async { axum::Json(json!({"ok": false})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind verdict server");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// Creates the AnalysisTemplate `name` in [`NS`]: one web measurement of `{{args.url}}`
/// (`count` times, 1 s apart) that succeeds when the answer's `ok` is true.
pub async fn create_verdict_template(sandbox: &Sandbox, name: &str, count: i32) {
    let template: davy::api::AnalysisTemplate = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "args": [{"name": "url"}],
            "metrics": [{"name": "verdict", "count": count, "interval": "1s",
                         "successCondition": "result == true",
                         "provider": {"web": {"url": "{{args.url}}", "jsonPath": "{$.ok}"}}}]
        }
    }))
    .expect("template");
    sandbox
        .api::<davy::api::AnalysisTemplate>()
        .create(&PostParams::default(), &template)
        .await
        .expect("create template");
}

/// The Experiment `name` as JSON (`Null` when it does not exist).
pub async fn experiment_json(sandbox: &Sandbox, name: &str) -> Value {
    let found = sandbox
        .api::<davy::api::Experiment>()
        .get_opt(name)
        .await
        .expect("get experiment");
    serde_json::to_value(found).expect("experiment json")
}

/// Waits until the Experiment `name` reaches `phase`; returns it as JSON.
pub async fn experiment_phase(sandbox: &Sandbox, name: &str, phase: &str) -> Value {
    eventually(&format!("Experiment {name} to be {phase}"), || async {
        let ex = experiment_json(sandbox, name).await;
        if ex["status"]["phase"] == phase {
            Ok(ex)
        } else {
            Err(format!("{:#}", ex["status"]))
        }
    })
    .await
}
