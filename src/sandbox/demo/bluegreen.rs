//! `davy demo --strategy blue-green`: the blue-green scene on the embedded sandbox. blue is
//! deployed behind the active Service; green comes up as a second stack behind the preview
//! Service and the Rollout pauses (`BlueGreenPause`) while all traffic still reaches blue;
//! after a promotion the active Service switches to green, and the blue stack is scaled down
//! once its scale-down delay passed. Traffic goes through the active Service throughout.
//!
//! The story is a pure state machine ([`Script`], time is a parameter); [`run`] reads the API
//! and carries out its moves. Exit code 0 only when every beat was observed through the API.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use serde_json::json;
use tokio::time::Instant;

use super::view::{View, format_at, indent};
use super::world::{NAMESPACE, World};
use super::{DemoArgs, summary};
use crate::api::consts::label;
use crate::sandbox::load_generator::SplitTargets;

/// The manifests of the scene.
pub const MANIFESTS: &str = include_str!("../../../examples/rollout-bluegreen.yaml");
/// The Rollout's name.
pub const ROLLOUT: &str = "rollout-bluegreen";
/// Its active Service.
pub const ACTIVE: &str = "rollout-bluegreen-active";
/// Its preview Service.
pub const PREVIEW: &str = "rollout-bluegreen-preview";
/// The first release.
pub const BLUE: &str = "argoproj/rollouts-demo:blue";
/// The second release.
pub const GREEN: &str = "argoproj/rollouts-demo:green";
/// The scale-down delay the scene uses instead of the default 30 s, to keep it short.
pub const SCALE_DOWN_DELAY_SECONDS: i64 = 5;
/// How long the Rollout sits at the gate before the scene promotes it.
pub const PROMOTE_AFTER: Duration = Duration::from_millis(1500);

/// A narrated state, in story order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Beat {
    /// blue is Healthy and the active Service selects it.
    BlueHealthy,
    /// green runs behind the preview Service, the active still selects blue, paused.
    GreenPreview,
    /// The active Service selects green, green is stable, Healthy.
    GreenActive,
    /// The blue stack is scaled down after the delay.
    BlueScaledDown,
}

impl Beat {
    /// Every beat in order.
    pub const ALL: [Beat; 4] = [
        Beat::BlueHealthy,
        Beat::GreenPreview,
        Beat::GreenActive,
        Beat::BlueScaledDown,
    ];

    /// The narration line.
    pub fn title(self) -> &'static str {
        match self {
            Beat::BlueHealthy => "blue is live: Healthy, the active Service selects the blue pods",
            Beat::GreenPreview => {
                "green runs behind the preview Service; active still on blue; paused (BlueGreenPause)"
            }
            Beat::GreenActive => "promoted: the active Service selects green, Healthy",
            Beat::BlueScaledDown => "the blue stack is scaled down after its scale-down delay",
        }
    }
}

/// What the scene reads from the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `status.phase`.
    pub phase: String,
    /// `status.message`.
    pub message: String,
    /// `status.stableRS`.
    pub stable: String,
    /// `status.currentPodHash`.
    pub current: String,
    /// The hash the active Service selects.
    pub active: String,
    /// The hash the preview Service selects.
    pub preview: String,
    /// `spec.replicas` of each ReplicaSet, by hash.
    pub sizes: BTreeMap<String, i32>,
}

/// A move of the scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Release green.
    SetImage,
    /// Promote at the pause.
    Promote,
}

impl Action {
    /// The command a user would type.
    pub fn command(self) -> String {
        match self {
            Action::SetImage => {
                format!("$ kubectl davy set image {ROLLOUT} rollouts-demo={GREEN}")
            }
            Action::Promote => format!("$ kubectl davy promote {ROLLOUT}"),
        }
    }
}

/// The story's state.
#[derive(Debug, Default)]
pub struct Script {
    next: usize,
    blue: String,
    paused_at: Option<Duration>,
    released: bool,
    promoted: bool,
}

impl Script {
    /// The next beat not yet seen, if any.
    pub fn waiting_for(&self) -> Option<Beat> {
        Beat::ALL.get(self.next).copied()
    }

    /// Every beat seen.
    pub fn finished(&self) -> bool {
        self.waiting_for().is_none()
    }

