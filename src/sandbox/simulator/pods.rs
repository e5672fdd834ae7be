//! The simulated kubelet: a Pod's lifecycle (Pending → Running and Ready, or a failing image
//! pull), the demo app behind each running Pod, and the clean-up when Pods go away.
//!
//! Stages, counted from when the simulator first sees the Pod:
//! - before `pod_ready_delay`: Pending, containers waiting with reason `ContainerCreating`;
//! - after it: Running, every container `ready` and `running`, conditions all True;
//! - with the pull-error marker instead: `ErrImagePull` after the delay, then `ImagePullBackOff`
//!   after twice the delay, Pending for ever.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, HostIP, Pod,
    PodCondition, PodIP, PodStatus,
};
use kube::api::Patch;
use kube::runtime::controller::Action;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::replicaset::patch_params;
use super::{
    Context, POD_IP, PORT_ANNOTATION, PULL_ERROR_MARKER, PodApp, SimulatorError, from_time,
    non_negative, to_time,
};
use crate::sandbox::demo_app::{DemoApp, image_tag};

/// Where a Pod is in its simulated life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodStage {
    /// Pending, containers being created.
    Starting,
    /// Running and Ready.
    Running,
    /// Pending, an image pull failed (`ErrImagePull`).
    PullFailed,
    /// Pending, backing off the failed pull (`ImagePullBackOff`); final.
    PullBackOff,
}

/// What to do with one Pod now.
#[derive(Debug, Clone, PartialEq)]
pub struct PodDecision {
    /// The stage the Pod is in.
    pub stage: PodStage,
    /// The status to write, when the stored one shows another stage.
    pub write: Option<PodStatus>,
    /// When to look again (the next stage change).
    pub recheck: Option<Duration>,
}

/// Whether `image` carries the pull-error marker (its tag starts with [`PULL_ERROR_MARKER`]).
pub fn has_pull_error_marker(image: &str) -> bool {
    image_tag(image).starts_with(PULL_ERROR_MARKER)
}

/// Whether the Pod's `Ready` condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the Pod last became Ready (the `Ready` condition's transition time), if it is Ready.
pub fn ready_since(pod: &Pod) -> Option<DateTime<Utc>> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(from_time)
}

fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The stage the stored status shows, if the simulator wrote one.
pub fn stored_stage(pod: &Pod) -> Option<PodStage> {
    let status = pod.status.as_ref()?;
    match status.phase.as_deref()? {
        "Running" => Some(PodStage::Running),
        "Pending" => {
            let reasons: Vec<&str> = status
                .container_statuses
                .iter()
                .flatten()
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
                .collect();
            if reasons.contains(&"ImagePullBackOff") {
                Some(PodStage::PullBackOff)
            } else if reasons.contains(&"ErrImagePull") {
                Some(PodStage::PullFailed)
            } else if reasons.contains(&"ContainerCreating") {
                Some(PodStage::Starting)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Decides the Pod's stage at `now`, given when it was first seen (pure).
pub fn decide(
    pod: &Pod,
    first_seen: DateTime<Utc>,
    now: DateTime<Utc>,
    delay: Duration,
) -> PodDecision {
    let stored = stored_stage(pod);
    let elapsed = non_negative(now - first_seen);
    let pull_error = containers(pod).any(|(_, image)| has_pull_error_marker(image));
    // Stages only move forward: Running and ImagePullBackOff are final even when the simulator
    // restarted and forgot when it first saw the Pod.
    let (stage, recheck) = match stored {
        Some(PodStage::Running) => (PodStage::Running, None),
        Some(PodStage::PullBackOff) => (PodStage::PullBackOff, None),
        _ if elapsed < delay => (PodStage::Starting, Some(delay - elapsed)),
        _ if !pull_error => (PodStage::Running, None),
        _ if elapsed < delay * 2 => (PodStage::PullFailed, Some(delay * 2 - elapsed)),
        _ => (PodStage::PullBackOff, None),
    };
    let write = (stored != Some(stage)).then(|| status_for(pod, stage, first_seen, now));
    PodDecision {
        stage,
        write,
        recheck,
    }
}

/// The containers' names and images.
fn containers(pod: &Pod) -> impl Iterator<Item = (&str, &str)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or("")))
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: DateTime<Utc>,
) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(to_time(now)),
        ..PodCondition::default()
    }
}

/// The full status of a Pod in `stage` (pure).
pub fn status_for(
    pod: &Pod,
    stage: PodStage,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> PodStatus {
    let running = stage == PodStage::Running;
    let names: Vec<&str> = containers(pod).map(|(n, _)| n).collect();
    let unready =
        (!running).then(|| format!("containers with unready status: [{}]", names.join(" ")));
    let not_ready_reason = (!running).then_some("ContainersNotReady");
    let container_statuses = containers(pod)
        .map(|(name, image)| {
            let state = if running {
                ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(to_time(now)),
                    }),
                    ..ContainerState::default()
                }
            } else {
                let (reason, message) = match stage {
                    _ if !has_pull_error_marker(image) => ("ContainerCreating", None),
                    PodStage::PullBackOff => (
                        "ImagePullBackOff",
                        Some(format!("Back-off pulling image \"{image}\"")),
                    ),
                    _ => (
                        "ErrImagePull",
                        Some(format!(
                            "sandbox: image \"{image}\" carries the {PULL_ERROR_MARKER} marker"
                        )),
                    ),
                };
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.to_string()),
                        message,
                    }),
                    ..ContainerState::default()
                }
            };
            ContainerStatus {
                name: name.to_string(),
                image: image.to_string(),
                image_id: if running {
                    format!("sandbox://{image}")
                } else {
                    String::new()
                },
                container_id: running.then(|| format!("sandbox://{}/{name}", pod.name_any())),
                ready: running,
                restart_count: 0,
                started: Some(running),
                state: Some(state),
                ..ContainerStatus::default()
            }
        })
        .collect();
    let ip = POD_IP.to_string();
    PodStatus {
        phase: Some(if running { "Running" } else { "Pending" }.to_string()),
        conditions: Some(vec![
            condition("PodScheduled", true, None, None, started),
            condition("Initialized", true, None, None, started),
            condition(
                "ContainersReady",
                running,
                not_ready_reason,
                unready.clone(),
                now,
            ),
            condition("Ready", running, not_ready_reason, unready, now),
        ]),
        container_statuses: Some(container_statuses),
        host_ip: Some(ip.clone()),
        host_ips: Some(vec![HostIP { ip: ip.clone() }]),
        pod_ip: running.then(|| ip.clone()),
        pod_ips: running.then(|| vec![PodIP { ip }]),
        start_time: Some(to_time(started)),
        ..PodStatus::default()
    }
}

