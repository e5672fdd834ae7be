//! The job provider through whole reconciles, against an in-memory `JobClient`, on a virtual
//! clock: Job naming and labels, polling with backoff, Complete/Failed, image-pull problems,
//! termination, adopting a Job after a repeated reconcile, and garbage collection.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use davy::analysis::providers::Registry;
use davy::analysis::providers::job::{JobClient, JobClientError};
use davy::analysis::reconcile::Step;
use davy::analysis::runner::{Runner, StaticSecrets};
use davy::api::{AnalysisPhase, AnalysisRun};
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateWaiting, ContainerStatus, Pod, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

#[derive(Default)]
struct Cluster {
    jobs: BTreeMap<String, Job>,
    pods: Vec<Pod>,
    deleted: Vec<String>,
    created: i64,
}

#[derive(Default, Clone)]
struct FakeJobs(Arc<Mutex<Cluster>>);

impl FakeJobs {
    fn set_condition(&self, name: &str, kind: &str) {
        let mut c = self.0.lock().unwrap();
        let job = c.jobs.get_mut(name).expect("job exists");
        job.status = Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: kind.to_string(),
                status: "True".to_string(),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        });
    }
}

impl JobClient for FakeJobs {
    fn create<'a>(
        &'a self,
        _ns: &'a str,
        mut job: Job,
    ) -> BoxFuture<'a, Result<Job, JobClientError>> {
        Box::pin(async move {
            let mut c = self.0.lock().unwrap();
            let name = job.metadata.name.clone().unwrap_or_default();
            if c.jobs.contains_key(&name) {
                return Err(JobClientError::AlreadyExists(format!(
                    "jobs.batch \"{name}\" already exists"
                )));
            }
            c.created += 1;
            job.metadata.creation_timestamp = Some(Time(
                Timestamp::from_second(c.created).unwrap_or(Timestamp::UNIX_EPOCH),
            ));
            c.jobs.insert(name, job.clone());
            Ok(job)
        })
    }

    fn get<'a>(
        &'a self,
        _ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Job, JobClientError>> {
        Box::pin(async move {
            self.0
                .lock()
                .unwrap()
                .jobs
                .get(name)
                .cloned()
                .ok_or_else(|| JobClientError::NotFound(format!("jobs.batch \"{name}\" not found")))
        })
    }

    fn delete<'a>(
        &'a self,
        _ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), JobClientError>> {
        Box::pin(async move {
            let mut c = self.0.lock().unwrap();
            c.jobs.remove(name);
            c.deleted.push(name.to_string());
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        _ns: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Job>, JobClientError>> {
        Box::pin(async move {
            let (key, value) = selector.split_once('=').unwrap_or_default();
            Ok(self
                .0
                .lock()
                .unwrap()
                .jobs
                .values()
                .filter(|j| {
                    j.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(key))
                        .map(String::as_str)
                        == Some(value)
                })
                .cloned()
                .collect())
        })
    }

    fn list_pods<'a>(
        &'a self,
        _ns: &'a str,
        _selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Pod>, JobClientError>> {
        Box::pin(async move { Ok(self.0.lock().unwrap().pods.clone()) })
    }
}

const UID: &str = "11111111-2222-3333-4444-555555555555";

fn run(extra: &str) -> AnalysisRun {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata: {{name: ar, namespace: ns, uid: {UID}}}\nspec:\n  metrics:\n  - name: m\n{extra}    provider:\n      job:\n        metadata: {{labels: {{team: a}}}}\n        spec:\n          backoffLimit: 0\n          template:\n            spec:\n              restartPolicy: Never\n              containers: [{{name: c, image: alpine}}]\n"
    );
    serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

struct Harness {
    jobs: FakeJobs,
    runner: Runner,
    now: Timestamp,
}

impl Harness {
    fn new() -> Harness {
        let jobs = FakeJobs::default();
        let runner = Runner::new(
            Registry::new().with_jobs(Arc::new(jobs.clone())),
            Arc::new(StaticSecrets::default()),
        );
        Harness {
            jobs,
            runner,
            now: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    async fn reconcile(&mut self, run: &mut AnalysisRun) -> Step {
        let at = self.now;
        let step = self
            .runner
            .reconcile(run, &move || at)
            .await
            .expect("not complete");
        run.status = Some(step.status.clone());
        step
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.checked_add(d).unwrap();
    }
}

fn job_name(n: i64) -> String {
    format!("{UID}.m.{n}")
}

#[tokio::test]
async fn a_job_runs_polls_and_completes() {
    let mut h = Harness::new();
    let mut run = run("");
    let step = h.reconcile(&mut run).await;
    let m = &step.status.metric_results[0].measurements[0];
    assert_eq!(m.phase, AnalysisPhase::Running);
    assert_eq!(m.metadata.get("job-name"), Some(&job_name(1)));
    assert_eq!(
        m.metadata.get("job-namespace").map(String::as_str),
        Some("ns")
    );
    let resume = m.resume_at.clone().unwrap().0;
    assert_eq!(resume.duration_since(h.now).as_secs(), 1);
    assert_eq!(step.next_reconcile, Some(resume));
    {
        let c = h.jobs.0.lock().unwrap();
        let job = &c.jobs[&job_name(1)];
        let labels = job.metadata.labels.clone().unwrap();
        assert_eq!(
            labels
                .get("analysisrun.argoproj.io/uid")
                .map(String::as_str),
            Some(UID)
        );
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        let annotations = job.metadata.annotations.clone().unwrap();
        assert_eq!(
            annotations
                .get("analysisrun.argoproj.io/name")
                .map(String::as_str),
            Some("ar")
        );
        assert_eq!(
            annotations
                .get("analysisrun.argoproj.io/metric-name")
                .map(String::as_str),
            Some("m")
        );
        let owner = &job.metadata.owner_references.clone().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("AnalysisRun", UID, Some(true))
        );
        let pod_labels = job
            .spec
            .clone()
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(
            pod_labels
                .get("analysisrun.argoproj.io/uid")
                .map(String::as_str),
            Some(UID)
        );
    }
    // Still running 50 s in: polled again after √(2·50) = 10 s.
    h.advance(Duration::from_secs(50));
    let step = h.reconcile(&mut run).await;
    let m = &step.status.metric_results[0].measurements[0];
    assert_eq!(m.phase, AnalysisPhase::Running);
    assert_eq!(
        m.resume_at
            .clone()
            .unwrap()
            .0
            .duration_since(h.now)
            .as_secs(),
        10
    );
    h.jobs.set_condition(&job_name(1), "Complete");
    h.advance(Duration::from_secs(10));
    let step = h.reconcile(&mut run).await;
    assert_eq!(
        step.status.metric_results[0].measurements[0].phase,
        AnalysisPhase::Successful
    );
    assert_eq!(step.status.phase, Some(AnalysisPhase::Successful));
    assert_eq!(step.next_reconcile, None);
}

#[tokio::test]
async fn a_failed_job_fails_the_metric() {
    let mut h = Harness::new();
    let mut run = run("");
    h.reconcile(&mut run).await;
    h.jobs.set_condition(&job_name(1), "Failed");
    h.advance(Duration::from_secs(1));
    let step = h.reconcile(&mut run).await;
    assert_eq!(step.status.phase, Some(AnalysisPhase::Failed));
    assert_eq!(
        step.status.message,
        "Metric \"m\" assessed Failed due to failed (1) > failureLimit (0)"
    );
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_is_inconclusive() {
    let mut h = Harness::new();
    let mut run = run("");
    h.reconcile(&mut run).await;
    h.jobs.0.lock().unwrap().pods.push(Pod {
        metadata: ObjectMeta {
            name: Some("pod-1".into()),
            labels: Some(BTreeMap::from([("job-name".to_string(), job_name(1))])),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "c".into(),
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("ImagePullBackOff".into()),
                        message: Some("Back-off pulling image \"alpine:nope\"".into()),
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
        ..Pod::default()
    });
    h.advance(Duration::from_secs(1));
    let step = h.reconcile(&mut run).await;
    let m = &step.status.metric_results[0].measurements[0];
    assert_eq!(m.phase, AnalysisPhase::Inconclusive);
    assert_eq!(
        m.message,
        "job pod pod-1 container c: ImagePullBackOff: Back-off pulling image \"alpine:nope\""
    );
    assert_eq!(step.status.phase, Some(AnalysisPhase::Inconclusive));
}

#[tokio::test]
async fn terminating_deletes_the_job() {
    let mut h = Harness::new();
    let mut run = run("");
    h.reconcile(&mut run).await;
    run.spec.terminate = Some(true);
    h.advance(Duration::from_secs(1));
    let step = h.reconcile(&mut run).await;
    let m = &step.status.metric_results[0].measurements[0];
    assert_eq!(
        (m.phase.clone(), m.message.as_str()),
        (AnalysisPhase::Inconclusive, "Metric Terminated")
    );
    assert_eq!(h.jobs.0.lock().unwrap().deleted, vec![job_name(1)]);
    assert_eq!(step.status.phase, Some(AnalysisPhase::Inconclusive));
    assert_eq!(
        step.status.message,
        "Metric \"m\" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0): \"Error Message: Metric Terminated\""
    );
}

#[tokio::test]
async fn an_existing_job_is_adopted_only_when_ours() {
    let mut h = Harness::new();
    let mut run = run("");
    let ours = Job {
        metadata: ObjectMeta {
            name: Some(job_name(1)),
            labels: Some(BTreeMap::from([(
                "analysisrun.argoproj.io/uid".to_string(),
                UID.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        ..Job::default()
    };
    h.jobs.0.lock().unwrap().jobs.insert(job_name(1), ours);
    let step = h.reconcile(&mut run).await;
    assert_eq!(
        step.status.metric_results[0].measurements[0].phase,
        AnalysisPhase::Running
    );

    let mut h = Harness::new();
    let mut run = self::run("");
    h.jobs.0.lock().unwrap().jobs.insert(
        job_name(1),
        Job {
            metadata: ObjectMeta {
                name: Some(job_name(1)),
                ..ObjectMeta::default()
            },
            ..Job::default()
        },
    );
    let step = h.reconcile(&mut run).await;
    let m = &step.status.metric_results[0].measurements[0];
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert_eq!(
        m.message,
        format!("jobs.batch \"{}\" already exists", job_name(1))
    );
}

#[tokio::test]
async fn old_jobs_are_garbage_collected_with_the_history() {
    let mut h = Harness::new();
    let mut run = run("    count: 3\n    interval: 1s\n");
    run.spec.measurement_retention = Some(vec![davy::api::MeasurementRetention {
        metric_name: "m".into(),
        limit: 1,
    }]);
    for n in 1..=3 {
        h.reconcile(&mut run).await; // creates job n
        h.jobs.set_condition(&job_name(n), "Complete");
        h.advance(Duration::from_secs(2));
        h.reconcile(&mut run).await; // completes it; history trimmed to 1
        h.advance(Duration::from_secs(2));
    }
    let c = h.jobs.0.lock().unwrap();
    assert_eq!(c.deleted, vec![job_name(1), job_name(2)]);
    assert_eq!(
        c.jobs.keys().cloned().collect::<Vec<_>>(),
        vec![job_name(3)]
    );
    let status = run.status.unwrap();
    assert_eq!(status.phase, Some(AnalysisPhase::Successful));
    assert_eq!(status.metric_results[0].measurements.len(), 1);
    assert_eq!(status.metric_results[0].count, 3);
}
