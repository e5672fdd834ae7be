//! Revision history (spec §1.1, upstream `reconcileRevisionHistoryLimit`): beyond
//! `revisionHistoryLimit` other ReplicaSets, the oldest fully scaled-down ones are deleted
//! together with their AnalysisRuns.

use std::collections::BTreeSet;

use super::observed::{creation_time, rs_hash, rs_name, rs_spec_replicas, rs_status_replicas};
use super::plan::{Plan, Write};
use super::runs::{RunState, name_of};
use super::world::View;
use crate::api::consts::label;

/// What the history cleanup decided.
#[derive(Debug, Default)]
pub(crate) struct Cleanup {
    /// The ReplicaSet and AnalysisRun deletions, in order.
    pub plan: Plan,
    /// Names of the AnalysisRuns deleted (no later stage deletes them again).
    pub deleted_runs: Vec<String>,
}

/// Upstream `reconcileRevisionHistoryLimit`: beyond `revisionHistoryLimit` (default 10) other
/// ReplicaSets, delete the oldest ones that are fully scaled down, with their AnalysisRuns.
pub(crate) fn cleanup(v: &View<'_>, runs: &RunState) -> Cleanup {
    let mut out = Cleanup::default();
    let limit = usize::try_from(v.ro.spec.revision_history_limit()).unwrap_or(0);
    let mut cleanable: Vec<usize> = v
        .others
        .iter()
        .copied()
        .filter(|&index| v.rss[index].metadata.deletion_timestamp.is_none())
        .collect();
    if cleanable.len() <= limit {
        return out;
    }
    cleanable.sort_by_key(|&index| {
        (
            creation_time(v.rss[index].metadata.creation_timestamp.as_ref()),
            rs_name(&v.rss[index]).to_string(),
        )
    });
    let excess = cleanable.len() - limit;
    for &index in &cleanable[..excess] {
        let rs = &v.rss[index];
        let generation = rs.metadata.generation.unwrap_or(0);
        let observed_generation = rs
            .status
            .as_ref()
            .and_then(|status| status.observed_generation)
            .unwrap_or(0);
        if rs_status_replicas(rs) != 0
            || rs_spec_replicas(rs) != 0
            || generation > observed_generation
        {
            continue;
        }
        let hash = rs_hash(rs).to_string();
        out.plan.push(Write::DeleteReplicaSet {
            name: rs_name(rs).to_string(),
        });
        if !hash.is_empty() {
            delete_runs_of_hash(&mut out, runs, &hash);
        }
    }
    out
}

/// Deletes the other runs labelled with `hash` (their ReplicaSet is being deleted).
fn delete_runs_of_hash(out: &mut Cleanup, runs: &RunState, hash: &str) {
    let labelled = runs.others.iter().filter(|run| {
        run.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(label::POD_TEMPLATE_HASH))
            .map(String::as_str)
            == Some(hash)
    });
    let mut seen: BTreeSet<String> = out.deleted_runs.iter().cloned().collect();
    for run in labelled {
        let name = name_of(run);
        if run.metadata.deletion_timestamp.is_some() || !seen.insert(name.clone()) {
            continue;
        }
        out.plan
            .push(Write::DeleteAnalysisRun { name: name.clone() });
        out.deleted_runs.push(name);
    }
}
