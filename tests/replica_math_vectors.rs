//! Runs every entry of the upstream replica-math conformance vectors
//! (`conformance/vectors/replica-math-basic.yaml`, `replica-math-traffic-routed.yaml`) through
//! `davy::rollout::replicas*`, collecting all failures before asserting.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::fs;
use std::path::Path;

use serde_json::Value;

use davy::rollout::replicas::basic::{
    approximate_weighted_counts, basic_canary_replica_counts, replicas_for_scale_down,
};
use davy::rollout::replicas::traffic::traffic_routed_canary_replica_counts;
use davy::rollout::replicas::{
    CanaryParams, PodsOrPercent, ProgressThreshold, ProgressThresholdKind, ReplicaSetCounts,
    RolloutProgress, ScaleOverride, ScaleStep, WeightSplit, all_desired_are_available,
    at_desired_replica_counts, canary_replicas_or_weight, current_set_weight,
    desired_canary_weight, desired_replica_counts, replica_progress_threshold_met,
    traffic_weight_to_replicas,
};

/// Failures of one vector file, with a per-section count of entries run.
#[derive(Default)]
struct Outcome {
    sections: Vec<(String, usize)>,
    failed_entries: usize,
    failures: Vec<String>,
}

impl Outcome {
    fn section(&mut self, file: &Value, name: &str, mut run: impl FnMut(&Value) -> Vec<String>) {
        let entries = file[name]
            .as_array()
            .unwrap_or_else(|| panic!("section {name} missing or not a list"));
        for entry in entries {
            let problems = run(entry);
            if !problems.is_empty() {
                self.failed_entries += 1;
            }
            for problem in problems {
                self.failures
                    .push(format!("[{name}] {} :: {problem}", label(entry)));
            }
        }
        self.sections.push((name.to_string(), entries.len()));
    }

    fn total(&self) -> usize {
        self.sections.iter().map(|(_, count)| count).sum()
    }

    fn report(&self, file: &str) {
        for (name, count) in &self.sections {
            println!("{file} {name}: {count} entries");
        }
        println!(
            "{file}: {} entries, {} passed, {} failed",
            self.total(),
            self.total() - self.failed_entries,
            self.failed_entries
        );
        for failure in &self.failures {
            println!("FAIL {failure}");
        }
    }
}

fn label(entry: &Value) -> String {
    let name = entry["name"].as_str().unwrap_or("<unnamed>");
    match entry["test"].as_str() {
        Some(test) => format!("{test} / {name}"),
        None if entry["name"].is_null() => format!("{entry}"),
        None => name.to_string(),
    }
}

fn load(dir: &Path, file: &str) -> Value {
    let path = dir.join("vectors").join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn int(value: &Value) -> Option<i32> {
    value
        .as_i64()
        .map(|v| i32::try_from(v).expect("int32 in vector"))
}

fn int_or_percent(value: &Value) -> Option<PodsOrPercent> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(PodsOrPercent::String(text.clone())),
        other => Some(PodsOrPercent::Int(int(other).expect("int-or-string"))),
    }
}

fn step(value: &Value) -> ScaleStep {
    let scale = &value["setCanaryScale"];
    ScaleStep {
        set_weight: int(&value["setWeight"]),
        set_canary_scale: scale.is_object().then(|| ScaleOverride {
            replicas: int(&scale["replicas"]),
            weight: int(&scale["weight"]),
            match_traffic_weight: scale["matchTrafficWeight"].as_bool().unwrap_or(false),
        }),
    }
}

/// Builds the replica-math view of a vector's `rollout` object, as the controller would.
fn params(rollout: &Value) -> CanaryParams {
    let spec = &rollout["spec"];
    let canary = &spec["strategy"]["canary"];
    let status = &rollout["status"];
    let threshold = &canary["replicaProgressThreshold"];
    CanaryParams {
        replicas: int(&spec["replicas"]),
        max_surge: int_or_percent(&canary["maxSurge"]),
        max_unavailable: int_or_percent(&canary["maxUnavailable"]),
        steps: canary["steps"]
            .as_array()
            .map(|steps| steps.iter().map(step).collect())
            .unwrap_or_default(),
        traffic_routed: canary
            .get("trafficRouting")
            .is_some_and(|routing| !routing.is_null()),
        max_traffic_weight: int(&canary["trafficRouting"]["maxTrafficWeight"]),
        dynamic_stable_scale: canary["dynamicStableScale"].as_bool().unwrap_or(false),
        min_pods_per_replica_set: int(&canary["minPodsPerReplicaSet"]),
        abort_scale_down_delay_seconds: int(&canary["abortScaleDownDelaySeconds"]),
        replica_progress_threshold: threshold_of(threshold),
        status: RolloutProgress {
            stable_rs: status["stableRS"].as_str().unwrap_or("").to_string(),
            current_pod_hash: status["currentPodHash"].as_str().unwrap_or("").to_string(),
            current_step_index: int(&status["currentStepIndex"]),
            promote_full: status["promoteFull"].as_bool().unwrap_or(false),
            abort: status["abort"].as_bool().unwrap_or(false),
        },
    }
}

