//! The controller end to end with analysis and nginx traffic routing, on the sandbox API server
//! with the workload simulator running real demo apps: step analysis passing and promoting,
//! failing and aborting (retry, abort cleared by a new image), inconclusive and pausing, and the
//! seed's header-routing example.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use std::time::Duration;

use davy::api::Rollout;
use davy::sandbox::load_generator::{
    Backend, LoadConfig, LoadReport, SplitTargets, TaggedRequests, follow_split, run_load,
};
use davy::sandbox::simulator::{SimulatorConfig, pod_endpoint};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use common::argocd_health::{analysis_run_health, rollout_health};
use support::{
    NS, Sandbox, World, controller_config, describe, eventually, read_docs, simulator_config,
};

const ROLLOUT: &str = "rollouts-demo";
const CANARY_INGRESS: &str = "rollouts-demo-user-profile-ingress-canary";
const WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";

/// The sandbox with real demo apps behind the pods, and a controller; `RUST_LOG` traces go to
/// the test output.
async fn start() -> World {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let simulator = SimulatorConfig {
        demo_apps: true,
        ..simulator_config()
    };
    World::start_with(simulator, controller_config()).await
}

/// The API of the argoproj.io/v1alpha1 kind `kind` (plural `plural`), dynamically typed.
fn argo_api(sandbox: &Sandbox, kind: &str, plural: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(sandbox.client.clone(), NS, &resource)
}

/// The canary Ingress as JSON, if it exists.
async fn canary_ingress(sandbox: &Sandbox) -> Option<Value> {
    let found = sandbox
        .api::<Ingress>()
        .get_opt(CANARY_INGRESS)
        .await
        .expect("get ingress");
    found.map(|ingress| serde_json::to_value(ingress).expect("ingress json"))
}

async fn canary_weight(sandbox: &Sandbox) -> Option<String> {
    let ingress = canary_ingress(sandbox).await?;
    ingress["metadata"]["annotations"][WEIGHT]
        .as_str()
        .map(String::from)
}

/// How many pods with pod-template hash `hash` are Ready with a listening demo app.
async fn ready_pods(sandbox: &Sandbox, hash: &str) -> usize {
    let list = sandbox
        .api::<Pod>()
        .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
        .await
        .expect("list pods");
    list.items.iter().filter_map(pod_endpoint).count()
}

async fn apply_manifest(sandbox: &Sandbox, doc: &Value) {
    let kind = doc["kind"].as_str().expect("kind");
    let params = PostParams::default();
    match kind {
        "Rollout" => {
            let rollout: Rollout = serde_json::from_value(doc.clone()).expect("rollout");
            sandbox.create(&rollout).await;
        }
        "Service" => {
            let service: Service = serde_json::from_value(doc.clone()).expect("service");
            let api = sandbox.api::<Service>();
            api.create(&params, &service).await.expect("create service");
        }
        "Ingress" => {
            let ingress: Ingress = serde_json::from_value(doc.clone()).expect("ingress");
            let api = sandbox.api::<Ingress>();
            api.create(&params, &ingress).await.expect("create ingress");
        }
        other => panic!("unexpected kind {other}"),
    }
}

/// Creates or replaces the AnalysisTemplate (server-side apply).
async fn set_template(sandbox: &Sandbox, template: &Value) {
    let api = argo_api(sandbox, "AnalysisTemplate", "analysistemplates");
    let name = template["metadata"]["name"]
        .as_str()
        .expect("template name");
    api.patch(
        name,
        &PatchParams::apply("controller-analysis-test").force(),
        &Patch::Apply(template),
    )
    .await
    .expect("apply template");
}

/// Deploys the analysis demo: a Rollout whose steps name a template must find it (upstream
/// validates referenced templates before anything else), so one exists from the start,
/// scraping nothing; once the stable hash is known it is pointed at every other pod, the
/// canary's, well before the analysis step reads it.
async fn deploy_with_template(sandbox: &Sandbox) -> String {
    set_template(sandbox, &scrape_template("rollouts-pod-template-hash=none")).await;
    let blue = deploy(sandbox, &analysis_demo(analysis_steps())).await;
    set_template(
        sandbox,
        &scrape_template(&format!("rollouts-pod-template-hash!={blue}")),
    )
    .await;
    blue
}

/// Creates the manifests and waits for the first revision to be Healthy; its hash.
async fn deploy(sandbox: &Sandbox, docs: &[Value]) -> String {
    for doc in docs {
        apply_manifest(sandbox, doc).await;
    }
    eventually("the first revision to become Healthy", || async {
        let status = sandbox.status(ROLLOUT).await;
        let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
        if status["phase"] == "Healthy" && !stable.is_empty() {
            Ok(stable)
        } else {
            Err(describe(&status))
        }
    })
    .await
}

