//! `davy dashboard` against the in-process sandbox with a controller: the JSON views, the
//! server-sent snapshots that follow the watches, the actions, the token and read-only rules,
//! and the page itself driven in Debian's chromium (headless, Playwright), with a screenshot of
//! each stage.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use davy::cli::dashboard::access::Access;
use davy::cli::dashboard::server::serve;
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use support::{NS, World, canary_rollout, eventually, rollout};

/// A dashboard for `world` on a free loopback port; returns its base URL.
async fn dashboard(world: &World, access: Access) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let client = world.client.clone();
    tokio::spawn(async move { serve(client, NS.to_string(), access, listener).await });
    url
}

/// The metric the Rollouts' analysis step measures, from a `web` provider.
const METRIC: &str = "success-rate";

/// A loopback HTTP server answering `{"rate": 0.97}`: the analysis step's data source.
async fn rate_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rate", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/rate",
        axum::routing::get(|| async { axum::Json(json!({"rate": 0.97})) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The AnalysisTemplate `ok-rate`: three measurements of [`METRIC`] a second apart, passing at
/// 0.95 or more.
async fn create_template(world: &World) {
    let url = rate_server().await;
    let template: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "ok-rate", "namespace": NS},
        "spec": {"metrics": [{
            "name": METRIC,
            "count": 3,
            "interval": "1s",
            "successCondition": "result >= 0.95",
            "provider": {"web": {"url": url, "jsonPath": "{$.rate}"}}
        }]}
    }))
    .unwrap();
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AnalysisTemplate"),
        "analysistemplates",
    );
    Api::<DynamicObject>::namespaced_with(world.client.clone(), NS, &resource)
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
}

/// A Healthy canary Rollout `name`: 20%, an analysis step, a pause, 60%, a pause.
async fn healthy_rollout(world: &World, name: &str) {
    create_template(world).await;
    let steps = json!([
        {"setWeight": 20},
        {"analysis": {"templates": [{"templateName": "ok-rate"}]}},
        {"pause": {}},
        {"setWeight": 60},
        {"pause": {}}
    ]);
    world
        .create(&rollout(canary_rollout(name, 2, steps, "demo:blue")))
        .await;
    eventually(&format!("{name} Healthy"), || async {
        let status = world.status(name).await;
        if status["phase"] == "Healthy" {
            Ok(())
        } else {
            Err(support::describe(&status))
        }
    })
    .await;
}

/// Reads server-sent events from a response, one `snapshot` at a time.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(url: &str) -> Events {
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next `snapshot` event's data.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if frame.lines().any(|l| l == "event: snapshot") {
                    let data: String = frame
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .collect();
                    return serde_json::from_str(&data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(support::DEADLINE, self.response.chunk())
                .await
                .expect("an event before the deadline")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Snapshots until one satisfies `want`; fails with the last one at the deadline.
    async fn until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + support::DEADLINE;
        loop {
            let snap = tokio::time::timeout_at(deadline, self.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for a snapshot with {what}"));
            if want(&snap) {
                return snap;
            }
        }
    }
}

