//! Request counters per transport and verb, so a benchmark can tell how many API requests a
//! controller in another process made (it comes over HTTP; in-process clients do not).

use std::sync::atomic::{AtomicU64, Ordering};

use super::faults::Verb;

/// How a request reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The `tower::Service` handed to in-process kube clients.
    InProcess,
    /// The loopback HTTP listener.
    Http,
}

/// The verbs in the order of [`RequestCounts::by_verb`]; `None` stands for discovery and the
/// other non-resource paths.
const VERBS: [Option<Verb>; 9] = [
    Some(Verb::Get),
    Some(Verb::List),
    Some(Verb::Watch),
    Some(Verb::Create),
    Some(Verb::Update),
    Some(Verb::Patch),
    Some(Verb::Delete),
    Some(Verb::DeleteCollection),
    None,
];

fn slot(verb: Option<Verb>) -> usize {
    VERBS
        .iter()
        .position(|v| *v == verb)
        .unwrap_or(VERBS.len() - 1)
}

/// Lock-free counters, one per (transport, verb).
#[derive(Debug, Default)]
pub struct RequestCounters {
    counts: [[AtomicU64; VERBS.len()]; 2],
}

impl RequestCounters {
    pub fn record(&self, transport: Transport, verb: Option<Verb>) {
        let t = match transport {
            Transport::InProcess => 0,
            Transport::Http => 1,
        };
        self.counts[t][slot(verb)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, transport: Transport) -> RequestCounts {
        let t = match transport {
            Transport::InProcess => 0,
            Transport::Http => 1,
        };
        let n = |verb: Option<Verb>| self.counts[t][slot(verb)].load(Ordering::Relaxed);
        RequestCounts {
            get: n(Some(Verb::Get)),
            list: n(Some(Verb::List)),
            watch: n(Some(Verb::Watch)),
            create: n(Some(Verb::Create)),
            update: n(Some(Verb::Update)),
            patch: n(Some(Verb::Patch)),
            delete: n(Some(Verb::Delete)) + n(Some(Verb::DeleteCollection)),
            other: n(None),
        }
    }
}

/// Requests served over one transport so far, by verb (a watch counts once, when it opens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Reads of one object.
    pub get: u64,
    /// Lists.
    pub list: u64,
    /// Watches opened.
    pub watch: u64,
    /// Creates.
    pub create: u64,
    /// Updates (PUT).
    pub update: u64,
    /// Patches.
    pub patch: u64,
    /// Deletes of one object and of collections.
    pub delete: u64,
    /// Discovery, OpenAPI, `/version` and the other non-resource paths (and unroutable ones).
    pub other: u64,
}

impl RequestCounts {
    /// Every request, all verbs.
    pub fn total(&self) -> u64 {
        self.get
            + self.list
            + self.watch
            + self.create
            + self.update
            + self.patch
            + self.delete
            + self.other
    }

    /// Writes: create, update, patch and delete.
    pub fn writes(&self) -> u64 {
        self.create + self.update + self.patch + self.delete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_transport_and_verb() {
        let c = RequestCounters::default();
        c.record(Transport::Http, Some(Verb::List));
        c.record(Transport::Http, Some(Verb::List));
        c.record(Transport::Http, Some(Verb::DeleteCollection));
        c.record(Transport::Http, None);
        c.record(Transport::InProcess, Some(Verb::Patch));
        let http = c.snapshot(Transport::Http);
        assert_eq!(
            (http.list, http.delete, http.other, http.total()),
            (2, 1, 1, 4)
        );
        assert_eq!(http.writes(), 1);
        let local = c.snapshot(Transport::InProcess);
        assert_eq!((local.patch, local.total()), (1, 1));
    }
}
