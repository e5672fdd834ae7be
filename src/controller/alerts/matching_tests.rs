//! Table tests of alert matching: the matcher language, which Rollouts a notification
//! aborts, and the de-duplication memory.

use super::*;
use crate::controller::alerts::payload::parse;
use serde_json::json;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn matcher_language_table() {
    let alert = labels(&[
        ("alertname", "HighErrorRate"),
        ("service", "web"),
        ("severity", "critical"),
    ]);
    // (annotation, parses, matches the alert above)
    let cases: &[(&str, Result<bool, &str>)] = &[
        (r#"alertname="HighErrorRate""#, Ok(true)),
        (r#"alertname="HighErrorRate",service="web""#, Ok(true)),
        (r#"{alertname="HighErrorRate", service="web"}"#, Ok(true)),
        (r#"  alertname = "HighErrorRate" , "#, Ok(true)),
        (r#"alertname="HighErrorRate",service="api""#, Ok(false)),
        (r#"alertname!="HighErrorRate""#, Ok(false)),
        (r#"service!="api""#, Ok(true)),
        (r#"alertname=~"High.*""#, Ok(true)),
        // Anchored: a prefix is not a match.
        (r#"alertname=~"High""#, Ok(false)),
        (r#"alertname=~"Error""#, Ok(false)),
        (r#"alertname=~".*Error.*""#, Ok(true)),
        (r#"severity!~"warn.*|info""#, Ok(true)),
        (r#"severity!~"crit.*""#, Ok(false)),
        // Absent label is "".
        (r#"team="""#, Ok(true)),
        (r#"team=~".+""#, Ok(false)),
        (r#"team!="a""#, Ok(true)),
        // Unquoted values.
        ("alertname=HighErrorRate,service=web", Ok(true)),
        ("{service=~we.}", Ok(true)),
        // Escapes.
        (r#"alertname="High\"ErrorRate""#, Ok(false)),
        (r#"alertname=~"High\\w+""#, Ok(true)),
        // Errors.
        ("", Err("no matchers")),
        ("{}", Err("no matchers")),
        (
            "alertname",
            Err("at offset 9: expected one of =, !=, =~, !~"),
        ),
        (
            r#"alertname=="x""#,
            Err("at offset 10: expected a value (quote values that hold `\"`, `=` or `~`)"),
        ),
        (
            r#"alertname="x"#,
            Err("at offset 11: unterminated quoted value"),
        ),
        (
            r#"alertname="x" service="y""#,
            Err("at offset 14: expected `,`"),
        ),
        (r#"{alertname="x""#, Err("at offset 14: expected `}`")),
        (
            r#"{alertname="x"} extra"#,
            Err("at offset 16: unexpected text after `}`"),
        ),
        (r#"9a="x""#, Err("at offset 0: expected a label name")),
        (
            r#"alertname=~"(""#,
            Err("bad regex \"(\": regex parse error:\n    ^(?:()$\n     ^\nerror: unclosed group"),
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let got = parse_matchers(text)
            .map(|ms| ms.iter().all(|m| m.matches(&alert)))
            .map_err(|e| e.to_string());
        let want = expected.map_err(str::to_string);
        if got != want {
            failures.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("matcher cases: {} passed", cases.len());
}

#[test]
fn parsed_matchers_keep_names_ops_and_unescaped_values() {
    let parsed = parse_matchers(r#"a="x\"y",b!=z,c=~"d+",e!~"f""#).expect("valid");
    let summary: Vec<(String, MatchOp, String)> = parsed
        .into_iter()
        .map(|m| (m.name, m.op, m.value))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a".into(), MatchOp::Equal, "x\"y".into()),
            ("b".into(), MatchOp::NotEqual, "z".into()),
            ("c".into(), MatchOp::Regex, "d+".into()),
            ("e".into(), MatchOp::NotRegex, "f".into()),
        ]
    );
}

const T0: &str = "2026-11-26T10:00:00Z";

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("time").to_utc()
}

fn alert(
    status: &str,
    starts: &str,
    fingerprint: &str,
    extra: &[(&str, &str)],
) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!("HighErrorRate"));
    for (k, v) in extra {
        labels.insert(k.to_string(), json!(v));
    }
    json!({"status": status, "labels": labels, "annotations": {}, "startsAt": starts,
           "endsAt": if status == "firing" { "0001-01-01T00:00:00Z" } else { "2026-11-26T11:00:00Z" },
           "generatorURL": "", "fingerprint": fingerprint})
}

fn payload(alerts: Vec<serde_json::Value>) -> Payload {
    let body = json!({"version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}",
                      "status": "firing", "receiver": "davy", "alerts": alerts});
    parse(body.to_string().as_bytes()).expect("payload")
}

fn view(name: &str, annotation: Option<&str>, mid: bool, began: Option<&str>) -> RolloutView {
    RolloutView {
        namespace: "shop".into(),
        name: name.into(),
        matchers: annotation.map(parse_matchers),
        mid_update: mid,
        update_began: began.map(time),
    }
}

#[test]
fn decide_table() {
    let names = LabelNames::default();
    let web = || {
        view(
            "web",
            Some(r#"alertname="HighErrorRate",service="web""#),
            true,
            Some(T0),
        )
    };
    let by_label = [("rollout", "api"), ("namespace", "shop")];
    let api = || view("api", None, true, Some(T0));
    // (case, alerts, rollouts, expected (rollout, fingerprint) aborts)
    type Case = (
        &'static str,
        Vec<serde_json::Value>,
        Vec<RolloutView>,
        Vec<(&'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "annotation match aborts only the matching rollout",
            vec![alert(
                "firing",
                "2026-11-26T10:00:05Z",
                "aaaa",
                &[("service", "web")],
            )],
            vec![
                web(),
                api(),
                view("other", Some(r#"service="db""#), true, Some(T0)),
            ],
            vec![("web", "aaaa")],
        ),
        (
            "labels naming rollout and namespace",
            vec![alert("firing", "2026-11-26T10:00:05Z", "bbbb", &by_label)],
            vec![web(), api()],
            vec![("api", "bbbb")],
        ),
        (
            "labels in another namespace do not match",
            vec![alert(
                "firing",
                "2026-11-26T10:00:05Z",
                "bbbb",
                &[("rollout", "api"), ("namespace", "prod")],
            )],
            vec![api()],
            vec![],
        ),
        (
            "rollout label without namespace label does not match",
            vec![alert(
                "firing",
                "2026-11-26T10:00:05Z",
                "bbbb",
                &[("rollout", "api")],
            )],
            vec![api()],
            vec![],
        ),
        (
            "resolved never aborts",
            vec![alert(
                "resolved",
                "2026-11-26T10:00:05Z",
                "aaaa",
                &[("service", "web")],
            )],
            vec![web()],
            vec![],
        ),
        (
            "alert started before the update does not abort",
            vec![alert(
                "firing",
                "2026-11-26T09:59:59Z",
                "aaaa",
                &[("service", "web")],
            )],
            vec![web()],
            vec![],
        ),
        (
            "alert started exactly when the update began aborts",
            vec![alert("firing", T0, "aaaa", &[("service", "web")])],
            vec![web()],
            vec![("web", "aaaa")],
        ),
        (
            "not mid-update (promoted or already aborted)",
            vec![alert(
                "firing",
                "2026-11-26T10:00:05Z",
                "aaaa",
                &[("service", "web")],
            )],
            vec![view("web", Some(r#"service="web""#), false, Some(T0))],
            vec![],
        ),
        (
            "unknown update start",
            vec![alert(
                "firing",
                "2026-11-26T10:00:05Z",
                "aaaa",
                &[("service", "web")],
            )],
            vec![view("web", Some(r#"service="web""#), true, None)],
            vec![],
        ),
        (
            "unusable annotation never matches",
            vec![alert(
                "firing",
                "2026-11-26T10:00:05Z",
                "aaaa",
                &[("service", "web")],
            )],
            vec![view("web", Some("service=~\"(\""), true, Some(T0))],
            vec![],
        ),
        (
            "earliest qualifying alert names the abort; one abort per rollout",
            vec![
                alert(
                    "firing",
                    "2026-11-26T10:00:09Z",
                    "cccc",
                    &[("service", "web")],
                ),
                alert(
                    "firing",
                    "2026-11-26T10:00:03Z",
                    "dddd",
                    &[("service", "web")],
                ),
                alert(
                    "firing",
                    "2026-11-26T09:00:00Z",
                    "eeee",
                    &[("service", "web")],
                ),
            ],
            vec![web()],
            vec![("web", "dddd")],
        ),
        (
            "one alert may abort several rollouts",
            vec![alert(
                "firing",
                "2026-11-26T10:00:05Z",
                "ffff",
                &[
                    ("service", "web"),
                    ("rollout", "api"),
                    ("namespace", "shop"),
                ],
            )],
            vec![web(), api()],
            vec![("web", "ffff"), ("api", "ffff")],
        ),
    ];
    let mut failures = Vec::new();
    for (what, alerts, rollouts, expected) in &cases {
        let decided = decide(&payload(alerts.clone()), rollouts, &names);
        let got: Vec<(String, String)> = decided
            .iter()
            .map(|a| (a.name.clone(), a.fingerprint.clone()))
            .collect();
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(n, f)| (n.to_string(), f.to_string()))
            .collect();
        if got != want {
            failures.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("decide cases: {} passed", cases.len());
}

#[test]
fn abort_names_the_alert_and_custom_label_names_work() {
    let names = LabelNames {
        rollout: "argo_rollout".into(),
        namespace: "kubernetes_namespace".into(),
    };
    let p = payload(vec![alert(
        "firing",
        "2026-11-26T10:00:05Z",
        "1a2b3c4d5e6f7a8b",
        &[("argo_rollout", "api"), ("kubernetes_namespace", "shop")],
    )]);
    let decided = decide(&p, &[view("api", None, true, Some(T0))], &names);
    assert_eq!(
        decided,
        vec![AlertAbort {
            namespace: "shop".into(),
            name: "api".into(),
            alertname: "HighErrorRate".into(),
            fingerprint: "1a2b3c4d5e6f7a8b".into(),
            message: "Aborted by alert HighErrorRate (fingerprint 1a2b3c4d5e6f7a8b)".into(),
        }]
    );
    assert!(may_abort(&p, &view("api", None, true, None), &names));
    assert!(!may_abort(&p, &view("api", None, false, None), &names));
    assert!(
        decide(
            &p,
            &[view("api", None, true, Some(T0))],
            &LabelNames::default()
        )
        .is_empty()
    );
}

fn rollout_json(status: serde_json::Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1",
                     "annotations": {ABORT_ON_ALERT_ANNOTATION: "service=\"web\""}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
        "status": status
    }))
    .expect("rollout")
}

#[test]
fn mid_update_and_update_began_from_the_objects() {
    let cases = [
        (json!({"currentPodHash": "new", "stableRS": "old"}), true),
        (
            json!({"currentPodHash": "new", "stableRS": "old", "abort": true}),
            false,
        ),
        (json!({"currentPodHash": "new", "stableRS": "new"}), false),
        (json!({"currentPodHash": "new"}), false),
        (json!({}), false),
    ];
    for (status, expected) in cases {
        assert_eq!(
            mid_update(&rollout_json(status.clone())),
            expected,
            "{status}"
        );
    }
    let rollout = rollout_json(json!({"currentPodHash": "new", "stableRS": "old"}));
    let rs = |hash: &str, owner: &str, created: &str| -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{hash}"), "namespace": "shop",
                         "labels": {"rollouts-pod-template-hash": hash},
                         "creationTimestamp": created,
                         "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                              "name": "web", "uid": owner, "controller": true}]}
        }))
        .expect("rs")
    };
    let sets = vec![
        rs("old", "u1", "2026-11-26T08:00:00Z"),
        rs("new", "someone-else", "2026-11-26T09:00:00Z"),
        rs("new", "u1", "2026-11-26T10:00:00Z"),
    ];
    assert_eq!(update_began(&rollout, &sets), Some(time(T0)));
    assert_eq!(update_began(&rollout, &sets[..2]), None);
    let seen = view_of(&rollout);
    assert_eq!(seen.matchers.map(|m| m.map(|m| m.len())), Some(Ok(1)));
    assert!(seen.mid_update);
}

fn view_of(rollout: &Rollout) -> RolloutView {
    super::view(rollout, None)
}

#[test]
fn dedup_key_is_group_plus_sorted_fingerprint_states() {
    let a = payload(vec![
        alert("firing", T0, "bbbb", &[]),
        alert("resolved", T0, "aaaa", &[]),
    ]);
    assert_eq!(
        dedup_key(&a),
        "{}:{alertname=\"HighErrorRate\"}\naaaa:resolved,bbbb:firing"
    );
    let reordered = payload(vec![
        alert("resolved", T0, "aaaa", &[]),
        alert("firing", T0, "bbbb", &[]),
    ]);
    assert_eq!(dedup_key(&a), dedup_key(&reordered));
    let changed = payload(vec![
        alert("firing", T0, "bbbb", &[]),
        alert("firing", T0, "aaaa", &[]),
    ]);
    assert_ne!(dedup_key(&a), dedup_key(&changed));
}

#[test]
fn dedup_remembers_within_ttl_and_capacity() {
    let t = |s: i64| time(T0) + chrono::Duration::seconds(s);
    let mut dedup = Dedup::new(2, Duration::from_secs(60));
    assert!(dedup.first_time("a", t(0)));
    assert!(!dedup.first_time("a", t(59)));
    // Expired after the TTL.
    assert!(dedup.first_time("a", t(60)));
    assert!(dedup.first_time("b", t(61)));
    // Capacity 2: "c" evicts the oldest ("a").
    assert!(dedup.first_time("c", t(62)));
    assert_eq!(dedup.len(), 2);
    assert!(!dedup.first_time("b", t(63)));
    assert!(!dedup.first_time("c", t(63)));
    assert!(dedup.first_time("a", t(64)));
    // A forgotten key is processed again.
    dedup.forget("a");
    assert!(dedup.first_time("a", t(65)));
    // Bounded under churn.
    for i in 0..1000 {
        let key = format!("k{i}");
        assert!(dedup.first_time(&key, t(66)));
        dedup.forget(&key);
    }
    assert!(dedup.len() <= 2);
    assert!(dedup.order.len() <= 4, "queue {}", dedup.order.len());
}
