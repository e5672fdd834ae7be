//! Expectations: what this process wrote for a Rollout and is waiting to see in its caches.
//!
//! The caches ([`super::cache`]) lag the API server. A reconcile that ran before our own
//! create, delete or patch reached the cache would plan from the old state and act again (a
//! second ReplicaSet create, a step advanced twice). Kubernetes' own controllers solve this with
//! expectations: after a write, record what the cache must show; until it does, a reconcile of
//! that owner does nothing (it is triggered again when the watch delivers the change). An
//! expectation that is not met by its deadline is dropped, so a lost watch event delays a
//! Rollout but never stops it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reconcile waits for its own write to reach the cache before acting anyway.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The kinds whose writes the Rollout reconciler waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The Rollout itself (status, revision annotation, `spec.replicas`).
    Rollout,
    /// An owned ReplicaSet.
    ReplicaSet,
    /// An owned AnalysisRun.
    AnalysisRun,
    /// A Service whose selector the Rollout manages.
    Service,
}

/// What the cache must show for the expectation to be met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The object exists (we created it).
    Present,
    /// The object is gone (we deleted it).
    Absent,
    /// The object exists at a resourceVersion other than these: the one we patched over and
    /// those our own later patches in the same reconcile passed through.
    Past(Vec<String>),
}

/// One write waiting to be seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The object's kind.
    pub kind: Kind,
    /// Its name (in the Rollout's namespace).
    pub name: String,
    /// What the cache must show.
    pub want: Want,
    /// When to stop waiting.
    pub deadline: Instant,
}

/// Whether the cache shows what `want` asks, given the cached resourceVersion (`None`: absent).
pub fn met(want: &Want, cached: Option<&str>) -> bool {
    match (want, cached) {
        (Want::Present, cached) => cached.is_some(),
        (Want::Absent, cached) => cached.is_none(),
        (Want::Past(stale), Some(now)) => !stale.iter().any(|rv| rv == now),
        // Gone since our patch: nothing left to wait for.
        (Want::Past(_), None) => true,
    }
}

/// Where a Rollout's expectations stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Nothing pending: the caches show every write of ours.
    Met,
    /// Some writes are not in the caches yet; look again at `until` at the latest.
    Waiting {
        /// The earliest deadline of what is pending.
        until: Instant,
        /// What is pending, for the log.
        pending: Vec<Expectation>,
    },
}

