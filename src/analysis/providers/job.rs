//! The `job` provider (spec §5.3): one `batch/v1` Job per measurement; Complete ⇒
//! Successful, Failed ⇒ Failed, a pod stuck pulling its image ⇒ Inconclusive. Written
//! against [`JobClient`] so it runs on a real cluster ([`KubeJobClient`]) or the sandbox.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

use crate::analysis::schedule::add;
use crate::api::{AnalysisPhase, Measurement, Metric};

use super::{MeasureContext, Provider, ProviderError, errored, started};

/// Label on the Job and its pods: the AnalysisRun's UID.
pub const RUN_UID_LABEL: &str = "analysisrun.argoproj.io/uid";
/// Job annotations naming the run and metric.
pub const RUN_NAME_ANNOTATION: &str = "analysisrun.argoproj.io/name";
/// Job annotation naming the AnalysisRun's namespace.
pub const RUN_NAMESPACE_ANNOTATION: &str = "analysisrun.argoproj.io/namespace";
/// Job annotation naming the metric.
pub const METRIC_NAME_ANNOTATION: &str = "analysisrun.argoproj.io/metric-name";
/// Measurement metadata keys.
pub const JOB_NAME_KEY: &str = "job-name";
/// Measurement metadata key holding the Job's namespace.
pub const JOB_NAMESPACE_KEY: &str = "job-namespace";
/// Overrides the namespace Jobs are created in.
pub const JOB_NAMESPACE_ENV: &str = "ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE";
/// Container waiting reasons that make a measurement Inconclusive: the Job cannot start.
const IMAGE_PULL_REASONS: [&str; 3] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// Why a Job call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobClientError {
    /// The object exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Any other API failure.
    #[error("{0}")]
    Other(String),
}

/// The Kubernetes calls the job provider needs.
pub trait JobClient: Send + Sync {
    /// Creates `job` in `namespace`.
    fn create<'a>(
        &'a self,
        namespace: &'a str,
        job: Job,
    ) -> BoxFuture<'a, Result<Job, JobClientError>>;
    /// Reads the Job `name` in `namespace`.
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Job, JobClientError>>;
    /// Deletes with foreground propagation; a missing Job is not an error.
    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), JobClientError>>;
    /// Lists the Jobs of `namespace` matching the label `selector`.
    fn list<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Job>, JobClientError>>;
    /// Lists the Pods of `namespace` matching the label `selector`.
    fn list_pods<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Pod>, JobClientError>>;
}

/// [`JobClient`] over `kube::Client`.
#[derive(Clone)]
pub struct KubeJobClient {
    client: kube::Client,
}

impl KubeJobClient {
    /// A client over `client`.
    pub fn new(client: kube::Client) -> KubeJobClient {
        KubeJobClient { client }
    }
}

fn kube_error(err: kube::Error) -> JobClientError {
    match &err {
        kube::Error::Api(status) if status.is_already_exists() => {
            JobClientError::AlreadyExists(err.to_string())
        }
        kube::Error::Api(status) if status.is_not_found() => {
            JobClientError::NotFound(err.to_string())
        }
        _ => JobClientError::Other(err.to_string()),
    }
}

