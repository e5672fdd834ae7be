//! What the bench reads off each Rollout it watches, and the per-wave bookkeeping: which
//! Rollouts are Healthy on the revision the wave expects, and how late each timed pause ended.
//! Pure: statuses and the times they were seen come in as values.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The parts of a Rollout the bench decides on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutView {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration` (a string in Argo's schema; a number is accepted too).
    pub observed_generation: Option<String>,
    /// `status.phase`.
    pub phase: Option<String>,
    /// `status.stableRS`.
    pub stable_rs: Option<String>,
    /// `status.currentPodHash`.
    pub current_pod_hash: Option<String>,
    /// The earliest `startTime` of `status.pauseConditions`, when paused.
    pub pause_start: Option<DateTime<Utc>>,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a Rollout object (as JSON).
pub fn view_of(obj: &Value) -> RolloutView {
    let meta = obj.get("metadata");
    let status = obj.get("status");
    let pause_start = status
        .and_then(|s| s.get("pauseConditions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("startTime").and_then(Value::as_str))
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .min();
    RolloutView {
        name: text(meta.and_then(|m| m.get("name"))).unwrap_or_default(),
        generation: meta
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
        observed_generation: text(status.and_then(|s| s.get("observedGeneration"))),
        phase: text(status.and_then(|s| s.get("phase"))),
        stable_rs: text(status.and_then(|s| s.get("stableRS"))),
        current_pod_hash: text(status.and_then(|s| s.get("currentPodHash"))),
        pause_start,
    }
}

/// Healthy as the controller tests decide it, plus "this spec was seen": phase `Healthy`,
/// `observedGeneration` equal to `metadata.generation`, and the stable ReplicaSet being the
/// current pod-template hash. Returns that hash.
pub fn healthy_hash(v: &RolloutView) -> Option<&str> {
    let observed = v.observed_generation.as_deref() == Some(v.generation.to_string().as_str());
    let stable = v.stable_rs.as_deref()?;
    (observed
        && v.phase.as_deref() == Some("Healthy")
        && v.current_pod_hash.as_deref() == Some(stable))
    .then_some(stable)
}

#[derive(Debug, Clone, Default)]
struct Track {
    /// The hash the Rollout was Healthy on in wave 1.
    first_hash: Option<String>,
    /// Healthy on the revision the current wave expects.
    healthy: bool,
    /// The pause being waited out, and whether its end has been recorded.
    pause_start: Option<DateTime<Utc>>,
    lateness_recorded: bool,
}

/// Bookkeeping over every Rollout of the run.
#[derive(Debug, Clone)]
pub struct Tracker {
    wave: u8,
    pause: chrono::TimeDelta,
    rollouts: HashMap<String, Track>,
    healthy: usize,
    lateness: Vec<f64>,
}

impl Tracker {
    /// A tracker for wave 1, where each timed pause lasts `pause`.
    pub fn new(pause: std::time::Duration) -> Self {
        Tracker {
            wave: 1,
            pause: chrono::TimeDelta::from_std(pause).unwrap_or_default(),
            rollouts: HashMap::new(),
            healthy: 0,
            lateness: Vec::new(),
        }
    }

    /// Rollouts Healthy on the revision of the current wave.
    pub fn healthy(&self) -> usize {
        self.healthy
    }

    /// Seconds each recorded pause ended after its due time (negative: early).
    pub fn lateness(&self) -> &[f64] {
        &self.lateness
    }

    /// Starts wave 2: from now on Healthy means Healthy on a hash other than wave 1's.
    pub fn start_second_wave(&mut self) {
        self.wave = 2;
        for t in self.rollouts.values_mut() {
            t.healthy = false;
        }
        self.healthy = 0;
    }

    /// Takes in a Rollout as seen at `seen`.
    pub fn observe(&mut self, v: &RolloutView, seen: DateTime<Utc>) {
        let wave = self.wave;
        let t = self.rollouts.entry(v.name.clone()).or_default();
        match (v.pause_start, t.pause_start) {
            (Some(start), None) => {
                t.pause_start = Some(start);
                t.lateness_recorded = false;
            }
            // Paused again later (another revision): a new pause to time.
            (Some(start), Some(old)) if start != old && t.lateness_recorded => {
                t.pause_start = Some(start);
                t.lateness_recorded = false;
            }
            (None, Some(start)) if !t.lateness_recorded => {
                let due = start + self.pause;
                self.lateness
                    .push((seen - due).num_microseconds().unwrap_or(0) as f64 / 1e6);
                t.lateness_recorded = true;
            }
            _ => {}
        }
        let now_healthy = match healthy_hash(v) {
            Some(hash) if wave == 1 => {
                t.first_hash = Some(hash.to_string());
                true
            }
            Some(hash) => t.first_hash.as_deref().is_some_and(|h| h != hash),
            None => false,
        };
        if now_healthy != t.healthy {
            t.healthy = now_healthy;
            if now_healthy {
                self.healthy += 1;
            } else {
                self.healthy -= 1;
            }
        }
    }

    /// The Rollout went away.
    pub fn forget(&mut self, name: &str) {
        if self.rollouts.remove(name).is_some_and(|t| t.healthy) {
            self.healthy -= 1;
        }
    }
}

/// Of `(owner uid, pod-template hash)` pairs, one per ReplicaSet, how many are beyond the first
/// of their pair: a controller that creates a ReplicaSet twice for one revision shows here.
pub fn count_duplicates(keys: &[(String, String)]) -> usize {
    let mut seen = std::collections::HashSet::new();
    keys.iter().filter(|k| !seen.insert(*k)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rollout(generation: i64, status: Value) -> RolloutView {
        view_of(&json!({"metadata": {"name": "r1", "generation": generation}, "status": status}))
    }

    fn healthy(generation: i64, hash: &str) -> RolloutView {
        rollout(
            generation,
            json!({"phase": "Healthy", "observedGeneration": generation.to_string(),
                   "stableRS": hash, "currentPodHash": hash}),
        )
    }

    #[test]
    fn healthy_needs_the_current_generation_and_the_stable_hash() {
        assert_eq!(healthy_hash(&healthy(1, "abc")), Some("abc"));
        let stale = rollout(
            2,
            json!({"phase": "Healthy", "observedGeneration": "1", "stableRS": "abc", "currentPodHash": "abc"}),
        );
        assert_eq!(healthy_hash(&stale), None);
        let moving = rollout(
            2,
            json!({"phase": "Healthy", "observedGeneration": "2", "stableRS": "abc", "currentPodHash": "def"}),
        );
        assert_eq!(healthy_hash(&moving), None);
        assert_eq!(healthy_hash(&rollout(1, json!({}))), None);
    }

    #[test]
    fn waves_count_healthy_on_the_expected_revision() {
        let t0 = at("2026-01-01T00:00:00Z");
        let mut tr = Tracker::new(Duration::from_secs(1));
        tr.observe(&rollout(1, json!({"phase": "Progressing"})), t0);
        assert_eq!(tr.healthy(), 0);
        tr.observe(&healthy(1, "h1"), t0);
        tr.observe(&healthy(1, "h1"), t0);
        assert_eq!(tr.healthy(), 1);
        tr.start_second_wave();
        assert_eq!(tr.healthy(), 0);
        // Generation 2 observed but still on the old hash: not yet.
        tr.observe(&healthy(2, "h1"), t0);
        assert_eq!(tr.healthy(), 0);
        tr.observe(&healthy(2, "h2"), t0);
        assert_eq!(tr.healthy(), 1);
        tr.forget("r1");
        assert_eq!(tr.healthy(), 0);
    }

    #[test]
    fn duplicates_are_counted_per_owner_and_hash() {
        let k = |o: &str, h: &str| (o.to_string(), h.to_string());
        assert_eq!(
            count_duplicates(&[k("a", "1"), k("a", "2"), k("b", "1")]),
            0
        );
        assert_eq!(
            count_duplicates(&[k("a", "1"), k("a", "1"), k("a", "1"), k("b", "1")]),
            2
        );
    }

    #[test]
    fn pause_lateness_from_start_time_plus_duration() {
        let mut tr = Tracker::new(Duration::from_secs(1));
        let paused = rollout(
            2,
            json!({"phase": "Paused", "pauseConditions": [{"reason": "PauseDuration", "startTime": "2026-01-01T00:00:10Z"}]}),
        );
        tr.observe(&paused, at("2026-01-01T00:00:10.2Z"));
        tr.observe(&paused, at("2026-01-01T00:00:10.9Z"));
        assert!(tr.lateness().is_empty());
        tr.observe(
            &rollout(2, json!({"phase": "Progressing"})),
            at("2026-01-01T00:00:11.25Z"),
        );
        tr.observe(
            &rollout(2, json!({"phase": "Progressing"})),
            at("2026-01-01T00:00:12Z"),
        );
        assert_eq!(tr.lateness(), [0.25]);
        // A later pause of another revision is timed again.
        let again = rollout(
            3,
            json!({"pauseConditions": [{"reason": "PauseDuration", "startTime": "2026-01-01T00:01:00Z"}]}),
        );
        tr.observe(&again, at("2026-01-01T00:01:00Z"));
        tr.observe(&healthy(3, "h3"), at("2026-01-01T00:01:01.5Z"));
        assert_eq!(tr.lateness(), [0.25, 0.5]);
    }
}
