//! The SaaS metric providers (datadog, newRelic, wavefront, graphite, influxdb, skywalking,
//! kayenta, cloudWatch) through the analysis runner against fixture servers on 127.0.0.1 that
//! answer with payloads shaped as each API documents: what Davy sends is asserted byte for
//! byte, what it makes of the answers through the metric's conditions.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::fixture_server::{FixtureServer, Recorded, Reply};
use davy::analysis::providers::Registry;
use davy::analysis::providers::env::{AwsEnv, DatadogEnv};
use davy::analysis::providers::secrets::{SecretError, SecretSource, StaticSecrets};
use davy::analysis::runner::Runner;
use davy::api::{AnalysisPhase, AnalysisRun, Measurement, MetricResult};
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const NOW: &str = "2026-03-04T10:07:30Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn now_secs() -> i64 {
    now().as_second()
}

/// An AnalysisRun in namespace `team-a` with one metric `m`.
fn run(metric: Value) -> AnalysisRun {
    let mut metric = metric;
    metric["name"] = json!("m");
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "run", "namespace": "team-a"},
        "spec": {"metrics": [metric]},
    }))
    .unwrap()
}

fn secrets(entries: &[(&str, &[(&str, &str)])]) -> StaticSecrets {
    StaticSecrets {
        secrets: entries
            .iter()
            .map(|(name, keys)| {
                (
                    name.to_string(),
                    keys.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect(),
    }
}

/// Secrets told apart by namespace: (namespace, name) → keys.
#[derive(Default)]
struct NamespacedSecrets(BTreeMap<(String, String), BTreeMap<String, String>>);

impl NamespacedSecrets {
    fn with(mut self, namespace: &str, name: &str, keys: &[(&str, &str)]) -> Self {
        self.0.insert(
            (namespace.into(), name.into()),
            keys.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }
}

impl SecretSource for NamespacedSecrets {
    fn get<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            let data = self.data(ns, name).await?;
            data.get(key).cloned().ok_or(SecretError::MissingKey {
                name: name.into(),
                key: key.into(),
            })
        })
    }

    fn data<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, SecretError>> {
        Box::pin(async move {
            self.0
                .get(&(ns.to_string(), name.to_string()))
                .cloned()
                .ok_or_else(|| SecretError::NotFound(name.to_string()))
        })
    }
}

/// The registry of a controller in `argo-rollouts` with no `DD_*` or AWS variables.
fn registry() -> Registry {
    Registry::new()
        .with_controller_namespace("argo-rollouts")
        .with_datadog_env(None)
        .with_aws(AwsEnv::default())
}

/// One reconcile at [`NOW`]: the metric's result.
async fn reconcile(
    registry: Registry,
    source: Arc<dyn SecretSource>,
    run: &AnalysisRun,
) -> MetricResult {
    let runner = Runner::new(
        registry.with_secrets(source),
        Arc::new(StaticSecrets::default()),
    );
    let step = runner.reconcile(run, &now).await.unwrap();
    step.status.metric_results[0].clone()
}

async fn measure(
    registry: Registry,
    source: impl SecretSource + 'static,
    run: &AnalysisRun,
) -> Measurement {
    reconcile(registry, Arc::new(source), run)
        .await
        .measurements[0]
        .clone()
}

fn only(server: &FixtureServer) -> Recorded {
    let mut requests = server.take();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0)
}

mod datadog {
    use super::*;

    fn dd_secret(url: &str) -> StaticSecrets {
        secrets(&[(
            "datadog",
            &[("address", url), ("api-key", "api-1"), ("app-key", "app-1")],
        )])
    }

