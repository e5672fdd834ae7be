//! `fieldValidation` as kube-apiserver applies it to what a request body says twice, through
//! raw HTTP (the only way a body with a repeated key reaches the server unchanged) and the real
//! `kubectl create --raw`, for custom resources and built-in kinds.
//!
//! Expected responses are written down from kube-apiserver's field-validation integration and
//! conformance tests: a JSON body's repeated key is `duplicate field "spec.replicas"`
//! (sigs.k8s.io/json's strict error, with the field's path), a YAML body's
//! `line 10: key "replicas" already set in map` (go-yaml's, with the line of the repeated key;
//! an apply patch is read as YAML, JSON or not). `Strict` refuses the write with 400
//! `<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding error: …` (for a
//! custom resource the duplicates first, then the unknown fields; for a built-in kind as the
//! conformance test reads it, `unknown field "spec.unknownField", duplicate field
//! "spec.replicas"`), a merge patch with 422 `patch: Invalid value: "map[…]": strict decoding
//! error: …`; `Warn` stores the last value and answers one `Warning: 299 - "…"` header per
//! repeated key; `Ignore` stores the last value silently.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use davy::sandbox::apiserver::ApiServer;
use reqwest::header::HeaderMap;
use serde_json::Value;

use common::kubectl::{Kubectl, kubectl_present};

fn env() -> Kubectl {
    let server = ApiServer::new();
    server.install_davy_crds().unwrap();
    Kubectl::with(server)
}

const ROLLOUT_JSON: &str = r#"{
  "apiVersion": "argoproj.io/v1alpha1",
  "kind": "Rollout",
  "metadata": {"name": "NAME"},
  "spec": {
    "replicas": 2,
    "replicas": 3,
    "bogus": 1,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "app", "image": "demo:blue", "image": "demo:green"}]}},
    "strategy": {"canary": {"steps": [{"setWeight": 20}]}}
  }
}"#;

const ROLLOUT_YAML: &str = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: NAME
spec:
  replicas: 2
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: demo:blue
        image: demo:green
  strategy: {canary: {steps: [{setWeight: 20}]}}
";

const DEPLOYMENT_JSON: &str = r#"{
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {"name": "NAME"},
  "spec": {
    "replicas": 2,
    "replicas": 3,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "app", "image": "demo:blue"}]}}
  }
}"#;

struct Answer {
    code: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn warnings(&self) -> Vec<String> {
        self.headers
            .get_all("warning")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
}

fn send(env: &Kubectl, method: &str, path_query: &str, content_type: &str, body: &str) -> Answer {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}{path_query}", env.http.addr());
    let req = http
        .request(method.parse().unwrap(), url)
        .header("Content-Type", content_type)
        .body(body.to_string());
    let resp = env.block_on(req.send()).unwrap();
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = env.block_on(resp.json()).unwrap();
    Answer {
        code,
        headers,
        body,
    }
}

