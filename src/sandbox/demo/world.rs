//! The demo's sandbox: the API server on 127.0.0.1 (real HTTP, so `kubectl` works too), the
//! workload simulator with demo apps (each Pod on its own loopback address, so the template's
//! `davy/scrape` `pods:` block reads them as in a cluster), the controller and the traffic
//! generator; plus the thin executors that read the story's [`Observed`] state and carry out
//! its [`Action`]s through the API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::script::{Action, Observed, ROLLOUT, ReplicaSetState, RunState};
use crate::api::consts::label;
use crate::api::{AnalysisRun, AnalysisTemplate, Experiment, Rollout};
use crate::cli::get::{Colorizer, Objects, render_rollout, rollout_info};
use crate::controller::{ControllerConfig, ControllerError, run as run_controller};
use crate::sandbox::apiserver::ApiServer;
use crate::sandbox::apiserver::ServeHandle;
use crate::sandbox::load_generator::{
    LoadConfig, LoadReport, SplitTargets, TrafficError, follow_split,
};
use crate::sandbox::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use crate::traffic::nginx::canary_ingress_name;

/// The namespace everything lives in.
pub const NAMESPACE: &str = "default";
/// The manifests the demo applies (the Rollout, its AnalysisTemplate, Services and Ingress).
pub const MANIFESTS: &str = include_str!("../../../examples/rollouts-demo-analysis.yaml");
/// The stable Ingress of the demo Rollout.
pub const STABLE_INGRESS: &str = "rollouts-demo";
/// Requests per second the traffic generator sends through the simulated ingress.
pub const TRAFFIC_RATE: f64 = 40.0;

/// The running sandbox.
pub struct World {
    server: ApiServer,
    http: ServeHandle,
    /// A client talking HTTP to the sandbox, as `kubectl` would.
    pub client: Client,
    /// The kubeconfig written for the sandbox.
    pub kubeconfig: PathBuf,
    shutdown: CancellationToken,
    controller: JoinHandle<Result<(), ControllerError>>,
    simulator: SimulatorHandle,
    traffic: Option<Traffic>,
}

/// A running load generator and the task following the canary split.
struct Traffic {
    cancel: CancellationToken,
    load: JoinHandle<Result<LoadReport, TrafficError>>,
    split: JoinHandle<()>,
}

impl World {
    /// Starts the API server, simulator and controller; nothing is applied yet.
    pub async fn start() -> anyhow::Result<World> {
        let server = ApiServer::new();
        server
            .install_davy_crds()
            .context("installing Davy's CRDs")?;
        let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        let http = server
            .serve(listen)
            .await
            .context("serving the sandbox API on 127.0.0.1")?;
        let addr = http.addr();
        let kubeconfig = std::env::temp_dir().join(format!("davy-demo-{}.kubeconfig", addr.port()));
        server
            .write_kubeconfig(&kubeconfig, addr)
            .with_context(|| format!("writing {}", kubeconfig.display()))?;
        let client = http_client(addr)?;
        let simulator = Simulator::start(
            client.clone(),
            SimulatorConfig {
                namespace: Some(NAMESPACE.to_string()),
                pod_ready_delay: Duration::from_millis(300),
                demo_apps: true,
                ..SimulatorConfig::default()
            },
        );
        let shutdown = CancellationToken::new();
        let controller = tokio::spawn({
            let client = client.clone();
            let stop = shutdown.clone();
            async move {
                let config = ControllerConfig {
                    namespace: Some(NAMESPACE.to_string()),
                    ..ControllerConfig::default()
                };
                run_controller(client, config, stop).await
            }
        });
        Ok(World {
            server,
            http,
            client,
            kubeconfig,
            shutdown,
            controller,
            simulator,
            traffic: None,
        })
    }

    /// The API server's address.
    pub fn addr(&self) -> SocketAddr {
        self.http.addr()
    }

    /// Applies the demo manifests. `metric_patch`'s fields replace those of the
    /// AnalysisTemplate's metrics when set (the Prometheus variant); otherwise the manifest is
    /// applied as written.
    pub async fn apply(&self, metric_patch: Option<Value>) -> anyhow::Result<()> {
        self.apply_manifests(MANIFESTS, metric_patch, |_| {}).await
    }

