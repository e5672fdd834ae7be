//! Runs every entry of the upstream condition vectors (`conformance/vectors/conditions.yaml`):
//! condition evaluation, Prometheus response processing, the helper builtins, string-set
//! equality and time expressions.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use chrono::{DateTime, Utc};
use davy::analysis::providers::prometheus_result;
use davy::expr::{
    MetricValue, eval_condition, eval_time, evaluate_result, format_sample_value, parse_go_float,
    string_set_equal,
};
use regex::Regex;
use serde_json::{Value as Json, json};

/// The fixed instant `now()` gives in these tests.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// The Go value an upstream test passes, from its YAML form and Go type (see the README).
fn metric_value(value: &Json, go_type: &str) -> Result<MetricValue, String> {
    if value.is_null() {
        return Ok(MetricValue::Nil);
    }
    let float = |v: &Json| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(parse_go_float))
            .ok_or_else(|| format!("not a float: {v}"))
    };
    Ok(match go_type {
        "bool" => MetricValue::Bool(value.as_bool().ok_or("not a bool")?),
        "int" => MetricValue::Int(value.as_i64().ok_or("not an int")?),
        "string" => MetricValue::String(value.as_str().ok_or("not a string")?.to_string()),
        t if t.starts_with("float64") || t.starts_with("*float64") => {
            MetricValue::Float(float(value)?)
        }
        "[]float64" => MetricValue::FloatList(
            value
                .as_array()
                .ok_or("not a list")?
                .iter()
                .map(float)
                .collect::<Result<_, _>>()?,
        ),
        "[]string" => MetricValue::List(
            value
                .as_array()
                .ok_or("not a list")?
                .iter()
                .map(|s| s.as_str().map(MetricValue::from).ok_or("not a string"))
                .collect::<Result<_, _>>()?,
        ),
        t if t.starts_with("map[string]any") => MetricValue::from(value.clone()),
        other => return Err(format!("unknown Go type {other}")),
    })
}

/// An expr literal for a YAML value (`nil`, `1`, `1.0`, `"hi"`, `["a", "b"]`).
fn literal(value: &Json) -> String {
    match value {
        Json::Null => "nil".to_string(),
        Json::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().unwrap_or_default()),
        Json::Array(items) => {
            let parts: Vec<String> = items.iter().map(literal).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

fn str_field<'a>(entry: &'a Json, key: &str) -> &'a str {
    entry.get(key).and_then(Json::as_str).unwrap_or_default()
}

/// Checks an error against `expected.error`: `null`, `{any}`, `{contains}`, `{exact}`, `{regex}`.
fn check_error(expected: &Json, actual: Option<&str>) -> Result<(), String> {
    let Some(spec) = expected.get("error").filter(|e| !e.is_null()) else {
        return match actual {
            None => Ok(()),
            Some(message) => Err(format!("unexpected error: {message}")),
        };
    };
    let Some(message) = actual else {
        return Err(format!("expected an error matching {spec}, got none"));
    };
    if let Some(parts) = spec.get("contains").and_then(Json::as_array) {
        for part in parts.iter().filter_map(Json::as_str) {
            if !message.contains(part) {
                return Err(format!("error {message:?} lacks {part:?}"));
            }
        }
    }
    if let Some(exact) = spec.get("exact").and_then(Json::as_str)
        && message != exact
    {
        return Err(format!("error {message:?} != {exact:?}"));
    }
    if let Some(pattern) = spec.get("regex").and_then(Json::as_str) {
        let regex = Regex::new(pattern).map_err(|e| e.to_string())?;
        if !regex.is_match(message) {
            return Err(format!("error {message:?} does not match /{pattern}/"));
        }
    }
    Ok(())
}

fn run_case(entry: &Json, hints: &mut (usize, usize)) -> Result<(), String> {
    let result = metric_value(&entry["result"], str_field(entry, "result_type"))?;
    let expected = &entry["expected"];
    match str_field(entry, "kind") {
        "evaluate_result" => {
            let (verdict, message) = evaluate_result(
                &result,
                str_field(entry, "successCondition"),
                str_field(entry, "failureCondition"),
            );
            if verdict.as_str() != str_field(expected, "phase") {
                return Err(format!("phase {} (message {message:?})", verdict.as_str()));
            }
            check_error(expected, message.as_deref())?;
            if let Some(full) = expected
                .get("error_full_text_per_source")
                .and_then(Json::as_str)
            {
                hints.1 += 1;
                if message.as_deref() == Some(full) {
                    hints.0 += 1;
                } else {
                    println!("hint differs: {message:?} vs {full:?}");
                }
            }
            Ok(())
        }
        "eval_condition" => {
            let outcome = eval_condition(&result, str_field(entry, "condition"));
            let value = *outcome.as_ref().unwrap_or(&false);
            let message = outcome.as_ref().err().map(ToString::to_string);
            if Some(value) != expected["value"].as_bool() {
                return Err(format!("value {value} (error {message:?})"));
            }
            check_error(expected, message.as_deref())
        }
        other => Err(format!("unknown kind {other}")),
    }
}

/// The Prometheus API `data` object for a vector entry's `response`.
fn prometheus_data(response: &Json) -> Json {
    let sample = |v: &Json| match v {
        Json::String(s) => json!([1692000000.0, s]),
        other => json!([
            1692000000.0,
            format_sample_value(other.as_f64().unwrap_or(f64::NAN))
        ]),
    };
    match str_field(response, "type") {
        "scalar" => json!({"resultType": "scalar", "result": sample(&response["value"])}),
        "vector" => {
            let samples = response["samples"].as_array().cloned().unwrap_or_default();
            let result: Vec<Json> = samples
                .iter()
                .map(|s| json!({"metric": {}, "value": sample(s)}))
                .collect();
            json!({"resultType": "vector", "result": result})
        }
        "matrix" => {
            let streams = response["streams"].as_array().cloned().unwrap_or_default();
            let result: Vec<Json> = streams
                .iter()
                .map(|stream| {
                    let values: Vec<Json> = stream
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(sample)
                        .collect();
                    json!({"metric": {}, "values": values})
                })
                .collect();
            json!({"resultType": "matrix", "result": result})
        }
        _ => Json::Null,
    }
}

