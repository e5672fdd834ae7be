//! `davy controller` started the way `davy controller --help` and docs/cli.md show it — only
//! `--kubeconfig` (and a loopback metrics port, so parallel tests do not collide) — against a
//! fresh `davy sandbox --simulate-workloads`, both real processes: it says what it does at
//! start, elects itself in the kubeconfig context's namespace (a sandbox has no
//! `argo-rollouts` namespace) and reconciles a Rollout to Healthy.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/davy_process.rs"]
mod davy_process;

#[path = "controller_support/mod.rs"]
mod support;

use std::process::{Command, Stdio};

use davy::api::Rollout;
use davy_process::{Process, client_for, start_sandbox};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use support::{canary_rollout, describe, eventually, rollout};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_as_documented_reconciles_on_a_fresh_sandbox() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let sandbox = start_sandbox(&kubeconfig);

    let log_path = dir.path().join("controller.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let metrics = format!("127.0.0.1:{}", free_port());
    let controller = Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("controller")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--metrics-addr", &metrics])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start davy controller");
    let controller = Process(controller);

    let client = client_for(&kubeconfig).await;
    let namespace = client.default_namespace().to_string();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &namespace);
    let mut value = canary_rollout(
        "first",
        1,
        json!([{"setWeight": 50}, {"pause": {"duration": 1}}]),
        "argoproj/rollouts-demo:blue",
    );
    value["metadata"]["namespace"] = json!(namespace);
    rollouts
        .create(&Default::default(), &rollout(value))
        .await
        .expect("create rollout");
    eventually("the Rollout to become Healthy", || async {
        let status = serde_json::to_value(&rollouts.get("first").await.expect("get").status)
            .expect("status json");
        if status["phase"] == "Healthy" {
            Ok(())
        } else {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            Err(format!("{}\ncontroller log:\n{log}", describe(&status)))
        }
    })
    .await;

    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let lease = leases
        .get("argo-rollouts-controller-lock")
        .await
        .expect("the Lease is in the kubeconfig context's namespace");
    assert!(
        lease
            .spec
            .and_then(|spec| spec.holder_identity)
            .is_some_and(|holder| !holder.is_empty())
    );
    let log = std::fs::read_to_string(&log_path).expect("read log");
    for line in [
        "davy controller starting",
        &format!("Lease {namespace}/argo-rollouts-controller-lock"),
        "campaigning for the leader Lease",
        "became leader",
    ] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
    drop(controller);
    drop(sandbox);
}
