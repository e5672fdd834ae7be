//! The phase of one metric from its counters and latest measurement (spec §4.6, upstream
//! `assessMetricStatus` and `assessMetricFailureInconclusiveOrError`).

use crate::api::{AnalysisPhase, EffectiveCount, Metric, MetricResult};

/// The number of measurements after which the metric is done (`None`: until terminated).
pub fn effective_count(metric: &Metric) -> Option<i64> {
    match metric.effective_count() {
        EffectiveCount::Limited(n) => Some(n),
        EffectiveCount::Unlimited => None,
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
    let mut verdict = None;
    let (failed, failure_limit) = (i64::from(result.failed), metric.failure_limit());
    if failure_limit >= 0 && failed > failure_limit {
        verdict = Some((
            AnalysisPhase::Failed,
            format!("failed ({failed}) > failureLimit ({failure_limit})"),
        ));
    }
    let (inconclusive, inconclusive_limit) =
        (i64::from(result.inconclusive), metric.inconclusive_limit());
    if inconclusive > inconclusive_limit {
        verdict = Some((
            AnalysisPhase::Inconclusive,
            format!("inconclusive ({inconclusive}) > inconclusiveLimit ({inconclusive_limit})"),
        ));
    }
    let (errors, error_limit) = (
        i64::from(result.consecutive_error),
        metric.consecutive_error_limit(),
    );
    if errors > error_limit {
        verdict = Some((
            AnalysisPhase::Error,
            format!("consecutiveErrors ({errors}) > consecutiveErrorLimit ({error_limit})"),
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
    let success_limit = metric.consecutive_success_limit();
    if success_limit > 0 && i64::from(result.consecutive_success) >= success_limit {
        return AnalysisPhase::Successful;
    }
    if count_reached(metric, result) {
        let failure_applies = metric.failure_limit() >= 0;
        let success_streak_applies = success_limit > 0;
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
