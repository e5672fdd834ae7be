//! Rendering a template: every string field of a `template.<name>` entry is a Go
//! text/template (the `gtmpl` crate) over the variables `.rollout`, `.analysisRuns`, `.time`
//! and `.secrets`, with the few sprig functions upstream's templates use added.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use gtmpl::{Context, Func, FuncError, Template, Value};
use serde_json::Value as Json;

/// A rendered template: the template's fields with every string rendered (`message`,
/// `slack.attachments`, `webhook.<name>.body`, `email.subject`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification(pub Json);

impl Notification {
    /// The rendered `message` (empty when the template has none).
    pub fn message(&self) -> &str {
        self.0.get("message").and_then(Json::as_str).unwrap_or("")
    }

    /// The rendered `<service>.<field>` string, if set and not empty.
    pub fn field(&self, service: &str, field: &str) -> Option<&str> {
        self.0
            .get(service)
            .and_then(|s| s.get(field))
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The rendered `<service>` section.
    pub fn section(&self, service: &str) -> Option<&Json> {
        self.0.get(service)
    }
}

/// A template that did not parse or render.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template {template}: {field}: {message}")]
pub struct RenderError {
    /// The template's name.
    pub template: String,
    /// The field (`message`, `slack.attachments`, ...).
    pub field: String,
    /// What gtmpl said.
    pub message: String,
}

/// The template variables as upstream names them. `now` is what `.time.Now` returns.
pub fn vars(
    rollout: &Json,
    analysis_runs: &[Json],
    secrets: &std::collections::BTreeMap<String, String>,
) -> Json {
    serde_json::json!({
        "rollout": rollout,
        "analysisRuns": analysis_runs,
        "secrets": secrets,
    })
}

/// Renders every string of `template` (named `name`) over `vars`; `now` is `.time.Now`.
pub fn render(
    name: &str,
    template: &Json,
    vars: &Json,
    now: DateTime<Utc>,
) -> Result<Notification, RenderError> {
    let mut context = to_value(vars);
    if let Value::Map(map) = &mut context {
        map.insert("time".to_string(), time_value(now));
    }
    let context = Context::from(context);
    let mut path = Vec::new();
    render_json(name, template, &context, &mut path).map(Notification)
}

fn render_json(
    name: &str,
    json: &Json,
    context: &Context,
    path: &mut Vec<String>,
) -> Result<Json, RenderError> {
    Ok(match json {
        Json::String(text) => Json::String(render_text(name, text, context, path)?),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    path.push(i.to_string());
                    let rendered = render_json(name, item, context, path);
                    path.pop();
                    rendered
                })
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => {
            let mut rendered = serde_json::Map::new();
            for (key, value) in map {
                path.push(key.clone());
                let value = render_json(name, value, context, path);
                path.pop();
                rendered.insert(key.clone(), value?);
            }
            Json::Object(rendered)
        }
        other => other.clone(),
    })
}

/// Renders one Go template string.
pub fn render_text(
    name: &str,
    text: &str,
    context: &Context,
    path: &[String],
) -> Result<String, RenderError> {
    // Plain text needs no engine (and gtmpl calls an empty template incomplete).
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let error = |message: String| RenderError {
        template: name.to_string(),
        field: path.join("."),
        message,
    };
    let mut template = Template::with_name(name);
    template.add_funcs(FUNCS);
    template.parse(text).map_err(|e| error(e.to_string()))?;
    template.render(context).map_err(|e| error(e.to_string()))
}

/// JSON as gtmpl values: objects are maps (missing keys print `<no value>` as in Go), numbers
/// integers where they are whole.
pub fn to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => Value::from(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Json::from(i),
            None => serde_json::Number::from_f64(n.as_f64().unwrap_or_default())
                .map_or(Json::Null, Json::Number),
        },
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(map) | Value::Map(map) => {
            // Sorted keys, as Go's encoding/json writes maps.
            let sorted: std::collections::BTreeMap<_, _> =
                map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            Json::Object(sorted.into_iter().collect())
        }
    }
}

/// `.time`: `Now` gives the render time as RFC 3339 (`call .time.Now`); `Parse` hands the
/// timestamp back after checking it is RFC 3339. Go's `time.Time` methods are not available.
///
/// gtmpl calls a function found in a field at once, with the map as its argument (Go needs
/// `call`): so `Now` answers that call with the time, `Parse` with the parsing function, and
/// [`call`] passes a value that is not a function through.
fn time_value(now: DateTime<Utc>) -> Value {
    // gtmpl functions are plain `fn`s: the render time travels as a hidden map entry.
    let mut time = HashMap::new();
    time.insert(
        "Now".to_string(),
        Value::Function(gtmpl_value::Function { f: time_now }),
    );
    time.insert(
        "Parse".to_string(),
        Value::Function(gtmpl_value::Function { f: time_parse }),
    );
    NOW.with(|cell| cell.set(Some(now)));
    Value::Map(time)
}

