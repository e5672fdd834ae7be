//! The AnalysisRun reconciler: reads the run fresh, takes the due measurements through the
//! analysis [`Runner`] (real Job client, pod lister and Secrets), writes the new status back
//! with a merge patch of the object (the CRD has no status subresource) when it changed,
//! records the run's events and requeues at the next due measurement. Completed runs are
//! deleted when their `ttlStrategy` expires.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::backoff::Backoff;
use super::events::EventRecorder;
use super::executor::{event_body, merge_diff};
use super::metrics::Metrics;
use crate::analysis::providers::Registry;
use crate::analysis::providers::job::KubeJobClient;
use crate::analysis::providers::scrape::KubePodLister;
use crate::analysis::reconcile::{Step, ttl_deadline};
use crate::analysis::runner::{KubeSecrets, Runner};
use crate::api::AnalysisRun;
use crate::api::field_manager;
use crate::rollout::EventType;

/// Errors of one AnalysisRun reconcile (logged, retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Reading the run failed.
    #[error("reading AnalysisRun {name}: {source}")]
    Get {
        /// The run.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("patch status of AnalysisRun {name}: {source}")]
    PatchStatus {
        /// The run.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Deleting a run past its TTL failed.
    #[error("deleting expired AnalysisRun {name}: {source}")]
    Delete {
        /// The run.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A status could not be encoded as JSON.
    #[error("encoding status of AnalysisRun {0}: {1}")]
    Encode(String, serde_json::Error),
    /// Recording an event failed.
    #[error(transparent)]
    Event(#[from] super::executor::ExecError),
    /// The run has no namespace (never true for objects read from the API).
    #[error("AnalysisRun without namespace")]
    NoNamespace,
}

impl RunError {
    /// A stable name for structured logs and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            RunError::Get { source, .. }
            | RunError::PatchStatus { source, .. }
            | RunError::Delete { source, .. } => super::executor::kube_category(source),
            RunError::Encode(..) => "Encode",
            RunError::Event(error) => error.category(),
            RunError::NoNamespace => "Identity",
        }
    }
}

/// The metric providers the controller measures with: Prometheus and Web (built in), Jobs
/// through the API server, `davy/scrape` with the cluster's pods. Other plugins are added
/// here with [`Registry::with_plugin`].
pub fn registry(client: &Client) -> Registry {
    Registry::new()
        .with_jobs(Arc::new(KubeJobClient::new(client.clone())))
        .with_pods(Arc::new(KubePodLister::new(client.clone())))
}

/// State shared by AnalysisRun reconciles.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Runs the measurements.
    pub runner: Runner,
    /// Consecutive failures by AnalysisRun, for the retry delay.
    pub backoff: Backoff<AnalysisRun>,
    /// The `analysis_run_*` series this reconciler feeds.
    pub metrics: Arc<Metrics>,
    /// Sends this controller's Events off the reconcile's write chain.
    pub events: EventRecorder,
}

impl Context {
    /// A context measuring with [`registry`] and the cluster's Secrets.
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        let runner = Runner::new(
            registry(&client),
            Arc::new(KubeSecrets::new(client.clone())),
        );
        Context {
            events: EventRecorder::new(client.clone()),
            client,
            runner,
            backoff: Backoff::default(),
            metrics,
        }
    }
}

/// One reconcile of an AnalysisRun.
pub async fn reconcile(run: Arc<AnalysisRun>, ctx: Arc<Context>) -> Result<Action, RunError> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&run, &ctx).await;
    let namespace = run.namespace().unwrap_or_default();
    ctx.metrics.analysis_run_reconciled(
        &namespace,
        &run.name_any(),
        started.elapsed(),
        result.is_err(),
    );
    if result.is_ok() {
        ctx.backoff.succeeded(&run);
    }
    result
}

