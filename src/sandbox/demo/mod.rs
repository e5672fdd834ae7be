//! `davy demo`: the seed's story on the embedded sandbox, no cluster needed. blue is deployed;
//! yellow is rolled out as a canary, passes its analysis, is promoted and becomes Healthy;
//! bad-yellow fails its analysis and the Rollout aborts by itself: traffic back to stable,
//! `Degraded`.
//!
//! - [`script`]: the pure story (which state is next, what to do) from observed state;
//! - [`world`]: the sandbox, controller, simulator and traffic, and the API reads and writes;
//! - [`view`]: narration and the live `get rollout` tree; [`summary`]: the closing table;
//! - [`prometheus`]: the optional real Prometheus (`--prometheus`);
//! - [`bluegreen`]: the blue-green scene (`--strategy blue-green`).
//!
//! The exit code is 0 only when every narrated state was observed through the API.

pub mod bluegreen;
pub mod prometheus;
pub mod script;
pub mod summary;
pub mod view;
pub mod world;

use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

use script::{Beat, Happened, Script};
use summary::Outcome;
use view::View;
use world::World;

/// How often the demo reads the API.
const POLL: Duration = Duration::from_millis(100);

/// Arguments of `davy demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// No ANSI colours and no screen redraws: print the tree at each narrated step instead.
    #[arg(long)]
    pub no_color: bool,
    /// Keep the sandbox running after the story (prints a kubeconfig), until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// Measure with a real Prometheus (the `prometheus` binary on PATH) instead of scraping
    /// the pods directly.
    #[arg(long)]
    pub prometheus: bool,
    /// Give up (exit 1) when the story has not finished after this long.
    #[arg(long, default_value = "90s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Serve the dashboard on the demo's sandbox, during the story and after it until Ctrl-C.
    #[arg(long)]
    pub dashboard: bool,
    /// Where `--dashboard` listens.
    #[arg(long, default_value = "127.0.0.1:3100", value_name = "ADDR")]
    pub dashboard_listen: std::net::SocketAddr,
    /// The scene: the canary story, or a blue-green release switched at promotion.
    #[arg(long, value_enum, default_value_t = Strategy::Canary)]
    pub strategy: Strategy,
}

/// The scenes of `davy demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// blue → yellow (analysis passes) → bad-yellow (analysis fails, aborted).
    Canary,
    /// blue → green behind the preview Service, promoted, active Service switched.
    BlueGreen,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse_duration(text).map_err(|e| e.to_string())
}

/// Starts the dashboard on `listen` for the demo's sandbox; returns its address.
pub async fn serve_dashboard(
    client: kube::Client,
    listen: std::net::SocketAddr,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--dashboard: listening on {listen}"))?;
    let url = format!("http://{}/rollouts", listener.local_addr()?);
    let namespace = client.default_namespace().to_string();
    let access = crate::cli::dashboard::access::access_for(listen, None, false)?;
    tokio::spawn(async move {
        if let Err(error) =
            crate::cli::dashboard::server::serve(client, namespace, access, listener).await
        {
            tracing::warn!(%error, "the dashboard stopped");
        }
    });
    Ok(url)
}

/// Runs the demo; returns the exit code.
pub fn run(args: &DemoArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match args.strategy {
        Strategy::Canary => runtime.block_on(demo(args)),
        Strategy::BlueGreen => runtime.block_on(bluegreen::run(args)),
    }
}

