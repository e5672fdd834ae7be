//! Alert-driven aborts: an Alertmanager webhook receiver ([`receiver`]) that aborts the
//! Rollouts an alert is meant for ([`matching`], pure) the same way `kubectl argo rollouts
//! abort` does, with the alert named in the abort message ([`act`]).

pub mod matching;
pub mod payload;
