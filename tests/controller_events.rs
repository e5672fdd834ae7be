//! The controller's Event recorder against the sandbox API server: queued events are created
//! by its background sender, and a second create of the same event counts as recorded.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "controller_support/mod.rs"]
mod controller_support;

use chrono::Utc;
use controller_support::{NS, Sandbox};
use davy::controller::events::{EventRecorder, create};
use davy::controller::executor::event_body;
use davy::rollout::EventType;
use k8s_openapi::api::core::v1::ObjectReference;

fn reference(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("argoproj.io/v1alpha1".to_string()),
        kind: Some("Rollout".to_string()),
        name: Some(name.to_string()),
        namespace: Some(NS.to_string()),
        ..Default::default()
    }
}

#[tokio::test]
async fn queued_events_are_created_in_the_background() {
    let sandbox = Sandbox::start().await;
    let recorder = EventRecorder::new(sandbox.client.clone());
    for reason in ["RolloutUpdated", "RolloutStepCompleted", "RolloutCompleted"] {
        recorder.record(event_body(
            reference("queued"),
            EventType::Normal,
            reason,
            "a message",
            Utc::now(),
        ));
    }
    let reasons = sandbox
        .event_reasons_including(
            "queued",
            &["RolloutUpdated", "RolloutStepCompleted", "RolloutCompleted"],
        )
        .await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(recorder.dropped(), 0);
    assert_eq!(recorder.failed(), 0);
    sandbox.stop().await;
}

#[tokio::test]
async fn an_event_created_twice_counts_as_recorded_once() {
    let sandbox = Sandbox::start().await;
    let event = event_body(
        reference("twice"),
        EventType::Warning,
        "RolloutAborted",
        "aborted",
        Utc::now(),
    );
    create(&sandbox.client, &event).await.expect("first create");
    create(&sandbox.client, &event)
        .await
        .expect("a second create of the same name is not an error");
    assert_eq!(sandbox.events("twice").await.len(), 1);
    sandbox.stop().await;
}