/// Sets `image` and waits for the canary to pause at step `step` with ready canary pods;
/// the canary hash.
async fn paused_canary(sandbox: &Sandbox, image: &str, stable: &str, step: i64) -> String {
    sandbox.set_image(ROLLOUT, image).await;
    eventually("the canary paused with ready pods", || async {
        let status = sandbox.status(ROLLOUT).await;
        let current = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let paused = status["currentStepIndex"] == step && status["phase"] == "Paused";
        if paused && current != stable && ready_pods(sandbox, &current).await > 0 {
            Ok(current)
        } else {
            Err(describe(&status))
        }
    })
    .await
}

/// Sends load through the canary Ingress's split until `cancel` (bounded at 60 s).
async fn start_load(
    sandbox: &Sandbox,
    tagged: Option<TaggedRequests>,
    cancel: CancellationToken,
) -> JoinHandle<LoadReport> {
    let targets = SplitTargets::new(NS, "rollouts-demo-stable", "rollouts-demo-canary")
        .with_canary_ingress(CANARY_INGRESS);
    let (split, _follow) = follow_split(
        sandbox.client.clone(),
        targets,
        Duration::from_millis(100),
        cancel.clone(),
    )
    .await
    .expect("follow split");
    let config = LoadConfig {
        rate_per_second: 40.0,
        max_requests: None,
        max_duration: Some(Duration::from_secs(60)),
        tagged,
        ..LoadConfig::default()
    };
    tokio::spawn(async move { run_load(&config, split, cancel).await.expect("load") })
}

/// The AnalysisRuns of the Rollout, as JSON.
async fn analysis_runs(sandbox: &Sandbox) -> Vec<Value> {
    argo_api(sandbox, "AnalysisRun", "analysisruns")
        .list(&ListParams::default())
        .await
        .expect("list runs")
        .items
        .into_iter()
        .map(|run| serde_json::to_value(run).expect("run json"))
        .collect()
}

/// The seed's header-routing example (Rollout, two Services, the stable Ingress) with
/// `steps` instead of its own, and a one-second abort scale-down delay.
fn analysis_demo(steps: Value) -> Vec<Value> {
    let mut docs = read_docs("examples/rollouts-demo-header-routing.yaml");
    for doc in &mut docs {
        if doc["kind"] == "Rollout" {
            let canary = &mut doc["spec"]["strategy"]["canary"];
            canary["steps"] = steps.clone();
            canary["abortScaleDownDelaySeconds"] = json!(1);
        }
    }
    docs
}

/// `setWeight: 50`, a pause (the test learns the canary's pod-template hash), then the scrape
/// analysis (one measurement over a two-second window).
fn analysis_steps() -> Value {
    json!([
        {"setWeight": 50},
        {"pause": {}},
        {"analysis": {
            "templates": [{"templateName": "scrape-success-rate"}],
            "args": [
                {"name": "count", "value": "1"},
                {"name": "interval", "value": "1s"},
                {"name": "window", "value": "2s"},
                {"name": "min-success-rate", "value": "0.95"},
            ]
        }},
    ])
}

/// `analysis-templates/scrape-success-rate.yaml` with its `pod-selector` defaulting to
/// `selector`: those pods are scraped at `<podIP>:8080/metrics` as in a cluster.
fn scrape_template(selector: &str) -> Value {
    let mut template = read_docs("analysis-templates/scrape-success-rate.yaml")
        .into_iter()
        .next()
        .expect("template doc");
    for arg in template["spec"]["args"].as_array_mut().expect("args") {
        if arg["name"] == "pod-selector" {
            arg["value"] = json!(selector);
        }
    }
    template
}

