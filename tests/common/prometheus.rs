//! A real Prometheus server for integration tests, and a metrics target it scrapes whose
//! exposition the test controls.
//!
//! `Prometheus::start` runs Debian's `prometheus` on 127.0.0.1 (a free port, a temporary TSDB,
//! 1 s scrape and rule-evaluation intervals) and kills it on drop. Tests wait for data with
//! [`Prometheus::wait_for`], which polls the query API against a deadline instead of sleeping.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

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
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`, the value for a metric's `address`.
    pub url: String,
}

/// The job name every target is scraped under (`up{job="target"}`).
pub const JOB: &str = "target";

/// The Prometheus binary: `$DAVY_PROMETHEUS` or `prometheus` on the PATH, or a panic that names
/// the Debian package to install.
pub fn prometheus_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("DAVY_PROMETHEUS") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the `prometheus` binary is not on the PATH: install the Debian package `prometheus` \
             (apt-get install --no-install-recommends prometheus) or run scripts/test as root"
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second and waits until it is ready.
    pub async fn start(targets: &[&MetricsTarget]) -> Prometheus {
        Self::start_with_rules(targets, None).await
    }

    /// Like [`Prometheus::start`], with a rule file (YAML `groups: [...]`) evaluated every second.
    pub async fn start_with_rules(targets: &[&MetricsTarget], rules: Option<&str>) -> Prometheus {
        let binary = prometheus_binary();
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
        let client = reqwest::Client::new();
        // A port picked free can be taken before Prometheus binds it: retry with another.
        for _attempt in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut child = Command::new(&binary)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: most likely the port; try another
                }
                let ready = client
                    .get(format!("{url}/-/ready"))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return Prometheus { child, dir, url };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("prometheus not ready after 30 s: {}", Self::read_log(&dir));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("prometheus did not start: {}", Self::read_log(&dir));
    }

    fn read_log(dir: &tempfile::TempDir) -> String {
        std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        Self::read_log(&self.dir)
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}
