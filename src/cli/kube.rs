//! The standard kubeconfig flags (`--kubeconfig`, `--context`, `-n/--namespace`, `--server`,
//! `--token`, `--as`, ...), accepted before or after the verb, the client built from them, and
//! API errors turned into upstream's text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::api::duration::parse_go_duration;

/// Standard kubeconfig flags; `global` so they may stand before or after the verb, as kubectl's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: `$KUBECONFIG`, then `~/.kube/config`).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
    /// The kubeconfig cluster to use (instead of the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use (instead of the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// The address of the API server (works without a kubeconfig).
    #[arg(short = 's', long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// User to impersonate for the operation.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation (repeat for several).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// How long to wait for a single server request (`30`, `1s`, `2m`; `0` waits forever).
    #[arg(long, global = true, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// Do not check the API server's certificate (insecure).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
}

/// client-go's text for a `--request-timeout` it cannot read.
pub const INVALID_TIMEOUT: &str = "invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)";

/// `--request-timeout` as client-go reads it: a non-negative integer is seconds, else a Go
/// duration; zero means no timeout.
pub fn request_timeout(value: &str) -> Result<Option<Duration>, CliError> {
    let timeout = match value.parse::<i64>() {
        Ok(secs) if secs >= 0 => Duration::from_secs(secs.unsigned_abs()),
        _ => parse_go_duration(value).map_err(|_| CliError::Usage(INVALID_TIMEOUT.into()))?,
    };
    Ok((!timeout.is_zero()).then_some(timeout))
}

/// The context, cluster and user the flags select in the kubeconfig.
pub fn kubeconfig_options(args: &KubeArgs) -> KubeConfigOptions {
    KubeConfigOptions {
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        user: args.user.clone(),
    }
}

/// Applies the flags that override what the kubeconfig says (server, credentials,
/// impersonation, timeout, TLS checking) to `config`.
pub fn apply_overrides(config: &mut Config, args: &KubeArgs) -> Result<(), CliError> {
    if let Some(server) = &args.server {
        config.cluster_url = server
            .parse()
            .map_err(|e| CliError::Usage(format!("invalid --server {server:?}: {e}")))?;
    }
    if let Some(token) = &args.token {
        // An explicit token replaces the user's other credentials, as kubectl's does.
        config.auth_info.token = Some(token.clone().into());
        config.auth_info.token_file = None;
        config.auth_info.username = None;
        config.auth_info.password = None;
        config.auth_info.auth_provider = None;
        config.auth_info.exec = None;
    }
    if let Some(user) = &args.as_user {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !args.as_group.is_empty() {
        config.auth_info.impersonate_groups = Some(args.as_group.clone());
    }
    if let Some(value) = &args.request_timeout {
        config.read_timeout = request_timeout(value)?;
        // The timeout counts from the request, not from when a pooled connection went idle.
        config.reset_reader_on_write = config.read_timeout.is_some();
    }
    if args.insecure_skip_tls_verify {
        // As client-go: skipping verification drops the CA, which would verify nothing now.
        config.accept_invalid_certs = true;
        config.root_cert = None;
    }
    Ok(())
}

/// The kubeconfig `paths` hold, merged as kubectl merges them (the first file to set a value
/// wins). An explicit `--kubeconfig` must exist; entries of `$KUBECONFIG` (and the default
/// file) that do not exist are skipped, as kubectl skips them. `None` when no file exists.
pub fn read_kubeconfig(paths: &[PathBuf], explicit: bool) -> Result<Option<Kubeconfig>, CliError> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        if !path.exists() {
            if explicit {
                return Err(CliError::Kubeconfig {
                    path: path.display().to_string(),
                    message: "no such file".into(),
                });
            }
            continue;
        }
        let fail = |e: kube::config::KubeconfigError| CliError::Kubeconfig {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let next = Kubeconfig::read_from(path).map_err(fail)?;
        merged = Some(match merged {
            Some(m) => m.merge(next).map_err(fail)?,
            None => next,
        });
    }
    Ok(merged)
}

