//! `davy demo --prometheus`: a real Prometheus on 127.0.0.1 scraping the demo pods (found
//! through a `file_sd` targets file the demo keeps up to date), and the AnalysisTemplate
//! metric that queries it instead of scraping the pods directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use super::world::NAMESPACE;
use crate::api::consts::label;
use crate::sandbox::simulator::pod_endpoint;

/// How long Prometheus may take to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Prometheus.
pub struct Prometheus {
    child: tokio::process::Child,
    addr: SocketAddr,
    dir: PathBuf,
    last_targets: Mutex<String>,
}

/// `prometheus` on PATH, if any.
pub fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// The Prometheus configuration: scrape every second the targets in `targets`.
pub fn config_yaml(targets: &Path) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: davy-demo\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
        targets.display()
    )
}

/// The `file_sd` document for the ready demo pods (pure).
pub fn targets_json(pods: &[Pod]) -> String {
    let groups: Vec<Value> = pods
        .iter()
        .filter_map(|pod| {
            let endpoint = pod_endpoint(pod)?;
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            Some(json!({
                "targets": [endpoint.to_string()],
                "labels": {
                    "pod": pod.metadata.name.clone().unwrap_or_default(),
                    "rollouts_pod_template_hash":
                        labels.get(label::POD_TEMPLATE_HASH).cloned().unwrap_or_default(),
                },
            }))
        })
        .collect();
    Value::Array(groups).to_string()
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port; `None` when the binary is not on PATH.
    pub async fn start() -> anyhow::Result<Option<Prometheus>> {
        let Some(binary) = find_binary() else {
            return Ok(None);
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(format!("davy-demo-prometheus-{port}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let targets = dir.join("targets.json");
        std::fs::write(&targets, "[]")?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_yaml(&targets))?;
        let child = tokio::process::Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let prom = Prometheus {
            child,
            addr,
            dir,
            last_targets: Mutex::new(String::new()),
        };
        let http = reqwest::Client::builder().no_proxy().build()?;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let ready = http
                .get(format!("http://{addr}/-/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(Some(prom));
            }
            if tokio::time::Instant::now() >= deadline {
                prom.stop().await;
                anyhow::bail!("not ready after {}s", READY_TIMEOUT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metric fields that replace the template's scrape provider: a scalar success rate
    /// over the last 10 s of the canary pods' counters, after a delay that lets Prometheus
    /// discover and scrape them several times (too few samples give NaN: Inconclusive).
    pub fn metric_patch(&self) -> Value {
        let sel = "rollouts_pod_template_hash=\"{{args.canary-hash}}\"";
        json!({
            "initialDelay": "6s",
            "provider": {
                "prometheus": {
                    "address": format!("http://{}", self.addr),
                    "query": format!(
                        "scalar(sum(increase(http_requests_total{{{sel},code!~\"5..\"}}[10s]))) / scalar(sum(increase(http_requests_total{{{sel}}}[10s])))"
                    ),
                }
            }
        })
    }

    /// Rewrites the targets file when the set of ready pods changed.
    pub async fn update_targets(&self, client: &Client) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        let Ok(list) = pods.list(&ListParams::default()).await else {
            return;
        };
        let text = targets_json(&list.items);
        let mut last = self.last_targets.lock().unwrap_or_else(|e| e.into_inner());
        if *last != text && std::fs::write(self.dir.join("targets.json"), &text).is_ok() {
            *last = text;
        }
    }

    /// Stops Prometheus and removes its files.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ready_pods_no_targets() {
        assert_eq!(targets_json(&[]), "[]");
        assert!(config_yaml(Path::new("/t/targets.json")).contains("files: ['/t/targets.json']"));
    }
}
