//! Scale-down of the "other" ReplicaSets of a canary Rollout, those neither new nor stable
//! (spec §3.3.4, upstream `reconcileOtherReplicaSets` / `scaleDownOldReplicaSetsForCanary`):
//! which to shrink, by how much, and which get a `scale-down-deadline` first.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::inputs::{CanaryParams, ReplicaSetCounts};
use super::reached::stable_rs_exists;

/// Upstream default for `scaleDownDelaySeconds` when traffic routing is used.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;

/// The `scale-down-deadline` annotation of a ReplicaSet, as read by the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScaleDownDeadline {
    /// No annotation (or an empty one).
    #[default]
    Absent,
    /// A deadline that parsed as RFC 3339.
    At(DateTime<Utc>),
    /// Present but not RFC 3339: counts as annotated, but gives no reason to wait.
    Unparseable,
}

/// One other ReplicaSet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OtherReplicaSet {
    /// Its counts.
    pub counts: ReplicaSetCounts,
    /// `rollout.argoproj.io/revision`; `None` when missing or not a number.
    pub revision: Option<i64>,
    /// Still referenced, so it must not be touched: its hash is `status.stableRS`,
    /// `currentPodHash`, a blue-green selector, a `status.canary.weights` hash, the current
    /// selector of the canary/stable Service, or an Istio DestinationRule subset. The
    /// controller decides this because it needs the Services and routers.
    pub referenced: bool,
    /// Its `scale-down-deadline` annotation.
    pub scale_down_deadline: ScaleDownDeadline,
}

/// What the controller knows beyond the ReplicaSets themselves.
#[derive(Debug, Clone, Copy)]
pub struct OtherScaleDownContext<'a> {
    /// The Rollout.
    pub params: &'a CanaryParams,
    /// `status.stableRS == status.currentPodHash` (fully promoted).
    pub fully_promoted: bool,
    /// `scaleDownDelaySeconds`; `None` = the default (30 s).
    pub scale_down_delay_seconds: Option<i32>,
    /// `scaleDownDelayRevisionLimit`; `None` = unlimited.
    pub scale_down_delay_revision_limit: Option<i32>,
    /// The current time (never read from a clock here).
    pub now: DateTime<Utc>,
}

/// One write to an other ReplicaSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtherReplicaSetAction {
    /// Set `spec.replicas` of `name` from `from` to `to`.
    Scale {
        /// ReplicaSet name.
        name: String,
        /// Current `spec.replicas`.
        from: i32,
        /// New `spec.replicas`.
        to: i32,
    },
    /// Annotate `name` with `scale-down-deadline: <deadline>` and keep its size for now.
    SetScaleDownDeadline {
        /// ReplicaSet name.
        name: String,
        /// The deadline.
        deadline: DateTime<Utc>,
        /// The annotation value: RFC 3339 in UTC, whole seconds, as Go's `time.RFC3339`.
        annotation: String,
    },
}

/// The outcome of [`plan_other_replica_sets`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OtherScaleDownPlan {
    /// Writes in the order to apply them.
    pub actions: Vec<OtherReplicaSetAction>,
    /// Look again after this long: the earliest pending deadline (or new delay).
    pub requeue_after: Option<Duration>,
}

