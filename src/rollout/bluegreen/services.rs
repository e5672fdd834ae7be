//! The preview and active Services of a blue-green Rollout (upstream `reconcilePreviewService`,
//! `reconcileActiveService`, `switchServiceSelector`): the preview Service follows the new
//! ReplicaSet at once; the active Service switches once the new ReplicaSet is saturated and
//! the pause and pre-promotion analysis are done, and back to the stable on an abort.

use std::collections::BTreeMap;

use crate::api::consts::annotation;
use crate::rollout::pause::PauseContext;
use crate::rollout::plan::{EventType, Plan, Write};
use crate::rollout::runs::RunState;
use crate::rollout::world::View;

use super::facts::{
    active_selector, completed_pause, completed_pre_promotion, fast_tracked, is_saturated,
    preview_service, ready_for_pause, strategy,
};

/// What a Service stage decided.
#[derive(Debug, Default)]
pub(crate) struct Selected {
    /// The Service patches and their events.
    pub plan: Plan,
    /// Every referenced Service's selector after those patches.
    pub selectors: BTreeMap<String, String>,
}

/// Upstream `reconcilePreviewService`: the preview Service selects the new pods (no
/// availability check: nothing but reviewers reach it), unless progress is halted.
pub(crate) fn preview(v: &View<'_>) -> Selected {
    let mut out = Selected {
        plan: Plan::default(),
        selectors: v.selectors.clone(),
    };
    if let Some(service) = preview_service(v)
        && !v.halted()
        && v.new_rs.is_some()
    {
        switch(v, &mut out, service, &v.current_pod_hash());
    }
    out
}

/// Upstream `reconcileActiveService`: the active Service moves to the new pods once they are
/// saturated and (unless fast-tracked) the pause and the pre-promotion analysis completed;
/// an abort points it back at the stable pods.
pub(crate) fn active(v: &View<'_>, pause: &PauseContext, runs: &RunState) -> Selected {
    let mut out = Selected {
        plan: Plan::default(),
        selectors: v.selectors.clone(),
    };
    if v.halted() || !ready_for_pause(v) || !v.new_rs().is_some_and(|rs| is_saturated(v, rs)) {
        return out;
    }
    let current = active_selector(v);
    let mut desired = current.clone();
    if fast_tracked(v, &current) || (completed_pause(v, pause) && completed_pre_promotion(v, runs))
    {
        desired = v.current_pod_hash();
    }
    if v.prev.abort {
        desired = v.prev.stable_rs.clone();
    }
    if !desired.is_empty() {
        let service = strategy(v).active_service.clone();
        switch(v, &mut out, &service, &desired);
    }
    out
}

/// Upstream `switchServiceSelector`: point `service` at `hash` (also when only the
/// managed-by annotation is missing), with a `SwitchService` event. A missing Service is
/// left to validation.
fn switch(v: &View<'_>, out: &mut Selected, service: &str, hash: &str) {
    let Some(object) = v.obs.services.get(service) else {
        return;
    };
    let current = out.selectors.get(service).cloned().unwrap_or_default();
    let managed = object
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|annotations| annotations.contains_key(annotation::MANAGED_BY_ROLLOUTS));
    if current == hash && managed {
        return;
    }
    out.plan.push(Write::PatchService {
        name: service.to_string(),
        hash: hash.to_string(),
        managed_by: (!managed).then(|| v.name().to_string()),
    });
    out.plan.event(
        EventType::Normal,
        "SwitchService",
        format!("Switched selector for service '{service}' from '{current}' to '{hash}'"),
    );
    out.selectors.insert(service.to_string(), hash.to_string());
}
