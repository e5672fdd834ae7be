//! Pure decisions of the rollout verbs: which merge patch each one sends (upstream's exact
//! bodies, spec §8), how `set image` rewrites containers, and how `CONTAINER=IMAGE` and
//! `--in` are read. No I/O; the executors in `super` send what these return.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::api::Rollout;
use crate::api::phase::AnalysisPhase;

use super::super::kube::CliError;

/// The patches of one `promote`, as upstream's `getPatches` returns them: `status` goes to the
/// status subresource; when that answers 404 (an old CRD without the subresource) `unified`
/// replaces `spec` and is sent to the main resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromotePatches {
    /// Merge patch of the main resource (`spec.paused`).
    pub spec: Option<Value>,
    /// Merge patch of the status subresource.
    pub status: Option<Value>,
    /// Spec and status in one body, for clusters without the status subresource.
    pub unified: Option<Value>,
}

/// Upstream `GetCurrentCanaryStep`'s index: none without canary steps, else
/// `status.currentStepIndex` (0 when unset).
fn current_step_index(ro: &Rollout) -> Option<(i32, i32)> {
    let steps = ro.spec.strategy.canary.as_ref()?.steps.as_ref()?;
    if steps.is_empty() {
        return None;
    }
    let len = i32::try_from(steps.len()).unwrap_or(i32::MAX);
    let index = ro
        .status
        .as_ref()
        .and_then(|s| s.current_step_index)
        .unwrap_or(0);
    Some((index, len))
}

/// The next step index, capped at `len(steps)` as upstream does.
fn next_step_index(ro: &Rollout) -> Option<i32> {
    current_step_index(ro).map(|(i, len)| if i < len { i + 1 } else { i })
}

/// Upstream `isInconclusive`: a canary whose step analysis ended Inconclusive.
fn step_analysis_inconclusive(ro: &Rollout) -> bool {
    ro.spec.strategy.canary.is_some()
        && ro
            .status
            .as_ref()
            .and_then(|s| s.canary.current_step_analysis_run_status.as_ref())
            .is_some_and(|a| a.status == AnalysisPhase::Inconclusive)
}

/// `promote [--full]` (upstream `getPatches` without the deprecated skip flags).
///
/// * `--full`: `{"status":{"promoteFull":true}}` unless the rollout is already at its stable
///   hash (then nothing is sent); no unified fallback, as upstream.
/// * default: unpause the spec when paused; on the status, an Inconclusive step-analysis pause
///   clears the pause conditions and `controllerPause` and moves to the next step; other pause
///   conditions are just cleared; a canary without pause conditions skips its current step.
pub fn promote_patches(ro: &Rollout, full: bool) -> PromotePatches {
    let status = ro.status.clone().unwrap_or_default();
    if full {
        return PromotePatches {
            status: (status.current_pod_hash != status.stable_rs)
                .then(|| json!({"status": {"promoteFull": true}})),
            ..PromotePatches::default()
        };
    }
    let mut patches = PromotePatches {
        unified: Some(json!({"spec": {"paused": false}, "status": {"pauseConditions": null}})),
        ..PromotePatches::default()
    };
    if ro.spec.paused == Some(true) {
        patches.spec = Some(json!({"spec": {"paused": false}}));
    }
    let paused = !status.pause_conditions.is_empty();
    if step_analysis_inconclusive(ro) && paused && status.controller_pause {
        if let Some(next) = next_step_index(ro) {
            patches.status = Some(json!({"status": {
                "pauseConditions": null, "controllerPause": false, "currentStepIndex": next
            }}));
        }
    } else if paused {
        patches.status = Some(json!({"status": {"pauseConditions": null}}));
    } else if ro.spec.strategy.canary.is_some()
        && let Some(next) = next_step_index(ro)
    {
        patches.status =
            Some(json!({"status": {"pauseConditions": null, "currentStepIndex": next}}));
        patches.unified = Some(json!({
            "spec": {"paused": false},
            "status": {"pauseConditions": null, "currentStepIndex": next}
        }));
    }
    patches
}

