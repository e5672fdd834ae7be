//! `davy sandbox` as a user runs it: the real binary on a free loopback port, the real `kubectl`
//! against it through the kubeconfig it writes, then SIGTERM stops it cleanly.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn davy_sandbox_serves_kubectl_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start davy sandbox");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first line").expect("readable");
    assert!(
        first.starts_with("sandbox API server listening on http://127.0.0.1:"),
        "{first}"
    );
    let port: u16 = first
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    assert_ne!(port, 0, "port 0 is replaced by the chosen port");
    let second = lines.next().expect("a second line").expect("readable");
    assert_eq!(
        second,
        format!("kubeconfig written to {}", kubeconfig.display())
    );

    if std::path::Path::new("/usr/bin/kubectl").exists() {
        // Davy's CRDs are installed before the port is announced.
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "crd", "-o", "name"])
            .output()
            .expect("run kubectl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for crd in [
            "rollouts.argoproj.io",
            "analysistemplates.argoproj.io",
            "clusteranalysistemplates.argoproj.io",
            "analysisruns.argoproj.io",
            "experiments.argoproj.io",
        ] {
            assert!(text.contains(crd), "{crd} missing from:\n{text}");
        }
    } else {
        println!("NOTICE: kubectl not found; only the start and stop of davy sandbox are checked");
    }

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    // Wait for the exit on a thread, so the test bounds the wait without polling.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("davy sandbox did not stop within 30 s of SIGTERM")
        .expect("wait for davy sandbox");
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(
        rest.last().map(String::as_str),
        Some("sandbox stopped"),
        "{rest:?}"
    );
}
