//! Service selector switch and checks (spec §3.4).

use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use super::super::RouterEvent;
use super::super::services::{
    ServiceRole, TargetDecision, TargetReplicaSet, ensure_targets, release_patch, switch_selector,
    validate_service,
};
use super::canary_rollout;

fn service(name: &str, selector: Value, annotations: Option<Value>) -> Service {
    let mut doc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": selector},
    });
    if let Some(a) = annotations {
        doc["metadata"]["annotations"] = a;
    }
    serde_json::from_value(doc).expect("service")
}

fn managed(by: &str) -> Option<Value> {
    Some(json!({"argo-rollouts.argoproj.io/managed-by-rollouts": by}))
}

#[test]
fn first_switch_adds_the_managed_by_annotation() {
    let svc = service(
        "rollouts-demo-stable",
        json!({"app": "rollouts-demo"}),
        None,
    );
    let switch = switch_selector(&svc, "6d5b8c7f9", "rollouts-demo").expect("switch");
    assert_eq!(
        switch.patch,
        json!({
            "metadata": {"annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": "rollouts-demo"}},
            "spec": {"selector": {"rollouts-pod-template-hash": "6d5b8c7f9"}},
        })
    );
    assert_eq!(
        switch.event,
        RouterEvent::new(
            "SwitchService",
            "Switched selector for service 'rollouts-demo-stable' from '' to '6d5b8c7f9'"
        )
    );

    let svc = service(
        "rollouts-demo-stable",
        json!({"app": "rollouts-demo", "rollouts-pod-template-hash": "old"}),
        managed("rollouts-demo"),
    );
    let switch = switch_selector(&svc, "new", "rollouts-demo").expect("switch");
    assert_eq!(
        switch.patch,
        json!({"spec": {"selector": {"rollouts-pod-template-hash": "new"}}})
    );
    assert_eq!(
        switch.event.message,
        "Switched selector for service 'rollouts-demo-stable' from 'old' to 'new'"
    );
    assert_eq!(switch_selector(&svc, "old", "rollouts-demo"), None);
}

#[test]
fn reference_checks_report_unmatched_labels_and_other_owners() {
    let ro = canary_rollout(
        "web",
        json!({
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "stableMetadata": {"labels": {"role": "stable"}},
        }),
    );
    let ok = service(
        "web-stable",
        json!({"app": "web", "role": "stable", "rollouts-pod-template-hash": "x"}),
        managed("web"),
    );
    assert!(validate_service(&ro, &ok, ServiceRole::Stable).is_empty());

    // The stable metadata label does not excuse the canary Service.
    let bad = service(
        "web-canary",
        json!({"app": "web", "role": "stable", "tier": "x"}),
        managed("other"),
    );
    let errors: Vec<String> = validate_service(&ro, &bad, ServiceRole::Canary)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        vec![
            "spec.strategy.canary.canaryService: Invalid value: \"web-canary\": Service \"web-canary\" has unmatch label \"role\" in rollout".to_string(),
            "spec.strategy.canary.canaryService: Invalid value: \"web-canary\": Service \"web-canary\" has unmatch label \"tier\" in rollout".to_string(),
            "spec.strategy.canary.canaryService: Invalid value: \"web-canary\": Service \"web-canary\" is managed by another Rollout".to_string(),
        ]
    );
}

fn rs(hash: &str, spec: Option<i32>, available: i32) -> TargetReplicaSet {
    TargetReplicaSet {
        hash: hash.into(),
        spec_replicas: spec,
        available_replicas: available,
    }
}

#[test]
fn switch_guards_follow_adoption_and_availability() {
    let unmanaged = service("s", json!({"app": "a"}), None);
    let managed_svc = service(
        "s",
        json!({"app": "a", "rollouts-pod-template-hash": "old"}),
        managed("ro"),
    );
    let cases = [
        // (service, rs, check, expected kind)
        (&managed_svc, rs("old", Some(3), 0), true, "already"),
        (&unmanaged, rs("new", Some(3), 2), true, "delay-full"),
        (&unmanaged, rs("new", Some(0), 0), true, "delay-full"),
        (&unmanaged, rs("new", Some(3), 3), true, "switch"),
        (&managed_svc, rs("new", Some(3), 1), true, "switch"),
        (&managed_svc, rs("new", Some(3), 0), true, "delay-zero"),
        (&managed_svc, rs("new", Some(3), 0), false, "switch"),
        (&unmanaged, rs("new", None, 0), false, "switch"),
    ];
    let mut failures = Vec::new();
    for (i, (svc, target, check, want)) in cases.iter().enumerate() {
        let got = match ensure_targets(svc, target, *check, "ro") {
            TargetDecision::AlreadyTargeted => "already".to_string(),
            TargetDecision::Delay(m) if m.ends_with("ReplicaSet not fully available") => {
                "delay-full".to_string()
            }
            TargetDecision::Delay(m) if m.ends_with("ReplicaSet has zero availability") => {
                "delay-zero".to_string()
            }
            TargetDecision::Delay(m) => m,
            TargetDecision::Switch(_) => "switch".to_string(),
        };
        if got != *want {
            failures.push(format!("case {i}: got {got}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    match ensure_targets(&managed_svc, &rs("new", Some(3), 0), true, "ro") {
        TargetDecision::Delay(m) => assert_eq!(
            m,
            "delaying service switch from old to new: ReplicaSet has zero availability"
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn release_removes_hash_and_annotation() {
    let svc = service(
        "s",
        json!({"app": "a", "rollouts-pod-template-hash": "h"}),
        managed("ro"),
    );
    assert_eq!(
        release_patch(&svc),
        Some(json!({
            "metadata": {"annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": null}},
            "spec": {"selector": {"rollouts-pod-template-hash": null}},
        }))
    );
    assert_eq!(
        release_patch(&service("s", json!({"app": "a"}), None)),
        None
    );
}
