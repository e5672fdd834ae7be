//! `{{args.x}}` substitution (spec §4.9) and secret masking, with upstream's error texts.
//!
//! Upstream renders the JSON encoding of a whole `Metric` through a `{{`/`}}` tag template
//! (fasttemplate) with every argument value escaped as the body of a JSON string, then decodes
//! the JSON again. Doing the same here keeps placeholders working in every string field
//! (query, url, headers, conditions, `count: "{{args.n}}"`, job specs) with identical errors.

use thiserror::Error;

use crate::api::go_quote::go_quote;
use crate::api::{Argument, Metric};

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

/// The placeholder text secret values are replaced by in every message (upstream's redactor).
pub const SECRET_MASK: &str = "*****";

/// Value given to secret-backed arguments while resolving metrics for validation and
/// scheduling only: the real secret is read just before a measurement (spec §4.5 step 1).
pub const SECRET_PLACEHOLDER: &str = "temp-for-secret";

/// Why a template could not be rendered; the `Display` texts are upstream's, verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArgsError {
    /// A `{{` without a matching `}}` (fasttemplate's parse error).
    #[error("Cannot find end tag={} in the template={} starting from {}", go_quote(CLOSE), go_quote(.template), go_quote(.rest))]
    Unclosed {
        /// The whole template.
        template: String,
        /// The text from the unclosed `{{` on.
        rest: String,
    },
    /// A tag that names no argument; `tag` is the text between the braces, untrimmed.
    #[error("failed to resolve {{{{{tag}}}}}")]
    Unresolved {
        /// The text between the braces, untrimmed.
        tag: String,
    },
    /// An argument that has neither a value nor a resolved `valueFrom`.
    #[error("argument \"{name}\" was not supplied")]
    NotSupplied {
        /// The argument's name.
        name: String,
    },
    /// The rendered JSON no longer decodes into a metric (a value broke its structure).
    #[error("{0}")]
    Decode(String),
}

/// One argument as the renderer sees it: `value` is `None` when nothing supplied one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgValue<'a> {
    /// The argument's name.
    pub name: &'a str,
    /// Its value, `None` when not supplied.
    pub value: Option<&'a str>,
}

/// Renders `template`, replacing `{{args.<name>}}` (inner whitespace trimmed) by the argument's
/// value; with `quoted` the value is escaped as the body of a JSON string first.
///
/// Errors in upstream's order: an unclosed tag first (the template is parsed before anything is
/// rendered), then any argument without a value (even one no tag uses), then the *last*
/// unresolvable tag (fasttemplate keeps rendering and upstream keeps the last error).
pub fn render(template: &str, args: &[ArgValue<'_>], quoted: bool) -> Result<String, ArgsError> {
    let pieces = parse(template)?;
    let mut values: Vec<(&str, String)> = Vec::with_capacity(args.len());
    for arg in args {
        let Some(value) = arg.value else {
            return Err(ArgsError::NotSupplied {
                name: arg.name.to_string(),
            });
        };
        let value = if quoted {
            json_string_body(value)
        } else {
            value.to_string()
        };
        values.push((arg.name, value));
    }
    let mut out = String::with_capacity(template.len());
    let mut unresolved = None;
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Tag(tag) => {
                let name = tag.trim().strip_prefix("args.");
                // Later arguments win on duplicate names, as a Go map built in order does.
                match name.and_then(|n| values.iter().rev().find(|(k, _)| *k == n)) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        unresolved = Some(ArgsError::Unresolved {
                            tag: tag.to_string(),
                        })
                    }
                }
            }
        }
    }
    match unresolved {
        Some(err) => Err(err),
        None => Ok(out),
    }
}

/// Substitutes arguments into any serialisable value (a `Metric`) through its JSON encoding,
/// the way upstream's `ResolveMetricArgs` does, and decodes the result back.
pub fn render_json<T>(value: &T, args: &[ArgValue<'_>]) -> Result<T, ArgsError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let text = serde_json::to_string(value).map_err(|e| ArgsError::Decode(e.to_string()))?;
    let rendered = render(&text, args, true)?;
    serde_json::from_str(&rendered).map_err(|e| ArgsError::Decode(e.to_string()))
}

/// Replaces every non-empty secret value in `message` by [`SECRET_MASK`].
pub fn mask_secrets(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), SECRET_MASK);
        }
    }
    out
}

/// The arguments of a run as the renderer sees them, with secret-backed arguments given
/// [`SECRET_PLACEHOLDER`]: enough to validate and schedule metrics without reading a Secret.
pub fn values_without_secrets(args: &[Argument]) -> Vec<ArgValue<'_>> {
    args.iter()
        .map(|arg| {
            let secret = arg
                .value_from
                .as_ref()
                .is_some_and(|v| v.secret_key_ref.is_some());
            ArgValue {
                name: &arg.name,
                value: if secret {
                    Some(SECRET_PLACEHOLDER)
                } else {
                    arg.value.as_deref()
                },
            }
        })
        .collect()
}

