//! Scenario tests of the canary `experiment` step in the pure decision core
//! (`davy::rollout::plan` over `tests/common/world.rs`, the test playing the Experiment
//! controller): the Experiment built from the step, `status.canary.currentExperiment`, the
//! weighted destinations handed to an SMI router while it runs, and the Rollout's reaction to
//! each final phase (next step, abort with upstream's message, `InconclusiveExperiment` pause),
//! with Argo CD's health at each stage.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::world::{World, rollout_from, service};
use davy::api::{PauseReason, RolloutPhase};
use davy::rollout::Write;
use serde_json::{Value, json};

fn rollout() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default", "uid": "uid-demo", "generation": 1,
                     "labels": {"team": "a"}},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "demo"}},
            "strategy": {"canary": {
                "canaryService": "demo-canary", "stableService": "demo-stable",
                "trafficRouting": {"smi": {}},
                "steps": [
                    {"setWeight": 10},
                    {"experiment": {
                        "duration": "5m",
                        "templates": [
                            {"name": "baseline", "specRef": "stable", "weight": 10},
                            {"name": "canary", "specRef": "canary", "weight": 10,
                             "metadata": {"labels": {"role": "canary"}}}
                        ],
                        "analyses": [{"name": "judge", "templateName": "judge",
                                      "args": [{"name": "stable",
                                                "valueFrom": {"podTemplateHashValue": "Stable"}}]}]
                    }},
                    {"setWeight": 50}
                ]
            }},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "demo", "image": "argoproj/rollouts-demo:blue"}]}
            }
        }
    })
}

/// The world after v2 reached the experiment step; returns it with the stable hash.
fn at_experiment() -> (World, String) {
    let mut world = World::new(rollout_from(rollout()));
    world
        .obs
        .services
        .insert("demo-canary".into(), service("demo-canary", "demo"));
    world
        .obs
        .services
        .insert("demo-stable".into(), service("demo-stable", "demo"));
    world.run(20);
    let stable = world.status().stable_rs.clone();
    assert_eq!(world.status().phase, Some(RolloutPhase::Healthy));
    world.set_image("yellow");
    world.run(20);
    assert_eq!(world.status().current_step_index, Some(1));
    (world, stable)
}

fn experiment_json(world: &World) -> Value {
    assert_eq!(world.obs.experiments.len(), 1);
    serde_json::to_value(&world.obs.experiments[0]).unwrap()
}

/// Plays the Experiment controller: sets the experiment's status.
fn set_experiment_status(world: &mut World, status: Value) {
    world.obs.experiments[0].status = Some(serde_json::from_value(status).unwrap());
}

fn running_status() -> Value {
    json!({"phase": "Running", "templateStatuses": [
        {"name": "baseline", "serviceName": "ex-baseline", "podTemplateHash": "b1",
         "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
         "status": "Running"},
        {"name": "canary", "serviceName": "ex-canary", "podTemplateHash": "c1",
         "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
         "status": "Running"}
    ]})
}

#[test]
fn the_step_creates_the_experiment_upstream_builds_from_it() {
    let (world, stable) = at_experiment();
    let status = world.status();
    let canary = status.current_pod_hash.clone();
    let ex = experiment_json(&world);
    let name = format!("demo-{canary}-2-1");
    assert_eq!(ex["metadata"]["name"], name.as_str());
    assert_eq!(status.canary.current_experiment, name);
    assert_eq!(
        ex["metadata"]["labels"],
        json!({"team": "a", "rollouts-pod-template-hash": canary})
    );
    assert_eq!(
        ex["metadata"]["annotations"],
        json!({"rollout.argoproj.io/revision": "2"})
    );
    assert_eq!(ex["metadata"]["ownerReferences"][0]["kind"], "Rollout");
    assert_eq!(ex["spec"]["duration"], "5m");
    let baseline = &ex["spec"]["templates"][0];
    assert_eq!(
        baseline["template"]["spec"]["containers"][0]["image"],
        "argoproj/rollouts-demo:blue"
    );
    // The stable ReplicaSet's selector (with its hash) unless the step gives one.
    assert_eq!(
        baseline["selector"]["matchLabels"]["rollouts-pod-template-hash"],
        stable.as_str()
    );
    assert_eq!(
        baseline["service"],
        json!({}),
        "a weighted template gets a Service"
    );
    let canary_template = &ex["spec"]["templates"][1];
    assert_eq!(
        canary_template["template"]["spec"]["containers"][0]["image"],
        "argoproj/rollouts-demo:yellow"
    );
    assert_eq!(
        canary_template["template"]["metadata"]["labels"]["role"],
        "canary"
    );
    assert_eq!(canary_template["selector"]["matchLabels"]["role"], "canary");
    // Rollout arguments are resolved before the experiment gets them.
    assert_eq!(
        ex["spec"]["analyses"][0]["args"],
        json!([{"name": "stable", "value": stable}])
    );
    assert_eq!(
        world.events_with("ExperimentCreated"),
        vec![format!("Created Experiment '{name}'")]
    );
    assert_eq!(world.health().status, "Progressing");
}

