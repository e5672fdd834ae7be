//! `status NAME [-w] [-t TIMEOUT]`: the pure part — which line a rollout's phase prints and
//! whether the watch ends, with upstream's messages (spec §8).

use crate::api::Rollout;
use crate::cli::get::info::rollout_phase;

/// How a status watch ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `Healthy`: exit 0.
    Healthy,
    /// `Degraded`: `The rollout is in a degraded state with message: …`, exit 1.
    Degraded(String),
}

/// Upstream's error for a Degraded rollout.
pub fn degraded_message(message: &str) -> String {
    format!("The rollout is in a degraded state with message: {message}")
}

/// Upstream's error when `--timeout` passes first.
pub const TIMEOUT_MESSAGE: &str = "Rollout status watch exceeded timeout";

/// The client-side phase and message of a rollout (what `get rollout` shows).
pub fn phase_of(ro: &Rollout) -> (String, String) {
    rollout_phase(ro)
}

/// The line a watch prints for a phase: `<Status> - <Message>`, or `<Status>` alone when the
/// message is empty.
pub fn watch_line(phase: &str, message: &str) -> String {
    if message.is_empty() {
        phase.to_string()
    } else {
        format!("{phase} - {message}")
    }
}

/// The line `--watch=false` prints: `Healthy` and `Degraded` alone, any other phase as
/// `<Status> - <Message>` (even with an empty message, as upstream).
pub fn once_line(phase: &str, message: &str) -> String {
    if phase == "Healthy" || phase == "Degraded" {
        phase.to_string()
    } else {
        format!("{phase} - {message}")
    }
}

/// Whether the phase ends the watch.
pub fn outcome(phase: &str, message: &str) -> Option<Outcome> {
    match phase {
        "Healthy" => Some(Outcome::Healthy),
        "Degraded" => Some(Outcome::Degraded(message.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_upstream() {
        assert_eq!(
            watch_line("Paused", "CanaryPauseStep"),
            "Paused - CanaryPauseStep"
        );
        assert_eq!(watch_line("Healthy", ""), "Healthy");
        assert_eq!(once_line("Healthy", "ignored"), "Healthy");
        assert_eq!(once_line("Progressing", ""), "Progressing - ");
    }

    #[test]
    fn only_healthy_and_degraded_end_the_watch() {
        assert_eq!(outcome("Healthy", ""), Some(Outcome::Healthy));
        assert_eq!(
            outcome("Degraded", "RolloutAborted: x"),
            Some(Outcome::Degraded("RolloutAborted: x".into()))
        );
        assert_eq!(outcome("Paused", "CanaryPauseStep"), None);
        assert_eq!(outcome("Progressing", ""), None);
        assert_eq!(
            degraded_message("m"),
            "The rollout is in a degraded state with message: m"
        );
    }
}
