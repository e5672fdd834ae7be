//! `spec.dryRun` and `spec.measurementRetention` rules matched against metric names (spec §4.5
//! step 2): each rule's `metricName` is an unanchored regular expression, and a rule that
//! matches no metric makes the run invalid.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use thiserror::Error;

use crate::api::{DryRun, MeasurementRetention, Metric};

/// A rule that matched no metric; the text follows upstream's, the caller prefixes
/// `Analysis spec invalid: `.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    /// A `dryRun` rule (by index) that matches no metric.
    #[error("dryRun[{0}]: Rule didn't match any metric name(s)")]
    DryRun(usize),
    /// A `measurementRetention` rule (by index) that matches no metric.
    #[error("measurementRetention[{0}]: Rule didn't match any metric name(s)")]
    Retention(usize),
}

/// Whether `pattern` matches anywhere in `name`. An invalid pattern matches nothing, as Go's
/// `regexp.MatchString` (whose error upstream ignores) does.
fn rule_matches(pattern: &str, name: &str) -> bool {
    Regex::new(pattern).is_ok_and(|re| re.is_match(name))
}

/// Names of the metrics that run in dry-run mode.
pub fn dry_run_metrics(
    rules: &[DryRun],
    metrics: &[Metric],
) -> Result<BTreeSet<String>, RuleError> {
    let mut names = BTreeSet::new();
    for (index, rule) in rules.iter().enumerate() {
        let mut matched = false;
        for metric in metrics {
            if rule_matches(&rule.metric_name, &metric.name) {
                names.insert(metric.name.clone());
                matched = true;
            }
        }
        if !matched {
            return Err(RuleError::DryRun(index));
        }
    }
    Ok(names)
}

/// Measurement limits per metric name, from the last rule matching each metric.
pub fn retention_limits(
    rules: &[MeasurementRetention],
    metrics: &[Metric],
) -> Result<BTreeMap<String, i32>, RuleError> {
    let mut limits = BTreeMap::new();
    for (index, rule) in rules.iter().enumerate() {
        let mut matched = false;
        for metric in metrics {
            if rule_matches(&rule.metric_name, &metric.name) {
                limits.insert(metric.name.clone(), rule.limit);
                matched = true;
            }
        }
        if !matched {
            return Err(RuleError::Retention(index));
        }
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str) -> Metric {
        Metric {
            name: name.to_string(),
            ..Metric::default()
        }
    }

    fn dry(pattern: &str) -> DryRun {
        DryRun {
            metric_name: pattern.to_string(),
        }
    }

    #[test]
    fn dry_run_rules_are_unanchored_regexes() {
        let metrics = [
            metric("success-rate"),
            metric("latency"),
            metric("error-rate"),
        ];
        let names = dry_run_metrics(&[dry("rate$")], &metrics).unwrap();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["error-rate".to_string(), "success-rate".to_string()]
        );
        let all = dry_run_metrics(&[dry(".*")], &metrics).unwrap();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn a_rule_matching_nothing_is_an_error() {
        let metrics = [metric("latency")];
        let err = dry_run_metrics(&[dry("latency"), dry("nope")], &metrics).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dryRun[1]: Rule didn't match any metric name(s)"
        );
        // An invalid regex matches nothing.
        assert!(dry_run_metrics(&[dry("(")], &metrics).is_err());
    }

    #[test]
    fn retention_takes_the_last_matching_rule() {
        let metrics = [metric("a"), metric("b")];
        let rules = [
            MeasurementRetention {
                metric_name: ".*".to_string(),
                limit: 20,
            },
            MeasurementRetention {
                metric_name: "^b$".to_string(),
                limit: 3,
            },
        ];
        let limits = retention_limits(&rules, &metrics).unwrap();
        assert_eq!(limits.get("a"), Some(&20));
        assert_eq!(limits.get("b"), Some(&3));
        let err = retention_limits(
            &[MeasurementRetention {
                metric_name: "c".to_string(),
                limit: 1,
            }],
            &metrics,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "measurementRetention[0]: Rule didn't match any metric name(s)"
        );
    }
}
