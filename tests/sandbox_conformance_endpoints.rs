//! EndpointSlices (`discovery.k8s.io/v1`) and Endpoints (`core/v1`) as kube-controller-manager
//! keeps them, read through `kube::Client` and the real `kubectl`, and the load generator
//! routing Ingress → Service → EndpointSlice endpoints as ingress-nginx does.
//!
//! Expected shapes are written down from the Kubernetes API reference (EndpointSlice v1,
//! Endpoints v1) and the controllers' documented behaviour: one slice named
//! `<service>-<suffix>` with the labels `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the
//! Service; ports resolved from the Service's `targetPort` (a name through the Pod's named
//! container ports); endpoint conditions `ready` (Ready and not terminating), `serving`
//! (Ready) and `terminating` (`deletionTimestamp` set); Endpoints named as the Service with
//! ready `addresses` and `notReadyAddresses`, terminating Pods left out.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use davy::sandbox::apiserver::ApiServer;
use davy::sandbox::load_generator::{LoadConfig, SplitTargets, resolve_split, run_load};
use davy::sandbox::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::kubectl::{Kubectl, kubectl_present};
use common::wait::eventually;

const NS: &str = "default";
const SLICE_LABEL: &str = "kubernetes.io/service-name";

fn replicaset(name: &str, hash: &str, replicas: i32, image: &str) -> ReplicaSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web", "rollouts-pod-template-hash": hash}},
            "template": {
                "metadata": {"labels": {"app": "web", "rollouts-pod-template-hash": hash}},
                "spec": {"containers": [{"name": "app", "image": image,
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]}
            }
        }
    }))
    .unwrap()
}

fn service(name: &str, selector: Value) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "web"}},
        "spec": {"selector": selector,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
    }))
    .unwrap()
}

fn ingress(name: &str, backend: &str, annotations: Value) -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.local", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": backend, "port": {"number": 80}}}}]}}]}
    }))
    .unwrap()
}

fn simulator(client: Client, demo_apps: bool, max_termination: Duration) -> SimulatorHandle {
    Simulator::start(
        client,
        SimulatorConfig {
            namespace: Some(NS.to_string()),
            pod_ready_delay: Duration::from_millis(50),
            demo_apps,
            max_termination,
            ..SimulatorConfig::default()
        },
    )
}

async fn slices_of(client: &Client, svc: &str) -> Vec<EndpointSlice> {
    Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels(&format!("{SLICE_LABEL}={svc}")))
        .await
        .unwrap()
        .items
}

/// The one slice of `svc` once it lists exactly `ready` ready endpoints (and `total` in all).
async fn wait_slice(client: &Client, svc: &str, ready: usize, total: usize) -> EndpointSlice {
    eventually(
        &format!("slice of {svc} with {ready}/{total} ready"),
        || async {
            let slices = slices_of(client, svc).await;
            let [slice] = slices.as_slice() else {
                return Err(format!("{} slices", slices.len()));
            };
            let n_ready = slice
                .endpoints
                .iter()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count();
            if n_ready == ready && slice.endpoints.len() == total {
                Ok(slice.clone())
            } else {
                Err(format!("{n_ready}/{} ready", slice.endpoints.len()))
            }
        },
    )
    .await
}

async fn pods_of(client: &Client, hash: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
        .await
        .unwrap()
        .items
}

fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

