//! The `cloudWatch` provider: one `GetMetricData` call (AWS JSON 1.0 protocol) over
//! `interval` back from the measurement time, signed with SigV4 by AWS's `aws-sigv4` crate
//! with the credentials and region of the environment. The `MetricDataResults` are the result:
//! a list of maps with the API's field names (`Id`, `Label`, `StatusCode`, `Timestamps`,
//! `Values`, `Messages`), so `result[0].Values` reads as upstream.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use futures::future::BoxFuture;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value as Json, json};

use crate::api::providers::{CloudWatchMetric, CloudWatchMetricDataQuery};
use crate::api::{AnalysisPhase, Measurement, Metric};
use crate::expr::{MetricValue, format_go_float};

use super::env::AwsEnv;
use super::http::{client, error_text};
use super::{MeasureContext, Provider, ProviderError, conclude, errored, started};

/// The `X-Amz-Target` of the call.
pub const TARGET: &str = "GraniteServiceVersion20100801.GetMetricData";
/// The content type of the AWS JSON 1.0 protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// The SigV4 service name.
pub const SIGNING_NAME: &str = "monitoring";
/// Measurement metadata key with the messages CloudWatch returned.
pub const MESSAGES: &str = "messages";
const TIMEOUT: Duration = Duration::from_secs(30);
const OPERATION: &str = "operation error CloudWatch: GetMetricData";

/// One configured CloudWatch metric.
#[derive(Debug, Clone)]
pub struct CloudWatchProvider {
    spec: CloudWatchMetric,
    aws: AwsEnv,
    client: reqwest::Client,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref()
}

