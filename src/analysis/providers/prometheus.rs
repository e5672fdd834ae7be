//! The `prometheus` provider (spec §5.1): an instant query at the measurement time, or a
//! `rangeQuery` whose start and end are condition-language time expressions; the response is
//! mapped by `prometheus_result` and judged by the metric's conditions.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value as Json;
use thiserror::Error;

use crate::api::defaults::DEFAULT_PROMETHEUS_TIMEOUT_SECONDS;
use crate::api::providers::{PrometheusMetric, WebMetricHeader};
use crate::api::{Measurement, Metric};
use crate::expr::eval_time;

use super::http::{Auth, TokenError, client, error_text, with_headers};
use super::prometheus_result::convert;
use super::{MeasureContext, Provider, ProviderError, chrono_time, conclude, errored, started};

/// Why a query has no answer; the texts are the Go client's (`bad_data: <server message>`),
/// which upstream's measurement messages carry.
#[derive(Debug, Error)]
pub enum QueryError {
    /// No OAuth2 token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The request timed out.
    #[error("{method} \"{url}\": context deadline exceeded")]
    Timeout {
        /// `Post` or `Get`, as Go spells them.
        method: &'static str,
        /// The URL asked.
        url: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("{}", error_text(.0))]
    Transport(reqwest::Error),
    /// A 4xx answer without an API error body.
    #[error("client_error: client error: {0}")]
    Client(u16),
    /// A 5xx answer (or 400/422/503 without an error envelope).
    #[error("server_error: server error: {0}")]
    Server(u16),
    /// Any other non-2xx code.
    #[error("bad_response: bad response code {0}")]
    Code(u16),
    /// The body is not the API's JSON envelope.
    #[error("bad_response: {0}")]
    Decode(serde_json::Error),
    /// The API answered `status: error`.
    #[error("{kind}: {message}")]
    Api {
        /// `errorType` (e.g. `bad_data`).
        kind: String,
        /// `error`.
        message: String,
    },
}

/// Where the default server address comes from when a metric has none.
pub const ADDRESS_ENV: &str = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS";
/// Metric-result metadata key holding the query as sent.
pub const RESOLVED_QUERY: &str = "ResolvedPrometheusQuery";
/// Measurement metadata key for the server's warnings.
pub const WARNINGS: &str = "warnings";

/// `rangeQuery` with its expressions still unevaluated (they depend on the measurement time).
#[derive(Debug, Clone)]
struct RangeSpec {
    start: String,
    end: String,
    step: Duration,
}

/// A Prometheus server and one query against it.
#[derive(Debug, Clone)]
pub struct PrometheusProvider {
    base: String,
    query: String,
    client: reqwest::Client,
    headers: Vec<WebMetricHeader>,
    auth: Auth,
    range: Option<RangeSpec>,
}

/// Whether `address` parses as a URL with a scheme and a host (upstream `IsUrl`).
fn is_url(address: &str) -> bool {
    reqwest::Url::parse(address).is_ok_and(|u| !u.scheme().is_empty() && u.host_str().is_some())
}

/// A successful query answer: the `data` object and the server's warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryAnswer {
    /// The `data` member of the answer.
    pub data: Json,
    /// Warnings Prometheus returned with it.
    pub warnings: Vec<String>,
}

