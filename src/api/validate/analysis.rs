//! Metric rules (spec §4.2) and argument merging (spec §4.3), shared by the linter, the
//! Rollout reference checks and the analysis engine.
//!
//! The API, in the order upstream applies it when a Rollout creates an AnalysisRun:
//! 1. [`flatten_templates`]: combine (Cluster)AnalysisTemplate specs (namespaced first) into
//!    one metric/arg/dryRun/retention set; duplicate metric names or conflicting arg values fail.
//! 2. [`merge_args`]: lay the caller's args over the template's (only declared args are
//!    taken), then every arg must have a value or valueFrom (`args.<name> was not resolved`).
//! 3. [`merge_dry_run`] / [`merge_measurement_retention`]: caller rules first, no duplicates.
//!    [`new_run_spec_from_templates`] does 1–3 in one call.
//! 4. [`resolve_metric_args`]: substitute `{{args.x}}` placeholders (after secrets are read).
//! 5. [`validate_metrics`] and [`validate_dry_run_rules`] / [`validate_retention_rules`]: the
//!    run fails with `Analysis spec invalid: <error>` when they do.
//!
//! Messages are upstream's, verbatim (including the `startDelay` wording for `initialDelay`).

use std::collections::BTreeSet;

use regex::Regex;

use crate::api::analysis::{AnalysisRunSpec, AnalysisTemplateSpec, Argument, Metric};
use crate::api::common::{DryRun, MeasurementRetention};
use crate::api::duration::{DurationError, go_duration_nanos};
use crate::api::int_or_string::IntOrStr;

use crate::api::go_quote::go_quote;

/// Prefix upstream puts before metric-rule errors in an AnalysisRun's message.
pub const SPEC_INVALID_PREFIX: &str = "Analysis spec invalid";

