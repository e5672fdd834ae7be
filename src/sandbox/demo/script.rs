//! The demo's story as a pure state machine: the narrated states ([`Beat`]) in the order they
//! must happen, each recognised from what the API shows ([`Observed`]), and the operator's
//! moves ([`Action`]) that push the story on. Time is a parameter (elapsed since the start).
//!
//! A beat counts only when it is observed through the API, so the demo's exit code says whether
//! the controller really did what the narration claims.

use std::time::Duration;

/// The demo Rollout's name (from `examples/rollouts-demo-analysis.yaml`).
pub const ROLLOUT: &str = "rollouts-demo";
/// Its container's name.
pub const CONTAINER: &str = "rollouts-demo";
/// The first release.
pub const BLUE: &str = "argoproj/rollouts-demo:blue";
/// A healthy release: the analysis passes.
pub const YELLOW: &str = "argoproj/rollouts-demo:yellow";
/// A broken release: its pods answer 30% of requests with HTTP 500 (`bad-*` demo apps).
pub const BAD_YELLOW: &str = "argoproj/rollouts-demo:bad-yellow";

/// How long the Rollout sits at the manual gate before the demo promotes it, so the paused
/// state can be seen.
pub const PROMOTE_AFTER: Duration = Duration::from_millis(1500);
/// The pause between the good release ending and the bad one starting.
pub const NEXT_RELEASE_AFTER: Duration = Duration::from_secs(1);

/// The parts of the story, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// blue is deployed.
    Deploy,
    /// blue → yellow: analysis passes, promoted, Healthy.
    GoodRelease,
    /// yellow → bad-yellow: analysis fails, aborted, Degraded.
    BadRelease,
}

impl Part {
    /// Every part in order.
    pub const ALL: [Part; 3] = [Part::Deploy, Part::GoodRelease, Part::BadRelease];

    /// What the part is, for the summary table.
    pub fn title(self) -> &'static str {
        match self {
            Part::Deploy => "deploy blue",
            Part::GoodRelease => "blue → yellow: analysis passed, promoted",
            Part::BadRelease => "yellow → bad-yellow: analysis failed, aborted",
        }
    }
}

/// A narrated state, in story order ([`Beat::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Beat {
    /// blue runs, Healthy, 2/2 ready.
    BlueHealthy,
    /// The yellow canary is ready and the canary Ingress sends it 20%.
    YellowCanary,
    /// An AnalysisRun for the yellow pods exists.
    YellowAnalysisStarted,
    /// It ended Successful.
    YellowAnalysisPassed,
    /// Paused at the `pause: {}` step.
    YellowPaused,
    /// Canary weight 40 after the promotion.
    YellowWeight40,
    /// Canary weight 60.
    YellowWeight60,
    /// Canary weight 80.
    YellowWeight80,
    /// yellow is stable and Healthy.
    YellowHealthy,
    /// The bad-yellow canary is ready and gets 20%.
    BadCanary,
    /// An AnalysisRun for the bad-yellow pods exists.
    BadAnalysisStarted,
    /// It ended Failed.
    BadAnalysisFailed,
    /// The Rollout aborted and the canary weight is back to 0.
    BadAborted,
    /// The Rollout is Degraded with yellow still stable.
    BadDegraded,
}

impl Beat {
    /// Every beat in the order it must happen.
    pub const ALL: [Beat; 14] = [
        Beat::BlueHealthy,
        Beat::YellowCanary,
        Beat::YellowAnalysisStarted,
        Beat::YellowAnalysisPassed,
        Beat::YellowPaused,
        Beat::YellowWeight40,
        Beat::YellowWeight60,
        Beat::YellowWeight80,
        Beat::YellowHealthy,
        Beat::BadCanary,
        Beat::BadAnalysisStarted,
        Beat::BadAnalysisFailed,
        Beat::BadAborted,
        Beat::BadDegraded,
    ];

