//! `davy controller`: runs the Rollout controller against a cluster until Ctrl-C.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::cli::kube::KubeArgs;
use crate::controller::{ControllerConfig, run as run_controller};

/// Arguments of `davy controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Serve `/metrics` and `/healthz` on this address.
    #[arg(long, default_value = "0.0.0.0:8090")]
    pub metrics_addr: SocketAddr,
}

/// Builds a client and runs the controller until Ctrl-C. The global `--kubeconfig` picks the
/// cluster (default: in-cluster config, then `$KUBECONFIG` / `~/.kube/config`); the global
/// `-n` restricts it to one namespace (default: all namespaces).
pub fn run(args: &ControllerArgs, kube_args: &KubeArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        let client = match &kube_args.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let config = kube::Config::from_custom_kubeconfig(
                    kubeconfig,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .with_context(|| format!("loading {}", path.display()))?;
                kube::Client::try_from(config).context("building the client")?
            }
            None => kube::Client::try_default()
                .await
                .context("no kubeconfig and no in-cluster configuration")?,
        };
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            // Ctrl-C (or a failure to listen for it) ends the controller gracefully.
            let _ = tokio::signal::ctrl_c().await;
            on_signal.cancel();
        });
        let config = ControllerConfig {
            namespace: kube_args.namespace.clone(),
            metrics_addr: Some(args.metrics_addr),
        };
        run_controller(client, config, shutdown).await?;
        Ok(0)
    })
}
