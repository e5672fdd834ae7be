//! The `skywalking` provider: the metric's GraphQL `query` posted to `<address>/graphql` with a
//! `duration` variable (`interval` back from the measurement time, minute steps); the answer's
//! `data` is the result as decoded JSON.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::jiff::{Timestamp, tz::TimeZone};
use serde_json::{Value as Json, json};

use crate::api::providers::SkyWalkingMetric;
use crate::api::{Measurement, Metric};
use crate::expr::MetricValue;

use super::http::{client, error_text};
use super::web::go_json;
use super::{MeasureContext, Provider, ProviderError, conclude, errored, started};

const TIMEOUT: Duration = Duration::from_secs(30);

/// One configured SkyWalking metric.
#[derive(Debug, Clone)]
pub struct SkyWalkingProvider {
    url: String,
    query: String,
    interval: Duration,
    client: reqwest::Client,
}

/// SkyWalking's minute-precision time (`2006-01-02 1504`, UTC).
pub fn minute(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%Y-%m-%d %H%M")
        .to_string()
}

impl SkyWalkingProvider {
    /// Parses `interval` (Go's duration grammar; required, as upstream) and builds the client.
    pub fn new(spec: &SkyWalkingMetric) -> Result<SkyWalkingProvider, ProviderError> {
        let interval = crate::api::duration::parse_go_duration(
            spec.interval.as_ref().map(|d| d.as_str()).unwrap_or(""),
        )
        .map_err(|e| ProviderError::Config(crate::api::duration::GoDurationError(e).to_string()))?;
        Ok(SkyWalkingProvider {
            url: format!("{}/graphql", spec.address.clone().unwrap_or_default()),
            query: spec.query.clone().unwrap_or_default(),
            interval,
            client: client(TIMEOUT, false)?,
        })
    }

    /// The request body at `now`.
    pub fn body(&self, now: Timestamp) -> Json {
        let start = now
            .checked_sub(jiff_span(self.interval))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        json!({
            "query": self.query,
            "variables": {"duration": {"start": minute(start), "end": minute(now), "step": "MINUTE"}},
        })
    }

    async fn fetch(&self, now: Timestamp) -> Result<Json, String> {
        let response = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Accept", "application/json; charset=utf-8")
            .body(self.body(now).to_string())
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| error_text(&e))?;
        // The GraphQL client's wording: a body that is no GraphQL answer is a decode error
        // carrying the status, a GraphQL error the first message.
        let doc: Json = serde_json::from_str(&text).map_err(|e| {
            if (200..300).contains(&status) {
                format!("decoding response: {e}")
            } else {
                format!("graphql: server returned a non-200 status code: {status}")
            }
        })?;
        if let Some(first) = doc
            .get("errors")
            .and_then(Json::as_array)
            .and_then(|e| e.first())
        {
            let message = first.get("message").and_then(Json::as_str).unwrap_or("");
            return Err(format!("graphql: {message}"));
        }
        if !(200..300).contains(&status) {
            return Err(format!(
                "graphql: server returned a non-200 status code: {status}"
            ));
        }
        Ok(doc.get("data").cloned().unwrap_or(Json::Null))
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let measurement = started(ctx);
        let data = match self.fetch(ctx.now).await {
            Ok(data) => data,
            Err(message) => return errored(measurement, message),
        };
        if data.is_null() {
            return errored(measurement, "no results returned from SkyWalking query");
        }
        let value = go_json(&data);
        conclude(measurement, metric, &MetricValue::from(data), value, ctx)
    }
}

fn jiff_span(d: Duration) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or(k8s_openapi::jiff::SignedDuration::MAX)
}

impl Provider for SkyWalkingProvider {
    fn kind(&self) -> &'static str {
        "skywalking"
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
    fn duration_variable() {
        let p = SkyWalkingProvider::new(&SkyWalkingMetric {
            address: Some("http://oap:12800".into()),
            query: Some("query { x }".into()),
            interval: Some("5m".into()),
        })
        .unwrap();
        assert_eq!(p.url, "http://oap:12800/graphql");
        let now: Timestamp = "2026-03-04T10:07:30Z".parse().unwrap();
        assert_eq!(
            p.body(now)["variables"]["duration"],
            json!({"start": "2026-03-04 1002", "end": "2026-03-04 1007", "step": "MINUTE"})
        );
    }

    #[test]
    fn interval_is_required() {
        let err = SkyWalkingProvider::new(&SkyWalkingMetric::default()).unwrap_err();
        assert_eq!(err.to_string(), "time: invalid duration \"\"");
    }
}
