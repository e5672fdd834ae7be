//! Prometheus query results (the `data` object of the HTTP API) turned into the condition
//! `result`, the measurement value text and the verdict, as Argo's prometheus provider does.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use thiserror::Error;

use crate::expr::{
    MetricValue, Verdict, evaluate_result_at, format_sample_list, format_sample_value,
    parse_go_float,
};

/// Why a query result cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrometheusResultError {
    /// A `string` result, or no result at all (upstream's wording).
    #[error("Prometheus metric type not supported")]
    UnsupportedType,
    /// The JSON does not have the shape the Prometheus API documents.
    #[error("invalid Prometheus response: {0}")]
    Malformed(String),
}

/// A usable query result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// What a condition sees as `result`: a float for a scalar, a `[]float64` for a vector
    /// (one entry per sample, server order) or a matrix (flattened stream by stream).
    pub result: MetricValue,
    /// The measurement value text: `10`, `NaN`, `+Inf`, `[10,11]`, `[]`.
    pub value: String,
}

/// Converts the `data` object of a `/api/v1/query` or `/api/v1/query_range` response
/// (`{"resultType": ..., "result": ...}`); `null` means the query returned nothing usable.
pub fn convert(data: &Json) -> Result<QueryResult, PrometheusResultError> {
    if data.is_null() {
        return Err(PrometheusResultError::UnsupportedType);
    }
    let result = data.get("result");
    match data.get("resultType").and_then(Json::as_str) {
        Some("scalar") => {
            let value = sample_value(result, "scalar")?;
            Ok(QueryResult {
                result: MetricValue::Float(value),
                value: format_sample_value(value),
            })
        }
        Some("vector") => {
            let mut values = Vec::new();
            for sample in array(result, "vector")? {
                // A native-histogram sample has no float value; upstream appends its zero
                // `Value` field, and so do we.
                if sample.get("value").is_none() && sample.get("histogram").is_some() {
                    values.push(0.0);
                } else {
                    values.push(sample_value(sample.get("value"), "vector sample")?);
                }
            }
            Ok(list(values))
        }
        Some("matrix") => {
            let mut values = Vec::new();
            for stream in array(result, "matrix")? {
                // Upstream reads only `values`; native-histogram points are skipped.
                if let Some(points) = stream.get("values") {
                    for point in array(Some(points), "matrix values")? {
                        values.push(sample_value(Some(point), "matrix point")?);
                    }
                }
            }
            Ok(list(values))
        }
        Some(_) => Err(PrometheusResultError::UnsupportedType),
        None => Err(PrometheusResultError::Malformed(
            "missing resultType".to_string(),
        )),
    }
}

fn list(values: Vec<f64>) -> QueryResult {
    QueryResult {
        value: format_sample_list(&values),
        result: MetricValue::FloatList(values),
    }
}

fn array<'a>(value: Option<&'a Json>, what: &str) -> Result<&'a Vec<Json>, PrometheusResultError> {
    value
        .and_then(Json::as_array)
        .ok_or_else(|| PrometheusResultError::Malformed(format!("{what} result is not a list")))
}

/// A `[<unix time>, "<value>"]` pair's value; the value is a string so that NaN and ±Inf can
/// be written (`"NaN"`, `"+Inf"`, `"-Inf"`).
fn sample_value(pair: Option<&Json>, what: &str) -> Result<f64, PrometheusResultError> {
    let malformed =
        || PrometheusResultError::Malformed(format!("{what} is not a [timestamp, \"value\"] pair"));
    let pair = pair.and_then(Json::as_array).ok_or_else(malformed)?;
    let [time, value] = pair.as_slice() else {
        return Err(malformed());
    };
    if !time.is_number() {
        return Err(malformed());
    }
    let text = value.as_str().ok_or_else(malformed)?;
    parse_go_float(text).ok_or_else(|| {
        PrometheusResultError::Malformed(format!("{what} value {text:?} is not a number"))
    })
}

/// What a measurement records.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementOutcome {
    /// The measurement value text; empty when the verdict is `Error` (upstream stores no value
    /// for a measurement it marks as an error).
    pub value: String,
    /// The verdict of the success and failure conditions on this value.
    pub verdict: Verdict,
    /// The error message when the verdict is `Error`.
    pub message: Option<String>,
}

