//! Label selectors as text, the way apimachinery writes them: the `labelSelector` query form
//! (`app=web,tier in (a,b),!legacy`) and `metav1.FormatLabelSelector` (the same, `<none>` for
//! an empty selector), which `status.selector` of the scale subresource holds.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The selector in the `labelSelector` query syntax; empty for an empty selector.
pub fn label_selector_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.clone().unwrap_or_default().join(",");
        parts.push(match requirement.operator.as_str() {
            "In" => format!("{} in ({values})", requirement.key),
            "NotIn" => format!("{} notin ({values})", requirement.key),
            "Exists" => requirement.key.clone(),
            "DoesNotExist" => format!("!{}", requirement.key),
            other => format!("{} {other} ({values})", requirement.key),
        });
    }
    parts.join(",")
}

/// `metav1.FormatLabelSelector`: `app=foo,tier=web`, `<none>` when the selector selects
/// everything, empty when there is none.
pub fn format_label_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let text = label_selector_query(selector);
    if text.is_empty() {
        "<none>".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    use super::*;

    #[test]
    fn selectors_format_like_metav1() {
        let labels = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        let requirement = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        };
        let cases = [
            (None, ""),
            (Some(LabelSelector::default()), "<none>"),
            (
                Some(LabelSelector {
                    match_labels: labels(&[("app", "demo")]),
                    match_expressions: None,
                }),
                "app=demo",
            ),
            (
                Some(LabelSelector {
                    match_labels: labels(&[("tier", "web"), ("app", "demo")]),
                    match_expressions: None,
                }),
                "app=demo,tier=web",
            ),
            (
                Some(LabelSelector {
                    match_labels: labels(&[("app", "demo")]),
                    match_expressions: Some(vec![
                        requirement("env", "In", &["a", "b"]),
                        requirement("skip", "DoesNotExist", &[]),
                        requirement("has", "Exists", &[]),
                        requirement("zone", "NotIn", &["x"]),
                    ]),
                }),
                "app=demo,env in (a,b),!skip,has,zone notin (x)",
            ),
        ];
        for (selector, text) in cases {
            assert_eq!(format_label_selector(selector.as_ref()), text);
        }
    }

    #[test]
    fn query_form_has_no_placeholder() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "gone", "operator": "DoesNotExist"}]
        }))
        .expect("selector");
        assert_eq!(label_selector_query(&selector), "app=x,tier in (a,b),!gone");
        assert_eq!(label_selector_query(&LabelSelector::default()), "");
    }
}
