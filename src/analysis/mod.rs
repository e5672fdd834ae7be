//! Analysis: measurement verdicts, metric and run phases, scheduling, and metric providers.

pub mod judge;
pub mod providers;
