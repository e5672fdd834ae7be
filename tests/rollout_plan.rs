//! Scenario tests of the canary decision core: `davy::rollout::plan` driven repeatedly over a
//! tiny in-memory world (`tests/common/world.rs`), checking ReplicaSet sizes, weights, statuses,
//! events, and how Argo CD's health check reads the status at each moment.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::world::{World, demo_rollout, health, rollout_from, sizes, until};

use davy::api::RolloutPhase;
use davy::rollout::Write;
use serde_json::json;

/// Deploys revision 1 of the seed's demo and returns the world and the stable hash.
fn deployed_demo() -> (World, String) {
    let mut world = World::new(rollout_from(demo_rollout("blue")));
    world.run(20);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy), "{status:#?}");
    let stable = status.stable_rs.clone();
    assert!(!stable.is_empty());
    (world, stable)
}

#[test]
fn initial_deploy_goes_straight_to_healthy() {
    let (world, stable) = deployed_demo();
    let status = world.status();
    assert_eq!(status.current_pod_hash, stable);
    assert_eq!(status.current_step_index, Some(8));
    assert_eq!(world.size_of(&stable), 2);
    assert_eq!(world.health(), health("Healthy", ""));
    assert_eq!(
        world.events_with("RolloutCompleted"),
        vec![format!(
            "Rollout completed update to revision 1 ({stable}): Initial deploy"
        )]
    );
    assert_eq!(status.observed_generation, "1");
}

#[test]
fn seed_demo_walks_every_step_with_the_right_sizes_pauses_and_health() {
    let (mut world, blue) = deployed_demo();
    world.set_image("yellow");
    let plans = world.run(10);
    assert!(plans.len() > 1);
    let yellow = world.status().current_pod_hash.clone();
    assert_ne!(yellow, blue);

    // Step 0 (setWeight 20) completed, now held at pause {} with 1 canary pod + 2 stable (surge).
    let status = world.status();
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(sizes(&world, &yellow, &blue), (1, 2));
    assert_eq!(status.phase, Some(RolloutPhase::Paused));
    assert_eq!(status.message, "CanaryPauseStep");
    assert_eq!(world.health(), health("Suspended", "CanaryPauseStep"));
    assert_eq!(
        world.events_with("RolloutStepCompleted"),
        vec!["Rollout step 1/8 completed (setWeight: 20)"]
    );
    assert_eq!(
        world.events_with("RolloutPaused"),
        vec!["Rollout is paused (CanaryPauseStep)"]
    );

    // pause {} holds however long we wait.
    world.advance(3600);
    world.run(5);
    assert_eq!(world.status().current_step_index, Some(1));
    assert_eq!(world.health().status, "Suspended");

    // Promote: the user clears the pause conditions.
    world.promote();
    let mut seen = Vec::new();
    for _ in 0..80 {
        let status = world.status();
        let index = status.current_step_index;
        let entry = (index, sizes(&world, &yellow, &blue), world.health().status);
        if seen.last() != Some(&entry) {
            seen.push(entry);
        }
        if status.phase == Some(RolloutPhase::Healthy) && status.stable_rs == yellow {
            break;
        }
        let plan = world.reconcile();
        if plan.writes.is_empty() {
            world.advance(1);
        }
    }
    let steps: Vec<(Option<i32>, (i32, i32))> =
        seen.iter().map(|(i, s, _)| (*i, *s)).collect::<Vec<_>>();
    // Each (step, sizes) pair in order; sizes move one ReplicaSet at a time.
    let mut distinct_steps: Vec<(Option<i32>, (i32, i32))> = Vec::new();
    for entry in steps {
        if distinct_steps.last().map(|e| e.0) != Some(entry.0) {
            distinct_steps.push(entry);
        }
    }
    assert_eq!(
        distinct_steps,
        vec![
            (Some(1), (1, 2)), // resumed
            (Some(2), (1, 2)), // setWeight 40: 1 of 3 pods (surge) is the closest split
            (Some(3), (1, 2)), // pause 10
            (Some(4), (1, 2)), // setWeight 60: stable shrinks first, then canary grows
            (Some(5), (2, 1)), // pause 10
            (Some(6), (2, 1)), // setWeight 80
            (Some(7), (2, 1)), // pause 10
            (Some(8), (2, 1)), // all steps done: stable drained, then promoted
        ]
    );
    let status = world.status();
    assert_eq!(status.stable_rs, yellow);
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(sizes(&world, &yellow, &blue), (2, 0));
    assert_eq!(world.health(), health("Healthy", ""));
    assert_eq!(
        world.events_with("RolloutStepCompleted"),
        vec![
            "Rollout step 1/8 completed (setWeight: 20)",
            "Rollout step 2/8 completed (pause)",
            "Rollout step 3/8 completed (setWeight: 40)",
            "Rollout step 4/8 completed (pause: 10)",
            "Rollout step 5/8 completed (setWeight: 60)",
            "Rollout step 6/8 completed (pause: 10)",
            "Rollout step 7/8 completed (setWeight: 80)",
            "Rollout step 8/8 completed (pause: 10)",
        ]
    );
    assert_eq!(
        world.events_with("RolloutCompleted").last().cloned(),
        Some(format!(
            "Rollout completed update to revision 2 ({yellow}): Completed all 8 canary steps"
        ))
    );
    // Health moved through Progressing and Suspended and ended Healthy.
    let healths: Vec<&str> = seen.iter().map(|(_, _, h)| h.as_str()).collect();
    assert!(healths.contains(&"Progressing") && healths.contains(&"Suspended"));
}

