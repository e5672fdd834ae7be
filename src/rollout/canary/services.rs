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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;
    use serde_json::{Value, json};

    use super::*;
    use crate::rollout::fixtures::{at, replica_set, rollout, world};
    use crate::rollout::world::with_start_view;

    fn service(selector: Value, managed_by: Option<&str>) -> Service {
        let mut doc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "ns"},
            "spec": {"selector": selector},
        });
        if let Some(by) = managed_by {
            doc["metadata"]["annotations"] =
                json!({"argo-rollouts.argoproj.io/managed-by-rollouts": by});
        }
        serde_json::from_value(doc).expect("service")
    }

    /// Whether `ensure_targets` points the Service at a ReplicaSet `demo-<hash>` with these
    /// counts (`spec` `None`: unset), and with which `managed_by`.
    fn switch(
        svc: Service,
        hash: &str,
        spec: Option<i32>,
        available: i32,
        check: bool,
    ) -> Option<Option<String>> {
        let mut rs = replica_set(hash, spec.unwrap_or(1), available, 1, 1);
        if let Some(rs_spec) = rs.spec.as_mut() {
            rs_spec.replicas = spec;
        }
        let mut observed = world(rollout(3, json!([]), false, json!({})), vec![rs]);
        observed.services.insert("s".to_string(), svc);
        with_start_view(&observed, at(0), |view| {
            let mut out = Selected {
                plan: Plan::default(),
                selectors: view.selectors.clone(),
            };
            ensure_targets(view, &mut out, Some("s"), Some(0), check);
            out.plan.writes.iter().find_map(|write| match write {
                Write::PatchService {
                    name,
                    hash: to,
                    managed_by,
                } if name == "s" && to == hash => Some(managed_by.clone()),
                _ => None,
            })
        })
        .expect("canary")
    }

    #[test]
    fn switch_guards_follow_adoption_and_availability() {
        let unmanaged = || service(json!({"app": "a"}), None);
        let managed = || {
            service(
                json!({"app": "a", "rollouts-pod-template-hash": "old"}),
                Some("demo"),
            )
        };
        let adopt = Some(Some("demo".to_string()));
        let cases = [
            // (case, service, hash, spec, available, check availability, expected)
            ("already", managed(), "old", Some(3), 0, true, None),
            (
                "not fully available",
                unmanaged(),
                "new",
                Some(3),
                2,
                true,
                None,
            ),
            ("no pods", unmanaged(), "new", Some(0), 0, true, None),
            ("adopt", unmanaged(), "new", Some(3), 3, true, adopt.clone()),
            ("switch", managed(), "new", Some(3), 1, true, Some(None)),
            (
                "zero availability",
                managed(),
                "new",
                Some(3),
                0,
                true,
                None,
            ),
            ("unchecked", managed(), "new", Some(3), 0, false, Some(None)),
            ("unchecked adopt", unmanaged(), "new", None, 0, false, adopt),
        ];
        let mut failures = Vec::new();
        for (case, svc, hash, spec, available, check, want) in cases {
            let got = switch(svc, hash, spec, available, check);
            if got != want {
                failures.push(format!("{case}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
