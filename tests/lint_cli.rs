//! `davy lint` end to end: the real binary on our examples, on upstream's example manifests,
//! on broken fixtures, with JSON output, standard input and usage errors.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn davy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(args)
        .output()
        .expect("run davy")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn lint(files: &[&Path]) -> Output {
    let mut args = vec!["lint".to_string()];
    for f in files {
        args.push("-f".into());
        args.push(f.display().to_string());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    davy(&refs)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn project_examples_are_clean() {
    let mut files = Vec::new();
    yaml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &mut files,
    );
    assert!(!files.is_empty(), "no examples found");
    for f in &files {
        let o = lint(&[f]);
        assert_eq!(
            (o.status.code(), stdout(&o), stderr(&o)),
            (Some(0), String::new(), String::new()),
            "{}",
            f.display()
        );
    }
    let all: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let o = lint(&all);
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(0), String::new()),
        "all examples together"
    );
    // Several files after one `-f` work too.
    let mut args = vec!["lint".to_string(), "-f".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let o = davy(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(0), String::new()),
        "one -f, several files"
    );
    println!("lint examples: {} files clean", files.len());
}

#[test]
fn upstream_examples() {
    let Some(dir) = common::conformance_dir() else {
        return;
    };
    let mut files = Vec::new();
    yaml_files(&dir.join("argo-examples"), &mut files);
    let templated = [
        "helm-blue-green/templates/rollout.yaml",
        "traffic-management/rollout-linkerd.yaml",
    ];
    let (mut clean, mut yaml_errors) = (0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let o = lint(&[f]);
        let (code, out, err) = (o.status.code(), stdout(&o), stderr(&o));
        let shown = f.display().to_string();
        if templated.iter().any(|t| shown.ends_with(t)) {
            // A YAML error naming the file and a line, and nothing else.
            let prefix = format!("{shown}:");
            let ok = code == Some(1)
                && !out.is_empty()
                && out.lines().all(|l| {
                    l.strip_prefix(&prefix)
                        .and_then(|r| r.split_once(": YAML error: "))
                        .is_some_and(|(line, _)| line.parse::<usize>().is_ok_and(|n| n > 0))
                })
                && !err.contains("panicked");
            if ok {
                yaml_errors += 1;
            } else {
                failures.push(format!(
                    "{shown}: expected a YAML error, got {code:?} {out} {err}"
                ));
            }
        } else if code == Some(0) && out.is_empty() && err.is_empty() {
            clean += 1;
        } else {
            failures.push(format!(
                "{shown}: expected no findings, got {code:?}\n{out}{err}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!((clean, yaml_errors), (23, 2));
    println!(
        "lint argo-examples: {clean} plain files clean, {yaml_errors} templated files give a YAML error"
    );
}

const ROLLOUT: &str = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web:1
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      steps:
      - setWeight: 20
      - analysis:
          templates:
          - templateName: success-rate
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web-stable
spec:
  selector: {app: web}
";

const TEMPLATE: &str = "apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  metrics:
  - name: rate
    provider:
      prometheus:
        query: up
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

fn findings(o: &Output) -> Vec<String> {
    stdout(o).lines().map(str::to_string).collect()
}

#[test]
fn broken_fixtures_report_file_line_kind_name_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    // Unknown field: the path and the line of the key.
    let f = write(
        d,
        "unknown.yaml",
        &ROLLOUT.replace("      steps:\n", "      stepz: []\n      steps:\n"),
    );
    let o = lint(&[&f]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        findings(&o),
        vec![format!(
            "{}:19: Rollout \"web\": unknown field \"spec.strategy.canary.stepz\"",
            f.display()
        )]
    );

    // An invalid setWeight, reported at the document's first line (after a leading document).
    let f = write(
        d,
        "weight.yaml",
        &format!(
            "# services elsewhere\n---\n{}",
            ROLLOUT.replace("setWeight: 20", "setWeight: 120")
        ),
    );
    let o = lint(&[&f]);
    assert_eq!(
        findings(&o),
        vec![format!(
            "{}:3: Rollout \"web\": The Rollout \"web\" is invalid: spec.strategy.steps[0].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100",
            f.display()
        )]
    );

    // Missing references: the bundle holds Services and AnalysisTemplates, not the ones used.
    let other_template = TEMPLATE.replace("name: success-rate", "name: latency");
    let f = write(
        d,
        "refs.yaml",
        &format!("{ROLLOUT}---\n{SERVICE}---\n{other_template}"),
    );
    let o = lint(&[&f]);
    assert_eq!(
        findings(&o),
        vec![
            format!(
                "{}:1: Rollout \"web\": The Rollout \"web\" is invalid: spec.strategy.canary.canaryService: Invalid value: \"web-canary\": service \"web-canary\" not found",
                f.display()
            ),
            format!(
                "{}:1: Rollout \"web\": The Rollout \"web\" is invalid: spec.strategy.canary.steps[1].analysis.templates: Invalid value: \"success-rate\": AnalysisTemplate 'success-rate' not found",
                f.display()
            ),
        ]
    );

    // References resolved across files: all present, nothing to report.
    let canary = SERVICE.replace("web-stable", "web-canary");
    let a = write(d, "a.yaml", ROLLOUT);
    let b = write(
        d,
        "b.yaml",
        &format!("{SERVICE}---\n{canary}---\n{TEMPLATE}"),
    );
    let o = lint(&[&a, &b]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), String::new()));

    // A template with a metric-rule violation and an undeclared placeholder.
    let bad_template = TEMPLATE.replace("query: up", "query: '{{args.nope}}'\n    count: 3");
    let f = write(d, "template.yaml", &bad_template);
    let o = lint(&[&f]);
    assert_eq!(
        findings(&o),
        vec![
            format!(
                "{}:1: AnalysisTemplate \"success-rate\": failed to resolve {{{{args.nope}}}}",
                f.display()
            ),
            format!(
                "{}:1: AnalysisTemplate \"success-rate\": Analysis spec invalid: metrics[0]: interval must be specified when count > 1",
                f.display()
            ),
        ]
    );

    // A YAML syntax error names the line; the other documents are still linted.
    let f = write(
        d,
        "syntax.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: [1,\n---\n{}",
            ROLLOUT.replace("image: web:1", "image: ''")
        ),
    );
    let o = lint(&[&f]);
    let out = findings(&o);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].starts_with(&format!("{}:4: YAML error: ", f.display())),
        "{out:?}"
    );
    assert_eq!(
        out[1],
        format!(
            "{}:6: Rollout \"web\": The Rollout \"web\" is invalid: spec.template.spec.containers[0].image: Required value",
            f.display()
        )
    );
}

