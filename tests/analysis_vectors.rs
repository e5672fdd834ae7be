//! Every case of `conformance/vectors/analysis-assessment.yaml` (upstream's metric phase, run
//! phase, next-reconcile, task generation and helper tests as data), plus our own tables for
//! what the vectors do not cover: argument merging and substitution errors, verbatim.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;

use davy::analysis::metric_phase::{assess_metric, exceeded_limit};
use davy::analysis::reconcile::{Prepared, apply, prepare};
use davy::analysis::run_phase::{assess_run, is_terminating, is_worse, worst};
use davy::analysis::schedule::{metric_tasks, next_reconcile};
use davy::api::{AnalysisPhase, AnalysisRun, Metric, MetricResult};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value as Json, json};

/// Drops `null`s so absent-or-null fields decode alike (the vectors write both).
fn strip_nulls(value: &Json) -> Json {
    match value {
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: &Json) -> Result<T, String> {
    serde_json::from_value(strip_nulls(value)).map_err(|e| format!("decode {value}: {e}"))
}

fn run_of(value: &Json) -> Result<AnalysisRun, String> {
    let mut object = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "vector", "namespace": "default"},
        "spec": value.get("spec").cloned().unwrap_or(json!({})),
    });
    if let Some(status) = value.get("status") {
        object["status"] = status.clone();
    }
    decode(&object)
}

fn phase(value: &Json) -> AnalysisPhase {
    AnalysisPhase::parse(value.as_str().unwrap_or(""))
}

fn time(value: &Json) -> Option<Timestamp> {
    value.as_str().and_then(|s| s.parse().ok())
}

struct Tally {
    passed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, section: &str, name: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!("{section} / {name}: {why}")),
        }
    }
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn metric_status_case(case: &Json) -> Result<(), String> {
    let metric: Metric = decode(&case["metric"])?;
    let result: MetricResult = decode(&case["result"])?;
    for check in case["checks"].as_array().into_iter().flatten() {
        let terminating = check["terminating"].as_bool().unwrap_or(false);
        expect_eq(
            &format!("terminating={terminating}"),
            assess_metric(&metric, &result, terminating),
            phase(&check["expected_phase"]),
        )?;
    }
    Ok(())
}

