//! Request routing: discovery and admin paths, resource URL parsing (namespaced, cluster-scoped,
//! subresources), query parsing, fault injection, and `Status` error responses.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::discovery;
use super::error::ApiError;
use super::faults::Verb;
use super::handlers;
use super::requests::Transport;
use super::resources::ResourceDef;

/// A parsed query string; kube-rs sends `?&a=b` and bare `?`, so empty pairs are skipped.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 2;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let pairs = q
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Query(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// Everything a handler needs from the request.
pub struct Req {
    pub method: Method,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// A resolved resource URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub def: Arc<ResourceDef>,
    pub version: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    pub fn api_version(&self) -> String {
        self.def.api_version(&self.version)
    }
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    with_type(status, "application/json", body)
}

fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, err.to_status().to_string().into_bytes())
}

fn value_response(v: &serde_json::Value) -> Response<Body> {
    json_response(StatusCode::OK, v.to_string().into_bytes())
}

/// The one entry point both transports call.
pub async fn handle(
    inner: &Inner,
    parts: http::request::Parts,
    body: Bytes,
    cancel: CancellationToken,
    transport: Transport,
) -> Response<Body> {
    inner.ensure_controllers();
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let req = Req {
        method: parts.method,
        query: Query::parse(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(resp) = non_resource(inner, &req, &segs) {
        inner.requests.record(transport, None);
        return resp;
    }
    let target = match resolve(inner, &segs) {
        Ok(t) => t,
        Err(e) => {
            inner.requests.record(transport, None);
            return error_response(&e);
        }
    };
    let verb = match verb_of(&req, &target) {
        Ok(v) => v,
        Err(e) => {
            inner.requests.record(transport, None);
            return error_response(&e);
        }
    };
    inner.requests.record(transport, Some(verb));
    let decision = inner.faults.decide(verb);
    if let Some(latency) = decision.latency {
        tokio::time::sleep(latency).await;
    }
    if let Some(code) = decision.error_code {
        return error_response(&ApiError::Internal {
            code,
            message: format!("injected fault: {verb:?} failed"),
        });
    }
    if decision.conflict {
        let name = target.name.as_deref().unwrap_or_default();
        return error_response(&ApiError::stale(
            &target.def.gr.group,
            &target.def.gr.resource,
            name,
        ));
    }
    let result = match verb {
        Verb::Watch => return handlers::watch(inner, &req, &target, cancel),
        Verb::List => handlers::list(inner, &req, &target),
        Verb::Get => handlers::get(inner, &target),
        Verb::Create => handlers::create(inner, &req, &target),
        Verb::Update => handlers::update(inner, &req, &target),
        Verb::Patch => handlers::patch(inner, &req, &target),
        Verb::Delete => handlers::delete(inner, &req, &target),
        Verb::DeleteCollection => handlers::delete_collection(inner, &req, &target),
    };
    match result {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

fn verb_of(req: &Req, t: &Target) -> Result<Verb, ApiError> {
    let item = t.name.is_some();
    let verb = match (&req.method, item) {
        (&Method::GET, false) if req.query.flag("watch") => Verb::Watch,
        (&Method::GET, false) => Verb::List,
        (&Method::GET, true) => Verb::Get,
        (&Method::POST, false) => Verb::Create,
        (&Method::PUT, true) => Verb::Update,
        (&Method::PATCH, true) => Verb::Patch,
        (&Method::DELETE, true) => Verb::Delete,
        (&Method::DELETE, false) => Verb::DeleteCollection,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    if t.subresource.is_some() && matches!(verb, Verb::Delete) {
        return Err(ApiError::MethodNotAllowed);
    }
    if t.def.namespaced && t.namespace.is_none() && !matches!(verb, Verb::List | Verb::Watch) {
        return Err(ApiError::RouteNotFound);
    }
    Ok(verb)
}

/// Maps `/api/v1/...` and `/apis/G/V/...` to a served resource.
fn resolve(inner: &Inner, segs: &[&str]) -> Result<Target, ApiError> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::RouteNotFound),
    };
    // Look kinds up under the lock instead of cloning the registry on every request.
    let lookup = |res: &str| {
        inner
            .store
            .read()
            .registry()
            .lookup(group, version, res)
            .ok_or(ApiError::RouteNotFound)
    };
    let namespaced_form =
        matches!(rest, ["namespaces", _, res, ..] if lookup(res).is_ok_and(|d| d.namespaced));
    let (namespace, res, name, sub) = if namespaced_form {
        match rest {
            ["namespaces", ns, res] => (Some(*ns), *res, None, None),
            ["namespaces", ns, res, name] => (Some(*ns), *res, Some(*name), None),
            ["namespaces", ns, res, name, sub] => (Some(*ns), *res, Some(*name), Some(*sub)),
            _ => return Err(ApiError::RouteNotFound),
        }
    } else {
        match rest {
            [res] => (None, *res, None, None),
            [res, name] => (None, *res, Some(*name), None),
            [res, name, sub] => (None, *res, Some(*name), Some(*sub)),
            _ => return Err(ApiError::RouteNotFound),
        }
    };
    let def = lookup(res)?;
    if !def.namespaced && namespace.is_some() {
        return Err(ApiError::RouteNotFound);
    }
    match sub {
        None => {}
        Some("status") if def.status => {}
        Some("scale") if def.scale.is_some() => {}
        Some(_) => return Err(ApiError::RouteNotFound),
    }
    Ok(Target {
        def,
        version: version.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    })
}

/// Discovery, OpenAPI, health and admin endpoints; None for resource paths.
fn non_resource(inner: &Inner, req: &Req, segs: &[&str]) -> Option<Response<Body>> {
    let reg = || inner.store.read().registry().clone();
    let get = req.method == Method::GET;
    let aggregated = discovery::wants_aggregated(req.header(header::ACCEPT));
    let found = |v: Option<serde_json::Value>| match v {
        Some(v) => value_response(&v),
        None => error_response(&ApiError::RouteNotFound),
    };
    let resp = match segs {
        [] if get => value_response(
            &serde_json::json!({"paths": ["/api", "/api/v1", "/apis", "/version", "/openapi/v3"]}),
        ),
        ["version"] if get => value_response(&discovery::version()),
        ["healthz" | "readyz" | "livez"] if get => {
            with_type(StatusCode::OK, "text/plain", b"ok".to_vec())
        }
        ["api"] if get && aggregated => with_type(
            StatusCode::OK,
            discovery::AGGREGATED_V2,
            discovery::aggregated(&reg(), true).to_string().into_bytes(),
        ),
        ["apis"] if get && aggregated => with_type(
            StatusCode::OK,
            discovery::AGGREGATED_V2,
            discovery::aggregated(&reg(), false)
                .to_string()
                .into_bytes(),
        ),
        ["api"] if get => value_response(&discovery::api_versions(req.header(header::HOST))),
        ["apis"] if get => value_response(&discovery::api_group_list(&reg())),
        ["api", v] if get => found(discovery::api_resource_list(&reg(), "", v)),
        ["apis", g] if get => found(discovery::api_group(&reg(), g)),
        ["apis", g, v] if get => found(discovery::api_resource_list(&reg(), g, v)),
        ["openapi", "v3"] if get => value_response(&discovery::openapi_index(&reg())),
        ["openapi", "v3", "api", v] if get => found(discovery::openapi_gv(&reg(), "", v)),
        ["openapi", "v3", "apis", g, v] if get => found(discovery::openapi_gv(&reg(), g, v)),
        ["openapi", ..] => error_response(&ApiError::RouteNotFound),
        ["_admin", "compact"] if req.method == Method::POST => {
            let rv = inner.faults.compact();
            value_response(&serde_json::json!({"compactedTo": rv.to_string()}))
        }
        ["_admin", "drop-watches"] if req.method == Method::POST => {
            inner.faults.drop_watches();
            value_response(&serde_json::json!({}))
        }
        ["api" | "apis", ..] => return None,
        _ => error_response(&ApiError::RouteNotFound),
    };
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_tolerates_kube_rs_forms() {
        let q = Query::parse(Some(
            "&limit=2&continue=a%3Db&labelSelector=app+in+(x%2Cy)&watch=1",
        ));
        assert_eq!(q.get("limit"), Some("2"));
        assert_eq!(q.get("continue"), Some("a=b"));
        assert_eq!(q.get("labelSelector"), Some("app in (x,y)"));
        assert!(q.flag("watch"));
        assert!(Query::parse(Some("")).get("x").is_none());
        assert_eq!(percent_decode("100%"), "100%");
    }
}
