//! Every `kubectl argo rollouts` verb as a user runs it: the real `davy` binary against the
//! sandbox API server over HTTP, through the kubeconfig the sandbox writes. Each test checks the
//! exact fields the verb changed, the line it printed, and its exit code; errors check the
//! `Error: ` line upstream's plugin prints.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use davy::sandbox::apiserver::{ApiServer, ServeHandle};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use common::sandbox::HttpSandbox;

struct Env {
    runtime: tokio::runtime::Runtime,
    server: ApiServer,
    http: ServeHandle,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Env {
    fn start() -> Env {
        Env::start_with(|_| {})
    }

    /// A sandbox whose CRDs `edit` may change first (e.g. to drop a subresource).
    fn start_with(edit: impl Fn(&mut Value)) -> Env {
        let server = ApiServer::new();
        let mut crds = davy::api::crd::crd_values().unwrap();
        crds.iter_mut().for_each(&edit);
        server.install_crds(crds).unwrap();
        let HttpSandbox {
            runtime,
            server,
            http,
            dir,
            kubeconfig,
        } = HttpSandbox::start(server);
        Env {
            runtime,
            server,
            http,
            dir,
            kubeconfig,
        }
    }

    /// Runs `davy --kubeconfig <sandbox> ARGS` with a HOME and no KUBECONFIG of the machine.
    fn davy(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_davy"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        self.run(cmd, args)
    }

    fn run(&self, mut cmd: Command, args: &[&str]) -> Out {
        let out = cmd
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn api(&self, group: &str, version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        let _guard = self.runtime.enter();
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        Api::namespaced_with(self.server.client(), "default", &ar)
    }

    fn rollouts(&self) -> Api<DynamicObject> {
        self.api("argoproj.io", "v1alpha1", "Rollout", "rollouts")
    }

    fn create(&self, api: &Api<DynamicObject>, obj: Value) -> Value {
        let obj: DynamicObject = serde_json::from_value(obj).unwrap();
        let created = self
            .runtime
            .block_on(api.create(&Default::default(), &obj))
            .unwrap();
        serde_json::to_value(created).unwrap()
    }

    fn get(&self, api: &Api<DynamicObject>, name: &str) -> Value {
        serde_json::to_value(self.runtime.block_on(api.get(name)).unwrap()).unwrap()
    }

    fn set_status(&self, name: &str, status: Value) {
        self.runtime
            .block_on(self.rollouts().patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            ))
            .unwrap();
    }

    fn rollout(&self, name: &str, extra_spec: Value) -> Value {
        let mut spec = json!({
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox:1"}],
                    "containers": [{"name": "www", "image": "nginx:1"}, {"name": "side", "image": "envoy:1"}]
                }
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]}}
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        self.create(
            &self.rollouts(),
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                   "metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )
    }
}

