//! One template of an Experiment reconciled to its ReplicaSet and Service (upstream
//! `reconcileTemplate`), and its `templateStatuses[]` entry: `Progressing` until the
//! ReplicaSet has the desired available pods, `Running` then, `Successful` once the duration
//! passed or the experiment terminates, `Failed` when it makes no progress for
//! `progressDeadlineSeconds`.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;

use super::objects::{new_replica_set, new_service, service_ports};
use super::status::{
    desired_replicas, passed_duration, progress_deadline_seconds, scale_down_delay_seconds,
    template_status,
};
use super::{Work, Write};
use crate::api::consts::{event_reason, label, template_status as ts};
use crate::api::{TemplateSpec, TemplateStatus};
use crate::rollout::EventType;
use crate::rollout::observed::{
    chrono_to_time, rs_available, rs_ready, rs_scale_down_deadline, rs_spec_replicas,
    rs_status_replicas, time_to_chrono,
};
use crate::rollout::replicas::other::ScaleDownDeadline;

/// Reconciles `template`, updating `w.status.templateStatuses`.
pub(crate) fn reconcile(w: &mut Work<'_>, template: &TemplateSpec) {
    let ex = &w.obs.experiment;
    let observed = ex.status.clone().unwrap_or_default();
    let mut status = template_status(&observed, &template.name).unwrap_or_else(|| TemplateStatus {
        name: template.name.clone(),
        ..TemplateStatus::default()
    });
    let previous = status.clone();
    let desired = desired_replicas(ex, &observed, template);
    let now_time = chrono_to_time(w.now);

    match w.replica_sets.get(&template.name).cloned() {
        None => {
            // Created with zero pods; the next reconcile scales it up (as upstream does).
            let rs = new_replica_set(ex, template, status.collision_count);
            w.plan
                .writes
                .push(Write::CreateReplicaSet(Box::new(rs.clone())));
            w.replica_sets.insert(template.name.clone(), rs);
            status.last_transition_time = Some(now_time.clone());
        }
        Some(mut rs) => {
            if template.service.is_some() {
                if desired != 0 {
                    ensure_service(w, template, &mut status, &rs);
                } else if rs_available(&rs) == 0 {
                    delete_service(w, template, &mut status);
                }
            } else {
                delete_service(w, template, &mut status);
            }
            if desired == 0 {
                scale_down_delay(w, &mut rs);
            }
            if rs_spec_replicas(&rs) != desired {
                scale(w, &mut rs, template, desired);
                status.last_transition_time = Some(now_time.clone());
            }
            w.replica_sets.insert(template.name.clone(), rs);
        }
    }

    let rs = w.replica_sets.get(&template.name);
    status.replicas = rs.map(rs_status_replicas).unwrap_or(0);
    status.updated_replicas = status.replicas;
    status.ready_replicas = rs.map(rs_ready).unwrap_or(0);
    status.available_replicas = rs.map(rs_available).unwrap_or(0);
    if (
        previous.replicas,
        previous.updated_replicas,
        previous.ready_replicas,
        previous.available_replicas,
    ) != (
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
    ) {
        status.last_transition_time = Some(now_time);
    }

    // A completed template status never changes again.
    if !completed(&status.status) {
        if desired == status.available_replicas {
            status.status = if passed_duration(ex, &observed, w.now) || w.terminating {
                ts::SUCCESSFUL
            } else {
                ts::RUNNING
            }
            .to_string();
        } else {
            let from = status
                .last_transition_time
                .as_ref()
                .map(time_to_chrono)
                .unwrap_or(w.now);
            let seconds = progress_deadline_seconds(ex);
            if w.now > from + chrono::Duration::seconds(i64::from(seconds)) {
                status.status = ts::FAILED.to_string();
                status.message = format!(
                    "Template '{}' exceeded its progressDeadlineSeconds ({seconds})",
                    template.name
                );
            } else if w.terminating {
                status.status = ts::SUCCESSFUL.to_string();
            } else {
                status.status = ts::PROGRESSING.to_string();
            }
        }
    }

    if previous.status != status.status {
        let mut message = format!(
            "Template '{}' transitioned from {} -> {}",
            template.name, previous.status, status.status
        );
        if !status.message.is_empty() {
            message.push_str(": ");
            message.push_str(&status.message);
        }
        let type_ = if status.status == ts::FAILED || status.status == ts::ERROR {
            EventType::Warning
        } else {
            EventType::Normal
        };
        w.plan
            .event(type_, format!("Template{}", status.status), message);
    }
    set_template_status(&mut w.status.template_statuses, status);
}

