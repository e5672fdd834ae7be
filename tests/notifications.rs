//! Notifications end to end: the controller on the sandbox sends what the notification
//! ConfigMap and a Rollout's subscriptions ask for to real receivers on 127.0.0.1 — an HTTP
//! receiver for webhook, Slack and Teams payloads (checked byte for byte) and an aiosmtpd SMTP
//! sink for e-mail.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use support::{
    Controller, NS, Sandbox, World, canary_rollout, controller_config, eventually, rollout,
    simulator_config,
};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: HeaderMap,
    body: String,
}

/// An HTTP receiver: records every request; answers Slack (`/slack/...`) with `{"ok":true}`,
/// Teams (`/teams/...`) with `1`, `/fail` with 500, never answers `/hang`, and 200 otherwise.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn to(&self, path: &str) -> Vec<Received> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

async fn handle(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, String) {
    let path = uri.path().to_string();
    receiver.requests.lock().unwrap().push(Received {
        method: method.to_string(),
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if path.starts_with("/slack/") {
        (axum::http::StatusCode::OK, r#"{"ok":true}"#.into())
    } else if path.starts_with("/teams/") {
        (axum::http::StatusCode::OK, "1".into())
    } else if path == "/fail" {
        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down".into())
    } else if path == "/hang" {
        std::future::pending().await
    } else {
        (axum::http::StatusCode::OK, String::new())
    }
}

/// A sandbox with the notification ConfigMap and Secret holding `data` and `secret`, and a
/// controller (reading them in [`NS`]) started after them, so its first list has them.
async fn world(data: BTreeMap<&str, String>, secret: BTreeMap<&str, &str>) -> World {
    let sandbox = Sandbox::start_with(simulator_config()).await;
    apply_config(&sandbox, data, secret).await;
    let controller = Controller::start(
        sandbox.client.clone(),
        davy::controller::ControllerConfig {
            notifications_namespace: Some(NS.to_string()),
            ..controller_config()
        },
    );
    World {
        sandbox,
        controller,
    }
}

async fn apply_config(
    sandbox: &Sandbox,
    data: BTreeMap<&str, String>,
    secret: BTreeMap<&str, &str>,
) {
    let config_maps: Api<ConfigMap> = sandbox.api();
    let body: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argo-rollouts-notification-configmap", "namespace": NS},
        "data": data,
    }))
    .unwrap();
    config_maps
        .patch(
            "argo-rollouts-notification-configmap",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = sandbox.api();
    let body: Secret = serde_json::from_value(json!({
        "metadata": {"name": "argo-rollouts-notification-secret", "namespace": NS},
        "stringData": secret,
    }))
    .unwrap();
    secrets
        .patch(
            "argo-rollouts-notification-secret",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
}

/// Creates a canary Rollout with `annotations`, waits until it is Healthy.
async fn healthy_rollout(world: &World, name: &str, steps: Value, annotations: Value) {
    let mut manifest = canary_rollout(name, 2, steps, "img:1");
    manifest["metadata"]["annotations"] = annotations;
    world.create(&rollout(manifest)).await;
    eventually("the first revision Healthy", || async {
        let status = world.status(name).await;
        (status["phase"] == "Healthy" && status["stableRS"].is_string())
            .then_some(())
            .ok_or_else(|| status.to_string())
    })
    .await;
}

/// Sets the image of `name` and waits until the new revision is stable and Healthy.
async fn update_to_completion(world: &World, name: &str, image: &str) {
    let before = world.status(name).await["stableRS"].clone();
    world.set_image(name, image).await;
    eventually("the update completed", || async {
        let status = world.status(name).await;
        let done = status["phase"] == "Healthy"
            && status["stableRS"] == status["currentPodHash"]
            && status["stableRS"] != before;
        done.then_some(()).ok_or_else(|| status.to_string())
    })
    .await;
}

async fn reasons(world: &World, name: &str, reason: &str) -> usize {
    world
        .events(name)
        .await
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .count()
}

async fn wait_for(receiver: &Receiver, path: &str, count: usize) -> Vec<Received> {
    eventually(&format!("{count} request(s) to {path}"), || async {
        let got = receiver.to(path);
        (got.len() >= count).then_some(got.clone()).ok_or_else(|| {
            format!(
                "{} so far: {:?}",
                got.len(),
                receiver.requests.lock().unwrap()
            )
        })
    })
    .await
}

/// The webhook configuration of the abort test: `tag` marks the update template's body, so a
/// test can tell which version of the ConfigMap rendered a message.
fn hook_config(url: &str, tag: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        (
            "service.webhook.hook",
            format!(
                "url: {url}/hooks\nheaders:\n- name: X-Token\n  value: $token\nbasicAuth:\n  username: davy\n  password: $password\n"
            ),
        ),
        ("trigger.on-rollout-aborted", "- send: [aborted]\n".to_string()),
        ("trigger.on-rollout-updated", "- send: [updated]\n".to_string()),
        (
            "template.aborted",
            "webhook:\n  hook:\n    method: POST\n    path: /aborted\n    body: '{\"rollout\":\"{{.rollout.metadata.name}}\",\"image\":\"{{(index .rollout.spec.template.spec.containers 0).image}}\"}'\n".to_string(),
        ),
        (
            "template.updated",
            format!("webhook:\n  hook:\n    method: PUT\n    path: /updated\n    body: '{{{{.rollout.metadata.name}}}} {{{{.rollout.metadata.generation}}}} {tag}'\n"),
        ),
    ])
}

