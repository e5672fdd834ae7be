//! One function per API verb: list (with selectors and `limit`/`continue`), get, create,
//! update, patch (all types, status and scale), delete, deletecollection and watch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{Response, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::body::{self, Decoded, Syntax};
use super::error::ApiError;
use super::fields::Scope;
use super::http::{Req, Target, json_response};
use super::patch::{PatchKind, apply_patch};
use super::render::{self, ListMeta};
use super::rules::{self, meta_str};
use super::schema::FieldValidation;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{DeleteOpts, Deleted, ObjKey, ObjectId, Propagation, WriteCtx, key_of};
use super::watch::{WatchSpec, WatchStart, watch_stream};

type Answer = Result<Response<Body>, ApiError>;

fn ok_object(status: StatusCode, obj: &Value, t: &Target) -> Answer {
    Ok(json_response(
        status,
        render::object_bytes(obj, &t.api_version()),
    ))
}

fn scope_of(t: &Target) -> Scope {
    match t.subresource.as_deref() {
        Some("status") => Scope::Status,
        Some("scale") => Scope::Scale,
        _ => Scope::Main,
    }
}

fn name_of(t: &Target) -> &str {
    t.name.as_deref().unwrap_or_default()
}

fn object_id(t: &Target) -> ObjectId<'_> {
    ObjectId {
        def: &t.def,
        ns: t.namespace.as_deref(),
        name: name_of(t),
    }
}

/// The body types the sandbox decodes, as a 415 lists them.
const ACCEPTED_MEDIA_TYPES: &str = "application/json, application/yaml";

/// JSON, or YAML when the body is not JSON (apply patches and hand-written requests).
fn parse_body(req: &Req) -> Result<Value, ApiError> {
    Ok(decode_body(req, false)?.value)
}

/// The body with the duplicate fields found in it: YAML when the content type says so (or
/// `yaml` is set, for apply patches) or when it is not JSON, else JSON.
fn decode_body(req: &Req, yaml: bool) -> Result<Decoded, ApiError> {
    if req.body.is_empty() {
        return Ok(Decoded::plain(json!({})));
    }
    let content_type = req.header(header::CONTENT_TYPE);
    // kubectl's imperative verbs (`create namespace`, `create configmap`) send built-ins as
    // protobuf; the sandbox does not decode it, and a 415 is what makes client-go send the
    // request again as JSON (a 400 would end the command).
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::UnsupportedMediaType(ACCEPTED_MEDIA_TYPES.into()));
    }
    if (yaml || content_type.contains("yaml"))
        && let Ok(d) = body::decode(&req.body, Syntax::Yaml)
    {
        return Ok(d);
    }
    body::decode(&req.body, Syntax::Json).or_else(|json_err| {
        body::decode(&req.body, Syntax::Yaml).map_err(|_| {
            ApiError::BadRequest(format!(
                "the request body is not valid JSON: {}",
                json_err.0
            ))
        })
    })
}

/// The field manager: `fieldManager`, else the User-Agent's product name, as kube-apiserver does.
fn manager(req: &Req) -> String {
    if let Some(m) = req.query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let ua = req.header(header::USER_AGENT);
    let product = ua.split('/').next().unwrap_or_default().trim();
    if product.is_empty() {
        "unknown".into()
    } else {
        product.to_string()
    }
}

fn selectors(req: &Req) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(req.query.get("labelSelector").unwrap_or_default())?,
        FieldSelector::parse(req.query.get("fieldSelector").unwrap_or_default())?,
    ))
}

fn encode_token(rv: u64, key: &ObjKey) -> String {
    format!("{rv}\n{}\n{}", key.0, key.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_token(token: &str) -> Option<(u64, ObjKey)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '\n');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, (parts.next()?.to_string(), parts.next()?.to_string())))
}

