//! `metrics[].provider` (spec §5): every upstream provider's fields, including the ones Davy
//! does not execute (kayenta, datadog, newRelic, cloudWatch, graphite, influxdb, wavefront,
//! skywalking), so templates written for upstream decode and round-trip unchanged.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::PodTemplateMetadata;
use super::duration::DurationString;
use super::int_or_string::IntOrStr;

/// Exactly one provider per metric (checked by validation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    /// Prometheus query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// Kayenta judgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kayenta: Option<KayentaMetric>,
    /// HTTP request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    /// Datadog query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogMetric>,
    /// Wavefront query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wavefront: Option<WavefrontMetric>,
    /// New Relic NRQL query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_relic: Option<NewRelicMetric>,
    /// Kubernetes Job: Complete = success, Failed = failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobMetric>,
    /// CloudWatch GetMetricData.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch: Option<CloudWatchMetric>,
    /// Graphite query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphite: Option<GraphiteMetric>,
    /// InfluxDB Flux query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influxdb: Option<InfluxdbMetric>,
    /// Apache SkyWalking GraphQL query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skywalking: Option<SkyWalkingMetric>,
    /// Metric plugin: plugin name → free configuration, kept verbatim.
    // `default` keeps the field optional in the schema: `schema_with` hides the Option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Server URL (default from `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// PromQL query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// SigV4, OAuth2 or basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// Request timeout in seconds (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Skip TLS verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Extra request headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Range query instead of an instant query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_query: Option<PrometheusRangeQueryArgs>,
}

/// `rangeQuery: {start, end, step}`; start/end are expressions (`now() - duration("5m")`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRangeQueryArgs {
    /// Start expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Step (duration string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<DurationString>,
}

/// `authentication` of prometheus and web providers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// AWS SigV4 (Amazon Managed Prometheus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4Config>,
    /// OAuth2 client credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
    /// HTTP basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// `sigv4: {region, profile, roleArn}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sigv4Config {
    /// AWS region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AWS profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Role to assume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// `oauth2: {tokenUrl, clientId, clientSecret, scopes}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Config {
    /// Token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// `basicAuth: {username, password}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A request header `{key, value}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetricHeader {
    /// Header name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub key: String,
    /// Header value.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub value: String,
}

/// `web`: an HTTP request whose JSON (or text) answer is the result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// `GET` (default), `POST` or `PUT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// URL.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub url: String,
    /// Request headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Text body (POST/PUT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Timeout (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// JSONPath selecting the result (default `{$}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// Skip TLS verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// JSON body, kept verbatim (sets `Content-Type: application/json`).
    // `default` keeps the field optional in the schema: `schema_with` hides the Option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub json_body: Option<serde_json::Value>,
    /// OAuth2 (or other) authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// `job`: a batch/v1 Job run per measurement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobMetric {
    /// Labels and annotations of the Job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodTemplateMetadata>,
    /// The Job spec.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub spec: JobSpec,
}

/// `kayenta`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaMetric {
    /// Kayenta URL.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub address: String,
    /// Application.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub application: String,
    /// Canary config name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub canary_config_name: String,
    /// Metrics account.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub metrics_account_name: String,
    /// Configuration account.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub configuration_account_name: String,
    /// Storage account.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub storage_account_name: String,
    /// Score thresholds.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub threshold: KayentaThreshold,
    /// Scopes compared.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub scopes: Vec<KayentaScope>,
    /// Lookback window (newer upstream field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookback: Option<String>,
}

/// `threshold: {pass, marginal}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaThreshold {
    /// Score at or above which the measurement is Successful.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub pass: i64,
    /// Score at or above which it is Inconclusive.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub marginal: i64,
}

/// A Kayenta scope.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaScope {
    /// Scope name.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub name: String,
    /// Baseline scope.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub control_scope: ScopeDetail,
    /// Canary scope.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub experiment_scope: ScopeDetail,
}

/// `{scope, region, step, start, end}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeDetail {
    /// Scope.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub scope: String,
    /// Region.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub region: String,
    /// Step seconds.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub step: i64,
    /// Start time.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub start: String,
    /// End time.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub end: String,
}

/// `datadog`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatadogMetric {
    /// Lookback window (default 5m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationString>,
    /// Single query (v1 and v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Named queries (v2) combined by `formula`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<BTreeMap<String, String>>,
    /// Formula over `queries`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// `v1` (default) or `v2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// v2 aggregator (default `last`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<String>,
    /// Secret with the API keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Request timeout (default 10s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<DurationString>,
}

/// `secretRef: {name, namespaced}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name (default `datadog`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Read it from the run's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaced: Option<bool>,
}

/// `wavefront`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WavefrontMetric {
    /// Server address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// `newRelic`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewRelicMetric {
    /// Secret with the account configuration (default `newrelic`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// NRQL query.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub query: String,
    /// Timeout in seconds (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// `cloudWatch`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetric {
    /// Lookback window (default 5m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationString>,
    /// GetMetricData queries.
    #[serde(default, deserialize_with = "super::common::null_as_default")]
    pub metric_data_queries: Vec<CloudWatchMetricDataQuery>,
}

/// A CloudWatch MetricDataQuery.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricDataQuery {
    /// Query id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metric math expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Metric and statistic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<CloudWatchMetricStat>,
    /// Period in seconds (int or string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<IntOrStr>,
    /// Return this query's data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_data: Option<bool>,
}

/// `metricStat`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStat {
    /// The metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<CloudWatchMetricStatMetric>,
    /// Period in seconds (int or string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<IntOrStr>,
    /// Statistic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// Unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// `metricStat.metric`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetric {
    /// Dimensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Vec<CloudWatchMetricStatMetricDimension>>,
    /// Metric name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `{name, value}` dimension.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetricDimension {
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `graphite`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphiteMetric {
    /// Server address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// `influxdb`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfluxdbMetric {
    /// Secret with token, address and org (default `influxdb`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Flux query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// `skywalking`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkyWalkingMetric {
    /// OAP address (GraphQL at `<address>/graphql`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// GraphQL query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Lookback window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationString>,
}
