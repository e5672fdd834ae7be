//! Baseline-vs-canary statistics: a canary sample against its baseline, as Kayenta's
//! NetflixACAJudge judges them, with R's Wilcoxon rank-sum numbers. Pure: no I/O, no clock.
//! The `davy/judge` provider (`providers::judge`) and the `davy judge` command use them.
//!
//! - [`transform`]: NaN strategy, R-7 percentiles, IQR outlier fence, descriptive statistics.
//! - [`mann_whitney`]: the rank-sum test, p-value, shift estimate and interval (R-exact).
//! - [`zeroin`]: R's `uniroot` root finder, which the interval search depends on.
//! - [`classify`]: per-metric rules (no data, identical data, tolerance band, effect size,
//!   direction, criticality).
//! - [`score`]: groups, weights, summary score, overrides, Pass / Marginal / Fail.

pub mod classify;
pub mod mann_whitney;
pub mod score;
pub mod transform;
pub mod zeroin;

#[cfg(test)]
mod rules_tests;

pub use classify::{
    Classification, Direction, EffectMeasure, EffectSizeConfig, MetricConfig, MetricJudgement,
    TestStatistics, classify,
};
pub use mann_whitney::{RankSum, StatsError, WilcoxonResult, wilcoxon};
pub use score::{ScoreClassification, Scorecard, ScoredMetric, Thresholds, score};
pub use transform::{NanStrategy, OutlierConfig, OutlierStrategy};
