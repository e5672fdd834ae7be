//! Building the AnalysisRuns a Rollout creates (spec §4.3, §1.4): arguments resolved against the
//! Rollout and its ReplicaSets, templates (namespaced, cluster, nested) flattened into one run
//! spec, upstream's name, labels, annotations and ownerReference.
//!
//! The template flattening and argument merging are `api::validate::analysis`'s, shared with
//! lint and `davy analyze`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::analysis::templates::{self, TemplateKey, TemplateNotFound};
use crate::api::consts::{label, pod_template_hash_value};
use crate::api::field_ref::{FieldRefError, json_field, metadata_field};
use crate::api::run_spec::{ArgsError, new_run_spec_from_templates};
use crate::api::{
    AnalysisRun, AnalysisRunArgument, AnalysisRunSpec, AnalysisTemplateSpec, Argument, DryRun,
    MeasurementRetention, Rollout, RolloutAnalysis,
};

/// Where a Rollout's arguments read their values from.
pub struct ArgSources<'a> {
    /// The Rollout (for `fieldRef`).
    pub rollout: &'a Rollout,
    /// Hash of the stable ReplicaSet (`podTemplateHashValue: Stable`).
    pub stable_hash: &'a str,
    /// Hash of the new ReplicaSet (`podTemplateHashValue: Latest`).
    pub latest_hash: &'a str,
}

/// Upstream `BuildArgumentsForRolloutAnalysisRun`: every argument gets a literal value.
/// A `fieldRef` into `metadata` must resolve; any other path resolves to `""` when absent.
pub fn build_args(
    args: &[AnalysisRunArgument],
    sources: &ArgSources<'_>,
) -> Result<Vec<Argument>, FieldRefError> {
    let mut json: Option<Value> = None;
    args.iter()
        .map(|arg| {
            let value = match arg.value_from.as_ref() {
                None => arg.value.clone().unwrap_or_default(),
                Some(from) => {
                    if let Some(which) = from.pod_template_hash_value.as_deref() {
                        match which {
                            pod_template_hash_value::STABLE => sources.stable_hash.to_string(),
                            pod_template_hash_value::LATEST => sources.latest_hash.to_string(),
                            _ => String::new(),
                        }
                    } else if let Some(field) = from.field_ref.as_ref() {
                        if field.field_path.starts_with("metadata") {
                            metadata_field(sources.rollout, &field.field_path)?
                        } else {
                            // Encoded once, only when a non-metadata path asks for it.
                            let root = json.get_or_insert_with(|| {
                                serde_json::to_value(sources.rollout).unwrap_or(Value::Null)
                            });
                            json_field(root, &field.field_path).unwrap_or_default()
                        }
                    } else {
                        String::new()
                    }
                }
            };
            Ok(Argument {
                name: arg.name.clone(),
                value: Some(value),
                value_from: None,
            })
        })
        .collect()
}

/// The specs of the referenced templates and everything they nest (each once), split into
/// namespaced and cluster-scoped in discovery order; upstream's error for the first missing one.
pub fn resolve_templates<'a>(
    analysis: &RolloutAnalysis,
    namespaced: &'a [crate::api::AnalysisTemplate],
    cluster: &'a [crate::api::ClusterAnalysisTemplate],
) -> Result<(Vec<&'a AnalysisTemplateSpec>, Vec<&'a AnalysisTemplateSpec>), TemplateNotFound> {
    let named = |name: Option<&String>, key: &TemplateKey| name == Some(&key.name);
    let reached = templates::walk(analysis.templates.as_deref().unwrap_or(&[]), |key| {
        if key.cluster {
            cluster
                .iter()
                .find(|t| named(t.metadata.name.as_ref(), key))
                .map(|t| &*t.spec)
        } else {
            namespaced
                .iter()
                .find(|t| named(t.metadata.name.as_ref(), key))
                .map(|t| &t.spec)
        }
    });
    if let Some(key) = reached.missing.first() {
        return Err(TemplateNotFound(key.clone()));
    }
    Ok((reached.namespaced, reached.cluster))
}

/// Upstream `NewAnalysisRunFromTemplates` (spec §4.3), shared with lint and `davy analyze`:
/// metrics flattened (namespaced first, unique names), template args merged, the caller's values
/// laid over the declared args, every arg resolved, dry-run and retention rules caller first.
/// The error is upstream's text, which the Rollout shows.
pub fn run_spec(
    namespaced: &[&AnalysisTemplateSpec],
    cluster: &[&AnalysisTemplateSpec],
    caller_args: &[Argument],
    dry_run: &[DryRun],
    retention: &[MeasurementRetention],
) -> Result<AnalysisRunSpec, ArgsError> {
    new_run_spec_from_templates(namespaced, cluster, caller_args, dry_run, retention)
}

