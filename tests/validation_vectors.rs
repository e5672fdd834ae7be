//! Upstream's validation tests as data (`vectors/validation.yaml`: 86 Rollout cases, 17 metric
//! cases), then our own fixtures: at least one per rule, each asserting the exact message.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use davy::api::analysis::{AnalysisTemplate, Argument, Metric};
use davy::api::canary::CanaryStep;
use davy::api::rollout::{AntiAffinity, Rollout};
use davy::api::run_spec::{
    flatten_templates, merge_args, new_run_spec_from_templates, resolve_metric_args,
};
use davy::api::validate::analysis::validate_metrics;
use davy::api::validate::canary::{
    has_multiple_steps_type, invalid_max_surge_max_unavailable, validate_anti_affinity,
    validate_canary,
};
use davy::api::validate::{
    ErrorList, FieldPath, References, invalid_spec_message, validate_blue_green, validate_rollout,
    validate_rollout_references, validate_rollout_strategy,
};
use serde_json::{Value, json};

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("fixture YAML")
}

fn rollout_from(value: &Value) -> Result<Rollout, String> {
    let mut v = value.clone();
    if v.get("metadata").is_none() {
        v["metadata"] = json!({});
    }
    serde_json::from_value(v).map_err(|e| format!("decode: {e}"))
}

/// Runs the validator the case names, as upstream's test calls it.
fn run_case(case: &Value) -> Result<ErrorList, String> {
    let function = case["function"].as_str().unwrap_or("");
    let name = function.split(' ').next().unwrap_or("");
    if name == "ValidateRolloutStrategyAntiAffinity" {
        let aa: AntiAffinity =
            serde_json::from_value(case["antiAffinity"].clone()).map_err(|e| e.to_string())?;
        return Ok(validate_anti_affinity(
            Some(&aa),
            &FieldPath::new("antiAffinity"),
        ));
    }
    if name == "hasMultipleStepsType" {
        let step: CanaryStep =
            serde_json::from_value(case["step"].clone()).map_err(|e| e.to_string())?;
        return Ok(has_multiple_steps_type(&step, &FieldPath::new("")));
    }
    let ro = rollout_from(&case["rollout"])?;
    let canary = || {
        ro.spec
            .strategy
            .canary
            .as_ref()
            .ok_or("no canary strategy".to_string())
    };
    Ok(match name {
        "ValidateRollout" => validate_rollout(&ro),
        "ValidateRolloutStrategy" => validate_rollout_strategy(&ro, &FieldPath::new("")),
        "ValidateRolloutStrategyBlueGreen" => {
            let bg = ro.spec.strategy.blue_green.as_ref().ok_or("no blueGreen")?;
            validate_blue_green(&ro, bg, &FieldPath::new("spec.strategy.blueGreen"))
        }
        "ValidateRolloutStrategyCanary" => validate_canary(&ro, canary()?, &FieldPath::new("")),
        "invalidMaxSurgeMaxUnavailable" => {
            invalid_max_surge_max_unavailable(canary()?, &FieldPath::new(""))
        }
        other => return Err(format!("unknown function {other}")),
    })
}

fn check_case(case: &Value) -> Result<(), String> {
    let errs = run_case(case)?;
    let exp = &case["expected"];
    let shown = || {
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" | ")
    };
    if exp["valid"] == json!(true) && !errs.is_empty() {
        return Err(format!("expected valid, got {}", shown()));
    }
    if let Some(n) = exp["error_count"].as_u64()
        && errs.len() as u64 != n
    {
        return Err(format!("expected {n} errors, got {}", shown()));
    }
    if let Some(list) = exp["errors"].as_array() {
        let details: Vec<&str> = errs.iter().map(|e| e.detail.as_str()).collect();
        let want: Vec<&str> = list.iter().filter_map(|e| e["detail"].as_str()).collect();
        if details != want {
            return Err(format!("expected details {want:?}, got {details:?}"));
        }
    }
    let first = &exp["first_error"];
    if first.is_object() {
        let Some(e) = errs.first() else {
            return Err("expected an error, got none".to_string());
        };
        if let Some(d) = first["detail"].as_str()
            && e.detail != d
        {
            return Err(format!(
                "first detail: expected {d:?}, got {:?}",
                e.to_string()
            ));
        }
        if let Some(f) = first["field"].as_str()
            && e.field.as_str() != f
        {
            return Err(format!(
                "first field: expected {f:?}, got {:?}",
                e.field.as_str()
            ));
        }
        if let Some(s) = first["string"].as_str()
            && e.to_string() != s
        {
            return Err(format!(
                "first error: expected {s:?}, got {:?}",
                e.to_string()
            ));
        }
    }
    Ok(())
}

