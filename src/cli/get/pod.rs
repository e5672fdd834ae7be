//! kubectl's pod STATUS / READY / RESTARTS computation (`printPod`) and the pod status icon.

use k8s_openapi::api::core::v1::Pod;

use super::icon;
use super::info::{PodInfo, created};

/// Icon of a kubectl-style pod status.
pub fn pod_icon(status: &str) -> &'static str {
    if status.starts_with("Init:") {
        return icon::PROGRESSING;
    }
    if status.starts_with("Signal:") || status.starts_with("ExitCode:") {
        return icon::BAD;
    }
    if status.ends_with("Error") || status.starts_with("Err") {
        return icon::WARNING;
    }
    match status {
        "Pending" | "Terminating" | "ContainerCreating" => icon::PROGRESSING,
        "Running" | "Completed" => icon::OK,
        "Failed" | "InvalidImageName" | "CrashLoopBackOff" => icon::BAD,
        "ImagePullBackOff" | "RegistryUnavailable" => icon::WARNING,
        "Unknown" => icon::UNKNOWN,
        _ => " ",
    }
}

/// kubectl's pod STATUS, READY and RESTARTS computation (`printPod`).
pub fn pod_info(pod: &Pod) -> PodInfo {
    let spec = pod.spec.clone().unwrap_or_default();
    let st = pod.status.clone().unwrap_or_default();
    let mut restarts = 0;
    let mut ready = 0;
    let mut reason = st.phase.clone().unwrap_or_default();
    if let Some(r) = st.reason.as_deref().filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    let init_total = spec.init_containers.as_ref().map_or(0, Vec::len);
    let mut initializing = false;
    for (i, c) in st
        .init_container_statuses
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        restarts += c.restart_count;
        let state = c.state.clone().unwrap_or_default();
        if let Some(t) = &state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            };
        } else if let Some(r) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        restarts = 0;
        let mut has_running = false;
        for c in st.container_statuses.as_deref().unwrap_or(&[]).iter().rev() {
            restarts += c.restart_count;
            let state = c.state.clone().unwrap_or_default();
            let waiting = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.as_deref())
                .filter(|r| !r.is_empty());
            if let Some(r) = waiting {
                reason = r.to_string();
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if t.signal.unwrap_or(0) != 0 => {
                        format!("Signal:{}", t.signal.unwrap_or(0))
                    }
                    None => format!("ExitCode:{}", t.exit_code),
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".to_string();
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        reason = if st.reason.as_deref() == Some("NodeLost") {
            "Unknown".to_string()
        } else {
            "Terminating".to_string()
        };
    }
    PodInfo {
        name: pod.metadata.name.clone().unwrap_or_default(),
        created: created(&pod.metadata),
        icon: pod_icon(&reason),
        status: reason,
        ready: format!("{ready}/{}", spec.containers.len()),
        restarts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> PodInfo {
        pod_info(&serde_json::from_value(v).unwrap())
    }

    fn running(ready: bool, restarts: i32) -> serde_json::Value {
        json!({"name": "c", "image": "i", "imageID": "", "ready": ready, "restartCount": restarts,
               "state": {"running": {}}})
    }

    #[test]
    fn running_pod_counts_ready_and_restarts() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running",
                       "containerStatuses": [running(true, 2), running(false, 1)]}
        }));
        assert_eq!(
            (p.status.as_str(), p.icon, p.ready.as_str(), p.restarts),
            ("Running", "✔", "1/2", 3)
        );
    }

    #[test]
    fn waiting_reasons_become_status() {
        for (reason, icon_want) in [
            ("CrashLoopBackOff", "✖"),
            ("ContainerCreating", "◌"),
            ("ErrImagePull", "⚠"),
            ("ImagePullBackOff", "⚠"),
            ("CreateContainerConfigError", "⚠"),
        ] {
            let p = pod(json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "a"}]},
                "status": {"phase": "Pending", "containerStatuses": [{
                    "name": "a", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": reason}}}]}
            }));
            assert_eq!(
                (p.status.as_str(), p.icon, p.ready.as_str()),
                (reason, icon_want, "0/1")
            );
        }
    }

    #[test]
    fn init_containers_and_termination() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{
                "name": "i", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {}}}]}
        }));
        assert_eq!((p.status.as_str(), p.icon), ("Init:0/1", "◌"));

        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "a", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        }));
        assert_eq!((p.status.as_str(), p.icon), ("Completed", "✔"));

        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "a", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 137}}}]}
        }));
        assert_eq!((p.status.as_str(), p.icon), ("ExitCode:137", "✖"));

        let p = pod(json!({
            "metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [running(true, 0)]}
        }));
        assert_eq!((p.status.as_str(), p.icon), ("Terminating", "◌"));
    }
}