/// `abort`: sent to the status subresource, then to the main resource on 404.
pub fn abort_patch() -> Value {
    json!({"status": {"abort": true}})
}

/// `retry rollout`: sent to the status subresource, then to the main resource on 404.
pub fn retry_rollout_patch() -> Value {
    json!({"status": {"abort": false}})
}

/// `retry experiment`: the whole status is dropped (main resource), so the experiment restarts.
pub fn retry_experiment_patch() -> Value {
    json!({"status": null})
}

/// `pause`.
pub fn pause_patch() -> Value {
    json!({"spec": {"paused": true}})
}

/// `terminate analysisrun|experiment`.
pub fn terminate_patch() -> Value {
    json!({"spec": {"terminate": true}})
}

/// `restart [--in D]`: `spec.restartAt` = now + D in RFC 3339 UTC, whole seconds (Go's
/// `time.RFC3339`).
pub fn restart_patch(now: DateTime<Utc>, delay: std::time::Duration) -> Value {
    // An absurd `--in` saturates at the latest representable time instead of overflowing.
    let at = chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    json!({"spec": {"restartAt": at.to_rfc3339_opts(SecondsFormat::Secs, true)}})
}

/// Reads `CONTAINER=IMAGE`; like upstream, exactly one `=` (so `a=b=c` is refused).
pub fn parse_container_image(arg: &str) -> Result<(String, String), CliError> {
    let parts: Vec<&str> = arg.split('=').collect();
    match parts.as_slice() {
        [container, image] => Ok(((*container).to_string(), (*image).to_string())),
        _ => Err(CliError::Usage(format!(
            "expected CONTAINER=IMAGE (e.g. www=image:v2), got {arg:?}"
        ))),
    }
}

