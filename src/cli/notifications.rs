//! `notifications template get|notify` and `notifications trigger get|run`: upstream's
//! `kubectl argo rollouts notifications ...` against the notification ConfigMap and Secret of
//! the namespace (or local files), rendering templates and evaluating triggers for a live
//! Rollout (or a Rollout manifest file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use crate::api::{AnalysisRun, Rollout};
use crate::cli::kube::{CliError, Kube, KubeArgs, connect, runtime};
use crate::controller::notifications::{analysis_vars, http_client, parse, render, send};
use crate::notify::{self, Destination, NotificationConfig};

/// Where the configuration comes from (upstream's persistent flags).
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// argo-rollouts-notification-configmap.yaml file path (default: the namespace's ConfigMap).
    #[arg(long = "config-map", global = true, value_name = "FILE")]
    pub config_map: Option<PathBuf>,
    /// argo-rollouts-notification-secret.yaml file path; `:empty` for no Secret (default: the
    /// namespace's Secret).
    #[arg(long, global = true, value_name = "FILE")]
    pub secret: Option<PathBuf>,
}

/// `notifications ...`.
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// The configuration source.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The sub-verb.
    #[command(subcommand)]
    pub command: NotificationsCommand,
}

/// The notification verbs.
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Notification templates related commands.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Notification triggers related commands.
    #[command(subcommand)]
    Trigger(TriggerCommand),
}

/// `notifications template ...`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Prints information about configured templates.
    Get(GetArgs),
    /// Generates notification using the specified template and send it to specified recipients.
    Notify(NotifyArgs),
}

/// `notifications trigger ...`.
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// Prints information about configured triggers.
    Get(GetArgs),
    /// Evaluates specified trigger condition and prints the result.
    Run(RunArgs),
}

/// `template get` / `trigger get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Only this one.
    pub name: Option<String>,
    /// Output format. One of:json|yaml|wide|name
    #[arg(short, long, default_value = "wide")]
    pub output: String,
}

/// `template notify NAME ROLLOUT`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// The template.
    pub name: String,
    /// The Rollout's name, or a manifest file.
    pub rollout: String,
    /// List of recipients (`service:recipient`; `console:stdout` prints the notification).
    #[arg(long = "recipient", default_value = "console:stdout")]
    pub recipients: Vec<String>,
}

/// `trigger run NAME ROLLOUT`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The trigger.
    pub name: String,
    /// The Rollout's name, or a manifest file.
    pub rollout: String,
}

/// Runs `notifications ...`. Like upstream, a failure is printed to stderr and exits 0, except
/// that Davy exits 1 so scripts can tell.
pub fn run(args: NotificationsArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    rt.block_on(async move {
        let needs_cluster = args.source.config_map.is_none()
            || args.source.secret.is_none()
            || matches!(
                &args.command,
                NotificationsCommand::Template(TemplateCommand::Notify(NotifyArgs { rollout, .. }))
                | NotificationsCommand::Trigger(TriggerCommand::Run(RunArgs { rollout, .. }))
                    if !is_file(rollout)
            );
        let k = if needs_cluster {
            Some(connect(kube).await?)
        } else {
            None
        };
        let config = load_config(&args.source, k.as_ref()).await?;
        let mut out = String::new();
        let code = match args.command {
            NotificationsCommand::Template(TemplateCommand::Get(get)) => {
                template_get(&config, &get, &mut out)?;
                0
            }
            NotificationsCommand::Trigger(TriggerCommand::Get(get)) => {
                trigger_get(&config, &get, &mut out)?;
                0
            }
            NotificationsCommand::Template(TemplateCommand::Notify(notify_args)) => {
                let vars = rollout_vars(&notify_args.rollout, k.as_ref(), &config).await?;
                template_notify(&config, &notify_args, &vars, &mut out).await
            }
            NotificationsCommand::Trigger(TriggerCommand::Run(run_args)) => {
                let vars = rollout_vars(&run_args.rollout, k.as_ref(), &config).await?;
                trigger_run(&config, &run_args, &vars, &mut out)
            }
        };
        print!("{out}");
        Ok::<i32, anyhow::Error>(code)
    })
}

