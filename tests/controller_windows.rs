//! A promotion window end to end: the controller on the sandbox API server with the workload
//! simulator holds the seed's demo Rollout at its pause step, with the message naming when the
//! window opens, until a 6-field (seconds) cron window opens, then promotes it.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use davy::api::Rollout;
use davy::controller::{ControllerConfig, run};
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(90);
const NS: &str = "default";
const NAME: &str = "rollouts-demo";

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

    async fn status(&self) -> Value {
        let rollout = self.rollouts().get(NAME).await.expect("get rollout");
        serde_json::to_value(rollout.status.unwrap_or_default()).expect("status json")
    }

    /// `spec.replicas` of the ReplicaSet with pod-template hash `hash`.
    async fn rs_replicas(&self, hash: &str) -> Option<i32> {
        let replica_sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), NS);
        let list = replica_sets
            .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
            .await
            .expect("list rs");
        list.items
            .first()
            .and_then(|rs| rs.spec.as_ref().and_then(|spec| spec.replicas))
    }
}

/// The seed's demo (`examples/rollouts-demo.yaml`) with two steps: half the pods, a 1 s pause.
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
    rollout["spec"]["strategy"]["canary"]["steps"] =
        json!([{"setWeight": 50}, {"pause": {"duration": 1}}]);
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
        "phase={} message={} step={} stable={} current={} pause={}",
        status["phase"],
        status["message"],
        status["currentStepIndex"],
        status["stableRS"],
        status["currentPodHash"],
        status["pauseConditions"]
    )
}

/// The first multiple of 20 s at least 15 s after `now` (room to reach the pause step first).
fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = now.timestamp() + 15;
    let start = (earliest + 19) / 20 * 20;
    DateTime::from_timestamp(start, 0).expect("in range")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_waits_at_its_pause_for_the_window_then_promotes() {
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
        let status = world.status().await;
        let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
        if status["phase"] == "Healthy" && !stable.is_empty() {
            Ok(stable)
        } else {
            Err(describe(&status))
        }
    })
    .await;

    // One window a day, opening at `opens` (6 fields: second first) for 10 s; then the new
    // image.
    let opens = window_start(Utc::now());
    let schedule = format!(
        "{} {} {} * * *",
        opens.second(),
        opens.minute(),
        opens.hour()
    );
    let windows = json!([{"schedule": schedule, "duration": "10s"}]).to_string();
    let annotate = json!({"metadata": {"annotations": {"davy.dev/promotion-windows": windows}}});
    world
        .rollouts()
        .patch(NAME, &PatchParams::default(), &Patch::Merge(annotate))
        .await
        .expect("set windows");
    let image: json_patch::Patch = serde_json::from_value(json!([{
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "argoproj/rollouts-demo:yellow"
    }]))
    .expect("patch");
    world
        .rollouts()
        .patch(NAME, &PatchParams::default(), &Patch::Json::<()>(image))
        .await
        .expect("set image");

    let waiting = format!(
        "Waiting for promotion window: next opens at {}",
        opens.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let yellow = eventually("the expired pause step held by the window", || async {
        let status = world.status().await;
        let current = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let held = status["currentStepIndex"] == 1
            && status["phase"] == "Paused"
            && status["message"] == waiting.as_str()
            && status["pauseConditions"][0]["reason"] == "CanaryPauseStep";
        if held && current != blue {
            Ok(current)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert!(Utc::now() < opens, "held only after the window opened");
    assert_eq!(world.rs_replicas(&yellow).await, Some(1));
    assert_eq!(world.rs_replicas(&blue).await, Some(1));

    eventually(
        "the window to open and the new revision to be promoted",
        || async {
            let status = world.status().await;
            let past_pause = status["currentStepIndex"].as_i64().unwrap_or(0) >= 2;
            assert!(
                !past_pause || Utc::now() >= opens,
                "advanced before the window opened: {}",
                describe(&status)
            );
            let done = status["phase"] == "Healthy"
                && status["stableRS"] == yellow.as_str()
                && world.rs_replicas(&yellow).await == Some(2)
                && world.rs_replicas(&blue).await == Some(0);
            if done { Ok(()) } else { Err(describe(&status)) }
        },
    )
    .await;
    world.stop().await;
}
