//! Custom resources against the structural schemas of the CRDs Davy installs
//! (`manifests/crds.yaml`), as apiextensions-apiserver treats them, through the real `kubectl`
//! and `kube::Client` (and raw HTTP where the `Warning` header itself is the point).
//!
//! Expected responses are written down from kube-apiserver's documented behaviour: a value of
//! the wrong type is 422 `Invalid` with `details.causes[].field` naming the path and the
//! message `Rollout.argoproj.io "x" is invalid: spec.replicas: Invalid value: "string":
//! spec.replicas in body must be of type integer: "string"`; unknown fields are pruned, and
//! `fieldValidation=Strict` (what `kubectl apply` sends by default) refuses them with 400
//! `Rollout in version "v1alpha1" cannot be handled as a Rollout: strict decoding error:
//! unknown field "spec.bogus"`, `Warn` answers `Warning: 299 - "unknown field \"spec.bogus\""`,
//! `Ignore` says nothing; schema `default`s are filled in; `x-kubernetes-int-or-string` takes
//! both; `x-kubernetes-preserve-unknown-fields` keeps what the schema does not name; writes to
//! the main resource ignore `status` and writes to `/status` ignore the rest.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use davy::sandbox::apiserver::ApiServer;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use common::kubectl::{Kubectl, kubectl_present};

fn server() -> ApiServer {
    let server = ApiServer::new();
    server.install_davy_crds().unwrap();
    server.install_crds_from_yaml(GIZMO_CRD).unwrap();
    server
}

/// A small CRD with defaults, an int-or-string, a preserved subtree and an enum.
const GIZMO_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.example.dev}
spec:
  group: example.dev
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, default: blue, enum: [blue, red]}
              surge: {x-kubernetes-int-or-string: true}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status:
            type: object
            properties:
              ready: {type: integer}
"#;

fn rollout(name: &str, spec_extra: Value) -> Value {
    let mut spec = json!({
        "replicas": 1,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "app", "image": "demo:blue"}]}},
        "strategy": {"canary": {"steps": [{"setWeight": 20}]}},
    });
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k.as_str()] = v.clone();
    }
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
           "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn rollout_api(client: kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout");
    Api::namespaced_with(client, "default", &ApiResource::from_gvk(&gvk))
}

fn gizmo_api(client: kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("example.dev", "v1", "Gizmo");
    Api::namespaced_with(client, "default", &ApiResource::from_gvk(&gvk))
}

