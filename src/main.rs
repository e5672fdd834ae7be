//! The `davy` binary: parse arguments, run the command, exit with its code.
//!
//! The sandbox layer sits below the CLI layer, so its command is joined to the CLI's verbs here.

use clap::{Parser, Subcommand};

/// Davy: progressive delivery for Kubernetes, compatible with Argo Rollouts.
#[derive(Debug, Parser)]
#[command(name = "davy", version, about)]
struct Davy {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    #[command(flatten)]
    Cli(davy::cli::Command),
    /// Run the in-process Kubernetes API server (and optionally the simulator and controller).
    Sandbox(davy::sandbox::command::SandboxArgs),
}

fn main() {
    let result = match Davy::parse().command {
        Verb::Cli(command) => davy::cli::run(davy::cli::Cli { command }),
        Verb::Sandbox(args) => davy::sandbox::command::run(&args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}
