//! Scaling the ReplicaSets of a blue-green Rollout (upstream `reconcileBlueGreenReplicaSets`):
//! stale scale-down deadlines cleared, the stable kept at `spec.replicas`, the new one at its
//! preview or full size (kept up for `abortScaleDownDelaySeconds` after an abort), the older
//! ones scaled down after `scaleDownDelaySeconds`. The sizes come from
//! `crate::rollout::replicas::blue_green`; the writes are the canary's.

use crate::api::{AnalysisPhase, PauseReason};
use crate::rollout::canary::scale::{abort_scale_down, remove_scale_down_deadlines, scale};
use crate::rollout::observed::{other_rs, rs_hash, rs_name, rs_spec_replicas};
use crate::rollout::plan::{Plan, Write};
use crate::rollout::replicas::blue_green::{OldScaleDownContext, plan_old_replica_sets};
use crate::rollout::replicas::other::OtherReplicaSetAction;
use crate::rollout::runs::{RunState, phase_of};
use crate::rollout::world::View;

use super::facts::{desired_new_replicas, strategy};

/// Upstream `reconcileBlueGreenReplicaSets`: the writes of this reconcile (all ReplicaSets
/// may move in the same reconcile, as upstream does).
pub(crate) fn decide(v: &View<'_>, runs: &RunState) -> Plan {
    let mut out = Plan::default();
    remove_scale_down_deadlines(v, &mut out);
    let replicas = v.replicas();
    if let Some(stable) = v.stable_rs {
        let from = rs_spec_replicas(&v.rss[stable]);
        scale(v, &mut out, stable, from, replicas);
    }
    if let Some(new_index) = v.new_rs
        && Some(new_index) != v.stable_rs
        && let Some(desired) = abort_scale_down(v, &mut out, new_index, desired_new_replicas(v))
    {
        let from = rs_spec_replicas(&v.rss[new_index]);
        scale(v, &mut out, new_index, from, desired);
    }
    if !old_scale_down_blocked(v, runs) {
        scale_down_old(v, &mut out);
    }
    out
}

/// Upstream's guards in `scaleDownOldReplicaSetsForBlueGreen`: not while paused for an
/// Inconclusive run, and not while a post-promotion analysis (without an explicit
/// `scaleDownDelaySeconds`) has not succeeded, so the old pods are still there to switch back.
fn old_scale_down_blocked(v: &View<'_>, runs: &RunState) -> bool {
    if v.prev
        .pause_conditions
        .iter()
        .any(|c| c.reason == PauseReason::InconclusiveAnalysisRun)
    {
        return true;
    }
    let bg = strategy(v);
    if bg.post_promotion_analysis.is_none() || bg.scale_down_delay_seconds.is_some() {
        return false;
    }
    let current = v.current_pod_hash();
    let post_skipped = v.prev.stable_rs == current
        || v.prev.blue_green.active_selector != current
        || (runs.post.is_none()
            && !v
                .new_rs()
                .is_some_and(|rs| super::facts::is_saturated(v, rs)));
    !post_skipped
        && runs
            .post
            .as_ref()
            .and_then(phase_of)
            .is_none_or(|phase| phase != AnalysisPhase::Successful)
}

/// Whether an older ReplicaSet is still referenced by the status or a Service.
fn referenced(v: &View<'_>, index: usize) -> bool {
    let hash = rs_hash(&v.rss[index]);
    if hash.is_empty() {
        return false;
    }
    let status = v.prev;
    let bg = strategy(v);
    let services = [
        Some(bg.active_service.as_str()),
        bg.preview_service.as_deref(),
    ];
    [
        status.stable_rs.as_str(),
        status.current_pod_hash.as_str(),
        status.blue_green.active_selector.as_str(),
        status.blue_green.preview_selector.as_str(),
    ]
    .contains(&hash)
        || services
            .into_iter()
            .flatten()
            .filter_map(|service| v.selectors.get(service))
            .any(|selected| selected == hash)
}

fn scale_down_old(v: &View<'_>, out: &mut Plan) {
    let others: Vec<_> = v
        .others
        .iter()
        .map(|&index| other_rs(&v.rss[index], referenced(v, index)))
        .collect();
    let bg = strategy(v);
    let decided = plan_old_replica_sets(
        &OldScaleDownContext {
            replicas: v.replicas(),
            scale_down_delay_seconds: bg.scale_down_delay_seconds,
            scale_down_delay_revision_limit: bg.scale_down_delay_revision_limit,
            now: v.now,
        },
        &others,
    );
    if let Some(after) = decided.requeue_after {
        out.requeue(after);
    }
    for action in decided.actions {
        match action {
            OtherReplicaSetAction::Scale { name, from, to } => {
                if let Some(index) = v.rss.iter().position(|rs| rs_name(rs) == name) {
                    scale(v, out, index, from, to);
                }
            }
            OtherReplicaSetAction::SetScaleDownDeadline {
                name, annotation, ..
            } => out.push(Write::SetScaleDownDeadline {
                name,
                deadline: annotation,
            }),
        }
    }
}
