//! `list experiments`: the `NAME STATUS DURATION REMAINING AGE` table (`NAMESPACE` first under
//! `-A`), cells pre-padded exactly as upstream's `%-Ns` format and then tab-aligned.

use k8s_openapi::jiff::Timestamp;

use super::human_duration_millis;
use super::tree::TabWriter;
use crate::api::Experiment;

fn millis(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> i64 {
    time.0.as_millisecond()
}

/// The table for `experiments` (in the order given), or `None` when there are none.
pub fn render_experiment_list(
    experiments: &[Experiment],
    all_namespaces: bool,
    now: Timestamp,
) -> Option<String> {
    if experiments.is_empty() {
        return None;
    }
    let now_ms = now.as_millisecond();
    let mut w = TabWriter::default();
    let mut header = String::new();
    if all_namespaces {
        header.push_str("NAMESPACE\t");
    }
    header.push_str("NAME\tSTATUS\tDURATION\tREMAINING\tAGE");
    w.line(&header);
    for ex in experiments {
        let status = ex.status.clone().unwrap_or_default();
        let age = ex
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|created| human_duration_millis(now_ms - millis(created)))
            .unwrap_or_else(|| human_duration_millis(now_ms));
        let mut duration = "-".to_string();
        let mut remaining = "-".to_string();
        if let Some(spec) = ex.spec.duration.as_ref().filter(|d| !d.is_empty())
            && let Ok(length) = spec.to_duration()
        {
            let length_ms = i64::try_from(length.as_millis()).unwrap_or(i64::MAX);
            duration = human_duration_millis(length_ms);
            let done = status.phase.as_ref().is_some_and(|p| p.completed());
            if !done && let Some(at) = status.available_at.as_ref() {
                let left = millis(at).saturating_add(length_ms) - now_ms;
                if left > 0 {
                    remaining = human_duration_millis(left);
                }
            }
        }
        let phase = status.phase.map(|p| p.to_string()).unwrap_or_default();
        let name = ex.metadata.name.clone().unwrap_or_default();
        let mut line = String::new();
        if all_namespaces {
            let ns = ex.metadata.namespace.clone().unwrap_or_default();
            line.push_str(&format!("{ns:<9}\t"));
        }
        line.push_str(&format!(
            "{name:<10}\t{phase:<6}\t{duration:<8}\t{remaining:<9}\t{age:<3}"
        ));
        w.line(&line);
    }
    Some(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ex(
        name: &str,
        phase: Option<&str>,
        duration: Option<&str>,
        available: Option<&str>,
    ) -> Experiment {
        let mut value = json!({
            "metadata": {"name": name, "namespace": "default",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"templates": []}
        });
        if let Some(d) = duration {
            value["spec"]["duration"] = json!(d);
        }
        if let Some(p) = phase {
            value["status"] = json!({"phase": p});
            if let Some(a) = available {
                value["status"]["availableAt"] = json!(a);
            }
        }
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rows_show_duration_and_what_remains_of_running_ones() {
        let now: Timestamp = "2026-01-01T00:05:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let list = [
            ex(
                "running",
                Some("Running"),
                Some("10m"),
                Some("2026-01-01T00:01:00Z"),
            ),
            ex(
                "done",
                Some("Successful"),
                Some("1m"),
                Some("2026-01-01T00:01:00Z"),
            ),
            ex("open", None, None, None),
        ];
        let text = render_experiment_list(&list, false, now).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME        STATUS      DURATION  REMAINING  AGE");
        assert_eq!(
            lines[1], "running     Running     10m       6m         5m ",
            "upstream pads AGE to 3"
        );
        assert_eq!(lines[2], "done        Successful  60s       -          5m ");
        assert_eq!(lines[3], "open                    -         -          5m ");
        let all = render_experiment_list(&list[..1], true, now).unwrap_or_default();
        assert!(all.starts_with("NAMESPACE  NAME"), "{all}");
        assert!(render_experiment_list(&[], false, now).is_none());
    }
}
