//! `davy lint -f FILE [-f FILE ...] [--output text|json]`: offline checks of manifests.
//!
//! Each YAML document is decoded on its own (so one broken document does not hide the others)
//! and keeps the line it starts on. Davy's kinds are decoded strictly: a key of the input that
//! the typed value does not re-encode is an unknown field, reported with its path and line.
//! Rollouts get every static rule of spec §9 and the referenced-resource rules 19–22, resolved
//! against the Services, Ingresses, VirtualServices and (Cluster)AnalysisTemplates of all the
//! files given; templates and AnalysisRuns get the metric and argument rules.
//!
//! Missing references: upstream's `kubectl argo rollouts lint` never reports them (it only checks
//! the objects present). Davy reports a missing object only when at least one object of that
//! kind appears in the linted files: such a bundle is taken to be complete for that kind, while a
//! Rollout linted alone is not flagged for Services that live elsewhere.

use std::io::Read;
use std::sync::OnceLock;

use anyhow::Context;
use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;
use serde_json::Value;

use crate::analysis::templates;
use crate::api::analysis::{AnalysisRunSpec, AnalysisTemplateSpec};
use crate::api::json_diff::{JsonDifference, json_diff};
use crate::api::object::DavyObject;
use crate::api::run_spec::{ArgsError, flatten_templates, resolve_args, resolve_metric_args};
use crate::api::validate::analysis::{
    SPEC_INVALID_PREFIX, check_metric_placeholders, stand_in_args, validate_dry_run_rules,
    validate_metrics, validate_retention_rules,
};
use crate::api::validate::{
    References, invalid_spec_message, validate_rollout, validate_rollout_references,
};

/// Arguments of `davy lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files to lint together (`-` reads standard input): `-f a.yaml -f b.yaml` or `-f a.yaml b.yaml`.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<String>,
    /// How to print the findings.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One `FILE:LINE: <Kind> "<name>": <message>` line per problem.
    Text,
    /// A JSON array of `{file, line, kind, name, message}`.
    Json,
}

/// One problem found in the input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// File name as given (`<stdin>` for `-`).
    pub file: String,
    /// 1-based line: where the problem is, or where its document starts.
    pub line: usize,
    /// Kind of the object, `None` for YAML errors.
    pub kind: Option<String>,
    /// Name of the object, `None` for YAML errors.
    pub name: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Some(kind) => write!(
                f,
                "{}:{}: {kind} \"{}\": {}",
                self.file,
                self.line,
                self.name.as_deref().unwrap_or(""),
                self.message
            ),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.message),
        }
    }
}

/// A named text to lint.
#[derive(Clone, Debug)]
pub struct Source {
    /// Name used in findings.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

/// Runs `davy lint`: 0 when clean, 1 when something was found; an unreadable file is an error
/// (exit 2 from `main`).
pub fn run(args: LintArgs) -> anyhow::Result<i32> {
    let mut sources = Vec::new();
    for file in &args.files {
        let (name, text) = if file == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            ("<stdin>".to_string(), text)
        } else {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
            (file.clone(), text)
        };
        sources.push(Source { name, text });
    }
    let findings = lint_sources(&sources);
    match args.output {
        OutputFormat::Text => {
            for f in &findings {
                println!("{f}");
            }
        }
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&findings)?),
    }
    Ok(if findings.is_empty() { 0 } else { 1 })
}

/// A document's text and where it sits in its source.
struct Document<'a> {
    /// Line of the document's first text line (1-based).
    first_line: usize,
    /// The text, starting at `first_line`.
    text: &'a str,
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
}

/// Splits a multi-document stream at `---` and `...` lines. A marker at column 0 always ends
/// a document in YAML, so splitting on lines is exact.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let bare = line.trim_end_matches('\n');
        if is_marker(bare, "---") || is_marker(bare, "...") {
            docs.push(Document {
                first_line: start_line,
                text: &text[start..offset],
            });
            // The rest of a `---` line belongs to the next document (`--- !tag` or `--- {}`).
            start = if is_marker(bare, "---") {
                offset + 3
            } else {
                offset + line.len()
            };
            start_line = if is_marker(bare, "---") {
                line_no
            } else {
                line_no + 1
            };
        }
        offset += line.len();
    }
    docs.push(Document {
        first_line: start_line,
        text: &text[start..],
    });
    docs.retain(|d| content_line(d.text).is_some());
    docs
}

