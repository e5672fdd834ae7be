//! `list rollouts`: the `NAME STRATEGY STATUS STEP SET-WEIGHT READY DESIRED UP-TO-DATE AVAILABLE`
//! table, with `NAMESPACE` first under `-A` and `TIMESTAMP` first under `--timestamps`, cells
//! pre-padded exactly as upstream's `%-Ns` format and then tab-aligned.

use k8s_openapi::jiff::Timestamp;

use super::info::{current_set_weight, rollout_phase};
use super::tree::TabWriter;
use crate::api::Rollout;

/// Which optional columns to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `-A`: a NAMESPACE column.
    pub all_namespaces: bool,
    /// `--timestamps`: a TIMESTAMP column holding `now`.
    pub timestamps: bool,
}

/// Text printed to stderr instead of an empty table.
pub const NO_RESOURCES: &str = "No resources found.";

/// The table for `rollouts` (in the order given), or `None` when there are none.
pub fn render_rollout_list(
    rollouts: &[Rollout],
    opts: ListOptions,
    now: Timestamp,
) -> Option<String> {
    if rollouts.is_empty() {
        return None;
    }
    let mut w = TabWriter::default();
    let mut header = String::new();
    if opts.timestamps {
        header.push_str("TIMESTAMP\t");
    }
    if opts.all_namespaces {
        header.push_str("NAMESPACE\t");
    }
    header.push_str(
        "NAME\tSTRATEGY\tSTATUS\tSTEP\tSET-WEIGHT\tREADY\tDESIRED\tUP-TO-DATE\tAVAILABLE",
    );
    w.line(&header);
    // Go's `Truncate(time.Second).Format("2006-01-02T15:04:05Z")` of the UTC clock.
    let stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    for ro in rollouts {
        w.line(&row(ro, opts, &stamp));
    }
    Some(w.finish())
}

fn row(ro: &Rollout, opts: ListOptions, stamp: &str) -> String {
    let status = ro.status.clone().unwrap_or_default();
    let mut strategy = "unknown";
    let mut step = "-".to_string();
    let mut set_weight = "-".to_string();
    if let Some(canary) = &ro.spec.strategy.canary {
        strategy = "Canary";
        let steps = canary.steps.as_deref().unwrap_or(&[]);
        if let Some(i) = status.current_step_index
            && !steps.is_empty()
        {
            step = format!("{i}/{}", steps.len());
        }
        set_weight = current_set_weight(ro).to_string();
    } else if ro.spec.strategy.blue_green.is_some() {
        strategy = "BlueGreen";
    }
    let (phase, _) = rollout_phase(ro);
    let mut line = String::new();
    if opts.timestamps {
        line.push_str(&format!("{stamp:<20}\t"));
    }
    if opts.all_namespaces {
        let ns = ro.metadata.namespace.clone().unwrap_or_default();
        line.push_str(&format!("{ns:<9}\t"));
    }
    let name = ro.metadata.name.clone().unwrap_or_default();
    let ready = format!("{}/{}", status.ready_replicas, status.replicas);
    line.push_str(&format!(
        "{name:<10}\t{strategy:<9}\t{phase:<12}\t{step:<4}\t{set_weight:<10}\t{ready:<5}\t{:<7}\t{:<10}\t{:<9}",
        ro.spec.effective_replicas(),
        status.updated_replicas,
        status.available_replicas
    ));
    line
}