    #[tokio::test]
    async fn v1_query_takes_the_last_point() {
        let server = FixtureServer::start(|_| {
            Reply::json(json!({"status": "ok", "series": [{"metric": "x", "pointlist": [[1.7e12, 0.5], [1.7e12, 0.02]]}]}))
        })
        .await;
        let run = run(json!({
            "successCondition": "result < 0.05",
            "provider": {"datadog": {"query": "sum:requests.error{service:web}.as_count()", "apiVersion": "v1"}},
        }));
        let m = measure(registry(), dd_secret(&server.url), &run).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str(), m.message.as_str()),
            (AnalysisPhase::Successful, "0.02", "")
        );
        let r = only(&server);
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/v1/query")
        );
        assert_eq!(
            r.query.clone().unwrap(),
            format!(
                "from={}&query=sum%3Arequests.error%7Bservice%3Aweb%7D.as_count%28%29&to={}",
                now_secs() - 300,
                now_secs()
            )
        );
        assert_eq!(r.header("dd-api-key"), "api-1");
        assert_eq!(r.header("dd-application-key"), "app-1");
        assert_eq!(r.header("content-type"), "application/json");
    }

    #[tokio::test]
    async fn v2_formula_body_and_scalar_answer() {
        let server = FixtureServer::start(|_| {
            Reply::json(
                json!({"data": {"type": "scalar_response", "attributes": {"columns": [
                    {"name": "a", "type": "number", "values": [0.012], "meta": {"unit": null}}
                ]}}}),
            )
        })
        .await;
        let run = run(json!({
            "successCondition": "result <= 0.05",
            "provider": {"datadog": {
                "apiVersion": "v2", "interval": "10m", "aggregator": "sum", "formula": "errors / requests",
                "queries": {"requests": "sum:req{*}.as_count()", "errors": "sum:err{*}.as_count()"},
            }},
        }));
        let m = measure(registry(), dd_secret(&server.url), &run).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str()),
            (AnalysisPhase::Successful, "0.012")
        );
        let r = only(&server);
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
            ("POST", "/api/v2/query/scalar", None)
        );
        let from = (now_secs() - 600) * 1000;
        let to = now_secs() * 1000;
        assert_eq!(
            r.text(),
            format!(
                r#"{{"data":{{"attributes":{{"from":{from},"to":{to},"queries":[{{"aggregator":"sum","data_source":"metrics","name":"errors","query":"sum:err{{*}}.as_count()"}},{{"aggregator":"sum","data_source":"metrics","name":"requests","query":"sum:req{{*}}.as_count()"}}],"formulas":[{{"formula":"errors / requests"}}]}},"type":"scalar_request"}}}}"#
            )
        );
    }

    #[tokio::test]
    async fn v2_grouped_query_is_a_list_with_group_metadata() {
        let server = FixtureServer::start(|_| {
            Reply::json(json!({"data": {"attributes": {"columns": [
                {"name": "region", "type": "group", "values": [["us-east"], ["us-west"], ["eu"]]},
                {"name": "host", "type": "group", "values": [["a"], ["b"], ["c"]]},
                {"name": "query", "type": "number", "values": [0.1, null, 0.3]},
            ]}}}))
        })
        .await;
        let run = run(json!({
            "successCondition": "all(result, {# < 0.2})",
            "provider": {"datadog": {"apiVersion": "v2", "query": "avg:latency{*} by {region,host}"}},
        }));
        let result = reconcile(registry(), Arc::new(dd_secret(&server.url)), &run).await;
        let m = &result.measurements[0];
        assert_eq!(
            (m.phase.clone(), m.value.as_str()),
            (AnalysisPhase::Failed, "[0.1,0.3]")
        );
        assert_eq!(
            m.metadata.get("groups").map(String::as_str),
            Some(r#"[{"name":"us-east,a","value":0.1},{"name":"eu,c","value":0.3}]"#)
        );
        let body = only(&server).json();
        assert_eq!(
            body["data"]["attributes"]["queries"][0]["aggregator"],
            "last"
        );
        assert_eq!(body["data"]["attributes"]["queries"][0]["name"], "query");
        assert_eq!(body["data"]["attributes"]["formulas"], json!([]));
    }

    #[tokio::test]
    async fn answers_and_configurations_that_are_errors() {
        let server = FixtureServer::start(|r| {
            if r.header("dd-api-key") == "bad" {
                Reply::text(403, "application/json", r#"{"errors":["Forbidden"]}"#)
            } else {
                Reply::json(
                    json!({"data": {"attributes": {"columns": []}, "errors": "Unknown metric"}}),
                )
            }
        })
        .await;
        let cases = [
            (
                json!({"apiVersion": "v2", "query": "q"}),
                secrets(&[(
                    "datadog",
                    &[
                        ("address", server.url.as_str()),
                        ("api-key", "bad"),
                        ("app-key", "x"),
                    ],
                )]),
                "received authentication error response code: 403 {\"errors\":[\"Forbidden\"]}",
            ),
            (
                json!({"apiVersion": "v2", "query": "q"}),
                dd_secret(&server.url),
                "There were errors in your query: Unknown metric",
            ),
            (
                json!({"query": "q", "queries": {"a": "b"}}),
                dd_secret(&server.url),
                "Cannot have both a query and queries. Please review the Analysis Template.",
            ),
            (
                json!({"apiVersion": "v2", "query": "q", "requestTimeout": "0s"}),
                dd_secret(&server.url),
                "Request timeout must be a positive duration (e.g. 30s). Please review the Analysis Template.",
            ),
            (
                json!({"query": "q"}),
                secrets(&[]),
                "failed to find the credentials for datadog metrics provider",
            ),
            (
                json!({"query": "q", "secretRef": {"namespaced": true}}),
                dd_secret(&server.url),
                "secret name is required for namespaced credentials",
            ),
        ];
        for (spec, source, message) in cases {
            let run = run(json!({"successCondition": "true", "provider": {"datadog": spec}}));
            let m = measure(registry(), source, &run).await;
            assert_eq!(
                (m.phase.clone(), m.message.as_str()),
                (AnalysisPhase::Error, message),
                "{spec}"
            );
        }
    }

    #[tokio::test]
    async fn credentials_come_from_secret_ref_env_or_the_default_secret() {
        let server =
            FixtureServer::start(|_| Reply::json(json!({"series": [{"pointlist": [[1.0, 1.0]]}]})))
                .await;
        let url = server.url.as_str();
        let source = Arc::new(
            NamespacedSecrets::default()
                .with(
                    "team-a",
                    "dd-team",
                    &[("address", url), ("api-key", "team"), ("app-key", "t")],
                )
                .with(
                    "argo-rollouts",
                    "dd-shared",
                    &[("address", url), ("api-key", "shared"), ("app-key", "s")],
                )
                .with(
                    "argo-rollouts",
                    "datadog",
                    &[("address", url), ("api-key", "default"), ("app-key", "d")],
                ),
        );
        let env = DatadogEnv {
            address: server.url.clone(),
            api_key: "env".into(),
            app_key: "e".into(),
        };
        let cases = [
            (json!({"name": "dd-team", "namespaced": true}), None, "team"),
            (json!({"name": "dd-shared"}), Some(env.clone()), "shared"),
            (json!({}), Some(env), "env"),
            (json!({}), None, "default"),
        ];
        for (secret_ref, env, key) in cases {
            let run = run(
                json!({"successCondition": "result == 1", "provider": {"datadog": {"query": "q", "secretRef": secret_ref}}}),
            );
            let result = reconcile(registry().with_datadog_env(env), source.clone(), &run).await;
            assert_eq!(
                result.measurements[0].phase,
                AnalysisPhase::Successful,
                "{secret_ref}"
            );
            assert_eq!(only(&server).header("dd-api-key"), key, "{secret_ref}");
        }
    }
}

mod newrelic {
    use super::*;
    use davy::analysis::providers::newrelic::NRQL_QUERY;

    #[tokio::test]
    async fn nrql_through_nerdgraph() {
        let server = FixtureServer::start(|r| {
            let nrql = r.json()["variables"]["query"].as_str().unwrap().to_string();
            if nrql.contains("FACET") {
                Reply::json(json!({"data": {"actor": {"account": {"nrql": {"results": [{"count": 3, "host": "a"}, {"count": 5, "host": "b"}]}}}}}))
            } else if nrql.contains("bad") {
                Reply::json(json!({"data": null, "errors": [{"message": "NRQL Syntax error: unknown function bad"}]}))
            } else {
                Reply::json(json!({"data": {"actor": {"account": {"nrql": {"results": [{"count": 42}]}}}}}))
            }
        })
        .await;
        let graphql = format!("{}/graphql", server.url);
        let source = secrets(&[(
            "nr-eu",
            &[
                ("personal-api-key", "NRAK-1"),
                ("account-id", "1234"),
                ("region", "eu"),
                ("base-url-nerdgraph", graphql.as_str()),
            ],
        )]);
        let query = "SELECT count(*) FROM Transaction WHERE appName = 'web'";
        let run1 = run(
            json!({"successCondition": "result.count > 40", "provider": {"newRelic": {"profile": "nr-eu", "query": query}}}),
        );
        let result = reconcile(registry(), Arc::new(source.clone()), &run1).await;
        let m = &result.measurements[0];
        assert_eq!(
            (m.phase.clone(), m.value.as_str()),
            (AnalysisPhase::Successful, r#"{"count":42}"#)
        );
        assert_eq!(
            result
                .metadata
                .get("ResolvedNewRelicQuery")
                .map(String::as_str),
            Some(query)
        );
        let r = only(&server);
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/graphql"));
        assert_eq!(r.header("api-key"), "NRAK-1");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(
            r.json(),
            json!({"query": NRQL_QUERY, "variables": {"accountId": 1234, "query": query, "timeout": 5}})
        );

        let facet = run(
            json!({"successCondition": "all(result, {#.count < 10})", "provider": {"newRelic": {"profile": "nr-eu", "query": "SELECT count(*) FROM T FACET host", "timeout": 20}}}),
        );
        let m = measure(registry(), source.clone(), &facet).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str()),
            (
                AnalysisPhase::Successful,
                r#"[{"count":3,"host":"a"},{"count":5,"host":"b"}]"#
            ),
            "{m:?}"
        );
        assert_eq!(only(&server).json()["variables"]["timeout"], 20);

        let bad = run(
            json!({"successCondition": "true", "provider": {"newRelic": {"profile": "nr-eu", "query": "SELECT bad()"}}}),
        );
        let m = measure(registry(), source, &bad).await;
        assert_eq!(
            (m.phase.clone(), m.message.as_str()),
            (
                AnalysisPhase::Error,
                "NRQL Syntax error: unknown function bad"
            )
        );

        let missing =
            run(json!({"successCondition": "true", "provider": {"newRelic": {"query": "q"}}}));
        let m = measure(registry(), secrets(&[]), &missing).await;
        assert_eq!(m.message, "secrets \"newrelic\" not found");
    }
}

