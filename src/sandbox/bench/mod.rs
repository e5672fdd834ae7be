//! `davy bench`: load benchmarks on the embedded sandbox. `bench scale` runs the API server and
//! the lightweight workload simulator in this process and `davy controller` as a child process
//! (so the memory and CPU measured are the controller's alone), and drives N Rollouts through
//! a first rollout and an image change.
//!
//! It lives in the sandbox layer, as `davy sandbox` and `davy demo` do, because it starts the
//! sandbox; the binary joins it to the CLI's verbs.

pub mod process;
pub mod report;
pub mod scale;
pub mod track;

use std::time::Duration;

use anyhow::Context as _;

/// `davy bench` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// N canary Rollouts on the sandbox against `davy controller` in a child process: time to
    /// all Healthy, then an image change and the time to all Healthy again; the controller's
    /// RSS, CPU, reconciles and API requests, and how late the timed pauses ended.
    Scale(ScaleArgs),
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text.
    Text,
    /// One JSON object with the field names.
    Json,
}

/// Arguments of `davy bench scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Rollouts to create.
    #[arg(long, default_value_t = 100)]
    pub rollouts: usize,
    /// Replicas of each Rollout.
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// Report format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Longest wait for each wave, seconds (`300` or `300s`); then the figures so far are
    /// reported and the exit code is 1.
    #[arg(long, default_value = "300", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// How long the controller is watched idle after the waves (steady RSS, idle CPU), seconds.
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    pub idle: Duration,
    /// How long a simulated Pod takes to become Ready, seconds.
    #[arg(long, default_value = "0.5", value_parser = parse_seconds)]
    pub pod_ready_delay: Duration,
    /// Passed to `davy controller --rollout-threads` (its default when not given).
    #[arg(long)]
    pub rollout_threads: Option<u16>,
    /// Passed to `davy controller --reconcile-debounce` (e.g. `50ms`).
    #[arg(long)]
    pub reconcile_debounce: Option<String>,
}

/// `300`, `2.5` or `300s` as a duration.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let number = text.trim().strip_suffix('s').unwrap_or(text.trim());
    let secs: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

/// Runs a bench verb; returns the exit code.
pub fn run(command: &BenchCommand) -> anyhow::Result<i32> {
    match command {
        BenchCommand::Scale(args) => {
            if args.rollouts == 0 {
                anyhow::bail!("--rollouts must be at least 1");
            }
            let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            runtime.block_on(scale::run(args))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_or_without_unit() {
        assert_eq!(parse_seconds("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_seconds("2.5s"), Ok(Duration::from_millis(2500)));
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("-1").is_err());
    }
}
