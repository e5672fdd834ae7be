//! Judge time for n = 10,000 samples per side: `cargo bench --bench judge`.
//!
//! Prints the median and fastest wall time of the full per-metric judgement (NaN strategy,
//! description, rank-sum test, R-exact shift estimate and 98 % interval, classification) and of
//! the rank-sum part alone, over repeated runs on deterministic data (the Park-Miller generator of
//! tests/judge_reference.rs).

// Bench code: a failed unwrap aborts the measurement, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use davy::analysis::stats::{MetricConfig, classify, wilcoxon};

fn generate(seed: u64, n: usize, loc: f64, scale: f64) -> Vec<f64> {
    const M: u64 = 2_147_483_647;
    let mut s = seed;
    let mut next = move || {
        s = 16807 * s % M;
        s as f64 / M as f64
    };
    (0..n)
        .map(|_| loc + scale * (next() + next() + next()))
        .collect()
}

fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[0])
}

fn main() {
    let n = 10_000;
    let config = MetricConfig::default();
    for (label, canary_loc) in [("no shift", 200.0), ("30% higher", 260.0)] {
        let baseline = generate(84, n, 200.0, 40.0);
        let canary = generate(83, n, canary_loc, 40.0);
        let (median, best) = time(50, || {
            black_box(classify(black_box(&baseline), black_box(&canary), &config));
        });
        let verdict = classify(&baseline, &canary, &config).classification;
        println!(
            "judge n={n} per side, {label} ({verdict:?}): median {:.2} ms, best {:.2} ms",
            median.as_secs_f64() * 1e3,
            best.as_secs_f64() * 1e3
        );
        let (median, best) = time(50, || {
            black_box(wilcoxon(black_box(&canary), black_box(&baseline), 0.98, 1e-4).ok());
        });
        println!(
            "  rank-sum test + interval alone: median {:.2} ms, best {:.2} ms",
            median.as_secs_f64() * 1e3,
            best.as_secs_f64() * 1e3
        );
    }
}
