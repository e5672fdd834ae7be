//! The Rollout reconciler: reads what one canary decision needs, calls the pure
//! [`crate::rollout::plan`], and applies the plan through the [`super::executor`].
//!
//! Owned ReplicaSets and AnalysisRuns are listed from the API server at each reconcile rather
//! than read from a separate reflector: a reconcile triggered by our own create must see that
//! object, or the plan would create it again (a separate cache may lag its trigger).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};

use super::backoff::Backoff;
use super::executor::{self, Applied, ExecError};
use super::metrics::Metrics;
use crate::api::consts::annotation;
use crate::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use crate::rollout::{Observed, plan};

/// Errors of one Rollout reconcile (logged, counted, retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Listing what the decision reads failed.
    #[error("listing {what}: {source}")]
    List {
        /// What was listed.
        what: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Applying the plan failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The Rollout has no namespace (never true for objects read from the API).
    #[error("rollout without namespace")]
    NoNamespace,
}

/// State shared by Rollout reconciles.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Metrics the reconciles update.
    pub metrics: Arc<Metrics>,
    /// Consecutive failures by Rollout, for the retry delay.
    pub backoff: Backoff<Rollout>,
}

impl Context {
    /// A context with no failures yet.
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        Context {
            client,
            metrics,
            backoff: Backoff::default(),
        }
    }
}

fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|owner| owner.controller == Some(true) && owner.uid == uid)
}

fn list_err(what: &'static str) -> impl FnOnce(kube::Error) -> ReconcileError {
    move |source| ReconcileError::List { what, source }
}

/// Reads everything the decision needs for `rollout` from the API server.
pub async fn observe(client: &Client, rollout: &Rollout) -> Result<Observed, ReconcileError> {
    let namespace = rollout.namespace().ok_or(ReconcileError::NoNamespace)?;
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    let all = ListParams::default();
    let mut observed = Observed::new(rollout.clone());

    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &namespace);
    observed.replica_sets = replica_sets
        .list(&all)
        .await
        .map_err(list_err("ReplicaSets"))?
        .items
        .into_iter()
        .filter(|rs| owned_by(&rs.metadata, &uid))
        .collect();

    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), &namespace);
    observed.analysis_runs = runs
        .list(&all)
        .await
        .map_err(list_err("AnalysisRuns"))?
        .items
        .into_iter()
        .filter(|run| owned_by(&run.metadata, &uid))
        .collect();

    if uses_analysis(rollout) {
        let templates: Api<AnalysisTemplate> = Api::namespaced(client.clone(), &namespace);
        observed.analysis_templates = templates
            .list(&all)
            .await
            .map_err(list_err("AnalysisTemplates"))?
            .items;
        let cluster: Api<ClusterAnalysisTemplate> = Api::all(client.clone());
        observed.cluster_analysis_templates = cluster
            .list(&all)
            .await
            .map_err(list_err("ClusterAnalysisTemplates"))?
            .items;
    }

    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    observed.services = services
        .list(&all)
        .await
        .map_err(list_err("Services"))?
        .items
        .into_iter()
        .map(|service| (service.name_any(), service))
        .collect::<BTreeMap<_, _>>();

    if rollout.spec.restart_at.is_some() {
        let rs_uids: Vec<String> = observed
            .replica_sets
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .collect();
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        observed.pods = pods
            .list(&all)
            .await
            .map_err(list_err("Pods"))?
            .items
            .into_iter()
            .filter(|pod| rs_uids.iter().any(|uid| owned_by(&pod.metadata, uid)))
            .collect();
    }
    Ok(observed)
}

/// Whether the Rollout names analysis templates (steps or background analysis).
fn uses_analysis(rollout: &Rollout) -> bool {
    rollout.spec.strategy.canary.as_ref().is_some_and(|canary| {
        canary.analysis.is_some()
            || canary
                .steps
                .iter()
                .flatten()
                .any(|step| step.analysis.is_some())
    })
}

/// One reconcile of a Rollout: observe, plan, apply.
pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&rollout, &ctx).await;
    ctx.metrics
        .observe_reconcile(&rollout, started.elapsed(), result.is_err());
    if result.is_ok() {
        ctx.backoff.succeeded(&rollout);
    }
    result
}

async fn reconcile_inner(rollout: &Rollout, ctx: &Context) -> Result<Action, ReconcileError> {
    let observed = observe(&ctx.client, rollout).await?;
    let now = Utc::now();
    let decided = plan(&observed, now);
    ctx.metrics
        .observe_rollout(&observed.rollout, decided.status());
    let applied = executor::apply(&ctx.client, rollout, &decided, now).await?;
    if applied == Applied::All {
        ctx.metrics
            .observe_applied(rollout, &observed.analysis_runs, &decided);
    }
    if let Some(error) = &decided.error {
        tracing::warn!(rollout = %rollout.name_any(), %error, "reconcile stopped");
    }
    Ok(match (applied, decided.requeue_after) {
        (Applied::Requeue, _) => Action::requeue(Duration::from_secs(1)),
        (Applied::All, Some(after)) => Action::requeue(after),
        (Applied::All, None) => Action::await_change(),
    })
}

/// Retries a failed reconcile after the [`Backoff`] delay.
pub fn error_policy(rollout: Arc<Rollout>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&rollout);
    tracing::warn!(rollout = %rollout.name_any(), %error, ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The Rollout a Service belongs to (its `managed-by-rollouts` annotation), so a Service change
/// (selector reverted by hand) reconciles the Rollout.
pub fn service_owner(service: Service) -> Option<ObjectRef<Rollout>> {
    let name = service
        .annotations()
        .get(annotation::MANAGED_BY_ROLLOUTS)?
        .clone();
    let namespace = service.namespace()?;
    Some(ObjectRef::new(&name).within(&namespace))
}

/// The owner Rollout of an object as an [`ObjectRef`], if its controller is a Rollout.
pub fn rollout_owner<K: Resource>(object: &K) -> Option<ObjectRef<Rollout>> {
    let namespace = object.meta().namespace.clone()?;
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true) && owner.kind == "Rollout")
        .map(|owner| ObjectRef::new(&owner.name).within(&namespace))
}

/// The Rollouts an Ingress change concerns: its owner (a canary Ingress) and every Rollout in
/// `store` naming it as an nginx stable Ingress (a user edit of the stable Ingress is copied
/// into the canary Ingress).
pub fn ingress_rollouts(
    store: &kube::runtime::reflector::Store<Rollout>,
    ingress: &k8s_openapi::api::networking::v1::Ingress,
) -> Vec<ObjectRef<Rollout>> {
    let mut out: Vec<ObjectRef<Rollout>> = rollout_owner(ingress).into_iter().collect();
    let Some(namespace) = ingress.namespace() else {
        return out;
    };
    let name = ingress.name_any();
    for rollout in store.state() {
        let names_it = rollout
            .spec
            .strategy
            .canary
            .as_ref()
            .and_then(|canary| canary.traffic_routing.as_ref())
            .and_then(|routing| routing.nginx.as_ref())
            .is_some_and(|nginx| crate::traffic::nginx::stable_ingresses(nginx).contains(&name));
        if names_it && rollout.namespace().as_deref() == Some(namespace.as_str()) {
            let key = ObjectRef::from_obj(rollout.as_ref());
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    out
}
