//! Spec validation that needs no cluster: Kubernetes-style field errors and the rule sets
//! (Rollout static rules, referenced-resource rules, metric and argument rules).
//!
//! Every validator is a pure function returning an ordered [`ErrorList`]. Order is part of the
//! contract: upstream reports only the first error in the `InvalidSpec` condition, and its tests
//! (our conformance vectors) assert on that first error.

pub mod analysis;
pub mod canary;
pub mod pod;
pub mod references;
pub mod rollout;
pub mod traffic;

use std::fmt;

use crate::api::go_quote::go_quote;

pub use analysis::{MetricValidationError, validate_metric, validate_metrics};
pub use references::{ReferencedNames, References, referenced_names, validate_rollout_references};
pub use rollout::{
    template_is_empty, validate_blue_green, validate_resolved_rollout, validate_rollout,
    validate_rollout_spec, validate_rollout_strategy,
};

/// One rule that failed, as upstream's detail text; the caller places it at a field path
/// ([`FieldError`]) or after a prefix (`Analysis spec invalid: …`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleViolation(pub String);

impl From<RuleViolation> for String {
    fn from(violation: RuleViolation) -> String {
        violation.0
    }
}

/// The kind of a field error, rendered with upstream's wording (`k8s.io/apimachinery` `field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// `Not found`.
    NotFound,
    /// `Required value`.
    Required,
    /// `Duplicate value`.
    Duplicate,
    /// `Invalid value`.
    Invalid,
    /// `Unsupported value`.
    NotSupported,
    /// `Forbidden`.
    Forbidden,
    /// `Internal error`.
    Internal,
}

impl ErrorType {
    /// The text upstream prints for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::Internal => "Internal error",
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The offending value of a field error, kept as upstream would print it.
///
/// Go prints numbers and booleans with `%v`, strings with `%q`, nil as `"null"` and anything
/// else with `%#v` (Go syntax). [`BadValue::Go`] carries such a pre-rendered Go-syntax text;
/// for values whose Go rendering would include pointer addresses (and so differs from run to
/// run upstream) we render compact JSON instead.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue {
    /// A nil value: printed `"null"`, like upstream.
    Null,
    /// An integer (`%v`).
    Int(i64),
    /// A boolean (`%v`).
    Bool(bool),
    /// A string (`%q`).
    Str(String),
    /// Any other value, already rendered.
    Go(String),
}

impl BadValue {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        BadValue::Str(s.into())
    }

    /// A compact JSON rendering of any serialisable value (for structured values).
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(s) if s == "null" => BadValue::Null,
            Ok(s) => BadValue::Go(s),
            Err(_) => BadValue::Null,
        }
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Null => f.write_str("\"null\""),
            BadValue::Int(v) => write!(f, "{v}"),
            BadValue::Bool(v) => write!(f, "{v}"),
            BadValue::Str(s) => f.write_str(&go_quote(s)),
            BadValue::Go(s) => f.write_str(s),
        }
    }
}

