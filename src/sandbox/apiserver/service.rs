//! The two transports over one handler: an in-process `tower::Service` for `kube::Client`, and
//! HTTP on a loopback port (axum) for kubectl and other processes; plus the kubeconfig writer.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http_body_util::BodyExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::http::handle;
use super::requests::Transport;

/// `tower::Service` answering kube-rs requests without a socket; watch bodies stream.
#[derive(Clone)]
pub struct InProcessService {
    pub(super) inner: Arc<Inner>,
}

impl tower::Service<http::Request<kube::client::Body>> for InProcessService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => {
                    let err = super::ApiError::BadRequest(format!("reading the request body: {e}"));
                    return Ok(super::http::error_response(&err));
                }
            };
            let cancel = inner.shutdown.clone();
            Ok(handle(&inner, parts, bytes, cancel, Transport::InProcess).await)
        })
    }
}

/// A running HTTP listener; dropping it (or [`ServeHandle::shutdown`]) stops it and ends its
/// open watch streams.
#[derive(Debug)]
pub struct ServeHandle {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ServeHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, ends open watches, and waits for the server task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            // The task only ends by shutdown; a join error means it panicked, nothing to undo.
            let _ = task.await;
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub(super) async fn serve(inner: Arc<Inner>, addr: SocketAddr) -> std::io::Result<ServeHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let cancel = inner.shutdown.child_token();
    let handler_cancel = cancel.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let inner = inner.clone();
        let cancel = handler_cancel.clone();
        async move {
            let (parts, body) = req.into_parts();
            match axum::body::to_bytes(body, usize::MAX).await {
                Ok(bytes) => handle(&inner, parts, bytes, cancel, Transport::Http).await,
                Err(e) => super::http::error_response(&super::ApiError::BadRequest(format!(
                    "reading the request body: {e}"
                ))),
            }
        }
    });
    let shutdown = cancel.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        // Small JSON answers: send each at once rather than waiting to fill a segment.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY on a sandbox connection");
            }
        });
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "sandbox API server stopped with an error");
        }
    });
    Ok(ServeHandle {
        addr,
        cancel,
        task: Some(task),
    })
}

/// A kubeconfig whose current context points at `http://addr` (no credentials, namespace default).
pub fn kubeconfig_yaml(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: davy-sandbox\n  cluster:\n    server: http://{addr}\n\
         contexts:\n- name: davy-sandbox\n  context:\n    cluster: davy-sandbox\n    user: davy-sandbox\n    namespace: default\n\
         current-context: davy-sandbox\nusers:\n- name: davy-sandbox\n  user: {{}}\npreferences: {{}}\n"
    )
}

pub fn write_kubeconfig(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    std::fs::write(path, kubeconfig_yaml(addr))
}
