//! `davy install`: the committed `manifests/base/install.yaml` matches the generator; every
//! document parses; the RBAC is least-privilege (no wildcard, secrets only read by name); the
//! Deployment runs the image's `davy controller` as non-root with probes on the metrics port, a
//! read-only root and no capabilities; `--namespace` moves every namespaced object; the default
//! image is the one the README documents. The CLI is run as the real binary. The kustomize side
//! (the base, its overlays, the Rollout transformer configuration) is in `install_kustomize.rs`.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::sync::OnceLock;

use davy::cli::install::{
    DEFAULT_NAMESPACE, IMAGE_REPOSITORY, METRICS_PORT, NAME, default_image, install_yaml,
};
use serde_json::Value;

/// Generating the CRD schemas takes seconds in a debug build: once per test binary.
fn generated() -> &'static str {
    static YAML: OnceLock<String> = OnceLock::new();
    YAML.get_or_init(|| install_yaml(DEFAULT_NAMESPACE, &default_image()).unwrap())
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).unwrap()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn committed_install_yaml_matches_the_generator() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests/base/install.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated(),
        "manifests/base/install.yaml is out of date; regenerate it with:\n    cargo run -- install > manifests/base/install.yaml"
    );
}

/// A Kubernetes memory quantity in `Mi`, as MiB.
fn mebibytes(quantity: &Value) -> u64 {
    let text = quantity.as_str().unwrap();
    text.strip_suffix("Mi")
        .unwrap_or_else(|| panic!("{text} is not in Mi"))
        .parse()
        .unwrap()
}

#[test]
fn the_default_image_is_the_one_the_readme_documents() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let documented = format!("{IMAGE_REPOSITORY}:v<version>");
    assert!(
        readme.contains(&documented),
        "README.md does not name the image {documented}"
    );
    assert_eq!(
        default_image(),
        format!("{IMAGE_REPOSITORY}:v{}", env!("CARGO_PKG_VERSION"))
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("install")
        .output()
        .unwrap();
    let docs = documents(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        find(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"],
        default_image()
    );
}

#[test]
fn every_document_parses_and_names_its_kind() {
    let docs = documents(generated());
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
        ]
    );
    let crds: Vec<&str> = docs[1..6]
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        crds,
        [
            "rollouts.argoproj.io",
            "analysistemplates.argoproj.io",
            "clusteranalysistemplates.argoproj.io",
            "analysisruns.argoproj.io",
            "experiments.argoproj.io",
        ]
    );
    for doc in &docs {
        assert!(doc["apiVersion"].is_string(), "{doc}");
        assert!(doc["metadata"]["name"].is_string(), "{doc}");
    }
}

#[test]
fn rbac_is_least_privilege() {
    let docs = documents(generated());
    let role = find(&docs, "ClusterRole");
    let rules = role["rules"].as_array().unwrap();
    let mut secret_verbs = Vec::new();
    for rule in rules {
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .unwrap_or_else(|| panic!("{key} in {rule}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for key in ["apiGroups", "resources", "verbs"] {
            assert!(
                !strings(key).iter().any(|s| s.contains('*')),
                "wildcard in {key}: {rule}"
            );
        }
        if strings("resources").iter().any(|r| r == "secrets") {
            secret_verbs.extend(strings("verbs"));
        }
        assert!(
            !strings("verbs").iter().any(|v| v == "deletecollection"
                || v == "escalate"
                || v == "bind"
                || v == "impersonate"),
            "{rule}"
        );
    }
    // Secrets are read by name (`valueFrom.secretKeyRef`) and the notification Secret is
    // watched with a `metadata.name` field selector, which needs list and watch.
    assert_eq!(
        secret_verbs,
        ["get", "list", "watch"],
        "secrets are only read, never written"
    );
    // The binding gives that role to the controller's ServiceAccount.
    let binding = find(&docs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], NAME);
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], NAME);
    assert_eq!(binding["subjects"][0]["namespace"], DEFAULT_NAMESPACE);
    // Leader election and events as the controller needs them.
    let verbs_of = |group: &str, resource: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|r| {
                r["apiGroups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|g| g == group)
                    && r["resources"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == resource)
            })
            .flat_map(|r| r["verbs"].as_array().unwrap().clone())
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        verbs_of("coordination.k8s.io", "leases"),
        ["get", "create", "update"]
    );
    assert_eq!(verbs_of("", "events"), ["create", "patch"]);
    assert_eq!(verbs_of("argoproj.io", "rollouts/status"), ["patch"]);
    assert_eq!(
        verbs_of("apps", "replicasets"),
        ["get", "list", "watch", "create", "patch", "delete"]
    );
}

#[test]
fn deployment_runs_the_controller_safely() {
    let docs = documents(generated());
    let deployment = find(&docs, "Deployment");
    assert_eq!(deployment["metadata"]["namespace"], DEFAULT_NAMESPACE);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], NAME);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["image"], default_image());
    // The image's entrypoint is `davy controller`: no command, no args in the base.
    assert!(c.get("command").is_none() && c.get("args").is_none(), "{c}");
    assert_eq!(c["env"][0]["name"], "POD_NAMESPACE");
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(c["ports"][0]["containerPort"], METRICS_PORT);
    assert_eq!(c["ports"][0]["name"], "metrics");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{probe}");
    }
    assert!(c["resources"]["requests"]["cpu"].is_string());
    // docs/benchmarks.md: 72 MiB peak at 1,000 Rollouts, 395 MiB at 10,000.
    assert_eq!(mebibytes(&c["resources"]["requests"]["memory"]), 128);
    assert_eq!(mebibytes(&c["resources"]["limits"]["memory"]), 512);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert!(pod["securityContext"]["runAsUser"].as_i64().unwrap() > 0);
    // The budget covers the controller's pods and never blocks a drain of the one replica.
    let budget = find(&docs, "PodDisruptionBudget");
    assert_eq!(budget["metadata"]["namespace"], DEFAULT_NAMESPACE);
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    // The metrics Service selects the controller pods.
    let service = find(&docs, "Service");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(service["spec"]["ports"][0]["port"], METRICS_PORT);
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
}

#[test]
fn cli_prints_the_stream_and_honours_namespace() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["install", "--namespace", "delivery"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let docs = documents(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(docs.len(), 12);
    assert_eq!(find(&docs, "Namespace")["metadata"]["name"], "delivery");
    for kind in [
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert_eq!(
            find(&docs, kind)["metadata"]["namespace"],
            "delivery",
            "{kind}"
        );
    }
    assert_eq!(
        find(&docs, "ClusterRoleBinding")["subjects"][0]["namespace"],
        "delivery"
    );
    for kind in ["ClusterRole", "ClusterRoleBinding"] {
        assert!(
            find(&docs, kind)["metadata"].get("namespace").is_none(),
            "{kind}"
        );
    }
}