/// Promotes past a canary pause, as `kubectl argo rollouts promote` does.
async fn promote(sandbox: &Sandbox) {
    sandbox
        .patch_status(ROLLOUT, json!({"pauseConditions": null}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_analysis_promotes_the_canary() {
    let world = start().await;
    let blue = deploy_with_template(&world).await;
    let green = paused_canary(&world, "argoproj/rollouts-demo:green", &blue, 1).await;
    assert_eq!(canary_weight(&world).await.as_deref(), Some("50"));
    let cancel = CancellationToken::new();
    let load = start_load(&world, None, cancel.clone()).await;
    promote(&world).await;

    eventually("the canary to be promoted and Healthy", || async {
        let status = world.status(ROLLOUT).await;
        let done = status["phase"] == "Healthy"
            && status["stableRS"] == green.as_str()
            && world.rs_replicas(&blue).await == Some(0);
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    cancel.cancel();
    let report = load.await.expect("load task");
    assert!(report.routed_to(Backend::Canary) > 0, "{report:?}");

    let status = world.status(ROLLOUT).await;
    assert_eq!(status["currentStepIndex"], 3);
    assert_eq!(status["stableRS"], green.as_str());
    // Promoted: all traffic back to the (new) stable Service.
    assert_eq!(canary_weight(&world).await.as_deref(), Some("0"));
    let runs = analysis_runs(&world).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"]["phase"], "Successful", "{}", runs[0]);
    let measurement = &runs[0]["status"]["metricResults"][0]["measurements"][0];
    assert_eq!(measurement["phase"], "Successful", "{measurement}");
    assert_eq!(measurement["value"], "1", "{measurement}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_analysis_aborts_then_retry_and_a_new_image_recover() {
    let world = start().await;
    let blue = deploy_with_template(&world).await;
    let bad = paused_canary(&world, "argoproj/rollouts-demo:bad-yellow", &blue, 1).await;
    let cancel = CancellationToken::new();
    let load = start_load(&world, None, cancel.clone()).await;
    promote(&world).await;

    let status = eventually("the Rollout to abort", || async {
        let status = world.status(ROLLOUT).await;
        let done = status["phase"] == "Degraded"
            && status["abort"] == true
            && canary_weight(&world).await.as_deref() == Some("0")
            && world.rs_replicas(&bad).await == Some(0);
        if done {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    cancel.cancel();
    load.await.expect("load task");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase error/failed: Metric \"scrape-success-rate\" assessed Failed due to failed (1) > failureLimit (0)"
        ),
        "{message}"
    );
    assert_eq!(status["stableRS"], blue.as_str());
    assert_eq!(world.rs_replicas(&blue).await, Some(2));
    let runs = analysis_runs(&world).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"]["phase"], "Failed", "{}", runs[0]);
    let run_health = analysis_run_health(&runs[0]).expect("run health");
    assert_eq!(run_health.status, "Degraded");
    assert_eq!(
        run_health.message,
        "Metric \"scrape-success-rate\" assessed Failed due to failed (1) > failureLimit (0)"
    );
    let measurement = &runs[0]["status"]["metricResults"][0]["measurements"][0];
    assert_eq!(measurement["phase"], "Failed", "{measurement}");
    let health = rollout_health(&world.rollout_json(ROLLOUT).await);
    assert_eq!(health.status, "Degraded");
    assert_eq!(health.message, message);

    // `kubectl argo rollouts retry`: abort cleared, the canary starts again from step 0.
    world.patch_status(ROLLOUT, json!({"abort": false})).await;
    eventually("the retried canary to pause at step 1", || async {
        let status = world.status(ROLLOUT).await;
        let done = status["phase"] == "Paused"
            && status["currentStepIndex"] == 1
            && status["abort"] != true
            && status["currentPodHash"] == bad.as_str()
            && world.rs_replicas(&bad).await == Some(1)
            && canary_weight(&world).await.as_deref() == Some("50");
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;

    // Aborted again by hand, then a new image clears the abort.
    world.patch_status(ROLLOUT, json!({"abort": true})).await;
    eventually("the manual abort", || async {
        let status = world.status(ROLLOUT).await;
        let done =
            status["phase"] == "Degraded" && canary_weight(&world).await.as_deref() == Some("0");
        if done { Ok(()) } else { Err(describe(&status)) }
    })
    .await;
    let green = paused_canary(&world, "argoproj/rollouts-demo:green", &blue, 1).await;
    let status = world.status(ROLLOUT).await;
    assert_ne!(status["abort"], true, "{status}");
    assert_eq!(status["stableRS"], blue.as_str());
    assert_ne!(green, bad);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconclusive_analysis_pauses_the_rollout() {
    let world = start().await;
    let blue = deploy_with_template(&world).await;
    let green = paused_canary(&world, "argoproj/rollouts-demo:green", &blue, 1).await;
    // No load: no request in the window, the ratio is NaN and neither condition holds.
    promote(&world).await;

    let status = eventually("the inconclusive pause", || async {
        let status = world.status(ROLLOUT).await;
        let done = status["phase"] == "Paused"
            && status["pauseConditions"][0]["reason"] == "InconclusiveAnalysisRun";
        if done {
            Ok(status)
        } else {
            Err(format!(
                "{} runs={:?}",
                describe(&status),
                analysis_runs(&world).await
            ))
        }
    })
    .await;
    assert_eq!(status["currentStepIndex"], 2);
    assert_eq!(status["stableRS"], blue.as_str());
    assert_ne!(status["abort"], true);
    let runs = analysis_runs(&world).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"]["phase"], "Inconclusive", "{}", runs[0]);
    assert_eq!(world.rs_replicas(&green).await, Some(1));
    assert_eq!(canary_weight(&world).await.as_deref(), Some("50"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_routing_example_sends_tagged_requests_to_one_canary_pod() {
    let world = start().await;
    let docs = read_docs("examples/rollouts-demo-header-routing.yaml");
    let blue = deploy(&world, &docs).await;
    let yellow = paused_canary(&world, "argoproj/rollouts-demo:yellow", &blue, 1).await;
    assert_eq!(world.rs_replicas(&yellow).await, Some(1));
    assert_eq!(world.rs_replicas(&blue).await, Some(2));

    let ingress = canary_ingress(&world).await.expect("canary ingress");
    let annotations = &ingress["metadata"]["annotations"];
    let prefix = "nginx.ingress.kubernetes.io";
    assert_eq!(annotations[format!("{prefix}/canary")], "true");
    assert_eq!(annotations[WEIGHT], "0");
    assert_eq!(
        annotations[format!("{prefix}/canary-by-header")],
        "X-Canary"
    );
    assert_eq!(
        annotations[format!("{prefix}/canary-by-header-value")],
        "iwantsit"
    );
    assert_eq!(annotations[format!("{prefix}/canary-by-cookie")], "Canary");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "rollouts-demo-canary"
    );
    assert_eq!(ingress["metadata"]["ownerReferences"][0]["kind"], "Rollout");

    // A quarter of the requests carry the header: those reach the canary, the rest the stable.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("X-Canary", "iwantsit".parse().expect("header value"));
    let tagged = TaggedRequests {
        fraction: 0.25,
        headers,
    };
    let cancel = CancellationToken::new();
    let targets = SplitTargets::new(NS, "rollouts-demo-stable", "rollouts-demo-canary")
        .with_canary_ingress(CANARY_INGRESS);
    let (split, _follow) = follow_split(
        world.client.clone(),
        targets,
        Duration::from_millis(100),
        cancel.clone(),
    )
    .await
    .expect("follow split");
    let config = LoadConfig {
        rate_per_second: 100.0,
        max_requests: Some(200),
        tagged: Some(tagged),
        ..LoadConfig::default()
    };
    let report = run_load(&config, split, cancel.clone())
        .await
        .expect("load");
    cancel.cancel();
    assert_eq!(report.sent, 200);
    assert_eq!(report.transport_errors, 0, "{report:?}");
    let to_canary = report.count_version("yellow");
    let to_stable = report.count_version("blue");
    assert_eq!(to_canary + to_stable, 200, "{report:?}");
    assert_eq!(to_canary, report.routed_to(Backend::Canary), "{report:?}");
    assert!(to_canary > 0 && to_stable > to_canary, "{report:?}");

    // The indefinite pause holds: still at step 1, nothing promoted.
    let status = world.status(ROLLOUT).await;
    assert_eq!(status["phase"], "Paused", "{}", describe(&status));
    assert_eq!(status["currentStepIndex"], 1);
    assert_eq!(status["pauseConditions"][0]["reason"], "CanaryPauseStep");
    assert_eq!(status["stableRS"], blue.as_str());
    assert_eq!(world.rs_replicas(&yellow).await, Some(1));

    // An edit of the stable Ingress reaches the canary Ingress (the Ingress watch reconciles
    // the paused Rollout that names it).
    let ingresses = world.api::<Ingress>();
    let host = json!([{"op": "replace", "path": "/spec/rules/0/host", "value": "other.local"}]);
    let host: json_patch::Patch = serde_json::from_value(host).expect("patch");
    ingresses
        .patch(
            "user-profile-ingress",
            &PatchParams::default(),
            &Patch::Json::<()>(host),
        )
        .await
        .expect("edit stable ingress");
    eventually("the canary Ingress to follow the stable host", || async {
        let ingress = canary_ingress(&world).await.unwrap_or_default();
        let host = &ingress["spec"]["rules"][0]["host"];
        if host == "other.local" {
            Ok(())
        } else {
            Err(host.to_string())
        }
    })
    .await;
    world.stop().await;
}
