//! The `kayenta` provider: looks the canary config up by name, starts a canary judgment
//! (`POST /canary/<configId>` with the scopes and thresholds) and polls it every 15 s
//! (`GET /canary/<executionId>`) until it is complete; the judgment's score against
//! `threshold.pass` / `threshold.marginal` decides the phase.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value as Json, json};

use crate::api::providers::{KayentaMetric, KayentaScope};
use crate::api::{AnalysisPhase, Measurement, Metric};

use super::http::{client, error_text};
use super::{MeasureContext, Provider, ProviderError, errored, started};

/// Measurement metadata key holding the judgment's id.
pub const EXECUTION_ID: &str = "canaryExecutionId";
/// Wait between polls of a running judgment.
pub const RESUME_DELAY: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_secs(15);

/// One configured Kayenta metric.
#[derive(Debug, Clone)]
pub struct KayentaProvider {
    spec: KayentaMetric,
    client: reqwest::Client,
}

/// The phase of a judgment `score` (upstream's thresholds: at least `pass` succeeds, at least
/// `marginal` is inconclusive, below fails).
pub fn phase_of_score(score: i64, pass: i64, marginal: i64) -> AnalysisPhase {
    if score >= pass {
        AnalysisPhase::Successful
    } else if score >= marginal {
        AnalysisPhase::Inconclusive
    } else {
        AnalysisPhase::Failed
    }
}

/// RFC 3339 at second precision, as Go's `time.RFC3339` prints a UTC time.
fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn resume_at(now: Timestamp) -> Time {
    let delay = SignedDuration::try_from(RESUME_DELAY).unwrap_or(SignedDuration::ZERO);
    Time(now.checked_add(delay).unwrap_or(now))
}

/// One scope of the request: blank starts and ends are filled in (`interval` back from the
/// measurement, or the run's start with `lookback`, to the measurement time).
pub fn scope_request(
    scope: &KayentaScope,
    run_started_at: Option<Timestamp>,
    now: Timestamp,
    interval: &str,
    lookback: bool,
) -> Result<Json, String> {
    let (control, experiment) = (&scope.control_scope, &scope.experiment_scope);
    if control.start.is_empty() != experiment.start.is_empty() {
        return Err(
            "controlScope.start and experimentScope.start must both be set or be empty".into(),
        );
    }
    if control.end.is_empty() != experiment.end.is_empty() {
        return Err("controlScope.end and experimentScope.end must both be set or be empty".into());
    }
    let (mut control_start, mut experiment_start) =
        (control.start.clone(), experiment.start.clone());
    if control_start.is_empty() {
        let start = if lookback {
            // Go formats a nil start time as its zero time.
            run_started_at.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339)
        } else {
            let d = crate::api::duration::parse_go_duration(interval).map_err(|e| {
                format!(
                    "Invalid duration {interval:?}: {}",
                    crate::api::duration::GoDurationError(e)
                )
            })?;
            let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
            rfc3339(now.checked_sub(d).unwrap_or(Timestamp::MIN))
        };
        control_start = start.clone();
        experiment_start = start;
    }
    let (mut control_end, mut experiment_end) = (control.end.clone(), experiment.end.clone());
    if control_end.is_empty() {
        control_end = rfc3339(now);
        experiment_end = control_end.clone();
    }
    let detail = |d: &crate::api::providers::ScopeDetail, start: &str, end: &str| {
        let mut m = serde_json::Map::new();
        m.insert("scope".into(), json!(d.scope));
        m.insert("location".into(), json!(d.region));
        m.insert("step".into(), json!(d.step));
        if !start.is_empty() {
            m.insert("start".into(), json!(start));
        }
        if !end.is_empty() {
            m.insert("end".into(), json!(end));
        }
        Json::Object(m)
    };
    Ok(json!({
        "controlScope": detail(control, &control_start, &control_end),
        "experimentScope": detail(experiment, &experiment_start, &experiment_end),
    }))
}