/// Offset (0-based) of the first line holding YAML content, skipping blanks, comments and directives.
fn content_line(text: &str) -> Option<usize> {
    text.lines().position(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !l.starts_with('%')
    })
}

/// Strips saphyr's ` at line L, column C` suffix: the finding carries the line itself.
fn bare_yaml_message(err: &serde_saphyr::Error) -> (String, Option<usize>) {
    let text = err.without_snippet().to_string();
    let msg = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let loc = err.location().filter(|l| l.line() > 0);
    let msg = match loc {
        Some(l) if l.column() > 0 => format!("{msg} (column {})", l.column()),
        _ => msg,
    };
    (msg, loc.map(|l| l.line() as usize))
}

/// A path segment of a JSON path from [`json_diff`].
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Parses `.spec.steps[0]["a/b"]` into segments.
fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            segs.push(Seg::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]").unwrap_or(r.len());
            let key = serde_json::from_str::<String>(&format!("\"{}\"", &r[..end]))
                .unwrap_or_else(|_| r[..end].to_string());
            segs.push(Seg::Key(key));
            rest = r.get(end + 2..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            segs.push(Seg::Index(r[..end].parse().unwrap_or(0)));
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            break;
        }
    }
    segs
}

/// The path as users write it: `spec.strategy.canary.stepz`, `spec.template.metadata.labels[a/b]`.
fn display_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) if k.contains(['.', '/', '[', ']']) => out.push_str(&format!("[{k}]")),
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn value_at<'a>(root: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    segs.iter().try_fold(root, |v, s| match s {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

/// Whether a JSON value is what a skipped-when-empty field leaves out.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The JSON schema of a Davy kind (generated once per kind).
fn kind_schema(kind: &str) -> Option<&'static Value> {
    use crate::api::analysis::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate};
    use crate::api::experiment::Experiment;
    use crate::api::rollout::Rollout;
    static SCHEMAS: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        let gen_ = |s: schemars::Schema| s.to_value();
        vec![
            ("Rollout", gen_(schemars::schema_for!(Rollout))),
            (
                "AnalysisTemplate",
                gen_(schemars::schema_for!(AnalysisTemplate)),
            ),
            (
                "ClusterAnalysisTemplate",
                gen_(schemars::schema_for!(ClusterAnalysisTemplate)),
            ),
            ("AnalysisRun", gen_(schemars::schema_for!(AnalysisRun))),
            ("Experiment", gen_(schemars::schema_for!(Experiment))),
        ]
    });
    all.iter().find(|(k, _)| *k == kind).map(|(_, v)| v)
}

/// Whether the schema declares the field at `segs` (used only for zero values that the typed
/// encoding leaves out, where re-encoding cannot tell a known field from an unknown one).
fn schema_knows(root: &Value, node: &Value, segs: &[Seg], depth: usize) -> bool {
    if depth > 64 {
        return true;
    }
    let mut node = node;
    while let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p)) else {
            return true;
        };
        node = target;
    }
    if node == &Value::Bool(true)
        || node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
    {
        return true;
    }
    let Some((first, rest)) = segs.split_first() else {
        return true;
    };
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = node.get(combinator).and_then(Value::as_array)
            && list.iter().any(|s| schema_knows(root, s, segs, depth + 1))
        {
            return true;
        }
    }
    match first {
        Seg::Key(k) => {
            if let Some(p) = node.pointer("/properties").and_then(|p| p.get(k)) {
                return schema_knows(root, p, rest, depth + 1);
            }
            match node.get("additionalProperties") {
                Some(Value::Bool(b)) => *b,
                Some(ap @ Value::Object(_)) => schema_knows(root, ap, rest, depth + 1),
                _ => false,
            }
        }
        Seg::Index(_) => node
            .get("items")
            .is_some_and(|items| schema_knows(root, items, rest, depth + 1)),
    }
}

