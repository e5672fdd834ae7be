//! A real Alertmanager (Debian's `prometheus-alertmanager`) for integration tests, and a
//! Prometheus that evaluates alert rules and sends to it.
//!
//! `Alertmanager::start` runs it on 127.0.0.1 (free port, clustering off, temporary storage),
//! routing every alert with `group_wait: 0s` to an optional webhook with a bearer token file;
//! killed on drop. When the binary is absent, [`alertmanager_binary`] returns `None` and the
//! tests print a notice and skip.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

// Re-exported: the Alertmanager tests pick their webhook and metrics ports with it.
#[allow(unused_imports)]
pub use super::server_process::free_port;
use super::server_process::{ServerProcess, find_binary};

/// `$DAVY_ALERTMANAGER`, else `prometheus-alertmanager` or `alertmanager` on the PATH.
pub fn alertmanager_binary() -> Option<PathBuf> {
    find_binary(
        "DAVY_ALERTMANAGER",
        &["prometheus-alertmanager", "alertmanager"],
    )
}

/// The binary, or `None` after printing the skip notice for `test`.
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    let found = alertmanager_binary();
    if found.is_none() {
        println!(
            "NOTICE: {test} skipped: no prometheus-alertmanager binary \
             (apt-get install --no-install-recommends prometheus-alertmanager, or scripts/test as root)"
        );
    }
    found
}

/// A running Alertmanager.
pub struct Alertmanager {
    process: ServerProcess,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Alertmanager {
    /// Starts Alertmanager sending to `webhook` (URL and bearer token) if given, and waits until
    /// it is ready.
    pub async fn start(binary: &Path, webhook: Option<(&str, &str)>) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let receiver = match webhook {
            Some((url, token)) => {
                std::fs::write(dir.path().join("token"), token).unwrap();
                format!(
                    "  - name: davy\n    webhook_configs:\n      - url: '{url}'\n        send_resolved: true\n        http_config:\n          authorization: {{type: Bearer, credentials_file: '{}'}}\n",
                    dir.path().join("token").display()
                )
            }
            None => "  - name: davy\n".to_string(),
        };
        let config = format!(
            "route: {{receiver: davy, group_by: ['alertname'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}\nreceivers:\n{receiver}"
        );
        std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
        let process = ServerProcess::start("alertmanager", binary, dir, "/-/ready", |dir, port| {
            vec![
                format!("--config.file={}", dir.join("alertmanager.yml").display()),
                format!("--storage.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--cluster.listen-address=".to_string(),
                "--log.level=warn".to_string(),
            ]
        })
        .await;
        let url = process.url.clone();
        let addr = process.addr.clone();
        Alertmanager { process, url, addr }
    }

    /// Posts alerts (`[{labels, annotations?, startsAt?, endsAt?}]`) to `/api/v2/alerts`.
    pub async fn post(&self, alerts: Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "{status}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Fires one alert with these labels (no end: firing until resolved).
    pub async fn fire(&self, labels: Value) {
        self.post(json!([{"labels": labels, "annotations": {"summary": "test"}}]))
            .await;
    }

    /// `GET /api/v2/alerts` (all states).
    pub async fn alerts(&self) -> Value {
        reqwest::Client::new()
            .get(format!("{}/api/v2/alerts", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The value of a counter on Alertmanager's own `/metrics` (summed over label sets whose
    /// text contains `filter`).
    pub async fn counter(&self, name: &str, filter: &str) -> f64 {
        let text = reqwest::Client::new()
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        sum_counter(&text, name, filter)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// Sums the samples of `name` whose label text contains `filter` in an exposition.
pub fn sum_counter(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| line.contains(filter))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A Prometheus scraping `targets` every second, evaluating `rules` every second and sending
/// alerts to `alertmanager`; killed on drop.
pub struct AlertingPrometheus {
    process: ServerProcess,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl AlertingPrometheus {
    /// Starts it and waits until it is ready.
    pub async fn start(
        targets: &[SocketAddr],
        rules: &str,
        alertmanager: &str,
    ) -> AlertingPrometheus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}}\n\
             rule_files: [rules.yml]\n\
             alerting:\n  alertmanagers: [{{static_configs: [{{targets: ['{alertmanager}']}}]}}]\n\
             scrape_configs:\n  - job_name: demo\n    static_configs: [{{targets: [{list}]}}]\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let process = super::prometheus::launch(dir).await;
        let url = process.url.clone();
        AlertingPrometheus { process, url }
    }

    /// `/api/v1/alerts` (the rule states), for failure messages.
    pub async fn alerts(&self) -> Value {
        reqwest::Client::new()
            .get(format!("{}/api/v1/alerts", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
