//! The notification sender: Events recorded on Rollouts fire triggers (`RolloutAborted` →
//! `on-rollout-aborted`); the subscribed destinations get the trigger's templates, rendered
//! and sent by a background task fed by a bounded queue, so a slow or dead receiver never holds
//! a reconcile back. The configuration (ConfigMap and Secret in the controller namespace) is
//! watched, so edits apply without a restart. The decisions are `crate::notify`'s.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Event as KubeEvent, ObjectReference, Secret};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::api::consts::label;
use crate::api::{AnalysisRun, Rollout};
use crate::notify::payload::{Accept, Delivery, EmailDelivery, HttpDelivery};
use crate::notify::{self, Destination, NotificationConfig};
use crate::rollout::EventType;

use super::cache::Cache;
use super::events;
use super::executor::event_body;
use super::metrics::Metrics;

/// Events waiting for the sender before new ones are dropped.
pub const QUEUE: usize = 1_000;
/// Sends in flight at once.
pub const SENDERS: usize = 8;
/// How long one attempt (an HTTP request, an SMTP session) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one message may take, retries included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// The reason of the Warning Event that reports a notification that could not be sent.
/// Events with this reason fire no trigger (no notification about a notification).
pub const FAILED_REASON: &str = "NotificationFailed";
/// Sent messages remembered for deduplication.
const REMEMBERED: usize = 10_000;

/// An Event on a Rollout, with the Rollout as it was when the Event was recorded.
struct Job {
    event: String,
    reason: String,
    type_: String,
    rollout: Arc<Rollout>,
}

/// The notification configuration as last read, and whether it has been read at all.
#[derive(Default)]
struct Watched {
    config_map: Option<ConfigMap>,
    secret: Option<Secret>,
}

/// Where Event recorders hand Events to the notification sender.
pub struct Notifier {
    queue: mpsc::Sender<Job>,
    rollouts: Store<Rollout>,
    config: Arc<RwLock<Arc<NotificationConfig>>>,
    dropped: AtomicU64,
}

impl Notifier {
    /// Hands `event` to the sender if it is on a Rollout that someone subscribed to; never
    /// waits (a full queue drops it, counted and logged).
    pub fn offer(&self, event: &KubeEvent) {
        let involved = &event.involved_object;
        let reason = event.reason.as_deref().unwrap_or_default();
        if involved.kind.as_deref() != Some("Rollout")
            || reason.is_empty()
            || reason == FAILED_REASON
        {
            return;
        }
        let (Some(namespace), Some(name)) =
            (involved.namespace.as_deref(), involved.name.as_deref())
        else {
            return;
        };
        let Some(rollout) = self.rollouts.get(&ObjectRef::new(name).within(namespace)) else {
            return;
        };
        let config = self.current();
        let labels = rollout.labels();
        let annotations = rollout.annotations();
        // The common case, nobody subscribed, costs a map lookup and no queue slot.
        let trigger = notify::trigger_for_reason(reason);
        if config
            .destinations(labels, annotations)
            .get(&trigger)
            .is_none_or(Vec::is_empty)
        {
            return;
        }
        let job = Job {
            event: event.metadata.name.clone().unwrap_or_default(),
            reason: reason.to_string(),
            type_: event.type_.clone().unwrap_or_default(),
            rollout,
        };
        if self.queue.try_send(job).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped % 100 == 1 {
                tracing::warn!(dropped, "notification queue full; notifications dropped");
            }
        }
    }

    /// Notifications dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<NotificationConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Starts watching the configuration in `namespace` and the sender; both run in `tasks`.
pub fn start(
    client: Client,
    namespace: String,
    rollouts: Store<Rollout>,
    analysis_runs: Arc<Cache<AnalysisRun>>,
    metrics: Arc<Metrics>,
    tasks: &mut JoinSet<()>,
) -> Arc<Notifier> {
    let (queue, jobs) = mpsc::channel(QUEUE);
    let config = Arc::new(RwLock::new(Arc::new(NotificationConfig::builtin())));
    let (ready_tx, ready) = watch::channel(false);
    tasks.spawn(watch_config(
        client.clone(),
        namespace,
        config.clone(),
        ready_tx,
    ));
    let notifier = Arc::new(Notifier {
        queue,
        rollouts,
        config: config.clone(),
        dropped: AtomicU64::new(0),
    });
    let sender = Sender {
        client,
        http: http_client(),
        config,
        analysis_runs,
        metrics,
        seen: Mutex::new(notify::dedupe::Seen::new(REMEMBERED)),
        permits: Semaphore::new(SENDERS),
    };
    tasks.spawn(run_sender(Arc::new(sender), jobs, ready));
    notifier
}

