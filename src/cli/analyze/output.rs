//! How `davy analyze` prints: one line per measurement as it lands and a final run line, as
//! aligned text or as JSON lines (one object per line, `"type": "measurement" | "run"`).

use serde_json::json;

use crate::api::{AnalysisPhase, AnalysisRunStatus, Measurement};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "text" | "" => Some(Format::Text),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

fn time_text(m: &Measurement) -> String {
    m.finished_at
        .as_ref()
        .or(m.started_at.as_ref())
        .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// One measurement of `metric`.
pub fn measurement_line(format: Format, metric: &str, m: &Measurement) -> String {
    match format {
        Format::Text => {
            let mut line = format!(
                "{}  {:<24} {:<12} {}",
                time_text(m),
                metric,
                m.phase.as_str(),
                if m.value.is_empty() { "-" } else { &m.value }
            );
            if !m.message.is_empty() {
                line.push_str("  ");
                line.push_str(&m.message);
            }
            line.trim_end().to_string()
        }
        Format::Json => json!({
            "type": "measurement",
            "metric": metric,
            "phase": m.phase.as_str(),
            "value": m.value,
            "message": m.message,
            "startedAt": m.started_at.as_ref().map(|t| t.0.to_string()),
            "finishedAt": m.finished_at.as_ref().map(|t| t.0.to_string()),
            "metadata": m.metadata,
        })
        .to_string(),
    }
}

/// The run's final phase and message (`at`: the instant a backtest concluded).
pub fn run_line(format: Format, status: &AnalysisRunStatus, at: Option<String>) -> String {
    let phase = status.phase.clone().unwrap_or(AnalysisPhase::Running);
    match format {
        Format::Text => {
            let mut line = format!("Run {phase}");
            if let Some(at) = &at {
                line.push_str(&format!(" at {at}"));
            }
            if !status.message.is_empty() {
                line.push_str(": ");
                line.push_str(&status.message);
            }
            line
        }
        Format::Json => json!({
            "type": "run",
            "phase": phase.as_str(),
            "message": status.message,
            "concludedAt": at,
            "runSummary": status.run_summary,
            "dryRunSummary": status.dry_run_summary,
            "metricResults": status.metric_results.iter().map(|r| json!({
                "name": r.name,
                "phase": r.phase.as_str(),
                "message": r.message,
                "count": r.count,
                "successful": r.successful,
                "failed": r.failed,
                "inconclusive": r.inconclusive,
                "error": r.error,
            })).collect::<Vec<_>>(),
        })
        .to_string(),
    }
}
