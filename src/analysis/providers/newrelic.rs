//! The `newRelic` provider: one NRQL query through NerdGraph (`POST <nerdgraph>/graphql` with
//! the account id, query and timeout as variables), the account and key from the `newrelic`
//! Secret (or the one `profile` names) in the controller's namespace. One result row is the
//! result as a map, several a list of maps.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value as Json, json};

use crate::api::providers::NewRelicMetric;
use crate::api::{Measurement, Metric};
use crate::expr::MetricValue;

use super::http::{client, error_text};
use super::web::go_json;
use super::{MeasureContext, Provider, SecretReader, conclude, errored, started};

/// The Secret read when `profile` names none.
pub const DEFAULT_SECRET: &str = "newrelic";
/// Metric-result metadata key holding the query as sent.
pub const RESOLVED_QUERY: &str = "ResolvedNewRelicQuery";
/// The GraphQL document sent (upstream's: the account's `nrql` field with the query, its
/// timeout and the `results` selection).
pub const NRQL_QUERY: &str = "query (\n  $query: Nrql!, \n  $accountId: Int!,\n  $timeout: Seconds!\n)\n{\n  actor {\n    account(id: $accountId) {\n      nrql(query: $query, timeout: $timeout) {\n        results\n      }\n    }\n  }\n}\n";
/// `User-Agent` of every call.
pub const USER_AGENT: &str = concat!(
    "argo-rollouts/davy-",
    env!("CARGO_PKG_VERSION"),
    " (https://github.com/argoproj/argo-rollouts)"
);
/// How long the HTTP call may take beyond the NRQL timeout itself.
const HTTP_SLACK: Duration = Duration::from_secs(10);

/// One configured New Relic metric.
#[derive(Debug, Clone)]
pub struct NewRelicProvider {
    spec: NewRelicMetric,
    secrets: SecretReader,
}

/// Account id, key and NerdGraph URL read from the profile Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `account-id`.
    pub account_id: i64,
    /// `personal-api-key`.
    pub api_key: String,
    /// `base-url-nerdgraph`, else the region's endpoint.
    pub nerdgraph_url: String,
}

/// The NerdGraph endpoint of a `region` (`us` by default).
pub fn region_url(region: &str) -> Result<String, String> {
    match region.to_ascii_lowercase().as_str() {
        "us" => Ok("https://api.newrelic.com/graphql".into()),
        "eu" => Ok("https://api.eu.newrelic.com/graphql".into()),
        "staging" => Ok("https://staging-api.newrelic.com/graphql".into()),
        _ => Err(format!("invalid region {region}")),
    }
}

/// Reads the Secret's keys as upstream does.
pub fn account(data: &BTreeMap<String, String>) -> Result<Account, String> {
    let key = |k: &str| data.get(k).cloned().unwrap_or_default();
    let api_key = key("personal-api-key");
    let account_id = key("account-id");
    if api_key.is_empty() || account_id.is_empty() {
        return Err("account ID or personal API key not found".into());
    }
    let region = data.get("region").cloned().unwrap_or_else(|| "us".into());
    let region_endpoint = region_url(&region)?;
    let nerdgraph_url = data
        .get("base-url-nerdgraph")
        .cloned()
        .unwrap_or(region_endpoint);
    let account_id = account_id.parse::<i64>().map_err(|_| {
        format!("could not parse account ID: strconv.Atoi: parsing {account_id:?}: invalid syntax")
    })?;
    Ok(Account {
        account_id,
        api_key,
        nerdgraph_url,
    })
}

impl NewRelicProvider {
    /// Keeps the spec; the Secret is read at each measurement.
    pub fn new(spec: &NewRelicMetric, secrets: SecretReader) -> NewRelicProvider {
        NewRelicProvider {
            spec: spec.clone(),
            secrets,
        }
    }

