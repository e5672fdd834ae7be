//! The prometheus provider against a real Prometheus server.

mod common;

use common::prometheus::{MetricsTarget, Prometheus};

#[tokio::test]
async fn harness_sees_first_sample() {
    let target = MetricsTarget::start().await;
    target.set_text("demo_value{service=\"a\"} 0.5\n");
    let prom = Prometheus::start(&[&target]).await;
    let result = prom.wait_for_samples("demo_value").await;
    assert_eq!(result[0]["value"][1], "0.5");
}