    /// The fixed narration line of the beat (details follow it in parentheses).
    pub fn title(self) -> &'static str {
        match self {
            Beat::BlueHealthy => "blue is live: Healthy, all traffic on stable",
            Beat::YellowCanary => "canary yellow takes 20% of the traffic",
            Beat::YellowAnalysisStarted => "analysis started: success rate of the yellow pods",
            Beat::YellowAnalysisPassed => "analysis passed: yellow answers >= 99% of requests",
            Beat::YellowPaused => "paused at the manual gate (CanaryPauseStep)",
            Beat::YellowWeight40 => "canary yellow takes 40% of the traffic",
            Beat::YellowWeight60 => "canary yellow takes 60% of the traffic",
            Beat::YellowWeight80 => "canary yellow takes 80% of the traffic",
            Beat::YellowHealthy => "yellow promoted: Healthy, yellow is the new stable",
            Beat::BadCanary => "canary bad-yellow takes 20% of the traffic",
            Beat::BadAnalysisStarted => "analysis started: success rate of the bad-yellow pods",
            Beat::BadAnalysisFailed => "analysis failed: bad-yellow answers HTTP 500s",
            Beat::BadAborted => "aborted automatically: traffic back to stable (canary weight 0)",
            Beat::BadDegraded => "Degraded: the cluster runs yellow while Git asks for bad-yellow",
        }
    }

    /// The `get rollout` status icon that goes with the beat.
    pub fn icon(self) -> &'static str {
        use crate::cli::get::icon;
        match self {
            Beat::BlueHealthy | Beat::YellowAnalysisPassed | Beat::YellowHealthy => icon::OK,
            Beat::YellowPaused => icon::PAUSED,
            Beat::BadAnalysisFailed | Beat::BadAborted | Beat::BadDegraded => icon::BAD,
            _ => icon::PROGRESSING,
        }
    }

    /// The part of the story the beat belongs to.
    pub fn part(self) -> Part {
        match self {
            Beat::BlueHealthy => Part::Deploy,
            Beat::BadCanary
            | Beat::BadAnalysisStarted
            | Beat::BadAnalysisFailed
            | Beat::BadAborted
            | Beat::BadDegraded => Part::BadRelease,
            _ => Part::GoodRelease,
        }
    }

    /// The operator's move once the beat is reached, and how long after.
    fn then(self) -> Option<(Action, Duration)> {
        match self {
            Beat::BlueHealthy => Some((Action::SetImage(YELLOW), Duration::ZERO)),
            Beat::YellowPaused => Some((Action::Promote, PROMOTE_AFTER)),
            Beat::YellowHealthy => Some((Action::SetImage(BAD_YELLOW), NEXT_RELEASE_AFTER)),
            _ => None,
        }
    }
}

/// A move of the operator, as the plugin command a person would type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Change the Rollout's image (a new release; with GitOps, a commit).
    SetImage(&'static str),
    /// Leave the indefinite pause (`kubectl davy promote`).
    Promote,
}

impl Action {
    /// The equivalent command line.
    pub fn command(self) -> String {
        match self {
            Action::SetImage(image) => {
                format!("kubectl davy set image {ROLLOUT} {CONTAINER}={image}")
            }
            Action::Promote => format!("kubectl davy promote {ROLLOUT}"),
        }
    }

    /// The part of the story the move starts or belongs to.
    pub fn part(self) -> Part {
        match self {
            Action::SetImage(BAD_YELLOW) => Part::BadRelease,
            _ => Part::GoodRelease,
        }
    }
}

/// A ReplicaSet of the Rollout, as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaSetState {
    /// Its `rollouts-pod-template-hash`.
    pub hash: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
}

/// An AnalysisRun of the Rollout, as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunState {
    /// Its name.
    pub name: String,
    /// Its `rollouts-pod-template-hash` label: the pods it measures.
    pub hash: String,
    /// `status.phase` (empty before the first reconcile).
    pub phase: String,
    /// The last measurement's value, if any.
    pub last_value: Option<String>,
    /// How many measurements were taken.
    pub measurements: usize,
}

