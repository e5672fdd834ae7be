//! Scaling the ReplicaSets of a canary (spec §3.3, §3.3.4, §3.6): stable first, else the new
//! one, else the others, at most one of them moved per reconcile; the abort scale-down delay;
//! stale scale-down deadlines cleared. The counts come from `crate::rollout::replicas`.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::api::TrafficWeights;
use crate::api::consts::{annotation, event_reason};
use crate::rollout::observed::{
    math_weights, other_rs, rs_annotation, rs_available, rs_hash, rs_name, rs_revision,
    rs_scale_down_deadline, rs_spec_replicas,
};
use crate::rollout::plan::{EventType, Plan, Write};
use crate::rollout::replicas::other::{
    OtherReplicaSetAction, OtherScaleDownContext, ScaleDownDeadline, plan_other_replica_sets,
};
use crate::rollout::replicas::{desired_replica_counts, stable_rs_exists};
use crate::rollout::world::View;

/// What the scaling stage decided.
#[derive(Debug, Default)]
pub(crate) struct Scaled {
    /// The scale writes, deadlines and events.
    pub plan: Plan,
    /// A ReplicaSet changed size: the reconcile then only writes the status.
    pub scaled: bool,
}

/// Upstream `reconcileCanaryReplicaSets`: unless halted, clear stale scale-down deadlines, then
/// scale the stable, else the new, else the other ReplicaSets. The stable follows the weights
/// of the previous reconcile; the new ReplicaSet follows `new_weights`, this reconcile's
/// `status.canary.weights`.
pub(crate) fn decide(v: &View<'_>, new_weights: Option<&TrafficWeights>) -> Scaled {
    let mut plan = Plan::default();
    let scaled = reconcile(v, &mut plan, new_weights);
    Scaled { plan, scaled }
}

/// Scales `rss[index]` from `from` to `to`, refreshing `desired-replicas`; returns whether the
/// size changed (an annotation-only refresh is not a scaling).
pub(crate) fn scale(v: &View<'_>, out: &mut Plan, index: usize, from: i32, to: i32) -> bool {
    let rs = &v.rss[index];
    let replicas = v.replicas();
    let annotation_stale =
        rs_annotation(rs, annotation::DESIRED_REPLICAS) != Some(replicas.to_string().as_str());
    if from == to && !annotation_stale {
        return false;
    }
    let mut annotations = BTreeMap::from([(
        annotation::DESIRED_REPLICAS.to_string(),
        Some(replicas.to_string()),
    )]);
    if to == 0
        && !v.should_delay_scale_down_on_abort()
        && rs_scale_down_deadline(rs) != ScaleDownDeadline::Absent
    {
        annotations.insert(annotation::SCALE_DOWN_DEADLINE.to_string(), None);
    }
    let name = rs_name(rs).to_string();
    let revision = rs_revision(rs).unwrap_or(0);
    out.push(Write::ScaleReplicaSet {
        name: name.clone(),
        from,
        to,
        annotations,
    });
    if from == to {
        return false;
    }
    let direction = if from < to { "up" } else { "down" };
    out.event(
        EventType::Normal,
        event_reason::SCALING_REPLICA_SET,
        format!("Scaled {direction} ReplicaSet {name} (revision {revision}) from {from} to {to}"),
    );
    true
}

/// Upstream `reconcileCanaryReplicaSets`: unless halted, clear stale scale-down deadlines, then
/// scale the stable, else the new, else the other ReplicaSets. Returns whether one was scaled
/// (the reconcile then only writes the status).
fn reconcile(v: &View<'_>, out: &mut Plan, new_weights: Option<&TrafficWeights>) -> bool {
    if v.halted() {
        return false;
    }
    remove_scale_down_deadlines(v, out);
    let new_counts = v.new_counts();
    let stable_counts = v.stable_counts();
    let others = v.other_counts();
    if stable_rs_exists(new_counts.as_ref(), stable_counts.as_ref())
        && let Some(stable) = v.stable_rs
    {
        // The stable uses the weights of the previous reconcile, so it shrinks only after
        // traffic left it (upstream note in reconcileCanaryStableReplicaSet).
        let weights = math_weights(v.prev.canary.weights.as_ref());
        let desired = desired_replica_counts(
            v.params,
            new_counts.as_ref(),
            stable_counts.as_ref(),
            &others,
            weights.as_ref(),
        );
        let from = rs_spec_replicas(&v.rss[stable]);
        if scale(v, out, stable, from, desired.stable) {
            return true;
        }
    }
    if let Some(new_index) = v.new_rs {
        let weights = math_weights(new_weights);
        let desired = desired_replica_counts(
            v.params,
            new_counts.as_ref(),
            stable_counts.as_ref(),
            &others,
            weights.as_ref(),
        )
        .canary;
        let Some(desired) = abort_scale_down(v, out, new_index, desired) else {
            return false;
        };
        let from = rs_spec_replicas(&v.rss[new_index]);
        if scale(v, out, new_index, from, desired) {
            return true;
        }
    }
    reconcile_other_replica_sets(v, out)
}