mod wavefront {
    use super::*;

    #[tokio::test]
    async fn chart_query_takes_the_point_nearest_the_measurement() {
        let t = now_secs() as f64;
        let server = FixtureServer::start(move |r| {
            if r.query.as_deref().unwrap_or("").contains("multi") {
                Reply::json(json!({"timeseries": [{"label": "a", "data": [[t - 1.0, 1.0]]}, {"label": "b", "data": [[t + 2.0, 4.0]]}]}))
            } else {
                Reply::json(json!({"query": "ts(x)", "warnings": "partial data", "timeseries": [{"label": "x", "host": "h", "data": [[t - 60.0, 9.0], [t - 5.0, 2.5]]}]}))
            }
        })
        .await;
        let source = secrets(&[("wavefront-api-tokens", &[(server.url.as_str(), "wf-token")])]);
        let one = run(
            json!({"successCondition": "result < 3", "provider": {"wavefront": {"address": server.url, "query": "avg(ts(cpu, env=prod))"}}}),
        );
        let m = measure(registry(), source.clone(), &one).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str()),
            (AnalysisPhase::Successful, "2.50")
        );
        assert_eq!(
            m.metadata.get("timestamps").map(String::as_str),
            Some((now_secs() - 5).to_string().as_str())
        );
        assert_eq!(m.metadata.get("drift").map(String::as_str), Some("-5"));
        assert_eq!(
            m.metadata.get("warnings").map(String::as_str),
            Some("partial data")
        );
        let r = only(&server);
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/v2/chart/api")
        );
        let ms = now_secs() * 1000;
        assert_eq!(
            r.query.clone().unwrap(),
            format!("e={ms}&g=s&i=true&p=1&q=avg%28ts%28cpu%2C+env%3Dprod%29%29&s={ms}")
        );
        assert_eq!(r.header("authorization"), "Bearer wf-token");

        let many = run(
            json!({"successCondition": "all(result, {# < 3})", "provider": {"wavefront": {"address": server.url, "query": "multi"}}}),
        );
        let m = measure(registry(), source, &many).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str()),
            (AnalysisPhase::Failed, "[1.00,4.00]")
        );
        assert_eq!(m.metadata.get("drift").map(String::as_str), Some("[-1,2]"));

        let unknown = run(
            json!({"successCondition": "true", "provider": {"wavefront": {"address": "other.wavefront.com", "query": "q"}}}),
        );
        let m = measure(
            registry(),
            secrets(&[("wavefront-api-tokens", &[("x", "y")])]),
            &unknown,
        )
        .await;
        assert_eq!(
            (m.phase.clone(), m.message.as_str()),
            (AnalysisPhase::Error, "API token not found")
        );
    }
}

