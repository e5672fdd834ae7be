//! A tiny in-memory cluster for driving `davy::rollout::plan` repeatedly: it applies each plan's
//! writes to the observed objects the way the executor and the API server would, and plays the
//! ReplicaSet controller (pods become available when told, or at once).

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::{Value, json};

use davy::api::{
    AnalysisPhase, AnalysisRun, AnalysisRunStatus, AnalysisTemplate, Rollout, RolloutStatus,
};
use davy::rollout::{Event, Observed, Plan, TrafficWeight, Write, plan};

use super::argocd_health::{Health, rollout_health};

/// The world and its history.
pub struct World {
    /// What the next reconcile observes.
    pub obs: Observed,
    /// The current time.
    pub now: DateTime<Utc>,
    /// Every event emitted so far, in order.
    pub events: Vec<Event>,
    /// The traffic weight last written.
    pub traffic: Option<TrafficWeight>,
    /// Pods become available as soon as a ReplicaSet is scaled.
    pub auto_ready: bool,
    /// Plans applied so far.
    pub reconciles: usize,
    created: i64,
}

/// The seed's demo Rollout (`examples/rollouts-demo.yaml`) with an image tag.
pub fn demo_rollout(image: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "rollouts-demo", "namespace": "default", "uid": "uid-demo", "generation": 1},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"app": "rollouts-demo"}},
            "strategy": {"canary": {"steps": [
                {"setWeight": 20}, {"pause": {}},
                {"setWeight": 40}, {"pause": {"duration": 10}},
                {"setWeight": 60}, {"pause": {"duration": 10}},
                {"setWeight": 80}, {"pause": {"duration": 10}}
            ]}},
            "template": {
                "metadata": {"labels": {"app": "rollouts-demo"}},
                "spec": {"containers": [{"name": "rollouts-demo", "image": format!("argoproj/rollouts-demo:{image}")}]}
            }
        }
    })
}

/// Parses a Rollout from JSON.
pub fn rollout_from(value: Value) -> Rollout {
    serde_json::from_value(value).expect("valid Rollout JSON")
}

/// A Service selecting `app: <app>`.
pub fn service(name: &str, app: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([("app".to_string(), app.to_string())])),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// An AnalysisTemplate with one web metric.
pub fn template(name: &str) -> AnalysisTemplate {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"metrics": [{"name": "success-rate", "count": 3, "interval": "10s",
                              "successCondition": "result > 0.9",
                              "provider": {"web": {"url": "http://metrics/{{args.service}}"}}}],
                 "args": [{"name": "service"}]}
    }))
    .expect("valid template")
}

fn time(at: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(at.timestamp()).expect("in range"))
}

impl World {
    /// A world with this Rollout at 2026-03-01T12:00:00Z.
    pub fn new(rollout: Rollout) -> Self {
        World {
            obs: Observed::new(rollout),
            now: DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
            events: Vec::new(),
            traffic: None,
            auto_ready: true,
            reconciles: 0,
            created: 0,
        }
    }

    /// The Rollout's status.
    pub fn status(&self) -> RolloutStatus {
        self.obs.rollout.status.clone().unwrap_or_default()
    }

    /// Argo CD's reading of the Rollout.
    pub fn health(&self) -> Health {
        rollout_health(&serde_json::to_value(&self.obs.rollout).expect("serialisable"))
    }

    /// Moves the clock.
    pub fn advance(&mut self, seconds: i64) {
        self.now += Duration::seconds(seconds);
    }

    /// One reconcile: plan, apply, let pods settle.
    pub fn reconcile(&mut self) -> Plan {
        let decided = plan(&self.obs, self.now);
        self.apply(&decided);
        if self.auto_ready {
            self.settle();
        }
        self.reconciles += 1;
        decided
    }

    /// Reconciles until a plan changes nothing (at most `max` times); returns the plans.
    pub fn run(&mut self, max: usize) -> Vec<Plan> {
        let mut plans = Vec::new();
        for _ in 0..max {
            let decided = self.reconcile();
            let quiet = decided
                .writes
                .iter()
                .all(|write| matches!(write, Write::SetTrafficWeight(_)));
            plans.push(decided);
            if quiet {
                return plans;
            }
        }
        panic!(
            "no fixpoint after {max} reconciles; last plan: {:#?}",
            plans.last().map(|p| &p.writes)
        );
    }

