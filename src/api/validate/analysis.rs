//! Metric rules (spec §4.2) and the argument checks of Rollout validation, shared by the
//! linter, the Rollout reference checks and the analysis engine. Building a run spec from
//! templates is `crate::api::run_spec`'s; this module checks what it built:
//! [`validate_metrics`] and [`validate_dry_run_rules`] / [`validate_retention_rules`] (the run
//! fails with `Analysis spec invalid: <error>` when they do), and the stand-in argument rule
//! upstream's validation uses ([`stand_in_args`], [`check_metric_placeholders`]).
//!
//! Messages are upstream's, verbatim (including the `startDelay` wording for `initialDelay`).

use super::RuleViolation;
use std::collections::BTreeSet;

use regex::Regex;

use crate::api::analysis::{Argument, Metric};
use crate::api::common::{DryRun, MeasurementRetention};
use crate::api::duration::{GoDurationError, go_duration_nanos};
use crate::api::int_or_string::IntOrStr;
use crate::api::run_spec::{ArgsError, resolve_metric_args};

/// Prefix upstream puts before metric-rule errors in an AnalysisRun's message.
pub const SPEC_INVALID_PREFIX: &str = "Analysis spec invalid";

/// Go's `time.ParseDuration`, returning nanoseconds or an error that renders with Go's exact
/// text (`time: unknown unit "s-typo" in duration "60s-typo"`), which upstream's messages embed.
pub fn parse_go_duration(input: &str) -> Result<i128, GoDurationError> {
    go_duration_nanos(input).map_err(GoDurationError)
}

/// Why a metric list is invalid. Renders exactly as upstream's `ValidateMetrics` error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetricValidationError {
    /// The list is empty.
    #[error("no metrics specified")]
    NoMetrics,
    /// Two metrics share a name.
    #[error("metrics[{index}]: duplicate name '{name}'")]
    DuplicateName {
        /// Index of the second metric with the name.
        index: usize,
        /// The repeated name.
        name: String,
    },
    /// One metric breaks a rule.
    #[error("metrics[{index}]: {reason}")]
    Metric {
        /// Index of the metric.
        index: usize,
        /// The rule it breaks.
        reason: RuleViolation,
    },
}

/// Go's `intstr.IntValue()` of an optional int-or-string (unset, non-numeric strings and
/// placeholders count as 0, exactly as upstream's validation sees them).
fn int_value(v: Option<&IntOrStr>) -> i64 {
    v.map_or(0, IntOrStr::int_value)
}

/// Upstream's `ValidateMetric` for one metric: the first broken rule, or `Ok`.
///
/// Intervals and initial delays that still hold a `{{...}}` placeholder are not parsed: they
/// are only known once the run resolves its arguments.
pub fn validate_metric(metric: &Metric) -> Result<(), RuleViolation> {
    let count = int_value(metric.count.as_ref());
    let failure_limit = int_value(metric.failure_limit.as_ref());
    let inconclusive_limit = int_value(metric.inconclusive_limit.as_ref());
    let success_limit = int_value(metric.consecutive_success_limit.as_ref());
    if count > 0 {
        if failure_limit >= 0 && count < failure_limit + success_limit {
            return Err(RuleViolation(format!(
                "count ({count}) must be >= failureLimit + consecutiveSuccessLimit ({failure_limit} + {success_limit}) if both >= 0"
            )));
        } else if failure_limit < 0 && count < success_limit {
            return Err(RuleViolation(format!(
                "count ({count}) must be >= consecutiveSuccessLimit ({success_limit}) if failureLimit < 0"
            )));
        }
        if count < inconclusive_limit {
            return Err(RuleViolation(
                "count must be >= inconclusiveLimit".to_string(),
            ));
        }
    }
    let interval = metric.interval.as_ref().map_or("", |d| d.as_str());
    if count > 1 && interval.is_empty() {
        return Err(RuleViolation(
            "interval must be specified when count > 1".to_string(),
        ));
    }
    if !interval.is_empty()
        && !interval.contains("{{")
        && let Err(e) = parse_go_duration(interval)
    {
        return Err(RuleViolation(format!("invalid interval string: {e}")));
    }
    let initial_delay = metric.initial_delay.as_ref().map_or("", |d| d.as_str());
    if !initial_delay.is_empty()
        && !initial_delay.contains("{{")
        && let Err(e) = parse_go_duration(initial_delay)
    {
        return Err(RuleViolation(format!("invalid startDelay string: {e}")));
    }
    if success_limit < 0 {
        return Err(RuleViolation(
            "consecutiveSuccessLimit must be >= 0".to_string(),
        ));
    }
    if failure_limit < -1 {
        return Err(RuleViolation(
            "failureLimit must be >= 0, or -1 to be disabled".to_string(),
        ));
    }
    if failure_limit == -1 && success_limit == 0 {
        return Err(RuleViolation(
            "failureLimit and consecutiveSuccessLimit cannot both be disabled".to_string(),
        ));
    }
    if inconclusive_limit < 0 {
        return Err(RuleViolation("inconclusiveLimit must be >= 0".to_string()));
    }
    if metric.consecutive_error_limit.is_some()
        && int_value(metric.consecutive_error_limit.as_ref()) < 0
    {
        return Err(RuleViolation(
            "consecutiveErrorLimit must be >= 0".to_string(),
        ));
    }
    // Count providers by what the provider block serialises, so providers added to the
    // type later are counted without touching this rule.
    let providers = serde_json::to_value(&metric.provider)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.values().filter(|v| !v.is_null()).count())
        })
        .unwrap_or(0);
    match providers {
        0 => Err(RuleViolation("no provider specified".to_string())),
        1 => Ok(()),
        _ => Err(RuleViolation("multiple providers specified".to_string())),
    }
}