/// Errors of the cluster-facing verbs. Each is printed as `Error: <text>` and exits 1, as the
/// upstream plugin (cobra) does.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No kubeconfig anywhere and not inside a cluster.
    #[error(
        "no kubeconfig found: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config"
    )]
    NoKubeconfig,
    /// The kubeconfig named by the flag or the environment could not be read or used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The kubeconfig was read but no client could be built from it.
    #[error("{0}")]
    Config(String),
    /// The API server refused the request: its own message (`rollouts.argoproj.io "x" not
    /// found`, `... is forbidden: ...`), as kubectl and the upstream plugin print it.
    #[error("{0}")]
    Api(String),
    /// The request did not reach the API server (connection refused, timeout, ...).
    #[error("{0}")]
    Transport(String),
    /// A usage or decision error with upstream's text (e.g. `unable to find container named "x"`).
    #[error("{0}")]
    Usage(String),
    /// The command ran but its outcome is a failure (`status` on a Degraded rollout, timeout).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// Whether the API server answered 404 (upstream's `IsNotFound`).
    pub fn is_not_found(err: &kube::Error) -> bool {
        matches!(err, kube::Error::Api(status) if status.code == 404)
    }
}

impl From<kube::Error> for CliError {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) if !status.message.is_empty() => {
                CliError::Api(status.message.clone())
            }
            kube::Error::Api(status) => CliError::Api(format!(
                "the server answered {} {}",
                status.code, status.reason
            )),
            other => CliError::Transport(other.to_string()),
        }
    }
}

/// A client and the namespace the flags resolve to.
pub struct Kube {
    /// The client.
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
}

/// The kubeconfig files that would be read, in kubectl's order: the flag, else every entry of
/// `$KUBECONFIG`, else `~/.kube/config`.
pub fn kubeconfig_paths(
    flag: Option<&Path>,
    env: Option<&str>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    if let Some(path) = flag {
        return vec![path.to_path_buf()];
    }
    if let Some(list) = env.filter(|l| !l.is_empty()) {
        return std::env::split_paths(list).collect();
    }
    home.map(|h| vec![h.join(".kube").join("config")])
        .unwrap_or_default()
}

/// Builds the client from the flags. Must run inside a tokio runtime.
pub async fn connect(args: &KubeArgs) -> Result<Kube, CliError> {
    let env = std::env::var("KUBECONFIG").ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let paths = kubeconfig_paths(args.kubeconfig.as_deref(), env.as_deref(), home.as_deref());
    let kubeconfig = read_kubeconfig(&paths, args.kubeconfig.is_some())?;
    let mut config = match (kubeconfig, &args.server) {
        (Some(kubeconfig), _) => {
            Config::from_custom_kubeconfig(kubeconfig, &kubeconfig_options(args))
                .await
                .map_err(|e| match &args.kubeconfig {
                    // A named file: say which one, as before the merge.
                    Some(path) => CliError::Kubeconfig {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    },
                    None => CliError::Config(e.to_string()),
                })?
        }
        // `--server` alone is enough, as for kubectl; the URL is checked below.
        (None, Some(_)) => Config::new(http::Uri::default()),
        // Inside a pod the service account stands in for a kubeconfig, as for kubectl.
        (None, None) => Config::incluster().map_err(|_| CliError::NoKubeconfig)?,
    };
    apply_overrides(&mut config, args)?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| CliError::Config(e.to_string()))?;
    Ok(Kube { client, namespace })
}

