//! Reading `davy analyze`'s input: the first AnalysisTemplate, ClusterAnalysisTemplate or
//! AnalysisRun of a multi-document YAML file becomes an AnalysisRun, with `--arg` values merged
//! as a Rollout would pass them, templates it references resolved from the same file, and the
//! file's Secrets available to `secretKeyRef` arguments.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::analysis::runner::StaticSecrets;
use crate::analysis::templates;
use crate::api::run_spec::new_run_spec_from_templates;
use crate::api::{
    AnalysisRun, AnalysisRunSpec, AnalysisTemplate, AnalysisTemplateSpec, Argument,
    ClusterAnalysisTemplate,
};

/// A usage error: printed as is, exit code 64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The run to execute, built from the file.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub run: AnalysisRun,
    pub secrets: StaticSecrets,
    /// `--arg` names the template does not declare (upstream drops them silently).
    pub ignored_args: Vec<String>,
}

struct Documents {
    templates: BTreeMap<String, AnalysisTemplate>,
    cluster_templates: BTreeMap<String, ClusterAnalysisTemplate>,
    subject: Option<Json>,
    secrets: StaticSecrets,
}

fn kind_of(doc: &Json) -> &str {
    doc.get("kind").and_then(Json::as_str).unwrap_or("")
}

fn name_of(doc: &Json) -> String {
    doc.pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string()
}

fn decode<T: serde::de::DeserializeOwned>(doc: &Json, file: &str) -> Result<T, UsageError> {
    serde_json::from_value(doc.clone()).map_err(|e| {
        UsageError(format!(
            "{file}: {} \"{}\": {e}",
            kind_of(doc),
            name_of(doc)
        ))
    })
}

/// Secret `data` is base64; `stringData` is plain and wins, as the API server merges it.
fn read_secret(doc: &Json) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if let Some(data) = doc.get("data").and_then(Json::as_object) {
        for (key, value) in data {
            if let Some(text) = value.as_str().and_then(base64_decode) {
                values.insert(key.clone(), text);
            }
        }
    }
    if let Some(data) = doc.get("stringData").and_then(Json::as_object) {
        for (key, value) in data {
            if let Some(text) = value.as_str() {
                values.insert(key.clone(), text.to_string());
            }
        }
    }
    values
}

/// Standard base64 (with or without padding) to UTF-8 text.
fn base64_decode(text: &str) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_documents(text: &str, file: &str) -> Result<Documents, UsageError> {
    let docs: Vec<Json> =
        serde_saphyr::from_multiple(text).map_err(|e| UsageError(format!("{file}: {e}")))?;
    let mut out = Documents {
        templates: BTreeMap::new(),
        cluster_templates: BTreeMap::new(),
        subject: None,
        secrets: StaticSecrets::default(),
    };
    for doc in docs.into_iter().filter(|d| d.is_object()) {
        match kind_of(&doc) {
            "AnalysisTemplate" => {
                let t: AnalysisTemplate = decode(&doc, file)?;
                out.templates.insert(name_of(&doc), t);
            }
            "ClusterAnalysisTemplate" => {
                let t: ClusterAnalysisTemplate = decode(&doc, file)?;
                out.cluster_templates.insert(name_of(&doc), t);
            }
            "Secret" => {
                out.secrets.secrets.insert(name_of(&doc), read_secret(&doc));
                continue;
            }
            "AnalysisRun" => {}
            _ => continue,
        }
        if out.subject.is_none() {
            out.subject = Some(doc);
        }
    }
    Ok(out)
}

/// The specs of `root` and every template it references (recursively, each once), split into
/// namespaced and cluster-scoped as upstream flattens them.
fn collect_templates<'a>(
    docs: &'a Documents,
    root: &'a AnalysisTemplateSpec,
    root_cluster: bool,
) -> Result<(Vec<&'a AnalysisTemplateSpec>, Vec<&'a AnalysisTemplateSpec>), UsageError> {
    let reached = templates::walk(root.templates.as_deref().unwrap_or(&[]), |key| {
        if key.cluster {
            docs.cluster_templates.get(&key.name).map(|t| &*t.spec)
        } else {
            docs.templates.get(&key.name).map(|t| &t.spec)
        }
    });
    if let Some(key) = reached.missing.first() {
        return Err(UsageError(key.not_found()));
    }
    let (mut namespaced, mut cluster) = (Vec::new(), Vec::new());
    if root_cluster {
        cluster.push(root);
    } else {
        namespaced.push(root);
    }
    namespaced.extend(reached.namespaced);
    cluster.extend(reached.cluster);
    Ok((namespaced, cluster))
}