/// The field managers that wrote the object (with the subresource they used).
fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or_default().to_string(),
                m["subresource"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn promote_clears_the_pause_then_skips_a_step_then_promotes_fully() {
    let env = Env::start();
    env.rollout("r", json!({"paused": true}));
    env.set_status(
        "r",
        json!({"currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}]}),
    );
    let out = env.davy(&["promote", "r"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'r' promoted\n"),
        "{}",
        out.stderr
    );
    let ro = env.get(&env.rollouts(), "r");
    assert_eq!(ro["spec"]["paused"], false);
    assert_eq!(ro["status"]["pauseConditions"], Value::Null);
    assert_eq!(ro["status"]["currentStepIndex"], 1);
    // The spec write is the CLI's own field manager's.
    let m = managers(&ro);
    assert!(m.contains(&("davy".into(), String::new())), "{m:?}");

    // No pause condition: promote skips the current step (a status-subresource write).
    let out = env.davy(&["promote", "r"]);
    assert_eq!(out.stdout, "rollout 'r' promoted\n");
    let ro = env.get(&env.rollouts(), "r");
    assert_eq!(ro["status"]["currentStepIndex"], 2);
    let m = managers(&ro);
    assert!(m.contains(&("davy".into(), "status".into())), "{m:?}");

    env.set_status("r", json!({"currentPodHash": "new", "stableRS": "old"}));
    let out = env.davy(&["promote", "--full", "r"]);
    assert_eq!(out.stdout, "rollout 'r' fully promoted\n");
    assert_eq!(env.get(&env.rollouts(), "r")["status"]["promoteFull"], true);
}

#[test]
fn abort_retry_pause_restart() {
    let env = Env::start();
    env.rollout("r", json!({}));
    env.rollout("s", json!({}));

    let out = env.davy(&["abort", "r", "s"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'r' aborted\nrollout 's' aborted\n"),
        "{}",
        out.stderr
    );
    assert_eq!(env.get(&env.rollouts(), "r")["status"]["abort"], true);
    assert_eq!(env.get(&env.rollouts(), "s")["status"]["abort"], true);

    let out = env.davy(&["retry", "rollout", "r"]);
    assert_eq!(out.stdout, "rollout 'r' retried\n");
    // A merge patch keeps `false` (only null deletes), as upstream's body does.
    assert_eq!(env.get(&env.rollouts(), "r")["status"]["abort"], false);

    let out = env.davy(&["pause", "r"]);
    assert_eq!(out.stdout, "rollout 'r' paused\n");
    assert_eq!(env.get(&env.rollouts(), "r")["spec"]["paused"], true);

    let before = chrono::Utc::now();
    let out = env.davy(&["restart", "r", "--in", "1h"]);
    let after = chrono::Utc::now();
    assert_eq!(out.stdout, "rollout 'r' restarts in 1h\n", "{}", out.stderr);
    let at: chrono::DateTime<chrono::Utc> = env.get(&env.rollouts(), "r")["spec"]["restartAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hour = chrono::Duration::hours(1);
    assert!(
        at >= (before + hour - chrono::Duration::seconds(1)) && at <= after + hour,
        "{at}"
    );
    let out = env.davy(&["restart", "s"]);
    assert_eq!(out.stdout, "rollout 's' restarts in 0s\n");
}

#[test]
fn set_image_changes_matching_containers_only() {
    let env = Env::start();
    env.rollout("r", json!({}));
    let out = env.davy(&["set", "image", "r", "www=nginx:2"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout \"r\" image updated\n"),
        "{}",
        out.stderr
    );
    let spec = &env.get(&env.rollouts(), "r")["spec"]["template"]["spec"];
    assert_eq!(spec["containers"][0]["image"], "nginx:2");
    assert_eq!(spec["containers"][1]["image"], "envoy:1");
    assert_eq!(spec["initContainers"][0]["image"], "busybox:1");

    let out = env.davy(&["set", "image", "r", "*=all:3"]);
    assert_eq!(out.stdout, "rollout \"r\" image updated\n");
    let spec = &env.get(&env.rollouts(), "r")["spec"]["template"]["spec"];
    assert_eq!(spec["containers"][0]["image"], "all:3");
    assert_eq!(spec["containers"][1]["image"], "all:3");
    assert_eq!(spec["initContainers"][0]["image"], "all:3");

    let out = env.davy(&["set", "image", "r", "nope=x:1"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (1, "", "Error: unable to find container named \"nope\"\n")
    );
    let out = env.davy(&["set", "image", "r", "nginx"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error: expected CONTAINER=IMAGE (e.g. www=image:v2), got \"nginx\"\n"
        )
    );
}

#[test]
fn set_image_follows_the_workload_ref_to_the_deployment() {
    let env = Env::start();
    let deployments = env.api("apps", "v1", "Deployment", "deployments");
    env.create(
        &deployments,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
               "spec": {"selector": {"matchLabels": {"app": "d"}},
                        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "www", "image": "nginx:1"}]}}}}),
    );
    env.create(
        &env.rollouts(),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "w", "namespace": "default"},
               "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                        "strategy": {"canary": {}}}}),
    );
    let out = env.davy(&["set", "image", "w", "www=nginx:2"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "deployment \"d\" image updated\n"),
        "{}",
        out.stderr
    );
    let d = env.get(&deployments, "d");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
}

