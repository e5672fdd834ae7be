//! Watch streams: replay of the store's history after a resourceVersion (or synthetic ADDED
//! events for the current state), bookmarks, timeouts, and the in-stream 410 for a too-old RV.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::render;
use super::resources::ResourceDef;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{EventType, Signal, Store};

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Every change after this resourceVersion (410 if it is older than the history).
    After(u64),
    /// Synthetic ADDED events for the current state first; with `end_bookmark`, then a BOOKMARK
    /// annotated `k8s.io/initial-events-end` (streaming lists, `sendInitialEvents=true`).
    Initial { end_bookmark: bool },
}

/// One watch request, parsed.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub def: Arc<ResourceDef>,
    pub api_version: String,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub start: WatchStart,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub bookmark_interval: Duration,
}

impl WatchSpec {
    fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        def.gr == self.def.gr
            && self.namespace.as_deref().is_none_or(|ns| {
                obj.get("metadata")
                    .and_then(|m| m.get("namespace"))
                    .and_then(Value::as_str)
                    == Some(ns)
            })
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }
}

/// Matching events handed out per chunk, so one busy watch does not build huge chunks.
const BATCH: usize = 1000;

struct Watcher {
    store: Arc<Store>,
    spec: WatchSpec,
    signal: watch::Receiver<Signal>,
    drops_at_start: u64,
    cancel: CancellationToken,
    /// Every event up to here has been looked at.
    last_rv: u64,
    initial: Option<(Vec<Arc<Value>>, bool)>,
    deadline: Option<Instant>,
    next_bookmark: Instant,
    done: bool,
}

/// The body of a watch response: newline-delimited JSON events until the timeout, a dropped
/// watch, cancellation, or a 410.
pub fn watch_stream(
    store: Arc<Store>,
    spec: WatchSpec,
    cancel: CancellationToken,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let signal = store.subscribe();
    let drops_at_start = signal.borrow().drops;
    let now = Instant::now();
    let (last_rv, initial) = match spec.start {
        WatchStart::After(rv) => (rv, None),
        WatchStart::Initial { end_bookmark } => {
            let st = store.read();
            let ns = spec.namespace.as_deref();
            let objs: Vec<Arc<Value>> = match spec.fields.exact_name() {
                Some(name) if spec.def.namespaced == ns.is_some() => {
                    let key = (ns.unwrap_or_default().to_string(), name.to_string());
                    st.get(&spec.def.gr, &key)
                        .into_iter()
                        .filter(|o| spec.matches(&spec.def, o))
                        .collect()
                }
                _ => st
                    .select(&spec.def.gr, ns, None, &spec.labels)
                    .filter(|o| spec.matches(&spec.def, o))
                    .cloned()
                    .collect(),
            };
            (st.resource_version(), Some((objs, end_bookmark)))
        }
    };
    let watcher = Watcher {
        deadline: spec.timeout.map(|t| now + t),
        next_bookmark: now + spec.bookmark_interval,
        store,
        spec,
        signal,
        drops_at_start,
        cancel,
        last_rv,
        initial,
        done: false,
    };
    futures::stream::unfold(watcher, |mut w| async move {
        let chunk = w.next_chunk().await?;
        Some((Ok(Bytes::from(chunk)), w))
    })
}

impl Watcher {
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        if let Some(chunk) = self.initial_chunk() {
            return Some(chunk);
        }
        loop {
            if self.signal.borrow().drops != self.drops_at_start || self.cancel.is_cancelled() {
                return None;
            }
            if let Some(chunk) = self.collect() {
                return Some(chunk);
            }
            let deadline = self.deadline;
            let bookmark_at = self.spec.bookmarks.then_some(self.next_bookmark);
            tokio::select! {
                changed = self.signal.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.cancel.cancelled() => return None,
                _ = sleep_until(deadline) => return None,
                _ = sleep_until(bookmark_at) => {
                    self.next_bookmark = Instant::now() + self.spec.bookmark_interval;
                    if let Some(chunk) = self.bookmark() {
                        return Some(chunk);
                    }
                }
            }
        }
    }

    fn initial_chunk(&mut self) -> Option<Vec<u8>> {
        let (objs, end_bookmark) = self.initial.as_mut()?;
        let mut buf = Vec::new();
        let n = objs.len().min(BATCH);
        for obj in objs.drain(..n) {
            render::event_line(&mut buf, "ADDED", &obj, &self.spec.api_version);
        }
        if objs.is_empty() {
            if *end_bookmark {
                render::bookmark_line(
                    &mut buf,
                    &self.spec.def,
                    &self.spec.api_version,
                    self.last_rv,
                    true,
                );
            }
            self.initial = None;
        }
        if buf.is_empty() { None } else { Some(buf) }
    }

    /// Matching events after `last_rv`, or the 410 line when the history no longer reaches back.
    fn collect(&mut self) -> Option<Vec<u8>> {
        let mut events: Vec<(EventType, Arc<Value>)> = Vec::new();
        {
            let st = self.store.read();
            if self.last_rv < st.floor() {
                let mut buf = Vec::new();
                render::expired_line(&mut buf, self.last_rv, st.floor());
                self.done = true;
                return Some(buf);
            }
            // Non-matching events are skipped without limit so the position always reaches
            // the newest event; only matching ones are capped per chunk.
            for e in st.events_after(self.last_rv) {
                if events.len() == BATCH {
                    break;
                }
                self.last_rv = e.rv;
                if self.spec.matches(&e.def, &e.object) {
                    events.push((e.kind, e.object.clone()));
                }
            }
        }
        if events.is_empty() {
            return None;
        }
        let mut buf = Vec::with_capacity(events.len() * 512);
        for (kind, obj) in &events {
            render::event_line(&mut buf, kind.as_str(), obj, &self.spec.api_version);
        }
        Some(buf)
    }

    /// A bookmark at the newest RV once every event up to it has been looked at; sent every
    /// interval, as the real server does, so idle watchers keep a fresh resume point.
    fn bookmark(&mut self) -> Option<Vec<u8>> {
        if let Some(chunk) = self.collect() {
            return Some(chunk);
        }
        let rv = {
            let st = self.store.read();
            if st.events_after(self.last_rv).next().is_some() {
                return None;
            }
            st.resource_version()
        };
        self.last_rv = rv;
        let mut buf = Vec::new();
        render::bookmark_line(&mut buf, &self.spec.def, &self.spec.api_version, rv, false);
        Some(buf)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
