//! The embedded sandbox (DESIGN.md §4): an in-process Kubernetes API server, later the workload
//! simulator, demo app and traffic generator built on top of it.

pub mod apiserver;
pub mod bench;
pub mod command;
pub mod demo;
pub mod demo_app;
pub mod simulator;
pub mod load_generator;
