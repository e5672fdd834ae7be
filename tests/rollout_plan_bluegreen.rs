//! Scenario tests of the blue-green decision core: `davy::rollout::plan` driven repeatedly over
//! the tiny in-memory world (`tests/common/world.rs`), checking ReplicaSet sizes, the active and
//! preview Service selectors, pauses, analysis, statuses, events, and how Argo CD's health
//! check reads the status at each moment.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::world::{World, health, rollout_from, service, template, until};

use davy::api::{AnalysisPhase, PauseReason, RolloutPhase};
use serde_json::{Value, json};

const ACTIVE: &str = "bg-active";
const PREVIEW: &str = "bg-preview";

/// A blue-green Rollout of `replicas` pods with this `blueGreen` block (active and preview
/// Services added) and image tag.
fn bg_rollout(image: &str, replicas: i32, blue_green: Value) -> Value {
    let mut strategy = json!({"activeService": ACTIVE, "previewService": PREVIEW});
    if let (Some(target), Some(extra)) = (strategy.as_object_mut(), blue_green.as_object()) {
        target.extend(extra.clone());
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "bg", "namespace": "default", "uid": "uid-bg", "generation": 1},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app": "bg"}},
            "strategy": {"blueGreen": strategy},
            "template": {
                "metadata": {"labels": {"app": "bg"}},
                "spec": {"containers": [{"name": "app", "image": format!("argoproj/rollouts-demo:{image}")}]}
            }
        }
    })
}

/// Deploys revision 1 and returns the world and the first (blue) hash.
fn deployed(replicas: i32, blue_green: Value) -> (World, String) {
    let mut world = World::new(rollout_from(bg_rollout("blue", replicas, blue_green)));
    world
        .obs
        .services
        .insert(ACTIVE.into(), service(ACTIVE, "bg"));
    world
        .obs
        .services
        .insert(PREVIEW.into(), service(PREVIEW, "bg"));
    world.run(20);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy), "{status:#?}");
    let blue = status.stable_rs.clone();
    assert!(!blue.is_empty());
    (world, blue)
}

fn selector(world: &World, service: &str) -> String {
    world.obs.services[service]
        .spec
        .as_ref()
        .and_then(|spec| spec.selector.as_ref())
        .and_then(|selector| selector.get("rollouts-pod-template-hash"))
        .cloned()
        .unwrap_or_default()
}

fn managed_by(world: &World, service: &str) -> Option<String> {
    world.obs.services[service]
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("argo-rollouts.argoproj.io/managed-by-rollouts"))
        .cloned()
}

fn has_deadline(world: &World, hash: &str) -> bool {
    world
        .rs(hash)
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("scale-down-deadline"))
}

#[test]
fn initial_deploy_points_both_services_at_the_first_replica_set() {
    let (world, blue) = deployed(3, json!({}));
    let status = world.status();
    assert_eq!(world.size_of(&blue), 3);
    assert_eq!(selector(&world, ACTIVE), blue);
    assert_eq!(selector(&world, PREVIEW), blue);
    assert_eq!(managed_by(&world, ACTIVE).as_deref(), Some("bg"));
    assert_eq!(managed_by(&world, PREVIEW).as_deref(), Some("bg"));
    assert_eq!(status.blue_green.active_selector, blue);
    assert_eq!(status.blue_green.preview_selector, blue);
    assert_eq!(status.current_step_index, None);
    assert_eq!(status.current_step_hash, "");
    assert_eq!(
        status.selector,
        format!("app=bg,rollouts-pod-template-hash={blue}")
    );
    assert_eq!(world.health(), health("Healthy", ""));
    assert_eq!(
        world.events_with("RolloutCompleted"),
        vec![format!(
            "Rollout completed update to revision 1 ({blue}): Initial deploy"
        )]
    );
    let healthy = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Healthy")
        .unwrap();
    assert_eq!(healthy.status, "True");
    let available = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(available.status, "True");
}

