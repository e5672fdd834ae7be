//! Thin executors of the action verbs: connect, read, send the patch the pure functions chose,
//! print upstream's line. Errors carry the API server's own text ([`CliError`]).

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::create::{analysis_run_from_template, parse_arguments, run_name};
use super::patches::{
    abort_patch, parse_container_image, pause_patch, promote_patches, restart_patch,
    retry_experiment_patch, retry_rollout_patch, set_image, terminate_patch,
};
use super::status::{Outcome, TIMEOUT_MESSAGE, degraded_message, once_line, outcome, watch_line};
use super::undo::{
    Revision, UndoTarget, equal_ignore_hash, pick_revision, restore_patch, revision_of,
    skipped_message, undo_target,
};
use super::{
    AnalysisRunNames, CreateCommand, CreateRunArgs, NamesArgs, ObjectFormat, PromoteArgs,
    RestartArgs, RetryCommand, SetCommand, StatusArgs, TerminateCommand, UndoArgs,
};
use crate::api::field_manager;
use crate::api::selector::label_selector_query;
use crate::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout};
use crate::cli::kube::{CliError, Kube, KubeArgs, connect, runtime};

/// How often `status -w` re-reads the rollout.
const STATUS_POLL: Duration = Duration::from_millis(500);
/// Attempts of `set image` on 409 conflicts (upstream's `maxAttempts`).
const SET_IMAGE_ATTEMPTS: usize = 5;

fn params() -> PatchParams {
    field_manager::patch(field_manager::CLI)
}

fn post_params() -> PostParams {
    field_manager::post(field_manager::CLI)
}

fn rollouts(k: &Kube) -> Api<Rollout> {
    Api::namespaced(k.client.clone(), &k.namespace)
}

/// Runs `f` on a fresh client inside a one-shot runtime.
fn with_client<F, Fut>(kube: &KubeArgs, f: F) -> anyhow::Result<i32>
where
    F: FnOnce(Kube) -> Fut,
    Fut: Future<Output = Result<i32, CliError>>,
{
    let rt = runtime()?;
    Ok(rt.block_on(async move {
        let k = connect(kube).await?;
        f(k).await
    })?)
}

/// Merge-patches the status subresource, falling back to the main resource when the
/// subresource answers 404 (a CRD installed without it), as upstream does.
async fn patch_status_or_main(
    api: &Api<Rollout>,
    name: &str,
    body: &Value,
) -> Result<Rollout, CliError> {
    match api
        .patch_subresource("status", name, &params(), &Patch::Merge(body))
        .await
    {
        Ok(ro) => Ok(ro),
        Err(e) if CliError::is_not_found(&e) => {
            Ok(api.patch(name, &params(), &Patch::Merge(body)).await?)
        }
        Err(e) => Err(e.into()),
    }
}

fn name_of(ro: &Rollout, fallback: &str) -> String {
    ro.metadata
        .name
        .clone()
        .unwrap_or_else(|| fallback.to_string())
}

