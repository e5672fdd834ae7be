//! Canary steps (spec §1.3, §3.6): the current step, how each kind completes, pause steps and
//! their expiry, background analysis' starting step, and the managed routes the steps ask for.

use chrono::{DateTime, Duration, Utc};

use super::observed::time_to_chrono;
use crate::api::{
    CanaryStep, CanaryStrategy, IntOrStr, PauseReason, RolloutPause, RolloutStatus, SetHeaderRoute,
    SetMirrorRoute,
};

/// The steps of a canary (empty when none).
pub fn steps_of(canary: &CanaryStrategy) -> &[CanaryStep] {
    canary.steps.as_deref().unwrap_or(&[])
}

/// Upstream `GetCurrentCanaryStep`: no index without steps; the index is
/// `status.currentStepIndex` (0 when unset); no step once all were executed.
pub fn current_step<'a>(
    steps: &'a [CanaryStep],
    status: &RolloutStatus,
) -> (Option<&'a CanaryStep>, Option<i32>) {
    if steps.is_empty() {
        return (None, None);
    }
    let index = status.current_step_index.unwrap_or(0);
    let step = usize::try_from(index).ok().and_then(|i| steps.get(i));
    (step, Some(index))
}

/// The step count as the status stores indices.
pub fn step_count(steps: &[CanaryStep]) -> i32 {
    i32::try_from(steps.len()).unwrap_or(i32::MAX)
}

/// Upstream `CanaryStepString`, used in `RolloutStepCompleted` events.
pub fn step_string(step: &CanaryStep) -> String {
    if let Some(weight) = step.set_weight {
        return format!("setWeight: {weight}");
    }
    if let Some(pause) = step.pause.as_ref() {
        return match pause.duration.as_ref() {
            Some(IntOrStr::Int(seconds)) => format!("pause: {seconds}"),
            Some(IntOrStr::Str(text)) => format!("pause: {text}"),
            None => "pause".to_string(),
        };
    }
    let kind = if step.experiment.is_some() {
        "experiment"
    } else if step.analysis.is_some() {
        "analysis"
    } else if step.set_canary_scale.is_some() {
        "setCanaryScale"
    } else if step.set_header_route.is_some() {
        "setHeaderRoute"
    } else if step.set_mirror_route.is_some() {
        "setMirrorRoute"
    } else if step.plugin.is_some() {
        "plugin"
    } else {
        "invalid"
    };
    kind.to_string()
}

/// Upstream `RolloutPause.DurationSeconds()`: `None` for `pause: {}`; an int is seconds; a
/// string is a plain integer of seconds or a Go duration truncated to whole seconds; an
/// unparseable string is -1 (validation rejects it).
pub fn pause_duration_seconds(pause: &RolloutPause) -> Option<i64> {
    pause.duration.as_ref().map(|_| pause.duration_seconds())
}

/// A pause, analysis or experiment step: the progress deadline does not run there.
pub fn is_indefinite_step(step: Option<&CanaryStep>) -> bool {
    step.is_some_and(|step| {
        step.pause.is_some() || step.analysis.is_some() || step.experiment.is_some()
    })
}

/// When the `CanaryPauseStep` condition of `status` started.
pub fn pause_started(status: &RolloutStatus, reason: &PauseReason) -> Option<DateTime<Utc>> {
    status
        .pause_conditions
        .iter()
        .find(|condition| &condition.reason == reason)
        .map(|condition| time_to_chrono(&condition.start_time))
}

/// Upstream `CompletedCanaryPauseStep`: the user removed the `CanaryPauseStep` condition the
/// controller had added (`controllerPause` still true), or the duration has elapsed.
///
/// Upstream requires `now` strictly after the expiry and relies on wall-clock drift after its
/// requeue; with `now` a parameter, reaching the expiry counts, so a requeue exactly at the
/// expiry completes the step instead of waiting for the next resync.
pub fn completed_pause_step(
    pause: &RolloutPause,
    status: &RolloutStatus,
    now: DateTime<Utc>,
) -> bool {
    let started = pause_started(status, &PauseReason::CanaryPauseStep);
    if status.controller_pause && started.is_none() {
        return true;
    }
    match (pause_duration_seconds(pause), started) {
        (Some(seconds), Some(started)) => now >= started + Duration::seconds(seconds),
        _ => false,
    }
}