/// `period` as Go's `IntOrString.IntValue()`: a number, or a string's number (0 if none).
fn period(p: &crate::api::int_or_string::IntOrStr) -> i64 {
    match serde_json::to_value(p).unwrap_or(Json::Null) {
        Json::Number(n) => n.as_i64().unwrap_or(0),
        Json::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// One `MetricDataQuery` as the API's JSON (absent fields left out, as the SDK does).
pub fn query_json(q: &CloudWatchMetricDataQuery) -> Json {
    let mut out = Map::new();
    out.insert("Id".into(), json!(q.id.clone().unwrap_or_default()));
    if let Some(e) = non_empty(&q.expression) {
        out.insert("Expression".into(), json!(e));
    }
    if let Some(l) = non_empty(&q.label) {
        out.insert("Label".into(), json!(l));
    }
    if let Some(stat) = &q.metric_stat {
        let metric = stat.metric.clone().unwrap_or_default();
        let mut m = Map::new();
        if let Some(dimensions) = &metric.dimensions {
            let list: Vec<Json> = dimensions
                .iter()
                .map(|d| {
                    json!({"Name": d.name.clone().unwrap_or_default(), "Value": d.value.clone().unwrap_or_default()})
                })
                .collect();
            m.insert("Dimensions".into(), Json::Array(list));
        }
        m.insert(
            "MetricName".into(),
            json!(metric.metric_name.clone().unwrap_or_default()),
        );
        if let Some(ns) = non_empty(&metric.namespace) {
            m.insert("Namespace".into(), json!(ns));
        }
        let mut s = Map::new();
        s.insert("Metric".into(), Json::Object(m));
        s.insert(
            "Period".into(),
            json!(stat.period.as_ref().map(period).unwrap_or(0)),
        );
        s.insert("Stat".into(), json!(stat.stat.clone().unwrap_or_default()));
        if let Some(unit) = stat.unit.as_deref().filter(|u| !u.is_empty()) {
            s.insert("Unit".into(), json!(unit));
        }
        out.insert("MetricStat".into(), Json::Object(s));
    }
    if let Some(p) = &q.period {
        out.insert("Period".into(), json!(period(p)));
    }
    if let Some(r) = q.return_data {
        out.insert("ReturnData".into(), json!(r));
    }
    Json::Object(out)
}

/// Epoch seconds as the JSON protocol writes a timestamp (milliseconds kept when present).
fn epoch(t: Timestamp) -> Json {
    let millis = t.as_millisecond();
    if millis % 1000 == 0 {
        json!(millis / 1000)
    } else {
        json!(millis as f64 / 1000.0)
    }
}

/// The `GetMetricData` request body for a window ending at `end`.
pub fn request_body(spec: &CloudWatchMetric, start: Timestamp, end: Timestamp) -> Json {
    let queries: Vec<Json> = spec.metric_data_queries.iter().map(query_json).collect();
    json!({"EndTime": epoch(end), "MetricDataQueries": queries, "StartTime": epoch(start)})
}

/// A timestamp the API returned (epoch seconds) as RFC 3339 text.
fn timestamp_text(v: &Json) -> MetricValue {
    v.as_f64()
        .and_then(|secs| Timestamp::from_millisecond((secs * 1000.0).round() as i64).ok())
        .map_or(MetricValue::Nil, |t| MetricValue::String(t.to_string()))
}

fn string_or_nil(v: Option<&Json>) -> MetricValue {
    v.and_then(Json::as_str)
        .map_or(MetricValue::Nil, |s| MetricValue::String(s.to_string()))
}

fn messages_value(v: Option<&Json>) -> MetricValue {
    MetricValue::List(
        v.and_then(Json::as_array)
            .map(|list| {
                list.iter()
                    .map(|m| {
                        MetricValue::Map(BTreeMap::from([
                            ("Code".to_string(), string_or_nil(m.get("Code"))),
                            ("Value".to_string(), string_or_nil(m.get("Value"))),
                        ]))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// The condition `result` and the value text (`[[v v] [v]]`, Go's `%v` of the value lists).
pub fn results(doc: &Json) -> (MetricValue, String) {
    let list = doc
        .get("MetricDataResults")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut texts = Vec::new();
    for r in &list {
        let values: Vec<f64> = r
            .get("Values")
            .and_then(Json::as_array)
            .map(|v| v.iter().filter_map(Json::as_f64).collect())
            .unwrap_or_default();
        texts.push(format!(
            "[{}]",
            values
                .iter()
                .map(|v| format_go_float(*v))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        let timestamps = r
            .get("Timestamps")
            .and_then(Json::as_array)
            .map(|t| t.iter().map(timestamp_text).collect())
            .unwrap_or_default();
        items.push(MetricValue::Map(BTreeMap::from([
            ("Id".to_string(), string_or_nil(r.get("Id"))),
            ("Label".to_string(), string_or_nil(r.get("Label"))),
            ("Messages".to_string(), messages_value(r.get("Messages"))),
            (
                "StatusCode".to_string(),
                MetricValue::String(
                    r.get("StatusCode")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string(),
                ),
            ),
            ("Timestamps".to_string(), MetricValue::List(timestamps)),
            ("Values".to_string(), MetricValue::FloatList(values)),
        ])));
    }
    (MetricValue::List(items), format!("[{}]", texts.join(" ")))
}

/// The error code of an AWS JSON error answer (`__type` without its namespace, or the
/// query-compatible `X-Amzn-Query-Error` code).
fn error_code(doc: &Json, query_error: Option<&str>) -> String {
    if let Some(code) = query_error
        .and_then(|q| q.split(';').next())
        .filter(|c| !c.is_empty())
    {
        return code.to_string();
    }
    let kind = doc
        .get("__type")
        .or_else(|| doc.get("code"))
        .and_then(Json::as_str)
        .unwrap_or("UnknownError");
    let kind = kind.rsplit('#').next().unwrap_or(kind);
    kind.split(':').next().unwrap_or(kind).to_string()
}

impl CloudWatchProvider {
    /// Keeps the spec and the AWS settings; builds the client.
    pub fn new(spec: &CloudWatchMetric, aws: AwsEnv) -> Result<CloudWatchProvider, ProviderError> {
        Ok(CloudWatchProvider {
            spec: spec.clone(),
            aws,
            client: client(TIMEOUT, false)?,
        })
    }

    /// Where the call goes: the endpoint override, else the region's public endpoint.
    pub fn endpoint(&self) -> Result<String, String> {
        if let Some(e) = &self.aws.endpoint {
            return Ok(e.clone());
        }
        if self.aws.region.is_empty() {
            return Err(format!(
                "{OPERATION}, failed to resolve service endpoint, an AWS region is required, but was not found"
            ));
        }
        Ok(format!(
            "https://monitoring.{}.amazonaws.com",
            self.aws.region
        ))
    }

    /// The signed request headers for `body` sent to `url` at `at`.
    pub fn signed_headers(
        &self,
        url: &str,
        body: &[u8],
        at: Timestamp,
    ) -> Result<Vec<(String, String)>, String> {
        if self.aws.access_key_id.is_empty() || self.aws.secret_access_key.is_empty() {
            return Err(format!(
                "{OPERATION}, failed to sign request: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            ));
        }
        let identity = Credentials::new(
            &self.aws.access_key_id,
            &self.aws.secret_access_key,
            self.aws.session_token.clone(),
            None,
            "environment",
        )
        .into();
        let region = if self.aws.region.is_empty() {
            "us-east-1"
        } else {
            self.aws.region.as_str()
        };
        let millis = u64::try_from(at.as_millisecond()).unwrap_or(0);
        let time = UNIX_EPOCH + Duration::from_millis(millis);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SIGNING_NAME)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("{OPERATION}, failed to sign request: {e}"))?
            .into();
        let unsigned = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
        let signable = SignableRequest::new(
            "POST",
            url,
            unsigned.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("{OPERATION}, failed to sign request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("{OPERATION}, failed to sign request: {e}"))?
            .into_parts();
        let mut headers: Vec<(String, String)> = unsigned
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.extend(
            instructions
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Ok(headers)
    }

    async fn call(&self, ctx: &MeasureContext) -> Result<Json, String> {
        let interval = crate::api::duration::parse_go_duration(self.spec.interval())
            .map_err(|e| crate::api::duration::GoDurationError(e).to_string())?;
        let span = SignedDuration::try_from(interval).unwrap_or(SignedDuration::MAX);
        let start = ctx.now.checked_sub(span).unwrap_or(Timestamp::MIN);
        let body = request_body(&self.spec, start, ctx.now).to_string();
        let endpoint = self.endpoint()?;
        let url = if endpoint.ends_with('/') {
            endpoint
        } else {
            format!("{endpoint}/")
        };
        let headers = self.signed_headers(&url, body.as_bytes(), ctx.now)?;
        let mut request = self.client.post(&url).body(body);
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{OPERATION}, {}", error_text(&e)))?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let query_error = response
            .headers()
            .get("x-amzn-query-error")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = response
            .text()
            .await
            .map_err(|e| format!("{OPERATION}, {}", error_text(&e)))?;
        let doc: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if !(200..300).contains(&status) {
            let code = error_code(&doc, query_error.as_deref());
            let message = doc
                .get("message")
                .or_else(|| doc.get("Message"))
                .and_then(Json::as_str)
                .unwrap_or("");
            return Err(format!(
                "{OPERATION}, https response error StatusCode: {status}, RequestID: {request_id}, api error {code}: {message}"
            ));
        }
        if doc.is_null() {
            return Err(format!(
                "{OPERATION}, failed to decode response body: {text:?}"
            ));
        }
        Ok(doc)
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let mut measurement = started(ctx);
        let doc = match self.call(ctx).await {
            Ok(doc) => doc,
            Err(message) => return errored(measurement, message),
        };
        if let Some(messages) = doc
            .get("Messages")
            .and_then(Json::as_array)
            .filter(|m| !m.is_empty())
        {
            let text: Vec<String> = messages
                .iter()
                .map(|m| {
                    let field = |k: &str| m.get(k).and_then(Json::as_str).unwrap_or("").to_string();
                    format!("{{Code:{} Value:{}}}", field("Code"), field("Value"))
                })
                .collect();
            tracing::warn!(messages = %text.join(" "), "CloudWatch returned messages");
            measurement
                .metadata
                .insert(MESSAGES.into(), format!("[{}]", text.join(" ")));
        }
        let (result, value) = results(&doc);
        let measurement = conclude(measurement, metric, &result, value.clone(), ctx);
        if measurement.phase == AnalysisPhase::Error {
            // Upstream records the value before judging it.
            let mut m = measurement;
            m.value = value;
            return m;
        }
        measurement
    }
}

impl Provider for CloudWatchProvider {
    fn kind(&self) -> &'static str {
        "CloudWatch"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.measure(ctx, metric))
    }
}

/// Unix time of `t` for SigV4 (used by tests that re-sign what they receive).
pub fn system_time(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(t.as_millisecond()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::providers::{
        CloudWatchMetricStat, CloudWatchMetricStatMetric, CloudWatchMetricStatMetricDimension,
    };

    #[test]
    fn query_shape() {
        let q = CloudWatchMetricDataQuery {
            id: Some("rate".into()),
            metric_stat: Some(CloudWatchMetricStat {
                metric: Some(CloudWatchMetricStatMetric {
                    dimensions: Some(vec![CloudWatchMetricStatMetricDimension {
                        name: Some("LoadBalancer".into()),
                        value: Some("app/x".into()),
                    }]),
                    metric_name: Some("HTTPCode_Target_5XX_Count".into()),
                    namespace: Some("AWS/ApplicationELB".into()),
                }),
                period: Some(serde_json::from_value(json!("300")).unwrap()),
                stat: Some("Sum".into()),
                unit: Some("Count".into()),
            }),
            return_data: Some(false),
            ..Default::default()
        };
        assert_eq!(
            query_json(&q).to_string(),
            r#"{"Id":"rate","MetricStat":{"Metric":{"Dimensions":[{"Name":"LoadBalancer","Value":"app/x"}],"MetricName":"HTTPCode_Target_5XX_Count","Namespace":"AWS/ApplicationELB"},"Period":300,"Stat":"Sum","Unit":"Count"},"ReturnData":false}"#
        );
    }

    #[test]
    fn value_text() {
        let doc = json!({"MetricDataResults": [{"Id": "a", "Values": [0.5, 1.0], "StatusCode": "Complete"}, {"Id": "b", "Values": []}]});
        let (_, text) = results(&doc);
        assert_eq!(text, "[[0.5 1] []]");
    }
}
