//! The install's RBAC covers every API call the controller makes. Two nets, both derived from
//! the code rather than from a list kept by hand:
//!
//! * recorded: the controller runs cluster-wide, with leader election, on a client that logs
//!   every request, through scenarios that reach its calls (a canary with nginx traffic
//!   routing, a step analysis whose argument is a Secret, an experiment step, a restart that
//!   evicts pods, an abort; a blue-green update that switches Services). Each request becomes
//!   (API group, resource[/subresource], verb) as the API server's authorizer sees it, and each
//!   must be allowed by the ClusterRole `davy install` prints — so a new call without a rule
//!   fails here;
//! * scanned: every `Api<K>` type named in the controller's layers (src/controller,
//!   src/analysis, src/traffic) must map to a resource the ClusterRole names, so a new kind
//!   fails here even before a scenario reaches it.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;

use davy::cli::install::RULES;
use davy::controller::ControllerConfig;
use davy::controller::leader::LeaderElection;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::{
    Controller, NS, Request, Sandbox, blue_green_rollout, canary_rollout, describe, eventually,
    rollout, verdict_server,
};

/// One request as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    group: String,
    /// `resource` or `resource/subresource`.
    resource: String,
    verb: String,
}

/// Turns a logged request into an [`Access`]; `None` for non-resource paths (discovery, which
/// every authenticated user may read).
fn access(request: &Request) -> Option<Access> {
    let (path, query) = request
        .path
        .split_once('?')
        .unwrap_or((request.path.as_str(), ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    // Strip `namespaces/<ns>` unless the namespaces resource itself is addressed.
    let rest = match rest {
        ["namespaces", _ns, resource, more @ ..] => {
            let mut v = vec![*resource];
            v.extend_from_slice(more);
            v
        }
        other => other.to_vec(),
    };
    let (resource, name, sub) = match rest.as_slice() {
        [] => return None,
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub, ..] => (*resource, Some(*name), Some(*sub)),
    };
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match (request.method.as_str(), name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (other, _) => panic!("unexpected method {other} in {request:?}"),
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    Some(Access {
        group: group.to_string(),
        resource,
        verb: verb.to_string(),
    })
}

fn allowed(access: &Access) -> bool {
    RULES.iter().any(|(group, resources, verbs)| {
        *group == access.group
            && resources.contains(&access.resource.as_str())
            && verbs.contains(&access.verb.as_str())
    })
}

#[test]
fn requests_map_to_what_the_authorizer_checks() {
    let req = |method: &str, path: &str| Request {
        method: method.into(),
        path: path.into(),
    };
    let a = |group: &str, resource: &str, verb: &str| {
        Some(Access {
            group: group.into(),
            resource: resource.into(),
            verb: verb.into(),
        })
    };
    assert_eq!(
        access(&req(
            "GET",
            "/apis/argoproj.io/v1alpha1/rollouts?watch=true&resourceVersion=1"
        )),
        a("argoproj.io", "rollouts", "watch")
    );
    assert_eq!(
        access(&req(
            "PATCH",
            "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/r/status"
        )),
        a("argoproj.io", "rollouts/status", "patch")
    );
    assert_eq!(
        access(&req("POST", "/api/v1/namespaces/default/pods/p/eviction")),
        a("", "pods/eviction", "create")
    );
    assert_eq!(
        access(&req("GET", "/api/v1/namespaces/default/secrets/s")),
        a("", "secrets", "get")
    );
    assert_eq!(
        access(&req("GET", "/api/v1/namespaces/default")),
        a("", "namespaces", "get")
    );
    assert_eq!(access(&req("GET", "/apis")), None);
    // The controller reads Secrets (and watches the notification Secret) but never writes one.
    assert!(!allowed(&Access {
        group: String::new(),
        resource: "secrets".into(),
        verb: "create".into()
    }));
}

async fn wait_status(sandbox: &Sandbox, name: &str, what: &str, done: impl Fn(&Value) -> bool) {
    eventually(what, || async {
        let status = sandbox.status(name).await;
        if done(&status) {
            Ok(())
        } else {
            Err(describe(&status))
        }
    })
    .await;
}

async fn create_fixtures(sandbox: &Sandbox, verdict: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "verdict", "namespace": NS},
        "stringData": {"url": format!("{verdict}/pass")}
    }))
    .unwrap();
    sandbox
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // The URL comes from the Secret, so the analysis reads it by name.
    sandbox
        .create_template(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "verdict", "namespace": NS},
            "spec": {
                "args": [{"name": "url", "valueFrom": {"secretKeyRef": {"name": "verdict", "key": "url"}}}],
                "metrics": [{"name": "verdict", "count": 1,
                             "successCondition": "result == true",
                             "provider": {"web": {"url": "{{args.url}}", "jsonPath": "{$.ok}"}}}]
            }
        }))
        .await;
    for name in ["rbac-stable", "rbac-canary"] {
        sandbox.create_service(name, "rbac").await;
    }
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "rbac-ingress", "namespace": NS},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "rbac.example", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "rbac-stable", "port": {"number": 80}}}
        }]}}]}
    }))
    .unwrap();
    sandbox
        .api::<Ingress>()
        .create(&PostParams::default(), &ingress)
        .await
        .unwrap();
    for name in ["rbac-bg-active", "rbac-bg-preview"] {
        sandbox.create_service(name, "rbac-bg").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_role_allows_every_request_the_controller_sends() {
    let sandbox = Sandbox::start().await;
    let (client, log) = sandbox.logging_client();
    // As the install runs it: every namespace, leader election on.
    let config = ControllerConfig {
        namespace: None,
        leader_election: Some(LeaderElection::new(NS)),
        ..ControllerConfig::default()
    };
    let controller = Controller::start(client, config);
    let verdict = verdict_server().await;
    create_fixtures(&sandbox, &verdict).await;

    let steps = json!([
        {"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "verdict"}]}},
        {"experiment": {"duration": "1s", "templates": [
            {"name": "baseline", "specRef": "stable"},
            {"name": "canary", "specRef": "canary"}
        ]}},
        {"pause": {}}
    ]);
    let mut canary = canary_rollout("rbac", 2, steps, "app:v1");
    let strategy = &mut canary["spec"]["strategy"]["canary"];
    strategy["stableService"] = json!("rbac-stable");
    strategy["canaryService"] = json!("rbac-canary");
    strategy["trafficRouting"] = json!({"nginx": {"stableIngress": "rbac-ingress"}});
    sandbox.create(&rollout(canary)).await;
    sandbox
        .create(&rollout(blue_green_rollout(
            "rbac-bg",
            1,
            json!({}),
            "app:v1",
        )))
        .await;
    sandbox.healthy("rbac").await;
    let blue = sandbox.healthy("rbac-bg").await;

    // The canary update walks its analysis and experiment to the pause.
    sandbox.set_image("rbac", "app:v2").await;
    wait_status(&sandbox, "rbac", "the pause after the experiment", |s| {
        s["phase"] == "Paused" && s["currentStepIndex"] == 3
    })
    .await;
    // Restart: the controller evicts the pods older than restartAt.
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    sandbox
        .patch("rbac", json!({"spec": {"restartAt": at}}))
        .await;
    wait_status(&sandbox, "rbac", "the restart recorded", |s| {
        s["restartedAt"] == at.as_str()
    })
    .await;
    // Abort: the canary is scaled down, the Rollout Degraded.
    sandbox.patch_status("rbac", json!({"abort": true})).await;
    wait_status(&sandbox, "rbac", "the abort", |s| s["phase"] == "Degraded").await;

    // Blue-green: a new stack, then the active Service switched to it.
    sandbox.set_image("rbac-bg", "app:v2").await;
    eventually("the blue-green switch", || async {
        let status = sandbox.status("rbac-bg").await;
        let done = status["phase"] == "Healthy"
            && status["stableRS"] != blue.as_str()
            && sandbox.selector_of("rbac-bg-active").await
                == status["stableRS"].as_str().unwrap_or_default();
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    controller.stop().await.expect("controller");
    sandbox.stop().await;

    let seen: BTreeSet<Access> = log.all().iter().filter_map(access).collect();
    let denied: Vec<&Access> = seen.iter().filter(|a| !allowed(a)).collect();
    println!("the controller sent {} kinds of request:", seen.len());
    for access in &seen {
        println!("  {access:?}");
    }
    assert!(
        denied.is_empty(),
        "requests the ClusterRole does not allow (add them to RULES in src/cli/install.rs):\n{denied:#?}"
    );
    // The scenarios did reach the calls the rules exist for (else this test proves little).
    for (group, resource, verb) in [
        ("argoproj.io", "rollouts", "watch"),
        ("argoproj.io", "rollouts/status", "patch"),
        ("argoproj.io", "analysisruns", "create"),
        ("argoproj.io", "experiments", "create"),
        ("apps", "replicasets", "create"),
        ("", "services", "patch"),
        ("", "pods/eviction", "create"),
        ("", "secrets", "get"),
        ("networking.k8s.io", "ingresses", "create"),
        ("coordination.k8s.io", "leases", "create"),
        ("", "events", "create"),
    ] {
        let wanted = Access {
            group: group.into(),
            resource: resource.into(),
            verb: verb.into(),
        };
        assert!(seen.contains(&wanted), "never sent: {wanted:?}");
    }
}

/// The kube resource behind a Rust type name the controller's layers build an `Api` of.
fn resource_of(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Rollout" => ("argoproj.io", "rollouts"),
        "AnalysisRun" => ("argoproj.io", "analysisruns"),
        "AnalysisTemplate" => ("argoproj.io", "analysistemplates"),
        "ClusterAnalysisTemplate" => ("argoproj.io", "clusteranalysistemplates"),
        "Experiment" => ("argoproj.io", "experiments"),
        "ReplicaSet" => ("apps", "replicasets"),
        "Deployment" => ("apps", "deployments"),
        "StatefulSet" => ("apps", "statefulsets"),
        "DaemonSet" => ("apps", "daemonsets"),
        "Service" => ("", "services"),
        "Pod" => ("", "pods"),
        "Secret" => ("", "secrets"),
        "ConfigMap" => ("", "configmaps"),
        "Event" | "KubeEvent" => ("", "events"),
        "Job" => ("batch", "jobs"),
        "Lease" => ("coordination.k8s.io", "leases"),
        "Ingress" => ("networking.k8s.io", "ingresses"),
        _ => return None,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_kind_the_controller_builds_an_api_of_has_a_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for layer in ["controller", "analysis", "traffic"] {
        rust_files(&root.join(layer), &mut files);
    }
    let pattern = regex::Regex::new(r"Api(?:::)?<\s*([A-Za-z_:]+)\s*>").unwrap();
    let mut kinds = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for capture in pattern.captures_iter(&text) {
            let kind = capture[1].rsplit("::").next().unwrap().to_string();
            // Generic parameters and dynamic objects (traffic/: its routers' kinds are named
            // in RULES by resource) are not kinds.
            if kind.len() > 1 && kind != "DynamicObject" {
                kinds.insert((kind, file.display().to_string()));
            }
        }
    }
    assert!(kinds.len() >= 8, "the scan found too little: {kinds:?}");
    for (kind, file) in &kinds {
        let (group, resource) = resource_of(kind).unwrap_or_else(|| {
            panic!("{file} builds an Api<{kind}>: add its resource to resource_of() here and a rule to RULES")
        });
        assert!(
            RULES
                .iter()
                .any(|(g, resources, _)| *g == group && resources.contains(&resource)),
            "{file} uses Api<{kind}> but RULES has no rule for {group}/{resource}"
        );
    }
}
