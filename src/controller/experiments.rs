//! The Experiment reconciler: reads the Experiment fresh, reads what it owns by name (its
//! ReplicaSets `<experiment>-<template>`, their Services, the AnalysisRuns its status names or
//! its analyses will be given) and the templates its analyses use, calls the pure
//! [`crate::experiment::plan`], applies the writes in order and requeues at the next deadline.
//!
//! Reading by name rather than from a shared cache keeps a reconcile right after our own write
//! from acting on a stale copy (a ReplicaSet created a moment ago is always seen); the watches
//! only decide when to reconcile.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use super::backoff::Backoff;
use super::events::EventRecorder;
use super::executor::{event_body, merge_diff};
use crate::api::consts::{API_VERSION, annotation, kind};
use crate::api::field_manager;
use crate::api::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, ExperimentStatus,
};
use crate::experiment::objects::{replica_set_name, service_name};
use crate::experiment::{Observed, Plan, Write, failures, plan};

/// `.N` names probed for an analysis whose run is about to be created.
const MAX_PROBED_RUN_NAMES: usize = 20;

/// Errors of one Experiment reconcile (logged, retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A read failed.
    #[error("reading {what}: {source}")]
    Read {
        /// What was read.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A write failed.
    #[error("{write}: {source}")]
    Write {
        /// What was written.
        write: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A status could not be encoded as JSON.
    #[error("encoding status of Experiment {0}: {1}")]
    Encode(String, serde_json::Error),
    /// Recording an event failed.
    #[error(transparent)]
    Event(#[from] super::executor::ExecError),
    /// The Experiment has no namespace (never true for objects read from the API).
    #[error("Experiment without namespace")]
    NoNamespace,
}

/// State shared by Experiment reconciles.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Consecutive failures by Experiment, for the retry delay.
    pub backoff: Backoff<Experiment>,
    /// Sends this controller's Events off the reconcile's write chain.
    pub events: EventRecorder,
}

impl Context {
    /// A context with no failures yet.
    pub fn new(client: Client) -> Self {
        Context {
            events: EventRecorder::new(client.clone()),
            client,
            backoff: Backoff::default(),
        }
    }
}

fn read_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ExperimentError {
    let what = what.into();
    move |source| ExperimentError::Read { what, source }
}

fn write_err(write: impl Into<String>) -> impl FnOnce(kube::Error) -> ExperimentError {
    let write = write.into();
    move |source| ExperimentError::Write { write, source }
}

fn code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// One reconcile of an Experiment.
pub async fn reconcile(ex: Arc<Experiment>, ctx: Arc<Context>) -> Result<Action, ExperimentError> {
    let result = reconcile_inner(&ex, &ctx).await;
    if result.is_ok() {
        ctx.backoff.succeeded(&ex);
    }
    result
}

async fn reconcile_inner(ex: &Experiment, ctx: &Context) -> Result<Action, ExperimentError> {
    let namespace = ex.namespace().ok_or(ExperimentError::NoNamespace)?;
    let name = ex.name_any();
    let api: Api<Experiment> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(ex) = api
        .get_opt(&name)
        .await
        .map_err(read_err(format!("Experiment {name}")))?
    else {
        return Ok(Action::await_change());
    };
    let obs = observe(&ctx.client, &namespace, ex).await?;
    let now = Utc::now();
    let plan = plan(&obs, now);
    apply(
        &ctx.client,
        &ctx.events,
        &obs.experiment,
        &namespace,
        &plan,
        now,
    )
    .await?;
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

async fn get_opt<K>(api: &Api<K>, name: &str, what: &str) -> Result<Option<K>, ExperimentError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .map_err(read_err(format!("{what} {name}")))
}

/// Reads what the decision needs, by name.
pub async fn observe(
    client: &Client,
    namespace: &str,
    ex: Experiment,
) -> Result<Observed, ExperimentError> {
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), namespace);
    let status = ex.status.clone().unwrap_or_default();
    let mut obs = Observed::new(ex.clone());
    for template in &ex.spec.templates {
        let rs_name = replica_set_name(&ex, &template.name);
        if let Some(rs) = get_opt(&replica_sets, &rs_name, "ReplicaSet").await? {
            obs.replica_sets.push(rs);
        }
        let mut names = vec![rs_name, service_name(&ex, template)];
        names.dedup();
        for name in names {
            if let Some(svc) = get_opt(&services, &name, "Service").await? {
                obs.services.push(svc);
            }
        }
    }
    let mut need_templates = false;
    let ex_name = ex.name_any();
    for analysis in ex.spec.analyses.iter().flatten() {
        let recorded = status
            .analysis_runs
            .iter()
            .find(|r| r.name == analysis.name);
        match recorded.filter(|r| !r.analysis_run.is_empty()) {
            Some(run) => {
                if !run.phase.completed()
                    && let Some(found) = get_opt(&runs, &run.analysis_run, "AnalysisRun").await?
                {
                    obs.analysis_runs.push(found);
                }
            }
            None => {
                need_templates = true;
                // The names a new run may take: every one in use up to the first free one.
                let base = format!("{ex_name}-{}", analysis.name);
                for n in 0..MAX_PROBED_RUN_NAMES {
                    let name = crate::rollout::analysis_run::collision_name(&base, n);
                    match get_opt(&runs, &name, "AnalysisRun").await? {
                        Some(found) => obs.analysis_runs.push(found),
                        None => break,
                    }
                }
            }
        }
    }
    if need_templates {
        let templates: Api<AnalysisTemplate> = Api::namespaced(client.clone(), namespace);
        obs.analysis_templates = templates
            .list(&ListParams::default())
            .await
            .map_err(read_err("AnalysisTemplates"))?
            .items;
        let cluster: Api<ClusterAnalysisTemplate> = Api::all(client.clone());
        obs.cluster_analysis_templates = cluster
            .list(&ListParams::default())
            .await
            .map_err(read_err("ClusterAnalysisTemplates"))?
            .items;
    }
    Ok(obs)
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(field_manager::CONTROLLER.to_string()),
        ..PatchParams::default()
    }
}

