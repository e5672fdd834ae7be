//! `davy dashboard`: a web page with the rollouts of a namespace, each one's tree updated live
//! from watches, its analysis measurements as charts, and the actions of the CLI.

pub mod access;
pub mod server;
pub mod state;
pub mod view;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::cli::kube::{KubeArgs, connect, runtime};

/// Arguments of `dashboard`.
#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// Address to listen on; anything but loopback needs `--token-file`.
    #[arg(long, default_value = "127.0.0.1:3100", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// A file holding the token every API request must carry (`Authorization: Bearer`, or
    /// `?token=` in the page's address).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Show, never act: the action buttons are hidden and their requests refused.
    #[arg(long)]
    pub read_only: bool,
}

/// Runs `dashboard` until interrupted.
pub fn run(args: &DashboardArgs, kube: &KubeArgs) -> anyhow::Result<i32> {
    let token = match &args.token_file {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("dashboard: reading token file {}", path.display()))?,
        )),
        None => None,
    };
    let access = access::access_for(
        args.listen,
        token.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
        args.read_only,
    )?;
    runtime()?.block_on(async move {
        let k = connect(kube).await?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("dashboard: listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("Davy dashboard is available at http://{addr}/rollouts");
        server::serve(k.client, k.namespace, access, listener).await?;
        Ok(0)
    })
}
