//! Errors of the sandbox API server and their Kubernetes `Status` bodies (apimachinery's formats).

use serde_json::{Map, Value, json};
use thiserror::Error;

/// One field-level cause of an `Invalid` or apply-conflict error.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// The field path the cause is about.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Cause {
    /// The `StatusCause.reason` (`field.ErrorType`) its message starts with.
    pub fn reason(&self) -> &'static str {
        const REASONS: &[(&str, &str)] = &[
            ("Required value", "FieldValueRequired"),
            ("Unsupported value", "FieldValueNotSupported"),
            ("Too long", "FieldValueTooLong"),
            ("Too many", "FieldValueTooMany"),
            ("Duplicate value", "FieldValueDuplicate"),
            ("Forbidden", "FieldValueForbidden"),
            ("Not found", "FieldValueNotFound"),
        ];
        REASONS
            .iter()
            .find(|(prefix, _)| self.message.starts_with(prefix))
            .map_or("FieldValueInvalid", |(_, reason)| reason)
    }
}

/// Everything a request can fail with; each maps to one HTTP code and `Status` reason.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ApiError {
    /// The object does not exist (404).
    #[error("{} \"{name}\" not found", qualified(group, resource))]
    NotFound {
        /// The API group.
        group: String,
        /// The resource (plural).
        resource: String,
        /// The object's name.
        name: String,
    },
    /// An object with that name exists already (409).
    #[error("{} \"{name}\" already exists", qualified(group, resource))]
    AlreadyExists {
        /// The API group.
        group: String,
        /// The resource (plural).
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The `resourceVersion` is stale (409).
    #[error(
        "Operation cannot be fulfilled on {} \"{name}\": {detail}",
        qualified(group, resource)
    )]
    Conflict {
        /// The API group.
        group: String,
        /// The resource (plural).
        resource: String,
        /// The object's name.
        name: String,
        /// Why the write conflicted.
        detail: String,
    },
    /// Server-side apply found fields owned by other managers (409).
    #[error("{}", apply_conflict_message(conflicts))]
    ApplyConflict {
        /// (manager, field path) pairs.
        conflicts: Vec<(String, String)>,
    },
    /// The object failed validation (422).
    #[error("{}", invalid_message(group, kind, name, causes))]
    Invalid {
        /// The API group.
        group: String,
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The validation causes.
        causes: Vec<Cause>,
    },
    /// A malformed request (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request is not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such path (404).
    #[error("the server could not find the requested resource")]
    RouteNotFound,
    /// The method is not allowed on this path (405).
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// The body's content type is not accepted (415).
    #[error("the body of the request was in an unknown format - accepted media types include: {0}")]
    UnsupportedMediaType(String),
    /// A watch's `resourceVersion` is too old (410).
    #[error("{0}")]
    Expired(String),
    /// The request cannot be processed (422).
    #[error("{0}")]
    Unprocessable(String),
    /// An injected or internal failure with its HTTP code.
    #[error("{message}")]
    Internal {
        /// The HTTP status code.
        code: u16,
        /// The message.
        message: String,
    },
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn apply_conflict_message(conflicts: &[(String, String)]) -> String {
    if let [(manager, field)] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with \"{manager}\": {field}");
    }
    let mut msg = format!("Apply failed with {} conflicts:", conflicts.len());
    for (manager, field) in conflicts {
        msg.push_str(&format!(" conflict with \"{manager}\": {field};"));
    }
    msg.trim_end_matches(';').to_string()
}

/// apimachinery's `NewInvalid` message: the group-qualified kind (`Rollout.argoproj.io`,
/// `ConfigMap`), the name, and the causes.
fn invalid_message(group: &str, kind: &str, name: &str, causes: &[Cause]) -> String {
    let kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let parts: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    match parts.as_slice() {
        [one] => format!("{kind} \"{name}\" is invalid: {one}"),
        _ => format!("{kind} \"{name}\" is invalid: [{}]", parts.join(", ")),
    }
}

impl ApiError {
    /// A NotFound error for `name`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError::NotFound {
            group: group.into(),
            resource: resource.into(),
            name: name.into(),
        }
    }

    /// The standard "object has been modified" conflict.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        ApiError::Conflict {
            group: group.into(),
            resource: resource.into(),
            name: name.into(),
            detail: "the object has been modified; please apply your changes to the latest version and try again"
                .into(),
        }
    }

    /// An Invalid error with one cause.
    pub fn invalid(group: &str, kind: &str, name: &str, field: &str, message: String) -> Self {
        ApiError::Invalid {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
            causes: vec![Cause {
                field: field.into(),
                message,
            }],
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::RouteNotFound => 404,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(_) => 403,
            ApiError::MethodNotAllowed => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Expired(_) => 410,
            ApiError::Internal { code, .. } => *code,
        }
    }

    /// The Kubernetes `Status.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::RouteNotFound => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Expired(_) => "Expired",
            ApiError::Internal { code: 503, .. } => "ServiceUnavailable",
            ApiError::Internal { code: 504, .. } => "Timeout",
            ApiError::Internal { .. } => "InternalError",
        }
    }

    fn details(&self) -> Option<Value> {
        let named = |group: &str, kind: &str, name: &str| {
            let mut d = Map::new();
            d.insert("name".into(), json!(name));
            if !group.is_empty() {
                d.insert("group".into(), json!(group));
            }
            d.insert("kind".into(), json!(kind));
            d
        };
        match self {
            ApiError::NotFound {
                group,
                resource,
                name,
            }
            | ApiError::AlreadyExists {
                group,
                resource,
                name,
            }
            | ApiError::Conflict {
                group,
                resource,
                name,
                ..
            } => Some(Value::Object(named(group, resource, name))),
            ApiError::Invalid {
                group,
                kind,
                name,
                causes,
            } => {
                let mut d = named(group, kind, name);
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason(), "message": c.message, "field": c.field}))
                    .collect();
                d.insert("causes".into(), Value::Array(causes));
                Some(Value::Object(d))
            }
            ApiError::ApplyConflict { conflicts } => {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|(m, f)| {
                        json!({"type": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": f})
                    })
                    .collect();
                Some(json!({"causes": causes}))
            }
            ApiError::RouteNotFound => Some(json!({})),
            _ => None,
        }
    }

    /// The `Status` object a real API server would answer with.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
        });
        if let (Some(details), Some(obj)) = (self.details(), status.as_object_mut()) {
            obj.insert("details".into(), details);
        }
        if let Some(obj) = status.as_object_mut() {
            obj.insert("code".into(), json!(self.code()));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_matches_apimachinery() {
        let s = ApiError::not_found("example.dev", "widgets", "x").to_status();
        assert_eq!(
            s,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "widgets.example.dev \"x\" not found", "reason": "NotFound",
                "details": {"name": "x", "group": "example.dev", "kind": "widgets"}, "code": 404})
        );
    }

    #[test]
    fn conflict_message() {
        let e = ApiError::stale("", "configmaps", "k1");
        assert_eq!(
            e.to_string(),
            "Operation cannot be fulfilled on configmaps \"k1\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(e.code(), 409);
    }

    #[test]
    fn invalid_message_lists_causes() {
        let e = ApiError::invalid(
            "",
            "ConfigMap",
            "Bad_Name",
            "metadata.name",
            "Invalid value: \"Bad_Name\"".into(),
        );
        assert_eq!(
            e.to_string(),
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        );
        assert_eq!(
            e.to_status()["details"]["causes"][0]["field"],
            "metadata.name"
        );
    }
}
