//! Controller metrics with upstream's names, labels and help texts (spec §10.5), rendered in
//! the Prometheus text format: Rollout info and replica gauges, the deprecated phase gauges,
//! reconcile histograms and error counters for Rollouts and AnalysisRuns, AnalysisRun info and
//! per-metric phases, `rollout_events_total` and `argo_rollouts_controller_info`.
//!
//! Labels are written in name order, as Prometheus' Go client writes them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use kube::ResourceExt;

use crate::analysis::rules::dry_run_metrics;
use crate::api::consts::{condition_type, reason as condition_reason};
use crate::api::{AnalysisRun, Metric, MetricProvider, Rollout, RolloutStatus};
use crate::rollout::{Plan, Write};

/// Upstream's reconcile histogram buckets, in seconds.
const BUCKETS: [f64; 5] = [0.01, 0.15, 0.25, 0.5, 1.0];

/// `rollout_phase`'s phases, in upstream's order.
const ROLLOUT_PHASES: [&str; 6] = [
    "Completed",
    "Progressing",
    "Paused",
    "Timeout",
    "Error",
    "Abort",
];

/// `analysis_run_phase` and `analysis_run_metric_phase`'s phases, in upstream's order.
const ANALYSIS_PHASES: [&str; 6] = [
    "Pending",
    "Error",
    "Failed",
    "Successful",
    "Running",
    "Inconclusive",
];

type Key = (String, String);

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bucket, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bucket {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Clone, PartialEq)]
struct RolloutSeries {
    strategy: &'static str,
    router: &'static str,
    phase: &'static str,
    available: i64,
    unavailable: i64,
    desired: i64,
    updated: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct RunMetric {
    name: String,
    type_: &'static str,
    dry_run: bool,
    phase: String,
}

#[derive(Debug, Clone, PartialEq)]
struct RunSeries {
    phase: String,
    metrics: Vec<RunMetric>,
}

#[derive(Debug, Default)]
struct State {
    rollouts: BTreeMap<Key, RolloutSeries>,
    rollout_reconcile: BTreeMap<Key, Histogram>,
    rollout_errors: BTreeMap<Key, u64>,
    /// (namespace, name, type, reason) → count.
    events: BTreeMap<(String, String, String, String), u64>,
    runs: BTreeMap<Key, RunSeries>,
    run_reconcile: BTreeMap<Key, Histogram>,
    run_errors: BTreeMap<Key, u64>,
}

/// (namespace, name, Event type, Event reason, sent) of a notification counter.
type NotificationKey = (String, String, String, String, bool);

/// The controller's metric values.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
    /// `davy_alert_aborts_total` by (namespace, rollout, alertname).
    alert_aborts: Mutex<BTreeMap<(String, String, String), u64>>,
    /// `notification_send_success` / `notification_send_error` by (namespace, name, type,
    /// reason) and outcome.
    notifications: Mutex<BTreeMap<NotificationKey, u64>>,
}

