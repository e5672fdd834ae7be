//! The Rollout reconciler: reads what one canary decision needs from the shared caches
//! ([`super::cache`]), validates the spec, calls the pure [`crate::rollout::plan`], and applies
//! the plan through the [`super::executor`].
//!
//! A reconcile reads only what its own Rollout owns or names (ReplicaSets and AnalysisRuns by
//! owner uid, Services, Ingresses and templates by name), so its cost does not grow with the
//! namespace. The caches may lag our own writes; [`super::expectations`] holds a Rollout back
//! until they show them, so a reconcile never acts twice on one decision.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};

use super::backoff::Backoff;
use super::cache::Cache;
use super::events::EventRecorder;
use super::executor::{self, ExecError, Sent};
use super::expectations::{self, Check, Expectation, Expectations, Kind, Want};
use super::metrics::Metrics;
use super::workloads::Workloads;
use crate::api::consts::{annotation, label};
use crate::api::validate::{
    References, referenced_names, validate_resolved_rollout, validate_rollout,
    validate_rollout_references,
};
use crate::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout};
use crate::rollout::workload::{self, WorkloadKind};
use crate::rollout::{Observed, plan};
use crate::traffic::{self, ResourceType, RouterConfig, TrafficError};

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
    /// Reading the router objects the Rollout names (Istio VirtualServices) failed.
    #[error("reading traffic routing objects: {0}")]
    Traffic(#[from] TrafficError),
    /// The Rollout has no namespace (never true for objects read from the API).
    #[error("rollout without namespace")]
    NoNamespace,
}

impl ReconcileError {
    /// A stable name for events and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::List { source, .. } => super::executor::kube_category(source),
            ReconcileError::Exec(error) => error.category(),
            ReconcileError::Traffic(error) => error.category(),
            ReconcileError::NoNamespace => "Identity",
        }
    }
}

/// The caches Rollout reconciles read, each fed by one watch ([`super::cache::feed`]).
#[derive(Default)]
pub struct Caches {
    /// ReplicaSets carrying `rollouts-pod-template-hash`, by owner.
    pub replica_sets: Arc<Cache<ReplicaSet>>,
    /// AnalysisRuns, by owner.
    pub analysis_runs: Arc<Cache<AnalysisRun>>,
    /// Services, by name.
    pub services: Arc<Cache<Service>>,
    /// Ingresses, by name.
    pub ingresses: Arc<Cache<Ingress>>,
    /// AnalysisTemplates, by name.
    pub analysis_templates: Arc<Cache<AnalysisTemplate>>,
    /// ClusterAnalysisTemplates, by name.
    pub cluster_analysis_templates: Arc<Cache<ClusterAnalysisTemplate>>,
    /// Experiments, by owner.
    pub experiments: Arc<Cache<Experiment>>,
    /// The workloads `spec.workloadRef` names, and who names them.
    pub workloads: Arc<Workloads>,
}

impl Caches {
    /// Waits until every cache has read its first full list.
    pub async fn synced(&self) {
        self.replica_sets.synced().await;
        self.analysis_runs.synced().await;
        self.services.synced().await;
        self.ingresses.synced().await;
        self.analysis_templates.synced().await;
        self.cluster_analysis_templates.synced().await;
        self.experiments.synced().await;
    }

    /// Caches filled by one list of each kind in `namespace` and no watch: for tools and tests
    /// that reconcile by hand (the controller feeds its caches from watches instead).
    pub async fn listed(client: &Client, namespace: &str) -> Result<Caches, ReconcileError> {
        let caches = Caches::default();
        let owned_rs = ListParams::default().labels(label::POD_TEMPLATE_HASH);
        let all = ListParams::default();
        fill(
            &caches.replica_sets,
            Api::namespaced(client.clone(), namespace),
            &owned_rs,
            "ReplicaSets",
        )
        .await?;
        fill(
            &caches.analysis_runs,
            Api::namespaced(client.clone(), namespace),
            &all,
            "AnalysisRuns",
        )
        .await?;
        fill(
            &caches.services,
            Api::namespaced(client.clone(), namespace),
            &all,
            "Services",
        )
        .await?;
        fill(
            &caches.ingresses,
            Api::namespaced(client.clone(), namespace),
            &all,
            "Ingresses",
        )
        .await?;
        fill(
            &caches.analysis_templates,
            Api::namespaced(client.clone(), namespace),
            &all,
            "AnalysisTemplates",
        )
        .await?;
        fill(
            &caches.cluster_analysis_templates,
            Api::all(client.clone()),
            &all,
            "ClusterAnalysisTemplates",
        )
        .await?;
        fill(
            &caches.experiments,
            Api::namespaced(client.clone(), namespace),
            &all,
            "Experiments",
        )
        .await?;
        Ok(caches)
    }
}

