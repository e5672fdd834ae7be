//! The rollout core: pure decisions about a canary Rollout (replica math, pod-template hash);
//! no I/O and no clock.

pub mod hash;
pub mod replicas;
pub mod replicas_basic;
pub mod replicas_other;
pub mod replicas_traffic;
