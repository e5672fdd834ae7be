//! Analysis: the pure core that judges AnalysisRuns (spec §4) and the metric providers (§5).

pub mod args;
pub mod providers;
