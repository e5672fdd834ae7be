//! The `influxdb` provider: a Flux query over the v2 HTTP API (`POST /api/v2/query?org=...`,
//! `Authorization: Token ...`) with the token, address and org from the `influxdb` Secret (or
//! the one `profile` names) in the controller's namespace. The `_value` of every record, in
//! order, is the result (a list).

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value as Json, json};

use crate::api::providers::InfluxdbMetric;
use crate::api::{Measurement, Metric};
use crate::expr::MetricValue;

use super::flux_csv::{FluxValue, values};
use super::go_text::{Values, encode};
use super::http::{client, error_text};
use super::{MeasureContext, Provider, SecretReader, conclude, errored, started};

/// The Secret read when `profile` names none.
pub const DEFAULT_SECRET: &str = "influxdb";
const TIMEOUT: Duration = Duration::from_secs(30);

/// One configured InfluxDB metric.
#[derive(Debug, Clone)]
pub struct InfluxdbProvider {
    spec: InfluxdbMetric,
    secrets: SecretReader,
}

/// The query body: Flux with the annotated-CSV dialect the client asks for.
pub fn body(query: &str) -> Json {
    json!({
        "dialect": {"annotations": ["datatype", "group", "default"], "delimiter": ",", "header": true},
        "query": query,
        "type": "flux",
    })
}

impl InfluxdbProvider {
    /// Keeps the spec; the Secret is read at each measurement.
    pub fn new(spec: &InfluxdbMetric, secrets: SecretReader) -> InfluxdbProvider {
        InfluxdbProvider {
            spec: spec.clone(),
            secrets,
        }
    }

    async fn query(&self) -> Result<Vec<FluxValue>, String> {
        let data = self
            .secrets
            .read_profile(self.spec.profile.as_deref(), DEFAULT_SECRET)
            .await?;
        let key = |k: &str| data.get(k).cloned().unwrap_or_default();
        let (token, address, org) = (key("authToken"), key("address"), key("org"));
        if token.is_empty() || address.is_empty() || org.is_empty() {
            return Err("authToken, org, or address not found".into());
        }
        let mut params = Values::new();
        params.insert("org".into(), vec![org]);
        let url = format!(
            "{}/api/v2/query?{}",
            address.trim_end_matches('/'),
            encode(&params)
        );
        let http = client(TIMEOUT, false).map_err(|e| e.to_string())?;
        let response = http
            .post(url)
            .header("Authorization", format!("Token {token}"))
            .header("Content-Type", "application/json")
            .body(body(self.spec.query.as_deref().unwrap_or("")).to_string())
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| error_text(&e))?;
        if !(200..300).contains(&status) {
            // The client's error: the API's `code: message`, else the bare status.
            let doc: Option<Json> = serde_json::from_str(&text).ok();
            let field = |k: &str| {
                doc.as_ref()
                    .and_then(|d| d.get(k))
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let (code, message) = (field("code"), field("message"));
            return Err(if !code.is_empty() && !message.is_empty() {
                format!("{code}: {message}")
            } else {
                format!("Unexpected status code {status}")
            });
        }
        values(&text)
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let measurement = started(ctx);
        let found = match self.query().await {
            Ok(found) => found,
            Err(message) => return errored(measurement, message),
        };
        if found.is_empty() {
            return errored(measurement, "no results returned from flux query");
        }
        let result = MetricValue::List(found.iter().map(FluxValue::to_metric).collect());
        let text = format!(
            "[{}]",
            found
                .iter()
                .map(FluxValue::go_text)
                .collect::<Vec<_>>()
                .join(" ")
        );
        conclude(measurement, metric, &result, text, ctx)
    }
}

impl Provider for InfluxdbProvider {
    fn kind(&self) -> &'static str {
        "Influxdb"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.measure(ctx, metric))
    }
}
