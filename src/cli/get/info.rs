//! The view model behind `get rollout` / `get experiment`: gathers a Rollout's ReplicaSets, Pods,
//! Experiments and AnalysisRuns into [`RolloutInfo`] exactly as upstream's `info` package does
//! (revisions, RS health, stable/canary/active/preview/ping/pong tags, kubectl pod status).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::icon;
pub use super::pod::{pod_icon, pod_info};
use crate::api::consts::{annotation, label, message};
use crate::api::{AnalysisPhase, AnalysisRun, Experiment, Rollout, RolloutPhase};

/// Everything a rollout's tree can show, listed from the API (any order; owners are matched by uid).
#[derive(Clone, Copy, Debug, Default)]
pub struct Objects<'a> {
    /// ReplicaSets of the namespace.
    pub replica_sets: &'a [ReplicaSet],
    /// Pods of the namespace.
    pub pods: &'a [Pod],
    /// Experiments of the namespace.
    pub experiments: &'a [Experiment],
    /// AnalysisRuns of the namespace.
    pub analysis_runs: &'a [AnalysisRun],
}

/// One Rollout with its owned objects, ready to print.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RolloutInfo {
    /// Rollout name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Creation time (AGE column).
    pub created: Option<Timestamp>,
    /// Phase string (Healthy, Progressing, Paused, Degraded).
    pub status: String,
    /// Phase message, possibly empty.
    pub message: String,
    /// Status icon.
    pub icon: &'static str,
    /// `Canary`, `BlueGreen` or empty.
    pub strategy: String,
    /// `i/n` or empty.
    pub step: String,
    /// Desired canary weight.
    pub set_weight: String,
    /// Weight actually served by the canary.
    pub actual_weight: String,
    /// `spec.replicas` (default 1).
    pub desired: i32,
    /// `status.replicas`.
    pub current: i32,
    /// `status.updatedReplicas`.
    pub updated: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
    /// `status.availableReplicas`.
    pub available: i32,
    /// Owned ReplicaSets, newest revision first.
    pub replica_sets: Vec<ReplicaSetInfo>,
    /// Owned Experiments, newest revision first.
    pub experiments: Vec<ExperimentInfo>,
    /// Owned AnalysisRuns, newest revision first.
    pub analysis_runs: Vec<AnalysisRunInfo>,
}

/// One ReplicaSet row and its pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaSetInfo {
    /// Name.
    pub name: String,
    /// UID (pods point at it).
    pub uid: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Healthy, Progressing, ScaledDown or ReplicaFailure.
    pub status: &'static str,
    /// Status icon.
    pub icon: &'static str,
    /// `rollout.argoproj.io/revision` (0 when absent or not a number).
    pub revision: i64,
    /// Experiment template name (annotation), empty otherwise.
    pub template: String,
    /// `scale-down-deadline` annotation, empty when absent.
    pub scale_down_deadline: String,
    /// Tags.
    pub stable: bool,
    /// Tags.
    pub canary: bool,
    /// Tags.
    pub active: bool,
    /// Tags.
    pub preview: bool,
    /// Tags.
    pub ping: bool,
    /// Tags.
    pub pong: bool,
    /// `status.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
    /// Container images of the pod template.
    pub images: Vec<String>,
    /// Owned pods, by name.
    pub pods: Vec<PodInfo>,
}

/// One Pod row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodInfo {
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// kubectl-style status (Running, CrashLoopBackOff, Init:0/1, …).
    pub status: String,
    /// Status icon.
    pub icon: &'static str,
    /// `ready/total` containers.
    pub ready: String,
    /// Restarts summed over the relevant containers.
    pub restarts: i32,
}

/// One Experiment row and its children.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExperimentInfo {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Phase.
    pub status: String,
    /// Message.
    pub message: String,
    /// Phase icon.
    pub icon: &'static str,
    /// Revision annotation.
    pub revision: i64,
    /// Owned ReplicaSets.
    pub replica_sets: Vec<ReplicaSetInfo>,
    /// Owned AnalysisRuns.
    pub analysis_runs: Vec<AnalysisRunInfo>,
}

/// One AnalysisRun row and its job rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnalysisRunInfo {
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Phase.
    pub status: String,
    /// Phase icon.
    pub icon: &'static str,
    /// Revision annotation.
    pub revision: i64,
    /// Measurement counters summed over metric results.
    pub successful: i32,
    /// See `successful`.
    pub failed: i32,
    /// See `successful`.
    pub inconclusive: i32,
    /// See `successful`.
    pub error: i32,
    /// Jobs named by measurement metadata, in measurement order.
    pub jobs: Vec<JobInfo>,
}