/// What the API shows about the demo at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `status.phase` of the Rollout.
    pub phase: String,
    /// `status.message`.
    pub message: String,
    /// The image of the Rollout's pod template (what "Git" asks for).
    pub image: String,
    /// `status.stableRS`.
    pub stable_hash: String,
    /// `status.currentPodHash`.
    pub current_hash: String,
    /// `status.abort`.
    pub abort: bool,
    /// A `CanaryPauseStep` pause condition is present.
    pub paused_at_step: bool,
    /// `canary-weight` of the canary Ingress; `None` while there is none.
    pub canary_weight: Option<i32>,
    /// The Rollout's ReplicaSets.
    pub replica_sets: Vec<ReplicaSetState>,
    /// The Rollout's AnalysisRuns.
    pub analysis_runs: Vec<RunState>,
}

impl Observed {
    fn replica_set(&self, hash: &str) -> Option<&ReplicaSetState> {
        self.replica_sets.iter().find(|rs| rs.hash == hash)
    }

    fn ready(&self, hash: &str) -> i32 {
        self.replica_set(hash).map_or(0, |rs| rs.ready)
    }

    fn run_for(&self, hash: &str) -> Option<&RunState> {
        self.analysis_runs.iter().find(|run| run.hash == hash)
    }

    /// A one-line description, for "last seen" in failure messages.
    pub fn describe(&self) -> String {
        let weight = self
            .canary_weight
            .map_or_else(|| "none".to_string(), |w| w.to_string());
        let runs: Vec<String> = self
            .analysis_runs
            .iter()
            .map(|run| format!("{}={}", run.name, display_phase(&run.phase)))
            .collect();
        format!(
            "phase={} image={} stable={} current={} abort={} canary-weight={} analysis-runs=[{}]",
            display_phase(&self.phase),
            self.image,
            self.stable_hash,
            self.current_hash,
            self.abort,
            weight,
            runs.join(", ")
        )
    }
}

fn display_phase(phase: &str) -> &str {
    if phase.is_empty() { "-" } else { phase }
}

/// Hashes and names learned as the story goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Memory {
    blue: String,
    yellow: String,
    bad: String,
}

/// One line of the story: a beat reached or a move made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Time since the demo started.
    pub at: Duration,
    /// What happened.
    pub what: Happened,
    /// Details seen at that moment (hash, value, …); may be empty.
    pub detail: String,
}

/// A beat or a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happened {
    /// A narrated state was observed.
    Beat(Beat),
    /// The demo made a move.
    Action(Action),
}

/// The story's progress.
#[derive(Debug, Clone, Default)]
pub struct Script {
    next: usize,
    memory: Memory,
    log: Vec<Entry>,
    /// The move due next and when.
    due: Option<(Action, Duration)>,
}

impl Script {
    /// A story at its start.
    pub fn new() -> Script {
        Script::default()
    }

    /// Takes in one observation at `now`: returns the new entries (beats reached, then a move
    /// that is due, which the caller must carry out). Several beats may be reached at once.
    pub fn observe(&mut self, observed: &Observed, now: Duration) -> Vec<Entry> {
        let mut new = Vec::new();
        while let Some(beat) = self.waiting_for() {
            let Some(detail) = self.reached(beat, observed) else {
                break;
            };
            self.next += 1;
            if let Some((action, delay)) = beat.then() {
                self.due = Some((action, now + delay));
            }
            new.push(Entry {
                at: now,
                what: Happened::Beat(beat),
                detail,
            });
        }
        if let Some((action, at)) = self.due
            && now >= at
        {
            self.due = None;
            new.push(Entry {
                at: now,
                what: Happened::Action(action),
                detail: String::new(),
            });
        }
        self.log.extend(new.iter().cloned());
        new
    }

    /// The next beat the story waits for; `None` when it is complete.
    pub fn waiting_for(&self) -> Option<Beat> {
        Beat::ALL.get(self.next).copied()
    }

    /// Whether every beat was reached.
    pub fn finished(&self) -> bool {
        self.waiting_for().is_none()
    }

