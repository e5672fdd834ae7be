//! Command-line interface: one module per verb group; `main.rs` only calls [`run`].

use clap::{Parser, Subcommand};

pub mod crds;
pub mod lint;

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
    /// Check manifests offline: strict decoding, spec validation, references between them.
    Lint(lint::LintArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Version => {
            println!("davy {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Crds => crds::run(),
        Command::Lint(args) => lint::run(args),
    }
}
