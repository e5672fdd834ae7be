//! Rollout spec rules 1–7 of spec §9 (replicas, selector, workloadRef, pod template, timing
//! fields, strategy choice, blue-green) and the entry point [`validate_rollout`], which runs
//! every static rule in upstream's order.

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::rollout::{BlueGreenStrategy, Rollout};

use super::canary::{validate_anti_affinity, validate_canary};
use super::pod::{
    go_label_selector, selector_is_valid, validate_label_selector,
    validate_pod_template_for_replica_set,
};
use super::{BadValue, ErrorList, FieldError, FieldPath};

const NONNEGATIVE: &str = "must be greater than or equal to 0";
const DUPLICATED_SERVICES_BLUE_GREEN: &str = "This rollout uses the same service for the active and preview services, but two different services are required.";
const SCALE_DOWN_LIMIT_LARGER: &str =
    "This rollout's revision history limit can not be smaller than the rollout's scale down limit";

fn nonnegative(value: i64, path: FieldPath) -> Option<FieldError> {
    (value < 0).then(|| FieldError::invalid(path, BadValue::Int(value), NONNEGATIVE))
}

/// Upstream's `EmptyTemplate()`: a template without labels and annotations counts as empty.
pub fn template_is_empty(template: Option<&PodTemplateSpec>) -> bool {
    let meta = template.and_then(|t| t.metadata.as_ref());
    meta.is_none_or(|m| {
        m.labels.as_ref().is_none_or(|l| l.is_empty())
            && m.annotations.as_ref().is_none_or(|a| a.is_empty())
    })
}

fn revision_history_limit(rollout: &Rollout) -> i32 {
    rollout.spec.revision_history_limit()
}

/// `ValidateRollout`: every static rule (1–18), paths rooted at `spec`.
pub fn validate_rollout(rollout: &Rollout) -> ErrorList {
    validate_rollout_spec(rollout, &FieldPath::new("spec"))
}

/// [`validate_rollout`] of a Rollout whose `workloadRef` was resolved (upstream's
/// `TemplateResolvedFromRef`): the template now comes from the workload, so it is validated
/// like an inline one and may not be empty.
pub fn validate_resolved_rollout(rollout: &Rollout) -> ErrorList {
    validate_spec(rollout, &FieldPath::new("spec"), true)
}

/// `ValidateRolloutSpec` at `path`.
pub fn validate_rollout_spec(rollout: &Rollout, path: &FieldPath) -> ErrorList {
    validate_spec(rollout, path, false)
}

/// `ValidateRolloutSpec`; `resolved` is upstream's `TemplateResolvedFromRef`.
fn validate_spec(rollout: &Rollout, path: &FieldPath, resolved: bool) -> ErrorList {
    let spec = &rollout.spec;
    let mut errs = ErrorList::new();
    let replicas = spec.effective_replicas();
    errs.extend(nonnegative(i64::from(replicas), path.child("replicas")));

    let sel_path = path.child("selector");
    if spec.workload_ref.is_none() {
        match &spec.selector {
            None => errs.push(FieldError::required(
                sel_path.clone(),
                "Rollout has missing field '.spec.selector'",
            )),
            Some(sel) => {
                errs.extend(validate_label_selector(sel, &sel_path));
                let n = sel.match_labels.as_ref().map_or(0, |m| m.len())
                    + sel.match_expressions.as_ref().map_or(0, |e| e.len());
                if n == 0 {
                    errs.push(FieldError::invalid(
                        sel_path.clone(),
                        BadValue::Go(go_label_selector(sel)),
                        "empty selector is invalid for deployment",
                    ));
                }
            }
        }
    }
    if !resolved && spec.workload_ref.is_some() && !template_is_empty(spec.template.as_ref()) {
        // Upstream: lint sees the raw object; the controller resolves the reference first.
        errs.push(FieldError::internal(
            path.child("template"),
            "template must be empty for workload reference rollout",
        ));
    }
    if !selector_is_valid(spec.selector.as_ref()) {
        let value = spec
            .selector
            .as_ref()
            .map_or(BadValue::Null, |s| BadValue::Go(go_label_selector(s)));
        errs.push(FieldError::invalid(
            sel_path,
            value,
            "invalid label selector",
        ));
    } else if resolved || spec.workload_ref.is_none() {
        errs.extend(validate_pod_template_for_replica_set(
            spec.template.as_ref(),
            spec.selector.as_ref(),
            &path.child("template"),
        ));
    }
    let min_ready = spec.min_ready_seconds();
    errs.extend(nonnegative(
        i64::from(min_ready),
        path.child("minReadySeconds"),
    ));
    errs.extend(nonnegative(
        i64::from(revision_history_limit(rollout)),
        path.child("revisionHistoryLimit"),
    ));
    let deadline = spec.progress_deadline_seconds();
    errs.extend(nonnegative(
        i64::from(deadline),
        path.child("progressDeadlineSeconds"),
    ));
    if deadline <= min_ready {
        errs.push(FieldError::invalid(
            path.child("progressDeadlineSeconds"),
            BadValue::Int(i64::from(deadline)),
            "must be greater than minReadySeconds",
        ));
    }
    errs.extend(validate_rollout_strategy(rollout, &path.child("strategy")));
    errs
}

/// `ValidateRolloutStrategy` (rule 6): exactly one strategy, then that strategy's rules.
/// `path` is the strategy path (`spec.strategy`).
pub fn validate_rollout_strategy(rollout: &Rollout, path: &FieldPath) -> ErrorList {
    let strategy = &rollout.spec.strategy;
    match (&strategy.blue_green, &strategy.canary) {
        (None, None) => vec![FieldError::required(
            path.child("strategy"),
            "Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'",
        )],
        (Some(_), Some(_)) => vec![FieldError::invalid(
            path.child("strategy"),
            BadValue::str("blueGreen: true canary: true"),
            "Multiple Strategies can not be listed",
        )],
        (Some(bg), None) => validate_blue_green(rollout, bg, path),
        (None, Some(canary)) => validate_canary(rollout, canary, path),
    }
}

/// `ValidateRolloutStrategyBlueGreen` (rule 7) at the strategy path, plus an empty
/// `activeService` next to a `previewService` (the API server's `Required value`).
pub fn validate_blue_green(
    rollout: &Rollout,
    bg: &BlueGreenStrategy,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let preview = bg.preview_service.as_deref().unwrap_or("");
    if bg.active_service == preview {
        errs.push(FieldError::invalid(
            path.child("activeService"),
            BadValue::str(&bg.active_service),
            DUPLICATED_SERVICES_BLUE_GREEN,
        ));
    } else if bg.active_service.is_empty() {
        // Davy's addition. Upstream's CRD marks the field required, so the API server refuses a
        // Rollout without it (`...blueGreen.activeService: Required value`), but an empty string
        // passes the schema and upstream's validation, and its controller then fails every
        // reconcile looking up the Service "". Same words as the API server, at its path.
        errs.push(FieldError::required(
            path.child("blueGreen").child("activeService"),
            "",
        ));
    }
    if let Some(limit) = bg.scale_down_delay_revision_limit
        && revision_history_limit(rollout) < limit
    {
        errs.push(FieldError::invalid(
            path.child("scaleDownDelayRevisionLimit"),
            BadValue::Int(i64::from(limit)),
            SCALE_DOWN_LIMIT_LARGER,
        ));
    }
    errs.extend(validate_anti_affinity(
        bg.anti_affinity.as_ref(),
        &path.child("antiAffinity"),
    ));
    errs
}
