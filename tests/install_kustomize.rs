//! The kustomize install with the real `kubectl` (its built-in kustomize, offline):
//! `manifests/` renders exactly what `davy install` prints and applies server-side into the
//! sandbox; the namespaced overlay swaps the ClusterRole for a Role (keeping every rule) and
//! passes `--namespace`; the alert-webhook overlay turns the receiver on with flags the binary
//! accepts; `manifests/kustomize/rollout-transform.yaml` makes `images:`, `commonLabels:` and a
//! generated ConfigMap's name reach a Rollout's selector and pod template, on a kustomization
//! like the seed's.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::kubectl::{KUBECTL, Kubectl, kubectl_present};
use davy::cli::install::{ALERT_WEBHOOK_PORT, DEFAULT_NAMESPACE, NAME, RULES};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `kubectl kustomize DIR`, parsed.
fn kustomize(dir: &Path) -> Vec<Value> {
    let out = Command::new(KUBECTL)
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn davy_install() -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("install")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn ids(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]))
        .collect()
}

/// The base rule table as the ClusterRole holds it.
fn rules_json() -> Vec<Value> {
    RULES
        .iter()
        .map(|(group, resources, verbs)| {
            json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
        })
        .collect()
}

#[test]
fn the_base_renders_exactly_what_davy_install_prints() {
    if !kubectl_present() {
        return;
    }
    let rendered = kustomize(&root().join("manifests"));
    let printed = davy_install();
    assert_eq!(ids(&rendered), ids(&printed), "the same objects in order");
    for (r, p) in rendered.iter().zip(&printed) {
        assert!(
            r == p,
            "kustomize renders\n{r}\nbut davy install prints\n{p}"
        );
    }
}

#[test]
fn the_base_applies_server_side_into_the_sandbox() {
    if !kubectl_present() {
        return;
    }
    let kubectl = Kubectl::start();
    let manifests = root().join("manifests");
    let out = kubectl.ok(&[
        "apply",
        "--server-side",
        "--field-manager=davy-install",
        "-k",
        manifests.to_str().unwrap(),
    ]);
    for line in [
        "namespace/davy-system serverside-applied",
        "customresourcedefinition.apiextensions.k8s.io/rollouts.argoproj.io serverside-applied",
        "clusterrole.rbac.authorization.k8s.io/davy-controller serverside-applied",
        "deployment.apps/davy-controller serverside-applied",
        "poddisruptionbudget.policy/davy-controller serverside-applied",
        "service/davy-controller serverside-applied",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    // What was applied is what the base renders, field for field where the server keeps it.
    let deployment = kubectl.get_json(&["-n", DEFAULT_NAMESPACE, "get", "deployment", NAME]);
    let printed = davy_install();
    let expected = find(&printed, "Deployment", NAME);
    assert_eq!(deployment["spec"]["template"], expected["spec"]["template"]);
    let role = kubectl.get_json(&["get", "clusterrole", NAME]);
    assert_eq!(role["rules"], json!(rules_json()));
    // The CRDs are served once applied: the Rollout kind is there to use.
    kubectl.ok(&["get", "rollouts.argoproj.io", "-A"]);
    // A second apply is a no-op for the server (same manager, same fields).
    let again = kubectl.ok(&[
        "apply",
        "--server-side",
        "--field-manager=davy-install",
        "-k",
        manifests.to_str().unwrap(),
    ]);
    assert!(again.contains("deployment.apps/davy-controller serverside-applied"));
}

#[test]
fn the_namespaced_overlay_swaps_the_cluster_role_for_a_role() {
    if !kubectl_present() {
        return;
    }
    let docs = kustomize(&root().join("manifests/overlays/namespaced"));
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == NAME),
        "no cluster-wide role for the namespaced controller"
    );
    let role = find(&docs, "Role", NAME);
    assert_eq!(role["metadata"]["namespace"], DEFAULT_NAMESPACE);
    let rules = rules_json();
    // Rule 0 is the cluster-scoped one; the Role holds every other rule of the base.
    assert_eq!(RULES[0].1, ["clusteranalysistemplates"]);
    assert_eq!(role["rules"], json!(rules[1..]));
    let cluster = find(&docs, "ClusterRole", "davy-controller-cluster-templates");
    assert_eq!(cluster["rules"], json!([rules[0]]));
    let binding = find(&docs, "RoleBinding", NAME);
    assert_eq!(binding["metadata"]["namespace"], DEFAULT_NAMESPACE);
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["name"], NAME);
    let cluster_binding = find(
        &docs,
        "ClusterRoleBinding",
        "davy-controller-cluster-templates",
    );
    assert_eq!(
        cluster_binding["subjects"][0]["namespace"],
        DEFAULT_NAMESPACE
    );
    let container = &find(&docs, "Deployment", NAME)["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        json!(["--namespace", "$(POD_NAMESPACE)"])
    );
    assert_eq!(container["env"][0]["name"], "POD_NAMESPACE");

    // And it applies server-side.
    let kubectl = Kubectl::start();
    let dir = root().join("manifests/overlays/namespaced");
    let out = kubectl.ok(&["apply", "--server-side", "-k", dir.to_str().unwrap()]);
    assert!(
        out.contains("role.rbac.authorization.k8s.io/davy-controller serverside-applied"),
        "{out}"
    );
}