#[test]
fn a_running_experiment_gets_its_weights_and_success_moves_on() {
    let (mut world, _) = at_experiment();
    set_experiment_status(&mut world, running_status());
    world.reconcile();
    let traffic = world.traffic.clone().unwrap();
    assert_eq!(traffic.weight, 10);
    let destinations: Vec<(String, String, i32)> = traffic
        .additional
        .iter()
        .map(|d| {
            (
                d.service_name.clone(),
                d.pod_template_hash.clone(),
                d.weight,
            )
        })
        .collect();
    assert_eq!(
        destinations,
        vec![
            ("ex-baseline".to_string(), "b1".to_string(), 10),
            ("ex-canary".to_string(), "c1".to_string(), 10)
        ]
    );
    let weights = world.status().canary.weights.unwrap();
    assert_eq!(weights.additional.len(), 2);
    assert_eq!(
        weights.stable.weight, 70,
        "the stable gives up the experiment's share"
    );

    let mut done = running_status();
    done["phase"] = json!("Successful");
    set_experiment_status(&mut world, done);
    world.run(20);
    let status = world.status();
    assert_eq!(
        status.current_step_index,
        Some(3),
        "past the experiment and setWeight 50"
    );
    assert_eq!(status.canary.current_experiment, "");
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert!(world.traffic.clone().unwrap().additional.is_empty());
}

#[test]
fn a_failed_experiment_aborts_with_upstreams_message() {
    let (mut world, stable) = at_experiment();
    let mut failed = running_status();
    failed["phase"] = json!("Failed");
    failed["message"] = json!("Metric \"judge\" assessed Failed");
    set_experiment_status(&mut world, failed);
    world.run(20);
    let status = world.status();
    assert!(status.abort);
    assert_eq!(
        status.message,
        "RolloutAborted: Rollout aborted update to revision 2: Experiment analysis phase is \
         error/failed: Metric \"judge\" assessed Failed"
    );
    assert_eq!(status.stable_rs, stable);
    assert_eq!(world.health().status, "Degraded");
}

#[test]
fn an_inconclusive_experiment_pauses_the_rollout() {
    let (mut world, _) = at_experiment();
    let mut inconclusive = running_status();
    inconclusive["phase"] = json!("Inconclusive");
    set_experiment_status(&mut world, inconclusive);
    world.run(20);
    let status = world.status();
    assert_eq!(
        status
            .pause_conditions
            .iter()
            .map(|c| c.reason.clone())
            .collect::<Vec<_>>(),
        vec![PauseReason::InconclusiveExperiment]
    );
    assert_eq!(status.phase, Some(RolloutPhase::Paused));
    assert_eq!(world.health().status, "Suspended");
}

#[test]
fn an_abort_or_a_full_promotion_terminates_the_running_experiment() {
    for full in [false, true] {
        let (mut world, _) = at_experiment();
        set_experiment_status(&mut world, running_status());
        world.reconcile();
        world.edit_status(|status| {
            if full {
                status.promote_full = true;
            } else {
                status.abort = true;
            }
        });
        let plan = world.reconcile();
        let name = world.obs.experiments[0].metadata.name.clone().unwrap();
        assert!(
            plan.writes
                .contains(&Write::TerminateExperiment { name: name.clone() }),
            "full={full}: {:?}",
            plan.writes
        );
        assert_eq!(world.obs.experiments[0].spec.terminate, Some(true));
        assert_eq!(world.status().canary.current_experiment, "");
    }
}
