//! The Alertmanager webhook payload, version 4 (`notify/webhook` + `template/template.go`):
//! serde types and [`parse`], which rejects other versions and malformed bodies with a message
//! naming the problem (the receiver answers it with 400).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The only payload version this receiver understands.
pub const VERSION: &str = "4";

/// `firing` or `resolved`, for the group and for each alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The alert is active.
    Firing,
    /// The alert ended (`endsAt` is real).
    Resolved,
}

impl AlertStatus {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Firing or resolved.
    pub status: AlertStatus,
    /// The alert's labels (`alertname`, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The alert's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing.
    pub starts_at: DateTime<Utc>,
    /// Zero time (`0001-01-01T00:00:00Z`) while firing.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link to the rule expression.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// 16 hex characters identifying the label set.
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    /// The `alertname` label, or `""`.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// A webhook notification (payload version 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// Always `"4"` here ([`parse`] rejects others).
    pub version: String,
    /// The aggregation group (route path and group labels).
    pub group_key: String,
    /// Alerts dropped by the receiver's `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` if any alert of the group fires.
    pub status: AlertStatus,
    /// The receiver name (regexp-quoted by Alertmanager).
    #[serde(default)]
    pub receiver: String,
    /// The group's labels.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// Labels shared by every alert.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations shared by every alert.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Alertmanager's own URL.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts.
    #[serde(default)]
    pub alerts: Vec<Alert>,
}

/// Why a body is not a payload this receiver accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or a field has the wrong shape (serde's message names it and the position).
    #[error("malformed Alertmanager payload: {0}")]
    Malformed(String),
    /// A version other than 4.
    #[error("unsupported Alertmanager payload version {0:?} (this receiver understands \"4\")")]
    Version(String),
}

/// Parses a webhook body: the version is checked first, so a newer payload shape reports its
/// version rather than a field error.
pub fn parse(body: &[u8]) -> Result<Payload, PayloadError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| PayloadError::Malformed(error.to_string()))?;
    match value.get("version") {
        Some(serde_json::Value::String(version)) if version == VERSION => {}
        Some(serde_json::Value::String(version)) => {
            return Err(PayloadError::Version(version.clone()));
        }
        Some(other) => return Err(PayloadError::Version(other.to_string())),
        None => {
            return Err(PayloadError::Malformed(
                "missing field `version`".to_string(),
            ));
        }
    }
    serde_json::from_value(value).map_err(|error| PayloadError::Malformed(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notification of ecosystem note §3.4, as Alertmanager 0.25 sent it.
    const RECEIVED: &str = r#"{
     "receiver": "hook", "status": "firing",
     "alerts": [{"status": "firing",
       "labels": {"alertname": "CanaryErrorRate", "rollout": "demo", "severity": "critical"},
       "annotations": {"summary": "canary error rate above 5%"},
       "startsAt": "2026-11-26T03:42:32.042003689Z", "endsAt": "0001-01-01T00:00:00Z",
       "generatorURL": "http://127.0.0.1:19090/graph", "fingerprint": "be75d0779c1640ee"}],
     "groupLabels": {"alertname": "CanaryErrorRate"},
     "commonLabels": {"alertname": "CanaryErrorRate", "rollout": "demo", "severity": "critical"},
     "commonAnnotations": {"summary": "canary error rate above 5%"},
     "externalURL": "http://vm:19093", "version": "4",
     "groupKey": "{}:{alertname=\"CanaryErrorRate\"}", "truncatedAlerts": 0}"#;

    #[test]
    fn parses_a_real_notification() {
        let payload = parse(RECEIVED.as_bytes()).expect("valid");
        assert_eq!(payload.group_key, "{}:{alertname=\"CanaryErrorRate\"}");
        assert_eq!(payload.status, AlertStatus::Firing);
        assert_eq!(payload.alerts.len(), 1);
        let alert = &payload.alerts[0];
        assert_eq!(alert.name(), "CanaryErrorRate");
        assert_eq!(alert.fingerprint, "be75d0779c1640ee");
        assert_eq!(
            alert.starts_at.to_rfc3339(),
            "2026-11-26T03:42:32.042003689+00:00"
        );
        assert_eq!(
            alert.ends_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("0001-01-01T00:00:00+00:00")
        );
    }

    #[test]
    fn rejects_other_versions_and_malformed_bodies_naming_the_problem() {
        let cases: [(&str, PayloadError); 5] = [
            (
                r#"{"version": "3", "groupKey": "g", "status": "firing"}"#,
                PayloadError::Version("3".into()),
            ),
            (r#"{"version": 4}"#, PayloadError::Version("4".into())),
            (
                r#"{"groupKey": "g"}"#,
                PayloadError::Malformed("missing field `version`".into()),
            ),
            (
                "{not json",
                PayloadError::Malformed("key must be a string at line 1 column 2".into()),
            ),
            (
                r#"{"version": "4", "groupKey": "g", "status": "burning"}"#,
                PayloadError::Malformed(
                    "unknown variant `burning`, expected `firing` or `resolved`".into(),
                ),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body.as_bytes()), Err(expected), "{body}");
        }
    }
}
