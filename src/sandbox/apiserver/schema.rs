//! Custom resources against their CRD's structural schema, as apiextensions-apiserver treats
//! them: unknown fields pruned (and reported, for `fieldValidation`), schema defaults filled
//! in, then the value validated — types (with `nullable` and `x-kubernetes-int-or-string`),
//! `required`, `enum`, bounds, lengths, patterns and item counts — with kube-openapi's
//! messages and field paths (`spec.steps[0].setWeight`).
//!
//! The root's `apiVersion`, `kind` and `metadata` are left to the metadata rules, as the real
//! server does; `x-kubernetes-preserve-unknown-fields` keeps what the schema does not name and
//! `x-kubernetes-embedded-resource` keeps an embedded object's `apiVersion`, `kind` and
//! `metadata`.

use serde_json::{Map, Value};

use super::error::Cause;

/// What a schema pass found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Paths of the fields pruned because the schema does not know them, in document order.
    pub unknown: Vec<String>,
    /// Validation failures, by field path.
    pub causes: Vec<Cause>,
}

/// `fieldValidation`: what to do about unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Prune them silently.
    Ignore,
    /// Prune them and answer with a `Warning` header per field (the server's default).
    #[default]
    Warn,
    /// Refuse the request (400).
    Strict,
}

impl FieldValidation {
    /// The query parameter's value; `None` for a value the server does not accept.
    pub fn parse(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("") | Some("Warn") => Some(Self::Warn),
            Some("Ignore") => Some(Self::Ignore),
            Some("Strict") => Some(Self::Strict),
            Some(_) => None,
        }
    }
}

/// Prunes, defaults and validates a whole custom resource in place; `old` is the stored object
/// on an update (for the validation rules' `oldSelf`).
pub fn process(schema: &Value, obj: &mut Value, old: Option<&Value>) -> Outcome {
    let mut out = Outcome::default();
    if let Some(map) = obj.as_object_mut() {
        let props = schema.get("properties").and_then(Value::as_object);
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.and_then(|p| p.get(&key)) {
                Some(sub) => {
                    if let Some(v) = map.get_mut(&key) {
                        prune(sub, v, &key, &mut out.unknown);
                    }
                }
                None if preserves(schema) => {}
                None => {
                    map.shift_remove(&key);
                    out.unknown.push(key);
                }
            }
        }
    }
    default(schema, obj);
    let mut rules = Vec::new();
    validate_root(schema, obj, old, &mut out.causes, &mut rules);
    // As apiextensions-apiserver does, validation rules are only worth reporting on an object
    // whose values have the schema's types.
    if !out
        .causes
        .iter()
        .any(|c| c.message.contains(" in body must be of type "))
    {
        out.causes.extend(rules);
    }
    out.causes.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn preserves(schema: &Value) -> bool {
    flag(schema, "x-kubernetes-preserve-unknown-fields")
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Drops the fields `schema` does not allow below `v` (at `path`), recording their paths.
fn prune(schema: &Value, v: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keep_all =
                preserves(schema) || schema.get("additionalProperties") == Some(&Value::Bool(true));
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let p = child(path, &key);
                let sub = props.and_then(|ps| ps.get(&key)).or(additional);
                match sub {
                    Some(sub) => {
                        if let Some(v) = map.get_mut(&key) {
                            prune(sub, v, &p, unknown);
                        }
                    }
                    None if keep_all => {}
                    None if embedded
                        && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") => {}
                    None => {
                        map.shift_remove(&key);
                        unknown.push(p);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    prune(item, v, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Fills in `default`s of absent properties below `v`, top down.
fn default(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, sub) in props {
                    if !map.contains_key(key)
                        && let Some(d) = sub.get("default")
                    {
                        map.insert(key.clone(), d.clone());
                    }
                }
                for (key, sub) in props {
                    if let Some(v) = map.get_mut(key) {
                        default(sub, v);
                    }
                }
            } else if let Some(additional) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for v in map.values_mut() {
                    default(additional, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for v in items {
                    default(item, v);
                }
            }
        }
        _ => {}
    }
}

/// The JSON type name kube-openapi reports for a value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(want: &str, v: &Value) -> bool {
    match want {
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    }
}

/// A value as Go's `%v`-ish rendering in field errors: strings quoted, the rest as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn push(causes: &mut Vec<Cause>, field: &str, message: String) {
    causes.push(Cause {
        field: field.to_string(),
        message,
    });
}

/// The child of `old` (an object or map) at `key`, for the rules below.
fn old_child<'a>(old: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    old.and_then(|o| o.get(key))
}