    /// Applies the documents of `manifests`, each edited by `edit` first, with `metric_patch`
    /// as in [`World::apply`].
    pub async fn apply_manifests(
        &self,
        manifests: &str,
        metric_patch: Option<Value>,
        edit: impl Fn(&mut Value),
    ) -> anyhow::Result<()> {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(manifests).context("parsing the demo manifests")?;
        let post = PostParams::default();
        for mut doc in docs {
            edit(&mut doc);
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "Rollout" => {
                    let ro: Rollout = serde_json::from_value(doc)?;
                    self.api::<Rollout>().create(&post, &ro).await?;
                }
                "AnalysisTemplate" => {
                    if let Some(patch) = metric_patch.as_ref().and_then(Value::as_object) {
                        for metric in doc["spec"]["metrics"].as_array_mut().into_iter().flatten() {
                            for (key, value) in patch {
                                metric[key.as_str()] = value.clone();
                            }
                        }
                    }
                    let t: AnalysisTemplate = serde_json::from_value(doc)?;
                    self.api::<AnalysisTemplate>().create(&post, &t).await?;
                }
                "Service" => {
                    let s: Service = serde_json::from_value(doc)?;
                    self.api::<Service>().create(&post, &s).await?;
                }
                "Ingress" => {
                    let i: Ingress = serde_json::from_value(doc)?;
                    self.api::<Ingress>().create(&post, &i).await?;
                }
                other => anyhow::bail!("the demo manifests hold an unexpected kind {other:?}"),
            }
        }
        Ok(())
    }

    /// Starts sending traffic through the simulated ingress-nginx split.
    pub async fn start_traffic(&mut self, limit: Duration) -> anyhow::Result<()> {
        // As ingress-nginx serves it: the stable Ingress's backend, the canary Ingress the
        // controller writes for the same host and path, each Service through its EndpointSlices.
        let targets = SplitTargets::from_ingress(NAMESPACE, STABLE_INGRESS)
            .with_canary_ingress(&canary_ingress_name(ROLLOUT, STABLE_INGRESS));
        self.start_traffic_to(targets, limit).await
    }

    /// Starts sending traffic to `targets` (all of it to the stable Service without a canary
    /// Ingress).
    pub async fn start_traffic_to(
        &mut self,
        targets: SplitTargets,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let (split_rx, split) = follow_split(
            self.client.clone(),
            targets,
            Duration::from_millis(200),
            cancel.clone(),
        )
        .await
        .context("reading the traffic split")?;
        let config = LoadConfig {
            rate_per_second: TRAFFIC_RATE,
            max_requests: None,
            max_duration: Some(limit),
            request_timeout: Duration::from_secs(2),
            seed: 7,
            ..LoadConfig::default()
        };
        let stop = cancel.clone();
        let load = tokio::spawn(async move {
            crate::sandbox::load_generator::run_load(&config, split_rx, stop).await
        });
        self.traffic = Some(Traffic {
            cancel,
            load,
            split,
        });
        Ok(())
    }

    /// Stops the traffic and returns what it saw.
    pub async fn stop_traffic(&mut self) -> Option<LoadReport> {
        let traffic = self.traffic.take()?;
        traffic.cancel.cancel();
        let _ = traffic.split.await;
        match traffic.load.await {
            Ok(Ok(report)) => Some(report),
            _ => None,
        }
    }

    /// The API of the namespaced kind `K` in the demo namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// Reads the demo's state: the story's view of it and the `get rollout` text.
    pub async fn observe(&self, color: Colorizer) -> anyhow::Result<(Observed, String)> {
        let lp = ListParams::default();
        let Some(ro) = self.api::<Rollout>().get_opt(ROLLOUT).await? else {
            return Ok((Observed::default(), String::new()));
        };
        let rss = self.api::<ReplicaSet>().list(&lp).await?.items;
        let pods = self.api::<Pod>().list(&lp).await?.items;
        let runs = self.api::<AnalysisRun>().list(&lp).await?.items;
        let experiments = self.api::<Experiment>().list(&lp).await?.items;
        let canary = self
            .api::<Ingress>()
            .get_opt(&canary_ingress_name(ROLLOUT, STABLE_INGRESS))
            .await?;
        let objects = Objects {
            replica_sets: &rss,
            pods: &pods,
            experiments: &experiments,
            analysis_runs: &runs,
        };
        let tree = render_rollout(
            &rollout_info(&ro, objects),
            k8s_openapi::jiff::Timestamp::now(),
            color,
        );
        Ok((observed(&ro, &rss, &runs, canary.as_ref()), tree))
    }

    /// Carries out a move of the story.
    pub async fn act(&self, action: Action) -> anyhow::Result<()> {
        match action {
            Action::SetImage(image) => self.set_image(ROLLOUT, image).await,
            Action::Promote => self.promote(ROLLOUT).await,
        }
    }

    /// `set image`: the first container of Rollout `name` runs `image`.
    pub async fn set_image(&self, name: &str, image: &str) -> anyhow::Result<()> {
        let patch: json_patch::Patch = serde_json::from_value(json!([{
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": image,
        }]))?;
        self.api::<Rollout>()
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
            .with_context(|| format!("setting the image to {image}"))?;
        Ok(())
    }

    /// `promote` at a pause: clear the pause conditions of Rollout `name`.
    pub async fn promote(&self, name: &str) -> anyhow::Result<()> {
        self.api::<Rollout>()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"pauseConditions": null}})),
            )
            .await
            .context("promoting")?;
        Ok(())
    }

    /// Rollout `name`, its ReplicaSets and its `get rollout` tree, if it exists.
    pub async fn rollout_tree(
        &self,
        name: &str,
        color: Colorizer,
    ) -> anyhow::Result<Option<(Rollout, Vec<ReplicaSet>, String)>> {
        let lp = ListParams::default();
        let Some(ro) = self.api::<Rollout>().get_opt(name).await? else {
            return Ok(None);
        };
        let rss = self.api::<ReplicaSet>().list(&lp).await?.items;
        let pods = self.api::<Pod>().list(&lp).await?.items;
        let runs = self.api::<AnalysisRun>().list(&lp).await?.items;
        let experiments = self.api::<Experiment>().list(&lp).await?.items;
        let objects = Objects {
            replica_sets: &rss,
            pods: &pods,
            experiments: &experiments,
            analysis_runs: &runs,
        };
        let tree = render_rollout(
            &rollout_info(&ro, objects),
            k8s_openapi::jiff::Timestamp::now(),
            color,
        );
        Ok(Some((ro, rss, tree)))
    }

    /// Stops everything (traffic first, then the controller, simulator and server).
    pub async fn stop(mut self) {
        self.stop_traffic().await;
        self.shutdown.cancel();
        match self.controller.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("controller stopped with an error: {error}"),
            Err(error) => eprintln!("controller task failed: {error}"),
        }
        self.simulator.shutdown().await;
        self.http.shutdown().await;
        self.server.shutdown();
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// A kube client for `http://addr`, namespace `default`.
fn http_client(addr: SocketAddr) -> anyhow::Result<Client> {
    let url = format!("http://{addr}")
        .parse()
        .context("the sandbox URL")?;
    let mut config = kube::Config::new(url);
    config.default_namespace = NAMESPACE.to_string();
    Client::try_from(config).context("building the sandbox client")
}

