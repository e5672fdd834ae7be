//! Metric providers behind one trait, each in its own file.

pub mod kube_jsonpath;
pub mod scrape_query;