fn dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn kube_client_sees_invalid_pruned_and_defaulted_objects() {
    let server = server();
    let rollouts = rollout_api(server.client());
    let pp = PostParams::default();

    let err = rollouts
        .create(&pp, &dynamic(rollout("x", json!({"replicas": "two"}))))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    assert_eq!(
        status.message,
        "Rollout.argoproj.io \"x\" is invalid: spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
    );
    let details = status.details.unwrap();
    assert_eq!(details.kind, "Rollout");
    assert_eq!(details.group, "argoproj.io");
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].field, "spec.replicas");
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");
    assert_eq!(
        details.causes[0].message,
        "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
    );
    assert!(
        rollouts.get_opt("x").await.unwrap().is_none(),
        "nothing stored"
    );

    // Several causes: every one, by path, in one answer.
    let err = rollouts
        .create(
            &pp,
            &dynamic(rollout(
                "y",
                json!({"paused": "yes", "strategy": {"canary": {"steps": [{"setWeight": "20"}]}}}),
            )),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<String> = status
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(
        fields,
        ["spec.paused", "spec.strategy.canary.steps[0].setWeight"]
    );
    assert!(
        status
            .message
            .starts_with("Rollout.argoproj.io \"y\" is invalid: [spec.paused: "),
        "{}",
        status.message
    );

    // Unknown fields are pruned (kube-rs sends no fieldValidation: the server's Warn).
    let created = rollouts
        .create(
            &pp,
            &dynamic(rollout("z", json!({"bogus": 1, "strategy": {"canary": {"steps": [{"setWeight": 20, "odd": true}]}}}))),
        )
        .await
        .unwrap();
    assert!(
        created.data["spec"].get("bogus").is_none(),
        "{:#}",
        created.data
    );
    assert_eq!(
        created.data["spec"]["strategy"]["canary"]["steps"][0],
        json!({"setWeight": 20})
    );
    // The pod template's fields are the schema's too: a typo in a container is pruned.
    let patched = rollouts
        .patch(
            "z",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "demo:green", "imagePullPolicy": "Always", "imagePolicy": "x"}]}}}})),
        )
        .await
        .unwrap();
    let container = &patched.data["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["imagePullPolicy"], "Always");
    assert!(container.get("imagePolicy").is_none(), "{container:#}");

    // Defaults, int-or-string, preserve-unknown-fields, enum and minimum on a small CRD.
    let gizmos = gizmo_api(server.client());
    let g = gizmos
        .create(
            &pp,
            &dynamic(
                json!({"apiVersion": "example.dev/v1", "kind": "Gizmo", "metadata": {"name": "g"},
                "spec": {"size": 2, "surge": "25%", "extra": {"any": {"deep": [1, "x"]}}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(g.data["spec"]["color"], "blue", "defaulted");
    assert_eq!(g.data["spec"]["surge"], "25%");
    assert_eq!(g.data["spec"]["extra"], json!({"any": {"deep": [1, "x"]}}));
    let g = gizmos
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"surge": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(g.data["spec"]["surge"], 3);
    let messages = |e: kube::Error| match e {
        kube::Error::Api(s) => s.message,
        other => panic!("{other:?}"),
    };
    let e = gizmos
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"surge": true, "color": "green", "size": 0}})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        messages(e),
        "Gizmo.example.dev \"g\" is invalid: [spec.color: Unsupported value: \"green\": supported values: \"blue\", \"red\", \
         spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1, \
         spec.surge: Invalid value: \"boolean\": spec.surge in body must be of type int-or-string: \"boolean\"]"
    );
    let e = gizmos
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([{"op": "remove", "path": "/spec/size"}])).unwrap(),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        messages(e),
        "Gizmo.example.dev \"g\" is invalid: spec.size: Required value"
    );

    // Status isolation: the main resource ignores status, /status ignores spec.
    let g = gizmos
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}, "status": {"ready": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(g.data["spec"]["size"], 5);
    assert!(
        g.data
            .get("status")
            .is_none_or(|s| s.get("ready").is_none()),
        "{:#}",
        g.data
    );
    let g = gizmos
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 7}, "status": {"ready": 2, "junk": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(g.data["spec"]["size"], 5);
    assert_eq!(
        g.data["status"],
        json!({"ready": 2}),
        "status written, its unknown field pruned"
    );
    let e = gizmos
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": "two"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        messages(e),
        "Gizmo.example.dev \"g\" is invalid: status.ready: Invalid value: \"string\": status.ready in body must be of type integer: \"string\""
    );
}

#[test]
fn field_validation_headers_over_http() {
    let env = Kubectl::with(server());
    let base = format!(
        "http://{}/apis/argoproj.io/v1alpha1/namespaces/default/rollouts",
        env.http.addr()
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |query: &str, body: &Value| {
        let req = http
            .post(format!("{base}?{query}"))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        let resp = env.block_on(req.send()).unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body: Value = env.block_on(resp.json()).unwrap();
        (status, headers, body)
    };
    let (code, headers, _) = post(
        "fieldValidation=Warn",
        &rollout("w", json!({"bogus": 1, "other": {"x": 1}})),
    );
    assert_eq!(code, 201);
    let warnings: Vec<String> = headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        warnings,
        [
            r#"299 - "unknown field \"spec.bogus\"""#,
            r#"299 - "unknown field \"spec.other\"""#
        ]
    );
    let (code, _, status) = post("fieldValidation=Strict", &rollout("s", json!({"bogus": 1})));
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "Rollout in version \"v1alpha1\" cannot be handled as a Rollout: strict decoding error: unknown field \"spec.bogus\""
    );
    let (code, headers, _) = post("fieldValidation=Ignore", &rollout("i", json!({"bogus": 1})));
    assert_eq!(code, 201);
    assert!(headers.get("warning").is_none());
    let (code, _, _) = post("fieldValidation=Loud", &rollout("l", json!({})));
    assert_eq!(code, 400);
}

const BOGUS: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 1
  bogus: true
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "demo:blue"}]}
  strategy: {canary: {steps: [{setWeight: 20}]}}
"#;

