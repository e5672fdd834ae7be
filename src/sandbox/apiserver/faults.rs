//! Fault injection the test harness controls: per-verb latency, a seeded fraction of 5xx
//! answers, forced 409 conflicts, dropping open watches, and compacting the watch history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::store::Store;

/// The API verbs faults can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// The `get` verb.
    Get,
    /// The `list` verb.
    List,
    /// The `watch` verb.
    Watch,
    /// The `create` verb.
    Create,
    /// The `update` verb.
    Update,
    /// The `patch` verb.
    Patch,
    /// The `delete` verb.
    Delete,
    /// The `deletecollection` verb.
    DeleteCollection,
}

#[derive(Debug, Default)]
struct FaultState {
    latency: HashMap<Verb, Duration>,
    error_rate: f64,
    error_rate_by_verb: HashMap<Verb, f64>,
    error_code: u16,
    rng: u64,
    forced_conflicts: u32,
    stats: FaultStats,
}

/// How many faults were injected so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Injected 5xx errors.
    pub errors: u64,
    /// Injected 409 conflicts.
    pub conflicts: u64,
    /// Injected 410 Gone (compaction) answers.
    pub compactions: u64,
    /// Watches dropped on purpose.
    pub watch_drops: u64,
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    pub latency: Option<Duration>,
    /// Answer with this 5xx code instead of serving.
    pub error_code: Option<u16>,
    /// Answer 409 Conflict instead of writing.
    pub conflict: bool,
}

/// Handle to the server's fault injection; cheap to clone.
#[derive(Clone)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
    store: Arc<Store>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Faults {
    pub(super) fn new(store: Arc<Store>) -> Self {
        Faults {
            state: Arc::new(Mutex::new(FaultState {
                error_code: 500,
                ..FaultState::default()
            })),
            store,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delays every request of `verb` by `latency` (zero removes the delay).
    pub fn set_latency(&self, verb: Verb, latency: Duration) {
        let mut s = self.lock();
        if latency.is_zero() {
            s.latency.remove(&verb);
        } else {
            s.latency.insert(verb, latency);
        }
    }

    /// Answers this fraction (0.0–1.0) of API requests with a 5xx `Status`. The choice is a
    /// deterministic sequence from `seed`, so a run with the same request order fails the same
    /// requests.
    pub fn set_error_rate(&self, fraction: f64, seed: u64) {
        let mut s = self.lock();
        s.error_rate = fraction.clamp(0.0, 1.0);
        s.rng = seed;
    }

    /// Overrides the error fraction for one verb.
    pub fn set_error_rate_for(&self, verb: Verb, fraction: f64) {
        self.lock()
            .error_rate_by_verb
            .insert(verb, fraction.clamp(0.0, 1.0));
    }

    /// The code injected errors carry (default 500; 503 and 504 get their own reasons).
    pub fn set_error_code(&self, code: u16) {
        self.lock().error_code = code;
    }

    /// The next `count` updates and patches answer 409 Conflict without writing.
    pub fn force_conflicts(&self, count: u32) {
        self.lock().forced_conflicts = count;
    }

    /// Ends every open watch stream now; clients see the stream close and re-watch.
    pub fn drop_watches(&self) {
        self.lock().stats.watch_drops += 1;
        self.store.drop_watches();
    }

    /// Forgets the watch history and closes open watches, so the next watch from any earlier
    /// resourceVersion gets an in-stream ERROR 410 and the client re-lists. Returns the new
    /// oldest resourceVersion a watch may start from.
    pub fn compact(&self) -> u64 {
        let rv = self.store.write(|s| s.compact());
        self.lock().stats.compactions += 1;
        self.store.drop_watches();
        rv
    }

    /// Removes every configured fault (statistics are kept).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.latency.clear();
        s.error_rate = 0.0;
        s.error_rate_by_verb.clear();
        s.forced_conflicts = 0;
        s.error_code = 500;
    }

    /// What was injected so far.
    pub fn stats(&self) -> FaultStats {
        self.lock().stats
    }

    /// Decides the faults for one request of `verb`.
    pub(super) fn decide(&self, verb: Verb) -> Decision {
        let mut s = self.lock();
        let mut d = Decision {
            latency: s.latency.get(&verb).copied(),
            ..Decision::default()
        };
        let rate = s
            .error_rate_by_verb
            .get(&verb)
            .copied()
            .unwrap_or(s.error_rate);
        if rate > 0.0 {
            let draw = uniform(&mut s.rng);
            if draw < rate {
                d.error_code = Some(s.error_code);
                s.stats.errors += 1;
                return d;
            }
        }
        if matches!(verb, Verb::Update | Verb::Patch) && s.forced_conflicts > 0 {
            s.forced_conflicts -= 1;
            s.stats.conflicts += 1;
            d.conflict = true;
        }
        d
    }
}

/// A uniform draw in [0, 1) from a splitmix64 sequence.
fn uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::apiserver::store::State;

    fn faults() -> Faults {
        Faults::new(Arc::new(Store::new(State::new(100, 1))))
    }

    #[test]
    fn error_rate_is_seeded_and_roughly_the_fraction() {
        let run = || {
            let f = faults();
            f.set_error_rate(0.3, 42);
            (0..1000)
                .map(|_| f.decide(Verb::Get).error_code.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same failures");
        let n = a.iter().filter(|x| **x).count();
        assert!((250..350).contains(&n), "{n} of 1000 failed");
    }

    #[test]
    fn forced_conflicts_count_down_on_writes_only() {
        let f = faults();
        f.force_conflicts(2);
        assert!(!f.decide(Verb::Get).conflict);
        assert!(f.decide(Verb::Patch).conflict);
        assert!(f.decide(Verb::Update).conflict);
        assert!(!f.decide(Verb::Update).conflict);
        assert_eq!(f.stats().conflicts, 2);
    }

    #[test]
    fn compact_bumps_floor() {
        let f = faults();
        assert_eq!(f.compact(), 1);
        assert_eq!(f.compact(), 2);
        assert_eq!(f.stats().compactions, 2);
    }
}
