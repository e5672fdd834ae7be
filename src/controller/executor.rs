//! The thin executor of the rollout core: applies a [`Plan`]'s writes in order with a
//! `kube::Client` and stops at the first failure (the next reconcile recomputes everything).
//! `SetTrafficWeight` goes through the traffic routers ([`crate::traffic`]).

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::EventSource;
use k8s_openapi::api::core::v1::{Event as KubeEvent, ObjectReference, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::api::consts::{annotation, label};
use crate::api::field_manager;
use crate::api::{AnalysisRun, PodTemplateMetadata, Rollout, RolloutStatus};
use crate::rollout::{Event, EventType, Plan, TrafficWeight, Write, ephemeral};
use crate::traffic::{self, RouterConfig, TrafficError, TrafficState};

use super::events::EventRecorder;
use super::expectations::Kind;

/// The event source component, as upstream's controller reports it.
pub const EVENT_COMPONENT: &str = "rollouts-controller";

/// Why applying a plan stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A request failed; `write` names the write that failed.
    #[error("{write}: {source}")]
    Kube {
        /// A short description of the write.
        write: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A value could not be encoded as JSON.
    #[error("encoding {0}: {1}")]
    Encode(String, serde_json::Error),
    /// A traffic router could not be read, computed or written.
    #[error("traffic routing: {0}")]
    Traffic(#[from] TrafficError),
    /// The Rollout has no namespace or name (never true for objects read from the API).
    #[error("rollout without namespace or name")]
    NoIdentity,
}

impl ExecError {
    /// A stable name for structured logs and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            ExecError::Kube { source, .. } => kube_category(source),
            ExecError::Encode(..) => "Encode",
            ExecError::Traffic(error) => error.category(),
            ExecError::NoIdentity => "Identity",
        }
    }
}

/// The category of an API error: `Conflict` (409: retried on the next reconcile), `NotFound`,
/// `Invalid` (422: the object is wrong, retrying will not help), `Forbidden` (RBAC), `Api`
/// for other answers and `Transport` when no answer came.
pub fn kube_category(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) => match status.code {
            409 => "Conflict",
            404 => "NotFound",
            422 => "Invalid",
            401 | 403 => "Forbidden",
            _ => "Api",
        },
        _ => "Transport",
    }
}

/// A write that reached the API server, so the reconciler can wait for its caches to show it
/// ([`super::expectations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Created (or found already existing: deterministic names make that the same object).
    Created(Kind, String),
    /// Patched; the resourceVersion the API server answered with.
    Patched(Kind, String, Option<String>),
    /// Deleted (or already gone).
    Deleted(Kind, String),
}

/// Applies `plan` for `rollout` (as observed: its status is the base of the status diff),
/// pushing every write that reached the API server onto `sent` (also when a later one fails).
/// Events go to `events`, which sends them off the chain of writes.
pub async fn apply(
    client: &Client,
    rollout: &Rollout,
    plan: &Plan,
    now: DateTime<Utc>,
    events: &EventRecorder,
    sent: &mut Vec<Sent>,
) -> Result<(), ExecError> {
    let namespace = rollout.namespace().ok_or(ExecError::NoIdentity)?;
    let name = rollout.metadata.name.clone().ok_or(ExecError::NoIdentity)?;
    let exec = Executor {
        client,
        events,
        rollout,
        namespace: &namespace,
        name: &name,
        now,
    };
    for write in &plan.writes {
        exec.apply_one(write, sent).await?;
    }
    Ok(())
}

struct Executor<'a> {
    client: &'a Client,
    events: &'a EventRecorder,
    rollout: &'a Rollout,
    namespace: &'a str,
    name: &'a str,
    now: DateTime<Utc>,
}

fn kube_err(write: impl Into<String>) -> impl FnOnce(kube::Error) -> ExecError {
    let write = write.into();
    move |source| ExecError::Kube { write, source }
}

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn merge_params() -> PatchParams {
    field_manager::patch(field_manager::CONTROLLER)
}

fn post_params() -> PostParams {
    field_manager::post(field_manager::CONTROLLER)
}