fn key(object: &impl ResourceExt) -> Key {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// `rollout_info`'s phase label from the conditions (spec §10.5).
pub fn info_phase(status: &RolloutStatus) -> &'static str {
    if status
        .conditions
        .iter()
        .any(|c| c.type_ == condition_type::INVALID_SPEC)
    {
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

/// Upstream's provider type name of a metric (`metricproviders.Type`).
pub fn provider_type(provider: &MetricProvider) -> &'static str {
    let types = [
        (provider.prometheus.is_some(), "Prometheus"),
        (provider.job.is_some(), "Job"),
        (provider.web.is_some(), "Web"),
        (provider.kayenta.is_some(), "Kayenta"),
        (provider.datadog.is_some(), "Datadog"),
        (provider.wavefront.is_some(), "Wavefront"),
        (provider.new_relic.is_some(), "NewRelic"),
        (provider.cloud_watch.is_some(), "CloudWatch"),
        (provider.graphite.is_some(), "Graphite"),
        (provider.influxdb.is_some(), "Influxdb"),
        (provider.skywalking.is_some(), "SkyWalking"),
        (provider.plugin.is_some(), "RpcPlugin"),
    ];
    types
        .into_iter()
        .find(|(set, _)| *set)
        .map_or("Unknown Provider", |(_, name)| name)
}

fn strategy_and_router(rollout: &Rollout) -> (&'static str, &'static str) {
    let strategy = &rollout.spec.strategy;
    if strategy.blue_green.is_some() {
        return ("blueGreen", "");
    }
    let Some(canary) = &strategy.canary else {
        return ("none", "");
    };
    // Upstream checks the routers in this order and the last one set wins.
    let router = canary.traffic_routing.as_ref().map_or("", |routing| {
        let mut router = "";
        if routing.alb.is_some() {
            router = "ALB";
        }
        if routing.ambassador.is_some() {
            router = "Ambassador";
        }
        if routing.istio.is_some() {
            router = "Istio";
        }
        if routing.nginx.is_some() {
            router = "Nginx";
        }
        if routing.smi.is_some() {
            router = "SMI";
        }
        if routing.app_mesh.is_some() {
            router = "AppMesh";
        }
        router
    });
    ("canary", router)
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn name_labels((namespace, name): &Key) -> String {
    format!(
        "name=\"{}\",namespace=\"{}\"",
        escape(name),
        escape(namespace)
    )
}

fn header(out: &mut String, name: &str, help: &str, type_: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {type_}");
}

fn bool_value(yes: bool) -> u8 {
    u8::from(yes)
}

fn render_histograms(out: &mut String, name: &str, help: &str, series: &BTreeMap<Key, Histogram>) {
    header(out, name, help, "histogram");
    for (key, histogram) in series {
        let labels = name_labels(key);
        for (bucket, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bucket}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            histogram.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
    }
}

fn render_counters(out: &mut String, name: &str, help: &str, series: &BTreeMap<Key, u64>) {
    header(out, name, help, "counter");
    for (key, count) in series {
        let _ = writeln!(out, "{name}{{{}}} {count}", name_labels(key));
    }
}

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic mid-update; the numbers are still worth serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the info and replica gauges of a Rollout, with the status it is being moved to
    /// when there is one.
    pub fn observe_rollout(&self, rollout: &Rollout, next: Option<&RolloutStatus>) {
        let observed = rollout.status.clone().unwrap_or_default();
        let status = next.unwrap_or(&observed);
        let (strategy, router) = strategy_and_router(rollout);
        let series = RolloutSeries {
            strategy,
            router,
            phase: info_phase(status),
            available: i64::from(status.available_replicas),
            unavailable: i64::from(status.replicas) - i64::from(status.available_replicas),
            desired: i64::from(rollout.spec.replicas.unwrap_or(1)),
            updated: i64::from(status.updated_replicas),
        };
        self.state().rollouts.insert(key(rollout), series);
    }

    /// Records one Rollout reconcile's duration and outcome.
    pub fn observe_reconcile(&self, rollout: &Rollout, took: Duration, failed: bool) {
        let mut state = self.state();
        state
            .rollout_reconcile
            .entry(key(rollout))
            .or_default()
            .observe(took);
        if failed {
            *state.rollout_errors.entry(key(rollout)).or_insert(0) += 1;
        }
    }

    /// Counts one event emitted on a Rollout (`rollout_events_total`).
    pub fn rollout_event(&self, namespace: &str, name: &str, type_: &str, reason: &str) {
        let key = (
            namespace.to_string(),
            name.to_string(),
            type_.to_string(),
            reason.to_string(),
        );
        *self.state().events.entry(key).or_insert(0) += 1;
    }

    /// Counts the events of a plan that was applied in full, and records the AnalysisRuns the
    /// reconcile observed (until the AnalysisRun reconciler records them itself).
    pub fn observe_applied(&self, rollout: &Rollout, runs: &[AnalysisRun], plan: &Plan) {
        let (namespace, name) = key(rollout);
        for write in &plan.writes {
            if let Write::Event(event) = write {
                self.rollout_event(&namespace, &name, event.type_.as_str(), &event.reason);
            }
        }
        for run in runs {
            self.observe_analysis_run(run);
        }
    }

    /// Records the info, phase and per-metric gauges of an AnalysisRun.
    pub fn observe_analysis_run(&self, run: &AnalysisRun) {
        let status = run.status.clone().unwrap_or_default();
        let phase = status
            .phase
            .as_ref()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let dry_run = dry_run_metrics(
            run.spec.dry_run.as_deref().unwrap_or_default(),
            &run.spec.metrics,
        )
        .unwrap_or_default();
        let metrics = run
            .spec
            .metrics
            .iter()
            .map(|metric: &Metric| RunMetric {
                name: metric.name.clone(),
                type_: provider_type(&metric.provider),
                dry_run: dry_run.contains(&metric.name),
                phase: status
                    .metric_results
                    .iter()
                    .find(|result| result.name == metric.name)
                    .map(|result| result.phase.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect();
        self.state()
            .runs
            .insert(key(run), RunSeries { phase, metrics });
    }

    /// Records one AnalysisRun reconcile's duration and outcome.
    pub fn analysis_run_reconciled(
        &self,
        namespace: &str,
        name: &str,
        took: Duration,
        failed: bool,
    ) {
        let key = (namespace.to_string(), name.to_string());
        let mut state = self.state();
        state
            .run_reconcile
            .entry(key.clone())
            .or_default()
            .observe(took);
        if failed {
            *state.run_errors.entry(key).or_insert(0) += 1;
        }
    }

    /// Forgets a deleted Rollout's series.
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let mut state = self.state();
        state.rollouts.remove(&key);
        state.rollout_reconcile.remove(&key);
        state.rollout_errors.remove(&key);
        state
            .events
            .retain(|(ns, n, _, _), _| !(ns == namespace && n == name));
    }

    /// Forgets a deleted AnalysisRun's series.
    pub fn forget_analysis_run(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let mut state = self.state();
        state.runs.remove(&key);
        state.run_reconcile.remove(&key);
        state.run_errors.remove(&key);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let state = self.state();
        let mut out = String::new();
        self.render_rollouts(&state, &mut out);
        render_analysis_runs(&state, &mut out);
        header(
            &mut out,
            "argo_rollouts_controller_info",
            "Running Argo-rollouts version",
            "gauge",
        );
        let _ = writeln!(
            out,
            "argo_rollouts_controller_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        self.render_alert_aborts(&mut out);
        self.render_notifications(&mut out);
        out
    }

    fn render_rollouts(&self, state: &State, out: &mut String) {
        header(out, "rollout_info", "Information about rollout.", "gauge");
        for (key, series) in &state.rollouts {
            let _ = writeln!(
                out,
                "rollout_info{{{},phase=\"{}\",strategy=\"{}\",traffic_router=\"{}\"}} 1",
                name_labels(key),
                series.phase,
                series.strategy,
                series.router
            );
        }
        type Pick = fn(&RolloutSeries) -> i64;
        let gauges: [(&str, &str, Pick); 4] = [
            (
                "rollout_info_replicas_available",
                "The number of available replicas per rollout.",
                |s| s.available,
            ),
            (
                "rollout_info_replicas_unavailable",
                "The number of unavailable replicas per rollout.",
                |s| s.unavailable,
            ),
            (
                "rollout_info_replicas_desired",
                "The number of desired replicas per rollout.",
                |s| s.desired,
            ),
            (
                "rollout_info_replicas_updated",
                "The number of updated replicas per rollout.",
                |s| s.updated,
            ),
        ];
        for (name, help, pick) in gauges {
            header(out, name, help, "gauge");
            for (key, series) in &state.rollouts {
                let _ = writeln!(out, "{name}{{{}}} {}", name_labels(key), pick(series));
            }
        }
        header(
            out,
            "rollout_phase",
            "Information on the state of the rollout (DEPRECATED - use rollout_info)",
            "gauge",
        );
        for (key, series) in &state.rollouts {
            for phase in ROLLOUT_PHASES {
                let _ = writeln!(
                    out,
                    "rollout_phase{{{},phase=\"{phase}\",strategy=\"{}\"}} {}",
                    name_labels(key),
                    series.strategy,
                    bool_value(series.phase == phase)
                );
            }
        }
        render_histograms(
            out,
            "rollout_reconcile",
            "Rollout reconciliation performance.",
            &state.rollout_reconcile,
        );
        render_counters(
            out,
            "rollout_reconcile_error",
            "Error occurring during the rollout",
            &state.rollout_errors,
        );
        header(
            out,
            "rollout_events_total",
            "Count of rollout events",
            "counter",
        );
        for ((namespace, name, type_, reason), count) in &state.events {
            let _ = writeln!(
                out,
                "rollout_events_total{{name=\"{}\",namespace=\"{}\",reason=\"{}\",type=\"{}\"}} {count}",
                escape(name),
                escape(namespace),
                escape(reason),
                escape(type_)
            );
        }
    }
}

fn render_analysis_runs(state: &State, out: &mut String) {
    header(
        out,
        "analysis_run_info",
        "Information about analysis run.",
        "gauge",
    );
    for (key, series) in &state.runs {
        let _ = writeln!(
            out,
            "analysis_run_info{{{},phase=\"{}\"}} 1",
            name_labels(key),
            escape(&series.phase)
        );
    }
    header(
        out,
        "analysis_run_phase",
        "Information on the state of the Analysis Run (DEPRECATED - use analysis_run_info)",
        "gauge",
    );
    for (key, series) in &state.runs {
        for phase in ANALYSIS_PHASES {
            let on = series.phase == phase || (phase == "Pending" && series.phase.is_empty());
            let _ = writeln!(
                out,
                "analysis_run_phase{{{},phase=\"{phase}\"}} {}",
                name_labels(key),
                bool_value(on)
            );
        }
    }
    header(
        out,
        "analysis_run_metric_type",
        "Information on the type of a specific metric in the Analysis Runs",
        "gauge",
    );
    for (key, series) in &state.runs {
        for metric in &series.metrics {
            let _ = writeln!(
                out,
                "analysis_run_metric_type{{metric=\"{}\",{},type=\"{}\"}} 1",
                escape(&metric.name),
                name_labels(key),
                metric.type_
            );
        }
    }
    header(
        out,
        "analysis_run_metric_phase",
        "Information on the duration of a specific metric in the Analysis Run",
        "gauge",
    );
    for (key, series) in &state.runs {
        let mut seen = BTreeSet::new();
        for metric in series
            .metrics
            .iter()
            .filter(|m| seen.insert(m.name.clone()))
        {
            for phase in ANALYSIS_PHASES {
                let on = metric.phase == phase || (phase == "Pending" && metric.phase.is_empty());
                let _ = writeln!(
                    out,
                    "analysis_run_metric_phase{{dry_run=\"{}\",metric=\"{}\",{},phase=\"{phase}\",type=\"{}\"}} {}",
                    metric.dry_run,
                    escape(&metric.name),
                    name_labels(key),
                    metric.type_,
                    bool_value(on)
                );
            }
        }
    }
    render_histograms(
        out,
        "analysis_run_reconcile",
        "Analysis Run reconciliation performance.",
        &state.run_reconcile,
    );
    render_counters(
        out,
        "analysis_run_reconcile_error",
        "Error occurring during the analysis run",
        &state.run_errors,
    );
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

/// Notification counters (upstream's `notification_send_success` / `notification_send_error`,
/// labelled with the Event's type and reason).
impl Metrics {
    /// Counts one notification sent (`ok`) or failed for an Event on a Rollout.
    pub fn count_notification(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        reason: &str,
        ok: bool,
    ) {
        let mut counts = self.notifications.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((
                namespace.to_string(),
                name.to_string(),
                type_.to_string(),
                reason.to_string(),
                ok,
            ))
            .or_insert(0) += 1;
    }

    fn render_notifications(&self, out: &mut String) {
        let counts = self.notifications.lock().unwrap_or_else(|e| e.into_inner());
        for (metric, help, wanted) in [
            (
                "notification_send_success",
                "Notification send success.",
                true,
            ),
            (
                "notification_send_error",
                "Error sending the notification",
                false,
            ),
        ] {
            header(out, metric, help, "counter");
            for ((namespace, name, type_, reason, ok), count) in counts.iter() {
                if *ok == wanted {
                    let _ = writeln!(
                        out,
                        "{metric}{{name=\"{}\",namespace=\"{}\",reason=\"{}\",type=\"{}\"}} {count}",
                        escape(name),
                        escape(namespace),
                        escape(reason),
                        escape(type_)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run() -> AnalysisRun {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "demo-1", "namespace": "ns"},
            "spec": {
                "metrics": [
                    {"name": "success", "provider": {"prometheus": {"query": "up"}}},
                    {"name": "latency", "provider": {"web": {"url": "http://x"}}}
                ],
                "dryRun": [{"metricName": "latency"}]
            },
            "status": {"phase": "Running", "metricResults": [{"name": "success", "phase": "Successful"}]}
        }))
        .unwrap()
    }

    fn samples(text: &str) -> Vec<prometheus_parse::Sample> {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        prometheus_parse::Scrape::parse(lines).unwrap().samples
    }

    fn value(samples: &[prometheus_parse::Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<_> = samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .collect();
        assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
        match found[0].value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn analysis_run_series_follow_upstream() {
        let metrics = Metrics::default();
        metrics.observe_analysis_run(&run());
        metrics.analysis_run_reconciled("ns", "demo-1", Duration::from_millis(200), true);
        let text = metrics.render();
        let s = samples(&text);
        let id = [("namespace", "ns"), ("name", "demo-1")];
        assert_eq!(
            value(
                &s,
                "analysis_run_info",
                &[id[0], id[1], ("phase", "Running")]
            ),
            1.0
        );
        assert_eq!(
            value(
                &s,
                "analysis_run_phase",
                &[id[0], id[1], ("phase", "Running")]
            ),
            1.0
        );
        assert_eq!(
            value(
                &s,
                "analysis_run_phase",
                &[id[0], id[1], ("phase", "Pending")]
            ),
            0.0
        );
        let success = [
            id[0],
            id[1],
            ("metric", "success"),
            ("type", "Prometheus"),
            ("dry_run", "false"),
        ];
        assert_eq!(value(&s, "analysis_run_metric_type", &success[..4]), 1.0);
        let phase = |m: &[(&str, &str)], p: &'static str| {
            let mut labels = m.to_vec();
            labels.push(("phase", p));
            value(&s, "analysis_run_metric_phase", &labels)
        };
        assert_eq!(phase(&success, "Successful"), 1.0);
        assert_eq!(phase(&success, "Pending"), 0.0);
        let latency = [
            id[0],
            id[1],
            ("metric", "latency"),
            ("type", "Web"),
            ("dry_run", "true"),
        ];
        assert_eq!(phase(&latency, "Pending"), 1.0);
        assert_eq!(phase(&latency, "Running"), 0.0);
        assert_eq!(value(&s, "analysis_run_reconcile_error", &id), 1.0);
        assert!(
            text.contains(
                "analysis_run_reconcile_bucket{name=\"demo-1\",namespace=\"ns\",le=\"0.25\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "analysis_run_reconcile_bucket{name=\"demo-1\",namespace=\"ns\",le=\"0.15\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("argo_rollouts_controller_info{version=\""),
            "{text}"
        );

        metrics.forget_analysis_run("ns", "demo-1");
        assert!(!metrics.render().contains("demo-1"));
    }

    #[test]
    fn provider_types_are_upstream_names() {
        let provider: MetricProvider =
            serde_json::from_value(json!({"newRelic": {"query": "q"}})).unwrap();
        assert_eq!(provider_type(&provider), "NewRelic");
        assert_eq!(
            provider_type(&MetricProvider::default()),
            "Unknown Provider"
        );
    }
}
