//! `status.canary.weights` after a traffic update and its `TrafficWeightUpdated` event (upstream
//! `calculateWeightStatus` / `trafficWeightUpdatedMessage`), so the rollout layer records what
//! the routers were told in upstream's words.

use crate::api::Rollout;
use crate::api::consts::event_reason;
use crate::api::rollout_status::{TrafficWeights, WeightDestination};

use super::TrafficState;
use super::objects::RouterEvent;

/// The weights status for `state`: canary `W` with the canary hash and Service, the
/// experiment destinations, and stable the rest of 100 (not clamped, as upstream).
/// `verified` is left unset.
pub fn weight_status(rollout: &Rollout, state: &TrafficState) -> TrafficWeights {
    let canary = rollout.spec.strategy.canary.as_ref();
    let additional = state.additional_destinations.clone();
    let stable_weight = 100 - state.weight - additional.iter().map(|d| d.weight).sum::<i32>();
    TrafficWeights {
        canary: WeightDestination {
            weight: state.weight,
            service_name: canary
                .and_then(|c| c.canary_service.clone())
                .unwrap_or_default(),
            pod_template_hash: state.canary_hash.clone(),
        },
        stable: WeightDestination {
            weight: stable_weight,
            service_name: canary
                .and_then(|c| c.stable_service.clone())
                .unwrap_or_default(),
            pod_template_hash: state.stable_hash.clone(),
        },
        additional,
        verified: None,
    }
}

/// True when `new` differs from `prev` in any destination (`verified` aside), i.e. the status
/// must be written and the `TrafficWeightUpdated` event recorded.
pub fn weights_changed(prev: Option<&TrafficWeights>, new: &TrafficWeights) -> bool {
    prev.is_none_or(|p| {
        p.canary != new.canary || p.stable != new.stable || p.additional != new.additional
    })
}

/// The `TrafficWeightUpdated` event: "Traffic weight updated to 20" the first time, "from 20
/// to 40" after, plus "additional: [...]" (Go's `%v` of the destinations) when those changed.
pub fn weight_updated_event(prev: Option<&TrafficWeights>, new: &TrafficWeights) -> RouterEvent {
    let mut details = Vec::new();
    match prev {
        None => details.push(format!("to {}", new.canary.weight)),
        Some(p) if p.canary.weight != new.canary.weight => {
            details.push(format!("from {} to {}", p.canary.weight, new.canary.weight));
        }
        Some(_) => {}
    }
    if let Some(p) = prev
        && p.additional != new.additional
    {
        let items: Vec<String> = new
            .additional
            .iter()
            .map(|d| {
                format!(
                    "{{{} {} {}}}",
                    d.weight, d.service_name, d.pod_template_hash
                )
            })
            .collect();
        details.push(format!("additional: [{}]", items.join(" ")));
    }
    RouterEvent::new(
        event_reason::TRAFFIC_WEIGHT_UPDATED,
        format!("Traffic weight updated {}", details.join(", ")),
    )
}