mod graphite {
    use super::*;

    #[tokio::test]
    async fn render_api_values_of_the_first_target() {
        let t = now_secs();
        let server = FixtureServer::start(move |r| {
            if r.query.as_deref().unwrap_or("").contains("empty") {
                Reply::json(json!([]))
            } else if r.query.as_deref().unwrap_or("").contains("broken") {
                Reply::text(500, "text/plain", "Internal Server Error")
            } else {
                Reply::json(json!([
                    {"target": "errors", "datapoints": [[1.5, t - 120], [null, t - 60], ["2", t]]},
                    {"target": "other", "datapoints": [[100, t]]}
                ]))
            }
        })
        .await;
        let base = format!("{}/graphite/", server.url);
        let query = "target=summarize(sumSeries(app.*.errors), '5min', 'avg')\n&from=-5min";
        let ok = run(
            json!({"successCondition": "all(result, {# < 3})", "provider": {"graphite": {"address": base, "query": query}}}),
        );
        let m = measure(registry(), secrets(&[]), &ok).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str()),
            (AnalysisPhase::Successful, "[1.500000,2.000000]")
        );
        let r = only(&server);
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/graphite/render")
        );
        assert_eq!(
            r.query.clone().unwrap(),
            "format=json&from=-5min&target=summarize%28sumSeries%28app.%2A.errors%29%2C%275min%27%2C%27avg%27%29"
        );
        for (q, message) in [
            ("target=empty", "no values found"),
            ("target=broken", "error response: Internal Server Error"),
        ] {
            let r = run(
                json!({"successCondition": "true", "provider": {"graphite": {"address": server.url, "query": q}}}),
            );
            let m = measure(registry(), secrets(&[]), &r).await;
            assert_eq!(
                (m.phase.clone(), m.message.as_str()),
                (AnalysisPhase::Error, message)
            );
        }
    }
}

mod influxdb {
    use super::*;

