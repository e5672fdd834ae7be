//! Deduplication: one message per Event, trigger, template and destination, remembered in a
//! bounded set so that an Event handed over twice (or a destination subscribed twice) sends
//! once.

use std::collections::{HashSet, VecDeque};

use super::subscriptions::Destination;

/// The identity of one message.
pub fn key(event: &str, trigger: &str, template: &str, destination: &Destination) -> String {
    format!(
        "{event}\u{0}{trigger}\u{0}{template}\u{0}{}\u{0}{}",
        destination.service, destination.recipient
    )
}

/// The keys of the last `capacity` messages.
#[derive(Debug)]
pub struct Seen {
    capacity: usize,
    order: VecDeque<String>,
    keys: HashSet<String>,
}

impl Seen {
    /// An empty set keeping at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Seen {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            keys: HashSet::new(),
        }
    }

    /// Adds `key`; `false` when it was there already (the message was sent).
    pub fn insert(&mut self, key: String) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.keys.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.keys.insert(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_sent_once_and_the_oldest_are_forgotten() {
        let slack = Destination {
            service: "slack".into(),
            recipient: "ops".into(),
        };
        let mut seen = Seen::new(2);
        let first = key("ev1", "on-rollout-aborted", "rollout-aborted", &slack);
        assert!(seen.insert(first.clone()));
        assert!(!seen.insert(first.clone()));
        let other = key(
            "ev1",
            "on-rollout-aborted",
            "rollout-aborted",
            &Destination {
                service: "slack".into(),
                recipient: "dev".into(),
            },
        );
        assert!(seen.insert(other));
        assert!(seen.insert(key("ev2", "t", "t", &slack)));
        // Capacity 2: the first key was forgotten.
        assert!(seen.insert(first));
    }
}