fn is_file(name: &str) -> bool {
    Path::new(name).is_file()
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    serde_saphyr::from_str(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

async fn load_config(
    source: &SourceArgs,
    k: Option<&Kube>,
) -> Result<NotificationConfig, CliError> {
    let config_map: Option<ConfigMap> = match (&source.config_map, k) {
        (Some(path), _) => Some(read_yaml(path)?),
        (None, Some(k)) => {
            let api: Api<ConfigMap> = Api::namespaced(k.client.clone(), &k.namespace);
            api.get_opt(notify::CONFIG_MAP).await?
        }
        (None, None) => None,
    };
    let secret: Option<Secret> = match (&source.secret, k) {
        (Some(path), _) if path.as_os_str() == ":empty" => None,
        (Some(path), _) => Some(read_yaml(path)?),
        (None, Some(k)) => {
            let api: Api<Secret> = Api::namespaced(k.client.clone(), &k.namespace);
            api.get_opt(notify::SECRET).await?
        }
        (None, None) => None,
    };
    Ok(parse(config_map.as_ref(), secret.as_ref()))
}

/// The template variables for the Rollout `name` (or the manifest file `name`).
async fn rollout_vars(
    name: &str,
    k: Option<&Kube>,
    config: &NotificationConfig,
) -> Result<serde_json::Value, CliError> {
    if is_file(name) {
        let rollout: Rollout = read_yaml(Path::new(name))?;
        return Ok(analysis_vars(&rollout, std::iter::empty(), "", config));
    }
    let k = k.ok_or_else(|| CliError::Usage("no cluster to read the rollout from".into()))?;
    let rollouts: Api<Rollout> = Api::namespaced(k.client.clone(), &k.namespace);
    let rollout = rollouts.get(name).await?;
    let runs: Api<AnalysisRun> = Api::namespaced(k.client.clone(), &k.namespace);
    let runs = runs.list(&Default::default()).await?;
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<&AnalysisRun> = runs
        .items
        .iter()
        .filter(|run| {
            run.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|owner| owner.uid == uid)
        })
        .collect();
    let hash = rollout
        .status
        .as_ref()
        .map(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    Ok(analysis_vars(&rollout, owned.into_iter(), &hash, config))
}

/// Go's tabwriter as upstream sets it up (minimum width 5, padding 2, spaces).
fn table(rows: &[Vec<String>], out: &mut String) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns.saturating_sub(1)) {
            widths[i] = widths[i].max((cell.chars().count() + 2).max(5));
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                line.push_str(&format!("{cell:<width$}", width = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn formatted<T: serde::Serialize>(
    items: &T,
    output: &str,
    out: &mut String,
) -> Result<(), CliError> {
    match output {
        "json" => {
            let text =
                serde_json::to_string_pretty(items).map_err(|e| CliError::Failed(e.to_string()))?;
            out.push_str(&text);
            out.push('\n');
        }
        "yaml" => {
            out.push_str(
                &serde_saphyr::to_string(items).map_err(|e| CliError::Failed(e.to_string()))?,
            );
        }
        other => {
            return Err(CliError::Usage(format!("unknown output format: {other}")));
        }
    }
    Ok(())
}

/// A template's first line (`message`, else the whole template as JSON), at most 100 bytes.
fn preview(template: &serde_json::Value) -> String {
    let text = match template.get("message").and_then(serde_json::Value::as_str) {
        Some(message) if !message.is_empty() => message.to_string(),
        _ => template.to_string(),
    };
    let first = text.lines().next().unwrap_or("").to_string();
    if first.len() > 100 {
        let mut cut = 99;
        while !first.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &first[..cut])
    } else {
        first
    }
}

fn selected<'a, T>(
    items: &'a BTreeMap<String, T>,
    name: Option<&str>,
) -> BTreeMap<&'a String, &'a T> {
    items
        .iter()
        .filter(|(n, _)| name.is_none_or(|name| name == n.as_str()))
        .collect()
}

/// `template get [NAME]`.
pub fn template_get(
    config: &NotificationConfig,
    args: &GetArgs,
    out: &mut String,
) -> Result<(), CliError> {
    let items = selected(&config.templates, args.name.as_deref());
    match args.output.as_str() {
        "" | "wide" => {
            let mut rows = vec![vec!["NAME".to_string(), "PREVIEW".to_string()]];
            rows.extend(
                items
                    .iter()
                    .map(|(name, t)| vec![(*name).clone(), preview(t)]),
            );
            table(&rows, out);
        }
        "name" => items.keys().for_each(|name| {
            out.push_str(name);
            out.push('\n');
        }),
        output => formatted(&items, output, out)?,
    }
    Ok(())
}

/// `trigger get [NAME]`.
pub fn trigger_get(
    config: &NotificationConfig,
    args: &GetArgs,
    out: &mut String,
) -> Result<(), CliError> {
    let items = selected(&config.triggers, args.name.as_deref());
    match args.output.as_str() {
        "" | "wide" => {
            let mut rows = vec![vec![
                "NAME".to_string(),
                "TEMPLATE".to_string(),
                "CONDITION".to_string(),
            ]];
            for (name, conditions) in &items {
                for (i, condition) in conditions.iter().enumerate() {
                    rows.push(vec![
                        if i == 0 {
                            (*name).clone()
                        } else {
                            String::new()
                        },
                        condition.send.join(", "),
                        condition.when.clone(),
                    ]);
                }
            }
            table(&rows, out);
        }
        "name" => items.keys().for_each(|name| {
            out.push_str(name);
            out.push('\n');
        }),
        output => formatted(&items, output, out)?,
    }
    Ok(())
}

/// `trigger run NAME ROLLOUT`: each condition and whether it holds; 1 when the trigger is
/// unknown or a condition cannot be evaluated.
pub fn trigger_run(
    config: &NotificationConfig,
    args: &RunArgs,
    vars: &serde_json::Value,
    out: &mut String,
) -> i32 {
    let Some(conditions) = config.triggers.get(&args.name) else {
        let names: Vec<&str> = config.triggers.keys().map(String::as_str).collect();
        eprintln!(
            "trigger with name '{}' does not exist (found {})",
            args.name,
            names.join(", ")
        );
        return 1;
    };
    let mut rows = vec![vec!["CONDITION".to_string(), "RESULT".to_string()]];
    for (condition, result) in conditions
        .iter()
        .zip(notify::triggers::run(conditions, vars))
    {
        match result {
            Ok(result) => rows.push(vec![condition.when.clone(), result.triggered.to_string()]),
            Err(error) => {
                eprintln!("failed to execute trigger {}: {error}", args.name);
                return 1;
            }
        }
    }
    table(&rows, out);
    0
}

/// `template notify NAME ROLLOUT --recipient ...`: renders the template and sends it to each
/// recipient (`console` prints it as YAML).
pub async fn template_notify(
    config: &NotificationConfig,
    args: &NotifyArgs,
    vars: &serde_json::Value,
    out: &mut String,
) -> i32 {
    let notification = match render(config, &args.name, vars, Utc::now()) {
        Ok(notification) => notification,
        Err(error) => {
            eprintln!("failed to notify: {error}");
            return 1;
        }
    };
    let http = http_client();
    for recipient in &args.recipients {
        let (service, to) = recipient.split_once(':').unwrap_or((recipient, ""));
        if service == "console" {
            match serde_saphyr::to_string(&notification.0) {
                Ok(text) => out.push_str(&text),
                Err(error) => {
                    eprintln!("failed to notify '{recipient}': {error}");
                    return 1;
                }
            }
            continue;
        }
        let destination = Destination {
            service: service.to_string(),
            recipient: to.to_string(),
        };
        let delivery = config
            .services
            .get(service)
            .ok_or_else(|| format!("notification service '{service}' is not configured"))
            .and_then(|s| notify::payload::build(s, &notification, &destination));
        let sent = match delivery {
            Ok(delivery) => send(&http, &delivery).await,
            Err(error) => Err(error),
        };
        if let Err(error) = sent {
            eprintln!("failed to notify '{recipient}': {error}");
            return 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_as_go_tabwriter() {
        let mut out = String::new();
        table(
            &[
                vec!["NAME".into(), "PREVIEW".into()],
                vec![
                    "rollout-aborted".into(),
                    "Rollout x has been aborted.".into(),
                ],
            ],
            &mut out,
        );
        assert_eq!(
            out,
            "NAME             PREVIEW\nrollout-aborted  Rollout x has been aborted.\n"
        );
    }

    #[test]
    fn template_and_trigger_listings() {
        let config = NotificationConfig::builtin();
        let mut out = String::new();
        template_get(
            &config,
            &GetArgs {
                name: Some("rollout-aborted".into()),
                output: "wide".into(),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            "NAME             PREVIEW\nrollout-aborted  Rollout {{.rollout.metadata.name}} has been aborted.\n"
        );
        let mut out = String::new();
        trigger_get(
            &config,
            &GetArgs {
                name: None,
                output: "name".into(),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(out.lines().count(), 9);
        let mut out = String::new();
        let vars = serde_json::json!({"rollout": {"metadata": {"name": "x"}}});
        let code = trigger_run(
            &config,
            &RunArgs {
                name: "on-rollout-aborted".into(),
                rollout: "x".into(),
            },
            &vars,
            &mut out,
        );
        assert_eq!(code, 0);
        assert_eq!(out, "CONDITION  RESULT\n           true\n");
    }
}
