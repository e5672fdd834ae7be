//! `davy analyze`: runs an AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun from a
//! file on this machine with the real providers and clock (no cluster), printing each
//! measurement as it lands and ending with the run's verdict as the exit code. `--backtest`
//! replays Prometheus metrics over a past window instead.

mod backtest;
mod load;
mod output;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use k8s_openapi::jiff::Timestamp;

use crate::analysis::providers::Registry;
use crate::analysis::reconcile::{Prepared, prepare};
use crate::analysis::runner::Runner;
use crate::analysis::schedule::add;
use crate::api::{AnalysisPhase, AnalysisRun, IntOrStr};

use load::{UsageError, load, parse_arg};
use output::{Format, measurement_line, run_line};

/// Exit codes.
pub const EXIT_SUCCESSFUL: i32 = 0;
/// The run ended Failed.
pub const EXIT_FAILED: i32 = 1;
/// The run ended in Error.
pub const EXIT_ERROR: i32 = 2;
/// The run ended Inconclusive.
pub const EXIT_INCONCLUSIVE: i32 = 3;
/// Bad command line or input file (`EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;

/// `davy analyze` options.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The manifest: an AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun (the first
    /// one found), plus any templates it references and Secrets its arguments read; `-` reads
    /// standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<String>,
    /// A template argument, NAME=VALUE (repeatable).
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// Take one measurement per metric, ignoring interval, count and initial delay; each
    /// metric is judged by that measurement alone (an Error makes the run Error).
    #[arg(long)]
    pub once: bool,
    /// Stop after this long (Go duration) and report what the run concluded so far.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Replay Prometheus metrics over START..END (RFC 3339, `now` or `now-<duration>`).
    #[arg(long, value_name = "START..END")]
    pub backtest: Option<String>,
    /// Backtest resolution: one measurement per metric every D (Go duration).
    #[arg(long, value_name = "D")]
    pub step: Option<String>,
    /// `text` (default) or `json` (one object per line).
    #[arg(short = 'o', long, value_name = "FORMAT", default_value = "text")]
    pub output: String,
}

/// The exit code of a final run phase.
pub fn exit_code(phase: &AnalysisPhase) -> i32 {
    match phase {
        AnalysisPhase::Successful => EXIT_SUCCESSFUL,
        AnalysisPhase::Failed => EXIT_FAILED,
        AnalysisPhase::Inconclusive => EXIT_INCONCLUSIVE,
        _ => EXIT_ERROR,
    }
}

fn usage(message: impl std::fmt::Display) -> anyhow::Result<i32> {
    eprintln!("error: {message}");
    Ok(EXIT_USAGE)
}

fn go_duration(text: &str, what: &str) -> Result<Duration, UsageError> {
    crate::api::parse_go_duration(text).map_err(|e| UsageError(format!("{what}: {e}")))
}