fn validate_root(
    schema: &Value,
    obj: &Value,
    old: Option<&Value>,
    causes: &mut Vec<Cause>,
    rules: &mut Vec<Cause>,
) {
    let Some(map) = obj.as_object() else {
        return;
    };
    super::cel::check(schema, obj, old, "", rules);
    for key in required(schema) {
        if !map.contains_key(key) {
            push(causes, key, "Required value".into());
        }
    }
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, v) in map {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(sub) = props.get(key) {
            validate(sub, v, old_child(old, key), key, causes, rules);
        }
    }
}

fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn number(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn count(schema: &Value, key: &str) -> Option<u64> {
    schema.get(key).and_then(Value::as_u64)
}

/// Checks `v` at `path` against `schema`; a value of the wrong type is not looked into. `old`
/// is the stored value at the same path, reached through objects and maps only (list items
/// are not correlated, so transition rules below a list are not evaluated).
fn validate(
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    causes: &mut Vec<Cause>,
    rules: &mut Vec<Cause>,
) {
    if v.is_null() {
        if flag(schema, "nullable") {
            return;
        }
        if let Some(want) = schema.get("type").and_then(Value::as_str) {
            push(
                causes,
                path,
                format!("Invalid value: \"null\": {path} in body must be of type {want}: \"null\""),
            );
        }
        return;
    }
    let actual = type_name(v);
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(is_integer(v) || v.is_string()) {
            push(
                causes,
                path,
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type int-or-string: \"{actual}\""
                ),
            );
            return;
        }
    } else if let Some(want) = schema.get("type").and_then(Value::as_str)
        && !type_matches(want, v)
    {
        push(
            causes,
            path,
            format!(
                "Invalid value: \"{actual}\": {path} in body must be of type {want}: \"{actual}\""
            ),
        );
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        let supported: Vec<String> = options.iter().map(shown).collect();
        push(
            causes,
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                supported.join(", ")
            ),
        );
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            let exclusive = |k: &str| flag(schema, k);
            if let Some(min) = number(schema, "minimum") {
                let bad = if exclusive("exclusiveMinimum") {
                    x <= min
                } else {
                    x < min
                };
                if bad {
                    let rel = if exclusive("exclusiveMinimum") {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    push(
                        causes,
                        path,
                        format!(
                            "Invalid value: {v}: {path} in body should be {rel} {}",
                            shown(&schema["minimum"])
                        ),
                    );
                }
            }
            if let Some(max) = number(schema, "maximum") {
                let bad = if exclusive("exclusiveMaximum") {
                    x >= max
                } else {
                    x > max
                };
                if bad {
                    let rel = if exclusive("exclusiveMaximum") {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    push(
                        causes,
                        path,
                        format!(
                            "Invalid value: {v}: {path} in body should be {rel} {}",
                            shown(&schema["maximum"])
                        ),
                    );
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(max) = count(schema, "maxLength")
                && len > max
            {
                push(
                    causes,
                    path,
                    format!("Too long: may not be longer than {max}"),
                );
            }
            if let Some(min) = count(schema, "minLength")
                && len < min
            {
                push(
                    causes,
                    path,
                    format!(
                        "Invalid value: {s:?}: {path} in body should be at least {min} chars long"
                    ),
                );
            }
            if let Some(format) = schema.get("format").and_then(Value::as_str)
                && !format_ok(format, s)
            {
                push(
                    causes,
                    path,
                    format!("Invalid value: {s:?}: {path} in body must be of type {format}: {s:?}"),
                );
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(pattern)
                && !re.is_match(s)
            {
                push(
                    causes,
                    path,
                    format!("Invalid value: {s:?}: {path} in body should match '{pattern}'"),
                );
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = count(schema, "maxItems")
                && n > max
            {
                push(
                    causes,
                    path,
                    format!("Too many: {n}: must have at most {max} items"),
                );
            }
            if let Some(min) = count(schema, "minItems")
                && n < min
            {
                push(
                    causes,
                    path,
                    format!("Invalid value: {n}: {path} in body should have at least {min} items"),
                );
            }
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    validate(item, v, None, &format!("{path}[{i}]"), causes, rules);
                }
            }
            list_uniqueness(schema, items, path, causes);
        }
        Value::Object(map) => validate_object(schema, map, old, path, causes, rules),
        _ => {}
    }
    super::cel::check(schema, v, old, path, rules);
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    old: Option<&Value>,
    path: &str,
    causes: &mut Vec<Cause>,
    rules: &mut Vec<Cause>,
) {
    for key in required(schema) {
        if !map.contains_key(key) {
            push(causes, &child(path, key), "Required value".into());
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, v) in map {
        if let Some(sub) = props.and_then(|p| p.get(key)).or(additional) {
            validate(
                sub,
                v,
                old_child(old, key),
                &child(path, key),
                causes,
                rules,
            );
        }
    }
}

/// Whether `s` has the string `format` kube-openapi's format registry checks for CRDs; the
/// numeric formats (`int32`, `int64`, `float`, `double`) and formats it does not know are not
/// checked, as in apiextensions-apiserver.
fn format_ok(format: &str, s: &str) -> bool {
    let hex = |part: &str, n: usize| part.len() == n && part.chars().all(|c| c.is_ascii_hexdigit());
    let uuid = |version: Option<char>| {
        let parts: Vec<&str> = s.split('-').collect();
        parts.len() == 5
            && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| hex(p, *n))
            && version.is_none_or(|v| parts[2].starts_with(v))
    };
    match format {
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "uuid" => uuid(None),
        "uuid3" => uuid(Some('3')),
        "uuid4" => uuid(Some('4')),
        "uuid5" => uuid(Some('5')),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            let max = match ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(_)) => 32,
                Ok(std::net::IpAddr::V6(_)) => 128,
                Err(_) => return false,
            };
            bits.parse::<u8>().is_ok_and(|b| b <= max)
        }),
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            parts.len() == 6 && parts.iter().all(|p| hex(p, 2))
        }
        "byte" => is_base64(s),
        "hostname" => {
            !s.is_empty()
                && s.len() <= 253
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
        _ => true,
    }
}