/// Upstream `IsSemanticallyEqual`: runs are the same when metrics, args, dry-run and retention
/// rules are (termination and status do not matter).
pub fn semantically_equal(left: &AnalysisRunSpec, right: &AnalysisRunSpec) -> bool {
    left.metrics == right.metrics
        && left.args == right.args
        && left.dry_run == right.dry_run
        && left.measurement_retention == right.measurement_retention
}

/// `<rollout>-<hash>-<revision>[-<infix>]`.
pub fn run_base_name(rollout: &str, pod_hash: &str, revision: &str, infix: Option<&str>) -> String {
    let mut parts = vec![rollout, pod_hash, revision];
    if let Some(infix) = infix {
        parts.push(infix);
    }
    parts.join("-")
}

/// The `n`th name tried after collisions: the base, then `<base>.1`, `<base>.2`, ...
pub fn collision_name(base: &str, n: usize) -> String {
    if n == 0 {
        base.to_string()
    } else {
        format!("{base}.{n}")
    }
}

/// Labels of a created run: the type labels and the Rollout's controller instance-id (so the
/// run is reconciled by the same `--instance-id`), then `analysisRunMetadata.labels`, then the
/// Rollout's selector labels (which win, as upstream applies them last).
pub fn run_labels(
    base: BTreeMap<String, String>,
    analysis: &RolloutAnalysis,
    rollout: &Rollout,
) -> BTreeMap<String, String> {
    let mut labels = base;
    if let Some(id) = rollout
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(label::CONTROLLER_INSTANCE_ID))
        .filter(|id| !id.is_empty())
    {
        labels.insert(label::CONTROLLER_INSTANCE_ID.to_string(), id.clone());
    }
    if let Some(extra) = analysis
        .analysis_run_metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
    {
        labels.extend(extra.clone());
    }
    if let Some(selector) = rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
    {
        labels.extend(selector.clone());
    }
    labels
}

/// `rollouts-pod-template-hash`, `rollout-type` and (step runs) `step-index`.
pub fn type_labels(
    pod_hash: &str,
    rollout_type: &str,
    step_index: Option<i32>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (label::POD_TEMPLATE_HASH.to_string(), pod_hash.to_string()),
        (label::ROLLOUT_TYPE.to_string(), rollout_type.to_string()),
    ]);
    if let Some(index) = step_index {
        labels.insert(label::STEP_INDEX.to_string(), index.to_string());
    }
    labels
}