/// The pending expectations of every Rollout, by uid.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Vec<Expectation>>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Expectation>>> {
        // Every mutation below is one map operation: a poisoned map is still consistent.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds what the writes just made for Rollout `uid` must show.
    pub fn expect(&self, uid: &str, expectations: impl IntoIterator<Item = Expectation>) {
        let mut pending = self.lock();
        let list = pending.entry(uid.to_string()).or_default();
        for expectation in expectations {
            // A newer write of the same object supersedes the older expectation.
            list.retain(|old| !(old.kind == expectation.kind && old.name == expectation.name));
            list.push(expectation);
        }
        if list.is_empty() {
            pending.remove(uid);
        }
    }

    /// Checks Rollout `uid`'s expectations against the caches (`cached` gives an object's
    /// cached resourceVersion), dropping those met or past their deadline.
    pub fn check(
        &self,
        uid: &str,
        now: Instant,
        cached: impl Fn(Kind, &str) -> Option<String>,
    ) -> Check {
        let mut pending = self.lock();
        let Some(list) = pending.get_mut(uid) else {
            return Check::Met;
        };
        list.retain(|expectation| {
            let timed_out = now >= expectation.deadline;
            if timed_out {
                tracing::warn!(
                    kind = ?expectation.kind,
                    name = %expectation.name,
                    "own write not seen in the cache in time; reconciling anyway"
                );
            }
            !timed_out
                && !met(
                    &expectation.want,
                    cached(expectation.kind, &expectation.name).as_deref(),
                )
        });
        if list.is_empty() {
            pending.remove(uid);
            return Check::Met;
        }
        let until = list
            .iter()
            .map(|expectation| expectation.deadline)
            .min()
            .unwrap_or(now);
        Check::Waiting {
            until,
            pending: list.clone(),
        }
    }

    /// Forgets a Rollout (deleted).
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Drops every expectation past its deadline (those of Rollouts deleted meanwhile are never
    /// checked again).
    pub fn prune(&self, now: Instant) {
        let mut pending = self.lock();
        pending.retain(|_, list| {
            list.retain(|expectation| expectation.deadline > now);
            !list.is_empty()
        });
    }

    /// How many Rollouts have writes pending.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no Rollout has writes pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(kind: Kind, name: &str, want: Want, deadline: Instant) -> Expectation {
        Expectation {
            kind,
            name: name.into(),
            want,
            deadline,
        }
    }

    #[test]
    fn wants_are_met_as_their_names_say() {
        assert!(met(&Want::Present, Some("1")));
        assert!(!met(&Want::Present, None));
        assert!(met(&Want::Absent, None));
        assert!(!met(&Want::Absent, Some("1")));
        let past = |rvs: &[&str]| Want::Past(rvs.iter().map(|rv| rv.to_string()).collect());
        assert!(!met(&past(&["1"]), Some("1")));
        assert!(met(&past(&["1"]), Some("2")));
        assert!(met(&past(&["1"]), None));
        // Two patches in one reconcile: 1 → 2 → 3; only 3 (or later) shows both.
        assert!(!met(&past(&["1", "2"]), Some("2")));
        assert!(met(&past(&["1", "2"]), Some("3")));
    }

    #[test]
    fn waits_until_the_cache_shows_the_write_then_clears() {
        let t0 = Instant::now();
        let expectations = Expectations::default();
        expectations.expect(
            "u",
            [expectation(
                Kind::ReplicaSet,
                "r-abc",
                Want::Present,
                t0 + TIMEOUT,
            )],
        );
        let empty = |_: Kind, _: &str| None;
        match expectations.check("u", t0, empty) {
            Check::Waiting { until, pending } => {
                assert_eq!(until, t0 + TIMEOUT);
                assert_eq!(pending.len(), 1);
            }
            Check::Met => panic!("met before the cache had the object"),
        }
        // Another Rollout is not held back.
        assert_eq!(expectations.check("other", t0, empty), Check::Met);
        let seen = |kind: Kind, name: &str| {
            (kind == Kind::ReplicaSet && name == "r-abc").then(|| "5".to_string())
        };
        assert_eq!(expectations.check("u", t0, seen), Check::Met);
        assert!(expectations.is_empty());
    }

    #[test]
    fn a_deadline_passed_stops_the_wait() {
        let t0 = Instant::now();
        let expectations = Expectations::default();
        expectations.expect(
            "u",
            [expectation(
                Kind::Rollout,
                "r",
                Want::Past(vec!["7".into()]),
                t0 + Duration::from_secs(1),
            )],
        );
        let stale = |_: Kind, _: &str| Some("7".to_string());
        assert!(matches!(
            expectations.check("u", t0, stale),
            Check::Waiting { .. }
        ));
        assert_eq!(
            expectations.check("u", t0 + Duration::from_secs(1), stale),
            Check::Met
        );
    }

    #[test]
    fn a_newer_write_of_the_same_object_replaces_the_older_expectation() {
        let t0 = Instant::now();
        let expectations = Expectations::default();
        let deadline = t0 + TIMEOUT;
        expectations.expect(
            "u",
            [expectation(
                Kind::Rollout,
                "r",
                Want::Past(vec!["1".into()]),
                deadline,
            )],
        );
        expectations.expect(
            "u",
            [expectation(
                Kind::Rollout,
                "r",
                Want::Past(vec!["2".into()]),
                deadline,
            )],
        );
        // rv 2 is what our second write patched over: still waiting.
        assert!(matches!(
            expectations.check("u", t0, |_, _| Some("2".to_string())),
            Check::Waiting { .. }
        ));
        assert_eq!(
            expectations.check("u", t0, |_, _| Some("3".to_string())),
            Check::Met
        );
        expectations.expect(
            "u",
            [expectation(Kind::ReplicaSet, "x", Want::Present, deadline)],
        );
        expectations.forget("u");
        assert!(expectations.is_empty());
    }
}