/// One Job row (from an AnalysisRun measurement's `job-name` metadata).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobInfo {
    /// Job name.
    pub name: String,
    /// Measurement start (used as the job's age).
    pub created: Option<Timestamp>,
    /// Measurement phase.
    pub status: String,
    /// Phase icon.
    pub icon: &'static str,
}

pub(super) fn created(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.creation_timestamp.as_ref().map(|t| t.0)
}

fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .as_deref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_uid(meta) == Some(uid)
}

fn annotation_of<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn revision(meta: &ObjectMeta) -> i64 {
    annotation_of(meta, annotation::REVISION)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Icon of a rollout phase.
pub fn rollout_icon(status: &str) -> &'static str {
    match status {
        "Progressing" => icon::PROGRESSING,
        "Paused" => icon::PAUSED,
        "Healthy" => icon::OK,
        "Degraded" => icon::BAD,
        "Error" | "InvalidSpec" => icon::WARNING,
        "Unknown" => icon::UNKNOWN,
        _ => " ",
    }
}

/// Icon of an analysis/experiment phase.
pub fn analysis_icon(phase: &str) -> &'static str {
    match phase {
        "Successful" => icon::OK,
        "Inconclusive" => icon::UNKNOWN,
        "Failed" => icon::BAD,
        "Error" => icon::WARNING,
        "Running" => icon::PROGRESSING,
        "Pending" => icon::WAITING,
        _ => " ",
    }
}

/// Client-side phase and message (upstream `rolloututil.GetRolloutPhase`): spec not yet
/// observed or an unpause in flight win over `status.phase`; without `status.phase` (old
/// controllers) the phase is computed from conditions and replica counts.
pub fn rollout_phase(ro: &Rollout) -> (String, String) {
    let status = ro.status.clone().unwrap_or_default();
    let generation = ro.metadata.generation.unwrap_or(0);
    if let Ok(observed) = status.observed_generation.parse::<i64>()
        && observed < generation
    {
        return (
            RolloutPhase::Progressing.to_string(),
            message::PHASE_WAITING_FOR_SPEC_OBSERVED.to_string(),
        );
    }
    if status.controller_pause && status.pause_conditions.is_empty() {
        return (
            RolloutPhase::Progressing.to_string(),
            message::PHASE_WAITING_FOR_UNPAUSE.to_string(),
        );
    }
    if let Some(phase) = &status.phase
        && !phase.as_str().is_empty()
    {
        return (phase.to_string(), status.message.clone());
    }
    calculate_phase(ro)
}

fn progressing(msg: &str) -> (String, String) {
    (RolloutPhase::Progressing.to_string(), msg.to_string())
}

/// Upstream `CalculateRolloutPhase` for rollouts whose controller wrote no `status.phase`.
fn calculate_phase(ro: &Rollout) -> (String, String) {
    let status = ro.status.clone().unwrap_or_default();
    let degraded = RolloutPhase::Degraded.to_string();
    for cond in &status.conditions {
        if cond.type_ == "InvalidSpec" {
            return (degraded, format!("InvalidSpec: {}", cond.message));
        }
        if cond.reason == "RolloutAborted" || cond.reason == "ProgressDeadlineExceeded" {
            return (degraded, format!("{}: {}", cond.reason, cond.message));
        }
    }
    let paused = RolloutPhase::Paused.to_string();
    if ro.spec.paused == Some(true) {
        return (paused, message::PHASE_MANUALLY_PAUSED.to_string());
    }
    if let Some(pc) = status.pause_conditions.first() {
        return (paused, pc.reason.to_string());
    }
    if status.updated_replicas < ro.spec.effective_replicas() {
        return progressing(message::PHASE_MORE_REPLICAS_NEED_UPDATE);
    }
    if status.available_replicas < status.updated_replicas {
        return progressing(message::PHASE_UPDATED_BECOMING_AVAILABLE);
    }
    if ro.spec.strategy.blue_green.is_some() {
        let active = &status.blue_green.active_selector;
        if active.is_empty() || *active != status.current_pod_hash {
            return progressing(message::PHASE_ACTIVE_SERVICE_CUTOVER_PENDING);
        }
        if status.stable_rs.is_empty() || status.stable_rs != status.current_pod_hash {
            return progressing(message::PHASE_WAITING_FOR_ANALYSIS);
        }
    } else if let Some(canary) = &ro.spec.strategy.canary {
        if canary.traffic_routing.is_none() && status.replicas > status.updated_replicas {
            return progressing(message::PHASE_OLD_REPLICAS_PENDING_TERMINATION);
        }
        if status.stable_rs.is_empty() || status.stable_rs != status.current_pod_hash {
            return progressing(message::PHASE_WAITING_FOR_STEPS);
        }
    }
    (RolloutPhase::Healthy.to_string(), String::new())
}