    /// Names of the events emitted so far with `reason`.
    pub fn events_with(&self, reason: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|event| event.reason == reason)
            .map(|event| event.message.clone())
            .collect()
    }

    /// Applies a plan the way the executor would.
    pub fn apply(&mut self, decided: &Plan) {
        for write in &decided.writes {
            self.apply_write(write);
        }
    }

    fn rs_mut(&mut self, name: &str) -> Option<&mut ReplicaSet> {
        self.obs
            .replica_sets
            .iter_mut()
            .find(|rs| rs.metadata.name.as_deref() == Some(name))
    }

    fn run_mut(&mut self, name: &str) -> Option<&mut AnalysisRun> {
        self.obs
            .analysis_runs
            .iter_mut()
            .find(|run| run.metadata.name.as_deref() == Some(name))
    }

    fn next_creation(&mut self) -> Time {
        // Distinct creation times keep "oldest first" orderings deterministic.
        self.created += 1;
        time(DateTime::from_timestamp(1_600_000_000 + self.created, 0).expect("in range"))
    }

    fn apply_write(&mut self, write: &Write) {
        match write {
            Write::CreateReplicaSet(rs) => {
                let mut rs = (**rs).clone();
                rs.metadata.creation_timestamp = Some(self.next_creation());
                rs.metadata.generation = Some(1);
                rs.status = Some(ReplicaSetStatus {
                    observed_generation: Some(1),
                    ..ReplicaSetStatus::default()
                });
                self.obs.replica_sets.push(rs);
            }
            Write::UpdateReplicaSetAnnotations { name, annotations } => {
                if let Some(rs) = self.rs_mut(name) {
                    rs.metadata
                        .annotations
                        .get_or_insert_with(BTreeMap::new)
                        .extend(annotations.clone());
                }
            }
            Write::ScaleReplicaSet {
                name,
                to,
                annotations,
                ..
            } => {
                if let Some(rs) = self.rs_mut(name) {
                    if let Some(spec) = rs.spec.as_mut() {
                        spec.replicas = Some(*to);
                    }
                    let target = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
                    for (key, value) in annotations {
                        match value {
                            Some(value) => {
                                target.insert(key.clone(), value.clone());
                            }
                            None => {
                                target.remove(key);
                            }
                        }
                    }
                }
            }
            Write::SetScaleDownDeadline { name, deadline } => {
                if let Some(rs) = self.rs_mut(name) {
                    rs.metadata
                        .annotations
                        .get_or_insert_with(BTreeMap::new)
                        .insert("scale-down-deadline".to_string(), deadline.clone());
                }
            }
            Write::ClearScaleDownDeadline { name } => {
                if let Some(rs) = self.rs_mut(name)
                    && let Some(annotations) = rs.metadata.annotations.as_mut()
                {
                    annotations.remove("scale-down-deadline");
                }
            }
            Write::DeleteReplicaSet { name } => {
                self.obs
                    .replica_sets
                    .retain(|rs| rs.metadata.name.as_deref() != Some(name.as_str()));
            }
            Write::SetRolloutRevision { revision } => {
                self.obs
                    .rollout
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert("rollout.argoproj.io/revision".to_string(), revision.clone());
            }
            Write::PatchRolloutSpecReplicas { replicas } => {
                self.obs.rollout.spec.replicas = Some(*replicas);
                self.bump_generation();
            }
            Write::PatchService {
                name,
                hash,
                managed_by,
            } => {
                if let Some(service) = self.obs.services.get_mut(name) {
                    if let Some(spec) = service.spec.as_mut() {
                        spec.selector
                            .get_or_insert_with(BTreeMap::new)
                            .insert("rollouts-pod-template-hash".to_string(), hash.clone());
                    }
                    if let Some(owner) = managed_by {
                        service
                            .metadata
                            .annotations
                            .get_or_insert_with(BTreeMap::new)
                            .insert(
                                "argo-rollouts.argoproj.io/managed-by-rollouts".to_string(),
                                owner.clone(),
                            );
                    }
                }
            }
            Write::SetTrafficWeight(weight) => self.traffic = Some(weight.clone()),
            Write::CreateAnalysisRun(run) => {
                let mut run = (**run).clone();
                run.metadata.creation_timestamp = Some(self.next_creation());
                self.obs.analysis_runs.push(run);
            }
            Write::TerminateAnalysisRun { name } => {
                if let Some(run) = self.run_mut(name) {
                    run.spec.terminate = Some(true);
                    // The analysis controller ends a terminated run Successful ("Run Terminated").
                    let status = run.status.get_or_insert_with(AnalysisRunStatus::default);
                    if !status.phase.as_ref().is_some_and(AnalysisPhase::completed) {
                        status.phase = Some(AnalysisPhase::Successful);
                        status.message = "Run Terminated".to_string();
                    }
                }
            }
            Write::DeleteAnalysisRun { name } => {
                self.obs
                    .analysis_runs
                    .retain(|run| run.metadata.name.as_deref() != Some(name.as_str()));
            }
            Write::CreateExperiment(ex) => {
                let mut ex = (**ex).clone();
                ex.metadata.creation_timestamp = Some(self.next_creation());
                self.obs.experiments.push(ex);
            }
            Write::TerminateExperiment { name } => {
                if let Some(ex) = self
                    .obs
                    .experiments
                    .iter_mut()
                    .find(|ex| ex.metadata.name.as_deref() == Some(name.as_str()))
                {
                    ex.spec.terminate = Some(true);
                }
            }
            Write::DeleteExperiment { name } => {
                self.obs
                    .experiments
                    .retain(|ex| ex.metadata.name.as_deref() != Some(name.as_str()));
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
                if let Some(rs) = self.rs_mut(name) {
                    let meta = rs
                        .spec
                        .get_or_insert_with(Default::default)
                        .template
                        .get_or_insert_with(Default::default)
                        .metadata
                        .get_or_insert_with(Default::default);
                    apply_changes(&mut meta.labels, &template.labels);
                    apply_changes(&mut meta.annotations, &template.annotations);
                    let record = BTreeMap::from([(
                        "rollout.argoproj.io/ephemeral-metadata".to_string(),
                        record.clone(),
                    )]);
                    apply_changes(&mut rs.metadata.annotations, &record);
                }
                for pod in self.obs.pods.iter_mut().filter(|_| *pods) {
                    let labels = pod.metadata.labels.clone().unwrap_or_default();
                    let owned = pod
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.uid == *uid);
                    if labels.get("rollouts-pod-template-hash") != Some(hash) || !owned {
                        continue;
                    }
                    let change = davy::rollout::ephemeral::sync_meta(
                        pod.metadata.labels.as_ref(),
                        pod.metadata.annotations.as_ref(),
                        existing.as_ref(),
                        desired.as_ref(),
                    );
                    apply_changes(&mut pod.metadata.labels, &change.labels);
                    apply_changes(&mut pod.metadata.annotations, &change.annotations);
                }
            }
            Write::EvictPod { name } => {
                self.obs
                    .pods
                    .retain(|pod| pod.metadata.name.as_deref() != Some(name.as_str()));
            }
            Write::PatchStatus(status) => self.obs.rollout.status = Some((**status).clone()),
            Write::Event(event) => self.events.push(event.clone()),
            // This world holds no workload: a workloadRef Rollout is not simulated here.
            Write::SetWorkloadGeneration { .. } | Write::ScaleWorkload { .. } => {}
        }
    }

    fn bump_generation(&mut self) {
        let generation = self.obs.rollout.metadata.generation.unwrap_or(0);
        self.obs.rollout.metadata.generation = Some(generation + 1);
    }

    /// A user edit of the spec (bumps the generation).
    pub fn edit_spec(&mut self, edit: impl FnOnce(&mut Rollout)) {
        edit(&mut self.obs.rollout);
        self.bump_generation();
    }

    /// A user write to the status subresource (no generation change).
    pub fn edit_status(&mut self, edit: impl FnOnce(&mut RolloutStatus)) {
        let status = self
            .obs
            .rollout
            .status
            .get_or_insert_with(RolloutStatus::default);
        edit(status);
    }

    /// Changes the container image (a new revision).
    pub fn set_image(&mut self, image: &str) {
        self.edit_spec(|rollout| {
            if let Some(container) = rollout
                .spec
                .template
                .as_mut()
                .and_then(|t| t.spec.as_mut())
                .and_then(|s| s.containers.first_mut())
            {
                container.image = Some(format!("argoproj/rollouts-demo:{image}"));
            }
        });
    }

    /// `kubectl argo rollouts promote`: clear pause conditions (user resume).
    pub fn promote(&mut self) {
        self.edit_status(|status| status.pause_conditions.clear());
    }

    /// The ReplicaSet controller: every ReplicaSet has all its pods, all available.
    pub fn settle(&mut self) {
        for rs in &mut self.obs.replica_sets {
            let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = rs.status.get_or_insert_with(ReplicaSetStatus::default);
            status.replicas = desired;
            status.available_replicas = Some(desired);
            status.ready_replicas = Some(desired);
            status.observed_generation = rs.metadata.generation;
        }
    }

    /// Pods appear for every ReplicaSet but only `available(name)` of them become available.
    pub fn settle_with(&mut self, available: impl Fn(&str, i32) -> i32) {
        for rs in &mut self.obs.replica_sets {
            let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let name = rs.metadata.name.clone().unwrap_or_default();
            let status = rs.status.get_or_insert_with(ReplicaSetStatus::default);
            let ready = available(&name, desired).min(desired);
            status.replicas = desired;
            status.available_replicas = Some(ready);
            status.ready_replicas = Some(ready);
            status.observed_generation = rs.metadata.generation;
        }
    }

    /// `spec.replicas` of the ReplicaSet with this pod-template hash.
    pub fn size_of(&self, hash: &str) -> i32 {
        self.obs
            .replica_sets
            .iter()
            .find(|rs| {
                rs.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("rollouts-pod-template-hash"))
                    .map(String::as_str)
                    == Some(hash)
            })
            .and_then(|rs| rs.spec.as_ref().and_then(|s| s.replicas))
            .unwrap_or(-1)
    }

    /// The ReplicaSet with this hash.
    pub fn rs(&self, hash: &str) -> &ReplicaSet {
        self.obs
            .replica_sets
            .iter()
            .find(|rs| {
                rs.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("rollouts-pod-template-hash"))
                    .map(String::as_str)
                    == Some(hash)
            })
            .expect("replica set with that hash")
    }

    /// Sets the phase (and message) of an AnalysisRun, as the analysis controller would.
    pub fn set_run_phase(&mut self, name: &str, phase: AnalysisPhase, message: &str) {
        let run = self.run_mut(name).expect("analysis run exists");
        let status = run.status.get_or_insert_with(AnalysisRunStatus::default);
        status.phase = Some(phase);
        status.message = message.to_string();
    }

    /// Names of the AnalysisRuns, in creation order.
    pub fn run_names(&self) -> Vec<String> {
        self.obs
            .analysis_runs
            .iter()
            .map(|r| r.metadata.name.clone().unwrap_or_default())
            .collect()
    }
}

