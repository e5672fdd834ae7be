//! Sandbox workload tests: the demo app's answers and metrics, ingress-nginx canary routing, the
//! load loop against real demo apps, and the workload simulator on the sandbox API server.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "sandbox_sim/decisions.rs"]
mod decisions;
#[path = "sandbox_sim/demo_app.rs"]
mod demo_app;
#[path = "sandbox_sim/load.rs"]
mod load;
#[path = "sandbox_sim/pod_addresses.rs"]
mod pod_addresses;
#[path = "sandbox_sim/routing.rs"]
mod routing;
#[path = "sandbox_sim/simulator.rs"]
mod simulator;
#[path = "sandbox_sim/termination.rs"]
mod termination;

use std::time::Duration;

use davy::sandbox::load_generator::LoadConfig;

fn http() -> reqwest::Client {
    // Loopback only: never route test traffic through a proxy from the environment.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A bounded, fast load: `requests` requests at up to 2000 per second.
fn fast_load(requests: u64) -> LoadConfig {
    LoadConfig {
        rate_per_second: 2000.0,
        max_requests: Some(requests),
        max_duration: None,
        ..LoadConfig::default()
    }
}
