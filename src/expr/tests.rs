//! Tables for the examples of spec §6 (condition language), §5.1 (NaN/empty results) and §4.9
//! (range-query time expressions) that the upstream vectors do not cover.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9)
        .single()
        .unwrap_or_default()
}

fn floats(values: &[f64]) -> MetricValue {
    MetricValue::FloatList(values.to_vec())
}

fn web_result() -> MetricValue {
    MetricValue::from(serde_json::json!({
        "ok": true, "successPercent": 0.93, "successRate": 0.97, "items": [1, 2, 3]
    }))
}

#[test]
fn builtins_and_operators_listed_in_spec() {
    let list = floats(&[1.0, 2.0, 3.0, 4.0]);
    let cases: Vec<(&str, MetricValue)> = vec![
        ("len(result) == 4", list.clone()),
        ("all(result, # > 0)", list.clone()),
        ("any(result, # > 3)", list.clone()),
        ("none(result, # > 4)", list.clone()),
        ("one(result, # == 2)", list.clone()),
        ("filter(result, # > 2) == [3, 4]", list.clone()),
        ("map(result, # * 2) == [2, 4, 6, 8]", list.clone()),
        ("count(result, # >= 2) == 3", list.clone()),
        ("sum(result) == 10", list.clone()),
        ("max(result) == 4 && min(result) == 1", list.clone()),
        ("mean(result) == 2.5 && median(result) == 2.5", list.clone()),
        ("abs(-result[0]) == 1", list.clone()),
        (
            "ceil(1.2) == 2 && floor(1.8) == 1 && round(1.5) == 2",
            MetricValue::Nil,
        ),
        (
            "int('3') == 3 && float('0.5') == 0.5 && string(1) == '1'",
            MetricValue::Nil,
        ),
        ("2 in result && !(9 in result)", list.clone()),
        ("result matches '^[a-z]+$'", MetricValue::from("abc")),
        (
            "result contains 'b' and result startsWith 'a' and result endsWith 'c'",
            MetricValue::from("abc"),
        ),
        ("now() - duration('1h') < now()", MetricValue::Nil),
        ("(result[0] > 0 ? 'pos' : 'neg') == 'pos'", list.clone()),
        ("not (result[0] > 1) or false", list.clone()),
        ("result.items[2] == 3 && result.ok", web_result()),
        ("result[-1] == 4", list),
    ];
    for (condition, result) in cases {
        assert_eq!(
            eval_condition_at(&result, condition, now()),
            Ok(true),
            "{condition}"
        );
    }
}

#[test]
fn typical_expressions_from_the_docs() {
    let cases: Vec<(&str, MetricValue, bool)> = vec![
        ("result[0] >= 0.95", floats(&[0.99]), true),
        ("result[0] >= 0.95", floats(&[0.5]), false),
        ("len(result) == 0 || result[0] >= 0.95", floats(&[]), true),
        (
            "isNaN(result) || result >= 0.95",
            MetricValue::Float(f64::NAN),
            true,
        ),
        (
            "isNaN(result) || result >= 0.95",
            MetricValue::Float(0.9),
            false,
        ),
        ("result[0] >= 10", floats(&[12.0]), true),
        ("all(result, # < 1000)", floats(&[1.0, 999.0]), true),
        ("all(result, # < 1000)", floats(&[1.0, 1000.0]), false),
        ("result == 'true'", MetricValue::from("true"), true),
        (
            "result.ok && result.successPercent >= 0.90",
            web_result(),
            true,
        ),
        ("asInt(result) >= 2", MetricValue::from("2"), true),
        ("default(result, 0) < 0.05", MetricValue::Nil, true),
        ("default(result, 0) < 0.05", MetricValue::Float(0.5), false),
        ("result.successRate >= 0.95", web_result(), true),
        ("result == \"I am OK\"", MetricValue::from("I am OK"), true),
        ("isNil(result)", MetricValue::Nil, true),
        ("isNil(result)", floats(&[]), false),
    ];
    for (condition, result, expected) in cases {
        assert_eq!(
            eval_condition(&result, condition),
            Ok(expected),
            "{condition} on {result:?}"
        );
    }
}

#[test]
fn errors_in_upstream_wording() {
    let cases: Vec<(&str, MetricValue, &str)> = vec![
        ("1", MetricValue::Bool(true), "expected bool, but got int"),
        (
            "result",
            MetricValue::Float(1.0),
            "expected bool, but got float64",
        ),
        (
            "asInt(result)",
            MetricValue::from("3"),
            "expected bool, but got int64",
        ),
        ("'x'", MetricValue::Nil, "expected bool, but got string"),
        (
            "result[0]",
            MetricValue::List(vec![MetricValue::Nil]),
            "expected bool, but got <nil>",
        ),
        (
            "true || missing",
            MetricValue::Bool(true),
            "unknown name missing",
        ),
        (
            "result == 'x'",
            MetricValue::Float(1.0),
            "invalid operation: == (mismatched types float64 and string)",
        ),
        (
            "undefinedFn(1)",
            MetricValue::Nil,
            "unknown name undefinedFn",
        ),
        (
            "isNaN(result)",
            floats(&[1.0]),
            "cannot use []float64 as argument (type float64) to call isNaN",
        ),
        (
            "isInf(result.ok)",
            web_result(),
            "cannot use bool as argument (type float64) to call isInf",
        ),
        (
            "isNil()",
            MetricValue::Nil,
            "not enough arguments to call isNil",
        ),
        (
            "asFloat(result) > 0",
            MetricValue::Bool(true),
            "asFloat() not supported on bool true",
        ),
        (
            "now() > now()",
            MetricValue::Nil,
            "now() is not available: no evaluation time was given",
        ),
    ];
    for (condition, result, expected) in cases {
        let error = eval_condition(&result, condition)
            .err()
            .map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(expected), "{condition}");
    }
    let syntax = eval_condition(&MetricValue::Nil, "result ==").err();
    assert!(
        matches!(syntax, Some(ExprError::Syntax(ref m)) if m.starts_with("syntax error at 1:")),
        "{syntax:?}"
    );
}