/// The story's view of the objects (pure).
pub fn observed(
    ro: &Rollout,
    rss: &[ReplicaSet],
    runs: &[AnalysisRun],
    canary_ingress: Option<&Ingress>,
) -> Observed {
    let status = ro.status.clone().unwrap_or_default();
    let image = ro
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let hash_of = |labels: Option<&BTreeMap<String, String>>| {
        labels
            .and_then(|l| l.get(label::POD_TEMPLATE_HASH))
            .cloned()
            .unwrap_or_default()
    };
    let replica_sets = rss
        .iter()
        .map(|rs| ReplicaSetState {
            hash: hash_of(rs.metadata.labels.as_ref()),
            replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            ready: rs
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
        })
        .collect();
    let analysis_runs = runs
        .iter()
        .map(|run| {
            let st = run.status.clone().unwrap_or_default();
            let measurements: Vec<_> = st
                .metric_results
                .iter()
                .flat_map(|m| m.measurements.iter())
                .collect();
            RunState {
                name: run.metadata.name.clone().unwrap_or_default(),
                hash: hash_of(run.metadata.labels.as_ref()),
                phase: st.phase.map(|p| p.as_str().to_string()).unwrap_or_default(),
                last_value: measurements
                    .iter()
                    .rev()
                    .find(|m| !m.value.is_empty())
                    .map(|m| m.value.clone()),
                measurements: measurements.len(),
            }
        })
        .collect();
    let canary_weight = canary_ingress.map(|ing| {
        ing.metadata
            .annotations
            .as_ref()
            .and_then(|a| {
                a.get(&format!(
                    "{}/canary-weight",
                    crate::sandbox::load_generator::DEFAULT_ANNOTATION_PREFIX
                ))
            })
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
    });
    Observed {
        phase: status
            .phase
            .as_ref()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        message: status.message.clone(),
        image,
        stable_hash: status.stable_rs.clone(),
        current_hash: status.current_pod_hash.clone(),
        abort: status.abort,
        paused_at_step: status
            .pause_conditions
            .iter()
            .any(|c| c.reason.as_str() == "CanaryPauseStep"),
        canary_weight,
        replica_sets,
        analysis_runs,
    }
}
