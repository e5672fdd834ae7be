//! Promotion windows (`davy.dev/promotion-windows`) with a fixed clock: the annotation's format
//! (valid and invalid values with their exact messages), `is_open`/`next_open` across window
//! edges, and the canary plan held at pause and analysis steps outside every window.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use chrono::{DateTime, Utc};
use common::world::{World, demo_rollout, health, rollout_from, sizes, template, until};
use davy::api::{AnalysisPhase, PauseReason, RolloutPhase};
use davy::rollout::windows::{PromotionWindows, WindowKind, is_open, next_open, parse};
use serde_json::{Value, json};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

fn windows(text: &str) -> PromotionWindows {
    parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

// ---------------------------------------------------------------------------------------------
// Format

/// A parsed window: kind, schedule as written, duration in seconds.
type Expected<'a> = (WindowKind, &'a str, i64);

#[test]
fn valid_annotations_parse() {
    // (text, [(kind, schedule, duration seconds)])
    let cases: Vec<(&str, Vec<Expected>)> = vec![
        ("", vec![]),
        ("  ", vec![]),
        ("[]", vec![]),
        (
            r#"[{"schedule": "0 9 * * 1-5", "duration": "8h"}]"#,
            vec![(WindowKind::Allow, "0 9 * * 1-5", 8 * 3600)],
        ),
        (
            "- schedule: '0 9 * * mon-fri'\n  duration: 8h30m\n  timeZone: UTC\n- kind: deny\n  schedule: '0 0 24 12 *'\n  duration: 48h\n",
            vec![
                (WindowKind::Allow, "0 9 * * mon-fri", 8 * 3600 + 1800),
                (WindowKind::Deny, "0 0 24 12 *", 48 * 3600),
            ],
        ),
        (
            r#"[{"kind": "allow", "schedule": "*/20 * * * * *", "duration": "10s", "timeZone": "Etc/UTC"}]"#,
            vec![(WindowKind::Allow, "*/20 * * * * *", 10)],
        ),
        (
            r#"[{"schedule": "@daily", "duration": "1h"}]"#,
            vec![(WindowKind::Allow, "@daily", 3600)],
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in &cases {
        match parse(text) {
            Ok(parsed) => {
                let got: Vec<Expected> = parsed
                    .windows
                    .iter()
                    .map(|w| (w.kind, w.schedule.as_str(), w.duration.num_seconds()))
                    .collect();
                if &got != expected {
                    failures.push(format!("{text:?}: got {got:?}, want {expected:?}"));
                }
            }
            Err(error) => failures.push(format!("{text:?}: unexpected error {error}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    println!("valid window annotations: {} passed", cases.len());
}

#[test]
fn invalid_annotations_name_the_annotation_and_the_problem() {
    let root = "metadata.annotations[davy.dev/promotion-windows]";
    let cases: Vec<(&str, String)> = vec![
        (
            r#"{"schedule": "0 9 * * *", "duration": "8h"}"#,
            format!(
                r#"{root}: Invalid value: "{{\"schedule\": \"0 9 * * *\", \"duration\": \"8h\"}}": must be a list of windows, e.g. [{{"schedule": "0 9 * * 1-5", "duration": "8h"}}]"#
            ),
        ),
        (
            "[1]",
            format!(
                r#"{root}[0]: Invalid value: "1": must be an object with schedule and duration"#
            ),
        ),
        (
            r#"[{"schedule": "0 9 * *", "duration": "8h"}]"#,
            format!(
                r#"{root}[0].schedule: Invalid value: "0 9 * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), found 4"#
            ),
        ),
        (
            r#"[{"schedule": "0 9 * * 1-5"}]"#,
            format!("{root}[0].duration: Required value"),
        ),
        (
            r#"[{"duration": "1h"}]"#,
            format!("{root}[0].schedule: Required value"),
        ),
        (
            r#"[{"schedule": "0 9 * * *", "duration": "1h"}, {"schedule": " ", "duration": "1h"}]"#,
            format!("{root}[1].schedule: Required value"),
        ),
        (
            r#"[{"schedule": "0 9 * * *", "duration": "8 hours"}]"#,
            format!(
                r#"{root}[0].duration: Invalid value: "8 hours": must be a duration such as "8h" or "90m""#
            ),
        ),
        (
            r#"[{"schedule": "0 9 * * *", "duration": "0s"}]"#,
            format!(r#"{root}[0].duration: Invalid value: "0s": must be greater than 0"#),
        ),
        (
            r#"[{"schedule": "0 9 * * *", "duration": 3600}]"#,
            format!(r#"{root}[0].duration: Invalid value: "3600": must be a string"#),
        ),
        (
            r#"[{"kind": "block", "schedule": "0 9 * * *", "duration": "1h"}]"#,
            format!(
                r#"{root}[0].kind: Unsupported value: "block": supported values: "allow", "deny""#
            ),
        ),
        (
            r#"[{"schedule": "0 9 * * *", "duration": "1h", "timeZone": "Europe/Paris"}]"#,
            format!(
                r#"{root}[0].timeZone: Unsupported value: "Europe/Paris": supported values: "UTC""#
            ),
        ),
        (
            r#"[{"schedule": "0 9 * * *", "duration": "1h", "manualSync": true}]"#,
            format!(r#"{root}[0]: unknown field "manualSync""#),
        ),
        (
            r#"[{"schedule": "0 9 * * 1-8", "duration": "1h"}]"#,
            format!(
                r#"{root}[0].schedule: Invalid value: "0 9 * * 1-8": "8" is not a day of the week (0-7 or sun-sat)"#
            ),
        ),
        (
            r#"[{"schedule": "0 9 * * 5-1", "duration": "1h"}]"#,
            format!(
                r#"{root}[0].schedule: Invalid value: "0 9 * * 5-1": day-of-week range "5-1" runs backwards"#
            ),
        ),
        (
            r#"[{"schedule": "0 9 * * */0", "duration": "1h"}]"#,
            format!(
                r#"{root}[0].schedule: Invalid value: "0 9 * * */0": day-of-week step "0" is not a positive number"#
            ),
        ),
        (
            r#"[{"schedule": "61 9 * * *", "duration": "1h"}]"#,
            format!(
                r#"{root}[0].schedule: Invalid value: "61 9 * * *": not a valid cron expression: {}"#,
                "Minutes must be less than 59. ('61' specified.)"
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in &cases {
        match parse(text) {
            Ok(parsed) => failures.push(format!("{text:?}: parsed {parsed:?}")),
            Err(error) if error.to_string() != *expected => {
                failures.push(format!("{text:?}:\n   got {error}\n  want {expected}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("invalid window annotations: {} passed", cases.len());
}

#[test]
fn text_that_is_not_yaml_is_rejected_with_the_parser_message() {
    let error = parse(r#"[{"schedule": "0 9 * * *""#)
        .expect_err("unterminated list")
        .to_string();
    assert_eq!(
        error,
        r#"metadata.annotations[davy.dev/promotion-windows]: Invalid value: "[{\"schedule\": \"0 9 * * *\"": not YAML or JSON: line 1 column 2: unclosed bracket '{'"#
    );
}

// ---------------------------------------------------------------------------------------------
// Clock arithmetic (UTC; 2026-11-26 is a Thursday)

#[test]
fn is_open_and_next_open_across_window_edges() {
    let business = r#"[{"schedule": "0 9 * * 1-5", "duration": "8h"}]"#;
    let night = r#"[{"schedule": "0 22 * * *", "duration": "4h"}]"#;
    let overlapping = r#"[{"schedule": "0 9 * * *", "duration": "4h"}, {"schedule": "0 12 * * *", "duration": "4h"}]"#;
    let not_fridays = r#"[{"schedule": "0 9 * * 1-5", "duration": "8h"}, {"kind": "deny", "schedule": "0 0 * * fri", "duration": "24h"}]"#;
    let freeze = r#"[{"kind": "deny", "schedule": "0 0 20 12 *", "duration": "336h"}]"#;
    let chained_freeze = r#"[{"kind": "deny", "schedule": "0 0 20 12 *", "duration": "336h"}, {"kind": "deny", "schedule": "0 0 2 1 *", "duration": "48h"}]"#;
    let sundays = r#"[{"schedule": "0 9 * * 7", "duration": "1h"}]"#;
    let first_or_monday = r#"[{"schedule": "0 9 1 * 1", "duration": "1h"}]"#;
    let seconds = r#"[{"schedule": "*/20 * * * * *", "duration": "10s"}]"#;
    let longer_than_period = r#"[{"schedule": "0 * * * *", "duration": "2h"}]"#;
    let never = r#"[{"schedule": "0 0 30 2 *", "duration": "1h"}]"#;
    let deny_only = r#"[{"kind": "deny", "schedule": "0 0 * * 6", "duration": "24h"}]"#;
    let weekend_through_seven = r#"[{"schedule": "0 9 * * 5-7", "duration": "1h"}]"#;
    let every_other_day = r#"[{"schedule": "0 9 * * */2", "duration": "1h"}]"#;
    let named_days = r#"[{"schedule": "30 8 * * MON-FRI", "duration": "1h"}]"#;
    // (windows, now, open, next open)
    let cases: Vec<(&str, &str, bool, Option<&str>)> = vec![
        (
            business,
            "2026-11-26T08:59:59Z",
            false,
            Some("2026-11-26T09:00:00Z"),
        ),
        (
            business,
            "2026-11-26T09:00:00Z",
            true,
            Some("2026-11-26T09:00:00Z"),
        ),
        (
            business,
            "2026-11-26T16:59:59Z",
            true,
            Some("2026-11-26T16:59:59Z"),
        ),
        (
            business,
            "2026-11-26T17:00:00Z",
            false,
            Some("2026-11-27T09:00:00Z"),
        ),
        (
            business,
            "2026-11-27T17:00:00Z",
            false,
            Some("2026-11-30T09:00:00Z"),
        ),
        (
            business,
            "2026-11-28T12:00:00Z",
            false,
            Some("2026-11-30T09:00:00Z"),
        ),
        (
            night,
            "2026-11-26T21:59:59Z",
            false,
            Some("2026-11-26T22:00:00Z"),
        ),
        (
            night,
            "2026-11-26T23:30:00Z",
            true,
            Some("2026-11-26T23:30:00Z"),
        ),
        (
            night,
            "2026-11-27T01:59:59Z",
            true,
            Some("2026-11-27T01:59:59Z"),
        ),
        (
            night,
            "2026-11-27T02:00:00Z",
            false,
            Some("2026-11-27T22:00:00Z"),
        ),
        (
            overlapping,
            "2026-11-26T12:30:00Z",
            true,
            Some("2026-11-26T12:30:00Z"),
        ),
        (
            overlapping,
            "2026-11-26T15:59:59Z",
            true,
            Some("2026-11-26T15:59:59Z"),
        ),
        (
            overlapping,
            "2026-11-26T16:00:00Z",
            false,
            Some("2026-11-27T09:00:00Z"),
        ),
        (
            not_fridays,
            "2026-11-26T10:00:00Z",
            true,
            Some("2026-11-26T10:00:00Z"),
        ),
        (
            not_fridays,
            "2026-11-27T10:00:00Z",
            false,
            Some("2026-11-30T09:00:00Z"),
        ),
        (
            not_fridays,
            "2026-11-26T17:30:00Z",
            false,
            Some("2026-11-30T09:00:00Z"),
        ),
        (
            freeze,
            "2026-12-19T23:59:59Z",
            true,
            Some("2026-12-19T23:59:59Z"),
        ),
        (
            freeze,
            "2026-12-25T10:00:00Z",
            false,
            Some("2027-01-03T00:00:00Z"),
        ),
        (
            freeze,
            "2027-01-03T00:00:00Z",
            true,
            Some("2027-01-03T00:00:00Z"),
        ),
        (
            chained_freeze,
            "2026-12-25T10:00:00Z",
            false,
            Some("2027-01-04T00:00:00Z"),
        ),
        (
            sundays,
            "2026-11-26T10:00:00Z",
            false,
            Some("2026-11-29T09:00:00Z"),
        ),
        (
            first_or_monday,
            "2026-11-26T10:00:00Z",
            false,
            Some("2026-11-30T09:00:00Z"),
        ),
        (
            first_or_monday,
            "2026-11-30T10:00:00Z",
            false,
            Some("2026-12-01T09:00:00Z"),
        ),
        (
            first_or_monday,
            "2026-12-01T09:30:00Z",
            true,
            Some("2026-12-01T09:30:00Z"),
        ),
        (
            seconds,
            "2026-11-26T12:00:05Z",
            true,
            Some("2026-11-26T12:00:05Z"),
        ),
        (
            seconds,
            "2026-11-26T12:00:09.500Z",
            true,
            Some("2026-11-26T12:00:09.500Z"),
        ),
        (
            seconds,
            "2026-11-26T12:00:10Z",
            false,
            Some("2026-11-26T12:00:20Z"),
        ),
        (
            seconds,
            "2026-11-26T12:00:59Z",
            false,
            Some("2026-11-26T12:01:00Z"),
        ),
        (
            longer_than_period,
            "2026-11-26T10:17:00Z",
            true,
            Some("2026-11-26T10:17:00Z"),
        ),
        (never, "2026-11-26T10:00:00Z", false, None),
        (
            deny_only,
            "2026-11-26T10:00:00Z",
            true,
            Some("2026-11-26T10:00:00Z"),
        ),
        (
            deny_only,
            "2026-11-28T10:00:00Z",
            false,
            Some("2026-11-29T00:00:00Z"),
        ),
        (
            weekend_through_seven,
            "2026-11-26T10:00:00Z",
            false,
            Some("2026-11-27T09:00:00Z"),
        ),
        (
            weekend_through_seven,
            "2026-11-28T10:00:00Z",
            false,
            Some("2026-11-29T09:00:00Z"),
        ),
        (
            weekend_through_seven,
            "2026-11-29T10:00:00Z",
            false,
            Some("2026-12-04T09:00:00Z"),
        ),
        (
            every_other_day,
            "2026-11-26T10:00:00Z",
            false,
            Some("2026-11-28T09:00:00Z"),
        ),
        (
            every_other_day,
            "2026-11-28T10:00:00Z",
            false,
            Some("2026-11-29T09:00:00Z"),
        ),
        (
            named_days,
            "2026-11-26T08:00:00Z",
            false,
            Some("2026-11-26T08:30:00Z"),
        ),
        (
            named_days,
            "2026-11-28T08:00:00Z",
            false,
            Some("2026-11-30T08:30:00Z"),
        ),
    ];
    let mut failures = Vec::new();
    for (text, now, open, next) in &cases {
        let parsed = windows(text);
        let now_time = at(now);
        let got = (is_open(&parsed, now_time), next_open(&parsed, now_time));
        let want = (*open, next.map(at));
        if got != want {
            failures.push(format!("{text} at {now}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("window clock cases: {} passed", cases.len());
}

// ---------------------------------------------------------------------------------------------
// The plan

const BUSINESS_HOURS: &str = r#"[{"schedule": "0 9 * * 1-5", "duration": "8h"}]"#;
/// Friday 2026-11-27 18:00 UTC: after business hours; the next window opens on Monday.
const FRIDAY_EVENING: &str = "2026-11-27T18:00:00Z";
const MONDAY_MORNING: &str = "2026-11-30T09:00:00Z";
const WAITING: &str = "Waiting for promotion window: next opens at 2026-11-30T09:00:00Z";

fn with_windows(mut ro: Value, windows: &str) -> Value {
    ro["metadata"]["annotations"] = json!({"davy.dev/promotion-windows": windows});
    ro
}

/// Revision 1 deployed (initial deploys are not held), the clock at `now`, revision 2 started.
fn updating(ro: Value, now: &str) -> (World, String) {
    let mut world = World::new(rollout_from(ro));
    world.obs.analysis_templates = vec![template("success-rate")];
    world.now = at(now);
    world.run(20);
    assert_eq!(world.status().phase, Some(RolloutPhase::Healthy));
    let blue = world.status().stable_rs.clone();
    world.set_image("yellow");
    (world, blue)
}

#[test]
fn a_resumed_pause_waits_for_the_window_and_says_when() {
    let (mut world, blue) = updating(
        with_windows(demo_rollout("blue"), BUSINESS_HOURS),
        FRIDAY_EVENING,
    );
    world.run(10);
    let yellow = world.status().current_pod_hash.clone();
    // setWeight 20 still advanced outside the window; the pause step starts as usual.
    let status = world.status();
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(sizes(&world, &yellow, &blue), (1, 2));
    assert_eq!(
        (status.phase, status.message.as_str()),
        (Some(RolloutPhase::Paused), "CanaryPauseStep")
    );

    // A plain promote completes the pause step, but the window holds it.
    world.promote();
    let plans = world.run(10);
    let status = world.status();
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(status.phase, Some(RolloutPhase::Paused));
    assert_eq!(status.message, WAITING);
    assert_eq!(world.health(), health("Suspended", WAITING));
    assert_eq!(sizes(&world, &yellow, &blue), (1, 2));
    // The resume is remembered, not undone: no pause condition comes back.
    assert!(status.pause_conditions.is_empty());
    assert!(status.controller_pause);
    // Come back exactly when the window opens (Friday 18:00 → Monday 09:00 = 63 h).
    assert_eq!(
        plans.last().and_then(|plan| plan.requeue_after),
        Some(std::time::Duration::from_secs(63 * 3600))
    );
    assert_eq!(
        world.events_with("RolloutStepCompleted"),
        vec!["Rollout step 1/8 completed (setWeight: 20)"]
    );
    // A second before the window: still held, nothing to write.
    world.now = at("2026-11-30T08:59:59Z");
    let plan = world.reconcile();
    assert_eq!(world.status().current_step_index, Some(1));
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(1)));

    // The window opens: the step completes and the rollout moves on.
    world.now = at(MONDAY_MORNING);
    world.reconcile();
    let status = world.status();
    assert_eq!(status.current_step_index, Some(2));
    assert_ne!(status.message, WAITING);
    assert_eq!(
        world
            .events_with("RolloutStepCompleted")
            .last()
            .map(String::as_str),
        Some("Rollout step 2/8 completed (pause)")
    );
}

#[test]
fn an_expired_timed_pause_is_held_with_its_pause_condition() {
    let mut ro = with_windows(demo_rollout("blue"), BUSINESS_HOURS);
    ro["spec"]["strategy"]["canary"]["steps"] = json!([
        {"setWeight": 50}, {"pause": {"duration": 30}}, {"setWeight": 100}
    ]);
    let (mut world, blue) = updating(ro, FRIDAY_EVENING);
    world.run(10);
    let yellow = world.status().current_pod_hash.clone();
    assert_eq!(world.status().current_step_index, Some(1));
    assert_eq!(world.status().message, "CanaryPauseStep");
    world.advance(30);
    world.run(10);
    let status = world.status();
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(status.message, WAITING);
    assert_eq!(
        status
            .pause_conditions
            .iter()
            .map(|c| c.reason.clone())
            .collect::<Vec<_>>(),
        vec![PauseReason::CanaryPauseStep]
    );
    assert_eq!(sizes(&world, &yellow, &blue), (1, 1));
    world.now = at(MONDAY_MORNING);
    until(&mut world, 40, |w| {
        w.status().phase == Some(RolloutPhase::Healthy)
    });
    assert_eq!(world.status().stable_rs, yellow);
}

#[test]
fn a_successful_analysis_step_is_held_until_the_window_opens() {
    let mut ro = with_windows(demo_rollout("blue"), BUSINESS_HOURS);
    ro["spec"]["strategy"]["canary"]["steps"] = json!([
        {"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "success-rate"}],
                      "args": [{"name": "service", "value": "rollouts-demo"}]}},
        {"setWeight": 100}
    ]);
    let (mut world, _blue) = updating(ro, FRIDAY_EVENING);
    until(&mut world, 30, |w| {
        w.status().current_step_index == Some(1) && !w.obs.analysis_runs.is_empty()
    });
    let name = world.run_names()[0].clone();
    world.set_run_phase(&name, AnalysisPhase::Running, "");
    world.run(5);
    // While the run runs, the usual reading (the window is not what holds it yet).
    assert_eq!(world.health().status, "Progressing");
    world.set_run_phase(&name, AnalysisPhase::Successful, "");
    world.run(5);
    let status = world.status();
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(
        (status.phase, status.message.as_str()),
        (Some(RolloutPhase::Paused), WAITING)
    );
    assert_eq!(world.health(), health("Suspended", WAITING));
    assert!(status.pause_conditions.is_empty());
    // No progress deadline while held at an analysis step, however long the weekend.
    world.now = at("2026-11-30T08:00:00Z");
    world.run(5);
    assert_eq!(world.status().message, WAITING);
    world.now = at(MONDAY_MORNING);
    world.reconcile();
    assert_eq!(world.status().current_step_index, Some(2));
}

#[test]
fn aborts_happen_outside_the_window() {
    let (mut world, blue) = updating(
        with_windows(demo_rollout("blue"), BUSINESS_HOURS),
        FRIDAY_EVENING,
    );
    world.run(10);
    let yellow = world.status().current_pod_hash.clone();
    world.promote();
    world.run(10);
    assert_eq!(world.status().message, WAITING);
    world.edit_status(|status| status.abort = true);
    until(&mut world, 40, |w| sizes(w, &yellow, &blue) == (0, 2));
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        status.message,
        "RolloutAborted: Rollout aborted update to revision 2"
    );
    assert_eq!(status.current_step_index, Some(0));
}

#[test]
fn promote_full_overrides_the_window() {
    let (mut world, blue) = updating(
        with_windows(demo_rollout("blue"), BUSINESS_HOURS),
        FRIDAY_EVENING,
    );
    world.run(10);
    let yellow = world.status().current_pod_hash.clone();
    world.promote();
    world.run(10);
    assert_eq!(world.status().message, WAITING);
    world.edit_status(|status| status.promote_full = true);
    until(&mut world, 40, |w| {
        w.status().phase == Some(RolloutPhase::Healthy) && w.status().stable_rs == yellow
    });
    assert_eq!(sizes(&world, &yellow, &blue), (2, 0));
    assert_eq!(
        world.events_with("RolloutCompleted").last().cloned(),
        Some(format!(
            "Rollout completed update to revision 2 ({yellow}): Full promotion requested"
        ))
    );
}

#[test]
fn inside_the_window_nothing_changes() {
    let (mut world, _blue) = updating(
        with_windows(demo_rollout("blue"), BUSINESS_HOURS),
        "2026-11-26T10:00:00Z",
    );
    world.run(10);
    world.promote();
    world.run(10);
    let status = world.status();
    assert_eq!(status.current_step_index, Some(3));
    assert_eq!(status.message, "CanaryPauseStep");
}

#[test]
fn an_invalid_annotation_is_an_invalid_spec_and_nothing_else_happens() {
    let ro = with_windows(demo_rollout("blue"), r#"[{"schedule": "0 9 * * 1-5"}]"#);
    let mut world = World::new(rollout_from(ro));
    let plan = world.reconcile();
    let expected = "The Rollout \"rollouts-demo\" is invalid: metadata.annotations[davy.dev/promotion-windows][0].duration: Required value";
    assert_eq!(
        plan.error.as_ref().map(|error| error.to_string()),
        Some(format!("invalid spec: {expected}"))
    );
    // The status, then the Warning event `InvalidSpec` carrying the condition's message.
    assert_eq!(plan.writes.len(), 2, "{:?}", plan.writes);
    let events: Vec<_> = plan.events().collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "InvalidSpec");
    assert_eq!(events[0].message, expected.to_string());
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(status.message, format!("InvalidSpec: {expected}"));
    assert_eq!(
        world.health(),
        health("Degraded", &format!("InvalidSpec: {expected}"))
    );
    assert!(world.obs.replica_sets.is_empty());
    assert!(world.reconcile().writes.is_empty());
    // Fixed: the condition goes and the rollout deploys.
    world.edit_spec(|rollout| {
        rollout.metadata.annotations = Some(
            [(
                "davy.dev/promotion-windows".to_string(),
                BUSINESS_HOURS.to_string(),
            )]
            .into(),
        );
    });
    world.run(10);
    let status = world.status();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert!(status.conditions.iter().all(|c| c.type_ != "InvalidSpec"));
}