#[test]
fn untyped_map_fields_compare_like_go_interfaces() {
    // A field of decoded JSON is an interface value upstream: comparing it with another type
    // is simply false, not a compile error.
    let result = web_result();
    assert_eq!(eval_condition(&result, "result.ok == 'yes'"), Ok(false));
    assert_eq!(eval_condition(&result, "result.missing == nil"), Ok(true));
}

#[test]
fn verdict_rules() {
    let r = MetricValue::Bool(true);
    let cases = [
        ("", "", Verdict::Successful),
        ("true", "", Verdict::Successful),
        ("false", "", Verdict::Failed),
        ("", "true", Verdict::Failed),
        ("", "false", Verdict::Successful),
        ("true", "false", Verdict::Successful),
        ("false", "true", Verdict::Failed),
        ("true", "true", Verdict::Failed),
        ("false", "false", Verdict::Inconclusive),
    ];
    for (success, failure, expected) in cases {
        assert_eq!(
            evaluate_result(&r, success, failure),
            (expected, None),
            "{success:?}/{failure:?}"
        );
    }
}

#[test]
fn nan_results_per_spec_5_1() {
    let nan = MetricValue::Float(f64::NAN);
    assert_eq!(
        evaluate_result(&nan, "result >= 0.9", "").0,
        Verdict::Failed
    );
    assert_eq!(
        evaluate_result(&nan, "result >= 0.9", "result < 0.9").0,
        Verdict::Inconclusive
    );
    assert_eq!(
        evaluate_result(&nan, "isNaN(result) || result >= 0.9", "").0,
        Verdict::Successful
    );
}

#[test]
fn error_messages_name_the_condition() {
    let (verdict, message) = evaluate_result(&MetricValue::Float(1.0), "result == \"x\"", "");
    assert_eq!(verdict, Verdict::Error);
    assert_eq!(
        message.as_deref(),
        Some(
            r#"could not evaluate successCondition "result == \"x\"": invalid operation: == (mismatched types float64 and string)"#
        )
    );
    let (_, message) = evaluate_result(&MetricValue::Map(BTreeMap::new()), "true", "result.a > 1");
    assert_eq!(
        message.as_deref(),
        Some(
            r#"could not evaluate failureCondition "result.a > 1": metric result is nil or empty: no data returned from the metric provider"#
        )
    );
}

#[test]
fn now_is_the_given_instant() {
    let later = now() + chrono::Duration::minutes(1);
    assert_eq!(
        evaluate_result_at(&MetricValue::Nil, "now() == now()", "", now()).0,
        Verdict::Successful
    );
    assert_eq!(
        eval_condition_at(
            &MetricValue::Nil,
            "now() < date('2024-05-06T07:09:00Z')",
            later
        ),
        Ok(false)
    );
    assert_eq!(
        eval_condition_at(
            &MetricValue::Nil,
            "now() < date('2024-05-06T07:09:00Z')",
            now()
        ),
        Ok(true)
    );
}

#[test]
fn range_query_time_expressions_per_spec_4_9() {
    let cases = [
        ("now()", now()),
        (
            "now() - duration(\"5m\")",
            now() - chrono::Duration::minutes(5),
        ),
        (
            "now() - duration('1h30m') + duration('10s')",
            now() - chrono::Duration::seconds(5390),
        ),
    ];
    for (expression, expected) in cases {
        assert_eq!(eval_time(expression, now()), Ok(expected), "{expression}");
    }
    let errors = [
        ("hello", "unknown name hello"),
        ("1", "expected time.Time, but got int"),
        (
            "duration('5m')",
            "expected time.Time, but got time.Duration",
        ),
        ("isNil(1)", "unknown name isNil"),
    ];
    for (expression, expected) in errors {
        let error = eval_time(expression, now()).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(expected), "{expression}");
    }
    assert_eq!(eval_time("isNaN(1) ? now() : now()", now()), Ok(now()));
}

#[test]
fn compiled_condition_is_reusable() {
    let condition = Condition::compile("result[0] < 0.05 && !isNaN(result[0])");
    let Ok(condition) = condition else {
        panic!("compile failed: {condition:?}");
    };
    assert_eq!(condition.source(), "result[0] < 0.05 && !isNaN(result[0])");
    assert_eq!(condition.eval(&floats(&[0.01]), None), Ok(true));
    assert_eq!(condition.eval(&floats(&[f64::NAN]), None), Ok(false));
    assert_eq!(condition.eval(&floats(&[0.5]), None), Ok(false));
}