/// Decides how the other ReplicaSets shrink this reconcile.
///
/// `others` must be in creation order (oldest first). The steps follow spec §3.3.4:
/// 1. "unhealthy cleanup": an other RS with spec > available is scaled to its available count;
/// 2. at most Σavailable(all RSs) − (R − maxUnavailable) pods are removed in total, going
///    through the others newest revision first and skipping referenced ones;
/// 3. basic canary: each is reduced by as much as that budget allows (they all must reach 0,
///    since their pods receive traffic);
/// 4. traffic routing: with `dynamicStableScale`, or for an abandoned intermediate canary (not
///    fully promoted and no deadline yet), 0 right away; otherwise the previous stable first
///    gets a deadline `now + scaleDownDelaySeconds` and keeps its size, and goes to 0 once the
///    deadline has passed or once more than `scaleDownDelayRevisionLimit` RSs carry one.
///
/// While a deadline is pending the RS keeps its current size.
pub fn plan_other_replica_sets(
    ctx: &OtherScaleDownContext<'_>,
    new_rs: Option<&ReplicaSetCounts>,
    stable_rs: Option<&ReplicaSetCounts>,
    others: &[OtherReplicaSet],
) -> OtherScaleDownPlan {
    let mut plan = OtherScaleDownPlan::default();
    if !others.iter().any(|rs| rs.counts.spec() > 0) {
        return plan;
    }

    // Spec sizes after the unhealthy cleanup, indexed like `others`.
    let mut specs: Vec<i32> = others.iter().map(|rs| rs.counts.spec()).collect();
    for (index, rs) in others.iter().enumerate() {
        let spec = rs.counts.spec();
        if spec > 0 && spec > rs.counts.available_replicas {
            specs[index] = rs.counts.available_replicas;
            plan.actions.push(OtherReplicaSetAction::Scale {
                name: rs.counts.name.clone(),
                from: spec,
                to: rs.counts.available_replicas,
            });
        }
    }

    let params = ctx.params;
    let replicas = params.replicas_or_default();
    let stable_available = if stable_rs_exists(new_rs, stable_rs) {
        stable_rs.map_or(0, |rs| rs.available_replicas)
    } else {
        0
    };
    let all_available = new_rs.map_or(0, |rs| rs.available_replicas)
        + stable_available
        + others
            .iter()
            .map(|rs| rs.counts.available_replicas)
            .sum::<i32>();
    let mut max_scale_down = all_available - (replicas - params.max_unavailable_pods());
    if max_scale_down <= 0 {
        return plan;
    }

    // Newest revision first; equal revisions newest-created first (reverse of creation order).
    let mut order: Vec<usize> = (0..others.len()).collect();
    order.sort_by(|&a, &b| (others[b].revision, b).cmp(&(others[a].revision, a)));

    let revision_limit = ctx.scale_down_delay_revision_limit.unwrap_or(i32::MAX);
    let delay_seconds = ctx
        .scale_down_delay_seconds
        .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS);
    let mut annotated = 0;
    for index in order {
        let rs = &others[index];
        if rs.referenced {
            continue;
        }
        if max_scale_down <= 0 {
            break;
        }
        let spec = specs[index];
        if spec == 0 {
            continue;
        }
        let desired = if !params.traffic_routed {
            (spec - max_scale_down).max(0)
        } else if params.dynamic_stable_scale {
            0
        } else if !ctx.fully_promoted && rs.scale_down_deadline == ScaleDownDeadline::Absent {
            // An intermediate canary abandoned by a newer revision serves no traffic.
            0
        } else {
            match rs.scale_down_deadline {
                ScaleDownDeadline::Absent => {
                    if annotated < revision_limit {
                        annotated += 1;
                        let deadline = ctx.now + Duration::seconds(i64::from(delay_seconds));
                        plan.actions
                            .push(OtherReplicaSetAction::SetScaleDownDeadline {
                                name: rs.counts.name.clone(),
                                deadline,
                                annotation: deadline.to_rfc3339_opts(SecondsFormat::Secs, true),
                            });
                        plan.wait(Duration::seconds(i64::from(delay_seconds)));
                        spec
                    } else {
                        0
                    }
                }
                ScaleDownDeadline::Unparseable => {
                    annotated += 1;
                    0
                }
                ScaleDownDeadline::At(deadline) => {
                    annotated += 1;
                    if annotated <= revision_limit && deadline > ctx.now {
                        plan.wait(deadline - ctx.now);
                        spec
                    } else {
                        0
                    }
                }
            }
        };
        if desired == spec {
            continue;
        }
        plan.actions.push(OtherReplicaSetAction::Scale {
            name: rs.counts.name.clone(),
            from: spec,
            to: desired,
        });
        max_scale_down -= spec - desired;
    }
    plan
}

impl OtherScaleDownPlan {
    /// Keeps the earliest time to look again.
    fn wait(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |known| known.min(after)));
    }
}

#[cfg(test)]
mod tests {
    use super::super::inputs::PodsOrPercent;
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .map(|time| time.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn params(traffic_routed: bool) -> CanaryParams {
        CanaryParams {
            replicas: Some(10),
            max_surge: Some(PodsOrPercent::Int(1)),
            max_unavailable: Some(PodsOrPercent::Int(1)),
            traffic_routed,
            ..CanaryParams::default()
        }
    }

    fn counts(name: &str, spec: i32, available: i32) -> ReplicaSetCounts {
        ReplicaSetCounts {
            name: name.to_string(),
            spec_replicas: Some(spec),
            replicas: spec,
            available_replicas: available,
        }
    }

    fn other(name: &str, spec: i32, available: i32, revision: i64) -> OtherReplicaSet {
        OtherReplicaSet {
            counts: counts(name, spec, available),
            revision: Some(revision),
            ..OtherReplicaSet::default()
        }
    }

    fn context(params: &CanaryParams, fully_promoted: bool) -> OtherScaleDownContext<'_> {
        OtherScaleDownContext {
            params,
            fully_promoted,
            scale_down_delay_seconds: None,
            scale_down_delay_revision_limit: None,
            now: now(),
        }
    }

