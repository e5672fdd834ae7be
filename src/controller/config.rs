//! The `argo-rollouts-config` ConfigMap in the controller's namespace: what upstream reads from
//! it (the plugin lists `trafficRouterPlugins`, `metricProviderPlugins` and `stepPlugins`),
//! parsed by the pure [`parse`], and the watch that keeps the parsed [`RolloutsConfig`]
//! current without a restart ([`watch`]).
//!
//! Upstream downloads each listed plugin binary and refuses to start when an entry is
//! malformed. Davy builds its extensions in and downloads nothing: an entry naming a built-in
//! plugin is accepted (its `location` and `sha256` are not needed), any other entry is a
//! [`ConfigProblem`] that the controller logs and records as a Warning event on the ConfigMap,
//! because a Rollout using that plugin would fail.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Event as KubeEvent, ObjectReference};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;

use super::executor::event_body;
use crate::analysis::providers::{alertmanager, judge, scrape};
use crate::rollout::EventType;
use crate::traffic::gateway;

/// The ConfigMap's name (upstream's `DefaultRolloutsConfigMapName`).
pub const CONFIG_MAP_NAME: &str = "argo-rollouts-config";

/// The event reason of a ConfigMap entry Davy cannot honour (Davy's own: upstream exits).
pub const INVALID_CONFIG_REASON: &str = "InvalidRolloutsConfig";

/// The kinds of plugin the ConfigMap lists, by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// `trafficRouterPlugins`.
    TrafficRouter,
    /// `metricProviderPlugins`.
    MetricProvider,
    /// `stepPlugins`.
    Step,
}

impl PluginKind {
    const ALL: [PluginKind; 3] = [
        PluginKind::TrafficRouter,
        PluginKind::MetricProvider,
        PluginKind::Step,
    ];

    /// The ConfigMap key listing plugins of this kind.
    pub fn key(self) -> &'static str {
        match self {
            PluginKind::TrafficRouter => "trafficRouterPlugins",
            PluginKind::MetricProvider => "metricProviderPlugins",
            PluginKind::Step => "stepPlugins",
        }
    }

    /// The plugins of this kind Davy has built in.
    pub fn built_in(self) -> &'static [&'static str] {
        match self {
            PluginKind::TrafficRouter => &[gateway::PLUGIN_NAME],
            PluginKind::MetricProvider => &[
                scrape::PLUGIN_NAME,
                judge::PLUGIN_NAME,
                alertmanager::PLUGIN_NAME,
            ],
            PluginKind::Step => &[],
        }
    }
}

/// One entry of a plugin list (upstream's `PluginItem`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PluginItem {
    /// `<namespace>/<name>`, as Rollouts and AnalysisTemplates name the plugin.
    pub name: String,
    /// Where upstream downloads the binary from (`file://`, `http(s)://`); unused by Davy.
    pub location: String,
    /// The binary's checksum; unused by Davy.
    pub sha256: String,
    /// Step plugins only: ignore the plugin where Rollouts use it.
    pub disabled: bool,
    /// Command-line arguments of the binary; unused by Davy.
    pub args: Vec<String>,
}

/// The parsed ConfigMap: the plugin entries Davy honours (each names a built-in plugin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutsConfig {
    /// `trafficRouterPlugins` entries naming built-in routers.
    pub traffic_router_plugins: Vec<PluginItem>,
    /// `metricProviderPlugins` entries naming built-in providers.
    pub metric_provider_plugins: Vec<PluginItem>,
    /// `stepPlugins` entries (none is built in, so this stays empty).
    pub step_plugins: Vec<PluginItem>,
}

/// An entry (or a whole key) Davy cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// The key's value is not a YAML list of plugin entries (upstream's start-up error).
    #[error("failed to unmarshal {key} while initializing: {error}")]
    Unreadable {
        /// The ConfigMap key.
        key: &'static str,
        /// The YAML error.
        error: String,
    },
    /// A plugin name that is not `<namespace>/<name>` (upstream's validation message).
    #[error("plugin repository ({0}) must be in the format of <namespace>/<name>")]
    BadName(String),
    /// A plugin Davy does not have built in: upstream would download it from `location`.
    #[error(
        "{key}: plugin {name:?} is not built into Davy, and Davy does not download plugin \
         binaries (location {location:?}); Rollouts using it will fail"
    )]
    NotBuiltIn {
        /// The ConfigMap key.
        key: &'static str,
        /// The plugin's name.
        name: String,
        /// Where upstream would have downloaded it from.
        location: String,
    },
}

