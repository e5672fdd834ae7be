//! The `web` provider (spec §5.2): one HTTP request per measurement; a JSON answer is
//! searched with the metric's `jsonPath` and the first match is the result, any other answer
//! is the result as raw text.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value as Json;
use serde_json_path::JsonPath;
use thiserror::Error;

use crate::api::providers::{WebMetric, WebMetricHeader};
use crate::api::{Measurement, Metric};
use crate::expr::{MetricValue, format_go_float};

use super::http::{Auth, TokenError, client, error_text, with_headers};
use super::kube_jsonpath::compile;
use super::{MeasureContext, Provider, ProviderError, conclude, errored, started};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// Why a web measurement has no body to read; the texts are those upstream's measurements
/// carry (Go's `http.Client` wording for timeouts).
#[derive(Debug, Error)]
pub enum FetchError {
    /// No OAuth2 token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The request timed out.
    #[error(
        "{method} \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    )]
    Timeout {
        /// The method as Go spells it (`Get`, `Post`, `Put`).
        method: String,
        /// The URL asked.
        url: String,
    },
    /// The request could not be sent.
    #[error("{}", error_text(.0))]
    Send(reqwest::Error),
    /// A non-2xx answer.
    #[error("received non 2xx response code: {0}")]
    Status(u16),
    /// The body could not be read.
    #[error("Received no bytes in response: {}", error_text(.0))]
    Body(reqwest::Error),
}

/// One configured web metric.
#[derive(Debug, Clone)]
pub struct WebProvider {
    method: Method,
    url: String,
    headers: Vec<WebMetricHeader>,
    /// Body text and whether it is JSON (which sets the content type).
    body: Option<(String, bool)>,
    json_path: JsonPath,
    client: reqwest::Client,
    auth: Auth,
}

impl WebProvider {
    /// Checks the configuration (method, body, JSONPath, authentication) and builds the client.
    pub fn new(spec: &WebMetric) -> Result<WebProvider, ProviderError> {
        let method = match spec
            .method
            .as_deref()
            .unwrap_or("")
            .to_ascii_uppercase()
            .as_str()
        {
            "" | "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            other => {
                return Err(ProviderError::Config(format!(
                    "unsupported web metric method {other:?} (GET, POST or PUT)"
                )));
            }
        };
        let text_body = spec.body.clone().filter(|b| !b.is_empty());
        let body = match (text_body, &spec.json_body) {
            (Some(_), Some(_)) => {
                return Err(ProviderError::Config(
                    "use either Body or JSONBody; both cannot exists for WebMetric payload"
                        .to_string(),
                ));
            }
            (Some(text), None) => Some((text, false)),
            (None, Some(json)) => Some((json.to_string(), true)),
            (None, None) => None,
        };
        if body.is_some() && method == Method::Get {
            return Err(ProviderError::Config(
                "a web metric body needs method POST or PUT".to_string(),
            ));
        }
        let timeout = Duration::from_secs(spec.timeout_seconds().unsigned_abs());
        let json_path =
            compile(spec.json_path()).map_err(|e| ProviderError::Config(e.to_string()))?;
        Ok(WebProvider {
            method,
            url: spec.url.clone(),
            headers: spec.headers.clone().unwrap_or_default(),
            body,
            json_path,
            client: client(timeout, spec.insecure.unwrap_or(false))?,
            auth: Auth::from_spec(spec.authentication.as_ref())?,
        })
    }

    /// The response body of a 2xx answer, or the measurement error message.
    async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        let mut request = match self.method {
            Method::Get => self.client.get(&self.url),
            Method::Post => self.client.post(&self.url),
            Method::Put => self.client.put(&self.url),
        };
        if let Some((body, is_json)) = &self.body {
            if *is_json {
                request = request.header("Content-Type", "application/json");
            }
            request = request.body(body.clone());
        }
        request = with_headers(request, &self.headers);
        let request = self.auth.apply(&self.client, request).await?;
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                // Go's http.Client wording, so messages match upstream's.
                let method = self.method.as_str();
                FetchError::Timeout {
                    method: format!("{}{}", &method[..1], method[1..].to_ascii_lowercase()),
                    url: self.url.clone(),
                }
            } else {
                FetchError::Send(e)
            }
        })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(FetchError::Status(status));
        }
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(FetchError::Body)
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let measurement = started(ctx);
        let body = match self.fetch().await {
            Ok(body) => body,
            Err(error) => return errored(measurement, error.to_string()),
        };
        let (result, value) = match serde_json::from_slice::<Json>(&body) {
            // Not JSON: the raw text is the result (plain-text health endpoints).
            Err(_) => {
                let text = String::from_utf8_lossy(&body).into_owned();
                (MetricValue::String(text.clone()), text)
            }
            Ok(doc) => match self.json_path.query(&doc).first() {
                None => {
                    return errored(measurement, "result of web metric produced no value");
                }
                Some(found) => (MetricValue::from(found.clone()), go_json(found)),
            },
        };
        conclude(measurement, metric, &result, value, ctx)
    }
}

