//! The replica math of a blue-green Rollout (spec §1.6; upstream `NewRSNewReplicas` for
//! blue-green and `scaleDownOldReplicaSetsForBlueGreen`): how big the new (preview) ReplicaSet
//! is, and how the older ReplicaSets wait out `scaleDownDelaySeconds` before going to zero.
//! Plain values in and out, like the rest of `replicas/`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::other::{
    DEFAULT_SCALE_DOWN_DELAY_SECONDS, OtherReplicaSet, OtherReplicaSetAction, OtherScaleDownPlan,
    ScaleDownDeadline,
};

/// What decides the size of the new ReplicaSet of a blue-green Rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PreviewScale {
    /// `spec.replicas` (default 1).
    pub replicas: i32,
    /// `blueGreen.previewReplicaCount`.
    pub preview_replica_count: Option<i32>,
    /// The active Service selects no ReplicaSet we own, or the new one: promotion is over.
    pub new_is_active: bool,
    /// `status.promoteFull`.
    pub promote_full: bool,
    /// The new ReplicaSet's hash is `status.currentPodHash` (not a fresh update).
    pub new_is_recorded_current: bool,
    /// `spec.paused` or any pause condition.
    pub paused: bool,
    /// `status.blueGreen.scaleUpPreviewCheckPoint`.
    pub scale_up_preview_check_point: bool,
}

/// Upstream `NewRSNewReplicas` for blue-green: `spec.replicas`, except that with
/// `previewReplicaCount` the preview stays at that size until it is promoted (resumed past
/// the scale-up checkpoint, fully promoted, or already active).
pub fn new_rs_replicas(scale: &PreviewScale) -> i32 {
    let Some(preview) = scale.preview_replica_count else {
        return scale.replicas;
    };
    if scale.new_is_active || scale.promote_full {
        return scale.replicas;
    }
    if !scale.new_is_recorded_current {
        // A new update: the preview starts small.
        return preview;
    }
    if !scale.paused && scale.scale_up_preview_check_point {
        // Resumed after the pause, before the active switch: grow to full size first.
        return scale.replicas;
    }
    preview
}

/// What the scale-down of older blue-green ReplicaSets reads besides the ReplicaSets.
#[derive(Debug, Clone, Copy)]
pub struct OldScaleDownContext {
    /// `spec.replicas` (default 1).
    pub replicas: i32,
    /// `scaleDownDelaySeconds` (default 30).
    pub scale_down_delay_seconds: Option<i32>,
    /// `scaleDownDelayRevisionLimit`; `None` = unlimited.
    pub scale_down_delay_revision_limit: Option<i32>,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// Upstream `scaleDownOldReplicaSetsForBlueGreen` with `scaleDownDelayHelper`: newest revision
/// first, skipping referenced and scaled-down ReplicaSets, each older ReplicaSet first gets a
/// `scale-down-deadline` (now + delay) and keeps its size, is held at `spec.replicas` while the
/// deadline is ahead, and goes to 0 once it passed or once more than
/// `scaleDownDelayRevisionLimit` ReplicaSets carry one. A delay of 0 scales down at once.
pub fn plan_old_replica_sets(
    ctx: &OldScaleDownContext,
    others: &[OtherReplicaSet],
) -> OtherScaleDownPlan {
    let mut plan = OtherScaleDownPlan::default();
    let mut order: Vec<usize> = (0..others.len()).collect();
    order.sort_by(|&a, &b| (others[b].revision, b).cmp(&(others[a].revision, a)));
    let limit = ctx.scale_down_delay_revision_limit.unwrap_or(i32::MAX);
    let delay = ctx
        .scale_down_delay_seconds
        .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS);
    let mut annotated = 0;
    for index in order {
        let rs = &others[index];
        let spec = rs.counts.spec();
        if rs.referenced || spec == 0 {
            continue;
        }
        let desired = match rs.scale_down_deadline {
            ScaleDownDeadline::Absent if delay > 0 && annotated < limit => {
                annotated += 1;
                let deadline = ctx.now + Duration::seconds(i64::from(delay));
                plan.actions
                    .push(OtherReplicaSetAction::SetScaleDownDeadline {
                        name: rs.counts.name.clone(),
                        deadline,
                        annotation: deadline.to_rfc3339_opts(SecondsFormat::Secs, true),
                    });
                wait(&mut plan, Duration::seconds(i64::from(delay)));
                spec
            }
            ScaleDownDeadline::Absent => 0,
            ScaleDownDeadline::Unparseable => {
                annotated += 1;
                0
            }
            ScaleDownDeadline::At(deadline) => {
                annotated += 1;
                if annotated <= limit && deadline > ctx.now {
                    wait(&mut plan, deadline - ctx.now);
                    // Upstream holds a waiting ReplicaSet at the Rollout's size.
                    ctx.replicas
                } else {
                    0
                }
            }
        };
        if desired != spec {
            plan.actions.push(OtherReplicaSetAction::Scale {
                name: rs.counts.name.clone(),
                from: spec,
                to: desired,
            });
        }
    }
    plan
}

fn wait(plan: &mut OtherScaleDownPlan, after: Duration) {
    plan.requeue_after = Some(plan.requeue_after.map_or(after, |known| known.min(after)));
}

#[cfg(test)]
mod tests {
    use super::super::inputs::ReplicaSetCounts;
    use super::*;

