//! Davy: analysis-driven progressive delivery for Kubernetes, a drop-in for the Argo Rollouts controller.
//!
//! Modules are layered (see `docs/architecture.md`): each may use the ones listed before it, never after.

pub mod analysis;
pub mod api;
pub mod cli;
pub mod controller;
pub mod experiment;
pub mod expr;
pub mod notify;
pub mod rollout;
pub mod sandbox;
pub mod traffic;