#[test]
fn manual_promotion_pauses_switches_and_scales_down_after_the_delay() {
    let (mut world, blue) = deployed(2, json!({"autoPromotionEnabled": false}));
    world.set_image("green");
    world.run(20);
    let status = world.status();
    let green = status.current_pod_hash.clone();
    assert_ne!(green, blue);
    // The preview gets the new pods; the active keeps the old ones.
    assert_eq!((world.size_of(&green), world.size_of(&blue)), (2, 2));
    assert_eq!(selector(&world, PREVIEW), green);
    assert_eq!(selector(&world, ACTIVE), blue);
    assert_eq!(status.phase, Some(RolloutPhase::Paused));
    assert_eq!(status.message, "BlueGreenPause");
    assert_eq!(
        status
            .pause_conditions
            .iter()
            .map(|c| c.reason.clone())
            .collect::<Vec<_>>(),
        vec![PauseReason::BlueGreenPause]
    );
    assert!(status.controller_pause);
    assert_eq!(status.stable_rs, blue);
    assert_eq!(world.health(), health("Suspended", "BlueGreenPause"));
    assert_eq!(
        world.events_with("RolloutPaused"),
        vec!["Rollout is paused (BlueGreenPause)".to_string()]
    );

    world.promote();
    world.run(20);
    let status = world.status();
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(status.stable_rs, green);
    assert_eq!(status.blue_green.active_selector, green);
    assert!(status.pause_conditions.is_empty());
    assert_eq!(
        world.events_with("RolloutCompleted").last().unwrap(),
        &format!("Rollout completed update to revision 2 ({green}): Completed blue-green update")
    );
    assert!(world.events_with("SwitchService").contains(&format!(
        "Switched selector for service '{ACTIVE}' from '{blue}' to '{green}'"
    )));
    // The old stack stays up for scaleDownDelaySeconds (30 s) in case of a fast rollback.
    assert_eq!(world.size_of(&blue), 2);
    assert!(has_deadline(&world, &blue));
    assert_eq!(world.health(), health("Healthy", ""));
    world.advance(29);
    world.run(5);
    assert_eq!(world.size_of(&blue), 2);
    world.advance(2);
    world.run(5);
    assert_eq!(world.size_of(&blue), 0);
    assert!(!has_deadline(&world, &blue));
    assert_eq!(world.status().available_replicas, 2);
    assert_eq!(world.health(), health("Healthy", ""));
}

#[test]
fn auto_promotion_seconds_pause_then_promote_by_themselves() {
    let (mut world, blue) = deployed(1, json!({"autoPromotionSeconds": 20}));
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash.clone();
    assert_eq!(world.status().message, "BlueGreenPause");
    assert_eq!(selector(&world, ACTIVE), blue);
    let plan = world.reconcile();
    let wait = plan.requeue_after.expect("requeue at the end of the pause");
    assert!(wait.as_secs() <= 21, "{wait:?}");
    world.advance(10);
    world.run(5);
    assert_eq!(selector(&world, ACTIVE), blue);
    world.advance(11);
    world.run(20);
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(world.status().stable_rs, green);
    assert!(world.status().pause_conditions.is_empty());
    assert_eq!(world.health(), health("Healthy", ""));
}

#[test]
fn without_a_pause_the_switch_follows_readiness() {
    let (mut world, blue) = deployed(2, json!({}));
    world.auto_ready = false;
    world.set_image("green");
    world.reconcile();
    world.reconcile();
    let green = world.status().current_pod_hash.clone();
    assert_eq!(world.size_of(&green), 2);
    // Not yet available: the active Service stays on blue and Argo CD shows Progressing.
    assert_eq!(selector(&world, ACTIVE), blue);
    assert_eq!(selector(&world, PREVIEW), green);
    assert_eq!(world.health().status, "Progressing");
    world.settle();
    world.run(20);
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(world.status().stable_rs, green);
    assert_eq!(world.health(), health("Healthy", ""));
}

fn with_analysis(world: &mut World) {
    world.obs.analysis_templates.push(template("success-rate"));
}