impl JobClient for KubeJobClient {
    fn create<'a>(
        &'a self,
        namespace: &'a str,
        job: Job,
    ) -> BoxFuture<'a, Result<Job, JobClientError>> {
        Box::pin(async move {
            let api: kube::Api<Job> = kube::Api::namespaced(self.client.clone(), namespace);
            api.create(&kube::api::PostParams::default(), &job)
                .await
                .map_err(kube_error)
        })
    }

    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Job, JobClientError>> {
        Box::pin(async move {
            let api: kube::Api<Job> = kube::Api::namespaced(self.client.clone(), namespace);
            api.get(name).await.map_err(kube_error)
        })
    }

    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), JobClientError>> {
        Box::pin(async move {
            let api: kube::Api<Job> = kube::Api::namespaced(self.client.clone(), namespace);
            match api
                .delete(name, &kube::api::DeleteParams::foreground())
                .await
            {
                Ok(_) => Ok(()),
                Err(err) => match kube_error(err) {
                    JobClientError::NotFound(_) => Ok(()),
                    other => Err(other),
                },
            }
        })
    }

    fn list<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Job>, JobClientError>> {
        Box::pin(async move {
            let api: kube::Api<Job> = kube::Api::namespaced(self.client.clone(), namespace);
            let list = api
                .list(&kube::api::ListParams::default().labels(selector))
                .await
                .map_err(kube_error)?;
            Ok(list.items)
        })
    }

    fn list_pods<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Pod>, JobClientError>> {
        Box::pin(async move {
            let api: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), namespace);
            let list = api
                .list(&kube::api::ListParams::default().labels(selector))
                .await
                .map_err(kube_error)?;
            Ok(list.items)
        })
    }
}

/// Runs Jobs for `job` metrics.
pub struct JobProvider {
    client: Arc<dyn JobClient>,
    namespace: Option<String>,
}

/// The longest Job name: it ends up in a pod label value.
const MAX_NAME: usize = 63;

/// `<runUID>.<metric>.<n>` with n = measurements so far (count + errors) + 1, the metric name
/// shortened so the whole fits in 63 characters.
pub fn job_name(run_uid: &str, metric: &str, n: i64) -> String {
    let suffix = format!(".{n}");
    let room = MAX_NAME.saturating_sub(run_uid.len() + 1 + suffix.len());
    let metric: String = metric.chars().take(room).collect();
    format!("{run_uid}.{metric}{suffix}")
}

/// How long to wait before polling a Job again: √(2·elapsed) seconds, at least one.
pub fn backoff(elapsed: Duration) -> Duration {
    Duration::from_secs_f64((2.0 * elapsed.as_secs_f64()).sqrt().max(1.0))
}

impl JobProvider {
    /// Jobs go to the run's namespace unless `ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE` is set
    /// (read once here, at construction).
    pub fn new(client: Arc<dyn JobClient>) -> JobProvider {
        let namespace = std::env::var(JOB_NAMESPACE_ENV)
            .ok()
            .filter(|n| !n.is_empty());
        JobProvider { client, namespace }
    }

    fn namespace<'a>(&'a self, ctx: &'a MeasureContext) -> &'a str {
        self.namespace.as_deref().unwrap_or(&ctx.namespace)
    }