pub fn list(inner: &Inner, req: &Req, t: &Target) -> Answer {
    let (labels, fields) = selectors(req)?;
    let limit: usize = match req.query.get("limit") {
        Some(l) if !l.is_empty() => l
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid limit: {l}")))?,
        _ => 0,
    };
    let token = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(
            decode_token(c).ok_or_else(|| ApiError::BadRequest("invalid continue token".into()))?,
        ),
        None => None,
    };
    let ns = t.namespace.as_deref();
    let (items, meta) = {
        let st = inner.store.read();
        let rv = match &token {
            Some((rv, _)) if *rv < st.floor() => {
                return Err(ApiError::Expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                ));
            }
            Some((rv, _)) => *rv,
            None => st.resource_version(),
        };
        if req.query.get("resourceVersionMatch") == Some("Exact")
            && let Some(want) = req
                .query
                .get("resourceVersion")
                .and_then(|v| v.parse::<u64>().ok())
            && want != st.resource_version()
        {
            return Err(ApiError::Expired(format!(
                "too old resource version: {want} ({})",
                st.resource_version()
            )));
        }
        let after = token.as_ref().map(|(_, k)| k);
        let matching = |o: &&Arc<Value>| labels.matches(o) && fields.matches(o);
        let mut items: Vec<Arc<Value>> =
            match (fields.exact_name(), t.def.namespaced == ns.is_some()) {
                (Some(name), true) => st
                    .get(&t.def.gr, &key_of(&t.def, ns, name))
                    .into_iter()
                    .filter(|o| matching(&o) && after.is_none())
                    .collect(),
                _ => {
                    let iter = st
                        .select(&t.def.gr, ns, after, &labels)
                        .filter(matching)
                        .cloned();
                    if limit > 0 {
                        iter.take(limit + 1).collect()
                    } else {
                        iter.collect()
                    }
                }
            };
        let mut meta = ListMeta {
            resource_version: rv,
            continue_token: None,
            remaining: None,
        };
        if limit > 0 && items.len() > limit {
            items.truncate(limit);
            let last = items.last().map(|o| {
                (
                    meta_str(o, "namespace").unwrap_or_default().to_string(),
                    meta_str(o, "name").unwrap_or_default().to_string(),
                )
            });
            if let Some(key) = last {
                // Counting is O(n), so only the first page of an unfiltered list reports it
                // (kube-rs and kubectl never read it).
                if token.is_none() && labels.is_empty() && fields.is_empty() {
                    meta.remaining = Some(st.range(&t.def.gr, ns, Some(&key)).count() as u64);
                }
                meta.continue_token = Some(encode_token(rv, &key));
            }
        }
        (items, meta)
    };
    Ok(json_response(
        StatusCode::OK,
        render::list_body(&t.def, &t.api_version(), &items, &meta),
    ))
}

pub fn get(inner: &Inner, t: &Target) -> Answer {
    let name = name_of(t);
    let obj = inner
        .store
        .read()
        .get(&t.def.gr, &key_of(&t.def, t.namespace.as_deref(), name))
        .ok_or_else(|| ApiError::not_found(&t.def.gr.group, &t.def.gr.resource, name))?;
    if scope_of(t) == Scope::Scale {
        let scale = rules::scale_of(&t.def, &obj).ok_or(ApiError::RouteNotFound)?;
        return Ok(json_response(
            StatusCode::OK,
            scale.to_string().into_bytes(),
        ));
    }
    ok_object(StatusCode::OK, &obj, t)
}

fn check_kind(t: &Target, body: &Value) -> Result<(), ApiError> {
    match body.get("kind").and_then(Value::as_str) {
        Some(k)
            if !k.is_empty()
                && k != t.def.kind
                && !(t.subresource.as_deref() == Some("scale") && k == "Scale") =>
        {
            Err(ApiError::BadRequest(format!(
                "the kind of the provided object ({k}) does not match the resource ({})",
                t.def.kind
            )))
        }
        _ => Ok(()),
    }
}

fn write_ctx<'a>(inner: &Inner, req: &Req, manager: &'a str, api_version: &'a str) -> WriteCtx<'a> {
    WriteCtx {
        now: (inner.clock)(),
        manager,
        api_version,
        dry_run: req.query.get("dryRun") == Some("All"),
        field_validation: FieldValidation::Warn,
        warnings: None,
        decoded: None,
    }
}

/// The context of a create, update or patch: also `fieldValidation` and where its warnings go.
fn body_write_ctx<'a>(
    inner: &Inner,
    req: &Req,
    manager: &'a str,
    api_version: &'a str,
    warnings: &'a Mutex<Vec<String>>,
    decoded: &'a Decoded,
) -> Result<WriteCtx<'a>, ApiError> {
    let value = req.query.get("fieldValidation");
    let field_validation = FieldValidation::parse(value).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "fieldValidation: Unsupported value: {:?}: supported values: \"Ignore\", \"Strict\", \"Warn\"",
            value.unwrap_or_default()
        ))
    })?;
    Ok(WriteCtx {
        field_validation,
        warnings: Some(warnings),
        decoded: Some(decoded),
        ..write_ctx(inner, req, manager, api_version)
    })
}

/// Runs a write handler and adds a `Warning: 299 - "…"` header per warning it collected.
fn with_warnings(f: impl FnOnce(&Mutex<Vec<String>>) -> Answer) -> Answer {
    let warnings = Mutex::new(Vec::new());
    let mut resp = f(&warnings)?;
    let warnings = warnings.into_inner().unwrap_or_else(|p| p.into_inner());
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    Ok(resp)
}

pub fn create(inner: &Inner, req: &Req, t: &Target) -> Answer {
    with_warnings(|w| create_with(inner, req, t, w))
}