    const CSV: &str = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string\r\n#group,false,false,true,true,false,false,true,true\r\n#default,_result,,,,,,,\r\n,result,table,_start,_stop,_time,_value,_field,_measurement\r\n,,0,2026-03-04T10:02:30Z,2026-03-04T10:07:30Z,2026-03-04T10:05:00Z,0.5,rate,errors\r\n,,0,2026-03-04T10:02:30Z,2026-03-04T10:07:30Z,2026-03-04T10:06:00Z,2,rate,errors\r\n\r\n";

    #[tokio::test]
    async fn flux_over_the_v2_api() {
        let server = FixtureServer::start(|r| {
            let query = r.json()["query"].as_str().unwrap().to_string();
            if query.contains("syntax") {
                Reply::text(400, "application/json", r#"{"code":"invalid","message":"compilation failed: error at @1:1-1:7: undefined identifier syntax"}"#)
            } else if query.contains("nothing") {
                Reply::text(200, "text/csv; charset=utf-8", "\r\n")
            } else {
                Reply::text(200, "text/csv; charset=utf-8", CSV)
            }
        })
        .await;
        let source = secrets(&[(
            "influx-prod",
            &[
                ("authToken", "tok=="),
                ("address", server.url.as_str()),
                ("org", "my org"),
            ],
        )]);
        let flux = "from(bucket: \"app\") |> range(start: -5m) |> filter(fn: (r) => r._measurement == \"errors\")";
        let ok = run(
            json!({"successCondition": "result[0] < 1 && len(result) == 2", "provider": {"influxdb": {"profile": "influx-prod", "query": flux}}}),
        );
        let m = measure(registry(), source.clone(), &ok).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str(), m.message.as_str()),
            (AnalysisPhase::Successful, "[0.5 2]", "")
        );
        let r = only(&server);
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
            ("POST", "/api/v2/query", Some("org=my+org"))
        );
        assert_eq!(r.header("authorization"), "Token tok==");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(
            r.text(),
            format!(
                r#"{{"dialect":{{"annotations":["datatype","group","default"],"delimiter":",","header":true}},"query":{},"type":"flux"}}"#,
                serde_json::to_string(flux).unwrap()
            )
        );
        for (q, message) in [
            (
                "syntax",
                "invalid: compilation failed: error at @1:1-1:7: undefined identifier syntax",
            ),
            ("nothing", "no results returned from flux query"),
        ] {
            let r = run(
                json!({"successCondition": "true", "provider": {"influxdb": {"profile": "influx-prod", "query": q}}}),
            );
            let m = measure(registry(), source.clone(), &r).await;
            assert_eq!(
                (m.phase.clone(), m.message.as_str()),
                (AnalysisPhase::Error, message)
            );
        }
        let r = run(json!({"successCondition": "true", "provider": {"influxdb": {"query": "q"}}}));
        let m = measure(
            registry(),
            secrets(&[("influxdb", &[("authToken", "t")])]),
            &r,
        )
        .await;
        assert_eq!(m.message, "authToken, org, or address not found");
    }
}

mod skywalking {
    use super::*;

    #[tokio::test]
    async fn graphql_with_a_duration_variable() {
        let server = FixtureServer::start(|r| {
            if r.json()["query"].as_str().unwrap().contains("broken") {
                Reply::json(json!({"data": null, "errors": [{"message": "Validation error of type FieldUndefined"}]}))
            } else {
                Reply::json(json!({"data": {"service_apdex": {"values": [{"value": 9950}, {"value": 9800}]}}}))
            }
        })
        .await;
        let query = "query queryData($duration: Duration!) { service_apdex: readMetricsValues(condition: {name: \"service_apdex\", entity: {scope: Service, serviceName: \"web\", normal: true}}, duration: $duration) { values { value } } }";
        let ok = run(
            json!({"successCondition": "all(result.service_apdex.values, {#.value >= 9500})", "provider": {"skywalking": {"address": server.url, "query": query, "interval": "5m"}}}),
        );
        let m = measure(registry(), secrets(&[]), &ok).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str()),
            (
                AnalysisPhase::Successful,
                r#"{"service_apdex":{"values":[{"value":9950},{"value":9800}]}}"#
            ),
            "{m:?}"
        );
        let r = only(&server);
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/graphql"));
        assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
        assert_eq!(
            r.text(),
            format!(
                r#"{{"query":{},"variables":{{"duration":{{"start":"2026-03-04 1002","end":"2026-03-04 1007","step":"MINUTE"}}}}}}"#,
                serde_json::to_string(query).unwrap()
            )
        );
        let broken = run(
            json!({"successCondition": "true", "provider": {"skywalking": {"address": server.url, "query": "broken", "interval": "5m"}}}),
        );
        let m = measure(registry(), secrets(&[]), &broken).await;
        assert_eq!(
            (m.phase.clone(), m.message.as_str()),
            (
                AnalysisPhase::Error,
                "graphql: Validation error of type FieldUndefined"
            )
        );
    }
}

