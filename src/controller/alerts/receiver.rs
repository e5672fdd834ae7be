//! The webhook endpoint `POST /webhooks/alertmanager`: authenticates (bearer token, constant-time
//! comparison), bounds the body, validates the payload, drops duplicates, and queues the work;
//! the answer never waits for the Kubernetes API.
//!
//! Status codes follow Alertmanager's retry rules (2xx done, 5xx retried, 4xx dropped): 202
//! queued, 200 duplicate or nothing firing, 401 bad token, 413 body too large, 400 malformed or
//! another payload version, 503 queue full or the Kubernetes API failing (so it redelivers).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use tokio::sync::mpsc;

use super::matching::{Dedup, dedup_key};
use super::payload::{AlertStatus, Payload, parse};

/// The path Alertmanager's `webhook_configs.url` points at.
pub const PATH: &str = "/webhooks/alertmanager";

/// One queued notification and its de-duplication key.
#[derive(Debug)]
pub struct Job {
    /// The notification.
    pub payload: Payload,
    /// Its key in the de-duplication memory (forgotten again if processing fails).
    pub key: String,
}

/// What the endpoint shares with the worker.
#[derive(Clone)]
pub struct ReceiverState {
    /// The expected bearer token.
    pub token: Arc<[u8]>,
    /// Largest accepted body, in bytes.
    pub max_body_bytes: usize,
    /// The work queue (bounded).
    pub queue: mpsc::Sender<Job>,
    /// Notifications recently queued.
    pub dedup: Arc<Mutex<Dedup>>,
    /// False while the worker's last attempt at the Kubernetes API failed.
    pub api_ok: Arc<AtomicBool>,
}

impl ReceiverState {
    fn dedup(&self) -> std::sync::MutexGuard<'_, Dedup> {
        // A poisoned lock only means a panic mid-update; the memory is still usable.
        self.dedup.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

fn authorized(headers: &HeaderMap, token: &[u8]) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let prefix = b"Bearer ";
    value.len() >= prefix.len()
        && value[..prefix.len()].eq_ignore_ascii_case(prefix)
        && constant_time_eq(&value[prefix.len()..], token)
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text: String = text.into();
    text.push('\n');
    (status, text).into_response()
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    if !authorized(&headers, &state.token) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token\n",
        )
            .into_response();
    }
    let too_large = || {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} bytes", state.max_body_bytes),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > state.max_body_bytes as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let limit = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            return if limit {
                too_large()
            } else {
                answer(
                    StatusCode::BAD_REQUEST,
                    format!("reading the body: {error}"),
                )
            };
        }
    };
    let payload = match parse(&bytes) {
        Ok(payload) => payload,
        Err(error) => return answer(StatusCode::BAD_REQUEST, error.to_string()),
    };
    if !payload
        .alerts
        .iter()
        .any(|alert| alert.status == AlertStatus::Firing)
    {
        return answer(StatusCode::OK, "no firing alert: nothing to do");
    }
    let key = dedup_key(&payload);
    if !state.dedup().first_time(&key, Utc::now()) {
        return answer(StatusCode::OK, "duplicate notification: already queued");
    }
    let job = Job {
        payload,
        key: key.clone(),
    };
    if let Err(error) = state.queue.try_send(job) {
        state.dedup().forget(&key);
        let why = match error {
            mpsc::error::TrySendError::Full(_) => "queue full",
            mpsc::error::TrySendError::Closed(_) => "controller shutting down",
        };
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{why}; retry later"),
        );
    }
    if !state.api_ok.load(Ordering::Relaxed) {
        // Queued, but the last attempt at the API failed: ask for a redelivery too.
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "queued, but the Kubernetes API is failing; retry later",
        );
    }
    answer(StatusCode::ACCEPTED, "queued")
}

/// The router serving [`PATH`].
pub fn router(state: ReceiverState) -> Router {
    Router::new().route(PATH, post(receive)).with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_table() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b""));
    }

    #[test]
    fn bearer_header_table() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            headers
        };
        assert!(authorized(&with("Bearer s3cret"), b"s3cret"));
        assert!(authorized(&with("bearer s3cret"), b"s3cret"));
        assert!(!authorized(&with("Bearer s3cre"), b"s3cret"));
        assert!(!authorized(&with("Basic s3cret"), b"s3cret"));
        assert!(!authorized(&with("Bearer"), b"s3cret"));
        assert!(!authorized(&HeaderMap::new(), b"s3cret"));
    }
}