fn threshold_of(value: &Value) -> Option<ProgressThreshold> {
    if value.is_null() {
        return None;
    }
    let kind = match value["type"].as_str() {
        Some("Percent") => ProgressThresholdKind::Percent,
        Some("Pod") | Some("Pods") => ProgressThresholdKind::Pod,
        other => panic!("unknown threshold type {other:?}"),
    };
    Some(ProgressThreshold {
        kind,
        value: int(&value["value"]).expect("threshold value"),
    })
}

fn replica_set(value: &Value) -> Option<ReplicaSetCounts> {
    if value.is_null() {
        return None;
    }
    Some(ReplicaSetCounts {
        name: value["name"].as_str().unwrap_or("").to_string(),
        spec_replicas: int(&value["specReplicas"]),
        replicas: int(&value["replicas"]).unwrap_or(0),
        available_replicas: int(&value["availableReplicas"]).expect("availableReplicas"),
    })
}

fn replica_sets(value: &Value) -> Vec<ReplicaSetCounts> {
    value
        .as_array()
        .map(|list| list.iter().filter_map(replica_set).collect())
        .unwrap_or_default()
}

fn weights(value: &Value) -> Option<WeightSplit> {
    if value.is_null() {
        return None;
    }
    Some(WeightSplit {
        canary: int(&value["canary"]).expect("weights.canary"),
        stable: int(&value["stable"]).expect("weights.stable"),
    })
}

fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Option<String> {
    (got != want).then(|| format!("{what}: got {got:?}, want {want:?}"))
}

