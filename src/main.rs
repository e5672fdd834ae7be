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
    /// The seed's story on the embedded sandbox: a canary that passes its analysis and is
    /// promoted, then one that fails it and is aborted. No cluster needed.
    Demo(davy::sandbox::demo::DemoArgs),
}

fn main() {
    let davy = match Davy::try_parse() {
        Ok(davy) => davy,
        Err(err) => {
            // `davy analyze` promises sysexits' EX_USAGE (64) for usage errors, so scripts can
            // tell them from a Failed verdict (1) or an Error (2); help and version still exit 0.
            let analyze = std::env::args().nth(1).as_deref() == Some("analyze");
            let code = if analyze && err.use_stderr() {
                64
            } else {
                err.exit_code()
            };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    let result = match davy.command {
        Verb::Cli(command) => davy::cli::run(davy::cli::Cli { command }),
        Verb::Sandbox(args) => davy::sandbox::command::run(&args),
        Verb::Demo(args) => davy::sandbox::demo::run(&args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}
