//! kube-rs against the sandbox API server's in-process transport: CRUD, patches, server-side
//! apply, subresources, generation rules, selectors, paging, finalizers, garbage collection,
//! fault injection and discovery. Watches and the Controller are in `sandbox_watch.rs`.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use davy::sandbox::apiserver::{ApiServer, Verb};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use common::sandbox::{Gadget, GadgetSpec, Widget, WidgetStatus, cm, setup, widget};
use common::wait::eventually;

fn api_status(err: kube::Error) -> (u16, String, String) {
    match err {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn configmap_crud_conflicts_and_errors() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let created = api
        .create(&PostParams::default(), &cm("k1", json!({"a": "1"})))
        .await
        .unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(
        created.metadata.generation, None,
        "ConfigMaps have no generation"
    );

    let dup = api
        .create(&PostParams::default(), &cm("k1", json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        api_status(dup),
        (
            409,
            "AlreadyExists".into(),
            "configmaps \"k1\" already exists".into()
        )
    );

    let mut fresh = created.clone();
    fresh.data = Some([("a".to_string(), "2".to_string())].into());
    let updated = api
        .replace("k1", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(updated.resource_version(), created.resource_version());
    let stale = api
        .replace("k1", &PostParams::default(), &fresh)
        .await
        .unwrap_err();
    assert_eq!(
        api_status(stale),
        (409, "Conflict".into(), "Operation cannot be fulfilled on configmaps \"k1\": the object has been modified; please apply your changes to the latest version and try again".into())
    );

    // A write that changes nothing keeps the resourceVersion.
    let same = api
        .replace("k1", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(same.resource_version(), updated.resource_version());

    let deleted = api.delete("k1", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_right(), "ConfigMap deletion answers a Status");
    assert!(api.get_opt("k1").await.unwrap().is_none());
    let missing = api
        .delete("k1", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(
        api_status(missing),
        (404, "NotFound".into(), "configmaps \"k1\" not found".into())
    );

    let bad = api
        .create(&PostParams::default(), &cm("Bad_Name", json!({})))
        .await
        .unwrap_err();
    assert_eq!(api_status(bad).0, 422);
    let other_ns: Api<ConfigMap> = Api::namespaced(api.clone().into_client(), "nope");
    let no_ns = other_ns
        .create(&PostParams::default(), &cm("x", json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        api_status(no_ns),
        (
            404,
            "NotFound".into(),
            "namespaces \"nope\" not found".into()
        )
    );

    let mut generated = cm("", json!({}));
    generated.metadata.generate_name = Some("gen-".into());
    let g = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(
        g.name_any().starts_with("gen-") && g.name_any().len() == 9,
        "{}",
        g.name_any()
    );

    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&dry, &cm("dry", json!({}))).await.unwrap();
    assert!(
        api.get_opt("dry").await.unwrap().is_none(),
        "dryRun=All stores nothing"
    );
}

#[tokio::test]
async fn custom_resource_generation_and_status_rules() {
    let (_server, client) = setup();
    let api: Api<Widget> = Api::default_namespaced(client.clone());
    let mut w = widget("r1", 1);
    w.status = Some(WidgetStatus {
        ready: 9,
        observed_generation: 0,
    });
    let w = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    assert_eq!(w.status, None, "status in the create body is dropped");

    let mut with_status = w.clone();
    with_status.status = Some(WidgetStatus {
        ready: 1,
        observed_generation: 1,
    });
    let s = api
        .replace_status("r1", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(
        (s.metadata.generation, s.status.clone().unwrap().ready),
        (Some(1), 1)
    );
    let pp = PatchParams::default();
    let s = api
        .patch_status(
            "r1",
            &pp,
            &Patch::Merge(json!({"status": {"ready": 2}, "spec": {"size": 50}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (s.metadata.generation, s.spec.size, s.status.unwrap().ready),
        (Some(1), 1, 2),
        "/status ignores spec"
    );

    let l = api
        .patch(
            "r1",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}, "status": {"ready": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (l.metadata.generation, l.status.clone().unwrap().ready),
        (Some(1), 2),
        "main endpoint ignores status"
    );
    let rv = l.resource_version();
    let noop = api
        .patch(
            "r1",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        noop.resource_version(),
        rv,
        "no-op patch keeps the resourceVersion"
    );

    let g2 = api
        .patch("r1", &pp, &Patch::Merge(json!({"spec": {"size": 2}})))
        .await
        .unwrap();
    assert_eq!(g2.metadata.generation, Some(2));
    let ssa = PatchParams::apply("tester").force();
    let g3 = api
        .patch(
            "r1",
            &ssa,
            &Patch::Apply(
                json!({"apiVersion": "example.dev/v1", "kind": "Widget", "spec": {"size": 3}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!((g3.metadata.generation, g3.spec.size), (Some(3), 3));

    // Without a status subresource, status is ordinary content and bumps generation.
    let gadgets: Api<Gadget> = Api::default_namespaced(client);
    let mut g = Gadget::new("g1", GadgetSpec { size: 1 });
    g.status = Some(WidgetStatus {
        ready: 1,
        observed_generation: 0,
    });
    let g = gadgets.create(&PostParams::default(), &g).await.unwrap();
    assert_eq!(g.status.as_ref().map(|s| s.ready), Some(1));
    let g = gadgets
        .patch("g1", &pp, &Patch::Merge(json!({"status": {"ready": 5}})))
        .await
        .unwrap();
    assert_eq!(g.metadata.generation, Some(2));
    let err = gadgets.get_status("g1").await.unwrap_err();
    assert_eq!(
        api_status(err).0,
        404,
        "no /status for a CRD that does not declare it"
    );
}

#[tokio::test]
async fn every_patch_type() {
    let (_server, client) = setup();
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "side", "image": "side:1"}]}}}
    })).unwrap();
    let d = deploys.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(1), "defaulted");
    let pp = PatchParams::default();

    let smp = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 8080}]}]}}}});
    let d = deploys
        .patch("web", &pp, &Patch::Strategic(smp))
        .await
        .unwrap();
    let pod_spec = d.spec.unwrap().template.spec.unwrap();
    let c = &pod_spec.containers;
    assert_eq!(c.len(), 2, "containers merge by name");
    assert_eq!(c[0].image.as_deref(), Some("app:2"));
    assert_eq!(c[1].image.as_deref(), Some("side:1"));
    let env: Vec<&str> = c[0]
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, vec!["A", "B"]);
    let ports: Vec<i32> = c[0]
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, vec![80, 8080]);
    assert_eq!(d.metadata.generation, Some(2));

    let merge = deploys
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(merge.spec.unwrap().replicas, Some(3));
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "replace", "path": "/spec/replicas", "value": 4}]))
    .unwrap();
    let j = deploys
        .patch("web", &pp, &Patch::<()>::Json(jp.clone()))
        .await
        .unwrap();
    assert_eq!(j.spec.unwrap().replicas, Some(4));
    let failed = deploys
        .patch("web", &pp, &Patch::<()>::Json(jp))
        .await
        .unwrap_err();
    assert_eq!(api_status(failed).0, 422, "a failed JSON patch test");

    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let unsupported = widgets
        .patch("w", &pp, &Patch::Strategic(json!({"spec": {"size": 2}})))
        .await
        .unwrap_err();
    assert_eq!(api_status(unsupported).0, 415);

    // Server-side apply: ownership, conflicts, force, and removal of fields no longer applied.
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let body = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data});
    let alice = PatchParams::apply("alice");
    let created = cms
        .patch(
            "ssa",
            &alice,
            &Patch::Apply(body(json!({"a": "1", "b": "1"}))),
        )
        .await
        .unwrap();
    let managers: Vec<String> = created
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec!["alice"]);
    let bob = PatchParams::apply("bob");
    let conflict = cms
        .patch("ssa", &bob, &Patch::Apply(body(json!({"a": "2"}))))
        .await
        .unwrap_err();
    assert_eq!(
        api_status(conflict),
        (
            409,
            "Conflict".into(),
            "Apply failed with 1 conflict: conflict with \"alice\": .data.a".into()
        )
    );
    let forced = cms
        .patch(
            "ssa",
            &bob.clone().force(),
            &Patch::Apply(body(json!({"a": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "2");
    let shrunk = cms
        .patch("ssa", &alice, &Patch::Apply(body(json!({}))))
        .await
        .unwrap();
    assert_eq!(
        shrunk.data.clone().unwrap(),
        [("a".to_string(), "2".to_string())].into(),
        "b dropped, a kept by bob"
    );
    let same = cms
        .patch("ssa", &alice, &Patch::Apply(body(json!({}))))
        .await
        .unwrap();
    assert_eq!(
        same.resource_version(),
        shrunk.resource_version(),
        "re-applying the same config is a no-op"
    );
}

#[tokio::test]
async fn scale_subresources() {
    let (_server, client) = setup();
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "d"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "template": {"spec": {"containers": []}}}})).unwrap();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let s = deploys.get_scale("d").await.unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(2));
    assert_eq!(s.status.unwrap().selector.as_deref(), Some("app=d"));
    deploys
        .patch_scale(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let d = deploys.get("d").await.unwrap();
    assert_eq!(
        (d.spec.unwrap().replicas, d.metadata.generation),
        (Some(5), Some(2))
    );

    let widgets: Api<Widget> = Api::default_namespaced(client);
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    widgets
        .patch_scale(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(
        widgets.get("w").await.unwrap().spec.size,
        4,
        "specReplicasPath .spec.size"
    );
}

#[tokio::test]
async fn selectors_and_paging() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for i in 0..25 {
        let mut c = cm(&format!("c{i:02}"), json!({}));
        c.metadata.labels = Some(
            [(
                "tier".to_string(),
                if i % 2 == 0 { "even" } else { "odd" }.to_string(),
            )]
            .into(),
        );
        api.create(&PostParams::default(), &c).await.unwrap();
    }
    let even = api
        .list(&ListParams::default().labels("tier=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 13);
    let set = api
        .list(&ListParams::default().labels("tier in (odd,none),!missing"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 12);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=c03"))
        .await
        .unwrap();
    assert_eq!(
        by_name
            .items
            .iter()
            .map(|c| c.name_any())
            .collect::<Vec<_>>(),
        vec!["c03"]
    );

    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(10);
    let mut pages = 0;
    let mut first_remaining = None;
    loop {
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        first_remaining = first_remaining.or(page.metadata.remaining_item_count);
        names.extend(page.items.iter().map(|c| c.name_any()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(first_remaining, Some(15));
    assert_eq!(
        names,
        (0..25).map(|i| format!("c{i:02}")).collect::<Vec<_>>()
    );

    // Cross-namespace list.
    let ns_api: Api<Namespace> = Api::all(client.clone());
    ns_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap(),
        )
        .await
        .unwrap();
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "other");
    other
        .create(&PostParams::default(), &cm("elsewhere", json!({})))
        .await
        .unwrap();
    let all: Api<ConfigMap> = Api::all(client);
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        26
    );
}

fn owner_ref(kind: &str, api_version: &str, obj_name: &str, uid: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": obj_name, "uid": uid, "controller": true, "blockOwnerDeletion": true})
}

async fn owner_chain(client: &Client, name: &str) -> (Api<Deployment>, Api<ReplicaSet>, Api<Pod>) {
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"spec": {"containers": []}}}})).unwrap();
    let d = deploys.create(&PostParams::default(), &d).await.unwrap();
    let rs: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": format!("{name}-rs"),
        "ownerReferences": [owner_ref("Deployment", "apps/v1", name, &d.uid().unwrap())]},
        "spec": {"selector": {"matchLabels": {"app": name}}}}))
    .unwrap();
    let rs = rss.create(&PostParams::default(), &rs).await.unwrap();
    for i in 0..2 {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": format!("{name}-pod-{i}"), "labels": {"app": name},
            "ownerReferences": [owner_ref("ReplicaSet", "apps/v1", &rs.name_any(), &rs.uid().unwrap())]},
            "spec": {"containers": []}})).unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    (deploys, rss, pods)
}

