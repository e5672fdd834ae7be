//! The notification configuration: the ConfigMap's `service.<type>[.<name>]`,
//! `template.<name>`, `trigger.<name>`, `defaultTriggers[.<service>]` and `subscriptions` keys,
//! with `$key` references in service settings replaced from the Secret, over the built-in
//! templates and triggers ([`super::defaults`]).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::defaults;
use super::subscriptions::{self, Destinations, GlobalSubscription};
use super::triggers::Condition;

/// A configured service. `Debug` names it only: its settings hold the Secret's values.
#[derive(Clone, PartialEq)]
pub struct ServiceConfig {
    /// `webhook`, `slack`, `teams`, `email`, `opsgenie`, `pagerdutyv2`, ...
    pub kind: String,
    /// The name subscriptions use (the type when the key has no name).
    pub name: String,
    /// The settings, `$key` references replaced.
    pub options: Value,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Everything the ConfigMap and Secret configure.
#[derive(Debug, Clone, Default)]
pub struct NotificationConfig {
    /// Services by name.
    pub services: BTreeMap<String, ServiceConfig>,
    /// Templates by name, as written (each string field a Go template).
    pub templates: BTreeMap<String, Value>,
    /// Triggers by name.
    pub triggers: BTreeMap<String, Vec<Condition>>,
    /// Triggers of subscriptions that name none.
    pub default_triggers: Vec<String>,
    /// `defaultTriggers.<service>`: per-service default triggers.
    pub service_default_triggers: BTreeMap<String, Vec<String>>,
    /// The ConfigMap's `subscriptions`.
    pub subscriptions: Vec<GlobalSubscription>,
    /// The Secret's values, for `.secrets` in templates. Never logged.
    secrets: BTreeMap<String, String>,
    /// Keys that did not parse, with why; the other keys still apply.
    pub errors: Vec<String>,
}

static SECRET_REF: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\$[\w-]+").ok());

impl NotificationConfig {
    /// The built-in templates and triggers alone (no ConfigMap).
    pub fn builtin() -> Self {
        let mut config = NotificationConfig::default();
        for (key, value) in defaults::entries() {
            config.apply(&key, &value);
        }
        config
    }

    /// Parses the ConfigMap's `data` and the Secret's decoded `data` over the built-ins.
    pub fn parse(data: &BTreeMap<String, String>, secret: &BTreeMap<String, Vec<u8>>) -> Self {
        let mut config = NotificationConfig::builtin();
        config.secrets = secret
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        for (key, value) in data {
            config.apply(key, value);
        }
        config
    }

    /// The Secret's values (the `.secrets` template variable).
    pub fn secrets(&self) -> &BTreeMap<String, String> {
        &self.secrets
    }

    fn apply(&mut self, key: &str, value: &str) {
        if let Err(error) = self.try_apply(key, value) {
            self.errors.push(format!("{key}: {error}"));
        }
    }

    fn try_apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        if let Some(name) = key.strip_prefix("template.") {
            let template: Value = yaml(value)?;
            if !template.is_object() {
                return Err("a template is a map (message, slack, email, ...)".into());
            }
            self.templates.insert(name.to_string(), template);
        } else if let Some(name) = key.strip_prefix("trigger.") {
            let conditions: Vec<Condition> = yaml(value)?;
            self.triggers.insert(name.to_string(), conditions);
        } else if let Some(rest) = key.strip_prefix("service.") {
            let (kind, name) = match rest.split('.').collect::<Vec<_>>()[..] {
                [kind] => (kind, kind),
                [kind, name] => (kind, name),
                _ => {
                    return Err(format!(
                        "invalid service key; expected 'service.<type>(.<name>)' but got '{key}'"
                    ));
                }
            };
            let mut options: Value = yaml(value)?;
            replace_secrets(&mut options, &self.secrets);
            self.services.insert(
                name.to_string(),
                ServiceConfig {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    options,
                },
            );
        } else if key == "defaultTriggers" {
            self.default_triggers = yaml(value)?;
        } else if let Some(service) = key.strip_prefix("defaultTriggers.") {
            self.service_default_triggers
                .insert(service.to_string(), yaml(value)?);
        } else if key == "subscriptions" {
            self.subscriptions = yaml(value)?;
        }
        Ok(())
    }

