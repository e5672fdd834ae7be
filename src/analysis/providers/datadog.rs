//! The `datadog` provider: a v1 `GET /api/v1/query` (the last point of the first series is
//! the result) or a v2 `POST /api/v2/query/scalar` (`queries` combined by `formula`, reduced by
//! `aggregator`; a float, or a `[]float64` for a `by {tag}` query), with the API and
//! application keys from the `DD_*` variables or a Secret (`datadog`, or `secretRef`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value as Json, json};

use crate::api::providers::DatadogMetric;
use crate::api::{Measurement, Metric};
use crate::expr::MetricValue;

use super::env::DatadogEnv;
use super::go_text::{Values, encode, format_float_f};
use super::http::{client, error_text};
use super::web::go_json;
use super::{MeasureContext, Provider, ProviderError, SecretReader, conclude, errored, started};

/// The Secret read when `secretRef` names none.
pub const DEFAULT_SECRET: &str = "datadog";
/// The API root when the credentials give no `address`.
pub const DEFAULT_ADDRESS: &str = "https://api.datadoghq.com";
/// Measurement metadata key with the `[{name, value}]` pairs of a grouped v2 query.
pub const GROUPS: &str = "groups";
/// Set to `true` when [`GROUPS`] was cut to [`MAX_GROUPS_IN_METADATA`] entries.
pub const GROUPS_TRUNCATED: &str = "groups_truncated";
/// How many groups the metadata keeps (the lowest and highest halves by value): the status of
/// a run must stay small whatever the tag's cardinality.
pub const MAX_GROUPS_IN_METADATA: usize = 100;

/// Address and keys found for a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credentials {
    address: String,
    api_key: String,
    app_key: String,
}

/// One configured Datadog metric.
#[derive(Debug, Clone)]
pub struct DatadogProvider {
    spec: DatadogMetric,
    secrets: SecretReader,
    env: Option<DatadogEnv>,
}

impl DatadogProvider {
    /// Keeps the spec; credentials are looked up and the fields checked at each measurement.
    pub fn new(
        spec: &DatadogMetric,
        secrets: SecretReader,
        env: Option<DatadogEnv>,
    ) -> Result<DatadogProvider, ProviderError> {
        Ok(DatadogProvider {
            spec: spec.clone(),
            secrets,
            env,
        })
    }

    /// Upstream's finders: a named Secret (in the run's namespace when `namespaced`), else the
    /// `DD_*` variables, then the `datadog` Secret of the controller's namespace.
    async fn credentials(&self, run_namespace: &str) -> Result<Credentials, String> {
        let reference = self.spec.secret_ref.clone().unwrap_or_default();
        let name = reference.name.unwrap_or_default();
        let namespaced = reference.namespaced.unwrap_or(false);
        if namespaced && name.is_empty() {
            return Err("secret name is required for namespaced credentials".to_string());
        }
        let found = if !name.is_empty() {
            let namespace = if namespaced {
                run_namespace
            } else {
                self.secrets.controller_namespace.as_str()
            };
            self.read_secret(namespace, &name).await
        } else {
            let from_env = self
                .env
                .clone()
                .filter(|e| !e.api_key.is_empty() && !e.app_key.is_empty())
                .map(|e| Credentials {
                    address: e.address,
                    api_key: e.api_key,
                    app_key: e.app_key,
                });
            match from_env {
                Some(found) => Some(found),
                None => {
                    self.read_secret(&self.secrets.controller_namespace, DEFAULT_SECRET)
                        .await
                }
            }
        };
        found.ok_or_else(|| "failed to find the credentials for datadog metrics provider".into())
    }