thread_local! {
    /// The `now` of the render on this thread (set just before rendering, read by `time_now`).
    static NOW: std::cell::Cell<Option<DateTime<Utc>>> = const { std::cell::Cell::new(None) };
}

fn time_now(_: &[Value]) -> Result<Value, FuncError> {
    let now = NOW.with(std::cell::Cell::get).unwrap_or_default();
    Ok(Value::from(
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ))
}

fn time_parse(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [Value::String(_)] => parse_time(args),
        _ => Ok(Value::Function(gtmpl_value::Function { f: parse_time })),
    }
}

fn parse_time(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::String(text)] = args else {
        return Err(FuncError::ExactlyXArgs("Parse".into(), 1));
    };
    DateTime::parse_from_rfc3339(text)
        .map(|t| {
            Value::from(
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
        })
        .map_err(|e| FuncError::Generic(format!("parsing time {text:?}: {e}")))
}

/// The functions added to Go's built-ins (a subset of sprig's, as upstream templates use them).
const FUNCS: &[(&str, Func)] = &[
    ("call", call),
    ("add", add),
    ("sub", sub),
    ("mul", mul),
    ("toJson", to_json_func),
    ("upper", upper),
    ("lower", lower),
    ("trim", trim),
    ("quote", quote),
    ("default", default),
    ("replace", replace),
    ("contains", contains),
    ("hasPrefix", has_prefix),
    ("hasSuffix", has_suffix),
    ("join", join),
];

/// Go's `call`, also taking a value gtmpl already got by calling the field's function.
fn call(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [] => Err(FuncError::AtLeastXArgs("call".into(), 1)),
        [Value::Function(f), rest @ ..] => (f.f)(rest),
        [value] => Ok(value.clone()),
        _ => Err(FuncError::Generic(
            "call requires the first argument to be a function".into(),
        )),
    }
}

fn int(value: &Value) -> Result<i64, FuncError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or(FuncError::UnableToConvertFromValue),
        Value::String(s) => s.parse().map_err(|_| FuncError::UnableToConvertFromValue),
        Value::Nil | Value::NoValue => Ok(0),
        Value::Bool(b) => Ok(i64::from(*b)),
        _ => Err(FuncError::UnableToConvertFromValue),
    }
}

fn fold(args: &[Value], name: &str, op: fn(i64, i64) -> i64) -> Result<Value, FuncError> {
    let Some((first, rest)) = args.split_first() else {
        return Err(FuncError::AtLeastXArgs(name.into(), 1));
    };
    let mut total = int(first)?;
    for arg in rest {
        total = op(total, int(arg)?);
    }
    Ok(Value::from(total))
}

fn add(args: &[Value]) -> Result<Value, FuncError> {
    fold(args, "add", i64::wrapping_add)
}

fn sub(args: &[Value]) -> Result<Value, FuncError> {
    fold(args, "sub", i64::wrapping_sub)
}

fn mul(args: &[Value]) -> Result<Value, FuncError> {
    fold(args, "mul", i64::wrapping_mul)
}

fn string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::NoValue | Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn one(args: &[Value], name: &str) -> Result<String, FuncError> {
    match args {
        [value] => Ok(string(value)),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn to_json_func(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [value] => Ok(Value::from(to_json(value).to_string())),
        _ => Err(FuncError::ExactlyXArgs("toJson".into(), 1)),
    }
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(one(args, "upper")?.to_uppercase()))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(one(args, "lower")?.to_lowercase()))
}

fn trim(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(one(args, "trim")?.trim().to_string()))
}

fn quote(args: &[Value]) -> Result<Value, FuncError> {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| Json::String(string(a)).to_string())
        .collect();
    Ok(Value::from(quoted.join(" ")))
}

/// sprig `default DEFAULT VALUE`: VALUE unless it is empty.
fn default(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [fallback] => Ok(fallback.clone()),
        [fallback, value] => {
            let empty = match value {
                Value::NoValue | Value::Nil => true,
                Value::String(s) => s.is_empty(),
                Value::Bool(b) => !b,
                Value::Array(a) => a.is_empty(),
                Value::Map(m) | Value::Object(m) => m.is_empty(),
                Value::Number(n) => n.as_f64() == Some(0.0),
                Value::Function(_) => false,
            };
            Ok(if empty {
                fallback.clone()
            } else {
                value.clone()
            })
        }
        _ => Err(FuncError::ExactlyXArgs("default".into(), 2)),
    }
}

/// sprig `replace OLD NEW TEXT`.
fn replace(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [old, new, text] => Ok(Value::from(
            string(text).replace(&string(old), &string(new)),
        )),
        _ => Err(FuncError::ExactlyXArgs("replace".into(), 3)),
    }
}