const ROLLOUTS: &str = "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[test]
fn json_duplicates_of_a_custom_resource() {
    let env = env();
    let body = |name: &str| ROLLOUT_JSON.replace("NAME", name);
    let strict = send(
        &env,
        "POST",
        &format!("{ROLLOUTS}?fieldValidation=Strict"),
        "application/json",
        &body("s"),
    );
    assert_eq!(strict.code, 400, "{:#}", strict.body);
    assert_eq!(strict.body["reason"], "BadRequest");
    assert_eq!(
        strict.body["message"],
        "Rollout in version \"v1alpha1\" cannot be handled as a Rollout: strict decoding error: duplicate field \"spec.replicas\", duplicate field \"spec.template.spec.containers[0].image\", unknown field \"spec.bogus\""
    );

    let warn = send(
        &env,
        "POST",
        &format!("{ROLLOUTS}?fieldValidation=Warn"),
        "application/json",
        &body("w"),
    );
    assert_eq!(warn.code, 201, "{:#}", warn.body);
    assert_eq!(
        warn.warnings(),
        [
            r#"299 - "duplicate field \"spec.replicas\"""#,
            r#"299 - "duplicate field \"spec.template.spec.containers[0].image\"""#,
            r#"299 - "unknown field \"spec.bogus\"""#,
        ]
    );
    assert_eq!(warn.body["spec"]["replicas"], 3, "the last value wins");
    assert_eq!(
        warn.body["spec"]["template"]["spec"]["containers"][0]["image"],
        "demo:green"
    );

    // No parameter is Warn, as in kube-apiserver.
    let default = send(&env, "POST", ROLLOUTS, "application/json", &body("d"));
    assert_eq!(default.code, 201);
    assert_eq!(default.warnings().len(), 3);

    let ignore = send(
        &env,
        "POST",
        &format!("{ROLLOUTS}?fieldValidation=Ignore"),
        "application/json",
        &body("i"),
    );
    assert_eq!(ignore.code, 201);
    assert!(ignore.warnings().is_empty());
    assert_eq!(ignore.body["spec"]["replicas"], 3);

    // PUT as POST.
    let mut put = body("w").replace(
        "\"name\": \"w\"",
        &format!(
            "\"name\": \"w\", \"resourceVersion\": {}",
            warn.body["metadata"]["resourceVersion"]
        ),
    );
    put = put.replace("\"bogus\": 1,", "");
    let updated = send(
        &env,
        "PUT",
        &format!("{ROLLOUTS}/w?fieldValidation=Strict"),
        "application/json",
        &put,
    );
    assert_eq!(updated.code, 400);
    assert_eq!(
        updated.body["message"],
        "Rollout in version \"v1alpha1\" cannot be handled as a Rollout: strict decoding error: duplicate field \"spec.replicas\", duplicate field \"spec.template.spec.containers[0].image\""
    );
}

#[test]
fn yaml_duplicates_name_their_lines() {
    let env = env();
    let body = |name: &str| ROLLOUT_YAML.replace("NAME", name);
    let strict = send(
        &env,
        "POST",
        &format!("{ROLLOUTS}?fieldValidation=Strict"),
        "application/yaml",
        &body("s"),
    );
    assert_eq!(strict.code, 400, "{:#}", strict.body);
    assert_eq!(
        strict.body["message"],
        "Rollout in version \"v1alpha1\" cannot be handled as a Rollout: strict decoding error: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"replicas\" already set in map\n  line 15: key \"image\" already set in map"
    );
    let warn = send(
        &env,
        "POST",
        &format!("{ROLLOUTS}?fieldValidation=Warn"),
        "application/yaml",
        &body("w"),
    );
    assert_eq!(warn.code, 201, "{:#}", warn.body);
    assert_eq!(
        warn.warnings(),
        [
            r#"299 - "line 7: key \"replicas\" already set in map""#,
            r#"299 - "line 15: key \"image\" already set in map""#,
        ]
    );
    assert_eq!(warn.body["spec"]["replicas"], 3);

    // An apply patch is read as YAML even when it is JSON: line numbers, not paths.
    let applied = send(
        &env,
        "PATCH",
        &format!("{ROLLOUTS}/a?fieldManager=me&fieldValidation=Warn"),
        "application/apply-patch+yaml",
        &ROLLOUT_JSON
            .replace("NAME", "a")
            .replace("\"bogus\": 1,", ""),
    );
    assert_eq!(applied.code, 201, "{:#}", applied.body);
    assert_eq!(
        applied.warnings(),
        [
            r#"299 - "line 7: key \"replicas\" already set in map""#,
            r#"299 - "line 11: key \"image\" already set in map""#,
        ]
    );
    let applied = send(
        &env,
        "PATCH",
        &format!("{ROLLOUTS}/a?fieldManager=me&fieldValidation=Strict"),
        "application/apply-patch+yaml",
        &ROLLOUT_JSON
            .replace("NAME", "a")
            .replace("\"bogus\": 1,", ""),
    );
    assert_eq!(applied.code, 400);
    assert!(
        applied.body["message"]
            .as_str()
            .unwrap()
            .contains("line 7: key \"replicas\" already set in map"),
        "{:#}",
        applied.body
    );
}

