//! Table and scenario tests of the Experiment decision core (`davy::experiment::plan`) over a
//! tiny in-memory world: ReplicaSet and Service names, labels, annotations and owners, the
//! template statuses, phases, messages and conditions upstream writes, the analyses' runs,
//! duration, progress deadline, terminate, scale-down delay, dry-run and retention rules — and
//! how Argo CD's health check reads the Experiment at each stage.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::argocd_health;

use chrono::{DateTime, Duration, TimeZone, Utc};
use davy::api::{AnalysisRun, AnalysisTemplate, Experiment};
use davy::experiment::{Observed, Plan, Write, failures, plan};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use serde_json::{Value, json};

/// The experiment, what it owns, and a clock; `step` runs one reconcile and applies its writes
/// as the API server would (ReplicaSets keep the status the test gives them).
struct World {
    obs: Observed,
    now: DateTime<Utc>,
    last: Plan,
}

impl World {
    fn new(experiment: Value) -> World {
        let mut experiment: Experiment = serde_json::from_value(experiment).unwrap();
        experiment.metadata.uid = Some("ex-uid".into());
        experiment.metadata.namespace = Some("default".into());
        let mut obs = Observed::new(experiment);
        obs.analysis_templates = vec![template("pass"), template("other")];
        World {
            obs,
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            last: Plan::default(),
        }
    }

    fn step(&mut self) -> &Plan {
        let plan = plan(&self.obs, self.now);
        for write in &plan.writes {
            match write {
                Write::CreateReplicaSet(rs) => self.obs.replica_sets.push((**rs).clone()),
                Write::ScaleReplicaSet { name, replicas } => {
                    let rs = self.rs_mut(name);
                    rs.spec.as_mut().unwrap().replicas = Some(*replicas);
                }
                Write::SetScaleDownDeadline { name, deadline } => {
                    let rs = self.rs_mut(name);
                    rs.metadata
                        .annotations
                        .get_or_insert_default()
                        .insert("scale-down-deadline".into(), deadline.clone());
                }
                Write::ClearScaleDownDeadline { name } => {
                    let rs = self.rs_mut(name);
                    rs.metadata
                        .annotations
                        .get_or_insert_default()
                        .remove("scale-down-deadline");
                }
                Write::CreateService(svc) => self.obs.services.push((**svc).clone()),
                Write::DeleteService { name } => self
                    .obs
                    .services
                    .retain(|svc| svc.metadata.name.as_deref() != Some(name)),
                Write::CreateAnalysisRun(run) => self.obs.analysis_runs.push((**run).clone()),
                Write::TerminateAnalysisRun { name } => {
                    self.run_mut(name).spec.terminate = Some(true);
                }
                Write::PatchStatus(status) => self.obs.experiment.status = Some((**status).clone()),
                Write::Event(_) | Write::RolloutEvent { .. } => {}
            }
        }
        self.last = plan;
        &self.last
    }

    /// One reconcile whose writes matching `fails` are refused by the API with `error`, applied
    /// as the executor does: each refusal recorded by `after_failed_write`, the other writes
    /// applied, the recorded status written instead of the plan's. Returns whether one was.
    fn step_failing(&mut self, fails: impl Fn(&Write) -> bool, error: &str) -> bool {
        let plan = plan(&self.obs, self.now);
        assert!(
            plan.writes.iter().any(&fails),
            "no such write in {:#?}",
            plan.writes
        );
        let planned = plan
            .status()
            .cloned()
            .unwrap_or_else(|| self.obs.experiment.status.clone().unwrap_or_default());
        let mut recorded: Option<davy::api::ExperimentStatus> = None;
        let mut applied = Plan::default();
        for write in &plan.writes {
            if fails(write) {
                let base = recorded.as_ref().unwrap_or(&planned);
                match failures::after_failed_write(&self.obs.experiment, base, write, error) {
                    Some((status, event)) => {
                        applied.writes.extend(event.map(Write::Event));
                        recorded = Some(status);
                    }
                    None => break,
                }
            } else if let (Write::PatchStatus(_), Some(status)) = (write, &recorded) {
                applied
                    .writes
                    .push(Write::PatchStatus(Box::new(status.clone())));
            } else {
                applied.writes.push(write.clone());
            }
        }
        let found = recorded.is_some();
        if let Some(status) = recorded
            && !applied
                .writes
                .iter()
                .any(|w| matches!(w, Write::PatchStatus(_)))
        {
            applied.writes.push(Write::PatchStatus(Box::new(status)));
        }
        self.apply_plan(applied);
        found
    }

