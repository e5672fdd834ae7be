//! Argo CD's own health tests (`conformance/argocd-health/*/health_test.yaml`) through the
//! health checks the other tests use (`tests/common/argocd_health.rs`: the real `health.lua`
//! under Lua 5.1, cross-checked with a port), and Argo CD's action tests
//! (`Rollout/actions/action_test.yaml`) through the real `discovery.lua` and `action.lua`.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::fs;
use std::path::Path;

use serde_json::Value;

use common::argocd_health::{Health, analysis_run_health, experiment_health, rollout_health};
use common::argocd_lua;

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

/// Argo CD's discovery cases: which Rollout actions its UI offers, enabled or not.
#[test]
fn rollout_action_discovery_matches_every_argocd_case() {
    let Some(dir) = argocd_lua::scripts_dir() else {
        return;
    };
    let dir = dir.join("Rollout").join("actions");
    let tests = load(&dir.join("action_test.yaml"));
    let cases = tests["discoveryTests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(cases.len() >= 5, "only {} discovery cases", cases.len());
    for case in &cases {
        let input = case["inputPath"].as_str().unwrap_or_default();
        let offered = argocd_lua::discover("Rollout", &load(&dir.join(input))).unwrap();
        let mut expected: Vec<(String, bool)> = case["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["disabled"] != true,
                )
            })
            .collect();
        expected.sort();
        assert_eq!(offered, expected, "{input}");
    }
    println!("argocd actions: {} discovery cases passed", cases.len());
}

/// Argo CD's action cases: the object each Rollout action script returns.
#[test]
fn rollout_actions_match_every_argocd_case() {
    let Some(dir) = argocd_lua::scripts_dir() else {
        return;
    };
    let dir = dir.join("Rollout").join("actions");
    let tests = load(&dir.join("action_test.yaml"));
    let cases = tests["actionTests"].as_array().cloned().unwrap_or_default();
    assert!(cases.len() >= 7, "only {} action cases", cases.len());
    for case in &cases {
        let action = case["action"].as_str().unwrap();
        let input = case["inputPath"].as_str().unwrap_or_default();
        let mut got = argocd_lua::act("Rollout", action, &load(&dir.join(input))).unwrap();
        let expected = load(&dir.join(case["expectedOutputPath"].as_str().unwrap()));
        if action == "restart" {
            // Argo CD's own test fixes the clock; here the script read the real one.
            let at = got["spec"]["restartAt"].as_str().unwrap().to_string();
            chrono::DateTime::parse_from_rfc3339(&at).unwrap_or_else(|e| panic!("{at}: {e}"));
            got["spec"]["restartAt"] = expected["spec"]["restartAt"].clone();
        }
        assert!(
            argocd_lua::same(&got, &expected),
            "{action} on {input}: got {got}, expected {expected}"
        );
    }
    println!("argocd actions: {} action cases passed", cases.len());
}
