//! Kubernetes Events sent off the reconcile path: a reconcile hands its events to an
//! [`EventRecorder`] and goes on with its next write; a background task creates them.
//!
//! Upstream's controller records events the same way (client-go's broadcaster: a queue, a
//! sending goroutine, events dropped rather than blocking when the queue is full). Inline
//! creates were about half of every Rollout's API requests, each one on the chain of writes a
//! reconcile waits for, so a wave of 10,000 Rollouts waited on 70,000 event round trips.
//! An event is a record for people, not state any decision reads back, so sending it later
//! (milliseconds) loses nothing; its name and timestamps are fixed when it is recorded.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::api::field_manager;

/// Events waiting to be sent before new ones are dropped (client-go's queue holds 1,000).
pub const QUEUE: usize = 10_000;

/// Event creates in flight at once.
pub const SENDERS: usize = 16;

/// Queues Events and sends them from one background task (see the module docs).
pub struct EventRecorder {
    client: Client,
    queue: mpsc::Sender<KubeEvent>,
    /// The receiving end until the sender task starts (at the first event, so that building a
    /// recorder needs no runtime).
    pending: Mutex<Option<mpsc::Receiver<KubeEvent>>>,
    dropped: AtomicU64,
    failed: std::sync::Arc<AtomicU64>,
    /// Stops the sender when the recorder goes (the reconcilers stopped, leadership lost):
    /// what is still queued then is dropped, so a controller that stopped leading writes
    /// nothing more.
    _stop: DropGuard,
    stop: CancellationToken,
    /// Where events on Rollouts also go to fire notification triggers (set once, when
    /// notifications are configured).
    notifier: std::sync::OnceLock<std::sync::Arc<super::notifications::Notifier>>,
}

impl EventRecorder {
    /// A recorder creating events with `client`.
    pub fn new(client: Client) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        EventRecorder {
            _stop: stop.clone().drop_guard(),
            stop,
            client,
            queue,
            pending: Mutex::new(Some(pending)),
            dropped: AtomicU64::new(0),
            failed: std::sync::Arc::new(AtomicU64::new(0)),
            notifier: std::sync::OnceLock::new(),
        }
    }

    /// Hands every event recorded from now on to `notifier` as well (the first call wins).
    pub fn notify_to(&self, notifier: std::sync::Arc<super::notifications::Notifier>) {
        let _ = self.notifier.set(notifier);
    }

    /// Queues `event` for sending; drops it (counted, logged) when the queue is full, so a slow
    /// API server never holds a reconcile back for a record.
    pub fn record(&self, event: KubeEvent) {
        self.start();
        if let Some(notifier) = self.notifier.get() {
            notifier.offer(&event);
        }
        if let Err(error) = self.queue.try_send(event) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per thousand, not one per event: a full queue means many.
            if dropped % 1000 == 1 {
                tracing::warn!(dropped, %error, "event queue full; events dropped");
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events the API server refused or that got no answer.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn start(&self) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(receiver) = pending.take() {
            let stop = self.stop.clone();
            let sender = send_all(self.client.clone(), receiver, self.failed.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = sender => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    }
}

/// Sends queued events, [`SENDERS`] at a time, until every recorder is dropped.
async fn send_all(
    client: Client,
    receiver: mpsc::Receiver<KubeEvent>,
    failed: std::sync::Arc<AtomicU64>,
) {
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (event, receiver))
    });
    events
        .for_each_concurrent(SENDERS, |event| {
            let client = client.clone();
            let failed = failed.clone();
            async move {
                if let Err(error) = create(&client, &event).await {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        reason = event.reason.as_deref().unwrap_or_default(),
                        %error,
                        "event not recorded"
                    );
                }
            }
        })
        .await;
}

/// Creates `event`; one that exists already (the same name) counts as recorded.
pub async fn create(client: &Client, event: &KubeEvent) -> Result<(), kube::Error> {
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), &namespace);
    let params: PostParams = field_manager::post(field_manager::CONTROLLER);
    match events.create(&params, event).await {
        Ok(_) => Ok(()),
        // Two events in the same nanosecond (rare): the first one is enough.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}
