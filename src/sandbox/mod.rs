//! The sandbox: an in-process stand-in for a Kubernetes cluster (API server, workload simulator,
//! demo app, traffic generator) for tests and `davy demo`.

pub mod demo_app;
pub mod simulator;
pub mod traffic;