/// Upstream `TemplateStatusCode.Completed()`.
pub fn completed(status: &str) -> bool {
    matches!(status, ts::SUCCESSFUL | ts::FAILED | ts::ERROR)
}

/// Replaces the entry of the same name, or appends.
pub fn set_template_status(statuses: &mut Vec<TemplateStatus>, status: TemplateStatus) {
    match statuses.iter_mut().find(|s| s.name == status.name) {
        Some(slot) => *slot = status,
        None => statuses.push(status),
    }
}

/// Creates the template's Service unless the one it has is already the right one.
fn ensure_service(
    w: &mut Work<'_>,
    template: &TemplateSpec,
    status: &mut TemplateStatus,
    rs: &ReplicaSet,
) {
    if service_ports(rs).is_empty() {
        return;
    }
    let ex = &w.obs.experiment;
    let hash = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(label::POD_TEMPLATE_HASH))
        .cloned()
        .unwrap_or_default();
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let wanted = super::objects::service_name(ex, template);
    match w.services.get(&template.name) {
        // Upstream re-creates (and re-claims) any Service not named like the ReplicaSet.
        Some(existing) if existing.metadata.name.as_deref() == Some(rs_name.as_str()) => {}
        Some(existing) if existing.metadata.name.as_deref() == Some(wanted.as_str()) => {
            status.service_name = wanted;
            status.pod_template_hash = hash;
        }
        _ => {
            let service = new_service(ex, template, rs);
            w.plan
                .writes
                .push(Write::CreateService(Box::new(service.clone())));
            w.services.insert(template.name.clone(), service);
            status.service_name = wanted;
            status.pod_template_hash = hash;
        }
    }
}

fn delete_service(w: &mut Work<'_>, template: &TemplateSpec, status: &mut TemplateStatus) {
    if let Some(service) = w.services.remove(&template.name) {
        w.plan.writes.push(Write::DeleteService {
            name: service.metadata.name.clone().unwrap_or_default(),
        });
        status.service_name.clear();
        status.pod_template_hash.clear();
    }
}

/// Upstream `addScaleDownDelay`: a ReplicaSet about to be scaled to zero gets a
/// `scale-down-deadline` of now + `scaleDownDelaySeconds` (default 30); with a delay of zero
/// any deadline is removed.
fn scale_down_delay(w: &mut Work<'_>, rs: &mut ReplicaSet) {
    let delay = scale_down_delay_seconds(&w.obs.experiment);
    let name = rs.metadata.name.clone().unwrap_or_default();
    let has_deadline = !matches!(rs_scale_down_deadline(rs), ScaleDownDeadline::Absent);
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    if delay == 0 {
        if has_deadline {
            annotations.remove(crate::api::consts::annotation::SCALE_DOWN_DEADLINE);
            w.plan.writes.push(Write::ClearScaleDownDeadline { name });
        }
        return;
    }
    if has_deadline {
        return;
    }
    let deadline = rfc3339(w.now + chrono::Duration::seconds(i64::from(delay)));
    annotations.insert(
        crate::api::consts::annotation::SCALE_DOWN_DEADLINE.to_string(),
        deadline.clone(),
    );
    w.plan
        .writes
        .push(Write::SetScaleDownDeadline { name, deadline });
}

/// RFC 3339 in UTC with whole seconds, as Go's `time.RFC3339`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Upstream `scaleTemplateRS`: scaling to zero waits for the scale-down deadline (the
/// template's replicas are kept until then).
fn scale(w: &mut Work<'_>, rs: &mut ReplicaSet, template: &TemplateSpec, desired: i32) {
    let mut target = desired;
    if desired == 0
        && let ScaleDownDeadline::At(deadline) = rs_scale_down_deadline(rs)
        && deadline > w.now
    {
        w.plan.requeue(deadline - w.now);
        target = template.replicas.unwrap_or(1);
    }
    let from = rs_spec_replicas(rs);
    if from == target {
        return;
    }
    let name = rs.metadata.name.clone().unwrap_or_default();
    w.plan.writes.push(Write::ScaleReplicaSet {
        name: name.clone(),
        replicas: target,
    });
    if let Some(spec) = rs.spec.as_mut() {
        spec.replicas = Some(target);
    }
    let direction = if from < target { "up" } else { "down" };
    w.plan.event(
        EventType::Normal,
        event_reason::SCALING_REPLICA_SET,
        format!("Scaled {direction} ReplicaSet {name} from {from} to {target}"),
    );
}