#[test]
fn timed_pause_expires_only_when_now_reaches_the_deadline() {
    let (mut world, _) = deployed_demo();
    world.set_image("yellow");
    world.run(10);
    world.promote();
    // Walk to the 10 s pause at index 3 without moving the clock.
    until(&mut world, 30, |w| {
        w.status().pause_conditions.len() == 1 && w.status().current_step_index == Some(3)
    });
    world.run(5);
    let started = world.status().pause_conditions[0].start_time.0.as_second();
    let elapsed = world.now.timestamp() - started;
    // A quiet reconcile during the pause asks to look again exactly at its expiry.
    let plan = world.reconcile();
    assert!(plan.writes.is_empty(), "{:?}", plan.writes);
    let remaining = u64::try_from(10 - elapsed).unwrap_or(0);
    assert_eq!(
        plan.requeue_after,
        Some(std::time::Duration::from_secs(remaining))
    );
    world.advance(10 - elapsed - 1);
    world.run(5);
    assert_eq!(
        world.status().current_step_index,
        Some(3),
        "one second before the expiry"
    );
    world.advance(1);
    world.reconcile();
    assert_eq!(world.status().current_step_index, Some(4));
    assert_eq!(
        world
            .events_with("RolloutStepCompleted")
            .last()
            .map(String::as_str),
        Some("Rollout step 4/8 completed (pause: 10)")
    );
}

#[test]
fn manual_pause_holds_scaling_and_reads_as_suspended() {
    let (mut world, blue) = deployed_demo();
    world.edit_spec(|ro| ro.spec.paused = Some(true));
    world.set_image("yellow");
    world.run(10);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Paused));
    assert_eq!(status.message, "manually paused");
    assert_eq!(world.health(), health("Suspended", "manually paused"));
    let yellow = status.current_pod_hash.clone();
    // The new ReplicaSet exists but nothing is scaled while paused.
    assert_eq!(sizes(&world, &yellow, &blue), (0, 2));
    world.edit_spec(|ro| ro.spec.paused = Some(false));
    world.run(10);
    assert_eq!(sizes(&world, &yellow, &blue), (1, 2));
}

#[test]
fn user_skip_step_moves_the_index() {
    let (mut world, _) = deployed_demo();
    world.set_image("yellow");
    world.run(10);
    assert_eq!(world.status().current_step_index, Some(1));
    // kubectl argo rollouts promote on a canary: clear pauses and move to the next step.
    world.edit_status(|s| {
        s.pause_conditions.clear();
        s.current_step_index = Some(2);
    });
    world.run(10);
    assert_eq!(world.status().current_step_index, Some(3));
}