/// Fills `cache` with one list, as a watch's initial list would.
async fn fill<K>(
    cache: &Cache<K>,
    api: Api<K>,
    params: &ListParams,
    what: &'static str,
) -> Result<(), ReconcileError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let listed = api.list(params).await.map_err(list_err(what))?;
    cache.apply(kube::runtime::watcher::Event::Init);
    for object in listed.items {
        cache.apply(kube::runtime::watcher::Event::InitApply(object));
    }
    cache.apply(kube::runtime::watcher::Event::InitDone);
    Ok(())
}

/// State shared by Rollout reconciles.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Metrics the reconciles update.
    pub metrics: Arc<Metrics>,
    /// Consecutive failures by Rollout, for the retry delay.
    pub backoff: Backoff<Rollout>,
    /// What the reconciles read.
    pub caches: Arc<Caches>,
    /// Our writes not yet seen in the caches, by Rollout uid.
    pub expectations: Expectations,
    /// Where reconciles queue their Kubernetes Events.
    pub events: EventRecorder,
    /// The `argo-rollouts-config` ConfigMap as last read.
    pub config: super::config::SharedConfig,
}

impl Context {
    /// A context with no failures yet, reading `caches`.
    pub fn new(client: Client, metrics: Arc<Metrics>, caches: Arc<Caches>) -> Self {
        Context {
            events: EventRecorder::new(client.clone()),
            client,
            metrics,
            backoff: Backoff::default(),
            caches,
            expectations: Expectations::default(),
            config: super::config::SharedConfig::default(),
        }
    }

