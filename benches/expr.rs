//! Throughput of condition evaluation: a typical Prometheus success condition, parsed per
//! evaluation (`eval_condition`) and parsed once (`Condition::eval`), plus a full
//! `evaluate_result` with both conditions. Prints evaluations per second.
//!
//! Under `cargo bench` each case runs for about a second; under `cargo test --all-targets`
//! (no `--bench` argument) it runs a few iterations as a smoke test.

// Bench code: a failed unwrap aborts the measurement, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use davy::expr::{Condition, MetricValue, Verdict, eval_condition, evaluate_result};

const CONDITION: &str = "result[0] < 0.05 && !isNaN(result[0])";

/// Runs `f` repeatedly for about `budget`, returns (iterations, evaluations per second).
fn measure(budget: Duration, mut f: impl FnMut() -> bool) -> (u64, f64) {
    let start = Instant::now();
    let mut iterations = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            assert!(black_box(f()), "benchmark condition must hold");
        }
        iterations += 100;
    }
    (
        iterations,
        iterations as f64 / start.elapsed().as_secs_f64(),
    )
}

fn main() {
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let budget = if benchmarking {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(1)
    };
    let result = MetricValue::FloatList(vec![0.01]);

    let (n, rate) = measure(budget, || eval_condition(&result, CONDITION) == Ok(true));
    println!(
        "eval_condition (parse + check + run) `{CONDITION}`: {rate:.0} evaluations/s ({n} runs)"
    );

    let compiled = match Condition::compile(CONDITION) {
        Ok(compiled) => compiled,
        Err(error) => panic!("benchmark condition does not compile: {error}"),
    };
    let (n, rate) = measure(budget, || compiled.eval(&result, None) == Ok(true));
    println!("Condition::eval (check + run, parsed once): {rate:.0} evaluations/s ({n} runs)");

    let (n, rate) = measure(budget, || {
        evaluate_result(&result, CONDITION, "result[0] >= 0.05") == (Verdict::Successful, None)
    });
    println!("evaluate_result (success + failure condition): {rate:.0} measurements/s ({n} runs)");
}