#[tokio::test]
async fn owner_reference_garbage_collection() {
    let (_server, client) = setup();
    let count = |pods: Api<Pod>, app: &'static str| async move {
        pods.list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .unwrap()
            .items
            .len()
    };

    // Background: the owner is gone when the DELETE returns; the collector deletes the
    // dependents afterwards, as in a cluster.
    let (deploys, rss, pods) = owner_chain(&client, "bg").await;
    deploys
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    assert!(deploys.get_opt("bg").await.unwrap().is_none());
    eventually("the background dependents collected", || async {
        let rs = rss.get_opt("bg-rs").await.unwrap();
        let n = count(pods.clone(), "bg").await;
        (rs.is_none() && n == 0)
            .then_some(())
            .ok_or(format!("rs {}, {n} pods", rs.is_some()))
    })
    .await;

    // Orphan: the owner waits with the `orphan` finalizer until its dependents lose their
    // reference to it; they stay.
    let (deploys, rss, _) = owner_chain(&client, "or").await;
    let marked = deploys.delete("or", &DeleteParams::orphan()).await.unwrap();
    let owner = marked
        .left()
        .expect("an orphaning owner is marked, not removed");
    assert_eq!(owner.metadata.finalizers, Some(vec!["orphan".to_string()]));
    assert!(owner.metadata.deletion_timestamp.is_some());
    eventually("the orphaning owner gone", || async {
        let d = deploys.get_opt("or").await.unwrap();
        d.is_none()
            .then_some(())
            .ok_or(format!("{:?}", d.map(|d| d.metadata.finalizers)))
    })
    .await;
    let rs = rss.get("or-rs").await.unwrap();
    assert!(rs.metadata.owner_references.is_none());
    assert_eq!(count(pods.clone(), "or").await, 2);

    // Foreground: the owner waits (deletionTimestamp + finalizer) for a dependent held by a finalizer.
    let (deploys, rss, pods) = owner_chain(&client, "fg").await;
    rss.patch(
        "fg-rs",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.dev/hold"]}})),
    )
    .await
    .unwrap();
    let marked = deploys
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let owner = marked
        .left()
        .expect("foreground deletion returns the marked owner");
    assert!(owner.metadata.deletion_timestamp.is_some());
    assert_eq!(
        owner.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    eventually("grandchildren deleted, the held child marked", || async {
        let n = count(pods.clone(), "fg").await;
        let held = rss.get("fg-rs").await.unwrap();
        (n == 0 && held.metadata.deletion_timestamp.is_some())
            .then_some(())
            .ok_or(format!("{n} pods"))
    })
    .await;
    assert!(
        deploys.get_opt("fg").await.unwrap().is_some(),
        "the owner waits for its blocking dependent"
    );
    rss.patch(
        "fg-rs",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the owner finishes after its dependents", || async {
        let rs = rss.get_opt("fg-rs").await.unwrap();
        let d = deploys.get_opt("fg").await.unwrap();
        (rs.is_none() && d.is_none()).then_some(()).ok_or(format!(
            "rs {}, owner {}",
            rs.is_some(),
            d.is_some()
        ))
    })
    .await;
}