/// Go's `time.ParseDuration`, returning nanoseconds or Go's exact error text
/// (`time: unknown unit "s-typo" in duration "60s-typo"`), which upstream's messages embed.
pub fn parse_go_duration(input: &str) -> Result<i128, String> {
    go_duration_nanos(input).map_err(|error| match error {
        DurationError::MissingUnit { .. } => {
            format!("time: missing unit in duration {}", go_quote(input))
        }
        DurationError::UnknownUnit { unit, .. } => format!(
            "time: unknown unit {} in duration {}",
            go_quote(&unit),
            go_quote(input)
        ),
        _ => format!("time: invalid duration {}", go_quote(input)),
    })
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
        /// Upstream's text for the rule.
        reason: String,
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
pub fn validate_metric(metric: &Metric) -> Result<(), String> {
    let count = int_value(metric.count.as_ref());
    let failure_limit = int_value(metric.failure_limit.as_ref());
    let inconclusive_limit = int_value(metric.inconclusive_limit.as_ref());
    let success_limit = int_value(metric.consecutive_success_limit.as_ref());
    if count > 0 {
        if failure_limit >= 0 && count < failure_limit + success_limit {
            return Err(format!(
                "count ({count}) must be >= failureLimit + consecutiveSuccessLimit ({failure_limit} + {success_limit}) if both >= 0"
            ));
        } else if failure_limit < 0 && count < success_limit {
            return Err(format!(
                "count ({count}) must be >= consecutiveSuccessLimit ({success_limit}) if failureLimit < 0"
            ));
        }
        if count < inconclusive_limit {
            return Err("count must be >= inconclusiveLimit".to_string());
        }
    }
    let interval = metric.interval.as_ref().map_or("", |d| d.as_str());
    if count > 1 && interval.is_empty() {
        return Err("interval must be specified when count > 1".to_string());
    }
    if !interval.is_empty()
        && !interval.contains("{{")
        && let Err(e) = parse_go_duration(interval)
    {
        return Err(format!("invalid interval string: {e}"));
    }
    let initial_delay = metric.initial_delay.as_ref().map_or("", |d| d.as_str());
    if !initial_delay.is_empty()
        && !initial_delay.contains("{{")
        && let Err(e) = parse_go_duration(initial_delay)
    {
        return Err(format!("invalid startDelay string: {e}"));
    }
    if success_limit < 0 {
        return Err("consecutiveSuccessLimit must be >= 0".to_string());
    }
    if failure_limit < -1 {
        return Err("failureLimit must be >= 0, or -1 to be disabled".to_string());
    }
    if failure_limit == -1 && success_limit == 0 {
        return Err("failureLimit and consecutiveSuccessLimit cannot both be disabled".to_string());
    }
    if inconclusive_limit < 0 {
        return Err("inconclusiveLimit must be >= 0".to_string());
    }
    if metric.consecutive_error_limit.is_some()
        && int_value(metric.consecutive_error_limit.as_ref()) < 0
    {
        return Err("consecutiveErrorLimit must be >= 0".to_string());
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
        0 => Err("no provider specified".to_string()),
        1 => Ok(()),
        _ => Err("multiple providers specified".to_string()),
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

/// Why arguments or templates cannot be combined into a run. Texts are upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// A template argument got neither a value nor a valueFrom.
    #[error("args.{0} was not resolved")]
    NotResolved(String),
    /// Two templates define a metric with the same name.
    #[error("two metrics have the same name '{0}'")]
    DuplicateMetric(String),
    /// Two templates give one argument different values.
    #[error(
        "Argument `{name}` specified multiple times with different values: '{first}', '{second}'"
    )]
    ConflictingArgument {
        /// The argument.
        name: String,
        /// The first value seen.
        first: String,
        /// The conflicting value.
        second: String,
    },
    /// Two dry-run rules name the same metric pattern.
    #[error("two Dry-Run metric rules have the same name '{0}'")]
    DuplicateDryRun(String),
    /// Two retention rules name the same metric pattern.
    #[error("two Measurement Retention metric rules have the same name '{0}'")]
    DuplicateRetention(String),
    /// A `{{...}}` placeholder names no known argument (the tag is shown as written).
    #[error("failed to resolve {{{{{0}}}}}")]
    UnresolvedPlaceholder(String),
    /// A `{{` without its closing `}}`.
    #[error("Cannot find end tag=\"}}}}\" in the template={template:?} starting from {rest:?}")]
    UnterminatedPlaceholder {
        /// The text searched.
        template: String,
        /// The text from the opening braces on.
        rest: String,
    },
    /// An argument has no value at substitution time.
    #[error("argument \"{0}\" was not supplied")]
    NotSupplied(String),
    /// A template argument has both forms.
    #[error("arg '{0}' has both Value and ValueFrom fields")]
    BothValueAndValueFrom(String),
    /// The metric could not be re-read after substitution.
    #[error("{0}")]
    Decode(String),
}

/// The templates' combined content (upstream's `FlattenTemplates`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlattenedTemplate {
    /// All metrics, namespaced templates first.
    pub metrics: Vec<Metric>,
    /// Arguments, deduplicated by name.
    pub args: Vec<Argument>,
    /// Dry-run rules.
    pub dry_run: Vec<DryRun>,
    /// Measurement retention rules.
    pub measurement_retention: Vec<MeasurementRetention>,
}

fn check_unique<'a>(
    names: impl Iterator<Item = &'a str>,
    err: impl Fn(String) -> ArgsError,
) -> Result<(), ArgsError> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(err(n.to_string()));
        }
    }
    Ok(())
}