impl Executor<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), self.namespace)
    }

    async fn merge<K>(
        &self,
        what: &str,
        name: &str,
        patch: Value,
    ) -> Result<Option<String>, ExecError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        self.api::<K>()
            .patch(name, &merge_params(), &Patch::Merge(&patch))
            .await
            .map(|object| object.meta().resource_version.clone())
            .map_err(kube_err(format!("{what} {name}")))
    }

    /// Creates `object`; an existing object of that name counts as created: names are
    /// deterministic (`<rollout>-<hash>`, `<rollout>-<hash>-<revision>-<step>`), so it is the
    /// one an earlier reconcile of ours made (a foreign one is not owned and the plan's business).
    async fn create<K>(&self, what: &str, object: &K) -> Result<String, ExecError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        match self.api::<K>().create(&post_params(), object).await {
            Ok(_) => Ok(name),
            Err(error) if status_code(&error) == Some(409) => Ok(name),
            Err(error) => Err(kube_err(format!("create {what} {name}"))(error)),
        }
    }

    async fn apply_one(&self, write: &Write, sent: &mut Vec<Sent>) -> Result<(), ExecError> {
        let patched = |kind, name: &str, rv| Sent::Patched(kind, name.to_string(), rv);
        match write {
            Write::CreateReplicaSet(rs) => {
                let name = self.create("ReplicaSet", rs.as_ref()).await?;
                sent.push(Sent::Created(Kind::ReplicaSet, name));
            }
            Write::UpdateReplicaSetAnnotations { name, annotations } => {
                let patch = json!({"metadata": {"annotations": annotations}});
                let rv = self
                    .merge::<ReplicaSet>("annotate ReplicaSet", name, patch)
                    .await?;
                sent.push(patched(Kind::ReplicaSet, name, rv));
            }
            Write::ScaleReplicaSet {
                name,
                to,
                annotations,
                ..
            } => {
                let mut patch = json!({"spec": {"replicas": to}});
                if !annotations.is_empty() {
                    patch["metadata"] = json!({"annotations": annotations});
                }
                let rv = self
                    .merge::<ReplicaSet>("scale ReplicaSet", name, patch)
                    .await?;
                sent.push(patched(Kind::ReplicaSet, name, rv));
            }
            Write::SetScaleDownDeadline { name, deadline } => {
                let patch = json!({"metadata": {"annotations": {annotation::SCALE_DOWN_DEADLINE: deadline}}});
                let rv = self
                    .merge::<ReplicaSet>("set scale-down deadline on", name, patch)
                    .await?;
                sent.push(patched(Kind::ReplicaSet, name, rv));
            }
            Write::ClearScaleDownDeadline { name } => {
                let patch =
                    json!({"metadata": {"annotations": {annotation::SCALE_DOWN_DEADLINE: null}}});
                let rv = self
                    .merge::<ReplicaSet>("clear scale-down deadline on", name, patch)
                    .await?;
                sent.push(patched(Kind::ReplicaSet, name, rv));
            }
            Write::DeleteReplicaSet { name } => {
                self.delete::<ReplicaSet>("delete ReplicaSet", name).await?;
                sent.push(Sent::Deleted(Kind::ReplicaSet, name.clone()));
            }
            Write::SetRolloutRevision { revision } => {
                let patch = json!({"metadata": {"annotations": {annotation::REVISION: revision}}});
                let rv = self
                    .merge::<Rollout>("set revision of Rollout", self.name, patch)
                    .await?;
                sent.push(patched(Kind::Rollout, self.name, rv));
            }
            Write::SetWorkloadGeneration { generation } => {
                let patch = json!({"metadata": {"annotations": {
                    annotation::WORKLOAD_GENERATION: generation
                }}});
                let rv = self
                    .merge::<Rollout>("set workload generation of Rollout", self.name, patch)
                    .await?;
                sent.push(patched(Kind::Rollout, self.name, rv));
            }
            Write::ScaleWorkload { name, replicas } => {
                // The Deployment is not ours: only its `spec.replicas` is written, as upstream's
                // `scaleDeployment` changes nothing else.
                let patch = json!({"spec": {"replicas": replicas}});
                self.merge::<Deployment>("scale Deployment", name, patch)
                    .await?;
            }
            Write::PatchRolloutSpecReplicas { replicas } => {
                let patch = json!({"spec": {"replicas": replicas}});
                let rv = self
                    .merge::<Rollout>("set spec.replicas of Rollout", self.name, patch)
                    .await?;
                sent.push(patched(Kind::Rollout, self.name, rv));
            }
            Write::PatchService {
                name,
                hash,
                managed_by,
            } => {
                let mut patch = json!({"spec": {"selector": {label::POD_TEMPLATE_HASH: hash}}});
                if let Some(rollout) = managed_by {
                    patch["metadata"] =
                        json!({"annotations": {annotation::MANAGED_BY_ROLLOUTS: rollout}});
                }
                let rv = self.merge::<Service>("patch Service", name, patch).await?;
                sent.push(patched(Kind::Service, name, rv));
            }
            Write::SetTrafficWeight(weight) => self.set_traffic_weight(weight).await?,
            Write::CreateAnalysisRun(run) => {
                let name = self.create("AnalysisRun", run.as_ref()).await?;
                sent.push(Sent::Created(Kind::AnalysisRun, name));
            }
            Write::TerminateAnalysisRun { name } => {
                let patch = json!({"spec": {"terminate": true}});
                let rv = self
                    .merge::<AnalysisRun>("terminate AnalysisRun", name, patch)
                    .await?;
                sent.push(patched(Kind::AnalysisRun, name, rv));
            }
            Write::DeleteAnalysisRun { name } => {
                self.delete::<AnalysisRun>("delete AnalysisRun", name)
                    .await?;
                sent.push(Sent::Deleted(Kind::AnalysisRun, name.clone()));
            }
            // Experiments are not waited for: the next reconcile reads one missing from the
            // cache directly (`rollouts::observe`).
            Write::CreateExperiment(ex) => {
                self.create("Experiment", ex.as_ref()).await?;
            }
            Write::TerminateExperiment { name } => {
                let patch = json!({"spec": {"terminate": true}});
                self.merge::<crate::api::Experiment>("terminate Experiment", name, patch)
                    .await?;
            }
            Write::DeleteExperiment { name } => {
                self.delete::<crate::api::Experiment>("delete Experiment", name)
                    .await?;
            }
            Write::SyncEphemeralMetadata {
                name,
                uid,
                hash,
                template,
                existing,
                desired,
                record,
                pods,
            } => {
                if !template.is_empty() {
                    self.merge::<ReplicaSet>(
                        "patch pod template metadata of ReplicaSet",
                        name,
                        ephemeral::template_patch(template),
                    )
                    .await?;
                }
                if *pods {
                    self.relabel_pods(uid, hash, existing.as_ref(), desired.as_ref())
                        .await?;
                }
                let rv = self
                    .merge::<ReplicaSet>(
                        "record ephemeral metadata on ReplicaSet",
                        name,
                        ephemeral::record_patch(record.as_deref()),
                    )
                    .await?;
                sent.push(patched(Kind::ReplicaSet, name, rv));
            }
            Write::EvictPod { name } => self.evict(name).await?,
            Write::PatchStatus(status) => {
                if let Some(rv) = self.patch_status(status).await? {
                    sent.push(patched(Kind::Rollout, self.name, rv));
                }
            }
            Write::Event(event) => self.event(event),
        }
        Ok(())
    }

    async fn delete<K>(&self, what: &str, name: &str) -> Result<(), ExecError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match self
            .api::<K>()
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            // Already gone is what we wanted.
            Err(error) if status_code(&error) == Some(404) => Ok(()),
            Err(error) => Err(kube_err(format!("{what} {name}"))(error)),
        }
    }

    /// The running side of an ephemeral-metadata sync: the Pods of one ReplicaSet (listed by its
    /// hash label, kept when it is their controller) get their labels and annotations patched.
    /// A Pod deleted meanwhile is skipped.
    async fn relabel_pods(
        &self,
        uid: &str,
        hash: &str,
        existing: Option<&PodTemplateMetadata>,
        desired: Option<&PodTemplateMetadata>,
    ) -> Result<(), ExecError> {
        let pods = self.api::<Pod>();
        let selector = format!("{}={hash}", label::POD_TEMPLATE_HASH);
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_err(format!("list Pods {selector}")))?;
        for pod in listed.items {
            let controlled = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|owner| owner.controller == Some(true) && owner.uid == uid);
            if !controlled {
                continue;
            }
            let change = ephemeral::sync_meta(
                pod.metadata.labels.as_ref(),
                pod.metadata.annotations.as_ref(),
                existing,
                desired,
            );
            if change.is_empty() {
                continue;
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            let patch = json!({"metadata": change.metadata_patch()});
            match pods
                .patch(&name, &merge_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(error) if status_code(&error) == Some(404) => {}
                Err(error) => return Err(kube_err(format!("relabel Pod {name}"))(error)),
            }
        }
        Ok(())
    }

    async fn evict(&self, name: &str) -> Result<(), ExecError> {
        let pods = self.api::<Pod>();
        match pods.evict(name, &EvictParams::default()).await {
            Ok(_) => Ok(()),
            // A disruption budget refused: not an error, the next reconcile retries.
            Err(error) if status_code(&error) == Some(429) => Ok(()),
            // No Eviction API (the sandbox) or the Pod is gone: plain delete.
            Err(error) if status_code(&error) == Some(404) => {
                self.delete::<Pod>("delete Pod", name).await
            }
            Err(error) => Err(kube_err(format!("evict Pod {name}"))(error)),
        }
    }

    /// Patches the status fields that differ from the observed ones; `None` when none do,
    /// else the resourceVersion answered.
    async fn patch_status(
        &self,
        status: &RolloutStatus,
    ) -> Result<Option<Option<String>>, ExecError> {
        let old = serde_json::to_value(self.rollout.status.clone().unwrap_or_default())
            .map_err(|error| ExecError::Encode("observed status".into(), error))?;
        let new = serde_json::to_value(status)
            .map_err(|error| ExecError::Encode("new status".into(), error))?;
        let Some(diff) = merge_diff(&old, &new) else {
            return Ok(None);
        };
        let patch = json!({ "status": diff });
        self.api::<Rollout>()
            .patch_status(self.name, &merge_params(), &Patch::Merge(&patch))
            .await
            .map(|object| Some(object.metadata.resource_version))
            .map_err(kube_err(format!("patch status of Rollout {}", self.name)))
    }

    fn event(&self, event: &Event) {
        let object = ObjectReference {
            api_version: Some(crate::api::consts::API_VERSION.to_string()),
            kind: Some("Rollout".to_string()),
            name: Some(self.name.to_string()),
            namespace: Some(self.namespace.to_string()),
            uid: self.rollout.metadata.uid.clone(),
            resource_version: self.rollout.metadata.resource_version.clone(),
            ..ObjectReference::default()
        };
        self.events.record(event_body(
            object,
            event.type_,
            &event.reason,
            &event.message,
            self.now,
        ));
    }

    /// Brings every router of the Rollout to `weight`: one pass for the weight (removing the
    /// managed routes when none must exist), then one per managed route that must exist, each
    /// reading the router objects again so it builds on the previous pass's writes.
    async fn set_traffic_weight(&self, weight: &TrafficWeight) -> Result<(), ExecError> {
        let config = RouterConfig::default();
        let routers = traffic::routers(self.rollout)?;
        let mut refs = Vec::new();
        for router in &routers {
            refs.extend(router.watched(self.rollout, &config)?);
        }
        let uid = self.rollout.metadata.uid.clone().unwrap_or_default();
        for state in traffic_states(weight) {
            let observed = traffic::observe(self.client, &refs).await?;
            let desired = traffic::desired_all(self.rollout, &observed, &state, &config)?;
            let (events, failure) = match traffic::apply(self.client, &uid, &desired).await {
                Ok(events) => (events, None),
                Err(failure) => (failure.events, Some(failure.error)),
            };
            for event in events {
                let event = Event {
                    type_: EventType::Normal,
                    reason: event.reason,
                    message: event.message,
                };
                self.event(&event);
            }
            if let Some(error) = failure {
                return Err(error.into());
            }
        }
        Ok(())
    }
}