#[test]
fn promote_full_skips_the_remaining_steps() {
    let (mut world, blue) = deployed_demo();
    world.set_image("yellow");
    world.run(10);
    world.edit_status(|s| s.promote_full = true);
    until(&mut world, 30, |w| {
        w.status().phase == Some(RolloutPhase::Healthy)
    });
    let status = world.status();
    assert_eq!(status.stable_rs, status.current_pod_hash);
    assert!(!status.promote_full);
    assert_eq!(status.current_step_index, Some(8));
    assert_eq!(world.size_of(&blue), 0);
    assert!(
        world
            .events_with("RolloutCompleted")
            .last()
            .is_some_and(|m| m.ends_with("Full promotion requested"))
    );
}

#[test]
fn rollback_to_stable_mid_rollout_skips_steps() {
    let (mut world, blue) = deployed_demo();
    world.set_image("yellow");
    world.run(10);
    world.set_image("blue");
    world.run(20);
    let status = world.status();
    assert_eq!(status.current_pod_hash, blue);
    assert_eq!(status.current_step_index, Some(8));
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(
        world.events_with("SkipSteps"),
        vec!["Rollback to stable ReplicaSets"]
    );
    assert_eq!(world.size_of(&blue), 2);
}

#[test]
fn scaling_the_rollout_rescales_replica_sets_only() {
    let (mut world, blue) = deployed_demo();
    world.edit_spec(|ro| ro.spec.replicas = Some(4));
    world.run(10);
    assert_eq!(world.size_of(&blue), 4);
    assert_eq!(world.status().phase, Some(RolloutPhase::Healthy));
    let annotations = world
        .rs(&blue)
        .metadata
        .annotations
        .clone()
        .unwrap_or_default();
    assert_eq!(
        annotations
            .get("rollout.argoproj.io/desired-replicas")
            .map(String::as_str),
        Some("4")
    );
}

#[test]
fn missing_spec_replicas_is_written_back_first() {
    let mut ro = demo_rollout("blue");
    ro["spec"]
        .as_object_mut()
        .map(|spec| spec.remove("replicas"));
    let mut world = World::new(rollout_from(ro));
    let plan = world.reconcile();
    assert_eq!(
        plan.writes,
        vec![Write::PatchRolloutSpecReplicas { replicas: 1 }]
    );
    world.run(10);
    assert_eq!(world.status().phase, Some(RolloutPhase::Healthy));
}

#[test]
fn invalid_spec_is_degraded_and_nothing_else_happens() {
    let mut world = World::new(rollout_from(demo_rollout("blue")));
    world.obs.validation_errors = vec![
        "spec.strategy.canary.steps[0].setWeight: Invalid value: 200: must be between 0 and 100"
            .to_string(),
    ];
    let plan = world.reconcile();
    assert!(plan.error.is_some());
    // The status, then a Warning event `InvalidSpec` with the condition's message.
    assert_eq!(plan.writes.len(), 2, "{:?}", plan.writes);
    assert!(
        matches!(plan.writes[0], Write::PatchStatus(_)),
        "{:?}",
        plan.writes
    );
    let events: Vec<_> = plan.events().collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "InvalidSpec");
    assert_eq!(events[0].type_, davy::rollout::EventType::Warning);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    let expected = "The Rollout \"rollouts-demo\" is invalid: spec.strategy.canary.steps[0].setWeight: Invalid value: 200: must be between 0 and 100";
    assert_eq!(status.message, format!("InvalidSpec: {expected}"));
    assert_eq!(
        world.health(),
        health("Degraded", &format!("InvalidSpec: {expected}"))
    );
    assert!(world.obs.replica_sets.is_empty());
    // Same error again: no new write.
    assert!(world.reconcile().writes.is_empty());
    // Fixed: the condition goes and the rollout deploys.
    world.obs.validation_errors.clear();
    world.run(10);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert!(status.conditions.iter().all(|c| c.type_ != "InvalidSpec"));
}

// ---------------------------------------------------------------------------------------------
// Progress deadline

fn deadline_world(abort: bool) -> (World, String) {
    let mut ro = demo_rollout("blue");
    ro["spec"]["progressDeadlineSeconds"] = json!(60);
    ro["spec"]["progressDeadlineAbort"] = json!(abort);
    let mut world = World::new(rollout_from(ro));
    world.run(20);
    let blue = world.status().stable_rs.clone();
    world.set_image("yellow");
    world.auto_ready = false;
    (world, blue)
}

