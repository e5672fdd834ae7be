//! CRD generation: the committed `manifests/crds.yaml` matches the generator, and the schemas
//! have the shape upstream's CRDs have and the API server accepts (structural schemas).

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::sync::OnceLock;

use davy::api::crd::{crd_values, crds_yaml};
use serde_json::Value;

/// Generating the schemas takes seconds in a debug build: do it once per test binary.
fn generated_values() -> &'static [Value] {
    static VALUES: OnceLock<Vec<Value>> = OnceLock::new();
    VALUES.get_or_init(|| crd_values().unwrap())
}

fn generated_yaml() -> &'static str {
    static YAML: OnceLock<String> = OnceLock::new();
    YAML.get_or_init(|| crds_yaml().unwrap())
}

#[test]
fn committed_crds_match_the_generator() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests/crds.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated_yaml(),
        "manifests/crds.yaml is out of date with the API types; regenerate it with:\n    cargo run -- crds > manifests/crds.yaml"
    );
}

#[test]
fn yaml_output_parses_back_to_the_generated_crds() {
    let docs: Vec<Value> = serde_saphyr::from_multiple(generated_yaml()).unwrap();
    assert_eq!(docs, generated_values());
    // The typed form (what the sandbox registers) decodes from the same values.
    for doc in docs {
        let typed: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
            serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), doc);
    }
}

fn crd(kind: &str) -> Value {
    generated_values()
        .iter()
        .find(|c| c["spec"]["names"]["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no CRD for {kind}"))
}

fn schema(kind: &str) -> Value {
    crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Follows a dotted path of property names; `[]` steps into array items.
fn at<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut node = schema;
    for part in path.split('.') {
        node = if part == "[]" {
            &node["items"]
        } else {
            &node["properties"][part]
        };
        assert!(!node.is_null(), "no schema at {path} (stuck at {part})");
    }
    node
}

