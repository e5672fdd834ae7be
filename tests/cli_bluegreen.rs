//! The `kubectl argo rollouts` verbs on a blue-green Rollout, as a user runs them: the real
//! `davy` binary over HTTP against the sandbox API server, with the workload simulator and the
//! controller running on it. `get rollout` shows `Strategy: BlueGreen` and the
//! `stable`/`active`/`preview` tags; `status`, `promote`, `abort`, `retry`, `undo` (a fast
//! rollback within the scale-down delay) and `restart` do what upstream's do.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use davy::controller::{ControllerConfig, run};
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::{Simulator, SimulatorConfig};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::sandbox::HttpSandbox;

const NS: &str = "default";

struct Env {
    sandbox: HttpSandbox,
    shutdown: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Env {
    /// A served sandbox with Davy's CRDs, the simulator and a controller, plus the two
    /// Services and a blue-green Rollout `bg` with a manual gate.
    fn start() -> Env {
        let server = ApiServer::new();
        server.install_davy_crds().unwrap();
        let sandbox = HttpSandbox::start(server);
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        sandbox.runtime.block_on(async {
            let client = sandbox.server.client();
            let simulator = Simulator::start(
                client.clone(),
                SimulatorConfig {
                    namespace: Some(NS.to_string()),
                    pod_ready_delay: Duration::from_millis(100),
                    ..SimulatorConfig::default()
                },
            );
            let config = ControllerConfig {
                namespace: Some(NS.to_string()),
                ..ControllerConfig::default()
            };
            let controller_client = client.clone();
            tokio::spawn(async move {
                let stopped = token.clone();
                let controller = tokio::spawn(run(controller_client, config, token));
                stopped.cancelled().await;
                let _ = controller.await;
                simulator.shutdown().await;
            });
            for name in ["bg-active", "bg-preview"] {
                let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": NS},
                    "spec": {"selector": {"app": "bg"}, "ports": [{"port": 80}]}
                }))
                .unwrap();
                Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), NS)
                    .create(&PostParams::default(), &service)
                    .await
                    .unwrap();
            }
            let rollout: davy::api::Rollout = serde_json::from_value(json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "bg", "namespace": NS},
                "spec": {
                    "replicas": 2,
                    "revisionHistoryLimit": 3,
                    "selector": {"matchLabels": {"app": "bg"}},
                    "strategy": {"blueGreen": {"activeService": "bg-active",
                                               "previewService": "bg-preview",
                                               "autoPromotionEnabled": false,
                                               "scaleDownDelaySeconds": 30,
                                               "abortScaleDownDelaySeconds": 1}},
                    "template": {"metadata": {"labels": {"app": "bg"}},
                                 "spec": {"containers": [{"name": "app", "image": "app:blue"}]}}
                }
            }))
            .unwrap();
            Api::<davy::api::Rollout>::namespaced(client.clone(), NS)
                .create(&PostParams::default(), &rollout)
                .await
                .unwrap();
        });
        Env { sandbox, shutdown }
    }

    /// `davy --kubeconfig <sandbox> ARGS`: exit code and stdout (stderr on failure).
    fn davy(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_davy"))
            .arg("--kubeconfig")
            .arg(&self.sandbox.kubeconfig)
            .args(args)
            .env("HOME", self.sandbox.dir.path())
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), stdout + &stderr)
    }

    /// The Rollout as JSON.
    fn rollout(&self) -> Value {
        self.sandbox.runtime.block_on(async {
            let client = self.sandbox.server.client();
            let ro = Api::<davy::api::Rollout>::namespaced(client, NS)
                .get("bg")
                .await
                .unwrap();
            serde_json::to_value(ro).unwrap()
        })
    }

    /// Polls `davy status bg --watch=false` until it prints `want` (90 s at most).
    fn status_becomes(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (_, out) = self.davy(&["status", "bg", "--watch=false"]);
            if out.trim() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "status never became {want:?}; last {out:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls the Rollout until `check` holds (90 s at most).
    fn until(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ro = self.rollout();
            if check(&ro) {
                return ro;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                ro["status"]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn hash(ro: &Value, field: &str) -> String {
    ro["status"][field].as_str().unwrap_or_default().to_string()
}

#[test]
fn verbs_on_a_blue_green_rollout() {
    let env = Env::start();
    env.status_becomes("Healthy");
    let blue = hash(&env.rollout(), "stableRS");
    let (code, out) = env.davy(&["get", "rollout", "bg", "--no-color"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Strategy:        BlueGreen\n"), "{out}");
    assert!(
        out.contains("Images:          app:blue (stable, active)\n"),
        "{out}"
    );
    assert!(out.contains("stable,active"), "{out}");
    assert!(!out.contains("Step:"), "{out}");

    // `undo` below is a rollback only if green is younger than blue by creationTimestamp,
    // which has whole seconds (upstream's `isRollback`): let the second change first.
    let blue_created = env.sandbox.runtime.block_on(async {
        let client = env.sandbox.server.client();
        let sets = Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(client, NS)
            .list(&Default::default())
            .await
            .unwrap();
        let [blue_rs] = sets.items.as_slice() else {
            panic!("one ReplicaSet before the update: {:?}", sets.items);
        };
        blue_rs.metadata.creation_timestamp.clone().unwrap().0
    });
    let blue_created = chrono::DateTime::from_timestamp(blue_created.as_second(), 0).unwrap();
    env.until("the clock to pass blue's creation second", |_| {
        chrono::Utc::now() >= blue_created + chrono::Duration::seconds(1)
    });

    // An update pauses before the switch; get shows the preview.
    let (code, out) = env.davy(&["set", "image", "bg", "app=app:green"]);
    assert_eq!((code, out.as_str()), (0, "rollout \"bg\" image updated\n"));
    env.status_becomes("Paused - BlueGreenPause");
    let green = hash(&env.rollout(), "currentPodHash");
    let (_, out) = env.davy(&["get", "rollout", "bg", "--no-color"]);
    assert!(out.contains("app:green (preview)"), "{out}");
    assert!(out.contains(&format!("bg-{green}")), "{out}");
    assert!(out.contains("Message:         BlueGreenPause\n"), "{out}");

    // abort: Degraded, active stays blue; retry: paused again.
    let (code, out) = env.davy(&["abort", "bg"]);
    assert_eq!((code, out.as_str()), (0, "rollout 'bg' aborted\n"));
    env.status_becomes(
        "Degraded\nError: The rollout is in a degraded state with message: RolloutAborted: Rollout aborted update to revision 2",
    );
    let (code, out) = env.davy(&["status", "bg", "--watch=false"]);
    assert_ne!(code, 0, "{out}");
    assert_eq!(
        env.rollout()["status"]["blueGreen"]["activeSelector"],
        blue.as_str()
    );
    let (code, out) = env.davy(&["retry", "rollout", "bg"]);
    assert_eq!((code, out.as_str()), (0, "rollout 'bg' retried\n"));
    env.status_becomes("Paused - BlueGreenPause");

    // promote: the active Service switches and green becomes stable.
    let (code, out) = env.davy(&["promote", "bg"]);
    assert_eq!((code, out.as_str()), (0, "rollout 'bg' promoted\n"));
    env.status_becomes("Healthy");
    let ro = env.rollout();
    assert_eq!(hash(&ro, "stableRS"), green);
    assert_eq!(ro["status"]["blueGreen"]["activeSelector"], green.as_str());
    let (_, out) = env.davy(&["get", "rollout", "bg", "--no-color"]);
    // The old stack waits out its scale-down delay, shown on its row.
    assert!(out.contains("delay:"), "{out}");

    // undo within the scale-down delay: a fast rollback, no pause.
    let (code, out) = env.davy(&["undo", "bg"]);
    assert_eq!((code, out.as_str()), (0, "rollout 'bg' undo\n"));
    env.until("the fast rollback to blue", |ro| {
        hash(ro, "stableRS") == blue
            && ro["status"]["blueGreen"]["activeSelector"] == blue.as_str()
            && ro["status"]["phase"] == "Healthy"
    });
    assert!(env.rollout()["status"]["pauseConditions"].is_null());

    // restart: pods are replaced, restartedAt recorded, Healthy again.
    let (code, out) = env.davy(&["restart", "bg"]);
    assert_eq!((code, out.as_str()), (0, "rollout 'bg' restarts in 0s\n"));
    let ro = env.until("the restart to be recorded", |ro| {
        !ro["status"]["restartedAt"].is_null()
            && ro["status"]["restartedAt"] == ro["spec"]["restartAt"]
            && ro["status"]["phase"] == "Healthy"
    });
    assert_eq!(hash(&ro, "stableRS"), blue);
    env.status_becomes("Healthy");

    // promote --full on an update skips the pause.
    env.davy(&["set", "image", "bg", "app=app:yellow"]);
    env.status_becomes("Paused - BlueGreenPause");
    let yellow = hash(&env.rollout(), "currentPodHash");
    let (code, out) = env.davy(&["promote", "bg", "--full"]);
    assert_eq!((code, out.as_str()), (0, "rollout 'bg' fully promoted\n"));
    env.until("the full promotion", |ro| {
        hash(ro, "stableRS") == yellow && ro["status"]["phase"] == "Healthy"
    });
}
