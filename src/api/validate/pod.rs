//! The pod-template and label-selector checks of rule 4 (spec §9), a subset of Kubernetes'
//! `ValidatePodTemplateSpecForReplicaSet`, plus the label-name helpers the other rules share.
//!
//! Covered, with Kubernetes' wording and field paths:
//! * label selector: `matchExpressions` operators and their `values`, label keys/values of
//!   `matchLabels`;
//! * the selector must match the template labels (`` `selector` does not match template `labels` ``);
//! * template labels: keys are qualified names, values valid label values;
//! * containers: at least one; each has a name that is an RFC 1123 label, unique among the
//!   containers; an image; container ports in 1..65535;
//! * init containers: name rules as above, unique among init and regular containers; an image;
//! * `restartPolicy` must be `Always` (after defaulting an empty one to `Always`);
//! * `activeDeadlineSeconds` is forbidden; ephemeral containers are forbidden.
//!
//! Not covered (left to the API server when the ReplicaSet is created): volumes, probes,
//! resources, security contexts, environment variables, DNS settings, affinity, tolerations,
//! topology spread, annotations and the other fields of Kubernetes' pod validation.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{BadValue, ErrorList, FieldError, FieldPath};
use crate::api::go_quote::go_quote;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// Kubernetes' `RegexError`: the message, examples and the regular expression used.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, hand-written so validation needs no regex engine.
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_alnum(f)
                && is_alnum(l)
                && b.iter()
                    .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => ok(f) && ok(l) && b.iter().all(|&c| ok(c) || c == b'-'),
        _ => false,
    }
}

/// Kubernetes' `IsDNS1123Label`: the problems with `s` as a container name.
pub fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !matches_dns1123_label(s) {
        errs.push(regex_error(
            DNS1123_LABEL_ERR,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if s.is_empty() || !s.split('.').all(matches_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Kubernetes' `IsQualifiedName` (label keys, annotation keys): the list of problems, empty when valid.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain_errors(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Kubernetes' `IsValidLabelValue`.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Kubernetes' `ValidateLabels`, keys in sorted order (Go iterates maps randomly; we pick a stable order).
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (k, v) in labels.into_iter().flatten() {
        for m in qualified_name_errors(k) {
            errs.push(FieldError::invalid(path.clone(), BadValue::str(k), m));
        }
        for m in label_value_errors(v) {
            errs.push(FieldError::invalid(path.clone(), BadValue::str(v), m));
        }
    }
    errs
}

/// Go's `%#v` of a `map[string]string`.
pub fn go_string_map(map: Option<&BTreeMap<String, String>>) -> String {
    match map {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let entries: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
    }
}

/// Go's `%#v` of a `metav1.LabelSelector` (the value upstream prints for selector errors).
pub fn go_label_selector(sel: &LabelSelector) -> String {
    let exprs = match &sel.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|r| {
                    let values = match &r.values {
                        None => "[]string(nil)".to_string(),
                        Some(v) => format!(
                            "[]string{{{}}}",
                            v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(", ")
                        ),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        go_quote(&r.key),
                        go_quote(&r.operator)
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_string_map(sel.match_labels.as_ref())
    )
}

/// Kubernetes' `ValidateLabelSelector` (the parts a manifest can get wrong).
pub fn validate_label_selector(sel: &LabelSelector, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let exprs_path = path.child("matchExpressions");
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let p = exprs_path.index(i);
        let n_values = req.values.as_ref().map_or(0, Vec::len);
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if n_values == 0 {
                    errs.push(FieldError::required(
                        p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if n_values > 0 {
                    errs.push(FieldError::forbidden(
                        p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                p.child("operator"),
                BadValue::str(other),
                "not a valid selector operator",
            )),
        }
        for m in qualified_name_errors(&req.key) {
            errs.push(FieldError::invalid(
                p.child("key"),
                BadValue::str(&req.key),
                m,
            ));
        }
    }
    errs.extend(validate_labels(
        sel.match_labels.as_ref(),
        &path.child("matchLabels"),
    ));
    errs
}

/// What `metav1.LabelSelectorAsSelector` makes of a selector.
enum Selector<'a> {
    /// A nil selector selects nothing.
    Nothing,
    /// An empty selector selects everything.
    Everything,
    /// Requirements, all of which must hold.
    Requirements(&'a LabelSelector),
}

impl Selector<'_> {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Everything => true,
            Selector::Requirements(sel) => {
                let labels_ok = sel
                    .match_labels
                    .iter()
                    .flatten()
                    .all(|(k, v)| labels.get(k) == Some(v));
                let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
                    let values: BTreeSet<&str> =
                        r.values.iter().flatten().map(String::as_str).collect();
                    let got = labels.get(&r.key);
                    match r.operator.as_str() {
                        "In" => got.is_some_and(|v| values.contains(v.as_str())),
                        "NotIn" => got.is_none_or(|v| !values.contains(v.as_str())),
                        "Exists" => got.is_some(),
                        "DoesNotExist" => got.is_none(),
                        _ => false,
                    }
                });
                labels_ok && exprs_ok
            }
        }
    }
}

fn selector_of(sel: Option<&LabelSelector>) -> Result<Selector<'_>, ()> {
    match sel {
        None => Ok(Selector::Nothing),
        Some(s) => {
            let n = s.match_labels.as_ref().map_or(0, BTreeMap::len)
                + s.match_expressions.as_ref().map_or(0, Vec::len);
            if n == 0 {
                return Ok(Selector::Everything);
            }
            let bad_op = s.match_expressions.iter().flatten().any(|r| {
                let n_values = r.values.as_ref().map_or(0, Vec::len);
                match r.operator.as_str() {
                    "In" | "NotIn" => n_values == 0,
                    "Exists" | "DoesNotExist" => n_values > 0,
                    _ => true,
                }
            });
            if bad_op {
                Err(())
            } else {
                Ok(Selector::Requirements(s))
            }
        }
    }
}

