//! Stable and canary Service selectors (spec §3.4): each points at its ReplicaSet's pod-template
//! hash, switched only when the target has pods available; on a basic-canary abort the canary
//! Service goes back to the stable pods.

use std::collections::BTreeMap;

use crate::api::consts::annotation;
use crate::rollout::observed::{rs_available, rs_hash, rs_spec_replicas};
use crate::rollout::plan::{EventType, Plan, Write};
use crate::rollout::world::View;

/// What a Service stage decided.
#[derive(Debug, Default)]
pub(crate) struct Selected {
    /// The Service patches and their events.
    pub plan: Plan,
    /// Every referenced Service's selector after those patches.
    pub selectors: BTreeMap<String, String>,
}

/// Upstream `reconcileStableAndCanaryService`.
pub(crate) fn decide(v: &View<'_>) -> Selected {
    let mut out = Selected {
        plan: Plan::default(),
        selectors: v.selectors.clone(),
    };
    let stable_service = v.canary.stable_service.as_deref();
    let canary_service = v.canary.canary_service.as_deref();
    ensure_targets(v, &mut out, stable_service, v.stable_rs, true);
    if v.aborted() {
        if !v.params.traffic_routed {
            ensure_targets(v, &mut out, canary_service, v.stable_rs, true);
        }
        // With traffic routing the weight stage moves the canary Service back to the stable
        // pods once traffic left the canary. Upstream would first point it at the still
        // running canary here and back again there, every reconcile of the abort delay.
        return out;
    }
    if v.dynamically_rolling_back_to_stable().is_some() {
        // The stable may still be undersized: keep the canary Service where it is for now.
        return out;
    }
    ensure_targets(v, &mut out, canary_service, v.new_rs, true);
    out
}

/// After an abort took the traffic off the canary: the canary Service selects the stable
/// pods again (without waiting for availability, the stable is serving).
pub(crate) fn canary_back_to_stable(v: &View<'_>) -> Selected {
    let mut out = Selected {
        plan: Plan::default(),
        selectors: v.selectors.clone(),
    };
    ensure_targets(
        v,
        &mut out,
        v.canary.canary_service.as_deref(),
        v.stable_rs,
        false,
    );
    out
}

/// Upstream `ensureSVCTargets`: point `service` at `rs` unless that would route to nothing.
/// Adopting a Service not yet managed by a Rollout waits for the ReplicaSet to be fully
/// available; otherwise one available pod is enough. A missing Service is left to validation.
fn ensure_targets(
    v: &View<'_>,
    out: &mut Selected,
    service: Option<&str>,
    rs: Option<usize>,
    check_availability: bool,
) {
    let (Some(service), Some(rs)) = (service, rs) else {
        return;
    };
    let Some(object) = v.obs.services.get(service) else {
        return;
    };
    let rs = &v.rss[rs];
    let desired = rs_hash(rs).to_string();
    let current = out.selectors.get(service).cloned().unwrap_or_default();
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
    out.plan.push(Write::PatchService {
        name: service.to_string(),
        hash: desired.clone(),
        managed_by: (!managed).then(|| v.name().to_string()),
    });
    out.plan.event(
        EventType::Normal,
        "SwitchService",
        format!("Switched selector for service '{service}' from '{current}' to '{desired}'"),
    );
    out.selectors.insert(service.to_string(), desired);
}
