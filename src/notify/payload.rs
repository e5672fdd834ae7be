//! What each service sends for a rendered notification and a destination: an HTTP request
//! (`webhook`, `slack`, `teams`, `opsgenie`, `pagerdutyv2`) or an e-mail, built here and
//! executed by the controller's sender. The shapes follow notifications-engine's services.

use std::time::Duration;

use serde_json::{Value, json};

use super::config::ServiceConfig;
use super::subscriptions::Destination;
use super::template::Notification;

/// Slack's Web API when `apiURL` is not set.
pub const SLACK_API: &str = "https://slack.com/api/";
/// Opsgenie's API when `apiUrl` is not set.
pub const OPSGENIE_API: &str = "https://api.opsgenie.com";
/// PagerDuty's Events API v2 when `apiURL` (a Davy addition) is not set.
pub const PAGERDUTY_EVENTS: &str = "https://events.pagerduty.com/v2/enqueue";

/// One message to send.
#[derive(Clone, PartialEq)]
pub enum Delivery {
    /// An HTTP request.
    Http(HttpDelivery),
    /// An e-mail over SMTP.
    Email(EmailDelivery),
}

/// How a response says the message was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Any 2xx status.
    Status2xx,
    /// 2xx and a JSON body with `"ok": true` (Slack).
    SlackOk,
    /// 2xx and the body `1` (Teams' connector webhooks).
    TeamsOne,
}

/// An HTTP request, with its retry policy.
#[derive(Clone, PartialEq)]
pub struct HttpDelivery {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Where to.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Basic authentication (user, password).
    pub basic_auth: Option<(String, String)>,
    /// The body.
    pub body: String,
    /// How success is recognised.
    pub accept: Accept,
    /// Attempts after the first.
    pub retries: u32,
    /// First retry delay (doubling, capped at [`HttpDelivery::retry_wait_max`]).
    pub retry_wait_min: Duration,
    /// Longest retry delay.
    pub retry_wait_max: Duration,
}

/// An e-mail and the SMTP server to hand it to.
#[derive(Clone, PartialEq)]
pub struct EmailDelivery {
    /// SMTP host.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Login, if the server wants one.
    pub username: String,
    /// Password (Secret).
    pub password: String,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
    /// From address.
    pub from: String,
    /// To addresses.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Send as `text/html`.
    pub html: bool,
}

// Deliveries carry tokens, passwords and webhook URLs with keys in them: their Debug output
// says only where they go by kind, so no log line can leak a Secret value.
impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delivery::Http(http) => write!(f, "Http({} ...)", http.method),
            Delivery::Email(email) => write!(f, "Email(to {} recipients)", email.to.len()),
        }
    }
}

impl std::fmt::Debug for HttpDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpDelivery({} ...)", self.method)
    }
}

impl std::fmt::Debug for EmailDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmailDelivery(to {} recipients)", self.to.len())
    }
}

fn text<'a>(options: &'a Value, key: &str) -> &'a str {
    options.get(key).and_then(Value::as_str).unwrap_or("")
}

fn or<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.is_empty() { fallback } else { value }
}

/// A Go duration (`"1s"`, `"500ms"`) or a number of nanoseconds, as upstream's options take.
fn duration(options: &Value, key: &str, default: Duration) -> Duration {
    match options.get(key) {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n > 0)
            .map_or(default, Duration::from_nanos),
        Some(Value::String(s)) => crate::api::duration::parse_go_duration(s).unwrap_or(default),
        _ => default,
    }
}

fn http(method: &str, url: String, body: String, accept: Accept) -> HttpDelivery {
    HttpDelivery {
        method: method.to_string(),
        url,
        headers: vec![("Content-Type".to_string(), "application/json".to_string())],
        basic_auth: None,
        body,
        accept,
        retries: 3,
        retry_wait_min: Duration::from_secs(1),
        retry_wait_max: Duration::from_secs(5),
    }
}

