//! `davy install [--namespace N]`: prints everything a cluster needs to run the controller —
//! a Namespace, the CRDs, a ServiceAccount, a least-privilege ClusterRole and its binding, the
//! metrics Service, the controller Deployment and its PodDisruptionBudget — as one YAML stream
//! for `kubectl apply -f -`, in the order `kubectl kustomize manifests/` renders them.
//!
//! [`install_yaml`] is pure (namespace and image in, text out) so `manifests/base/install.yaml` (the
//! file the kustomize base in `manifests/` lists) can be checked against it. The RBAC rules are
//! a table ([`RULES`]) written from what the code calls, so a reviewer can hold each line
//! against its caller; a test records every request the controller sends and checks each
//! against this table.

use serde_json::{Value, json};
use thiserror::Error;

/// Namespace used when `--namespace` is not given (and by `manifests/base/install.yaml`).
pub const DEFAULT_NAMESPACE: &str = "davy-system";
/// Name of the ServiceAccount, ClusterRole, ClusterRoleBinding, Deployment and Service.
pub const NAME: &str = "davy-controller";
/// Port of `/metrics` and `/healthz` (`davy controller --metrics-addr`, default 0.0.0.0:8090).
pub const METRICS_PORT: u16 = 8090;

/// Port of the Alertmanager webhook receiver in `manifests/overlays/alert-webhook`.
pub const ALERT_WEBHOOK_PORT: u16 = 8091;
/// The image repository the README documents (built from the repository's `Dockerfile`).
pub const IMAGE_REPOSITORY: &str = "ghcr.io/davy-dev/davy";

/// The controller image of this build: [`IMAGE_REPOSITORY`] tagged `v<crate version>`.
pub fn default_image() -> String {
    format!("{IMAGE_REPOSITORY}:v{}", env!("CARGO_PKG_VERSION"))
}