/// Go's `%v` of a decoded JSON value, for the execution id.
fn go_value_text(v: &Json) -> String {
    match v {
        Json::Null => "<nil>".into(),
        Json::String(s) => s.clone(),
        Json::Number(n) => crate::expr::format_go_float(n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

impl KayentaProvider {
    /// Builds the client (15 s per call, as upstream).
    pub fn new(spec: &KayentaMetric) -> Result<KayentaProvider, ProviderError> {
        Ok(KayentaProvider {
            spec: spec.clone(),
            client: client(TIMEOUT, false)?,
        })
    }

    /// The id of the canary config named `canaryConfigName` (upstream asks with the storage
    /// account as `configurationAccountName`, and so do we).
    async fn config_id(&self) -> Result<String, String> {
        let k = &self.spec;
        let url = format!(
            "{}/canaryConfig?application={}&configurationAccountName={}",
            k.address, k.application, k.storage_account_name
        );
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(format!("Invalid Response: HTTP {status}"));
        }
        let configs: Vec<Json> = response.json().await.map_err(|e| error_text(&e))?;
        configs
            .iter()
            .find(|c| c.get("name").and_then(Json::as_str) == Some(k.canary_config_name.as_str()))
            .map(|c| c.get("id").and_then(Json::as_str).unwrap_or("").to_string())
            .ok_or_else(|| "Canary config not found".to_string())
    }

    /// The judgment request body at `now`.
    pub fn request(&self, ctx: &MeasureContext, interval: &str) -> Result<Json, String> {
        // Sorted by name, as Go marshals a map.
        let mut scopes = std::collections::BTreeMap::new();
        for scope in &self.spec.scopes {
            let s = scope_request(
                scope,
                ctx.run_started_at,
                ctx.now,
                interval,
                self.spec.lookback.unwrap_or(false),
            )?;
            scopes.insert(scope.name.clone(), s);
        }
        Ok(json!({
            "scopes": scopes,
            "thresholds": {"pass": self.spec.threshold.pass, "marginal": self.spec.threshold.marginal},
        }))
    }

    async fn start(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let mut measurement = started(ctx);
        let config_id = match self.config_id().await {
            Ok(id) => id,
            Err(message) => return errored(measurement, message),
        };
        let k = &self.spec;
        let url = format!(
            "{}/canary/{}?application={}&metricsAccountName={}&configurationAccountName={}&storageAccountName={}",
            k.address,
            config_id,
            k.application,
            k.metrics_account_name,
            k.configuration_account_name,
            k.storage_account_name
        );
        let interval = metric.interval.as_ref().map(|d| d.as_str()).unwrap_or("");
        let body = match self.request(ctx, interval) {
            Ok(body) => body,
            Err(message) => return errored(measurement, message),
        };
        let response = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let response = match response {
            Ok(r) if r.status().as_u16() == 200 => r,
            Ok(_) => return errored(measurement, "Invalid Response"),
            Err(e) => return errored(measurement, error_text(&e)),
        };
        let doc: Json = match response.bytes().await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(doc) => doc,
                Err(e) => return errored(measurement, e.to_string()),
            },
            Err(e) => return errored(measurement, error_text(&e)),
        };
        let id = go_value_text(doc.get(EXECUTION_ID).unwrap_or(&Json::Null));
        if id.is_empty() {
            return errored(measurement, "Invalid canaryExecutionId");
        }
        measurement.metadata.insert(EXECUTION_ID.into(), id);
        measurement.phase = AnalysisPhase::Running;
        measurement.resume_at = Some(resume_at(ctx.now));
        measurement
    }

    async fn poll(&self, ctx: &MeasureContext, mut measurement: Measurement) -> Measurement {
        let id = measurement
            .metadata
            .get(EXECUTION_ID)
            .cloned()
            .unwrap_or_default();
        let url = format!("{}/canary/{id}", self.spec.address);
        let response = match self.client.get(url).send().await {
            Ok(r) if r.status().as_u16() == 200 => r,
            Ok(_) => return errored(measurement, "Invalid Response"),
            Err(e) => return errored(measurement, error_text(&e)),
        };
        let doc: Json = match response.bytes().await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(doc) => doc,
                Err(e) => return errored(measurement, e.to_string()),
            },
            Err(e) => return errored(measurement, error_text(&e)),
        };
        match doc.get("complete") {
            Some(Json::Bool(false)) => {
                measurement.phase = AnalysisPhase::Running;
                measurement.resume_at = Some(resume_at(ctx.now));
                return measurement;
            }
            Some(Json::Bool(true)) => {}
            Some(other) => {
                return errored(
                    measurement,
                    format!(
                        ".complete accessor error: {other} is of the type {}, expected bool",
                        json_type(other)
                    ),
                );
            }
            None => return errored(measurement, "Missing Complete Status"),
        }
        let Some(score) = doc
            .pointer("/result/judgeResult/score/score")
            .and_then(Json::as_f64)
        else {
            return errored(measurement, "Missing Score");
        };
        let score = score as i64;
        measurement.value = score.to_string();
        measurement.phase = phase_of_score(
            score,
            self.spec.threshold.pass,
            self.spec.threshold.marginal,
        );
        measurement.resume_at = None;
        measurement.finished_at = Some(Time(ctx.now));
        measurement
    }
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "<nil>",
        Json::Bool(_) => "bool",
        Json::Number(_) => "float64",
        Json::String(_) => "string",
        Json::Array(_) => "[]interface {}",
        Json::Object(_) => "map[string]interface {}",
    }
}