    async fn read_secret(&self, namespace: &str, name: &str) -> Option<Credentials> {
        let data = self.secrets.read(namespace, name).await.ok()?;
        let key = |k: &str| data.get(k).cloned().unwrap_or_default();
        let found = Credentials {
            address: key("address"),
            api_key: key("api-key"),
            app_key: key("app-key"),
        };
        (!found.api_key.is_empty() && !found.app_key.is_empty()).then_some(found)
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let measurement = started(ctx);
        let credentials = match self.credentials(&ctx.namespace).await {
            Ok(c) => c,
            Err(message) => return errored(measurement, message),
        };
        if let Err(message) = validate(&self.spec) {
            return errored(measurement, message);
        }
        let v1 = self.spec.api_version() == "v1";
        if v1 {
            tracing::warn!(
                "Datadog will soon deprecate their API v1. Please consider switching to v2 soon."
            );
        }
        let interval = match parse_duration(self.spec.interval()) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => return errored(measurement, e),
        };
        let timeout = match parse_duration(self.spec.request_timeout()) {
            Ok(d) => d,
            Err(e) => return errored(measurement, e),
        };
        let http = match client(timeout, false) {
            Ok(c) => c,
            Err(e) => return errored(measurement, e.to_string()),
        };
        let address = if credentials.address.is_empty() {
            DEFAULT_ADDRESS
        } else {
            credentials.address.as_str()
        };
        let now = ctx.now.as_second();
        let request = if v1 {
            let url = format!("{address}/api/v1/query");
            let query = v1_query(self.spec.query.as_deref().unwrap_or(""), now, interval);
            http.get(format!("{url}?{query}"))
        } else {
            let url = format!("{address}/api/v2/query/scalar");
            http.post(url)
                .body(v2_body(&self.spec, now, interval).to_string())
        };
        let request = request
            .header("Content-Type", "application/json")
            .header("DD-API-KEY", &credentials.api_key)
            .header("DD-APPLICATION-KEY", &credentials.app_key);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return errored(measurement, error_text(&e)),
        };
        let status = response.status().as_u16();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return errored(
                    measurement,
                    format!("Received no bytes in response: {}", error_text(&e)),
                );
            }
        };
        if status == 401 || status == 403 {
            return errored(
                measurement,
                format!(
                    "received authentication error response code: {status} {}",
                    String::from_utf8_lossy(&body)
                ),
            );
        }
        if status != 200 {
            return errored(
                measurement,
                format!(
                    "received non 2xx response code: {status} {}",
                    String::from_utf8_lossy(&body)
                ),
            );
        }
        let parsed = if v1 {
            parse_v1(&body).map(|(r, v)| (r, v, BTreeMap::new()))
        } else {
            parse_v2(&body)
        };
        match parsed {
            Err(message) => errored(measurement, message),
            Ok((result, value, metadata)) => {
                let mut measurement = conclude(measurement, metric, &result, value, ctx);
                if measurement.phase != crate::api::AnalysisPhase::Error {
                    measurement.metadata.extend(metadata);
                }
                measurement
            }
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse_go_duration(text)
        .map_err(|e| crate::api::duration::GoDurationError(e).to_string())
}