/// The abort scale-down delay of the new ReplicaSet (upstream `reconcileNewReplicaSet` with
/// `shouldDelayScaleDownOnAbort`): `None` keeps it as it is this reconcile (the deadline is
/// ahead, or is set now once the stable can take all traffic); otherwise the size to scale
/// it to, 0 once the deadline passed. Blue-green previews use it too.
pub(crate) fn abort_scale_down(
    v: &View<'_>,
    out: &mut Plan,
    new_index: usize,
    desired: i32,
) -> Option<i32> {
    if !v.should_delay_scale_down_on_abort() {
        return Some(desired);
    }
    match rs_scale_down_deadline(&v.rss[new_index]) {
        ScaleDownDeadline::At(deadline) if deadline > v.now => {
            out.requeue(deadline - v.now);
            None
        }
        ScaleDownDeadline::At(_) => Some(0),
        ScaleDownDeadline::Unparseable => Some(desired),
        ScaleDownDeadline::Absent => {
            // Annotate only once the stable can take all traffic; keep the canary
            // scaled up until then.
            let stable_ready = v
                .stable_rs()
                .is_some_and(|rs| rs_available(rs) == v.replicas());
            if stable_ready {
                let seconds = v.ro.spec.abort_scale_down_delay_seconds().unwrap_or(0);
                let deadline = v.now + Duration::seconds(i64::from(seconds));
                let name = rs_name(&v.rss[new_index]).to_string();
                out.push(Write::SetScaleDownDeadline {
                    name,
                    deadline: deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                });
                out.requeue(Duration::seconds(i64::from(seconds)));
            }
            None
        }
    }
}

/// Upstream `removeScaleDownDeadlines`: the new and stable ReplicaSets must not carry a
/// deadline (we may have moved back to one still within its delay), except the canary while
/// an abort delay runs.
pub(crate) fn remove_scale_down_deadlines(v: &View<'_>, out: &mut Plan) {
    let mut targets = Vec::new();
    if let Some(new_rs) = v.new_rs
        && !v.should_delay_scale_down_on_abort()
    {
        targets.push(new_rs);
    }
    if let Some(stable) = v.stable_rs
        && !targets.contains(&stable)
    {
        targets.push(stable);
    }
    for index in targets {
        if rs_scale_down_deadline(&v.rss[index]) != ScaleDownDeadline::Absent {
            let name = rs_name(&v.rss[index]).to_string();
            out.push(Write::ClearScaleDownDeadline { name });
        }
    }
}

/// Whether a ReplicaSet is still referenced by the status or a Service (traffic routing must
/// not scale those down, spec §3.3.4).
fn referenced(v: &View<'_>, index: usize) -> bool {
    let hash = rs_hash(&v.rss[index]);
    if hash.is_empty() {
        return false;
    }
    let status = v.prev;
    let mut references = vec![
        status.stable_rs.as_str(),
        status.current_pod_hash.as_str(),
        status.blue_green.active_selector.as_str(),
        status.blue_green.preview_selector.as_str(),
    ];
    if let Some(weights) = status.canary.weights.as_ref() {
        references.push(weights.canary.pod_template_hash.as_str());
        references.push(weights.stable.pod_template_hash.as_str());
    }
    for service in [
        v.canary.canary_service.as_ref(),
        v.canary.stable_service.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(selected) = v.selectors.get(service) {
            references.push(selected.as_str());
        }
    }
    references.contains(&hash)
}

/// Scales the other ReplicaSets down (spec §3.3.4); true when any got smaller.
fn reconcile_other_replica_sets(v: &View<'_>, out: &mut Plan) -> bool {
    let others: Vec<_> = v
        .others
        .iter()
        .map(|&index| {
            other_rs(
                &v.rss[index],
                v.params.traffic_routed && referenced(v, index),
            )
        })
        .collect();
    let scale_ctx = OtherScaleDownContext {
        params: v.params,
        fully_promoted: v.fully_promoted(),
        scale_down_delay_seconds: v.canary.scale_down_delay_seconds,
        scale_down_delay_revision_limit: v.canary.scale_down_delay_revision_limit,
        now: v.now,
    };
    let decided = plan_other_replica_sets(
        &scale_ctx,
        v.new_counts().as_ref(),
        v.stable_counts().as_ref(),
        &others,
    );
    if let Some(after) = decided.requeue_after {
        out.requeue(after);
    }
    let mut scaled_down = false;
    for action in decided.actions {
        match action {
            OtherReplicaSetAction::Scale { name, from, to } => {
                if let Some(index) = v.rss.iter().position(|rs| rs_name(rs) == name) {
                    scaled_down |= scale(v, out, index, from, to) && to < from;
                }
            }
            OtherReplicaSetAction::SetScaleDownDeadline {
                name, annotation, ..
            } => {
                out.push(Write::SetScaleDownDeadline {
                    name,
                    deadline: annotation,
                });
            }
        }
    }
    scaled_down
}