/// An HTTP client for the services: bounded per attempt, no proxy surprises beyond the usual
/// environment variables.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// Keeps `config` up to date with the ConfigMap and Secret; `ready` turns true once both
/// were listed.
async fn watch_config(
    client: Client,
    namespace: String,
    config: Arc<RwLock<Arc<NotificationConfig>>>,
    ready: watch::Sender<bool>,
) {
    let watched = Arc::new(Mutex::new(Watched::default()));
    let listed = Arc::new(AtomicU64::new(0));
    let update = {
        let watched = watched.clone();
        let config = config.clone();
        move || {
            let watched = watched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let parsed = parse(watched.config_map.as_ref(), watched.secret.as_ref());
            for error in &parsed.errors {
                tracing::warn!(%error, "notification configuration key ignored");
            }
            *config
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(parsed);
        }
    };
    let config_maps = watch_one::<ConfigMap>(
        Api::namespaced(client.clone(), &namespace),
        notify::CONFIG_MAP,
        {
            let watched = watched.clone();
            move |object| {
                watched
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .config_map = object
            }
        },
        update.clone(),
        listed.clone(),
        ready.clone(),
    );
    let secrets = watch_one::<Secret>(
        Api::namespaced(client, &namespace),
        notify::SECRET,
        move |object| {
            watched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .secret = object
        },
        update,
        listed,
        ready,
    );
    futures::join!(config_maps, secrets);
}

/// The configuration the ConfigMap and Secret give (the built-ins alone without them).
pub fn parse(config_map: Option<&ConfigMap>, secret: Option<&Secret>) -> NotificationConfig {
    let data = config_map.and_then(|c| c.data.clone()).unwrap_or_default();
    let mut values: BTreeMap<String, Vec<u8>> = secret
        .and_then(|s| s.data.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    if let Some(strings) = secret.and_then(|s| s.string_data.clone()) {
        values.extend(strings.into_iter().map(|(k, v)| (k, v.into_bytes())));
    }
    NotificationConfig::parse(&data, &values)
}

/// Watches the object `name` of `api`, handing each version (or `None` once gone) to `set`
/// and then calling `changed`; counts itself in `listed` after its first list, and sets
/// `ready` when both watches have listed.
async fn watch_one<K>(
    api: Api<K>,
    name: &str,
    set: impl Fn(Option<K>),
    changed: impl Fn(),
    listed: Arc<AtomicU64>,
    ready: watch::Sender<bool>,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
    let mut seen_in_list = false;
    let mut first_list = true;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(object)) => {
                set(Some(object));
                changed();
            }
            Ok(watcher::Event::Delete(_)) => {
                set(None);
                changed();
            }
            Ok(watcher::Event::Init) => seen_in_list = false,
            Ok(watcher::Event::InitApply(object)) => {
                seen_in_list = true;
                set(Some(object));
            }
            Ok(watcher::Event::InitDone) => {
                if !seen_in_list {
                    set(None);
                }
                changed();
                if first_list {
                    first_list = false;
                    if listed.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                        let _ = ready.send(true);
                    }
                }
            }
            Err(error) => tracing::debug!(%error, name, "notification configuration watch"),
        }
    }
}

/// What the sender task shares with each send.
struct Sender {
    client: Client,
    http: reqwest::Client,
    config: Arc<RwLock<Arc<NotificationConfig>>>,
    analysis_runs: Arc<Cache<AnalysisRun>>,
    metrics: Arc<Metrics>,
    seen: Mutex<notify::dedupe::Seen>,
    permits: Semaphore,
}

/// Takes jobs off the queue until every [`Notifier`] is gone; each message is sent in its
/// own task, [`SENDERS`] at a time.
async fn run_sender(
    sender: Arc<Sender>,
    mut jobs: mpsc::Receiver<Job>,
    mut ready: watch::Receiver<bool>,
) {
    // Events recorded before the configuration was listed wait for it (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r)).await;
    let mut sends = JoinSet::new();
    while let Some(job) = jobs.recv().await {
        for message in sender.messages(&job) {
            let sender = sender.clone();
            sends.spawn(async move { sender.deliver(message).await });
        }
        // Reap finished sends so the set does not grow.
        while sends.try_join_next().is_some() {}
    }
    while sends.join_next().await.is_some() {}
}

/// One message for one destination.
struct Message {
    job_rollout: Arc<Rollout>,
    reason: String,
    type_: String,
    trigger: String,
    destination: Destination,
    outcome: Result<Delivery, String>,
}