fn create_with(inner: &Inner, req: &Req, t: &Target, warnings: &Mutex<Vec<String>>) -> Answer {
    let mut decoded = decode_body(req, false)?;
    let body = std::mem::take(&mut decoded.value);
    check_kind(t, &body)?;
    let manager = manager(req);
    let api_version = t.api_version();
    let ctx = body_write_ctx(inner, req, &manager, &api_version, warnings, &decoded)?;
    let obj = inner
        .store
        .write(|s| s.create(&t.def, t.namespace.as_deref(), body, &ctx, true))?;
    ok_object(StatusCode::CREATED, &obj, t)
}

pub fn update(inner: &Inner, req: &Req, t: &Target) -> Answer {
    with_warnings(|w| update_with(inner, req, t, w))
}

fn update_with(inner: &Inner, req: &Req, t: &Target, warnings: &Mutex<Vec<String>>) -> Answer {
    let mut decoded = decode_body(req, false)?;
    let body = std::mem::take(&mut decoded.value);
    check_kind(t, &body)?;
    let manager = manager(req);
    let api_version = t.api_version();
    let ctx = body_write_ctx(inner, req, &manager, &api_version, warnings, &decoded)?;
    let scope = scope_of(t);
    let def = t.def.clone();
    let obj = inner.store.write(|s| {
        s.update(object_id(t), scope, &ctx, true, |old| {
            if scope == Scope::Scale {
                rules::with_scale(&def, old, &body)
            } else {
                Ok(body)
            }
        })
    })?;
    if scope == Scope::Scale {
        let scale = rules::scale_of(&t.def, &obj).ok_or(ApiError::RouteNotFound)?;
        return Ok(json_response(
            StatusCode::OK,
            scale.to_string().into_bytes(),
        ));
    }
    ok_object(StatusCode::OK, &obj, t)
}

pub fn patch(inner: &Inner, req: &Req, t: &Target) -> Answer {
    with_warnings(|w| patch_with(inner, req, t, w))
}

fn patch_with(inner: &Inner, req: &Req, t: &Target, warnings: &Mutex<Vec<String>>) -> Answer {
    let kind = PatchKind::from_content_type(req.header(header::CONTENT_TYPE))?;
    let mut decoded = decode_body(req, kind == PatchKind::Apply)?;
    let body = std::mem::take(&mut decoded.value);
    let manager = manager(req);
    let api_version = t.api_version();
    let ctx = body_write_ctx(inner, req, &manager, &api_version, warnings, &decoded)?;
    if kind != PatchKind::Apply
        && ctx.field_validation == FieldValidation::Strict
        && !decoded.duplicates.is_empty()
    {
        // kube-apiserver refuses a merge or strategic patch with repeated keys as an invalid
        // `patch`, quoting the decoded patch as Go prints it.
        return Err(ApiError::Invalid {
            group: String::new(),
            kind: String::new(),
            name: String::new(),
            causes: vec![super::error::Cause {
                field: "patch".into(),
                message: format!(
                    "Invalid value: {:?}: strict decoding error: {}",
                    body::go_value(&body),
                    decoded.strict_errors().join(", ")
                ),
            }],
        });
    }
    let scope = scope_of(t);
    let name = name_of(t);
    if kind == PatchKind::Apply {
        if req.query.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                "fieldManager",
                "Required value: is required for apply patch".into(),
            ));
        }
        if scope == Scope::Scale {
            return Err(ApiError::UnsupportedMediaType(
                "application/json-patch+json, application/merge-patch+json".into(),
            ));
        }
        if meta_str(&body, "name").is_some_and(|n| n != name) {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&body, "name").unwrap_or_default()
            )));
        }
        check_kind(t, &body)?;
        let force = req.query.flag("force");
        let (obj, created) = inner
            .store
            .write(|s| s.apply(object_id(t), &body, scope, &ctx, force))?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        return ok_object(status, &obj, t);
    }
    let def = t.def.clone();
    let obj = inner.store.write(|s| {
        s.update(object_id(t), scope, &ctx, true, |old| {
            if scope == Scope::Scale {
                let scale = rules::scale_of(&def, old).ok_or(ApiError::RouteNotFound)?;
                // Scale has no lists, so a strategic merge is a plain merge there.
                let kind = if kind == PatchKind::Strategic {
                    PatchKind::Merge
                } else {
                    kind
                };
                let patched = apply_patch(&def, kind, &scale, &body)?;
                rules::with_scale(&def, old, &patched)
            } else {
                apply_patch(&def, kind, old, &body)
            }
        })
    })?;
    if scope == Scope::Scale {
        let scale = rules::scale_of(&t.def, &obj).ok_or(ApiError::RouteNotFound)?;
        return Ok(json_response(
            StatusCode::OK,
            scale.to_string().into_bytes(),
        ));
    }
    ok_object(StatusCode::OK, &obj, t)
}