#[test]
fn undo_restores_the_previous_revision_template() {
    let env = Env::start();
    let ro = env.rollout("r", json!({}));
    let uid = ro["metadata"]["uid"].as_str().unwrap().to_string();
    let replica_sets = env.api("apps", "v1", "ReplicaSet", "replicasets");
    for (rev, image) in [(1, "nginx:0"), (2, "nginx:1")] {
        env.create(
            &replica_sets,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": format!("r-h{rev}"), "namespace": "default",
                                "labels": {"app": "r", "rollouts-pod-template-hash": format!("h{rev}")},
                                "annotations": {"rollout.argoproj.io/revision": rev.to_string()},
                                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "r", "uid": uid, "controller": true}]},
                   "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "r", "rollouts-pod-template-hash": format!("h{rev}")}},
                            "template": {"metadata": {"labels": {"app": "r", "rollouts-pod-template-hash": format!("h{rev}")}},
                                         "spec": {"containers": [{"name": "www", "image": image}]}}}}),
        );
    }
    let out = env.davy(&["undo", "r"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'r' undo\n"),
        "{}",
        out.stderr
    );
    let template = &env.get(&env.rollouts(), "r")["spec"]["template"];
    assert_eq!(
        *template,
        json!({"metadata": {"labels": {"app": "r"}}, "spec": {"containers": [{"name": "www", "image": "nginx:0"}]}})
    );
    let out = env.davy(&["undo", "r", "--to-revision", "1"]);
    assert_eq!(
        out.stdout,
        "skipped rollback (current template already matches revision 1)\n"
    );
    let out = env.davy(&["undo", "r", "--to-revision", "9"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error: unable to find specified revision 9 in history\n")
    );
}

#[test]
fn status_exit_codes_for_healthy_degraded_and_timeout() {
    let env = Env::start();
    env.rollout("r", json!({}));
    env.set_status("r", json!({"observedGeneration": "1", "phase": "Healthy"}));
    let out = env.davy(&["status", "r"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Healthy\n"),
        "{}",
        out.stderr
    );

    env.set_status(
        "r",
        json!({"phase": "Degraded", "message": "RolloutAborted: Rollout aborted update to revision 2"}),
    );
    let out = env.davy(&["status", "r"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (
            1,
            "Degraded - RolloutAborted: Rollout aborted update to revision 2\n",
            "Error: The rollout is in a degraded state with message: RolloutAborted: Rollout aborted update to revision 2\n"
        )
    );

    env.set_status(
        "r",
        json!({"phase": "Paused", "message": "CanaryPauseStep"}),
    );
    let out = env.davy(&["status", "r", "--timeout", "1s"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (
            1,
            "Paused - CanaryPauseStep\n",
            "Error: Rollout status watch exceeded timeout\n"
        )
    );
    let out = env.davy(&["status", "r", "--watch=false"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Paused - CanaryPauseStep\n")
    );
}

#[test]
fn create_and_terminate_analysis_runs() {
    let env = Env::start();
    let templates = env.api(
        "argoproj.io",
        "v1alpha1",
        "AnalysisTemplate",
        "analysistemplates",
    );
    let spec = json!({"args": [{"name": "service"}],
                      "metrics": [{"name": "up", "provider": {"web": {"url": "http://{{args.service}}/up"}}}]});
    env.create(
        &templates,
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
               "metadata": {"name": "tmpl", "namespace": "default"}, "spec": spec}),
    );
    let runs = env.api("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns");

    let out = env.davy(&[
        "create",
        "analysisrun",
        "--from",
        "tmpl",
        "-a",
        "service=web",
        "--name",
        "run1",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "analysisrun.argoproj.io/run1 created\n"),
        "{}",
        out.stderr
    );
    let run = env.get(&runs, "run1");
    assert_eq!(
        run["spec"]["args"],
        json!([{"name": "service", "value": "web"}])
    );
    assert_eq!(run["spec"]["metrics"], spec["metrics"]);

    let out = env.davy(&[
        "create",
        "analysisrun",
        "--from",
        "tmpl",
        "-a",
        "service=web",
    ]);
    assert!(
        out.stdout.starts_with("analysisrun.argoproj.io/tmpl-"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.ends_with(" created\n"));

    let out = env.davy(&[
        "create",
        "analysisrun",
        "--from",
        "tmpl",
        "--name",
        "x",
        "-o",
        "json",
    ]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error: args.service was not resolved\n")
    );

    let cluster = {
        let _g = env.runtime.enter();
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "ClusterAnalysisTemplate"),
            "clusteranalysistemplates",
        );
        Api::<DynamicObject>::all_with(env.server.client(), &ar)
    };
    env.create(
        &cluster,
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterAnalysisTemplate",
               "metadata": {"name": "global"}, "spec": {"metrics": spec["metrics"]}}),
    );
    let out = env.davy(&[
        "create",
        "analysisrun",
        "--global",
        "--from",
        "global",
        "--name",
        "run2",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (
            printed["kind"].as_str(),
            printed["metadata"]["name"].as_str()
        ),
        (Some("AnalysisRun"), Some("run2"))
    );

    let out = env.davy(&["terminate", "analysisrun", "run1"]);
    assert_eq!(
        out.stdout, "analysisRun 'run1' terminated\n",
        "{}",
        out.stderr
    );
    assert_eq!(env.get(&runs, "run1")["spec"]["terminate"], true);
}

#[test]
fn experiments_retry_and_terminate() {
    let env = Env::start();
    let experiments = env.api("argoproj.io", "v1alpha1", "Experiment", "experiments");
    env.create(
        &experiments,
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment", "metadata": {"name": "e", "namespace": "default"},
               "spec": {"templates": [{"name": "a", "selector": {"matchLabels": {"app": "e"}},
                                       "template": {"metadata": {"labels": {"app": "e"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}]}}),
    );
    let out = env.davy(&["terminate", "experiment", "e"]);
    assert_eq!(out.stdout, "experiment 'e' terminated\n", "{}", out.stderr);
    assert_eq!(env.get(&experiments, "e")["spec"]["terminate"], true);
    let out = env.davy(&["retry", "experiment", "e"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "experiment 'e' retried\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn flags_before_or_after_the_verb_and_errors_name_the_object() {
    let env = Env::start();
    env.rollout("r", json!({}));
    // Flags after the verb.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_davy"));
    cmd.args(["pause", "r", "-n", "default", "--kubeconfig"])
        .arg(&env.kubeconfig);
    let out = env.run(cmd, &[]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'r' paused\n"),
        "{}",
        out.stderr
    );

    let out = env.davy(&["promote", "nope"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (1, "", "Error: rollouts.argoproj.io \"nope\" not found\n")
    );
    let out = env.davy(&["-n", "elsewhere", "abort", "r"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error: rollouts.argoproj.io \"r\" not found\n")
    );

    // No kubeconfig anywhere: HOME is empty and KUBECONFIG unset.
    let out = env.run(Command::new(env!("CARGO_BIN_EXE_davy")), &["abort", "r"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error: no kubeconfig found: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config\n"
        )
    );
    let missing = env.dir.path().join("missing");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_davy"));
    cmd.arg("--kubeconfig").arg(&missing);
    let out = env.run(cmd, &["abort", "r"]);
    assert_eq!(
        (out.code, out.stderr),
        (
            1,
            format!("Error: kubeconfig {}: no such file\n", missing.display())
        )
    );
}

#[test]
fn get_and_list_print_objects_as_json_and_yaml() {
    let env = Env::start();
    env.rollout("r", json!({}));
    let out = env.davy(&["get", "rollout", "r", "-o", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ro: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(ro["metadata"]["name"], "r");
    assert_eq!(ro["kind"], "Rollout");
    let out = env.davy(&["list", "rollouts", "-o", "yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list: Value = serde_saphyr::from_str(&out.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "r");
}

#[test]
fn set_image_retries_conflicts_and_forbidden_is_reported() {
    let env = Env::start();
    env.rollout("r", json!({}));
    // Two 409s, then the third attempt lands (upstream retries up to 5 times).
    env.server.faults().force_conflicts(2);
    let out = env.davy(&["set", "image", "r", "www=nginx:7"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout \"r\" image updated\n"),
        "{}",
        out.stderr
    );
    let spec = &env.get(&env.rollouts(), "r")["spec"]["template"]["spec"];
    assert_eq!(spec["containers"][0]["image"], "nginx:7");
    assert_eq!(env.server.faults().stats().conflicts, 2);

    // Endless conflicts: the fifth one is the error.
    env.server.faults().force_conflicts(100);
    let out = env.davy(&["set", "image", "r", "www=nginx:8"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Error: Operation cannot be fulfilled on rollouts.argoproj.io \"r\""),
        "{}",
        out.stderr
    );
    env.server.faults().clear();

    // A refused write prints the server's message and exits 1.
    env.server.faults().set_error_code(403);
    env.server
        .faults()
        .set_error_rate_for(davy::sandbox::apiserver::Verb::Patch, 1.0);
    let out = env.davy(&["pause", "r"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (1, "", "Error: injected fault: Patch failed\n")
    );
}

#[test]
fn status_patches_fall_back_to_the_main_resource_without_the_subresource() {
    // A Rollout CRD without the status subresource (Argo Rollouts v0.9 era): the status patch
    // answers 404 and the same body goes to the main resource.
    let env = Env::start_with(|crd| {
        if crd["metadata"]["name"] == "rollouts.argoproj.io" {
            for version in crd["spec"]["versions"].as_array_mut().unwrap() {
                version["subresources"]
                    .as_object_mut()
                    .unwrap()
                    .remove("status");
            }
        }
    });
    env.rollout("r", json!({}));
    let out = env.davy(&["abort", "r"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'r' aborted\n"),
        "{}",
        out.stderr
    );
    assert_eq!(env.get(&env.rollouts(), "r")["status"]["abort"], true);
    // promote: the unified spec+status patch replaces the spec one.
    let out = env.davy(&["promote", "r"]);
    assert_eq!(out.stdout, "rollout 'r' promoted\n", "{}", out.stderr);
    let ro = env.get(&env.rollouts(), "r");
    assert_eq!(ro["spec"]["paused"], false);
    assert_eq!(ro["status"]["currentStepIndex"], 1);
}

#[test]
fn create_analysisrun_from_a_file() {
    let env = Env::start();
    let file = env.dir.path().join("template.yaml");
    std::fs::write(
        &file,
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: local}\n\
         spec:\n  args: [{name: service}]\n  metrics: [{name: up, provider: {web: {url: 'http://{{args.service}}/'}}}]\n",
    )
    .unwrap();
    let out = env.davy(&[
        "create",
        "analysisrun",
        "--from-file",
        file.to_str().unwrap(),
        "-a",
        "service=api",
        "--name",
        "from-file",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "analysisrun.argoproj.io/from-file created\n"),
        "{}",
        out.stderr
    );
    let runs = env.api("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns");
    assert_eq!(
        env.get(&runs, "from-file")["spec"]["args"],
        json!([{"name": "service", "value": "api"}])
    );
}

#[test]
fn undo_with_a_workload_ref_patches_the_deployment() {
    let env = Env::start();
    let deployments = env.api("apps", "v1", "Deployment", "deployments");
    let template = |image: &str| json!({"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "www", "image": image}]}});
    env.create(
        &deployments,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "w"}}, "template": template("nginx:2")}}),
    );
    let ro = env.create(
        &env.rollouts(),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "w", "namespace": "default"},
               "spec": {"selector": {"matchLabels": {"app": "w"}},
                        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                        "strategy": {"canary": {}}}}),
    );
    let uid = ro["metadata"]["uid"].as_str().unwrap().to_string();
    let replica_sets = env.api("apps", "v1", "ReplicaSet", "replicasets");
    for (rev, image) in [(1, "nginx:1"), (2, "nginx:2")] {
        let mut t = template(image);
        t["metadata"]["labels"]["rollouts-pod-template-hash"] = json!(format!("h{rev}"));
        env.create(
            &replica_sets,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": format!("w-h{rev}"), "namespace": "default", "labels": t["metadata"]["labels"],
                                "annotations": {"rollout.argoproj.io/revision": rev.to_string()},
                                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "w", "uid": uid, "controller": true}]},
                   "spec": {"replicas": 0, "selector": {"matchLabels": t["metadata"]["labels"]}, "template": t}}),
        );
    }
    let out = env.davy(&["undo", "w"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'w' undo\n"),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.get(&deployments, "d")["spec"]["template"],
        template("nginx:1")
    );
    // The Rollout itself still has no template.
    assert_eq!(
        env.get(&env.rollouts(), "w")["spec"]["template"],
        Value::Null
    );
}

