//! The rollout core: pure decisions about a canary Rollout. [`plan::plan`] turns an
//! [`observed::Observed`] world and a time into a [`plan::Plan`] of writes; no I/O and no clock.
//!
//! Modules in pipeline order: `observed` (inputs and lookups), `context` (the pipeline),
//! `replicaset`, `restart`, `services`, `weights`, `analysis`/`analysis_run`, `steps`,
//! `pause`, `status`, `conditions`, `phase`; replica math in `replicas*`, hashes in `hash`;
//! Davy's promotion windows (annotation format and clock arithmetic) in `windows`.

pub mod analysis;
pub mod analysis_run;
pub mod conditions;
pub(crate) mod context;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod hash;
pub mod observed;
pub mod pause;
pub mod phase;
pub mod plan;
pub mod replicas;
pub mod replicaset;
pub mod restart;
pub mod services;
pub mod status;
pub mod steps;
pub mod weights;
pub mod windows;

pub use observed::Observed;
pub use plan::{Event, EventType, Plan, PlanError, TrafficWeight, Write, plan};