#[test]
fn duplicates_of_a_built_in_kind_and_in_a_merge_patch() {
    let env = env();
    let body = |name: &str| DEPLOYMENT_JSON.replace("NAME", name);
    let strict = send(
        &env,
        "POST",
        &format!("{DEPLOYMENTS}?fieldValidation=Strict"),
        "application/json",
        &body("s"),
    );
    assert_eq!(strict.code, 400, "{:#}", strict.body);
    assert_eq!(
        strict.body["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: duplicate field \"spec.replicas\""
    );
    let warn = send(&env, "POST", DEPLOYMENTS, "application/json", &body("w"));
    assert_eq!(warn.code, 201);
    assert_eq!(
        warn.warnings(),
        [r#"299 - "duplicate field \"spec.replicas\"""#]
    );
    assert_eq!(warn.body["spec"]["replicas"], 3);

    let patch = r#"{"spec": {"paused": true, "paused": false}}"#;
    let refused = send(
        &env,
        "PATCH",
        &format!("{DEPLOYMENTS}/w?fieldValidation=Strict"),
        "application/merge-patch+json",
        patch,
    );
    assert_eq!(refused.code, 422, "{:#}", refused.body);
    assert_eq!(
        refused.body["message"],
        " \"\" is invalid: patch: Invalid value: \"map[spec:map[paused:false]]\": strict decoding error: duplicate field \"spec.paused\""
    );
    let warned = send(
        &env,
        "PATCH",
        &format!("{DEPLOYMENTS}/w?fieldValidation=Warn"),
        "application/merge-patch+json",
        patch,
    );
    assert_eq!(warned.code, 200);
    assert_eq!(
        warned.warnings(),
        [r#"299 - "duplicate field \"spec.paused\"""#]
    );
    assert_eq!(warned.body["spec"]["paused"], false);
}

#[test]
fn kubectl_create_raw_sends_the_body_as_written() {
    if !kubectl_present() {
        return;
    }
    let env = env();
    // `kubectl create --raw` posts the file's bytes unchanged (kubectl apply and create -f
    // decode and re-encode the manifest first, so a repeated key never reaches any server).
    let path = env.file("dup.json", &ROLLOUT_JSON.replace("NAME", "raw"));
    let out = env.run(&[
        "create",
        "--raw",
        &format!("{ROLLOUTS}?fieldValidation=Strict"),
        "-f",
        &path,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("strict decoding error: duplicate field \\\"spec.replicas\\\"")
            || stderr.contains("strict decoding error: duplicate field \"spec.replicas\""),
        "{stderr}"
    );
    let out = env.run(&["create", "--raw", ROLLOUTS, "-f", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: duplicate field \"spec.replicas\""),
        "{stderr}"
    );
    let got = env.get_json(&["get", "rollout", "raw"]);
    assert_eq!(got["spec"]["replicas"], 3);

    // kubectl apply of a YAML file with a repeated key: kubectl decodes the file itself (the
    // last value winning) and sends JSON without the repetition, so nothing is refused or
    // warned about — as against a cluster.
    let yaml = env.file("dup.yaml", &ROLLOUT_YAML.replace("NAME", "applied"));
    let out = env.run(&["apply", "-f", &yaml]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Warning"), "{stderr}");
    let got = env.get_json(&["get", "rollout", "applied"]);
    assert_eq!(got["spec"]["replicas"], 3);
}

const DEPLOYMENT_BOGUS: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  bogus: true
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: \"demo:blue\", imagePullPolcy: Always}
";

const CONFIGMAP_BOGUS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, colour: red}
data: {a: b}
datum: {c: d}
";

#[test]
fn unknown_fields_of_built_in_kinds_over_http() {
    let env = env();
    let body = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "NAME"},
      "spec": {"unknownField": "foo", "replicas": 2, "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "app", "image": "demo:blue"}]}}}}"#;
    // The wording of kube-apiserver's conformance test for typed objects.
    let strict = send(
        &env,
        "POST",
        &format!("{DEPLOYMENTS}?fieldValidation=Strict"),
        "application/json",
        &body.replace("NAME", "s"),
    );
    assert_eq!(strict.code, 400, "{:#}", strict.body);
    assert_eq!(
        strict.body["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.unknownField\", duplicate field \"spec.replicas\""
    );
    let warn = send(
        &env,
        "POST",
        DEPLOYMENTS,
        "application/json",
        &body.replace("NAME", "w"),
    );
    assert_eq!(warn.code, 201);
    assert_eq!(
        warn.warnings(),
        [
            r#"299 - "unknown field \"spec.unknownField\"""#,
            r#"299 - "duplicate field \"spec.replicas\"""#
        ]
    );
    assert!(
        warn.body["spec"].get("unknownField").is_none(),
        "dropped as the typed store drops it"
    );
    let ignore = send(
        &env,
        "POST",
        &format!("{DEPLOYMENTS}?fieldValidation=Ignore"),
        "application/json",
        &body.replace("NAME", "i"),
    );
    assert_eq!(ignore.code, 201);
    assert!(ignore.warnings().is_empty());
    assert!(ignore.body["spec"].get("unknownField").is_none());
}

#[test]
fn kubectl_apply_of_built_in_kinds_with_unknown_fields() {
    if !kubectl_present() {
        return;
    }
    let env = env();
    let deploy = env.file("deploy.yaml", DEPLOYMENT_BOGUS);
    let out = env.run(&["apply", "-f", &deploy]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "Error from server (BadRequest): error when creating \"{deploy}\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.bogus\", unknown field \"spec.template.spec.containers[0].imagePullPolcy\""
        )
    );
    let out = env.run(&["apply", "--validate=warn", "-f", &deploy]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: unknown field \"spec.bogus\""),
        "{stderr}"
    );
    let got = env.get_json(&["get", "deployment", "web"]);
    assert!(got["spec"].get("bogus").is_none(), "{got:#}");

    let cm = env.file("cm.yaml", CONFIGMAP_BOGUS);
    let out = env.run(&["create", "--validate=strict", "-f", &cm]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "Error from server (BadRequest): error when creating \"{cm}\": ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"datum\", unknown field \"metadata.colour\""
        )
    );
    let out = env.run(&["create", "--validate=false", "-f", &cm]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Warning"));
    let got = env.get_json(&["get", "configmap", "settings"]);
    assert!(got.get("datum").is_none(), "{got:#}");
    assert_eq!(got["data"]["a"], "b");
}

/// The sandbox decodes JSON and YAML bodies only: a protobuf body (what kubectl's imperative
/// `create namespace` / `create configmap` send) is refused as 415 naming what it accepts,
/// and nothing is stored.
#[test]
fn protobuf_bodies_are_refused_as_an_unsupported_media_type() {
    let env = env();
    let answer = send(
        &env,
        "POST",
        "/api/v1/namespaces",
        "application/vnd.kubernetes.protobuf",
        "k8s\0 not decoded",
    );
    assert_eq!(answer.code, 415, "{:#}", answer.body);
    assert_eq!(answer.body["reason"], "UnsupportedMediaType");
    assert_eq!(
        answer.body["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
    );
    let listed = send(&env, "GET", "/api/v1/namespaces", "application/json", "");
    assert_eq!(listed.code, 200);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ns| ns["metadata"]["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"typed"),
        "nothing stored before kubectl's attempt: {names:?}"
    );
    if !kubectl_present() {
        return;
    }
    // kubectl (v1.32 here) does not retry a 415 as JSON: the command fails with the message,
    // and `create -f` (JSON) is the way.
    let out = env.run(&["create", "namespace", "typed"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("accepted media types include"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.run(&["get", "namespace", "typed"]).status.success());
}
