//! Sandbox API server setups shared by the sandbox tests: the `example.dev` Widget and Gadget
//! kinds of `fixtures/sandbox-crds.yaml` on an in-process server, and a server on a free
//! loopback port with the kubeconfig it writes, for tests that drive real binaries over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use davy::sandbox::apiserver::{ApiServer, ServeHandle};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Client, CustomResource};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "example.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    schema = "disabled"
)]
pub struct WidgetSpec {
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(default)]
    pub ready: i64,
    #[serde(default)]
    pub observed_generation: i64,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "example.dev",
    version = "v1",
    kind = "Gadget",
    namespaced,
    status = "WidgetStatus",
    schema = "disabled"
)]
pub struct GadgetSpec {
    pub size: i64,
}

/// A CRD with status and scale subresources, and one with none.
pub const CRDS: &str = include_str!("../fixtures/sandbox-crds.yaml");

/// An in-process sandbox (bookmarks every 50 ms) with the Widget and Gadget CRDs, and a client.
pub fn setup() -> (ApiServer, Client) {
    let server = ApiServer::builder()
        .bookmark_interval(Duration::from_millis(50))
        .build();
    let names = server.install_crds_from_yaml(CRDS).unwrap();
    assert_eq!(names, vec!["widgets.example.dev", "gadgets.example.dev"]);
    let client = server.client();
    (server, client)
}

/// A ConfigMap named `name` holding `data`.
pub fn cm(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap()
}

/// A Widget of `size` with no color.
pub fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size, color: None })
}

/// A sandbox served over HTTP on a free 127.0.0.1 port, with its own runtime and a kubeconfig
/// for it in a temporary directory (which also serves as HOME for the binaries under test).
/// Fields are in drop order: the runtime stops before the server and its files go.
pub struct HttpSandbox {
    pub runtime: tokio::runtime::Runtime,
    pub server: ApiServer,
    pub http: ServeHandle,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl HttpSandbox {
    /// Serves `server` (CRDs already installed as the test wants) and writes its kubeconfig.
    pub fn start(server: ApiServer) -> HttpSandbox {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let http = runtime.block_on(server.serve(addr)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig, http.addr()).unwrap();
        HttpSandbox {
            runtime,
            server,
            http,
            dir,
            kubeconfig,
        }
    }
}
