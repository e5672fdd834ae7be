//! `metrics[].provider` (spec §5): every upstream provider's fields (prometheus, web, job,
//! kayenta, datadog, newRelic, cloudWatch, graphite, influxdb, wavefront, skywalking, plugin),
//! so templates written for upstream decode and round-trip unchanged.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{PodTemplateMetadata, or_zero};
use super::duration::DurationString;
use super::int_or_string::IntOrStr;

/// Exactly one provider per metric (checked by validation).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    /// Prometheus query.
    pub prometheus: Option<PrometheusMetric>,
    /// Kayenta judgement.
    pub kayenta: Option<KayentaMetric>,
    /// HTTP request.
    pub web: Option<WebMetric>,
    /// Datadog query.
    pub datadog: Option<DatadogMetric>,
    /// Wavefront query.
    pub wavefront: Option<WavefrontMetric>,
    /// New Relic NRQL query.
    pub new_relic: Option<NewRelicMetric>,
    /// Kubernetes Job: Complete = success, Failed = failure.
    pub job: Option<JobMetric>,
    /// CloudWatch GetMetricData.
    pub cloud_watch: Option<CloudWatchMetric>,
    /// Graphite query.
    pub graphite: Option<GraphiteMetric>,
    /// InfluxDB Flux query.
    pub influxdb: Option<InfluxdbMetric>,
    /// Apache SkyWalking GraphQL query.
    pub skywalking: Option<SkyWalkingMetric>,
    /// Metric plugin: plugin name → free configuration, kept verbatim.
    // `default` keeps the field optional in the schema: `schema_with` hides the Option.
    #[serde(default)]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub plugin: Option<serde_json::Map<String, serde_json::Value>>,
}

impl MetricProvider {
    /// Names of the providers set, in field order (validation wants exactly one).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        let set = [
            (self.prometheus.is_some(), "prometheus"),
            (self.kayenta.is_some(), "kayenta"),
            (self.web.is_some(), "web"),
            (self.datadog.is_some(), "datadog"),
            (self.wavefront.is_some(), "wavefront"),
            (self.new_relic.is_some(), "newRelic"),
            (self.job.is_some(), "job"),
            (self.cloud_watch.is_some(), "cloudWatch"),
            (self.graphite.is_some(), "graphite"),
            (self.influxdb.is_some(), "influxdb"),
            (self.skywalking.is_some(), "skywalking"),
            (self.plugin.is_some(), "plugin"),
        ];
        for (is_set, name) in set {
            if is_set {
                kinds.push(name);
            }
        }
        kinds
    }
}

/// `prometheus`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Server URL (default from `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    pub address: Option<String>,
    /// PromQL query.
    pub query: Option<String>,
    /// SigV4, OAuth2 or basic authentication.
    pub authentication: Option<Authentication>,
    /// Request timeout in seconds (default 30).
    pub timeout: Option<i64>,
    /// Skip TLS verification.
    pub insecure: Option<bool>,
    /// Extra request headers.
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Range query instead of an instant query.
    pub range_query: Option<PrometheusRangeQueryArgs>,
}

/// `rangeQuery: {start, end, step}`; start/end are expressions (`now() - duration("5m")`).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRangeQueryArgs {
    /// Start expression.
    pub start: Option<String>,
    /// End expression.
    pub end: Option<String>,
    /// Step (duration string).
    pub step: Option<DurationString>,
}

/// `authentication` of prometheus and web providers.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// AWS SigV4 (Amazon Managed Prometheus).
    pub sigv4: Option<Sigv4Config>,
    /// OAuth2 client credentials.
    pub oauth2: Option<OAuth2Config>,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
}

/// `sigv4: {region, profile, roleArn}`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sigv4Config {
    /// AWS region.
    pub region: Option<String>,
    /// AWS profile.
    pub profile: Option<String>,
    /// Role to assume.
    pub role_arn: Option<String>,
}

/// `oauth2: {tokenUrl, clientId, clientSecret, scopes}`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Config {
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret.
    pub client_secret: Option<String>,
    /// Scopes.
    pub scopes: Option<Vec<String>>,
}

/// `basicAuth: {username, password}`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// A request header `{key, value}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetricHeader {
    /// Header name.
    #[serde(default, deserialize_with = "or_zero")]
    pub key: String,
    /// Header value.
    #[serde(default, deserialize_with = "or_zero")]
    pub value: String,
}

/// `web`: an HTTP request whose JSON (or text) answer is the result.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// `GET` (default), `POST` or `PUT`.
    pub method: Option<String>,
    /// URL.
    #[serde(default, deserialize_with = "or_zero")]
    pub url: String,
    /// Request headers.
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Text body (POST/PUT).
    pub body: Option<String>,
    /// Timeout (default 10).
    pub timeout_seconds: Option<i64>,
    /// JSONPath selecting the result (default `{$}`).
    pub json_path: Option<String>,
    /// Skip TLS verification.
    pub insecure: Option<bool>,
    /// JSON body, kept verbatim (sets `Content-Type: application/json`).
    // `default` keeps the field optional in the schema: `schema_with` hides the Option.
    #[serde(default)]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub json_body: Option<serde_json::Value>,
    /// OAuth2 (or other) authentication.
    pub authentication: Option<Authentication>,
}

/// `job`: a batch/v1 Job run per measurement.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobMetric {
    /// Labels and annotations of the Job.
    pub metadata: Option<PodTemplateMetadata>,
    /// The Job spec.
    #[serde(default, deserialize_with = "or_zero")]
    pub spec: JobSpec,
}

