//! Who is told: subscriptions from a Rollout's annotations
//! (`notifications.argoproj.io/subscribe.<trigger>.<service>: <recipient>;...`) and the
//! ConfigMap's `subscriptions` (with label selectors), merged by trigger.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ANNOTATION_PREFIX;

/// One service and recipient (a Slack channel, an address, a Teams recipient name, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Destination {
    /// The service name (`service.<type>[.<name>]`'s name).
    pub service: String,
    /// The recipient; empty for services that have one target (a webhook).
    pub recipient: String,
}

/// Destinations by trigger name, each list without repeats.
pub type Destinations = BTreeMap<String, Vec<Destination>>;

fn add(destinations: &mut Destinations, trigger: &str, destination: Destination) {
    let list = destinations.entry(trigger.to_string()).or_default();
    // One message per event per subscription, however many ways it was subscribed.
    if !list.contains(&destination) {
        list.push(destination);
    }
}

fn recipients(value: &str) -> Vec<String> {
    if value.is_empty() {
        return vec![String::new()];
    }
    value
        .split(';')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// The destinations a Rollout's annotations subscribe, by trigger. An annotation naming only a
/// service (`subscribe.<service>`) subscribes the service's default triggers, else `defaults`.
pub fn from_annotations(
    annotations: &BTreeMap<String, String>,
    defaults: &[String],
    service_defaults: &BTreeMap<String, Vec<String>>,
) -> Destinations {
    let prefix = format!("{ANNOTATION_PREFIX}/subscribe.");
    let mut destinations = Destinations::new();
    for (key, value) in annotations {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let (trigger, service) = match rest.split_once('.') {
            Some((trigger, service)) => (Some(trigger), service.split('.').next().unwrap_or("")),
            None => (None, rest),
        };
        let triggers: Vec<String> = match trigger {
            Some(trigger) => vec![trigger.to_string()],
            None => service_defaults
                .get(service)
                .cloned()
                .unwrap_or_else(|| defaults.to_vec()),
        };
        for recipient in recipients(value) {
            for trigger in &triggers {
                add(
                    &mut destinations,
                    trigger,
                    Destination {
                        service: service.to_string(),
                        recipient: recipient.clone(),
                    },
                );
            }
        }
    }
    destinations
}

/// One entry of the ConfigMap's `subscriptions` list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalSubscription {
    /// `<service>:<recipient>` (or `<service>`) entries.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Triggers; empty means the default triggers.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// A label selector the Rollout must match (empty: every Rollout).
    #[serde(default)]
    pub selector: String,
}

/// The destinations the global subscriptions give a Rollout labelled `labels`.
pub fn from_global(
    subscriptions: &[GlobalSubscription],
    defaults: &[String],
    labels: &BTreeMap<String, String>,
) -> Destinations {
    let mut destinations = Destinations::new();
    for subscription in subscriptions {
        if !selector_matches(&subscription.selector, labels) {
            continue;
        }
        let triggers = if subscription.triggers.is_empty() {
            defaults
        } else {
            &subscription.triggers
        };
        for trigger in triggers {
            for entry in &subscription.recipients {
                let (service, recipient) = entry.split_once(':').unwrap_or((entry, ""));
                add(
                    &mut destinations,
                    trigger,
                    Destination {
                        service: service.to_string(),
                        recipient: recipient.to_string(),
                    },
                );
            }
        }
    }
    destinations
}

/// Adds `other`'s destinations to `into`, keeping each once.
pub fn merge(into: &mut Destinations, other: Destinations) {
    for (trigger, list) in other {
        for destination in list {
            add(into, &trigger, destination);
        }
    }
}

/// Whether `labels` satisfy a Kubernetes label selector string: comma-separated
/// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` and `!k`. An empty selector
/// matches everything; one that does not parse matches nothing.
pub fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    split_requirements(selector)
        .iter()
        .all(|requirement| requirement_matches(requirement.trim(), labels))
}

