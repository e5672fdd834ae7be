//! The rollout core: pure decisions about a Rollout. [`plan()`] turns an [`observed::Observed`]
//! world and a time into a [`plan::Plan`] of writes; no I/O and no clock.
//!
//! Read it in pipeline order:
//! - `pipeline`: the entry point and the stages every strategy shares (deleted, invalid spec,
//!   strategy choice, ReplicaSets picked, strategy stage);
//! - `world`: what the stages read (`Inputs`, `ReplicaSets`, the read-only `View`);
//! - shared stages, each returning what it decided: `revision` (new ReplicaSet and revision),
//!   `restart`, `history`, `ephemeral` (role labels on ReplicaSets and their pods), `report`
//!   (conditions, phase and the status patch), `invalid_spec`;
//! - `canary/`: the canary strategy stage and its own stages (services, weights, analysis,
//!   scale, step, status);
//! - `bluegreen/`: the blue-green strategy stage and its own stages (services, pause, scale,
//!   analysis, status);
//! - `replicas/`: the replica math (spec §3.3), plain values in and out;
//! - leaves: `observed` (inputs and lookups), `plan` (the output vocabulary), `steps`,
//!   `pause`, `conditions`, `phase`, `runs`, `analysis_run` (building AnalysisRuns), `hash`,
//!   `windows` (Davy's promotion windows), `workload` (`spec.workloadRef`).

pub mod analysis_run;
pub(crate) mod bluegreen;
pub(crate) mod canary;
pub mod conditions;
pub mod ephemeral;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod hash;
pub(crate) mod history;
pub mod invalid_spec;
pub mod observed;
pub mod pause;
pub mod phase;
pub mod pipeline;
pub mod plan;
pub mod replicas;
pub(crate) mod report;
pub(crate) mod restart;
pub(crate) mod revision;
pub mod runs;
pub mod steps;
pub mod windows;
pub mod workload;
pub(crate) mod world;

pub use observed::Observed;
pub use pipeline::plan;
pub use plan::{Event, EventType, Plan, PlanError, TrafficWeight, Write};
