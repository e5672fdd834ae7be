//! The entry point of the rollout core, [`plan`]: the stages every strategy shares, in order.
//!
//! 1. a Rollout being deleted gets no plan;
//! 2. validation: an invalid spec (including an unreadable promotion-window annotation) gets
//!    only the `InvalidSpec` condition (`invalid_spec`);
//! 3. the strategy: canary or blue-green; a Rollout without a strategy gets an empty plan;
//! 4. the ReplicaSets are picked (new, stable, others: `world::ReplicaSets::pick`);
//! 5. the strategy stage decides (`canary::reconcile`, `bluegreen::reconcile`), ending in the
//!    strategy-independent report of the new status (`report`);
//! 6. the referenced workload's writes (`workload`: its generation annotation, `scaleDown`).

use chrono::{DateTime, Utc};

use super::observed::Observed;
use super::plan::{Plan, Write};
use super::world::{Inputs, ReplicaSets, Strategy};
use super::{bluegreen, canary, invalid_spec, windows, workload};

/// Decides one reconcile of a Rollout: pure, `now` is the only clock.
///
/// Follows upstream's pipeline (spec §3.1): invalid spec ⇒ only the `InvalidSpec` condition;
/// `spec.replicas` absent ⇒ write 1 and stop; paused-condition bookkeeping ⇒ patch and stop;
/// scaling event ⇒ ReplicaSets and status only; template/steps change ⇒ status reset only;
/// otherwise revision sync and ReplicaSet creation, restarts, history cleanup, Services,
/// traffic, analysis, then at most one ReplicaSet scaled, pause steps, and the status.
/// Davy's promotion windows (`davy.dev/promotion-windows`) may hold a completed pause or
/// analysis step; an invalid window annotation is an invalid spec.
/// Blue-green Rollouts run their own stage (spec §1.6); Rollouts without a strategy give an
/// empty plan.
pub fn plan(observed: &Observed, now: DateTime<Utc>) -> Plan {
    if observed.rollout.metadata.deletion_timestamp.is_some() {
        return Plan::default();
    }
    if let Some(error) = &observed.workload_error {
        let mut plan = invalid_spec::plan_for(observed, error, now);
        plan.requeue_after = Some(crate::api::defaults::WORKLOAD_REF_ERROR_REQUEUE);
        return plan;
    }
    if !observed.validation_errors.is_empty() {
        return invalid_spec::plan(observed, now);
    }
    let Some(strategy) = Strategy::of(&observed.rollout) else {
        return Plan::default();
    };
    // An unreadable promotion-window annotation is an invalid spec like any other: guessing
    // what the user meant could promote at a forbidden time.
    let windows = match windows::of_rollout(&observed.rollout) {
        Ok(windows) => windows,
        Err(error) => return invalid_spec::plan_for(observed, &error.to_string(), now),
    };
    let inputs = Inputs::new(observed, strategy, now, windows);
    let sets = ReplicaSets::pick(observed, &inputs.observed);
    let new_rs = sets.new.map(|index| sets.all[index].clone());
    let mut plan = match strategy {
        Strategy::Canary(_) => canary::reconcile(&inputs, sets),
        Strategy::BlueGreen(_) => bluegreen::reconcile(&inputs, sets),
    };
    // The new ReplicaSet, as observed or as this plan creates it.
    let new_rs = new_rs.or_else(|| {
        plan.writes.iter().find_map(|write| match write {
            Write::CreateReplicaSet(rs) => Some(rs.as_ref().clone()),
            _ => None,
        })
    });
    workload::append_writes(
        &observed.rollout,
        &observed.workload,
        new_rs.as_ref(),
        &mut plan,
    );
    plan
}
