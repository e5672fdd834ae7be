//! Recording a measurement into its metric result (spec §4.5 step 4: counters, `finishedAt`,
//! secret masking) and trimming measurement history (§4.4: 10 by default, or the
//! `measurementRetention` limit).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{AnalysisPhase, AnalysisRunStatus, Measurement, MetricResult};

use super::args::mask_secrets;

use crate::api::defaults::DEFAULT_MEASUREMENT_HISTORY_LIMIT as DEFAULT_MEASUREMENT_LIMIT;

/// Adds `measurement` to `result` (or replaces the last, in-flight one when `replaces_last`),
/// updating the counters when it is complete and stamping `finishedAt` with `now` when the
/// provider left it unset. Secret values in its message become `*****`.
pub fn record(
    result: &mut MetricResult,
    mut measurement: Measurement,
    replaces_last: bool,
    now: Timestamp,
    secrets: &[String],
) {
    if measurement.phase.completed() {
        if measurement.finished_at.is_none() {
            measurement.finished_at = Some(Time(now));
        }
        match measurement.phase {
            AnalysisPhase::Successful => {
                result.successful += 1;
                result.count += 1;
                result.consecutive_error = 0;
                result.consecutive_success += 1;
            }
            AnalysisPhase::Failed => {
                result.failed += 1;
                result.count += 1;
                result.consecutive_error = 0;
                result.consecutive_success = 0;
            }
            AnalysisPhase::Inconclusive => {
                result.inconclusive += 1;
                result.count += 1;
                result.consecutive_error = 0;
                result.consecutive_success = 0;
            }
            // Errors do not count as measurements: they are retried.
            _ => {
                result.error += 1;
                result.consecutive_error += 1;
                result.consecutive_success = 0;
            }
        }
    }
    measurement.message = mask_secrets(&measurement.message, secrets);
    match result.measurements.last_mut() {
        Some(last) if replaces_last => *last = measurement,
        _ => result.measurements.push(measurement),
    }
}

/// The measurement limit of a metric: its `measurementRetention` limit when positive, else 10.
pub fn measurement_limit(retention: &BTreeMap<String, i32>, metric: &str) -> usize {
    retention
        .get(metric)
        .and_then(|&l| usize::try_from(l).ok())
        .filter(|&l| l > 0)
        .unwrap_or(DEFAULT_MEASUREMENT_LIMIT)
}

/// Keeps the newest measurements of each metric result within its limit and returns the
/// metrics that were trimmed with their limit, so the executor can ask their providers to
/// garbage-collect (the job provider deletes old Jobs).
pub fn trim_measurements(
    status: &mut AnalysisRunStatus,
    retention: &BTreeMap<String, i32>,
) -> Vec<(String, usize)> {
    let mut trimmed = Vec::new();
    for result in &mut status.metric_results {
        let limit = measurement_limit(retention, &result.name);
        let len = result.measurements.len();
        if len > limit {
            result.measurements.drain(..len - limit);
            trimmed.push((result.name.clone(), limit));
        }
    }
    trimmed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(phase: AnalysisPhase) -> Measurement {
        Measurement {
            phase,
            ..Measurement::default()
        }
    }

    #[test]
    fn counters_follow_upstream() {
        let now = Timestamp::UNIX_EPOCH;
        let mut r = MetricResult::default();
        for phase in [
            AnalysisPhase::Successful,
            AnalysisPhase::Successful,
            AnalysisPhase::Error,
            AnalysisPhase::Error,
        ] {
            record(&mut r, m(phase), false, now, &[]);
        }
        assert_eq!(
            (
                r.count,
                r.successful,
                r.error,
                r.consecutive_error,
                r.consecutive_success
            ),
            (2, 2, 2, 2, 0)
        );
        record(&mut r, m(AnalysisPhase::Inconclusive), false, now, &[]);
        record(&mut r, m(AnalysisPhase::Failed), false, now, &[]);
        record(&mut r, m(AnalysisPhase::Successful), false, now, &[]);
        assert_eq!(
            (
                r.count,
                r.failed,
                r.inconclusive,
                r.consecutive_error,
                r.consecutive_success
            ),
            (5, 1, 1, 0, 1)
        );
        assert!(r.measurements.iter().all(|m| m.finished_at.is_some()));
    }

    #[test]
    fn in_flight_measurements_are_replaced_not_counted() {
        let now = Timestamp::UNIX_EPOCH;
        let mut r = MetricResult::default();
        record(&mut r, m(AnalysisPhase::Running), false, now, &[]);
        assert_eq!((r.count, r.measurements.len()), (0, 1));
        assert!(r.measurements[0].finished_at.is_none());
        let mut done = m(AnalysisPhase::Failed);
        done.message = "token abc rejected".into();
        record(&mut r, done, true, now, &["abc".to_string()]);
        assert_eq!((r.count, r.failed, r.measurements.len()), (1, 1, 1));
        assert_eq!(r.measurements[0].message, "token ***** rejected");
    }

    #[test]
    fn retention_trims_oldest() {
        let mut status = AnalysisRunStatus::default();
        let mut a = MetricResult {
            name: "a".into(),
            ..MetricResult::default()
        };
        for i in 0..12 {
            let mut x = m(AnalysisPhase::Successful);
            x.value = i.to_string();
            a.measurements.push(x);
        }
        let mut b = a.clone();
        b.name = "b".into();
        status.metric_results = vec![a, b];
        let retention = BTreeMap::from([("b".to_string(), 3)]);
        let trimmed = trim_measurements(&mut status, &retention);
        assert_eq!(trimmed, vec![("a".to_string(), 10), ("b".to_string(), 3)]);
        assert_eq!(status.metric_results[0].measurements[0].value, "2");
        assert_eq!(status.metric_results[1].measurements.len(), 3);
        assert_eq!(status.metric_results[1].measurements[0].value, "9");
    }
}
