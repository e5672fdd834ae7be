//! Thin executors for `davy get rollout|experiment` and `davy list rollouts`: read the objects
//! with a kube client from the kubeconfig, read the clock, and print what the pure renderers say.

use std::time::Duration;

use clap::{Args, Subcommand};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams};

use super::{
    Colorizer, GetError, ListOptions, Objects, experiment_info, list::NO_RESOURCES,
    render_experiment, render_rollout, render_rollout_list, rollout_info,
};
use crate::api::{AnalysisRun, Experiment, Rollout};
use crate::cli::actions::ObjectFormat;
use crate::cli::actions::execute::render_object;
use crate::cli::color::{stdout_colorizer, stdout_is_terminal};
use crate::cli::kube::{CliError, KubeArgs, connect, runtime};

/// `get` subcommands.
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// Show a rollout's header and tree of revisions, ReplicaSets, pods and analysis.
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout(GetArgs),
    /// Show an experiment's tree.
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment(GetArgs),
}

/// Arguments of `get rollout|experiment`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Object name.
    pub name: String,
    /// Re-render on changes until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// No ANSI colours.
    #[arg(long)]
    pub no_color: bool,
    /// Print the object as json or yaml instead of the tree (rollouts only).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
}

/// `list` subcommands.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// List rollouts as a table.
    #[command(visible_aliases = ["ro", "rollout"])]
    Rollouts(ListArgs),
    /// List experiments as a table.
    #[command(visible_aliases = ["exp", "experiment"])]
    Experiments(ListExperimentsArgs),
}

/// Arguments of `list experiments`.
#[derive(Debug, Args)]
pub struct ListExperimentsArgs {
    /// All namespaces (adds a NAMESPACE column).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// Arguments of `list rollouts`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// All namespaces (adds a NAMESPACE column).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Prefix each row with the current time.
    #[arg(long)]
    pub timestamps: bool,
    /// Only the rollout with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Print a `List` of the rollouts as json or yaml instead of the table.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
}

/// The lister's not-found text (`rollout.argoproj.io "x" not found`, as upstream's informer
/// lister words it), exiting 1 like every cluster error.
fn not_found(resource: &'static str, name: &str) -> CliError {
    CliError::Api(
        GetError::NotFound {
            resource,
            name: name.to_string(),
        }
        .to_string(),
    )
}

async fn client(k: &KubeArgs) -> anyhow::Result<(Client, String)> {
    let kube = connect(k).await?;
    Ok((kube.client, kube.namespace))
}

/// Screen clear written before each watch frame on a terminal (`ESC[H ESC[2J`).
const CLEAR: &str = "\x1b[H\x1b[2J";

/// What one `-w` frame writes: on a terminal the screen is cleared and redrawn; elsewhere (a
/// pipe, a file) the frame is appended after a blank line, and a frame equal to the last one is
/// skipped so a log only grows when something changed.
pub fn watch_output(frame: &str, last: Option<&str>, terminal: bool) -> Option<String> {
    if terminal {
        Some(format!("{CLEAR}{frame}"))
    } else if last == Some(frame) {
        None
    } else if last.is_none() {
        Some(frame.to_string())
    } else {
        Some(format!("\n{frame}"))
    }
}

