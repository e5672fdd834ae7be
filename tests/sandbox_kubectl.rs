//! The real kubectl against the sandbox API server over HTTP: CRDs, client-side and server-side
//! apply, get, get -o yaml, patch (also of the status subresource), delete, and get --watch.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use common::kubectl::{Kubectl, kubectl_present};

const WAIT: Duration = Duration::from_secs(30);

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.dev
spec:
  group: example.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.size, statusReplicasPath: .status.ready}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

type Env = Kubectl;

#[test]
fn kubectl_drives_the_sandbox() {
    if !kubectl_present() {
        return;
    }
    let env = Env::start();

    let crd = env.file("crd.yaml", CRD);
    let out = env.ok(&["apply", "-f", &crd]);
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.dev created"
    );

    // Client-side apply of a custom resource: create, then update (a merge patch).
    let w1 = |size: u32| {
        format!(
            "apiVersion: example.dev/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: {size}\n"
        )
    };
    let f = env.file("w1.yaml", &w1(1));
    assert_eq!(
        env.ok(&["apply", "-f", &f]).trim(),
        "widget.example.dev/w1 created"
    );
    let f = env.file("w1.yaml", &w1(2));
    assert_eq!(
        env.ok(&["apply", "-f", &f]).trim(),
        "widget.example.dev/w1 configured"
    );
    assert_eq!(
        env.ok(&["apply", "-f", &f]).trim(),
        "widget.example.dev/w1 unchanged"
    );

    let w2 = env.file(
        "w2.yaml",
        "apiVersion: example.dev/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  size: 5\n",
    );
    assert_eq!(
        env.ok(&["apply", "--server-side", "-f", &w2]).trim(),
        "widget.example.dev/w2 serverside-applied"
    );

    let table = env.ok(&["get", "widgets"]);
    let names: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, vec!["w1", "w2"], "{table}");
    assert!(table.starts_with("NAME"), "{table}");
    assert!(env.ok(&["get", "wd"]).contains("w2"), "short name resolves");

    let yaml = env.ok(&["get", "widget", "w1", "-o", "yaml"]);
    let w: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(w["spec"]["size"], 2);
    assert_eq!(w["metadata"]["generation"], 2);

    let out = env.ok(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":7}}"#,
    ]);
    assert_eq!(out.trim(), "widget.example.dev/w1 patched");
    let out = env.ok(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"ready":7}}"#,
    ]);
    assert_eq!(out.trim(), "widget.example.dev/w1 patched");
    let w = env.get_json(&["get", "widget", "w1"]);
    assert_eq!(
        (
            w["spec"]["size"].clone(),
            w["status"]["ready"].clone(),
            w["metadata"]["generation"].clone()
        ),
        (json!(7), json!(7), json!(3))
    );

    // Client-side apply of built-ins goes through strategic merge patch.
    let deploy = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n        ports:\n        - containerPort: 80\n"
        )
    };
    let f = env.file("deploy.yaml", &deploy("app:1"));
    assert_eq!(
        env.ok(&["apply", "-f", &f]).trim(),
        "deployment.apps/web created"
    );
    let f = env.file("deploy.yaml", &deploy("app:2"));
    assert_eq!(
        env.ok(&["apply", "-f", &f]).trim(),
        "deployment.apps/web configured"
    );
    let d = env.get_json(&["get", "deployment", "web"]);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["image"], "app:2");
    let out = env.ok(&["scale", "deployment", "web", "--replicas=3"]);
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    assert_eq!(
        env.get_json(&["get", "deployment", "web"])["spec"]["replicas"],
        3
    );

    watch_sees_update(&env);

    assert_eq!(
        env.ok(&["delete", "widget", "w2"]).trim(),
        "widget.example.dev \"w2\" deleted"
    );
    let missing = env.run(&["get", "widget", "w2"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "Error from server (NotFound): widgets.example.dev \"w2\" not found"
    );
    let again = env.run(&["delete", "widget", "w2"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Error from server (NotFound)"));
}

/// `kubectl get -w` prints a line for an update made while it watches.
fn watch_sees_update(env: &Env) {
    let mut child = env
        .command(&[
            "get",
            "widgets",
            "-w",
            "-o",
            "custom-columns=NAME:.metadata.name,SIZE:.spec.size",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |want: &str| {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.split_whitespace().collect::<Vec<_>>().join(" ") == want => return,
                Ok(line) => seen.push(line),
                Err(_) => panic!("kubectl get -w never printed {want:?}; saw {seen:?}"),
            }
        }
    };
    wait_for("w1 7");
    // Update through kube-rs over the same server while kubectl watches.
    let server = env.server.clone();
    env.runtime.block_on(async move {
        let ar = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "example.dev",
            "v1",
            "Widget",
        ));
        let api: Api<DynamicObject> = Api::namespaced_with(server.client(), "default", &ar);
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 42}})),
        )
        .await
        .unwrap();
    });
    wait_for("w1 42");
    child.kill().unwrap();
    child.wait().unwrap();
}