    /// Everything that happened so far, in order.
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// Whether `beat` is reached in `o`; its details when it is (learning hashes on the way).
    fn reached(&mut self, beat: Beat, o: &Observed) -> Option<String> {
        let m = &mut self.memory;
        match beat {
            Beat::BlueHealthy => {
                let ok = o.phase == "Healthy"
                    && o.image == BLUE
                    && !o.stable_hash.is_empty()
                    && o.stable_hash == o.current_hash
                    && o.ready(&o.stable_hash) >= 2;
                ok.then(|| {
                    m.blue = o.stable_hash.clone();
                    format!("stable {ROLLOUT}-{}, 2/2 pods ready", m.blue)
                })
            }
            Beat::YellowCanary => {
                let hash = o.current_hash.clone();
                let ok = o.image == YELLOW
                    && !hash.is_empty()
                    && hash != m.blue
                    && o.canary_weight == Some(20)
                    && o.ready(&hash) >= 1;
                ok.then(|| {
                    m.yellow = hash;
                    format!("canary {ROLLOUT}-{}, 1 pod ready", m.yellow)
                })
            }
            Beat::YellowAnalysisStarted => started(o, &m.yellow),
            Beat::YellowAnalysisPassed => ended(o, &m.yellow, "Successful"),
            Beat::YellowPaused => {
                (o.phase == "Paused" && o.paused_at_step && o.current_hash == m.yellow)
                    .then(|| "waiting for a person to promote".to_string())
            }
            Beat::YellowWeight40 => weight(o, &m.yellow, 40),
            Beat::YellowWeight60 => weight(o, &m.yellow, 60),
            Beat::YellowWeight80 => weight(o, &m.yellow, 80),
            Beat::YellowHealthy => {
                (o.phase == "Healthy" && o.stable_hash == m.yellow && o.ready(&m.yellow) >= 2)
                    .then(|| format!("stable {ROLLOUT}-{}, 2/2 pods ready", m.yellow))
            }
            Beat::BadCanary => {
                let hash = o.current_hash.clone();
                let ok = o.image == BAD_YELLOW
                    && !hash.is_empty()
                    && hash != m.yellow
                    && hash != m.blue
                    && o.canary_weight == Some(20)
                    && o.ready(&hash) >= 1;
                ok.then(|| {
                    m.bad = hash;
                    format!("canary {ROLLOUT}-{}, 1 pod ready", m.bad)
                })
            }
            Beat::BadAnalysisStarted => started(o, &m.bad),
            Beat::BadAnalysisFailed => ended(o, &m.bad, "Failed"),
            Beat::BadAborted => (o.abort && o.canary_weight == Some(0))
                .then(|| format!("stable {ROLLOUT}-{} serves everything", m.yellow)),
            Beat::BadDegraded => (o.phase == "Degraded" && o.stable_hash == m.yellow).then(|| {
                if o.message.is_empty() {
                    "revert the commit to make it Healthy again".to_string()
                } else {
                    o.message.clone()
                }
            }),
        }
    }
}

fn started(o: &Observed, hash: &str) -> Option<String> {
    o.run_for(hash)
        .map(|run| format!("AnalysisRun {}", run.name))
}

fn ended(o: &Observed, hash: &str, phase: &str) -> Option<String> {
    let run = o.run_for(hash).filter(|run| run.phase == phase)?;
    Some(match &run.last_value {
        Some(value) => format!(
            "success rate {} after {} measurement{}",
            short_value(value),
            run.measurements,
            if run.measurements == 1 { "" } else { "s" }
        ),
        None => format!("AnalysisRun {}", run.name),
    })
}

fn weight(o: &Observed, hash: &str, weight: i32) -> Option<String> {
    (o.current_hash == hash && o.canary_weight == Some(weight))
        .then(|| format!("canary-weight: {weight} on the canary Ingress"))
}

