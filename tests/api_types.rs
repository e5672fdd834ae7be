//! API types: round-trip of upstream's example manifests, duration and int-or-string tables.

mod common;

use std::path::{Path, PathBuf};

use davy::api::{DavyObject, davy_kind, json_diff};

/// Every file under `dir`, sorted, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Templated (not plain YAML) files of the upstream examples.
const TEMPLATED: [&str; 2] = [
    "helm-blue-green/templates/rollout.yaml",
    "traffic-management/rollout-linkerd.yaml",
];

#[test]
fn argo_examples_round_trip_exactly() {
    let Some(conformance) = common::conformance_dir() else {
        return;
    };
    let root = conformance.join("argo-examples").join("examples");
    let mut failures = Vec::new();
    let (mut plain, mut documents, mut templated) = (0, 0, 0);
    for path in files_under(&root) {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = serde_saphyr::from_multiple::<serde_json::Value>(&text);
        if TEMPLATED.contains(&rel.as_str()) {
            match parsed {
                Ok(_) => failures.push(format!("{rel}: templated file parsed as YAML")),
                Err(err) => match err.location() {
                    Some(loc) if loc.line() > 0 => templated += 1,
                    _ => failures.push(format!("{rel}: YAML error without a line: {err}")),
                },
            }
            continue;
        }
        let docs = match parsed {
            Ok(docs) => docs,
            Err(err) => {
                failures.push(format!("{rel}: YAML error: {err}"));
                continue;
            }
        };
        plain += 1;
        for (i, doc) in docs.iter().enumerate() {
            if davy_kind(doc).is_none() {
                continue;
            }
            documents += 1;
            let obj = match DavyObject::from_value(doc) {
                Ok(Some(obj)) => obj,
                Ok(None) => unreachable!("davy_kind said it is a Davy kind"),
                Err(err) => {
                    failures.push(format!("{rel} doc {i}: decode error: {err}"));
                    continue;
                }
            };
            let out = obj.to_value().unwrap();
            for diff in json_diff(doc, &out) {
                failures.push(format!("{rel} doc {i} ({}): {diff}", obj.kind()));
            }
            // decode → encode → decode is the identity on the typed value.
            let again = DavyObject::from_value(&out).unwrap().unwrap();
            if again != obj {
                failures.push(format!("{rel} doc {i}: second decode differs"));
            }
        }
    }
    println!(
        "{plain} plain files, {documents} documents round-tripped; {templated} templated files rejected with a line"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(templated, TEMPLATED.len());
    assert_eq!(plain, 23);
    assert_eq!(documents, 26);
}
