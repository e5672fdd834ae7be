//! `davy judge` as a user runs it: the built binary on two sample files.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write sample file");
    path.to_string_lossy().into_owned()
}

fn judge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("judge")
        .args(args)
        .output()
        .expect("run davy judge")
}

const BASELINE: &str =
    "# baseline latency, ms\n201\n215\n188\n230\n207\n\n199\n222\n210\n195\n218\n";
const CANARY: &str = "262\n281\n255 # slowest pod warming up\n300\n247\n290\n271\n266\n310\n259\n";

#[test]
fn judges_a_slower_canary_high_with_r_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = write(dir.path(), "baseline.txt", BASELINE);
    let canary = write(dir.path(), "canary.txt", CANARY);
    let out = judge(&["--baseline", &base, "--canary", &canary, "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["classification"], "High");
    // R 4.2.2: wilcox.test(canary, baseline, conf.int = TRUE, conf.level = 0.98, exact = FALSE)
    // gives p 0.00018267179110955016, estimate 63.69402446994031,
    // interval [44.000058295261276, 88.99996115875447].
    let p = v["p_value"].as_f64().expect("p_value");
    assert!(
        (p / 0.000_182_671_791_109_550_16 - 1.0).abs() < 1e-9,
        "p = {p}"
    );
    // serde_json's default float parser may be one ulp off, hence 1e-15 rather than equality.
    let near = |key: &str, want: f64| {
        let got = v[key].as_f64().unwrap_or(f64::NAN);
        assert!(
            (got / want - 1.0).abs() < 1e-15,
            "{key} = {got}, want {want}"
        );
    };
    near("estimate", 63.694_024_469_940_31);
    near("ci_low", 44.000_058_295_261_276);
    near("ci_high", 88.999_961_158_754_47);
    near("mean_ratio", 274.1 / 208.5);
}

#[test]
fn direction_decides_and_equal_samples_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = write(dir.path(), "baseline.txt", BASELINE);
    let canary = write(dir.path(), "canary.txt", CANARY);
    let out = judge(&[
        "--baseline",
        &base,
        "--canary",
        &canary,
        "--direction",
        "decrease",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["classification"], "Pass");

    let out = judge(&["--baseline", &canary, "--canary", &base, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["classification"], "Low");

    let out = judge(&["--baseline", &base, "--canary", &base]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("classification:  Pass\n"), "{text}");
}

#[test]
fn bad_file_names_file_line_and_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = write(dir.path(), "baseline.txt", BASELINE);
    let bad = write(dir.path(), "canary.txt", "262\n281\n\n2 55\n");
    let out = judge(&["--baseline", &base, "--canary", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{bad}:4: not a finite number: \"2 55\"")),
        "stderr: {err}"
    );
    assert!(out.stdout.is_empty());

    let missing = dir.path().join("missing.txt");
    let out = judge(&["--baseline", &base, "--canary", &missing.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.txt"));
}

#[test]
fn no_data_is_exit_two() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = write(dir.path(), "baseline.txt", BASELINE);
    let empty = write(dir.path(), "canary.txt", "# nothing scraped\nNaN\n");
    let out = judge(&["--baseline", &base, "--canary", &empty, "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["classification"], "Nodata");
    assert!(v["p_value"].is_null());
}

/// The worked example of docs/judge.md, with R 4.2.2's numbers for it.
#[test]
fn docs_worked_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = |s: &str| s.split(' ').collect::<Vec<_>>().join("\n");
    let base = write(
        dir.path(),
        "b.txt",
        &lines(
            "0.98 1.05 0.91 1.12 1.00 0.95 1.08 0.89 1.03 0.97 1.10 0.93 1.01 1.06 0.99 0.92 1.04 1.09 0.96 1.02",
        ),
    );
    let canary = write(
        dir.path(),
        "c.txt",
        &lines(
            "1.27 1.35 1.22 1.41 1.30 1.19 1.38 1.25 1.33 1.29 1.44 1.21 1.31 1.36 1.28 1.24 1.39 1.32 1.26 1.34",
        ),
    );
    let base_i = write(
        dir.path(),
        "bi.txt",
        &lines(
            "3.02 2.96 3.11 2.93 3.05 3.00 2.91 3.08 2.97 3.04 2.99 3.10 2.94 3.03 2.98 3.06 2.92 3.09 3.01 2.95",
        ),
    );
    let canary_i = write(
        dir.path(),
        "ci.txt",
        &lines(
            "2.97 3.08 2.93 3.04 3.11 2.99 3.02 2.90 3.06 3.00 2.95 3.09 2.98 3.03 2.92 3.07 3.01 2.96 3.05 2.94",
        ),
    );
    let cases = [
        (
            &base,
            &canary,
            1,
            "High",
            [0.3000125233871392, 0.2400282533745561, 0.3599413610009563],
        ),
        (
            &base_i,
            &canary_i,
            0,
            "Pass",
            [
                -1.2392576038335263e-05,
                -0.05000018507592148,
                0.05007076433358779,
            ],
        ),
    ];
    for (b, c, code, class, [est, lo, hi]) in cases {
        let out = judge(&[
            "--baseline",
            b,
            "--canary",
            c,
            "--direction",
            "increase",
            "--output",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(code));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        assert_eq!(v["classification"], class);
        for (key, want) in [("estimate", est), ("ci_low", lo), ("ci_high", hi)] {
            let got = v[key].as_f64().unwrap_or(f64::NAN);
            assert!(
                (got / want - 1.0).abs() < 1e-15,
                "{class}: {key} = {got}, R {want}"
            );
        }
    }
}
