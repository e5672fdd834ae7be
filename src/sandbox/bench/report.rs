//! The figures of `davy bench scale` and how they are computed and printed: pure functions of
//! the samples the run collected (no I/O, no clock).

use std::fmt::Write as _;

use serde::Serialize;

/// What `davy bench scale` reports; the JSON field names are a contract (issue 12 §4).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScaleReport {
    /// Rollouts created.
    pub rollouts: usize,
    /// Rollouts Healthy at the end (on the updated revision when the second wave ran).
    pub healthy: usize,
    /// The controller's peak resident set (`VmHWM`), bytes.
    pub controller_peak_rss_bytes: Option<u64>,
    /// The controller's resident set once both waves were done and it sat idle (`VmRSS`).
    pub controller_steady_rss_bytes: Option<u64>,
    /// The controller's user + system CPU time over the whole run, seconds.
    pub controller_cpu_seconds: Option<f64>,
    /// The controller's CPU use while idle after the waves, percent of one core.
    pub controller_idle_cpu_percent: Option<f64>,
    /// This process's CPU seconds over the run: the sandbox API server, the simulator and the
    /// bench's own watch (to tell whether the sandbox or the controller is the bottleneck).
    pub sandbox_cpu_seconds: Option<f64>,
    /// This process's peak resident set, bytes.
    pub sandbox_peak_rss_bytes: Option<u64>,
    /// Rollout reconciles (the controller's `rollout_reconcile_count`) per second of the waves.
    pub reconciles_per_second: Option<f64>,
    /// How late timed pauses ended: median, seconds.
    pub step_lateness_p50_seconds: Option<f64>,
    /// How late timed pauses ended: 99th percentile, seconds.
    pub step_lateness_p99_seconds: Option<f64>,
    /// Timed pauses measured.
    pub pauses_measured: usize,
    /// From the controller's start to every Rollout Healthy (first wave), seconds.
    pub seconds_to_all_healthy: Option<f64>,
    /// From the image change to every Rollout Healthy on the new revision, seconds.
    pub seconds_to_all_updated_healthy: Option<f64>,
    /// The controller's API requests (everything it sent the sandbox over HTTP) per Rollout.
    pub api_requests_per_rollout: Option<f64>,
    /// The controller's requests by verb.
    pub api_requests: crate::sandbox::apiserver::RequestCounts,
    /// ReplicaSets beyond the first for one Rollout and pod-template hash (should be 0).
    pub duplicate_replica_sets: usize,
    /// Whether every wave finished before its timeout.
    pub completed: bool,
}

impl ScaleReport {
    /// The figures rounded to what the measurement can tell (milliseconds, 0.1 %), so the
    /// JSON shows no binary floating-point noise.
    pub fn rounded(mut self) -> Self {
        let r = |v: &mut Option<f64>, scale: f64| {
            *v = v.map(|x| (x * scale).round() / scale);
        };
        r(&mut self.controller_cpu_seconds, 1000.0);
        r(&mut self.controller_idle_cpu_percent, 10.0);
        r(&mut self.sandbox_cpu_seconds, 1000.0);
        r(&mut self.reconciles_per_second, 10.0);
        r(&mut self.step_lateness_p50_seconds, 1000.0);
        r(&mut self.step_lateness_p99_seconds, 1000.0);
        r(&mut self.seconds_to_all_healthy, 1000.0);
        r(&mut self.seconds_to_all_updated_healthy, 1000.0);
        r(&mut self.api_requests_per_rollout, 10.0);
        self
    }
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `samples` by the nearest-rank method; `None` when empty.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    // Nearest rank: the smallest value with at least q of the samples at or below it.
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

/// The sum of every `rollout_reconcile_count` sample in a Prometheus text exposition (one
/// series per Rollout); `None` when the metric is absent.
pub fn reconcile_count(exposition: &str) -> Option<f64> {
    let mut found = false;
    let mut total = 0.0;
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("rollout_reconcile_count") else {
            continue;
        };
        // `rollout_reconcile_count{…} 3` or `rollout_reconcile_count 3`, not another metric
        // whose name merely starts the same.
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(value) = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            found = true;
            total += value;
        }
    }
    found.then_some(total)
}

fn seconds(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| format!("{s:.2} s"))
}

fn mebibytes(v: Option<u64>) -> String {
    v.map_or_else(
        || "-".to_string(),
        |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    )
}

fn number(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.1}{unit}"))
}

