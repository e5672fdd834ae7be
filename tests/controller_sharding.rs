//! Controller settings in the sandbox: two controllers sharded by `--instance-id` on one
//! sandbox each reconcile only their own Rollouts (the one without an id only unlabelled
//! ones), and the `argo-rollouts-config` ConfigMap is watched: an entry naming a plugin Davy
//! does not build in is reported as a Warning event, and an edit is read without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use davy::controller::ControllerConfig;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::{
    Controller, NS, Sandbox, canary_rollout, controller_config, eventually, free_addr, reconciles,
    rollout,
};

const INSTANCE_LABEL: &str = "argo-rollouts.argoproj.io/controller-instance-id";

fn labelled(name: &str, instance: Option<&str>) -> davy::api::Rollout {
    let mut doc = canary_rollout(
        name,
        1,
        json!([{"setWeight": 50}, {"pause": {}}]),
        "nginx:1",
    );
    if let Some(id) = instance {
        doc["metadata"]["labels"] = json!({ INSTANCE_LABEL: id });
    }
    rollout(doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_reconcile_disjoint_rollouts() {
    let sandbox = Sandbox::start().await;
    let (plain_addr, blue_addr) = (free_addr(), free_addr());
    let plain = Controller::start(
        sandbox.client.clone(),
        ControllerConfig {
            metrics_addr: Some(plain_addr),
            ..controller_config()
        },
    );
    let blue = Controller::start(
        sandbox.client.clone(),
        ControllerConfig {
            metrics_addr: Some(blue_addr),
            instance_id: Some("blue".into()),
            ..controller_config()
        },
    );
    sandbox.create(&labelled("unlabelled", None)).await;
    sandbox.create(&labelled("for-blue", Some("blue"))).await;
    // No controller runs with this id: nobody may touch it.
    sandbox.create(&labelled("for-green", Some("green"))).await;
    sandbox.healthy("unlabelled").await;
    sandbox.healthy("for-blue").await;
    let count = |addr, name: &'static str| async move {
        eventually(&format!("metrics of {name}"), || reconciles(addr, name)).await
    };
    assert!(count(plain_addr, "unlabelled").await > 0);
    assert!(count(blue_addr, "for-blue").await > 0);
    // Each instance saw only its own: the other one's Rollout never reached its reconciler.
    assert_eq!(count(plain_addr, "for-blue").await, 0);
    assert_eq!(count(blue_addr, "unlabelled").await, 0);
    assert_eq!(count(plain_addr, "for-green").await, 0);
    assert_eq!(count(blue_addr, "for-green").await, 0);
    assert!(sandbox.status("for-green").await.is_null());

    // A release of the blue Rollout is the blue instance's alone too.
    sandbox.set_image("for-blue", "nginx:2").await;
    eventually("the blue release to pause at its step", || async {
        let status = sandbox.status("for-blue").await;
        if status["pauseConditions"][0]["reason"] == "CanaryPauseStep" {
            Ok(())
        } else {
            Err(support::describe(&status))
        }
    })
    .await;
    assert_eq!(count(plain_addr, "for-blue").await, 0);
    plain.stop().await.unwrap();
    blue.stop().await.unwrap();
    sandbox.stop().await;
}

async fn config_events(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .events("argo-rollouts-config")
        .await
        .into_iter()
        .filter(|event| event.reason.as_deref() == Some("InvalidRolloutsConfig"))
        .filter_map(|event| event.message)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollouts_config_map_is_read_and_watched() {
    let sandbox = Sandbox::start().await;
    let config_map: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argo-rollouts-config", "namespace": NS},
        "data": {
            "trafficRouterPlugins": "- name: argoproj-labs/gatewayAPI\n  location: https://example.invalid/gatewayapi\n",
            "metricProviderPlugins": "- name: argoproj-labs/sample-prometheus\n  location: file://./sample\n"
        }
    }))
    .unwrap();
    sandbox
        .api::<ConfigMap>()
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();
    let controller = Controller::start(
        sandbox.client.clone(),
        ControllerConfig {
            config_namespace: Some(NS.into()),
            ..controller_config()
        },
    );
    let first = eventually("the unbuildable plugin to be reported", || async {
        let messages = config_events(&sandbox).await;
        if messages.len() == 1 {
            Ok(messages)
        } else {
            Err(format!("{messages:?}"))
        }
    })
    .await;
    assert_eq!(
        first[0],
        "metricProviderPlugins: plugin \"argoproj-labs/sample-prometheus\" is not built into \
         Davy, and Davy does not download plugin binaries (location \"file://./sample\"); \
         Rollouts using it will fail"
    );
    // An edit applies without a restart: a malformed name is reported as upstream words it.
    sandbox
        .api::<ConfigMap>()
        .patch(
            "argo-rollouts-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"metricProviderPlugins": "- name: no-slash\n"}})),
        )
        .await
        .unwrap();
    eventually("the edited entry to be reported", || async {
        let messages = config_events(&sandbox).await;
        let want = "plugin repository (no-slash) must be in the format of <namespace>/<name>";
        if messages.iter().any(|m| m == want) {
            Ok(())
        } else {
            Err(format!("{messages:?}"))
        }
    })
    .await;
    // Rollouts still run under a configuration with problems.
    sandbox.create(&labelled("runs", None)).await;
    sandbox.healthy("runs").await;
    controller.stop().await.unwrap();
    sandbox.stop().await;
}
