//! `create analysisrun`: the pure part — an AnalysisRun object built from an AnalysisTemplate or
//! ClusterAnalysisTemplate object, as upstream's `NewAnalysisRunFromUnstructured` builds it.

use serde_json::{Map, Value, json};

use crate::api::Argument;
use crate::api::consts::label;
use crate::api::run_spec::merge_args;

use super::super::kube::CliError;

/// Reads `-a NAME=VALUE` flags (split at the first `=`).
pub fn parse_arguments(flags: &[String]) -> Result<Vec<Argument>, CliError> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((name, value)) => Ok(Argument {
                name: name.to_string(),
                value: Some(value.to_string()),
                value_from: None,
            }),
            None => Err(CliError::Usage(
                "arguments must be in the form NAME=VALUE".into(),
            )),
        })
        .collect()
}

/// What names the new run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunName {
    /// `--name`.
    Name(String),
    /// `--generate-name`, or `<template>-` by default.
    Generate(String),
}

/// The run's name: `--name`, else `--generate-name`, else `<template name>-` generated.
pub fn run_name(name: Option<&str>, generate: Option<&str>, template_name: &str) -> RunName {
    match (
        name.filter(|n| !n.is_empty()),
        generate.filter(|g| !g.is_empty()),
    ) {
        (Some(n), _) => RunName::Name(n.to_string()),
        (None, Some(g)) => RunName::Generate(g.to_string()),
        (None, None) => RunName::Generate(format!("{template_name}-")),
    }
}

/// Metadata the API server owns; dropped so the create is accepted as a new object.
const SERVER_FIELDS: [&str; 7] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
];

/// The AnalysisRun for `template` (an AnalysisTemplate or ClusterAnalysisTemplate object):
/// kind AnalysisRun, the template's labels and annotations, its spec (nested template references
/// dropped; the run schema has none), and its args merged with the caller's values — every
/// declared arg must end with a value (`args.x was not resolved`); a template without args takes
/// the caller's as given. `--instance-id` replaces the labels with the instance label, as
/// upstream does.
pub fn analysis_run_from_template(
    template: &Value,
    args: &[Argument],
    name: &RunName,
    namespace: &str,
    instance_id: Option<&str>,
) -> Result<Value, CliError> {
    let mut run = template.clone();
    let declared: Option<Vec<Argument>> = match template.pointer("/spec/args") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|e| CliError::Usage(format!("template spec.args: {e}")))?,
        ),
    };
    let merged = match declared {
        None => args.to_vec(),
        Some(declared) => {
            merge_args(args, &declared).map_err(|e| CliError::Usage(e.to_string()))?
        }
    };
    let obj = run
        .as_object_mut()
        .ok_or_else(|| CliError::Usage("the template is not an object".into()))?;
    obj.insert("apiVersion".into(), json!("argoproj.io/v1alpha1"));
    obj.insert("kind".into(), json!("AnalysisRun"));
    obj.remove("status");
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        for field in SERVER_FIELDS {
            meta.remove(field);
        }
        meta.remove("name");
        meta.remove("generateName");
        match name {
            RunName::Name(n) => meta.insert("name".into(), json!(n)),
            RunName::Generate(g) => meta.insert("generateName".into(), json!(g)),
        };
        meta.insert("namespace".into(), json!(namespace));
        if let Some(id) = instance_id.filter(|i| !i.is_empty()) {
            meta.insert(
                "labels".into(),
                json!({ label::CONTROLLER_INSTANCE_ID: id }),
            );
        }
    }
    let spec = obj
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(spec) = spec.as_object_mut() {
        spec.remove("templates");
        if !merged.is_empty() {
            let args = serde_json::to_value(&merged)
                .map_err(|e| CliError::Usage(format!("encoding args: {e}")))?;
            spec.insert("args".into(), args);
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "success-rate", "namespace": "team", "uid": "u", "resourceVersion": "7",
                         "labels": {"team": "a"}},
            "spec": {
                "args": [{"name": "service"}, {"name": "threshold", "value": "0.95"}],
                "metrics": [{"name": "m", "provider": {"web": {"url": "http://x/{{args.service}}"}}}]
            }
        })
    }

    #[test]
    fn run_takes_the_template_spec_and_merged_args() {
        let args = parse_arguments(&["service=web".into(), "ignored=1".into()]).unwrap();
        let run = analysis_run_from_template(
            &template(),
            &args,
            &run_name(None, None, "success-rate"),
            "default",
            None,
        )
        .unwrap();
        assert_eq!(
            run,
            json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisRun",
                "metadata": {"labels": {"team": "a"}, "generateName": "success-rate-", "namespace": "default"},
                "spec": {
                    "args": [{"name": "service", "value": "web"}, {"name": "threshold", "value": "0.95"}],
                    "metrics": [{"name": "m", "provider": {"web": {"url": "http://x/{{args.service}}"}}}]
                }
            })
        );
    }

    #[test]
    fn missing_values_and_bad_flags_are_refused() {
        let err = analysis_run_from_template(
            &template(),
            &[],
            &RunName::Name("x".into()),
            "default",
            None,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "args.service was not resolved");
        assert_eq!(
            parse_arguments(&["novalue".into()])
                .unwrap_err()
                .to_string(),
            "arguments must be in the form NAME=VALUE"
        );
    }

    #[test]
    fn name_flags_and_instance_id() {
        assert_eq!(
            run_name(Some("n"), Some("g-"), "t"),
            RunName::Name("n".into())
        );
        assert_eq!(
            run_name(None, Some("g-"), "t"),
            RunName::Generate("g-".into())
        );
        let args = parse_arguments(&["service=web".into()]).unwrap();
        let run = analysis_run_from_template(
            &template(),
            &args,
            &RunName::Name("fixed".into()),
            "ns",
            Some("blue"),
        )
        .unwrap();
        assert_eq!(run["metadata"]["name"], "fixed");
        assert_eq!(
            run["metadata"]["labels"],
            json!({"argo-rollouts.argoproj.io/controller-instance-id": "blue"})
        );
    }
}
