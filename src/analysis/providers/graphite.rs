//! The `graphite` provider: the metric's `query` (whitespace removed) sent to
//! `<address>/render` with `format=json`; the non-null values of the first target are the
//! result, a `[]float64`.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value as Json;

use crate::api::providers::GraphiteMetric;
use crate::api::{Measurement, Metric};
use crate::expr::MetricValue;

use super::go_text::{encode, format_float_6, parse_query};
use super::http::{client, error_text};
use super::{MeasureContext, Provider, ProviderError, conclude, errored, started};

const TIMEOUT: Duration = Duration::from_secs(10);

/// One configured Graphite metric.
#[derive(Debug, Clone)]
pub struct GraphiteProvider {
    base: reqwest::Url,
    query: String,
    client: reqwest::Client,
}

impl GraphiteProvider {
    /// Checks the address (upstream's message) and builds the client.
    pub fn new(spec: &GraphiteMetric) -> Result<GraphiteProvider, ProviderError> {
        let address = spec.address.clone().unwrap_or_default();
        let base = reqwest::Url::parse(&address)
            .ok()
            .filter(|_| !address.is_empty())
            .ok_or_else(|| {
                ProviderError::Config(format!("Graphite address {address} is not a valid URL"))
            })?;
        Ok(GraphiteProvider {
            base,
            query: spec.query.clone().unwrap_or_default(),
            client: client(TIMEOUT, false)?,
        })
    }

    /// The render URL: the address's path joined with `render`, the query's parameters
    /// re-encoded with `format=json` (Go's sorted encoding).
    pub fn render_url(&self) -> String {
        let sanitized: String = self.query.split_whitespace().collect();
        let mut values = parse_query(&sanitized);
        values.insert("format".into(), vec!["json".into()]);
        let mut url = self.base.clone();
        let path = format!("{}/render", self.base.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);
        format!("{url}?{}", encode(&values))
    }

    async fn fetch(&self) -> Result<Vec<Option<f64>>, String> {
        let response = self
            .client
            .get(self.render_url())
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| error_text(&e))?;
        if status >= 400 {
            return Err(format!("error response: {text}"));
        }
        let doc: Json = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let Some(first) = doc.as_array().and_then(|targets| targets.first()) else {
            return Ok(Vec::new());
        };
        let points = first
            .get("datapoints")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        points.iter().map(point_value).collect()
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let measurement = started(ctx);
        let points = match self.fetch().await {
            Ok(points) => points,
            Err(message) => return errored(measurement, message),
        };
        if points.is_empty() {
            return errored(measurement, "no values found");
        }
        let values: Vec<f64> = points.into_iter().flatten().collect();
        let text = format!(
            "[{}]",
            values
                .iter()
                .map(|v| format_float_6(*v))
                .collect::<Vec<_>>()
                .join(",")
        );
        conclude(
            measurement,
            metric,
            &MetricValue::FloatList(values),
            text,
            ctx,
        )
    }
}

/// A `[value, timestamp]` point's value: a number, a numeric string, or null (no value).
fn point_value(point: &Json) -> Result<Option<f64>, String> {
    let pair = point
        .as_array()
        .filter(|p| p.len() == 2)
        .ok_or_else(|| format!("error unmarshaling data point: {point}"))?;
    match &pair[0] {
        Json::Null => Ok(None),
        Json::Number(n) => Ok(n.as_f64()),
        Json::String(s) => s
            .parse::<f64>()
            .map(Some)
            .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        other => Err(format!("error unmarshaling value: {other}")),
    }
}

impl Provider for GraphiteProvider {
    fn kind(&self) -> &'static str {
        "Graphite"
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

    fn provider(address: &str, query: &str) -> GraphiteProvider {
        GraphiteProvider::new(&GraphiteMetric {
            address: Some(address.into()),
            query: Some(query.into()),
        })
        .unwrap()
    }

    #[test]
    fn render_urls() {
        assert_eq!(
            provider("http://g:8080", "target=sum(a.*) &from=-5min").render_url(),
            "http://g:8080/render?format=json&from=-5min&target=sum%28a.%2A%29"
        );
        assert_eq!(
            provider("http://g/graphite/", "target=x").render_url(),
            "http://g/graphite/render?format=json&target=x"
        );
    }

    #[test]
    fn bad_address() {
        let err = GraphiteProvider::new(&GraphiteMetric::default()).unwrap_err();
        assert_eq!(err.to_string(), "Graphite address  is not a valid URL");
    }
}