/// Upstream's `FlattenTemplates`: `templates` (namespaced) then `cluster_templates`.
pub fn flatten_templates(
    templates: &[&AnalysisTemplateSpec],
    cluster_templates: &[&AnalysisTemplateSpec],
) -> Result<FlattenedTemplate, ArgsError> {
    let all: Vec<&AnalysisTemplateSpec> =
        templates.iter().chain(cluster_templates).copied().collect();
    let metrics: Vec<Metric> = all.iter().flat_map(|t| t.metrics.iter().cloned()).collect();
    check_unique(
        metrics.iter().map(|m| m.name.as_str()),
        ArgsError::DuplicateMetric,
    )?;
    let dry_run: Vec<DryRun> = all
        .iter()
        .flat_map(|t| t.dry_run.iter().flatten().cloned())
        .collect();
    check_unique(
        dry_run.iter().map(|d| d.metric_name.as_str()),
        ArgsError::DuplicateDryRun,
    )?;
    let measurement_retention: Vec<MeasurementRetention> = all
        .iter()
        .flat_map(|t| t.measurement_retention.iter().flatten().cloned())
        .collect();
    check_unique(
        measurement_retention.iter().map(|d| d.metric_name.as_str()),
        ArgsError::DuplicateRetention,
    )?;
    let mut args: Vec<Argument> = Vec::new();
    for arg in all.iter().flat_map(|t| t.args.iter().flatten()) {
        match args.iter_mut().find(|a| a.name == arg.name) {
            Some(prev) => {
                if let (Some(p), Some(n)) = (&prev.value, &arg.value)
                    && p != n
                {
                    return Err(ArgsError::ConflictingArgument {
                        name: prev.name.clone(),
                        first: p.clone(),
                        second: n.clone(),
                    });
                }
                // A value already set is never replaced by an unset one.
                if prev.value.is_none() {
                    *prev = arg.clone();
                }
            }
            None => args.push(arg.clone()),
        }
    }
    Ok(FlattenedTemplate {
        metrics,
        args,
        dry_run,
        measurement_retention,
    })
}

/// Upstream's `ResolveArgs`: every argument must have a value or a valueFrom.
pub fn resolve_args(args: &[Argument]) -> Result<(), ArgsError> {
    match args
        .iter()
        .find(|a| a.value.is_none() && a.value_from.is_none())
    {
        Some(a) => Err(ArgsError::NotResolved(a.name.clone())),
        None => Ok(()),
    }
}

/// Upstream's `MergeArgs`: the template's arguments with the caller's values laid over them
/// (a caller value wins, else a caller valueFrom); caller arguments the template does not
/// declare are dropped. Fails when an argument stays without value and valueFrom.
pub fn merge_args(
    incoming: &[Argument],
    template_args: &[Argument],
) -> Result<Vec<Argument>, ArgsError> {
    let mut merged = template_args.to_vec();
    for arg in incoming {
        if let Some(target) = merged.iter_mut().find(|a| a.name == arg.name) {
            if arg.value.is_some() {
                target.value = arg.value.clone();
            } else if arg.value_from.is_some() {
                target.value_from = arg.value_from.clone();
            }
        }
    }
    resolve_args(&merged)?;
    Ok(merged)
}

/// Caller dry-run rules first, then the template's; names must be unique.
pub fn merge_dry_run(caller: &[DryRun], template: &[DryRun]) -> Result<Vec<DryRun>, ArgsError> {
    let all: Vec<DryRun> = caller.iter().chain(template).cloned().collect();
    check_unique(
        all.iter().map(|d| d.metric_name.as_str()),
        ArgsError::DuplicateDryRun,
    )?;
    Ok(all)
}

/// Caller retention rules first, then the template's; names must be unique.
pub fn merge_measurement_retention(
    caller: &[MeasurementRetention],
    template: &[MeasurementRetention],
) -> Result<Vec<MeasurementRetention>, ArgsError> {
    let all: Vec<MeasurementRetention> = caller.iter().chain(template).cloned().collect();
    check_unique(
        all.iter().map(|d| d.metric_name.as_str()),
        ArgsError::DuplicateRetention,
    )?;
    Ok(all)
}

/// Upstream's `NewAnalysisRunFromTemplates` without the object metadata: the spec of the run
/// a caller (Rollout step, background analysis, `create analysisrun`) would create.
pub fn new_run_spec_from_templates(
    templates: &[&AnalysisTemplateSpec],
    cluster_templates: &[&AnalysisTemplateSpec],
    args: &[Argument],
    dry_run: &[DryRun],
    measurement_retention: &[MeasurementRetention],
) -> Result<AnalysisRunSpec, ArgsError> {
    let flat = flatten_templates(templates, cluster_templates)?;
    let args = merge_args(args, &flat.args)?;
    let dry_run = merge_dry_run(dry_run, &flat.dry_run)?;
    let measurement_retention =
        merge_measurement_retention(measurement_retention, &flat.measurement_retention)?;
    Ok(AnalysisRunSpec {
        metrics: flat.metrics,
        args: (!args.is_empty()).then_some(args),
        dry_run: (!dry_run.is_empty()).then_some(dry_run),
        measurement_retention: (!measurement_retention.is_empty()).then_some(measurement_retention),
        ..AnalysisRunSpec::default()
    })
}