/// An Argo CD health value.
pub fn health(status: &str, message: &str) -> Health {
    Health {
        status: status.to_string(),
        message: message.to_string(),
    }
}

/// Reconciles until `done` holds, advancing the clock one second whenever a reconcile had
/// nothing to do (pods settle at once unless the world says otherwise).
pub fn until(world: &mut World, max: usize, done: impl Fn(&World) -> bool) {
    for _ in 0..max {
        if done(world) {
            return;
        }
        let plan = world.reconcile();
        if plan
            .writes
            .iter()
            .all(|w| matches!(w, Write::SetTrafficWeight(_)))
        {
            world.advance(1);
        }
    }
    assert!(
        done(world),
        "condition not reached; status: {:#?}",
        world.status()
    );
}

/// `spec.replicas` of the new and the stable ReplicaSet.
pub fn sizes(world: &World, new: &str, stable: &str) -> (i32, i32) {
    (world.size_of(new), world.size_of(stable))
}

/// Sets (`Some`) and removes (`None`) keys of a label or annotation map.
fn apply_changes(
    target: &mut Option<BTreeMap<String, String>>,
    changes: &BTreeMap<String, Option<String>>,
) {
    if changes.is_empty() {
        return;
    }
    let map = target.get_or_insert_with(BTreeMap::new);
    for (key, value) in changes {
        match value {
            Some(value) => {
                map.insert(key.clone(), value.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}
