//! Which Rollouts an Alertmanager notification aborts (pure: every input, the clock included,
//! is a parameter), the `davy.dev/abort-on-alert` matcher language, and the bounded
//! de-duplication memory of notifications.
//!
//! An alert aborts a Rollout when all of these hold:
//! * the alert is `firing` (a `resolved` alert never aborts);
//! * the Rollout opted in: its `davy.dev/abort-on-alert` annotation holds Prometheus-style
//!   matchers (`alertname="HighErrorRate",service=~"web|api"`, regexes anchored) that all
//!   match the alert's labels, or the alert's labels name it (by default `rollout=<name>` and
//!   `namespace=<namespace>`, both required);
//! * the Rollout is in the middle of an update: a current pod hash that is not the stable one
//!   (not fully promoted), and not already aborted;
//! * the alert's `startsAt` is not before the update began. "Update began" is the creation time
//!   of the ReplicaSet of the current pod hash: the controller creates it when the update
//!   starts, it is stored by the API server (survives controller restarts) and no later status
//!   change moves it. An alert that was already firing when the update began does not abort
//!   it, since the update may be the fix.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;
use regex::Regex;

use super::payload::{Alert, AlertStatus, Payload};
use crate::api::Rollout;
use crate::api::consts::label;

/// The Rollout annotation holding the matchers of the alerts that abort it.
pub const ABORT_ON_ALERT_ANNOTATION: &str = "davy.dev/abort-on-alert";

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (anchored regex)
    Regex,
    /// `!~` (anchored regex)
    NotRegex,
}

/// One label matcher; an absent label has the value `""`, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or regex source as written.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Whether `labels` satisfy this matcher.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(regex)) => regex.is_match(value),
            (MatchOp::NotRegex, Some(regex)) => !regex.is_match(value),
            // Regex matchers are always built with their regex.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// Why an `abort-on-alert` annotation cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// Nothing to match on (an empty list would match every alert).
    #[error("no matchers")]
    Empty,
    /// A syntax error at a character offset.
    #[error("at offset {at}: {what}")]
    Syntax {
        /// Byte offset in the text.
        at: usize,
        /// What was expected.
        what: String,
    },
    /// A regex value does not compile.
    #[error("bad regex {value:?}: {error}")]
    Regex {
        /// The regex source.
        value: String,
        /// The compiler's message.
        error: String,
    },
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.text[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn error(&self, what: impl Into<String>) -> MatcherError {
        MatcherError::Syntax {
            at: self.at,
            what: what.into(),
        }
    }

    fn name(&mut self) -> Result<String, MatcherError> {
        let rest = &self.text[self.at..];
        let len = rest
            .char_indices()
            .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return Err(self.error("expected a label name"));
        }
        self.at += len;
        Ok(rest[..len].to_string())
    }

    fn op(&mut self) -> Result<MatchOp, MatcherError> {
        for (token, op) in [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ] {
            if self.eat(token) {
                return Ok(op);
            }
        }
        Err(self.error("expected one of =, !=, =~, !~"))
    }

    /// A double-quoted value (escapes `\"`, `\\`, `\n`, `\t`) or an unquoted one up to `,`/`}`.
    fn value(&mut self) -> Result<String, MatcherError> {
        if !self.eat("\"") {
            let rest = &self.text[self.at..];
            let len = rest.find([',', '}']).unwrap_or(rest.len());
            if rest[..len].contains(['"', '=', '~']) {
                // `a=="x"` and friends: a typo, not a value.
                return Err(
                    self.error("expected a value (quote values that hold `\"`, `=` or `~`)")
                );
            }
            self.at += len;
            return Ok(rest[..len].trim().to_string());
        }
        let mut value = String::new();
        let mut chars = self.text[self.at..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(self.error("unterminated quoted value"))
    }
}

