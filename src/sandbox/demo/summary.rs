//! The closing summary of `davy demo` (pure): how long each part of the story took, every
//! narrated state with its time, the traffic the demo apps answered, and the verdict.

use std::time::Duration;

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

/// The summary text.
pub fn render(
    log: &[Entry],
    total: Duration,
    outcome: &Outcome,
    traffic: Option<&LoadReport>,
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

    if let Some(report) = traffic {
        out.push('\n');
        out.push_str(&traffic_line(report));
        out.push('\n');
    }
    out.push('\n');
    match outcome {
        Outcome::Complete => out.push_str(&format!(
            "demo complete: all {} narrated states were observed through the API\n",
            Beat::ALL.len()
        )),
        Outcome::Incomplete { missing, reason } => out.push_str(&format!(
            "demo FAILED: never observed \"{}\": {reason}\n",
            missing.title()
        )),
    }
    out
}

/// `traffic: 1200 requests; blue 200×400; yellow 200×700; bad-yellow 200×70 500×30`.
pub fn traffic_line(report: &LoadReport) -> String {
    let mut parts = vec![format!("traffic: {} requests", report.sent)];
    for (version, by_code) in &report.answers {
        let codes: Vec<String> = by_code
            .iter()
            .map(|(code, n)| format!("{code}×{n}"))
            .collect();
        parts.push(format!("{version} {}", codes.join(" ")));
    }
    if report.unroutable > 0 {
        parts.push(format!("{} with no ready backend", report.unroutable));
    }
    if report.transport_errors > 0 {
        parts.push(format!("{} without an answer", report.transport_errors));
    }
    parts.join("; ")
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
    fn traffic() {
        let mut report = LoadReport {
            sent: 10,
            unroutable: 1,
            ..LoadReport::default()
        };
        report
            .answers
            .insert("blue".into(), BTreeMap::from([(200, 6)]));
        report
            .answers
            .insert("bad-yellow".into(), BTreeMap::from([(200, 2), (500, 1)]));
        assert_eq!(
            traffic_line(&report),
            "traffic: 10 requests; bad-yellow 200×2 500×1; blue 200×6; 1 with no ready backend"
        );
    }
}