/// Upstream's plugin-name rule (GitHub's owner and repository characters).
static PLUGIN_NAME: std::sync::LazyLock<Option<regex::Regex>> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^[a-zA-Z0-9\-]+/[a-zA-Z0-9_\-.]+$").ok());

fn is_plugin_name(name: &str) -> bool {
    PLUGIN_NAME.as_ref().is_some_and(|re| re.is_match(name))
}

/// Parses the ConfigMap's `data` (pure): the entries Davy honours, and every problem found.
/// Absent or empty keys are empty lists, as upstream's YAML unmarshalling of `""` gives.
pub fn parse(data: &BTreeMap<String, String>) -> (RolloutsConfig, Vec<ConfigProblem>) {
    let mut config = RolloutsConfig::default();
    let mut problems = Vec::new();
    for kind in PluginKind::ALL {
        let text = data.get(kind.key()).map_or("", String::as_str);
        let items: Vec<PluginItem> = if text.trim().is_empty() {
            Vec::new()
        } else {
            match serde_saphyr::from_str::<Option<Vec<PluginItem>>>(text) {
                Ok(items) => items.unwrap_or_default(),
                Err(error) => {
                    problems.push(ConfigProblem::Unreadable {
                        key: kind.key(),
                        error: error.to_string(),
                    });
                    continue;
                }
            }
        };
        let kept = match kind {
            PluginKind::TrafficRouter => &mut config.traffic_router_plugins,
            PluginKind::MetricProvider => &mut config.metric_provider_plugins,
            PluginKind::Step => &mut config.step_plugins,
        };
        for item in items {
            if !is_plugin_name(&item.name) {
                problems.push(ConfigProblem::BadName(item.name));
            } else if kind.built_in().contains(&item.name.as_str()) {
                kept.push(item);
            } else if kind == PluginKind::Step && item.disabled {
                // A disabled step plugin is never run: nothing is missing.
            } else {
                problems.push(ConfigProblem::NotBuiltIn {
                    key: kind.key(),
                    name: item.name,
                    location: item.location,
                });
            }
        }
    }
    (config, problems)
}

/// The current configuration, shared with whoever reads it.
pub type SharedConfig = Arc<RwLock<RolloutsConfig>>;

/// Watches `namespace/argo-rollouts-config` until the stream ends (it does not: the watcher
/// retries), keeping `shared` current: every change is parsed again, so an edit applies
/// without a restart; a deleted ConfigMap is an empty configuration. Problems are logged and
/// recorded as Warning events on the ConfigMap when they change.
pub async fn watch(client: Client, namespace: String, shared: SharedConfig) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP_NAME}"));
    let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let mut last_problems: Vec<ConfigProblem> = Vec::new();
    while let Some(event) = events.next().await {
        let (config_map, deleted) = match event {
            Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => (cm, false),
            Ok(watcher::Event::Delete(cm)) => (cm, true),
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(%error, "watching {CONFIG_MAP_NAME} failed; retrying");
                continue;
            }
        };
        let data = if deleted {
            BTreeMap::new()
        } else {
            config_map.data.clone().unwrap_or_default()
        };
        let (parsed, problems) = parse(&data);
        tracing::info!(
            traffic_router_plugins = parsed.traffic_router_plugins.len(),
            metric_provider_plugins = parsed.metric_provider_plugins.len(),
            problems = problems.len(),
            "read {CONFIG_MAP_NAME}"
        );
        *shared
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = parsed;
        if problems != last_problems && !deleted {
            for problem in &problems {
                tracing::warn!(%problem, "{CONFIG_MAP_NAME}");
                record_problem(&client, &config_map, problem).await;
            }
        }
        last_problems = problems;
    }
}