/// Parses `a="x",b!~"y.*"` (optionally inside `{}`; values may be unquoted; a trailing comma is
/// allowed). Regexes are anchored at both ends, as in Prometheus.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, MatcherError> {
    let mut cursor = Cursor { text, at: 0 };
    cursor.skip_space();
    let braced = cursor.eat("{");
    let mut matchers = Vec::new();
    loop {
        cursor.skip_space();
        match cursor.peek() {
            None if !braced => break,
            None => return Err(cursor.error("expected `}`")),
            Some('}') if braced => {
                cursor.at += 1;
                cursor.skip_space();
                if cursor.peek().is_some() {
                    return Err(cursor.error("unexpected text after `}`"));
                }
                break;
            }
            Some(_) => {}
        }
        let name = cursor.name()?;
        cursor.skip_space();
        let op = cursor.op()?;
        cursor.skip_space();
        let value = cursor.value()?;
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|error| {
                    MatcherError::Regex {
                        value: value.clone(),
                        error: error.to_string(),
                    }
                })?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        matchers.push(Matcher {
            name,
            op,
            value,
            regex,
        });
        cursor.skip_space();
        match cursor.peek() {
            Some(',') => cursor.at += 1,
            Some('}') if braced => {}
            None => {}
            Some(_) => return Err(cursor.error("expected `,`")),
        }
    }
    if matchers.is_empty() {
        return Err(MatcherError::Empty);
    }
    Ok(matchers)
}

/// The label names that let an alert name its Rollout (`--alert-rollout-label`,
/// `--alert-namespace-label`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelNames {
    /// Label holding the Rollout name (default `rollout`).
    pub rollout: String,
    /// Label holding the Rollout namespace (default `namespace`).
    pub namespace: String,
}

impl Default for LabelNames {
    fn default() -> Self {
        LabelNames {
            rollout: "rollout".to_string(),
            namespace: "namespace".to_string(),
        }
    }
}

/// What matching needs to know about one Rollout.
#[derive(Debug, Clone)]
pub struct RolloutView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The parsed `abort-on-alert` annotation: absent, or its matchers, or why it is unusable.
    pub matchers: Option<Result<Vec<Matcher>, MatcherError>>,
    /// In the middle of an update and not aborted ([`mid_update`]).
    pub mid_update: bool,
    /// When the current update began ([`update_began`]); `None` when unknown (no ReplicaSet of
    /// the current hash yet), which lets no alert act.
    pub update_began: Option<DateTime<Utc>>,
}

/// A Rollout in the middle of an update: it has a stable and a current pod hash that differ
/// (not fully promoted, not an initial deploy) and it is not already aborted.
pub fn mid_update(rollout: &Rollout) -> bool {
    let Some(status) = &rollout.status else {
        return false;
    };
    !status.abort
        && !status.current_pod_hash.is_empty()
        && !status.stable_rs.is_empty()
        && status.stable_rs != status.current_pod_hash
}

/// When the Rollout's current update began: the creation time of its ReplicaSet of the current
/// pod hash (among `replica_sets`, those of its namespace).
pub fn update_began(rollout: &Rollout, replica_sets: &[ReplicaSet]) -> Option<DateTime<Utc>> {
    let hash = &rollout.status.as_ref()?.current_pod_hash;
    let uid = rollout.metadata.uid.as_deref();
    replica_sets
        .iter()
        .filter(|rs| {
            rs.labels().get(label::POD_TEMPLATE_HASH) == Some(hash)
                && (uid.is_none()
                    || rs
                        .owner_references()
                        .iter()
                        .any(|owner| Some(owner.uid.as_str()) == uid))
        })
        .filter_map(|rs| rs.metadata.creation_timestamp.as_ref())
        .map(|time| crate::analysis::providers::chrono_time(time.0))
        .min()
}

/// The [`RolloutView`] of a Rollout.
pub fn view(rollout: &Rollout, update_began: Option<DateTime<Utc>>) -> RolloutView {
    RolloutView {
        namespace: rollout.namespace().unwrap_or_default(),
        name: rollout.name_any(),
        matchers: rollout
            .annotations()
            .get(ABORT_ON_ALERT_ANNOTATION)
            .map(|text| parse_matchers(text)),
        mid_update: mid_update(rollout),
        update_began,
    }
}

/// Whether `alert` is meant for the Rollout, ignoring state and time.
pub fn targets(alert: &Alert, rollout: &RolloutView, names: &LabelNames) -> bool {
    let by_labels = alert.labels.get(&names.rollout) == Some(&rollout.name)
        && alert.labels.get(&names.namespace) == Some(&rollout.namespace);
    let by_annotation = matches!(&rollout.matchers, Some(Ok(matchers))
        if matchers.iter().all(|matcher| matcher.matches(&alert.labels)));
    by_labels || by_annotation
}

