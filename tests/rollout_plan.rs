//! Scenario tests of the canary decision core: `davy::rollout::plan` driven repeatedly over a
//! tiny in-memory world (`tests/common/world.rs`), checking ReplicaSet sizes, weights, statuses,
//! events, and how Argo CD's health check reads the status at each moment.

mod common;

use common::argocd_health::Health;
use common::world::{World, demo_rollout, rollout_from};

use davy::api::RolloutPhase;
use davy::rollout::Write;

fn health(status: &str, message: &str) -> Health {
    Health {
        status: status.to_string(),
        message: message.to_string(),
    }
}

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

/// Reconciles until `done` holds, advancing the clock one second whenever a reconcile had
/// nothing to do (pods settle at once unless the world says otherwise).
fn until(world: &mut World, max: usize, done: impl Fn(&World) -> bool) {
    for _ in 0..max {
        if done(world) {
            return;
        }
        let plan = world.reconcile();
        if plan
            .writes
            .iter()
            .all(|w| matches!(w, Write::SetTrafficWeight(_)))
        {
            world.advance(1);
        }
    }
    assert!(
        done(world),
        "condition not reached; status: {:#?}",
        world.status()
    );
}

fn sizes(world: &World, new: &str, stable: &str) -> (i32, i32) {
    (world.size_of(new), world.size_of(stable))
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
    assert_eq!(plan.writes.len(), 1, "{:?}", plan.writes);
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
// Analysis

use common::world::template;
use davy::api::AnalysisPhase;
use serde_json::json;

/// A Rollout with a step analysis (basic canary, or traffic-routed through nginx).
fn analysis_rollout(traffic: bool) -> serde_json::Value {
    let mut ro = demo_rollout("blue");
    ro["spec"]["replicas"] = json!(4);
    ro["spec"]["strategy"]["canary"] = json!({
        "steps": [
            {"setWeight": 25},
            {"analysis": {"templates": [{"templateName": "success-rate"}],
                          "args": [{"name": "service", "value": "rollouts-demo"}]}},
            {"setWeight": 75},
            {"pause": {"duration": 5}}
        ]
    });
    if traffic {
        ro["spec"]["strategy"]["canary"]["canaryService"] = json!("rollouts-demo-canary");
        ro["spec"]["strategy"]["canary"]["stableService"] = json!("rollouts-demo-stable");
        ro["spec"]["strategy"]["canary"]["trafficRouting"] =
            json!({"nginx": {"stableIngress": "rollouts-demo"}});
    }
    ro
}

fn analysis_world(traffic: bool) -> (World, String) {
    let mut world = World::new(rollout_from(analysis_rollout(traffic)));
    world.obs.analysis_templates = vec![template("success-rate")];
    if traffic {
        for name in ["rollouts-demo-canary", "rollouts-demo-stable"] {
            world.obs.services.insert(
                name.to_string(),
                common::world::service(name, "rollouts-demo"),
            );
        }
    }
    world.run(20);
    assert_eq!(world.status().phase, Some(RolloutPhase::Healthy));
    let stable = world.status().stable_rs.clone();
    world.set_image("yellow");
    (world, stable)
}

/// Walks the update to the analysis step; returns the new hash and the run's name.
fn to_analysis_step(world: &mut World) -> (String, String) {
    until(world, 30, |w| {
        w.status().current_step_index == Some(1) && !w.obs.analysis_runs.is_empty()
    });
    world.run(5);
    let yellow = world.status().current_pod_hash.clone();
    let run = world.run_names()[0].clone();
    (yellow, run)
}

#[test]
fn analysis_step_creates_a_labelled_run_and_advances_when_successful() {
    let (mut world, _blue) = analysis_world(false);
    let (yellow, name) = to_analysis_step(&mut world);
    assert_eq!(name, format!("rollouts-demo-{yellow}-2-1"));
    let run = world.obs.analysis_runs[0].clone();
    let labels = run.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("rollouts-pod-template-hash"), Some(&yellow));
    assert_eq!(labels.get("rollout-type").map(String::as_str), Some("Step"));
    assert_eq!(labels.get("step-index").map(String::as_str), Some("1"));
    assert_eq!(labels.get("app").map(String::as_str), Some("rollouts-demo"));
    let annotations = run.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("rollout.argoproj.io/revision")
            .map(String::as_str),
        Some("2")
    );
    let owner = &run.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Rollout", "uid-demo", Some(true))
    );
    let args = run.spec.args.clone().unwrap_or_default();
    assert_eq!(args[0].value.as_deref(), Some("rollouts-demo"));
    assert_eq!(run.spec.metrics[0].name, "success-rate");
    // The step waits while the run runs.
    world.set_run_phase(&name, AnalysisPhase::Running, "");
    world.run(5);
    assert_eq!(world.status().current_step_index, Some(1));
    assert_eq!(world.health().status, "Progressing");
    let step_status = world
        .status()
        .canary
        .current_step_analysis_run_status
        .clone();
    assert_eq!(
        step_status.map(|s| (s.name, s.status)),
        Some((name.clone(), AnalysisPhase::Running))
    );
    // Successful ⇒ the step completes and the rollout goes on to the end.
    world.set_run_phase(&name, AnalysisPhase::Successful, "");
    world.reconcile();
    assert_eq!(world.status().current_step_index, Some(2));
    assert_eq!(
        world.events_with("AnalysisRunSuccessful"),
        vec![format!(
            "Step Analysis Run '{name}' Status New: 'Successful' Previous: 'Running'"
        )]
    );
    until(&mut world, 40, |w| {
        w.status().phase == Some(RolloutPhase::Healthy)
    });
    assert_eq!(world.status().stable_rs, yellow);
    assert_eq!(world.obs.analysis_runs.len(), 1, "no second run");
}

