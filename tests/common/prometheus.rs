//! A real Prometheus server for integration tests, and a metrics target it scrapes whose
//! exposition the test controls.
//!
//! `Prometheus::start` runs Debian's `prometheus` on 127.0.0.1 (a free port, a temporary TSDB,
//! 1 s scrape and rule-evaluation intervals) and kills it on drop. Tests wait for data with
//! [`Prometheus::wait_for`], which polls the query API against a deadline instead of sleeping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::server_process::{ServerProcess, find_binary};

/// Builds the exposition text from the seconds elapsed since the target started, so counters
/// can grow at chosen rates.
pub type Exposition = Arc<dyn Fn(f64) -> String + Send + Sync>;

/// A `/metrics` endpoint on 127.0.0.1 serving whatever the test sets.
pub struct MetricsTarget {
    pub addr: SocketAddr,
    exposition: Arc<Mutex<Exposition>>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsTarget {
    /// Starts serving an empty exposition; must be called inside a Tokio runtime.
    pub async fn start() -> MetricsTarget {
        let exposition: Arc<Mutex<Exposition>> = Arc::new(Mutex::new(Arc::new(|_| String::new())));
        let started = Instant::now();
        let shared = exposition.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let shared = shared.clone();
                async move {
                    let render = shared.lock().unwrap().clone();
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        render(started.elapsed().as_secs_f64()),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MetricsTarget {
            addr,
            exposition,
            task,
        }
    }

    /// Serves a fixed exposition text from now on.
    pub fn set_text(&self, text: impl Into<String>) {
        let text: String = text.into();
        *self.exposition.lock().unwrap() = Arc::new(move |_| text.clone());
    }

    /// Serves an exposition computed from the seconds since the target started.
    pub fn set_generator(&self, render: impl Fn(f64) -> String + Send + Sync + 'static) {
        *self.exposition.lock().unwrap() = Arc::new(render);
    }

    /// `http://127.0.0.1:PORT/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
}

impl Drop for MetricsTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running Prometheus; killed (and its temporary directory removed) on drop.
pub struct Prometheus {
    process: ServerProcess,
    /// `http://127.0.0.1:PORT`, the value for a metric's `address`.
    pub url: String,
}

/// The job name every target is scraped under (`up{job="target"}`).
pub const JOB: &str = "target";

/// The Prometheus binary: `$DAVY_PROMETHEUS` or `prometheus` on the PATH, or a panic that names
/// the Debian package to install.
pub fn prometheus_binary() -> PathBuf {
    find_binary("DAVY_PROMETHEUS", &["prometheus"]).unwrap_or_else(|| {
        panic!(
            "the `prometheus` binary is not on the PATH: install the Debian package `prometheus` \
             (apt-get install --no-install-recommends prometheus) or run scripts/test as root"
        )
    })
}

/// Runs Prometheus on the `prometheus.yml` already written in `dir` (a TSDB in `dir/data`) and
/// waits until `/-/ready` answers.
pub async fn launch(dir: tempfile::TempDir) -> ServerProcess {
    let binary = prometheus_binary();
    ServerProcess::start("prometheus", &binary, dir, "/-/ready", |dir, port| {
        vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".to_string(),
        ]
    })
    .await
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second and waits until it is ready.
    pub async fn start(targets: &[&MetricsTarget]) -> Prometheus {
        Self::start_with_rules(targets, None).await
    }

    /// Like [`Prometheus::start`], with a rule file (YAML `groups: [...]`) evaluated every second.
    pub async fn start_with_rules(targets: &[&MetricsTarget], rules: Option<&str>) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let list = targets
            .iter()
            .map(|t| format!("'{}'", t.addr))
            .collect::<Vec<_>>()
            .join(", ");
        let mut config = String::from(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n",
        );
        if let Some(rules) = rules {
            std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
            config.push_str("rule_files: [rules.yml]\n");
        }
        config.push_str(&format!(
            "scrape_configs:\n  - job_name: {JOB}\n    static_configs: [{{targets: [{list}]}}]\n"
        ));
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let process = launch(dir).await;
        let url = process.url.clone();
        Prometheus { process, url }
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// One instant query; the whole JSON response.
    pub async fn query(&self, query: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls `query` until `accept` holds for its response `data.result`, or panics with the
    /// last response after `timeout`.
    pub async fn wait_for(
        &self,
        query: &str,
        timeout: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let response = self.query(query).await;
            let result = &response["data"]["result"];
            if accept(result) {
                return result.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "condition on `{query}` not met within {timeout:?}; last response {response}; log: {}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `query` returns a non-empty vector (the first scrape landed).
    pub async fn wait_for_samples(&self, query: &str) -> Value {
        self.wait_for(query, Duration::from_secs(30), |r| {
            r.as_array().is_some_and(|a| !a.is_empty())
        })
        .await
    }

    /// Stops the server now (for "server down" tests); drop does the same.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}
