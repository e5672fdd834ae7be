//! `MetricValue`: the value a metric provider hands to the conditions, and how it is exposed to expr.

use std::collections::BTreeMap;

use expr::Value;

/// What a metric provider measured, bound to `result` in a condition.
///
/// The variants follow the Go types Argo Rollouts' providers produce, because expr-lang treats
/// them differently (`1` vs `1.0` vs `"1"`, a typed `[]float64` vs an untyped `[]interface{}`).
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// No value (Go `nil`, a nil pointer or a nil slice).
    Nil,
    /// A boolean.
    Bool(bool),
    /// A Go `int`/`int64`.
    Int(i64),
    /// A Go `float64`, NaN and ±Inf included.
    Float(f64),
    /// A string.
    String(String),
    /// A Go `[]float64` (Prometheus vectors and matrices).
    FloatList(Vec<f64>),
    /// A Go `[]interface{}` (decoded JSON arrays, `[]string`, ...).
    List(Vec<MetricValue>),
    /// A Go `map[string]interface{}` (decoded JSON objects).
    Map(BTreeMap<String, MetricValue>),
}

impl MetricValue {
    /// Whether a failed evaluation is reported as "metric result is nil or empty" (upstream
    /// `isNilOrEmpty`): nil, or a list or map with no entries. An empty string is a value.
    pub fn is_nil_or_empty(&self) -> bool {
        match self {
            MetricValue::Nil => true,
            MetricValue::FloatList(values) => values.is_empty(),
            MetricValue::List(values) => values.is_empty(),
            MetricValue::Map(entries) => entries.is_empty(),
            MetricValue::Bool(_)
            | MetricValue::Int(_)
            | MetricValue::Float(_)
            | MetricValue::String(_) => false,
        }
    }

    /// The Go type name (`%T`) of this value, as upstream error messages print it.
    pub fn go_type_name(&self) -> &'static str {
        match self {
            MetricValue::Nil => "<nil>",
            MetricValue::Bool(_) => "bool",
            MetricValue::Int(_) => "int",
            MetricValue::Float(_) => "float64",
            MetricValue::String(_) => "string",
            MetricValue::FloatList(_) => "[]float64",
            MetricValue::List(_) => "[]interface {}",
            MetricValue::Map(_) => "map[string]interface {}",
        }
    }

    /// The expr-lang value bound to `result`.
    pub(crate) fn to_expr_value(&self) -> Value {
        match self {
            MetricValue::Nil => Value::Nil,
            MetricValue::Bool(b) => Value::Bool(*b),
            MetricValue::Int(n) => Value::Integer(*n),
            MetricValue::Float(f) => Value::Float(*f),
            MetricValue::String(s) => Value::String(s.clone()),
            MetricValue::FloatList(values) => {
                Value::Array(values.iter().map(|f| Value::Float(*f)).collect())
            }
            MetricValue::List(values) => {
                Value::Array(values.iter().map(MetricValue::to_expr_value).collect())
            }
            MetricValue::Map(entries) => entries
                .iter()
                .map(|(key, value)| (key.clone(), value.to_expr_value()))
                .collect(),
        }
    }
}

/// Decoded JSON becomes what Go's `json.Unmarshal` into `interface{}` gives: every number is a
/// `float64`, arrays are `[]interface{}`, objects are `map[string]interface{}`.
impl From<serde_json::Value> for MetricValue {
    fn from(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => MetricValue::Nil,
            serde_json::Value::Bool(b) => MetricValue::Bool(b),
            // `as_f64` is `Some` for every JSON number serde_json produces (i64, u64 and f64).
            serde_json::Value::Number(n) => MetricValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => MetricValue::String(s),
            serde_json::Value::Array(values) => {
                MetricValue::List(values.into_iter().map(MetricValue::from).collect())
            }
            serde_json::Value::Object(entries) => MetricValue::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, MetricValue::from(value)))
                    .collect(),
            ),
        }
    }
}

impl From<bool> for MetricValue {
    fn from(value: bool) -> Self {
        MetricValue::Bool(value)
    }
}

impl From<i64> for MetricValue {
    fn from(value: i64) -> Self {
        MetricValue::Int(value)
    }
}

impl From<f64> for MetricValue {
    fn from(value: f64) -> Self {
        MetricValue::Float(value)
    }
}

impl From<&str> for MetricValue {
    fn from(value: &str) -> Self {
        MetricValue::String(value.to_string())
    }
}

impl From<String> for MetricValue {
    fn from(value: String) -> Self {
        MetricValue::String(value)
    }
}

impl From<Vec<f64>> for MetricValue {
    fn from(values: Vec<f64>) -> Self {
        MetricValue::FloatList(values)
    }
}

/// The Go type name (`%T`) of an expr value, for "expected bool, but got ..." messages when
/// the static type of the expression is not known.
pub(crate) fn expr_value_type_name(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) => "int",
        Value::Bool(_) => "bool",
        Value::Float(_) => "float64",
        Value::Nil => "<nil>",
        Value::String(_) => "string",
        Value::DateTime(_) => "time.Time",
        Value::Duration(_) => "time.Duration",
        Value::Timezone(_) => "*time.Location",
        Value::Month(_) => "time.Month",
        Value::Weekday(_) => "time.Weekday",
        Value::Array(_) => "[]interface {}",
        Value::Bytes(_) => "[]uint8",
        Value::Map(_) | Value::KeyedMap(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_become_floats_like_go_unmarshal() {
        let value = MetricValue::from(serde_json::json!({"a": 1, "b": [2, "x"], "c": null}));
        let expected = MetricValue::Map(BTreeMap::from([
            ("a".to_string(), MetricValue::Float(1.0)),
            (
                "b".to_string(),
                MetricValue::List(vec![MetricValue::Float(2.0), MetricValue::from("x")]),
            ),
            ("c".to_string(), MetricValue::Nil),
        ]));
        assert_eq!(value, expected);
    }

    #[test]
    fn nil_or_empty_table() {
        let cases = [
            (MetricValue::Nil, true),
            (MetricValue::FloatList(vec![]), true),
            (MetricValue::List(vec![]), true),
            (MetricValue::Map(BTreeMap::new()), true),
            (MetricValue::FloatList(vec![1.0]), false),
            (MetricValue::Int(42), false),
            (MetricValue::from(""), false),
            (MetricValue::Bool(false), false),
        ];
        for (value, expected) in cases {
            assert_eq!(value.is_nil_or_empty(), expected, "{value:?}");
        }
    }

    #[test]
    fn go_type_names() {
        assert_eq!(MetricValue::Int(1).go_type_name(), "int");
        assert_eq!(MetricValue::FloatList(vec![]).go_type_name(), "[]float64");
        assert_eq!(MetricValue::Nil.go_type_name(), "<nil>");
    }
}