/// The delivery of `notification` to `destination` through `service`.
pub fn build(
    service: &ServiceConfig,
    notification: &Notification,
    destination: &Destination,
) -> Result<Delivery, String> {
    let options = &service.options;
    match service.kind.as_str() {
        "webhook" => Ok(Delivery::Http(webhook(service, notification))),
        "slack" => slack(options, notification, destination).map(Delivery::Http),
        "teams" => teams(options, notification, destination).map(Delivery::Http),
        "email" => email(options, notification, destination).map(Delivery::Email),
        "opsgenie" => opsgenie(options, notification, destination).map(Delivery::Http),
        "pagerdutyv2" => pagerduty(options, notification, destination).map(Delivery::Http),
        other => Err(format!("service type {other:?} is not supported by Davy")),
    }
}

/// `webhook`: the message (or the template's `webhook.<service>` body) to `url` (plus the
/// template's `path`), method GET unless the template says otherwise.
fn webhook(service: &ServiceConfig, notification: &Notification) -> HttpDelivery {
    let options = &service.options;
    let mut method = "GET".to_string();
    let mut url = text(options, "url").to_string();
    let mut body = notification.message().to_string();
    if let Some(own) = notification
        .section("webhook")
        .and_then(|w| w.get(&service.name))
    {
        body = text(own, "body").to_string();
        method = or(text(own, "method"), &method).to_string();
        let path = text(own, "path");
        if !path.is_empty() {
            url = format!(
                "{}/{}",
                url.trim_end_matches('/'),
                path.trim_start_matches('/')
            );
        }
    }
    let headers = options
        .get("headers")
        .and_then(Value::as_array)
        .map(|headers| {
            headers
                .iter()
                .map(|h| (text(h, "name").to_string(), text(h, "value").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let basic_auth = options.get("basicAuth").filter(|b| b.is_object()).map(|b| {
        (
            text(b, "username").to_string(),
            text(b, "password").to_string(),
        )
    });
    HttpDelivery {
        method,
        url,
        headers,
        basic_auth,
        body,
        accept: Accept::Status2xx,
        retries: options
            .get("retryMax")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .map_or(3, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        retry_wait_min: duration(options, "retryWaitMin", Duration::from_secs(1)),
        retry_wait_max: duration(options, "retryWaitMax", Duration::from_secs(5)),
    }
}

/// Parses a template field holding JSON (`slack.attachments`, `teams.sections`, ...).
fn json_field(
    notification: &Notification,
    service: &str,
    field: &str,
) -> Result<Option<Value>, String> {
    notification
        .field(service, field)
        .map(|raw| {
            serde_json::from_str(raw)
                .map_err(|e| format!("failed to unmarshal {service}.{field} '{raw}' : {e}"))
        })
        .transpose()
}

/// `slack`: `chat.postMessage` to the recipient channel, with the bot token.
fn slack(
    options: &Value,
    notification: &Notification,
    destination: &Destination,
) -> Result<HttpDelivery, String> {
    let api = or(text(options, "apiURL"), SLACK_API);
    let url = format!("{}/chat.postMessage", api.trim_end_matches('/'));
    let mut message = serde_json::Map::new();
    message.insert("channel".into(), json!(destination.recipient));
    message.insert("text".into(), json!(notification.message()));
    let username = notification
        .field("slack", "username")
        .unwrap_or(text(options, "username"));
    if !username.is_empty() {
        message.insert("username".into(), json!(username));
    }
    let icon = notification
        .field("slack", "icon")
        .unwrap_or(text(options, "icon"));
    if icon.len() > 2 && icon.starts_with(':') && icon.ends_with(':') {
        message.insert("icon_emoji".into(), json!(icon));
    } else if icon.starts_with("http://") || icon.starts_with("https://") {
        message.insert("icon_url".into(), json!(icon));
    }
    if let Some(attachments) = json_field(notification, "slack", "attachments")? {
        message.insert("attachments".into(), attachments);
    }
    if let Some(blocks) = json_field(notification, "slack", "blocks")? {
        message.insert("blocks".into(), blocks);
    }
    if options.get("disableUnfurl").and_then(Value::as_bool) == Some(true) {
        message.insert("unfurl_links".into(), json!(false));
        message.insert("unfurl_media".into(), json!(false));
    }
    let mut delivery = http(
        "POST",
        url,
        Value::Object(message).to_string(),
        Accept::SlackOk,
    );
    delivery.headers[0].1 = "application/json; charset=utf-8".to_string();
    delivery.headers.push((
        "Authorization".to_string(),
        format!("Bearer {}", text(options, "token")),
    ));
    Ok(delivery)
}

/// `teams`: a MessageCard (or the template's raw `teams.template`) to the recipient's URL.
fn teams(
    options: &Value,
    notification: &Notification,
    destination: &Destination,
) -> Result<HttpDelivery, String> {
    let url = options
        .get("recipientUrls")
        .and_then(|urls| urls.get(&destination.recipient))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            format!(
                "no teams webhook configured for recipient {}",
                destination.recipient
            )
        })?;
    let body = match notification.field("teams", "template") {
        Some(raw) => raw.to_string(),
        None => {
            let field = |name: &str| notification.field("teams", name).unwrap_or("");
            let mut card = serde_json::Map::new();
            card.insert("@type".into(), json!("MessageCard"));
            card.insert("context".into(), json!("https://schema.org/extensions"));
            card.insert("title".into(), json!(field("title")));
            card.insert("summary".into(), json!(field("summary")));
            card.insert(
                "text".into(),
                json!(or(field("text"), notification.message())),
            );
            if !field("themeColor").is_empty() {
                card.insert("themeColor".into(), json!(field("themeColor")));
            }
            if let Some(actions) = json_field(notification, "teams", "potentialAction")? {
                card.insert("potentialAction".into(), actions);
            }
            let mut sections = match json_field(notification, "teams", "sections")? {
                Some(Value::Array(sections)) => sections,
                Some(_) => return Err("teams.sections is not a list".into()),
                None => Vec::new(),
            };
            if let Some(facts) = json_field(notification, "teams", "facts")? {
                sections.push(json!({"facts": facts}));
            }
            if !sections.is_empty() {
                card.insert("sections".into(), Value::Array(sections));
            }
            Value::Object(card).to_string()
        }
    };
    Ok(http("POST", url.to_string(), body, Accept::TeamsOne))
}

/// `email`: subject and body (default the message) to the comma-separated recipient addresses.
fn email(
    options: &Value,
    notification: &Notification,
    destination: &Destination,
) -> Result<EmailDelivery, String> {
    let to: Vec<String> = destination
        .recipient
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if to.is_empty() {
        return Err("email: no recipient address".into());
    }
    let port = options.get("port").and_then(Value::as_u64).unwrap_or(25);
    Ok(EmailDelivery {
        host: text(options, "host").to_string(),
        port: u16::try_from(port).map_err(|_| format!("email: port {port} out of range"))?,
        username: text(options, "username").to_string(),
        password: text(options, "password").to_string(),
        insecure_skip_verify: options
            .get("insecure_skip_verify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        from: text(options, "from").to_string(),
        to,
        subject: notification
            .field("email", "subject")
            .unwrap_or("")
            .to_string(),
        body: notification
            .field("email", "body")
            .unwrap_or(notification.message())
            .to_string(),
        html: options
            .get("html")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The key `options.<field>` holds for the destination's recipient (Opsgenie's team API
/// keys, PagerDuty's service routing keys).
fn recipient_key<'a>(
    options: &'a Value,
    field: &str,
    destination: &Destination,
) -> Result<&'a str, String> {
    options
        .get(field)
        .and_then(|keys| keys.get(&destination.recipient))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            format!(
                "no API key configured for recipient {}",
                destination.recipient
            )
        })
}

/// `opsgenie`: an alert for the recipient team, with that team's API key.
fn opsgenie(
    options: &Value,
    notification: &Notification,
    destination: &Destination,
) -> Result<HttpDelivery, String> {
    let key = recipient_key(options, "apiKeys", destination)?;
    let api = or(text(options, "apiUrl"), OPSGENIE_API);
    let mut alert = serde_json::Map::new();
    alert.insert("message".into(), json!(notification.message()));
    if let Some(section) = notification.section("opsgenie") {
        let description = text(section, "description");
        if description.is_empty() {
            return Err("opsgenie notification description is missing".into());
        }
        alert.insert("description".into(), json!(description));
        for key in ["priority", "alias", "note", "entity", "user"] {
            if !text(section, key).is_empty() {
                alert.insert(key.into(), json!(text(section, key)));
            }
        }
        for key in ["actions", "tags", "details", "visibleTo"] {
            if let Some(value) = section.get(key).filter(|v| !v.is_null()) {
                alert.insert(key.into(), value.clone());
            }
        }
    }
    alert.insert(
        "responders".into(),
        json!([{"type": "team", "id": destination.recipient}]),
    );
    // The source upstream's engine sets on every alert.
    alert.insert("source".into(), json!("Argo CD"));
    let mut delivery = http(
        "POST",
        format!("{}/v2/alerts", api.trim_end_matches('/')),
        Value::Object(alert).to_string(),
        Accept::Status2xx,
    );
    delivery
        .headers
        .push(("Authorization".to_string(), format!("GenieKey {key}")));
    Ok(delivery)
}

/// `pagerdutyv2`: a `trigger` event with the recipient service's routing key.
fn pagerduty(
    options: &Value,
    notification: &Notification,
    destination: &Destination,
) -> Result<HttpDelivery, String> {
    let key = recipient_key(options, "serviceKeys", destination)?;
    let section = notification
        .section("pagerdutyv2")
        .ok_or("no config found for pagerdutyv2")?;
    let mut payload = serde_json::Map::new();
    payload.insert("summary".into(), json!(text(section, "summary")));
    payload.insert("source".into(), json!(text(section, "source")));
    payload.insert("severity".into(), json!(text(section, "severity")));
    for key in ["component", "group", "class"] {
        if !text(section, key).is_empty() {
            payload.insert(key.into(), json!(text(section, key)));
        }
    }
    let mut event = serde_json::Map::new();
    event.insert("routing_key".into(), json!(key));
    event.insert("event_action".into(), json!("trigger"));
    if !text(section, "dedupKey").is_empty() {
        event.insert("dedup_key".into(), json!(text(section, "dedupKey")));
    }
    event.insert("payload".into(), Value::Object(payload));
    // The client name upstream's engine sends.
    event.insert("client".into(), json!("ArgoCD"));
    if !text(section, "url").is_empty() {
        event.insert("client_url".into(), json!(text(section, "url")));
    }
    Ok(http(
        "POST",
        or(text(options, "apiURL"), PAGERDUTY_EVENTS).to_string(),
        Value::Object(event).to_string(),
        Accept::Status2xx,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(kind: &str, name: &str, options: Value) -> ServiceConfig {
        ServiceConfig {
            kind: kind.into(),
            name: name.into(),
            options,
        }
    }

    fn dest(service: &str, recipient: &str) -> Destination {
        Destination {
            service: service.into(),
            recipient: recipient.into(),
        }
    }

    fn http_of(delivery: Delivery) -> HttpDelivery {
        match delivery {
            Delivery::Http(http) => http,
            Delivery::Email(_) => panic!("not http"),
        }
    }

    #[test]
    fn webhook_defaults_and_template_overrides() {
        let hook = service(
            "webhook",
            "hook",
            json!({"url": "http://h/base/", "headers": [{"name": "X-Token", "value": "s3cret"}],
                   "basicAuth": {"username": "u", "password": "p"}, "retryMax": 5, "retryWaitMin": "200ms"}),
        );
        let plain = Notification(json!({"message": "hello"}));
        let request = http_of(build(&hook, &plain, &dest("hook", "")).unwrap());
        assert_eq!(
            (
                request.method.as_str(),
                request.url.as_str(),
                request.body.as_str()
            ),
            ("GET", "http://h/base/", "hello")
        );
        assert_eq!(
            request.headers,
            [("X-Token".to_string(), "s3cret".to_string())]
        );
        assert_eq!(request.basic_auth, Some(("u".into(), "p".into())));
        assert_eq!(request.retries, 5);
        assert_eq!(request.retry_wait_min, Duration::from_millis(200));
        let custom = Notification(
            json!({"message": "hello", "webhook": {"hook": {"method": "POST", "path": "/x", "body": "{\"a\":1}"}}}),
        );
        let request = http_of(build(&hook, &custom, &dest("hook", "")).unwrap());
        assert_eq!(
            (
                request.method.as_str(),
                request.url.as_str(),
                request.body.as_str()
            ),
            ("POST", "http://h/base/x", "{\"a\":1}")
        );
        assert!(!format!("{request:?}").contains("s3cret"));
    }

    #[test]
    fn slack_posts_json_with_the_token() {
        let slack = service(
            "slack",
            "slack",
            json!({"token": "xoxb", "apiURL": "http://127.0.0.1:9/api/", "username": "bot", "icon": ":rocket:"}),
        );
        let notification = Notification(
            json!({"message": "m", "slack": {"attachments": "[{\"title\": \"t\"}]", "blocks": ""}}),
        );
        let request = http_of(build(&slack, &notification, &dest("slack", "ops")).unwrap());
        assert_eq!(request.url, "http://127.0.0.1:9/api/chat.postMessage");
        assert_eq!(
            request.body,
            r#"{"channel":"ops","text":"m","username":"bot","icon_emoji":":rocket:","attachments":[{"title":"t"}]}"#
        );
        assert!(
            request
                .headers
                .contains(&("Authorization".into(), "Bearer xoxb".into()))
        );
        assert_eq!(request.accept, Accept::SlackOk);
        let bad = Notification(json!({"message": "m", "slack": {"attachments": "[{"}}));
        let error = build(&slack, &bad, &dest("slack", "ops")).unwrap_err();
        assert!(
            error.starts_with("failed to unmarshal slack.attachments"),
            "{error}"
        );
    }

    #[test]
    fn teams_cards_and_unknown_recipients() {
        let teams = service(
            "teams",
            "teams",
            json!({"recipientUrls": {"ops": "http://t/hook"}}),
        );
        let notification = Notification(
            json!({"message": "m", "teams": {"title": "T", "facts": "[{\"name\":\"a\",\"value\":\"b\"}]"}}),
        );
        let request = http_of(build(&teams, &notification, &dest("teams", "ops")).unwrap());
        assert_eq!(request.url, "http://t/hook");
        assert_eq!(
            request.body,
            r#"{"@type":"MessageCard","context":"https://schema.org/extensions","title":"T","summary":"","text":"m","sections":[{"facts":[{"name":"a","value":"b"}]}]}"#
        );
        assert_eq!(request.accept, Accept::TeamsOne);
        assert_eq!(
            build(&teams, &notification, &dest("teams", "dev")).unwrap_err(),
            "no teams webhook configured for recipient dev"
        );
    }

    #[test]
    fn email_opsgenie_and_pagerduty() {
        let mail = service(
            "email",
            "email",
            json!({"host": "127.0.0.1", "port": 2525, "from": "davy@x"}),
        );
        let notification = Notification(json!({"message": "m", "email": {"subject": "S"}}));
        let Delivery::Email(email) =
            build(&mail, &notification, &dest("email", "a@x, b@x")).unwrap()
        else {
            panic!("not email")
        };
        assert_eq!(
            (email.port, email.subject.as_str(), email.body.as_str()),
            (2525, "S", "m")
        );
        assert_eq!(email.to, ["a@x", "b@x"]);

        let genie = service(
            "opsgenie",
            "opsgenie",
            json!({"apiUrl": "http://o", "apiKeys": {"team1": "k1"}}),
        );
        let alert = Notification(
            json!({"message": "m", "opsgenie": {"description": "d", "priority": "P1", "tags": ["a"]}}),
        );
        let request = http_of(build(&genie, &alert, &dest("opsgenie", "team1")).unwrap());
        assert_eq!(request.url, "http://o/v2/alerts");
        assert_eq!(
            request.body,
            r#"{"message":"m","description":"d","priority":"P1","tags":["a"],"responders":[{"type":"team","id":"team1"}],"source":"Argo CD"}"#
        );
        assert!(
            request
                .headers
                .contains(&("Authorization".into(), "GenieKey k1".into()))
        );

        let pd = service(
            "pagerdutyv2",
            "pagerdutyv2",
            json!({"serviceKeys": {"svc": "rk"}}),
        );
        let event = Notification(
            json!({"message": "m", "pagerdutyv2": {"summary": "s", "severity": "critical", "source": "shop"}}),
        );
        let request = http_of(build(&pd, &event, &dest("pagerdutyv2", "svc")).unwrap());
        assert_eq!(request.url, PAGERDUTY_EVENTS);
        assert_eq!(
            request.body,
            r#"{"routing_key":"rk","event_action":"trigger","payload":{"summary":"s","source":"shop","severity":"critical"},"client":"ArgoCD"}"#
        );
        assert!(
            build(
                &pd,
                &Notification(json!({"message": "m"})),
                &dest("pagerdutyv2", "svc")
            )
            .is_err()
        );
    }
}
