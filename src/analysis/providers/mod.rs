//! Metric providers, one per file, and the pure conversions they share.

pub mod kube_jsonpath;
pub mod prometheus_result;
pub mod scrape_query;
