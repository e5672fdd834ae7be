//! Built-in kinds written the way kube-apiserver writes them, seen through the real `kubectl`
//! and through `kube::Client`: Secret `stringData` folded into base64 `data`, Service cluster
//! IPs (allocated, kept, immutable, unique) and `targetPort` defaulting, `generateName`,
//! Events served in `core/v1` and `events.k8s.io/v1`, and `kubectl delete pod` waiting out a
//! Pod's graceful termination by the simulated kubelet.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use davy::sandbox::simulator::{Simulator, SimulatorConfig};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use common::kubectl::{Kubectl, kubectl_present};

type Env = Kubectl;

const SECRET: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: prom-token}
stringData:
  token: s3cr3t-token
data:
  other: eA==
"#;

#[test]
fn secret_string_data_becomes_base64_data() {
    let env = Env::start();
    let client = env.client();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());

    if kubectl_present() {
        env.apply("secret.yaml", SECRET);
        let got = env.get_json(&["get", "secret", "prom-token"]);
        assert_eq!(got["data"]["token"], "czNjcjN0LXRva2Vu", "{got:#}");
        assert_eq!(got["data"]["other"], "eA==", "{got:#}");
        assert_eq!(got["type"], "Opaque", "{got:#}");
        assert!(
            got.get("stringData").is_none(),
            "stringData is never returned: {got:#}"
        );
    }

    // Through kube::Client: create with stringData, read the decoded bytes back.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "api-key"},
        "stringData": {"key": "abc"},
    }))
    .unwrap();
    let created = env
        .block_on(secrets.create(&PostParams::default(), &secret))
        .unwrap();
    assert!(created.string_data.is_none());
    let data = created.data.unwrap();
    assert_eq!(data["key"].0, b"abc");
    // A merge patch of stringData updates data, too.
    let patched = env
        .block_on(secrets.patch(
            "api-key",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"key": "xyz"}})),
        ))
        .unwrap();
    assert_eq!(patched.data.unwrap()["key"].0, b"xyz");
    assert!(patched.string_data.is_none());
}

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web, labels: {v: "1"}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
"#;

fn cluster_ip(svc: &Value) -> String {
    svc["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn in_service_range(ip: &str) -> bool {
    let o: Vec<u8> = ip.split('.').filter_map(|p| p.parse().ok()).collect();
    o.len() == 4 && o[0] == 10 && (o[1] & 0xf0) == 96
}

#[test]
fn services_get_a_cluster_ip_that_stays() {
    let env = Env::start();
    let client = env.client();
    let services: Api<Service> = Api::default_namespaced(client);

    let first = if kubectl_present() {
        env.apply("svc.yaml", SERVICE);
        let got = env.get_json(&["get", "service", "web"]);
        let ip = cluster_ip(&got);
        assert!(in_service_range(&ip), "{got:#}");
        assert_eq!(got["spec"]["clusterIPs"], json!([ip]), "{got:#}");
        assert_eq!(got["spec"]["ports"][0]["targetPort"], 80, "{got:#}");
        assert_eq!(got["spec"]["ports"][0]["protocol"], "TCP", "{got:#}");
        // Re-applied with another label (the manifest names no IP): the address stays.
        env.apply("svc.yaml", &SERVICE.replace("v: \"1\"", "v: \"2\""));
        let again = env.get_json(&["get", "service", "web"]);
        assert_eq!(again["metadata"]["labels"]["v"], "2", "{again:#}");
        assert_eq!(cluster_ip(&again), ip, "{again:#}");
        Some(ip)
    } else {
        None
    };

    let svc = |name: &str, spec: Value| -> Service {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    let ports = json!([{"port": 8080}]);
    let a = env
        .block_on(services.create(&PostParams::default(), &svc("a", json!({"ports": ports}))))
        .unwrap();
    let a_ip = a.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    assert!(in_service_range(&a_ip), "{a_ip}");
    assert_ne!(
        Some(&a_ip),
        first.as_ref(),
        "every Service gets its own address"
    );

    // A PUT that names no address keeps it; one that names another is refused.
    let mut fresh = env.block_on(services.get("a")).unwrap();
    let spec = fresh.spec.as_mut().unwrap();
    spec.cluster_ip = None;
    spec.cluster_ips = None;
    let kept = env
        .block_on(services.replace("a", &PostParams::default(), &fresh))
        .unwrap();
    assert_eq!(
        kept.spec.unwrap().cluster_ip.as_deref(),
        Some(a_ip.as_str())
    );
    let change = env.block_on(services.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"clusterIP": "10.96.200.200", "clusterIPs": ["10.96.200.200"]}}),
        ),
    ));
    match change {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 422, "{s:?}"),
        other => panic!("changing the cluster IP must fail with 422, got {other:?}"),
    }

    // A requested address is used when free, refused when held; headless stays headless.
    let b = env
        .block_on(services.create(
            &PostParams::default(),
            &svc("b", json!({"ports": ports, "clusterIP": "10.96.77.7"})),
        ))
        .unwrap();
    assert_eq!(
        b.spec.unwrap().cluster_ips,
        Some(vec!["10.96.77.7".to_string()])
    );
    let taken = env.block_on(services.create(
        &PostParams::default(),
        &svc("c", json!({"ports": ports, "clusterIP": "10.96.77.7"})),
    ));
    assert!(
        matches!(taken, Err(kube::Error::Api(ref s)) if s.code == 422),
        "{taken:?}"
    );
    let headless = env
        .block_on(services.create(
            &PostParams::default(),
            &svc("h", json!({"ports": ports, "clusterIP": "None"})),
        ))
        .unwrap();
    assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));

    // Deleting a Service frees its address for a new request.
    env.block_on(services.delete("b", &Default::default()))
        .unwrap();
    let d = env
        .block_on(services.create(
            &PostParams::default(),
            &svc("d", json!({"ports": ports, "clusterIP": "10.96.77.7"})),
        ))
        .unwrap();
    assert_eq!(d.spec.unwrap().cluster_ip.as_deref(), Some("10.96.77.7"));
}

