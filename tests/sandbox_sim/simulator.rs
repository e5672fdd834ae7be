//! The workload simulator on the in-process sandbox API server.

use std::sync::Arc;
use std::time::Duration;

use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::load_generator::{
    CanaryRules, Split, SplitTargets, TaggedRequests, follow_split, resolve_split, run_load,
};
use davy::sandbox::simulator::pods::is_ready;
use davy::sandbox::simulator::{
    Clock, PORT_ANNOTATION, Simulator, SimulatorConfig, SimulatorHandle, TokioClock, is_pod_ip,
    pod_endpoint,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::fast_load;

const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) fn replicaset(name: &str, replicas: i32, image: &str) -> ReplicaSet {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name, "tier": "web" } },
                "spec": { "containers": [ { "name": "main", "image": image } ] }
            }
        }
    }))
    .expect("replicaset")
}

fn start(server: &ApiServer, demo_apps: bool) -> SimulatorHandle {
    Simulator::start(
        server.client(),
        SimulatorConfig {
            namespace: Some("default".to_string()),
            pod_ready_delay: Duration::from_millis(100),
            demo_apps,
            ..SimulatorConfig::default()
        },
    )
}

/// Polls `check` until it yields a value or the deadline passes (then fails with `what`).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(replicas, fullyLabeled, ready, available, observedGeneration)` of a ReplicaSet.
async fn rs_counts(api: &Api<ReplicaSet>, name: &str) -> (i32, i32, i32, i32, i64) {
    let rs = api.get(name).await.expect("get rs");
    let s = rs.status.unwrap_or_default();
    (
        s.replicas,
        s.fully_labeled_replicas.unwrap_or(0),
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
        s.observed_generation.unwrap_or(0),
    )
}

async fn wait_counts(api: &Api<ReplicaSet>, name: &str, want: (i32, i32, i32, i32, i64)) {
    eventually(&format!("{name} status {want:?}"), || async {
        (rs_counts(api, name).await == want).then_some(())
    })
    .await;
}

async fn pods_of(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods")
        .items
}

fn scale_patch(replicas: i32) -> serde_json::Value {
    serde_json::json!({ "spec": { "replicas": replicas } })
}

#[tokio::test]
async fn replicaset_scales_0_5_2_and_its_pods_are_collected() {
    let server = ApiServer::new();
    let client = server.client();
    let sim = start(&server, false);
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");

    let rs = rs_api
        .create(&PostParams::default(), &replicaset("web", 0, "demo:blue"))
        .await
        .expect("create rs");
    let uid = rs.uid().expect("uid");
    wait_counts(&rs_api, "web", (0, 0, 0, 0, 1)).await;
    assert!(pods_of(&pod_api, "web").await.is_empty());

    rs_api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(scale_patch(5)),
        )
        .await
        .expect("scale to 5");
    wait_counts(&rs_api, "web", (5, 5, 5, 5, 2)).await;
    let pods = pods_of(&pod_api, "web").await;
    assert_eq!(pods.len(), 5);
    for pod in &pods {
        let name = pod.name_any();
        let suffix = name.strip_prefix("web-").expect("named after the rs");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(
            suffix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{name}"
        );
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str(),
                owner.controller
            ),
            ("ReplicaSet", "web", uid.as_str(), Some(true))
        );
        assert_eq!(pod.labels().get("tier").map(String::as_str), Some("web"));
        let status = pod.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(is_ready(pod));
        let c = &status.container_statuses.as_ref().expect("containers")[0];
        assert!(c.ready);
        assert_eq!(c.restart_count, 0);
        assert_eq!(c.image, "demo:blue");
        assert!(c.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
        // Without demo apps there is no port to publish.
        assert!(!pod.annotations().contains_key(PORT_ANNOTATION));
    }

    rs_api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(scale_patch(2)),
        )
        .await
        .expect("scale to 2");
    wait_counts(&rs_api, "web", (2, 2, 2, 2, 3)).await;
    let left = eventually("2 pods left", || async {
        let pods = pods_of(&pod_api, "web").await;
        (pods.len() == 2).then_some(pods)
    })
    .await;
    assert!(left.iter().all(is_ready));

    rs_api
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete rs");
    eventually("owner-reference GC of the pods", || async {
        pods_of(&pod_api, "web").await.is_empty().then_some(())
    })
    .await;
    sim.shutdown().await;
    server.shutdown();
}

