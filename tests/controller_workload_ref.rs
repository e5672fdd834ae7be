//! `spec.workloadRef` in the sandbox with the controller: upstream's `workload-ref` example
//! (a Rollout taking its template from a Deployment) comes up and follows a change of the
//! Deployment's template as a new revision; a missing workload is upstream's `InvalidSpec`
//! until it appears; `scaleDown: onsuccess` and `progressively` scale the Deployment to 0 once
//! the Rollout is Healthy while `never` leaves it; a PodTemplate works as a source too.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "controller_support/mod.rs"]
mod support;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplate;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{NS, World, describe, eventually, rollout};

/// The upstream example's documents, or `None` (with the notice) without the conformance data.
fn example() -> Option<Vec<Value>> {
    let dir = common::conformance_dir()?;
    let path = dir
        .join("argo-examples")
        .join("examples")
        .join("workload-ref")
        .join("workload-ref.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(serde_saphyr::from_multiple(&text).unwrap())
}

fn deployment_doc(name: &str, replicas: i32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

fn workload_rollout(name: &str, replicas: i32, reference: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "workloadRef": reference,
                 "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}}}
    })
}

fn deploy_ref(name: &str, scale_down: Option<&str>) -> Value {
    let mut reference = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name});
    if let Some(mode) = scale_down {
        reference["scaleDown"] = json!(mode);
    }
    reference
}

async fn create_deployment(world: &World, doc: Value) {
    let deployment: Deployment = serde_json::from_value(doc).unwrap();
    world
        .api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
}

async fn deployment_replicas(world: &World, name: &str) -> Option<i32> {
    let found = world.api::<Deployment>().get(name).await.unwrap();
    found.spec.and_then(|spec| spec.replicas)
}