#[tokio::test]
async fn finalizers_hold_deletion_and_namespace_deletion_cascades() {
    let (_server, client) = setup();
    let api: Api<Widget> = Api::default_namespaced(client.clone());
    let mut w = widget("f1", 1);
    w.metadata.finalizers = Some(vec!["example.dev/cleanup".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();
    let marked = api
        .delete("f1", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.generation, Some(2));
    let refused = api
        .patch(
            "f1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["a", "example.dev/cleanup"]}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(refused).0, 422);
    api.patch(
        "f1",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([
        {"op": "remove", "path": "/metadata/finalizers"}]))
            .unwrap(),
        ),
    )
    .await
    .unwrap();
    assert!(api.get_opt("f1").await.unwrap().is_none());

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    cms.create(&PostParams::default(), &cm("x", json!({})))
        .await
        .unwrap();
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    // Asynchronous, as in a cluster: the namespace controller empties it, then it goes.
    eventually("the namespace gone", || async {
        match namespaces.get_opt("doomed").await.unwrap() {
            None => Ok(()),
            Some(ns) => Err(format!("{:?}", ns.status)),
        }
    })
    .await;
    let all: Api<ConfigMap> = Api::all(client);
    assert!(
        all.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn fault_injection() {
    let (server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let faults = server.faults();
    faults.set_error_rate(1.0, 7);
    let err = api.get("a").await.unwrap_err();
    assert_eq!(api_status(err).0, 500);
    faults.set_error_rate(0.0, 7);
    faults.set_error_rate_for(Verb::List, 1.0);
    faults.set_error_code(503);
    assert_eq!(
        api_status(api.list(&ListParams::default()).await.unwrap_err()).1,
        "ServiceUnavailable"
    );
    assert!(api.get("a").await.is_ok());
    faults.clear();
    faults.force_conflicts(1);
    let pp = PatchParams::default();
    let conflict = api
        .patch("a", &pp, &Patch::Merge(json!({"data": {"x": "1"}})))
        .await
        .unwrap_err();
    assert_eq!(api_status(conflict).1, "Conflict");
    assert!(
        api.patch("a", &pp, &Patch::Merge(json!({"data": {"x": "1"}})))
            .await
            .is_ok()
    );
    faults.set_latency(Verb::Get, Duration::from_millis(20));
    assert!(api.get("a").await.is_ok());
    let stats = faults.stats();
    assert_eq!((stats.errors, stats.conflicts), (2, 1));
}

#[tokio::test]
async fn discovery_finds_custom_kinds() {
    let (_server, client) = setup();
    for aggregated in [false, true] {
        let discovery = kube::Discovery::new(client.clone());
        let discovery = if aggregated {
            discovery.run_aggregated().await
        } else {
            discovery.run().await
        }
        .unwrap();
        let group = discovery
            .get("example.dev")
            .expect("example.dev discovered");
        let kinds: Vec<String> = group
            .recommended_resources()
            .iter()
            .map(|(r, _)| r.kind.clone())
            .collect();
        assert!(
            kinds.contains(&"Widget".to_string()) && kinds.contains(&"Gadget".to_string()),
            "{kinds:?}"
        );
        assert!(discovery.get("apps").is_some());
    }
    let v = client.apiserver_version().await.unwrap();
    assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "32"));
}

#[tokio::test]
async fn davys_own_crds_are_served() {
    let server = ApiServer::new();
    // The JSON values, not `crds_yaml()`: the YAML round trip adds seconds in debug builds.
    let names = server
        .install_crds(davy::api::crd::crd_values().unwrap())
        .unwrap();
    assert_eq!(names.len(), 5);
    assert!(
        names.contains(&"rollouts.argoproj.io".to_string()),
        "{names:?}"
    );
    let ar = kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "Rollout",
    ));
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(server.client(), "default", &ar);
    let ro: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "demo"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [{"name": "app", "image": "demo:blue"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}},
        "status": {"phase": "Healthy"}})).unwrap();
    let created = api.create(&PostParams::default(), &ro).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "Rollout has a status subresource"
    );
    let pp = PatchParams::default();
    let st = api
        .patch_status(
            "demo",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Progressing"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (st.data["status"]["phase"].clone(), st.metadata.generation),
        (json!("Progressing"), Some(1))
    );
    let scaled = api
        .patch_scale("demo", &pp, &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(4));
    assert_eq!(api.get("demo").await.unwrap().metadata.generation, Some(2));
}
