//! Command-line interface: one module per verb group; `main.rs` only calls [`run`].

use clap::{Parser, Subcommand};

pub mod controller;
pub mod crds;
pub mod get;
pub mod install;
pub mod judge;
pub mod lint;
pub mod analyze;

/// Davy: progressive delivery for Kubernetes, compatible with Argo Rollouts.
#[derive(Debug, Parser)]
#[command(name = "davy", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every verb Davy understands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Davy version.
    Version,
    /// Print the CustomResourceDefinitions (Rollout, AnalysisTemplate, ClusterAnalysisTemplate,
    /// AnalysisRun, Experiment) as multi-document YAML.
    Crds,
    /// Judge a canary sample against a baseline sample (Mann-Whitney, as Kayenta's judge).
    Judge(judge::JudgeArgs),
    /// Run the Rollout controller against a cluster.
    Controller(controller::ControllerArgs),
    /// Show a rollout or experiment with its tree (`get rollout NAME [-w] [--no-color]`).
    #[command(subcommand)]
    Get(get::run::GetCommand),
    /// List rollouts (`list rollouts [-A] [--timestamps]`).
    #[command(subcommand)]
    List(get::run::ListCommand),
    /// Check manifests offline: strict decoding, spec validation, references between them.
    Lint(lint::LintArgs),
    /// Run an AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun locally against live
    /// metrics: measurements stream as they land; the exit code is the verdict.
    Analyze(analyze::AnalyzeArgs),
    /// Print the install manifests (CRDs, RBAC, controller Deployment, metrics Service) for
    /// `kubectl apply -f -`.
    Install(install::InstallArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Version => {
            println!("davy {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Crds => crds::run(),
        Command::Judge(args) => judge::run(&args),
        Command::Controller(args) => controller::run(&args),
        Command::Get(cmd) => get::run::run_get(cmd),
        Command::List(cmd) => get::run::run_list(cmd),
        Command::Lint(args) => lint::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Install(args) => install::run(&args),
    }
}