/// The image of the ReplicaSet with pod-template hash `hash`.
async fn rs_image(world: &World, hash: &str) -> String {
    let list = world
        .api::<ReplicaSet>()
        .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
        .await
        .unwrap();
    list.items
        .first()
        .and_then(|rs| rs.spec.as_ref())
        .and_then(|spec| spec.template.as_ref())
        .and_then(|template| template.spec.as_ref())
        .and_then(|spec| spec.containers.first())
        .and_then(|container| container.image.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_example_follows_its_deployment() {
    let Some(docs) = example() else { return };
    let world = World::start().await;
    let mut name = String::new();
    for mut doc in docs {
        doc["metadata"]["namespace"] = json!(NS);
        match doc["kind"].as_str() {
            Some("Deployment") => create_deployment(&world, doc).await,
            Some("Rollout") => {
                name = doc["metadata"]["name"].as_str().unwrap().to_string();
                world.create(&rollout(doc)).await;
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
    let first = world.healthy(&name).await;
    assert_eq!(
        rs_image(&world, &first).await,
        "argoproj/rollouts-demo:blue"
    );
    let stored = world.rollout_json(&name).await;
    assert_eq!(stored["status"]["workloadObservedGeneration"], "1");
    assert_eq!(
        stored["metadata"]["annotations"]["rollout.argoproj.io/workload-generation"],
        "1"
    );
    // The resolved template is never written back.
    assert!(stored["spec"]["template"].is_null(), "{}", stored["spec"]);
    assert!(stored["spec"]["selector"].is_null(), "{}", stored["spec"]);
    assert_eq!(stored["status"]["availableReplicas"], 5);

    // A new image in the Deployment is a new revision of the Rollout.
    let patch: json_patch::Patch = serde_json::from_value(json!([{
        "op": "replace", "path": "/spec/template/spec/containers/0/image",
        "value": "argoproj/rollouts-demo:yellow"
    }]))
    .unwrap();
    world
        .api::<Deployment>()
        .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .unwrap();
    let second = eventually(
        "the Deployment's template to be a new stable revision",
        || {
            let world = &world;
            let name = name.clone();
            let first = first.clone();
            async move {
                let status = world.status(&name).await;
                let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
                if status["phase"] == "Healthy"
                    && stable != first
                    && status["currentPodHash"] == stable.as_str()
                    && status["workloadObservedGeneration"] == "2"
                {
                    Ok(stable)
                } else {
                    Err(describe(&status))
                }
            }
        },
    )
    .await;
    assert_eq!(
        rs_image(&world, &second).await,
        "argoproj/rollouts-demo:yellow"
    );
    assert_eq!(world.rs_replicas(&first).await, Some(0));
    // `scaleDown` unset means never: the example's Deployment keeps its 0.
    assert_eq!(deployment_replicas(&world, &name).await, Some(0));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_workload_is_invalid_until_it_appears() {
    let world = World::start().await;
    world
        .create(&rollout(workload_rollout(
            "late",
            2,
            deploy_ref("late-deploy", None),
        )))
        .await;
    // Upstream's controller reports the resolution error as it is (the lister's NotFound).
    let want =
        "The Rollout \"late\" is invalid: deployments.apps \"default/late-deploy\" not found";
    eventually("the InvalidSpec condition", || async {
        let status = world.status("late").await;
        let invalid = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "InvalidSpec")
            .cloned();
        match invalid {
            Some(c) if c["message"] == want && status["phase"] == "Degraded" => Ok(()),
            _ => Err(format!("{status}")),
        }
    })
    .await;
    assert!(
        world
            .replica_sets()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing is created for an unresolved reference"
    );
    // The Deployment's creation reconciles the Rollout (no wait for the 20 s requeue needed,
    // but the deadline allows it).
    create_deployment(&world, deployment_doc("late-deploy", 0, "nginx:1")).await;
    let stable = world.healthy("late").await;
    assert_eq!(rs_image(&world, &stable).await, "nginx:1");
    let status = world.status("late").await;
    assert!(
        !status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "InvalidSpec"),
        "{status}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_modes_scale_the_deployment_as_upstream() {
    let world = World::start().await;
    for (name, mode) in [
        ("on-success", Some("onsuccess")),
        ("progressive", Some("progressively")),
        ("never-down", Some("never")),
    ] {
        let deploy = format!("{name}-deploy");
        create_deployment(&world, deployment_doc(&deploy, 3, "nginx:1")).await;
        world
            .create(&rollout(workload_rollout(
                name,
                3,
                deploy_ref(&deploy, mode),
            )))
            .await;
    }
    for name in ["on-success", "progressive"] {
        let deploy = format!("{name}-deploy");
        eventually(&format!("{deploy} scaled to 0"), || {
            let world = &world;
            let deploy = deploy.clone();
            async move {
                match deployment_replicas(world, &deploy).await {
                    Some(0) => Ok(()),
                    other => Err(format!(
                        "{other:?}; rollout {}",
                        describe(&world.status(name).await)
                    )),
                }
            }
        })
        .await;
        let status = world.status(name).await;
        assert_eq!(status["phase"], "Healthy", "{}", describe(&status));
    }
    world.healthy("never-down").await;
    assert_eq!(
        deployment_replicas(&world, "never-down-deploy").await,
        Some(3)
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_template_is_a_source_too() {
    let world = World::start().await;
    let template: PodTemplate = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PodTemplate",
        "metadata": {"name": "pt", "namespace": NS},
        "template": {"metadata": {"labels": {"app": "from-pt"}},
                     "spec": {"containers": [{"name": "app", "image": "nginx:pt"}]}}
    }))
    .unwrap();
    world
        .api::<PodTemplate>()
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    let mut doc = workload_rollout(
        "from-pt",
        1,
        json!({"apiVersion": "v1", "kind": "PodTemplate", "name": "pt"}),
    );
    // A PodTemplate has no selector: the Rollout brings its own.
    doc["spec"]["selector"] = json!({"matchLabels": {"app": "from-pt"}});
    world.create(&rollout(doc)).await;
    let stable = world.healthy("from-pt").await;
    assert_eq!(rs_image(&world, &stable).await, "nginx:pt");
    world.stop().await;
}