/// Index of the current canary step, `None` when there are no steps or all are done.
pub fn current_step_index(ro: &Rollout) -> Option<usize> {
    let steps = ro
        .spec
        .strategy
        .canary
        .as_ref()?
        .steps
        .as_deref()
        .unwrap_or(&[]);
    let idx = ro
        .status
        .as_ref()
        .and_then(|s| s.current_step_index)
        .unwrap_or(0);
    let idx = usize::try_from(idx).ok()?;
    (idx < steps.len()).then_some(idx)
}

/// The weight the current step asks for (upstream `GetCurrentSetWeight`): 0 when aborted,
/// the maximum weight when all steps are done, else the last `setWeight` at or before the step.
pub fn current_set_weight(ro: &Rollout) -> i32 {
    if ro.status.as_ref().is_some_and(|s| s.abort) {
        return 0;
    }
    let Some(idx) = current_step_index(ro) else {
        return ro.spec.max_traffic_weight();
    };
    let steps = ro
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.steps.as_deref())
        .unwrap_or(&[]);
    steps[..=idx]
        .iter()
        .rev()
        .find_map(|s| s.set_weight)
        .unwrap_or(0)
}

/// Builds the view model of `ro` from the objects around it.
pub fn rollout_info(ro: &Rollout, objs: Objects<'_>) -> RolloutInfo {
    let status = ro.status.clone().unwrap_or_default();
    let uid = ro.metadata.uid.clone().unwrap_or_default();
    let replica_sets = replica_set_infos(&uid, Some(ro), objs.replica_sets, objs.pods);
    let mut experiments: Vec<ExperimentInfo> = objs
        .experiments
        .iter()
        .filter(|e| owned_by(&e.metadata, &uid))
        .map(|e| experiment_info(e, objs))
        .collect();
    experiments.sort_by_key(|e| std::cmp::Reverse(e.revision));
    let analysis_runs = analysis_run_infos(&uid, objs.analysis_runs);

    let (phase, message) = rollout_phase(ro);
    let mut info = RolloutInfo {
        name: ro.metadata.name.clone().unwrap_or_default(),
        namespace: ro.metadata.namespace.clone().unwrap_or_default(),
        created: created(&ro.metadata),
        icon: rollout_icon(&phase),
        status: phase,
        message,
        desired: ro.spec.effective_replicas(),
        current: status.replicas,
        updated: status.updated_replicas,
        ready: status.ready_replicas,
        available: status.available_replicas,
        ..RolloutInfo::default()
    };
    if let Some(canary) = &ro.spec.strategy.canary {
        info.strategy = "Canary".to_string();
        let steps = canary.steps.as_deref().unwrap_or(&[]);
        if let Some(i) = status.current_step_index
            && !steps.is_empty()
        {
            info.step = format!("{i}/{}", steps.len());
        }
        let set_weight = current_set_weight(ro);
        info.set_weight = set_weight.to_string();
        info.actual_weight = if current_step_index(ro).is_none() {
            ro.spec.max_traffic_weight().to_string()
        } else if status.available_replicas > 0 {
            if canary.traffic_routing.is_none() {
                let max = ro.spec.max_traffic_weight();
                replica_sets
                    .iter()
                    .rfind(|rs| rs.canary)
                    .map_or("0".to_string(), |rs| {
                        (rs.available * max / status.available_replicas).to_string()
                    })
            } else {
                status
                    .canary
                    .weights
                    .as_ref()
                    .map_or(set_weight, |w| w.canary.weight)
                    .to_string()
            }
        } else {
            "0".to_string()
        };
    } else if ro.spec.strategy.blue_green.is_some() {
        info.strategy = "BlueGreen".to_string();
    }
    info.replica_sets = replica_sets;
    info.experiments = experiments;
    info.analysis_runs = analysis_runs;
    info
}