#[test]
fn names_scopes_subresources_and_columns_match_upstream() {
    let cases = [
        ("Rollout", "rollouts", "ro", "Namespaced"),
        ("AnalysisTemplate", "analysistemplates", "at", "Namespaced"),
        (
            "ClusterAnalysisTemplate",
            "clusteranalysistemplates",
            "cat",
            "Cluster",
        ),
        ("AnalysisRun", "analysisruns", "ar", "Namespaced"),
        ("Experiment", "experiments", "exp", "Namespaced"),
    ];
    for (kind, plural, short, scope) in cases {
        let c = crd(kind);
        assert_eq!(c["metadata"]["name"], format!("{plural}.argoproj.io"));
        assert_eq!(c["spec"]["group"], "argoproj.io");
        assert_eq!(c["spec"]["names"]["plural"], plural);
        assert_eq!(c["spec"]["names"]["shortNames"], serde_json::json!([short]));
        assert_eq!(c["spec"]["scope"], scope, "{kind}");
        let v = &c["spec"]["versions"][0];
        assert_eq!(v["name"], "v1alpha1");
        assert_eq!(v["served"], true);
        assert_eq!(v["storage"], true);
        if kind != "Rollout" {
            assert_eq!(
                v["subresources"],
                serde_json::json!({}),
                "{kind} has no subresources"
            );
        }
    }
    let ro = crd("Rollout");
    let v = &ro["spec"]["versions"][0];
    assert_eq!(
        v["subresources"],
        serde_json::json!({
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.HPAReplicas",
                "labelSelectorPath": ".status.selector"
            }
        })
    );
    let columns = |c: &Value| -> Vec<(String, String)> {
        c["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|col| {
                (
                    col["name"].as_str().unwrap().into(),
                    col["jsonPath"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        columns(&ro),
        pairs(&[
            ("Desired", ".spec.replicas"),
            ("Current", ".status.replicas"),
            ("Up-to-date", ".status.updatedReplicas"),
            ("Available", ".status.availableReplicas"),
            ("Age", ".metadata.creationTimestamp"),
        ])
    );
    assert_eq!(
        columns(&crd("AnalysisRun")),
        pairs(&[
            ("Status", ".status.phase"),
            ("Age", ".metadata.creationTimestamp")
        ])
    );
    assert_eq!(
        at(&schema("Rollout"), "spec.selector")["x-kubernetes-validations"],
        serde_json::json!([{"rule": "self == oldSelf", "message": ".spec.selector is immutable"}])
    );
    // As upstream: a blue-green Rollout without `activeService` is refused by the API server.
    assert_eq!(
        at(&schema("Rollout"), "spec.strategy.blueGreen")["required"],
        serde_json::json!(["activeService"])
    );
}

#[test]
fn int_or_string_and_free_form_fields_have_upstream_schemas() {
    let int_or_string = serde_json::json!({
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": true
    });
    let ro = schema("Rollout");
    let at_ = schema("AnalysisTemplate");
    let metric = at(&at_, "spec.metrics.[]");
    let int_or_string_paths = [
        at(&ro, "spec.strategy.canary.maxSurge"),
        at(&ro, "spec.strategy.canary.maxUnavailable"),
        at(&ro, "spec.strategy.blueGreen.maxUnavailable"),
        at(&ro, "spec.strategy.canary.steps.[].pause.duration"),
        at(metric, "count"),
        at(metric, "failureLimit"),
        at(metric, "inconclusiveLimit"),
        at(metric, "consecutiveErrorLimit"),
        at(metric, "consecutiveSuccessLimit"),
        at(metric, "provider.cloudWatch.metricDataQueries.[].period"),
        at(
            metric,
            "provider.cloudWatch.metricDataQueries.[].metricStat.period",
        ),
    ];
    for node in int_or_string_paths {
        assert_eq!(node, &int_or_string);
    }
    let preserve =
        serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    for node in [
        at(&ro, "spec.strategy.canary.trafficRouting.plugins"),
        at(&ro, "spec.strategy.canary.steps.[].plugin.config"),
        at(&ro, "status.canary.stepPluginStatuses.[].status"),
        at(metric, "provider.plugin"),
        at(metric, "provider.web.jsonBody"),
    ] {
        assert_eq!(node, &preserve);
    }
    assert_eq!(at(&ro, "status.HPAReplicas")["type"], "integer");
    assert_eq!(at(&ro, "status.observedGeneration")["type"], "string");
}

/// Checks the rules of a structural schema (Kubernetes "Specifying a structural schema") on
/// every node, and that nothing the API server would write back (defaults) is present.
fn check_structural(node: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        problems.push(format!("{path}: not an object"));
        return;
    };
    for forbidden in [
        "$ref",
        "default",
        "nullable",
        "description",
        "allOf",
        "oneOf",
        "not",
        "definitions",
    ] {
        if obj.contains_key(forbidden) {
            problems.push(format!("{path}: has {forbidden}"));
        }
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !int_or_string && !preserve {
        problems.push(format!("{path}: no type"));
    }
    let int_or_string_any_of = serde_json::json!([{"type": "integer"}, {"type": "string"}]);
    if let Some(any_of) = obj.get("anyOf")
        && (!int_or_string || any_of != &int_or_string_any_of)
    {
        problems.push(format!("{path}: anyOf other than int-or-string"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!("{path}: both properties and additionalProperties"));
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("array") if !obj.contains_key("items") => {
            problems.push(format!("{path}: array without items"))
        }
        _ => {}
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            check_structural(v, &format!("{path}.{k}"), problems);
        }
    }
    if let Some(items) = obj.get("items") {
        check_structural(items, &format!("{path}[]"), problems);
    }
    match obj.get("additionalProperties") {
        Some(Value::Object(_)) => check_structural(
            &obj["additionalProperties"],
            &format!("{path}{{}}"),
            problems,
        ),
        Some(other) => problems.push(format!("{path}: additionalProperties {other}")),
        None => {}
    }
}

#[test]
fn schemas_are_structural() {
    let mut problems = Vec::new();
    let mut nodes = 0usize;
    for c in generated_values() {
        let kind = c["spec"]["names"]["kind"].as_str().unwrap().to_string();
        let s = &c["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        check_structural(s, &kind, &mut problems);
        nodes += serde_json::to_string(s)
            .unwrap()
            .matches("\"type\"")
            .count();
    }
    println!("structural check: 5 CRDs, ~{nodes} typed schema nodes");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