#[test]
fn failing_pre_promotion_analysis_aborts_and_never_switches_the_active_service() {
    let analysis = json!({"prePromotionAnalysis": {
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "service", "value": PREVIEW}]}});
    let (mut world, blue) = deployed(2, analysis);
    with_analysis(&mut world);
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash.clone();
    let runs = world.run_names();
    let pre = format!("bg-{green}-2-pre");
    assert_eq!(runs, vec![pre.clone()]);
    let run = world
        .obs
        .analysis_runs
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(pre.as_str()))
        .unwrap();
    assert_eq!(
        run.metadata
            .labels
            .as_ref()
            .unwrap()
            .get("rollout-type")
            .map(String::as_str),
        Some("PrePromotion")
    );
    assert_eq!(selector(&world, ACTIVE), blue);
    assert_eq!(world.health().status, "Progressing");
    assert_eq!(
        world
            .status()
            .blue_green
            .pre_promotion_analysis_run_status
            .as_ref()
            .map(|s| s.name.clone()),
        Some(pre.clone())
    );

    world.set_run_phase(
        &pre,
        AnalysisPhase::Failed,
        "metric \"success-rate\" assessed Failed",
    );
    world.run(20);
    let status = world.status();
    assert!(status.abort);
    assert_eq!(selector(&world, ACTIVE), blue);
    assert_eq!(status.stable_rs, blue);
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    let message = "RolloutAborted: Rollout aborted update to revision 2: Blue/green pre-promotion analysis phase error/failed: metric \"success-rate\" assessed Failed";
    assert_eq!(status.message, message);
    assert_eq!(world.health(), health("Degraded", message));
    // The preview stays up for abortScaleDownDelaySeconds (30 s), then goes away.
    assert_eq!(world.size_of(&green), 2);
    assert!(has_deadline(&world, &green));
    world.advance(31);
    world.run(10);
    assert_eq!(world.size_of(&green), 0);
    assert_eq!(world.size_of(&blue), 2);
    assert_eq!(selector(&world, ACTIVE), blue);
    assert!(!world.events_with("RolloutAborted").is_empty());
}

#[test]
fn failing_post_promotion_analysis_switches_the_active_service_back() {
    let analysis = json!({"postPromotionAnalysis": {
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "service", "value": ACTIVE}]}});
    let (mut world, blue) = deployed(2, analysis);
    with_analysis(&mut world);
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash.clone();
    // Switched, but not stable until the post-promotion run succeeds.
    assert_eq!(selector(&world, ACTIVE), green);
    let status = world.status();
    assert_eq!(status.stable_rs, blue);
    assert_eq!(status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(status.message, "waiting for analysis to complete");
    assert_eq!(
        world.health(),
        health("Progressing", "waiting for analysis to complete")
    );
    let post = format!("bg-{green}-2-post");
    assert_eq!(world.run_names(), vec![post.clone()]);
    // The old stack is kept while the analysis runs.
    assert_eq!(world.size_of(&blue), 2);

    world.set_run_phase(&post, AnalysisPhase::Failed, "");
    world.run(20);
    let status = world.status();
    assert!(status.abort);
    assert_eq!(selector(&world, ACTIVE), blue);
    assert_eq!(status.stable_rs, blue);
    assert_eq!(
        status.message,
        "RolloutAborted: Rollout aborted update to revision 2: Blue/green post-promotion analysis phase error/failed"
    );
    assert_eq!(world.health().status, "Degraded");
    assert_eq!(world.size_of(&blue), 2);
}

#[test]
fn successful_post_promotion_analysis_completes_the_update() {
    let analysis = json!({"postPromotionAnalysis": {
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "service", "value": ACTIVE}]}});
    let (mut world, _blue) = deployed(2, analysis);
    with_analysis(&mut world);
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash.clone();
    world.set_run_phase(&format!("bg-{green}-2-post"), AnalysisPhase::Successful, "");
    world.run(20);
    assert_eq!(world.status().stable_rs, green);
    assert_eq!(world.health(), health("Healthy", ""));
}

