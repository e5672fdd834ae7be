//! `ExprError`: why a condition could not be evaluated, worded as upstream (Go expr) words it.

use thiserror::Error;

/// A condition or time expression that could not be evaluated.
///
/// The `Display` text is what ends up in a measurement's message, so it follows the wording of
/// Argo Rollouts (Go expr-lang) where the conformance vectors pin it: bare messages without
/// position decoration (`unknown name a`, `expected bool, but got int`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExprError {
    /// The expression does not parse.
    #[error("{0}")]
    Syntax(String),
    /// The expression parses but is rejected before running (upstream's compile-time type
    /// check): an unknown name, a comparison of mismatched types.
    #[error("{0}")]
    Check(String),
    /// Running the expression failed (a bad operand, a helper given a bad argument, ...).
    #[error("{0}")]
    Runtime(String),
    /// A condition produced something other than a boolean.
    #[error("expected bool, but got {0}")]
    NotBool(&'static str),
    /// A time expression produced something other than an instant.
    #[error("expected time.Time, but got {0}")]
    NotTime(&'static str),
}

impl ExprError {
    /// A stable category for events and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            ExprError::Syntax(_) => "syntax",
            ExprError::Check(_) => "check",
            ExprError::Runtime(_) => "runtime",
            ExprError::NotBool(_) | ExprError::NotTime(_) => "result-type",
        }
    }
}

impl From<expr::Error> for ExprError {
    fn from(error: expr::Error) -> Self {
        match error {
            expr::Error::PestError(pest) => {
                ExprError::Syntax(flatten_pest_message(&pest.to_string()))
            }
            expr::Error::ParseError(message) => ExprError::Syntax(message),
            other => ExprError::Runtime(go_runtime_message(other.to_string())),
        }
    }
}

/// pest renders a multi-line report with a source snippet; a measurement message wants one
/// line, as upstream strips its own snippet (`unwrapFileErr`). Keeps the position and the
/// "expected ..." line.
fn flatten_pest_message(report: &str) -> String {
    let position = report
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("--> "))
        .map(str::trim);
    let detail = report
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("= "))
        .map(str::trim);
    match (position, detail) {
        (Some(position), Some(detail)) => format!("syntax error at {position}: {detail}"),
        (Some(position), None) => format!("syntax error at {position}"),
        _ => report.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Rewords the few expr-lang runtime messages that upstream words differently and that users
/// are likely to see (an unknown identifier reached only at run time).
fn go_runtime_message(message: String) -> String {
    if let Some(name) = message.strip_prefix("unknown variable: ") {
        return format!("unknown name {name}");
    }
    if let Some(name) = message.strip_prefix("Unknown function: ") {
        return format!("unknown name {name}");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pest_report_becomes_one_line() {
        let report =
            " --> 1:10\n  |\n1 | now() -- ?\n  |          ^---\n  |\n  = expected value or ident";
        assert_eq!(
            flatten_pest_message(report),
            "syntax error at 1:10: expected value or ident"
        );
    }

    #[test]
    fn runtime_messages_reworded() {
        assert_eq!(
            go_runtime_message("unknown variable: a".into()),
            "unknown name a"
        );
        assert_eq!(
            go_runtime_message("Unknown function: f".into()),
            "unknown name f"
        );
        assert_eq!(go_runtime_message("other".into()), "other");
    }

    #[test]
    fn messages_and_categories() {
        assert_eq!(
            ExprError::NotBool("int").to_string(),
            "expected bool, but got int"
        );
        assert_eq!(ExprError::NotBool("int").category(), "result-type");
        assert_eq!(
            ExprError::Check("unknown name a".into()).to_string(),
            "unknown name a"
        );
    }
}