async fn reconcile_inner(run: &AnalysisRun, ctx: &Context) -> Result<Action, RunError> {
    let namespace = run.namespace().ok_or(RunError::NoNamespace)?;
    let name = run.name_any();
    let api: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), &namespace);
    // Measured from a fresh read: a cached copy that lags our own last status write would take
    // the same measurement twice.
    let fresh = api.get_opt(&name).await.map_err(|source| RunError::Get {
        name: name.clone(),
        source,
    })?;
    let Some(run) = fresh else {
        ctx.metrics.forget_analysis_run(&namespace, &name);
        return Ok(Action::await_change());
    };
    ctx.metrics.observe_analysis_run(&run);
    let clock = Timestamp::now;
    let Some(step) = ctx.runner.reconcile(&run, &clock).await else {
        return expire(&api, &run).await;
    };
    write_status(&api, &run, &step).await?;
    for event in &step.events {
        let type_ = if event.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.events.record(event_body(
            involved(&run, &namespace),
            type_,
            &event.reason,
            &event.message,
            chrono::Utc::now(),
        ));
    }
    Ok(requeue_at(step.next_reconcile, Timestamp::now()))
}

/// A completed run: deleted once its `ttlStrategy` deadline passed, else looked at again then.
async fn expire(api: &Api<AnalysisRun>, run: &AnalysisRun) -> Result<Action, RunError> {
    let Some(deadline) = ttl_deadline(run) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    if deadline > now {
        return Ok(requeue_at(Some(deadline), now));
    }
    let name = run.name_any();
    match api.delete(&name, &DeleteParams::background()).await {
        Ok(_) => Ok(Action::await_change()),
        // Already gone is what we wanted.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Action::await_change()),
        Err(source) => Err(RunError::Delete { name, source }),
    }
}

/// When to reconcile again for `next` (a due measurement), seen at `now`.
pub fn requeue_at(next: Option<Timestamp>, now: Timestamp) -> Action {
    match next {
        Some(at) => {
            let millis = at.as_millisecond().saturating_sub(now.as_millisecond());
            Action::requeue(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
        }
        None => Action::await_change(),
    }
}

async fn write_status(
    api: &Api<AnalysisRun>,
    run: &AnalysisRun,
    step: &Step,
) -> Result<(), RunError> {
    let name = run.name_any();
    let encode = |error| RunError::Encode(name.clone(), error);
    let old = serde_json::to_value(run.status.clone().unwrap_or_default()).map_err(encode)?;
    let new = serde_json::to_value(&step.status).map_err(encode)?;
    let Some(diff) = merge_diff(&old, &new) else {
        return Ok(());
    };
    let params = field_manager::patch(field_manager::CONTROLLER);
    // Upstream's AnalysisRun CRD has no status subresource: the status is a field of the object.
    api.patch(&name, &params, &Patch::Merge(&json!({ "status": diff })))
        .await
        .map(|_| ())
        .map_err(|source| RunError::PatchStatus {
            name: name.clone(),
            source,
        })
}

fn involved(run: &AnalysisRun, namespace: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(crate::api::consts::API_VERSION.to_string()),
        kind: Some("AnalysisRun".to_string()),
        name: run.metadata.name.clone(),
        namespace: Some(namespace.to_string()),
        uid: run.metadata.uid.clone(),
        resource_version: run.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// Retries a failed reconcile after the [`Backoff`] delay.
pub fn error_policy(run: Arc<AnalysisRun>, error: &RunError, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&run);
    tracing::warn!(
        run = %run.name_any(),
        category = error.category(),
        %error,
        ?delay,
        "AnalysisRun reconcile failed"
    );
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeues_at_the_next_measurement_and_not_in_the_past() {
        let now = Timestamp::from_second(1_000).unwrap();
        let at = Timestamp::from_second(1_005).unwrap();
        assert_eq!(
            requeue_at(Some(at), now),
            Action::requeue(Duration::from_secs(5))
        );
        assert_eq!(requeue_at(Some(now), at), Action::requeue(Duration::ZERO));
        assert_eq!(requeue_at(None, now), Action::await_change());
    }
}