const HOOK_SECRET: [(&str, &str); 2] = [("token", "t0ken"), ("password", "pa55")];

#[tokio::test]
async fn an_abort_sends_on_rollout_aborted_once_with_the_configured_request() {
    let (receiver, url) = Receiver::start().await;
    let world = world(hook_config(&url, "v1"), BTreeMap::from(HOOK_SECRET)).await;
    let name = "abort-me";
    healthy_rollout(
        &world,
        name,
        json!([{"setWeight": 50}, {"pause": {}}]),
        json!({
            "notifications.argoproj.io/subscribe.on-rollout-aborted.hook": "",
            "notifications.argoproj.io/subscribe.on-rollout-updated.hook": "",
        }),
    )
    .await;
    world.set_image(name, "img:2").await;
    let updated = eventually("the update to generation 2 notified", || async {
        receiver
            .to("/hooks/updated")
            .into_iter()
            .find(|r| r.body == "abort-me 2 v1")
            .ok_or_else(|| format!("{:?}", receiver.to("/hooks/updated")))
    })
    .await;
    assert_eq!(updated.method, "PUT");
    eventually("the pause at step 1", || async {
        let status = world.status(name).await;
        (status["pauseConditions"][0]["reason"] == "CanaryPauseStep")
            .then_some(())
            .ok_or_else(|| status.to_string())
    })
    .await;

    world.patch_status(name, json!({"abort": true})).await;
    let aborted = wait_for(&receiver, "/hooks/aborted", 1).await;
    let request = &aborted[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.body, r#"{"rollout":"abort-me","image":"img:2"}"#);
    assert_eq!(request.headers["x-token"], "t0ken");
    // base64("davy:pa55")
    assert_eq!(request.headers["authorization"], "Basic ZGF2eTpwYTU1");

    // A later update is notified after the abort: by then a repeated abort message would have
    // been sent too.
    world.set_image(name, "img:3").await;
    eventually("the update after the abort notified", || async {
        let bodies: Vec<String> = receiver
            .to("/hooks/updated")
            .into_iter()
            .map(|r| r.body)
            .collect();
        bodies
            .iter()
            .any(|b| b == "abort-me 3 v1")
            .then_some(())
            .ok_or_else(|| format!("{bodies:?}"))
    })
    .await;
    assert_eq!(reasons(&world, name, "RolloutAborted").await, 1);
    assert_eq!(
        receiver.to("/hooks/aborted").len(),
        1,
        "one message per event"
    );
    world.stop().await;
}

#[tokio::test]
async fn an_edited_configmap_applies_without_a_restart() {
    let (receiver, url) = Receiver::start().await;
    let world = world(hook_config(&url, "v1"), BTreeMap::from(HOOK_SECRET)).await;
    let name = "edited";
    healthy_rollout(
        &world,
        name,
        json!([{"setWeight": 50}]),
        json!({"notifications.argoproj.io/subscribe.on-rollout-updated.hook": ""}),
    )
    .await;
    apply_config(&world, hook_config(&url, "v2"), BTreeMap::from(HOOK_SECRET)).await;
    // Updates until one is rendered with the edited template (the edit reaches the controller
    // through its watch, at a moment the test cannot see).
    let mut image = 1;
    let mut polls = 0;
    eventually("a message from the edited template", || {
        polls += 1;
        let bump = polls % 20 == 1;
        if bump {
            image += 1;
        }
        let image = image;
        let receiver = receiver.clone();
        let world = &world;
        async move {
            let bodies: Vec<String> = receiver
                .to("/hooks/updated")
                .into_iter()
                .map(|r| r.body)
                .collect();
            if bodies.iter().any(|b| b.ends_with(" v2")) {
                return Ok(());
            }
            if bump {
                world.set_image(name, &format!("img:{image}")).await;
            }
            Err(format!("{bodies:?}"))
        }
    })
    .await;
    world.stop().await;
}

/// An aiosmtpd sink writing each message it accepts into a Maildir; killed on drop.
struct SmtpSink {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let python = if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_addr().port();
        let child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs python3-aiosmtpd)");
        eventually("the SMTP sink listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        SmtpSink { child, dir, port }
    }

    fn messages(&self) -> Vec<String> {
        let new: PathBuf = self.dir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn completion_sends_the_builtin_on_rollout_completed_to_slack_teams_and_email() {
    let (receiver, url) = Receiver::start().await;
    let smtp = SmtpSink::start().await;
    let world = world(
        BTreeMap::from([
            (
                "service.slack",
                format!("token: $slack-token\napiURL: {url}/slack/api/\n"),
            ),
            (
                "service.teams",
                format!("recipientUrls:\n  ops: {url}/teams/ops\n"),
            ),
            (
                "service.email",
                format!(
                    "host: 127.0.0.1\nport: {}\nfrom: davy@example.com\n",
                    smtp.port
                ),
            ),
        ]),
        BTreeMap::from([("slack-token", "xoxb-secret")]),
    )
    .await;
    let name = "complete-me";
    healthy_rollout(
        &world,
        name,
        json!([{"setWeight": 50}]),
        json!({
            "notifications.argoproj.io/subscribe.on-rollout-completed.slack": "deploys",
            "notifications.argoproj.io/subscribe.on-rollout-completed.teams": "ops",
            "notifications.argoproj.io/subscribe.on-rollout-completed.email": "team@example.com",
        }),
    )
    .await;
    update_to_completion(&world, name, "img:2").await;
    // The message for the update's completion (the first revision's may come too).
    let last = eventually("the Slack message for img:2", || async {
        let got = receiver.to("/slack/api/chat.postMessage");
        got.into_iter()
            .find(|r| r.body.contains("img:2"))
            .ok_or_else(|| format!("{:?}", receiver.to("/slack/api/chat.postMessage")))
    })
    .await;
    assert_eq!(last.method, "POST");
    assert_eq!(last.headers["authorization"], "Bearer xoxb-secret");
    assert_eq!(
        last.body,
        r##"{"channel":"deploys","text":"Rollout complete-me has been completed.","attachments":[{"title":"complete-me","color":"#18be52","fields":[{"title":"Strategy","value":"Canary","short":true},{"title":"app","value":"img:2","short":true}]}]}"##
    );
    let completed = 1;

    let teams = wait_for(&receiver, "/teams/ops", completed).await;
    assert_eq!(
        teams.last().unwrap().body,
        r#"{"@type":"MessageCard","context":"https://schema.org/extensions","title":"","summary":"","text":"Rollout complete-me has been completed."}"#
    );

    let mails = eventually("the e-mail", || async {
        let mails = smtp.messages();
        (mails.len() >= completed)
            .then_some(mails.clone())
            .ok_or_else(|| format!("{mails:?}"))
    })
    .await;
    let mail = &mails[0];
    assert!(
        mail.contains("Subject: Rollout complete-me has been completed."),
        "{mail}"
    );
    assert!(mail.contains("To: team@example.com"), "{mail}");
    assert!(mail.contains("From: davy@example.com"), "{mail}");

    // One message per RolloutCompleted event per subscription (the Events are created by
    // their own background sender, so the counts are compared once both have landed).
    eventually(
        "one message per RolloutCompleted event per subscription",
        || async {
            let events = reasons(&world, name, "RolloutCompleted").await;
            let counts = (
                receiver.to("/slack/api/chat.postMessage").len(),
                receiver.to("/teams/ops").len(),
                smtp.messages().len(),
            );
            (counts == (events, events, events))
                .then_some(())
                .ok_or_else(|| format!("events {events}, sent {counts:?}"))
        },
    )
    .await;
    world.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_hold_the_rollout_back() {
    let (receiver, url) = Receiver::start().await;
    let world = world(
        BTreeMap::from([
            ("service.webhook.stuck", format!("url: {url}/hang\n")),
            ("service.webhook.fine", format!("url: {url}/fine\n")),
        ]),
        BTreeMap::new(),
    )
    .await;
    let name = "not-held";
    healthy_rollout(
        &world,
        name,
        json!([{"setWeight": 50}, {"setWeight": 100}]),
        json!({
            "notifications.argoproj.io/subscribe.on-rollout-step-completed.stuck": "",
            "notifications.argoproj.io/subscribe.on-rollout-completed.fine": "",
        }),
    )
    .await;
    update_to_completion(&world, name, "img:2").await;
    // The stuck receiver holds its request open (each attempt is cut after 10 s and retried,
    // the message given up after 60 s with a NotificationFailed Event): a send on the
    // reconcile path would have kept the rollout from completing until then.
    wait_for(&receiver, "/hang", 1).await;
    wait_for(&receiver, "/fine", 1).await;
    let status = world.status(name).await;
    assert_eq!(status["phase"], "Healthy", "{status}");
    assert_eq!(
        reasons(&world, name, "NotificationFailed").await,
        0,
        "the stuck send has not even given up yet"
    );
    world.stop().await;
}

#[tokio::test]
async fn an_invalid_template_gives_an_error_event_and_the_other_subscriptions_still_send() {
    let (receiver, url) = Receiver::start().await;
    let world = world(
        BTreeMap::from([
            ("service.webhook", format!("url: {url}/hook\n")),
            (
                "trigger.on-rollout-updated",
                "- send: [broken, good]\n".to_string(),
            ),
            (
                "template.broken",
                "message: '{{ .rollout.metadata.name'\n".to_string(),
            ),
            (
                "template.good",
                "message: 'updated {{.rollout.metadata.name}}'\n".to_string(),
            ),
        ]),
        BTreeMap::new(),
    )
    .await;
    let name = "half-broken";
    healthy_rollout(
        &world,
        name,
        json!([{"setWeight": 50}]),
        json!({"notifications.argoproj.io/subscribe.on-rollout-updated.webhook": ""}),
    )
    .await;
    world.set_image(name, "img:2").await;
    let got = wait_for(&receiver, "/hook", 1).await;
    assert_eq!(got[0].body, "updated half-broken");
    assert_eq!(got[0].method, "GET");
    let event = eventually("the NotificationFailed event", || async {
        world
            .events(name)
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("NotificationFailed"))
            .ok_or_else(|| "none yet".to_string())
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let message = event.message.unwrap_or_default();
    assert!(
        message.starts_with("Notification for trigger on-rollout-updated to webhook failed: template broken: message: "),
        "{message}"
    );
    world.stop().await;
}

#[tokio::test]
async fn without_a_subscription_nothing_is_sent() {
    let (receiver, url) = Receiver::start().await;
    let world = world(
        BTreeMap::from([("service.webhook", format!("url: {url}/hook\n"))]),
        BTreeMap::new(),
    )
    .await;
    // Two Rollouts, one subscribed: only its events are sent.
    healthy_rollout(&world, "quiet", json!([{"setWeight": 50}]), json!({})).await;
    healthy_rollout(
        &world,
        "loud",
        json!([{"setWeight": 50}]),
        json!({"notifications.argoproj.io/subscribe.on-rollout-updated.webhook": ""}),
    )
    .await;
    world.set_image("quiet", "img:2").await;
    world.set_image("loud", "img:2").await;
    let got = wait_for(&receiver, "/hook", 1).await;
    assert_eq!(got[0].body, "Rollout loud has been updated.");
    assert!(receiver.to("/hook").iter().all(|r| r.body.contains("loud")));
    world.stop().await;
}
