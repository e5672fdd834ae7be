//! Stable and canary Service selectors (spec §3.4): each points at its ReplicaSet's pod-template
//! hash, switched only when the target has pods available; on a basic-canary abort the canary
//! Service goes back to the stable pods.

use super::context::Ctx;
use super::observed::{rs_available, rs_hash, rs_spec_replicas};
use super::plan::{EventType, Write};
use crate::api::consts::annotation;

/// Upstream `reconcileStableAndCanaryService`.
pub(crate) fn reconcile(ctx: &mut Ctx<'_>) {
    let stable_service = ctx.canary.stable_service.clone();
    let canary_service = ctx.canary.canary_service.clone();
    ensure_targets(ctx, stable_service.as_deref(), ctx.stable_rs, true);
    if ctx.aborted() {
        if !ctx.params.traffic_routed {
            ensure_targets(ctx, canary_service.as_deref(), ctx.stable_rs, true);
        }
        // With traffic routing the weight stage moves the canary Service back to the stable
        // pods once traffic left the canary. Upstream would first point it at the still
        // running canary here and back again there, every reconcile of the abort delay.
        return;
    }
    if super::weights::dynamically_rolling_back_to_stable(ctx).is_some() {
        // The stable may still be undersized: keep the canary Service where it is for now.
        return;
    }
    ensure_targets(ctx, canary_service.as_deref(), ctx.new_rs, true);
}

/// Upstream `ensureSVCTargets`: point `service` at `rs` unless that would route to nothing.
/// Adopting a Service not yet managed by a Rollout waits for the ReplicaSet to be fully
/// available; otherwise one available pod is enough. A missing Service is left to validation.
pub(crate) fn ensure_targets(
    ctx: &mut Ctx<'_>,
    service: Option<&str>,
    rs: Option<usize>,
    check_availability: bool,
) {
    let (Some(service), Some(rs)) = (service, rs) else {
        return;
    };
    let Some(object) = ctx.obs.services.get(service) else {
        return;
    };
    let rs = &ctx.rss[rs];
    let desired = rs_hash(rs).to_string();
    let current = ctx.selectors.get(service).cloned().unwrap_or_default();
    if current == desired {
        return;
    }
    let managed = object
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|annotations| annotations.contains_key(annotation::MANAGED_BY_ROLLOUTS));
    let spec = rs_spec_replicas(rs);
    let available = rs_available(rs);
    if !managed && check_availability && !(spec > 0 && available > 0 && available >= spec) {
        return;
    }
    if check_availability && available == 0 {
        return;
    }
    ctx.plan.push(Write::PatchService {
        name: service.to_string(),
        hash: desired.clone(),
        managed_by: (!managed).then(|| ctx.name().to_string()),
    });
    ctx.plan.event(
        EventType::Normal,
        "SwitchService",
        format!("Switched selector for service '{service}' from '{current}' to '{desired}'"),
    );
    ctx.selectors.insert(service.to_string(), desired);
}