#[test]
fn replica_math_basic_vectors() {
    let Some(dir) = common::conformance_dir() else {
        return;
    };
    let file = load(&dir, "replica-math-basic.yaml");
    let mut outcome = Outcome::default();

    outcome.section(&file, "cases", |case| {
        let params = params(&case["rollout"]);
        let new_rs = replica_set(&case["newRS"]);
        let stable_rs = replica_set(&case["stableRS"]);
        let others = replica_sets(&case["otherRSs"]);
        let got =
            basic_canary_replica_counts(&params, new_rs.as_ref(), stable_rs.as_ref(), &others);
        let expected = &case["expected"];
        [
            check("trafficRouting absent", params.traffic_routed, false),
            check(
                "canary",
                got.canary,
                int(&expected["canary"]).expect("canary"),
            ),
            check(
                "stable",
                got.stable,
                int(&expected["stable"]).expect("stable"),
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    });

    outcome.section(&file, "approximate_weighted_counts", |case| {
        let got = approximate_weighted_counts(
            int(&case["replicas"]).expect("replicas"),
            int(&case["weight"]).expect("weight"),
            int(&case["maxWeight"]).expect("maxWeight"),
            int(&case["maxSurge"]).expect("maxSurge"),
        );
        let expected = &case["expected"];
        [
            check(
                "canary",
                got.canary,
                int(&expected["canary"]).expect("canary"),
            ),
            check(
                "stable",
                got.stable,
                int(&expected["stable"]).expect("stable"),
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    });

    outcome.section(&file, "scale_down_replicas", |case| {
        let rs = replica_set(&case["rs"]);
        let ignore = case["ignoreAvailability"]
            .as_bool()
            .expect("ignoreAvailability");
        let want = int(&case["expected"]).expect("expected");
        check(
            "replicas",
            replicas_for_scale_down(rs.as_ref(), ignore),
            want,
        )
        .into_iter()
        .collect()
    });

    outcome.section(&file, "at_desired_replica_counts", |case| {
        let params = params(&case["rollout"]);
        let new_rs = replica_set(&case["newRS"]);
        let stable_rs = replica_set(&case["stableRS"]);
        let others = replica_sets(&case["otherRSs"]);
        let weights = weights(&case["weights"]);
        let got = at_desired_replica_counts(
            &params,
            new_rs.as_ref(),
            stable_rs.as_ref(),
            &others,
            weights.as_ref(),
        );
        let mut problems: Vec<String> = check(
            "at desired",
            got,
            case["expected"].as_bool().expect("expected"),
        )
        .into_iter()
        .collect();
        // Not asserted upstream: the vector authors' derived split, checked as a debugging aid.
        let derived = &case["computedDesired"];
        if !derived.is_null() {
            let counts = desired_replica_counts(
                &params,
                new_rs.as_ref(),
                stable_rs.as_ref(),
                &others,
                weights.as_ref(),
            );
            problems.extend(check(
                "computedDesired (derived)",
                (counts.canary, counts.stable),
                (
                    int(&derived["canary"]).expect("canary"),
                    int(&derived["stable"]).expect("stable"),
                ),
            ));
        }
        problems
    });

    outcome.section(&file, "replica_progress_threshold", |case| {
        let threshold = threshold_of(&case["threshold"]);
        let rs = replica_set(&case["rs"]);
        let desired = int(&case["desired"]).expect("desired");
        let got = replica_progress_threshold_met(threshold.as_ref(), rs.as_ref(), desired);
        check("met", got, case["expected"].as_bool().expect("expected"))
            .into_iter()
            .collect()
    });

    outcome.section(&file, "all_desired_available", |case| {
        let rs = replica_set(&case["rs"]);
        let desired = int(&case["desired"]).expect("desired");
        let got = all_desired_are_available(rs.as_ref(), desired);
        check(
            "available",
            got,
            case["expected"].as_bool().expect("expected"),
        )
        .into_iter()
        .collect()
    });

    outcome.report("replica-math-basic");
    assert_eq!(
        outcome.total(),
        116,
        "replica-math-basic entry count changed"
    );
    assert!(
        outcome.failures.is_empty(),
        "{} replica-math-basic vectors failed:\n{}",
        outcome.failed_entries,
        outcome.failures.join("\n")
    );
}

#[test]
fn replica_math_traffic_routed_vectors() {
    let Some(dir) = common::conformance_dir() else {
        return;
    };
    let file = load(&dir, "replica-math-traffic-routed.yaml");
    let mut outcome = Outcome::default();

    outcome.section(&file, "cases", |case| {
        let params = params(&case["rollout"]);
        let new_rs = replica_set(&case["newRS"]);
        let stable_rs = replica_set(&case["stableRS"]);
        let weights = weights(&case["weights"]);
        let got = traffic_routed_canary_replica_counts(
            &params,
            new_rs.as_ref(),
            stable_rs.as_ref(),
            weights.as_ref(),
        );
        let expected = &case["expected"];
        let mut problems: Vec<String> = [
            check("trafficRouting present", params.traffic_routed, true),
            check(
                "stable",
                got.stable,
                int(&expected["stable"]).expect("stable"),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Some upstream cases assert only the stable count; assert exactly what is given.
        if let Some(canary) = int(&expected["canary"]) {
            problems.extend(check("canary", got.canary, canary));
        }
        problems
    });

    outcome.section(&file, "desired_canary_weight", |case| {
        let params = params(&case["rollout"]);
        let new_rs = replica_set(&case["newRS"]);
        let stable_rs = replica_set(&case["stableRS"]);
        let got = desired_canary_weight(&params, new_rs.as_ref(), stable_rs.as_ref());
        check(
            "weight",
            got,
            int(&case["expected_weight"]).expect("expected_weight"),
        )
        .into_iter()
        .collect()
    });

    outcome.section(&file, "traffic_weight_to_replicas", |case| {
        let got = traffic_weight_to_replicas(
            int(&case["replicas"]).expect("replicas"),
            int(&case["weight"]).expect("weight"),
            int(&case["maxWeight"]).expect("maxWeight"),
        );
        check("replicas", got, int(&case["expected"]).expect("expected"))
            .into_iter()
            .collect()
    });

    outcome.section(&file, "canary_replicas_or_weight", |case| {
        let params = params(&case["rollout"]);
        let got = canary_replicas_or_weight(&params, None, None);
        let expected = &case["expected"];
        [
            check("replicas", got.replicas, int(&expected["replicas"])),
            check(
                "weight",
                got.weight,
                int(&expected["weight"]).expect("weight"),
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    });

    outcome.section(&file, "current_set_weight", |case| {
        let params = params(&case["rollout"]);
        let got = current_set_weight(&params);
        check(
            "weight",
            got,
            int(&case["expected_weight"]).expect("expected_weight"),
        )
        .into_iter()
        .collect()
    });

    outcome.report("replica-math-traffic-routed");
    assert_eq!(
        outcome.total(),
        35,
        "replica-math-traffic-routed entry count changed"
    );
    assert!(
        outcome.failures.is_empty(),
        "{} replica-math-traffic-routed vectors failed:\n{}",
        outcome.failed_entries,
        outcome.failures.join("\n")
    );
}