/// Converts `data` and evaluates the metric's conditions on it (`now` is what `now()` gives).
pub fn evaluate(
    data: &Json,
    success_condition: &str,
    failure_condition: &str,
    now: DateTime<Utc>,
) -> MeasurementOutcome {
    let converted = match convert(data) {
        Ok(converted) => converted,
        Err(error) => {
            return MeasurementOutcome {
                value: String::new(),
                verdict: Verdict::Error,
                message: Some(error.to_string()),
            };
        }
    };
    match evaluate_result_at(&converted.result, success_condition, failure_condition, now) {
        (Verdict::Error, message) => MeasurementOutcome {
            value: String::new(),
            verdict: Verdict::Error,
            message,
        },
        (verdict, _) => MeasurementOutcome {
            value: converted.value,
            verdict,
            message: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn scalar_vector_matrix() {
        let scalar = json!({"resultType": "scalar", "result": [1.5, "0.5"]});
        assert_eq!(
            convert(&scalar),
            Ok(QueryResult {
                result: MetricValue::Float(0.5),
                value: "0.5".into()
            })
        );
        let vector = json!({"resultType": "vector", "result": [
            {"metric": {"job": "a"}, "value": [1.0, "1"]},
            {"metric": {}, "value": [1.0, "-Inf"]},
        ]});
        let converted = convert(&vector).ok();
        assert_eq!(
            converted.as_ref().map(|c| c.value.as_str()),
            Some("[1,-Inf]")
        );
        assert_eq!(
            converted.map(|c| c.result),
            Some(MetricValue::FloatList(vec![1.0, f64::NEG_INFINITY]))
        );
        let matrix = json!({"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1, "1"], [2, "2"]]},
            {"metric": {}, "values": [[1, "3"]]},
        ]});
        assert_eq!(convert(&matrix).map(|c| c.value), Ok("[1,2,3]".to_string()));
        let empty = json!({"resultType": "vector", "result": []});
        assert_eq!(convert(&empty).map(|c| c.value), Ok("[]".to_string()));
    }

    #[test]
    fn histogram_sample_counts_as_zero_like_upstream() {
        let vector = json!({"resultType": "vector", "result": [
            {"metric": {}, "histogram": [1.0, {"count": "2", "sum": "3"}]},
        ]});
        assert_eq!(convert(&vector).map(|c| c.value), Ok("[0]".to_string()));
    }

    #[test]
    fn unsupported_and_malformed() {
        let string = json!({"resultType": "string", "result": [1.0, "x"]});
        assert_eq!(
            convert(&string),
            Err(PrometheusResultError::UnsupportedType)
        );
        assert_eq!(
            convert(&Json::Null),
            Err(PrometheusResultError::UnsupportedType)
        );
        let bad = json!({"resultType": "scalar", "result": [1.0, "abc"]});
        assert_eq!(
            convert(&bad).map_err(|e| e.to_string()),
            Err("invalid Prometheus response: scalar value \"abc\" is not a number".to_string())
        );
        let bad = json!({"resultType": "vector", "result": {}});
        assert!(matches!(
            convert(&bad),
            Err(PrometheusResultError::Malformed(_))
        ));
        let bad = json!({"result": []});
        assert!(matches!(
            convert(&bad),
            Err(PrometheusResultError::Malformed(_))
        ));
    }

    #[test]
    fn empty_vector_with_index_condition_is_an_error_without_value() {
        let empty = json!({"resultType": "vector", "result": []});
        let outcome = evaluate(&empty, "result[0] >= 0.95", "", now());
        assert_eq!(
            outcome,
            MeasurementOutcome {
                value: String::new(),
                verdict: Verdict::Error,
                message: Some(
                    "could not evaluate successCondition \"result[0] >= 0.95\": metric result is nil or empty: no data returned from the metric provider".into()
                ),
            }
        );
        let outcome = evaluate(&empty, "len(result) == 0 || result[0] >= 0.95", "", now());
        assert_eq!(
            (outcome.verdict, outcome.value.as_str()),
            (Verdict::Successful, "[]")
        );
    }
}