#[test]
fn generate_name_and_events_through_kubectl() {
    if !kubectl_present() {
        return;
    }
    let env = Env::start();
    let path = env.0.dir.path().join("cm.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: job-}\ndata: {a: b}\n",
    )
    .unwrap();
    let out = env.ok(&[
        "create",
        "--validate=false",
        "-f",
        &path.to_string_lossy(),
        "-o",
        "name",
    ]);
    let name = out.trim().strip_prefix("configmap/").unwrap_or_default();
    assert!(
        name.len() == "job-".len() + 5 && name.starts_with("job-"),
        "{out}"
    );

    let server = &env.0.server;
    server
        .create_object(
            "",
            "events",
            Some("default"),
            json!({"metadata": {"name": "e1"}, "reason": "RolloutUpdated", "message": "core",
                   "involvedObject": {"kind": "Rollout", "name": "r1", "namespace": "default"}, "type": "Normal"}),
            "test",
        )
        .unwrap();
    server
        .create_object(
            "events.k8s.io",
            "events",
            Some("default"),
            json!({"metadata": {"name": "e2"}, "reason": "RolloutCompleted", "note": "new",
                   "regarding": {"kind": "Rollout", "name": "r1", "namespace": "default"}, "type": "Normal",
                   "eventTime": "2026-01-01T00:00:00.000000Z", "action": "Update", "reportingController": "davy",
                   "reportingInstance": "davy-1"}),
            "test",
        )
        .unwrap();
    let core = env.get_json(&["get", "events.v1."]);
    let names: Vec<&str> = core["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["metadata"]["name"].as_str())
        .collect();
    assert!(names.contains(&"e1"), "{core:#}");
    let new = env.get_json(&["get", "events.v1.events.k8s.io"]);
    assert_eq!(new["items"][0]["note"], "new", "{new:#}");
}

#[test]
fn kubectl_delete_pod_waits_for_the_graceful_termination() {
    if !kubectl_present() {
        return;
    }
    let env = Env::start();
    let client = env.client();
    let sim = {
        let _guard = env.0.runtime.enter();
        Simulator::start(
            client.clone(),
            SimulatorConfig {
                namespace: Some("default".into()),
                pod_ready_delay: Duration::from_millis(50),
                max_termination: Duration::from_millis(300),
                ..SimulatorConfig::default()
            },
        )
    };
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client);
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "main", "image": "app:v1"}]}}},
    }))
    .unwrap();
    env.block_on(rss.create(&PostParams::default(), &rs))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let name = loop {
        let list = env
            .block_on(pods.list(&ListParams::default().labels("app=web")))
            .unwrap();
        if let Some(p) = list.items.first() {
            break p.metadata.name.clone().unwrap();
        }
        assert!(Instant::now() < deadline, "no Pod for the ReplicaSet");
        std::thread::sleep(Duration::from_millis(20));
    };
    // kubectl's delete waits until a GET answers 404: the simulated kubelet removes the Pod
    // after its grace period (capped at 300 ms here), so this returns, and the Pod is gone.
    let started = Instant::now();
    env.ok(&["delete", "pod", &name, "--timeout=20s"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    let out = env.run(&["get", "pod", &name]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.block_on(sim.shutdown());
}
