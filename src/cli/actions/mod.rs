//! The `kubectl argo rollouts` verbs that change objects or wait on them: `set image`,
//! `promote`, `abort`, `retry`, `pause`, `restart`, `undo`, `status`, `create analysisrun`,
//! `terminate`. Arguments and decisions live here and in the pure submodules; [`execute`] holds the
//! thin executors.

pub mod create;
pub mod patches;
pub mod execute;
pub mod status;
pub mod undo;

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

pub use execute::{
    run_abort, run_create, run_pause, run_promote, run_restart, run_retry, run_set, run_status,
    run_terminate, run_undo,
};

/// `-o` formats of the verbs that print an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectFormat {
    /// The object as JSON.
    Json,
    /// The object as YAML.
    Yaml,
}

/// Parses a Go duration (`30s`, `5m`, `1h30m`), as cobra's duration flags do.
pub fn go_duration(text: &str) -> Result<Duration, String> {
    crate::api::parse_go_duration(text).map_err(|e| e.to_string())
}

/// Checks a Go duration and keeps its text (upstream prints `--in` back as typed).
pub fn go_duration_text(text: &str) -> Result<String, String> {
    go_duration(text).map(|_| text.to_string())
}

/// `set` subcommands.
#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// Update the image of a rollout's containers (or of the Deployment its workloadRef names).
    #[command(
        after_help = "Example:\n  davy set image my-rollout www=image:v2\n  davy set image my-rollout '*=image:v2'"
    )]
    Image(SetImageArgs),
}

/// Arguments of `set image`.
#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// Rollout name.
    #[arg(value_name = "ROLLOUT_NAME")]
    pub name: String,
    /// `CONTAINER=IMAGE`; `*` as the container sets every container (init and ephemeral too).
    #[arg(value_name = "CONTAINER=IMAGE")]
    pub image: String,
}

/// Arguments of `promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Rollout name.
    #[arg(value_name = "ROLLOUT_NAME")]
    pub name: String,
    /// Perform a full promotion, skipping analysis, pauses, and steps.
    #[arg(long)]
    pub full: bool,
}

/// Arguments of the verbs that take rollout names only (`abort`, `pause`).
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Rollout names.
    #[arg(value_name = "ROLLOUT_NAME", required = true)]
    pub names: Vec<String>,
}

/// `retry` subcommands.
#[derive(Debug, Subcommand)]
pub enum RetryCommand {
    /// Retry an aborted rollout (`status.abort: false`).
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout(NamesArgs),
    /// Retry a failed experiment (its status is dropped).
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment(ExperimentNames),
}

/// Experiment names.
#[derive(Debug, Args)]
pub struct ExperimentNames {
    /// Experiment names.
    #[arg(value_name = "EXPERIMENT_NAME", required = true)]
    pub names: Vec<String>,
}

/// AnalysisRun names.
#[derive(Debug, Args)]
pub struct AnalysisRunNames {
    /// AnalysisRun names.
    #[arg(value_name = "ANALYSISRUN_NAME", required = true)]
    pub names: Vec<String>,
}

/// `terminate` subcommands.
#[derive(Debug, Subcommand)]
pub enum TerminateCommand {
    /// Terminate an AnalysisRun (`spec.terminate: true`).
    #[command(visible_aliases = ["ar", "analysisruns"])]
    Analysisrun(AnalysisRunNames),
    /// Terminate an Experiment (`spec.terminate: true`).
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment(ExperimentNames),
}

/// Arguments of `restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Rollout name.
    #[arg(value_name = "ROLLOUT_NAME")]
    pub name: String,
    /// Amount of time before a restart (e.g. 30s, 5m, 1h); echoed as given.
    #[arg(short = 'i', long = "in", value_name = "DURATION", value_parser = go_duration_text)]
    pub delay: Option<String>,
}

/// Arguments of `undo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// Rollout name.
    #[arg(value_name = "ROLLOUT_NAME")]
    pub name: String,
    /// The revision to roll back to; 0 (default) is the previous one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub to_revision: i64,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Rollout name.
    #[arg(value_name = "ROLLOUT_NAME")]
    pub name: String,
    /// Watch the status until Healthy or Degraded (`--watch=false` prints once).
    #[arg(short = 'w', long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub watch: bool,
    /// Give up after this long (e.g. 60s, 2m); 0 waits forever.
    #[arg(short = 't', long, value_name = "DURATION", value_parser = go_duration, default_value = "0s")]
    pub timeout: Duration,
}

/// `create` subcommands.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create an AnalysisRun from an AnalysisTemplate or a ClusterAnalysisTemplate.
    #[command(visible_alias = "ar")]
    Analysisrun(CreateRunArgs),
}

/// Arguments of `create analysisrun`.
#[derive(Debug, Args)]
pub struct CreateRunArgs {
    /// The AnalysisTemplate (or, with --global, ClusterAnalysisTemplate) in the cluster.
    #[arg(
        long,
        value_name = "TEMPLATE",
        conflicts_with = "from_file",
        required_unless_present = "from_file"
    )]
    pub from: Option<String>,
    /// An AnalysisTemplate or ClusterAnalysisTemplate in a local YAML or JSON file.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<std::path::PathBuf>,
    /// Use a ClusterAnalysisTemplate instead of an AnalysisTemplate.
    #[arg(long, visible_alias = "from-cluster-template")]
    pub global: bool,
    /// Arguments to the template (`-a name=value`, repeatable).
    #[arg(short = 'a', long = "argument", value_name = "NAME=VALUE")]
    pub arguments: Vec<String>,
    /// Use this name for the run.
    #[arg(long)]
    pub name: Option<String>,
    /// Use this generateName for the run (default `<template>-`).
    #[arg(long)]
    pub generate_name: Option<String>,
    /// Controller instance id label for the run.
    #[arg(long)]
    pub instance_id: Option<String>,
    /// Print the created run as json or yaml instead of `analysisrun.argoproj.io/NAME created`.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
}