    /// The Job object for a new measurement.
    pub fn job_for(&self, ctx: &MeasureContext, metric: &Metric) -> Result<Job, ProviderError> {
        let spec = metric
            .provider
            .job
            .as_ref()
            .ok_or_else(|| ProviderError::Config("job provider missing".to_string()))?;
        let n = ctx
            .result
            .as_ref()
            .map_or(1, |r| i64::from(r.count) + i64::from(r.error) + 1);
        let mut labels = spec
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(RUN_UID_LABEL.to_string(), ctx.run_uid.clone());
        let mut annotations = spec
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default();
        annotations.insert(RUN_NAME_ANNOTATION.to_string(), ctx.run_name.clone());
        annotations.insert(RUN_NAMESPACE_ANNOTATION.to_string(), ctx.namespace.clone());
        annotations.insert(METRIC_NAME_ANNOTATION.to_string(), metric.name.clone());
        let mut job_spec = spec.spec.clone();
        let pod_meta = job_spec
            .template
            .metadata
            .get_or_insert_with(ObjectMeta::default);
        pod_meta
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(RUN_UID_LABEL.to_string(), ctx.run_uid.clone());
        // An owner reference only works within the run's namespace.
        let owner_references = (self.namespace(ctx) == ctx.namespace).then(|| {
            vec![OwnerReference {
                api_version: "argoproj.io/v1alpha1".to_string(),
                kind: "AnalysisRun".to_string(),
                name: ctx.run_name.clone(),
                uid: ctx.run_uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        });
        Ok(Job {
            metadata: ObjectMeta {
                name: Some(job_name(&ctx.run_uid, &metric.name, n)),
                namespace: Some(self.namespace(ctx).to_string()),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references,
                ..ObjectMeta::default()
            },
            spec: Some(job_spec),
            status: None,
        })
    }

    async fn start(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let mut measurement = started(ctx);
        let job = match self.job_for(ctx, metric) {
            Ok(job) => job,
            Err(e) => return errored(measurement, e.to_string()),
        };
        let namespace = self.namespace(ctx).to_string();
        let name = job.metadata.name.clone().unwrap_or_default();
        let created = match self.client.create(&namespace, job).await {
            Ok(job) => job,
            Err(JobClientError::AlreadyExists(create_err)) => {
                // A repeated reconcile: adopt the Job if it is ours.
                match self.client.get(&namespace, &name).await {
                    Ok(existing) if owned_by(&existing, &ctx.run_uid) => existing,
                    _ => return errored(measurement, create_err),
                }
            }
            Err(e) => return errored(measurement, e.to_string()),
        };
        measurement.metadata.insert(
            JOB_NAME_KEY.to_string(),
            created.metadata.name.clone().unwrap_or(name),
        );
        measurement
            .metadata
            .insert(JOB_NAMESPACE_KEY.to_string(), namespace);
        measurement.resume_at = Some(Time(add(ctx.now, backoff(Duration::ZERO))));
        measurement
    }

    fn job_ref(
        measurement: &Measurement,
        ctx: &MeasureContext,
        default_ns: &str,
    ) -> Option<(String, String)> {
        let name = measurement
            .metadata
            .get(JOB_NAME_KEY)
            .filter(|n| !n.is_empty())?;
        let namespace = measurement
            .metadata
            .get(JOB_NAMESPACE_KEY)
            .cloned()
            .unwrap_or_else(|| {
                if default_ns.is_empty() {
                    ctx.namespace.clone()
                } else {
                    default_ns.to_string()
                }
            });
        Some((namespace, name.clone()))
    }

    async fn poll(&self, ctx: &MeasureContext, mut measurement: Measurement) -> Measurement {
        let Some((namespace, name)) = Self::job_ref(&measurement, ctx, self.namespace(ctx)) else {
            return errored(measurement, "job metadata reference missing");
        };
        let job = match self.client.get(&namespace, &name).await {
            Ok(job) => job,
            Err(e) => return errored(measurement, e.to_string()),
        };
        let conditions = job
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        for condition in conditions.iter().filter(|c| c.status == "True") {
            match condition.type_.as_str() {
                "Complete" => measurement.phase = AnalysisPhase::Successful,
                "Failed" => measurement.phase = AnalysisPhase::Failed,
                _ => {}
            }
        }
        if measurement.phase.completed() {
            measurement.finished_at = Some(Time(ctx.now));
            measurement.resume_at = None;
            return measurement;
        }
        if let Some(message) = self.image_pull_problem(ctx, &namespace, &name).await {
            measurement.phase = AnalysisPhase::Inconclusive;
            measurement.message = message;
            measurement.finished_at = Some(Time(ctx.now));
            measurement.resume_at = None;
            return measurement;
        }
        let started_at = measurement.started_at.as_ref().map_or(ctx.now, |t| t.0);
        let elapsed = Duration::try_from(ctx.now.duration_since(started_at)).unwrap_or_default();
        measurement.resume_at = Some(Time(add(ctx.now, backoff(elapsed))));
        measurement
    }

    /// A pod of the Job whose container cannot pull its image, described.
    async fn image_pull_problem(
        &self,
        ctx: &MeasureContext,
        namespace: &str,
        job: &str,
    ) -> Option<String> {
        let selector = format!("{RUN_UID_LABEL}={}", ctx.run_uid);
        let pods = self.client.list_pods(namespace, &selector).await.ok()?;
        for pod in pods.iter().filter(|p| belongs_to_job(p, job)) {
            let statuses = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default();
            for status in statuses {
                let Some(waiting) = status.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                    continue;
                };
                let reason = waiting.reason.clone().unwrap_or_default();
                if IMAGE_PULL_REASONS.contains(&reason.as_str()) {
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    let detail = waiting.message.clone().unwrap_or_default();
                    return Some(format!(
                        "job pod {pod_name} container {}: {reason}{}",
                        status.name,
                        if detail.is_empty() {
                            String::new()
                        } else {
                            format!(": {detail}")
                        }
                    ));
                }
            }
        }
        None
    }

    async fn stop(&self, ctx: &MeasureContext, mut measurement: Measurement) -> Measurement {
        let Some((namespace, name)) = Self::job_ref(&measurement, ctx, self.namespace(ctx)) else {
            return errored(measurement, "job metadata reference missing");
        };
        if let Err(e) = self.client.delete(&namespace, &name).await {
            return errored(measurement, e.to_string());
        }
        measurement.phase = AnalysisPhase::Inconclusive;
        measurement.message = crate::analysis::reconcile::METRIC_TERMINATED.to_string();
        measurement.finished_at = Some(Time(ctx.now));
        measurement.resume_at = None;
        measurement
    }

    async fn collect(
        &self,
        ctx: &MeasureContext,
        metric: &Metric,
        limit: usize,
    ) -> Result<(), ProviderError> {
        let namespace = self.namespace(ctx).to_string();
        let selector = format!("{RUN_UID_LABEL}={}", ctx.run_uid);
        let mut jobs: Vec<Job> = self
            .client
            .list(&namespace, &selector)
            .await
            .map_err(|e| ProviderError::Io(e.to_string()))?
            .into_iter()
            .filter(|j| {
                j.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(METRIC_NAME_ANNOTATION))
                    == Some(&metric.name)
            })
            .collect();
        let created = |j: &Job| {
            j.metadata
                .creation_timestamp
                .as_ref()
                .map_or(Timestamp::MIN, |t| t.0)
        };
        jobs.sort_by_key(created);
        let excess = jobs.len().saturating_sub(limit);
        for job in jobs.iter().take(excess) {
            let name = job.metadata.name.clone().unwrap_or_default();
            self.client
                .delete(&namespace, &name)
                .await
                .map_err(|e| ProviderError::Io(e.to_string()))?;
        }
        Ok(())
    }
}