/// Parses `name=value`.
pub fn parse_arg(text: &str) -> Result<(String, String), UsageError> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(UsageError(format!(
            "invalid --arg {text:?}: expected NAME=VALUE"
        ))),
    }
}

/// Builds the run from `text` (the file's content, `file` its name for messages).
pub fn load(text: &str, file: &str, cli_args: &[(String, String)]) -> Result<Loaded, UsageError> {
    let docs = parse_documents(text, file)?;
    let Some(subject) = docs.subject.clone() else {
        return Err(UsageError(format!(
            "{file}: no AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun found"
        )));
    };
    let caller: Vec<Argument> = cli_args
        .iter()
        .map(|(name, value)| Argument {
            name: name.clone(),
            value: Some(value.clone()),
            value_from: None,
        })
        .collect();
    let name = name_of(&subject);
    let (spec, declared): (AnalysisRunSpec, BTreeSet<String>) = match kind_of(&subject) {
        "AnalysisRun" => {
            let run: AnalysisRun = decode(&subject, file)?;
            let mut spec = run.spec;
            let mut args = spec.args.take().unwrap_or_default();
            for (arg_name, value) in cli_args {
                if let Some(arg) = args.iter_mut().find(|a| &a.name == arg_name) {
                    arg.value = Some(value.clone());
                    arg.value_from = None;
                }
            }
            let declared = args.iter().map(|a| a.name.clone()).collect();
            spec.args = (!args.is_empty()).then_some(args);
            spec.terminate = None;
            (spec, declared)
        }
        kind => {
            let cluster = kind == "ClusterAnalysisTemplate";
            let root = if cluster {
                docs.cluster_templates.get(&name).map(|t| &*t.spec)
            } else {
                docs.templates.get(&name).map(|t| &t.spec)
            };
            let root =
                root.ok_or_else(|| UsageError(format!("{file}: {kind} \"{name}\" not readable")))?;
            let (namespaced, cluster_specs) = collect_templates(&docs, root, cluster)?;
            let declared = namespaced
                .iter()
                .chain(&cluster_specs)
                .flat_map(|t| t.args.iter().flatten().map(|a| a.name.clone()))
                .collect();
            let spec = new_run_spec_from_templates(&namespaced, &cluster_specs, &caller, &[], &[])
                .map_err(|e| UsageError(e.to_string()))?;
            (spec, declared)
        }
    };
    let ignored_args = cli_args
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| !declared.contains(n))
        .collect();
    let mut run = AnalysisRun::new(&name, spec);
    run.metadata.namespace = subject
        .pointer("/metadata/namespace")
        .and_then(Json::as_str)
        .map(String::from);
    run.metadata.uid = Some(local_uid(&name));
    // Secret arguments not in the file would only fail later, as an Error run.
    for arg in run.spec.args.iter().flatten() {
        if arg.value.is_some() {
            continue;
        }
        if let Some(reference) = arg
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
        {
            let secret = docs.secrets.secrets.get(&reference.name).ok_or_else(|| {
                UsageError(format!(
                    "Unable to resolve metric arguments: secrets \"{}\" not found",
                    reference.name
                ))
            })?;
            if !secret.contains_key(&reference.key) {
                return Err(UsageError(format!(
                    "Unable to resolve metric arguments: key '{}' does not exist in secret '{}'",
                    reference.key, reference.name
                )));
            }
        }
    }
    Ok(Loaded {
        run,
        secrets: docs.secrets,
        ignored_args,
    })
}

/// A stable stand-in UID for a local run (job names need one).
fn local_uid(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let h = format!("{hash:016x}");
    format!("00000000-0000-4000-8000-{}", &h[4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_secrets() {
        assert_eq!(base64_decode("aHR0cDovL3g="), Some("http://x".to_string()));
        assert_eq!(base64_decode("aHR0cDovL3g"), Some("http://x".to_string()));
        assert_eq!(base64_decode("!!"), None);
    }

    #[test]
    fn args_parse() {
        assert_eq!(
            parse_arg("a=b=c").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert!(parse_arg("novalue").is_err());
    }
}