/// The arguments with their literal values only (secrets already read into `value`).
pub fn values(args: &[Argument]) -> Vec<ArgValue<'_>> {
    args.iter()
        .map(|arg| ArgValue {
            name: &arg.name,
            value: arg.value.as_deref(),
        })
        .collect()
}

/// One metric with every `{{args.x}}` substituted.
pub fn resolve_metric(metric: &Metric, args: &[ArgValue<'_>]) -> Result<Metric, ArgsError> {
    let text = serde_json::to_string(metric).map_err(|e| ArgsError::Decode(e.to_string()))?;
    let rendered = render(&text, args, true)?;
    if rendered == text {
        // Nothing substituted: decoding would only rebuild the same metric.
        return Ok(metric.clone());
    }
    serde_json::from_str(&rendered).map_err(|e| ArgsError::Decode(e.to_string()))
}

/// Every metric resolved with secret placeholders (upstream `getResolvedMetricsWithoutSecrets`).
pub fn resolve_metrics_without_secrets(
    metrics: &[Metric],
    args: &[Argument],
) -> Result<Vec<Metric>, ArgsError> {
    let values = values_without_secrets(args);
    metrics.iter().map(|m| resolve_metric(m, &values)).collect()
}

enum Piece<'a> {
    Text(&'a str),
    Tag(&'a str),
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, ArgsError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find(OPEN) {
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else {
            return Err(ArgsError::Unclosed {
                template: template.to_string(),
                rest: after.to_string(),
            });
        };
        pieces.push(Piece::Tag(&after[..end]));
        rest = &after[end + CLOSE.len()..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// The escaped body of a JSON string holding `value` (no surrounding quotes).
fn json_string_body(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg<'a>(name: &'a str, value: &'a str) -> ArgValue<'a> {
        ArgValue {
            name,
            value: Some(value),
        }
    }

    #[test]
    fn no_tags_is_identity() {
        assert_eq!(render("test", &[], false).unwrap(), "test");
        // Upstream checks every argument before rendering, tags or not.
        let none = [ArgValue {
            name: "x",
            value: None,
        }];
        assert_eq!(
            render("test", &none, false).unwrap_err().to_string(),
            r#"argument "x" was not supplied"#
        );
    }

    #[test]
    fn substitutes_and_trims_whitespace() {
        let args = [arg("var", "foo")];
        assert_eq!(
            render("test-{{args.var}}", &args, false).unwrap(),
            "test-foo"
        );
        assert_eq!(
            render("test-{{ args.var }}", &args, false).unwrap(),
            "test-foo"
        );
    }

    #[test]
    fn unclosed_tag_message() {
        let err = render("test-{{args.var", &[], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Cannot find end tag="}}" in the template="test-{{args.var" starting from "args.var""#
        );
    }

    #[test]
    fn missing_argument_message_keeps_raw_tag() {
        let err = render("test-{{args.var}}", &[], false).unwrap_err();
        assert_eq!(err.to_string(), "failed to resolve {{args.var}}");
        let err = render("test-{{ args.var }}", &[], false).unwrap_err();
        assert_eq!(err.to_string(), "failed to resolve {{ args.var }}");
    }

    #[test]
    fn last_unresolved_tag_is_reported() {
        let err = render("{{args.a}}-{{args.b}}", &[], false).unwrap_err();
        assert_eq!(err.to_string(), "failed to resolve {{args.b}}");
    }

    #[test]
    fn not_supplied_message() {
        let args = [ArgValue {
            name: "test",
            value: None,
        }];
        let err = render("{{args.test}}", &args, false).unwrap_err();
        assert_eq!(err.to_string(), r#"argument "test" was not supplied"#);
    }

    #[test]
    fn quoted_values_are_json_escaped() {
        let args = [arg("var", "double quotes\"newline\nand tab\t")];
        assert_eq!(
            render("test-{{args.var}}", &args, true).unwrap(),
            "test-double quotes\\\"newline\\nand tab\\t"
        );
        assert_eq!(
            render("test-{{args.var}}", &args, false).unwrap(),
            "test-double quotes\"newline\nand tab\t"
        );
    }

    #[test]
    fn render_json_round_trips_through_the_encoding() {
        let value = serde_json::json!({"query": "up{job=\"{{args.job}}\"}", "count": "{{args.n}}"});
        let args = [arg("job", "a\"b"), arg("n", "3")];
        let out: serde_json::Value = render_json(&value, &args).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"query": "up{job=\"a\"b\"}", "count": "3"})
        );
    }

    #[test]
    fn masks_every_secret_occurrence() {
        let secrets = vec!["s3cr3t".to_string(), String::new()];
        assert_eq!(
            mask_secrets("token s3cr3t rejected; s3cr3t again", &secrets),
            "token ***** rejected; ***** again"
        );
    }
}
