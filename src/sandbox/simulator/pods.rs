//! The simulated kubelet: a Pod's lifecycle (Pending → Running and Ready, or a failing image
//! pull), the demo app behind each running Pod, and the clean-up when Pods go away.
//!
//! Stages, counted from when the simulator first sees the Pod:
//! - before `pod_ready_delay`: Pending, containers waiting with reason `ContainerCreating`;
//! - after it: Running, every container `ready` and `running`, conditions all True;
//! - with the pull-error marker instead: `ErrImagePull` after the delay, then `ImagePullBackOff`
//!   after twice the delay, Pending for ever.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
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
    is_pod_ip, non_negative, pod_port, to_time,
};
use crate::sandbox::demo_app::{DemoApp, DemoAppError, DemoAppHandle, image_tag};

/// Addresses tried for one demo app before giving up (each taken one is replaced by another
/// random address; the reconcile is retried later anyway).
const BIND_ATTEMPTS: usize = 16;

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

/// The Pod's stage at `now`, given when it was first seen, and when it changes next (pure).
pub fn stage_at(
    pod: &Pod,
    first_seen: DateTime<Utc>,
    now: DateTime<Utc>,
    delay: Duration,
) -> (PodStage, Option<Duration>) {
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
    (stage, recheck)
}

/// Decides the Pod's stage at `now`, given when it was first seen; a Running status shows
/// `pod_ip` (pure).
pub fn decide(
    pod: &Pod,
    first_seen: DateTime<Utc>,
    now: DateTime<Utc>,
    delay: Duration,
    pod_ip: IpAddr,
) -> PodDecision {
    let (stage, recheck) = stage_at(pod, first_seen, now, delay);
    let stored = stored_stage(pod);
    let write = (stored != Some(stage)).then(|| status_for(pod, stage, first_seen, now, pod_ip));
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

/// The full status of a Pod in `stage`; `pod_ip` is its address once Running (pure).
pub fn status_for(
    pod: &Pod,
    stage: PodStage,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    pod_ip: IpAddr,
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
    let host_ip = POD_IP.to_string();
    let ip = pod_ip.to_string();
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
        host_ip: Some(host_ip.clone()),
        host_ips: Some(vec![HostIP { ip: host_ip }]),
        pod_ip: running.then(|| ip.clone()),
        pod_ips: running.then(|| vec![PodIP { ip }]),
        start_time: Some(to_time(started)),
        ..PodStatus::default()
    }
}

/// What the simulated kubelet does with a Pod that is being deleted.
#[derive(Debug, Clone, PartialEq)]
pub enum Termination {
    /// Containers stopped: write this status (not ready), then wait.
    MarkNotReady(Box<PodStatus>),
    /// Wait this long, then remove it.
    RemoveIn(Duration),
    /// Remove it now (DELETE with grace period 0).
    RemoveNow,
}

/// Decides the next step for a Pod carrying a `deletionTimestamp` (pure). It is removed
/// `min(grace period, cap)` after the deletion was asked for (the deadline less the grace
/// period), and shows not ready until then.
pub fn termination(pod: &Pod, now: DateTime<Utc>, cap: Duration) -> Option<Termination> {
    let deadline = from_time(pod.metadata.deletion_timestamp.as_ref()?);
    let grace = pod
        .metadata
        .deletion_grace_period_seconds
        .unwrap_or(0)
        .max(0);
    let grace = Duration::from_secs(grace.unsigned_abs());
    let asked = deadline - chrono::TimeDelta::from_std(grace).unwrap_or_default();
    let remove_at = asked + chrono::TimeDelta::from_std(grace.min(cap)).unwrap_or_default();
    if is_ready(pod) {
        let mut status = pod.status.clone().unwrap_or_default();
        for c in status.conditions.iter_mut().flatten() {
            if c.type_ == "Ready" || c.type_ == "ContainersReady" {
                c.status = "False".to_string();
                c.reason = Some("PodTerminating".to_string());
                c.last_transition_time = Some(to_time(now));
            }
        }
        for c in status.container_statuses.iter_mut().flatten() {
            c.ready = false;
        }
        return Some(Termination::MarkNotReady(Box::new(status)));
    }
    if now >= remove_at {
        Some(Termination::RemoveNow)
    } else {
        Some(Termination::RemoveIn(non_negative(remove_at - now)))
    }
}

