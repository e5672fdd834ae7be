//! An invalid spec (spec §2.3 `InvalidSpec`): the plan of a Rollout that must not be
//! reconciled, whatever its strategy: only the condition, the observed generation and the
//! phase are written.

use chrono::{DateTime, Duration, Utc};

use super::conditions;
use super::observed::{Observed, chrono_to_time, status_of};
use super::phase::rollout_phase;
use super::plan::{EventType, Plan, PlanError, Write};
use crate::api::consts::{condition_status, condition_type, reason};

/// An invalid spec (spec §2.3 `InvalidSpec`): only the condition, the observed generation and
/// the phase are written; nothing else is reconciled.
pub fn plan(obs: &Observed, now: DateTime<Utc>) -> Plan {
    let error = obs.validation_errors.first().cloned().unwrap_or_default();
    plan_for(obs, &error, now)
}

/// [`plan`] for this error (e.g. an invalid `davy.dev/promotion-windows`).
pub fn plan_for(obs: &Observed, error: &str, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan::default();
    let ro = &obs.rollout;
    let observed = status_of(ro);
    let name = ro.metadata.name.clone().unwrap_or_default();
    let text = conditions::invalid_spec_message(&name, error);
    let mut status = observed.clone();
    let unchanged =
        conditions::get(&status, condition_type::INVALID_SPEC).is_some_and(|c| c.message == text);
    if !unchanged {
        conditions::remove(&mut status, condition_type::INVALID_SPEC);
        conditions::set(
            &mut status,
            conditions::new_condition(
                condition_type::INVALID_SPEC,
                condition_status::TRUE,
                reason::INVALID_SPEC,
                &text,
                &chrono_to_time(now),
            ),
        );
    }
    status.observed_generation = ro.metadata.generation.unwrap_or(0).to_string();
    let (phase, message) = rollout_phase(&ro.spec, &status);
    status.phase = Some(phase);
    status.message = message;
    if status != observed {
        plan.push(Write::PatchStatus(Box::new(status)));
    }
    if !unchanged {
        // Upstream records the condition's message as a Warning event when it appears or
        // changes (notification triggers and `kubectl describe` read it); after the status,
        // so a failed status write does not repeat it.
        plan.event(EventType::Warning, reason::INVALID_SPEC, text.clone());
    }
    plan.error = Some(PlanError::InvalidSpec(text));
    plan.requeue(Duration::seconds(10));
    plan
}