    fn scale(name: &str, from: i32, to: i32) -> OtherReplicaSetAction {
        OtherReplicaSetAction::Scale {
            name: name.to_string(),
            from,
            to,
        }
    }

    #[test]
    fn basic_canary_drains_newest_first_within_the_availability_budget() {
        let params = params(false);
        // available 6 + 4 + 2 + 1 = 13, floor 9: 4 pods may go.
        let plan = plan_other_replica_sets(
            &context(&params, false),
            Some(&counts("new", 6, 6)),
            Some(&counts("stable", 4, 4)),
            &[other("v1", 1, 1, 1), other("v2", 2, 2, 2)],
        );
        assert_eq!(plan.actions, vec![scale("v2", 2, 0), scale("v1", 1, 0)]);
        assert_eq!(plan.requeue_after, None);
    }

    #[test]
    fn unhealthy_pods_go_first_and_the_budget_can_be_zero() {
        let params = params(false);
        // available 5 + 4 + 0 = 9 = floor: only the unhealthy cleanup happens.
        let plan = plan_other_replica_sets(
            &context(&params, false),
            Some(&counts("new", 5, 5)),
            Some(&counts("stable", 5, 4)),
            &[other("v1", 3, 0, 1)],
        );
        assert_eq!(plan.actions, vec![scale("v1", 3, 0)]);
    }

    #[test]
    fn traffic_routed_previous_stable_gets_a_deadline_then_goes() {
        let params = params(true);
        let ctx = context(&params, true);
        let previous = other("v1", 10, 10, 1);
        let plan = plan_other_replica_sets(
            &ctx,
            Some(&counts("new", 10, 10)),
            None,
            std::slice::from_ref(&previous),
        );
        let deadline = now() + Duration::seconds(30);
        assert_eq!(
            plan.actions,
            vec![OtherReplicaSetAction::SetScaleDownDeadline {
                name: "v1".to_string(),
                deadline,
                annotation: "2026-03-01T12:00:30Z".to_string(),
            }]
        );
        assert_eq!(plan.requeue_after, Some(Duration::seconds(30)));

        let waiting = OtherReplicaSet {
            scale_down_deadline: ScaleDownDeadline::At(deadline),
            ..previous.clone()
        };
        let plan = plan_other_replica_sets(&ctx, Some(&counts("new", 10, 10)), None, &[waiting]);
        assert!(plan.actions.is_empty());
        assert_eq!(plan.requeue_after, Some(Duration::seconds(30)));

        let passed = OtherReplicaSet {
            scale_down_deadline: ScaleDownDeadline::At(now() - Duration::seconds(1)),
            ..previous
        };
        let plan = plan_other_replica_sets(&ctx, Some(&counts("new", 10, 10)), None, &[passed]);
        assert_eq!(plan.actions, vec![scale("v1", 10, 0)]);
    }

    #[test]
    fn traffic_routed_skips_referenced_and_drops_abandoned_canaries() {
        let params = params(true);
        let referenced = OtherReplicaSet {
            referenced: true,
            ..other("v2", 3, 3, 2)
        };
        let plan = plan_other_replica_sets(
            &context(&params, false),
            Some(&counts("new", 2, 2)),
            Some(&counts("stable", 10, 10)),
            &[other("v1", 2, 2, 1), referenced],
        );
        assert_eq!(plan.actions, vec![scale("v1", 2, 0)]);
    }

    #[test]
    fn revision_limit_scales_the_excess_now() {
        let params = params(true);
        let ctx = OtherScaleDownContext {
            scale_down_delay_revision_limit: Some(1),
            ..context(&params, true)
        };
        let later = now() + Duration::seconds(20);
        let annotated = |name: &str, revision| OtherReplicaSet {
            scale_down_deadline: ScaleDownDeadline::At(later),
            ..other(name, 10, 10, revision)
        };
        let plan = plan_other_replica_sets(
            &ctx,
            Some(&counts("new", 10, 10)),
            None,
            &[annotated("v1", 1), annotated("v2", 2)],
        );
        assert_eq!(plan.actions, vec![scale("v1", 10, 0)]);
        assert_eq!(plan.requeue_after, Some(Duration::seconds(20)));
    }
}