/// `kayenta`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaMetric {
    /// Kayenta URL.
    #[serde(default, deserialize_with = "or_zero")]
    pub address: String,
    /// Application.
    #[serde(default, deserialize_with = "or_zero")]
    pub application: String,
    /// Canary config name.
    #[serde(default, deserialize_with = "or_zero")]
    pub canary_config_name: String,
    /// Metrics account.
    #[serde(default, deserialize_with = "or_zero")]
    pub metrics_account_name: String,
    /// Configuration account.
    #[serde(default, deserialize_with = "or_zero")]
    pub configuration_account_name: String,
    /// Storage account.
    #[serde(default, deserialize_with = "or_zero")]
    pub storage_account_name: String,
    /// Score thresholds.
    #[serde(default, deserialize_with = "or_zero")]
    pub threshold: KayentaThreshold,
    /// Scopes compared.
    #[serde(default, deserialize_with = "or_zero")]
    pub scopes: Vec<KayentaScope>,
    /// Start every scope at the run's start instead of `interval` before the measurement.
    pub lookback: Option<bool>,
}

/// `threshold: {pass, marginal}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaThreshold {
    /// Score at or above which the measurement is Successful.
    #[serde(default, deserialize_with = "or_zero")]
    pub pass: i64,
    /// Score at or above which it is Inconclusive.
    #[serde(default, deserialize_with = "or_zero")]
    pub marginal: i64,
}

/// A Kayenta scope.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaScope {
    /// Scope name.
    #[serde(default, deserialize_with = "or_zero")]
    pub name: String,
    /// Baseline scope.
    #[serde(default, deserialize_with = "or_zero")]
    pub control_scope: ScopeDetail,
    /// Canary scope.
    #[serde(default, deserialize_with = "or_zero")]
    pub experiment_scope: ScopeDetail,
}

/// `{scope, region, step, start, end}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeDetail {
    /// Scope.
    #[serde(default, deserialize_with = "or_zero")]
    pub scope: String,
    /// Region.
    #[serde(default, deserialize_with = "or_zero")]
    pub region: String,
    /// Step seconds.
    #[serde(default, deserialize_with = "or_zero")]
    pub step: i64,
    /// Start time.
    #[serde(default, deserialize_with = "or_zero")]
    pub start: String,
    /// End time.
    #[serde(default, deserialize_with = "or_zero")]
    pub end: String,
}

/// `datadog`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatadogMetric {
    /// Lookback window (default 5m).
    pub interval: Option<DurationString>,
    /// Single query (v1 and v2).
    pub query: Option<String>,
    /// Named queries (v2) combined by `formula`.
    pub queries: Option<BTreeMap<String, String>>,
    /// Formula over `queries`.
    pub formula: Option<String>,
    /// `v1` (default) or `v2`.
    pub api_version: Option<String>,
    /// v2 aggregator (default `last`).
    pub aggregator: Option<String>,
    /// Secret with the API keys.
    pub secret_ref: Option<SecretRef>,
    /// Request timeout (default 10s).
    pub request_timeout: Option<DurationString>,
}

/// `secretRef: {name, namespaced}`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name (default `datadog`).
    pub name: Option<String>,
    /// Read it from the run's namespace.
    pub namespaced: Option<bool>,
}

/// `wavefront`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WavefrontMetric {
    /// Server address.
    pub address: Option<String>,
    /// Query.
    pub query: Option<String>,
}

/// `newRelic`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewRelicMetric {
    /// Secret with the account configuration (default `newrelic`).
    pub profile: Option<String>,
    /// NRQL query.
    #[serde(default, deserialize_with = "or_zero")]
    pub query: String,
    /// Timeout in seconds (default 5).
    pub timeout: Option<i64>,
}

/// `cloudWatch`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetric {
    /// Lookback window (default 5m).
    pub interval: Option<DurationString>,
    /// GetMetricData queries.
    #[serde(default, deserialize_with = "or_zero")]
    pub metric_data_queries: Vec<CloudWatchMetricDataQuery>,
}

/// A CloudWatch MetricDataQuery.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricDataQuery {
    /// Query id.
    pub id: Option<String>,
    /// Metric math expression.
    pub expression: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Metric and statistic.
    pub metric_stat: Option<CloudWatchMetricStat>,
    /// Period in seconds (int or string).
    pub period: Option<IntOrStr>,
    /// Return this query's data.
    pub return_data: Option<bool>,
}

/// `metricStat`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStat {
    /// The metric.
    pub metric: Option<CloudWatchMetricStatMetric>,
    /// Period in seconds (int or string).
    pub period: Option<IntOrStr>,
    /// Statistic.
    pub stat: Option<String>,
    /// Unit.
    pub unit: Option<String>,
}

/// `metricStat.metric`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetric {
    /// Dimensions.
    pub dimensions: Option<Vec<CloudWatchMetricStatMetricDimension>>,
    /// Metric name.
    pub metric_name: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
}

/// `{name, value}` dimension.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetricDimension {
    /// Name.
    pub name: Option<String>,
    /// Value.
    pub value: Option<String>,
}

/// `graphite`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphiteMetric {
    /// Server address.
    pub address: Option<String>,
    /// Query.
    pub query: Option<String>,
}

/// `influxdb`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfluxdbMetric {
    /// Secret with token, address and org (default `influxdb`).
    pub profile: Option<String>,
    /// Flux query.
    pub query: Option<String>,
}

/// `skywalking`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkyWalkingMetric {
    /// OAP address (GraphQL at `<address>/graphql`).
    pub address: Option<String>,
    /// GraphQL query.
    pub query: Option<String>,
    /// Lookback window.
    pub interval: Option<DurationString>,
}