fn delete_opts(req: &Req) -> Result<DeleteOpts, ApiError> {
    let body = parse_body(req)?;
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(req.query.get("propagationPolicy"));
    let propagation = match policy {
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown propagationPolicy: {other}"
            )));
        }
        None => match body.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => Some(Propagation::Orphan),
            _ => None,
        },
    };
    let pre = |k: &str| {
        body.get("preconditions")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let grace_period = match body.get("gracePeriodSeconds") {
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ApiError::BadRequest(format!("invalid gracePeriodSeconds: {v}")))?,
        ),
        None => {
            match req
                .query
                .get("gracePeriodSeconds")
                .filter(|g| !g.is_empty())
            {
                Some(g) => Some(g.parse().map_err(|_| {
                    ApiError::BadRequest(format!("invalid gracePeriodSeconds: {g}"))
                })?),
                None => None,
            }
        }
    };
    Ok(DeleteOpts {
        propagation,
        grace_period,
        precondition_uid: pre("uid"),
        precondition_rv: pre("resourceVersion"),
    })
}

pub fn delete(inner: &Inner, req: &Req, t: &Target) -> Answer {
    let opts = delete_opts(req)?;
    let manager = manager(req);
    let api_version = t.api_version();
    let mut ctx = write_ctx(inner, req, &manager, &api_version);
    if parse_body(req)?
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"))
    {
        ctx.dry_run = true;
    }
    let name = name_of(t);
    let outcome = inner
        .store
        .write(|s| s.delete(&t.def, t.namespace.as_deref(), name, &opts, &ctx))?;
    match outcome {
        Deleted::Marked(obj) => ok_object(StatusCode::OK, &obj, t),
        Deleted::Removed(obj) if t.def.return_deleted => ok_object(StatusCode::OK, &obj, t),
        Deleted::Removed(obj) => {
            let mut details =
                json!({"name": name, "kind": t.def.gr.resource, "uid": meta_str(&obj, "uid")});
            if let (false, Some(d)) = (t.def.gr.group.is_empty(), details.as_object_mut()) {
                d.insert("group".into(), json!(t.def.gr.group));
            }
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
            Ok(json_response(
                StatusCode::OK,
                status.to_string().into_bytes(),
            ))
        }
    }
}

pub fn delete_collection(inner: &Inner, req: &Req, t: &Target) -> Answer {
    let (labels, fields) = selectors(req)?;
    let manager = manager(req);
    let api_version = t.api_version();
    let ctx = write_ctx(inner, req, &manager, &api_version);
    let items = inner
        .store
        .write(|s| s.delete_collection(&t.def, t.namespace.as_deref(), &labels, &fields, &ctx))?;
    let meta = ListMeta {
        resource_version: inner.store.read().resource_version(),
        continue_token: None,
        remaining: None,
    };
    Ok(json_response(
        StatusCode::OK,
        render::list_body(&t.def, &t.api_version(), &items, &meta),
    ))
}

pub fn watch(inner: &Inner, req: &Req, t: &Target, cancel: CancellationToken) -> Response<Body> {
    let spec = match watch_spec(inner, req, t) {
        Ok(s) => s,
        Err(e) => return super::http::error_response(&e),
    };
    let stream = watch_stream(inner.store.clone(), spec, cancel);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn watch_spec(inner: &Inner, req: &Req, t: &Target) -> Result<WatchSpec, ApiError> {
    let (labels, fields) = selectors(req)?;
    let rv = req.query.get("resourceVersion").unwrap_or_default();
    let send_initial = req.query.get("sendInitialEvents");
    let start = match (send_initial, rv) {
        (Some("true"), _) => WatchStart::Initial { end_bookmark: true },
        (Some("false"), "" | "0") => WatchStart::After(inner.store.read().resource_version()),
        (_, "" | "0") => WatchStart::Initial {
            end_bookmark: false,
        },
        (_, rv) => WatchStart::After(
            rv.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = match req.query.get("timeoutSeconds") {
        Some(s) if !s.is_empty() => {
            Some(Duration::from_secs(s.parse().map_err(|_| {
                ApiError::BadRequest(format!("invalid timeoutSeconds: {s}"))
            })?))
        }
        _ => None,
    };
    Ok(WatchSpec {
        def: t.def.clone(),
        api_version: t.api_version(),
        namespace: t.namespace.clone(),
        labels,
        fields,
        start,
        bookmarks: req.query.flag("allowWatchBookmarks"),
        timeout,
        bookmark_interval: inner.bookmark_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let key = ("ns".to_string(), "name-1".to_string());
        let t = encode_token(42, &key);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(decode_token(&t), Some((42, key)));
        assert_eq!(decode_token("zz"), None);
    }
}
