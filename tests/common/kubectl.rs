//! The real `kubectl` against a sandbox served over HTTP: a fresh kubeconfig, HOME and
//! discovery cache per sandbox, commands that assert success, JSON output parsed, and a
//! printed skip notice where kubectl is not installed.

#![allow(dead_code)]

use std::ops::Deref;
use std::path::Path;
use std::process::{Command, Output};

use davy::sandbox::apiserver::ApiServer;
use serde_json::Value;

use super::sandbox::HttpSandbox;

/// Where the kubectl under test lives.
pub const KUBECTL: &str = "/usr/bin/kubectl";

/// Whether kubectl is installed; prints a notice when it is not, so the skip is visible.
pub fn kubectl_present() -> bool {
    if Path::new(KUBECTL).exists() {
        return true;
    }
    println!("NOTICE: {KUBECTL} is absent; kubectl tests skipped");
    false
}

/// A sandbox on a loopback port with kubectl pointed at it.
pub struct Kubectl(pub HttpSandbox);

impl Deref for Kubectl {
    type Target = HttpSandbox;
    fn deref(&self) -> &HttpSandbox {
        &self.0
    }
}

impl Kubectl {
    /// A fresh sandbox.
    pub fn start() -> Kubectl {
        Kubectl::with(ApiServer::new())
    }

    /// `server` served over HTTP.
    pub fn with(server: ApiServer) -> Kubectl {
        Kubectl(HttpSandbox::start(server))
    }

    /// A kubectl command with this sandbox's kubeconfig, HOME and cache.
    pub fn command(&self, args: &[&str]) -> Command {
        let dir = self.0.dir.path();
        let mut cmd = Command::new(KUBECTL);
        cmd.env("KUBECONFIG", &self.0.kubeconfig)
            .env("HOME", dir)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .args(args);
        cmd
    }

    /// Runs kubectl, whatever the outcome.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\nstdout: {stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Writes `content` to `name` in the sandbox's directory; returns the path.
    pub fn file(&self, name: &str, content: &str) -> String {
        let p = self.0.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// `kubectl apply --validate=false -f` of `yaml` written to `name`.
    pub fn apply(&self, name: &str, yaml: &str) -> String {
        let path = self.file(name, yaml);
        self.ok(&["apply", "--validate=false", "-f", &path])
    }

    /// kubectl with `-o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// A kube client on the sandbox (kube's request buffer needs the runtime to start).
    pub fn client(&self) -> kube::Client {
        let _guard = self.0.runtime.enter();
        self.0.server.client()
    }

    /// Runs a future on the sandbox's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.0.runtime.block_on(f)
    }
}
