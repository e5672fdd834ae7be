//! Metric providers behind one trait, each in its own file.

pub mod scrape_query;