fn run_prometheus(entry: &Json) -> Result<(), String> {
    let data = prometheus_data(&entry["response"]);
    let outcome = prometheus_result::evaluate(
        &data,
        str_field(entry, "successCondition"),
        str_field(entry, "failureCondition"),
        now(),
    );
    let expected = &entry["expected"];
    if outcome.verdict.as_str() != str_field(expected, "phase") {
        return Err(format!("phase {:?}", outcome));
    }
    if outcome.value != str_field(expected, "value") {
        return Err(format!("value {:?}", outcome.value));
    }
    check_error(expected, outcome.message.as_deref())
}

fn run_builtin(entry: &Json) -> Result<(), String> {
    let function = str_field(entry, "function");
    let input = metric_value(&entry["input"], str_field(entry, "input_type"))?;
    let expected = &entry["expected"];
    let wants_error = entry["expected_error"].as_bool() == Some(true);
    let condition_is = |condition: String, want: bool| -> Result<(), String> {
        match eval_condition(&input, &condition) {
            Ok(value) if value == want => Ok(()),
            other => Err(format!("{condition} on {input:?}: {other:?}")),
        }
    };
    match function {
        "asInt" | "asFloat" if wants_error => {
            match eval_condition(&input, &format!("{function}(result) == 0")) {
                Err(_) => Ok(()),
                Ok(value) => Err(format!("{function}({input:?}) gave no error ({value})")),
            }
        }
        "asInt" | "asFloat" | "isInf" => {
            condition_is(format!("{function}(result) == {}", literal(expected)), true)
        }
        // Inside a condition the argument is ignored and the RESULT is looked at, so both the
        // result itself and an unrelated argument must give the expected answer.
        "isNil" => {
            let want = expected.as_bool().ok_or("expected is not a bool")?;
            condition_is("isNil(result)".to_string(), want)?;
            condition_is("isNil(42)".to_string(), want)
        }
        "default" => {
            let fallback = literal(&entry["default"]);
            let want = literal(expected);
            condition_is(format!("default(result, {fallback}) == {want}"), true)?;
            condition_is(format!("default(nil, {fallback}) == {want}"), true)
        }
        f if f.starts_with("valueFromPointer") => {
            condition_is(format!("result == {}", literal(expected)), true)
        }
        f if f.starts_with("isNilOrEmpty") => {
            let want = expected.as_bool().ok_or("expected is not a bool")?;
            if input.is_nil_or_empty() == want {
                Ok(())
            } else {
                Err(format!("is_nil_or_empty({input:?}) != {want}"))
            }
        }
        other => Err(format!("unknown builtin {other}")),
    }
}

fn strings(value: &Json) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn run_set_equal(entry: &Json) -> Result<(), String> {
    let got = string_set_equal(&strings(&entry["a"]), &strings(&entry["b"]));
    if Some(got) == entry["expected"].as_bool() {
        Ok(())
    } else {
        Err(format!("got {got}"))
    }
}

fn run_eval_time(entry: &Json) -> Result<(), String> {
    let outcome = eval_time(str_field(entry, "expression"), now());
    if entry["expected_error"].as_bool() == Some(true) {
        return match outcome {
            Err(_) => Ok(()),
            Ok(t) => Err(format!("expected an error, got {t}")),
        };
    }
    let expected = DateTime::parse_from_rfc3339(str_field(entry, "expected"))
        .map_err(|e| e.to_string())?
        .with_timezone(&Utc);
    match outcome {
        Ok(t) if t == expected => Ok(()),
        other => Err(format!("got {other:?}")),
    }
}

#[test]
fn conditions_vectors() {
    let Some(dir) = common::conformance_dir() else {
        return;
    };
    let path = dir.join("vectors").join("conditions.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Json = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}"));

    let mut failures = Vec::new();
    let mut total = 0;
    let mut hints = (0, 0);
    type Runner<'a> = Box<dyn FnMut(&Json) -> Result<(), String> + 'a>;
    let sections: Vec<(&str, Runner)> = vec![
        ("cases", Box::new(|e: &Json| run_case(e, &mut hints))),
        ("prometheus_response", Box::new(run_prometheus)),
        ("builtins", Box::new(run_builtin)),
        ("string_set_equal", Box::new(run_set_equal)),
        ("eval_time", Box::new(run_eval_time)),
    ];
    for (section, mut run) in sections {
        let entries = doc[section].as_array().cloned().unwrap_or_default();
        assert!(!entries.is_empty(), "section {section} is empty or missing");
        for (index, entry) in entries.iter().enumerate() {
            if let Err(why) = run(entry) {
                let name = entry
                    .get("name")
                    .or_else(|| entry.get("test"))
                    .and_then(Json::as_str)
                    .unwrap_or_default();
                failures.push(format!("{section}[{index}] {name}: {why}"));
            }
        }
        println!("conditions vectors: {section}: {} entries", entries.len());
        total += entries.len();
    }
    println!(
        "conditions vectors: full error texts (hints, not asserted) matched {}/{}",
        hints.0, hints.1
    );
    assert!(
        failures.is_empty(),
        "{} of {total} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("conditions vectors: {total} passed");
}