impl Provider for KayentaProvider {
    fn kind(&self) -> &'static str {
        "Kayenta"
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.start(ctx, metric))
    }

    fn resume<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        _metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.poll(ctx, measurement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::providers::ScopeDetail;

    #[test]
    fn thresholds() {
        assert_eq!(phase_of_score(95, 90, 75), AnalysisPhase::Successful);
        assert_eq!(phase_of_score(90, 90, 75), AnalysisPhase::Successful);
        assert_eq!(phase_of_score(80, 90, 75), AnalysisPhase::Inconclusive);
        assert_eq!(phase_of_score(74, 90, 75), AnalysisPhase::Failed);
    }

    #[test]
    fn scope_times() {
        let now: Timestamp = "2026-01-02T03:04:05.6Z".parse().unwrap();
        let scope = KayentaScope {
            name: "default".into(),
            control_scope: ScopeDetail {
                scope: "app=stable".into(),
                region: "us".into(),
                step: 60,
                ..Default::default()
            },
            experiment_scope: ScopeDetail {
                scope: "app=canary".into(),
                region: "us".into(),
                step: 60,
                ..Default::default()
            },
        };
        let s = scope_request(&scope, None, now, "5m", false).unwrap();
        assert_eq!(s["controlScope"]["start"], "2026-01-02T02:59:05Z");
        assert_eq!(s["experimentScope"]["end"], "2026-01-02T03:04:05Z");
        assert_eq!(s["controlScope"]["location"], "us");
        let started: Timestamp = "2026-01-02T01:00:00Z".parse().unwrap();
        let s = scope_request(&scope, Some(started), now, "", true).unwrap();
        assert_eq!(s["controlScope"]["start"], "2026-01-02T01:00:00Z");
        let err = scope_request(&scope, None, now, "", false).unwrap_err();
        assert_eq!(err, "Invalid duration \"\": time: invalid duration \"\"");
        let mut half = scope.clone();
        half.control_scope.start = "2026-01-01T00:00:00Z".into();
        assert!(
            scope_request(&half, None, now, "5m", false)
                .unwrap_err()
                .starts_with("controlScope.start")
        );
    }
}
