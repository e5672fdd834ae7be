//! The closing summary of `davy demo` (pure): how long each part of the story took, every
//! narrated state with its time, the traffic the demo apps answered, and the verdict.

use std::time::{Duration, Instant};

use super::script::{Beat, Entry, Happened, Part};
use super::view::format_at;
use crate::cli::get::tree::TabWriter;
use crate::sandbox::load_generator::LoadReport;

/// How the story ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every beat was observed.
    Complete,
    /// The story stopped before `missing` was observed.
    Incomplete {
        /// The first beat not observed.
        missing: Beat,
        /// Why it stopped (timeout, interruption, an API error) and the last state seen.
        reason: String,
    },
}

/// When each part started and ended, from the log: a part starts at its first entry (the
/// deployment at 0) and ends at its last beat, when that is the part's final beat.
pub fn part_spans(log: &[Entry]) -> Vec<(Part, Duration, Option<Duration>)> {
    Part::ALL
        .iter()
        .map(|&part| {
            let start = if part == Part::Deploy {
                Some(Duration::ZERO)
            } else {
                log.iter().find(|e| entry_part(e) == part).map(|e| e.at)
            };
            let last_beat = Beat::ALL.iter().rev().find(|b| b.part() == part).copied();
            let end = log
                .iter()
                .find(|e| matches!(e.what, Happened::Beat(b) if Some(b) == last_beat))
                .map(|e| e.at);
            (
                part,
                start.unwrap_or(Duration::ZERO),
                end.filter(|_| start.is_some()),
            )
        })
        .collect()
}

fn entry_part(entry: &Entry) -> Part {
    match entry.what {
        Happened::Beat(beat) => beat.part(),
        Happened::Action(action) => action.part(),
    }
}

/// The traffic the demo sent and the instant it started, for the summary.
#[derive(Debug, Clone, Copy)]
pub struct Traffic<'a> {
    /// What the load generator saw.
    pub report: &'a LoadReport,
    /// When the demo started (times in the summary are counted from there).
    pub demo_start: Instant,
}

/// The summary text. The verdict is a failure when the story is incomplete or when any
/// request found no ready backend (see [`passed`]).
pub fn render(
    log: &[Entry],
    total: Duration,
    outcome: &Outcome,
    traffic: Option<Traffic<'_>>,
) -> String {
    let mut out = String::from("\nSummary\n\n");
    let mut parts = TabWriter::default();
    parts.line("PART\tTOOK");
    for (part, start, end) in part_spans(log) {
        let took = match end {
            Some(end) => format_at(end.saturating_sub(start)).trim().to_string(),
            None => "did not finish".to_string(),
        };
        parts.line(&format!("{}\t{took}", part.title()));
    }
    parts.line(&format!("total\t{}", format_at(total).trim()));
    out.push_str(&parts.finish());
    out.push('\n');

    let mut beats = TabWriter::default();
    beats.line("AT\tSTATE (observed through the API)");
    for beat in Beat::ALL {
        let at = log
            .iter()
            .find(|e| e.what == Happened::Beat(beat))
            .map_or_else(|| "   -  ".to_string(), |e| format_at(e.at));
        beats.line(&format!("{at}\t{}", beat.title()));
    }
    out.push_str(&beats.finish());

    if let Some(traffic) = traffic {
        out.push('\n');
        out.push_str(&traffic_lines(traffic.report));
    }
    out.push('\n');
    match outcome {
        Outcome::Incomplete { missing, reason } => out.push_str(&format!(
            "demo FAILED: never observed \"{}\": {reason}\n",
            missing.title()
        )),
        Outcome::Complete => match traffic.and_then(dropped) {
            Some(dropped) => {
                out.push_str(&format!("demo FAILED: {dropped}\n"));
            }
            None => out.push_str(&format!(
                "demo complete: all {} narrated states were observed through the API{}\n",
                Beat::ALL.len(),
                if traffic.is_some() {
                    ", no request found no ready backend"
                } else {
                    ""
                }
            )),
        },
    }
    out
}

/// Whether the demo passed: the story is complete and no request found no ready backend.
pub fn passed(outcome: &Outcome, traffic: Option<Traffic<'_>>) -> bool {
    *outcome == Outcome::Complete && traffic.and_then(dropped).is_none()
}

/// `N requests found no ready backend (between 1.2s and 1.9s)…` when the rollout dropped
/// requests; `None` when it dropped none.
pub fn dropped(traffic: Traffic<'_>) -> Option<String> {
    let report = traffic.report;
    if report.unroutable == 0 {
        return None;
    }
    let when = report
        .unroutable_span
        .map(|(first, last)| {
            let at = |t: Instant| format_at(t.saturating_duration_since(traffic.demo_start));
            format!(" (between {} and {})", at(first).trim(), at(last).trim())
        })
        .unwrap_or_default();
    Some(format!(
        "{} request{} found no ready backend{when}: the rollout itself failed them",
        report.unroutable,
        if report.unroutable == 1 { "" } else { "s" }
    ))
}

