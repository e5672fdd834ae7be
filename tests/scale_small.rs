//! `davy bench scale` at a small N as a correctness test: the real binary runs the sandbox,
//! starts `davy controller` as its child, takes 50 Rollouts through a first rollout and an image
//! change, and reports. Every Rollout must end Healthy on the new revision, with one ReplicaSet
//! per pod-template hash, and every figure present and plausible. The figures themselves are
//! benchmark numbers (docs/benchmarks.md), not asserted here.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ROLLOUTS: u64 = 50;
/// The whole run's bound, above the bench's own per-wave timeout (two waves plus start-up).
const DEADLINE: Duration = Duration::from_secs(600);

fn number(report: &Value, field: &str) -> f64 {
    report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {report:#}"))
}

#[test]
fn fifty_rollouts_roll_out_twice_without_duplicate_replica_sets() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["bench", "scale", "--rollouts", &ROLLOUTS.to_string()])
        .args(["--output", "json", "--timeout", "240", "--idle", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start davy bench scale");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the bench") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("davy bench scale did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = child.wait_with_output().expect("bench output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "bench failed ({status}); stderr:\n{stderr}\nstdout:\n{stdout}"
    );
    // The progress lines went to stderr, the report alone to stdout.
    assert!(stderr.contains("wave 2: 50/50 healthy"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("the report is JSON");

    assert_eq!(report["rollouts"], ROLLOUTS, "{report:#}");
    assert_eq!(report["healthy"], ROLLOUTS, "{report:#}");
    assert_eq!(report["completed"], true, "{report:#}");
    assert_eq!(report["duplicate_replica_sets"], 0, "{report:#}");

    let peak = number(&report, "controller_peak_rss_bytes");
    let steady = number(&report, "controller_steady_rss_bytes");
    assert!(steady > 0.0 && peak >= steady, "{report:#}");
    assert!(
        number(&report, "controller_cpu_seconds") > 0.0,
        "{report:#}"
    );
    assert!(number(&report, "reconciles_per_second") > 0.0, "{report:#}");
    // At least one create (a ReplicaSet) per Rollout per wave goes through the API.
    assert!(
        number(&report, "api_requests_per_rollout") >= 2.0,
        "{report:#}"
    );

    let first = number(&report, "seconds_to_all_healthy");
    let second = number(&report, "seconds_to_all_updated_healthy");
    assert!(first > 0.0 && second > 0.0, "{report:#}");
    // Wave 2 goes through a 1 s pause on every Rollout, so it cannot be faster than that.
    assert!(second >= 1.0, "{report:#}");

    // Each Rollout paused once (wave 2; a first rollout skips the steps), and no timed pause
    // ended before its due time (startTime + 1 s).
    assert_eq!(report["pauses_measured"], ROLLOUTS, "{report:#}");
    let p50 = number(&report, "step_lateness_p50_seconds");
    let p99 = number(&report, "step_lateness_p99_seconds");
    assert!(0.0 <= p50 && p50 <= p99, "{report:#}");
}
