//! Checks the Argo CD health port (`tests/common/argocd_health.rs`) against every case of
//! Argo CD's own health tests (`conformance/argocd-health/*/health_test.yaml`).

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::fs;
use std::path::Path;

use serde_json::Value;

use common::argocd_health::{Health, analysis_run_health, experiment_health, rollout_health};

fn load(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs every case of `<kind>/health_test.yaml`; returns (cases, failures).
fn run_kind(kind: &str, check: fn(&Value) -> Option<Health>) -> Option<(usize, Vec<String>)> {
    let dir = common::conformance_dir()?.join("argocd-health").join(kind);
    let tests = load(&dir.join("health_test.yaml"));
    let cases = tests["tests"].as_array().cloned().unwrap_or_default();
    let mut failures = Vec::new();
    for case in &cases {
        let input = case["inputPath"].as_str().unwrap_or_default();
        let expected = Health {
            status: case["healthStatus"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            message: case["healthStatus"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        let got = check(&load(&dir.join(input)));
        if got.as_ref() != Some(&expected) {
            failures.push(format!(
                "{kind}/{input}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    Some((cases.len(), failures))
}

fn assert_kind(kind: &str, check: fn(&Value) -> Option<Health>, at_least: usize) {
    let Some((count, failures)) = run_kind(kind, check) else {
        return;
    };
    println!(
        "argocd-health {kind}: {count} cases, {} passed",
        count - failures.len()
    );
    assert!(count >= at_least, "{kind}: only {count} cases found");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rollout_health_matches_every_argocd_case() {
    assert_kind("Rollout", |value| Some(rollout_health(value)), 24);
}

#[test]
fn analysis_run_health_matches_every_argocd_case() {
    assert_kind("AnalysisRun", analysis_run_health, 11);
}

#[test]
fn experiment_health_matches_every_argocd_case() {
    assert_kind("Experiment", experiment_health, 6);
}
