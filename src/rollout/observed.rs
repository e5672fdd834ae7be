//! What one reconcile of a canary Rollout decides from ([`Observed`]), and the lookups on it:
//! which ReplicaSet is new, which is stable, which are "other" (spec §3.1, §3.9), plus the
//! conversions into the plain structs of the replica math.
//!
//! Everything here is read-only: the executor lists the objects, [`super::plan::plan`] reads them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use serde_json::Value;

use super::hash;
use super::replicas::other::{OtherReplicaSet, ScaleDownDeadline};
use super::replicas::{
    CanaryParams, PodsOrPercent, ProgressThreshold, ProgressThresholdKind, ReplicaSetCounts,
    RolloutProgress, ScaleOverride, ScaleStep, WeightSplit,
};
use crate::api::consts::{API_VERSION, annotation, kind, label, progress_threshold_type};
use crate::api::{
    AnalysisRun, AnalysisTemplate, CanaryStrategy, ClusterAnalysisTemplate, Experiment, IntOrStr,
    Rollout, RolloutStatus,
};

/// Everything the canary decision reads, as plain API values. The executor fills it from its
/// caches; nothing here is fetched by the planner.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The Rollout as read (spec, metadata and the status users may have written commands into).
    pub rollout: Rollout,
    /// ReplicaSets owned by the Rollout (controller ownerReference), in any order.
    pub replica_sets: Vec<ReplicaSet>,
    /// AnalysisRuns owned by the Rollout, in any order.
    pub analysis_runs: Vec<AnalysisRun>,
    /// Experiments owned by the Rollout (`experiment` steps), in any order.
    pub experiments: Vec<Experiment>,
    /// AnalysisTemplates of the Rollout's namespace that step or background analysis may name.
    pub analysis_templates: Vec<AnalysisTemplate>,
    /// ClusterAnalysisTemplates that analysis with `clusterScope: true` may name.
    pub cluster_analysis_templates: Vec<ClusterAnalysisTemplate>,
    /// `canaryService` / `stableService` (and any other referenced Service), by name.
    pub services: BTreeMap<String, Service>,
    /// Pods of the owned ReplicaSets; only read to honour `spec.restartAt`.
    pub pods: Vec<Pod>,
    /// Spec validation errors (spec §9), already formatted like Kubernetes field errors
    /// (`spec.strategy...: Invalid value: ...`). The first one becomes the `InvalidSpec`
    /// condition and nothing else is reconciled.
    pub validation_errors: Vec<String>,
    /// What `spec.workloadRef` resolved to (`rollout` then already holds its template); the
    /// default when the Rollout names no workload.
    pub workload: super::workload::ResolvedWorkload,
    /// Why `spec.workloadRef` could not be resolved (the `spec.workloadRef` field error): the
    /// `InvalidSpec` condition, looked at again after upstream's fixed delay.
    pub workload_error: Option<String>,
}

impl Observed {
    /// A world holding only the Rollout; add the rest field by field.
    pub fn new(rollout: Rollout) -> Self {
        Observed {
            rollout,
            replica_sets: Vec::new(),
            analysis_runs: Vec::new(),
            experiments: Vec::new(),
            analysis_templates: Vec::new(),
            cluster_analysis_templates: Vec::new(),
            services: BTreeMap::new(),
            pods: Vec::new(),
            validation_errors: Vec::new(),
            workload: super::workload::ResolvedWorkload::default(),
            workload_error: None,
        }
    }
}

/// The controller ownerReference pointing at the Rollout.
pub fn owner_reference(rollout: &Rollout) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_string(),
        kind: kind::ROLLOUT.to_string(),
        name: rollout.metadata.name.clone().unwrap_or_default(),
        uid: rollout.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The Rollout's status, or the empty status of a Rollout never reconciled.
pub fn status_of(rollout: &Rollout) -> RolloutStatus {
    rollout.status.clone().unwrap_or_default()
}

/// The canary strategy, if the Rollout has one.
pub fn canary_of(rollout: &Rollout) -> Option<&CanaryStrategy> {
    rollout.spec.strategy.canary.as_ref()
}

/// `spec.replicas` with its default of 1.
pub fn replicas_of(rollout: &Rollout) -> i32 {
    rollout.spec.replicas.unwrap_or(1)
}

/// The `rollouts-pod-template-hash` label of a ReplicaSet (empty when missing).
pub fn rs_hash(rs: &ReplicaSet) -> &str {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(label::POD_TEMPLATE_HASH))
        .map_or("", String::as_str)
}

/// The name of a ReplicaSet (empty when missing).
pub fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// `spec.replicas` of a ReplicaSet with the API server's default of 1.
pub fn rs_spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1)
}

/// `status.availableReplicas` of a ReplicaSet.
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|status| status.available_replicas)
        .unwrap_or(0)
}