    #[test]
    fn preview_size_follows_upstream_cases() {
        let base = PreviewScale {
            replicas: 5,
            preview_replica_count: Some(1),
            new_is_recorded_current: true,
            paused: true,
            ..PreviewScale::default()
        };
        let cases = [
            (
                "no previewReplicaCount",
                PreviewScale {
                    preview_replica_count: None,
                    ..base
                },
                5,
            ),
            (
                "already active",
                PreviewScale {
                    new_is_active: true,
                    ..base
                },
                5,
            ),
            (
                "full promotion",
                PreviewScale {
                    promote_full: true,
                    ..base
                },
                5,
            ),
            (
                "fresh update",
                PreviewScale {
                    new_is_recorded_current: false,
                    paused: false,
                    scale_up_preview_check_point: true,
                    ..base
                },
                1,
            ),
            ("paused", base, 1),
            (
                "resumed past checkpoint",
                PreviewScale {
                    paused: false,
                    scale_up_preview_check_point: true,
                    ..base
                },
                5,
            ),
            (
                "resumed before checkpoint",
                PreviewScale {
                    paused: false,
                    ..base
                },
                1,
            ),
        ];
        for (case, scale, want) in cases {
            assert_eq!(new_rs_replicas(&scale), want, "{case}");
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_366_400, 0).unwrap_or_default()
    }

    fn old(name: &str, spec: i32, revision: i64, deadline: ScaleDownDeadline) -> OtherReplicaSet {
        OtherReplicaSet {
            counts: ReplicaSetCounts {
                name: name.to_string(),
                spec_replicas: Some(spec),
                replicas: spec,
                available_replicas: spec,
            },
            revision: Some(revision),
            referenced: false,
            scale_down_deadline: deadline,
        }
    }

    fn ctx(delay: Option<i32>, limit: Option<i32>) -> OldScaleDownContext {
        OldScaleDownContext {
            replicas: 3,
            scale_down_delay_seconds: delay,
            scale_down_delay_revision_limit: limit,
            now: now(),
        }
    }

    fn scales(plan: &OtherScaleDownPlan) -> Vec<(String, i32)> {
        plan.actions
            .iter()
            .filter_map(|action| match action {
                OtherReplicaSetAction::Scale { name, to, .. } => Some((name.clone(), *to)),
                OtherReplicaSetAction::SetScaleDownDeadline { .. } => None,
            })
            .collect()
    }

    fn deadlines(plan: &OtherScaleDownPlan) -> Vec<(String, String)> {
        plan.actions
            .iter()
            .filter_map(|action| match action {
                OtherReplicaSetAction::SetScaleDownDeadline {
                    name, annotation, ..
                } => Some((name.clone(), annotation.clone())),
                OtherReplicaSetAction::Scale { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_previous_active_waits_for_its_delay_then_goes_to_zero() {
        let fresh = plan_old_replica_sets(
            &ctx(None, None),
            &[old("a", 3, 1, ScaleDownDeadline::Absent)],
        );
        assert_eq!(
            deadlines(&fresh),
            vec![("a".to_string(), "2026-03-01T12:00:30Z".to_string())]
        );
        assert!(scales(&fresh).is_empty());
        assert_eq!(fresh.requeue_after, Some(Duration::seconds(30)));

        let ahead = ScaleDownDeadline::At(now() + Duration::seconds(10));
        let waiting = plan_old_replica_sets(&ctx(None, None), &[old("a", 3, 1, ahead)]);
        assert!(waiting.actions.is_empty());
        assert_eq!(waiting.requeue_after, Some(Duration::seconds(10)));

        let passed = ScaleDownDeadline::At(now() - Duration::seconds(1));
        let done = plan_old_replica_sets(&ctx(None, None), &[old("a", 3, 1, passed)]);
        assert_eq!(scales(&done), vec![("a".to_string(), 0)]);
    }

    #[test]
    fn revision_limit_referenced_zero_delay_and_unparseable() {
        let ahead = ScaleDownDeadline::At(now() + Duration::seconds(10));
        // Newest revision first: "c" (3) and "b" (2) wait, "a" (1) exceeds the limit of 2.
        let limited = plan_old_replica_sets(
            &ctx(None, Some(2)),
            &[
                old("a", 3, 1, ahead),
                old("b", 3, 2, ahead),
                old("c", 3, 3, ScaleDownDeadline::Absent),
            ],
        );
        assert_eq!(scales(&limited), vec![("a".to_string(), 0)]);
        assert_eq!(deadlines(&limited).len(), 1);

        let mut referenced = old("r", 3, 1, ScaleDownDeadline::Absent);
        referenced.referenced = true;
        assert!(
            plan_old_replica_sets(&ctx(None, None), &[referenced])
                .actions
                .is_empty()
        );

        let immediate = plan_old_replica_sets(
            &ctx(Some(0), None),
            &[old("z", 2, 1, ScaleDownDeadline::Absent)],
        );
        assert_eq!(scales(&immediate), vec![("z".to_string(), 0)]);

        let broken = plan_old_replica_sets(
            &ctx(None, None),
            &[old("u", 2, 1, ScaleDownDeadline::Unparseable)],
        );
        assert_eq!(scales(&broken), vec![("u".to_string(), 0)]);

        // A waiting ReplicaSet smaller than the Rollout is held at the Rollout's size.
        let small = plan_old_replica_sets(&ctx(None, None), &[old("s", 1, 1, ahead)]);
        assert_eq!(scales(&small), vec![("s".to_string(), 3)]);
    }
}