#[test]
fn json_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(
        dir.path(),
        "weight.yaml",
        &ROLLOUT.replace("setWeight: 20", "setWeight: -5"),
    );
    let o = davy(&["lint", "-f", &f.display().to_string(), "--output", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON output");
    assert_eq!(
        v,
        serde_json::json!([{
            "file": f.display().to_string(),
            "line": 1,
            "kind": "Rollout",
            "name": "web",
            "message": "The Rollout \"web\" is invalid: spec.strategy.steps[0].setWeight: Invalid value: -5: SetWeight needs to be between 0 and 100",
        }])
    );
    let clean = write(dir.path(), "clean.yaml", TEMPLATE);
    let o = davy(&["lint", "-f", &clean.display().to_string(), "-o", "json"]);
    assert_eq!((o.status.code(), stdout(&o).trim()), (Some(0), "[]"));
}

#[test]
fn reads_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_davy"))
        .args(["lint", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let input = format!(
        "---\n{}",
        TEMPLATE.replace("  - name: rate\n", "  - name: rate\n    interval: 5d\n")
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(findings(&o), vec![
        "<stdin>:2: AnalysisTemplate \"success-rate\": Analysis spec invalid: metrics[0]: invalid interval string: time: unknown unit \"d\" in duration \"5d\"".to_string()
    ]);
}

#[test]
fn usage_errors_exit_2() {
    let o = davy(&["lint"]);
    assert_eq!(o.status.code(), Some(2), "no file: {}", stderr(&o));
    let o = davy(&["lint", "-f", "/nonexistent/davy-lint-fixture.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/davy-lint-fixture.yaml"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    let o = davy(&["lint", "-f", "x.yaml", "--output", "xml"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A blue-green Rollout `bg` whose `blueGreen` block is `strategy` (indented for the file).
fn blue_green(strategy: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: bg
spec:
  replicas: 2
  revisionHistoryLimit: 1
  selector:
    matchLabels: {{app: bg}}
  template:
    metadata:
      labels: {{app: bg}}
    spec:
      containers: [{{name: app, image: app:1}}]
  strategy:
    blueGreen:
{strategy}"
    )
}

#[test]
fn blue_green_rules_with_upstream_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cases = [
        (
            "      activeService: svc\n      previewService: svc\n",
            "spec.strategy.activeService: Invalid value: \"svc\": This rollout uses the same service for the active and preview services, but two different services are required.",
        ),
        // No activeService: upstream's lint compares "" with the preview Service...
        (
            "      autoPromotionEnabled: false\n",
            "spec.strategy.activeService: Invalid value: \"\": This rollout uses the same service for the active and preview services, but two different services are required.",
        ),
        // ...and with one, Davy says what the API server says (upstream's lint says nothing).
        (
            "      previewService: p\n",
            "spec.strategy.blueGreen.activeService: Required value",
        ),
        (
            "      activeService: \"\"\n      previewService: p\n",
            "spec.strategy.blueGreen.activeService: Required value",
        ),
        (
            "      activeService: a\n      previewService: p\n      scaleDownDelayRevisionLimit: 3\n",
            "spec.strategy.scaleDownDelayRevisionLimit: Invalid value: 3: This rollout's revision history limit can not be smaller than the rollout's scale down limit",
        ),
        (
            "      activeService: a\n      antiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: {weight: 0}}\n",
            "spec.strategy.antiAffinity.weight: Invalid value: 0: AntiAffinity weight must be between 1-100",
        ),
    ];
    for (index, (strategy, message)) in cases.into_iter().enumerate() {
        let f = write(d, &format!("bg{index}.yaml"), &blue_green(strategy));
        let o = lint(&[&f]);
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert_eq!(
            findings(&o),
            vec![format!(
                "{}:1: Rollout \"bg\": The Rollout \"bg\" is invalid: {message}",
                f.display()
            )]
        );
    }

    // The active Service in the same file must select the pod template's labels.
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  selector: {app: other}\n---\n";
    let f = write(
        d,
        "bg-service.yaml",
        &format!("{service}{}", blue_green("      activeService: a\n")),
    );
    let o = lint(&[&f]);
    assert_eq!(
        findings(&o),
        vec![format!(
            "{}:7: Rollout \"bg\": The Rollout \"bg\" is invalid: spec.strategy.blueGreen.activeService: Invalid value: \"a\": Service \"a\" has unmatch label \"app\" in rollout",
            f.display()
        )]
    );
    // A valid one is clean.
    let ok =
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  selector: {app: bg}\n---\n";
    let f = write(
        d,
        "bg-ok.yaml",
        &format!("{ok}{}", blue_green("      activeService: a\n")),
    );
    let o = lint(&[&f]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}