/// The plain-text report.
pub fn render_text(r: &ScaleReport) -> String {
    let mut out = String::new();
    let rows: Vec<(&str, String)> = vec![
        ("rollouts", r.rollouts.to_string()),
        ("healthy", r.healthy.to_string()),
        ("all healthy (wave 1)", seconds(r.seconds_to_all_healthy)),
        (
            "all updated healthy (wave 2)",
            seconds(r.seconds_to_all_updated_healthy),
        ),
        (
            "controller peak RSS",
            mebibytes(r.controller_peak_rss_bytes),
        ),
        (
            "controller steady RSS",
            mebibytes(r.controller_steady_rss_bytes),
        ),
        ("controller CPU", seconds(r.controller_cpu_seconds)),
        (
            "controller idle CPU",
            number(r.controller_idle_cpu_percent, " % of a core"),
        ),
        ("sandbox CPU", seconds(r.sandbox_cpu_seconds)),
        ("sandbox peak RSS", mebibytes(r.sandbox_peak_rss_bytes)),
        ("reconciles per second", number(r.reconciles_per_second, "")),
        ("step lateness p50", seconds(r.step_lateness_p50_seconds)),
        ("step lateness p99", seconds(r.step_lateness_p99_seconds)),
        ("pauses measured", r.pauses_measured.to_string()),
        (
            "API requests per rollout",
            number(r.api_requests_per_rollout, ""),
        ),
        (
            "duplicate ReplicaSets",
            r.duplicate_replica_sets.to_string(),
        ),
        (
            "completed",
            if r.completed { "yes" } else { "no (timed out)" }.to_string(),
        ),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "{name:<30} {value}");
    }
    let b = &r.api_requests;
    let _ = writeln!(
        out,
        "{:<30} get {} list {} watch {} create {} update {} patch {} delete {} other {}",
        "API requests by verb",
        b.get,
        b.list,
        b.watch,
        b.create,
        b.update,
        b.patch,
        b.delete,
        b.other
    );
    out
}

/// The progress line printed while a wave runs.
pub fn progress_line(wave: u8, healthy: usize, total: usize, elapsed_seconds: f64) -> String {
    format!("wave {wave}: {healthy}/{total} healthy, {elapsed_seconds:.1} s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        assert_eq!(quantile(&[], 0.5), None);
        let s = [0.3, 0.1, 0.2, 0.4];
        assert_eq!(quantile(&s, 0.5), Some(0.2));
        assert_eq!(quantile(&s, 0.99), Some(0.4));
        assert_eq!(quantile(&s, 0.0), Some(0.1));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&hundred, 0.99), Some(99.0));
        assert_eq!(quantile(&hundred, 0.5), Some(50.0));
    }

    #[test]
    fn reconcile_counts_sum_every_series_and_nothing_else() {
        let text = "\
# TYPE rollout_reconcile histogram
rollout_reconcile_bucket{name=\"a\",namespace=\"d\",le=\"0.01\"} 2
rollout_reconcile_sum{name=\"a\",namespace=\"d\"} 0.5
rollout_reconcile_count{name=\"a\",namespace=\"d\"} 3
rollout_reconcile_count{name=\"b\",namespace=\"d\"} 4
rollout_reconcile_counter_other 100
rollout_reconcile_error{name=\"a\",namespace=\"d\"} 1
";
        assert_eq!(reconcile_count(text), Some(7.0));
        assert_eq!(reconcile_count("up 1\n"), None);
    }

    #[test]
    fn text_report_names_every_figure() {
        let r = ScaleReport {
            rollouts: 50,
            healthy: 50,
            controller_peak_rss_bytes: Some(10 * 1024 * 1024),
            seconds_to_all_healthy: Some(1.234),
            completed: true,
            ..ScaleReport::default()
        };
        let text = render_text(&r);
        assert!(
            text.contains("controller peak RSS            10.0 MiB"),
            "{text}"
        );
        assert!(
            text.contains("all healthy (wave 1)           1.23 s"),
            "{text}"
        );
        assert!(text.contains("step lateness p99              -"), "{text}");
        assert!(
            text.contains("completed                      yes"),
            "{text}"
        );
        assert_eq!(
            progress_line(1, 812, 1000, 14.24),
            "wave 1: 812/1000 healthy, 14.2 s"
        );
    }

    #[test]
    fn rounding_keeps_milliseconds() {
        let r = ScaleReport {
            sandbox_cpu_seconds: Some(31.999_999_999_999_996),
            step_lateness_p99_seconds: Some(0.123_456),
            api_requests_per_rollout: Some(91.48),
            ..ScaleReport::default()
        }
        .rounded();
        assert_eq!(r.sandbox_cpu_seconds, Some(32.0));
        assert_eq!(r.step_lateness_p99_seconds, Some(0.123));
        assert_eq!(r.api_requests_per_rollout, Some(91.5));
        assert_eq!(r.seconds_to_all_healthy, None);
    }

    #[test]
    fn json_field_names_are_the_contract() {
        let v = serde_json::to_value(ScaleReport::default()).unwrap();
        for field in [
            "rollouts",
            "healthy",
            "controller_peak_rss_bytes",
            "controller_steady_rss_bytes",
            "controller_cpu_seconds",
            "reconciles_per_second",
            "step_lateness_p50_seconds",
            "step_lateness_p99_seconds",
            "seconds_to_all_healthy",
            "seconds_to_all_updated_healthy",
            "api_requests_per_rollout",
            "duplicate_replica_sets",
        ] {
            assert!(v.get(field).is_some(), "{field} missing from {v}");
        }
    }
}