impl Provider for WebProvider {
    fn kind(&self) -> &'static str {
        "WebMetric"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.measure(ctx, metric))
    }
}

/// Go's `json.Marshal` of a decoded JSON value (numbers are float64, map keys sorted, `<`,
/// `>`, `&` escaped), which is how upstream renders the measurement value.
pub fn go_json(value: &Json) -> String {
    let mut out = String::new();
    write_go_json(value, &mut out);
    out
}

fn write_go_json(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(&go_json_number(n.as_f64().unwrap_or(f64::NAN))),
        Json::String(s) => write_go_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_go_json(v, out);
                }
            }
            out.push('}');
        }
    }
}

/// Go's float64 JSON encoding: positional digits, exponent form below 1e-6 or from 1e21 with
/// a one-digit negative exponent (`1e-7`, `1e+21`).
fn go_json_number(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format_go_float(f);
        // format_go_float pads exponents to two digits (`1e-07`); JSON strips the zero.
        match text.split_once("e-0") {
            Some((mantissa, digit)) => format!("{mantissa}e-{digit}"),
            None => text,
        }
    } else {
        f.to_string()
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_render_like_go_json_marshal() {
        assert_eq!(go_json(&json!(1)), "1");
        assert_eq!(go_json(&json!(1.0)), "1");
        assert_eq!(go_json(&json!(0.99)), "0.99");
        assert_eq!(go_json(&json!(1e21)), "1e+21");
        assert_eq!(go_json(&json!(0.0000001)), "1e-7");
        assert_eq!(go_json(&json!("ok")), "\"ok\"");
        assert_eq!(go_json(&json!("<a&b>")), "\"\\u003ca\\u0026b\\u003e\"");
        assert_eq!(
            go_json(&json!({"z": true, "a": [1, null]})),
            "{\"a\":[1,null],\"z\":true}"
        );
    }

    #[test]
    fn configuration_errors() {
        let both = WebMetric {
            url: "http://x".into(),
            method: Some("POST".into()),
            body: Some("a".into()),
            json_body: Some(json!({"a": 1})),
            ..WebMetric::default()
        };
        assert_eq!(
            WebProvider::new(&both).unwrap_err().to_string(),
            "use either Body or JSONBody; both cannot exists for WebMetric payload"
        );
        let get_with_body = WebMetric {
            url: "http://x".into(),
            body: Some("a".into()),
            ..WebMetric::default()
        };
        assert!(WebProvider::new(&get_with_body).is_err());
        let bad_path = WebMetric {
            url: "http://x".into(),
            json_path: Some("status: {.status}".into()),
            ..WebMetric::default()
        };
        assert!(WebProvider::new(&bad_path).is_err());
    }
}
