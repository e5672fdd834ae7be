//! Alert-driven aborts: an Alertmanager webhook receiver ([`receiver`]) that aborts the
//! Rollouts an alert is meant for ([`matching`], pure) the same way `kubectl argo rollouts
//! abort` does, with the alert named in the abort message ([`act`]).
//!
//! The endpoint answers at once and queues the notification on a bounded channel; one worker
//! task processes the queue, retrying a failing notification a few times before giving up on
//! it (Alertmanager's redelivery is then accepted again).

pub mod act;
pub mod matching;
pub mod payload;
pub mod receiver;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use matching::{Dedup, LabelNames};
use receiver::{Job, ReceiverState};

/// Default largest webhook body (1 MiB); Alertmanager's notifications are far smaller unless
/// a group holds thousands of alerts.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Default number of notifications waiting for the worker before the endpoint answers 503.
pub const DEFAULT_QUEUE: usize = 64;

/// How long, and how many, notifications are remembered for de-duplication. Longer than
/// Alertmanager's retry horizon of one notification, shorter than its default
/// `repeat_interval` (4 h).
pub const DEDUP_TTL: Duration = Duration::from_secs(600);
/// See [`DEDUP_TTL`].
pub const DEDUP_CAPACITY: usize = 4096;

/// Attempts at one notification before giving up on it.
const ATTEMPTS: u32 = 3;

/// How the webhook receiver runs (`davy controller --alert-webhook-listen ...`).
#[derive(Debug, Clone)]
pub struct AlertWebhookConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The bearer token Alertmanager must send (from `--alert-webhook-token-file`).
    pub token: String,
    /// Labels that name a Rollout in an alert.
    pub labels: LabelNames,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Queue length.
    pub queue: usize,
}

impl AlertWebhookConfig {
    /// Defaults for everything but the address and the token.
    pub fn new(listen: SocketAddr, token: impl Into<String>) -> AlertWebhookConfig {
        AlertWebhookConfig {
            listen,
            token: token.into(),
            labels: LabelNames::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            queue: DEFAULT_QUEUE,
        }
    }
}

/// Binds the receiver and starts it and its worker until `shutdown`.
pub async fn start(
    client: Client,
    namespace: Option<String>,
    config: AlertWebhookConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (queue, jobs) = mpsc::channel(config.queue.max(1));
    let dedup = Arc::new(Mutex::new(Dedup::new(DEDUP_CAPACITY, DEDUP_TTL)));
    let api_ok = Arc::new(AtomicBool::new(true));
    let state = ReceiverState {
        token: Arc::from(config.token.trim().as_bytes()),
        max_body_bytes: config.max_body_bytes,
        queue,
        dedup: dedup.clone(),
        api_ok: api_ok.clone(),
    };
    let actor = act::Actor {
        client,
        namespace,
        labels: config.labels,
        metrics,
    };
    tokio::spawn(work(actor, jobs, dedup, api_ok, shutdown.clone()));
    tokio::spawn(async move {
        let served = axum::serve(listener, receiver::router(state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "alert webhook receiver stopped");
        }
    });
    tracing::info!(%addr, path = receiver::PATH, "alert webhook receiver listening");
    Ok(addr)
}

async fn work(
    actor: act::Actor,
    mut jobs: mpsc::Receiver<Job>,
    dedup: Arc<Mutex<Dedup>>,
    api_ok: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            job = jobs.recv() => job,
            () = shutdown.cancelled() => None,
        };
        let Some(job) = job else { return };
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            match actor.process(&job.payload).await {
                Ok(_) => {
                    api_ok.store(true, Ordering::Relaxed);
                    break;
                }
                Err(error) => {
                    api_ok.store(false, Ordering::Relaxed);
                    tracing::warn!(
                        category = error.category(),
                        %error,
                        attempt,
                        group = %job.payload.group_key,
                        "alert notification"
                    );
                    if attempt == ATTEMPTS {
                        // Let Alertmanager's redelivery of this notification be processed.
                        dedup
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .forget(&job.key);
                    } else {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
        }
    }
}