fn owned_by(job: &Job, uid: &str) -> bool {
    job.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
        || job
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(RUN_UID_LABEL))
            .map(String::as_str)
            == Some(uid)
}

fn belongs_to_job(pod: &Pod, job: &str) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let by_label = labels.is_some_and(|l| {
        l.get("job-name").map(String::as_str) == Some(job)
            || l.get("batch.kubernetes.io/job-name").map(String::as_str) == Some(job)
    });
    let by_owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Job" && o.name == job);
    by_label || by_owner
}

impl Provider for JobProvider {
    fn kind(&self) -> &'static str {
        "Job"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.start(ctx, metric))
    }

    fn resume<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        _metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.poll(ctx, measurement))
    }

    fn terminate<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        _metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.stop(ctx, measurement))
    }

    fn garbage_collect<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
        limit: usize,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.collect(ctx, metric, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_a_label() {
        let uid = "2a6f3e52-3f0e-4a5c-9d1f-5c3b2f3c4d5e";
        assert_eq!(job_name(uid, "m", 1), format!("{uid}.m.1"));
        let long = job_name(uid, &"x".repeat(80), 12);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with(".12"));
    }

    #[test]
    fn backoff_grows_with_the_square_root() {
        assert_eq!(backoff(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(backoff(Duration::from_secs(50)), Duration::from_secs(10));
    }
}