impl Sender {
    fn config(&self) -> Arc<NotificationConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The messages `job` gives: for each subscribed destination and each template of each
    /// condition that holds, the delivery or why there is none. Each (event, trigger,
    /// template, destination) gives one message at most.
    fn messages(&self, job: &Job) -> Vec<Message> {
        let config = self.config();
        let rollout = &job.rollout;
        let trigger = notify::trigger_for_reason(&job.reason);
        let destinations = config
            .destinations(rollout.labels(), rollout.annotations())
            .remove(&trigger)
            .unwrap_or_default();
        let Some(conditions) = config.triggers.get(&trigger) else {
            tracing::debug!(trigger, "no trigger configured");
            return Vec::new();
        };
        let vars = template_vars(rollout, &self.analysis_runs, &config);
        let now = Utc::now();
        let mut messages = Vec::new();
        let message = |destination: &Destination, outcome| Message {
            job_rollout: rollout.clone(),
            reason: job.reason.clone(),
            type_: job.type_.clone(),
            trigger: trigger.clone(),
            destination: destination.clone(),
            outcome,
        };
        for result in notify::triggers::run(conditions, &vars) {
            let result = match result {
                Ok(result) => result,
                Err(error) => {
                    for destination in &destinations {
                        messages.push(message(destination, Err(error.clone())));
                    }
                    continue;
                }
            };
            if !result.triggered {
                continue;
            }
            for template in &result.templates {
                let rendered = render(&config, template, &vars, now);
                for destination in &destinations {
                    let key = notify::dedupe::key(&job.event, &trigger, template, destination);
                    if !self
                        .seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(key)
                    {
                        continue;
                    }
                    let outcome = rendered.clone().and_then(|notification| {
                        let service =
                            config.services.get(&destination.service).ok_or_else(|| {
                                format!(
                                    "notification service '{}' is not configured",
                                    destination.service
                                )
                            })?;
                        notify::payload::build(service, &notification, destination)
                    });
                    messages.push(message(destination, outcome));
                }
            }
        }
        messages
    }

    async fn deliver(&self, message: Message) {
        let _permit = self.permits.acquire().await;
        let rollout = &message.job_rollout;
        let namespace = rollout.namespace().unwrap_or_default();
        let name = rollout.name_any();
        let outcome = match message.outcome {
            Ok(delivery) => tokio::time::timeout(SEND_TIMEOUT, send(&self.http, &delivery))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {}s", SEND_TIMEOUT.as_secs()))),
            Err(error) => Err(error),
        };
        let Destination { service, recipient } = &message.destination;
        match outcome {
            Ok(()) => {
                tracing::info!(%namespace, rollout = %name, trigger = %message.trigger, %service, "notification sent");
                self.metrics.count_notification(
                    &namespace,
                    &name,
                    &message.type_,
                    &message.reason,
                    true,
                );
            }
            Err(error) => {
                tracing::warn!(%namespace, rollout = %name, trigger = %message.trigger, %service, %error, "notification failed");
                self.metrics.count_notification(
                    &namespace,
                    &name,
                    &message.type_,
                    &message.reason,
                    false,
                );
                let text = format!(
                    "Notification for trigger {} to {service}{}{recipient} failed: {error}",
                    message.trigger,
                    if recipient.is_empty() { "" } else { ":" },
                );
                let event = event_body(
                    reference(rollout),
                    EventType::Warning,
                    FAILED_REASON,
                    &text,
                    Utc::now(),
                );
                if let Err(error) = events::create(&self.client, &event).await {
                    tracing::debug!(%error, "notification failure event not recorded");
                }
            }
        }
    }
}

fn reference(rollout: &Rollout) -> ObjectReference {
    ObjectReference {
        api_version: Some(crate::api::consts::API_VERSION.to_string()),
        kind: Some("Rollout".to_string()),
        name: rollout.metadata.name.clone(),
        namespace: rollout.metadata.namespace.clone(),
        uid: rollout.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// Renders template `name`, or says it is missing or broken.
pub fn render(
    config: &NotificationConfig,
    name: &str,
    vars: &serde_json::Value,
    now: chrono::DateTime<Utc>,
) -> Result<notify::Notification, String> {
    let template = config
        .templates
        .get(name)
        .ok_or_else(|| format!("template '{name}' is not configured"))?;
    notify::template::render(name, template, vars, now).map_err(|e| e.to_string())
}

/// The template variables for `rollout`: the object, its AnalysisRuns of the current
/// revision newest first (from `runs`), and the Secret's values.
pub fn template_vars(
    rollout: &Rollout,
    runs: &Cache<AnalysisRun>,
    config: &NotificationConfig,
) -> serde_json::Value {
    let uid = rollout.metadata.uid.as_deref().unwrap_or_default();
    let hash = rollout
        .status
        .as_ref()
        .map(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    let owned: Vec<Arc<AnalysisRun>> = runs.owned_by(uid);
    analysis_vars(rollout, owned.iter().map(Arc::as_ref), &hash, config)
}

/// [`template_vars`] from a list of runs (the CLI reads them from the cluster).
pub fn analysis_vars<'a>(
    rollout: &Rollout,
    runs: impl Iterator<Item = &'a AnalysisRun>,
    hash: &str,
    config: &NotificationConfig,
) -> serde_json::Value {
    let mut current: Vec<&AnalysisRun> = runs
        .filter(|run| {
            run.labels()
                .get(label::POD_TEMPLATE_HASH)
                .map(String::as_str)
                == Some(hash)
        })
        .collect();
    current.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
    });
    let runs: Vec<serde_json::Value> = current
        .iter()
        .filter_map(|run| serde_json::to_value(run).ok())
        .collect();
    let object = serde_json::to_value(rollout).unwrap_or_default();
    notify::template::vars(&object, &runs, config.secrets())
}

