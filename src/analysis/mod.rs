//! Analysis: measurement verdicts, metric and run phases, scheduling, and metric providers.
//!
//! The core (everything but `providers` and `runner`) is pure: values in, values out, the
//! clock a parameter. `providers` talk to the outside world behind one trait; `runner` is the
//! thin async executor that joins the two for the controller and `davy analyze`.

/// `{{args.x}}` substitution lives in the api layer so that validation and lint share it.
pub use crate::api::args;
pub mod measure;
pub mod metric_phase;
pub mod providers;
pub mod reconcile;
pub mod rules;
pub mod run_phase;
pub mod runner;
pub mod schedule;
pub mod stats;
pub mod templates;