/// `set image` on a Rollout or Deployment object (as JSON, so fields this version does not know
/// survive the update, as upstream's dynamic client ensures): sets `image` of every container
/// named `container` (or of all with `*`) among `initContainers`, `containers` and
/// `ephemeralContainers` of `spec.template.spec`.
pub fn set_image(obj: &mut Value, container: &str, image: &str) -> Result<(), CliError> {
    let mut found = false;
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(items) = obj
            .pointer_mut(&format!("/spec/template/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for item in items.iter_mut() {
            let matches =
                container == "*" || item.get("name").and_then(Value::as_str) == Some(container);
            if matches && let Some(map) = item.as_object_mut() {
                map.insert("image".into(), Value::String(image.to_string()));
                found = true;
            }
        }
    }
    if found {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "unable to find container named \"{container}\""
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(yaml: &str) -> Rollout {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const CANARY: &str = "
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  strategy: {canary: {steps: [{setWeight: 20}, {pause: {}}, {setWeight: 60}]}}
";

    #[test]
    fn promote_paused_step_clears_conditions_only() {
        let mut ro = rollout(CANARY);
        ro.spec.paused = Some(true);
        ro.status = Some(serde_json::from_value(json!({
            "currentStepIndex": 1,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}]
        })).unwrap());
        let p = promote_patches(&ro, false);
        assert_eq!(p.spec, Some(json!({"spec": {"paused": false}})));
        assert_eq!(p.status, Some(json!({"status": {"pauseConditions": null}})));
        assert_eq!(
            p.unified,
            Some(json!({"spec": {"paused": false}, "status": {"pauseConditions": null}}))
        );
    }

    #[test]
    fn promote_running_canary_skips_the_step() {
        let mut ro = rollout(CANARY);
        ro.status = Some(serde_json::from_value(json!({"currentStepIndex": 2})).unwrap());
        let p = promote_patches(&ro, false);
        assert_eq!(p.spec, None);
        assert_eq!(
            p.status,
            Some(json!({"status": {"pauseConditions": null, "currentStepIndex": 3}}))
        );
        // Past the last step the index stays at len(steps).
        ro.status = Some(serde_json::from_value(json!({"currentStepIndex": 3})).unwrap());
        assert_eq!(
            promote_patches(&ro, false).status,
            Some(json!({"status": {"pauseConditions": null, "currentStepIndex": 3}}))
        );
        // No index yet reads as 0.
        ro.status = None;
        assert_eq!(
            promote_patches(&ro, false).unified,
            Some(
                json!({"spec": {"paused": false}, "status": {"pauseConditions": null, "currentStepIndex": 1}})
            )
        );
    }

    #[test]
    fn promote_inconclusive_analysis_resumes_the_controller() {
        let mut ro = rollout(CANARY);
        ro.status = Some(serde_json::from_value(json!({
            "currentStepIndex": 0,
            "controllerPause": true,
            "pauseConditions": [{"reason": "InconclusiveAnalysisRun", "startTime": "2024-01-01T00:00:00Z"}],
            "canary": {"currentStepAnalysisRunStatus": {"name": "a", "status": "Inconclusive"}}
        })).unwrap());
        assert_eq!(
            promote_patches(&ro, false).status,
            Some(
                json!({"status": {"pauseConditions": null, "controllerPause": false, "currentStepIndex": 1}})
            )
        );
    }

    #[test]
    fn promote_blue_green_without_pause_sends_no_status() {
        let ro = rollout(
            "
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: r}
spec: {strategy: {blueGreen: {activeService: a}}}
",
        );
        let p = promote_patches(&ro, false);
        assert_eq!((p.spec, p.status), (None, None));
    }

    #[test]
    fn promote_full_only_when_not_stable() {
        let mut ro = rollout(CANARY);
        ro.status = Some(
            serde_json::from_value(json!({"currentPodHash": "new", "stableRS": "old"})).unwrap(),
        );
        assert_eq!(
            promote_patches(&ro, true),
            PromotePatches {
                status: Some(json!({"status": {"promoteFull": true}})),
                ..PromotePatches::default()
            }
        );
        ro.status = Some(
            serde_json::from_value(json!({"currentPodHash": "old", "stableRS": "old"})).unwrap(),
        );
        assert_eq!(promote_patches(&ro, true), PromotePatches::default());
    }

    #[test]
    fn restart_at_is_rfc3339_utc_seconds() {
        let now: DateTime<Utc> = "2024-05-01T10:00:00.750Z".parse().unwrap();
        assert_eq!(
            restart_patch(now, std::time::Duration::from_secs(90)),
            json!({"spec": {"restartAt": "2024-05-01T10:01:30Z"}})
        );
    }

    #[test]
    fn container_image_needs_exactly_one_equals() {
        assert_eq!(
            parse_container_image("www=nginx:1.2").unwrap(),
            ("www".to_string(), "nginx:1.2".to_string())
        );
        assert_eq!(
            parse_container_image("nginx").unwrap_err().to_string(),
            "expected CONTAINER=IMAGE (e.g. www=image:v2), got \"nginx\""
        );
        assert!(parse_container_image("a=b=c").is_err());
    }

    #[test]
    fn set_image_matches_every_container_list() {
        let mut obj = json!({"spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "www", "image": "a:1"}, {"name": "side", "image": "s:1"}],
            "ephemeralContainers": [{"name": "dbg", "image": "d:1"}]
        }}}, "unknownField": 1});
        set_image(&mut obj, "www", "a:2").unwrap();
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            "a:2"
        );
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][1]["image"],
            "s:1"
        );
        set_image(&mut obj, "*", "x:9").unwrap();
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for c in obj["spec"]["template"]["spec"][list].as_array().unwrap() {
                assert_eq!(c["image"], "x:9");
            }
        }
        assert_eq!(obj["unknownField"], 1);
        assert_eq!(
            set_image(&mut obj, "nope", "y").unwrap_err().to_string(),
            "unable to find container named \"nope\""
        );
    }
}