/// Upstream's checks of the fields, with its messages.
pub fn validate(dd: &DatadogMetric) -> Result<(), String> {
    let query = dd.query.as_deref().unwrap_or("");
    let queries = dd.queries.as_ref().map_or(0, |q| q.len());
    let formula = dd.formula.as_deref().unwrap_or("");
    let v1 = dd.api_version() == "v1";
    if query.is_empty() && queries == 0 {
        return Err(
            "Must have either a query or queries. Please review the Analysis Template.".into(),
        );
    }
    if !query.is_empty() && queries > 0 {
        return Err(
            "Cannot have both a query and queries. Please review the Analysis Template.".into(),
        );
    }
    if v1 && query.is_empty() {
        return Err("Query is empty. API Version v1 only supports using the query parameter in your Analysis Template.".into());
    }
    if !formula.is_empty() && queries == 0 {
        return Err(
            "Formula are only valid when queries are set. Please review the Analysis Template."
                .into(),
        );
    }
    if formula.is_empty() && queries > 1 {
        return Err("When multiple queries are provided you must include a formula.".into());
    }
    if v1 && dd.aggregator.as_deref().is_some_and(|a| !a.is_empty()) {
        return Err(
            "Aggregator is not supported in v1. Please review the Analysis Template.".into(),
        );
    }
    if let Some(timeout) = dd.request_timeout.as_ref().filter(|t| !t.is_empty()) {
        match timeout.to_go_duration() {
            Err(e) => {
                return Err(format!(
                    "Could not parse the request timeout: {}. Please review the Analysis Template.",
                    crate::api::duration::GoDurationError(e)
                ));
            }
            Ok(d) if d.is_zero() => {
                return Err("Request timeout must be a positive duration (e.g. 30s). Please review the Analysis Template.".into());
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The v1 query string: `from`, `query`, `to` (Go's sorted encoding), in Unix seconds.
pub fn v1_query(query: &str, now: i64, interval: i64) -> String {
    let mut values = Values::new();
    values.insert("query".into(), vec![query.to_string()]);
    values.insert("from".into(), vec![(now - interval).to_string()]);
    values.insert("to".into(), vec![now.to_string()]);
    encode(&values)
}

/// The v2 `scalar_request` body, times in milliseconds; a lone `query` is named `query`.
pub fn v2_body(dd: &DatadogMetric, now: i64, interval: i64) -> Json {
    let queries: BTreeMap<String, String> = match dd.query.as_deref().filter(|q| !q.is_empty()) {
        Some(q) => BTreeMap::from([("query".to_string(), q.to_string())]),
        None => dd.queries.clone().unwrap_or_default(),
    };
    let aggregator = dd.aggregator();
    let queries: Vec<Json> = queries
        .iter()
        .map(|(name, query)| {
            json!({"aggregator": aggregator, "data_source": "metrics", "name": name, "query": query})
        })
        .collect();
    let formulas: Vec<Json> = match dd.formula.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => vec![json!({"formula": f})],
        None => Vec::new(),
    };
    json!({
        "data": {
            "attributes": {
                "from": (now - interval) * 1000,
                "to": now * 1000,
                "queries": queries,
                "formulas": formulas,
            },
            "type": "scalar_request",
        }
    })
}

fn parse_json(body: &[u8]) -> Result<Json, String> {
    serde_json::from_slice(body).map_err(|e| format!("Could not parse JSON body: {e}"))
}

/// v1: the value of the last point of the first series, or nil when there is none (the value
/// text is then the series as JSON).
pub fn parse_v1(body: &[u8]) -> Result<(MetricValue, String), String> {
    let doc = parse_json(body)?;
    let series = doc.get("series").cloned().unwrap_or(Json::Null);
    let points = series
        .get(0)
        .and_then(|s| s.get("pointlist"))
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(last) = points.last() else {
        // Go marshals the decoded series back: each keeps only its `pointlist`.
        let rendered = match series.as_array() {
            None => "null".to_string(),
            Some(list) => {
                let items: Vec<Json> = list
                    .iter()
                    .map(
                        |s| json!({"pointlist": s.get("pointlist").cloned().unwrap_or(Json::Null)}),
                    )
                    .collect();
                go_json(&Json::Array(items))
            }
        };
        return Ok((MetricValue::Nil, rendered));
    };
    let pair = last.as_array().cloned().unwrap_or_default();
    if pair.len() != 2 {
        return Err("Datapoint does not have 2 values".into());
    }
    let value = pair[1]
        .as_f64()
        .ok_or_else(|| format!("Could not parse JSON body: bad point value {}", pair[1]))?;
    Ok((MetricValue::Float(value), format_float_f(value)))
}

/// v2: the first number column; a grouped query (any `group` column) is a list with the
/// `(name, value)` pairs in the metadata, an ungrouped one the first value; nulls are skipped.
pub fn parse_v2(body: &[u8]) -> Result<(MetricValue, String, BTreeMap<String, String>), String> {
    let doc = parse_json(body)?;
    let data = doc.get("data").cloned().unwrap_or(Json::Null);
    if let Some(errors) = data
        .get("errors")
        .and_then(Json::as_str)
        .filter(|e| !e.is_empty())
    {
        return Err(format!("There were errors in your query: {errors}"));
    }
    let columns = data
        .get("attributes")
        .and_then(|a| a.get("columns"))
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let kind = |c: &Json| {
        c.get("type")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string()
    };
    let number = columns
        .iter()
        .find(|c| matches!(kind(c).as_str(), "" | "number"));
    let groups: Vec<&Json> = columns.iter().filter(|c| kind(c) == "group").collect();
    let grouped = !groups.is_empty();
    let mut values = Vec::new();
    let mut pairs: Vec<(String, f64)> = Vec::new();
    if let Some(column) = number {
        let name = column.get("name").and_then(Json::as_str).unwrap_or("");
        let raw = column
            .get("values")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, v) in raw.iter().enumerate() {
            if v.is_null() {
                continue;
            }
            let f = v.as_f64().ok_or_else(|| {
                format!(
                    "could not parse numeric value {:?} in column {name:?}",
                    v.to_string()
                )
            })?;
            values.push(f);
            if grouped {
                let label = group_name_at(&groups, i)
                    .ok_or_else(|| format!("could not parse group label at index {i}"))?;
                pairs.push((label, f));
            }
        }
    }
    if values.is_empty() {
        return Ok((MetricValue::Nil, "[]".into(), BTreeMap::new()));
    }
    if !grouped {
        return Ok((
            MetricValue::Float(values[0]),
            format_float_f(values[0]),
            BTreeMap::new(),
        ));
    }
    let text = format!(
        "[{}]",
        values
            .iter()
            .map(|v| format_float_f(*v))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (groups_json, truncated) = groups_metadata(&pairs);
    let mut metadata = BTreeMap::from([(GROUPS.to_string(), groups_json)]);
    if truncated {
        metadata.insert(GROUPS_TRUNCATED.to_string(), "true".to_string());
    }
    Ok((MetricValue::FloatList(values), text, metadata))
}

/// The label of row `idx`: every group column's tags for that row, joined by `,`.
fn group_name_at(columns: &[&Json], idx: usize) -> Option<String> {
    let mut parts = Vec::new();
    for column in columns {
        let tags = column.get("values")?.as_array()?.get(idx)?.as_array()?;
        if tags.is_empty() {
            return None;
        }
        for tag in tags {
            parts.push(tag.as_str()?.to_string());
        }
    }
    Some(parts.join(","))
}

/// The pairs as JSON, cut to the lowest and highest halves by value when there are too many.
fn groups_metadata(pairs: &[(String, f64)]) -> (String, bool) {
    let mut kept: Vec<(String, f64)> = pairs.to_vec();
    let truncated = kept.len() > MAX_GROUPS_IN_METADATA;
    if truncated {
        kept.sort_by(|a, b| a.1.total_cmp(&b.1));
        let low = MAX_GROUPS_IN_METADATA / 2;
        let high = MAX_GROUPS_IN_METADATA - low;
        let tail = kept.split_off(kept.len() - high);
        kept.truncate(low);
        kept.extend(tail);
    }
    // Field order as Go's struct: name, then value (not sorted as a map would be).
    let items: Vec<String> = kept
        .iter()
        .map(|(name, value)| {
            format!(
                "{{\"name\":{},\"value\":{}}}",
                go_json(&Json::String(name.clone())),
                go_json(&json!(value))
            )
        })
        .collect();
    (format!("[{}]", items.join(",")), truncated)
}

impl Provider for DatadogProvider {
    fn kind(&self) -> &'static str {
        "Datadog"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.measure(ctx, metric))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_query_is_sorted_and_escaped() {
        assert_eq!(
            v1_query("avg:kubernetes.cpu{app:x}", 1000, 300),
            "from=700&query=avg%3Akubernetes.cpu%7Bapp%3Ax%7D&to=1000"
        );
    }

    #[test]
    fn validation_messages() {
        let mut dd = DatadogMetric::default();
        assert!(validate(&dd).unwrap_err().starts_with("Must have either"));
        dd.query = Some("q".into());
        dd.aggregator = Some("sum".into());
        assert_eq!(
            validate(&dd).unwrap_err(),
            "Aggregator is not supported in v1. Please review the Analysis Template."
        );
        dd.api_version = Some("v2".into());
        assert!(validate(&dd).is_ok());
        dd.query = None;
        dd.queries = Some(BTreeMap::from([
            ("a".into(), "x".into()),
            ("b".into(), "y".into()),
        ]));
        assert_eq!(
            validate(&dd).unwrap_err(),
            "When multiple queries are provided you must include a formula."
        );
    }

    #[test]
    fn truncated_groups_keep_both_ends() {
        let pairs: Vec<(String, f64)> = (0..150).map(|i| (format!("h{i}"), i as f64)).collect();
        let (text, truncated) = groups_metadata(&pairs);
        assert!(truncated);
        let parsed: Vec<Json> = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.len(), 100);
        assert_eq!(parsed[0]["name"], "h0");
        assert_eq!(parsed[49]["name"], "h49");
        assert_eq!(parsed[50]["name"], "h100");
        assert_eq!(parsed[99]["name"], "h149");
    }
}