/// sprig `contains NEEDLE TEXT`.
fn contains(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [needle, text] => Ok(Value::from(string(text).contains(&string(needle)))),
        _ => Err(FuncError::ExactlyXArgs("contains".into(), 2)),
    }
}

fn has_prefix(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [prefix, text] => Ok(Value::from(string(text).starts_with(&string(prefix)))),
        _ => Err(FuncError::ExactlyXArgs("hasPrefix".into(), 2)),
    }
}

fn has_suffix(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [suffix, text] => Ok(Value::from(string(text).ends_with(&string(suffix)))),
        _ => Err(FuncError::ExactlyXArgs("hasSuffix".into(), 2)),
    }
}

/// sprig `join SEP LIST`.
fn join(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [sep, Value::Array(items)] => Ok(Value::from(
            items
                .iter()
                .map(string)
                .collect::<Vec<_>>()
                .join(&string(sep)),
        )),
        _ => Err(FuncError::ExactlyXArgs("join".into(), 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotificationConfig;
    use serde_json::json;

    fn rollout() -> Json {
        json!({
            "metadata": {"name": "shop", "namespace": "default", "labels": {"team": "a"}},
            "spec": {
                "replicas": 4,
                "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]}},
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "shop:2"},
                    {"name": "proxy", "image": "envoy:1"}
                ]}}
            },
            "status": {"currentStepIndex": 1, "phase": "Paused"}
        })
    }

    fn now() -> DateTime<Utc> {
        "2026-01-02T03:04:05Z".parse().unwrap()
    }

    #[test]
    fn the_builtin_templates_render_as_upstreams() {
        let config = NotificationConfig::builtin();
        let vars = vars(&rollout(), &[], &Default::default());
        let step = render(
            "rollout-step-completed",
            &config.templates["rollout-step-completed"],
            &vars,
            now(),
        )
        .unwrap();
        assert_eq!(
            step.message(),
            "Rollout shop step number 2/3 has been completed."
        );
        assert_eq!(step.field("email", "subject"), Some(step.message()));
        let attachments: Json =
            serde_json::from_str(step.field("slack", "attachments").unwrap()).unwrap();
        assert_eq!(attachments[0]["title"], "shop");
        assert_eq!(attachments[0]["fields"][0]["value"], "Canary");
        assert_eq!(attachments[0]["fields"][1]["value"], "2/3");
        assert_eq!(attachments[0]["fields"][2]["value"], "shop:2");
        assert_eq!(attachments[0]["fields"][3]["title"], "proxy");
        let scaling = render(
            "scaling-replicaset",
            &config.templates["scaling-replicaset"],
            &vars,
            now(),
        )
        .unwrap();
        assert_eq!(scaling.message(), "Scaling Rollout shop's replicaset to 4.");
    }

    #[test]
    fn functions_time_secrets_and_nested_fields() {
        let template = json!({
            "message": "{{ .rollout.metadata.name | upper }} at {{ call .time.Now }} {{ .secrets.k }}",
            "parsed": "{{ call .time.Parse \"2026-01-02T04:05:06+01:00\" }} {{ .time.Now }}",
            "webhook": {"hook": {"method": "POST", "body": "{{ toJson .rollout.metadata.labels }}"}},
            "teams": {"facts": "{{ index .rollout.spec.template.spec.containers 1 \"image\" }}"},
            "other": "{{ default \"none\" .rollout.status.message }} {{ sub 5 2 }}"
        });
        let secrets = [("k".to_string(), "v".to_string())].into_iter().collect();
        let vars = vars(&rollout(), &[], &secrets);
        let rendered = render("t", &template, &vars, now()).unwrap();
        assert_eq!(rendered.message(), "SHOP at 2026-01-02T03:04:05Z v");
        assert_eq!(
            rendered.0["parsed"],
            "2026-01-02T03:05:06Z 2026-01-02T03:04:05Z"
        );
        assert_eq!(rendered.0["webhook"]["hook"]["method"], "POST");
        assert_eq!(rendered.0["webhook"]["hook"]["body"], r#"{"team":"a"}"#);
        assert_eq!(rendered.field("teams", "facts"), Some("envoy:1"));
        assert_eq!(rendered.0["other"], "none 3");
    }

    #[test]
    fn errors_name_the_template_and_field() {
        let vars = vars(&rollout(), &[], &Default::default());
        let broken =
            json!({"message": "ok", "slack": {"attachments": "{{ .rollout.metadata.name"}});
        let error = render("broken", &broken, &vars, now()).unwrap_err();
        assert_eq!(error.template, "broken");
        assert_eq!(error.field, "slack.attachments");
        assert!(
            error
                .to_string()
                .starts_with("template broken: slack.attachments: "),
            "{error}"
        );
        let unknown = json!({"message": "{{ nosuch 1 }}"});
        let error = render("unknown", &unknown, &vars, now()).unwrap_err();
        assert!(error.message.contains("nosuch"), "{error}");
    }
}
