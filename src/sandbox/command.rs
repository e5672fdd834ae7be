//! `davy sandbox`: the in-process API server on 127.0.0.1 with Davy's CRDs, optionally the
//! workload simulator and the controller, until Ctrl-C or SIGTERM.
//!
//! It lives here rather than in `cli` because the sandbox layer sits below the CLI layer; the
//! binary joins the two.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::controller::{ControllerConfig, run as run_controller};
use crate::sandbox::apiserver::ApiServer;
use crate::sandbox::simulator::{Simulator, SimulatorConfig};

/// Arguments of `davy sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to serve the Kubernetes API on; port 0 picks a free port (printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Write a kubeconfig for the sandbox here (default: a file in the temp directory).
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// Run the workload simulator: ReplicaSets get Pods that become Ready. `full` (the default
    /// when the flag has no value) backs every running Pod with a demo app on a loopback port;
    /// `lightweight` only writes Pod statuses, for thousands of Pods.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "full",
          value_name = "MODE")]
    pub simulate_workloads: Option<WorkloadMode>,
    /// Run the Davy controller inside the sandbox.
    #[arg(long)]
    pub with_controller: bool,
}

/// How the simulator backs Pods (`--simulate-workloads[=MODE]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadMode {
    /// Every running Pod serves the demo app over HTTP (what the demo and traffic need).
    Full,
    /// Pods become Ready without any server behind them.
    Lightweight,
}

impl WorkloadMode {
    /// The simulator settings for this mode.
    pub fn simulator_config(self) -> SimulatorConfig {
        SimulatorConfig {
            demo_apps: self == WorkloadMode::Full,
            ..SimulatorConfig::default()
        }
    }
}

/// Runs the sandbox until Ctrl-C or SIGTERM; returns the exit code.
pub fn run(args: &SandboxArgs) -> anyhow::Result<i32> {
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: the sandbox only serves on a loopback address (127.0.0.1 or [::1])",
            args.listen
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &SandboxArgs) -> anyhow::Result<i32> {
    let server = ApiServer::new();
    server
        .install_davy_crds()
        .context("installing Davy's CRDs")?;
    let handle = server
        .serve(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = handle.addr();
    let kubeconfig = args.kubeconfig_out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("davy-sandbox-{}.kubeconfig", addr.port()))
    });
    server
        .write_kubeconfig(&kubeconfig, addr)
        .with_context(|| format!("writing {}", kubeconfig.display()))?;

    let shutdown = CancellationToken::new();
    let simulator = args
        .simulate_workloads
        .map(|mode| Simulator::start(server.client(), mode.simulator_config()));
    let controller = args.with_controller.then(|| {
        let client = server.client();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            // One in-process controller and no other candidate: a Lease would only delay the
            // start (a `davy controller` pointed at the sandbox elects in its own namespace).
            let config = ControllerConfig {
                namespace: None,
                metrics_addr: None,
                ..ControllerConfig::default()
            };
            run_controller(client, config, stop).await
        })
    });

    // The first line is for programs (the port is chosen at run time), the rest for people.
    println!("sandbox API server listening on http://{addr}");
    println!("kubeconfig written to {}", kubeconfig.display());
    println!(
        "try: kubectl --kubeconfig {} apply -f examples/rollouts-demo.yaml",
        kubeconfig.display()
    );
    println!("stop with Ctrl-C");

    wait_for_signal().await;
    shutdown.cancel();
    if let Some(task) = controller {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("controller stopped with an error: {err}"),
            Err(err) => eprintln!("controller task failed: {err}"),
        }
    }
    if let Some(simulator) = simulator {
        simulator.shutdown().await;
    }
    handle.shutdown().await;
    server.shutdown();
    println!("sandbox stopped");
    Ok(0)
}

/// Ctrl-C or SIGTERM, whichever comes first.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            // Without a SIGTERM handler Ctrl-C still ends the sandbox.
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
