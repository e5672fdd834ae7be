//! The thin executor of alert-driven aborts: reads the Rollouts (and the ReplicaSets telling
//! when their update began), asks [`super::matching::decide`], and applies each abort exactly
//! as `kubectl argo rollouts abort` does, plus Davy's reason, event and metric.
//!
//! One abort is three writes, in this order: the `davy.dev/abort-reason` annotation (with the
//! observed `resourceVersion`, so a Rollout changed since it was read is re-read), then
//! `status.abort: true` on the status subresource, then the `RolloutAbortedByAlert` event. The
//! reason goes first because the controller writes the `RolloutAborted` message once, at the
//! first reconcile that sees the abort.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::matching::{self, AlertAbort, LabelNames};
use super::payload::{AlertStatus, Payload};
use crate::api::Rollout;
use crate::api::field_manager;
use crate::controller::executor::EVENT_COMPONENT;
use crate::controller::metrics::Metrics;
use crate::rollout::pause::ABORT_REASON_ANNOTATION;

/// The event reason of an alert-driven abort.
pub const EVENT_REASON: &str = "RolloutAbortedByAlert";

/// Why processing a notification failed (it is retried, then Alertmanager's redelivery is
/// accepted again).
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// A read or write against the API server failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl ActError {
    /// A stable name for structured logs and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            ActError::Kube { source, .. } => crate::controller::executor::kube_category(source),
        }
    }
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ActError {
    let what = what.into();
    move |source| ActError::Kube { what, source }
}

/// What the executor needs.
#[derive(Clone)]
pub struct Actor {
    /// The API client.
    pub client: Client,
    /// Only Rollouts of this namespace (the controller's `--namespace`).
    pub namespace: Option<String>,
    /// Label names naming a Rollout in an alert.
    pub labels: LabelNames,
    /// Where the abort counter lives.
    pub metrics: Arc<Metrics>,
}

impl Actor {
    /// Decides and applies the aborts of one notification; returns them.
    pub async fn process(&self, payload: &Payload) -> Result<Vec<AlertAbort>, ActError> {
        if !payload
            .alerts
            .iter()
            .any(|alert| alert.status == AlertStatus::Firing)
        {
            return Ok(Vec::new());
        }
        let api: Api<Rollout> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let rollouts = api
            .list(&ListParams::default())
            .await
            .map_err(kube_err("list Rollouts"))?
            .items;
        let mut replica_sets: BTreeMap<String, Vec<ReplicaSet>> = BTreeMap::new();
        let mut views = Vec::new();
        let mut by_key = BTreeMap::new();
        for rollout in &rollouts {
            let mut view = matching::view(rollout, None);
            if !matching::may_abort(payload, &view, &self.labels) {
                continue;
            }
            if !replica_sets.contains_key(&view.namespace) {
                let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &view.namespace);
                let listed = rs_api
                    .list(&ListParams::default())
                    .await
                    .map_err(kube_err(format!("list ReplicaSets in {}", view.namespace)))?
                    .items;
                replica_sets.insert(view.namespace.clone(), listed);
            }
            let sets = replica_sets
                .get(&view.namespace)
                .map_or(&[][..], Vec::as_slice);
            view.update_began = matching::update_began(rollout, sets);
            by_key.insert((view.namespace.clone(), view.name.clone()), rollout);
            views.push(view);
        }
        let aborts = matching::decide(payload, &views, &self.labels);
        for abort in &aborts {
            if let Some(rollout) = by_key.get(&(abort.namespace.clone(), abort.name.clone())) {
                self.abort(rollout, abort).await?;
            }
        }
        Ok(aborts)
    }

    async fn abort(&self, rollout: &Rollout, abort: &AlertAbort) -> Result<(), ActError> {
        let api: Api<Rollout> = Api::namespaced(self.client.clone(), &abort.namespace);
        // Its own field manager: `managedFields` then tells an alert-driven abort from a
        // step-driven one.
        let params = field_manager::patch(field_manager::ALERTS);
        let reason = json!({"metadata": {
            "resourceVersion": rollout.resource_version(),
            "annotations": {ABORT_REASON_ANNOTATION: abort.message},
        }});
        api.patch(&abort.name, &params, &Patch::Merge(&reason))
            .await
            .map_err(kube_err(format!("annotate Rollout {}", abort.name)))?;
        api.patch_status(
            &abort.name,
            &params,
            &Patch::Merge(json!({"status": {"abort": true}})),
        )
        .await
        .map_err(kube_err(format!("abort Rollout {}", abort.name)))?;
        tracing::warn!(
            namespace = %abort.namespace,
            rollout = %abort.name,
            alert = %abort.alertname,
            fingerprint = %abort.fingerprint,
            "rollout aborted by alert"
        );
        self.metrics
            .count_alert_abort(&abort.namespace, &abort.name, &abort.alertname);
        self.event(rollout, abort).await
    }

    async fn event(&self, rollout: &Rollout, abort: &AlertAbort) -> Result<(), ActError> {
        let now = crate::rollout::observed::chrono_to_time(Utc::now());
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let event = KubeEvent {
            metadata: ObjectMeta {
                name: Some(format!("{}.{nanos:x}", abort.name)),
                namespace: Some(abort.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(crate::api::consts::API_VERSION.to_string()),
                kind: Some("Rollout".to_string()),
                name: Some(abort.name.clone()),
                namespace: Some(abort.namespace.clone()),
                uid: rollout.metadata.uid.clone(),
                ..ObjectReference::default()
            },
            reason: Some(EVENT_REASON.to_string()),
            message: Some(abort.message.clone()),
            type_: Some("Warning".to_string()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(EVENT_COMPONENT.to_string()),
                host: None,
            }),
            reporting_component: Some(EVENT_COMPONENT.to_string()),
            ..KubeEvent::default()
        };
        let events: Api<KubeEvent> = Api::namespaced(self.client.clone(), &abort.namespace);
        match events.create(&PostParams::default(), &event).await {
            Ok(_) => Ok(()),
            // The abort is done; a lost event is not worth redoing it.
            Err(error) => {
                tracing::warn!(%error, rollout = %abort.name, "event RolloutAbortedByAlert");
                Ok(())
            }
        }
    }
}