/// Upstream's `ValidateMetrics`: stops at the first problem.
pub fn validate_metrics(metrics: &[Metric]) -> Result<(), MetricValidationError> {
    if metrics.is_empty() {
        return Err(MetricValidationError::NoMetrics);
    }
    let mut names = BTreeSet::new();
    for (index, metric) in metrics.iter().enumerate() {
        if !names.insert(metric.name.as_str()) {
            return Err(MetricValidationError::DuplicateName {
                index,
                name: metric.name.clone(),
            });
        }
        validate_metric(metric)
            .map_err(|reason| MetricValidationError::Metric { index, reason })?;
    }
    Ok(())
}

/// Upstream's `EffectiveCount`: `None` for a metric that runs until terminated.
pub fn effective_count(metric: &Metric) -> Option<IntOrStr> {
    let interval_set = metric.interval.as_ref().is_some_and(|d| !d.is_empty());
    match &metric.count {
        Some(c) if c.int_value() != 0 => Some(c.clone()),
        _ if interval_set => None,
        _ => Some(IntOrStr::Int(1)),
    }
}

/// The value upstream's validation gives every argument that has no literal value (its real
/// value comes from a secret, a field or the caller at run time).
pub const STAND_IN_VALUE: &str = "dummy-value";

/// Upstream's stand-ins for validation: each argument keeps its literal value, or gets
/// [`STAND_IN_VALUE`]; none keeps a `valueFrom`.
pub fn stand_in_args(args: &[Argument]) -> Vec<Argument> {
    args.iter()
        .map(|a| Argument {
            name: a.name.clone(),
            value: Some(
                a.value
                    .clone()
                    .unwrap_or_else(|| STAND_IN_VALUE.to_string()),
            ),
            value_from: None,
        })
        .collect()
}

/// An argument has a value or a valueFrom, never both (the first offender fails).
pub fn check_value_or_value_from(args: &[Argument]) -> Result<(), ArgsError> {
    match args
        .iter()
        .find(|a| a.value.is_some() && a.value_from.is_some())
    {
        Some(a) => Err(ArgsError::BothValueAndValueFrom(a.name.clone())),
        None => Ok(()),
    }
}

/// The placeholders of a template's metrics that name no declared argument, checked the way
/// upstream's Rollout validation does (every declared argument given a stand-in value).
pub fn check_metric_placeholders(metrics: &[Metric], args: &[Argument]) -> Result<(), ArgsError> {
    check_value_or_value_from(args)?;
    let stand_ins = stand_in_args(args);
    for m in metrics {
        resolve_metric_args(m, &stand_ins)?;
    }
    Ok(())
}

fn rules_match(kind: &str, patterns: &[&str], metrics: &[Metric]) -> Result<(), RuleViolation> {
    for (index, pattern) in patterns.iter().enumerate() {
        // Go's regexp.MatchString is unanchored, like `Regex::is_match`.
        let matched = Regex::new(pattern)
            .map(|re| metrics.iter().any(|m| re.is_match(&m.name)))
            .unwrap_or(false);
        if !matched {
            return Err(RuleViolation(format!(
                "{kind}[{index}]: Rule didn't match any metric name(s)"
            )));
        }
    }
    Ok(())
}

/// Every dry-run rule must match at least one metric name (a Go regular expression).
pub fn validate_dry_run_rules(rules: &[DryRun], metrics: &[Metric]) -> Result<(), RuleViolation> {
    let patterns: Vec<&str> = rules.iter().map(|r| r.metric_name.as_str()).collect();
    rules_match("dryRun", &patterns, metrics)
}

/// Every measurement-retention rule must match at least one metric name.
pub fn validate_retention_rules(
    rules: &[MeasurementRetention],
    metrics: &[Metric],
) -> Result<(), RuleViolation> {
    let patterns: Vec<&str> = rules.iter().map(|r| r.metric_name.as_str()).collect();
    rules_match("measurementRetention", &patterns, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-2s"), Ok(-2_000_000_000));
        assert_eq!(
            parse_go_duration("60s-typo").map_err(|e| e.to_string()),
            Err(r#"time: unknown unit "s-typo" in duration "60s-typo""#.to_string())
        );
        assert_eq!(
            parse_go_duration("10").map_err(|e| e.to_string()),
            Err(r#"time: missing unit in duration "10""#.to_string())
        );
        assert_eq!(
            parse_go_duration("1d").map_err(|e| e.to_string()),
            Err(r#"time: unknown unit "d" in duration "1d""#.to_string())
        );
        assert_eq!(
            parse_go_duration("").map_err(|e| e.to_string()),
            Err(r#"time: invalid duration """#.to_string())
        );
        assert_eq!(
            parse_go_duration(".s").map_err(|e| e.to_string()),
            Err(r#"time: invalid duration ".s""#.to_string())
        );
    }
}
