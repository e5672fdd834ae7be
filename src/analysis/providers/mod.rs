//! Metric providers, one per file, and the pure conversions they share.

pub mod prometheus_result;