    /// Reads `o` at `now`: the beats it shows (at most one) and the moves due, in order.
    pub fn observe(&mut self, o: &Observed, now: Duration) -> (Option<Beat>, Vec<Action>) {
        let mut actions = Vec::new();
        let beat = self.waiting_for().filter(|beat| self.shows(*beat, o));
        if let Some(beat) = beat {
            self.next += 1;
            match beat {
                Beat::BlueHealthy => self.blue = o.stable.clone(),
                Beat::GreenPreview => self.paused_at = Some(now),
                Beat::GreenActive | Beat::BlueScaledDown => {}
            }
        }
        if self.next >= 1 && !self.released {
            self.released = true;
            actions.push(Action::SetImage);
        }
        if let Some(at) = self.paused_at
            && !self.promoted
            && now >= at + PROMOTE_AFTER
        {
            self.promoted = true;
            actions.push(Action::Promote);
        }
        (beat, actions)
    }

    fn shows(&self, beat: Beat, o: &Observed) -> bool {
        match beat {
            Beat::BlueHealthy => {
                o.phase == "Healthy" && !o.stable.is_empty() && o.active == o.stable
            }
            Beat::GreenPreview => {
                o.phase == "Paused"
                    && o.message == "BlueGreenPause"
                    && o.current != self.blue
                    && o.preview == o.current
                    && o.active == self.blue
            }
            Beat::GreenActive => {
                o.phase == "Healthy"
                    && o.stable == o.current
                    && o.active == o.current
                    && o.current != self.blue
            }
            Beat::BlueScaledDown => o.sizes.get(&self.blue) == Some(&0),
        }
    }

    /// A one-line description of `o` for timeout messages.
    pub fn describe(o: &Observed) -> String {
        format!(
            "phase={} message={:?} stable={} current={} active={} preview={}",
            o.phase, o.message, o.stable, o.current, o.active, o.preview
        )
    }
}

