//! `get rollout`, `get experiment` and `list rollouts` rendering: pure functions from objects,
//! a clock and a colour switch to the exact text upstream's kubectl plugin prints (spec §8.1).

pub mod experiment;
pub mod header;
pub mod info;
pub mod list;
pub mod list_experiments;
pub mod pod;
pub mod execute;
pub mod tree;

use k8s_openapi::jiff::Timestamp;

pub use experiment::render_experiment;
pub use header::render_rollout;
pub use info::{ExperimentInfo, Objects, RolloutInfo, experiment_info, rollout_info};
pub use list::{ListOptions, render_rollout_list};

/// Status icons (upstream `info` package constants).
pub mod icon {
    /// Pending analysis.
    pub const WAITING: &str = "◷";
    /// Progressing / running.
    pub const PROGRESSING: &str = "◌";
    /// Error or warning.
    pub const WARNING: &str = "⚠";
    /// Unknown or inconclusive.
    pub const UNKNOWN: &str = "?";
    /// Healthy / successful.
    pub const OK: &str = "✔";
    /// Degraded / failed.
    pub const BAD: &str = "✖";
    /// Paused.
    pub const PAUSED: &str = "॥";
    /// Scaled down.
    pub const NEUTRAL: &str = "•";
    /// Kind icon: Rollout.
    pub const ROLLOUT: &str = "⟳";
    /// Kind icon: revision group.
    pub const REVISION: &str = "#";
    /// Kind icon: ReplicaSet.
    pub const REPLICA_SET: &str = "⧉";
    /// Kind icon: Pod.
    pub const POD: &str = "□";
    /// Kind icon: Job.
    pub const JOB: &str = "⊞";
    /// Kind icon: Experiment.
    pub const EXPERIMENT: &str = "Σ";
    /// Kind icon: AnalysisRun.
    pub const ANALYSIS: &str = "α";
}

/// Info-column and image tags.
pub mod tag {
    /// The canary ReplicaSet.
    pub const CANARY: &str = "canary";
    /// The stable ReplicaSet.
    pub const STABLE: &str = "stable";
    /// Blue-green: behind the active Service.
    pub const ACTIVE: &str = "active";
    /// Blue-green: behind the preview Service.
    pub const PREVIEW: &str = "preview";
    /// Ping-pong: behind the ping Service.
    pub const PING: &str = "ping";
    /// Ping-pong: behind the pong Service.
    pub const PONG: &str = "pong";
}

/// Wraps icons and tags in the ANSI colour upstream uses, or returns them unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colorizer {
    /// Whether ANSI colour codes are written at all (`--no-color` or `TERM=dumb` turn it off).
    pub enabled: bool,
}

impl Colorizer {
    /// The ANSI SGR code upstream maps `s` to; unmapped strings get 0, as Go's map lookup does.
    fn code(s: &str) -> u8 {
        match s {
            icon::WAITING | icon::UNKNOWN | tag::CANARY => 33,
            icon::PROGRESSING | tag::PREVIEW | tag::PING | tag::PONG => 94,
            icon::WARNING | icon::BAD => 31,
            icon::OK | tag::STABLE | tag::ACTIVE => 32,
            _ => 0,
        }
    }

    /// `s` in its colour (`ESC[<code>m s ESC[0m`) when colour is on.
    pub fn paint(&self, s: &str) -> String {
        if self.enabled {
            format!("\x1b[{}m{}\x1b[0m", Self::code(s), s)
        } else {
            s.to_string()
        }
    }
}

/// Kubernetes' `HumanDuration` of the span from `then` to `now` (apimachinery `duration`).
pub fn human_duration_millis(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, dy)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The AGE column: time since `created`. A missing timestamp is Go's zero time, whose age
/// saturates at the maximum `time.Duration` (about 292 years), so upstream prints `292y`.
pub fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    match created {
        Some(t) => human_duration_millis(now.as_millisecond() - t.as_millisecond()),
        None => human_duration_millis(i64::MAX / 1_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_matches_apimachinery() {
        let cases = [
            (-5_000, "<invalid>"),
            (-1_000, "0s"),
            (0, "0s"),
            (119_000, "119s"),
            (120_000, "2m"),
            (125_000, "2m5s"),
            (600_000, "10m"),
            (3 * 3_600_000 - 1, "179m"),
            (3 * 3_600_000 + 59 * 60_000 + 59_000, "3h59m"),
            (4 * 3_600_000, "4h"),
            (47 * 3_600_000, "47h"),
            (7 * 24 * 3_600_000, "7d"),
            (7 * 24 * 3_600_000 + 5 * 3_600_000, "7d5h"),
            (30 * 24 * 3_600_000, "30d"),
            (3 * 365 * 24 * 3_600_000, "3y"),
            (3 * 365 * 24 * 3_600_000 + 10 * 24 * 3_600_000, "3y10d"),
        ];
        for (ms, want) in cases {
            assert_eq!(human_duration_millis(ms), want, "{ms} ms");
        }
        assert_eq!(age(None, Timestamp::UNIX_EPOCH), "292y");
    }

    #[test]
    fn colorizer_codes() {
        let c = Colorizer { enabled: true };
        assert_eq!(c.paint("✔"), "\x1b[32m✔\x1b[0m");
        assert_eq!(c.paint("canary"), "\x1b[33mcanary\x1b[0m");
        assert_eq!(c.paint("॥"), "\x1b[0m॥\x1b[0m");
        assert_eq!(Colorizer { enabled: false }.paint("✔"), "✔");
    }
}

/// Errors of the `get` verbs, worded as upstream prints them after `Error: `.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GetError {
    /// The named object does not exist (`<resource>.argoproj.io "<name>" not found`).
    #[error("{resource}.argoproj.io \"{name}\" not found")]
    NotFound {
        /// Lower-case singular resource (`rollout`, `experiment`).
        resource: &'static str,
        /// The name asked for.
        name: String,
    },
}

/// The object named `name` in `namespace` among `objects`, or upstream's not-found error.
pub fn find_named<'a, K: kube::Resource>(
    objects: &'a [K],
    resource: &'static str,
    namespace: &str,
    name: &str,
) -> Result<&'a K, GetError> {
    objects
        .iter()
        .find(|o| {
            o.meta().name.as_deref() == Some(name)
                && o.meta().namespace.as_deref().unwrap_or_default() == namespace
        })
        .ok_or_else(|| GetError::NotFound {
            resource,
            name: name.to_string(),
        })
}