/// Records `problem` as a Warning event on the ConfigMap (best effort: a refused event is
/// logged, the configuration still applies).
async fn record_problem(client: &Client, config_map: &ConfigMap, problem: &ConfigProblem) {
    let namespace = config_map.namespace().unwrap_or_default();
    let object = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some(CONFIG_MAP_NAME.into()),
        namespace: Some(namespace.clone()),
        uid: config_map.metadata.uid.clone(),
        resource_version: config_map.metadata.resource_version.clone(),
        ..ObjectReference::default()
    };
    let event = event_body(
        object,
        EventType::Warning,
        INVALID_CONFIG_REASON,
        &problem.to_string(),
        chrono::Utc::now(),
    );
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), &namespace);
    if let Err(error) = api.create(&Default::default(), &event).await {
        tracing::warn!(%error, "recording a {CONFIG_MAP_NAME} event");
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
    fn an_absent_or_empty_config_map_is_an_empty_config() {
        assert_eq!(parse(&data(&[])), (RolloutsConfig::default(), vec![]));
        assert_eq!(
            parse(&data(&[
                ("trafficRouterPlugins", ""),
                ("stepPlugins", "  \n")
            ])),
            (RolloutsConfig::default(), vec![])
        );
    }

    #[test]
    fn built_in_plugins_are_kept_without_downloading() {
        let (config, problems) = parse(&data(&[
            (
                "trafficRouterPlugins",
                "- name: argoproj-labs/gatewayAPI\n  location: https://github.com/argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi/releases/download/v0.4.0/gatewayapi-plugin-linux-amd64\n",
            ),
            ("metricProviderPlugins", "- name: davy/judge\n"),
        ]));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.traffic_router_plugins.len(), 1);
        assert_eq!(
            config.traffic_router_plugins[0].name,
            "argoproj-labs/gatewayAPI"
        );
        assert!(
            config.traffic_router_plugins[0]
                .location
                .starts_with("https://")
        );
        assert_eq!(config.metric_provider_plugins[0].name, "davy/judge");
    }

    #[test]
    fn plugins_that_would_need_a_download_are_reported() {
        let (config, problems) = parse(&data(&[
            (
                "metricProviderPlugins",
                "- name: argoproj-labs/sample-prometheus\n  location: file://./my-custom-plugin\n  args: [\"-l\", \"debug\"]\n",
            ),
            (
                "stepPlugins",
                "- name: argoproj-labs/step-exec\n  location: file://x\n- name: acme/off\n  disabled: true\n",
            ),
        ]));
        assert_eq!(config, RolloutsConfig::default());
        assert_eq!(
            problems,
            [
                ConfigProblem::NotBuiltIn {
                    key: "metricProviderPlugins",
                    name: "argoproj-labs/sample-prometheus".into(),
                    location: "file://./my-custom-plugin".into(),
                },
                ConfigProblem::NotBuiltIn {
                    key: "stepPlugins",
                    name: "argoproj-labs/step-exec".into(),
                    location: "file://x".into(),
                },
            ]
        );
        assert_eq!(
            problems[0].to_string(),
            "metricProviderPlugins: plugin \"argoproj-labs/sample-prometheus\" is not built into \
             Davy, and Davy does not download plugin binaries (location \
             \"file://./my-custom-plugin\"); Rollouts using it will fail"
        );
    }

    #[test]
    fn malformed_entries_get_upstreams_messages() {
        let (_, problems) = parse(&data(&[
            (
                "trafficRouterPlugins",
                "- name: gatewayAPI\n- name: a/b/c\n",
            ),
            ("metricProviderPlugins", "name: not-a-list\n"),
        ]));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(
            problems[0].to_string(),
            "plugin repository (gatewayAPI) must be in the format of <namespace>/<name>"
        );
        assert_eq!(
            problems[1].to_string(),
            "plugin repository (a/b/c) must be in the format of <namespace>/<name>"
        );
        assert!(
            problems[2]
                .to_string()
                .starts_with("failed to unmarshal metricProviderPlugins while initializing: "),
            "{}",
            problems[2]
        );
    }

    #[test]
    fn plugin_names_follow_upstreams_pattern() {
        assert!(is_plugin_name("argoproj-labs/gatewayAPI"));
        assert!(is_plugin_name("a-1/b_c.d-e"));
        assert!(!is_plugin_name("a_b/c"));
        assert!(!is_plugin_name("/c"));
        assert!(!is_plugin_name("a/"));
        assert!(!is_plugin_name("a/b/c"));
    }
}
