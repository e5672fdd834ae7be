//! API types: round-trip of upstream's example manifests, duration and int-or-string tables.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};

use davy::api::{DavyObject, davy_kind, json_diff};

/// Every file under `dir`, sorted, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Templated (not plain YAML) files of the upstream examples.
const TEMPLATED: [&str; 2] = [
    "helm-blue-green/templates/rollout.yaml",
    "traffic-management/rollout-linkerd.yaml",
];

#[test]
fn argo_examples_round_trip_exactly() {
    let Some(conformance) = common::conformance_dir() else {
        return;
    };
    let root = conformance.join("argo-examples").join("examples");
    let mut failures = Vec::new();
    let (mut plain, mut documents, mut templated) = (0, 0, 0);
    for path in files_under(&root) {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = serde_saphyr::from_multiple::<serde_json::Value>(&text);
        if TEMPLATED.contains(&rel.as_str()) {
            match parsed {
                Ok(_) => failures.push(format!("{rel}: templated file parsed as YAML")),
                Err(err) => match err.location() {
                    Some(loc) if loc.line() > 0 => templated += 1,
                    _ => failures.push(format!("{rel}: YAML error without a line: {err}")),
                },
            }
            continue;
        }
        let docs = match parsed {
            Ok(docs) => docs,
            Err(err) => {
                failures.push(format!("{rel}: YAML error: {err}"));
                continue;
            }
        };
        plain += 1;
        for (i, doc) in docs.iter().enumerate() {
            if davy_kind(doc).is_none() {
                continue;
            }
            documents += 1;
            let obj = match DavyObject::from_value(doc) {
                Ok(Some(obj)) => obj,
                Ok(None) => unreachable!("davy_kind said it is a Davy kind"),
                Err(err) => {
                    failures.push(format!("{rel} doc {i}: decode error: {err}"));
                    continue;
                }
            };
            let out = obj.to_value().unwrap();
            for diff in json_diff(doc, &out) {
                failures.push(format!("{rel} doc {i} ({}): {diff}", obj.kind()));
            }
            // decode → encode → decode is the identity on the typed value.
            let again = DavyObject::from_value(&out).unwrap().unwrap();
            if again != obj {
                failures.push(format!("{rel} doc {i}: second decode differs"));
            }
        }
    }
    println!(
        "{plain} plain files, {documents} documents round-tripped; {templated} templated files rejected with a line"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(templated, TEMPLATED.len());
    assert_eq!(plain, 23);
    assert_eq!(documents, 26);
}

use std::time::Duration;

use davy::api::{
    DurationError, EffectiveCount, IntOrStr, IntOrStrError, Metric, Rollout, RolloutPause,
    Rounding, go_duration_nanos, parse_duration, parse_go_duration,
};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn durations_parse_like_go() {
    let cases: &[(&str, Duration)] = &[
        ("10", Duration::from_secs(10)),
        ("0", Duration::ZERO),
        ("10s", Duration::from_secs(10)),
        ("1m30s", Duration::from_secs(90)),
        ("500ms", ms(500)),
        ("1.5h", Duration::from_secs(5400)),
        ("1h30m", Duration::from_secs(5400)),
        ("2h45m30.5s", ms(9_930_500)),
        ("300us", Duration::from_micros(300)),
        ("300µs", Duration::from_micros(300)),
        ("300μs", Duration::from_micros(300)),
        ("7ns", Duration::from_nanos(7)),
        (".5s", ms(500)),
        ("1.s", Duration::from_secs(1)),
        ("+5m", Duration::from_secs(300)),
        ("-0s", Duration::ZERO),
    ];
    let mut failures = Vec::new();
    for (input, expected) in cases {
        match parse_duration(input) {
            Ok(d) if d == *expected => {}
            other => failures.push(format!("{input:?}: {other:?}, expected {expected:?}")),
        }
    }
    println!("durations: {} valid cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn go_nanos_are_signed_and_bounded_like_go() {
    assert_eq!(go_duration_nanos("-1m30s"), Ok(-90_000_000_000));
    assert_eq!(
        go_duration_nanos("-9223372036854775808ns"),
        Ok(-9_223_372_036_854_775_808)
    );
    assert!(matches!(
        go_duration_nanos("9223372036854775808ns"),
        Err(DurationError::Overflow { .. })
    ));
    assert!(matches!(
        parse_go_duration("-2s"),
        Err(DurationError::Negative { .. })
    ));
}

#[test]
fn invalid_durations_name_the_input() {
    let cases: &[(&str, &str)] = &[
        (
            "1d",
            "invalid duration \"1d\": unknown unit \"d\" (valid units are ns, us, µs, ms, s, m, h)",
        ),
        ("", "invalid duration \"\": empty"),
        ("-", "invalid duration \"-\": empty"),
        ("abc", "invalid duration \"abc\""),
        ("1h30", "invalid duration \"1h30\": missing unit"),
        (
            "10 s",
            "invalid duration \"10 s\": unknown unit \" s\" (valid units are ns, us, µs, ms, s, m, h)",
        ),
        ("1..5s", "invalid duration \"1..5s\": missing unit"),
        ("s", "invalid duration \"s\""),
        ("-5s", "invalid duration \"-5s\": negative"),
        ("-5", "invalid duration \"-5\": negative"),
        ("3000000h", "invalid duration \"3000000h\": out of range"),
    ];
    let mut failures = Vec::new();
    for (input, expected) in cases {
        match parse_duration(input) {
            Err(err) if err.to_string() == *expected => {}
            other => failures.push(format!("{input:?}: {other:?}, expected error {expected:?}")),
        }
    }
    // Go's own grammar has no bare numbers (metric interval/initialDelay).
    assert_eq!(
        parse_go_duration("10"),
        Err(DurationError::MissingUnit { input: "10".into() })
    );
    println!("durations: {} invalid cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn int_or_string_resolves_as_int_or_percent() {
    let cases: &[(IntOrStr, i32, Rounding, Result<i32, IntOrStrError>)] = &[
        (IntOrStr::Int(5), 10, Rounding::Up, Ok(5)),
        (IntOrStr::Str("25%".into()), 10, Rounding::Up, Ok(3)),
        (IntOrStr::Str("25%".into()), 10, Rounding::Down, Ok(2)),
        (IntOrStr::Str("25".into()), 10, Rounding::Up, Ok(3)),
        (IntOrStr::Str("25%".into()), 4, Rounding::Up, Ok(1)),
        (IntOrStr::Str("25%".into()), 4, Rounding::Down, Ok(1)),
        (IntOrStr::Str("25%".into()), 1, Rounding::Down, Ok(0)),
        (IntOrStr::Str("100%".into()), 7, Rounding::Down, Ok(7)),
        (IntOrStr::Str("0%".into()), 7, Rounding::Up, Ok(0)),
        (
            IntOrStr::Str("{{args.x}}".into()),
            10,
            Rounding::Up,
            Err(IntOrStrError::NotAPercentage {
                input: "{{args.x}}".into(),
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (value, total, rounding, expected) in cases {
        let got = value.scaled_value(*total, *rounding);
        if &got != expected {
            failures.push(format!(
                "{value} of {total} {rounding:?}: {got:?}, expected {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    assert_eq!(IntOrStr::Int(3).as_int(), Ok(3));
    assert_eq!(IntOrStr::Str("7".into()).as_int(), Ok(7));
    assert_eq!(
        IntOrStr::Str("{{args.count}}".into())
            .as_int()
            .unwrap_err()
            .to_string(),
        "invalid int-or-string value \"{{args.count}}\": not an integer"
    );
    assert_eq!(IntOrStr::Str("{{args.count}}".into()).int_value(), 0);
    assert!(IntOrStr::Str("{{ args.count }}".into()).is_placeholder());
    assert!(!IntOrStr::Str("25%".into()).is_placeholder());
    assert!(IntOrStr::Str("25%".into()).is_percent());
}

fn rollout(yaml: &str) -> Rollout {
    serde_saphyr::from_str(yaml).unwrap()
}

const BASE: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n";

#[test]
fn rollout_defaults_apply_without_being_written() {
    let r = rollout(&format!("{BASE}  strategy:\n    canary: {{}}\n"));
    let s = &r.spec;
    assert_eq!(s.effective_replicas(), 1);
    assert_eq!(s.revision_history_limit(), 10);
    assert_eq!(s.progress_deadline_seconds(), 600);
    assert!(!s.progress_deadline_abort());
    assert_eq!(s.successful_run_history_limit(), 5);
    assert_eq!(s.unsuccessful_run_history_limit(), 5);
    assert_eq!(s.max_traffic_weight(), 100);
    // Basic canary: no scale-down delay, canary always drained on abort.
    assert_eq!(s.scale_down_delay_seconds(), 0);
    assert_eq!(s.abort_scale_down_delay_seconds(), Some(0));
    let canary = s.strategy.canary.as_ref().unwrap();
    assert_eq!(canary.surge_and_unavailable(10), Ok((3, 2)));
    assert_eq!(canary.surge_and_unavailable(1), Ok((1, 0)));
    // Defaults are not written back.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["spec"],
        serde_json::json!({"strategy": {"canary": {}}})
    );

    // Traffic routing: 30 s delays; explicit 0 = never scale the canary down on abort.
    let tr = rollout(&format!(
        "{BASE}  replicas: 4\n  strategy:\n    canary:\n      trafficRouting: {{nginx: {{stableIngress: i}}, maxTrafficWeight: 1000}}\n"
    ));
    assert_eq!(tr.spec.effective_replicas(), 4);
    assert_eq!(tr.spec.scale_down_delay_seconds(), 30);
    assert_eq!(tr.spec.abort_scale_down_delay_seconds(), Some(30));
    assert!(!tr.spec.abort_scale_down_delay_was_set());
    assert_eq!(tr.spec.max_traffic_weight(), 1000);
    let nginx = tr.spec.traffic_routing().unwrap().nginx.as_ref().unwrap();
    assert_eq!(nginx.annotation_prefix(), "nginx.ingress.kubernetes.io");
    let never = rollout(&format!(
        "{BASE}  strategy:\n    canary:\n      abortScaleDownDelaySeconds: 0\n      scaleDownDelaySeconds: 5\n      trafficRouting: {{smi: {{}}}}\n"
    ));
    assert_eq!(never.spec.abort_scale_down_delay_seconds(), None);
    assert!(never.spec.abort_scale_down_delay_was_set());
    assert_eq!(never.spec.scale_down_delay_seconds(), 5);

    // Both fenceposts resolving to 0 ⇒ maxUnavailable 1.
    let zero = rollout(&format!(
        "{BASE}  strategy:\n    canary: {{maxSurge: 0, maxUnavailable: \"10%\"}}\n"
    ));
    let c = zero.spec.strategy.canary.as_ref().unwrap();
    assert_eq!(c.surge_and_unavailable(5), Ok((0, 1)));

    let bg = rollout(&format!(
        "{BASE}  strategy:\n    blueGreen: {{activeService: a}}\n"
    ));
    assert_eq!(bg.spec.scale_down_delay_seconds(), 30);
    assert_eq!(bg.spec.abort_scale_down_delay_seconds(), Some(30));
    let b = bg.spec.strategy.blue_green.as_ref().unwrap();
    assert!(b.auto_promotion_enabled());
    assert_eq!(b.auto_promotion_seconds(), 0);
}

fn metric(yaml: &str) -> Metric {
    serde_saphyr::from_str(yaml).unwrap()
}

#[test]
fn metric_defaults_follow_spec_4_2() {
    let cases: &[(&str, EffectiveCount)] = &[
        ("name: m", EffectiveCount::Limited(1)),
        ("{name: m, count: 0}", EffectiveCount::Limited(1)),
        ("{name: m, interval: 30s}", EffectiveCount::Unlimited),
        (
            "{name: m, interval: 30s, count: 0}",
            EffectiveCount::Unlimited,
        ),
        (
            "{name: m, interval: 30s, count: 5}",
            EffectiveCount::Limited(5),
        ),
        (
            "{name: m, interval: 30s, count: \"7\"}",
            EffectiveCount::Limited(7),
        ),
        ("{name: m, count: 3}", EffectiveCount::Limited(3)),
    ];
    for (yaml, expected) in cases {
        assert_eq!(metric(yaml).effective_count(), *expected, "{yaml}");
    }
    let m = metric("name: m");
    assert_eq!(
        (
            m.failure_limit(),
            m.inconclusive_limit(),
            m.consecutive_error_limit(),
            m.consecutive_success_limit()
        ),
        (0, 0, 4, 0)
    );
    let m = metric(
        "{name: m, failureLimit: -1, consecutiveErrorLimit: \"2\", consecutiveSuccessLimit: 3, interval: 1m, initialDelay: 10s}",
    );
    assert_eq!(m.failure_limit(), -1);
    assert_eq!(m.consecutive_error_limit(), 2);
    assert_eq!(m.consecutive_success_limit(), 3);
    assert_eq!(m.interval(), Ok(Some(Duration::from_secs(60))));
    assert_eq!(m.initial_delay(), Ok(Some(Duration::from_secs(10))));
    assert_eq!(davy::api::defaults::DEFAULT_MEASUREMENT_HISTORY_LIMIT, 10);
}

#[test]
fn pause_durations_follow_upstream() {
    let cases: &[(&str, i64, Option<Duration>)] = &[
        ("{}", 0, None),
        ("{duration: 10}", 10, Some(Duration::from_secs(10))),
        ("{duration: \"10\"}", 10, Some(Duration::from_secs(10))),
        ("{duration: 1m}", 60, Some(Duration::from_secs(60))),
        ("{duration: 1500ms}", 1, Some(Duration::from_secs(1))),
        ("{duration: 0}", 0, Some(Duration::ZERO)),
    ];
    for (yaml, secs, duration) in cases {
        let p: RolloutPause = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(p.duration_seconds(), *secs, "{yaml}");
        assert_eq!(p.duration(), Ok(*duration), "{yaml}");
    }
    let bad: RolloutPause = serde_saphyr::from_str("{duration: 1d}").unwrap();
    assert_eq!(bad.duration_seconds(), -1);
    assert!(bad.duration().is_err());
}

/// Every Davy document in YAML files under `dir`: (relative file, document index, document).
fn davy_documents(dir: &Path) -> Vec<(String, usize, serde_json::Value)> {
    let mut out = Vec::new();
    for path in files_under(dir) {
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let rel = path
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(docs) = serde_saphyr::from_multiple::<serde_json::Value>(&text) else {
            continue;
        };
        for (i, doc) in docs.into_iter().enumerate() {
            if davy_kind(&doc).is_some() {
                out.push((rel.clone(), i, doc));
            }
        }
    }
    out
}

#[test]
fn controller_written_objects_round_trip_exactly() {
    // Objects with status as upstream's controller wrote them (kubectl-argo-rollouts fixtures).
    let Some(conformance) = common::conformance_dir() else {
        return;
    };
    let docs = davy_documents(&conformance.join("vectors/get-rollout-golden/fixtures"));
    let mut failures = Vec::new();
    for (rel, i, doc) in &docs {
        match DavyObject::from_value(doc) {
            Ok(Some(obj)) => {
                let out = obj.to_value().unwrap();
                failures.extend(
                    json_diff(doc, &out)
                        .iter()
                        .map(|d| format!("{rel} doc {i}: {d}")),
                );
                if DavyObject::from_value(&out).unwrap().as_ref() != Some(&obj) {
                    failures.push(format!("{rel} doc {i}: second decode differs"));
                }
            }
            other => failures.push(format!("{rel} doc {i}: {other:?}")),
        }
    }
    println!("controller-written objects: {} round-tripped", docs.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(docs.len(), 16);
}

#[test]
fn legacy_and_hand_written_objects_decode_leniently() {
    // Argo CD's health-check test objects: old versions, nulls, numbers where strings belong.
    let Some(conformance) = common::conformance_dir() else {
        return;
    };
    let docs = davy_documents(&conformance.join("argocd-health"));
    let mut failed = Vec::new();
    for (rel, _, doc) in &docs {
        if DavyObject::from_value(doc).is_err() {
            failed.push(rel.clone());
        }
    }
    println!(
        "argocd-health objects: {} decoded, {} rejected",
        docs.len() - failed.len(),
        failed.len()
    );
    // `status.conditions: {}` is not a list: the API server would reject that object too.
    assert_eq!(
        failed,
        vec!["Rollout/testdata/degraded_statusPhaseMessage.yaml".to_string()]
    );
    assert_eq!(docs.len(), 64);

    let find = |name: &str| {
        let (_, _, doc) = docs.iter().find(|(rel, _, _)| rel.ends_with(name)).unwrap();
        DavyObject::from_value(doc).unwrap().unwrap()
    };
    let DavyObject::Rollout(retried) = find("actions/testdata/retried_rollout.yaml") else {
        panic!("not a Rollout");
    };
    // `abort: null` reads as false, as Go reads it.
    assert!(!retried.status.as_ref().unwrap().abort);
    let DavyObject::AnalysisRun(pending) = find("AnalysisRun/testdata/pendingAnalysisRun.yaml")
    else {
        panic!("not an AnalysisRun");
    };
    assert_eq!(
        pending.spec.metrics[0].interval.as_ref().unwrap().as_str(),
        "10"
    );
}