/// The router passes for one `SetTrafficWeight` (pure): the weight first, removing every
/// managed route when the plan wants none, then each header and mirror route that must exist.
pub fn traffic_states(weight: &TrafficWeight) -> Vec<TrafficState> {
    let base = TrafficState {
        weight: weight.weight,
        canary_hash: weight.canary_hash.clone(),
        stable_hash: weight.stable_hash.clone(),
        additional_destinations: weight.additional.clone(),
        remove_managed_routes: weight.header_routes.is_empty() && weight.mirror_routes.is_empty(),
        header_route: None,
        mirror_route: None,
    };
    let mut states = vec![base.clone()];
    let routes_only = TrafficState {
        remove_managed_routes: false,
        ..base
    };
    for route in &weight.header_routes {
        states.push(TrafficState {
            header_route: Some(route.clone()),
            ..routes_only.clone()
        });
    }
    for route in &weight.mirror_routes {
        states.push(TrafficState {
            mirror_route: Some(route.clone()),
            ..routes_only.clone()
        });
    }
    states
}

/// A Kubernetes Event on `object` as upstream's controller writes one (pure but for its name:
/// source component [`EVENT_COMPONENT`], count 1, first and last timestamps `now`).
pub fn event_body(
    object: ObjectReference,
    type_: EventType,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> KubeEvent {
    let now = crate::rollout::observed::chrono_to_time(now);
    // Named from the wall clock, not `now`: one plan often emits several events.
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let namespace = object.namespace.clone().unwrap_or_default();
    let name = object.name.clone().unwrap_or_default();
    KubeEvent {
        metadata: ObjectMeta {
            // Upstream (client-go's recorder) names events `<object>.<hex nanoseconds>`.
            name: Some(format!("{name}.{nanos:x}")),
            namespace: Some(namespace),
            ..ObjectMeta::default()
        },
        involved_object: object,
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some(type_.as_str().to_string()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        event_time: None::<MicroTime>,
        source: Some(EventSource {
            component: Some(EVENT_COMPONENT.to_string()),
            host: None,
        }),
        reporting_component: Some(EVENT_COMPONENT.to_string()),
        ..KubeEvent::default()
    }
}

/// The JSON merge patch (RFC 7386) turning `old` into `new`, or `None` when they are equal.
/// Only changed keys are sent, so fields a user wrote meanwhile (`pauseConditions` cleared by a
/// promote, `abort`) are not overwritten from this reconcile's stale copy.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    // Keys the new copy lacks were removed by this reconcile: prune them.
    crate::traffic::objects::merge_diff(old, new, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("x", "y").with_code(code),
        ))
    }

    #[test]
    fn api_errors_fall_into_stable_categories() {
        let write = |code| ExecError::Kube {
            write: "scale".into(),
            source: api_error(code),
        };
        assert_eq!(write(409).category(), "Conflict");
        assert_eq!(write(404).category(), "NotFound");
        assert_eq!(write(422).category(), "Invalid");
        assert_eq!(write(403).category(), "Forbidden");
        assert_eq!(write(500).category(), "Api");
        assert_eq!(ExecError::NoIdentity.category(), "Identity");
        let traffic = ExecError::Traffic(TrafficError::NotConfigured("nginx"));
        assert_eq!(traffic.category(), "Config");
    }

    #[test]
    fn merge_diff_sends_only_changes_and_nulls_removed_keys() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "f": "x"});
        let new = json!({"a": 1, "b": {"c": 2, "d": 4}, "e": [1], "g": true});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"b": {"d": 4}, "e": [1], "g": true, "f": null}))
        );
        assert_eq!(merge_diff(&old, &old), None);
    }

    #[test]
    fn object_replaced_by_scalar_is_sent_whole() {
        assert_eq!(
            merge_diff(&json!({"a": {"b": 1}}), &json!({"a": 3})),
            Some(json!({"a": 3}))
        );
    }

    #[test]
    fn traffic_states_remove_routes_only_when_none_must_exist() {
        let weight = TrafficWeight {
            weight: 20,
            max_weight: 100,
            canary_hash: "c".into(),
            stable_hash: "s".into(),
            ..TrafficWeight::default()
        };
        let states = traffic_states(&weight);
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].weight, 20);
        assert_eq!(states[0].canary_hash, "c");
        assert_eq!(states[0].stable_hash, "s");
        assert!(states[0].remove_managed_routes);

        let header = crate::api::SetHeaderRoute {
            name: Some("h".into()),
            match_: None,
        };
        let with_route = TrafficWeight {
            header_routes: vec![header.clone()],
            ..weight
        };
        let states = traffic_states(&with_route);
        assert_eq!(states.len(), 2);
        assert!(!states[0].remove_managed_routes);
        assert_eq!(states[0].header_route, None);
        assert_eq!(states[1].header_route, Some(header));
        assert!(!states[1].remove_managed_routes);
    }
}