#[test]
fn get_writes_no_escape_codes_into_a_pipe() {
    let env = Env::start();
    env.rollout("r", json!({}));
    env.set_status(
        "r",
        json!({"phase": "Degraded", "message": "ProgressDeadlineExceeded"}),
    );
    // stdout is a pipe here: no colour even without --no-color on a colour TERM, and none
    // with NO_COLOR.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_davy"));
    cmd.arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    let out = env.run(cmd, &["get", "rollout", "r"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Name:            r"), "{}", out.stdout);
    assert!(!out.stdout.contains("\x1b["), "{:?}", out.stdout);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_davy"));
    cmd.arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .env("NO_COLOR", "1");
    let out = env.run(cmd, &["get", "rollout", "r"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("\x1b["), "{:?}", out.stdout);

    // -w on a pipe appends frames: the first one starts without the screen clear.
    let mut child = Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(["get", "rollout", "r", "-w"])
        .env("TERM", "xterm-256color")
        .env("HOME", env.dir.path())
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.starts_with("Name:"), "{first:?}");
}

#[test]
fn server_and_token_flags_work_without_a_kubeconfig() {
    let env = Env::start();
    env.rollout("r", json!({}));
    let url = format!("http://{}", env.http.addr());
    // HOME is empty and KUBECONFIG unset: the flags alone reach the sandbox (any token passes).
    let out = env.run(
        Command::new(env!("CARGO_BIN_EXE_davy")),
        &["--server", &url, "--token", "X", "get", "rollout", "r"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Name:            r"), "{}", out.stdout);

    let out = env.davy(&["get", "rollout", "r", "--request-timeout", "soon"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error: invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)\n"
        )
    );
    let out = env.davy(&["get", "rollout", "r", "--request-timeout", "30s"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}
