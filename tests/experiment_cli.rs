//! The Experiment CLI verbs against a running controller: the real `davy` binary over HTTP to a
//! sandbox (workload simulator and `davy::controller::run` in-process) — `list experiments`,
//! `get experiment` while it runs, `terminate experiment` ending it, and `get experiment`
//! showing it Successful with its ReplicaSets scaled down; `get rollout` while a Rollout's
//! `experiment` step runs, showing the Experiment under its revision with upstream's icons.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::sandbox::HttpSandbox;
use davy::api::{Experiment, Rollout};
use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::simulator::{Simulator, SimulatorConfig};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn davy(sandbox: &HttpSandbox, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("--kubeconfig")
        .arg(&sandbox.kubeconfig)
        .args(args)
        .env("HOME", sandbox.dir.path())
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `davy ARGS` until its stdout satisfies `done` (90 s at most).
fn until(sandbox: &HttpSandbox, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, stdout, stderr) = davy(sandbox, args);
        if done(&stdout) {
            return stdout;
        }
        assert!(
            Instant::now() < deadline,
            "davy {args:?} never matched; last:\n{stdout}{stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn list_get_and_terminate_experiments_on_a_running_controller() {
    let server = ApiServer::new();
    server.install_davy_crds().unwrap();
    let sandbox = HttpSandbox::start(server);
    let _guard = sandbox.runtime.enter();
    let client = sandbox.server.client();
    let shutdown = CancellationToken::new();
    let simulator = Simulator::start(
        client.clone(),
        SimulatorConfig {
            namespace: Some("default".into()),
            pod_ready_delay: Duration::from_millis(100),
            ..SimulatorConfig::default()
        },
    );
    let controller = sandbox.runtime.spawn(davy::controller::run(
        client.clone(),
        davy::controller::ControllerConfig {
            namespace: Some("default".into()),
            ..Default::default()
        },
        shutdown.clone(),
    ));
    let ex: Experiment = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": "cli-exp", "namespace": "default"},
        "spec": {"scaleDownDelaySeconds": 0, "templates": [{
            "name": "baseline", "replicas": 2, "selector": {"matchLabels": {"app": "cli"}},
            "template": {"metadata": {"labels": {"app": "cli"}},
                         "spec": {"containers": [{"name": "app", "image": "app:v1"}]}}
        }]}
    }))
    .unwrap();
    let api: Api<Experiment> = Api::namespaced(client.clone(), "default");
    sandbox
        .runtime
        .block_on(api.create(&PostParams::default(), &ex))
        .unwrap();

    let listed = until(&sandbox, &["list", "experiments"], |out| {
        out.contains("Running")
    });
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines[0], "NAME        STATUS   DURATION  REMAINING  AGE");
    assert!(
        lines[1].starts_with("cli-exp     Running  -         -          "),
        "{listed}"
    );

    let tree = until(
        &sandbox,
        &["get", "experiment", "cli-exp", "--no-color"],
        |out| out.contains("Running") && out.matches("✔ Running").count() >= 2,
    );
    assert!(tree.contains("Name:            cli-exp"), "{tree}");
    assert!(tree.contains("Σ cli-exp"), "{tree}");
    assert!(tree.contains("⧉ cli-exp-baseline"), "{tree}");

    let (code, stdout, stderr) = davy(&sandbox, &["terminate", "experiment", "cli-exp"]);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "experiment 'cli-exp' terminated\n"),
        "{stderr}"
    );
    let done = until(
        &sandbox,
        &["get", "experiment", "cli-exp", "--no-color"],
        |out| out.contains("Status:          ✔ Successful") && !out.contains("□"),
    );
    assert!(done.contains("⧉ cli-exp-baseline"), "{done}");

    shutdown.cancel();
    sandbox.runtime.block_on(async {
        let _ = controller.await;
        simulator.shutdown().await;
    });
}

