//! `davy lint` throughput: generates a 10,000-document manifest (Rollouts with their Services
//! and AnalysisTemplates, so references are resolved too) in a temporary directory, lints it in
//! process and with the real binary, and prints documents per second.
//!
//! Run with `cargo bench --bench lint` (release build). Under `cargo test --all-targets` (no
//! `--bench` argument) it lints 400 documents as a smoke test.

// Bench code: a failed unwrap aborts the measurement, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use davy::cli::lint::{Source, lint_sources};

/// Documents in the generated manifest when benchmarking.
const DOCS: usize = 10_000;
/// Documents in the smoke test.
const SMOKE_DOCS: usize = 400;

fn group(i: usize) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: app-{i}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: app-{i}}}
  template:
    metadata:
      labels: {{app: app-{i}}}
    spec:
      containers:
      - name: app
        image: example/app:{i}
        ports:
        - {{name: http, containerPort: 8080}}
        resources:
          requests: {{cpu: 5m, memory: 32Mi}}
  strategy:
    canary:
      canaryService: app-{i}-canary
      stableService: app-{i}-stable
      trafficRouting:
        nginx:
          stableIngress: app-{i}
      steps:
      - setWeight: 20
      - pause: {{duration: 30s}}
      - analysis:
          templates:
          - templateName: rate-{i}
          args:
          - name: service
            value: app-{i}
      - setWeight: 60
      - pause: {{}}
---
apiVersion: v1
kind: Service
metadata:
  name: app-{i}-stable
spec:
  selector: {{app: app-{i}}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata:
  name: app-{i}-canary
spec:
  selector: {{app: app-{i}}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: rate-{i}
spec:
  args:
  - name: service
  metrics:
  - name: success-rate
    interval: 30s
    count: 4
    failureLimit: 1
    successCondition: result[0] >= 0.99
    provider:
      prometheus:
        address: http://prometheus:9090
        query: sum(rate(http_requests_total{{service=\"{{{{args.service}}}}\",code!~\"5..\"}}[1m]))
---
"
    )
}

fn main() {
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let docs = if benchmarking { DOCS } else { SMOKE_DOCS };
    // Four documents per group; no Ingresses, so the nginx look-up finds no Ingress kind in the
    // bundle and is skipped.
    let text: String = (0..docs / 4).map(group).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bundle.yaml");
    std::fs::write(&path, &text).expect("write bundle");
    println!("lint bench: {docs} documents, {} bytes", text.len());

    let sources = vec![Source {
        name: "bundle.yaml".into(),
        text,
    }];
    let start = Instant::now();
    let findings = lint_sources(&sources);
    let secs = start.elapsed().as_secs_f64();
    assert!(
        findings.is_empty(),
        "generated bundle must be clean: {:?}",
        findings.first()
    );
    println!(
        "in process:  {:.3} s, {:.0} documents/s",
        secs,
        docs as f64 / secs
    );

    let start = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["lint", "-f"])
        .arg(&path)
        .output()
        .expect("run davy");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    println!(
        "davy binary: {:.3} s, {:.0} documents/s",
        secs,
        docs as f64 / secs
    );
}
