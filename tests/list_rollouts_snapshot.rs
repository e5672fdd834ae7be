//! Snapshots of `list rollouts` (spec §8): the column set, `-A` and `--timestamps`, STEP and
//! SET-WEIGHT rules, READY as ready/current, the `%-Ns` pre-padding and 2-space tab alignment.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use davy::api::Rollout;
use davy::cli::get::list::NO_RESOURCES;
use davy::cli::get::{ListOptions, render_rollout_list};
use k8s_openapi::jiff::Timestamp;

const ROLLOUTS: &str = r#"
- apiVersion: argoproj.io/v1alpha1
  kind: Rollout
  metadata: {name: canary-demo, namespace: default, generation: 1}
  spec:
    replicas: 5
    strategy:
      canary:
        steps: [{setWeight: 20}, {pause: {}}, {setWeight: 40}, {pause: {}}]
  status:
    observedGeneration: "1"
    currentStepIndex: 1
    replicas: 6
    updatedReplicas: 1
    readyReplicas: 6
    availableReplicas: 6
    phase: Paused
    message: CanaryPauseStep
- apiVersion: argoproj.io/v1alpha1
  kind: Rollout
  metadata: {name: bluegreen-demo, namespace: team-a, generation: 2}
  spec:
    replicas: 3
    strategy:
      blueGreen: {activeService: active}
  status:
    observedGeneration: "2"
    replicas: 3
    updatedReplicas: 3
    readyReplicas: 3
    availableReplicas: 3
    phase: Healthy
- apiVersion: argoproj.io/v1alpha1
  kind: Rollout
  metadata: {name: no-strategy-rollout, namespace: default}
  spec: {}
"#;

fn rollouts() -> Vec<Rollout> {
    serde_saphyr::from_str(ROLLOUTS).unwrap()
}

fn now() -> Timestamp {
    "2024-01-08T00:00:00Z".parse().unwrap()
}

/// Trailing spaces (the `%-9d` padding of the last cell) are invisible here; strip them.
fn strip(text: &str) -> String {
    text.lines()
        .map(|l| l.trim_end_matches(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn list_rollouts_plain() {
    let got = render_rollout_list(&rollouts(), ListOptions::default(), now()).unwrap();
    let want = "\
NAME                 STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE
canary-demo          Canary     Paused        1/4   20          6/6    5        1           6
bluegreen-demo       BlueGreen  Healthy       -     -           3/3    3        3           3
no-strategy-rollout  unknown    Progressing   -     -           0/0    1        0           0";
    assert_eq!(strip(&got), want);
    // The last cell keeps its `%-9d` padding, as upstream prints it.
    assert!(got.lines().nth(1).unwrap().ends_with("6        "));
}

#[test]
fn list_rollouts_all_namespaces_and_timestamps() {
    let opts = ListOptions {
        all_namespaces: true,
        timestamps: true,
    };
    let got = render_rollout_list(&rollouts(), opts, now()).unwrap();
    let want = "\
TIMESTAMP             NAMESPACE  NAME                 STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE
2024-01-08T00:00:00Z  default    canary-demo          Canary     Paused        1/4   20          6/6    5        1           6
2024-01-08T00:00:00Z  team-a     bluegreen-demo       BlueGreen  Healthy       -     -           3/3    3        3           3
2024-01-08T00:00:00Z  default    no-strategy-rollout  unknown    Progressing   -     -           0/0    1        0           0";
    assert_eq!(strip(&got), want);
}

#[test]
fn list_rollouts_namespace_column_only() {
    let opts = ListOptions {
        all_namespaces: true,
        timestamps: false,
    };
    let got = render_rollout_list(&rollouts()[1..2], opts, now()).unwrap();
    let want = "\
NAMESPACE  NAME            STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE
team-a     bluegreen-demo  BlueGreen  Healthy       -     -           3/3    3        3           3";
    assert_eq!(strip(&got), want);
}

#[test]
fn list_rollouts_aborted_and_done_weights() {
    // Aborted ⇒ SET-WEIGHT 0; past the last step ⇒ 100; unobserved spec ⇒ Progressing.
    let mut ros = rollouts();
    let mut aborted = ros[0].clone();
    aborted.metadata.name = Some("aborted".into());
    aborted.status.as_mut().unwrap().abort = true;
    let mut done = ros[0].clone();
    done.metadata.name = Some("done".into());
    done.status.as_mut().unwrap().current_step_index = Some(4);
    let mut stale = ros.remove(1);
    stale.metadata.name = Some("stale".into());
    stale.metadata.generation = Some(3);
    let got = render_rollout_list(&[aborted, done, stale], ListOptions::default(), now()).unwrap();
    let want = "\
NAME        STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE
aborted     Canary     Paused        1/4   0           6/6    5        1           6
done        Canary     Paused        4/4   100         6/6    5        1           6
stale       BlueGreen  Progressing   -     -           3/3    3        3           3";
    assert_eq!(strip(&got), want);
}

#[test]
fn list_rollouts_empty() {
    assert_eq!(
        render_rollout_list(&[], ListOptions::default(), now()),
        None
    );
    assert_eq!(NO_RESOURCES, "No resources found.");
}
