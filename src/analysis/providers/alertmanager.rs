//! The `davy/alertmanager` metric plugin: one `GET /api/v2/alerts` per measurement on an
//! Alertmanager, filtered with Prometheus-style matchers; the measurement fails while a
//! matching alert is active (by default not silenced and not inhibited) and succeeds otherwise.
//!
//! ```yaml
//! provider:
//!   plugin:
//!     davy/alertmanager:
//!       address: http://alertmanager.monitoring:9093
//!       matchers: 'alertname="HighErrorRate",service="web"'   # or a list of such strings
//! ```
//!
//! Matching is Alertmanager's own (`filter` parameters), so the matcher syntax is exactly its
//! (`=`, `!=`, `=~`, `!~`, anchored regexes). The value is the number of matching alerts; the
//! message names them. `successCondition`/`failureCondition` are not used.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;

use crate::api::{AnalysisPhase, Measurement, Metric};

use super::http::{client, error_text};
use super::{MeasureContext, PluginFactory, Provider, ProviderError, errored, started};

/// The `provider.plugin` name.
pub const PLUGIN_NAME: &str = "davy/alertmanager";

/// Matchers: one string of comma-separated matchers, or a list of them (all must hold).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Matchers {
    One(String),
    Many(Vec<String>),
}

/// The plugin configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    /// Alertmanager base URL (`http://host:9093`).
    address: String,
    /// Which alerts count.
    matchers: Matchers,
    /// Count silenced alerts too (default false).
    #[serde(default)]
    silenced: bool,
    /// Count inhibited alerts too (default false).
    #[serde(default)]
    inhibited: bool,
    /// Only alerts routed to this receiver (a regex, Alertmanager's `receiver` parameter).
    #[serde(default)]
    receiver: Option<String>,
    /// Request timeout in seconds (default 10).
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

/// One configured `davy/alertmanager` metric.
#[derive(Debug, Clone)]
pub struct AlertmanagerProvider {
    url: String,
    query: Vec<(String, String)>,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct ApiAlert {
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    fingerprint: String,
}

impl AlertmanagerProvider {
    /// Checks the configuration and builds the client.
    pub fn new(config: &serde_json::Value) -> Result<AlertmanagerProvider, ProviderError> {
        let invalid =
            |why: String| ProviderError::Config(format!("invalid {PLUGIN_NAME} config: {why}"));
        let config: Config =
            serde_json::from_value(config.clone()).map_err(|e| invalid(e.to_string()))?;
        let address = config.address.trim_end_matches('/');
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            return Err(invalid(format!(
                "address {address:?} is not an http(s) URL"
            )));
        }
        let matchers = match config.matchers {
            Matchers::One(one) => vec![one],
            Matchers::Many(many) => many,
        };
        // Alertmanager's `filter` parameter takes one matcher each.
        let matchers: Vec<String> = matchers.iter().flat_map(|m| split_matchers(m)).collect();
        if matchers.is_empty() {
            // Without a matcher every alert would fail the metric.
            return Err(invalid("matchers must not be empty".to_string()));
        }
        let mut query = vec![
            ("active".to_string(), "true".to_string()),
            ("silenced".to_string(), config.silenced.to_string()),
            ("inhibited".to_string(), config.inhibited.to_string()),
            ("unprocessed".to_string(), "true".to_string()),
        ];
        if let Some(receiver) = config.receiver.filter(|r| !r.is_empty()) {
            query.push(("receiver".to_string(), receiver));
        }
        query.extend(matchers.into_iter().map(|m| ("filter".to_string(), m)));
        let timeout = Duration::from_secs(config.timeout_seconds.unwrap_or(10).max(1));
        Ok(AlertmanagerProvider {
            url: format!("{address}/api/v2/alerts"),
            query,
            client: client(timeout, false)?,
        })
    }

    async fn alerts(&self) -> Result<Vec<ApiAlert>, String> {
        let response = self
            .client
            .get(&self.url)
            .query(&self.query)
            .send()
            .await
            .map_err(|e| format!("alertmanager request failed: {}", error_text(&e)))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("alertmanager response: {}", error_text(&e)))?;
        if !status.is_success() {
            return Err(format!(
                "alertmanager answered {}: {}",
                status.as_u16(),
                body.trim()
            ));
        }
        serde_json::from_str(&body)
            .map_err(|e| format!("alertmanager response is not an alert list: {e}"))
    }
}

impl Provider for AlertmanagerProvider {
    fn kind(&self) -> &'static str {
        "Plugin"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        _metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let mut measurement = started(ctx);
            match self.alerts().await {
                Err(message) => errored(measurement, message),
                Ok(alerts) => {
                    measurement.value = alerts.len().to_string();
                    if alerts.is_empty() {
                        measurement.phase = AnalysisPhase::Successful;
                    } else {
                        measurement.phase = AnalysisPhase::Failed;
                        let names: Vec<String> = alerts
                            .iter()
                            .map(|a| {
                                let name = a.labels.get("alertname").map_or("", String::as_str);
                                format!("{name} ({})", a.fingerprint)
                            })
                            .collect();
                        measurement.message = format!("firing: {}", names.join(", "));
                    }
                    measurement
                }
            }
        })
    }
}

/// Splits `{a="x,y", b=~"z"}` into `a="x,y"` and `b=~"z"`: on commas outside double quotes,
/// without the optional braces.
pub fn split_matchers(text: &str) -> Vec<String> {
    let text = text.trim();
    let text = text
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or(text);
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|part| part.trim().to_string())
        .filter(|part| !part.is_empty())
        .collect()
}

/// The [`PluginFactory`] registered under [`PLUGIN_NAME`].
pub fn factory() -> PluginFactory {
    Arc::new(|config| AlertmanagerProvider::new(config).map(|p| Box::new(p) as Box<dyn Provider>))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_table() {
        let err = |c: serde_json::Value| AlertmanagerProvider::new(&c).err().map(|e| e.to_string());
        assert_eq!(
            err(json!({"address": "http://am:9093", "matchers": "alertname=\"X\""})),
            None
        );
        assert_eq!(
            err(json!({"address": "http://am:9093/", "matchers": ["a=\"b\"", "c=~\"d\""]})),
            None
        );
        assert_eq!(
            err(json!({"address": "am:9093", "matchers": "a=b"})),
            Some(
                "invalid davy/alertmanager config: address \"am:9093\" is not an http(s) URL"
                    .into()
            )
        );
        assert_eq!(
            err(json!({"address": "http://am", "matchers": [" "]})),
            Some("invalid davy/alertmanager config: matchers must not be empty".into())
        );
        assert_eq!(
            err(json!({"address": "http://am"})),
            Some("invalid davy/alertmanager config: missing field `matchers`".into())
        );
        assert_eq!(
            err(json!({"address": "http://am", "matchers": "a=b", "bogus": 1})),
            Some("invalid davy/alertmanager config: unknown field `bogus`, expected one of `address`, `matchers`, `silenced`, `inhibited`, `receiver`, `timeoutSeconds`".into())
        );
        let p = AlertmanagerProvider::new(&json!({"address": "http://am:9093/", "matchers": "a=\"b\"", "silenced": true, "receiver": "davy"})).expect("valid");
        assert_eq!(p.url, "http://am:9093/api/v2/alerts");
        let query: Vec<String> = p.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            query,
            [
                "active=true",
                "silenced=true",
                "inhibited=false",
                "unprocessed=true",
                "receiver=davy",
                "filter=a=\"b\""
            ]
        );
    }
}