async fn post(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_follow_the_watches_and_actions_move_the_rollout() {
    let world = World::start().await;
    healthy_rollout(&world, "web").await;
    let token = "s3cret-token";
    let base = dashboard(
        &world,
        Access {
            token: Some(token.into()),
            read_only: false,
        },
    )
    .await;
    let api = format!("{base}/api/namespaces/{NS}");

    // Without the token the API answers 401 and says why; the page itself is served.
    let res = reqwest::get(format!("{api}/rollouts")).await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "missing or wrong dashboard token");
    let page = reqwest::get(format!("{base}/rollouts")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/app.js"));

    let list: Value = reqwest::Client::new()
        .get(format!("{api}/rollouts"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["status"], "Healthy");
    assert_eq!(list[0]["images"], json!(["demo:blue"]));

    let mut events = Events::open(&format!("{api}/watch?rollout=web&token={token}")).await;
    let first = events.next().await;
    assert_eq!(first["rollout"]["status"], "Healthy");
    assert_eq!(first["list"][0]["name"], "web");

    let (code, body) = post(
        &format!("{api}/rollouts/web/set-image"),
        Some(token),
        json!({"image": "app=demo:yellow"}),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (200, Some("rollout \"web\" image updated"))
    );
    let paused = events
        .until("web paused at its first pause", |s| {
            s["rollout"]["status"] == "Paused" && s["rollout"]["step"] == "2/5"
        })
        .await;
    // The analysis step's run is in the tree with its measurements as a series and the
    // condition's threshold.
    let metric = &paused["rollout"]["analysisRuns"][0]["metrics"][0];
    assert_eq!(metric["name"], METRIC, "{paused}");
    assert_eq!(metric["phase"], "Successful", "{metric}");
    let points = metric["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "{metric}");
    assert!(
        points
            .iter()
            .all(|p| p["value"] == 0.97 && p["at"].is_i64()),
        "{metric}"
    );
    assert_eq!(
        metric["thresholds"],
        json!([{"kind": "success", "op": ">=", "value": 0.95, "condition": "result >= 0.95"}])
    );
    let tags: Vec<Value> = paused["rollout"]["replicaSets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["tags"].as_array().unwrap().clone())
        .collect();
    assert!(
        tags.contains(&json!("canary")) && tags.contains(&json!("stable")),
        "{tags:?}"
    );

    let (code, body) = post(
        &format!("{api}/rollouts/web/promote"),
        Some(token),
        json!({}),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (200, Some("rollout 'web' promoted"))
    );
    events
        .until("web paused at its second pause", |s| {
            s["rollout"]["status"] == "Paused" && s["rollout"]["step"] == "4/5"
        })
        .await;

    let (code, body) = post(&format!("{api}/rollouts/web/abort"), Some(token), json!({})).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (200, Some("rollout 'web' aborted"))
    );
    events
        .until("web Degraded", |s| s["rollout"]["status"] == "Degraded")
        .await;

    let (code, body) = post(
        &format!("{api}/rollouts/web/launch"),
        Some(token),
        json!({}),
    )
    .await;
    assert_eq!(code, 404);
    assert!(
        body["error"].as_str().unwrap().contains("unknown action"),
        "{body}"
    );
    let (code, body) = post(
        &format!("{api}/rollouts/nope/abort"),
        Some(token),
        json!({}),
    )
    .await;
    assert_eq!(code, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("\"nope\" not found"),
        "{body}"
    );
    let (code, _) = post(
        &format!("{api}/rollouts/web/abort"),
        Some("wrong"),
        json!({}),
    )
    .await;
    assert_eq!(code, 401);

    // A read-only dashboard shows the same and refuses every action.
    let read_only = dashboard(
        &world,
        Access {
            token: None,
            read_only: true,
        },
    )
    .await;
    let config: Value = reqwest::get(format!("{read_only}/api/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["readOnly"], true);
    let (code, body) = post(
        &format!("{read_only}/api/namespaces/{NS}/rollouts/web/retry"),
        None,
        json!({}),
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(body["error"], "the dashboard is read-only (--read-only)");
    assert_eq!(
        world.status("web").await["abort"],
        true,
        "nothing was retried"
    );
    world.stop().await;
}

/// Where the browser test's screenshots go (kept after the run, for the docs and for looking).
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_tree_live_and_its_buttons_promote_and_abort() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    let playwright = root.join("node_modules/playwright-core");
    if !Path::new(&chromium).exists() || !playwright.exists() {
        println!(
            "skipping the browser test: needs {chromium} (apt-get install chromium) and dashboard/node_modules (npm ci in dashboard/); scripts/test installs both"
        );
        return;
    }
    let world = World::start().await;
    healthy_rollout(&world, "web").await;
    let base = dashboard(&world, Access::default()).await;
    let shots = screenshot_dir();
    for stage in ["1-list", "2-paused", "3-promoted", "4-aborted"] {
        let _ = std::fs::remove_file(shots.join(format!("{stage}.png")));
    }
    let run = tokio::process::Command::new("node")
        .arg(root.join("test/browser.mjs"))
        .args([base.as_str(), NS, "web", "app=demo:yellow", METRIC])
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser script finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The page saw the step move from the first pause to the second.
    let steps: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(steps, json!({"first": "2/5", "second": "4/5"}));
    // What the page showed is what the API holds: the clicks reached the Rollout.
    let status = world.status("web").await;
    assert_eq!(status["abort"], true, "{}", support::describe(&status));
    assert_eq!(status["phase"], "Degraded");
    for stage in ["1-list", "2-paused", "3-promoted", "4-aborted"] {
        let png = std::fs::read(shots.join(format!("{stage}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{stage}.png"
        );
    }
    println!("screenshots: {}", shots.display());
    world.stop().await;
}

#[test]
fn the_committed_bundle_is_what_the_sources_build_to() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    let esbuild = root.join("node_modules/.bin/esbuild");
    if !esbuild.exists() {
        println!("skipping the bundle check: no dashboard/node_modules (npm ci in dashboard/)");
        return;
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-app.js");
    // The arguments of `npm run build` (dashboard/package.json), with another output file.
    let package: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("package.json")).unwrap()).unwrap();
    let build = package["scripts"]["build"].as_str().unwrap();
    let args: Vec<String> = build
        .split_whitespace()
        .skip(1)
        .map(|a| {
            if a.starts_with("--outfile=") {
                format!("--outfile={}", out.display())
            } else {
                a.to_string()
            }
        })
        .collect();
    let status = std::process::Command::new(&esbuild)
        .args(&args)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let fresh = std::fs::read_to_string(&out).unwrap();
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli/dashboard/assets/app.js"),
    )
    .unwrap();
    assert!(
        fresh == committed,
        "src/cli/dashboard/assets/app.js is stale: run `npm run build` in dashboard/"
    );
}
