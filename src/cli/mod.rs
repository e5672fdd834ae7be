//! Command-line interface: one module per verb group; `main.rs` only calls [`run`].

pub mod lint;

use clap::{Parser, Subcommand};

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
    /// Check manifests offline: strict decoding, spec validation, references between them.
    Lint(lint::LintArgs),
    /// Run an AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun locally against live
    /// metrics: measurements stream as they land; the exit code is the verdict.
    Analyze(analyze::AnalyzeArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Version => {
            println!("davy {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Lint(args) => lint::run(args),
        Command::Analyze(args) => analyze::run(args),
    }
}