/// Whether `selector` (as upstream converts it) selects pods labelled `labels`; a nil selector
/// selects nothing and an empty one everything.
pub fn selector_matches(
    selector: Option<&LabelSelector>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector_of(selector).is_ok_and(|s| s.matches(labels))
}

fn validate_container_common(
    ctr: &Container,
    path: &FieldPath,
    names: &mut BTreeSet<String>,
    errs: &mut ErrorList,
) {
    let name_path = path.child("name");
    if ctr.name.is_empty() {
        errs.push(FieldError::required(name_path.clone(), ""));
    } else {
        for m in dns1123_label_errors(&ctr.name) {
            errs.push(FieldError::invalid(
                name_path.clone(),
                BadValue::str(&ctr.name),
                m,
            ));
        }
    }
    if ctr.image.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    for (j, port) in ctr.ports.iter().flatten().enumerate() {
        if !(1..=65535).contains(&port.container_port) {
            errs.push(FieldError::invalid(
                path.child("ports").index(j).child("containerPort"),
                BadValue::Int(i64::from(port.container_port)),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    if !names.insert(ctr.name.clone()) {
        errs.push(FieldError::duplicate(name_path, BadValue::str(&ctr.name)));
    }
}

/// The rule-4 subset of `ValidatePodTemplateSpecForReplicaSet` described in the module doc.
/// `selector` is the Rollout's; `path` is where the template sits (`spec.template`).
pub fn validate_pod_template_for_replica_set(
    template: Option<&PodTemplateSpec>,
    selector: Option<&LabelSelector>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = BTreeMap::new();
    let meta = template.and_then(|t| t.metadata.as_ref());
    let labels = meta.and_then(|m| m.labels.as_ref());
    if let Ok(sel) = selector_of(selector)
        && !matches!(sel, Selector::Everything)
        && !sel.matches(labels.unwrap_or(&empty))
    {
        errs.push(FieldError::invalid(
            path.child("metadata").child("labels"),
            BadValue::Go(go_string_map(labels)),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_labels(labels, &path.child("labels")));

    let spec_path = path.child("spec");
    let spec = template.and_then(|t| t.spec.as_ref());
    let containers: &[Container] = spec.map_or(&[], |s| s.containers.as_slice());
    let mut names = BTreeSet::new();
    let containers_path = spec_path.child("containers");
    if containers.is_empty() {
        errs.push(FieldError::required(containers_path.clone(), ""));
    }
    for (i, ctr) in containers.iter().enumerate() {
        validate_container_common(ctr, &containers_path.index(i), &mut names, &mut errs);
    }
    let init_path = spec_path.child("initContainers");
    // Init container names must also differ from the regular containers' names.
    let mut init_names = names.clone();
    for (i, ctr) in spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        validate_container_common(ctr, &init_path.index(i), &mut init_names, &mut errs);
    }
    if spec.is_some_and(|s| {
        s.ephemeral_containers
            .as_ref()
            .is_some_and(|e| !e.is_empty())
    }) {
        errs.push(FieldError::forbidden(
            spec_path.child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    // Upstream defaults an empty restartPolicy to Always before validating.
    let restart = spec
        .and_then(|s| s.restart_policy.as_deref())
        .filter(|p| !p.is_empty())
        .unwrap_or("Always");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            spec_path.child("restartPolicy"),
            BadValue::str(restart),
            &["Always"],
        ));
    }
    if spec.is_some_and(|s| s.active_deadline_seconds.is_some()) {
        errs.push(FieldError::forbidden(
            spec_path.child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errs
}

/// Whether `selector` parses (upstream's `LabelSelectorAsSelector` succeeds).
pub fn selector_is_valid(selector: Option<&LabelSelector>) -> bool {
    selector_of(selector).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_and_label_values() {
        assert!(qualified_name_errors("app").is_empty());
        assert!(qualified_name_errors("app.kubernetes.io/name").is_empty());
        assert_eq!(
            qualified_name_errors("bad key"),
            vec!["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string()]
        );
        assert_eq!(
            qualified_name_errors("/x"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert!(label_value_errors("").is_empty());
        assert_eq!(label_value_errors("-x").len(), 1);
        assert_eq!(
            dns1123_label_errors("Web"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
    }

    #[test]
    fn go_renderings() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), "2".to_string());
        m.insert("a".to_string(), "1".to_string());
        assert_eq!(
            go_string_map(Some(&m)),
            r#"map[string]string{"a":"1", "b":"2"}"#
        );
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        assert_eq!(
            go_label_selector(&LabelSelector::default()),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
    }
}