/// Splits on commas outside parentheses.
fn split_requirements(selector: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn requirement_matches(requirement: &str, labels: &BTreeMap<String, String>) -> bool {
    if let Some((key, value)) = requirement.split_once("!=") {
        return labels.get(key.trim()).map(String::as_str) != Some(value.trim());
    }
    if let Some((key, value)) = requirement
        .split_once("==")
        .or_else(|| requirement.split_once('='))
    {
        return labels.get(key.trim()).map(String::as_str) == Some(value.trim());
    }
    let set = |rest: &str| -> Option<Vec<String>> {
        let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    if let Some((key, rest)) = requirement.split_once(" notin ") {
        return match set(rest) {
            Some(values) => labels.get(key.trim()).is_none_or(|v| !values.contains(v)),
            None => false,
        };
    }
    if let Some((key, rest)) = requirement.split_once(" in ") {
        return match set(rest) {
            Some(values) => labels.get(key.trim()).is_some_and(|v| values.contains(v)),
            None => false,
        };
    }
    if let Some(key) = requirement.strip_prefix('!') {
        return !labels.contains_key(key.trim());
    }
    labels.contains_key(requirement)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn dest(service: &str, recipient: &str) -> Destination {
        Destination {
            service: service.into(),
            recipient: recipient.into(),
        }
    }

    #[test]
    fn annotations_subscribe_each_recipient_to_the_trigger() {
        let annotations = map(&[
            (
                "notifications.argoproj.io/subscribe.on-rollout-aborted.slack",
                "ops; dev;",
            ),
            (
                "notifications.argoproj.io/subscribe.on-rollout-completed.webhook",
                "",
            ),
            ("unrelated/annotation", "x"),
        ]);
        let got = from_annotations(&annotations, &[], &BTreeMap::new());
        assert_eq!(
            got["on-rollout-aborted"],
            vec![dest("slack", "ops"), dest("slack", "dev")]
        );
        assert_eq!(got["on-rollout-completed"], vec![dest("webhook", "")]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_service_only_annotation_uses_the_default_triggers() {
        let annotations = map(&[("notifications.argoproj.io/subscribe.slack", "ops")]);
        let defaults = vec![
            "on-rollout-aborted".to_string(),
            "on-rollout-paused".to_string(),
        ];
        let got = from_annotations(&annotations, &defaults, &BTreeMap::new());
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            ["on-rollout-aborted", "on-rollout-paused"]
        );
        let per_service =
            BTreeMap::from([("slack".to_string(), vec!["on-rollout-updated".to_string()])]);
        let got = from_annotations(&annotations, &defaults, &per_service);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["on-rollout-updated"]);
    }

    #[test]
    fn global_subscriptions_honour_selectors_and_merge_without_repeats() {
        let subscriptions = vec![GlobalSubscription {
            recipients: vec!["slack:ops".into(), "webhook".into()],
            triggers: vec!["on-rollout-aborted".into()],
            selector: "team=payments,tier in (web, api)".into(),
        }];
        let labels = map(&[("team", "payments"), ("tier", "web")]);
        let mut all = from_global(&subscriptions, &[], &labels);
        assert_eq!(
            all["on-rollout-aborted"],
            vec![dest("slack", "ops"), dest("webhook", "")]
        );
        assert!(from_global(&subscriptions, &[], &map(&[("team", "payments")])).is_empty());
        merge(
            &mut all,
            from_annotations(
                &map(&[(
                    "notifications.argoproj.io/subscribe.on-rollout-aborted.slack",
                    "ops",
                )]),
                &[],
                &BTreeMap::new(),
            ),
        );
        assert_eq!(all["on-rollout-aborted"].len(), 2);
    }

    #[test]
    fn selectors() {
        let labels = map(&[("a", "1"), ("b", "2")]);
        for (selector, want) in [
            ("", true),
            ("a=1", true),
            ("a==1,b=2", true),
            ("a!=1", false),
            ("c!=1", true),
            ("a", true),
            ("!a", false),
            ("!c", true),
            ("a in (1,3)", true),
            ("a notin (1,3)", false),
            ("c notin (1)", true),
            ("a in 1", false),
        ] {
            assert_eq!(selector_matches(selector, &labels), want, "{selector}");
        }
    }
}
