//! Who writes: the field manager of each Davy writer, and the request parameters that carry it.
//!
//! Server-side field ownership (`metadata.managedFields`) tells a user which program last set a
//! field, so each writer that acts on its own authority has its own name: the controller's
//! reconciles, the Alertmanager webhook's aborts (a user reading `managedFields` must be able to
//! tell an alert-driven abort from a step-driven one), the CLI's verbs and the sandbox's
//! workload simulator. Every create and patch Davy sends builds its parameters here.

use kube::api::{PatchParams, PostParams};

/// The Rollout and AnalysisRun reconcilers, and the traffic routers they drive.
pub const CONTROLLER: &str = "davy-controller";
/// The Alertmanager webhook receiver when it aborts a Rollout.
pub const ALERTS: &str = "davy-alerts";
/// The `davy` / `kubectl argo rollouts` verbs (promote, abort, set image, ...).
pub const CLI: &str = "davy";
/// The sandbox's workload simulator (ReplicaSet status, Pods).
pub const SIMULATOR: &str = "davy-sandbox-simulator";

/// Patch parameters writing as `manager`.
pub fn patch(manager: &str) -> PatchParams {
    PatchParams {
        field_manager: Some(manager.to_string()),
        ..PatchParams::default()
    }
}

/// Create parameters writing as `manager`.
pub fn post(manager: &str) -> PostParams {
    PostParams {
        field_manager: Some(manager.to_string()),
        ..PostParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_writer_has_its_own_name() {
        let all = [CONTROLLER, ALERTS, CLI, SIMULATOR];
        let unique: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        assert_eq!(patch(ALERTS).field_manager.as_deref(), Some("davy-alerts"));
        assert_eq!(post(CLI).field_manager.as_deref(), Some("davy"));
    }
}