/// A measurement value with at most three decimals (`0.7142857` → `0.714`).
fn short_value(value: &str) -> String {
    match value.trim_matches(|c| c == '[' || c == ']').parse::<f64>() {
        Ok(v) if v.is_finite() => {
            let text = format!("{v:.3}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            text.to_string()
        }
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(hash: &str, replicas: i32, ready: i32) -> ReplicaSetState {
        ReplicaSetState {
            hash: hash.into(),
            replicas,
            ready,
        }
    }

    fn run(hash: &str, phase: &str, value: Option<&str>, n: usize) -> RunState {
        RunState {
            name: format!("{ROLLOUT}-{hash}-2"),
            hash: hash.into(),
            phase: phase.into(),
            last_value: value.map(String::from),
            measurements: n,
        }
    }

    fn blue_healthy() -> Observed {
        Observed {
            phase: "Healthy".into(),
            image: BLUE.into(),
            stable_hash: "b1".into(),
            current_hash: "b1".into(),
            replica_sets: vec![rs("b1", 2, 2)],
            ..Observed::default()
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn beats(entries: &[Entry]) -> Vec<Beat> {
        entries
            .iter()
            .filter_map(|e| match e.what {
                Happened::Beat(b) => Some(b),
                Happened::Action(_) => None,
            })
            .collect()
    }

    fn actions(entries: &[Entry]) -> Vec<Action> {
        entries
            .iter()
            .filter_map(|e| match e.what {
                Happened::Action(a) => Some(a),
                Happened::Beat(_) => None,
            })
            .collect()
    }

    #[test]
    fn nothing_happens_before_blue_is_ready() {
        let mut script = Script::new();
        let mut o = blue_healthy();
        o.replica_sets = vec![rs("b1", 2, 1)];
        assert!(script.observe(&o, secs(1)).is_empty());
        assert_eq!(script.waiting_for(), Some(Beat::BlueHealthy));
        o.phase = "Progressing".into();
        o.replica_sets = vec![rs("b1", 2, 2)];
        assert!(script.observe(&o, secs(2)).is_empty());
    }

    #[test]
    fn blue_healthy_sets_the_yellow_image_at_once() {
        let mut script = Script::new();
        let new = script.observe(&blue_healthy(), secs(3));
        assert_eq!(beats(&new), vec![Beat::BlueHealthy]);
        assert_eq!(actions(&new), vec![Action::SetImage(YELLOW)]);
        assert_eq!(new[0].detail, "stable rollouts-demo-b1, 2/2 pods ready");
        assert_eq!(new[1].at, secs(3));
        assert_eq!(
            Action::SetImage(YELLOW).command(),
            "kubectl davy set image rollouts-demo rollouts-demo=argoproj/rollouts-demo:yellow"
        );
        // The move is made once.
        assert!(script.observe(&blue_healthy(), secs(4)).is_empty());
    }

    /// The whole story, observation by observation.
    #[test]
    fn the_full_story() {
        let mut script = Script::new();
        script.observe(&blue_healthy(), secs(1));

        // The new image is written, but the canary is not ready yet: nothing.
        let mut o = blue_healthy();
        o.phase = "Progressing".into();
        o.image = YELLOW.into();
        o.current_hash = "y1".into();
        o.canary_weight = Some(20);
        o.replica_sets = vec![rs("b1", 2, 2), rs("y1", 1, 0)];
        assert!(script.observe(&o, secs(2)).is_empty());

        o.replica_sets = vec![rs("b1", 2, 2), rs("y1", 1, 1)];
        o.analysis_runs = vec![run("y1", "Running", None, 0)];
        let new = script.observe(&o, secs(3));
        assert_eq!(
            beats(&new),
            vec![Beat::YellowCanary, Beat::YellowAnalysisStarted]
        );
        assert_eq!(new[1].detail, "AnalysisRun rollouts-demo-y1-2");

        o.analysis_runs = vec![run("y1", "Successful", Some("1"), 2)];
        o.phase = "Paused".into();
        o.paused_at_step = true;
        let new = script.observe(&o, secs(7));
        assert_eq!(
            beats(&new),
            vec![Beat::YellowAnalysisPassed, Beat::YellowPaused]
        );
        assert_eq!(new[0].detail, "success rate 1 after 2 measurements");
        assert!(
            actions(&new).is_empty(),
            "promotion waits {PROMOTE_AFTER:?}"
        );
        assert!(script.observe(&o, secs(8)).is_empty());
        let new = script.observe(&o, secs(9));
        assert_eq!(actions(&new), vec![Action::Promote]);

        o.phase = "Progressing".into();
        o.paused_at_step = false;
        for (w, beat) in [
            (40, Beat::YellowWeight40),
            (60, Beat::YellowWeight60),
            (80, Beat::YellowWeight80),
        ] {
            o.canary_weight = Some(w);
            assert_eq!(beats(&script.observe(&o, secs(10))), vec![beat]);
        }

        o.phase = "Healthy".into();
        o.stable_hash = "y1".into();
        o.canary_weight = Some(0);
        o.replica_sets = vec![rs("b1", 0, 0), rs("y1", 2, 2)];
        let new = script.observe(&o, secs(16));
        assert_eq!(beats(&new), vec![Beat::YellowHealthy]);
        assert!(actions(&new).is_empty());
        let new = script.observe(&o, secs(17));
        assert_eq!(actions(&new), vec![Action::SetImage(BAD_YELLOW)]);
        assert_eq!(Action::SetImage(BAD_YELLOW).part(), Part::BadRelease);

        o.image = BAD_YELLOW.into();
        o.current_hash = "r1".into();
        o.phase = "Progressing".into();
        o.canary_weight = Some(20);
        o.replica_sets = vec![rs("y1", 2, 2), rs("r1", 1, 1)];
        o.analysis_runs.push(run("r1", "Running", None, 0));
        assert_eq!(
            beats(&script.observe(&o, secs(18))),
            vec![Beat::BadCanary, Beat::BadAnalysisStarted]
        );

        // The run failed, but the controller has not aborted yet.
        o.analysis_runs[1] = run("r1", "Failed", Some("0.7142857"), 1);
        let new = script.observe(&o, secs(20));
        assert_eq!(beats(&new), vec![Beat::BadAnalysisFailed]);
        assert_eq!(new[0].detail, "success rate 0.714 after 1 measurement");

        // Aborted, but the weight still reads 20: not yet.
        o.abort = true;
        assert!(script.observe(&o, secs(21)).is_empty());
        o.canary_weight = Some(0);
        o.phase = "Degraded".into();
        o.message = "RolloutAborted: Rollout aborted update to revision 3".into();
        let new = script.observe(&o, secs(21));
        assert_eq!(beats(&new), vec![Beat::BadAborted, Beat::BadDegraded]);
        assert_eq!(new[1].detail, o.message);
        assert!(script.finished());
        assert_eq!(script.log().len(), Beat::ALL.len() + 3);
    }

    #[test]
    fn a_failed_run_for_the_good_release_is_not_a_pass() {
        let mut script = Script::new();
        script.observe(&blue_healthy(), secs(1));
        let mut o = blue_healthy();
        o.image = YELLOW.into();
        o.current_hash = "y1".into();
        o.canary_weight = Some(20);
        o.replica_sets = vec![rs("b1", 2, 2), rs("y1", 1, 1)];
        o.analysis_runs = vec![run("y1", "Failed", Some("0.5"), 1)];
        script.observe(&o, secs(2));
        assert_eq!(script.waiting_for(), Some(Beat::YellowAnalysisPassed));
        assert!(
            o.describe()
                .contains("canary-weight=20 analysis-runs=[rollouts-demo-y1-2=Failed]"),
            "{}",
            o.describe()
        );
    }

    #[test]
    fn a_run_for_another_hash_does_not_count() {
        let mut script = Script::new();
        script.observe(&blue_healthy(), secs(1));
        let mut o = blue_healthy();
        o.image = YELLOW.into();
        o.current_hash = "y1".into();
        o.canary_weight = Some(20);
        o.replica_sets = vec![rs("b1", 2, 2), rs("y1", 1, 1)];
        o.analysis_runs = vec![run("b1", "Running", None, 0)];
        assert_eq!(
            beats(&script.observe(&o, secs(2))),
            vec![Beat::YellowCanary]
        );
        assert_eq!(script.waiting_for(), Some(Beat::YellowAnalysisStarted));
    }

    #[test]
    fn every_beat_belongs_to_a_part_in_order() {
        let parts: Vec<Part> = Beat::ALL.iter().map(|b| b.part()).collect();
        let mut sorted = parts.clone();
        sorted.sort();
        assert_eq!(parts, sorted);
        assert_eq!(short_value("0.70"), "0.7");
        assert_eq!(short_value("[0.5]"), "0.5");
        assert_eq!(short_value("NaN"), "NaN");
    }
}