/// Standard base64 with padding, as Go's `encoding/base64.StdEncoding` accepts it.
fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len().is_multiple_of(4)
        && s.len() - body.len() <= 2
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

/// Go's `%#v` of a decoded JSON value, as in a `Duplicate value` cause.
fn go_syntax(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k:?}:{}", go_syntax(&map[k])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// `x-kubernetes-list-type: set` items and `map` keys (`x-kubernetes-list-map-keys`) must be
/// unique: one `Duplicate value` cause per repeat, at its index. One pass with a set.
fn list_uniqueness(schema: &Value, items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    let keys: Vec<&str> = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => Vec::new(),
        Some("map") => schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default(),
        _ => return,
    };
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let identity = if keys.is_empty() {
            item.clone()
        } else {
            let mut m = Map::new();
            for k in &keys {
                if let Some(v) = item.get(*k) {
                    m.insert((*k).to_string(), v.clone());
                }
            }
            Value::Object(m)
        };
        let text = identity.to_string();
        if !seen.insert(text) {
            push(
                causes,
                &format!("{path}[{i}]"),
                format!("Duplicate value: {}", go_syntax(&identity)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["selector"], "properties": {
                "replicas": {"type": "integer", "default": 1, "minimum": 0},
                "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "maxSurge": {"x-kubernetes-int-or-string": true},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "steps": {"type": "array", "items": {"type": "object", "properties": {
                    "setWeight": {"type": "integer"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "note": {"type": "string", "nullable": true},
            }},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        }})
    }

    #[test]
    fn prunes_unknown_fields_and_reports_their_paths() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "R", "metadata": {"name": "r", "odd": 1},
            "spec": {"selector": {"any": {"thing": 1}}, "bogus": 1,
                     "steps": [{"setWeight": 5, "extra": true}], "labels": {"a": "b"}},
            "other": 2});
        let out = process(&schema(), &mut obj, None);
        assert_eq!(out.unknown, ["spec.bogus", "spec.steps[0].extra", "other"]);
        assert!(out.causes.is_empty(), "{:?}", out.causes);
        assert_eq!(obj["spec"]["selector"], json!({"any": {"thing": 1}}));
        assert_eq!(obj["metadata"]["odd"], 1, "metadata is not the schema's");
        assert_eq!(obj["spec"]["replicas"], 1, "defaulted");
        assert!(obj.get("other").is_none());
    }

    #[test]
    fn kube_openapi_messages() {
        let mut obj = json!({"spec": {"replicas": "two", "maxSurge": true, "mode": "c",
            "steps": [{"setWeight": "x"}], "labels": {"a": 1}, "note": null}});
        let out = process(&schema(), &mut obj, None);
        let got: Vec<String> = out
            .causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            got,
            [
                "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
                "spec.maxSurge: Invalid value: \"boolean\": spec.maxSurge in body must be of type int-or-string: \"boolean\"",
                "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
                "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
                "spec.selector: Required value",
                "spec.steps[0].setWeight: Invalid value: \"string\": spec.steps[0].setWeight in body must be of type integer: \"string\"",
            ]
        );
        let mut neg = json!({"spec": {"selector": {}, "replicas": -1}});
        let out = process(&schema(), &mut neg, None);
        assert_eq!(
            out.causes[0].message,
            "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
        );
        let mut missing = json!({});
        assert_eq!(
            process(&schema(), &mut missing, None).causes[0].field,
            "spec"
        );
    }
}
