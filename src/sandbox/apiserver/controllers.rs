//! The sandbox's share of kube-controller-manager: one background task that, after writes,
//! runs the garbage collector's queued work (dependents of deleted owners, namespaces left
//! empty) and brings EndpointSlices and Endpoints up to date for the Services those writes
//! affected.
//!
//! It runs outside the writing request, as the real controllers do, so a client sees a Pod or
//! Service change first and the endpoints follow (within milliseconds here). Work is taken in
//! small batches, each under one hold of the store lock, so requests interleave with it.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Clock;
use super::store::{Store, WriteCtx};

/// Services synced per hold of the store lock.
const BATCH: usize = 64;

/// Runs until `shutdown` fires: waits for a write, then drains the endpoint work it queued.
pub(super) async fn run(store: Arc<Store>, clock: Clock, shutdown: CancellationToken) {
    let mut signal = store.subscribe();
    loop {
        signal.borrow_and_update();
        loop {
            let now = clock();
            let ctx = WriteCtx::internal(now, "endpointslice-controller", "discovery.k8s.io/v1");
            let more = store.write(|s| {
                let gc = s.run_gc(now, BATCH);
                s.sync_endpoints(&ctx, BATCH) || gc
            });
            if !more {
                break;
            }
            tokio::task::yield_now().await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = signal.changed() => if changed.is_err() { return },
        }
    }
}
