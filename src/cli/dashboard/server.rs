//! The dashboard's HTTP server: the page and its script, the JSON views, a server-sent-event
//! stream per page fed by the namespace's watches, and the actions, which run the same code as
//! the CLI verbs with the identity of the kubeconfig the dashboard was started with.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use k8s_openapi::api::core::v1::Namespace as K8sNamespace;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use super::access::{Access, AccessError};
use super::state::Namespaces;
use crate::cli::actions::execute;
use crate::cli::actions::patches::parse_container_image;
use crate::cli::kube::{CliError, Kube};

/// The page, its script and its style, built from `dashboard/` (see `dashboard/README.md`).
const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The shortest gap between two snapshots pushed to one page: a burst of watch events (a
/// ReplicaSet scaling, its pods starting) becomes one redraw.
const PUSH_GAP: Duration = Duration::from_millis(150);

/// What every handler shares.
struct Shared {
    client: Client,
    namespace: String,
    access: Access,
    namespaces: Namespaces,
}

type Ctx = State<Arc<Shared>>;

/// The dashboard's routes for `client`, opening on namespace `namespace`.
pub fn router(client: Client, namespace: String, access: Access) -> Router {
    let shared = Arc::new(Shared {
        namespaces: Namespaces::new(client.clone()),
        client,
        namespace,
        access,
    });
    let api = Router::new()
        .route("/api/config", get(config))
        .route("/api/namespaces", get(namespaces))
        .route("/api/namespaces/{ns}/rollouts", get(list))
        .route("/api/namespaces/{ns}/rollouts/{name}", get(one))
        .route("/api/namespaces/{ns}/watch", get(stream))
        .route("/api/namespaces/{ns}/rollouts/{name}/{action}", post(act))
        .route_layer(middleware::from_fn_with_state(shared.clone(), authorize));
    Router::new()
        .route("/", get(index))
        .route("/rollouts", get(index))
        .route("/rollouts/{*rest}", get(index))
        .route("/app.js", get(script))
        .route("/app.css", get(style))
        .merge(api)
        .with_state(shared)
}

/// An error as the page reads it: `{"error": "..."}` with a status.
fn failure(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

async fn authorize(
    State(s): Ctx,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match s
        .access
        .authorize(bearer, query.get("token").map(String::as_str))
    {
        Ok(()) => next.run(request).await,
        Err(e) => failure(StatusCode::UNAUTHORIZED, e.to_string()),
    }
}

async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

async fn config(State(s): Ctx) -> Response {
    axum::Json(json!({
        "namespace": s.namespace,
        "readOnly": s.access.read_only,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// The cluster's namespaces when the identity may list them, else just the starting one.
async fn namespaces(State(s): Ctx) -> Response {
    let mut names = match Api::<K8sNamespace>::all(s.client.clone())
        .list_metadata(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect(),
        Err(_) => Vec::new(),
    };
    if !names.contains(&s.namespace) {
        names.push(s.namespace.clone());
    }
    names.sort();
    axum::Json(json!(names)).into_response()
}

async fn list(State(s): Ctx, Path(ns): Path<String>) -> Response {
    let watched = s.namespaces.get(&ns);
    watched.ready().await;
    axum::Json(watched.snapshot(None, Timestamp::now()).list).into_response()
}

async fn one(State(s): Ctx, Path((ns, name)): Path<(String, String)>) -> Response {
    let watched = s.namespaces.get(&ns);
    watched.ready().await;
    match watched.snapshot(Some(&name), Timestamp::now()).rollout {
        Some(tree) => axum::Json(tree).into_response(),
        None => failure(
            StatusCode::NOT_FOUND,
            format!("rollout.argoproj.io \"{name}\" not found"),
        ),
    }
}

/// Server-sent events: a `snapshot` now and after every change, at most one per [`PUSH_GAP`].
async fn stream(
    State(s): Ctx,
    Path(ns): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watched = s.namespaces.get(&ns);
    let rollout = query.get("rollout").filter(|r| !r.is_empty()).cloned();
    let events = futures::stream::unfold(
        (watched, rollout, None::<Value>, true),
        |(watched, rollout, last, first)| async move {
            let mut changes = watched.changes();
            if first {
                watched.ready().await;
            }
            loop {
                if !first || last.is_some() {
                    changes.changed().await.ok()?;
                    tokio::time::sleep(PUSH_GAP).await;
                }
                changes.borrow_and_update();
                let snap = watched.snapshot(rollout.as_deref(), Timestamp::now());
                let value = serde_json::to_value(&snap).ok()?;
                if last.as_ref() != Some(&value) {
                    let event = Event::default().event("snapshot").data(value.to_string());
                    return Some((Ok(event), (watched, rollout, Some(value), false)));
                }
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// The HTTP status a CLI error maps to.
fn status_of(err: &CliError) -> StatusCode {
    match err {
        CliError::Api(m) if m.contains("not found") => StatusCode::NOT_FOUND,
        CliError::Api(m) if m.contains("forbidden") => StatusCode::FORBIDDEN,
        CliError::Api(_) | CliError::Usage(_) => StatusCode::BAD_REQUEST,
        CliError::Failed(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Runs an action: `promote`, `promote-full`, `abort`, `retry`, `restart`, `undo`, or
/// `set-image` (body `{"image": "CONTAINER=IMAGE"}`).
async fn act(
    State(s): Ctx,
    Path((ns, name, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = s.access.allow_action() {
        return failure(StatusCode::FORBIDDEN, e.to_string());
    }
    let k = Kube {
        client: s.client.clone(),
        namespace: ns,
    };
    let args: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return failure(StatusCode::BAD_REQUEST, format!("request body: {e}")),
        }
    };
    let result = match action.as_str() {
        "promote" => execute::promote(&k, &name, false).await,
        "promote-full" => execute::promote(&k, &name, true).await,
        "abort" => execute::abort(&k, &name).await,
        "retry" => execute::retry_rollout(&k, &name).await,
        "restart" => execute::restart(&k, &name, "0s").await,
        "undo" => execute::undo(&k, &name, 0).await,
        "set-image" => {
            let spec = args["image"].as_str().unwrap_or_default();
            match parse_container_image(spec) {
                Ok((container, image)) => {
                    execute::update_image(&k, &name, &container, &image).await
                }
                Err(e) => Err(e),
            }
        }
        other => {
            return failure(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown action {other:?}: promote, promote-full, abort, retry, restart, undo or set-image"
                ),
            );
        }
    };
    match result {
        Ok(message) => axum::Json(json!({"message": message})).into_response(),
        Err(e) => failure(status_of(&e), e.to_string()),
    }
}

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The access rules refuse this configuration.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The listener failed.
    #[error("dashboard: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the dashboard on `listener` until the process ends.
pub async fn serve(
    client: Client,
    namespace: String,
    access: Access,
    listener: tokio::net::TcpListener,
) -> Result<(), ServeError> {
    axum::serve(listener, router(client, namespace, access)).await?;
    Ok(())
}