mod kayenta {
    use super::*;

    #[tokio::test]
    async fn judgment_is_started_polled_and_scored() {
        let polls = Arc::new(AtomicUsize::new(0));
        let counter = polls.clone();
        let server = FixtureServer::start(move |r| match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/canaryConfig") => Reply::json(json!([
                {"id": "other-id", "name": "other", "applications": ["shop"]},
                {"id": "cfg-7", "name": "latency-config", "updatedTimestamp": 1, "applications": ["shop"]}
            ])),
            ("POST", "/canary/cfg-7") => Reply::json(json!({"canaryExecutionId": "exec-42"})),
            ("GET", "/canary/exec-42") => {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    Reply::json(json!({"complete": false, "status": "running"}))
                } else {
                    Reply::json(json!({"complete": true, "status": "succeeded", "result": {"judgeResult": {"score": {"score": 87.9, "classification": "Marginal"}}}}))
                }
            }
            _ => Reply::text(404, "text/plain", "no such route"),
        })
        .await;
        let mut run = run(json!({
            "interval": "5m",
            "count": 1,
            "provider": {"kayenta": {
                "address": server.url, "application": "shop", "canaryConfigName": "latency-config",
                "metricsAccountName": "prom", "configurationAccountName": "config", "storageAccountName": "storage",
                "threshold": {"pass": 90, "marginal": 75},
                "scopes": [{"name": "default",
                    "controlScope": {"scope": "app=shop-stable", "region": "us-east-1", "step": 60},
                    "experimentScope": {"scope": "app=shop-canary", "region": "us-east-1", "step": 60}}],
            }},
        }));
        let runner = Runner::new(registry(), Arc::new(StaticSecrets::default()));
        let step = runner.reconcile(&run, &now).await.unwrap();
        let m = step.status.metric_results[0].measurements[0].clone();
        assert_eq!(m.phase, AnalysisPhase::Running, "{m:?}");
        assert_eq!(
            m.metadata.get("canaryExecutionId").map(String::as_str),
            Some("exec-42")
        );
        let resume = m.resume_at.clone().unwrap().0;
        assert_eq!(resume.as_second(), now_secs() + 15);
        let requests = server.take();
        assert_eq!(requests.len(), 2);
        assert_eq!(
            requests[0].query.as_deref(),
            Some("application=shop&configurationAccountName=storage")
        );
        assert_eq!(
            requests[1].query.as_deref(),
            Some(
                "application=shop&metricsAccountName=prom&configurationAccountName=config&storageAccountName=storage"
            )
        );
        assert_eq!(requests[1].header("content-type"), "application/json");
        assert_eq!(
            requests[1].text(),
            r#"{"scopes":{"default":{"controlScope":{"scope":"app=shop-stable","location":"us-east-1","step":60,"start":"2026-03-04T10:02:30Z","end":"2026-03-04T10:07:30Z"},"experimentScope":{"scope":"app=shop-canary","location":"us-east-1","step":60,"start":"2026-03-04T10:02:30Z","end":"2026-03-04T10:07:30Z"}}},"thresholds":{"pass":90,"marginal":75}}"#
        );

        run.status = Some(step.status.clone());
        let mut at = resume;
        let mut last = m;
        for _ in 0..2 {
            run.status = Some(step_status(&runner, &run, at).await);
            last = run.status.as_ref().unwrap().metric_results[0].measurements[0].clone();
            if last.phase != AnalysisPhase::Running {
                break;
            }
            at = last.resume_at.clone().unwrap().0;
        }
        assert_eq!(
            (last.phase.clone(), last.value.as_str()),
            (AnalysisPhase::Inconclusive, "87"),
            "{last:?} {:?}",
            server.requests()
        );
        assert_eq!(polls.load(Ordering::SeqCst), 2);
        assert!(server.take().iter().all(|r| r.path == "/canary/exec-42"));
    }

    async fn step_status(
        runner: &Runner,
        run: &AnalysisRun,
        at: Timestamp,
    ) -> davy::api::AnalysisRunStatus {
        runner.reconcile(run, &move || at).await.unwrap().status
    }
}

mod cloudwatch {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;

    fn aws(url: &str) -> AwsEnv {
        AwsEnv {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("session-1".into()),
            region: "us-west-2".into(),
            endpoint: Some(url.to_string()),
        }
    }