/// The `{{tag}}` occurrences of `text`, as written (untrimmed), or the unterminated rest.
pub fn placeholder_tags(text: &str) -> Result<Vec<&str>, ArgsError> {
    let mut tags = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ArgsError::UnterminatedPlaceholder {
                template: text.to_string(),
                rest: rest[start..].to_string(),
            });
        };
        tags.push(&after[..end]);
        rest = &after[end + 2..];
    }
    Ok(tags)
}

/// Upstream's `ResolveMetricArgs`: substitutes `{{args.<name>}}` in every string of the metric
/// (on its JSON encoding, each value escaped as a JSON string body). Every argument must have a
/// value by now (secret-backed ones are filled in by the caller).
pub fn resolve_metric_args(metric: &Metric, args: &[Argument]) -> Result<Metric, ArgsError> {
    let values = crate::api::args::values(args);
    crate::api::args::resolve_metric(metric, &values).map_err(from_render_error)
}

/// The shared renderer's errors in this module's terms (same upstream texts).
fn from_render_error(err: crate::api::args::ArgsError) -> ArgsError {
    use crate::api::args::ArgsError as Render;
    match err {
        Render::Unclosed { template, rest } => {
            ArgsError::UnterminatedPlaceholder { template, rest }
        }
        Render::Unresolved { tag } => ArgsError::UnresolvedPlaceholder(tag),
        Render::NotSupplied { name } => ArgsError::NotSupplied(name),
        Render::Decode(text) => ArgsError::Decode(text),
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

fn rules_match(kind: &str, patterns: &[&str], metrics: &[Metric]) -> Result<(), String> {
    for (index, pattern) in patterns.iter().enumerate() {
        // Go's regexp.MatchString is unanchored, like `Regex::is_match`.
        let matched = Regex::new(pattern)
            .map(|re| metrics.iter().any(|m| re.is_match(&m.name)))
            .unwrap_or(false);
        if !matched {
            return Err(format!(
                "{kind}[{index}]: Rule didn't match any metric name(s)"
            ));
        }
    }
    Ok(())
}

/// Every dry-run rule must match at least one metric name (a Go regular expression).
pub fn validate_dry_run_rules(rules: &[DryRun], metrics: &[Metric]) -> Result<(), String> {
    let patterns: Vec<&str> = rules.iter().map(|r| r.metric_name.as_str()).collect();
    rules_match("dryRun", &patterns, metrics)
}

/// Every measurement-retention rule must match at least one metric name.
pub fn validate_retention_rules(
    rules: &[MeasurementRetention],
    metrics: &[Metric],
) -> Result<(), String> {
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
            parse_go_duration("60s-typo"),
            Err(r#"time: unknown unit "s-typo" in duration "60s-typo""#.to_string())
        );
        assert_eq!(
            parse_go_duration("10"),
            Err(r#"time: missing unit in duration "10""#.to_string())
        );
        assert_eq!(
            parse_go_duration("1d"),
            Err(r#"time: unknown unit "d" in duration "1d""#.to_string())
        );
        assert_eq!(
            parse_go_duration(""),
            Err(r#"time: invalid duration """#.to_string())
        );
        assert_eq!(
            parse_go_duration(".s"),
            Err(r#"time: invalid duration ".s""#.to_string())
        );
    }

    #[test]
    fn placeholders_are_substituted_and_unknown_ones_reported() {
        let tags = placeholder_tags("a {{args.x}} b {{ args.y }}").unwrap();
        assert_eq!(tags, vec!["args.x", " args.y "]);
        let x = [crate::api::args::ArgValue {
            name: "x",
            value: Some("1"),
        }];
        let out = crate::api::args::render("a {{ args.x }} b", &x, false).unwrap();
        assert_eq!(out, "a 1 b");
        let err = crate::api::args::render("{{args.a}} {{args.b}}", &[], false).unwrap_err();
        assert_eq!(err.to_string(), "failed to resolve {{args.b}}");
        assert!(matches!(
            placeholder_tags("x {{args.a"),
            Err(ArgsError::UnterminatedPlaceholder { .. })
        ));
    }
}
