//! ingress-nginx canary routing: the decision table over annotations, headers, cookies and draws.

use std::collections::BTreeMap;

use davy::sandbox::load_generator::{
    Backend, CanaryRules, DEFAULT_ANNOTATION_PREFIX, choose_backend,
};
use http::{HeaderMap, HeaderName, HeaderValue};

const P: &str = DEFAULT_ANNOTATION_PREFIX;

struct Case {
    name: &'static str,
    annotations: &'static [(&'static str, &'static str)],
    headers: &'static [(&'static str, &'static str)],
    draw: f64,
    expected: Option<Backend>,
}

const CANARY: Option<Backend> = Some(Backend::Canary);
const STABLE: Option<Backend> = Some(Backend::Stable);

pub(crate) fn annotations(pairs: &[(&str, &str)], prefix: &str) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| {
            let key = if k.contains('/') {
                (*k).to_string()
            } else {
                format!("{prefix}/{k}")
            };
            (key, (*v).to_string())
        })
        .collect()
}

pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    map
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Whether the Ingress is a canary at all (`expected: None` = no rules parsed).
    Case { name: "no canary annotation", annotations: &[("canary-weight", "100")], headers: &[], draw: 0.0, expected: None },
    Case { name: "canary false", annotations: &[("canary", "false"), ("canary-weight", "100")], headers: &[], draw: 0.0, expected: None },
    Case { name: "canary malformed", annotations: &[("canary", "yes"), ("canary-weight", "100")], headers: &[], draw: 0.0, expected: None },
    Case { name: "canary True (Go ParseBool)", annotations: &[("canary", "True"), ("canary-weight", "100")], headers: &[], draw: 0.0, expected: CANARY },
    Case { name: "canary 1 (Go ParseBool)", annotations: &[("canary", "1"), ("canary-weight", "100")], headers: &[], draw: 0.0, expected: CANARY },
    Case { name: "other prefix ignored", annotations: &[("other.io/canary", "true"), ("other.io/canary-weight", "100")], headers: &[], draw: 0.0, expected: None },
    // Weight.
    Case { name: "weight absent is 0", annotations: &[("canary", "true")], headers: &[], draw: 0.0, expected: STABLE },
    Case { name: "weight 0 lowest draw", annotations: &[("canary", "true"), ("canary-weight", "0")], headers: &[], draw: 0.0, expected: STABLE },
    Case { name: "weight 100 highest draw", annotations: &[("canary", "true"), ("canary-weight", "100")], headers: &[], draw: 0.999_999, expected: CANARY },
    Case { name: "weight 20 roll 20", annotations: &[("canary", "true"), ("canary-weight", "20")], headers: &[], draw: 0.195, expected: CANARY },
    Case { name: "weight 20 roll 21", annotations: &[("canary", "true"), ("canary-weight", "20")], headers: &[], draw: 0.2, expected: STABLE },
    Case { name: "weight 1 roll 1", annotations: &[("canary", "true"), ("canary-weight", "1")], headers: &[], draw: 0.0, expected: CANARY },
    Case { name: "weight malformed is 0", annotations: &[("canary", "true"), ("canary-weight", "abc")], headers: &[], draw: 0.0, expected: STABLE },
    Case { name: "negative weight", annotations: &[("canary", "true"), ("canary-weight", "-5")], headers: &[], draw: 0.0, expected: STABLE },
    Case { name: "weight above total", annotations: &[("canary", "true"), ("canary-weight", "150")], headers: &[], draw: 0.999, expected: CANARY },
    Case { name: "total 1000 roll 200", annotations: &[("canary", "true"), ("canary-weight", "200"), ("canary-weight-total", "1000")], headers: &[], draw: 0.1995, expected: CANARY },
    Case { name: "total 1000 roll 201", annotations: &[("canary", "true"), ("canary-weight", "200"), ("canary-weight-total", "1000")], headers: &[], draw: 0.2, expected: STABLE },
    Case { name: "total below 100 ignored", annotations: &[("canary", "true"), ("canary-weight", "50"), ("canary-weight-total", "50")], headers: &[], draw: 0.5, expected: STABLE },
    Case { name: "total malformed is 100", annotations: &[("canary", "true"), ("canary-weight", "50"), ("canary-weight-total", "x")], headers: &[], draw: 0.495, expected: CANARY },
    // Header, no value.
    Case { name: "header always", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary")], headers: &[("x-canary", "always")], draw: 0.999, expected: CANARY },
    Case { name: "header never beats weight 100", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-weight", "100")], headers: &[("X-Canary", "never")], draw: 0.0, expected: STABLE },
    Case { name: "header other value falls to weight", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-weight", "100")], headers: &[("X-Canary", "yes")], draw: 0.5, expected: CANARY },
    Case { name: "header values are case-sensitive", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary")], headers: &[("X-Canary", "Always")], draw: 0.5, expected: STABLE },
    Case { name: "header absent falls to weight", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-weight", "100")], headers: &[("X-Other", "never")], draw: 0.5, expected: CANARY },
    Case { name: "empty header annotation", annotations: &[("canary", "true"), ("canary-by-header", "")], headers: &[("X-Canary", "always")], draw: 0.5, expected: STABLE },
    Case { name: "first header value counts", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary")], headers: &[("X-Canary", "always"), ("X-Canary", "never")], draw: 0.5, expected: CANARY },
    // Header with a value.
    Case { name: "header value matches", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2")], headers: &[("X-Version", "v2")], draw: 0.999, expected: CANARY },
    Case { name: "header value mismatch falls to weight", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2"), ("canary-weight", "30")], headers: &[("X-Version", "v1")], draw: 0.1, expected: CANARY },
    Case { name: "header value mismatch falls to weight (stable)", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2"), ("canary-weight", "30")], headers: &[("X-Version", "v1")], draw: 0.9, expected: STABLE },
    Case { name: "with a value, always is just a value", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2")], headers: &[("X-Version", "always")], draw: 0.5, expected: STABLE },
    Case { name: "with a value, never does not force stable", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2"), ("canary-weight", "100")], headers: &[("X-Version", "never")], draw: 0.5, expected: CANARY },
    Case { name: "header value without header annotation", annotations: &[("canary", "true"), ("canary-by-header-value", "v2")], headers: &[("X-Version", "v2")], draw: 0.5, expected: STABLE },
    // Header pattern.
    Case { name: "pattern matches", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "^v[23]$")], headers: &[("X-Version", "v3")], draw: 0.999, expected: CANARY },
    Case { name: "pattern is unanchored", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "beta")], headers: &[("X-Version", "v2-beta-1")], draw: 0.999, expected: CANARY },
    Case { name: "pattern mismatch falls to weight", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "^v[23]$"), ("canary-weight", "100")], headers: &[("X-Version", "v4")], draw: 0.5, expected: CANARY },
    Case { name: "pattern mismatch, never is not special", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "^v[23]$"), ("canary-weight", "100")], headers: &[("X-Version", "never")], draw: 0.5, expected: CANARY },
    Case { name: "value wins over pattern", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "a"), ("canary-by-header-pattern", ".*")], headers: &[("X-Version", "b")], draw: 0.5, expected: STABLE },
    Case { name: "broken pattern with header is stable", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "("), ("canary-weight", "100")], headers: &[("X-Version", "v2")], draw: 0.5, expected: STABLE },
    Case { name: "broken pattern without header", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-pattern", "("), ("canary-weight", "100")], headers: &[], draw: 0.5, expected: CANARY },
    // Cookie.
    Case { name: "cookie always", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "canary=always")], draw: 0.999, expected: CANARY },
    Case { name: "cookie never beats weight 100", annotations: &[("canary", "true"), ("canary-by-cookie", "canary"), ("canary-weight", "100")], headers: &[("cookie", "canary=never")], draw: 0.0, expected: STABLE },
    Case { name: "cookie other value falls to weight", annotations: &[("canary", "true"), ("canary-by-cookie", "canary"), ("canary-weight", "100")], headers: &[("cookie", "canary=1")], draw: 0.0, expected: CANARY },
    Case { name: "cookie among others", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "session=abc; canary=always; theme=dark")], draw: 0.5, expected: CANARY },
    Case { name: "cookie in a second Cookie header", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "a=b"), ("cookie", "canary=always")], draw: 0.5, expected: CANARY },
    Case { name: "cookie name matched like nginx (case-insensitive)", annotations: &[("canary", "true"), ("canary-by-cookie", "Canary")], headers: &[("cookie", "canary=always")], draw: 0.5, expected: CANARY },
    Case { name: "cookie name is not a prefix match", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "canary_x=always")], draw: 0.5, expected: STABLE },
    Case { name: "cookie value is case-sensitive", annotations: &[("canary", "true"), ("canary-by-cookie", "canary")], headers: &[("cookie", "canary=ALWAYS")], draw: 0.5, expected: STABLE },
    // Precedence: header, then cookie, then weight.
    Case { name: "header never beats cookie always", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-by-cookie", "canary")], headers: &[("X-Canary", "never"), ("cookie", "canary=always")], draw: 0.5, expected: STABLE },
    Case { name: "header always beats cookie never", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-by-cookie", "canary")], headers: &[("X-Canary", "always"), ("cookie", "canary=never")], draw: 0.5, expected: CANARY },
    Case { name: "undecided header then cookie always", annotations: &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-by-cookie", "canary")], headers: &[("X-Canary", "maybe"), ("cookie", "canary=always")], draw: 0.5, expected: CANARY },
    Case { name: "header value mismatch then cookie never", annotations: &[("canary", "true"), ("canary-by-header", "X-Version"), ("canary-by-header-value", "v2"), ("canary-by-cookie", "canary"), ("canary-weight", "100")], headers: &[("X-Version", "v1"), ("cookie", "canary=never")], draw: 0.5, expected: STABLE },
    Case { name: "Argo prefixes additionalIngressAnnotations", annotations: &[("nginx.ingress.kubernetes.io/canary", "true"), ("nginx.ingress.kubernetes.io/canary-by-header", "X-Canary"), ("nginx.ingress.kubernetes.io/canary-weight", "0")], headers: &[("X-Canary", "always")], draw: 0.5, expected: CANARY },
];

#[test]
fn canary_routing_table() {
    let mut failures = Vec::new();
    for case in CASES {
        let rules = CanaryRules::from_annotations(&annotations(case.annotations, P), P);
        let got = rules
            .as_ref()
            .map(|r| choose_backend(Some(r), &headers(case.headers), case.draw));
        if got != case.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                case.name, case.expected, got
            ));
        }
    }
    println!(
        "canary routing cases: {} passed",
        CASES.len() - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn custom_annotation_prefix() {
    let custom = "custom.ingress.io";
    let a = annotations(&[("canary", "true"), ("canary-weight", "100")], custom);
    assert!(CanaryRules::from_annotations(&a, P).is_none());
    let rules = CanaryRules::from_annotations(&a, custom).expect("canary under custom prefix");
    assert_eq!(rules.weight, 100);
    assert_eq!(
        choose_backend(Some(&rules), &HeaderMap::new(), 0.5),
        Backend::Canary
    );
}

#[test]
fn no_canary_ingress_routes_everything_to_stable() {
    let h = headers(&[("X-Canary", "always"), ("cookie", "canary=always")]);
    assert_eq!(choose_backend(None, &h, 0.0), Backend::Stable);
}

#[test]
fn weight_share_over_evenly_spread_draws_is_exact() {
    // 1000 evenly spread draws land exactly `weight` per mille on canary.
    for (weight, total, expected) in [(20, 100, 200), (5, 100, 50), (250, 1000, 250), (0, 100, 0)] {
        let a = annotations(
            &[
                ("canary", "true"),
                ("canary-weight", &weight.to_string()),
                ("canary-weight-total", &total.to_string()),
            ],
            P,
        );
        let rules = CanaryRules::from_annotations(&a, P).expect("rules");
        let canary = (0..1000)
            .filter(|i| {
                choose_backend(Some(&rules), &HeaderMap::new(), f64::from(*i) / 1000.0)
                    == Backend::Canary
            })
            .count();
        assert_eq!(canary, expected, "weight {weight}/{total}");
    }
}