    /// The signature AWS would compute for the request as received, from the headers it says
    /// it signed.
    fn expected_signature(r: &Recorded, aws: &AwsEnv) -> String {
        let auth = r.header("authorization");
        let signed = auth
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_string();
        let headers: Vec<(String, String)> = signed
            .split(';')
            .filter(|h| *h != "x-amz-date" && *h != "x-amz-security-token")
            .map(|h| (h.to_string(), r.header(h)))
            .collect();
        let identity = Credentials::new(
            &aws.access_key_id,
            &aws.secret_access_key,
            aws.session_token.clone(),
            None,
            "test",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&aws.region)
            .name("monitoring")
            .time(davy::analysis::providers::cloudwatch::system_time(now()))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let url = format!("http://{}{}", r.header("host"), r.path);
        let signable = SignableRequest::new(
            "POST",
            url,
            headers
                .iter()
                .filter(|(k, _)| k != "host")
                .map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&r.body),
        )
        .unwrap();
        let (_, signature) = sign(signable, &params).unwrap().into_parts();
        signature
    }

    #[tokio::test]
    async fn get_metric_data_signed_with_sigv4() {
        let t = now_secs();
        let server = FixtureServer::start(move |r| {
            if r.text().contains("broken") {
                Reply::text(400, "application/x-amz-json-1.0", r#"{"__type":"com.amazonaws.monitoring#InvalidParameterValueException","message":"The value broken for parameter MetricDataQueries.member.1.Id is not valid."}"#)
                    .with_header("x-amzn-requestid", "req-1")
            } else {
                Reply::json(json!({
                    "MetricDataResults": [{"Id": "rate", "Label": "error rate", "StatusCode": "Complete",
                        "Timestamps": [t - 60, t - 120], "Values": [0.01, 0.02]}],
                    "Messages": [],
                }))
                .with_header("x-amzn-requestid", "req-2")
            }
        })
        .await;
        let env = aws(&server.url);
        let ok = run(json!({
            "successCondition": "all(result[0].Values, {# <= 0.05}) && result[0].StatusCode == \"Complete\"",
            "provider": {"cloudWatch": {"interval": "10m", "metricDataQueries": [
                {"id": "rate", "expression": "errors / requests", "label": "error rate"},
                {"id": "errors", "returnData": false, "metricStat": {"stat": "Sum", "period": 300,
                    "metric": {"namespace": "AWS/ApplicationELB", "metricName": "HTTPCode_Target_5XX_Count",
                        "dimensions": [{"name": "LoadBalancer", "value": "app/web/1"}]}}},
            ]}},
        }));
        let m = measure(registry().with_aws(env.clone()), secrets(&[]), &ok).await;
        assert_eq!(
            (m.phase.clone(), m.value.as_str(), m.message.as_str()),
            (AnalysisPhase::Successful, "[[0.01 0.02]]", "")
        );
        let r = only(&server);
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
            ("POST", "/", None)
        );
        assert_eq!(r.header("content-type"), "application/x-amz-json-1.0");
        assert_eq!(
            r.header("x-amz-target"),
            "GraniteServiceVersion20100801.GetMetricData"
        );
        assert_eq!(r.header("x-amz-date"), "20260304T100730Z");
        assert_eq!(r.header("x-amz-security-token"), "session-1");
        assert_eq!(
            r.text(),
            format!(
                r#"{{"EndTime":{t},"MetricDataQueries":[{{"Id":"rate","Expression":"errors / requests","Label":"error rate"}},{{"Id":"errors","MetricStat":{{"Metric":{{"Dimensions":[{{"Name":"LoadBalancer","Value":"app/web/1"}}],"MetricName":"HTTPCode_Target_5XX_Count","Namespace":"AWS/ApplicationELB"}},"Period":300,"Stat":"Sum"}},"ReturnData":false}}],"StartTime":{}}}"#,
                t - 600
            )
        );
        let auth = r.header("authorization");
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260304/us-west-2/monitoring/aws4_request, SignedHeaders=";
        assert!(auth.starts_with(prefix), "{auth}");
        let signature = auth.rsplit("Signature=").next().unwrap();
        assert_eq!(signature.len(), 64);
        assert_eq!(signature, expected_signature(&r, &env));

        let broken = run(
            json!({"successCondition": "true", "provider": {"cloudWatch": {"metricDataQueries": [{"id": "broken", "expression": "x"}]}}}),
        );
        let m = measure(registry().with_aws(env), secrets(&[]), &broken).await;
        assert_eq!(
            (m.phase.clone(), m.message.as_str()),
            (
                AnalysisPhase::Error,
                "operation error CloudWatch: GetMetricData, https response error StatusCode: 400, RequestID: req-1, api error InvalidParameterValueException: The value broken for parameter MetricDataQueries.member.1.Id is not valid."
            )
        );
        let none = AwsEnv {
            access_key_id: String::new(),
            ..aws(&server.url)
        };
        let m = measure(registry().with_aws(none), secrets(&[]), &broken).await;
        assert!(m.message.contains("no AWS credentials"), "{}", m.message);
    }
}

/// The SaaS templates of `analysis-templates/` through `davy analyze --once`, with their
/// credentials from a Secret manifest (or the AWS variables) and a fixture server as the API.
mod templates {
    use super::*;

