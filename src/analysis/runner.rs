//! The thin async executor of one AnalysisRun reconcile, shared by the controller and
//! `davy analyze`: [`reconcile::prepare`], the due measurements through their providers in
//! parallel (secret arguments read just before), [`reconcile::apply`], then provider garbage
//! collection. It decides nothing itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::jiff::Timestamp;

use crate::api::{AnalysisRun, Argument};

use super::args::{resolve_metric, values};
pub use super::providers::secrets::{KubeSecrets, SecretError, SecretSource, StaticSecrets};
use super::providers::{MeasureContext, Registry, errored as errored_measurement, started};
use super::reconcile::{Outcome, Prepared, Step, apply, errored, prepare};

/// Runs reconciles of AnalysisRuns with real providers.
#[derive(Clone)]
pub struct Runner {
    /// The metric providers.
    pub registry: Registry,
    /// Where `valueFrom.secretKeyRef` values come from.
    pub secrets: Arc<dyn SecretSource>,
}

impl Runner {
    /// A runner over these providers and secrets.
    /// Providers that keep credentials in Secrets read them through `secrets` too, unless the
    /// registry was given its own source.
    pub fn new(registry: Registry, secrets: Arc<dyn SecretSource>) -> Runner {
        let registry = if registry.has_secrets() {
            registry
        } else {
            registry.with_secrets(secrets.clone())
        };
        Runner { registry, secrets }
    }

    /// One reconcile of `run`. `clock` gives the time before measuring (the measurements'
    /// start) and after (their end, the assessment time). `None` when the run is complete.
    pub async fn reconcile(
        &self,
        run: &AnalysisRun,
        clock: &(dyn Fn() -> Timestamp + Sync),
    ) -> Option<Step> {
        let start = clock();
        let plan = match prepare(run, start) {
            Prepared::Completed => return None,
            Prepared::Invalid(step) => return Some(step),
            Prepared::Measure(plan) => plan,
        };
        let namespace = run.metadata.namespace.clone().unwrap_or_default();
        let (args, secrets) = match self.read_secrets(run, &namespace).await {
            Ok(read) => read,
            Err(message) => {
                return Some(errored(
                    run,
                    format!("Unable to resolve metric arguments: {message}"),
                    clock(),
                ));
            }
        };
        let arg_values = values(&args);
        let mut resolved = Vec::with_capacity(plan.tasks.len());
        for task in &plan.tasks {
            let Some(metric) = run.spec.metrics.get(task.index) else {
                continue;
            };
            match resolve_metric(metric, &arg_values) {
                Ok(metric) => resolved.push((task.clone(), metric)),
                Err(err) => {
                    return Some(errored(
                        run,
                        format!("Unable to resolve metric arguments: {err}"),
                        clock(),
                    ));
                }
            }
        }
        let status = run.status.clone().unwrap_or_default();
        let context = |name: &str| MeasureContext {
            run_name: run.metadata.name.clone().unwrap_or_default(),
            namespace: namespace.clone(),
            run_uid: run.metadata.uid.clone().unwrap_or_default(),
            result: status
                .metric_results
                .iter()
                .find(|r| r.name == name)
                .cloned(),
            now: start,
            run_started_at: status.started_at.as_ref().map(|t| t.0),
        };
        let measurements = resolved.iter().map(|(task, metric)| {
            let ctx = context(&task.metric);
            let incomplete = task
                .resumes_incomplete
                .then(|| {
                    ctx.result
                        .as_ref()
                        .and_then(|r| r.measurements.last().cloned())
                })
                .flatten();
            let terminating = plan.terminating;
            async move {
                let provider = match self.registry.provider_for(metric) {
                    Ok(provider) => provider,
                    Err(err) => {
                        let base = incomplete.unwrap_or_else(|| started(&ctx));
                        return Outcome {
                            task: task.clone(),
                            measurement: errored_measurement(base, err.to_string()),
                            metadata: BTreeMap::new(),
                        };
                    }
                };
                let measurement = match incomplete {
                    None => provider.run(&ctx, metric).await,
                    Some(m) if terminating => provider.terminate(&ctx, metric, m).await,
                    Some(m) => provider.resume(&ctx, metric, m).await,
                };
                Outcome {
                    task: task.clone(),
                    measurement,
                    metadata: provider.metadata(metric),
                }
            }
        });
        let outcomes = join_all(measurements).await;
        let step = apply(run, &plan, outcomes, &secrets, clock());
        for (name, limit) in &step.garbage_collect {
            let Some(metric) = run.spec.metrics.iter().find(|m| &m.name == name) else {
                continue;
            };
            let Ok(metric) = resolve_metric(metric, &arg_values) else {
                continue;
            };
            let ctx = context(name);
            if let Ok(provider) = self.registry.provider_for(&metric)
                && let Err(err) = provider.garbage_collect(&ctx, &metric, *limit).await
            {
                tracing::warn!(metric = %name, error = %err, "measurement garbage collection failed");
            }
        }
        Some(step)
    }

    /// The run's arguments with secret values filled in, and the secret values (to mask).
    async fn read_secrets(
        &self,
        run: &AnalysisRun,
        namespace: &str,
    ) -> Result<(Vec<Argument>, Vec<String>), SecretError> {
        let mut args = run.spec.args.clone().unwrap_or_default();
        let mut secrets = Vec::new();
        for arg in &mut args {
            let Some(reference) = arg
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.clone())
            else {
                continue;
            };
            let value = self
                .secrets
                .get(namespace, &reference.name, &reference.key)
                .await?;
            secrets.push(value.clone());
            arg.value = Some(value);
        }
        Ok((args, secrets))
    }
}