#[test]
fn preview_replica_count_keeps_the_preview_small_until_promoted() {
    let (mut world, blue) = deployed(
        4,
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1}),
    );
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash.clone();
    assert_eq!((world.size_of(&green), world.size_of(&blue)), (1, 4));
    assert_eq!(world.status().message, "BlueGreenPause");
    world.promote();
    // Resumed: the checkpoint is set while the active still selects blue, the preview grows
    // to 4, then the active switches.
    until(&mut world, 5, |w| {
        w.status().blue_green.scale_up_preview_check_point
    });
    assert_eq!(selector(&world, ACTIVE), blue);
    world.run(20);
    assert_eq!(world.size_of(&green), 4);
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(world.status().stable_rs, green);
    assert!(!world.status().blue_green.scale_up_preview_check_point);
    assert_eq!(world.health(), health("Healthy", ""));
}

#[test]
fn a_spec_replicas_change_mid_rollout_resizes_both_stacks() {
    let (mut world, blue) = deployed(2, json!({"autoPromotionEnabled": false}));
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash.clone();
    assert_eq!(world.status().message, "BlueGreenPause");
    world.edit_spec(|ro| ro.spec.replicas = Some(5));
    world.run(20);
    assert_eq!((world.size_of(&green), world.size_of(&blue)), (5, 5));
    let status = world.status();
    // Counts follow the active ReplicaSet.
    assert_eq!(status.available_replicas, 5);
    assert_eq!(status.hpa_replicas, 5);
    assert_eq!(status.message, "BlueGreenPause");
    world.promote();
    world.run(20);
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(world.health(), health("Healthy", ""));
}

#[test]
fn user_abort_keeps_the_active_on_stable_and_retry_resumes() {
    let (mut world, blue) = deployed(2, json!({"autoPromotionEnabled": false}));
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash.clone();
    world.edit_status(|s| s.abort = true);
    world.run(20);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        status.message,
        "RolloutAborted: Rollout aborted update to revision 2"
    );
    assert!(status.pause_conditions.is_empty());
    assert_eq!(selector(&world, ACTIVE), blue);
    world.advance(31);
    world.run(10);
    assert_eq!(world.size_of(&green), 0);
    // Retry: the preview comes back and the rollout pauses again.
    world.edit_status(|s| s.abort = false);
    world.run(20);
    assert_eq!(world.size_of(&green), 2);
    assert_eq!(world.status().message, "BlueGreenPause");
    assert_eq!(world.health(), health("Suspended", "BlueGreenPause"));
}

#[test]
fn full_promotion_skips_the_pause_and_the_analysis() {
    let analysis = json!({"autoPromotionEnabled": false, "prePromotionAnalysis": {
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "service", "value": PREVIEW}]}});
    let (mut world, _blue) = deployed(2, analysis);
    with_analysis(&mut world);
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash.clone();
    world.edit_status(|s| s.promote_full = true);
    world.run(20);
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(world.status().stable_rs, green);
    assert!(!world.status().promote_full);
    assert!(
        world
            .events_with("RolloutCompleted")
            .last()
            .unwrap()
            .ends_with("Full promotion requested")
    );
    // The pre-promotion run was terminated.
    assert!(
        world
            .obs
            .analysis_runs
            .iter()
            .all(|r| r.spec.terminate == Some(true))
    );
}

#[test]
fn going_back_within_the_scale_down_delay_is_a_fast_rollback() {
    let (mut world, blue) = deployed(2, json!({"autoPromotionEnabled": false}));
    world.set_image("green");
    world.run(20);
    world.promote();
    world.run(20);
    let green = world.status().stable_rs.clone();
    assert!(has_deadline(&world, &blue));
    // `undo`: the template goes back to blue while blue is still up.
    world.set_image("blue");
    world.run(20);
    let status = world.status();
    assert_eq!(status.current_pod_hash, blue);
    assert_eq!(selector(&world, ACTIVE), blue);
    assert_eq!(status.stable_rs, blue);
    assert!(
        status.pause_conditions.is_empty(),
        "no pause on a fast rollback"
    );
    assert!(
        world
            .events_with("RolloutCompleted")
            .last()
            .unwrap()
            .ends_with("Fast rollback")
    );
    assert!(!has_deadline(&world, &blue));
    assert!(has_deadline(&world, &green));
    assert_eq!(world.health(), health("Healthy", ""));
}

