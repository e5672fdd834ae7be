//! The `davy` binary: parse arguments, run the command, exit with its code.
//!
//! The sandbox layer sits below the CLI layer, so its command is joined to the CLI's verbs here.
//! Invoked as `kubectl-davy` (kubectl plugin mode) the program names itself `kubectl davy`.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Davy: progressive delivery for Kubernetes, compatible with Argo Rollouts.
#[derive(Debug, Parser)]
#[command(name = "davy", version, about)]
struct Davy {
    #[command(subcommand)]
    command: Verb,
    #[command(flatten)]
    kube: davy::cli::kube::KubeArgs,
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
    /// Load benchmarks on the sandbox (`bench scale --rollouts N`).
    #[command(subcommand)]
    Bench(davy::sandbox::bench::BenchCommand),
}

/// The command tree, named as the program was invoked (`davy` or `kubectl davy`).
fn app(program: &'static str) -> clap::Command {
    Davy::command().name(program).bin_name(program)
}

fn main() {
    let argv0 = std::env::args_os().next();
    let program = davy::cli::plugin::display_name(argv0.as_deref());
    let parsed = app(program)
        .try_get_matches()
        .and_then(|m| Davy::from_arg_matches(&m));
    let davy = match parsed {
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
        Verb::Cli(command) => davy::cli::run(davy::cli::Cli {
            command,
            kube: davy.kube,
            program: program.to_string(),
            app: app(program),
        }),
        Verb::Sandbox(args) => davy::sandbox::command::run(&args),
        Verb::Demo(args) => davy::sandbox::demo::run(&args),
        Verb::Bench(command) => davy::sandbox::bench::run(&command),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            // Cobra's prefix, as the upstream plugin prints errors.
            eprintln!("Error: {err:#}");
            std::process::exit(davy::cli::error_exit_code(&err));
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over the whole tree: no subcommand's flag clashes with a
    /// global kubeconfig flag (`-s`, `--user`, `--token`, ...).
    #[test]
    fn the_command_tree_is_consistent() {
        super::app("davy").debug_assert();
    }
}