/// Promotes rollout `name` (to the next step, or `full`y); returns upstream's line.
pub async fn promote(k: &Kube, name: &str, full: bool) -> Result<String, CliError> {
    let api = rollouts(k);
    let ro = api.get(name).await?;
    let patches = promote_patches(&ro, full);
    let mut spec = patches.spec;
    let mut result = ro;
    if let Some(status) = &patches.status {
        match api
            .patch_subresource("status", name, &params(), &Patch::Merge(status))
            .await
        {
            Ok(ro) => result = ro,
            Err(e) if CliError::is_not_found(&e) => spec = patches.unified,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(spec) = &spec {
        result = api.patch(name, &params(), &Patch::Merge(spec)).await?;
    }
    let shown = name_of(&result, name);
    Ok(if full {
        format!("rollout '{shown}' fully promoted")
    } else {
        format!("rollout '{shown}' promoted")
    })
}

/// `promote NAME [--full]`.
pub fn run_promote(args: PromoteArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    with_client(kube, |k| async move {
        println!("{}", promote(&k, &args.name, args.full).await?);
        Ok(0)
    })
}

/// Aborts rollout `name`; returns upstream's line.
pub async fn abort(k: &Kube, name: &str) -> Result<String, CliError> {
    let ro = patch_status_or_main(&rollouts(k), name, &abort_patch()).await?;
    Ok(format!("rollout '{}' aborted", name_of(&ro, name)))
}

/// `abort NAME...`.
pub fn run_abort(args: NamesArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    with_client(kube, |k| async move {
        for name in &args.names {
            println!("{}", abort(&k, name).await?);
        }
        Ok(0)
    })
}

/// Retries aborted rollout `name`; returns upstream's line.
pub async fn retry_rollout(k: &Kube, name: &str) -> Result<String, CliError> {
    let ro = patch_status_or_main(&rollouts(k), name, &retry_rollout_patch()).await?;
    Ok(format!("rollout '{}' retried", name_of(&ro, name)))
}

/// `retry rollout|experiment NAME...`.
pub fn run_retry(cmd: RetryCommand, kube: &KubeArgs) -> anyhow::Result<i32> {
    with_client(kube, |k| async move {
        match cmd {
            RetryCommand::Rollout(args) => {
                for name in &args.names {
                    println!("{}", retry_rollout(&k, name).await?);
                }
            }
            RetryCommand::Experiment(args) => {
                let api: Api<Experiment> = Api::namespaced(k.client.clone(), &k.namespace);
                for name in &args.names {
                    let ex = api
                        .patch(name, &params(), &Patch::Merge(&retry_experiment_patch()))
                        .await?;
                    let shown = ex.metadata.name.unwrap_or_else(|| name.clone());
                    println!("experiment '{shown}' retried");
                }
            }
        }
        Ok(0)
    })
}

/// `pause NAME...`.
pub fn run_pause(args: NamesArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    with_client(kube, |k| async move {
        let api = rollouts(&k);
        for name in &args.names {
            let ro = api
                .patch(name, &params(), &Patch::Merge(&pause_patch()))
                .await?;
            println!("rollout '{}' paused", name_of(&ro, name));
        }
        Ok(0)
    })
}

/// Restarts rollout `name`'s pods after `delay` (a Go duration, `0s` for now); returns
/// upstream's line.
pub async fn restart(k: &Kube, name: &str, delay: &str) -> Result<String, CliError> {
    let api = rollouts(k);
    // Upstream reads the rollout first, so a missing one fails before any write.
    api.get(name).await?;
    let wait = super::go_duration(delay).map_err(CliError::Usage)?;
    let body = restart_patch(chrono::Utc::now(), wait);
    let ro = api.patch(name, &params(), &Patch::Merge(&body)).await?;
    Ok(format!(
        "rollout '{}' restarts in {delay}",
        name_of(&ro, name)
    ))
}

/// `restart NAME [--in D]`.
pub fn run_restart(args: RestartArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    with_client(kube, |k| async move {
        let text = args.delay.unwrap_or_else(|| "0s".to_string());
        println!("{}", restart(&k, &args.name, &text).await?);
        Ok(0)
    })
}

/// Sets `container`'s image of rollout `name` (or of its `workloadRef`), retrying on
/// conflicts as upstream; returns upstream's line.
pub async fn update_image(
    k: &Kube,
    name: &str,
    container: &str,
    image: &str,
) -> Result<String, CliError> {
    let mut last = CliError::Failed("update conflicted".into());
    for _ in 0..SET_IMAGE_ATTEMPTS {
        match set_image_once(k, name, container, image).await? {
            Attempt::Done { kind, name } => {
                return Ok(format!("{} \"{name}\" image updated", kind.to_lowercase()));
            }
            // Someone wrote in between: read again and retry, as upstream does.
            Attempt::Conflict(e) => last = e,
        }
    }
    Err(last)
}

/// `set image NAME CONTAINER=IMAGE`.
pub fn run_set(cmd: SetCommand, kube: &KubeArgs) -> anyhow::Result<i32> {
    let SetCommand::Image(args) = cmd;
    let (container, image) = parse_container_image(&args.image)?;
    with_client(kube, |k| async move {
        println!(
            "{}",
            update_image(&k, &args.name, &container, &image).await?
        );
        Ok(0)
    })
}

/// The result of one `set image` round trip.
enum Attempt {
    /// Updated: the object's kind and name.
    Done { kind: String, name: String },
    /// 409: the object changed since it was read.
    Conflict(CliError),
}

fn dynamic_api(
    k: &Kube,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(k.client.clone(), &k.namespace, &ar)
}

/// One GET + UPDATE of the Rollout, or of the Deployment its `workloadRef` names. Objects
/// travel as JSON so fields this version does not model survive, as upstream's dynamic client
/// ensures.
async fn set_image_once(
    k: &Kube,
    name: &str,
    container: &str,
    image: &str,
) -> Result<Attempt, CliError> {
    let ro_api = dynamic_api(k, "argoproj.io", "v1alpha1", "Rollout", "rollouts");
    let ro_json = to_json(&ro_api.get(name).await?)?;
    let (api, mut obj, target) = match ro_json
        .pointer("/spec/workloadRef/name")
        .and_then(Value::as_str)
    {
        Some(deploy) => {
            let api = dynamic_api(k, "apps", "v1", "Deployment", "deployments");
            let obj = to_json(&api.get(deploy).await?)?;
            (api, obj, deploy.to_string())
        }
        None => (ro_api, ro_json.clone(), name.to_string()),
    };
    set_image(&mut obj, container, image)?;
    let obj: DynamicObject =
        serde_json::from_value(obj).map_err(|e| CliError::Failed(e.to_string()))?;
    match api.replace(&target, &post_params(), &obj).await {
        Ok(updated) => Ok(Attempt::Done {
            kind: updated
                .types
                .as_ref()
                .map(|t| t.kind.clone())
                .unwrap_or_else(|| "rollout".into()),
            name: updated.metadata.name.unwrap_or(target),
        }),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Ok(Attempt::Conflict(kube::Error::Api(status).into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// `terminate analysisrun|experiment NAME...`.
pub fn run_terminate(cmd: TerminateCommand, kube: &KubeArgs) -> anyhow::Result<i32> {
    with_client(kube, |k| async move {
        match cmd {
            TerminateCommand::Analysisrun(AnalysisRunNames { names }) => {
                let api: Api<AnalysisRun> = Api::namespaced(k.client.clone(), &k.namespace);
                for name in &names {
                    let ar = api
                        .patch(name, &params(), &Patch::Merge(&terminate_patch()))
                        .await?;
                    let shown = ar.metadata.name.unwrap_or_else(|| name.clone());
                    println!("analysisRun '{shown}' terminated");
                }
            }
            TerminateCommand::Experiment(args) => {
                let api: Api<Experiment> = Api::namespaced(k.client.clone(), &k.namespace);
                for name in &args.names {
                    let ex = api
                        .patch(name, &params(), &Patch::Merge(&terminate_patch()))
                        .await?;
                    let shown = ex.metadata.name.unwrap_or_else(|| name.clone());
                    println!("experiment '{shown}' terminated");
                }
            }
        }
        Ok(0)
    })
}

/// Rolls rollout `name` back to `to_revision` (0: the previous one); returns upstream's line.
pub async fn undo(k: &Kube, name: &str, to_revision: i64) -> Result<String, CliError> {
    let api = rollouts(k);
    let ro = api.get(name).await?;
    let uid = ro.metadata.uid.clone().unwrap_or_default();
    let rs_api: Api<ReplicaSet> = Api::namespaced(k.client.clone(), &k.namespace);
    let selector = ro
        .spec
        .selector
        .as_ref()
        .map(label_selector_query)
        .unwrap_or_default();
    let list = rs_api
        .list(&ListParams::default().labels(&selector))
        .await?;
    let revisions: Vec<Revision> = list
        .items
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .filter_map(|rs| {
            let number = revision_of(rs.metadata.annotations.as_ref())?;
            let template = serde_json::to_value(rs.spec.as_ref()?.template.as_ref()?).ok()?;
            Some(Revision { number, template })
        })
        .collect();
    let target = pick_revision(name, &revisions, to_revision)?;
    let current = serde_json::to_value(&ro.spec.template).unwrap_or(Value::Null);
    if equal_ignore_hash(&current, &target.template) {
        return Ok(skipped_message(to_revision));
    }
    let patch: json_patch::Patch = serde_json::from_value(restore_patch(&target.template))
        .map_err(|e| CliError::Failed(format!("failed restoring revision {}: {e}", to_revision)))?;
    let workload = ro.spec.workload_ref.as_ref();
    let target = undo_target(
        workload.and_then(|w| w.kind.as_deref()),
        workload.and_then(|w| w.name.as_deref()),
    )?;
    let sent = match target {
        UndoTarget::Rollout => api
            .patch(name, &params(), &Patch::<()>::Json(patch))
            .await
            .map(drop),
        UndoTarget::Workload {
            group,
            kind,
            plural,
            name: workload_name,
        } => {
            // apps/v1 and core v1 are the only versions of these kinds.
            dynamic_api(k, group, "v1", kind, plural)
                .patch(&workload_name, &params(), &Patch::<()>::Json(patch))
                .await
                .map(drop)
        }
    };
    sent.map_err(|e| {
        CliError::Failed(format!(
            "failed restoring revision {}: {}",
            to_revision,
            CliError::from(e)
        ))
    })?;
    Ok(format!("rollout '{}' undo", name_of(&ro, name)))
}

/// `undo NAME [--to-revision N]`.
pub fn run_undo(args: UndoArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    with_client(kube, |k| async move {
        println!("{}", undo(&k, &args.name, args.to_revision).await?);
        Ok(0)
    })
}

/// `status NAME [-w] [-t TIMEOUT]`: 0 when Healthy; an error (exit 1) when Degraded or when the
/// timeout passes first.
pub fn run_status(args: StatusArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    with_client(kube, |k| async move {
        let api = rollouts(&k);
        let ro = api.get(&args.name).await?;
        let (phase, message) = super::status::phase_of(&ro);
        if !args.watch {
            println!("{}", once_line(&phase, &message));
            return match outcome(&phase, &message) {
                Some(Outcome::Degraded(m)) => Err(CliError::Failed(degraded_message(&m))),
                _ => Ok(0),
            };
        }
        let deadline =
            (!args.timeout.is_zero()).then(|| tokio::time::Instant::now() + args.timeout);
        let mut previous = String::new();
        let mut current = (phase, message);
        loop {
            let line = watch_line(&current.0, &current.1);
            if line != previous {
                println!("{line}");
                previous = line;
            }
            match outcome(&current.0, &current.1) {
                Some(Outcome::Healthy) => return Ok(0),
                Some(Outcome::Degraded(m)) => return Err(CliError::Failed(degraded_message(&m))),
                None => {}
            }
            let next_poll = tokio::time::Instant::now() + STATUS_POLL;
            match deadline {
                Some(d) if d <= next_poll => {
                    tokio::time::sleep_until(d).await;
                    return Err(CliError::Failed(TIMEOUT_MESSAGE.to_string()));
                }
                _ => tokio::time::sleep_until(next_poll).await,
            }
            let ro = api.get(&args.name).await?;
            current = super::status::phase_of(&ro);
        }
    })
}

/// `create analysisrun ...`.
pub fn run_create(cmd: CreateCommand, kube: &KubeArgs) -> anyhow::Result<i32> {
    let CreateCommand::Analysisrun(args) = cmd;
    let arguments = parse_arguments(&args.arguments)?;
    with_client(
        kube,
        |k| async move { create_run(&k, &args, &arguments).await },
    )
}

async fn create_run(
    k: &Kube,
    args: &CreateRunArgs,
    arguments: &[crate::api::Argument],
) -> Result<i32, CliError> {
    let template: Value = match (&args.from, &args.from_file) {
        (Some(name), _) if args.global => {
            let api: Api<ClusterAnalysisTemplate> = Api::all(k.client.clone());
            to_json(&api.get(name).await?)?
        }
        (Some(name), _) => {
            let api: Api<AnalysisTemplate> = Api::namespaced(k.client.clone(), &k.namespace);
            to_json(&api.get(name).await?)?
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
            serde_saphyr::from_str(&text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?
        }
        (None, None) => {
            return Err(CliError::Usage(
                "one of --from or --from-file must be specified".into(),
            ));
        }
    };
    let template_name = template
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = run_name(
        args.name.as_deref(),
        args.generate_name.as_deref(),
        &template_name,
    );
    let run = analysis_run_from_template(
        &template,
        arguments,
        &name,
        &k.namespace,
        args.instance_id.as_deref(),
    )?;
    let run: AnalysisRun = serde_json::from_value(run)
        .map_err(|e| CliError::Usage(format!("building the AnalysisRun: {e}")))?;
    let api: Api<AnalysisRun> = Api::namespaced(k.client.clone(), &k.namespace);
    let created = api.create(&post_params(), &run).await?;
    match args.output {
        None => println!(
            "analysisrun.argoproj.io/{} created",
            created.metadata.name.clone().unwrap_or_default()
        ),
        Some(format) => print!("{}", render_object(&created, format)?),
    }
    Ok(0)
}

fn to_json<T: serde::Serialize>(obj: &T) -> Result<Value, CliError> {
    serde_json::to_value(obj).map_err(|e| CliError::Failed(e.to_string()))
}

/// An object as `-o json` (pretty, newline-terminated) or `-o yaml`.
pub fn render_object<T: serde::Serialize>(
    obj: &T,
    format: ObjectFormat,
) -> Result<String, CliError> {
    match format {
        ObjectFormat::Json => serde_json::to_string_pretty(obj)
            .map(|s| s + "\n")
            .map_err(|e| CliError::Failed(e.to_string())),
        ObjectFormat::Yaml => {
            let value = to_json(obj)?;
            serde_saphyr::to_string(&value).map_err(|e| CliError::Failed(e.to_string()))
        }
    }
}