#[test]
fn failed_analysis_aborts_a_basic_canary_to_degraded_and_drains_it() {
    let (mut world, blue) = analysis_world(false);
    let (yellow, name) = to_analysis_step(&mut world);
    let run_message =
        "Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)";
    world.set_run_phase(&name, AnalysisPhase::Failed, run_message);
    world.reconcile();
    let status = world.status();
    assert!(status.abort);
    assert!(status.aborted_at.is_some());
    let condition = format!(
        "Rollout aborted update to revision 2: Step-based analysis phase error/failed: {run_message}"
    );
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(status.message, format!("RolloutAborted: {condition}"));
    assert_eq!(
        world.health(),
        health("Degraded", &format!("RolloutAborted: {condition}"))
    );
    assert_eq!(world.events_with("RolloutAborted"), vec![condition.clone()]);
    let failed_events: Vec<_> = world
        .events
        .iter()
        .filter(|e| e.reason == "AnalysisRunFailed")
        .collect();
    assert_eq!(failed_events.len(), 1);
    assert_eq!(failed_events[0].type_, davy::rollout::EventType::Warning);
    // Then: index 0, canary drained, stable back to full size, and it stays Degraded.
    world.run(20);
    let status = world.status();
    assert_eq!(status.current_step_index, Some(0));
    assert_eq!(sizes(&world, &yellow, &blue), (0, 4));
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(status.message, format!("RolloutAborted: {condition}"));
    assert_eq!(world.health().status, "Degraded");
    world.advance(3600);
    world.run(5);
    assert_eq!(
        world.status().message,
        format!("RolloutAborted: {condition}")
    );
}

#[test]
fn retry_restarts_from_step_zero_with_a_new_run() {
    let (mut world, blue) = analysis_world(false);
    let (yellow, name) = to_analysis_step(&mut world);
    world.set_run_phase(&name, AnalysisPhase::Error, "");
    world.run(20);
    assert_eq!(
        world.status().message,
        "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase error/failed"
    );
    // kubectl argo rollouts retry: abort false (abortedAt stays until the controller sees it).
    world.edit_status(|s| s.abort = false);
    let plan = world.reconcile();
    assert!(plan.writes.iter().any(|w| matches!(w, Write::PatchStatus(s) if s.conditions.iter().any(|c| c.reason == "RolloutRetry"))));
    until(&mut world, 40, |w| w.obs.analysis_runs.len() == 2);
    assert_eq!(
        world.run_names()[1],
        format!("{name}.1"),
        "collision suffix for the new run"
    );
    let status = world.status();
    assert!(!status.abort);
    assert_eq!(status.aborted_at, None);
    assert_eq!(status.current_step_index, Some(1));
    // setWeight 25 of 4 pods, basic canary: 1 canary + 3 stable.
    assert_eq!(sizes(&world, &yellow, &blue), (1, 3));
    assert_eq!(world.health().status, "Progressing");
}