fn check_metric_case(case: &Value) -> Result<(), String> {
    let metrics: Vec<Metric> =
        serde_json::from_value(case["metrics"].clone()).map_err(|e| e.to_string())?;
    let result = validate_metrics(&metrics).map_err(|e| e.to_string());
    let exp = &case["expected"];
    if exp["valid"] == json!(true) {
        return result.map_err(|e| format!("expected valid, got {e}"));
    }
    let Err(got) = result else {
        return Err("expected an error, got none".to_string());
    };
    if let Some(want) = exp["error"].as_str()
        && got != want
    {
        return Err(format!("expected {want:?}, got {got:?}"));
    }
    if let Some(re) = exp["error_regex"].as_str() {
        let re = regex::Regex::new(re).map_err(|e| e.to_string())?;
        if !re.is_match(&got) {
            return Err(format!("{got:?} does not match {re}"));
        }
    }
    Ok(())
}

#[test]
fn validation_vectors() {
    let Some(dir) = common::conformance_dir() else {
        return;
    };
    let text =
        std::fs::read_to_string(dir.join("vectors/validation.yaml")).expect("validation.yaml");
    let doc = yaml(&text);
    let mut failures = Vec::new();
    let cases = doc["cases"].as_array().expect("cases");
    for case in cases {
        if let Err(e) = check_case(case) {
            failures.push(format!("{}: {e}", case["name"].as_str().unwrap_or("?")));
        }
    }
    let metric_cases = doc["metrics_validation"]
        .as_array()
        .expect("metrics_validation");
    for case in metric_cases {
        if let Err(e) = check_metric_case(case) {
            failures.push(format!(
                "metrics {}: {e}",
                case["name"].as_str().unwrap_or("?")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        (cases.len(), metric_cases.len()),
        (86, 17),
        "vector counts changed"
    );
    println!(
        "validation vectors: {} rollout cases, {} metric cases passed",
        cases.len(),
        metric_cases.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Our own fixtures: a valid base Rollout, a JSON merge patch per case, the exact first error.

const BASE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: demo}
spec:
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers: [{name: app, image: demo:1}]
  strategy:
    canary:
      canaryService: demo-canary
      stableService: demo-stable
      steps: [{setWeight: 20}, {pause: {}}]
"#;

fn patched(patch: &str) -> Rollout {
    let mut v = yaml(BASE);
    json_patch::merge(&mut v, &yaml(patch));
    rollout_from(&v).expect("fixture decodes")
}

fn first_static_error(patch: &str) -> String {
    let ro = patched(patch);
    let errs = validate_rollout(&ro);
    errs.first()
        .map_or("<valid>".to_string(), |e| invalid_spec_message("demo", e))
}

#[test]
fn base_fixture_is_valid() {
    assert_eq!(validate_rollout(&patched("{}")), ErrorList::new());
}

#[test]
fn static_rule_fixtures() {
    let p = "The Rollout \"demo\" is invalid: ";
    let cases: &[(&str, &str, &str)] = &[
        (
            "1 replicas",
            "spec: {replicas: -1}",
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "2 missing selector",
            "spec: {selector: null}",
            "spec.selector: Required value: Rollout has missing field '.spec.selector'",
        ),
        (
            "2 empty selector",
            "spec: {selector: {matchLabels: null}}",
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
        ),
        (
            "2 bad operator",
            "spec: {selector: {matchExpressions: [{key: app, operator: Is, values: [demo]}]}}",
            "spec.selector.matchExpressions[0].operator: Invalid value: \"Is\": not a valid selector operator",
        ),
        (
            "3 workloadRef with template",
            "spec: {workloadRef: {apiVersion: apps/v1, kind: Deployment, name: d}}",
            "spec.template: Internal error: template must be empty for workload reference rollout",
        ),
        (
            "4 selector mismatch",
            "spec: {template: {metadata: {labels: {app: other}}}}",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
        ),
        (
            "4 no containers",
            "spec: {template: {spec: {containers: []}}}",
            "spec.template.spec.containers: Required value",
        ),
        (
            "4 container name",
            "spec: {template: {spec: {containers: [{name: App, image: x}]}}}",
            "spec.template.spec.containers[0].name: Invalid value: \"App\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        (
            "4 duplicate container",
            "spec: {template: {spec: {containers: [{name: a, image: x}, {name: a, image: w}]}}}",
            "spec.template.spec.containers[1].name: Duplicate value: \"a\"",
        ),
        (
            "4 image",
            "spec: {template: {spec: {containers: [{name: a}]}}}",
            "spec.template.spec.containers[0].image: Required value",
        ),
        (
            "4 restartPolicy",
            "spec: {template: {spec: {restartPolicy: Never}}}",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        ),
        (
            "4 activeDeadlineSeconds",
            "spec: {template: {spec: {activeDeadlineSeconds: 5}}}",
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
        ),
        (
            "4 label value",
            "spec: {selector: {matchLabels: {app: null, x: z}}, template: {metadata: {labels: {app: null, x: z, bad: \"-v\"}}}}",
            "spec.template.labels: Invalid value: \"-v\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            "5 minReadySeconds",
            "spec: {minReadySeconds: -1}",
            "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "5 revisionHistoryLimit",
            "spec: {revisionHistoryLimit: -1}",
            "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "5 progressDeadline",
            "spec: {progressDeadlineSeconds: 30, minReadySeconds: 30}",
            "spec.progressDeadlineSeconds: Invalid value: 30: must be greater than minReadySeconds",
        ),
        (
            "6 no strategy",
            "spec: {strategy: {canary: null}}",
            "spec.strategy.strategy: Required value: Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'",
        ),
        (
            "6 both",
            "spec: {strategy: {blueGreen: {activeService: a}}}",
            "spec.strategy.strategy: Invalid value: \"blueGreen: true canary: true\": Multiple Strategies can not be listed",
        ),
        (
            "7 same services",
            "spec: {strategy: {canary: null, blueGreen: {activeService: a, previewService: a}}}",
            "spec.strategy.activeService: Invalid value: \"a\": This rollout uses the same service for the active and preview services, but two different services are required.",
        ),
        (
            // Upstream's own rule: "" equals an absent previewService.
            "7 no services",
            "spec: {strategy: {canary: null, blueGreen: {previewService: null}}}",
            "spec.strategy.activeService: Invalid value: \"\": This rollout uses the same service for the active and preview services, but two different services are required.",
        ),
        (
            // The API server's words for the field upstream's CRD requires.
            "7 empty activeService",
            "spec: {strategy: {canary: null, blueGreen: {activeService: \"\", previewService: p}}}",
            "spec.strategy.blueGreen.activeService: Required value",
        ),
        (
            "7 revision limit",
            "spec: {revisionHistoryLimit: 2, strategy: {canary: null, blueGreen: {activeService: a, scaleDownDelayRevisionLimit: 3}}}",
            "spec.strategy.scaleDownDelayRevisionLimit: Invalid value: 3: This rollout's revision history limit can not be smaller than the rollout's scale down limit",
        ),
        (
            "8 maxSurge zero",
            "spec: {strategy: {canary: {maxSurge: \"0%\", maxUnavailable: 0}}}",
            "spec.strategy.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: MaxSurge and MaxUnavailable both can not be zero",
        ),
        (
            "8 same services",
            "spec: {strategy: {canary: {canaryService: demo-stable}}}",
            "spec.strategy.stableService: Invalid value: \"demo-stable\": This rollout uses the same service for the stable and canary services, but two different services are required.",
        ),
        (
            "9 ping-pong router",
            "spec: {strategy: {canary: {pingPong: {pingService: a, pongService: b}, trafficRouting: {nginx: {stableIngress: i}}}}}",
            "spec.strategy.trafficRouting.alb: Invalid value: \"null\": Ping-pong feature works with the ALB, Istio, and plugin-based traffic routers only",
        ),
        (
            "10 services required",
            "spec: {strategy: {canary: {canaryService: null, trafficRouting: {smi: {}}}}}",
            "spec.strategy.canaryService: Invalid value: \"\": Canary service and Stable service must to be set to use Traffic Routing",
        ),
        (
            "11 scaleDownDelay",
            "spec: {strategy: {canary: {scaleDownDelaySeconds: 5}}}",
            "spec.strategy.scaleDownDelaySeconds: Invalid value: 5: Canary scaleDownDelaySeconds can only be used with traffic routing",
        ),
        (
            "11 maxTrafficWeight",
            "spec: {strategy: {canary: {trafficRouting: {smi: {}, maxTrafficWeight: 1000}}}}",
            "spec.strategy.trafficRouting.maxTrafficWeight: Invalid value: 1000: Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins",
        ),
        (
            "12 empty step",
            "spec: {strategy: {canary: {steps: [{}]}}}",
            "spec.strategy.steps[0]: Invalid value: \"step.Experiment: true step.Pause: true step.SetWeight: true step.Analysis: true step.SetCanaryScale: true step.SetHeaderRoute: true step.SetMirrorRoutes: true\": Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause",
        ),
        (
            "12 two kinds",
            "spec: {strategy: {canary: {steps: [{setWeight: 5, pause: {}}]}}}",
            "spec.strategy.steps[0]: Invalid value: \"step.Experiment: false step.Pause: true step.SetWeight: true step.Analysis: false\": Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause",
        ),
        (
            "12 setWeight",
            "spec: {strategy: {canary: {steps: [{setWeight: 120}]}}}",
            "spec.strategy.steps[0].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100",
        ),
        (
            "12 setWeight over maxTrafficWeight",
            "spec: {strategy: {canary: {trafficRouting: {nginx: {stableIngress: i}, maxTrafficWeight: 10}, steps: [{setWeight: 20}]}}}",
            "spec.strategy.steps[0].setWeight: Invalid value: 20: SetWeight needs to be between 0 and 10",
        ),
        (
            "12 pause 1d",
            "spec: {strategy: {canary: {steps: [{pause: {duration: 1d}}]}}}",
            "spec.strategy.steps[0].pause.duration: Invalid value: -1: Duration needs to be greater than 0",
        ),
        (
            "12 setCanaryScale",
            "spec: {strategy: {canary: {steps: [{setCanaryScale: {replicas: 1}}]}}}",
            "spec.strategy.trafficRouting: Required value: SetCanaryScale requires TrafficRouting to be set",
        ),
        (
            "13 header route router",
            "spec: {strategy: {canary: {trafficRouting: {nginx: {stableIngress: i}}, steps: [{setHeaderRoute: {name: h}}]}}}",
            "spec.strategy.steps[0].setHeaderRoute: Invalid value: {\"name\":\"h\"}: SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix",
        ),
        (
            "13 header match",
            "spec: {strategy: {canary: {trafficRouting: {istio: {virtualService: {name: v}}, managedRoutes: [{name: h}]}, steps: [{setHeaderRoute: {name: h, match: [{headerName: a, headerValue: {exact: x, prefix: p}}]}}]}}}",
            "spec.strategy.steps[0].setHeaderRoute.match[0]: Invalid value: v1alpha1.StringMatch{Exact:\"x\", Prefix:\"p\", Regex:\"\"}: StringMatch match value must have exactly one of the following: exact, regex, prefix",
        ),
        (
            "14 mirror route router",
            "spec: {strategy: {canary: {steps: [{setMirrorRoute: {name: m}}]}}}",
            "spec.strategy.steps[0].setMirrorRoute: Invalid value: {\"name\":\"m\"}: SetMirrorRoute requires TrafficRouting, supports Istio and Plugins",
        ),
        (
            "15 managedRoutes missing",
            "spec: {strategy: {canary: {trafficRouting: {istio: {virtualService: {name: v}}}, steps: [{setMirrorRoute: {name: m}}]}}}",
            "spec.strategy.trafficRouting.managedRoutes: Required value: Rollout has missing field 'spec.strategy.canary.trafficRouting.managedRoutes'",
        ),
        (
            "15 route not listed",
            "spec: {strategy: {canary: {trafficRouting: {istio: {virtualService: {name: v}}, managedRoutes: [{name: x}]}, steps: [{setMirrorRoute: {name: m}}]}}}",
            "spec.strategy.steps[0].setMirrorRoute: Invalid value: \"m\": Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes",
        ),
        (
            "16 experiment weight",
            "spec: {strategy: {canary: {steps: [{experiment: {templates: [{name: t, specRef: canary, weight: 5}]}}]}}}",
            "spec.strategy.steps[0].experiment.templates[0].weight: Invalid value: 5: Experiment template weight cannot be set unless TrafficRouting is enabled",
        ),
        (
            "17 fieldRef",
            "spec: {strategy: {canary: {steps: [{analysis: {templates: [{templateName: t}], args: [{name: a, valueFrom: {fieldRef: {fieldPath: metadata.nope}}}]}}]}}}",
            "spec.strategy.steps[0].analyses: Invalid value: [{\"name\":\"a\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.nope\"}}}]: Analyses arguments must refer to valid object metadata supported by downwardAPI",
        ),
        (
            "18 anti-affinity",
            "spec: {strategy: {canary: {antiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: {weight: 0}}}}}",
            "spec.strategy.antiAffinity.weight: Invalid value: 0: AntiAffinity weight must be between 1-100",
        ),
    ];
    let mut failures = Vec::new();
    for (rule, patch, want) in cases {
        let got = first_static_error(patch);
        let want = format!("{p}{want}");
        if got != want {
            failures.push(format!("rule {rule}:\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("static rule fixtures: {} passed", cases.len());
}

fn refs_from(docs: &str) -> References {
    let mut refs = References::default();
    for text in docs.split("\n---\n").filter(|t| !t.trim().is_empty()) {
        let v = yaml(text);
        match v["kind"].as_str() {
            Some("Service") => refs.add_service(serde_json::from_value(v).expect("service")),
            Some("Ingress") => refs.add_ingress(v),
            Some("VirtualService") => refs.add_virtual_service(v),
            Some("AnalysisTemplate") => {
                refs.add_analysis_template(serde_json::from_value(v).expect("template"))
            }
            Some(k) => panic!("unexpected kind {k}"),
            None => panic!("no kind"),
        }
    }
    refs.know_kinds_present();
    refs
}

const SERVICES: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: demo-stable}\nspec: {selector: {app: demo}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: demo-canary}\nspec: {selector: {app: demo}}\n";

fn reference_errors(patch: &str, docs: &str) -> Vec<String> {
    let ro = patched(patch);
    assert_eq!(
        validate_rollout(&ro),
        ErrorList::new(),
        "fixture must pass the static rules"
    );
    validate_rollout_references(&ro, &refs_from(docs))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn reference_rule_fixtures() {
    let tmpl = |name: &str, body: &str| {
        format!(
            "---\napiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: {name}}}\nspec: {body}\n"
        )
    };
    let ing = |svc: &str| {
        format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: ing}}\nspec: {{rules: [{{http: {{paths: [{{path: /, backend: {{service: {{name: {svc}, port: {{number: 80}}}}}}}}]}}}}]}}\n"
        )
    };
    let vs = |dests: &str| {
        format!(
            "---\napiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {{name: vs}}\nspec: {{http: [{{name: primary, route: [{dests}]}}]}}\n"
        )
    };
    let nginx = "spec: {strategy: {canary: {trafficRouting: {nginx: {stableIngress: ing}}}}}";
    let istio = "spec: {strategy: {canary: {trafficRouting: {istio: {virtualService: {name: vs, routes: [primary]}}}}}}";
    let step = |extra: &str| {
        format!(
            "spec: {{strategy: {{canary: {{steps: [{{setWeight: 20}}, {{analysis: {{templates: [{{templateName: t}}]{extra}}}}}]}}}}}}"
        )
    };
    let metric = "{name: m, provider: {prometheus: {query: q}}}";
    let cases: Vec<(&str, String, String, &str)> = vec![
        ("19 service missing", "{}".into(), SERVICES.replace("demo-canary", "other"), "spec.strategy.canary.canaryService: Invalid value: \"demo-canary\": service \"demo-canary\" not found"),
        ("19 unmatched label", "{}".into(), SERVICES.replace("{selector: {app: demo}}\n---", "{selector: {app: demo, tier: web}}\n---"), "spec.strategy.canary.stableService: Invalid value: \"demo-stable\": Service \"demo-stable\" has unmatch label \"tier\" in rollout"),
        ("19 managed by another", "{}".into(), SERVICES.replace("{name: demo-canary}", "{name: demo-canary, annotations: {argo-rollouts.argoproj.io/managed-by-rollouts: other}}"), "spec.strategy.canary.canaryService: Invalid value: \"demo-canary\": Service \"demo-canary\" is managed by another Rollout"),
        ("20 template missing", step(""), format!("{SERVICES}{}", tmpl("other", &format!("{{metrics: [{metric}]}}"))), "spec.strategy.canary.steps[1].analysis.templates: Invalid value: \"t\": AnalysisTemplate 't' not found"),
        ("20 arg not resolved", step(""), format!("{SERVICES}{}", tmpl("t", &format!("{{args: [{{name: host}}], metrics: [{metric}]}}"))), "spec.strategy.canary.steps[1].analysis.templates: Invalid value: \"templateNames: [t]\": args.host was not resolved"),
        ("20 indefinite metric", step(""), format!("{SERVICES}{}", tmpl("t", "{metrics: [{name: m, interval: 1m, provider: {prometheus: {query: q}}}]}")), "spec.strategy.canary.steps[1].analysis.templates: Invalid value: \"t\": AnalysisTemplate t has metric m which runs indefinitely. Invalid value for count: <nil>"),
        ("20 unknown placeholder", step(""), format!("{SERVICES}{}", tmpl("t", "{metrics: [{name: m, provider: {prometheus: {query: '{{args.nope}}'}}}]}")), "spec.strategy.canary.steps[1].analysis.templates: Invalid value: \"t\": AnalysisTemplate t: failed to resolve {{args.nope}}"),
        ("20 background args", "spec: {strategy: {canary: {analysis: {templates: [{templateName: t}]}}}}".into(), format!("{SERVICES}{}", tmpl("t", &format!("{{args: [{{name: host}}], metrics: [{metric}]}}"))), "spec.strategy.canary.analysis.templates: Invalid value: \"templateNames: [t]\": args.host was not resolved"),
        ("21 nginx neither", "spec: {strategy: {canary: {trafficRouting: {nginx: {}}}}}".into(), format!("{SERVICES}{}", ing("demo-stable")), "spec.strategy.canary.trafficRouting.nginx: Internal error: Either StableIngress or StableIngresses must be configured. Neither are configured."),
        ("21 ingress missing", nginx.replace("ing}", "ing2}"), format!("{SERVICES}{}", ing("demo-stable")), "spec.strategy.canary.trafficRouting.nginx.stableIngress: Invalid value: \"ing2\": ingress.networking.k8s.io \"ing2\" not found"),
        ("21 ingress rules", nginx.into(), format!("{SERVICES}{}", ing("web")), "spec.strategy.canary.trafficRouting.nginx.stableIngress: Invalid value: \"ing\": ingress `ing` has no rules using service demo-stable backend"),
        ("22 istio config", "spec: {strategy: {canary: {trafficRouting: {istio: {}}}}}".into(), SERVICES.into(), "spec.strategy.canary.trafficRouting.istio: Internal error: either VirtualService or VirtualServices must be configured"),
        ("22 vs missing", istio.into(), format!("{SERVICES}{}", vs("{destination: {host: demo-stable}}").replace("{name: vs}", "{name: vs2}")), "spec.strategy.canary.trafficRouting.istio.virtualService.name: Invalid value: \"vs\": virtualservices.networking.istio.io \"vs\" not found"),
        ("22 route missing", istio.replace("primary", "secondary"), format!("{SERVICES}{}", vs("{destination: {host: demo-stable}}, {destination: {host: demo-canary}}")), "spec.strategy.canary.trafficRouting.istio.virtualService.name: Invalid value: \"vs\": Istio VirtualService has invalid HTTP routes. Error: HTTP Route 'secondary' is not found in the defined Virtual Service."),
        ("22 canary not in route", istio.into(), format!("{SERVICES}{}", vs("{destination: {host: demo-stable, weight: 100}}")), "spec.strategy.canary.trafficRouting.istio.virtualService.name: Invalid value: \"vs\": Istio VirtualService has invalid HTTP routes. Error: Canary Service 'demo-canary' not found in route"),
    ];
    let mut failures = Vec::new();
    for (rule, patch, docs, want) in &cases {
        let got = reference_errors(patch, docs);
        if got.first().map(String::as_str) != Some(*want) {
            failures.push(format!("rule {rule}:\n  want {want}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // And a clean bundle gives nothing.
    let ok = format!(
        "{SERVICES}{}{}",
        tmpl("t", &format!("{{metrics: [{metric}]}}")),
        vs(
            "{destination: {host: demo-stable.ns.svc.cluster.local}}, {destination: {host: demo-canary}}"
        )
    );
    assert_eq!(
        reference_errors(
            "{spec: {strategy: {canary: {trafficRouting: {istio: {virtualService: {name: vs, routes: [primary]}}}, steps: [{setWeight: 5}, {analysis: {templates: [{templateName: t}]}}]}}}}",
            &ok
        ),
        Vec::<String>::new()
    );
    println!("reference rule fixtures: {} passed", cases.len());
}

fn metric(yaml_text: &str) -> Metric {
    serde_json::from_value(yaml(yaml_text)).expect("metric")
}

#[test]
fn metric_rule_fixtures() {
    let cases: &[(&str, &str)] = &[
        (
            "{name: m, count: 2, failureLimit: -1, consecutiveSuccessLimit: 3, interval: 1m, provider: {web: {url: u}}}",
            "metrics[0]: count (2) must be >= consecutiveSuccessLimit (3) if failureLimit < 0",
        ),
        (
            "{name: m, interval: '10', provider: {web: {url: u}}}",
            "metrics[0]: invalid interval string: time: missing unit in duration \"10\"",
        ),
        (
            "{name: m, consecutiveErrorLimit: -1, provider: {web: {url: u}}}",
            "metrics[0]: consecutiveErrorLimit must be >= 0",
        ),
        (
            "{name: m, count: '{{args.n}}', interval: '{{args.i}}', provider: {web: {url: u}}}",
            "<valid>",
        ),
        (
            "{name: m, provider: {}}",
            "metrics[0]: no provider specified",
        ),
        (
            "{name: m, provider: {web: {url: u}, job: {spec: {template: {}}}}}",
            "metrics[0]: multiple providers specified",
        ),
    ];
    for (m, want) in cases {
        let got = validate_metrics(&[metric(m)])
            .map_or_else(|e| e.to_string(), |()| "<valid>".to_string());
        assert_eq!(&got, want, "{m}");
    }
}

fn arg(name: &str, value: Option<&str>) -> Argument {
    Argument {
        name: name.into(),
        value: value.map(str::to_string),
        value_from: None,
    }
}

fn template(text: &str) -> AnalysisTemplate {
    let mut v = yaml(text);
    v["apiVersion"] = json!("argoproj.io/v1alpha1");
    v["kind"] = json!("AnalysisTemplate");
    v["metadata"] = json!({"name": "t"});
    serde_json::from_value(v).expect("template")
}

#[test]
fn argument_rule_fixtures() {
    let t1 = template(
        "spec: {args: [{name: a}, {name: b, value: '1'}], metrics: [{name: m, provider: {web: {url: '{{ args.a }}/{{args.b}}'}}}]}",
    );
    let t2 = template(
        "spec: {args: [{name: b, value: '2'}], metrics: [{name: m, provider: {web: {url: x}}}]}",
    );
    let t3 = template(
        "spec: {args: [{name: a, value: 'x'}], metrics: [{name: m2, provider: {web: {url: x}}}], dryRun: [{metricName: m}]}",
    );
    // Flattening: duplicate metric names, then conflicting argument values.
    assert_eq!(
        flatten_templates(&[&t1.spec, &t2.spec], &[])
            .unwrap_err()
            .to_string(),
        "two metrics have the same name 'm'"
    );
    let t2b = template(
        "spec: {args: [{name: b, value: '2'}], metrics: [{name: m2, provider: {web: {url: x}}}]}",
    );
    assert_eq!(
        flatten_templates(&[&t1.spec, &t2b.spec], &[])
            .unwrap_err()
            .to_string(),
        "Argument `b` specified multiple times with different values: '1', '2'"
    );
    // A later template fills an argument the first left open.
    let flat = flatten_templates(&[&t1.spec, &t3.spec], &[]).unwrap();
    assert_eq!(flat.args, vec![arg("a", Some("x")), arg("b", Some("1"))]);
    // Merging: only declared args are taken; an open one fails.
    assert_eq!(
        merge_args(&[arg("zzz", Some("1"))], &t1.spec.args.clone().unwrap())
            .unwrap_err()
            .to_string(),
        "args.a was not resolved"
    );
    let merged = merge_args(
        &[arg("a", Some("A")), arg("zzz", Some("1"))],
        &t1.spec.args.clone().unwrap(),
    )
    .unwrap();
    assert_eq!(merged, vec![arg("a", Some("A")), arg("b", Some("1"))]);
    // Dry-run rules: caller first, duplicates rejected.
    let dr = davy::api::common::DryRun {
        metric_name: "m".into(),
    };
    assert_eq!(
        new_run_spec_from_templates(&[&t3.spec], &[], &[], &[dr], &[])
            .unwrap_err()
            .to_string(),
        "two Dry-Run metric rules have the same name 'm'"
    );
    // Substitution escapes values as JSON string bodies; unknown tags are named as written.
    let resolved = resolve_metric_args(
        &t1.spec.metrics[0],
        &[arg("a", Some("h\"q")), arg("b", Some("1"))],
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&resolved.provider).unwrap()["web"]["url"],
        json!("h\"q/1")
    );
    assert_eq!(
        resolve_metric_args(&t1.spec.metrics[0], &[arg("b", Some("1"))])
            .unwrap_err()
            .to_string(),
        "failed to resolve {{ args.a }}"
    );
    assert_eq!(
        resolve_metric_args(&t1.spec.metrics[0], &[arg("a", None)])
            .unwrap_err()
            .to_string(),
        "argument \"a\" was not supplied"
    );
}