/// The written-down shape of a slice for Service `web` (port `http` → container port 8080).
fn check_slice(slice: &Value, svc: &Value, pods: &[Value]) {
    let name = slice["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("web-") && name.len() == "web-".len() + 5,
        "{name}"
    );
    assert_eq!(slice["apiVersion"], "discovery.k8s.io/v1");
    assert_eq!(slice["kind"], "EndpointSlice");
    assert_eq!(slice["addressType"], "IPv4");
    let labels = &slice["metadata"]["labels"];
    assert_eq!(labels[SLICE_LABEL], "web", "{slice:#}");
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(
        labels["team"], "web",
        "the Service's labels are copied: {slice:#}"
    );
    let owner = &slice["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Service");
    assert_eq!(owner["name"], "web");
    assert_eq!(owner["uid"], svc["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let mut want: Vec<(String, String)> = pods
        .iter()
        .map(|p| {
            (
                p["status"]["podIP"].as_str().unwrap().to_string(),
                p["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    want.sort();
    let mut got: Vec<(String, String)> = Vec::new();
    for ep in slice["endpoints"].as_array().unwrap() {
        assert_eq!(
            ep["conditions"],
            json!({"ready": true, "serving": true, "terminating": false})
        );
        assert_eq!(ep["targetRef"]["kind"], "Pod");
        assert_eq!(ep["targetRef"]["namespace"], NS);
        assert_eq!(ep["nodeName"], "sandbox-node");
        let uid = &ep["targetRef"]["uid"];
        assert!(pods.iter().any(|p| &p["metadata"]["uid"] == uid));
        got.push((
            ep["addresses"][0].as_str().unwrap().to_string(),
            ep["targetRef"]["name"].as_str().unwrap().to_string(),
        ));
    }
    got.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn slices_and_endpoints_follow_the_ready_pods() {
    let server = ApiServer::new();
    let client = server.client();
    let sim = simulator(client.clone(), false, Duration::from_secs(3));
    let pp = PostParams::default();
    let svcs: Api<Service> = Api::namespaced(client.clone(), NS);
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    svcs.create(&pp, &service("web", json!({"app": "web"})))
        .await
        .unwrap();
    // Before any Pod: the placeholder slice, with no endpoints and no ports.
    let placeholder = wait_slice(&client, "web", 0, 0).await;
    assert!(placeholder.ports.is_none(), "{placeholder:?}");

    // A watch on EndpointSlices sees the controller's writes as they come.
    let slices_api: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let watch_from = placeholder.resource_version().unwrap();
    rss.create(&pp, &replicaset("web-a", "aaa", 2, "demo:blue"))
        .await
        .unwrap();
    let slice = wait_slice(&client, "web", 2, 2).await;
    assert_eq!(
        slice.name_any(),
        placeholder.name_any(),
        "the slice is updated in place"
    );
    let mut stream = Box::pin(
        slices_api
            .watch(&WatchParams::default(), &watch_from)
            .await
            .unwrap(),
    );
    let mut seen_two = false;
    use futures::StreamExt;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("watch events")
    {
        if let WatchEvent::Modified(s) = event.unwrap()
            && s.endpoints.len() == 2
        {
            seen_two = true;
            break;
        }
    }
    assert!(seen_two, "the watch saw the slice with both endpoints");

    let svc = serde_json::to_value(svcs.get("web").await.unwrap()).unwrap();
    let pods: Vec<Value> = pods_of(&client, "aaa")
        .await
        .iter()
        .map(|p| serde_json::to_value(p).unwrap())
        .collect();
    check_slice(&serde_json::to_value(&slice).unwrap(), &svc, &pods);
    let eps: Endpoints = Api::namespaced(client.clone(), NS)
        .get("web")
        .await
        .unwrap();
    let eps = serde_json::to_value(eps).unwrap();
    let subset = &eps["subsets"][0];
    assert_eq!(
        subset["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let mut ips: Vec<&str> = subset["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap())
        .collect();
    ips.sort();
    let mut want: Vec<&str> = pods
        .iter()
        .map(|p| p["status"]["podIP"].as_str().unwrap())
        .collect();
    want.sort();
    assert_eq!(ips, want);
    assert_eq!(eps["metadata"]["labels"]["team"], "web");

    // A terminating Pod: not ready, still serving, terminating; Endpoints drop it.
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let victim_ip = pods[0]["status"]["podIP"].as_str().unwrap().to_string();
    Api::<Pod>::namespaced(client.clone(), NS)
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the victim's endpoint terminating", || async {
        let slices = slices_of(&client, "web").await;
        let ep = slices
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .find(|e| e.addresses.contains(&victim_ip));
        match ep.and_then(|e| e.conditions.clone()) {
            Some(c) if c.terminating == Some(true) => {
                assert_eq!(c.ready, Some(false));
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let eps: Endpoints = Api::namespaced(client.clone(), NS)
        .get("web")
        .await
        .unwrap();
    let listed: Vec<String> = eps
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| {
            s.addresses
                .iter()
                .flatten()
                .chain(s.not_ready_addresses.iter().flatten())
        })
        .map(|a| a.ip.clone())
        .collect();
    assert!(
        !listed.contains(&victim_ip),
        "terminating Pods are not in Endpoints: {listed:?}"
    );

    // The ReplicaSet replaces it; once the kubelet removes it, the slice has two ready again.
    wait_slice(&client, "web", 2, 2).await;

    // Deleting the Service removes its slices and its Endpoints.
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("slices and Endpoints gone", || async {
        let n = slices_of(&client, "web").await.len();
        let ep = Api::<Endpoints>::namespaced(client.clone(), NS)
            .get_opt("web")
            .await
            .unwrap();
        (n == 0 && ep.is_none())
            .then_some(())
            .ok_or(format!("{n} slices, endpoints {}", ep.is_some()))
    })
    .await;
    sim.shutdown().await;
    server.shutdown();
}

#[test]
fn kubectl_reads_slices_and_endpoints() {
    if !kubectl_present() {
        return;
    }
    let env = Kubectl::start();
    let client = env.client();
    let sim = {
        let _guard = env.runtime.enter();
        simulator(client.clone(), false, Duration::from_secs(3))
    };
    env.apply(
        "web.yaml",
        r#"apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-a}
spec:
  replicas: 2
  selector: {matchLabels: {app: web, rollouts-pod-template-hash: aaa}}
  template:
    metadata: {labels: {app: web, rollouts-pod-template-hash: aaa}}
    spec:
      containers:
      - name: app
        image: demo:blue
        ports: [{name: http, containerPort: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {team: web}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#,
    );
    env.block_on(wait_slice(&client, "web", 2, 2));
    let slices = env.get_json(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    assert_eq!(slices["items"].as_array().unwrap().len(), 1, "{slices:#}");
    let svc = env.get_json(&["get", "service", "web"]);
    let pods = env.get_json(&["get", "pods", "-l", "app=web"]);
    check_slice(&slices["items"][0], &svc, pods["items"].as_array().unwrap());
    let eps = env.get_json(&["get", "endpoints", "web"]);
    assert_eq!(eps["kind"], "Endpoints");
    assert_eq!(
        eps["subsets"][0]["addresses"].as_array().unwrap().len(),
        2,
        "{eps:#}"
    );
    assert_eq!(eps["subsets"][0]["ports"][0]["port"], 8080);
    // The short name and the plain table work as against a cluster.
    let table = env.ok(&["get", "ep", "web"]);
    assert!(table.contains("web"), "{table}");
    env.block_on(sim.shutdown());
}

fn load(n: u64) -> LoadConfig {
    LoadConfig {
        rate_per_second: 400.0,
        max_requests: Some(n),
        request_timeout: Duration::from_secs(5),
        ..LoadConfig::default()
    }
}

fn addrs(pods: &[Pod]) -> BTreeSet<SocketAddr> {
    pods.iter()
        .map(|p| SocketAddr::new(pod_ip(p).parse().unwrap(), 8080))
        .collect()
}

#[tokio::test]
async fn traffic_follows_a_service_selector_switch() {
    let server = ApiServer::new();
    let client = server.client();
    let sim = simulator(client.clone(), true, Duration::from_secs(3));
    let pp = PostParams::default();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let svcs: Api<Service> = Api::namespaced(client.clone(), NS);
    let ings: Api<Ingress> = Api::namespaced(client.clone(), NS);
    rss.create(&pp, &replicaset("web-a", "aaa", 2, "demo:blue"))
        .await
        .unwrap();
    rss.create(&pp, &replicaset("web-b", "bbb", 2, "demo:yellow"))
        .await
        .unwrap();
    let selector = |hash: &str| json!({"app": "web", "rollouts-pod-template-hash": hash});
    svcs.create(&pp, &service("web-active", selector("aaa")))
        .await
        .unwrap();
    ings.create(&pp, &ingress("web", "web-active", json!({})))
        .await
        .unwrap();
    wait_slice(&client, "web-active", 2, 2).await;
    let a_pods = pods_of(&client, "aaa").await;

    let targets = SplitTargets::from_ingress(NS, "web");
    let split = eventually("the split through the Ingress", || async {
        let split = resolve_split(&client, &targets)
            .await
            .map_err(|e| e.to_string())?;
        (split.stable.iter().copied().collect::<BTreeSet<_>>() == addrs(&a_pods))
            .then_some(split.clone())
            .ok_or(format!("{split:?}"))
    })
    .await;
    assert!(split.canary.is_empty() && split.rules.is_none());
    let report = run_load(&load(20), split, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.count("blue", 200), 20, "{report:?}");

    // The selector moves to the other pod-template-hash (what a blue-green promotion does).
    svcs.patch(
        "web-active",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"selector": {"rollouts-pod-template-hash": "bbb"}}})),
    )
    .await
    .unwrap();
    let b_pods = eventually("the b pods ready", || async {
        let pods = pods_of(&client, "bbb").await;
        (pods.len() == 2 && pods.iter().all(|p| !pod_ip(p).is_empty()))
            .then_some(pods)
            .ok_or("not yet".to_string())
    })
    .await;
    let split = eventually("the split after the slice update", || async {
        let split = resolve_split(&client, &targets)
            .await
            .map_err(|e| e.to_string())?;
        (split.stable.iter().copied().collect::<BTreeSet<_>>() == addrs(&b_pods))
            .then_some(split.clone())
            .ok_or(format!("{split:?}"))
    })
    .await;
    let report = run_load(&load(40), split, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.count("yellow", 200), 40, "{report:?}");
    assert_eq!(
        report.count_version("blue"),
        0,
        "no request reaches an unselected pod"
    );

    // A canary Ingress for the same host and path (found as ingress-nginx finds it) sends its
    // weight to whatever its Service selects, e.g. a preview or an Experiment's Service.
    svcs.create(&pp, &service("web-preview", selector("aaa")))
        .await
        .unwrap();
    wait_slice(&client, "web-preview", 2, 2).await;
    ings.create(
        &pp,
        &ingress(
            "web-canary",
            "web-preview",
            json!({"nginx.ingress.kubernetes.io/canary": "true",
                   "nginx.ingress.kubernetes.io/canary-weight": "100"}),
        ),
    )
    .await
    .unwrap();
    let split = eventually("the canary backend", || async {
        let split = resolve_split(&client, &targets)
            .await
            .map_err(|e| e.to_string())?;
        (split.canary.iter().copied().collect::<BTreeSet<_>>() == addrs(&a_pods))
            .then_some(split.clone())
            .ok_or(format!("{split:?}"))
    })
    .await;
    assert_eq!(split.rules.as_ref().map(|r| r.weight), Some(100));
    let report = run_load(&load(20), split, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.count("blue", 200), 20, "{report:?}");
    sim.shutdown().await;
    server.shutdown();
}

#[tokio::test]
async fn terminating_pods_get_no_new_requests() {
    let server = ApiServer::new();
    let client = server.client();
    // The kubelet keeps terminating Pods for up to 20 s, so the test sees them terminate.
    let sim = simulator(client.clone(), true, Duration::from_secs(20));
    let pp = PostParams::default();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let svcs: Api<Service> = Api::namespaced(client.clone(), NS);
    rss.create(&pp, &replicaset("web-a", "aaa", 2, "demo:blue"))
        .await
        .unwrap();
    svcs.create(&pp, &service("web", json!({"app": "web"})))
        .await
        .unwrap();
    wait_slice(&client, "web", 2, 2).await;
    let pods = pods_of(&client, "aaa").await;
    let victim = &pods[0];
    let victim_addr = SocketAddr::new(pod_ip(victim).parse().unwrap(), 8080);
    Api::<Pod>::namespaced(client.clone(), NS)
        .delete(&victim.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    // The replacement is ready and the victim still listed, terminating: 2 ready of 3.
    let slice = wait_slice(&client, "web", 2, 3).await;
    let terminating = slice
        .endpoints
        .iter()
        .find(|e| e.addresses.contains(&pod_ip(victim)))
        .and_then(|e| e.conditions.clone())
        .expect("the victim is still listed");
    assert_eq!(terminating.terminating, Some(true));
    assert_eq!(terminating.ready, Some(false));
    let targets = SplitTargets::new(NS, "web", "web");
    let split = resolve_split(&client, &targets).await.unwrap();
    assert_eq!(split.stable.len(), 2, "{split:?}");
    assert!(!split.stable.contains(&victim_addr), "{split:?}");
    let report = run_load(&load(30), split, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.count("blue", 200), 30, "{report:?}");
    assert_eq!(report.transport_errors, 0);
    sim.shutdown().await;
    server.shutdown();
}

/// kube-controller-manager's endpointslice controller puts at most 100 endpoints
/// (`--max-endpoints-per-slice`, default 100) in one slice: 250 ready Pods behind one Service
/// port make three slices with the same ports, 100 + 100 + 50 endpoints, each Pod in one.
#[tokio::test]
async fn slices_hold_at_most_100_endpoints() {
    let server = ApiServer::new();
    let client = server.client();
    let _sim = simulator(client.clone(), false, Duration::from_secs(3));
    let pp = PostParams::default();
    Api::<Service>::namespaced(client.clone(), NS)
        .create(&pp, &service("big", json!({"app": "web"})))
        .await
        .unwrap();
    Api::<ReplicaSet>::namespaced(client.clone(), NS)
        .create(&pp, &replicaset("big-a", "bbb", 250, "demo:blue"))
        .await
        .unwrap();
    let slices = eventually("250 ready endpoints in slices", || async {
        let slices = slices_of(&client, "big").await;
        let ready: usize = slices
            .iter()
            .flat_map(|s| &s.endpoints)
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .count();
        if ready == 250 {
            Ok(slices)
        } else {
            Err(format!("{ready} ready in {} slices", slices.len()))
        }
    })
    .await;
    let mut sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [50, 100, 100]);
    let ports: BTreeSet<String> = slices
        .iter()
        .map(|s| serde_json::to_string(&s.ports).unwrap())
        .collect();
    assert_eq!(ports.len(), 1, "the same ports on every slice");
    let pods: BTreeSet<String> = slices
        .iter()
        .flat_map(|s| &s.endpoints)
        .map(|e| e.target_ref.as_ref().unwrap().name.clone().unwrap())
        .collect();
    assert_eq!(pods.len(), 250, "each Pod in exactly one slice");
}
