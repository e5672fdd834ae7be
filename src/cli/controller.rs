//! `davy controller`: runs the Rollout controller against a cluster until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::controller::alerts::AlertWebhookConfig;
use crate::controller::alerts::matching::LabelNames;
use crate::controller::{ControllerConfig, run as run_controller};

/// Arguments of `davy controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Kubeconfig file (default: in-cluster config, then `$KUBECONFIG` / `~/.kube/config`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Serve `/metrics` and `/healthz` on this address.
    #[arg(long, default_value = "0.0.0.0:8090")]
    pub metrics_addr: SocketAddr,
    /// Serve the Alertmanager webhook receiver (`POST /webhooks/alertmanager`) on this address
    /// (default: off).
    #[arg(long, value_name = "ADDR", requires = "alert_webhook_token_file")]
    pub alert_webhook_listen: Option<SocketAddr>,
    /// File holding the bearer token Alertmanager must send (its `http_config.authorization.credentials_file`).
    #[arg(long, value_name = "FILE")]
    pub alert_webhook_token_file: Option<PathBuf>,
    /// Alert label naming the Rollout to abort.
    #[arg(long, default_value = "rollout")]
    pub alert_rollout_label: String,
    /// Alert label naming the Rollout's namespace.
    #[arg(long, default_value = "namespace")]
    pub alert_namespace_label: String,
}

/// The webhook receiver configuration from the flags, reading the token file.
fn alert_webhook(args: &ControllerArgs) -> anyhow::Result<Option<AlertWebhookConfig>> {
    let (Some(listen), Some(path)) = (args.alert_webhook_listen, &args.alert_webhook_token_file)
    else {
        return Ok(None);
    };
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("reading the alert webhook token {}", path.display()))?;
    let token = token.trim();
    anyhow::ensure!(
        !token.is_empty(),
        "the alert webhook token file {} is empty",
        path.display()
    );
    let mut config = AlertWebhookConfig::new(listen, token);
    config.labels = LabelNames {
        rollout: args.alert_rollout_label.clone(),
        namespace: args.alert_namespace_label.clone(),
    };
    Ok(Some(config))
}

/// Builds a client and runs the controller until Ctrl-C.
pub fn run(args: &ControllerArgs) -> anyhow::Result<i32> {
    let alert_webhook = alert_webhook(args)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        let client = match &args.kubeconfig {
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
            namespace: args.namespace.clone(),
            metrics_addr: Some(args.metrics_addr),
            alert_webhook,
        };
        run_controller(client, config, shutdown).await?;
        Ok(0)
    })
}
