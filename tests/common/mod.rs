//! Helpers shared by the integration tests: where the upstream conformance data lives.

#![allow(dead_code)]

use std::path::PathBuf;

/// The shared conformance folder (`../shared/conformance` beside the project), or `None` with a
/// printed notice when this checkout has no copy of it, so the vector tests skip visibly.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("conformance");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "NOTICE: {} is absent; conformance vectors skipped",
            dir.display()
        );
        None
    }
}

pub mod argocd_health;
pub mod argocd_lua;
pub mod world;
pub mod prometheus;
pub mod alertmanager;
pub mod sandbox;
pub mod kubectl;
pub mod wait;
pub mod server_process;
pub mod router_crds;
pub mod fixture_server;