/// A single-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_paths_follow_kubectl_order() {
        let home = Path::new("/home/u");
        assert_eq!(
            kubeconfig_paths(Some(Path::new("/k")), Some("/a:/b"), Some(home)),
            vec![PathBuf::from("/k")]
        );
        assert_eq!(
            kubeconfig_paths(None, Some("/a:/b"), Some(home)),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(
            kubeconfig_paths(None, Some(""), Some(home)),
            vec![PathBuf::from("/home/u/.kube/config")]
        );
        assert!(kubeconfig_paths(None, None, None).is_empty());
    }

    #[test]
    fn api_errors_print_the_server_message() {
        let status =
            kube::core::Status::failure("rollouts.argoproj.io \"x\" not found", "NotFound")
                .with_code(404);
        let err = kube::Error::Api(Box::new(status));
        assert!(CliError::is_not_found(&err));
        assert_eq!(
            CliError::from(err).to_string(),
            "rollouts.argoproj.io \"x\" not found"
        );
    }

    fn args(argv: &[&str]) -> KubeArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            kube: KubeArgs,
        }
        let mut full = vec!["davy"];
        full.extend_from_slice(argv);
        <Cli as clap::Parser>::try_parse_from(full).unwrap().kube
    }

    #[test]
    fn context_cluster_and_user_select_kubeconfig_entries() {
        let a = args(&["--context", "c", "--cluster", "k", "--user", "u"]);
        let opts = kubeconfig_options(&a);
        assert_eq!(opts.context.as_deref(), Some("c"));
        assert_eq!(opts.cluster.as_deref(), Some("k"));
        assert_eq!(opts.user.as_deref(), Some("u"));
        assert!(kubeconfig_options(&args(&[])).cluster.is_none());
    }

    #[test]
    fn overrides_land_on_the_config() {
        let a = args(&[
            "-s",
            "https://10.0.0.1:6443",
            "--token",
            "t0k",
            "--as",
            "jane",
            "--as-group",
            "dev",
            "--as-group",
            "ops",
            "--request-timeout",
            "2m",
            "--insecure-skip-tls-verify",
        ]);
        let mut config = Config::new("https://old:1".parse().unwrap());
        config.auth_info.token_file = Some("/var/token".into());
        config.root_cert = Some(vec![vec![1]]);
        apply_overrides(&mut config, &a).unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://10.0.0.1:6443/");
        assert_eq!(token_of(&config).as_deref(), Some("t0k"));
        assert!(config.auth_info.token_file.is_none());
        assert_eq!(config.auth_info.impersonate.as_deref(), Some("jane"));
        assert_eq!(
            config.auth_info.impersonate_groups,
            Some(vec!["dev".to_string(), "ops".to_string()])
        );
        assert_eq!(config.read_timeout, Some(Duration::from_secs(120)));
        assert!(config.accept_invalid_certs);
        assert!(config.root_cert.is_none());
    }

    /// The token as text, through its serialised form (the secret type is kube's).
    fn token_of(config: &Config) -> Option<String> {
        let v = serde_json::to_value(&config.auth_info).unwrap();
        v.get("token").and_then(|t| t.as_str()).map(str::to_string)
    }

    #[test]
    fn no_flags_change_nothing() {
        let mut config = Config::new("https://old:1".parse().unwrap());
        apply_overrides(&mut config, &args(&[])).unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://old:1/");
        assert!(config.auth_info.token.is_none());
        assert!(config.auth_info.impersonate.is_none());
        assert!(config.read_timeout.is_none());
        assert!(!config.accept_invalid_certs);
    }

    #[test]
    fn request_timeout_reads_as_client_go() {
        assert_eq!(
            request_timeout("30").unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            request_timeout("1m30s").unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(request_timeout("0").unwrap(), None);
        assert_eq!(request_timeout("0s").unwrap(), None);
        for bad in ["abc", "-1", "5x", ""] {
            assert_eq!(
                request_timeout(bad).unwrap_err().to_string(),
                INVALID_TIMEOUT,
                "{bad}"
            );
        }
        let mut config = Config::new("https://old:1".parse().unwrap());
        assert!(apply_overrides(&mut config, &args(&["--request-timeout", "soon"])).is_err());
    }

    fn kubeconfig_text(context: &str, server: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: {context}\n  cluster:\n    server: {server}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\nusers:\n- name: {context}\n  user:\n    token: tok-{context}\n"
        )
    }

    #[test]
    fn kubeconfig_files_merge_and_missing_entries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, kubeconfig_text("one", "https://one:1")).unwrap();
        std::fs::write(&b, kubeconfig_text("two", "https://two:2")).unwrap();
        let missing = dir.path().join("missing");
        let merged = read_kubeconfig(&[missing.clone(), a, b], false)
            .unwrap()
            .unwrap();
        // The first file to set current-context wins; the second file's entries are kept.
        assert_eq!(merged.current_context.as_deref(), Some("one"));
        let names: Vec<_> = merged.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["one", "two"]);
        assert!(
            read_kubeconfig(std::slice::from_ref(&missing), false)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            read_kubeconfig(std::slice::from_ref(&missing), true)
                .unwrap_err()
                .to_string(),
            format!("kubeconfig {}: no such file", missing.display())
        );
    }
}
