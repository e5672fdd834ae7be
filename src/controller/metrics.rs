//! Controller metrics with upstream's names and labels (spec §10.5), rendered in the
//! Prometheus text format: `rollout_info`, `rollout_reconcile`, `rollout_reconcile_error`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use kube::ResourceExt;

use crate::api::consts::{condition_type, reason as condition_reason};
use crate::api::{Rollout, RolloutStatus};

/// Upstream's `rollout_reconcile` buckets, in seconds.
const BUCKETS: [f64; 5] = [0.01, 0.15, 0.25, 0.5, 1.0];

type Key = (String, String);

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct State {
    info: BTreeMap<Key, (String, String, String)>,
    reconcile: BTreeMap<Key, Histogram>,
    errors: BTreeMap<Key, u64>,
}

/// The controller's metric values.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
    /// `davy_alert_aborts_total` by (namespace, rollout, alertname).
    alert_aborts: Mutex<BTreeMap<(String, String, String), u64>>,
}

fn key(rollout: &Rollout) -> Key {
    (rollout.namespace().unwrap_or_default(), rollout.name_any())
}

/// `rollout_info`'s phase label from the conditions (spec §10.5).
pub fn info_phase(status: &RolloutStatus) -> &'static str {
    let has = |type_: &str, reason: &str| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == type_ && (reason.is_empty() || c.reason == reason))
    };
    if has(condition_type::INVALID_SPEC, "") {
        return "InvalidSpec";
    }
    let progressing = status
        .conditions
        .iter()
        .find(|c| c.type_ == condition_type::PROGRESSING);
    match progressing.map(|c| c.reason.as_str()) {
        Some(condition_reason::NEW_REPLICA_SET_AVAILABLE) => "Completed",
        Some(condition_reason::ROLLOUT_PAUSED) => "Paused",
        Some(condition_reason::REPLICA_SET_CREATE_ERROR) => "Error",
        Some(condition_reason::PROGRESS_DEADLINE_EXCEEDED) => "Timeout",
        Some(condition_reason::ROLLOUT_ABORTED) => "Abort",
        _ => "Progressing",
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic mid-update; the numbers are still worth serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the info labels of a Rollout (with the status it is being moved to, if any).
    pub fn observe_rollout(&self, rollout: &Rollout, next: Option<&RolloutStatus>) {
        let status = next
            .cloned()
            .unwrap_or_else(|| rollout.status.clone().unwrap_or_default());
        let strategy = if rollout.spec.strategy.canary.is_some() {
            "canary"
        } else if rollout.spec.strategy.blue_green.is_some() {
            "blueGreen"
        } else {
            "none"
        };
        let router = rollout
            .spec
            .strategy
            .canary
            .as_ref()
            .and_then(|canary| canary.traffic_routing.as_ref())
            .map(|routing| {
                if routing.nginx.is_some() {
                    "Nginx"
                } else if routing.smi.is_some() {
                    "SMI"
                } else if routing.istio.is_some() {
                    "Istio"
                } else {
                    ""
                }
            })
            .unwrap_or("");
        self.state().info.insert(
            key(rollout),
            (
                strategy.to_string(),
                router.to_string(),
                info_phase(&status).to_string(),
            ),
        );
    }

    /// Records one reconcile's duration and outcome.
    pub fn observe_reconcile(&self, rollout: &Rollout, took: Duration, failed: bool) {
        let mut state = self.state();
        let seconds = took.as_secs_f64();
        let histogram = state.reconcile.entry(key(rollout)).or_default();
        for (bucket, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bucket {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
        if failed {
            *state.errors.entry(key(rollout)).or_insert(0) += 1;
        }
    }

    /// Forgets a deleted Rollout's series.
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let mut state = self.state();
        state.info.remove(&key);
        state.reconcile.remove(&key);
        state.errors.remove(&key);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let state = self.state();
        let mut out = String::new();
        out.push_str("# HELP rollout_info Information about rollout.\n# TYPE rollout_info gauge\n");
        for ((namespace, name), (strategy, router, phase)) in &state.info {
            let _ = writeln!(
                out,
                "rollout_info{{name=\"{}\",namespace=\"{}\",phase=\"{}\",strategy=\"{}\",traffic_router=\"{}\"}} 1",
                escape(name),
                escape(namespace),
                phase,
                strategy,
                router
            );
        }
        out.push_str("# HELP rollout_reconcile Rollout reconciliation performance.\n# TYPE rollout_reconcile histogram\n");
        for ((namespace, name), histogram) in &state.reconcile {
            let labels = format!(
                "name=\"{}\",namespace=\"{}\"",
                escape(name),
                escape(namespace)
            );
            for (bucket, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                let _ = writeln!(
                    out,
                    "rollout_reconcile_bucket{{{labels},le=\"{bucket}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "rollout_reconcile_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(out, "rollout_reconcile_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(
                out,
                "rollout_reconcile_count{{{labels}}} {}",
                histogram.count
            );
        }
        out.push_str("# HELP rollout_reconcile_error Error occurring during the rollout\n# TYPE rollout_reconcile_error counter\n");
        for ((namespace, name), count) in &state.errors {
            let _ = writeln!(
                out,
                "rollout_reconcile_error{{name=\"{}\",namespace=\"{}\"}} {count}",
                escape(name),
                escape(namespace)
            );
        }
        self.render_alert_aborts(&mut out);
        out
    }
}

/// Davy's own counter of alert-driven aborts (not an upstream metric).
impl Metrics {
    /// Counts one abort of a Rollout by an alert.
    pub fn count_alert_abort(&self, namespace: &str, rollout: &str, alertname: &str) {
        let mut counts = self.alert_aborts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((
                namespace.to_string(),
                rollout.to_string(),
                alertname.to_string(),
            ))
            .or_insert(0) += 1;
    }

    fn render_alert_aborts(&self, out: &mut String) {
        let counts = self.alert_aborts.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP davy_alert_aborts_total Rollouts aborted by an Alertmanager alert.\n# TYPE davy_alert_aborts_total counter\n");
        for ((namespace, rollout, alertname), count) in counts.iter() {
            let _ = writeln!(
                out,
                "davy_alert_aborts_total{{alertname=\"{}\",namespace=\"{}\",rollout=\"{}\"}} {count}",
                escape(alertname),
                escape(namespace),
                escape(rollout)
            );
        }
    }
}