/// Time left in a timed pause step, for the requeue (`None` when indefinite or not started).
pub fn pause_remaining(
    pause: &RolloutPause,
    status: &RolloutStatus,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let seconds = pause_duration_seconds(pause)?;
    let started = pause_started(status, &PauseReason::CanaryPauseStep)?;
    let remaining = started + Duration::seconds(seconds) - now;
    (remaining > Duration::zero()).then_some(remaining)
}

/// Upstream `BeforeStartingStep`: background analysis waits until
/// `currentStepIndex >= analysis.startingStep`.
pub fn before_starting_step(canary: &CanaryStrategy, status: &RolloutStatus) -> bool {
    let Some(starting) = canary
        .analysis
        .as_ref()
        .and_then(|analysis| analysis.starting_step)
    else {
        return false;
    };
    match current_step(steps_of(canary), status).1 {
        Some(index) => index < starting,
        None => false,
    }
}

/// The managed routes the steps up to and including `index` leave in place: each
/// `setHeaderRoute` / `setMirrorRoute` replaces the route of its name, one without `match`
/// removes it. Upstream applies only the current step's route and relies on the router keeping
/// earlier ones; listing them all lets a router be rebuilt from scratch.
pub fn desired_routes(
    steps: &[CanaryStep],
    index: i32,
) -> (Vec<SetHeaderRoute>, Vec<SetMirrorRoute>) {
    let mut headers: Vec<SetHeaderRoute> = Vec::new();
    let mut mirrors: Vec<SetMirrorRoute> = Vec::new();
    let upto = usize::try_from(index).map_or(0, |i| (i + 1).min(steps.len()));
    for step in &steps[..upto] {
        if let Some(route) = step.set_header_route.as_ref() {
            headers.retain(|known| known.name != route.name);
            if route
                .match_
                .as_ref()
                .is_some_and(|matches| !matches.is_empty())
            {
                headers.push(route.clone());
            }
        }
        if let Some(route) = step.set_mirror_route.as_ref() {
            mirrors.retain(|known| known.name != route.name);
            if route
                .match_
                .as_ref()
                .is_some_and(|matches| !matches.is_empty())
            {
                mirrors.push(route.clone());
            }
        }
    }
    (headers, mirrors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{HeaderRoutingMatch, PauseCondition, RolloutAnalysis, SetCanaryScale};
    use crate::rollout::observed::chrono_to_time;

    fn when(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap_or_default()
    }

    fn pause(duration: Option<IntOrStr>) -> RolloutPause {
        RolloutPause { duration }
    }

    fn paused_since(seconds: i64, controller_pause: bool) -> RolloutStatus {
        RolloutStatus {
            pause_conditions: vec![PauseCondition {
                reason: PauseReason::CanaryPauseStep,
                start_time: chrono_to_time(when(seconds)),
            }],
            controller_pause,
            ..RolloutStatus::default()
        }
    }

    #[test]
    fn step_strings_match_upstream() {
        let cases = [
            (
                CanaryStep {
                    set_weight: Some(20),
                    ..CanaryStep::default()
                },
                "setWeight: 20",
            ),
            (
                CanaryStep {
                    pause: Some(pause(None)),
                    ..CanaryStep::default()
                },
                "pause",
            ),
            (
                CanaryStep {
                    pause: Some(pause(Some(IntOrStr::Int(10)))),
                    ..CanaryStep::default()
                },
                "pause: 10",
            ),
            (
                CanaryStep {
                    pause: Some(pause(Some(IntOrStr::Str("1m".into())))),
                    ..CanaryStep::default()
                },
                "pause: 1m",
            ),
            (
                CanaryStep {
                    analysis: Some(RolloutAnalysis::default()),
                    ..CanaryStep::default()
                },
                "analysis",
            ),
            (
                CanaryStep {
                    set_canary_scale: Some(SetCanaryScale::default()),
                    ..CanaryStep::default()
                },
                "setCanaryScale",
            ),
            (CanaryStep::default(), "invalid"),
        ];
        for (step, text) in cases {
            assert_eq!(step_string(&step), text);
        }
    }

    #[test]
    fn pause_durations_parse_like_upstream() {
        let cases = [
            (None, None),
            (Some(IntOrStr::Int(10)), Some(10)),
            (Some(IntOrStr::Str("10".into())), Some(10)),
            (Some(IntOrStr::Str("1m30s".into())), Some(90)),
            (Some(IntOrStr::Str("1500ms".into())), Some(1)),
            (Some(IntOrStr::Str("soon".into())), Some(-1)),
        ];
        for (duration, seconds) in cases {
            assert_eq!(
                pause_duration_seconds(&pause(duration.clone())),
                seconds,
                "{duration:?}"
            );
        }
    }

    #[test]
    fn current_step_reads_the_status_index() {
        let steps = vec![
            CanaryStep {
                set_weight: Some(20),
                ..CanaryStep::default()
            },
            CanaryStep {
                pause: Some(pause(None)),
                ..CanaryStep::default()
            },
        ];
        let at = |index: Option<i32>| {
            let status = RolloutStatus {
                current_step_index: index,
                ..RolloutStatus::default()
            };
            let (step, index) = current_step(&steps, &status);
            (step.map(step_string), index)
        };
        assert_eq!(at(None), (Some("setWeight: 20".to_string()), Some(0)));
        assert_eq!(at(Some(1)), (Some("pause".to_string()), Some(1)));
        assert_eq!(at(Some(2)), (None, Some(2)));
        assert_eq!(current_step(&[], &RolloutStatus::default()).1, None);
    }

    #[test]
    fn pause_step_completes_on_resume_or_expiry() {
        let timed = pause(Some(IntOrStr::Int(10)));
        let indefinite = pause(None);
        // Not paused yet: never complete.
        assert!(!completed_pause_step(
            &timed,
            &RolloutStatus::default(),
            when(100)
        ));
        // Paused at 0 for 10 s.
        let status = paused_since(0, true);
        assert!(!completed_pause_step(&timed, &status, when(9)));
        assert!(completed_pause_step(&timed, &status, when(10)));
        assert!(!completed_pause_step(&indefinite, &status, when(10_000)));
        assert_eq!(
            pause_remaining(&timed, &status, when(4)),
            Some(Duration::seconds(6))
        );
        assert_eq!(pause_remaining(&timed, &status, when(10)), None);
        // The user removed the condition.
        let resumed = RolloutStatus {
            controller_pause: true,
            ..RolloutStatus::default()
        };
        assert!(completed_pause_step(&indefinite, &resumed, when(1)));
    }

    #[test]
    fn routes_accumulate_and_are_removed_by_name() {
        let header = |name: &str, with_match: bool| CanaryStep {
            set_header_route: Some(SetHeaderRoute {
                name: Some(name.to_string()),
                match_: with_match.then(|| {
                    vec![HeaderRoutingMatch {
                        header_name: "x-canary".into(),
                        header_value: None,
                    }]
                }),
            }),
            ..CanaryStep::default()
        };
        let steps = vec![header("a", true), header("b", true), header("a", false)];
        let names = |index| {
            desired_routes(&steps, index)
                .0
                .iter()
                .map(|route| route.name.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(0), vec!["a"]);
        assert_eq!(names(1), vec!["a", "b"]);
        assert_eq!(names(2), vec!["b"]);
        assert_eq!(names(7), vec!["b"]);
    }

    #[test]
    fn background_analysis_waits_for_its_starting_step() {
        let mut canary = CanaryStrategy {
            steps: Some(vec![CanaryStep::default(), CanaryStep::default()]),
            ..CanaryStrategy::default()
        };
        assert!(!before_starting_step(&canary, &RolloutStatus::default()));
        canary.analysis = Some(crate::api::RolloutAnalysisBackground {
            starting_step: Some(1),
            ..Default::default()
        });
        assert!(before_starting_step(&canary, &RolloutStatus::default()));
        let at_one = RolloutStatus {
            current_step_index: Some(1),
            ..RolloutStatus::default()
        };
        assert!(!before_starting_step(&canary, &at_one));
    }
}