#[tokio::test]
async fn pull_error_image_stays_pending_and_not_ready() {
    let server = ApiServer::new();
    let client = server.client();
    let sim = start(&server, false);
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    rs_api
        .create(
            &PostParams::default(),
            &replicaset("broken", 2, "demo:pull-error"),
        )
        .await
        .expect("create rs");
    let pods = eventually("ImagePullBackOff on both pods", || async {
        let pods = pods_of(&pod_api, "broken").await;
        let backing_off = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs[0].state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("ImagePullBackOff")
        };
        (pods.len() == 2 && pods.iter().all(backing_off)).then_some(pods)
    })
    .await;
    for pod in &pods {
        let status = pod.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert!(!is_ready(pod));
        assert!(!status.container_statuses.as_ref().expect("containers")[0].ready);
        assert_eq!(pod_endpoint(pod), None);
    }
    wait_counts(&rs_api, "broken", (2, 2, 0, 0, 1)).await;
    sim.shutdown().await;
    server.shutdown();
}

#[tokio::test]
async fn running_pods_are_backed_by_demo_apps_that_stop_with_the_pod() {
    let server = ApiServer::new();
    let client = server.client();
    let sim = start(&server, true);
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    rs_api
        .create(
            &PostParams::default(),
            &replicaset("canary", 2, "demo:bad-red"),
        )
        .await
        .expect("create rs");
    wait_counts(&rs_api, "canary", (2, 2, 2, 2, 1)).await;
    let pods = pods_of(&pod_api, "canary").await;
    let mut endpoints = Vec::new();
    for pod in &pods {
        let endpoint = pod_endpoint(pod).expect("ready pod publishes its endpoint");
        // Each pod on its own loopback address, on its container port (8080 when it declares
        // none), as `http://<podIP>:8080` reaches a pod in a cluster.
        let pod_ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
        assert_eq!(pod_ip, Some(endpoint.ip().to_string().as_str()));
        assert!(is_pod_ip(endpoint.ip()), "{endpoint}");
        assert_eq!(endpoint.port(), 8080);
        assert_eq!(
            pod.annotations().get(PORT_ANNOTATION),
            Some(&endpoint.port().to_string())
        );
        assert_eq!(
            sim.demo_app_addr("default", &pod.name_any()),
            Some(endpoint)
        );
        endpoints.push(endpoint);
    }
    assert_eq!(sim.demo_app_count(), 2);
    assert_ne!(endpoints[0].ip(), endpoints[1].ip(), "one address per pod");

    // Real load through the pods: 20 requests round-robin, 10 per pod, 3 failures each.
    let split = Split {
        stable: vec![],
        canary: endpoints.clone(),
        rules: Some(CanaryRules::weighted(100)),
        weighted: Vec::new(),
    };
    let report = run_load(
        &fast_load(20),
        move || split.clone(),
        CancellationToken::new(),
    )
    .await
    .expect("load");
    assert_eq!(report.count("bad-red", 500), 6);
    assert_eq!(report.count("bad-red", 200), 14);

    rs_api
        .patch(
            "canary",
            &PatchParams::default(),
            &Patch::Merge(scale_patch(0)),
        )
        .await
        .expect("scale to 0");
    eventually("demo apps stopped", || async {
        (sim.demo_app_count() == 0).then_some(())
    })
    .await;
    for endpoint in endpoints {
        eventually("stopped app refuses connections", || async {
            let fresh = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            fresh
                .get(format!("http://{endpoint}/"))
                .send()
                .await
                .is_err()
                .then_some(())
        })
        .await;
    }
    sim.shutdown().await;
    server.shutdown();
}

fn service(name: &str, app: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "namespace": "default" },
        "spec": { "selector": { "app": app }, "ports": [ { "port": 80, "targetPort": 8080 } ] }
    }))
    .expect("service")
}

fn canary_ingress(weight: &str) -> Ingress {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "demo-demo-canary",
            "namespace": "default",
            "annotations": {
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": weight,
                "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary"
            }
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [ { "host": "demo.local", "http": { "paths": [ {
                "path": "/", "pathType": "Prefix",
                "backend": { "service": { "name": "demo-canary", "port": { "number": 80 } } }
            } ] } } ]
        }
    }))
    .expect("ingress")
}