    fn apply_plan(&mut self, plan: Plan) {
        for write in &plan.writes {
            match write {
                Write::CreateReplicaSet(rs) => self.obs.replica_sets.push((**rs).clone()),
                Write::ScaleReplicaSet { name, replicas } => {
                    self.rs_mut(name).spec.as_mut().unwrap().replicas = Some(*replicas);
                }
                Write::CreateService(svc) => self.obs.services.push((**svc).clone()),
                Write::CreateAnalysisRun(run) => self.obs.analysis_runs.push((**run).clone()),
                Write::PatchStatus(status) => self.obs.experiment.status = Some((**status).clone()),
                _ => {}
            }
        }
        self.last = plan;
    }

    fn rs_mut(&mut self, name: &str) -> &mut ReplicaSet {
        self.obs
            .replica_sets
            .iter_mut()
            .find(|rs| rs.metadata.name.as_deref() == Some(name))
            .unwrap()
    }

    fn run_mut(&mut self, name: &str) -> &mut AnalysisRun {
        self.obs
            .analysis_runs
            .iter_mut()
            .find(|run| run.metadata.name.as_deref() == Some(name))
            .unwrap()
    }

    /// The pods of every ReplicaSet catch up with its spec (all available).
    fn pods_available(&mut self) {
        for rs in &mut self.obs.replica_sets {
            let n = rs.spec.as_ref().unwrap().replicas.unwrap_or(0);
            rs.status = Some(ReplicaSetStatus {
                replicas: n,
                ready_replicas: Some(n),
                available_replicas: Some(n),
                ..ReplicaSetStatus::default()
            });
        }
    }

    fn set_run_phase(&mut self, name: &str, phase: &str, message: &str) {
        let run = self.run_mut(name);
        run.status =
            Some(serde_json::from_value(json!({"phase": phase, "message": message})).unwrap());
    }

    fn advance(&mut self, seconds: i64) {
        self.now += Duration::seconds(seconds);
    }

    fn status(&self) -> Value {
        serde_json::to_value(self.obs.experiment.status.clone().unwrap_or_default()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::to_value(&self.obs.experiment).unwrap()
    }

    fn health(&self) -> (String, String) {
        let health = argocd_health::experiment_health(&self.json()).unwrap();
        (health.status, health.message)
    }

    fn events(&self) -> Vec<(String, String)> {
        self.last
            .events()
            .map(|e| (e.reason.clone(), e.message.clone()))
            .collect()
    }

    fn rs(&self, name: &str) -> Value {
        let rs = self
            .obs
            .replica_sets
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no ReplicaSet {name}"));
        serde_json::to_value(rs).unwrap()
    }
}

fn template(name: &str) -> AnalysisTemplate {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "args": [{"name": "hash"}],
            "metrics": [
                {"name": "m", "provider": {"web": {"url": "http://x/{{args.hash}}"}}},
                {"name": "n", "provider": {"web": {"url": "http://y"}}}
            ]
        }
    }))
    .unwrap()
}

fn pod_template(image: &str, port: Option<i32>) -> Value {
    let mut container = json!({"name": "app", "image": image});
    if let Some(port) = port {
        container["ports"] = json!([{"name": "http", "containerPort": port, "protocol": "TCP"}]);
    }
    json!({"metadata": {"labels": {"app": "guestbook"}}, "spec": {"containers": [container]}})
}

