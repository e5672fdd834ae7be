//! The `wavefront` provider: one chart query (`GET /api/v2/chart/api`) at the measurement
//! time with the token the `wavefront-api-tokens` Secret keeps under the metric's `address`.
//! The point nearest the measurement time of each series is the result: a float for one
//! series, a `[]float64` for several.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value as Json;

use crate::api::providers::WavefrontMetric;
use crate::api::{AnalysisPhase, Measurement, Metric};
use crate::expr::MetricValue;

use super::go_text::{Values, encode};
use super::http::{client, error_text};
use super::{MeasureContext, Provider, SecretReader, conclude, errored, started};

/// The Secret mapping Wavefront addresses to API tokens.
pub const TOKENS_SECRET: &str = "wavefront-api-tokens";
/// Measurement metadata keys: the server's warnings, the timestamps of the points used and
/// their distance from the measurement time (seconds).
pub const WARNINGS: &str = "warnings";
/// See [`WARNINGS`].
pub const TIMESTAMPS: &str = "timestamps";
/// See [`WARNINGS`].
pub const DRIFT: &str = "drift";
const TIMEOUT: Duration = Duration::from_secs(30);

/// One configured Wavefront metric.
#[derive(Debug, Clone)]
pub struct WavefrontProvider {
    spec: WavefrontMetric,
    secrets: SecretReader,
}

/// The base URL of an address: a host name gets `https://` (upstream's client); an address
/// with a scheme is taken as written.
pub fn base_url(address: &str) -> String {
    if address.starts_with("http://") || address.starts_with("https://") {
        address.trim_end_matches('/').to_string()
    } else {
        format!("https://{}", address.trim_end_matches('/'))
    }
}

/// The chart query parameters: start and end at the measurement time (milliseconds), one
/// point per second, series outside the window included.
pub fn query_params(query: &str, at_seconds: i64) -> String {
    let millis = (at_seconds * 1000).to_string();
    let mut values = Values::new();
    values.insert("q".into(), vec![query.to_string()]);
    values.insert("s".into(), vec![millis.clone()]);
    values.insert("e".into(), vec![millis]);
    values.insert("g".into(), vec!["s".into()]);
    values.insert("p".into(), vec!["1".into()]);
    values.insert("i".into(), vec!["true".into()]);
    encode(&values)
}

/// The point nearest `at` (epoch seconds): value, its timestamp and drift.
fn nearest(points: &[Json], at: f64) -> (f64, i64, i64) {
    let mut value = 0.0;
    let mut time = 0.0;
    let mut delta = f64::INFINITY;
    for point in points {
        let (Some(t), Some(v)) = (
            point.get(0).and_then(Json::as_f64),
            point.get(1).and_then(Json::as_f64),
        ) else {
            continue;
        };
        let d = t - at;
        if d.abs() < delta.abs() {
            value = v;
            time = t;
            delta = d;
        }
    }
    // An empty series keeps Go's zero values; an infinite drift has no integer form.
    let drift = if delta.is_finite() {
        delta as i64
    } else {
        i64::MIN
    };
    (value, time as i64, drift)
}

impl WavefrontProvider {
    /// Keeps the spec; the token is read at each measurement.
    pub fn new(spec: &WavefrontMetric, secrets: SecretReader) -> WavefrontProvider {
        WavefrontProvider {
            spec: spec.clone(),
            secrets,
        }
    }

    async fn fetch(&self, at: i64) -> Result<Json, String> {
        let tokens = self
            .secrets
            .read_controller(TOKENS_SECRET)
            .await
            .map_err(|e| e.to_string())?;
        let address = self.spec.address.clone().unwrap_or_default();
        let token = tokens
            .get(&address)
            .ok_or_else(|| "API token not found".to_string())?;
        let url = format!(
            "{}/api/v2/chart/api?{}",
            base_url(&address),
            query_params(self.spec.query.as_deref().unwrap_or(""), at)
        );
        let http = client(TIMEOUT, false).map_err(|e| e.to_string())?;
        let response = http
            .get(url)
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| error_text(&e))?;
        if !status.is_success() {
            return Err(format!(
                "server returned {status}\n{text}",
                status = status.as_u16()
            ));
        }
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let mut measurement = started(ctx);
        let at = ctx.now.as_second();
        let doc = match self.fetch(at).await {
            Ok(doc) => doc,
            Err(message) => return errored(measurement, message),
        };
        if let Some(w) = doc
            .get("warnings")
            .and_then(Json::as_str)
            .filter(|w| !w.is_empty())
        {
            measurement.metadata.insert(WARNINGS.into(), w.into());
        }
        let series = doc
            .get("timeseries")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let points = |s: &Json| {
            s.get("data")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (result, value, timestamps, drift) = match series.as_slice() {
            [] => {
                return errored(
                    measurement,
                    "No TimeSeries found in response from Wavefront",
                );
            }
            [one] => {
                let (v, t, d) = nearest(&points(one), at as f64);
                (
                    MetricValue::Float(v),
                    format!("{v:.2}"),
                    t.to_string(),
                    d.to_string(),
                )
            }
            many => {
                let found: Vec<(f64, i64, i64)> = many
                    .iter()
                    .map(|s| nearest(&points(s), at as f64))
                    .collect();
                let list = |f: &dyn Fn(&(f64, i64, i64)) -> String| {
                    format!("[{}]", found.iter().map(f).collect::<Vec<_>>().join(","))
                };
                (
                    MetricValue::FloatList(found.iter().map(|f| f.0).collect()),
                    list(&|f| format!("{:.2}", f.0)),
                    list(&|f| f.1.to_string()),
                    list(&|f| f.2.to_string()),
                )
            }
        };
        let mut measurement = conclude(measurement, metric, &result, value, ctx);
        if measurement.phase != AnalysisPhase::Error {
            measurement.metadata.insert(TIMESTAMPS.into(), timestamps);
            measurement.metadata.insert(DRIFT.into(), drift);
        }
        measurement
    }
}

impl Provider for WavefrontProvider {
    fn kind(&self) -> &'static str {
        "Wavefront"
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
    use serde_json::json;

    #[test]
    fn nearest_point_and_drift() {
        let points = vec![
            json!([100.0, 1.0]),
            json!([118.0, 2.0]),
            json!([125.0, 3.0]),
        ];
        assert_eq!(nearest(&points, 120.0), (2.0, 118, -2));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            base_url("example.wavefront.com"),
            "https://example.wavefront.com"
        );
        assert_eq!(base_url("http://127.0.0.1:1/"), "http://127.0.0.1:1");
    }
}
