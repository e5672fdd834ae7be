//! The pod metrics gateway: `GET /pods/<label selector>/metrics` answers the `/metrics` of every
//! ready sandbox Pod the selector matches, each sample labelled with its `pod`.
//!
//! Why it exists: in a cluster every Pod has its own IP and the `davy/scrape` plugin reads
//! `<podIP>:<port>/metrics`; sandbox Pods all share 127.0.0.1 and differ by port (the
//! simulator's port annotation), which a pod selector plus one port cannot express. The demo
//! therefore points the template's `targets` at this gateway, which plays the pod network.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sandbox::simulator::pod_endpoint;

#[derive(Clone)]
struct Gateway {
    client: Client,
    namespace: String,
    http: reqwest::Client,
}

/// The running gateway.
pub struct GatewayHandle {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl GatewayHandle {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The scrape URL of the pods matching `selector` (which may hold `{{args.x}}` tags).
    pub fn url(&self, selector: &str, path: &str) -> String {
        format!("http://{}/pods/{selector}{path}", self.addr)
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        // A join error means the server task panicked; nothing is left to stop.
        let _ = self.task.await;
    }
}

/// Serves the gateway for `namespace` on a free port of 127.0.0.1.
pub async fn start(client: Client, namespace: &str) -> std::io::Result<GatewayHandle> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(std::io::Error::other)?;
    let state = Gateway {
        client,
        namespace: namespace.to_string(),
        http,
    };
    let app = Router::new()
        .route("/pods/{selector}/metrics", get(pod_metrics))
        .with_state(state);
    let cancel = CancellationToken::new();
    let stop = cancel.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(%error, "demo metrics gateway stopped");
        }
    });
    Ok(GatewayHandle { addr, cancel, task })
}

async fn pod_metrics(State(gw): State<Gateway>, Path(selector): Path<String>) -> Response {
    let pods: Api<Pod> = Api::namespaced(gw.client.clone(), &gw.namespace);
    let list = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let mut out = String::new();
    let mut first = true;
    for pod in &list.items {
        let Some(endpoint) = pod_endpoint(pod) else {
            continue;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let text = match gw
            .http
            .get(format!("http://{endpoint}/metrics"))
            .send()
            .await
        {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            // A pod going away between the list and the scrape is simply left out, as
            // Prometheus would mark that target down.
            Err(_) => continue,
        };
        out.push_str(&with_pod_label(&text, &name, first));
        first = false;
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}

/// The exposition `text` with `pod="<pod>"` added to every sample; comment lines are kept only
/// when `keep_comments` (so HELP/TYPE appear once when pods are concatenated).
pub fn with_pod_label(text: &str, pod: &str, keep_comments: bool) -> String {
    let label = format!("pod=\"{}\"", pod.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('#') {
            if keep_comments {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let name_end = trimmed
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(trimmed.len());
        let (name, rest) = trimmed.split_at(name_end);
        if let Some(labels) = rest.strip_prefix('{') {
            if labels.trim_start().starts_with('}') {
                out.push_str(&format!("{name}{{{label}{labels}\n"));
            } else {
                out.push_str(&format!("{name}{{{label},{labels}\n"));
            }
        } else {
            out.push_str(&format!("{name}{{{label}}}{rest}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_every_sample() {
        let text = "# HELP x help\n# TYPE x counter\nx{code=\"200\"} 3\nup 1\nempty{} 2\n";
        assert_eq!(
            with_pod_label(text, "p-1", true),
            "# HELP x help\n# TYPE x counter\nx{pod=\"p-1\",code=\"200\"} 3\nup{pod=\"p-1\"} 1\nempty{pod=\"p-1\"} 2\n"
        );
        assert_eq!(
            with_pod_label(text, "p-2", false),
            "x{pod=\"p-2\",code=\"200\"} 3\nup{pod=\"p-2\"} 1\nempty{pod=\"p-2\"} 2\n"
        );
    }
}