/// Sends one delivery: HTTP with retries (connection errors, 429 and 5xx, with doubling
/// delays), or e-mail over SMTP (STARTTLS when the server offers it). The error never
/// carries a header, a token or a password.
pub async fn send(http: &reqwest::Client, delivery: &Delivery) -> Result<(), String> {
    match delivery {
        Delivery::Http(request) => send_http(http, request).await,
        Delivery::Email(email) => send_email(email).await,
    }
}

async fn send_http(http: &reqwest::Client, request: &HttpDelivery) -> Result<(), String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("invalid method {:?}", request.method))?;
    let mut wait = request.retry_wait_min;
    let mut attempt = 0;
    loop {
        let mut builder = http
            .request(method.clone(), &request.url)
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some((user, password)) = &request.basic_auth {
            builder = builder.basic_auth(user, Some(password));
        }
        let (retry, error) = match builder.send().await {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status.is_success() {
                    match accepted(request.accept, &body) {
                        Ok(()) => return Ok(()),
                        Err(error) => (false, error),
                    }
                } else {
                    let retry = status.as_u16() == 429
                        || (status.is_server_error() && status.as_u16() != 501);
                    (
                        retry,
                        format!(
                            "request failed with status {} : {}",
                            status.as_u16(),
                            clip(&body)
                        ),
                    )
                }
            }
            // reqwest's errors name the URL, which can hold a key (Teams, Slack webhooks).
            Err(error) => (true, describe(&error.without_url())),
        };
        if !retry || attempt >= request.retries {
            return Err(if attempt > 0 {
                format!("{error} (after {} attempts)", attempt + 1)
            } else {
                error
            });
        }
        attempt += 1;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(request.retry_wait_max);
    }
}

fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn clip(body: &str) -> String {
    body.chars().take(200).collect()
}

fn accepted(accept: Accept, body: &str) -> Result<(), String> {
    match accept {
        Accept::Status2xx => Ok(()),
        Accept::SlackOk => {
            let answer: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            if answer.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
                Ok(())
            } else {
                Err(format!(
                    "slack: {}",
                    answer
                        .get("error")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("not ok")
                ))
            }
        }
        Accept::TeamsOne => {
            if body == "1" {
                Ok(())
            } else {
                Err(format!("teams webhook post error: {}", clip(body)))
            }
        }
    }
}

async fn send_email(email: &EmailDelivery) -> Result<(), String> {
    use lettre::message::{Mailbox, header::ContentType};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let mailbox = |address: &str| -> Result<Mailbox, String> {
        address
            .parse()
            .map_err(|e| format!("email address {address:?}: {e}"))
    };
    let mut builder = Message::builder()
        .from(mailbox(&email.from)?)
        .subject(email.subject.clone())
        .header(if email.html {
            ContentType::TEXT_HTML
        } else {
            ContentType::TEXT_PLAIN
        });
    for to in &email.to {
        builder = builder.to(mailbox(to)?);
    }
    let message = builder
        .body(email.body.clone())
        .map_err(|e| format!("email: {e}"))?;
    let tls = TlsParameters::builder(email.host.clone())
        .dangerous_accept_invalid_certs(email.insecure_skip_verify)
        .build()
        .map_err(|e| format!("email TLS: {e}"))?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host)
        .port(email.port)
        .tls(Tls::Opportunistic(tls))
        .timeout(Some(ATTEMPT_TIMEOUT));
    if !email.username.is_empty() {
        transport = transport.credentials(Credentials::new(
            email.username.clone(),
            email.password.clone(),
        ));
    }
    let transport = transport.build();
    let mut wait = Duration::from_secs(1);
    let mut attempt = 0;
    loop {
        match transport.send(message.clone()).await {
            Ok(_) => return Ok(()),
            // A permanent refusal (5xx) is not retried.
            Err(error) if error.is_permanent() || attempt >= 3 => {
                return Err(format!("email: {error}"));
            }
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
