//! Scenario tests of the Rollout side of analysis and of traffic routing: step and background
//! runs, abort, retry, Inconclusive pauses, run history, weights and Services, driven through
//! `davy::rollout::plan` over the in-memory world of `tests/common/world.rs`.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::world::{World, demo_rollout, health, rollout_from, sizes, template, until};
use davy::api::{AnalysisPhase, RolloutPhase};
use davy::rollout::Write;
use serde_json::json;
// ---------------------------------------------------------------------------------------------
// Analysis

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

/// Not a test: prints the CPU time of one `plan()` for a traffic-routed Rollout in the middle
/// of an analysis step (`cargo test --test rollout_plan_analysis -- --ignored --nocapture`).
#[test]
#[ignore]
fn bench_plan_cpu_per_reconcile() {
    let (mut world, _) = analysis_world(true);
    let (_, name) = to_analysis_step(&mut world);
    world.set_run_phase(&name, AnalysisPhase::Running, "");
    world.run(5);
    let rounds: u32 = 2_000;
    let started = std::time::Instant::now();
    let mut writes = 0;
    for _ in 0..rounds {
        writes += davy::rollout::plan(&world.obs, world.now).writes.len();
    }
    let per_plan = started.elapsed() / rounds;
    println!("plan(): {per_plan:?} per reconcile ({rounds} rounds, {writes} writes in total)");
}