/// A dotted field path such as `spec.strategy.canary.steps[0].setWeight`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// A path starting at `root` (may be empty, as some upstream validators are called with).
    pub fn new(root: &str) -> Self {
        FieldPath(root.to_string())
    }

    /// The path of a named child.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_string())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of a list element.
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// The path of a map entry (`labels[app]`).
    pub fn key(&self, k: &str) -> Self {
        FieldPath(format!("{}[{k}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One validation finding, modelled on Kubernetes' `field.Error`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// What kind of problem.
    pub error_type: ErrorType,
    /// Where.
    pub field: FieldPath,
    /// The offending value (ignored in the text of `Required`, `Forbidden` and `Internal`).
    pub value: BadValue,
    /// The human explanation.
    pub detail: String,
}

impl FieldError {
    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(field: FieldPath, value: BadValue, detail: impl Into<String>) -> Self {
        FieldError {
            error_type: ErrorType::Invalid,
            field,
            value,
            detail: detail.into(),
        }
    }

    /// `Required value[: <detail>]`.
    pub fn required(field: FieldPath, detail: impl Into<String>) -> Self {
        FieldError {
            error_type: ErrorType::Required,
            field,
            value: BadValue::Str(String::new()),
            detail: detail.into(),
        }
    }

    /// `Forbidden[: <detail>]`.
    pub fn forbidden(field: FieldPath, detail: impl Into<String>) -> Self {
        FieldError {
            error_type: ErrorType::Forbidden,
            field,
            value: BadValue::Str(String::new()),
            detail: detail.into(),
        }
    }

    /// `Internal error: <detail>`.
    pub fn internal(field: FieldPath, detail: impl Into<String>) -> Self {
        FieldError {
            error_type: ErrorType::Internal,
            field,
            value: BadValue::Str(String::new()),
            detail: detail.into(),
        }
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: FieldPath, value: BadValue) -> Self {
        FieldError {
            error_type: ErrorType::Duplicate,
            field,
            value,
            detail: String::new(),
        }
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: FieldPath, value: BadValue, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError {
            error_type: ErrorType::NotSupported,
            field,
            value,
            detail,
        }
    }

    /// The error without its field path (upstream's `ErrorBody`): `Invalid value: 60: ...`.
    pub fn body(&self) -> String {
        let mut s = match self.error_type {
            ErrorType::Required | ErrorType::Forbidden | ErrorType::Internal => {
                self.error_type.as_str().to_string()
            }
            _ => format!("{}: {}", self.error_type, self.value),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// An ordered list of field errors; the first is the one upstream reports.
pub type ErrorList = Vec<FieldError>;

/// The `InvalidSpec` condition message upstream writes for a Rollout:
/// `The Rollout "<name>" is invalid: <first error>`.
pub fn invalid_spec_message(rollout_name: &str, error: &FieldError) -> String {
    format!("The Rollout \"{rollout_name}\" is invalid: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_kubernetes_field_errors() {
        let p = FieldPath::new("spec")
            .child("strategy")
            .child("steps")
            .index(0);
        assert_eq!(p.as_str(), "spec.strategy.steps[0]");
        let e = FieldError::invalid(
            FieldPath::new("spec")
                .child("strategy")
                .child("scaleDownDelaySeconds"),
            BadValue::Int(60),
            "Canary scaleDownDelaySeconds can only be used with traffic routing",
        );
        assert_eq!(
            e.to_string(),
            "spec.strategy.scaleDownDelaySeconds: Invalid value: 60: Canary scaleDownDelaySeconds can only be used with traffic routing"
        );
        let r = FieldError::required(FieldPath::new("spec").child("selector"), "x");
        assert_eq!(r.to_string(), "spec.selector: Required value: x");
        let r = FieldError::required(FieldPath::new("spec").child("containers"), "");
        assert_eq!(r.to_string(), "spec.containers: Required value");
        let s = FieldError::invalid(FieldPath::new("a"), BadValue::str("x\"y"), "d");
        assert_eq!(s.to_string(), "a: Invalid value: \"x\\\"y\": d");
        let n = FieldError::invalid(FieldPath::new("a"), BadValue::Null, "d");
        assert_eq!(n.to_string(), "a: Invalid value: \"null\": d");
        let u = FieldError::not_supported(FieldPath::new("r"), BadValue::str("Never"), &["Always"]);
        assert_eq!(
            u.to_string(),
            "r: Unsupported value: \"Never\": supported values: \"Always\""
        );
        let d = FieldError::duplicate(FieldPath::new("n"), BadValue::str("a"));
        assert_eq!(d.to_string(), "n: Duplicate value: \"a\"");
        assert_eq!(
            invalid_spec_message(
                "x",
                &FieldError::internal(FieldPath::new("spec").child("template"), "t")
            ),
            "The Rollout \"x\" is invalid: spec.template: Internal error: t"
        );
    }
}