/// `status.replicas` of a ReplicaSet.
pub fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |status| status.replicas)
}

/// `status.readyReplicas` of a ReplicaSet.
pub fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|status| status.ready_replicas)
        .unwrap_or(0)
}

/// An annotation of a ReplicaSet.
pub fn rs_annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(key))
        .map(String::as_str)
}

/// `rollout.argoproj.io/revision` of a ReplicaSet as a number (`None` when missing or not one).
pub fn rs_revision(rs: &ReplicaSet) -> Option<i64> {
    rs_annotation(rs, annotation::REVISION).and_then(|text| text.parse().ok())
}

/// The `scale-down-deadline` annotation of a ReplicaSet.
pub fn rs_scale_down_deadline(rs: &ReplicaSet) -> ScaleDownDeadline {
    match rs_annotation(rs, annotation::SCALE_DOWN_DEADLINE) {
        None | Some("") => ScaleDownDeadline::Absent,
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|at| ScaleDownDeadline::At(at.with_timezone(&Utc)))
            .unwrap_or(ScaleDownDeadline::Unparseable),
    }
}

/// The creation time of an object as a chrono time (the epoch when missing, so such objects
/// sort first, as Go's zero time does).
pub fn creation_time(time: Option<&Time>) -> DateTime<Utc> {
    time.map(time_to_chrono).unwrap_or_default()
}

/// Converts an API timestamp to chrono.
pub fn time_to_chrono(time: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(time.0.as_second(), time.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

/// Converts a chrono time to an API timestamp, truncated to whole seconds: the API stores
/// `metav1.Time` with second precision, so anything finer would never compare equal to what is
/// read back.
pub fn chrono_to_time(time: DateTime<Utc>) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::from_second(time.timestamp())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// The pod-template hash Davy gives `spec.template` (FNV-32a of its JSON, spec §3.9).
///
/// The JSON is k8s-openapi's encoding, not Go's byte order, so hashes of ReplicaSets created by
/// upstream Argo Rollouts differ; those are adopted through [`find_new_rs`]'s template
/// comparison instead.
pub fn computed_pod_hash(rollout: &Rollout) -> String {
    let template = rollout
        .spec
        .template
        .as_ref()
        .and_then(|template| serde_json::to_value(template).ok())
        .unwrap_or(Value::Null);
    let collision = rollout
        .status
        .as_ref()
        .and_then(|status| status.collision_count);
    hash::pod_template_hash(&template, collision)
}

/// `status.currentStepHash` for the Rollout's steps (spec §2).
pub fn computed_steps_hash(rollout: &Rollout) -> String {
    let steps = canary_of(rollout)
        .and_then(|canary| canary.steps.as_ref())
        .and_then(|steps| serde_json::to_value(steps).ok())
        .unwrap_or(Value::Null);
    hash::steps_hash(&steps)
}

/// Indices of `replica_sets` oldest first (creation time, then name, as upstream sorts them).
pub fn by_creation(replica_sets: &[ReplicaSet]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..replica_sets.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |rs: &ReplicaSet| {
            (
                creation_time(rs.metadata.creation_timestamp.as_ref()),
                rs_name(rs).to_string(),
            )
        };
        key(&replica_sets[a]).cmp(&key(&replica_sets[b]))
    });
    order
}

/// The new ReplicaSet (spec §3.9): the oldest one whose hash label equals the computed hash,
/// else the oldest one whose pod template equals `spec.template` once the hash label and
/// injected ephemeral metadata are removed from both.
pub fn find_new_rs(rollout: &Rollout, replica_sets: &[ReplicaSet]) -> Option<usize> {
    let order = by_creation(replica_sets);
    let hash = computed_pod_hash(rollout);
    if let Some(index) = order
        .iter()
        .copied()
        .find(|&index| rs_hash(&replica_sets[index]) == hash)
    {
        return Some(index);
    }
    let desired = rollout.spec.template.as_ref()?;
    order.into_iter().find(|&index| {
        let rs = &replica_sets[index];
        rs.spec
            .as_ref()
            .and_then(|spec| spec.template.as_ref())
            .is_some_and(|template| templates_equal_ignoring_hash(rs, template, desired))
    })
}

/// Template equality of the §3.9 fallback: the RS template loses its hash label and the
/// labels/annotations recorded in `rollout.argoproj.io/ephemeral-metadata`; the desired one
/// loses its hash label (a user may not set it, but be lenient).
fn templates_equal_ignoring_hash(
    rs: &ReplicaSet,
    actual: &PodTemplateSpec,
    desired: &PodTemplateSpec,
) -> bool {
    let mut actual = actual.clone();
    let mut desired = desired.clone();
    let injected: InjectedMetadata = rs_annotation(rs, annotation::EPHEMERAL_METADATA)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    if let Some(metadata) = actual.metadata.as_mut() {
        strip_keys(&mut metadata.labels, &injected.labels);
        strip_keys(&mut metadata.annotations, &injected.annotations);
        strip_keys(
            &mut metadata.labels,
            &BTreeMap::from([(label::POD_TEMPLATE_HASH.to_string(), String::new())]),
        );
    }
    if let Some(metadata) = desired.metadata.as_mut()
        && let Some(labels) = metadata.labels.as_mut()
    {
        labels.remove(label::POD_TEMPLATE_HASH);
        if labels.is_empty() {
            metadata.labels = None;
        }
    }
    normalise_empty(&mut actual);
    normalise_empty(&mut desired);
    actual == desired
}