/// The traffic by cause: answers per version and code, then the failures by what caused
/// them — a release's own HTTP 5xx, no ready backend (the rollout's fault), no answer at all.
pub fn traffic_lines(report: &LoadReport) -> String {
    let answers: Vec<String> = report
        .answers
        .iter()
        .map(|(version, by_code)| {
            let codes: Vec<String> = by_code
                .iter()
                .map(|(code, n)| format!("{code}×{n}"))
                .collect();
            format!("{version} {}", codes.join(" "))
        })
        .collect();
    let own = report.server_errors();
    let own_total: u64 = own.values().sum();
    let own_detail = if own.is_empty() {
        String::new()
    } else {
        let by: Vec<String> = own.iter().map(|(v, n)| format!("{v} {n}")).collect();
        format!(" ({})", by.join(", "))
    };
    let mut table = TabWriter::default();
    table.line(&format!(
        "traffic: {} requests\t{}",
        report.sent,
        if answers.is_empty() {
            "no answers".to_string()
        } else {
            answers.join("; ")
        }
    ));
    table.line(&format!(
        "  answered without error\t{}",
        report.answered_ok()
    ));
    if report.retried > 0 {
        table.line(&format!(
            "  answered by another pod after a failed connection (nginx retry)\t{}",
            report.retried
        ));
    }
    table.line(&format!(
        "  HTTP 5xx from the release's own pods\t{own_total}{own_detail}"
    ));
    table.line(&format!(
        "  no ready backend (caused by the rollout)\t{}",
        report.unroutable
    ));
    table.line(&format!(
        "  other failures (no answer from the pod)\t{}",
        report.transport_errors
    ));
    if report.abandoned > 0 {
        table.line(&format!(
            "  still in flight when the traffic stopped\t{}",
            report.abandoned
        ));
    }
    table.finish()
}

#[cfg(test)]
mod tests {
    use super::super::script::{Action, YELLOW};
    use super::*;
    use std::collections::BTreeMap;

    fn beat(s: u64, beat: Beat) -> Entry {
        Entry {
            at: Duration::from_secs(s),
            what: Happened::Beat(beat),
            detail: String::new(),
        }
    }

    #[test]
    fn spans_and_unfinished_parts() {
        let log = vec![
            beat(2, Beat::BlueHealthy),
            Entry {
                at: Duration::from_secs(2),
                what: Happened::Action(Action::SetImage(YELLOW)),
                detail: String::new(),
            },
            beat(4, Beat::YellowCanary),
        ];
        let spans = part_spans(&log);
        assert_eq!(
            spans,
            vec![
                (Part::Deploy, Duration::ZERO, Some(Duration::from_secs(2))),
                (Part::GoodRelease, Duration::from_secs(2), None),
                (Part::BadRelease, Duration::ZERO, None),
            ]
        );
        let outcome = Outcome::Incomplete {
            missing: Beat::YellowAnalysisStarted,
            reason: "timed out after 90s".into(),
        };
        let text = render(&log, Duration::from_secs(90), &outcome, None);
        assert!(!passed(&outcome, None));
        assert!(
            text.contains("deploy blue                                    2.0s\n"),
            "{text}"
        );
        assert!(text.contains("did not finish"), "{text}");
        assert!(
            text.contains("  4.0s  canary yellow takes 20% of the traffic\n"),
            "{text}"
        );
        assert!(text.contains(
            "demo FAILED: never observed \"analysis started: success rate of the yellow pods\": timed out after 90s"
        ));
    }

    #[test]
    fn traffic_by_cause() {
        let start = Instant::now();
        let mut report = LoadReport {
            sent: 12,
            transport_errors: 1,
            ..LoadReport::default()
        };
        report
            .answers
            .insert("blue".into(), BTreeMap::from([(200, 6)]));
        report
            .answers
            .insert("bad-yellow".into(), BTreeMap::from([(200, 2), (500, 1)]));
        let text = traffic_lines(&report);
        assert_eq!(
            text,
            "traffic: 12 requests                        bad-yellow 200×2 500×1; blue 200×6\n\
             \x20 answered without error                    8\n\
             \x20 HTTP 5xx from the release's own pods      1 (bad-yellow 1)\n\
             \x20 no ready backend (caused by the rollout)  0\n\
             \x20 other failures (no answer from the pod)   1\n"
        );
        let traffic = Traffic {
            report: &report,
            demo_start: start,
        };
        // A bad release's own errors do not fail the demo; a missing backend does.
        assert!(passed(&Outcome::Complete, Some(traffic)));
        report.unroutable = 2;
        report.unroutable_span = Some((
            start + Duration::from_millis(1200),
            start + Duration::from_millis(1900),
        ));
        let traffic = Traffic {
            report: &report,
            demo_start: start,
        };
        assert!(!passed(&Outcome::Complete, Some(traffic)));
        let text = render(
            &[],
            Duration::from_secs(9),
            &Outcome::Complete,
            Some(traffic),
        );
        assert!(
            text.ends_with(
                "demo FAILED: 2 requests found no ready backend (between 1.2s and 1.9s): the rollout itself failed them\n"
            ),
            "{text}"
        );
    }
}