/// Builds the view model of an Experiment with its ReplicaSets, pods and AnalysisRuns.
pub fn experiment_info(exp: &Experiment, objs: Objects<'_>) -> ExperimentInfo {
    let uid = exp.metadata.uid.clone().unwrap_or_default();
    let phase = exp
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .map(|p| p.to_string())
        .unwrap_or_default();
    ExperimentInfo {
        name: exp.metadata.name.clone().unwrap_or_default(),
        namespace: exp.metadata.namespace.clone().unwrap_or_default(),
        created: created(&exp.metadata),
        icon: analysis_icon(&phase),
        status: phase,
        message: exp
            .status
            .as_ref()
            .map(|s| s.message.clone())
            .unwrap_or_default(),
        revision: revision(&exp.metadata),
        replica_sets: replica_set_infos(&uid, None, objs.replica_sets, objs.pods),
        analysis_runs: analysis_run_infos(&uid, objs.analysis_runs),
    }
}

/// Health of a ReplicaSet as upstream shows it.
fn replica_set_health(rs: &ReplicaSet) -> &'static str {
    let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = rs.status.clone().unwrap_or_default();
    let failed = status
        .conditions
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .any(|c| c.type_ == "ReplicaFailure" && c.status == "True");
    if failed {
        "ReplicaFailure"
    } else if desired == 0 {
        "ScaledDown"
    } else if status.available_replicas.unwrap_or(0) < desired {
        "Progressing"
    } else {
        "Healthy"
    }
}

fn replica_set_icon(status: &str) -> &'static str {
    match status {
        "Progressing" => icon::PROGRESSING,
        "Healthy" => icon::OK,
        "ReplicaFailure" => icon::BAD,
        "ScaledDown" => icon::NEUTRAL,
        _ => " ",
    }
}

/// ReplicaSets controlled by `owner_uid`, newest revision first (ties keep name order, as the
/// upstream sort that discards its timestamp comparison does), each with its pods by name.
fn replica_set_infos(
    owner_uid: &str,
    ro: Option<&Rollout>,
    all: &[ReplicaSet],
    pods: &[Pod],
) -> Vec<ReplicaSetInfo> {
    let mut sorted: Vec<&ReplicaSet> = all
        .iter()
        .filter(|rs| owned_by(&rs.metadata, owner_uid))
        .collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut infos: Vec<ReplicaSetInfo> = sorted
        .into_iter()
        .map(|rs| replica_set_info(rs, ro, pods))
        .collect();
    infos.sort_by_key(|i| std::cmp::Reverse(i.revision));
    infos
}

fn replica_set_info(rs: &ReplicaSet, ro: Option<&Rollout>, pods: &[Pod]) -> ReplicaSetInfo {
    let meta = &rs.metadata;
    let status = replica_set_health(rs);
    let mut info = ReplicaSetInfo {
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        created: created(meta),
        status,
        icon: replica_set_icon(status),
        revision: revision(meta),
        template: annotation_of(
            meta,
            crate::api::consts::annotation::EXPERIMENT_TEMPLATE_NAME,
        )
        .unwrap_or_default()
        .to_string(),
        scale_down_deadline: annotation_of(meta, annotation::SCALE_DOWN_DEADLINE)
            .unwrap_or_default()
            .to_string(),
        replicas: rs.status.as_ref().map_or(0, |s| s.replicas),
        available: rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0),
        ..ReplicaSetInfo::default()
    };
    if let Some(ro) = ro {
        let hash = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(label::POD_TEMPLATE_HASH))
            .cloned()
            .unwrap_or_default();
        let st = ro.status.clone().unwrap_or_default();
        if let Some(canary) = &ro.spec.strategy.canary {
            let stable_is_ping = st.canary.stable_ping_pong == "ping";
            let ping_pong = canary.ping_pong.is_some();
            if st.stable_rs == hash {
                info.stable = true;
                info.ping = ping_pong && stable_is_ping;
                info.pong = ping_pong && !stable_is_ping;
            } else if st.current_pod_hash == hash {
                info.canary = true;
                info.ping = ping_pong && !stable_is_ping;
                info.pong = ping_pong && stable_is_ping;
            }
        }
        if ro.spec.strategy.blue_green.is_some() {
            if st.stable_rs == hash {
                info.stable = true;
            }
            if st.blue_green.active_selector == hash {
                info.active = true;
            } else if st.blue_green.preview_selector == hash {
                info.preview = true;
            }
        }
    }
    info.images = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut owned: Vec<PodInfo> = pods
        .iter()
        .filter(|p| !info.uid.is_empty() && owned_by(&p.metadata, &info.uid))
        .map(pod_info)
        .collect();
    owned.sort_by(|a, b| a.name.cmp(&b.name));
    info.pods = owned;
    info
}