fn limit_case(case: &Json) -> Result<(), String> {
    let metric: Metric = decode(&case["metric"])?;
    let result: MetricResult = decode(&case["result"])?;
    let got = exceeded_limit(&metric, &result);
    let want = Some((
        phase(&case["expected"]["phase"]),
        case["expected"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    ));
    expect_eq("limit", got, want)
}

fn run_status_case(case: &Json, now: Timestamp) -> Result<(), String> {
    let run = run_of(&case["run"])?;
    let dry: BTreeSet<String> = case["dryRunMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let mut status = run.status.clone().unwrap_or_default();
    let terminate = run.spec.terminate.unwrap_or(false);
    let assessment = assess_run(terminate, &mut status, &run.spec.metrics, &dry, now);
    let expected = &case["expected"];
    expect_eq("phase", assessment.phase.clone(), phase(&expected["phase"]))?;
    expect_eq(
        "message",
        assessment.message.as_str(),
        expected["message"].as_str().unwrap_or(""),
    )?;
    if let Some(summary) = expected.get("dryRunSummary") {
        let got = serde_json::to_value(status.dry_run_summary.clone().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        // Our summary omits zero counters, as upstream's Go encoding does.
        let want: Json = Json::Object(
            summary
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| v.as_i64() != Some(0))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        expect_eq("dryRunSummary", got, want)?;
    }
    for check in expected["metricResults"].as_array().into_iter().flatten() {
        let index = check["index"].as_u64().unwrap_or(0) as usize;
        let result = status
            .metric_results
            .get(index)
            .ok_or_else(|| format!("no metric result {index}"))?;
        if let Some(p) = check.get("phase") {
            expect_eq(
                &format!("metricResults[{index}].phase"),
                result.phase.clone(),
                phase(p),
            )?;
        }
        if let Some(m) = check.get("message") {
            expect_eq(
                &format!("metricResults[{index}].message"),
                result.message.as_str(),
                m.as_str().unwrap_or(""),
            )?;
        }
    }
    // Cases taken from full reconciles must come out the same through prepare/apply.
    if case.get("upstream_entry_point").is_some() {
        let plan = match prepare(&run, now) {
            Prepared::Measure(plan) => plan,
            other => return Err(format!("prepare: {other:?}")),
        };
        expect_eq("reconcile tasks", plan.tasks.len(), 0)?;
        let step = apply(&run, &plan, Vec::new(), &[], now);
        expect_eq(
            "reconcile phase",
            step.status.phase.clone(),
            Some(phase(&expected["phase"])),
        )?;
        expect_eq(
            "reconcile message",
            step.status.message.as_str(),
            expected["message"].as_str().unwrap_or(""),
        )?;
    }
    Ok(())
}

fn next_reconcile_case(case: &Json, now: Timestamp) -> Result<(), String> {
    let run = run_of(&case["run"])?;
    let status = run.status.clone().unwrap_or_default();
    expect_eq(
        "next reconcile",
        next_reconcile(&status, &run.spec.metrics, now),
        time(&case["expected"]),
    )
}

fn metric_tasks_case(case: &Json, now: Timestamp) -> Result<(), String> {
    let run = run_of(&case["run"])?;
    let status = run.status.clone().unwrap_or_default();
    let tasks = metric_tasks(
        run.spec.terminate.unwrap_or(false),
        &status,
        &run.spec.metrics,
        now,
    );
    let got: Vec<(String, bool)> = tasks
        .into_iter()
        .map(|t| (t.metric, t.resumes_incomplete))
        .collect();
    let want: Vec<(String, bool)> = case["expected_tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["metric"].as_str().unwrap_or("").to_string(),
                t["resumesIncompleteMeasurement"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    expect_eq("tasks", got, want)
}

#[test]
fn analysis_assessment_vectors() {
    let Some(dir) = common::conformance_dir() else {
        return;
    };
    let path = dir.join("vectors").join("analysis-assessment.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Json = serde_saphyr::from_str(&text).unwrap();
    let now: Timestamp = doc["now"].as_str().unwrap().parse().unwrap();
    let mut tally = Tally {
        passed: 0,
        failures: Vec::new(),
    };
    let cases = |section: &str| doc[section].as_array().cloned().unwrap_or_default();
    let name = |case: &Json| case["name"].as_str().unwrap_or("?").to_string();
    for case in cases("metric_status") {
        tally.check("metric_status", &name(&case), metric_status_case(&case));
    }
    for case in cases("metric_failure_inconclusive_error") {
        tally.check(
            "metric_failure_inconclusive_error",
            &name(&case),
            limit_case(&case),
        );
    }
    for case in cases("run_status") {
        tally.check("run_status", &name(&case), run_status_case(&case, now));
    }
    for case in cases("next_reconcile_time") {
        tally.check(
            "next_reconcile_time",
            &name(&case),
            next_reconcile_case(&case, now),
        );
    }
    for case in cases("metric_tasks") {
        tally.check("metric_tasks", &name(&case), metric_tasks_case(&case, now));
    }
    for case in cases("is_worse") {
        let label = format!("{} -> {}", case["current"], case["new"]);
        let outcome = expect_eq(
            "is_worse",
            is_worse(&phase(&case["current"]), &phase(&case["new"])),
            case["expected"].as_bool().unwrap_or(false),
        );
        tally.check("is_worse", &label, outcome);
    }
    for case in cases("worst") {
        let label = format!("{} vs {}", case["left"], case["right"]);
        let outcome = expect_eq(
            "worst",
            worst(&phase(&case["left"]), &phase(&case["right"])),
            phase(&case["expected"]),
        );
        tally.check("worst", &label, outcome);
    }
    for case in cases("is_terminating") {
        let outcome = run_of(&case["run"]).and_then(|run| {
            let status = run.status.clone().unwrap_or_default();
            expect_eq(
                "is_terminating",
                is_terminating(run.spec.terminate.unwrap_or(false), &status.metric_results),
                case["expected"].as_bool().unwrap_or(false),
            )
        });
        tally.check("is_terminating", &name(&case), outcome);
    }
    println!(
        "analysis-assessment vectors: {} passed, {} failed",
        tally.passed,
        tally.failures.len()
    );
    assert!(
        tally.failures.is_empty(),
        "failing vectors:\n{}",
        tally.failures.join("\n")
    );
    assert_eq!(tally.passed, 101, "every case of the file ran");
}

/// An AnalysisRun from YAML text.
fn run_yaml(yaml: &str) -> AnalysisRun {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

const WEB_METRIC: &str =
    "  - name: m\n    provider:\n      web: {url: 'http://127.0.0.1:1/{{args.path}}'}\n";

/// Errors a run gets before measuring anything: unresolvable arguments and invalid specs,
/// with upstream's texts (the vectors only cover assessment).
#[test]
fn run_errors_are_upstream_texts() {
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let head = "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata: {name: r}\nspec:\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown placeholder",
            format!("{head}  metrics:\n{WEB_METRIC}"),
            "Unable to resolve metric arguments: failed to resolve {{args.path}}",
        ),
        (
            "argument without a value",
            format!(
                "{head}  args:\n  - name: path\n    valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}\n  metrics:\n{WEB_METRIC}"
            ),
            "Unable to resolve metric arguments: argument \"path\" was not supplied",
        ),
        (
            "no metrics",
            format!("{head}  metrics: []\n"),
            "Analysis spec invalid: no metrics specified",
        ),
        (
            "count from an argument needs an interval",
            format!(
                "{head}  args: [{{name: path, value: x}}, {{name: n, value: '3'}}]\n  metrics:\n{WEB_METRIC}    count: '{{{{args.n}}}}'\n"
            ),
            "Analysis spec invalid: metrics[0]: interval must be specified when count > 1",
        ),
        (
            "dry-run rule matching nothing",
            format!(
                "{head}  args: [{{name: path, value: x}}]\n  dryRun: [{{metricName: m}}, {{metricName: other}}]\n  metrics:\n{WEB_METRIC}"
            ),
            "Analysis spec invalid: dryRun[1]: Rule didn't match any metric name(s)",
        ),
        (
            "retention rule matching nothing",
            format!(
                "{head}  args: [{{name: path, value: x}}]\n  measurementRetention: [{{metricName: zz, limit: 2}}]\n  metrics:\n{WEB_METRIC}"
            ),
            "Analysis spec invalid: measurementRetention[0]: Rule didn't match any metric name(s)",
        ),
    ];
    let mut failures = Vec::new();
    for (name, yaml, want) in &cases {
        let run = run_yaml(yaml);
        match prepare(&run, now) {
            Prepared::Invalid(step) => {
                if step.status.phase != Some(AnalysisPhase::Error) || step.status.message != *want {
                    failures.push(format!(
                        "{name}: {:?} {:?}",
                        step.status.phase, step.status.message
                    ));
                }
                if step.events.first().map(|e| e.reason.as_str()) != Some("AnalysisRunError") {
                    failures.push(format!("{name}: events {:?}", step.events));
                }
            }
            other => failures.push(format!("{name}: {other:?}")),
        }
    }
    // An unclosed tag cannot happen inside a metric: the JSON's own closing braces end the tag,
    // so upstream (and Davy) report the tag with the JSON text it swallowed.
    let run = run_yaml(&format!(
        "{head}  metrics:\n  - name: m\n    provider:\n      web: {{url: 'http://x/{{{{args.path'}}\n"
    ));
    match prepare(&run, now) {
        Prepared::Invalid(step) => {
            let m = step.status.message;
            if m != "Unable to resolve metric arguments: failed to resolve {{args.path\"}}" {
                failures.push(format!("unclosed tag: {m}"));
            }
        }
        other => failures.push(format!("unclosed tag: {other:?}")),
    }
    println!(
        "run error cases: {} checked, {} failed",
        cases.len() + 1,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Argument merging for runs created from templates (upstream `NewAnalysisRunFromTemplates`).
#[test]
fn template_merging_errors_are_upstream_texts() {
    use davy::api::run_spec::new_run_spec_from_templates;
    use davy::api::{AnalysisTemplateSpec, Argument};
    let spec = |yaml: &str| -> AnalysisTemplateSpec { serde_saphyr::from_str(yaml).unwrap() };
    let a = spec(
        "args: [{name: x}, {name: y, value: '1'}]\nmetrics: [{name: m, provider: {web: {url: u}}}]",
    );
    let b = spec("args: [{name: y, value: '2'}]\nmetrics: [{name: n, provider: {web: {url: u}}}]");
    let dup = spec("metrics: [{name: m, provider: {web: {url: u}}}]");
    let given = |name: &str, value: &str| Argument {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    };
    let err = |t: &[&AnalysisTemplateSpec], args: &[Argument]| {
        new_run_spec_from_templates(t, &[], args, &[], &[])
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(err(&[&a], &[]), Some("args.x was not resolved".to_string()));
    assert_eq!(err(&[&a], &[given("x", "v")]), None);
    assert_eq!(
        err(&[&a, &b], &[given("x", "v")]),
        Some("Argument `y` specified multiple times with different values: '1', '2'".to_string())
    );
    assert_eq!(
        err(&[&a, &dup], &[given("x", "v")]),
        Some("two metrics have the same name 'm'".to_string())
    );
    // Caller arguments the templates do not declare are dropped.
    let merged =
        new_run_spec_from_templates(&[&a], &[], &[given("x", "v"), given("z", "w")], &[], &[])
            .unwrap();
    let names: Vec<String> = merged.args.unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, vec!["x".to_string(), "y".to_string()]);
}

/// Secret arguments: read at measurement time, masked in every message.
#[tokio::test]
async fn secret_arguments_are_read_late_and_masked() {
    use davy::analysis::providers::Registry;
    use davy::analysis::runner::{Runner, StaticSecrets};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    let run = run_yaml(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata: {name: r}\nspec:\n  args:\n  - name: token\n    valueFrom: {secretKeyRef: {name: creds, key: token}}\n  metrics:\n  - name: m\n    provider:\n      web: {url: 'http://127.0.0.1:1/{{args.token}}'}\n",
    );
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let clock = move || now;
    let with = |secrets: StaticSecrets| Runner::new(Registry::new(), Arc::new(secrets));
    // Missing key: the run errs with upstream's text.
    let mut secrets = StaticSecrets::default();
    secrets.secrets.insert("creds".into(), BTreeMap::new());
    let step = with(secrets).reconcile(&run, &clock).await.unwrap();
    assert_eq!(step.status.phase, Some(AnalysisPhase::Error));
    assert_eq!(
        step.status.message,
        "Unable to resolve metric arguments: key 'token' does not exist in secret 'creds'"
    );
    // Present: the connection error names the URL, with the secret masked.
    let mut secrets = StaticSecrets::default();
    secrets.secrets.insert(
        "creds".into(),
        BTreeMap::from([("token".to_string(), "s3cr3t-value".to_string())]),
    );
    let step = with(secrets).reconcile(&run, &clock).await.unwrap();
    let m = &step.status.metric_results[0].measurements[0];
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert!(m.message.contains("127.0.0.1:1/*****"), "{}", m.message);
    assert!(!m.message.contains("s3cr3t"), "{}", m.message);
}
