//! The phase of one metric from its counters and latest measurement (spec §4.6, upstream
//! `assessMetricStatus` and `assessMetricFailureInconclusiveOrError`).

use crate::api::{AnalysisPhase, Metric, MetricResult};

/// Upstream's `DefaultConsecutiveErrorLimit`: the fifth error in a row ends the metric.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i64 = 4;

/// A metric's limits with upstream's defaults applied (int-or-string values read as Go's
/// `IntValue()` does: an unparseable string counts as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Default 0; −1 disables the failure check.
    pub failure: i64,
    /// Default 0.
    pub inconclusive: i64,
    /// Default 4.
    pub consecutive_error: i64,
    /// Default 0 (off).
    pub consecutive_success: i64,
}

impl Limits {
    /// The limits of `metric`.
    pub fn of(metric: &Metric) -> Limits {
        let read = |v: &Option<crate::api::IntOrStr>, default: i64| {
            v.as_ref().map_or(default, |v| v.int_value())
        };
        Limits {
            failure: read(&metric.failure_limit, 0),
            inconclusive: read(&metric.inconclusive_limit, 0),
            consecutive_error: read(
                &metric.consecutive_error_limit,
                DEFAULT_CONSECUTIVE_ERROR_LIMIT,
            ),
            consecutive_success: read(&metric.consecutive_success_limit, 0),
        }
    }
}

/// Upstream's `EffectiveCount`: the number of measurements after which the metric is done.
/// An unset or zero count means 1 without an interval and "unlimited" (`None`) with one.
pub fn effective_count(metric: &Metric) -> Option<i64> {
    let count = metric.count.as_ref().map_or(0, |c| c.int_value());
    if count == 0 {
        let has_interval = metric.interval.as_ref().is_some_and(|i| !i.is_empty());
        if has_interval { None } else { Some(1) }
    } else {
        Some(count)
    }
}

/// Whether the metric has taken all the measurements it asked for.
pub fn count_reached(metric: &Metric, result: &MetricResult) -> bool {
    effective_count(metric).is_some_and(|n| i64::from(result.count) >= n)
}

/// The limit a metric has exceeded, if any, with its message, e.g.
/// `failed (3) > failureLimit (2)`. Checked in upstream's order with later checks
/// overwriting earlier ones, so Error beats Inconclusive beats Failed.
pub fn exceeded_limit(metric: &Metric, result: &MetricResult) -> Option<(AnalysisPhase, String)> {
    let limits = Limits::of(metric);
    let mut verdict = None;
    let failed = i64::from(result.failed);
    if limits.failure >= 0 && failed > limits.failure {
        verdict = Some((
            AnalysisPhase::Failed,
            format!("failed ({failed}) > failureLimit ({})", limits.failure),
        ));
    }
    let inconclusive = i64::from(result.inconclusive);
    if inconclusive > limits.inconclusive {
        verdict = Some((
            AnalysisPhase::Inconclusive,
            format!(
                "inconclusive ({inconclusive}) > inconclusiveLimit ({})",
                limits.inconclusive
            ),
        ));
    }
    let errors = i64::from(result.consecutive_error);
    if errors > limits.consecutive_error {
        verdict = Some((
            AnalysisPhase::Error,
            format!(
                "consecutiveErrors ({errors}) > consecutiveErrorLimit ({})",
                limits.consecutive_error
            ),
        ));
    }
    verdict
}

/// The phase of a metric (spec §4.6). `terminating`: the run was told to stop or another
/// metric already failed, so a metric without a verdict ends Successful.
pub fn assess_metric(metric: &Metric, result: &MetricResult, terminating: bool) -> AnalysisPhase {
    if result.phase.completed() {
        return result.phase.clone();
    }
    let Some(last) = result.measurements.last() else {
        return if terminating {
            AnalysisPhase::Successful
        } else {
            AnalysisPhase::Pending
        };
    };
    if !last.phase.completed() {
        return AnalysisPhase::Running;
    }
    if let Some((phase, _)) = exceeded_limit(metric, result) {
        return phase;
    }
    let limits = Limits::of(metric);
    if limits.consecutive_success > 0
        && i64::from(result.consecutive_success) >= limits.consecutive_success
    {
        return AnalysisPhase::Successful;
    }
    if count_reached(metric, result) {
        let failure_applies = limits.failure >= 0;
        let success_streak_applies = limits.consecutive_success > 0;
        // The count ran out without the success streak: with a failure budget in force the
        // verdict is open (Inconclusive); with only the streak as criterion it failed.
        return match (failure_applies, success_streak_applies) {
            (true, true) => AnalysisPhase::Inconclusive,
            (false, true) => AnalysisPhase::Failed,
            _ => AnalysisPhase::Successful,
        };
    }
    if terminating {
        AnalysisPhase::Successful
    } else {
        AnalysisPhase::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{IntOrStr, Measurement};

    fn finished(phase: AnalysisPhase) -> Measurement {
        Measurement {
            phase,
            ..Measurement::default()
        }
    }

    #[test]
    fn effective_count_table() {
        let mut m = Metric::default();
        assert_eq!(effective_count(&m), Some(1));
        m.interval = Some("1m".into());
        assert_eq!(effective_count(&m), None);
        m.count = Some(IntOrStr::Int(0));
        assert_eq!(effective_count(&m), None);
        m.count = Some(IntOrStr::Str("3".into()));
        assert_eq!(effective_count(&m), Some(3));
        // An unresolvable string counts as 0, as Go's IntValue.
        m.count = Some(IntOrStr::Str("{{args.n}}".into()));
        assert_eq!(effective_count(&m), None);
    }

    #[test]
    fn error_beats_inconclusive_beats_failed() {
        let metric = Metric::default();
        let result = MetricResult {
            failed: 1,
            inconclusive: 1,
            consecutive_error: 5,
            measurements: vec![finished(AnalysisPhase::Error)],
            ..MetricResult::default()
        };
        assert_eq!(
            exceeded_limit(&metric, &result),
            Some((
                AnalysisPhase::Error,
                "consecutiveErrors (5) > consecutiveErrorLimit (4)".to_string()
            ))
        );
        let result = MetricResult {
            failed: 1,
            inconclusive: 1,
            ..result
        };
        let result = MetricResult {
            consecutive_error: 0,
            ..result
        };
        assert_eq!(
            exceeded_limit(&metric, &result).map(|v| v.0),
            Some(AnalysisPhase::Inconclusive)
        );
    }

    #[test]
    fn disabled_failure_limit_never_fails_by_count_of_failures() {
        let metric = Metric {
            failure_limit: Some(IntOrStr::Int(-1)),
            consecutive_success_limit: Some(IntOrStr::Int(2)),
            interval: Some("1m".into()),
            ..Metric::default()
        };
        let result = MetricResult {
            failed: 9,
            count: 9,
            measurements: vec![finished(AnalysisPhase::Failed)],
            ..MetricResult::default()
        };
        assert_eq!(
            assess_metric(&metric, &result, false),
            AnalysisPhase::Running
        );
    }
}