#[test]
fn kubectl_apply_validates_as_against_a_cluster() {
    if !kubectl_present() {
        return;
    }
    let env = Kubectl::with(server());
    let path = env.file("bogus.yaml", BOGUS);
    // Default validation is strict: kubectl sends fieldValidation=Strict and the server refuses.
    let out = env.run(&["apply", "-f", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.trim(),
        format!(
            "Error from server (BadRequest): error when creating \"{path}\": Rollout in version \"v1alpha1\" cannot be handled as a Rollout: strict decoding error: unknown field \"spec.bogus\""
        )
    );
    // --validate=warn: created without the field, and kubectl prints the server's warning.
    let out = env.run(&["apply", "--validate=warn", "-f", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: unknown field \"spec.bogus\""),
        "{stderr}"
    );
    let got = env.get_json(&["get", "rollout", "web"]);
    assert!(got["spec"].get("bogus").is_none(), "{got:#}");
    // --validate=false: Ignore, no warning.
    env.ok(&["delete", "rollout", "web"]);
    let out = env.run(&["apply", "--validate=false", "-f", &path]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Warning"));

    // A wrong type: 422, printed by kubectl as against a cluster.
    let bad = env.file(
        "bad.yaml",
        &BOGUS
            .replace("bogus: true", "")
            .replace("replicas: 1", "replicas: two")
            .replace("name: web}", "name: bad}"),
    );
    let out = env.run(&["apply", "-f", &bad]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "The Rollout \"bad\" is invalid: spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
    );

    // The scale subresource: kubectl scale writes spec.replicas only.
    env.ok(&["scale", "rollout", "web", "--replicas=3"]);
    let got = env.get_json(&["get", "rollout", "web"]);
    assert_eq!(got["spec"]["replicas"], 3);
    // kubectl patch of status through the main resource changes nothing there.
    env.ok(&[
        "patch",
        "rollout",
        "web",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Healthy"}}"#,
    ]);
    let got = env.get_json(&["get", "rollout", "web"]);
    assert!(
        got.get("status").is_none_or(|s| s.get("phase").is_none()),
        "{got:#}"
    );
}

/// A CRD whose rules use `messageExpression`, `fieldPath`, `reason` and a root-level rule.
const RULED_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ranges.example.dev}
spec:
  group: example.dev
  scope: Namespaced
  names: {plural: ranges, singular: range, kind: Range}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-validations:
        - rule: "self.metadata.name.startsWith('r')"
          message: names start with r
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: self.min <= self.max
            - rule: self.min <= self.max
              messageExpression: "'min ' + string(self.min) + ' is above max ' + string(self.max)"
              fieldPath: .min
              reason: FieldValueForbidden
            - rule: self.max <= oldSelf.max
              message: max may only shrink
            properties:
              min: {type: integer}
              max: {type: integer}
"#;

#[tokio::test]
async fn validation_rules_as_kube_apiserver_evaluates_them() {
    let server = server();
    server.install_crds_from_yaml(RULED_CRD).unwrap();
    let gvk = GroupVersionKind::gvk("example.dev", "v1", "Range");
    let ranges: Api<DynamicObject> =
        Api::namespaced_with(server.client(), "default", &ApiResource::from_gvk(&gvk));
    let range = |name: &str, min: i64, max: i64| {
        dynamic(json!({"apiVersion": "example.dev/v1", "kind": "Range",
            "metadata": {"name": name}, "spec": {"min": min, "max": max}}))
    };
    let pp = PostParams::default();
    let kube::Error::Api(status) = ranges.create(&pp, &range("q", 5, 3)).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        "Range.example.dev \"q\" is invalid: [<nil>: Invalid value: \"object\": names start with r, spec: Invalid value: \"object\": failed rule: self.min <= self.max, spec.min: Forbidden: min 5 is above max 3]"
    );
    let causes = status.details.unwrap().causes;
    let reasons: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c.field.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("<nil>", "FieldValueInvalid"),
            ("spec", "FieldValueInvalid"),
            ("spec.min", "FieldValueForbidden")
        ]
    );

    // The transition rule is skipped on create, checked against the stored value on update.
    let created = ranges.create(&pp, &range("r", 1, 9)).await.unwrap();
    let mut grown = range("r", 1, 10);
    grown.metadata.resource_version = created.metadata.resource_version.clone();
    let kube::Error::Api(status) = ranges.replace("r", &pp, &grown).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(
        status.message,
        "Range.example.dev \"r\" is invalid: spec: Invalid value: \"object\": max may only shrink"
    );
    let shrunk = ranges
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"max": 8}})),
        )
        .await
        .unwrap();
    assert_eq!(shrunk.data["spec"]["max"], 8);
    // A type error hides the rules, as in kube-apiserver.
    let kube::Error::Api(status) = ranges
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"min": "x"}})),
        )
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(
        status.message,
        "Range.example.dev \"r\" is invalid: spec.min: Invalid value: \"string\": spec.min in body must be of type integer: \"string\""
    );
}

