//! `davy install [--namespace N]`: prints everything a cluster needs to run the controller —
//! the CRDs, a Namespace, a ServiceAccount, a least-privilege ClusterRole and its binding, the
//! controller Deployment and its metrics Service — as one YAML stream for `kubectl apply -f -`.
//!
//! [`install_yaml`] is pure (namespace and image in, text out) so `manifests/install.yaml` can
//! be checked against it. The RBAC rules are a table ([`RULES`]) written from what the code
//! calls, so a reviewer can hold each line against its caller.

use serde_json::{Value, json};
use thiserror::Error;

/// Namespace used when `--namespace` is not given (and by `manifests/install.yaml`).
pub const DEFAULT_NAMESPACE: &str = "davy-system";
/// Name of the ServiceAccount, ClusterRole, ClusterRoleBinding, Deployment and Service.
pub const NAME: &str = "davy-controller";
/// Port of `/metrics` and `/healthz` (`davy controller --metrics-addr`, default 0.0.0.0:8090).
pub const METRICS_PORT: u16 = 8090;

/// The controller image of this build.
pub fn default_image() -> String {
    format!("ghcr.io/davy-dev/davy:v{}", env!("CARGO_PKG_VERSION"))
}

/// One ClusterRole rule: API group, resources, verbs.
pub type Rule = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// What the controller touches, and why (the callers are named so the list can be audited).
/// Secrets are only ever read by name: no list, no watch.
pub const RULES: &[Rule] = &[
    // controller/mod.rs watches Rollouts; executor patches spec.replicas and the revision
    // annotation, and the status through the status subresource.
    ("argoproj.io", &["rollouts"], &["list", "watch", "patch"]),
    ("argoproj.io", &["rollouts/status"], &["patch"]),
    // controller/mod.rs owns AnalysisRuns; executor creates, terminates (patch) and deletes
    // them; the AnalysisRun reconciler watches them too and writes their status (a patch of
    // the object, or of the status subresource where the CRD serves one).
    (
        "argoproj.io",
        &["analysisruns"],
        &["list", "watch", "create", "patch", "delete"],
    ),
    ("argoproj.io", &["analysisruns/status"], &["patch"]),
    // controller/rollouts.rs lists the templates a Rollout references.
    (
        "argoproj.io",
        &["analysistemplates", "clusteranalysistemplates"],
        &["list"],
    ),
    // controller/mod.rs owns ReplicaSets; executor creates, scales/annotates and deletes them.
    (
        "apps",
        &["replicasets"],
        &["list", "watch", "create", "patch", "delete"],
    ),
    // controller/workloads.rs watches the workloads `spec.workloadRef` names (ReplicaSets
    // above); executor scales a referenced Deployment (`scaleDown`).
    ("apps", &["deployments"], &["get", "list", "watch", "patch"]),
    ("", &["podtemplates"], &["get", "list", "watch"]),
    // controller/mod.rs watches Services; executor patches selectors and annotations.
    ("", &["services"], &["list", "watch", "patch"]),
    // controller/rollouts.rs and the job and scrape providers list pods by label; executor
    // evicts (and deletes where there is no Eviction API) and patches ephemeral metadata.
    ("", &["pods"], &["list", "delete", "patch"]),
    ("", &["pods/eviction"], &["create"]),
    // executor records Events on Rollouts.
    ("", &["events"], &["create", "patch"]),
    // analysis/runner.rs reads a Secret by name for `valueFrom.secretKeyRef` arguments;
    // controller/notifications.rs watches `argo-rollouts-notification-secret` (by name).
    ("", &["secrets"], &["get", "list", "watch"]),
    // analysis/providers/job.rs runs `job` metrics.
    ("batch", &["jobs"], &["get", "list", "create", "delete"]),
    // Leader election: one Lease.
    (
        "coordination.k8s.io",
        &["leases"],
        &["get", "create", "update"],
    ),
    // traffic/: nginx canary Ingress (created and owned), Gateway API plugin ConfigMap
    // (created when absent), SMI TrafficSplit (created and owned).
    (
        "networking.k8s.io",
        &["ingresses"],
        &["get", "create", "patch"],
    ),
    // ...and controller/config.rs watches `argo-rollouts-config`.
    // controller/notifications.rs watches `argo-rollouts-notification-configmap` (by name).
    (
        "",
        &["configmaps"],
        &["get", "list", "watch", "create", "patch"],
    ),
    (
        "split.smi-spec.io",
        &["trafficsplits"],
        &["get", "create", "patch"],
    ),
    // traffic/: Istio and Gateway API objects are edited in place, never created.
    (
        "networking.istio.io",
        &["virtualservices", "destinationrules"],
        &["get", "patch"],
    ),
    (
        "gateway.networking.k8s.io",
        &["httproutes", "grpcroutes", "tcproutes", "tlsroutes"],
        &["get", "patch"],
    ),
];

/// Why the install YAML could not be built.
#[derive(Debug, Error)]
pub enum InstallError {
    /// The CRDs could not be generated.
    #[error(transparent)]
    Crds(#[from] crate::api::crd::CrdError),
    /// The manifests could not be written as YAML.
    #[error("YAML serialization failed: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

fn labels() -> Value {
    json!({
        "app.kubernetes.io/name": "davy",
        "app.kubernetes.io/component": "controller",
    })
}

/// Everything but the CRDs, in apply order.
pub fn objects(namespace: &str, image: &str) -> Vec<Value> {
    let meta = |namespaced: bool| {
        let mut m = json!({"name": NAME, "labels": labels()});
        if namespaced {
            m["namespace"] = json!(namespace);
        }
        m
    };
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(group, resources, verbs)| {
            json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
        })
        .collect();
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace},
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(true),
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta(false),
            "rules": rules,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(false),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": NAME,
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        }),
        deployment(image, meta(true)),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(true),
            "spec": {
                "selector": labels(),
                "ports": [{
                    "name": "metrics",
                    "port": METRICS_PORT,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                }],
            },
        }),
    ]
}

fn deployment(image: &str, metadata: Value) -> Value {
    let probe = |delay: u32| {
        json!({
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
        })
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            // One controller at a time: Recreate never runs the old and the new pod together.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels()},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "controller",
                        "image": image,
                        "args": ["controller"],
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        "livenessProbe": probe(10),
                        "readinessProbe": probe(2),
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }],
                },
            },
        },
    })
}

/// The whole install stream: the CRDs, then [`objects`].
pub fn install_yaml(namespace: &str, image: &str) -> Result<String, InstallError> {
    let mut out = crate::api::crd::crds_yaml()?;
    for object in objects(namespace, image) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&object)?);
    }
    Ok(out)
}

/// Arguments of `davy install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Controller image (default: this version's release image).
    #[arg(long)]
    pub image: Option<String>,
}

/// Prints the install YAML. The global `-n/--namespace` names the controller's namespace
/// (created by the output; default [`DEFAULT_NAMESPACE`]).
pub fn run(args: &InstallArgs, kube: &crate::cli::kube::KubeArgs) -> anyhow::Result<i32> {
    let image = args.image.clone().unwrap_or_else(default_image);
    let namespace = kube.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
    print!("{}", install_yaml(namespace, &image)?);
    Ok(0)
}
