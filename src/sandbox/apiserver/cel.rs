//! CRD validation rules (`x-kubernetes-validations`) evaluated with the `cel` crate, as
//! apiextensions-apiserver evaluates them: `self` is the value at the rule's schema node,
//! `oldSelf` the stored value at the same path on an update; a transition rule (one that names
//! `oldSelf`) is skipped when there is no old value. A failing rule is a cause at the node's
//! path (or at `fieldPath` below it) with the rule's `reason` and the text of its
//! `messageExpression`, else `message`, else `failed rule: <rule>`:
//! `spec.selector: Invalid value: "object": .spec.selector is immutable`.
//!
//! The environment is CEL's standard library with its strings, lists and math extensions;
//! Kubernetes' own libraries (`isSorted`, `url`, `ip`, `cidr`, `quantity`, `format`, `find`,
//! `authorizer`…) are not there, so a rule using them fails with an evaluation error, and
//! values are not typed by their schema `format` (a `date-time` string is a string, not a
//! timestamp).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::{Context, Env, Program};
use serde_json::Value;

use super::error::Cause;

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // The three are the libraries' own declarations and cannot clash with the stdlib's.
        let _ = env.add_extension(cel::extensions::strings);
        let _ = env.add_extension(cel::extensions::lists);
        let _ = env.add_extension(cel::extensions::math);
        Arc::new(env)
    })
}

/// Compiled rules by source: a CRD's rules are compiled once, not on every write.
fn program(source: &str) -> Result<Arc<Program>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Program>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(source) {
        return Ok(p.clone());
    }
    let compiled = Arc::new(env().compile(source).map_err(|e| e.to_string())?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(source.to_string(), compiled.clone());
    Ok(compiled)
}

/// A JSON value as CEL sees it: integers as `int`, other numbers as `double`.
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => cel::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => cel::Value::from(s.as_str()),
        Value::Array(items) => cel::Value::from(items.iter().map(to_cel).collect::<Vec<_>>()),
        Value::Object(map) => cel::Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_cel(v)))
                .collect::<HashMap<String, cel::Value>>(),
        ),
    }
}

fn evaluate(program: &Program, this: &Value, old: Option<&Value>) -> Result<cel::Value, String> {
    let mut ctx = Context::with_env(env().clone());
    ctx.add_variable_from_value("self", to_cel(this));
    if let Some(old) = old {
        ctx.add_variable_from_value("oldSelf", to_cel(old));
    }
    program.execute(&ctx).map_err(|e| e.to_string())
}

/// `fieldPath` (`.foo.bar`, `['odd.key']`) below `path`, as a field error path.
fn below(path: &str, field_path: &str) -> String {
    let mut out = path.to_string();
    let mut rest = field_path;
    while !rest.is_empty() {
        let (seg, tail) = if let Some(r) = rest.strip_prefix("['") {
            match r.split_once("']") {
                Some((seg, tail)) => (format!("[{seg}]"), tail),
                None => (r.to_string(), ""),
            }
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            (format!(".{}", &r[..end]), &r[end..])
        };
        if out.is_empty() {
            out = seg.trim_start_matches('.').to_string();
        } else {
            out.push_str(&seg);
        }
        rest = tail;
    }
    out
}

/// Evaluates the rules of `schema` (the node at `path`) on `this`, pushing a cause per failure.
pub fn check(schema: &Value, this: &Value, old: Option<&Value>, path: &str, out: &mut Vec<Cause>) {
    let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    else {
        return;
    };
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    for rule in rules {
        let Some(source) = rule.get("rule").and_then(Value::as_str) else {
            continue;
        };
        let text = |k: &str| {
            rule.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let failure = match program(source) {
            Err(e) => Some(format!("compilation failed: {e}")),
            Ok(p) => {
                let transition = p.references().has_variable("oldSelf");
                if transition && old.is_none() {
                    continue;
                }
                match evaluate(&p, this, old.filter(|_| transition)) {
                    Ok(cel::Value::Bool(true)) => None,
                    Ok(cel::Value::Bool(false)) => {
                        let from_expression = text("messageExpression")
                            .and_then(|m| program(m).ok())
                            .and_then(|m| evaluate(&m, this, old).ok())
                            .and_then(|v| match v {
                                cel::Value::String(s)
                                    if !s.trim().is_empty() && !s.contains('\n') =>
                                {
                                    Some(s.to_string())
                                }
                                _ => None,
                            });
                        Some(from_expression.unwrap_or_else(|| {
                            text("message")
                                .map_or_else(|| format!("failed rule: {source}"), str::to_string)
                        }))
                    }
                    Ok(other) => Some(format!(
                        "rule evaluation error: {source}: rule did not evaluate to a bool: {other:?}"
                    )),
                    Err(e) => Some(format!("{source}: {e}")),
                }
            }
        };
        let Some(message) = failure else { continue };
        let field = match text("fieldPath") {
            Some(fp) => below(path, fp),
            // A rule on the schema's root is reported without a path, which Go prints so.
            None if path.is_empty() => "<nil>".to_string(),
            None => path.to_string(),
        };
        let message = match text("reason") {
            Some("FieldValueForbidden") => format!("Forbidden: {message}"),
            Some("FieldValueRequired") => format!("Required value: {message}"),
            Some("FieldValueDuplicate") => format!("Duplicate value: {ty:?}"),
            _ => format!("Invalid value: {ty:?}: {message}"),
        };
        out.push(Cause { field, message });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: Value, this: Value, old: Option<Value>) -> Vec<String> {
        let mut out = Vec::new();
        check(&schema, &this, old.as_ref(), "spec.selector", &mut out);
        out.iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn transition_rules_need_an_old_value() {
        let schema = json!({"type": "object", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": ".spec.selector is immutable"}]});
        let a = json!({"matchLabels": {"app": "a"}});
        let b = json!({"matchLabels": {"app": "b"}});
        assert!(run(schema.clone(), a.clone(), None).is_empty(), "create");
        assert!(run(schema.clone(), a.clone(), Some(a.clone())).is_empty());
        assert_eq!(
            run(schema, b, Some(a)),
            ["spec.selector: Invalid value: \"object\": .spec.selector is immutable"]
        );
    }

    #[test]
    fn messages_reasons_and_field_paths() {
        let schema = json!({"type": "object", "x-kubernetes-validations": [
            {"rule": "self.min <= self.max"},
            {"rule": "self.min <= self.max", "messageExpression": "'min ' + string(self.min) + ' above max'",
             "fieldPath": ".min", "reason": "FieldValueForbidden"},
            {"rule": "self.name.startsWith('x')", "message": "bad name", "reason": "FieldValueRequired"},
            {"rule": "size(self.name.split('-')) == 2 && self.name.upperAscii() == 'X-Y'"},
        ]});
        let got = run(schema, json!({"min": 5, "max": 3, "name": "x-y"}), None);
        assert_eq!(
            got,
            [
                "spec.selector: Invalid value: \"object\": failed rule: self.min <= self.max",
                "spec.selector.min: Forbidden: min 5 above max",
            ]
        );
        assert_eq!(below("spec", "['a.b'].c"), "spec[a.b].c");
    }
}