impl PrometheusProvider {
    /// Checks the configuration as upstream's constructor does (address, timeout,
    /// authentication) and builds the HTTP client.
    pub fn new(
        spec: &PrometheusMetric,
        default_address: Option<&str>,
    ) -> Result<PrometheusProvider, ProviderError> {
        let address = spec.address.clone().unwrap_or_default();
        let address = if !address.is_empty() {
            address
        } else if let Some(default) = default_address.filter(|a| !a.is_empty()) {
            default.to_string()
        } else {
            return Err(ProviderError::Config(
                "prometheus address is not configured".to_string(),
            ));
        };
        if !is_url(&address) {
            // Upstream's wording, typo included.
            return Err(ProviderError::Config(
                "prometheus address is not is url format".to_string(),
            ));
        }
        let timeout = match spec.timeout_seconds() {
            t if t < 0 => {
                return Err(ProviderError::Config(
                    "prometheus timeout should not be negative".to_string(),
                ));
            }
            // Upstream passes 0 through, which Go's context reads as "already expired"; a
            // zero timeout is taken as the default instead of failing every measurement.
            0 => Duration::from_secs(DEFAULT_PROMETHEUS_TIMEOUT_SECONDS.unsigned_abs()),
            t => Duration::from_secs(t.unsigned_abs()),
        };
        let range = match &spec.range_query {
            None => None,
            Some(r) => {
                let step = r
                    .step
                    .as_ref()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.to_go_duration())
                    .transpose()
                    .map_err(|e| ProviderError::Config(format!("invalid rangeQuery step: {e}")))?
                    .ok_or_else(|| {
                        ProviderError::Config("rangeQuery step is required".to_string())
                    })?;
                Some(RangeSpec {
                    start: r.start.clone().unwrap_or_default(),
                    end: r.end.clone().unwrap_or_default(),
                    step,
                })
            }
        };
        Ok(PrometheusProvider {
            base: address.trim_end_matches('/').to_string(),
            query: spec.query.clone().unwrap_or_default(),
            client: client(timeout, spec.insecure.unwrap_or(false))?,
            headers: spec.headers.clone().unwrap_or_default(),
            auth: Auth::from_spec(spec.authentication.as_ref())?,
            range,
        })
    }

    /// The query this provider sends.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// `GET/POST /api/v1/query` at `at`.
    pub async fn instant(&self, at: Timestamp) -> Result<QueryAnswer, QueryError> {
        let params = vec![("query", self.query.clone()), ("time", seconds(at))];
        self.call("query", params).await
    }

    /// `/api/v1/query_range` from `start` to `end` every `step`.
    pub async fn range(
        &self,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<QueryAnswer, QueryError> {
        let params = vec![
            ("query", self.query.clone()),
            ("start", seconds(start)),
            ("end", seconds(end)),
            ("step", format!("{}", step.as_secs_f64())),
        ];
        self.call("query_range", params).await
    }

    /// Sends a form POST (falling back to GET on 405, as the Go client does) and decodes the
    /// API envelope; errors read like the Go client's (`bad_data: <server message>`).
    async fn call(
        &self,
        endpoint: &str,
        params: Vec<(&str, String)>,
    ) -> Result<QueryAnswer, QueryError> {
        let url = format!("{}/api/v1/{endpoint}", self.base);
        let mut response = self.send(&url, &params, true).await?;
        if response.status().as_u16() == 405 {
            response = self.send(&url, &params, false).await?;
        }
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(QueryError::Transport)?;
        let api_error = matches!(status, 400 | 422 | 503);
        if !(200..300).contains(&status) && !api_error {
            return Err(match status / 100 {
                4 => QueryError::Client(status),
                5 => QueryError::Server(status),
                _ => QueryError::Code(status),
            });
        }
        let envelope: Json = serde_json::from_slice(&body).map_err(QueryError::Decode)?;
        if envelope.get("status").and_then(Json::as_str) == Some("error") {
            let kind = envelope
                .get("errorType")
                .and_then(Json::as_str)
                .unwrap_or("bad_response");
            let message = envelope.get("error").and_then(Json::as_str).unwrap_or("");
            return Err(QueryError::Api {
                kind: kind.to_string(),
                message: message.to_string(),
            });
        }
        if api_error {
            return Err(QueryError::Server(status));
        }
        let warnings = envelope
            .get("warnings")
            .and_then(Json::as_array)
            .map(|w| {
                w.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(QueryAnswer {
            data: envelope.get("data").cloned().unwrap_or(Json::Null),
            warnings,
        })
    }

    async fn send(
        &self,
        url: &str,
        params: &[(&str, String)],
        post: bool,
    ) -> Result<reqwest::Response, QueryError> {
        let request = if post {
            self.client.post(url).form(params)
        } else {
            self.client.get(url).query(params)
        };
        let request = with_headers(request, &self.headers);
        let request = self.auth.apply(&self.client, request).await?;
        request.send().await.map_err(|e| {
            if e.is_timeout() {
                // The Go client's wording, so messages match upstream's.
                QueryError::Timeout {
                    method: if post { "Post" } else { "Get" },
                    url: url.to_string(),
                }
            } else {
                QueryError::Transport(e)
            }
        })
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let measurement = started(ctx);
        let answer = match &self.range {
            None => self.instant(ctx.now).await,
            Some(range) => {
                let now = chrono_time(ctx.now);
                let bounds = eval_time(&range.start, now)
                    .and_then(|start| eval_time(&range.end, now).map(|end| (start, end)));
                match bounds {
                    Ok((start, end)) => {
                        self.range(super::jiff_time(start), super::jiff_time(end), range.step)
                            .await
                    }
                    Err(e) => return errored(measurement, e.to_string()),
                }
            }
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => return errored(measurement, error.to_string()),
        };
        let converted = match convert(&answer.data) {
            Ok(converted) => converted,
            Err(e) => return errored(measurement, e.to_string()),
        };
        let mut measurement =
            conclude(measurement, metric, &converted.result, converted.value, ctx);
        if !answer.warnings.is_empty() {
            let text = answer
                .warnings
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(", ");
            measurement.metadata.insert(WARNINGS.to_string(), text);
        }
        measurement
    }
}

/// Unix seconds with millisecond precision, as Prometheus takes times.
fn seconds(t: Timestamp) -> String {
    let millis = t.as_millisecond();
    format!("{}.{:03}", millis.div_euclid(1000), millis.rem_euclid(1000))
}

impl Provider for PrometheusProvider {
    fn kind(&self) -> &'static str {
        "Prometheus"
    }

    fn metadata(&self, _metric: &Metric) -> BTreeMap<String, String> {
        if self.query.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([(RESOLVED_QUERY.to_string(), self.query.clone())])
        }
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

    fn spec(address: Option<&str>) -> PrometheusMetric {
        PrometheusMetric {
            address: address.map(String::from),
            query: Some("up".into()),
            ..PrometheusMetric::default()
        }
    }

    #[test]
    fn address_rules() {
        let err = PrometheusProvider::new(&spec(None), None).unwrap_err();
        assert_eq!(err.to_string(), "prometheus address is not configured");
        let err = PrometheusProvider::new(&spec(Some("not a url")), None).unwrap_err();
        assert_eq!(err.to_string(), "prometheus address is not is url format");
        let p = PrometheusProvider::new(&spec(None), Some("http://prom:9090/")).unwrap();
        assert_eq!(p.base, "http://prom:9090");
        let p = PrometheusProvider::new(&spec(Some("http://a:1")), Some("http://b:2")).unwrap();
        assert_eq!(p.base, "http://a:1");
    }

    #[test]
    fn negative_timeout_is_rejected() {
        let mut s = spec(Some("http://a:1"));
        s.timeout = Some(-1);
        let err = PrometheusProvider::new(&s, None).unwrap_err();
        assert_eq!(err.to_string(), "prometheus timeout should not be negative");
    }

    #[test]
    fn times_are_unix_seconds_with_millis() {
        let t = Timestamp::new(1_700_000_000, 250_000_000).unwrap();
        assert_eq!(seconds(t), "1700000000.250");
    }
}