#[test]
fn a_new_template_clears_the_abort() {
    let (mut world, _blue) = analysis_world(false);
    let (_, name) = to_analysis_step(&mut world);
    world.set_run_phase(&name, AnalysisPhase::Failed, "bad");
    world.run(20);
    assert_eq!(world.health().status, "Degraded");
    world.set_image("green");
    world.reconcile();
    let status = world.status();
    assert!(!status.abort);
    assert_eq!(status.aborted_at, None);
    assert_eq!(status.current_step_index, Some(0));
    assert_eq!(status.canary.current_step_analysis_run_status, None);
    // As upstream, the RolloutAborted condition gives way to RolloutRetry on the next reconcile.
    world.reconcile();
    assert_eq!(world.health().status, "Progressing");
    until(&mut world, 40, |w| {
        w.status().current_step_index == Some(1) && w.obs.analysis_runs.len() == 2
    });
    let green = world.status().current_pod_hash.clone();
    assert_eq!(world.run_names()[1], format!("rollouts-demo-{green}-3-1"));
}

#[test]
fn inconclusive_analysis_pauses_until_resumed_then_runs_again() {
    let (mut world, _) = analysis_world(false);
    let (_, name) = to_analysis_step(&mut world);
    world.set_run_phase(&name, AnalysisPhase::Inconclusive, "");
    world.run(10);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Paused));
    assert_eq!(status.message, "InconclusiveAnalysisRun");
    assert_eq!(
        world.health(),
        health("Suspended", "InconclusiveAnalysisRun")
    );
    assert!(status.controller_pause);
    world.advance(600);
    world.run(5);
    assert_eq!(
        world.status().message,
        "InconclusiveAnalysisRun",
        "stays paused"
    );
    world.promote();
    until(&mut world, 20, |w| w.obs.analysis_runs.len() == 2);
    assert_eq!(world.run_names()[1], format!("{name}.1"));
    assert_eq!(world.status().current_step_index, Some(1));
}

#[test]
fn failed_background_analysis_aborts_with_its_message() {
    let mut ro = demo_rollout("blue");
    ro["spec"]["strategy"]["canary"]["analysis"] = json!({
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "service", "valueFrom": {"podTemplateHashValue": "Latest"}}],
        "startingStep": 2
    });
    let mut world = World::new(rollout_from(ro));
    world.obs.analysis_templates = vec![template("success-rate")];
    world.run(20);
    world.set_image("yellow");
    world.run(10);
    assert!(world.obs.analysis_runs.is_empty(), "before startingStep");
    world.promote();
    until(&mut world, 20, |w| !w.obs.analysis_runs.is_empty());
    let yellow = world.status().current_pod_hash.clone();
    let run = world.obs.analysis_runs[0].clone();
    assert_eq!(run.metadata.name, Some(format!("rollouts-demo-{yellow}-2")));
    let labels = run.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("rollout-type").map(String::as_str),
        Some("Background")
    );
    assert!(!labels.contains_key("step-index"));
    assert_eq!(
        run.spec.args.clone().unwrap_or_default()[0]
            .value
            .as_deref(),
        Some(yellow.as_str())
    );
    world.set_run_phase(
        &format!("rollouts-demo-{yellow}-2"),
        AnalysisPhase::Failed,
        "too many errors",
    );
    world.run(20);
    assert_eq!(
        world.status().message,
        "RolloutAborted: Rollout aborted update to revision 2: Background analysis phase error/failed: too many errors"
    );
}

