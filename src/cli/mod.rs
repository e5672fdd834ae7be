//! Command-line interface: one module per verb group; `main.rs` only calls [`run`].

use clap::Subcommand;

pub mod actions;
pub mod analyze;
pub mod color;
pub mod controller;
pub mod crds;
pub mod dashboard;
pub mod get;
pub mod install;
pub mod judge;
pub mod kube;
pub mod lint;
pub mod notifications;
pub mod plugin;

/// A parsed command line and what the binary knows about how it was invoked.
#[derive(Debug)]
pub struct Cli {
    /// The verb.
    pub command: Command,
    /// The global kubeconfig flags (before or after the verb).
    pub kube: kube::KubeArgs,
    /// How the program is named in help and completion (`davy`, `kubectl davy`).
    pub program: String,
    /// The whole command tree, for `completion`.
    pub app: clap::Command,
}

/// Every verb Davy understands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Davy version (`--short` for the first line only).
    Version(plugin::VersionArgs),
    /// Print the CustomResourceDefinitions (Rollout, AnalysisTemplate, ClusterAnalysisTemplate,
    /// AnalysisRun, Experiment) as multi-document YAML.
    Crds,
    /// Judge a canary sample against a baseline sample (Mann-Whitney, as Kayenta's judge).
    Judge(judge::JudgeArgs),
    /// Run the Rollout controller against a cluster.
    Controller(controller::ControllerArgs),
    /// Show a rollout or experiment with its tree (`get rollout NAME [-w] [--no-color]`).
    #[command(subcommand)]
    Get(get::execute::GetCommand),
    /// List rollouts (`list rollouts [-A] [--timestamps]`).
    #[command(subcommand)]
    List(get::execute::ListCommand),
    /// Update a rollout's container image (`set image NAME CONTAINER=IMAGE`).
    #[command(subcommand)]
    Set(actions::SetCommand),
    /// Promote a paused rollout to its next step (`--full`: skip all steps, pauses, analysis).
    Promote(actions::PromoteArgs),
    /// Abort a rollout: back to the stable version (spec.template still holds the new one).
    Abort(actions::NamesArgs),
    /// Retry an aborted rollout or a failed experiment.
    #[command(subcommand)]
    Retry(actions::RetryCommand),
    /// Pause a rollout (`spec.paused: true`).
    Pause(actions::NamesArgs),
    /// Restart the pods of a rollout, now or `--in` a duration.
    Restart(actions::RestartArgs),
    /// Roll back to the previous revision (or `--to-revision N`).
    Undo(actions::UndoArgs),
    /// Watch a rollout until Healthy (exit 0), Degraded or the timeout (exit 1).
    Status(actions::StatusArgs),
    /// Create an AnalysisRun from a template (`create analysisrun --from TEMPLATE`).
    #[command(subcommand)]
    Create(actions::CreateCommand),
    /// Terminate an AnalysisRun or Experiment.
    #[command(subcommand)]
    Terminate(actions::TerminateCommand),
    /// Check manifests offline: strict decoding, spec validation, references between them.
    Lint(lint::LintArgs),
    /// Run an AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun locally against live
    /// metrics: measurements stream as they land; the exit code is the verdict.
    Analyze(analyze::AnalyzeArgs),
    /// Print the install manifests (CRDs, RBAC, controller Deployment, metrics Service) for
    /// `kubectl apply -f -`.
    Install(install::InstallArgs),
    /// Write a shell completion script (bash, zsh, fish, powershell) to stdout.
    Completion(plugin::CompletionArgs),
    /// Serve the dashboard: rollouts, their trees and analysis charts, live, with actions.
    Dashboard(dashboard::DashboardArgs),
    /// Install Davy as a kubectl plugin: a `kubectl-davy` symlink to this executable.
    InstallPlugin(plugin::InstallPluginArgs),
    /// Notification templates and triggers (`template get|notify`, `trigger get|run`).
    Notifications(notifications::NotificationsArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let Cli {
        command,
        kube,
        program,
        mut app,
    } = cli;
    match command {
        Command::Version(args) => plugin::version(&args, &program),
        Command::Crds => crds::run(),
        Command::Judge(args) => judge::run(&args),
        Command::Controller(args) => controller::run(&args, &kube),
        Command::Get(cmd) => get::execute::run_get(cmd, &kube),
        Command::List(cmd) => get::execute::run_list(cmd, &kube),
        Command::Set(cmd) => actions::run_set(cmd, &kube),
        Command::Promote(args) => actions::run_promote(args, &kube),
        Command::Abort(args) => actions::run_abort(args, &kube),
        Command::Retry(cmd) => actions::run_retry(cmd, &kube),
        Command::Pause(args) => actions::run_pause(args, &kube),
        Command::Restart(args) => actions::run_restart(args, &kube),
        Command::Undo(args) => actions::run_undo(args, &kube),
        Command::Status(args) => actions::run_status(args, &kube),
        Command::Create(cmd) => actions::run_create(cmd, &kube),
        Command::Terminate(cmd) => actions::run_terminate(cmd, &kube),
        Command::Lint(args) => lint::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Install(args) => install::run(&args, &kube),
        Command::Completion(args) => plugin::completion(&args, &mut app, &program),
        Command::InstallPlugin(args) => plugin::install(&args),
        Command::Dashboard(args) => dashboard::run(&args, &kube),
        Command::Notifications(args) => notifications::run(args, &kube),
    }
}

/// The exit code for an error: 1 for the cluster-facing verbs (as the upstream plugin exits on
/// any error), 2 for the rest (unchanged for `lint`, `judge`, `analyze`, `sandbox`).
pub fn error_exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<kube::CliError>()) {
        1
    } else {
        2
    }
}