/// The simulated kubelet's part in a deletion: not ready, then gone after the grace period.
async fn terminate(pod: &Pod, ctx: &Context) -> Result<Action, SimulatorError> {
    let uid = pod.uid().unwrap_or_default();
    ctx.apps().remove(&uid);
    let namespace = pod.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let step = termination(pod, ctx.clock.now(), ctx.config.max_termination);
    let result = match step {
        None => return Ok(Action::await_change()),
        Some(Termination::MarkNotReady(status)) => {
            let patch = serde_json::json!({ "status": status });
            api.patch_status(&pod.name_any(), &patch_params(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
        }
        Some(Termination::RemoveIn(wait)) => return Ok(Action::requeue(wait)),
        Some(Termination::RemoveNow) => {
            let params = kube::api::DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: pod.uid().map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..kube::api::DeleteParams::default()
            };
            api.delete(&pod.name_any(), &params).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(Action::await_change()),
        // Gone already (or replaced by a namesake): nothing left to do.
        Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// Reconciles one Pod: moves it through its stages, backing running Pods with demo apps.
pub(crate) async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, SimulatorError> {
    let uid = pod.uid().unwrap_or_default();
    if pod.metadata.deletion_timestamp.is_some() {
        return terminate(&pod, &ctx).await;
    }
    let namespace = pod.namespace().ok_or_else(|| {
        SimulatorError::Invalid(format!("Pod {} has no namespace", pod.name_any()))
    })?;
    let now = ctx.clock.now();
    let first_seen = *ctx.first_seen().entry(uid.clone()).or_insert(now);
    let delay = ctx.config.pod_ready_delay;
    let (stage, _) = stage_at(&pod, first_seen, now, delay);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let stored_ip: Option<IpAddr> = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref()?.parse().ok());
    // The app listens and its port annotation is written before the status shows the podIP
    // (and Ready), so a Pod's address always answers once it is published.
    let pod_ip = match stage {
        PodStage::Running if ctx.config.demo_apps => {
            match ensure_demo_app(&api, &pod, &uid, &namespace, &ctx).await? {
                Some(ip) => ip,
                None => return Ok(Action::await_change()),
            }
        }
        PodStage::Running => stored_ip.unwrap_or_else(|| IpAddr::V4(ctx.random_pod_ip())),
        // Not written before Running.
        _ => IpAddr::V4(POD_IP),
    };
    let decision = decide(&pod, first_seen, now, delay, pod_ip);
    let status = match decision.write {
        Some(status) => Some(serde_json::json!(status)),
        // A Pod already Running whose app had to move (the simulator restarted and its old
        // address was taken): only the address changes.
        None if stage == PodStage::Running && stored_ip != Some(pod_ip) => {
            Some(serde_json::json!({
                "podIP": pod_ip.to_string(),
                "podIPs": [{ "ip": pod_ip.to_string() }],
            }))
        }
        None => None,
    };
    if let Some(status) = status {
        let patch = serde_json::json!({ "status": status });
        api.patch_status(&pod.name_any(), &patch_params(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(decision
        .recheck
        .map_or_else(Action::await_change, Action::requeue))
}

/// The podIP the stored status shows, when it is a Pod address the simulator gives.
fn stored_pod_ip(pod: &Pod) -> Option<IpAddr> {
    let ip: IpAddr = pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
    is_pod_ip(ip).then_some(ip)
}

/// Starts the Pod's demo app if it has none and publishes its port on the Pod; returns the
/// app's address (the Pod's podIP), or `None` when the Pod went away meanwhile.
async fn ensure_demo_app(
    api: &Api<Pod>,
    pod: &Pod,
    uid: &str,
    namespace: &str,
    ctx: &Context,
) -> Result<Option<IpAddr>, SimulatorError> {
    let existing = ctx.apps().get(uid).map(|a| a.app.addr());
    let addr = match existing {
        Some(addr) => addr,
        None => {
            let image = containers(pod)
                .map(|(_, image)| image)
                .next()
                .ok_or_else(|| {
                    SimulatorError::Invalid(format!("Pod {} has no containers", pod.name_any()))
                })?;
            let app = start_pod_app(image, pod, ctx).await?;
            let addr = app.addr();
            ctx.apps().insert(
                uid.to_string(),
                PodApp {
                    namespace: namespace.to_string(),
                    name: pod.name_any(),
                    app,
                },
            );
            addr
        }
    };
    let port = addr.port();
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
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(addr.ip()))
}

/// Starts the demo app for `pod` on its own address and port: the address it already shows
/// (a restarted simulator keeps the published podIP when it can), else a random one, drawing
/// another while the address is taken.
async fn start_pod_app(
    image: &str,
    pod: &Pod,
    ctx: &Context,
) -> Result<DemoAppHandle, SimulatorError> {
    let port = pod_port(pod);
    let mut preferred = stored_pod_ip(pod);
    let mut taken = None;
    for _ in 0..BIND_ATTEMPTS {
        let ip = preferred
            .take()
            .unwrap_or_else(|| IpAddr::V4(ctx.random_pod_ip()));
        let options = &ctx.config.demo_app_options;
        match DemoApp::start_at(image, options, SocketAddr::new(ip, port)).await {
            Ok(app) => return Ok(app),
            Err(DemoAppError::Bind { addr, source })
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                taken = Some(DemoAppError::Bind { addr, source });
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(taken
        .map(SimulatorError::from)
        .unwrap_or_else(|| SimulatorError::Invalid("no address to bind".to_string())))
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