/// Paths of the input's keys that the typed object drops: its unknown fields.
fn unknown_fields(kind: &str, input: &Value, obj: &DavyObject) -> Vec<Vec<Seg>> {
    let Ok(encoded) = obj.to_value() else {
        return Vec::new();
    };
    json_diff(input, &encoded)
        .into_iter()
        .filter_map(|d| match d {
            JsonDifference::Dropped { path } => Some(parse_path(&path)),
            _ => None,
        })
        .filter(|segs| {
            let v = value_at(input, segs).unwrap_or(&Value::Null);
            if v.is_null() {
                return false; // `key: null` means "unset" to Kubernetes too.
            }
            // Zero values may be left out by the encoding: only the schema can tell.
            !(is_zero(v) && kind_schema(kind).is_some_and(|s| schema_knows(s, s, segs, 0)))
        })
        .collect()
}

/// A YAML node with the lines of its keys, parsed only to place a finding on its line.
enum Located {
    Map(Vec<(serde_saphyr::Spanned<String>, Located)>),
    Seq(Vec<serde_saphyr::Spanned<Located>>),
    Scalar,
}

impl<'de> serde::Deserialize<'de> for Located {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Located;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_none<E>(self) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Located, D::Error> {
                <Located as serde::Deserialize>::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Located, A::Error> {
                let mut items = Vec::new();
                while let Some(x) = a.next_element()? {
                    items.push(x);
                }
                Ok(Located::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Located, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    entries.push(entry);
                }
                Ok(Located::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// The 1-based line (within `text`) of the key or item at `segs`.
fn locate(text: &str, segs: &[Seg]) -> Option<usize> {
    let root: Located = serde_saphyr::from_str(text).ok()?;
    let mut node = &root;
    let mut line = None;
    for s in segs {
        match (node, s) {
            (Located::Map(entries), Seg::Key(k)) => {
                let (key, value) = entries.iter().find(|(key, _)| &key.value == k)?;
                line = Some(key.referenced.line() as usize);
                node = value;
            }
            (Located::Seq(items), Seg::Index(i)) => {
                let item = items.get(*i)?;
                line = Some(item.referenced.line() as usize);
                node = &item.value;
            }
            _ => return line,
        }
    }
    line.filter(|l| *l > 0)
}

/// An object of the input with where it came from.
struct Object {
    source: usize,
    line: usize,
    name: String,
    obj: DavyObject,
}

/// Findings of all `sources` linted together, ordered by file and line.
pub fn lint_sources(sources: &[Source]) -> Vec<Finding> {
    let mut found: Vec<(usize, Finding)> = Vec::new();
    let mut objects = Vec::new();
    let mut refs = References::default();
    for (si, src) in sources.iter().enumerate() {
        for doc in split_documents(&src.text) {
            let start = doc.first_line + content_line(doc.text).unwrap_or(0);
            let mut finding =
                |line: usize, kind: Option<&str>, name: Option<&str>, message: String| {
                    found.push((
                        si,
                        Finding {
                            file: src.name.clone(),
                            line,
                            kind: kind.map(str::to_string),
                            name: name.map(str::to_string),
                            message,
                        },
                    ));
                };
            let value: Value = match serde_saphyr::from_str(doc.text) {
                Ok(v) => v,
                Err(e) => {
                    let (msg, line) = bare_yaml_message(&e);
                    let line = line.map_or(start, |l| doc.first_line + l - 1);
                    finding(line, None, None, format!("YAML error: {msg}"));
                    continue;
                }
            };
            if value.is_null() {
                continue;
            }
            let Some(map) = value.as_object() else {
                finding(
                    start,
                    None,
                    None,
                    "YAML error: a document must be a mapping".to_string(),
                );
                continue;
            };
            let kind = map
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let kind = kind.as_str();
            let api_version = map
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match DavyObject::from_value(&value) {
                Ok(Some(obj)) => {
                    for segs in unknown_fields(kind, &value, &obj) {
                        let line =
                            locate(doc.text, &segs).map_or(start, |l| doc.first_line + l - 1);
                        let msg = format!("unknown field \"{}\"", display_path(&segs));
                        finding(line, Some(kind), Some(&name), msg);
                    }
                    objects.push(Object {
                        source: si,
                        line: start,
                        name,
                        obj,
                    });
                }
                Ok(None) => match (api_version.split('/').next().unwrap_or(""), kind) {
                    (_, "Service") if api_version == "v1" => {
                        match serde_json::from_value::<Service>(value) {
                            Ok(svc) => refs.add_service(svc),
                            Err(e) => finding(start, Some(kind), Some(&name), e.to_string()),
                        }
                    }
                    ("networking.k8s.io" | "extensions", "Ingress") => refs.add_ingress(value),
                    ("networking.istio.io", "VirtualService") => refs.add_virtual_service(value),
                    _ => {}
                },
                Err(e) => {
                    let line =
                        typed_error_line(kind, doc.text).map_or(start, |l| doc.first_line + l - 1);
                    finding(line, Some(kind), Some(&name), e.to_string());
                }
            }
        }
    }
    for o in &objects {
        match &o.obj {
            DavyObject::AnalysisTemplate(t) => refs.add_analysis_template((**t).clone()),
            DavyObject::ClusterAnalysisTemplate(t) => {
                refs.add_cluster_analysis_template((**t).clone())
            }
            _ => {}
        }
    }
    refs.know_kinds_present();
    for o in &objects {
        let messages: Vec<String> = match &o.obj {
            DavyObject::Rollout(r) => validate_rollout(r)
                .into_iter()
                .chain(validate_rollout_references(r, &refs))
                .map(|e| invalid_spec_message(&o.name, &e))
                .collect(),
            DavyObject::AnalysisTemplate(t) => {
                template_messages(&t.spec, &refs, t.metadata.namespace.as_deref())
            }
            DavyObject::ClusterAnalysisTemplate(t) => template_messages(&t.spec.0, &refs, None),
            DavyObject::AnalysisRun(r) => run_messages(&r.spec),
            DavyObject::Experiment(_) => Vec::new(),
        };
        for message in messages {
            found.push((
                o.source,
                Finding {
                    file: sources[o.source].name.clone(),
                    line: o.line,
                    kind: Some(o.obj.kind().to_string()),
                    name: Some(o.name.clone()),
                    message,
                },
            ));
        }
    }
    found.sort_by_key(|(si, f)| (*si, f.line));
    found.into_iter().map(|(_, f)| f).collect()
}

/// The line of a typed decoding error, from decoding the document's YAML directly.
fn typed_error_line(kind: &str, text: &str) -> Option<usize> {
    use crate::api::analysis::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate};
    use crate::api::experiment::Experiment;
    use crate::api::rollout::Rollout;
    let err = match kind {
        "Rollout" => serde_saphyr::from_str::<Rollout>(text).err(),
        "AnalysisTemplate" => serde_saphyr::from_str::<AnalysisTemplate>(text).err(),
        "ClusterAnalysisTemplate" => serde_saphyr::from_str::<ClusterAnalysisTemplate>(text).err(),
        "AnalysisRun" => serde_saphyr::from_str::<AnalysisRun>(text).err(),
        "Experiment" => serde_saphyr::from_str::<Experiment>(text).err(),
        _ => None,
    }?;
    bare_yaml_message(&err).1
}

fn spec_invalid(e: impl std::fmt::Display) -> String {
    format!("{SPEC_INVALID_PREFIX}: {e}")
}

/// Metric and argument rules for an AnalysisTemplate or ClusterAnalysisTemplate, with the
/// templates it includes (`spec.templates`) when the files hold them.
fn template_messages(
    spec: &AnalysisTemplateSpec,
    refs: &References,
    ns: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    let reached = templates::walk(spec.templates.as_deref().unwrap_or(&[]), |key| {
        if key.cluster {
            refs.cluster_analysis_template(&key.name).map(|t| &t.spec.0)
        } else {
            refs.analysis_template(ns, &key.name).map(|t| &t.spec)
        }
    });
    let complete = reached.missing.is_empty();
    for key in &reached.missing {
        let (label, known) = if key.cluster {
            (
                "ClusterAnalysisTemplate",
                refs.known.cluster_analysis_templates,
            )
        } else {
            ("AnalysisTemplate", refs.known.analysis_templates)
        };
        if known {
            out.push(format!("{label} '{}' not found", key.name));
        }
    }
    let mut namespaced = vec![spec];
    namespaced.extend(reached.namespaced);
    let cluster = reached.cluster;
    if !complete {
        // Unknown included templates may declare the metrics and arguments used here.
        return out;
    }
    let flat = match flatten_templates(&namespaced, &cluster) {
        Ok(flat) => flat,
        Err(e) => {
            out.push(e.to_string());
            return out;
        }
    };
    if let Err(e) = check_metric_placeholders(&flat.metrics, &flat.args) {
        out.push(e.to_string());
    }
    if let Err(e) = validate_metrics(&flat.metrics) {
        out.push(spec_invalid(e));
    }
    if let Err(e) = validate_dry_run_rules(&flat.dry_run, &flat.metrics) {
        out.push(spec_invalid(e));
    }
    if let Err(e) = validate_retention_rules(&flat.measurement_retention, &flat.metrics) {
        out.push(spec_invalid(e));
    }
    out
}

/// The checks the analysis controller makes before measuring an AnalysisRun.
fn run_messages(spec: &AnalysisRunSpec) -> Vec<String> {
    let mut out = Vec::new();
    let args = spec.args.as_deref().unwrap_or(&[]);
    if let Err(e) = resolve_args(args) {
        out.push(e.to_string());
        return out;
    }
    // Values from secrets or fields are read at run time; a stand-in is enough to resolve.
    let stand_ins = stand_in_args(args);
    let resolved: Result<Vec<_>, ArgsError> = spec
        .metrics
        .iter()
        .map(|m| resolve_metric_args(m, &stand_ins))
        .collect();
    let metrics = match resolved {
        Ok(m) => m,
        Err(e) => {
            out.push(format!("Unable to resolve metric arguments: {e}"));
            return out;
        }
    };
    if let Err(e) = validate_metrics(&metrics) {
        out.push(spec_invalid(e));
    }
    if let Err(e) = validate_dry_run_rules(spec.dry_run.as_deref().unwrap_or(&[]), &metrics) {
        out.push(spec_invalid(e));
    }
    if let Err(e) = validate_retention_rules(
        spec.measurement_retention.as_deref().unwrap_or(&[]),
        &metrics,
    ) {
        out.push(spec_invalid(e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_keeps_their_lines() {
        let text = "# head\n---\na: 1\n---\n\n# c\nb: 2\n...\n---\n";
        let docs: Vec<(usize, usize)> = split_documents(text)
            .iter()
            .map(|d| {
                (
                    d.first_line,
                    d.first_line + content_line(d.text).unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(docs, vec![(2, 3), (4, 7)]);
    }

    #[test]
    fn paths_round_trip() {
        let segs = parse_path(".spec.steps[2][\"a/b\"].x");
        assert_eq!(
            segs,
            vec![
                Seg::Key("spec".into()),
                Seg::Key("steps".into()),
                Seg::Index(2),
                Seg::Key("a/b".into()),
                Seg::Key("x".into())
            ]
        );
        assert_eq!(display_path(&segs), "spec.steps[2][a/b].x");
    }

    #[test]
    fn locates_keys() {
        let text = "\na: 1\nspec:\n  steps:\n  - x: 1\n  - y: 2\n";
        let segs = parse_path(".spec.steps[1].y");
        assert_eq!(locate(text, &segs), Some(6));
    }
}