#[test]
fn the_alert_webhook_overlay_turns_the_receiver_on() {
    if !kubectl_present() {
        return;
    }
    let docs = kustomize(&root().join("manifests/overlays/alert-webhook"));
    let pod = &find(&docs, "Deployment", NAME)["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(
        container["ports"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "webhook", "containerPort": ALERT_WEBHOOK_PORT})),
        "{container}"
    );
    let service = find(&docs, "Service", NAME);
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .contains(&json!({
                "name": "webhook", "port": ALERT_WEBHOOK_PORT,
                "targetPort": "webhook", "protocol": "TCP"
            })),
        "{service}"
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "davy-alert-webhook"
    );
    // The flags are the binary's: with the token file of the mount absent here, the controller
    // stops at reading it (not at parsing the flags).
    let out = Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("controller")
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("Usage:"), "flags refused: {stderr}");
    assert!(
        stderr.contains("reading the alert webhook token /etc/davy/alert-webhook/token"),
        "{stderr}"
    );
    let mount = &container["volumeMounts"][0];
    assert!(
        args.iter()
            .any(|a| a.ends_with(&format!("{}/token", mount["mountPath"].as_str().unwrap()))),
        "{args:?} {mount}"
    );
}

/// Copies the seed's demo and the transformer configuration into `dir` with a kustomization
/// like the seed's (`images:` retagging the demo image) plus `commonLabels` and a generated
/// ConfigMap the pod template reads.
fn seed_kustomization(dir: &Path, with_configuration: bool) {
    std::fs::copy(
        root().join("examples/rollouts-demo.yaml"),
        dir.join("rollouts-demo.yaml"),
    )
    .unwrap();
    std::fs::copy(
        root().join("manifests/kustomize/rollout-transform.yaml"),
        dir.join("rollout-transform.yaml"),
    )
    .unwrap();
    // `replicas:` refuses a kind it does not know, so the bare kustomization goes without.
    let configurations = if with_configuration {
        "configurations:\n  - rollout-transform.yaml\nreplicas:\n  - name: rollouts-demo\n    count: 5\n"
    } else {
        ""
    };
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - rollouts-demo.yaml
images:
  - name: argoproj/rollouts-demo
    newTag: yellow
commonLabels:
  team: checkout
configMapGenerator:
  - name: demo-config
    literals: [COLOR=yellow]
patches:
  - target: {{kind: Rollout, name: rollouts-demo}}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/envFrom
        value: [{{configMapRef: {{name: demo-config}}}}]
{configurations}"
    );
    std::fs::write(dir.join("kustomization.yaml"), kustomization).unwrap();
}

#[test]
fn the_rollout_transform_reaches_the_pod_template_of_the_seeds_rollout() {
    if !kubectl_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    seed_kustomization(dir.path(), true);
    let docs = kustomize(dir.path());
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the generated ConfigMap");
    let config_name = config["metadata"]["name"].as_str().unwrap();
    assert!(config_name.starts_with("demo-config-"), "{config_name}");
    let rollout = find(&docs, "Rollout", "rollouts-demo");
    let spec = &rollout["spec"];
    assert_eq!(spec["replicas"], 5);
    assert_eq!(spec["selector"]["matchLabels"]["team"], "checkout");
    assert_eq!(spec["template"]["metadata"]["labels"]["team"], "checkout");
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "argoproj/rollouts-demo:yellow");
    assert_eq!(container["envFrom"][0]["configMapRef"]["name"], config_name);
    // The Service selects the labelled pods too (kustomize's own Service rules).
    let service = find(&docs, "Service", "rollouts-demo");
    assert_eq!(service["spec"]["selector"]["team"], "checkout");

    // Without the configuration kustomize does not know the Rollout's selector, template
    // labels, replicas or the ConfigMap reference: the file is what makes them follow.
    let bare = tempfile::tempdir().unwrap();
    seed_kustomization(bare.path(), false);
    let docs = kustomize(bare.path());
    let spec = &find(&docs, "Rollout", "rollouts-demo")["spec"];
    assert!(
        spec["selector"]["matchLabels"].get("team").is_none(),
        "{spec}"
    );
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"],
        "demo-config"
    );
}