#[test]
fn a_crash_between_creating_a_run_and_writing_the_status_creates_no_duplicate() {
    let (mut world, _) = analysis_world(false);
    until(&mut world, 30, |w| w.status().current_step_index == Some(1));
    // The next plan creates the run; apply only that write, as if the controller died next.
    let plan = davy::rollout::plan(&world.obs, world.now);
    let create: Vec<Write> = plan
        .writes
        .iter()
        .filter(|w| matches!(w, Write::CreateAnalysisRun(_)))
        .cloned()
        .collect();
    assert_eq!(create.len(), 1);
    world.apply(&davy::rollout::Plan {
        writes: create,
        ..Default::default()
    });
    world.set_run_phase(&world.run_names()[0].clone(), AnalysisPhase::Running, "");
    // The restarted controller adopts it instead of creating another.
    let plan = world.reconcile();
    assert!(
        !plan
            .writes
            .iter()
            .any(|w| matches!(w, Write::CreateAnalysisRun(_)))
    );
    assert_eq!(world.obs.analysis_runs.len(), 1);
    assert_eq!(
        world
            .status()
            .canary
            .current_step_analysis_run_status
            .map(|s| s.name),
        Some(world.run_names()[0].clone())
    );
}

#[test]
fn promote_full_terminates_running_analysis() {
    let (mut world, _) = analysis_world(false);
    let (_, name) = to_analysis_step(&mut world);
    world.set_run_phase(&name, AnalysisPhase::Running, "");
    world.edit_status(|s| s.promote_full = true);
    let plan = world.reconcile();
    assert!(
        plan.writes
            .contains(&Write::TerminateAnalysisRun { name: name.clone() })
    );
    until(&mut world, 30, |w| {
        w.status().phase == Some(RolloutPhase::Healthy)
    });
}

#[test]
fn run_history_keeps_five_of_each() {
    let (mut world, _) = analysis_world(false);
    let (yellow, _) = to_analysis_step(&mut world);
    // Seven old successful and seven old failed runs of this revision.
    let mut extra = Vec::new();
    for index in 0..14 {
        let mut run = world.obs.analysis_runs[0].clone();
        run.metadata.name = Some(format!("old-{index:02}"));
        run.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(1_500_000_000 + index)
                    .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            ));
        let phase = if index % 2 == 0 {
            AnalysisPhase::Successful
        } else {
            AnalysisPhase::Failed
        };
        run.status = Some(davy::api::AnalysisRunStatus {
            phase: Some(phase),
            ..Default::default()
        });
        extra.push(run);
    }
    world.obs.analysis_runs.extend(extra);
    let plan = world.reconcile();
    let mut deleted: Vec<String> = plan
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::DeleteAnalysisRun { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        vec!["old-00", "old-01", "old-02", "old-03"],
        "oldest beyond 5 + 5 (hash {yellow})"
    );
}

// ---------------------------------------------------------------------------------------------
// Traffic routing

fn weight(world: &World) -> i32 {
    world.traffic.as_ref().map_or(-1, |t| t.weight)
}

fn selector(world: &World, service: &str) -> String {
    world.obs.services[service]
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.get("rollouts-pod-template-hash"))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn traffic_routed_abort_moves_weight_to_zero_then_scales_the_canary_down_after_the_delay() {
    let (mut world, blue) = analysis_world(true);
    let (yellow, name) = to_analysis_step(&mut world);
    assert_eq!(weight(&world), 25);
    assert_eq!(
        sizes(&world, &yellow, &blue),
        (1, 4),
        "traffic routing keeps the stable at full size"
    );
    assert_eq!(selector(&world, "rollouts-demo-canary"), yellow);
    assert_eq!(selector(&world, "rollouts-demo-stable"), blue);
    let weights = world
        .status()
        .canary
        .weights
        .clone()
        .expect("weights recorded");
    assert_eq!((weights.canary.weight, weights.stable.weight), (25, 75));
    assert_eq!(weights.canary.pod_template_hash, yellow);
    assert_eq!(weights.stable.service_name, "rollouts-demo-stable");

    world.set_run_phase(&name, AnalysisPhase::Failed, "error rate too high");
    world.reconcile();
    assert_eq!(world.health().status, "Degraded");
    // Next reconcile: weight 0 at once, canary Service back on the stable pods, canary kept up
    // with a scale-down deadline 30 s out.
    world.reconcile();
    assert_eq!(weight(&world), 0);
    assert_eq!(selector(&world, "rollouts-demo-canary"), blue);
    assert_eq!(world.size_of(&yellow), 1);
    let deadline = world
        .rs(&yellow)
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("scale-down-deadline").cloned())
        .expect("deadline set");
    let expected = (world.now + chrono::Duration::seconds(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(deadline, expected);
    world.run(10);
    world.advance(29);
    world.run(10);
    assert_eq!(
        world.size_of(&yellow),
        1,
        "still inside abortScaleDownDelaySeconds"
    );
    world.advance(1);
    world.run(10);
    assert_eq!(world.size_of(&yellow), 0);
    assert_eq!(world.size_of(&blue), 4);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        status.message,
        "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase error/failed: error rate too high"
    );
    assert_eq!(weight(&world), 0);
}

