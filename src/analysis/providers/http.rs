//! HTTP plumbing shared by the prometheus, web and scrape providers: clients with a timeout
//! and optional TLS-verification skip, request headers, basic authentication and the OAuth2
//! client-credentials flow.

use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::api::providers::{Authentication, WebMetricHeader};

use super::ProviderError;

/// A reqwest client with `timeout` for the whole request; `insecure` skips TLS verification.
pub fn client(timeout: Duration, insecure: bool) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(insecure)
        .build()
        .map_err(|e| ProviderError::Config(format!("cannot build HTTP client: {e}")))
}

/// Credentials added to every request of a provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// OAuth2 client credentials: a token is requested from `token_url` before each
    /// measurement and sent as `Authorization: Bearer`.
    OAuth2 {
        /// The token endpoint.
        token_url: String,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: String,
        /// Scopes asked for.
        scopes: Vec<String>,
    },
}

impl Auth {
    /// Reads `authentication` (sigv4 is not supported and is ignored unless it is the only
    /// method: then it is an error naming it).
    pub fn from_spec(spec: Option<&Authentication>) -> Result<Auth, ProviderError> {
        let Some(spec) = spec else {
            return Ok(Auth::None);
        };
        if let Some(oauth) = &spec.oauth2 {
            let token_url = oauth.token_url.clone().unwrap_or_default();
            if !token_url.is_empty() {
                let client_id = oauth.client_id.clone().unwrap_or_default();
                let client_secret = oauth.client_secret.clone().unwrap_or_default();
                if client_id.is_empty() || client_secret.is_empty() {
                    return Err(ProviderError::Config(
                        "oauth2 clientId and clientSecret are required when tokenUrl is set"
                            .to_string(),
                    ));
                }
                return Ok(Auth::OAuth2 {
                    token_url,
                    client_id,
                    client_secret,
                    scopes: oauth.scopes.clone().unwrap_or_default(),
                });
            }
        }
        if let Some(basic) = &spec.basic_auth {
            let username = basic.username.clone().unwrap_or_default();
            let password = basic.password.clone().unwrap_or_default();
            if username.is_empty() && password.is_empty() {
                return Ok(Auth::None);
            }
            if username.is_empty() || password.is_empty() {
                return Err(ProviderError::Config(
                    "basicAuth requires both username and password".to_string(),
                ));
            }
            return Ok(Auth::Basic { username, password });
        }
        Ok(Auth::None)
    }

    /// Adds the credentials to `request`, fetching an OAuth2 token first when needed.
    pub async fn apply(
        &self,
        client: &reqwest::Client,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, TokenError> {
        match self {
            Auth::None => Ok(request),
            Auth::Basic { username, password } => Ok(request.basic_auth(username, Some(password))),
            Auth::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scopes,
            } => {
                let token =
                    client_credentials_token(client, token_url, client_id, client_secret, scopes)
                        .await?;
                Ok(request.bearer_auth(token))
            }
        }
    }
}

/// Why an OAuth2 token could not be had; the texts are those of Go's `oauth2` package, which
/// upstream's measurements carry.
#[derive(Debug, Error)]
pub enum TokenError {
    /// The token endpoint could not be reached or its answer not read.
    #[error("oauth2: cannot fetch token: {}", error_text(.0))]
    Fetch(reqwest::Error),
    /// The token endpoint answered with an error status.
    #[error("oauth2: cannot fetch token: {status}\nResponse: {body}")]
    Status {
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// The response body.
        body: String,
    },
    /// The answer is not a token response.
    #[error("oauth2: cannot parse token response: {0}")]
    Parse(serde_json::Error),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// RFC 6749 §4.4. Credentials go in an HTTP Basic header first and, if the server answers
/// 400/401, in the form body, like Go's `oauth2` package auto-detection does.
async fn client_credentials_token(
    client: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    scopes: &[String],
) -> Result<String, TokenError> {
    let mut form = vec![("grant_type", "client_credentials".to_string())];
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    let header_attempt = client
        .post(token_url)
        .basic_auth(client_id, Some(client_secret))
        .form(&form)
        .send()
        .await
        .map_err(TokenError::Fetch)?;
    let response = if matches!(header_attempt.status().as_u16(), 400 | 401) {
        let mut body_form = form.clone();
        body_form.push(("client_id", client_id.to_string()));
        body_form.push(("client_secret", client_secret.to_string()));
        client
            .post(token_url)
            .form(&body_form)
            .send()
            .await
            .map_err(TokenError::Fetch)?
    } else {
        header_attempt
    };
    let status = response.status();
    let body = response.text().await.map_err(TokenError::Fetch)?;
    if !status.is_success() {
        return Err(TokenError::Status { status, body });
    }
    serde_json::from_str::<TokenResponse>(&body)
        .map(|t| t.access_token)
        .map_err(TokenError::Parse)
}

/// Adds `headers` to `request` (a later header with the same key replaces the earlier one,
/// as Go's `Header.Set` does).
pub fn with_headers(
    mut request: reqwest::RequestBuilder,
    headers: &[WebMetricHeader],
) -> reqwest::RequestBuilder {
    let mut seen = std::collections::BTreeMap::new();
    for h in headers {
        seen.insert(
            h.key.to_ascii_lowercase(),
            (h.key.as_str(), h.value.as_str()),
        );
    }
    for (key, value) in seen.values() {
        request = request.header(*key, *value);
    }
    request
}

/// The text of a reqwest error with its causes, e.g.
/// `error sending request for url (...): operation timed out`.
pub fn error_text(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