    /// The rows of the query's answer.
    async fn query(&self) -> Result<Vec<Json>, String> {
        let data = self
            .secrets
            .read_profile(self.spec.profile.as_deref(), DEFAULT_SECRET)
            .await?;
        let account = account(&data)?;
        let timeout = self.spec.timeout_seconds();
        if timeout < 0 {
            return Err("timeout value needs to be a positive value".into());
        }
        let body = json!({
            "query": NRQL_QUERY,
            "variables": {
                "accountId": account.account_id,
                "query": self.spec.query,
                "timeout": timeout,
            }
        });
        let http = client(
            Duration::from_secs(timeout.unsigned_abs()) + HTTP_SLACK,
            false,
        )
        .map_err(|e| e.to_string())?;
        let response = http
            .post(&account.nerdgraph_url)
            .header("Content-Type", "application/json")
            .header("Api-Key", &account.api_key)
            .header("User-Agent", USER_AGENT)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| error_text(&e))?;
        let doc: Option<Json> = serde_json::from_str(&text).ok();
        if let Some(message) = doc.as_ref().and_then(graphql_errors) {
            return Err(message);
        }
        if !(200..300).contains(&status) {
            return Err(format!("{status} response returned: {text}"));
        }
        let doc = doc.ok_or_else(|| format!("could not decode NerdGraph response: {text}"))?;
        Ok(doc
            .pointer("/data/actor/account/nrql/results")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default())
    }

    async fn measure(&self, ctx: &MeasureContext, metric: &Metric) -> Measurement {
        let measurement = started(ctx);
        let rows = match self.query().await {
            Ok(rows) => rows,
            Err(message) => return errored(measurement, message),
        };
        let (result, value) = match rows.as_slice() {
            [] => return errored(measurement, "no results returned from NRQL query"),
            [row] if row.as_object().is_none_or(|o| o.is_empty()) => {
                return errored(measurement, "no results returned from NRQL query");
            }
            [row] => (MetricValue::from(row.clone()), go_json(row)),
            _ => {
                let all = Json::Array(rows.clone());
                (MetricValue::from(all.clone()), go_json(&all))
            }
        };
        conclude(measurement, metric, &result, value, ctx)
    }
}

/// The messages of a GraphQL `errors` array, joined, if there are any.
pub fn graphql_errors(doc: &Json) -> Option<String> {
    let errors = doc.get("errors")?.as_array()?;
    if errors.is_empty() {
        return None;
    }
    let messages: Vec<String> = errors
        .iter()
        .map(|e| {
            e.get("message")
                .and_then(Json::as_str)
                .map(String::from)
                .unwrap_or_else(|| e.to_string())
        })
        .collect();
    Some(messages.join(", "))
}

impl Provider for NewRelicProvider {
    fn kind(&self) -> &'static str {
        "NewRelic"
    }

    fn metadata(&self, _metric: &Metric) -> BTreeMap<String, String> {
        if self.spec.query.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([(RESOLVED_QUERY.to_string(), self.spec.query.clone())])
        }
    }

    fn run<'a>(
        &'a self,
        ctx: &'a MeasureContext,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.measure(ctx, metric))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        let mut data = BTreeMap::from([("personal-api-key".to_string(), "k".to_string())]);
        assert_eq!(
            account(&data).unwrap_err(),
            "account ID or personal API key not found"
        );
        data.insert("account-id".into(), "12x".into());
        assert_eq!(
            account(&data).unwrap_err(),
            "could not parse account ID: strconv.Atoi: parsing \"12x\": invalid syntax"
        );
        data.insert("account-id".into(), "12".into());
        data.insert("region".into(), "eu".into());
        let a = account(&data).unwrap();
        assert_eq!(a.account_id, 12);
        assert_eq!(a.nerdgraph_url, "https://api.eu.newrelic.com/graphql");
        data.insert(
            "base-url-nerdgraph".into(),
            "http://127.0.0.1:1/graphql".into(),
        );
        assert_eq!(
            account(&data).unwrap().nerdgraph_url,
            "http://127.0.0.1:1/graphql"
        );
    }
}
