//! Start-up settings the providers take from the controller's environment, read once when the
//! [`super::Registry`] is built: the controller's namespace (where provider Secrets live),
//! Datadog's `DD_*` keys and the AWS credentials, region and endpoint of CloudWatch.

/// Upstream's namespace when neither `POD_NAMESPACE` nor the service account names one.
pub const DEFAULT_CONTROLLER_NAMESPACE: &str = "argo-rollouts";

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The controller's namespace as upstream finds it: `POD_NAMESPACE` (even empty), else the
/// service account's namespace file, else `argo-rollouts`.
pub fn controller_namespace() -> String {
    if let Ok(ns) = std::env::var("POD_NAMESPACE") {
        return ns;
    }
    std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
        .ok()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| DEFAULT_CONTROLLER_NAMESPACE.to_string())
}

/// Datadog credentials from `DD_ADDRESS`, `DD_API_KEY` and `DD_APP_KEY`; upstream uses them
/// only when all three are set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatadogEnv {
    /// API root (`https://api.datadoghq.com` when empty).
    pub address: String,
    /// `DD-API-KEY`.
    pub api_key: String,
    /// `DD-APPLICATION-KEY`.
    pub app_key: String,
}

impl DatadogEnv {
    /// The three variables, or `None` when one is unset.
    pub fn from_env() -> Option<DatadogEnv> {
        Some(DatadogEnv {
            address: std::env::var("DD_ADDRESS").ok()?,
            api_key: std::env::var("DD_API_KEY").ok()?,
            app_key: std::env::var("DD_APP_KEY").ok()?,
        })
    }
}

/// What CloudWatch calls are signed with and sent to.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsEnv {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` (temporary credentials).
    pub session_token: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: String,
    /// `AWS_ENDPOINT_URL_CLOUDWATCH`, else `AWS_ENDPOINT_URL`: replaces
    /// `https://monitoring.<region>.amazonaws.com` (the SDKs' endpoint override).
    pub endpoint: Option<String>,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret key or the session token.
        f.debug_struct("AwsEnv")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl AwsEnv {
    /// The standard AWS variables (empty strings count as unset).
    pub fn from_env() -> AwsEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        AwsEnv {
            access_key_id: var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            session_token: var("AWS_SESSION_TOKEN"),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_default(),
            endpoint: var("AWS_ENDPOINT_URL_CLOUDWATCH").or_else(|| var("AWS_ENDPOINT_URL")),
        }
    }
}
