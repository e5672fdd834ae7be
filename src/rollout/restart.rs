//! `spec.restartAt` (spec §3.8, upstream `rollout/restart.go`): evict pods created before the
//! restart time, a few at a time so availability stays within `maxUnavailable`, and record
//! `status.restartedAt` once none is left.

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::core::v1::Pod;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observed::{creation_time, rs_name, rs_spec_replicas, time_to_chrono};
use super::plan::{Plan, Write};
use super::world::View;

/// Recheck while old pods remain.
const RECHECK_SECONDS: i64 = 30;

/// What the restart stage decided.
#[derive(Debug, Default)]
pub(crate) struct Restart {
    /// Evictions and when to look again.
    pub plan: Plan,
    /// `status.restartedAt`, once no pod older than `spec.restartAt` is left.
    pub restarted_at: Option<Time>,
}

/// Plans the evictions of this reconcile (or records the restart as done).
pub(crate) fn decide(v: &View<'_>) -> Restart {
    let mut out = Restart::default();
    let Some(restart_at) = v.ro.spec.restart_at.clone() else {
        return out;
    };
    if v.prev.restarted_at.as_ref() == Some(&restart_at) {
        return out;
    }
    let at = time_to_chrono(&restart_at);
    if v.now < at {
        out.plan.requeue(at - v.now);
        return out;
    }
    let owned: Vec<&str> = v.rss.iter().map(rs_name).collect();
    let pods: Vec<&Pod> = v
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
        out.restarted_at = Some(restart_at);
        return out;
    }
    let min_ready = i64::from(v.ro.spec.min_ready_seconds.unwrap_or(0));
    let available = pods
        .iter()
        .filter(|pod| pod_available(pod, min_ready, v.now))
        .count();
    let available = i32::try_from(available).unwrap_or(i32::MAX);
    let concurrency = v.params.max_unavailable_pods().max(1);
    let total = v.replicas().max(v.rss.iter().map(rs_spec_replicas).sum());
    let can_restart = usize::try_from(available - (total - concurrency)).unwrap_or(0);
    for pod in stale.iter().take(can_restart) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        out.plan.push(Write::EvictPod { name });
    }
    out.plan.requeue(Duration::seconds(RECHECK_SECONDS));
    out
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
