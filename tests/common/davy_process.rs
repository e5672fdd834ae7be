//! `davy` run as real processes in tests (included with `#[path]`): a child killed when
//! dropped, a `davy sandbox --simulate-workloads` on loopback, and a client for a kubeconfig.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `davy sandbox --simulate-workloads` on a free loopback port, writing its kubeconfig
/// to `kubeconfig`; returns once the API server serves.
pub fn start_sandbox(kubeconfig: &Path) -> Process {
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["sandbox", "--simulate-workloads", "--listen", "127.0.0.1:0"])
        .arg("--kubeconfig-out")
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start davy sandbox");
    let stdout = sandbox.stdout.take().expect("stdout");
    let sandbox = Process(sandbox);
    // The second line says the kubeconfig is written: the API server is serving by then.
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..2 {
        lines.next().expect("a line").expect("readable");
    }
    // Keep reading what it prints later: a closed pipe would fail its next write.
    std::thread::spawn(move || lines.for_each(drop));
    sandbox
}

/// A client from the kubeconfig file `kubeconfig`.
pub async fn client_for(kubeconfig: &Path) -> Client {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig).expect("read kubeconfig"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig");
    Client::try_from(config).expect("client")
}