/// AnalysisRuns controlled by `owner_uid`, newest revision first.
fn analysis_run_infos(owner_uid: &str, all: &[AnalysisRun]) -> Vec<AnalysisRunInfo> {
    let mut infos: Vec<AnalysisRunInfo> = all
        .iter()
        .filter(|r| owned_by(&r.metadata, owner_uid))
        .map(analysis_run_info)
        .collect();
    infos.sort_by_key(|i| std::cmp::Reverse(i.revision));
    infos
}

fn analysis_run_info(run: &AnalysisRun) -> AnalysisRunInfo {
    let st = run.status.clone().unwrap_or_default();
    let phase = st.phase.clone().unwrap_or(AnalysisPhase::Pending);
    let phase = if run.status.as_ref().and_then(|s| s.phase.as_ref()).is_none() {
        String::new()
    } else {
        phase.to_string()
    };
    let mut info = AnalysisRunInfo {
        name: run.metadata.name.clone().unwrap_or_default(),
        created: created(&run.metadata),
        icon: analysis_icon(&phase),
        status: phase,
        revision: revision(&run.metadata),
        ..AnalysisRunInfo::default()
    };
    for mr in &st.metric_results {
        info.successful += mr.successful;
        info.failed += mr.failed;
        info.inconclusive += mr.inconclusive;
        info.error += mr.error;
        for m in &mr.measurements {
            if let Some(job) = m.metadata.get(JOB_NAME_KEY) {
                let phase = m.phase.to_string();
                info.jobs.push(JobInfo {
                    name: job.clone(),
                    created: m.started_at.as_ref().map(|t| t.0),
                    icon: analysis_icon(&phase),
                    status: phase,
                });
            }
        }
    }
    info
}

/// Measurement metadata key naming the Job a job metric created.
const JOB_NAME_KEY: &str = "job-name";

/// Images with their tags, merged across ReplicaSets and sorted by image (upstream `Images`).
pub fn images(info: &RolloutInfo) -> Vec<(String, Vec<String>)> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rs in info.replica_sets.iter().filter(|rs| rs.replicas > 0) {
        let tags = rs_image_tags(rs);
        for image in &rs.images {
            merge(&mut out, image, &tags);
        }
    }
    for exp in &info.experiments {
        for (image, tags) in experiment_images(exp) {
            merge(&mut out, &image, &tags);
        }
    }
    out.into_iter().collect()
}

/// Images of an experiment's running ReplicaSets, tagged `Σ:<template>` when the ReplicaSet
/// carries the template-name annotation.
pub fn experiment_images(exp: &ExperimentInfo) -> Vec<(String, Vec<String>)> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rs in exp.replica_sets.iter().filter(|rs| rs.replicas > 0) {
        let tags = if rs.template.is_empty() {
            vec![]
        } else {
            vec![format!("{}:{}", icon::EXPERIMENT, rs.template)]
        };
        for image in &rs.images {
            merge(&mut out, image, &tags);
        }
    }
    out.into_iter().collect()
}

fn rs_image_tags(rs: &ReplicaSetInfo) -> Vec<String> {
    use super::tag;
    [
        (rs.canary, tag::CANARY),
        (rs.stable, tag::STABLE),
        (rs.active, tag::ACTIVE),
        (rs.preview, tag::PREVIEW),
        (rs.ping, tag::PING),
        (rs.pong, tag::PONG),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, t)| t.to_string())
    .collect()
}

fn merge(out: &mut BTreeMap<String, Vec<String>>, image: &str, tags: &[String]) {
    let entry = out.entry(image.to_string()).or_default();
    for t in tags {
        if !entry.contains(t) {
            entry.push(t.clone());
        }
    }
}

/// All revisions present in the tree, newest first.
pub fn revisions(info: &RolloutInfo) -> Vec<i64> {
    let mut revs: Vec<i64> = info
        .replica_sets
        .iter()
        .map(|r| r.revision)
        .chain(info.experiments.iter().map(|e| e.revision))
        .chain(info.analysis_runs.iter().map(|a| a.revision))
        .collect();
    revs.sort_unstable_by(|a, b| b.cmp(a));
    revs.dedup();
    revs
}
