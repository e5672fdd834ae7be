//! Building one AnalysisRun spec from (Cluster)AnalysisTemplates and a caller's arguments
//! (spec §4.3), shared by the Rollout core, the Rollout reference checks, lint and
//! `davy analyze`. The API, in the order upstream applies it when a Rollout creates a run:
//! 1. [`flatten_templates`]: combine template specs (namespaced first) into one
//!    metric/arg/dryRun/retention set; duplicate metric names or conflicting arg values fail.
//! 2. [`merge_args`]: lay the caller's args over the template's (only declared args are
//!    taken), then every arg must have a value or valueFrom (`args.<name> was not resolved`).
//! 3. [`merge_dry_run`] / [`merge_measurement_retention`]: caller rules first, no duplicates.
//!    [`new_run_spec_from_templates`] does 1–3 in one call.
//! 4. [`resolve_metric_args`]: substitute `{{args.x}}` placeholders (after secrets are read).
//!
//! Messages are upstream's, verbatim.

use std::collections::BTreeSet;

use crate::api::analysis::{AnalysisRunSpec, AnalysisTemplateSpec, Argument, Metric};
use crate::api::common::{DryRun, MeasurementRetention};

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

#[cfg(test)]
mod tests {
    use super::*;

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
