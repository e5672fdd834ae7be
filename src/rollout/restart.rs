//! `spec.restartAt` (spec §3.8, upstream `rollout/restart.go`): evict pods created before the
//! restart time, a few at a time so availability stays within `maxUnavailable`, and record
//! `status.restartedAt` once none is left.

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::core::v1::Pod;

use super::context::Ctx;
use super::observed::{creation_time, rs_name, rs_spec_replicas, time_to_chrono};
use super::plan::Write;

/// Recheck while old pods remain.
const RECHECK_SECONDS: i64 = 30;

/// Plans the evictions of this reconcile (or records the restart as done).
pub(crate) fn reconcile(ctx: &mut Ctx<'_>) {
    let Some(restart_at) = ctx.ro.spec.restart_at.clone() else {
        return;
    };
    if ctx.prev.restarted_at.as_ref() == Some(&restart_at) {
        return;
    }
    let at = time_to_chrono(&restart_at);
    if ctx.now < at {
        ctx.plan.requeue(at - ctx.now);
        return;
    }
    let owned: Vec<&str> = ctx.rss.iter().map(rs_name).collect();
    let pods: Vec<&Pod> = ctx
        .obs
        .pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            pod.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|owner| owner.kind == "ReplicaSet" && owned.contains(&owner.name.as_str()))
        })
        .collect();
    let stale: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|pod| creation_time(pod.metadata.creation_timestamp.as_ref()) < at)
        .collect();
    if stale.is_empty() {
        ctx.new_status.restarted_at = Some(restart_at);
        return;
    }
    let min_ready = i64::from(ctx.ro.spec.min_ready_seconds.unwrap_or(0));
    let available = pods
        .iter()
        .filter(|pod| pod_available(pod, min_ready, ctx.now))
        .count();
    let available = i32::try_from(available).unwrap_or(i32::MAX);
    let concurrency = ctx.params.max_unavailable_pods().max(1);
    let total = ctx
        .replicas()
        .max(ctx.rss.iter().map(rs_spec_replicas).sum());
    let can_restart = usize::try_from(available - (total - concurrency)).unwrap_or(0);
    for pod in stale.iter().take(can_restart) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        ctx.plan.push(Write::EvictPod { name });
    }
    ctx.plan.requeue(Duration::seconds(RECHECK_SECONDS));
}

/// Kubernetes' `IsPodAvailable`: Ready for at least `minReadySeconds`.
fn pod_available(pod: &Pod, min_ready_seconds: i64, now: DateTime<Utc>) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|ready| {
            ready.status == "True"
                && (min_ready_seconds == 0
                    || ready.last_transition_time.as_ref().is_some_and(|since| {
                        time_to_chrono(since) + Duration::seconds(min_ready_seconds) <= now
                    }))
        })
}