/// The `step-index` label of a run.
pub fn step_index_label(run: &AnalysisRun) -> Option<i32> {
    run.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(label::STEP_INDEX))
        .and_then(|text| text.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        AnalysisTemplate, ArgumentValueFrom, ClusterAnalysisTemplate, FieldRef, Metric,
    };
    use serde_json::json;

    fn rollout() -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "ns", "uid": "u-1",
                         "labels": {"team": "a"}, "annotations": {"owner": "me"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "demo"}},
                     "template": {"metadata": {"labels": {"app": "demo", "version": "v2"}}}}
        }))
        .expect("valid Rollout")
    }

    fn template(name: &str, metrics: &[&str], args: serde_json::Value) -> AnalysisTemplate {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name},
            "spec": {"metrics": metrics.iter().map(|m| json!({"name": m, "provider": {"web": {"url": "http://x"}}})).collect::<Vec<_>>(),
                     "args": args}
        }))
        .unwrap_or_else(|_| AnalysisTemplate::new(name, AnalysisTemplateSpec::default()))
    }

    fn arg(name: &str, from: ArgumentValueFrom) -> AnalysisRunArgument {
        AnalysisRunArgument {
            name: name.into(),
            value: None,
            value_from: Some(from),
        }
    }

    #[test]
    fn args_resolve_hashes_and_field_refs() {
        let ro = rollout();
        let sources = ArgSources {
            rollout: &ro,
            stable_hash: "s1",
            latest_hash: "l2",
        };
        let field = |path: &str| ArgumentValueFrom {
            field_ref: Some(FieldRef {
                field_path: path.into(),
            }),
            ..Default::default()
        };
        let args = vec![
            AnalysisRunArgument {
                name: "plain".into(),
                value: Some("v".into()),
                value_from: None,
            },
            arg(
                "stable",
                ArgumentValueFrom {
                    pod_template_hash_value: Some("Stable".into()),
                    ..Default::default()
                },
            ),
            arg(
                "latest",
                ArgumentValueFrom {
                    pod_template_hash_value: Some("Latest".into()),
                    ..Default::default()
                },
            ),
            arg("name", field("metadata.name")),
            arg("team", field("metadata.labels['team']")),
            arg("version", field("spec.template.metadata.labels.version")),
            arg("replicas", field("spec.replicas")),
            arg("missing", field("status.alb.canaryTargetGroup.name")),
        ];
        let built = build_args(&args, &sources).unwrap_or_default();
        let values: Vec<(&str, &str)> = built
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref().unwrap_or("?")))
            .collect();
        assert_eq!(
            values,
            vec![
                ("plain", "v"),
                ("stable", "s1"),
                ("latest", "l2"),
                ("name", "demo"),
                ("team", "a"),
                ("version", "v2"),
                ("replicas", "3"),
                ("missing", "")
            ]
        );
        let bad = build_args(&[arg("x", field("metadata.bogus"))], &sources);
        assert_eq!(
            bad.unwrap_err().to_string(),
            "unsupported fieldPath: metadata.bogus"
        );
    }

    #[test]
    fn templates_flatten_with_nesting_and_cluster_scope() {
        let mut parent = template("parent", &["a"], json!([{"name": "service"}]));
        parent.spec.templates = Some(vec![crate::api::AnalysisTemplateRef {
            template_name: Some("shared".into()),
            cluster_scope: Some(true),
        }]);
        let shared: ClusterAnalysisTemplate = ClusterAnalysisTemplate::new(
            "shared",
            template("shared", &["b"], json!([])).spec.into(),
        );
        let analysis = RolloutAnalysis {
            templates: Some(vec![crate::api::AnalysisTemplateRef {
                template_name: Some("parent".into()),
                cluster_scope: None,
            }]),
            ..RolloutAnalysis::default()
        };
        let namespaced = [parent];
        let cluster = [shared];
        let (found, found_cluster) =
            resolve_templates(&analysis, &namespaced, &cluster).unwrap_or_default();
        let caller = [
            Argument {
                name: "service".into(),
                value: Some("svc".into()),
                value_from: None,
            },
            Argument {
                name: "ignored".into(),
                value: Some("x".into()),
                value_from: None,
            },
        ];
        let spec = run_spec(&found, &found_cluster, &caller, &[], &[]).unwrap_or_default();
        let metric_names: Vec<&str> = spec.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(metric_names, vec!["a", "b"]);
        assert_eq!(
            spec.args,
            Some(vec![Argument {
                name: "service".into(),
                value: Some("svc".into()),
                value_from: None
            }])
        );
        let missing = RolloutAnalysis {
            templates: Some(vec![crate::api::AnalysisTemplateRef {
                template_name: Some("nope".into()),
                cluster_scope: None,
            }]),
            ..RolloutAnalysis::default()
        };
        assert_eq!(
            resolve_templates(&missing, &namespaced, &cluster)
                .err()
                .map(|e| e.to_string()),
            Some("analysistemplate.argoproj.io \"nope\" not found".to_string())
        );
    }

    #[test]
    fn run_spec_errors_are_upstreams() {
        let a = template("a", &["m"], json!([{"name": "x"}]));
        let b = template("b", &["m"], json!([]));
        assert_eq!(
            run_spec(&[&a.spec, &b.spec], &[], &[], &[], &[])
                .err()
                .map(|e| e.to_string()),
            Some("two metrics have the same name 'm'".to_string())
        );
        assert_eq!(
            run_spec(&[&a.spec], &[], &[], &[], &[])
                .err()
                .map(|e| e.to_string()),
            Some("args.x was not resolved".to_string())
        );
        let equal = run_spec(&[&b.spec], &[], &[], &[], &[]).unwrap_or_default();
        let mut other = equal.clone();
        other.terminate = Some(true);
        assert!(semantically_equal(&equal, &other));
        other.metrics.push(Metric::default());
        assert!(!semantically_equal(&equal, &other));
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(run_base_name("demo", "abc", "3", Some("2")), "demo-abc-3-2");
        assert_eq!(run_base_name("demo", "abc", "3", None), "demo-abc-3");
        assert_eq!(collision_name("demo-abc-3-2", 0), "demo-abc-3-2");
        assert_eq!(collision_name("demo-abc-3-2", 2), "demo-abc-3-2.2");
        let analysis = RolloutAnalysis {
            analysis_run_metadata: Some(crate::api::PodTemplateMetadata {
                labels: Some(BTreeMap::from([
                    ("app".to_string(), "other".to_string()),
                    ("extra".to_string(), "1".to_string()),
                ])),
                annotations: None,
            }),
            ..RolloutAnalysis::default()
        };
        let labels = run_labels(type_labels("abc", "Step", Some(2)), &analysis, &rollout());
        let got: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("app", "demo"),
                ("extra", "1"),
                ("rollout-type", "Step"),
                ("rollouts-pod-template-hash", "abc"),
                ("step-index", "2")
            ]
        );
    }
}