#[test]
fn get_rollout_shows_the_running_experiment_under_its_revision() {
    let server = ApiServer::new();
    server.install_davy_crds().unwrap();
    let sandbox = HttpSandbox::start(server);
    let _guard = sandbox.runtime.enter();
    let client = sandbox.server.client();
    let shutdown = CancellationToken::new();
    let simulator = Simulator::start(
        client.clone(),
        SimulatorConfig {
            namespace: Some("default".into()),
            pod_ready_delay: Duration::from_millis(100),
            ..SimulatorConfig::default()
        },
    );
    let controller = sandbox.runtime.spawn(davy::controller::run(
        client.clone(),
        davy::controller::ControllerConfig {
            namespace: Some("default".into()),
            ..Default::default()
        },
        shutdown.clone(),
    ));
    let rollout = |image: &str| -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "exro", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "exro"}},
                "strategy": {"canary": {"steps": [{"experiment": {
                    "duration": "1h",
                    "templates": [
                        {"name": "baseline", "specRef": "stable", "replicas": 1},
                        {"name": "canary", "specRef": "canary", "replicas": 1}
                    ]
                }}]}},
                "template": {"metadata": {"labels": {"app": "exro"}},
                             "spec": {"containers": [{"name": "app", "image": image}]}}
            }
        }))
        .unwrap()
    };
    let api: Api<Rollout> = Api::namespaced(client.clone(), "default");
    sandbox
        .runtime
        .block_on(api.create(&PostParams::default(), &rollout("app:v1")))
        .unwrap();
    until(&sandbox, &["get", "rollout", "exro", "--no-color"], |out| {
        out.contains("Status:          ✔ Healthy")
    });
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:v2"}]}}}});
    sandbox
        .runtime
        .block_on(api.patch(
            "exro",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        ))
        .unwrap();
    // Both templates' pods up: the experiment Running with two running pods under it.
    let tree = until(&sandbox, &["get", "rollout", "exro", "--no-color"], |out| {
        out.lines()
            .any(|l| l.contains("Experiment") && l.contains("◌ Running"))
            && out.matches("Pod").count() >= 3
            && out.matches("✔ Running").count() >= 3
    });
    let lines: Vec<&str> = tree.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| {
                l.trim_start_matches(['│', '├', '└', '─', ' '])
                    .starts_with(prefix)
            })
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{tree}"))
    };
    let revision2 = at("# revision:2");
    let revision1 = at("# revision:1");
    let experiment = at("Σ ");
    assert!(
        revision2 < experiment && experiment < revision1,
        "the experiment sits under revision 2:\n{tree}"
    );
    let line = lines[experiment];
    // Upstream's row: tree prefix, Σ icon, name, kind, ◌ Running.
    assert!(
        line.starts_with("│  ├──Σ exro-") || line.starts_with("│  └──Σ exro-"),
        "{line}"
    );
    let columns: Vec<&str> = line.split_whitespace().collect();
    let name = columns[2];
    assert_eq!(&columns[3..6], ["Experiment", "◌", "Running"], "{line}");
    assert!(
        name.ends_with("-2-0"),
        "named <rollout>-<hash>-<revision>-<step>: {name}"
    );
    // Its templates' ReplicaSets under it, each with its running pod.
    for template in ["baseline", "canary"] {
        let rs = lines
            .iter()
            .position(|l| l.contains(&format!("⧉ {name}-{template}")))
            .unwrap_or_else(|| panic!("no {template} ReplicaSet in\n{tree}"));
        assert!(rs > experiment && rs < revision1, "{tree}");
        assert!(
            lines[rs].starts_with("│  │  ├──⧉")
                || lines[rs].starts_with("│  │  └──⧉")
                || lines[rs].starts_with("│     ├──⧉")
                || lines[rs].starts_with("│     └──⧉"),
            "{}",
            lines[rs]
        );
        let columns: Vec<&str> = lines[rs].split_whitespace().collect();
        assert_eq!(
            &columns[3..6],
            ["ReplicaSet", "✔", "Healthy"],
            "{}",
            lines[rs]
        );
        assert!(
            lines[rs + 1].contains("□ ") && lines[rs + 1].contains("ready:1/1"),
            "{tree}"
        );
    }
    // The header names the step as upstream does.
    assert!(tree.contains("  Step:          0/1"), "{tree}");

    shutdown.cancel();
    sandbox.runtime.block_on(async {
        let _ = controller.await;
        simulator.shutdown().await;
    });
}

/// The baseline-vs-canary example and its judge template pass `davy lint` together (the
/// experiment's `{{templates.<name>.podTemplateHash}}` arguments included).
#[test]
fn the_baseline_vs_canary_example_lints_clean() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["lint", "-f"])
        .arg(format!(
            "{root}/examples/rollouts-demo-baseline-vs-canary.yaml"
        ))
        .arg("-f")
        .arg(format!(
            "{root}/analysis-templates/judge-baseline-vs-canary.yaml"
        ))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
