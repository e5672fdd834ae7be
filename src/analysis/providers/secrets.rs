//! Where Secret values come from: one key for a `secretKeyRef` argument, or a whole Secret for
//! the providers that keep their credentials in one (`datadog`, `newrelic`, `influxdb`,
//! `wavefront-api-tokens`). Static (the CLI reads them from its manifests) or through the API.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

/// Why a Secret (or one of its keys) has no value; the texts are upstream's.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No such Secret (the API server's wording).
    #[error("secrets \"{0}\" not found")]
    NotFound(String),
    /// The Secret lacks the key.
    #[error("key '{key}' does not exist in secret '{name}'")]
    MissingKey {
        /// The Secret.
        name: String,
        /// The key asked for.
        key: String,
    },
    /// Reading the Secret failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// Reads Secrets.
pub trait SecretSource: Send + Sync {
    /// The value of `key` in Secret `name` of `namespace`.
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, SecretError>>;

    /// Every key of Secret `name` of `namespace`, values decoded as UTF-8 text.
    fn data<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, SecretError>>;
}

/// Secrets known up front (the CLI reads them from the manifests it was given). Namespaces
/// are not told apart.
#[derive(Debug, Clone, Default)]
pub struct StaticSecrets {
    /// Secret name → key → value.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

impl SecretSource for StaticSecrets {
    fn get<'a>(
        &'a self,
        _namespace: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            let secret = self
                .secrets
                .get(name)
                .ok_or_else(|| SecretError::NotFound(name.to_string()))?;
            secret
                .get(key)
                .cloned()
                .ok_or_else(|| SecretError::MissingKey {
                    name: name.to_string(),
                    key: key.to_string(),
                })
        })
    }

    fn data<'a>(
        &'a self,
        _namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, SecretError>> {
        Box::pin(async move {
            self.secrets
                .get(name)
                .cloned()
                .ok_or_else(|| SecretError::NotFound(name.to_string()))
        })
    }
}

/// Secrets read through the Kubernetes API.
#[derive(Clone)]
pub struct KubeSecrets {
    client: kube::Client,
}

impl KubeSecrets {
    /// A secret source over `client`.
    pub fn new(client: kube::Client) -> KubeSecrets {
        KubeSecrets { client }
    }
}

impl SecretSource for KubeSecrets {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            let data = self.data(namespace, name).await?;
            data.get(key)
                .cloned()
                .ok_or_else(|| SecretError::MissingKey {
                    name: name.to_string(),
                    key: key.to_string(),
                })
        })
    }

    fn data<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, SecretError>> {
        Box::pin(async move {
            use k8s_openapi::api::core::v1::Secret;
            let api: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), namespace);
            let secret = match api.get(name).await {
                Ok(secret) => secret,
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    return Err(SecretError::NotFound(name.to_string()));
                }
                Err(e) => return Err(e.into()),
            };
            Ok(secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect())
        })
    }
}
