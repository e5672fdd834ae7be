//! Leader election end to end on the sandbox: of two controllers only the Lease holder writes,
//! the follower takes over when the leader stops, and a leader whose Lease is taken stops.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod support;

use std::time::Duration;

use davy::controller::leader::{LOCK_NAME, LeaderElection, LeaseTiming};
use davy::controller::{ControllerConfig, ControllerError};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::{Controller, NS, Sandbox, canary_rollout, describe, eventually, rollout};

fn elected(identity: &str, timing: LeaseTiming) -> ControllerConfig {
    ControllerConfig {
        namespace: Some(NS.to_string()),
        metrics_addr: None,
        leader_election: Some(LeaderElection {
            namespace: NS.to_string(),
            lock_name: LOCK_NAME.to_string(),
            identity: identity.to_string(),
            timing,
        }),
        alert_webhook: None,
        max_concurrent_reconciles: None,
        debounce: std::time::Duration::ZERO,
        instance_id: None,
        config_namespace: None,
        notifications_namespace: None,
    }
}

/// Short enough for a test, long enough that a busy machine does not lose a renewal.
fn quick() -> LeaseTiming {
    LeaseTiming {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_millis(100),
    }
}

async fn lease(sandbox: &Sandbox) -> Option<Lease> {
    let leases: Api<Lease> = Api::namespaced(sandbox.client.clone(), NS);
    leases.get_opt(LOCK_NAME).await.expect("get lease")
}

async fn holder(sandbox: &Sandbox) -> Option<String> {
    lease(sandbox)
        .await
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn wait_for_holder(sandbox: &Sandbox, identity: &str) {
    eventually(&format!("{identity} to hold the lease"), || async {
        match holder(sandbox).await {
            Some(h) if h == identity => Ok(()),
            other => Err(format!("holder {other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_the_follower_takes_over() {
    let sandbox = Sandbox::start().await;
    let (client_a, log_a) = sandbox.logging_client();
    let (client_b, log_b) = sandbox.logging_client();

    let a = Controller::start(client_a, elected("controller-a", quick()));
    wait_for_holder(&sandbox, "controller-a").await;
    let b = Controller::start(client_b, elected("controller-b", quick()));
    eventually("controller-b to campaign a few times", || async {
        let reads = log_b.count("GET", "/leases/");
        if reads >= 3 {
            Ok(())
        } else {
            Err(format!("{reads} lease reads"))
        }
    })
    .await;

    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    sandbox
        .create(&rollout(canary_rollout("ha", 2, steps, "app:v1")))
        .await;
    let v1 = sandbox.healthy("ha").await;
    assert_eq!(sandbox.rs_replicas(&v1).await, Some(2));
    assert_eq!(holder(&sandbox).await.as_deref(), Some("controller-a"));
    assert_eq!(
        log_b.writes_except_leases(),
        0,
        "the follower wrote something"
    );
    let a_writes = log_a.writes_except_leases();
    assert!(a_writes > 0, "the leader wrote nothing");
    assert_eq!(
        log_b.count("PUT", "/leases/"),
        0,
        "the follower wrote the lease"
    );
    assert_eq!(
        log_b.count("POST", "/leases"),
        0,
        "the follower created a lease"
    );

    // The leader stops cleanly: it releases the lease once its reconcilers have drained.
    a.stop().await.expect("leader stops cleanly");
    wait_for_holder(&sandbox, "controller-b").await;
    let spec = lease(&sandbox)
        .await
        .and_then(|l| l.spec)
        .expect("lease spec");
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(4));

    sandbox.set_image("ha", "app:v2").await;
    let status = eventually("the new leader to take the update to its pause", || async {
        let status = sandbox.status("ha").await;
        if status["currentStepIndex"] == 1
            && status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
        {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await;
    assert_eq!(status["stableRS"], v1.as_str());
    assert!(
        log_b.writes_except_leases() > 0,
        "the new leader wrote nothing"
    );
    assert_eq!(
        log_a.writes_except_leases(),
        a_writes,
        "the stopped leader kept writing"
    );
    b.stop().await.expect("second leader stops cleanly");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_is_taken_stops_reconciling_and_reports_it() {
    let sandbox = Sandbox::start().await;
    let (client_a, log_a) = sandbox.logging_client();
    let a = Controller::start(client_a, elected("controller-a", quick()));
    wait_for_holder(&sandbox, "controller-a").await;

    // Someone else writes the lease (as a candidate with a skewed clock might).
    let leases: Api<Lease> = Api::namespaced(sandbox.client.clone(), NS);
    let mut taken = leases.get(LOCK_NAME).await.expect("lease");
    let spec = taken.spec.get_or_insert_default();
    spec.holder_identity = Some("intruder".to_string());
    spec.lease_duration_seconds = Some(600);
    leases
        .replace(LOCK_NAME, &PostParams::default(), &taken)
        .await
        .expect("take the lease");

    let ended = tokio::time::timeout(support::DEADLINE, a.join())
        .await
        .expect("the old leader to stop");
    match ended {
        Err(ControllerError::LeaderLost(error)) => assert_eq!(
            error.to_string(),
            format!("lost the leader lease {NS}/{LOCK_NAME}")
        ),
        other => panic!("expected LeaderLost, got {other:?}"),
    }
    // It stopped without stealing the lease back, and a Rollout created now is not touched.
    assert_eq!(holder(&sandbox).await.as_deref(), Some("intruder"));
    let writes = log_a.writes_except_leases();
    let steps = json!([{"setWeight": 50}]);
    sandbox
        .create(&rollout(canary_rollout("orphan", 1, steps, "app:v1")))
        .await;
    assert_eq!(log_a.writes_except_leases(), writes);
    assert!(sandbox.status("orphan").await.is_null());
    sandbox.stop().await;
}