/// Runs `get …`; returns the exit code.
pub fn run_get(cmd: GetCommand, kube: &KubeArgs) -> anyhow::Result<i32> {
    runtime()?.block_on(async move {
        let (args, is_rollout) = match &cmd {
            GetCommand::Rollout(a) => (a, true),
            GetCommand::Experiment(a) => (a, false),
        };
        let (client, ns) = client(kube).await?;
        if let (Some(format), true) = (args.output, is_rollout) {
            let ro = Api::<Rollout>::namespaced(client, &ns)
                .get(&args.name)
                .await
                .map_err(CliError::from)?;
            print!("{}", render_object(&ro, format)?);
            return Ok(0);
        }
        let color = stdout_colorizer(args.no_color);
        let terminal = stdout_is_terminal();
        let mut last: Option<String> = None;
        loop {
            let text = render_once(&client, &ns, &args.name, is_rollout, color).await?;
            if !args.watch {
                print!("{text}");
                return Ok(0);
            }
            if let Some(out) = watch_output(&text, last.as_deref(), terminal) {
                print!("{out}");
            }
            last = Some(text);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn render_once(
    client: &Client,
    ns: &str,
    name: &str,
    is_rollout: bool,
    color: Colorizer,
) -> anyhow::Result<String> {
    let lp = ListParams::default();
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(CliError::from)?
        .items;
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(CliError::from)?
        .items;
    let exps = Api::<Experiment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(CliError::from)?
        .items;
    let ars = Api::<AnalysisRun>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(CliError::from)?
        .items;
    let objs = Objects {
        replica_sets: &rss,
        pods: &pods,
        experiments: &exps,
        analysis_runs: &ars,
    };
    let now = Timestamp::now();
    if is_rollout {
        let ro = Api::<Rollout>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(CliError::from)?
            .ok_or_else(|| not_found("rollout", name))?;
        Ok(render_rollout(&rollout_info(&ro, objs), now, color))
    } else {
        let exp = exps
            .iter()
            .find(|e| e.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| not_found("experiment", name))?;
        Ok(render_experiment(&experiment_info(exp, objs), now, color))
    }
}

/// Runs `list …`; returns the exit code.
pub fn run_list(cmd: ListCommand, kube: &KubeArgs) -> anyhow::Result<i32> {
    let args = match cmd {
        ListCommand::Rollouts(args) => args,
        ListCommand::Experiments(args) => return run_list_experiments(args, kube),
    };
    runtime()?.block_on(async move {
        let (client, ns) = client(kube).await?;
        let api: Api<Rollout> = if args.all_namespaces {
            Api::all(client)
        } else {
            Api::namespaced(client, &ns)
        };
        let mut items = api
            .list(&ListParams::default())
            .await
            .map_err(CliError::from)?
            .items;
        if let Some(n) = &args.name {
            items.retain(|r| r.metadata.name.as_deref() == Some(n.as_str()));
        }
        if let Some(format) = args.output {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            print!("{}", render_object(&list, format)?);
            return Ok(0);
        }
        let opts = ListOptions {
            all_namespaces: args.all_namespaces,
            timestamps: args.timestamps,
        };
        match render_rollout_list(&items, opts, Timestamp::now()) {
            Some(text) => print!("{text}"),
            None => eprintln!("{NO_RESOURCES}"),
        }
        Ok(0)
    })
}

/// Runs `list experiments`; returns the exit code.
fn run_list_experiments(args: ListExperimentsArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    runtime()?.block_on(async move {
        let (client, ns) = client(kube).await?;
        let api: Api<Experiment> = if args.all_namespaces {
            Api::all(client)
        } else {
            Api::namespaced(client, &ns)
        };
        let items = api
            .list(&ListParams::default())
            .await
            .map_err(CliError::from)?
            .items;
        match super::list_experiments::render_experiment_list(
            &items,
            args.all_namespaces,
            Timestamp::now(),
        ) {
            Some(text) => print!("{text}"),
            None => eprintln!("{NO_RESOURCES}"),
        }
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_frames_redraw_on_a_terminal_and_append_elsewhere() {
        assert_eq!(
            watch_output("a\n", Some("a\n"), true).as_deref(),
            Some("\x1b[H\x1b[2Ja\n")
        );
        assert_eq!(watch_output("a\n", None, false).as_deref(), Some("a\n"));
        assert_eq!(watch_output("a\n", Some("a\n"), false), None);
        assert_eq!(
            watch_output("b\n", Some("a\n"), false).as_deref(),
            Some("\nb\n")
        );
    }
}