    /// Drops what is kept about a deleted Rollout: its metric series and expectations.
    pub fn forget(&self, rollout: &Rollout) {
        let namespace = rollout.metadata.namespace.as_deref().unwrap_or_default();
        self.metrics.forget(namespace, &rollout.name_any());
        if let Some(uid) = rollout.metadata.uid.as_deref() {
            self.expectations.forget(uid);
        }
        self.backoff.succeeded(rollout);
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

/// Clones the cached objects out (the plan takes plain values).
fn values<K: Clone>(objects: Vec<Arc<K>>) -> Vec<K> {
    objects
        .iter()
        .map(|object| object.as_ref().clone())
        .collect()
}

/// `rollout` with its `spec.workloadRef` resolved (the pure [`workload::resolve`] of the
/// workload read from its cache), and what the plan reads about the workload; or the
/// resolution error.
async fn resolve_workload(
    client: &Client,
    caches: &Caches,
    rollout: &Rollout,
    namespace: &str,
) -> Result<(Rollout, workload::ResolvedWorkload), String> {
    let Some(reference) = rollout.spec.workload_ref.as_ref() else {
        return workload::resolve(rollout, None);
    };
    let found = match WorkloadKind::of(reference) {
        Ok(kind) => {
            let name = reference.name.as_deref().unwrap_or_default();
            caches.workloads.find(client, namespace, kind, name).await?
        }
        // `resolve` reports the unsupported kind.
        Err(_) => None,
    };
    workload::resolve(rollout, found.as_ref())
}

/// Reads everything the decision needs for `rollout` from the caches (Pods, needed only for a
/// restart, from the API server), resolves its `workloadRef`, and validates the spec and its
/// references.
pub async fn observe(
    client: &Client,
    caches: &Caches,
    rollout: &Rollout,
) -> Result<Observed, ReconcileError> {
    let namespace = rollout.namespace().ok_or(ReconcileError::NoNamespace)?;
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    let (resolved, workload) = match resolve_workload(client, caches, rollout, &namespace).await {
        Ok(resolved) => resolved,
        Err(error) => {
            // Upstream reports the resolution error alone and reconciles nothing else.
            let mut observed = Observed::new(rollout.clone());
            observed.workload_error = Some(error);
            return Ok(observed);
        }
    };
    let rollout = &resolved;
    let mut observed = Observed::new(rollout.clone());
    observed.workload = workload;
    observed.replica_sets = values(caches.replica_sets.owned_by(&uid));
    observed.analysis_runs = values(caches.analysis_runs.owned_by(&uid));
    observed.experiments = owned_experiments(client, caches, rollout, &namespace, &uid).await?;

    let names = referenced_names(rollout);
    let mut references = References::default();
    // The caches hold every object of these kinds: absence means "does not exist".
    references.known.services = true;
    references.known.ingresses = true;
    references.known.analysis_templates = true;
    references.known.cluster_analysis_templates = true;
    for name in &names.services {
        if let Some(service) = caches.services.get(&namespace, name) {
            observed
                .services
                .insert(name.to_string(), service.as_ref().clone());
            references.add_service(service.as_ref().clone());
        }
    }
    for name in &names.ingresses {
        if let Some(ingress) = caches.ingresses.get(&namespace, name)
            && let Ok(value) = serde_json::to_value(ingress.as_ref())
        {
            // k8s-openapi writes `apiVersion` and `kind`, which the Ingress rules read.
            references.add_ingress(value);
        }
    }
    for name in &names.analysis_templates {
        if let Some(template) = caches.analysis_templates.get(&namespace, name) {
            observed.analysis_templates.push(template.as_ref().clone());
            references.add_analysis_template(template.as_ref().clone());
        }
    }
    for name in &names.cluster_analysis_templates {
        if let Some(template) = caches.cluster_analysis_templates.get("", name) {
            observed
                .cluster_analysis_templates
                .push(template.as_ref().clone());
            references.add_cluster_analysis_template(template.as_ref().clone());
        }
    }
    if !names.virtual_services.is_empty() {
        // Not cached: only Istio users name them, and a GET per named one is O(1) per reconcile
        // where a watch would hold every VirtualService of the cluster. A 404 (or no Istio CRD
        // at all) means "does not exist", which validation reports as upstream does.
        let resource = ResourceType::virtual_service(&RouterConfig::default().istio_api_version);
        let wanted: Vec<(ResourceType, String, String)> = names
            .virtual_services
            .iter()
            .map(|(ns, name)| {
                let ns = ns.unwrap_or(namespace.as_str()).to_string();
                (resource.clone(), ns, name.to_string())
            })
            .collect();
        let found = traffic::observe(client, &wanted).await?;
        for (resource, ns, name) in &wanted {
            if let Some(vs) = found.get(resource, ns, name) {
                references.add_virtual_service(vs.clone());
            }
        }
        references.known.virtual_services = true;
    }
    let static_errors = if rollout.spec.workload_ref.is_some() {
        validate_resolved_rollout(rollout)
    } else {
        validate_rollout(rollout)
    };
    observed.validation_errors = static_errors
        .into_iter()
        .chain(validate_rollout_references(rollout, &references))
        .map(|error| error.to_string())
        .collect();
    if rollout.spec.restart_at.is_some() {
        observed.pods = restart_pods(client, &namespace, &observed.replica_sets).await?;
    }
    Ok(observed)
}

/// The Experiments `rollout` owns; the one its status names is read from the API server when
/// the cache does not show it yet (just created), as upstream does for AnalysisRuns.
async fn owned_experiments(
    client: &Client,
    caches: &Caches,
    rollout: &Rollout,
    namespace: &str,
    uid: &str,
) -> Result<Vec<Experiment>, ReconcileError> {
    let mut owned = values(caches.experiments.owned_by(uid));
    let current = rollout
        .status
        .as_ref()
        .map(|status| status.canary.current_experiment.clone())
        .unwrap_or_default();
    if !current.is_empty() && !owned.iter().any(|ex| ex.name_any() == current) {
        let api: Api<Experiment> = Api::namespaced(client.clone(), namespace);
        if let Some(ex) = api
            .get_opt(&current)
            .await
            .map_err(list_err("Experiment"))?
            && owned_by(&ex.metadata, uid)
        {
            owned.push(ex);
        }
    }
    Ok(owned)
}

/// The Pods of the owned ReplicaSets (for `spec.restartAt`), listed by their hash labels.
async fn restart_pods(
    client: &Client,
    namespace: &str,
    replica_sets: &[ReplicaSet],
) -> Result<Vec<Pod>, ReconcileError> {
    let hashes: Vec<&str> = replica_sets
        .iter()
        .filter_map(|rs| rs.labels().get(label::POD_TEMPLATE_HASH))
        .map(String::as_str)
        .collect();
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let selector = format!("{} in ({})", label::POD_TEMPLATE_HASH, hashes.join(","));
    let rs_uids: Vec<&str> = replica_sets
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .collect();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    Ok(pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(list_err("Pods"))?
        .items
        .into_iter()
        .filter(|pod| rs_uids.iter().any(|uid| owned_by(&pod.metadata, uid)))
        .collect())
}

/// One reconcile of a Rollout: wait for the caches to show our own writes, observe, plan, apply.
pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(&rollout, &ctx).await;
    ctx.metrics
        .observe_reconcile(&rollout, started.elapsed(), result.is_err());
    if result.is_ok() {
        ctx.backoff.succeeded(&rollout);
    }
    result
}

/// The resourceVersion a cache holds for one of `rollout`'s objects; the Rollout's own is the
/// copy this reconcile plans from.
fn cached_version(caches: &Caches, rollout: &Rollout, kind: Kind, name: &str) -> Option<String> {
    let namespace = rollout.metadata.namespace.as_deref().unwrap_or_default();
    match kind {
        Kind::Rollout => rollout.metadata.resource_version.clone(),
        Kind::ReplicaSet => caches.replica_sets.resource_version(namespace, name),
        Kind::AnalysisRun => caches.analysis_runs.resource_version(namespace, name),
        Kind::Service => caches.services.resource_version(namespace, name),
    }
}

async fn reconcile_inner(rollout: &Rollout, ctx: &Context) -> Result<Action, ReconcileError> {
    ctx.caches.synced().await;
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    let check = ctx.expectations.check(&uid, Instant::now(), |kind, name| {
        cached_version(&ctx.caches, rollout, kind, name)
    });
    if let Check::Waiting { until, pending } = check {
        // The watch event that meets the expectation triggers the next reconcile; the requeue
        // is only the deadline.
        tracing::debug!(rollout = %rollout.name_any(), pending = pending.len(), "waiting for own writes");
        return Ok(Action::requeue(
            until.saturating_duration_since(Instant::now()),
        ));
    }
    let observed = observe(&ctx.client, &ctx.caches, rollout).await?;
    let now = Utc::now();
    let decided = plan(&observed, now);
    ctx.metrics
        .observe_rollout(&observed.rollout, decided.status());
    let mut sent = Vec::new();
    let applied =
        executor::apply(&ctx.client, rollout, &decided, now, &ctx.events, &mut sent).await;
    ctx.expectations.expect(
        &uid,
        expectations_of(&sent, &observed, Instant::now() + expectations::TIMEOUT),
    );
    applied?;
    ctx.metrics
        .observe_applied(rollout, &observed.analysis_runs, &decided);
    if let Some(error) = &decided.error {
        tracing::warn!(
            rollout = %rollout.name_any(),
            category = error.category(),
            %error,
            "reconcile stopped"
        );
    }
    Ok(match decided.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// What the caches must show after the writes `sent` (pure): created objects present, deleted
/// ones gone, patched ones past every version this reconcile saw or passed through on the way
/// to the last one the API server answered. A patch answered with the version it was made on
/// changed nothing and is not waited for.
pub fn expectations_of(sent: &[Sent], observed: &Observed, deadline: Instant) -> Vec<Expectation> {
    let observed_version = |kind: Kind, name: &str| -> Option<String> {
        let meta = match kind {
            Kind::Rollout => Some(&observed.rollout.metadata),
            Kind::ReplicaSet => observed
                .replica_sets
                .iter()
                .find(|rs| rs.metadata.name.as_deref() == Some(name))
                .map(|rs| &rs.metadata),
            Kind::AnalysisRun => observed
                .analysis_runs
                .iter()
                .find(|run| run.metadata.name.as_deref() == Some(name))
                .map(|run| &run.metadata),
            Kind::Service => observed.services.get(name).map(|svc| &svc.metadata),
        };
        meta.and_then(|meta| meta.resource_version.clone())
    };
    // Per object, in order of first write: what the writes amount to.
    let mut wants: Vec<(Kind, String, Want)> = Vec::new();
    for write in sent {
        let (kind, name) = match write {
            Sent::Created(kind, name)
            | Sent::Deleted(kind, name)
            | Sent::Patched(kind, name, _) => (*kind, name),
        };
        let index = match wants.iter().position(|(k, n, _)| *k == kind && n == name) {
            Some(index) => index,
            None => {
                let start = Want::Past(observed_version(kind, name).into_iter().collect());
                wants.push((kind, name.clone(), start));
                wants.len() - 1
            }
        };
        let want = &mut wants[index].2;
        match write {
            Sent::Created(..) => *want = Want::Present,
            Sent::Deleted(..) => *want = Want::Absent,
            // Every version seen so far is stale; the answered one is the target (kept last).
            Sent::Patched(_, _, answered) => {
                if let (Want::Past(stale), Some(rv)) = (want, answered) {
                    stale.push(rv.clone());
                }
            }
        }
    }
    wants
        .into_iter()
        .filter_map(|(kind, name, want)| {
            let want = match want {
                Want::Past(mut versions) => {
                    // The last version is the one our writes reached: not stale.
                    let reached = versions.pop()?;
                    versions.retain(|rv| *rv != reached);
                    if versions.is_empty() {
                        return None;
                    }
                    Want::Past(versions)
                }
                other => other,
            };
            Some(Expectation {
                kind,
                name,
                want,
                deadline,
            })
        })
        .collect()
}

/// Retries a failed reconcile after the [`Backoff`] delay.
pub fn error_policy(rollout: Arc<Rollout>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&rollout);
    tracing::warn!(
        rollout = %rollout.name_any(),
        category = error.category(),
        %error,
        ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// The Rollout a Service belongs to (its `managed-by-rollouts` annotation), so a Service change
/// (selector reverted by hand) reconciles the Rollout.
pub fn service_owner(service: &Service) -> Option<ObjectRef<Rollout>> {
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

/// The Rollouts naming each Ingress as an nginx stable Ingress, kept from the Rollout watch, so
/// an Ingress change finds its Rollouts without scanning them all.
#[derive(Debug, Default)]
pub struct StableIngressIndex {
    by_ingress: std::sync::Mutex<HashMap<(String, String), BTreeSet<String>>>,
    by_rollout: std::sync::Mutex<HashMap<(String, String), Vec<String>>>,
}

impl StableIngressIndex {
    /// Records the stable Ingresses `rollout` names now (`deleted`: none).
    pub fn update(&self, rollout: &Rollout, deleted: bool) {
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        let name = rollout.name_any();
        let now: Vec<String> = if deleted {
            Vec::new()
        } else {
            rollout
                .spec
                .strategy
                .canary
                .as_ref()
                .and_then(|canary| canary.traffic_routing.as_ref())
                .and_then(|routing| routing.nginx.as_ref())
                .map(crate::traffic::nginx::stable_ingresses)
                .unwrap_or_default()
        };
        // Lock order: by_rollout, then by_ingress (the only place both are held).
        let mut by_rollout = self
            .by_rollout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut by_ingress = self
            .by_ingress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (namespace.clone(), name.clone());
        for old in by_rollout.remove(&key).unwrap_or_default() {
            let ingress = (namespace.clone(), old);
            if let Some(names) = by_ingress.get_mut(&ingress) {
                names.remove(&name);
                if names.is_empty() {
                    by_ingress.remove(&ingress);
                }
            }
        }
        for ingress in &now {
            by_ingress
                .entry((namespace.clone(), ingress.clone()))
                .or_default()
                .insert(name.clone());
        }
        if !now.is_empty() {
            by_rollout.insert(key, now);
        }
    }

    /// The Rollouts naming Ingress `namespace/name`.
    pub fn rollouts(&self, namespace: &str, name: &str) -> Vec<String> {
        self.by_ingress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(namespace.to_string(), name.to_string()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The Rollouts an Ingress change concerns: its owner (a canary Ingress) and every Rollout
/// naming it as an nginx stable Ingress (a user edit of the stable Ingress is copied into the
/// canary Ingress).
pub fn ingress_rollouts(index: &StableIngressIndex, ingress: &Ingress) -> Vec<ObjectRef<Rollout>> {
    let mut out: Vec<ObjectRef<Rollout>> = rollout_owner(ingress).into_iter().collect();
    let Some(namespace) = ingress.namespace() else {
        return out;
    };
    for name in index.rollouts(&namespace, &ingress.name_any()) {
        let key = ObjectRef::new(&name).within(&namespace);
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout_with(name: &str, rv: &str, ingresses: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, "uid": "u"},
            "spec": {"strategy": {"canary": {"trafficRouting": {"nginx": ingresses}}}}
        }))
        .unwrap()
    }

    #[test]
    fn the_stable_ingress_index_follows_renames_and_deletes() {
        let index = StableIngressIndex::default();
        index.update(
            &rollout_with("a", "1", json!({"stableIngress": "web"})),
            false,
        );
        index.update(
            &rollout_with("b", "1", json!({"stableIngresses": ["web", "api"]})),
            false,
        );
        assert_eq!(index.rollouts("ns", "web"), ["a", "b"]);
        assert_eq!(index.rollouts("ns", "api"), ["b"]);
        assert!(index.rollouts("other", "web").is_empty());
        index.update(
            &rollout_with("a", "2", json!({"stableIngress": "api"})),
            false,
        );
        assert_eq!(index.rollouts("ns", "web"), ["b"]);
        assert_eq!(index.rollouts("ns", "api"), ["a", "b"]);
        index.update(&rollout_with("b", "3", json!({})), true);
        assert!(index.rollouts("ns", "web").is_empty());
        assert_eq!(index.rollouts("ns", "api"), ["a"]);
    }

    fn observed_at(rollout_rv: &str, rs: &[(&str, &str)]) -> Observed {
        let mut observed = Observed::new(rollout_with("r", rollout_rv, json!({})));
        observed.replica_sets = rs
            .iter()
            .map(|(name, rv)| {
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}
                }))
                .unwrap()
            })
            .collect();
        observed
    }

    #[test]
    fn expectations_wait_for_the_last_version_each_write_reached() {
        let deadline = Instant::now();
        let observed = observed_at("10", &[("r-old", "4")]);
        let sent = [
            Sent::Created(Kind::ReplicaSet, "r-new".into()),
            Sent::Patched(Kind::ReplicaSet, "r-new".into(), Some("12".into())),
            Sent::Patched(Kind::Rollout, "r".into(), Some("11".into())),
            Sent::Patched(Kind::Rollout, "r".into(), Some("13".into())),
            Sent::Patched(Kind::ReplicaSet, "r-old".into(), Some("4".into())),
            Sent::Deleted(Kind::AnalysisRun, "r-run".into()),
        ];
        let got = expectations_of(&sent, &observed, deadline);
        let want = |kind, name: &str, want| Expectation {
            kind,
            name: name.into(),
            want,
            deadline,
        };
        assert_eq!(
            got,
            [
                // Created then patched: present is what to wait for.
                want(Kind::ReplicaSet, "r-new", Want::Present),
                // Two patches: neither the observed version nor the first answer will do.
                want(
                    Kind::Rollout,
                    "r",
                    Want::Past(vec!["10".into(), "11".into()])
                ),
                // `r-old`'s patch changed nothing (same version answered): not waited for.
                want(Kind::AnalysisRun, "r-run", Want::Absent),
            ]
        );
    }
}
