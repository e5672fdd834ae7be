//! Waiting on a condition with a deadline instead of sleeping for a guessed time.

#![allow(dead_code)]

use std::time::Duration;

/// How long a condition may take before the test fails (generous: a loaded debug build).
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` every 20 ms until it yields a value or [`WAIT`] passes; then fails with
/// `what` and the last state `check` described.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    eventually_within(what, WAIT, check).await
}

/// [`eventually`] with its own deadline, for conditions that take longer than [`WAIT`] by
/// design (an analysis judging a minute of samples).
pub async fn eventually_within<T, F, Fut>(what: &str, wait: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