    /// Every destination subscribed for an object with these labels and annotations, by
    /// trigger: the global subscriptions, then the annotations'.
    pub fn destinations(
        &self,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Destinations {
        let mut all =
            subscriptions::from_global(&self.subscriptions, &self.default_triggers, labels);
        subscriptions::merge(
            &mut all,
            subscriptions::from_annotations(
                annotations,
                &self.default_triggers,
                &self.service_default_triggers,
            ),
        );
        all
    }
}

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_saphyr::from_str(text).map_err(|e| e.to_string())
}

/// Replaces every `$key` in the string leaves of `value` with the Secret's value for `key`
/// (left as written when the Secret has no such key, as upstream does).
fn replace_secrets(value: &mut Value, secrets: &BTreeMap<String, String>) {
    match value {
        Value::String(text) => {
            if let Some(pattern) = SECRET_REF.as_ref() {
                let replaced = pattern.replace_all(text, |captures: &regex::Captures<'_>| {
                    let reference = &captures[0];
                    secrets
                        .get(&reference[1..])
                        .cloned()
                        .unwrap_or_else(|| reference.to_string())
                });
                *text = replaced.into_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_secrets(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_secrets(v, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn services_templates_triggers_and_secrets() {
        let config = NotificationConfig::parse(
            &data(&[
                (
                    "service.slack",
                    "token: $slack-token\napiURL: http://127.0.0.1:1/api/\n",
                ),
                (
                    "service.webhook.hook",
                    "url: http://x/$missing\nheaders:\n- name: Authorization\n  value: Bearer $hook_token\n",
                ),
                ("template.mine", "message: hi {{.rollout.metadata.name}}\n"),
                ("trigger.on-rollout-aborted", "- send: [mine]\n"),
                ("defaultTriggers", "- on-rollout-aborted\n"),
                ("defaultTriggers.slack", "[on-rollout-paused]"),
                (
                    "subscriptions",
                    "- recipients: [slack:ops]\n  triggers: [on-rollout-completed]\n",
                ),
                ("service.bad.too.many", "{}"),
                ("template.broken", "message: [unclosed\n"),
            ]),
            &BTreeMap::from([
                ("slack-token".to_string(), b"xoxb-1".to_vec()),
                ("hook_token".to_string(), b"t0k".to_vec()),
            ]),
        );
        let slack = &config.services["slack"];
        assert_eq!(slack.kind, "slack");
        assert_eq!(slack.options["token"], "xoxb-1");
        let hook = &config.services["hook"];
        assert_eq!(hook.kind, "webhook");
        assert_eq!(hook.options["url"], "http://x/$missing");
        assert_eq!(hook.options["headers"][0]["value"], "Bearer t0k");
        assert!(
            !format!("{slack:?}").contains("xoxb"),
            "secrets stay out of Debug"
        );
        assert_eq!(config.triggers["on-rollout-aborted"][0].send, ["mine"]);
        // The built-ins are there unless overridden.
        assert_eq!(
            config.triggers["on-rollout-completed"][0].send,
            ["rollout-completed"]
        );
        assert_eq!(config.default_triggers, ["on-rollout-aborted"]);
        assert_eq!(
            config.service_default_triggers["slack"],
            ["on-rollout-paused"]
        );
        assert_eq!(config.subscriptions[0].recipients, ["slack:ops"]);
        assert_eq!(config.errors.len(), 2, "{:?}", config.errors);
        assert!(
            config
                .errors
                .iter()
                .any(|e| e.starts_with("service.bad.too.many"))
        );
        assert!(
            config
                .errors
                .iter()
                .any(|e| e.starts_with("template.broken"))
        );
        assert_eq!(config.secrets()["hook_token"], "t0k");
    }

    #[test]
    fn the_builtins_cover_upstreams_triggers() {
        let config = NotificationConfig::builtin();
        for trigger in [
            "on-rollout-completed",
            "on-rollout-step-completed",
            "on-rollout-updated",
            "on-rollout-aborted",
            "on-rollout-paused",
            "on-analysis-run-running",
            "on-analysis-run-error",
            "on-analysis-run-failed",
            "on-scaling-replica-set",
        ] {
            let conditions = &config.triggers[trigger];
            for template in &conditions[0].send {
                assert!(
                    config.templates.contains_key(template),
                    "{trigger}: {template}"
                );
            }
        }
        assert!(config.errors.is_empty(), "{:?}", config.errors);
    }
}