/// One ClusterRole rule: API group, resources, verbs.
pub type Rule = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// What the controller touches, and why (the callers are named so the list can be audited).
/// Secrets are only ever read by name: no list, no watch. The cluster-scoped kinds come first:
/// the namespaced overlay (`manifests/overlays/namespaced`) turns this ClusterRole into a Role
/// and grants rule 0 through a ClusterRole of its own, since a Role cannot.
pub const RULES: &[Rule] = &[
    // controller/mod.rs watches ClusterAnalysisTemplates cluster-wide (also with --namespace).
    (
        "argoproj.io",
        &["clusteranalysistemplates"],
        &["list", "watch"],
    ),
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
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    ("argoproj.io", &["analysisruns/status"], &["patch"]),
    // controller/mod.rs watches the AnalysisTemplates a Rollout may reference.
    ("argoproj.io", &["analysistemplates"], &["list", "watch"]),
    // controller/mod.rs watches Experiments; rollouts.rs creates and patches a Rollout's
    // experiment steps; experiments.rs writes their status.
    (
        "argoproj.io",
        &["experiments"],
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    ("argoproj.io", &["experiments/status"], &["patch"]),
    // controller/mod.rs owns ReplicaSets; executor reads one back by name, creates,
    // scales/annotates and deletes them.
    (
        "apps",
        &["replicasets"],
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    // controller/workloads.rs watches the workloads `spec.workloadRef` names (ReplicaSets
    // above); executor scales a referenced Deployment (`scaleDown`).
    ("apps", &["deployments"], &["get", "list", "watch", "patch"]),
    ("", &["podtemplates"], &["get", "list", "watch"]),
    // controller/mod.rs watches Services; executor reads one by name and patches selectors
    // and annotations.
    ("", &["services"], &["get", "list", "watch", "patch"]),
    // controller/rollouts.rs and the job and scrape providers list pods by label; executor
    // evicts (and deletes where there is no Eviction API) and patches ephemeral metadata.
    ("", &["pods"], &["list", "delete", "patch"]),
    ("", &["pods/eviction"], &["create"]),
    // executor records Events on Rollouts.
    ("", &["events"], &["create", "patch"]),
    // analysis/runner.rs reads a Secret by name for `valueFrom.secretKeyRef` arguments;
    // controller/notifications.rs watches `argo-rollouts-notification-secret` (by name).
    ("", &["secrets"], &["get", "list", "watch"]),
    // analysis/providers/job.rs runs `job` metrics; the AnalysisRun controller watches them.
    (
        "batch",
        &["jobs"],
        &["get", "list", "watch", "create", "delete"],
    ),
    // Leader election: one Lease.
    (
        "coordination.k8s.io",
        &["leases"],
        &["get", "create", "update"],
    ),
    // controller/mod.rs watches Ingresses; traffic/: the nginx canary Ingress (created and
    // owned), the Gateway API plugin ConfigMap (created when absent), the SMI TrafficSplit
    // (created and owned).
    (
        "networking.k8s.io",
        &["ingresses"],
        &["get", "list", "watch", "create", "patch"],
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
    // traffic/traefik.rs and traffic/appmesh.rs edit the weighted objects in place.
    ("traefik.io", &["traefikservices"], &["get", "patch"]),
    (
        "appmesh.k8s.aws",
        &["virtualservices", "virtualrouters", "virtualnodes"],
        &["get", "patch"],
    ),
    // traffic/ambassador.rs creates and deletes the canary Mapping; traffic/apisix.rs the
    // header-route copies of an ApisixRoute.
    (
        "getambassador.io",
        &["mappings"],
        &["get", "create", "patch", "delete"],
    ),
    (
        "apisix.apache.org",
        &["apisixroutes"],
        &["get", "create", "patch", "delete"],
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

/// The namespace, then everything but the CRDs, in apply order (kustomize's: the Namespace and
/// the CRDs before the objects in the namespace, the Deployment after its RBAC and Service).
pub fn objects(namespace: &str, image: &str) -> (Value, Vec<Value>) {
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
    let namespace_object = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace},
    });
    let rest = vec![
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
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(true),
            "spec": {
                "selector": labels(),
                // Upstream's metrics Service names its port `metrics` too, so a ServiceMonitor
                // written for Argo Rollouts selects this one unchanged.
                "ports": [{
                    "name": "metrics",
                    "port": METRICS_PORT,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                }],
            },
        }),
        deployment(image, meta(true)),
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(true),
            "spec": {
                // One replica by default, so a drain may evict it (the leader Lease hands over
                // to the replacement); with `replicas: 2` (a standby, safe under the Lease) one
                // pod keeps running through every voluntary disruption.
                "maxUnavailable": 1,
                "selector": {"matchLabels": labels()},
            },
        }),
    ];
    (namespace_object, rest)
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
            // Recreate: an upgrade stops the old pod before the new one campaigns for the Lease.
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
                        // The image's entrypoint is `davy controller`; flags go in `args`.
                        "env": [{
                            // The Lease's namespace (and the namespaced overlay's --namespace).
                            "name": "POD_NAMESPACE",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                        }],
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        "livenessProbe": probe(10),
                        "readinessProbe": probe(2),
                        // Sized from `davy bench scale` (docs/benchmarks.md): peak RSS 72 MiB
                        // at 1,000 Rollouts, 395 MiB at 10,000; about a tenth of a core while
                        // a wave of updates runs.
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "512Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }],
                },
            },
        },
    })
}

/// The whole install stream: the Namespace, the CRDs, then the rest of [`objects`].
pub fn install_yaml(namespace: &str, image: &str) -> Result<String, InstallError> {
    let (namespace_object, rest) = objects(namespace, image);
    let mut out = String::from("---\n");
    out.push_str(&serde_saphyr::to_string(&namespace_object)?);
    out.push_str(&crate::api::crd::crds_yaml()?);
    for object in rest {
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