/// Runs the command; usage problems print a message and return 64.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<i32> {
    let Some(format) = Format::parse(&args.output) else {
        return usage(format!("unknown --output {:?} (text or json)", args.output));
    };
    let Some(file) = args.file.clone() else {
        return usage("-f FILE is required");
    };
    if args.once && args.duration.is_some() {
        return usage("--once and --duration exclude each other");
    }
    if args.backtest.is_some() && (args.once || args.duration.is_some()) {
        return usage("--backtest excludes --once and --duration");
    }
    if args.step.is_some() && args.backtest.is_none() {
        return usage("--step needs --backtest");
    }
    let mut cli_args = Vec::new();
    for text in &args.args {
        match parse_arg(text) {
            Ok(pair) => cli_args.push(pair),
            Err(e) => return usage(e),
        }
    }
    let duration = match args
        .duration
        .as_deref()
        .map(|d| go_duration(d, "--duration"))
    {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return usage(e),
    };
    let text = if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading standard input")?;
        text
    } else {
        match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => return usage(format!("{file}: {e}")),
        }
    };
    let loaded = match load(&text, &file, &cli_args) {
        Ok(loaded) => loaded,
        Err(e) => return usage(e),
    };
    for name in &loaded.ignored_args {
        eprintln!("warning: argument {name:?} is not declared by the template; ignored");
    }
    let mut run = loaded.run;
    if args.once {
        judge_by_one_measurement(&mut run);
    }
    // Arguments and metric rules are checked before anything is measured: a broken template
    // is a usage error here, where the controller would mark the run Error.
    if let Prepared::Invalid(step) = prepare(&run, Timestamp::now()) {
        return usage(step.status.message);
    }
    let runner = Runner::new(Registry::new(), Arc::new(loaded.secrets));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match &args.backtest {
        Some(window) => {
            let Some(step) = args.step.as_deref() else {
                return usage("--backtest needs --step");
            };
            let step = match go_duration(step, "--step") {
                Ok(step) if !step.is_zero() => step,
                Ok(_) => return usage("--step must be positive"),
                Err(e) => return usage(e),
            };
            runtime.block_on(backtest::run(run, &runner, window, step, format))
        }
        None => runtime.block_on(live(run, &runner, duration, format)),
    }
}

/// `--once`: one measurement per metric decides the metric, whatever its limits say.
fn judge_by_one_measurement(run: &mut AnalysisRun) {
    for metric in &mut run.spec.metrics {
        metric.count = Some(IntOrStr::Int(1));
        metric.interval = None;
        metric.initial_delay = None;
        metric.failure_limit = Some(IntOrStr::Int(0));
        metric.inconclusive_limit = Some(IntOrStr::Int(0));
        metric.consecutive_error_limit = Some(IntOrStr::Int(0));
        metric.consecutive_success_limit = None;
    }
}

/// Prints the completed measurements of `status` not printed yet.
fn print_new(
    status: &crate::api::AnalysisRunStatus,
    printed: &mut BTreeSet<(String, String)>,
    format: Format,
) {
    for result in &status.metric_results {
        for m in result.measurements.iter().filter(|m| m.phase.completed()) {
            let started = m
                .started_at
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            if printed.insert((result.name.clone(), started)) {
                println!("{}", measurement_line(format, &result.name, m));
            }
        }
    }
}

/// The real-time loop: reconcile, print, sleep until the next due time; on `--duration` expiry
/// or Ctrl-C the run is terminated and assessed once more.
async fn live(
    mut run: AnalysisRun,
    runner: &Runner,
    duration: Option<Duration>,
    format: Format,
) -> anyhow::Result<i32> {
    let clock = Timestamp::now;
    let deadline = duration.map(|d| add(Timestamp::now(), d));
    let mut printed = BTreeSet::new();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let Some(step) = runner.reconcile(&run, &clock).await else {
            break;
        };
        print_new(&step.status, &mut printed, format);
        let next = step.next_reconcile;
        run.status = Some(step.status);
        let phase = run.status.as_ref().and_then(|s| s.phase.clone());
        if phase.as_ref().is_some_and(|p| p.completed()) {
            break;
        }
        if run.spec.terminate == Some(true) {
            // Terminated and assessed: whatever is still in flight stays unfinished.
            break;
        }
        // Without a due time (an in-flight measurement polled by events upstream) look again
        // in a second.
        let mut wake = next.unwrap_or_else(|| add(Timestamp::now(), Duration::from_secs(1)));
        if let Some(deadline) = deadline {
            wake = wake.min(deadline);
        }
        let wait = Duration::try_from(wake.duration_since(Timestamp::now())).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut interrupted => {
                run.spec.terminate = Some(true);
                continue;
            }
        }
        if deadline.is_some_and(|d| Timestamp::now() >= d) {
            run.spec.terminate = Some(true);
        }
    }
    let status = run.status.clone().unwrap_or_default();
    println!("{}", run_line(format, &status, None));
    Ok(exit_code(&status.phase.unwrap_or(AnalysisPhase::Running)))
}