/// Whether the Rollout may be aborted by one of the notification's firing alerts (before its
/// update start is known): used to read ReplicaSets only for those.
pub fn may_abort(payload: &Payload, rollout: &RolloutView, names: &LabelNames) -> bool {
    rollout.mid_update
        && payload
            .alerts
            .iter()
            .any(|alert| alert.status == AlertStatus::Firing && targets(alert, rollout, names))
}

/// One decided abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertAbort {
    /// Rollout namespace.
    pub namespace: String,
    /// Rollout name.
    pub name: String,
    /// The alert's `alertname`.
    pub alertname: String,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// The reason written to `davy.dev/abort-reason` and the event.
    pub message: String,
}

/// `Aborted by alert HighErrorRate (fingerprint be75d0779c1640ee)`.
pub fn abort_message(alert: &Alert) -> String {
    let name = if alert.name().is_empty() {
        "<unnamed>"
    } else {
        alert.name()
    };
    if alert.fingerprint.is_empty() {
        format!("Aborted by alert {name}")
    } else {
        format!(
            "Aborted by alert {name} (fingerprint {})",
            alert.fingerprint
        )
    }
}

/// The aborts a notification causes: at most one per Rollout, by the earliest-started
/// qualifying alert (ties by fingerprint), in the order of `rollouts`.
pub fn decide(payload: &Payload, rollouts: &[RolloutView], names: &LabelNames) -> Vec<AlertAbort> {
    rollouts
        .iter()
        .filter(|rollout| rollout.mid_update)
        .filter_map(|rollout| {
            let began = rollout.update_began?;
            payload
                .alerts
                .iter()
                .filter(|alert| alert.status == AlertStatus::Firing)
                .filter(|alert| alert.starts_at >= began)
                .filter(|alert| targets(alert, rollout, names))
                .min_by(|a, b| (a.starts_at, &a.fingerprint).cmp(&(b.starts_at, &b.fingerprint)))
                .map(|alert| AlertAbort {
                    namespace: rollout.namespace.clone(),
                    name: rollout.name.clone(),
                    alertname: alert.name().to_string(),
                    fingerprint: alert.fingerprint.clone(),
                    message: abort_message(alert),
                })
        })
        .collect()
}

/// The de-duplication key of a notification: its `groupKey` plus the sorted
/// `fingerprint:status` pairs. The group key alone is too coarse (updates of a group share it);
/// with the pairs, the same notification delivered twice (retries, HA peers) has one key.
pub fn dedup_key(payload: &Payload) -> String {
    let mut pairs: Vec<String> = payload
        .alerts
        .iter()
        .map(|alert| format!("{}:{}", alert.fingerprint, alert.status.as_str()))
        .collect();
    pairs.sort();
    format!("{}\n{}", payload.group_key, pairs.join(","))
}

/// Recently seen notification keys, bounded in number and age.
#[derive(Debug)]
pub struct Dedup {
    capacity: usize,
    ttl: Duration,
    seen: HashMap<String, DateTime<Utc>>,
    order: VecDeque<(String, DateTime<Utc>)>,
}

impl Dedup {
    /// Remembers at most `capacity` keys, each for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Dedup {
        Dedup {
            capacity: capacity.max(1),
            ttl,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `key` at `now`; `true` the first time within the TTL, `false` for a duplicate.
    pub fn first_time(&mut self, key: &str, now: DateTime<Utc>) -> bool {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        // Drop expired entries (oldest first) and any stale queue entry of a forgotten key.
        while let Some((old, at)) = self.order.front() {
            let current = self.seen.get(old) == Some(at);
            if current && now.signed_duration_since(*at) < ttl {
                break;
            }
            if current {
                self.seen.remove(old);
            }
            self.order.pop_front();
        }
        if self.seen.contains_key(key) {
            return false;
        }
        // Forgotten keys leave queue entries behind: cap the queue too.
        while self.seen.len() >= self.capacity || self.order.len() >= 2 * self.capacity {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&old) == Some(&at) {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.to_string(), now);
        self.order.push_back((key.to_string(), now));
        true
    }

    /// Forgets `key` (its processing failed, so a redelivery must be processed).
    pub fn forget(&mut self, key: &str) {
        self.seen.remove(key);
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
#[path = "matching_tests.rs"]
mod tests;
