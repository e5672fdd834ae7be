//! Cost of judging a large AnalysisRun: one assessment pass (`assess_run`) and one whole pure
//! reconcile (`prepare` + `apply` recording one measurement per metric) over a run with
//! 10,000 metrics, each with a result of 10 measurements. Prints the time per pass.
//!
//! Under `cargo bench` each case repeats for about two seconds; under `cargo test
//! --all-targets` (no `--bench` argument) it runs once as a smoke test.

// Bench code: a failed unwrap aborts the measurement, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use davy::analysis::reconcile::{Outcome, Prepared, apply, prepare};
use davy::analysis::run_phase::assess_run;
use davy::api::{
    AnalysisPhase, AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, Measurement, Metric,
    MetricResult,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

const METRICS: usize = 10_000;

fn run(now: Timestamp) -> AnalysisRun {
    let earlier = now.checked_sub(Duration::from_secs(120)).unwrap_or(now);
    let metrics: Vec<Metric> = (0..METRICS)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "name": format!("metric-{i}"),
                "interval": "1m",
                "count": 20,
                "failureLimit": 3,
                "successCondition": "result[0] >= 0.95",
                "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "up"}},
            }))
            .unwrap_or_default()
        })
        .collect();
    let results = metrics
        .iter()
        .map(|m| MetricResult {
            name: m.name.clone(),
            phase: AnalysisPhase::Running,
            count: 10,
            successful: 9,
            failed: 1,
            measurements: (0..10)
                .map(|_| Measurement {
                    phase: AnalysisPhase::Successful,
                    value: "[0.99]".into(),
                    started_at: Some(Time(earlier)),
                    finished_at: Some(Time(earlier)),
                    ..Measurement::default()
                })
                .collect(),
            ..MetricResult::default()
        })
        .collect();
    let mut run = AnalysisRun::new(
        "bench",
        AnalysisRunSpec {
            metrics,
            ..AnalysisRunSpec::default()
        },
    );
    run.status = Some(AnalysisRunStatus {
        phase: Some(AnalysisPhase::Running),
        started_at: Some(Time(earlier)),
        metric_results: results,
        ..AnalysisRunStatus::default()
    });
    run
}

fn time(budget: Duration, mut f: impl FnMut()) -> (u32, Duration) {
    let start = Instant::now();
    let mut passes = 0;
    loop {
        f();
        passes += 1;
        if start.elapsed() >= budget {
            return (passes, start.elapsed() / passes);
        }
    }
}

fn main() {
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let budget = if benchmarking {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    let now: Timestamp = "2026-01-01T00:10:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let run = run(now);
    let metrics = run.spec.metrics.clone();
    let dry = BTreeSet::new();

    let (passes, per_pass) = time(budget, || {
        let mut status = run.status.clone().unwrap_or_default();
        let assessment = assess_run(false, &mut status, &metrics, &dry, now);
        assert_eq!(black_box(assessment.phase), AnalysisPhase::Running);
    });
    println!(
        "assess_run over {METRICS} metric results: {:.2} ms per pass ({passes} passes)",
        per_pass.as_secs_f64() * 1e3
    );

    let (passes, per_pass) = time(budget, || {
        let Prepared::Measure(plan) = prepare(&run, now) else {
            panic!("the run should measure");
        };
        assert_eq!(plan.tasks.len(), METRICS);
        let outcomes = plan
            .tasks
            .iter()
            .map(|task| Outcome {
                task: task.clone(),
                measurement: Measurement {
                    phase: AnalysisPhase::Successful,
                    value: "[0.99]".into(),
                    started_at: Some(Time(now)),
                    ..Measurement::default()
                },
                metadata: BTreeMap::new(),
            })
            .collect();
        let step = apply(&run, &plan, outcomes, &[], now);
        let counts = step
            .status
            .metric_results
            .iter()
            .map(|r| r.count)
            .sum::<i32>();
        assert_eq!(black_box(counts), 11 * METRICS as i32);
        assert_eq!(step.garbage_collect.len(), METRICS);
    });
    println!(
        "prepare + apply (10,000 measurements recorded): {:.2} ms per pass ({passes} passes)",
        per_pass.as_secs_f64() * 1e3
    );
}
