//! The standard kubeconfig flags (`--kubeconfig`, `--context`, `-n/--namespace`), accepted before
//! or after the verb, the client built from them, and API errors turned into upstream's text.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

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
    let opts = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let env = std::env::var("KUBECONFIG").ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let paths = kubeconfig_paths(args.kubeconfig.as_deref(), env.as_deref(), home.as_deref());
    let config = if let Some(path) = &args.kubeconfig {
        if !path.exists() {
            return Err(CliError::Kubeconfig {
                path: path.display().to_string(),
                message: "no such file".into(),
            });
        }
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| CliError::Kubeconfig {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Config::from_custom_kubeconfig(kubeconfig, &opts)
            .await
            .map_err(|e| CliError::Kubeconfig {
                path: path.display().to_string(),
                message: e.to_string(),
            })?
    } else if paths.iter().any(|p| p.exists()) {
        Config::from_kubeconfig(&opts)
            .await
            .map_err(|e| CliError::Config(e.to_string()))?
    } else {
        // Inside a pod the service account stands in for a kubeconfig, as for kubectl.
        Config::incluster().map_err(|_| CliError::NoKubeconfig)?
    };
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
}
