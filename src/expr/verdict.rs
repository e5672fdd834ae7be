//! `Verdict` and upstream's `EvaluateResult`: how a measurement's success and failure
//! conditions combine into Successful / Failed / Inconclusive / Error.

use chrono::{DateTime, Utc};

use super::{Condition, MetricValue};
use crate::api::go_quote::go_quote;

/// The outcome of one measurement's conditions. The analysis layer maps it onto the
/// measurement phase (the names are the upstream phase strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The success condition held (or the failure condition did not).
    Successful,
    /// The failure condition held (or the success condition did not).
    Failed,
    /// Neither condition decided.
    Inconclusive,
    /// The conditions could not be evaluated.
    Error,
}

impl Verdict {
    /// The upstream phase string (`Successful`, `Failed`, `Inconclusive`, `Error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Successful => "Successful",
            Verdict::Failed => "Failed",
            Verdict::Inconclusive => "Inconclusive",
            Verdict::Error => "Error",
        }
    }
}

/// Upstream `EvaluateResult(result, metric)`: the verdict, and the error message when it is
/// `Error`. An empty condition string means "not set". `now()` is unavailable; see
/// [`evaluate_result_at`].
pub fn evaluate_result(
    result: &MetricValue,
    success_condition: &str,
    failure_condition: &str,
) -> (Verdict, Option<String>) {
    evaluate(result, success_condition, failure_condition, None)
}

/// [`evaluate_result`] with `now()` bound to `now` (the measurement time).
pub fn evaluate_result_at(
    result: &MetricValue,
    success_condition: &str,
    failure_condition: &str,
    now: DateTime<Utc>,
) -> (Verdict, Option<String>) {
    evaluate(result, success_condition, failure_condition, Some(now))
}

fn evaluate(
    result: &MetricValue,
    success_condition: &str,
    failure_condition: &str,
    now: Option<DateTime<Utc>>,
) -> (Verdict, Option<String>) {
    let has_success = !success_condition.is_empty();
    let has_failure = !failure_condition.is_empty();
    let mut success = false;
    let mut failure = false;
    if has_success {
        match eval_one(result, "successCondition", success_condition, now) {
            Ok(value) => success = value,
            Err(message) => return (Verdict::Error, Some(message)),
        }
    }
    if has_failure {
        match eval_one(result, "failureCondition", failure_condition, now) {
            Ok(value) => failure = value,
            Err(message) => return (Verdict::Error, Some(message)),
        }
    }
    match (has_success, has_failure) {
        // The docs say Inconclusive; the code (which is what users get) says Successful.
        (false, false) => return (Verdict::Successful, None),
        // Without a failure condition, not succeeding is failing (never Inconclusive).
        (true, false) => failure = !success,
        (false, true) => success = !failure,
        (true, true) => {}
    }
    let verdict = if failure {
        Verdict::Failed
    } else if success {
        Verdict::Successful
    } else {
        Verdict::Inconclusive
    };
    (verdict, None)
}

/// One condition, with upstream's error wording.
fn eval_one(
    result: &MetricValue,
    field: &str,
    condition: &str,
    now: Option<DateTime<Utc>>,
) -> Result<bool, String> {
    Condition::compile(condition)
        .and_then(|compiled| compiled.eval(result, now))
        .map_err(|error| {
            let quoted = go_quote(condition);
            if result.is_nil_or_empty() {
                format!(
                    "could not evaluate {field} {quoted}: metric result is nil or empty: no data returned from the metric provider"
                )
            } else {
                format!("could not evaluate {field} {quoted}: {error}")
            }
        })
}
