//! The controller end to end on the sandbox API server with the workload simulator: the seed's
//! demo Rollout walks its canary steps, pauses, is promoted and ends Healthy.

use std::time::Duration;

use davy::api::Rollout;
use davy::controller::{ControllerConfig, run};
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Service};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);
const NS: &str = "default";

/// Polls `check` until it yields a value or the deadline passes (then fails with `what` and the
/// last state `check` described).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
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

struct World {
    _server: ApiServer,
    client: Client,
    shutdown: CancellationToken,
    controller: tokio::task::JoinHandle<()>,
    simulator: SimulatorHandle,
}

impl World {
    async fn start() -> World {
        let server = ApiServer::new();
        let crds = davy::api::crd::crds_yaml().expect("crds");
        server.install_crds_from_yaml(&crds).expect("install crds");
        let client = server.client();
        let simulator = Simulator::start(
            client.clone(),
            SimulatorConfig {
                namespace: Some(NS.to_string()),
                pod_ready_delay: Duration::from_millis(100),
                ..SimulatorConfig::default()
            },
        );
        let shutdown = CancellationToken::new();
        let controller = tokio::spawn({
            let client = client.clone();
            let shutdown = shutdown.clone();
            async move {
                let config = ControllerConfig {
                    namespace: Some(NS.to_string()),
                    metrics_addr: None,
                    ..ControllerConfig::default()
                };
                run(client, config, shutdown).await.expect("controller");
            }
        });
        World {
            _server: server,
            client,
            shutdown,
            controller,
            simulator,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.controller.await.expect("controller task");
        self.simulator.shutdown().await;
    }

    fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn replica_sets(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn status(&self, name: &str) -> Value {
        let rollout = self.rollouts().get(name).await.expect("get rollout");
        serde_json::to_value(rollout.status.unwrap_or_default()).expect("status json")
    }

    /// `spec.replicas` of the ReplicaSets with pod-template hash `hash`.
    async fn rs_replicas(&self, hash: &str) -> Option<i32> {
        let list = self
            .replica_sets()
            .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
            .await
            .expect("list rs");
        list.items
            .first()
            .and_then(|rs| rs.spec.as_ref().and_then(|spec| spec.replicas))
    }
}

/// The seed's demo (`examples/rollouts-demo.yaml`) with timed pauses shortened to 1 s.
fn demo_objects() -> (Rollout, Service) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/rollouts-demo.yaml"
    ))
    .expect("read demo");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("parse demo");
    let mut rollout = docs
        .iter()
        .find(|doc| doc["kind"] == "Rollout")
        .cloned()
        .expect("rollout doc");
    for step in rollout["spec"]["strategy"]["canary"]["steps"]
        .as_array_mut()
        .expect("steps")
    {
        if step["pause"]["duration"].is_number() {
            step["pause"]["duration"] = json!(1);
        }
    }
    let service = docs
        .iter()
        .find(|doc| doc["kind"] == "Service")
        .cloned()
        .expect("service doc");
    (
        serde_json::from_value(rollout).expect("rollout"),
        serde_json::from_value(service).expect("service"),
    )
}

fn describe(status: &Value) -> String {
    format!(
        "phase={} step={} stable={} current={} pause={}",
        status["phase"],
        status["currentStepIndex"],
        status["stableRS"],
        status["currentPodHash"],
        status["pauseConditions"]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_walks_the_canary_steps_and_is_promoted() {
    let world = World::start().await;
    let (rollout, service) = demo_objects();
    let services: Api<Service> = Api::namespaced(world.client.clone(), NS);
    services
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");
    world
        .rollouts()
        .create(&PostParams::default(), &rollout)
        .await
        .expect("create rollout");

    let blue = eventually("the first revision to become Healthy", || async {
        let status = world.status("rollouts-demo").await;
        let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
        if status["phase"] == "Healthy" && !stable.is_empty() {
            Ok(stable)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert_eq!(world.rs_replicas(&blue).await, Some(2));

    let image: json_patch::Patch = serde_json::from_value(json!([{
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "argoproj/rollouts-demo:yellow"
    }]))
    .expect("patch");
    world
        .rollouts()
        .patch(
            "rollouts-demo",
            &PatchParams::default(),
            &Patch::Json::<()>(image),
        )
        .await
        .expect("set image");

    let yellow = eventually("step 1 paused with one canary pod", || async {
        let status = world.status("rollouts-demo").await;
        let current = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let paused = status["currentStepIndex"] == 1
            && status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
            && status["phase"] == "Paused";
        if paused && current != blue && world.rs_replicas(&current).await == Some(1) {
            Ok(current)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    let status = world.status("rollouts-demo").await;
    assert_eq!(status["stableRS"], blue.as_str());
    assert_eq!(world.rs_replicas(&blue).await, Some(2));
    // The demo names no canaryService/stableService: its Service is left alone.
    let selector = services
        .get("rollouts-demo")
        .await
        .expect("service")
        .spec
        .and_then(|spec| spec.selector)
        .unwrap_or_default();
    assert_eq!(
        selector.into_iter().collect::<Vec<_>>(),
        vec![("app".to_string(), "rollouts-demo".to_string())]
    );

    // Promote, as `kubectl argo rollouts promote` does for a canary pause step.
    world
        .rollouts()
        .patch_status(
            "rollouts-demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"pauseConditions": null}})),
        )
        .await
        .expect("promote");

    eventually("the new revision to become stable and Healthy", || async {
        let status = world.status("rollouts-demo").await;
        let done = status["phase"] == "Healthy"
            && status["stableRS"] == yellow.as_str()
            && world.rs_replicas(&yellow).await == Some(2)
            && world.rs_replicas(&blue).await == Some(0);
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    let status = world.status("rollouts-demo").await;
    assert_eq!(status["currentStepIndex"], 8);
    assert!(status["pauseConditions"].is_null(), "{status}");

    let events: Api<Event> = Api::namespaced(world.client.clone(), NS);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|event| event.involved_object.name.as_deref() == Some("rollouts-demo"))
        .filter_map(|event| event.reason)
        .collect();
    for expected in [
        "RolloutUpdated",
        "RolloutPaused",
        "RolloutStepCompleted",
        "ScalingReplicaSet",
        "RolloutCompleted",
    ] {
        assert!(
            reasons.iter().any(|reason| reason == expected),
            "no {expected} event in {reasons:?}"
        );
    }
    world.stop().await;
}