fn experiment(spec: Value) -> Value {
    let mut base = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": "ex"},
        "spec": {
            "templates": [
                {"name": "baseline", "selector": {"matchLabels": {"app": "guestbook"}},
                 "template": pod_template("app:v1", Some(8080)), "service": {}},
                {"name": "canary", "replicas": 2, "selector": {"matchLabels": {"app": "guestbook"}},
                 "template": pod_template("app:v2", None)}
            ]
        }
    });
    for (key, value) in spec.as_object().unwrap() {
        base["spec"][key] = value.clone();
    }
    base
}

fn analysis(name: &str, required: bool) -> Value {
    json!({"name": name, "templateName": "pass", "requiredForCompletion": required,
           "args": [{"name": "hash", "value": "{{templates.canary.podTemplateHash}}"}]})
}

/// Runs reconciles until the pods are up and the experiment is Running with its runs made.
fn running(world: &mut World) {
    world.step();
    world.step();
    world.pods_available();
    world.step();
    world.step();
    assert_eq!(world.status()["phase"], "Running", "{:#}", world.status());
}

fn condition(world: &World) -> (String, String, String) {
    let status = world.status();
    let c = &status["conditions"][0];
    (
        c["status"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap().to_string(),
        c["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn first_reconcile_creates_replica_sets_with_upstream_names_labels_and_owners() {
    let mut world = World::new(experiment(json!({"analyses": [analysis("a", false)]})));
    assert_eq!(
        world.health(),
        (
            "Progressing".into(),
            "Waiting for experiment to finish: status has not been reconciled.".into()
        )
    );
    world.step();
    let rs = world.rs("ex-baseline");
    assert_eq!(rs["spec"]["replicas"], 0);
    let hash = rs["metadata"]["labels"]["rollouts-pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs["metadata"]["labels"]["app"], "guestbook");
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["rollouts-pod-template-hash"],
        hash
    );
    assert_eq!(
        rs["spec"]["template"]["metadata"]["labels"]["rollouts-pod-template-hash"],
        hash
    );
    assert_eq!(
        rs["metadata"]["annotations"],
        json!({"experiment.argoproj.io/name": "ex", "experiment.argoproj.io/template-name": "baseline"})
    );
    assert_eq!(
        rs["metadata"]["ownerReferences"],
        json!([{"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment", "name": "ex",
                "uid": "ex-uid", "controller": true, "blockOwnerDeletion": true}])
    );
    assert_ne!(
        world.rs("ex-canary")["metadata"]["labels"]["rollouts-pod-template-hash"],
        hash,
        "different pod templates hash differently"
    );
    let status = world.status();
    assert_eq!(status["phase"], "Pending");
    assert_eq!(status["templateStatuses"][0]["status"], "Progressing");
    assert_eq!(status["templateStatuses"][0]["replicas"], 0);
    assert!(status["templateStatuses"][0]["lastTransitionTime"].is_string());
    // Until the templates are available, an analysis is only verified: an empty phase.
    assert_eq!(
        status["analysisRuns"],
        json!([{"name": "a", "analysisRun": "", "phase": ""}])
    );
    assert_eq!(
        condition(&world),
        (
            "True".into(),
            "ReplicaSetUpdated".into(),
            "Experiment \"ex\" is progressing.".into()
        )
    );
    assert_eq!(
        world.events(),
        vec![
            (
                "TemplateProgressing".into(),
                "Template 'baseline' transitioned from  -> Progressing".into()
            ),
            (
                "TemplateProgressing".into(),
                "Template 'canary' transitioned from  -> Progressing".into()
            ),
            (
                "ExperimentPending".into(),
                "Experiment transitioned from  -> Pending".into()
            ),
        ]
    );
    assert_eq!(
        world.health(),
        ("Progressing".into(), "Experiment is pending".into())
    );
    // A progressing template is looked at again at its progress deadline.
    assert_eq!(
        world.last.requeue_after,
        Some(std::time::Duration::from_secs(600))
    );
}

#[test]
fn second_reconcile_scales_up_and_creates_the_service_for_templates_with_ports() {
    let mut world = World::new(experiment(json!({})));
    world.step();
    world.step();
    assert_eq!(world.rs("ex-baseline")["spec"]["replicas"], 1);
    assert_eq!(world.rs("ex-canary")["spec"]["replicas"], 2);
    let reasons = world.events();
    assert!(reasons.contains(&(
        "ScalingReplicaSet".into(),
        "Scaled up ReplicaSet ex-baseline from 0 to 1".into()
    )));
    assert_eq!(
        world.obs.services.len(),
        1,
        "only the template with a service"
    );
    let svc = serde_json::to_value(&world.obs.services[0]).unwrap();
    let rs = world.rs("ex-baseline");
    assert_eq!(svc["metadata"]["name"], "ex-baseline");
    assert_eq!(svc["spec"]["selector"], rs["metadata"]["labels"]);
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP", "targetPort": 8080}])
    );
    assert_eq!(svc["metadata"]["ownerReferences"][0]["kind"], "Experiment");
    let status = world.status();
    assert_eq!(status["templateStatuses"][0]["serviceName"], "ex-baseline");
    assert_eq!(
        status["templateStatuses"][0]["podTemplateHash"],
        rs["metadata"]["labels"]["rollouts-pod-template-hash"]
    );
    assert_eq!(status["phase"], "Pending");
}

#[test]
fn available_templates_make_it_running_then_the_runs_start_with_resolved_args() {
    let mut world = World::new(experiment(json!({
        "analyses": [analysis("a", false)],
        "dryRun": [{"metricName": "n"}],
        "measurementRetention": [{"metricName": "m", "limit": 3}],
        "analysisRunMetadata": {"labels": {"team": "x"}, "annotations": {"note": "y"}}
    })));
    world.step();
    world.step();
    world.pods_available();
    world.step();
    let status = world.status();
    assert_eq!(status["phase"], "Running");
    assert!(status["availableAt"].is_string(), "{status:#}");
    assert_eq!(status["templateStatuses"][1]["status"], "Running");
    assert_eq!(status["templateStatuses"][1]["availableReplicas"], 2);
    assert!(world.events().contains(&(
        "TemplateRunning".into(),
        "Template 'canary' transitioned from Progressing -> Running".into()
    )));
    assert!(
        world.obs.analysis_runs.is_empty(),
        "runs start one pass later"
    );
    assert_eq!(
        world.health(),
        ("Progressing".into(), "Experiment is running".into())
    );

    world.step();
    assert_eq!(world.obs.analysis_runs.len(), 1);
    let run = serde_json::to_value(&world.obs.analysis_runs[0]).unwrap();
    assert_eq!(run["metadata"]["name"], "ex-a");
    assert_eq!(run["metadata"]["labels"], json!({"team": "x"}));
    assert_eq!(run["metadata"]["annotations"], json!({"note": "y"}));
    assert_eq!(run["metadata"]["ownerReferences"][0]["name"], "ex");
    let canary_hash =
        world.rs("ex-canary")["metadata"]["labels"]["rollouts-pod-template-hash"].clone();
    assert_eq!(
        run["spec"]["args"],
        json!([{"name": "hash", "value": canary_hash}])
    );
    assert_eq!(run["spec"]["dryRun"], json!([{"metricName": "n"}]));
    assert_eq!(
        run["spec"]["measurementRetention"],
        json!([{"metricName": "m", "limit": 3}])
    );
    let status = world.status();
    assert_eq!(
        status["analysisRuns"],
        json!([{"name": "a", "analysisRun": "ex-a", "phase": "Pending"}])
    );
    assert_eq!(status["phase"], "Running");
    assert_eq!(
        condition(&world),
        (
            "True".into(),
            "NewReplicaSetAvailable".into(),
            "Experiment \"ex\" is running.".into()
        )
    );
    assert!(world.events().contains(&(
        "AnalysisRunPending".into(),
        "AnalysisRun 'a' transitioned from  -> Pending".into()
    )));
}

#[test]
fn duration_completes_the_templates_and_the_analyses_decide() {
    let mut world = World::new(experiment(json!({
        "duration": "60s", "analyses": [analysis("a", false)]
    })));
    running(&mut world);
    // Asked to look again when the duration ends.
    let left = world.last.requeue_after.unwrap().as_secs();
    assert!(left > 0 && left <= 60, "{left}");
    world.set_run_phase("ex-a", "Running", "");
    world.step();
    world.advance(61);
    world.set_run_phase("ex-a", "Successful", "");
    world.step();
    let status = world.status();
    assert_eq!(status["templateStatuses"][0]["status"], "Successful");
    assert_eq!(status["analysisRuns"][0]["phase"], "Successful");
    assert_eq!(status["phase"], "Successful", "{status:#}");
    assert_eq!(
        condition(&world),
        (
            "False".into(),
            "ExperimentCompleted".into(),
            "Experiment \"ex\" has successfully ran and completed.".into()
        )
    );
    assert_eq!(
        world.health(),
        ("Healthy".into(), "Experiment is successful".into())
    );
}

#[test]
fn a_finished_experiment_scales_down_after_the_delay_and_deletes_its_service() {
    let mut world = World::new(experiment(
        json!({"duration": "10s", "scaleDownDelaySeconds": 20}),
    ));
    running(&mut world);
    world.advance(11);
    world.step();
    assert_eq!(world.status()["phase"], "Successful");
    world.step();
    let deadline =
        world.rs("ex-baseline")["metadata"]["annotations"]["scale-down-deadline"].clone();
    let expected = (world.now + Duration::seconds(20))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(deadline, json!(expected));
    assert_eq!(
        world.rs("ex-baseline")["spec"]["replicas"],
        1,
        "kept until the deadline"
    );
    assert_eq!(
        world.last.requeue_after,
        Some(std::time::Duration::from_secs(20))
    );
    world.advance(21);
    world.step();
    assert_eq!(world.rs("ex-baseline")["spec"]["replicas"], 0);
    assert_eq!(world.rs("ex-canary")["spec"]["replicas"], 0);
    assert!(world.events().contains(&(
        "ScalingReplicaSet".into(),
        "Scaled down ReplicaSet ex-canary from 2 to 0".into()
    )));
    assert_eq!(
        world.obs.services.len(),
        1,
        "deleted once no pod is available"
    );
    world.pods_available();
    world.step();
    assert!(world.obs.services.is_empty());
    assert_eq!(
        world.status()["templateStatuses"][0].get("serviceName"),
        None
    );
    assert_eq!(world.status()["phase"], "Successful");
}

#[test]
fn a_zero_scale_down_delay_scales_down_at_once() {
    let mut world = World::new(experiment(
        json!({"duration": "10s", "scaleDownDelaySeconds": 0}),
    ));
    running(&mut world);
    world.advance(11);
    world.step();
    world.step();
    assert_eq!(world.rs("ex-canary")["spec"]["replicas"], 0);
    assert!(
        world.rs("ex-canary")["metadata"]["annotations"]
            .get("scale-down-deadline")
            .is_none()
    );
}

/// Run phase → experiment phase, message and Argo CD health, for a run that ends early.
#[test]
fn a_run_that_fails_errors_or_is_inconclusive_ends_the_experiment() {
    let cases = [
        ("Failed", "Degraded", "Experiment has failed"),
        ("Error", "Degraded", "Experiment had an error"),
        ("Inconclusive", "", ""),
    ];
    for (phase, health, health_message) in cases {
        let mut world = World::new(experiment(json!({"analyses": [analysis("a", false)]})));
        running(&mut world);
        world.set_run_phase("ex-a", phase, "metric \"m\" assessed it");
        world.step();
        let status = world.status();
        assert_eq!(status["phase"], phase, "{status:#}");
        assert_eq!(status["message"], "metric \"m\" assessed it");
        assert!(world.events().contains(&(
            format!("Experiment{phase}"),
            format!("Experiment transitioned from Running -> {phase}")
        )));
        let got = argocd_health::experiment_health(&world.json());
        match got {
            Some(h) => assert_eq!(
                (h.status.as_str(), h.message.as_str()),
                (health, health_message)
            ),
            // Argo CD's script has no branch for Inconclusive.
            None => assert_eq!(phase, "Inconclusive"),
        }
        // Terminating now: the templates scale down (after the delay) and stay completed.
        world.step();
        let status = world.status();
        assert_eq!(status["phase"], phase);
        assert_eq!(status["templateStatuses"][0]["status"], "Successful");
    }
}

#[test]
fn required_analyses_succeeding_complete_the_experiment_without_a_duration() {
    let spec = json!({
        "analyses": [analysis("a", true), {"name": "b", "templateName": "other",
                      "args": [{"name": "hash", "value": "x"}]}]
    });
    let mut world = World::new(experiment(spec.clone()));
    running(&mut world);
    world.set_run_phase("ex-a", "Successful", "");
    world.set_run_phase("ex-b", "Successful", "");
    world.step();
    let status = world.status();
    assert_eq!(status["phase"], "Successful", "{status:#}");
    assert_eq!(
        status["message"], "Required AnalysisRuns completed",
        "{status:#}"
    );

    // While another run still runs, the phase reads Running (as upstream), and the experiment
    // terminates that run.
    let mut world = World::new(experiment(spec));
    running(&mut world);
    world.set_run_phase("ex-a", "Successful", "");
    world.set_run_phase("ex-b", "Running", "");
    world.step();
    assert_eq!(world.status()["phase"], "Running");
    world.step();
    assert!(world.last.writes.contains(&Write::TerminateAnalysisRun {
        name: "ex-b".into()
    }));
    assert!(world.events().contains(&(
        "AnalysisRunTerminating".into(),
        "Terminating b (ex-b)".into()
    )));
    assert_eq!(
        world.status()["templateStatuses"][0]["status"],
        "Successful"
    );
}

#[test]
fn terminate_completes_running_templates_and_terminates_the_runs() {
    let mut world = World::new(experiment(json!({"analyses": [analysis("a", false)]})));
    running(&mut world);
    world.set_run_phase("ex-a", "Running", "");
    world.step();
    world.obs.experiment.spec.terminate = Some(true);
    world.step();
    let status = world.status();
    assert_eq!(status["templateStatuses"][0]["status"], "Successful");
    assert_eq!(status["phase"], "Successful", "{status:#}");
    assert!(world.last.writes.contains(&Write::TerminateAnalysisRun {
        name: "ex-a".into()
    }));
    assert!(world.last.requeue_after.is_none() || world.rs("ex-canary")["spec"]["replicas"] == 2);
}

#[test]
fn terminating_before_the_pods_are_up_never_starts_runs() {
    let mut world = World::new(experiment(json!({"analyses": [analysis("a", false)]})));
    world.step();
    world.obs.experiment.spec.terminate = Some(true);
    world.step();
    world.step();
    assert!(world.obs.analysis_runs.is_empty());
    assert_eq!(world.status()["phase"], "Successful");
}

#[test]
fn no_progress_within_the_deadline_fails_the_template_and_the_experiment() {
    let mut world = World::new(experiment(json!({"progressDeadlineSeconds": 30})));
    world.step();
    world.step();
    world.advance(31);
    world.step();
    let status = world.status();
    assert_eq!(status["templateStatuses"][0]["status"], "Failed");
    let message = "Template 'baseline' exceeded its progressDeadlineSeconds (30)";
    assert_eq!(status["templateStatuses"][0]["message"], message);
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["message"], message);
    assert!(world.events().contains(&(
        "TemplateFailed".into(),
        format!("Template 'baseline' transitioned from Progressing -> Failed: {message}")
    )));
    assert_eq!(
        world.health(),
        ("Degraded".into(), "Experiment has failed".into())
    );
}

#[test]
fn a_missing_template_is_an_error_before_anything_runs() {
    let mut world = World::new(experiment(json!({
        "analyses": [{"name": "a", "templateName": "gone"}]
    })));
    world.step();
    world.step();
    let status = world.status();
    let message = "AnalysisTemplate verification failed for analysis 'a': analysistemplate.argoproj.io \"gone\" not found";
    assert_eq!(status["analysisRuns"][0]["phase"], "Error");
    assert_eq!(status["analysisRuns"][0]["message"], message);
    assert_eq!(status["phase"], "Error");
    assert_eq!(status["message"], message);
    assert_eq!(
        world.health(),
        ("Degraded".into(), "Experiment had an error".into())
    );
}

#[test]
fn invalid_specs_only_set_the_invalid_spec_condition() {
    let cases = [
        (
            json!([{"name": "a", "template": pod_template("x", None)}]),
            "Rollout has missing field '.Spec.Templates[0].Selector'",
        ),
        (
            json!([{"name": "a", "selector": {}, "template": pod_template("x", None)}]),
            "This experiment is selecting all pods at index 0. A non-empty selector is required.",
        ),
        (
            json!([{"name": "", "selector": {"matchLabels": {"a": "b"}}, "template": pod_template("x", None)}]),
            "Experiment ex has empty template name at index 0",
        ),
        (
            json!([{"name": "a", "selector": {"matchLabels": {"a": "b"}}, "template": pod_template("x", None)},
                   {"name": "a", "selector": {"matchLabels": {"a": "b"}}, "template": pod_template("x", None)}]),
            "Experiment ex has repeated template name 'a' in templates",
        ),
        (
            json!([{"name": "a", "minReadySeconds": 700, "selector": {"matchLabels": {"a": "b"}},
                    "template": pod_template("x", None)}]),
            "MinReadySeconds cannot be longer than ProgressDeadlineSeconds. Check template index 0",
        ),
    ];
    for (templates, message) in cases {
        let mut world = World::new(experiment(json!({"templates": templates})));
        world.step();
        assert!(world.obs.replica_sets.is_empty(), "{message}");
        let status = world.status();
        assert_eq!(
            status["conditions"][0]["type"], "InvalidSpec",
            "{message}: {status:#}"
        );
        assert_eq!(status["conditions"][0]["reason"], "InvalidSpec");
        assert_eq!(status["conditions"][0]["message"], message);
        assert!(status.get("phase").is_none());
    }
}

#[test]
fn a_stable_world_writes_nothing() {
    let mut world = World::new(experiment(json!({})));
    running(&mut world);
    world.step();
    world.step();
    assert!(world.last.status().is_none(), "{:?}", world.last.writes);
}

#[test]
fn a_run_named_like_ours_but_not_ours_gets_the_next_name() {
    let mut world = World::new(experiment(json!({"analyses": [analysis("a", false)]})));
    let stranger: AnalysisRun = serde_json::from_value(json!({
        "metadata": {"name": "ex-a", "namespace": "default"}, "spec": {"metrics": []}
    }))
    .unwrap();
    world.obs.analysis_runs.push(stranger);
    running(&mut world);
    assert_eq!(world.status()["analysisRuns"][0]["analysisRun"], "ex-a.1");
}

#[test]
fn unresolvable_experiment_args_are_an_analysis_error() {
    let mut world = World::new(experiment(json!({
        "analyses": [{"name": "a", "templateName": "pass",
                      "args": [{"name": "hash", "value": "{{templates.nope.podTemplateHash}}"}]}]
    })));
    world.step();
    world.step();
    world.pods_available();
    world.step();
    world.step();
    let status = world.status();
    assert_eq!(
        status["analysisRuns"][0]["message"],
        "Failed to create AnalysisRun for analysis 'a': failed to resolve {{templates.nope.podTemplateHash}}"
    );
    assert_eq!(status["phase"], "Error");
}

/// The API's refusal, as a 403 from a ResourceQuota or an admission webhook would read.
const REFUSED: &str = "replicasets.apps \"x\" is forbidden: exceeded quota";

#[test]
fn failed_writes_put_the_template_or_analysis_in_error_with_the_api_message() {
    type Case = (
        &'static str,
        fn(&mut World),
        fn(&Write) -> bool,
        &'static str,
        &'static str,
    );
    let none: fn(&mut World) = |_| {};
    let two: fn(&mut World) = |w| {
        w.step();
    };
    let to_runs: fn(&mut World) = |w| {
        w.step();
        w.step();
        w.pods_available();
        w.step();
    };
    let cases: [Case; 4] = [
        (
            "create ReplicaSet",
            none,
            |w| matches!(w, Write::CreateReplicaSet(rs) if rs.metadata.name.as_deref() == Some("ex-baseline")),
            "templateStatuses/baseline",
            "Failed to create ReplicaSet for template 'baseline': ",
        ),
        (
            "scale ReplicaSet",
            two,
            |w| matches!(w, Write::ScaleReplicaSet { name, .. } if name == "ex-canary"),
            "templateStatuses/canary",
            "Unable to scale ReplicaSet for template 'canary' to desired replica count '2': ",
        ),
        (
            "create Service",
            two,
            |w| matches!(w, Write::CreateService(_)),
            "templateStatuses/baseline",
            "Failed to create Service ex-baseline for template 'baseline': ",
        ),
        (
            "create AnalysisRun",
            to_runs,
            |w| matches!(w, Write::CreateAnalysisRun(_)),
            "analysisRuns/a",
            "Failed to create AnalysisRun for analysis 'a': ",
        ),
    ];
    for (what, before, fails, entry, prefix) in cases {
        let mut world = World::new(experiment(json!({"analyses": [analysis("a", false)]})));
        before(&mut world);
        assert!(world.step_failing(fails, REFUSED), "{what}");
        let (list, name) = entry.split_once('/').unwrap();
        let status = world.status();
        let found = status[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{what}: {status:#}"))
            .clone();
        let state = if list == "analysisRuns" {
            &found["phase"]
        } else {
            &found["status"]
        };
        assert_eq!(state, "Error", "{what}: {found:#}");
        assert_eq!(found["message"], format!("{prefix}{REFUSED}"), "{what}");
        if list == "analysisRuns" {
            let run = found["analysisRun"].as_str().unwrap_or_default();
            assert_eq!(run, "", "{what}: no run was created");
        }
        let event = world
            .events()
            .into_iter()
            .find(|(reason, _)| reason.ends_with("Error"));
        let (reason, message) = event.unwrap_or_else(|| panic!("{what}: no event"));
        assert!(
            message.ends_with(&format!("-> Error: {prefix}{REFUSED}")),
            "{what}: {message}"
        );
        assert!(
            reason == "TemplateError" || reason == "AnalysisRunError",
            "{what}: {reason}"
        );
        // The next reconcile's phase follows, and it does not retry the analysis.
        world.step();
        let status = world.status();
        assert_eq!(status["phase"], "Error", "{what}: {status:#}");
        assert_eq!(world.health().0, "Degraded", "{what}");
        world.step();
        assert!(
            !world
                .last
                .writes
                .iter()
                .any(|w| matches!(w, Write::CreateAnalysisRun(_))),
            "{what}: an errored experiment starts no run"
        );
    }
    // A failed status patch is only retried.
    let mut world = World::new(experiment(json!({})));
    assert!(!world.step_failing(|w| matches!(w, Write::PatchStatus(_)), REFUSED));
}