#[test]
fn old_revisions_beyond_the_history_limit_are_deleted() {
    let (mut world, _blue) = deployed(1, json!({"scaleDownDelaySeconds": 0}));
    for image in ["c1", "c2", "c3", "c4", "c5"] {
        world.set_image(image);
        world.run(20);
    }
    // revisionHistoryLimit 3: the new ReplicaSet plus at most 3 old ones.
    assert_eq!(world.obs.replica_sets.len(), 4);
    assert_eq!(world.health(), health("Healthy", ""));
}

/// The pod template's labels and annotations and the ephemeral-metadata record of a stack.
fn template_meta(
    world: &World,
    hash: &str,
) -> (
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeMap<String, String>,
    Option<String>,
) {
    let rs = world.rs(hash);
    let meta = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.clone())
        .unwrap_or_default();
    let record = rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("rollout.argoproj.io/ephemeral-metadata"))
        .cloned();
    (
        meta.labels.unwrap_or_default(),
        meta.annotations.unwrap_or_default(),
        record,
    )
}

/// One ephemeral-metadata sync: (ReplicaSet, label changes, pods relabelled).
type Sync = (String, Vec<(String, Option<String>)>, bool);

/// The ephemeral-metadata syncs of these plans.
fn metadata_syncs(plans: &[davy::rollout::Plan]) -> Vec<Sync> {
    plans
        .iter()
        .flat_map(|plan| &plan.writes)
        .filter_map(|write| match write {
            davy::rollout::Write::SyncEphemeralMetadata {
                name,
                template,
                pods,
                ..
            } => Some((
                name.clone(),
                template
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                *pods,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn ephemeral_metadata_moves_with_the_role_at_promotion() {
    let (mut world, blue) = deployed(
        2,
        json!({
            "autoPromotionEnabled": false,
            "activeMetadata": {"labels": {"role": "active"}},
            "previewMetadata": {"labels": {"role": "preview"}, "annotations": {"stage": "review"}}
        }),
    );
    let active_record = r#"{"labels":{"role":"active"}}"#.to_string();
    // The first stack is active at once.
    let (labels, _, record) = template_meta(&world, &blue);
    assert_eq!(labels.get("role").map(String::as_str), Some("active"));
    assert_eq!(record.as_deref(), Some(active_record.as_str()));

    world.set_image("green");
    let plans = world.run(20);
    let green = world.status().current_pod_hash;
    // The preview stack is created with the preview metadata; nobody changed role yet.
    let (labels, annotations, _) = template_meta(&world, &green);
    assert_eq!(labels.get("role").map(String::as_str), Some("preview"));
    assert_eq!(annotations.get("stage").map(String::as_str), Some("review"));
    assert_eq!(metadata_syncs(&plans), Vec::new());
    assert_eq!(world.status().phase, Some(RolloutPhase::Paused));

    world.promote();
    let plans = world.run(20);
    assert_eq!(world.status().stable_rs, green);
    // Green is now the active stack: its template (and its running pods) carry the active
    // metadata and lose the preview-only keys; blue loses what was injected into it.
    let (labels, annotations, record) = template_meta(&world, &green);
    assert_eq!(labels.get("role").map(String::as_str), Some("active"));
    assert_eq!(labels.get("app").map(String::as_str), Some("bg"));
    assert!(!annotations.contains_key("stage"), "{annotations:?}");
    assert_eq!(record.as_deref(), Some(active_record.as_str()));
    let (labels, _, record) = template_meta(&world, &blue);
    assert!(!labels.contains_key("role"), "{labels:?}");
    assert_eq!(labels.get("app").map(String::as_str), Some("bg"));
    assert_eq!(record, None);
    // One sync per stack, each relabelling its running pods (blue is still scaled up).
    assert_eq!(
        metadata_syncs(&plans),
        vec![
            (
                format!("bg-{green}"),
                vec![("role".to_string(), Some("active".to_string()))],
                true
            ),
            (format!("bg-{blue}"), vec![("role".to_string(), None)], true),
        ]
    );
    // Once in line, nothing more is written.
    let plans = world.run(5);
    assert_eq!(metadata_syncs(&plans), Vec::new());
}

#[test]
fn without_ephemeral_metadata_nothing_is_synced() {
    let (mut world, _) = deployed(1, json!({}));
    world.set_image("green");
    let mut plans = world.run(20);
    world.advance(31);
    plans.extend(world.run(20));
    assert_eq!(metadata_syncs(&plans), Vec::new());
}

/// Business hours, Monday to Friday 09:00–17:00 UTC (Davy's promotion windows).
const BUSINESS_HOURS: &str = r#"[{"schedule": "0 9 * * 1-5", "duration": "8h"}]"#;
/// Friday 2026-11-27 18:00 UTC: after business hours; the next window opens on Monday.
const FRIDAY_EVENING: &str = "2026-11-27T18:00:00Z";
const MONDAY_MORNING: &str = "2026-11-30T09:00:00Z";
const WAITING: &str = "Waiting for promotion window: next opens at 2026-11-30T09:00:00Z";

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&chrono::Utc)
}

/// Revision 1 deployed at `now` with business-hour windows (a first deploy is never held);
/// the world and the blue hash.
fn deployed_with_windows(now: &str, blue_green: Value) -> (World, String) {
    let mut value = bg_rollout("blue", 2, blue_green);
    value["metadata"]["annotations"] = json!({"davy.dev/promotion-windows": BUSINESS_HOURS});
    let mut world = World::new(rollout_from(value));
    world.now = at(now);
    for name in [ACTIVE, PREVIEW] {
        world.obs.services.insert(name.into(), service(name, "bg"));
    }
    with_analysis(&mut world);
    world.run(20);
    assert_eq!(world.status().phase, Some(RolloutPhase::Healthy));
    let blue = world.status().stable_rs;
    (world, blue)
}

/// The pre-promotion run of the current revision succeeds.
fn pass_pre(world: &mut World) {
    let green = world.status().current_pod_hash;
    world.set_run_phase(&format!("bg-{green}-2-pre"), AnalysisPhase::Successful, "");
}

#[test]
fn outside_a_promotion_window_blue_green_waits_before_the_switch() {
    let pre = json!({"prePromotionAnalysis": {"templates": [{"templateName": "success-rate"}],
                                              "args": [{"name": "service", "value": PREVIEW}]}});
    let mut pre_and_manual = pre.clone();
    pre_and_manual["autoPromotionEnabled"] = json!(false);
    // (case, blueGreen, what happens outside the window before the promotion would come,
    //  BlueGreenPause still present while held)
    type Step = fn(&mut World);
    let nothing: Step = |_| {};
    let promote: Step = |w| w.promote();
    let seconds_pass: Step = |w| w.advance(31);
    let cases: [(&str, Value, Step, bool); 5] = [
        ("automatic promotion", json!({}), nothing, false),
        (
            "autoPromotionSeconds passed",
            json!({"autoPromotionSeconds": 30}),
            seconds_pass,
            true,
        ),
        (
            "a user promote",
            json!({"autoPromotionEnabled": false}),
            promote,
            false,
        ),
        ("a successful pre-promotion analysis", pre, pass_pre, false),
        (
            "pre-promotion analysis, then a user promote",
            pre_and_manual,
            |w| {
                pass_pre(w);
                w.run(10);
                w.promote();
            },
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (case, blue_green, before, paused) in cases {
        let (mut world, blue) = deployed_with_windows(FRIDAY_EVENING, blue_green);
        world.set_image("green");
        world.run(20);
        before(&mut world);
        let plans = world.run(20);
        let status = world.status();
        let green = status.current_pod_hash.clone();
        let still_paused = status
            .pause_conditions
            .iter()
            .any(|c| c.reason == PauseReason::BlueGreenPause);
        let held = (
            selector(&world, ACTIVE) == blue,
            selector(&world, PREVIEW) == green,
            status.stable_rs == blue,
            status.phase,
            status.message.clone(),
            still_paused,
            world.health(),
            plans.last().and_then(|plan| plan.requeue_after),
        );
        let want = (
            true,
            true,
            true,
            Some(RolloutPhase::Paused),
            WAITING.to_string(),
            paused,
            health("Suspended", WAITING),
            // Friday 18:00 (plus the 31 s some cases waited) to Monday 09:00.
            Some(std::time::Duration::from_secs(63 * 3600)),
        );
        let mut want = want;
        if case == "autoPromotionSeconds passed" {
            want.7 = Some(std::time::Duration::from_secs(63 * 3600 - 31));
        }
        if held != want {
            failures.push(format!("{case}: held as {held:?}, want {want:?}"));
            continue;
        }
        // The window opens: the switch and the promotion follow at once.
        world.now = at(MONDAY_MORNING);
        world.run(20);
        let status = world.status();
        let released = (
            selector(&world, ACTIVE) == green,
            status.stable_rs == green,
            status.phase,
        );
        if released != (true, true, Some(RolloutPhase::Healthy)) {
            failures.push(format!("{case}: released as {released:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn outside_a_promotion_window_a_successful_post_promotion_analysis_waits() {
    let post = json!({"postPromotionAnalysis": {"templates": [{"templateName": "success-rate"}],
                                                "args": [{"name": "service", "value": ACTIVE}]}});
    // The switch happens inside Friday's window...
    let (mut world, blue) = deployed_with_windows("2026-11-27T16:59:00Z", post);
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash;
    assert_eq!(selector(&world, ACTIVE), green);
    let post_run = format!("bg-{green}-2-post");
    assert_eq!(world.run_names(), vec![post_run.clone()]);
    // ...its analysis succeeds after the window closed: the new stack does not become stable.
    world.now = at("2026-11-27T17:00:01Z");
    world.set_run_phase(&post_run, AnalysisPhase::Successful, "");
    world.run(20);
    let status = world.status();
    assert_eq!(status.stable_rs, blue);
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(world.size_of(&blue), 2, "the previous stack stays up");
    assert_eq!(
        (status.phase, status.message.as_str()),
        (Some(RolloutPhase::Paused), WAITING)
    );
    world.now = at(MONDAY_MORNING);
    world.run(20);
    let status = world.status();
    assert_eq!(status.stable_rs, green);
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn outside_a_promotion_window_aborts_and_full_promotion_still_happen() {
    // An abort while held: the active Service never moves, the preview stack goes.
    let (mut world, blue) = deployed_with_windows(FRIDAY_EVENING, json!({}));
    world.set_image("green");
    world.run(20);
    assert_eq!(world.status().message, WAITING);
    world.edit_status(|status| status.abort = true);
    world.run(20);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(selector(&world, ACTIVE), blue);
    assert_eq!(status.stable_rs, blue);

    // promote --full overrides the windows.
    let (mut world, _) =
        deployed_with_windows(FRIDAY_EVENING, json!({"autoPromotionEnabled": false}));
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash;
    world.edit_status(|status| status.promote_full = true);
    world.run(20);
    let status = world.status();
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(status.stable_rs, green);
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));

    // Inside a window nothing is held.
    let (mut world, _) = deployed_with_windows("2026-11-27T10:00:00Z", json!({}));
    world.set_image("green");
    world.run(20);
    let green = world.status().current_pod_hash;
    assert_eq!(selector(&world, ACTIVE), green);
    assert_eq!(world.status().phase, Some(RolloutPhase::Healthy));
}