async fn demo(args: &DemoArgs) -> anyhow::Result<i32> {
    let mut view = View::new(args.no_color);
    let mut world = World::start().await?;
    view.intro(&format!(
        "davy demo: sandbox API server on http://{} (controller, workload simulator and traffic inside)",
        world.addr()
    ));
    if args.dashboard {
        let url = serve_dashboard(world.client.clone(), args.dashboard_listen).await?;
        view.intro(&format!(
            "dashboard: {url}#/{}/{}",
            world.client.default_namespace(),
            script::ROLLOUT
        ));
    }
    let mut prom = None;
    let provider = if args.prometheus {
        match prometheus::Prometheus::start().await {
            Ok(Some(p)) => {
                view.intro(&format!(
                    "analysis: a real Prometheus on http://{} scraping the demo pods",
                    p.addr()
                ));
                let provider = p.metric_patch();
                prom = Some(p);
                Some(provider)
            }
            Ok(None) => {
                view.intro(
                    "--prometheus: no `prometheus` binary on PATH; skipping it and scraping the pods' /metrics directly",
                );
                None
            }
            Err(error) => {
                view.intro(&format!(
                    "--prometheus: Prometheus did not start ({error:#}); scraping the pods' /metrics directly"
                ));
                None
            }
        }
    } else {
        None
    };
    if prom.is_none() {
        view.intro(
            "analysis: the canary pods' HTTP success rate from their own /metrics (davy/scrape)",
        );
    }
    world.apply(provider).await?;
    view.intro(&format!(
        "$ kubectl apply -f examples/rollouts-demo-analysis.yaml   # Rollout {} (image {}), AnalysisTemplate, Services, Ingress",
        script::ROLLOUT,
        script::BLUE
    ));
    let start = Instant::now();
    let mut script = Script::new();
    let mut last: String;
    let mut tree = String::new();
    let interrupted = stop_signal();
    let mut interrupted = std::pin::pin!(interrupted);
    let stop_reason = loop {
        let now = start.elapsed();
        match world.observe(view.color).await {
            Ok((observed, text)) => {
                if let Some(p) = &prom {
                    p.update_targets(&world.client).await;
                }
                tree = text;
                last = observed.describe();
                for entry in script.observe(&observed, now) {
                    view.entry(&entry, &tree);
                    if entry.what == Happened::Beat(Beat::BlueHealthy) {
                        // Traffic starts once blue is live, as users arrive once an app is
                        // deployed: before that no pod exists and every request would find no
                        // backend whatever the controller does. It runs for the rest of the
                        // story (and a --keep session) and is cancelled at the end.
                        world.start_traffic(Duration::from_secs(24 * 3600)).await?;
                        view.note(&format!(
                            "[{}] traffic starts: {} requests/s through the Ingress {}, routed as ingress-nginx routes them to the Services' ready endpoints",
                            view::format_at(now),
                            world::TRAFFIC_RATE,
                            world::STABLE_INGRESS
                        ));
                    }
                    if let Happened::Action(action) = entry.what
                        && let Err(error) = act_with_retries(&world, action).await
                    {
                        view.say(&format!("error: {error:#}"));
                    }
                }
                view.refresh(&tree);
            }
            Err(error) => last = format!("reading the API failed: {error:#}"),
        }
        if script.finished() {
            break None;
        }
        if now >= args.timeout {
            break Some(format!(
                "timed out after {}s; last seen: {last}",
                args.timeout.as_secs()
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut interrupted => break Some(format!("interrupted; last seen: {last}")),
        }
    };
    let total = start.elapsed();
    let report = world.stop_traffic().await;
    let outcome = match (stop_reason, script.waiting_for()) {
        (None, _) | (Some(_), None) => Outcome::Complete,
        (Some(reason), Some(missing)) => Outcome::Incomplete { missing, reason },
    };
    if !tree.is_empty() && !view.is_live() {
        view.say(&view::indent(&tree));
    }
    let traffic = report.as_ref().map(|report| summary::Traffic {
        report,
        demo_start: start.into_std(),
    });
    view.say(&summary::render(script.log(), total, &outcome, traffic));
    let code = if summary::passed(&outcome, traffic) {
        0
    } else {
        1
    };
    if args.keep || args.dashboard {
        world.start_traffic(Duration::from_secs(24 * 3600)).await?;
        view.say(&format!(
            "The sandbox keeps running (traffic too). Kubeconfig: {}\n  kubectl --kubeconfig {} get rollouts\n  davy get rollout {} -w   (with KUBECONFIG={})\nStop with Ctrl-C.",
            world.kubeconfig.display(),
            world.kubeconfig.display(),
            script::ROLLOUT,
            world.kubeconfig.display(),
        ));
        stop_signal().await;
    }
    world.stop().await;
    if let Some(p) = prom {
        p.stop().await;
    }
    Ok(code)
}

/// Ctrl-C or SIGTERM, whichever comes first (so the sandbox, the traffic and a Prometheus
/// child are stopped cleanly either way).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        // Without a SIGTERM handler Ctrl-C still ends the demo.
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A move, retried a few times: a write can meet a conflict while the controller writes too.
async fn act_with_retries(world: &World, action: script::Action) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        match world.act(action).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= 4 => return Err(error),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