/// Labels and annotations the controller injected (the JSON of the ephemeral-metadata
/// annotation).
#[derive(Debug, Default, serde::Deserialize)]
struct InjectedMetadata {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn strip_keys(map: &mut Option<BTreeMap<String, String>>, keys: &BTreeMap<String, String>) {
    if let Some(values) = map.as_mut() {
        for key in keys.keys() {
            values.remove(key);
        }
        if values.is_empty() {
            *map = None;
        }
    }
}

/// Empty label/annotation maps and an empty metadata block mean the same as absent ones.
fn normalise_empty(template: &mut PodTemplateSpec) {
    if let Some(metadata) = template.metadata.as_mut() {
        if metadata.labels.as_ref().is_some_and(BTreeMap::is_empty) {
            metadata.labels = None;
        }
        if metadata
            .annotations
            .as_ref()
            .is_some_and(BTreeMap::is_empty)
        {
            metadata.annotations = None;
        }
        if *metadata == Default::default() {
            template.metadata = None;
        }
    }
}

/// The stable ReplicaSet: the one whose hash is `status.stableRS` (the new RS when it is).
pub fn find_stable_rs(
    stable_hash: &str,
    new_rs: Option<usize>,
    replica_sets: &[ReplicaSet],
) -> Option<usize> {
    if stable_hash.is_empty() {
        return None;
    }
    if let Some(index) = new_rs
        && rs_hash(&replica_sets[index]) == stable_hash
    {
        return Some(index);
    }
    by_creation(replica_sets)
        .into_iter()
        .find(|&index| rs_hash(&replica_sets[index]) == stable_hash)
}

/// The replica math's view of one ReplicaSet.
pub fn rs_counts(rs: &ReplicaSet) -> ReplicaSetCounts {
    ReplicaSetCounts {
        name: rs_name(rs).to_string(),
        spec_replicas: rs.spec.as_ref().and_then(|spec| spec.replicas),
        replicas: rs_status_replicas(rs),
        available_replicas: rs_available(rs),
    }
}

/// The other-RS scale-down's view of one ReplicaSet; `referenced` is decided by the caller.
pub fn other_rs(rs: &ReplicaSet, referenced: bool) -> OtherReplicaSet {
    OtherReplicaSet {
        counts: rs_counts(rs),
        revision: rs_revision(rs),
        referenced,
        scale_down_deadline: rs_scale_down_deadline(rs),
    }
}

/// The replica math's weights from `status.canary.weights`.
pub fn math_weights(weights: Option<&crate::api::TrafficWeights>) -> Option<WeightSplit> {
    weights.map(|weights| WeightSplit {
        canary: weights.canary.weight,
        stable: weights.stable.weight,
    })
}

/// Builds the replica math's parameters from the Rollout and the status fields it reads.
pub fn canary_params(rollout: &Rollout, status: &RolloutStatus) -> CanaryParams {
    let Some(canary) = canary_of(rollout) else {
        return CanaryParams {
            replicas: rollout.spec.replicas,
            ..CanaryParams::default()
        };
    };
    let steps = canary
        .steps
        .iter()
        .flatten()
        .map(|step| ScaleStep {
            set_weight: step.set_weight,
            set_canary_scale: step.set_canary_scale.as_ref().map(|scale| ScaleOverride {
                replicas: scale.replicas,
                weight: scale.weight,
                match_traffic_weight: scale.match_traffic_weight.unwrap_or(false),
            }),
        })
        .collect();
    let routing = canary.traffic_routing.as_ref();
    CanaryParams {
        replicas: rollout.spec.replicas,
        max_surge: canary.max_surge.as_ref().map(int_or_percent),
        max_unavailable: canary.max_unavailable.as_ref().map(int_or_percent),
        steps,
        traffic_routed: routing.is_some(),
        max_traffic_weight: routing.and_then(|routing| routing.max_traffic_weight),
        dynamic_stable_scale: canary.dynamic_stable_scale.unwrap_or(false),
        min_pods_per_replica_set: canary.min_pods_per_replica_set,
        abort_scale_down_delay_seconds: canary.abort_scale_down_delay_seconds,
        replica_progress_threshold: canary.replica_progress_threshold.as_ref().map(|threshold| {
            ProgressThreshold {
                kind: if threshold.type_ == progress_threshold_type::POD {
                    ProgressThresholdKind::Pod
                } else {
                    ProgressThresholdKind::Percent
                },
                value: threshold.value,
            }
        }),
        status: RolloutProgress {
            stable_rs: status.stable_rs.clone(),
            current_pod_hash: status.current_pod_hash.clone(),
            current_step_index: status.current_step_index,
            promote_full: status.promote_full,
            abort: status.abort,
        },
    }
}

pub(crate) fn int_or_percent(value: &IntOrStr) -> PodsOrPercent {
    match value {
        IntOrStr::Int(number) => {
            PodsOrPercent::Int(i32::try_from(*number).unwrap_or(if *number < 0 {
                i32::MIN
            } else {
                i32::MAX
            }))
        }
        IntOrStr::Str(text) => PodsOrPercent::String(text.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    fn rollout(image: &str) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "ns"},
            "spec": {
                "selector": {"matchLabels": {"app": "demo"}},
                "template": {"metadata": {"labels": {"app": "demo"}},
                             "spec": {"containers": [{"name": "c", "image": image}]}},
                "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
            }
        }))
        .expect("valid Rollout")
    }

    fn rs(name: &str, hash: &str, template_of: &Rollout, created: i64) -> ReplicaSet {
        let mut template = template_of.spec.template.clone().unwrap_or_default();
        if let Some(metadata) = template.metadata.as_mut() {
            metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(label::POD_TEMPLATE_HASH.to_string(), hash.to_string());
        }
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(BTreeMap::from([(
                    label::POD_TEMPLATE_HASH.to_string(),
                    hash.to_string(),
                )])),
                creation_timestamp: Some(chrono_to_time(
                    DateTime::from_timestamp(created, 0).unwrap_or_default(),
                )),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                template: Some(template),
                ..ReplicaSetSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn new_rs_is_found_by_hash_label_first() {
        let ro = rollout("blue");
        let hash = computed_pod_hash(&ro);
        let other = rollout("yellow");
        let sets = vec![
            rs("demo-old", "old", &other, 1),
            rs("demo-x", &hash, &other, 2),
        ];
        assert_eq!(find_new_rs(&ro, &sets), Some(1));
    }

    #[test]
    fn new_rs_falls_back_to_template_equality_without_the_hash_label() {
        let ro = rollout("blue");
        let sets = vec![
            rs("demo-a", "aaaa", &rollout("yellow"), 1),
            rs("demo-b", "bbbb", &ro, 2),
        ];
        assert_eq!(find_new_rs(&ro, &sets), Some(1));
        assert_eq!(find_new_rs(&rollout("green"), &sets), None);
    }

    #[test]
    fn template_equality_ignores_injected_ephemeral_metadata() {
        let ro = rollout("blue");
        let mut set = rs("demo-b", "bbbb", &ro, 2);
        if let Some(metadata) = set
            .spec
            .as_mut()
            .and_then(|spec| spec.template.as_mut())
            .and_then(|template| template.metadata.as_mut())
        {
            metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert("role".to_string(), "canary".to_string());
        }
        assert_eq!(find_new_rs(&ro, std::slice::from_ref(&set)), None);
        set.metadata.annotations = Some(BTreeMap::from([(
            annotation::EPHEMERAL_METADATA.to_string(),
            r#"{"labels":{"role":"canary"}}"#.to_string(),
        )]));
        assert_eq!(find_new_rs(&ro, &[set]), Some(0));
    }

    #[test]
    fn stable_rs_prefers_the_new_rs_when_hashes_match() {
        let ro = rollout("blue");
        let sets = vec![rs("a", "h1", &ro, 1), rs("b", "h2", &ro, 2)];
        assert_eq!(find_stable_rs("h2", Some(1), &sets), Some(1));
        assert_eq!(find_stable_rs("h1", Some(1), &sets), Some(0));
        assert_eq!(find_stable_rs("", Some(1), &sets), None);
        assert_eq!(find_stable_rs("zz", None, &sets), None);
    }

    #[test]
    fn steps_hash_changes_with_the_steps() {
        let a = rollout("blue");
        let mut b = rollout("blue");
        if let Some(canary) = b.spec.strategy.canary.as_mut() {
            canary.steps = Some(vec![]);
        }
        assert_ne!(computed_steps_hash(&a), computed_steps_hash(&b));
        assert_eq!(
            computed_steps_hash(&a),
            computed_steps_hash(&rollout("green"))
        );
    }

    #[test]
    fn chrono_time_round_trip_truncates_to_seconds() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T12:00:00.750Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let time = chrono_to_time(at);
        assert_eq!(
            time_to_chrono(&time).to_rfc3339(),
            "2026-03-01T12:00:00+00:00"
        );
    }
}
