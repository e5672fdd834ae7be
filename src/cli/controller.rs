//! `davy controller`: runs the Rollout controller against a cluster until Ctrl-C, reconciling
//! only while it holds the leader Lease (upstream's `--leader-elect` flags, spec §10.1).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::api::duration::parse_go_duration;
use crate::cli::kube::KubeArgs;
use crate::controller::alerts::AlertWebhookConfig;
use crate::controller::alerts::matching::LabelNames;
use crate::controller::leader::{self, LeaderElection, LeaseTiming};
use crate::controller::{ControllerConfig, ControllerError, run as run_controller};

/// Arguments of `davy controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Serve `/metrics` and `/healthz` on this address.
    #[arg(long, default_value = "0.0.0.0:8090")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader through a Lease so that only one replica reconciles
    /// (`--leader-elect=false` to turn it off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub leader_elect: bool,
    /// Namespace of the `argo-rollouts-controller-lock` Lease (default: `POD_NAMESPACE`, else
    /// the service account's namespace, else the kubeconfig context's namespace).
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// How long a follower waits before taking over a lease that is not renewed.
    #[arg(long, default_value = "15s", value_parser = go_duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader retries renewing before it gives up.
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub leader_election_renew_deadline: Duration,
    /// Time between election attempts.
    #[arg(long, default_value = "2s", value_parser = go_duration)]
    pub leader_election_retry_period: Duration,
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
    /// Rollout reconciles in flight at once (upstream's flag; Davy's reconciles read caches and
    /// are cheap, so its default is higher than upstream's 10).
    #[arg(long, default_value_t = crate::controller::DEFAULT_CONCURRENT_RECONCILES)]
    pub rollout_threads: u16,
    /// Wait this long after a Rollout's last change before reconciling it, so a burst of
    /// changes (a ReplicaSet's status settling, our own writes coming back) costs one
    /// reconcile; `0s` (the default) reconciles at once. A Davy flag, not upstream's.
    #[arg(long, default_value = "0s", value_parser = go_duration)]
    pub reconcile_debounce: Duration,
    /// Reconcile only the objects labelled `argo-rollouts.argoproj.io/controller-instance-id`
    /// with this value (without it: only objects without that label), so a fleet can be split
    /// across several controllers; the Lease is then `argo-rollouts-controller-lock-<ID>`.
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
}

/// Logs to stderr at `info` (or as `RUST_LOG` says), so an operator sees what the controller is
/// doing from its first line.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (tests calling `run` twice) keeps the first subscriber.
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a pod's log or a file gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn go_duration(text: &str) -> Result<Duration, String> {
    parse_go_duration(text).map_err(|error| error.to_string())
}

impl ControllerArgs {
    /// The Lease settings, or `None` with `--leader-elect=false`; `outside` is the namespace
    /// to use when the controller does not run in a cluster (the kubeconfig context's).
    pub fn leader_election(&self, outside: &str) -> Option<LeaderElection> {
        self.leader_elect.then(|| LeaderElection {
            timing: LeaseTiming {
                lease_duration: self.leader_election_lease_duration,
                renew_deadline: self.leader_election_renew_deadline,
                retry_period: self.leader_election_retry_period,
            },
            lock_name: leader::lock_name(self.instance_id()),
            ..LeaderElection::new(
                self.leader_election_namespace
                    .clone()
                    .unwrap_or_else(|| leader::default_namespace(outside)),
            )
        })
    }
}

impl ControllerArgs {
    /// `--instance-id`, with an empty value meaning none (as upstream's empty default).
    pub fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref().filter(|id| !id.is_empty())
    }
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

/// Builds a client and runs the controller until Ctrl-C (exit 0), or until the leader lease is
/// lost (exit 1, as upstream's process ends: the pod restarts and campaigns afresh, with
/// nothing left over from the term it lost). The global `--kubeconfig` picks the cluster
/// (default: `$KUBECONFIG` / `~/.kube/config`, then the in-cluster config); the global `-n`
/// restricts it to one namespace (default: all namespaces).
pub fn run(args: &ControllerArgs, kube_args: &KubeArgs) -> anyhow::Result<i32> {
    init_logging();
    let alert_webhook = alert_webhook(args)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        // The same kubeconfig resolution as every verb (`--kubeconfig`, `--context`,
        // `$KUBECONFIG`, `~/.kube/config`, then the in-cluster service account); the namespace
        // stays the flag's alone, since no flag means all namespaces here.
        let client = crate::cli::kube::connect(kube_args).await?.client;
        let leader_election = args.leader_election(client.default_namespace());
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            namespaces = kube_args.namespace.as_deref().unwrap_or("(all)"),
            leader_election = %leader_election
                .as_ref()
                .map_or("off".to_string(), |e| format!("Lease {}/{}", e.namespace, e.lock_name)),
            metrics = %args.metrics_addr,
            instance_id = args.instance_id().unwrap_or("(none)"),
            "davy controller starting"
        );
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
            leader_election,
            alert_webhook,
            max_concurrent_reconciles: Some(args.rollout_threads),
            debounce: args.reconcile_debounce,
            instance_id: args.instance_id().map(str::to_string),
            config_namespace: Some(leader::default_namespace(client.default_namespace())),
            // Upstream reads the notification ConfigMap and Secret in its own namespace.
            notifications_namespace: Some(leader::default_namespace(client.default_namespace())),
        };
        match run_controller(client, config, shutdown).await {
            Ok(()) => Ok(0),
            Err(error @ ControllerError::LeaderLost(_)) => {
                eprintln!("davy controller: {error}");
                Ok(1)
            }
            Err(error) => Err(error.into()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn parse(args: &[&str]) -> ControllerArgs {
        Cli::try_parse_from(std::iter::once("davy").chain(args.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn leader_election_is_on_by_default_with_upstream_durations() {
        let election = parse(&["--leader-election-namespace", "ops"])
            .leader_election("ctx-ns")
            .unwrap();
        assert_eq!(election.namespace, "ops");
        assert_eq!(election.lock_name, "argo-rollouts-controller-lock");
        assert_eq!(election.timing, LeaseTiming::default());
        assert_eq!(election.timing.lease_duration, Duration::from_secs(15));
    }

    #[test]
    fn an_instance_id_gets_its_own_lease() {
        let election = parse(&["--instance-id", "blue", "--leader-election-namespace=ops"])
            .leader_election("ctx-ns")
            .unwrap();
        assert_eq!(election.lock_name, "argo-rollouts-controller-lock-blue");
        let args = parse(&["--instance-id="]);
        assert_eq!(args.instance_id(), None);
        assert_eq!(
            args.leader_election("ctx-ns").unwrap().lock_name,
            "argo-rollouts-controller-lock"
        );
    }

    #[test]
    fn leader_elect_false_turns_it_off_and_durations_parse_go_syntax() {
        assert!(
            parse(&["--leader-elect=false"])
                .leader_election("ctx-ns")
                .is_none()
        );
        assert!(
            parse(&["--leader-elect"])
                .leader_election("ctx-ns")
                .is_some()
        );
        let election = parse(&[
            "--leader-election-namespace=ops",
            "--leader-election-lease-duration=1m",
            "--leader-election-renew-deadline=30s",
            "--leader-election-retry-period=500ms",
        ])
        .leader_election("ctx-ns")
        .unwrap();
        assert_eq!(
            election.timing,
            LeaseTiming {
                lease_duration: Duration::from_secs(60),
                renew_deadline: Duration::from_secs(30),
                retry_period: Duration::from_millis(500),
            }
        );
    }
}