#[test]
fn traffic_weight_never_outruns_available_canary_pods() {
    let (mut world, blue) = analysis_world(true);
    world.auto_ready = false;
    // Revision 2's ReplicaSet gets created and scaled, but its pods are not available yet.
    for _ in 0..6 {
        world.reconcile();
        world.settle_with(|name, desired| if name.ends_with(&blue) { desired } else { 0 });
    }
    let yellow = world.status().current_pod_hash.clone();
    assert_eq!(world.size_of(&yellow), 1);
    assert_eq!(
        weight(&world),
        0,
        "no available canary pod, no canary traffic"
    );
    assert_eq!(world.status().current_step_index, Some(0));
    world.settle();
    world.run(10);
    assert_eq!(weight(&world), 25);
}

#[test]
fn promoted_traffic_routed_rollout_keeps_the_old_stable_for_the_scale_down_delay() {
    let (mut world, blue) = analysis_world(true);
    let (yellow, name) = to_analysis_step(&mut world);
    world.set_run_phase(&name, AnalysisPhase::Successful, "");
    until(&mut world, 60, |w| {
        w.status().stable_rs == yellow && w.status().phase == Some(RolloutPhase::Healthy)
    });
    world.run(10);
    assert_eq!(selector(&world, "rollouts-demo-stable"), yellow);
    assert_eq!(
        weight(&world),
        0,
        "everything goes to the stable Service, which is the new pods"
    );
    assert_eq!(world.size_of(&yellow), 4);
    assert_eq!(
        world.size_of(&blue),
        4,
        "previous stable kept for scaleDownDelaySeconds"
    );
    assert_eq!(world.health(), health("Healthy", ""));
    world.advance(31);
    world.run(10);
    assert_eq!(world.size_of(&blue), 0);
}

#[test]
fn header_routing_seed_variant_gets_one_canary_pod_and_no_weight() {
    let mut ro = demo_rollout("blue");
    ro["spec"]["strategy"]["canary"] = json!({
        "canaryService": "rollouts-demo-canary",
        "stableService": "rollouts-demo-stable",
        "steps": [{"setCanaryScale": {"replicas": 1}}, {"pause": {}}],
        "trafficRouting": {"nginx": {"stableIngress": "user-profile-ingress",
            "additionalIngressAnnotations": {"canary-by-header": "X-Canary", "canary-by-header-value": "iwantsit"}}}
    });
    let mut world = World::new(rollout_from(ro));
    for name in ["rollouts-demo-canary", "rollouts-demo-stable"] {
        world.obs.services.insert(
            name.to_string(),
            common::world::service(name, "rollouts-demo"),
        );
    }
    world.run(20);
    let blue = world.status().stable_rs.clone();
    world.set_image("yellow");
    world.run(20);
    let yellow = world.status().current_pod_hash.clone();
    assert_eq!(sizes(&world, &yellow, &blue), (1, 2));
    assert_eq!(weight(&world), 0);
    assert_eq!(world.status().current_step_index, Some(1));
    assert_eq!(world.health(), health("Suspended", "CanaryPauseStep"));
    assert_eq!(selector(&world, "rollouts-demo-canary"), yellow);
    world.advance(3600);
    world.run(5);
    assert_eq!(
        world.status().current_step_index,
        Some(1),
        "pause {{}} holds"
    );
    world.promote();
    until(&mut world, 40, |w| {
        w.status().phase == Some(RolloutPhase::Healthy) && w.status().stable_rs == yellow
    });
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