/// Reconciles one Pod: moves it through its stages, backing running Pods with demo apps.
pub(crate) async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, SimulatorError> {
    let uid = pod.uid().unwrap_or_default();
    if pod.metadata.deletion_timestamp.is_some() {
        ctx.apps().remove(&uid);
        return Ok(Action::await_change());
    }
    let namespace = pod.namespace().ok_or_else(|| {
        SimulatorError::Invalid(format!("Pod {} has no namespace", pod.name_any()))
    })?;
    let now = ctx.clock.now();
    let first_seen = *ctx.first_seen().entry(uid.clone()).or_insert(now);
    let decision = decide(&pod, first_seen, now, ctx.config.pod_ready_delay);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    // The app and its port annotation come before Ready, so a Ready Pod always has an endpoint.
    if decision.stage == PodStage::Running && ctx.config.demo_apps {
        ensure_demo_app(&api, &pod, &uid, &namespace, &ctx).await?;
    }
    if let Some(status) = decision.write {
        let patch = serde_json::json!({ "status": status });
        api.patch_status(&pod.name_any(), &patch_params(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(decision
        .recheck
        .map_or_else(Action::await_change, Action::requeue))
}

/// Starts the Pod's demo app if it has none and publishes its port on the Pod.
async fn ensure_demo_app(
    api: &Api<Pod>,
    pod: &Pod,
    uid: &str,
    namespace: &str,
    ctx: &Context,
) -> Result<(), SimulatorError> {
    let existing = ctx.apps().get(uid).map(|a| a.app.addr().port());
    let port = match existing {
        Some(port) => port,
        None => {
            let image = containers(pod)
                .map(|(_, image)| image)
                .next()
                .ok_or_else(|| {
                    SimulatorError::Invalid(format!("Pod {} has no containers", pod.name_any()))
                })?;
            let app = DemoApp::start_with(image, &ctx.config.demo_app_options).await?;
            let port = app.addr().port();
            ctx.apps().insert(
                uid.to_string(),
                PodApp {
                    namespace: namespace.to_string(),
                    name: pod.name_any(),
                    app,
                },
            );
            port
        }
    };
    let published = pod.annotations().get(PORT_ANNOTATION).map(String::as_str);
    if published != Some(port.to_string().as_str()) {
        let patch = serde_json::json!({
            "metadata": { "annotations": { PORT_ANNOTATION: port.to_string() } }
        });
        match api
            .patch(&pod.name_any(), &patch_params(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {
                // The Pod went away meanwhile: its app must not outlive it.
                ctx.apps().remove(uid);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Follows Pod deletions to stop their demo apps and forget their start times; after each
/// (re-)list, drops what belongs to Pods that no longer exist.
pub(crate) async fn track_deletions(api: Api<Pod>, ctx: Arc<Context>, cancel: CancellationToken) {
    let events = watcher(api, watcher::Config::default()).default_backoff();
    let mut events = std::pin::pin!(events);
    let mut listed: HashSet<String> = HashSet::new();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = events.next() => event,
        };
        match event {
            None => return,
            Some(Err(error)) => tracing::debug!(%error, "simulator pod watch failed; retrying"),
            Some(Ok(watcher::Event::Delete(pod))) => forget(&ctx, &pod.uid().unwrap_or_default()),
            Some(Ok(watcher::Event::Apply(pod))) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    ctx.apps().remove(&pod.uid().unwrap_or_default());
                }
            }
            Some(Ok(watcher::Event::Init)) => listed.clear(),
            Some(Ok(watcher::Event::InitApply(pod))) => {
                listed.insert(pod.uid().unwrap_or_default());
            }
            Some(Ok(watcher::Event::InitDone)) => sweep(&ctx, &listed).await,
        }
    }
}

fn forget(ctx: &Context, uid: &str) {
    ctx.apps().remove(uid);
    ctx.first_seen().remove(uid);
}

/// Forgets Pods missing from a fresh list, after checking each with a GET: a Pod created
/// after the list began is absent from it yet alive.
async fn sweep(ctx: &Context, listed: &HashSet<String>) {
    let candidates: Vec<(String, String, String)> = ctx
        .apps()
        .iter()
        .filter(|(uid, _)| !listed.contains(*uid))
        .map(|(uid, a)| (uid.clone(), a.namespace.clone(), a.name.clone()))
        .collect();
    for (uid, namespace, name) in candidates {
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
        match api.get_opt(&name).await {
            Ok(Some(pod)) if pod.uid().as_deref() == Some(uid.as_str()) => {}
            Ok(_) => forget(ctx, &uid),
            // Unknown: keep the app; the next list decides.
            Err(_) => {}
        }
    }
    ctx.first_seen().retain(|uid, _| listed.contains(uid));
}