fn post() -> PostParams {
    PostParams {
        field_manager: Some(field_manager::CONTROLLER.to_string()),
        ..PostParams::default()
    }
}

/// Applies `plan` in order. A failed create, scale or delete of a template's objects or a
/// failed AnalysisRun create is recorded as upstream does (the template or analysis in `Error`
/// with the API's message, see [`crate::experiment::failures`]): the other writes go on and
/// that status is written in place of the plan's. Any other failure stops and is retried.
pub async fn apply(
    client: &Client,
    events: &EventRecorder,
    ex: &Experiment,
    namespace: &str,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<(), ExperimentError> {
    let planned = plan
        .status()
        .cloned()
        .unwrap_or_else(|| ex.status.clone().unwrap_or_default());
    let mut recorded: Option<ExperimentStatus> = None;
    let mut patched = false;
    for write in &plan.writes {
        let result = match (write, &recorded) {
            (Write::PatchStatus(_), Some(status)) => {
                patched = true;
                let write = Write::PatchStatus(Box::new(status.clone()));
                apply_one(client, events, ex, namespace, &write, now).await
            }
            _ => apply_one(client, events, ex, namespace, write, now).await,
        };
        let (what, source) = match result {
            Ok(()) => continue,
            Err(ExperimentError::Write {
                write: what,
                source,
            }) => (what, source),
            Err(other) => return Err(other),
        };
        let text = match &source {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        };
        let base = recorded.as_ref().unwrap_or(&planned);
        let Some((status, event)) = failures::after_failed_write(ex, base, write, &text) else {
            return Err(ExperimentError::Write {
                write: what,
                source,
            });
        };
        tracing::warn!(experiment = %ex.name_any(), error = %text, "{what} failed; recorded as Error");
        if let Some(event) = event {
            // The event is a courtesy; the status is what counts.
            if let Err(error) =
                apply_one(client, events, ex, namespace, &Write::Event(event), now).await
            {
                tracing::warn!(%error, "event about a failed write not recorded");
            }
        }
        recorded = Some(status);
    }
    if let Some(status) = recorded
        && !patched
    {
        apply_one(
            client,
            events,
            ex,
            namespace,
            &Write::PatchStatus(Box::new(status)),
            now,
        )
        .await?;
    }
    Ok(())
}

/// Applies one write.
async fn apply_one(
    client: &Client,
    events: &EventRecorder,
    ex: &Experiment,
    namespace: &str,
    write: &Write,
    now: DateTime<Utc>,
) -> Result<(), ExperimentError> {
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), namespace);
    let experiments: Api<Experiment> = Api::namespaced(client.clone(), namespace);
    let name = ex.name_any();
    match write {
        Write::CreateReplicaSet(rs) => {
            let what = format!("create ReplicaSet {}", rs.name_any());
            match replica_sets.create(&post(), rs).await {
                Ok(_) => {}
                // Our own earlier create (deterministic name); the next read sees it.
                Err(error) if code(&error) == Some(409) => {}
                Err(error) => return Err(write_err(what)(error)),
            }
        }
        Write::ScaleReplicaSet { name, replicas } => {
            replica_sets
                .patch(
                    name,
                    &params(),
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await
                .map_err(write_err(format!("scale ReplicaSet {name}")))?;
        }
        Write::SetScaleDownDeadline { name, deadline } => {
            let patch =
                json!({"metadata": {"annotations": {annotation::SCALE_DOWN_DEADLINE: deadline}}});
            replica_sets
                .patch(name, &params(), &Patch::Merge(patch))
                .await
                .map_err(write_err(format!("annotate ReplicaSet {name}")))?;
        }
        Write::ClearScaleDownDeadline { name } => {
            let patch = json!({"metadata": {"annotations": {annotation::SCALE_DOWN_DEADLINE: Value::Null}}});
            replica_sets
                .patch(name, &params(), &Patch::Merge(patch))
                .await
                .map_err(write_err(format!("annotate ReplicaSet {name}")))?;
        }
        Write::CreateService(svc) => {
            let what = format!("create Service {}", svc.name_any());
            match services.create(&post(), svc).await {
                Ok(_) => {}
                Err(error) if code(&error) == Some(409) => {}
                Err(error) => return Err(write_err(what)(error)),
            }
        }
        Write::DeleteService { name } => {
            match services.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(error) if code(&error) == Some(404) => {}
                Err(error) => return Err(write_err(format!("delete Service {name}"))(error)),
            }
        }
        Write::CreateAnalysisRun(run) => {
            let what = format!("create AnalysisRun {}", run.name_any());
            match runs.create(&post(), run).await {
                Ok(_) => {}
                Err(error) if code(&error) == Some(409) => {}
                Err(error) => return Err(write_err(what)(error)),
            }
        }
        Write::TerminateAnalysisRun { name } => {
            runs.patch(
                name,
                &params(),
                &Patch::Merge(json!({"spec": {"terminate": true}})),
            )
            .await
            .map_err(write_err(format!("terminate AnalysisRun {name}")))?;
        }
        Write::PatchStatus(status) => {
            let encode = |error| ExperimentError::Encode(name.clone(), error);
            let old =
                serde_json::to_value(ex.status.clone().unwrap_or_default()).map_err(encode)?;
            let new = serde_json::to_value(status.as_ref()).map_err(encode)?;
            if let Some(diff) = merge_diff(&old, &new) {
                // Upstream's Experiment CRD has no status subresource.
                experiments
                    .patch(&name, &params(), &Patch::Merge(json!({"status": diff})))
                    .await
                    .map_err(write_err(format!("patch status of Experiment {name}")))?;
            }
        }
        Write::Event(event) => {
            events.record(event_body(
                involved(ex, namespace),
                event.type_,
                &event.reason,
                &event.message,
                now,
            ));
        }
        Write::RolloutEvent { rollout, event } => {
            let object = ObjectReference {
                api_version: Some(API_VERSION.to_string()),
                kind: Some(kind::ROLLOUT.to_string()),
                name: Some(rollout.clone()),
                namespace: Some(namespace.to_string()),
                ..ObjectReference::default()
            };
            events.record(event_body(
                object,
                event.type_,
                &event.reason,
                &event.message,
                now,
            ));
        }
    }
    Ok(())
}

fn involved(ex: &Experiment, namespace: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(API_VERSION.to_string()),
        kind: Some(kind::EXPERIMENT.to_string()),
        name: ex.metadata.name.clone(),
        namespace: Some(namespace.to_string()),
        uid: ex.metadata.uid.clone(),
        resource_version: ex.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// Retries a failed reconcile after the [`Backoff`] delay.
pub fn error_policy(ex: Arc<Experiment>, error: &ExperimentError, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&ex);
    tracing::warn!(experiment = %ex.name_any(), %error, ?delay, "Experiment reconcile failed");
    Action::requeue(delay.max(Duration::from_millis(1)))
}