/// Reconciles with the canary's pods never becoming available, moving the clock 10 s a time.
fn stall(world: &mut World, blue: &str, seconds: i64) {
    for _ in 0..(seconds / 10) {
        world.reconcile();
        world.settle_with(|name, desired| if name.ends_with(blue) { desired } else { 0 });
        world.advance(10);
    }
}

#[test]
fn progress_deadline_without_abort_is_degraded_but_keeps_trying() {
    let (mut world, blue) = deadline_world(false);
    stall(&mut world, &blue, 50);
    assert_eq!(world.health().status, "Progressing");
    let plan = world.reconcile();
    assert!(plan.requeue_after.is_some());
    stall(&mut world, &blue, 60);
    let status = world.status();
    let yellow = status.current_pod_hash.clone();
    let text = format!("ReplicaSet \"rollouts-demo-{yellow}\" has timed out progressing.");
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(status.message, format!("ProgressDeadlineExceeded: {text}"));
    assert_eq!(
        world.health(),
        health("Degraded", &format!("ProgressDeadlineExceeded: {text}"))
    );
    assert!(!status.abort);
    // Pods finally come up: progress resumes and the deadline condition goes away.
    world.auto_ready = true;
    world.settle();
    world.run(10);
    assert_eq!(world.health(), health("Suspended", "CanaryPauseStep"));
}

#[test]
fn progress_deadline_with_abort_aborts_the_update() {
    let (mut world, blue) = deadline_world(true);
    stall(&mut world, &blue, 110);
    let status = world.status();
    let yellow = status.current_pod_hash.clone();
    assert!(status.abort);
    assert_eq!(
        status.message,
        format!(
            "RolloutAborted: Rollout aborted update to revision 2: ReplicaSet \"rollouts-demo-{yellow}\" has timed out progressing."
        )
    );
    assert_eq!(world.health().status, "Degraded");
    world.auto_ready = true;
    world.settle();
    world.run(20);
    assert_eq!(sizes(&world, &yellow, &blue), (0, 2));
    assert_eq!(world.health().status, "Degraded");
}