    fn template(name: &str) -> String {
        format!("{}/analysis-templates/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    async fn analyze(files: &[&str], args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_davy"));
        command.args(["analyze", "--once"]);
        for f in files {
            command.args(["-f", f]);
        }
        for a in args {
            command.args(["--arg", a]);
        }
        for var in [
            "DD_API_KEY",
            "DD_APP_KEY",
            "DD_ADDRESS",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            "POD_NAMESPACE",
        ] {
            command.env_remove(var);
        }
        command.envs(env.iter().copied());
        let out = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
            .await
            .unwrap()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The template followed by a Secret manifest, in one multi-document file.
    fn with_secret(
        dir: &tempfile::TempDir,
        template_name: &str,
        name: &str,
        keys: &[(&str, &str)],
    ) -> String {
        let data: serde_json::Map<String, Value> = keys
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let doc = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "argo-rollouts"}, "stringData": data});
        let text = format!(
            "{}\n---\n{}\n",
            std::fs::read_to_string(template(template_name)).unwrap(),
            doc
        );
        let path = dir.path().join(template_name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn datadog_error_rate() {
        let rate = Arc::new(std::sync::Mutex::new(0.002));
        let shared = rate.clone();
        let server = FixtureServer::start(move |_| {
            Reply::json(json!({"data": {"attributes": {"columns": [{"name": "errors / hits", "type": "number", "values": [*shared.lock().unwrap()]}]}}}))
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let file = with_secret(
            &dir,
            "datadog-error-rate.yaml",
            "datadog",
            &[("address", &server.url), ("api-key", "k"), ("app-key", "a")],
        );
        let (code, out) = analyze(&[&file], &["service=checkout"], &[]).await;
        assert_eq!(code, 0, "{out}");
        let body = only(&server).json();
        assert_eq!(
            body["data"]["attributes"]["formulas"],
            json!([{"formula": "errors / hits"}])
        );
        assert_eq!(
            body["data"]["attributes"]["queries"][0]["query"],
            "sum:trace.http.request.errors{service:checkout,env:prod}.as_count()"
        );
        *rate.lock().unwrap() = 0.2;
        let (code, out) = analyze(&[&file], &["service=checkout"], &[]).await;
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("Failed"), "{out}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn newrelic_error_rate() {
        let server = FixtureServer::start(|r| {
            let nrql = r.json()["variables"]["query"].as_str().unwrap().to_string();
            let percent = if nrql.contains("'bad'") { 7.5 } else { 0.25 };
            Reply::json(json!({"data": {"actor": {"account": {"nrql": {"results": [{"errorPercent": percent}]}}}}}))
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{}/graphql", server.url);
        let file = with_secret(
            &dir,
            "newrelic-error-rate.yaml",
            "newrelic",
            &[
                ("personal-api-key", "NRAK"),
                ("account-id", "99"),
                ("base-url-nerdgraph", &url),
            ],
        );
        let (code, out) = analyze(&[&file], &["app-name=good"], &[]).await;
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            only(&server).json()["variables"]["query"],
            "SELECT percentage(count(*), WHERE error IS true) AS errorPercent FROM Transaction WHERE appName = 'good' SINCE 5 minutes AGO"
        );
        let (code, out) = analyze(&[&file], &["app-name=bad"], &[]).await;
        assert_ne!(code, 0, "{out}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cloudwatch_alb_5xx_rate() {
        let server = FixtureServer::start(|r| {
            let body = r.text();
            let values = if body.contains("targetgroup/bad") { json!([0.001, 0.2]) } else { json!([0.001, 0.004]) };
            Reply::json(json!({"MetricDataResults": [{"Id": "rate", "Label": "5xx rate", "StatusCode": "Complete", "Timestamps": [1, 2], "Values": values}]}))
        })
        .await;
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_CLOUDWATCH", server.url.as_str()),
        ];
        let file = template("cloudwatch-alb-5xx-rate.yaml");
        let args = ["load-balancer=app/web/1", "target-group=targetgroup/good/2"];
        let (code, out) = analyze(&[&file], &args, &env).await;
        assert_eq!(code, 0, "{out}");
        let r = only(&server);
        assert!(
            r.header("authorization")
                .contains("/eu-west-1/monitoring/aws4_request"),
            "{r:?}"
        );
        let body = r.json();
        assert_eq!(body["MetricDataQueries"][1]["MetricStat"]["Period"], 60);
        assert_eq!(
            body["MetricDataQueries"][2]["MetricStat"]["Metric"]["MetricName"],
            "RequestCount"
        );
        let args = ["load-balancer=app/web/1", "target-group=targetgroup/bad/2"];
        let (code, out) = analyze(&[&file], &args, &env).await;
        assert_ne!(code, 0, "{out}");
    }
}