#[tokio::test]
async fn split_follows_services_pods_and_the_canary_ingress() {
    let server = ApiServer::new();
    let client = server.client();
    let sim = start(&server, true);
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let svc_api: Api<Service> = Api::namespaced(client.clone(), "default");
    let ing_api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    rs_api
        .create(&pp, &replicaset("stable", 2, "demo:blue"))
        .await
        .expect("stable rs");
    rs_api
        .create(&pp, &replicaset("preview", 1, "demo:yellow"))
        .await
        .expect("canary rs");
    svc_api
        .create(&pp, &service("demo-stable", "stable"))
        .await
        .expect("svc");
    svc_api
        .create(&pp, &service("demo-canary", "preview"))
        .await
        .expect("svc");
    ing_api
        .create(&pp, &canary_ingress("0"))
        .await
        .expect("ingress");
    wait_counts(&rs_api, "stable", (2, 2, 2, 2, 1)).await;
    wait_counts(&rs_api, "preview", (1, 1, 1, 1, 1)).await;

    let targets = SplitTargets::new("default", "demo-stable", "demo-canary")
        .with_canary_ingress("demo-demo-canary");
    let split = resolve_split(&client, &targets).await.expect("split");
    assert_eq!(split.stable.len(), 2);
    assert_eq!(split.canary.len(), 1);
    let rules = split.rules.clone().expect("canary rules");
    assert_eq!(rules.weight, 0);
    assert_eq!(rules.header.as_deref(), Some("X-Canary"));

    let report = run_load(&fast_load(30), split.clone(), CancellationToken::new())
        .await
        .expect("load");
    assert_eq!(report.count("blue", 200), 30);
    let mut tagged = fast_load(30);
    tagged.tagged = Some(TaggedRequests {
        fraction: 1.0,
        headers: HeaderMap::from_iter([(
            HeaderName::from_static("x-canary"),
            HeaderValue::from_static("always"),
        )]),
    });
    let report = run_load(&tagged, split.clone(), CancellationToken::new())
        .await
        .expect("load");
    assert_eq!(report.count("yellow", 200), 30);

    // A followed split sees the weight change on the canary Ingress.
    let cancel = CancellationToken::new();
    let (rx, task) = follow_split(
        client.clone(),
        targets,
        Duration::from_millis(20),
        cancel.clone(),
    )
    .await
    .expect("follow");
    ing_api
        .patch(
            "demo-demo-canary",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": { "annotations": { "nginx.ingress.kubernetes.io/canary-weight": "100" } }
            })),
        )
        .await
        .expect("set weight");
    eventually("weight 100 seen", || async {
        (rx.borrow().rules.as_ref().map(|r| r.weight) == Some(100)).then_some(())
    })
    .await;
    let report = run_load(&fast_load(10), rx, CancellationToken::new())
        .await
        .expect("load");
    assert_eq!(report.count("yellow", 200), 10);
    cancel.cancel();
    task.await.expect("follower ends");
    sim.shutdown().await;
    server.shutdown();
}

/// Under `tokio::time::pause` the simulator, its clock and the API server's clock move with
/// tokio's timers, so minutes of start-up delay and `minReadySeconds` pass at once.
#[tokio::test(start_paused = true)]
async fn min_ready_seconds_under_paused_time() {
    let clock = TokioClock::new();
    let server = ApiServer::builder()
        .clock(Arc::new(move || clock.now()))
        .build();
    let client = server.client();
    let sim = Simulator::start_with_clock(
        client.clone(),
        SimulatorConfig {
            namespace: Some("default".to_string()),
            pod_ready_delay: Duration::from_secs(10),
            ..SimulatorConfig::default()
        },
        Arc::new(clock),
    );
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let mut rs = replicaset("slowstart", 3, "demo:green");
    if let Some(spec) = rs.spec.as_mut() {
        spec.min_ready_seconds = Some(30);
    }
    rs_api
        .create(&PostParams::default(), &rs)
        .await
        .expect("create rs");
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(300);
    let mut states = Vec::new();
    loop {
        let counts = rs_counts(&rs_api, "slowstart").await;
        if states.last() != Some(&counts) {
            states.push(counts);
        }
        if counts == (3, 3, 3, 3, 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck in {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ready after the 10 s start-up delay, available 30 s later (timestamps have 1 s resolution).
    assert!(
        states.contains(&(3, 3, 3, 0, 1)),
        "ready before available: {states:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(39),
        "{:?}",
        started.elapsed()
    );
    sim.shutdown().await;
    server.shutdown();
}