#[test]
fn restart_evicts_old_pods_within_max_unavailable_and_records_restarted_at() {
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
    let mut ro = demo_rollout("blue");
    ro["spec"]["replicas"] = json!(4);
    let mut world = World::new(rollout_from(ro));
    world.run(20);
    let blue = world.status().stable_rs.clone();
    let rs_name = format!("rollouts-demo-{blue}");
    let old = Time(
        k8s_openapi::jiff::Timestamp::from_second(world.now.timestamp() - 100)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    );
    world.obs.pods = (0..4)
        .map(|i| Pod {
            metadata: ObjectMeta {
                name: Some(format!("pod-{i}")),
                creation_timestamp: Some(old.clone()),
                owner_references: Some(vec![OwnerReference {
                    kind: "ReplicaSet".into(),
                    name: rs_name.clone(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
        .collect();
    let restart_at = Time(
        k8s_openapi::jiff::Timestamp::from_second(world.now.timestamp())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    );
    world.edit_spec(|r| r.spec.restart_at = Some(restart_at.clone()));
    let plan = world.reconcile();
    let evicted: Vec<&Write> = plan
        .writes
        .iter()
        .filter(|w| matches!(w, Write::EvictPod { .. }))
        .collect();
    assert_eq!(
        evicted,
        vec![&Write::EvictPod {
            name: "pod-0".into()
        }],
        "maxUnavailable 25% of 4 = 1 at a time"
    );
    assert_eq!(world.status().message, "rollout is restarting");
    // The ReplicaSet controller replaces the pods; once no old pod is left, restartedAt is set.
    world.obs.pods.clear();
    world.run(5);
    assert_eq!(world.status().restarted_at, Some(restart_at));
    assert_eq!(world.health(), health("Healthy", ""));
}

#[test]
fn user_abort_goes_back_to_stable_and_stays_degraded() {
    let (mut world, blue) = deployed_demo();
    world.set_image("yellow");
    world.run(10);
    let yellow = world.status().current_pod_hash.clone();
    assert_eq!(sizes(&world, &yellow, &blue), (1, 2));
    // kubectl argo rollouts abort / Argo CD's abort action.
    world.edit_status(|s| s.abort = true);
    world.run(20);
    let status = world.status();
    assert_eq!(
        status.message,
        "RolloutAborted: Rollout aborted update to revision 2"
    );
    assert!(
        status.pause_conditions.is_empty(),
        "an abort drops the pause"
    );
    assert_eq!(status.current_step_index, Some(0));
    assert_eq!(sizes(&world, &yellow, &blue), (0, 2));
    assert_eq!(
        world.health(),
        health(
            "Degraded",
            "RolloutAborted: Rollout aborted update to revision 2"
        )
    );
    assert_eq!(
        world.events_with("RolloutAborted"),
        vec!["Rollout aborted update to revision 2"]
    );
}

#[test]
fn rollback_within_the_window_is_fast_tracked() {
    let mut ro = demo_rollout("blue");
    ro["spec"]["rollbackWindow"] = json!({"revisions": 2});
    let mut world = World::new(rollout_from(ro));
    world.run(20);
    let blue = world.status().stable_rs.clone();
    // Release yellow completely (promote --full keeps the test short).
    world.set_image("yellow");
    world.run(10);
    world.edit_status(|s| s.promote_full = true);
    until(&mut world, 40, |w| {
        w.status().phase == Some(RolloutPhase::Healthy) && w.status().stable_rs != blue
    });
    let yellow = world.status().stable_rs.clone();
    // Back to blue: an older ReplicaSet within the window, so no steps and no pauses.
    world.set_image("blue");
    until(&mut world, 40, |w| {
        w.status().phase == Some(RolloutPhase::Healthy) && w.status().stable_rs == blue
    });
    assert!(
        world.events_with("RolloutStepCompleted").len() == 1,
        "only yellow's first step ran"
    );
    assert!(
        world
            .events_with("RolloutCompleted")
            .last()
            .is_some_and(|m| m.ends_with("Rollback within window"))
    );
    assert_eq!(world.size_of(&yellow), 0);
    let annotations = world
        .rs(&blue)
        .metadata
        .annotations
        .clone()
        .unwrap_or_default();
    assert_eq!(
        annotations
            .get("rollout.argoproj.io/revision")
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(
        annotations
            .get("rollout.argoproj.io/revision-history")
            .map(String::as_str),
        Some("1")
    );
}

/// The `role` label of a ReplicaSet's pod template.
fn template_role(world: &World, hash: &str) -> Option<String> {
    world
        .rs(hash)
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get("role"))
        .cloned()
}

#[test]
fn canary_and_stable_metadata_follow_the_role_of_each_replica_set() {
    let mut value = demo_rollout("blue");
    value["spec"]["strategy"]["canary"]["canaryMetadata"] = json!({"labels": {"role": "canary"}});
    value["spec"]["strategy"]["canary"]["stableMetadata"] = json!({"labels": {"role": "stable"}});
    let mut world = World::new(rollout_from(value));
    world.run(20);
    let blue = world.status().stable_rs;
    assert_eq!(template_role(&world, &blue).as_deref(), Some("stable"));

    world.set_image("yellow");
    world.run(10);
    let yellow = world.status().current_pod_hash;
    assert_eq!(template_role(&world, &yellow).as_deref(), Some("canary"));
    assert_eq!(template_role(&world, &blue).as_deref(), Some("stable"));

    // Full promotion: yellow becomes stable and takes the stable metadata; blue loses it.
    world.edit_status(|status| status.promote_full = true);
    let plans = world.run(20);
    assert_eq!(world.status().stable_rs, yellow);
    assert_eq!(template_role(&world, &yellow).as_deref(), Some("stable"));
    assert_eq!(template_role(&world, &blue), None);
    let synced: Vec<String> = plans
        .iter()
        .flat_map(|plan| &plan.writes)
        .filter_map(|write| match write {
            Write::SyncEphemeralMetadata { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        synced,
        vec![
            format!("rollouts-demo-{yellow}"),
            format!("rollouts-demo-{blue}")
        ]
    );
}
