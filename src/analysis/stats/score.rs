//! Roll-up of per-metric verdicts into group scores, a weighted summary score and the final
//! Pass / Marginal / Fail, with Kayenta's overrides (critical failure, half the metrics without
//! data) — `WeightedSumScorer` and `ScoringHelper`, `reference/ecosystem-anchors.md` §3.3.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::classify::{Classification, MetricJudgement};

/// One metric as the scorer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredMetric {
    /// The metric's name.
    pub name: String,
    /// The groups the metric counts in (a metric may belong to several).
    pub groups: Vec<String>,
    /// The metric's verdict.
    pub classification: Classification,
    /// The judgement's critical flag (not merely "configured critical").
    pub critical: bool,
    /// Muted metrics are reported but removed before scoring.
    pub muted: bool,
}

impl ScoredMetric {
    /// Builds the scorer's view of a judged metric.
    pub fn new(name: &str, groups: &[String], muted: bool, judgement: &MetricJudgement) -> Self {
        Self {
            name: name.to_string(),
            groups: groups.to_vec(),
            classification: judgement.classification,
            critical: judgement.critical,
            muted,
        }
    }
}

/// Score thresholds (`CanaryClassifierThresholdsConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// A score at or above this passes.
    pub pass: f64,
    /// A score at or above this (and below `pass`) is marginal.
    pub marginal: f64,
}

impl Default for Thresholds {
    /// The values of Kayenta's API examples.
    fn default() -> Self {
        Self {
            pass: 75.0,
            marginal: 50.0,
        }
    }
}

/// The overall verdict of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScoreClassification {
    /// At or above the pass threshold.
    Pass,
    /// Between the marginal and the pass threshold.
    Marginal,
    /// Below the marginal threshold.
    Fail,
}

/// Classifies a score: ≥ pass → Pass, ≥ marginal → Marginal, else Fail.
pub fn classify_score(score: f64, thresholds: Thresholds) -> ScoreClassification {
    if score >= thresholds.pass {
        ScoreClassification::Pass
    } else if score >= thresholds.marginal {
        ScoreClassification::Marginal
    } else {
        ScoreClassification::Fail
    }
}

/// One group's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupScore {
    /// The group's name.
    pub name: String,
    /// 100 × Pass / (Pass + High + Low + NodataFailMetric); 100 for a group with no data.
    pub score: f64,
    /// Every metric of the group was Nodata or Error.
    pub no_data: bool,
    /// The weight used in the summary, in percent.
    pub weight: f64,
}

/// The final result of a judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scorecard {
    /// Each group's score.
    pub groups: Vec<GroupScore>,
    /// Weighted summary score in [0, 100], rounded to 2 decimals (0 when overridden).
    pub score: f64,
    /// The verdict of `score` under the thresholds.
    pub classification: ScoreClassification,
    /// Why the score was forced to 0, if it was.
    pub reason: Option<String>,
}

/// Scores judged metrics.
///
/// `weights` maps group name → weight in percent. Groups without a weight share what the
/// explicit weights leave of 100 equally: (100 − Σ weights) / (number of unweighted groups).
/// Overrides, in order: a critical-flagged metric that is not Pass → score 0; Nodata for at least
/// half of the unmuted metrics → score 0.
pub fn score(
    metrics: &[ScoredMetric],
    weights: &BTreeMap<String, f64>,
    thresholds: Thresholds,
) -> Scorecard {
    let scored: Vec<&ScoredMetric> = metrics.iter().filter(|m| !m.muted).collect();

    // Groups in order of first appearance, with (pass, counted) tallies.
    let mut order: Vec<&str> = Vec::new();
    let mut tallies: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for m in &scored {
        for g in &m.groups {
            let tally = tallies.entry(g.as_str()).or_insert_with(|| {
                order.push(g.as_str());
                (0, 0)
            });
            match m.classification {
                Classification::Pass => {
                    tally.0 += 1;
                    tally.1 += 1;
                }
                Classification::High | Classification::Low | Classification::NodataFailMetric => {
                    tally.1 += 1
                }
                Classification::Nodata | Classification::Error => {}
            }
        }
    }

    let explicit: f64 = weights.values().sum();
    let unweighted = order.iter().filter(|g| !weights.contains_key(**g)).count();
    let shared = if unweighted > 0 {
        (100.0 - explicit) / unweighted as f64
    } else {
        0.0
    };

    let groups: Vec<GroupScore> = order
        .iter()
        .map(|&name| {
            let (pass, counted) = tallies.get(name).copied().unwrap_or((0, 0));
            let no_data = counted == 0;
            GroupScore {
                name: name.to_string(),
                score: if no_data {
                    100.0
                } else {
                    100.0 * f64::from(pass) / f64::from(counted)
                },
                no_data,
                weight: weights.get(name).copied().unwrap_or(shared),
            }
        })
        .collect();
    let summary: f64 = groups.iter().map(|g| g.score * g.weight / 100.0).sum();
    let summary = (summary * 100.0).round() / 100.0;

    let failed_critical: Vec<&str> = scored
        .iter()
        .filter(|m| m.critical && m.classification != Classification::Pass)
        .map(|m| m.name.as_str())
        .collect();
    let nodata = scored
        .iter()
        .filter(|m| m.classification == Classification::Nodata)
        .count();

    let reason = if !failed_critical.is_empty() {
        Some(format!(
            "Canary Failed: critical metric(s) {}",
            failed_critical.join(", ")
        ))
    } else if !scored.is_empty() && 2 * nodata >= scored.len() {
        Some("Canary Failed: 50% or more metrics returned NODATA".to_string())
    } else {
        None
    };
    let score = if reason.is_some() { 0.0 } else { summary };
    Scorecard {
        groups,
        score,
        classification: classify_score(score, thresholds),
        reason,
    }
}