#[test]
fn kubectl_sees_the_immutable_rollout_selector() {
    if !kubectl_present() {
        return;
    }
    let env = Kubectl::with(server());
    let manifest = BOGUS.replace("  bogus: true\n", "");
    env.apply("web.yaml", &manifest);
    // Relabelling the selector (and the template with it) breaks Davy's own CRD rule.
    let moved = env.file("moved.yaml", &manifest.replace("app: web", "app: moved"));
    let out = env.run(&["apply", "-f", &moved]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "The Rollout \"web\" is invalid: spec.selector: Invalid value: \"object\": .spec.selector is immutable"
    );
    let got = env.get_json(&["get", "rollout", "web"]);
    assert_eq!(got["spec"]["selector"]["matchLabels"]["app"], "web");
    // Other changes still go through.
    env.apply("web.yaml", &manifest.replace("replicas: 1", "replicas: 2"));
}

/// A CRD with the string formats apiextensions-apiserver checks and unique lists.
const FORMATS_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: probes.example.dev}
spec:
  group: example.dev
  scope: Namespaced
  names: {plural: probes, singular: probe, kind: Probe}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              at: {type: string, format: date-time}
              id: {type: string, format: uuid}
              v4: {type: string, format: ipv4}
              v6: {type: string, format: ipv6}
              blob: {type: string, format: byte}
              port: {type: integer, format: int32}
              tags:
                type: array
                x-kubernetes-list-type: set
                items: {type: string}
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [port, protocol]
                items:
                  type: object
                  properties:
                    port: {type: integer}
                    protocol: {type: string}
                    name: {type: string}
"#;

#[tokio::test]
async fn formats_and_unique_lists() {
    let server = server();
    server.install_crds_from_yaml(FORMATS_CRD).unwrap();
    let gvk = GroupVersionKind::gvk("example.dev", "v1", "Probe");
    let probes: Api<DynamicObject> =
        Api::namespaced_with(server.client(), "default", &ApiResource::from_gvk(&gvk));
    let probe = |name: &str, spec: Value| {
        dynamic(json!({"apiVersion": "example.dev/v1", "kind": "Probe",
            "metadata": {"name": name}, "spec": spec}))
    };
    let pp = PostParams::default();
    let good = json!({"at": "2026-12-07T10:00:00Z", "id": "123e4567-e89b-42d3-a456-426614174000",
        "v4": "10.0.0.1", "v6": "fd00::1", "blob": "aGVsbG8=",
        // int32 is not range-checked by apiextensions-apiserver.
        "port": 9_999_999_999_i64,
        "tags": ["a", "b"], "ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}]});
    probes.create(&pp, &probe("good", good)).await.unwrap();

    let bad = json!({"at": "yesterday", "id": "not-a-uuid", "v4": "10.0.0.300", "v6": "fd00:::1",
        "blob": "%%%", "tags": ["a", "b", "a"],
        "ports": [{"port": 80, "protocol": "TCP", "name": "x"}, {"port": 80, "protocol": "TCP", "name": "y"}]});
    let kube::Error::Api(status) = probes.create(&pp, &probe("bad", bad)).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(status.code, 422);
    let causes: Vec<String> = status
        .details
        .unwrap()
        .causes
        .iter()
        .map(|c| format!("{} [{}] {}", c.field, c.reason, c.message))
        .collect();
    assert_eq!(
        causes,
        [
            "spec.at [FieldValueInvalid] Invalid value: \"yesterday\": spec.at in body must be of type date-time: \"yesterday\"",
            "spec.blob [FieldValueInvalid] Invalid value: \"%%%\": spec.blob in body must be of type byte: \"%%%\"",
            "spec.id [FieldValueInvalid] Invalid value: \"not-a-uuid\": spec.id in body must be of type uuid: \"not-a-uuid\"",
            "spec.ports[1] [FieldValueDuplicate] Duplicate value: map[string]interface {}{\"port\":80, \"protocol\":\"TCP\"}",
            "spec.tags[2] [FieldValueDuplicate] Duplicate value: \"a\"",
            "spec.v4 [FieldValueInvalid] Invalid value: \"10.0.0.300\": spec.v4 in body must be of type ipv4: \"10.0.0.300\"",
            "spec.v6 [FieldValueInvalid] Invalid value: \"fd00:::1\": spec.v6 in body must be of type ipv6: \"fd00:::1\"",
        ]
    );
}