/// Runs the scene; returns the exit code.
pub async fn run(args: &DemoArgs) -> anyhow::Result<i32> {
    let mut view = View::new(args.no_color);
    let mut world = World::start().await?;
    view.intro(&format!(
        "davy demo --strategy blue-green: sandbox API server on http://{} (controller, workload simulator and traffic inside)",
        world.addr()
    ));
    if args.dashboard {
        let url = super::serve_dashboard(world.client.clone(), args.dashboard_listen).await?;
        view.intro(&format!(
            "dashboard: {url}#/{}/{ROLLOUT}",
            world.client.default_namespace()
        ));
    }
    world
        .apply_manifests(MANIFESTS, None, |doc| {
            if doc["kind"] == "Rollout" {
                doc["spec"]["strategy"]["blueGreen"]["scaleDownDelaySeconds"] =
                    json!(SCALE_DOWN_DELAY_SECONDS);
            }
        })
        .await?;
    view.intro(&format!(
        "$ kubectl apply -f examples/rollout-bluegreen.yaml   # Rollout {ROLLOUT} (image {BLUE}, scaleDownDelaySeconds {SCALE_DOWN_DELAY_SECONDS} here), active and preview Services"
    ));
    let start = Instant::now();
    let mut script = Script::default();
    let mut last = String::new();
    let mut tree = String::new();
    let stop_reason = loop {
        let now = start.elapsed();
        match observe(&world, &view).await {
            Ok(Some((observed, text))) => {
                tree = text;
                last = Script::describe(&observed);
                let (beat, actions) = script.observe(&observed, now);
                if let Some(beat) = beat {
                    let line = format!("[{}] ✔ {}", format_at(now), beat.title());
                    view.say(&line);
                    if !view.is_live() {
                        view.say(&indent(&tree));
                    }
                    if beat == Beat::BlueHealthy {
                        // Users arrive once the app is live (before, no pod exists to answer).
                        world
                            .start_traffic_to(
                                SplitTargets::new(NAMESPACE, ACTIVE, PREVIEW),
                                Duration::from_secs(24 * 3600),
                            )
                            .await?;
                        view.say(&format!(
                            "[{}] traffic starts: every request goes through the active Service {ACTIVE}",
                            format_at(now)
                        ));
                    }
                }
                for action in actions {
                    view.say(&format!("[{}] {}", format_at(now), action.command()));
                    let done = match action {
                        Action::SetImage => world.set_image(ROLLOUT, GREEN).await,
                        Action::Promote => world.promote(ROLLOUT).await,
                    };
                    if let Err(error) = done {
                        view.say(&format!("error: {error:#}"));
                    }
                }
                view.refresh(&tree);
            }
            Ok(None) => {}
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let report = world.stop_traffic().await;
    if !tree.is_empty() && view.is_live() {
        view.say(&indent(&tree));
    }
    let traffic = report.as_ref().map(|report| summary::Traffic {
        report,
        demo_start: start.into_std(),
    });
    if let Some(traffic) = traffic {
        view.say(&summary::traffic_lines(traffic.report));
    }
    let dropped = traffic.and_then(summary::dropped);
    let code = match (stop_reason, script.waiting_for(), dropped) {
        (Some(reason), Some(missing), _) => {
            view.say(&format!(
                "demo FAILED: never observed \"{}\": {reason}",
                missing.title()
            ));
            1
        }
        (_, _, Some(dropped)) => {
            view.say(&format!("demo FAILED: {dropped}"));
            1
        }
        _ => {
            view.say(&format!(
                "demo complete: all {} narrated states were observed through the API, no request found no ready backend",
                Beat::ALL.len()
            ));
            0
        }
    };
    if args.dashboard {
        view.say("The dashboard keeps running on the sandbox. Stop with Ctrl-C.");
        super::stop_signal().await;
    }
    world.stop().await;
    Ok(code)
}

/// The scene's view of the API and the `get rollout` tree.
async fn observe(world: &World, view: &View) -> anyhow::Result<Option<(Observed, String)>> {
    let Some((ro, rss, tree)) = world.rollout_tree(ROLLOUT, view.color).await? else {
        return Ok(None);
    };
    let status = ro.status.clone().unwrap_or_default();
    let services = world.api::<Service>();
    let selected = |service: Option<Service>| {
        service
            .and_then(|s| s.spec)
            .and_then(|s| s.selector)
            .and_then(|s| s.get(label::POD_TEMPLATE_HASH).cloned())
            .unwrap_or_default()
    };
    let active = selected(services.get_opt(ACTIVE).await?);
    let preview = selected(services.get_opt(PREVIEW).await?);
    let sizes = rss
        .iter()
        .filter_map(|rs| {
            let hash = rs.metadata.labels.as_ref()?.get(label::POD_TEMPLATE_HASH)?;
            Some((hash.clone(), rs.spec.as_ref()?.replicas.unwrap_or(0)))
        })
        .collect();
    let observed = Observed {
        phase: status
            .phase
            .as_ref()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        message: status.message.clone(),
        stable: status.stable_rs.clone(),
        current: status.current_pod_hash.clone(),
        active,
        preview,
        sizes,
    };
    Ok(Some((observed, tree)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(phase: &str, message: &str, stable: &str, current: &str, active: &str) -> Observed {
        Observed {
            phase: phase.into(),
            message: message.into(),
            stable: stable.into(),
            current: current.into(),
            active: active.into(),
            preview: current.into(),
            sizes: BTreeMap::from([("b".to_string(), 2), ("g".to_string(), 2)]),
        }
    }

    #[test]
    fn the_story_in_order_with_its_moves() {
        let mut script = Script::default();
        let at = Duration::from_secs;
        // Progressing first: nothing yet.
        assert_eq!(
            script.observe(&seen("Progressing", "", "b", "b", ""), at(0)),
            (None, vec![])
        );
        assert_eq!(
            script.observe(&seen("Healthy", "", "b", "b", "b"), at(1)),
            (Some(Beat::BlueHealthy), vec![Action::SetImage])
        );
        // A pause before green is ready behind the preview is not the beat.
        let mut early = seen("Paused", "BlueGreenPause", "b", "g", "b");
        early.preview = "b".into();
        assert_eq!(script.observe(&early, at(2)), (None, vec![]));
        assert_eq!(
            script.observe(&seen("Paused", "BlueGreenPause", "b", "g", "b"), at(3)),
            (Some(Beat::GreenPreview), vec![])
        );
        // Not before PROMOTE_AFTER (1.5 s) at the pause.
        assert_eq!(
            script.observe(&seen("Paused", "BlueGreenPause", "b", "g", "b"), at(4)),
            (None, vec![])
        );
        assert_eq!(
            script.observe(&seen("Paused", "BlueGreenPause", "b", "g", "b"), at(5)),
            (None, vec![Action::Promote])
        );
        assert_eq!(
            script.observe(&seen("Healthy", "", "g", "g", "g"), at(6)),
            (Some(Beat::GreenActive), vec![])
        );
        let mut down = seen("Healthy", "", "g", "g", "g");
        down.sizes.insert("b".into(), 0);
        assert_eq!(
            script.observe(&down, at(9)),
            (Some(Beat::BlueScaledDown), vec![])
        );
        assert!(script.finished());
    }
}
