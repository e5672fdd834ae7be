//! Label selectors (equality and set-based) and field selectors, parsed from query strings.

use serde_json::Value;

use super::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum LabelOp {
    Exists,
    NotExists,
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn bad(sel: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "unable to parse requirement: invalid selector: '{sel}'"
    ))
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, ApiError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| bad(whole))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_requirement(req: &str) -> Result<(String, LabelOp), ApiError> {
    let r = req.trim();
    if let Some(key) = r.strip_prefix('!') {
        return Ok((key.trim().to_string(), LabelOp::NotExists));
    }
    if let Some((k, v)) = r.split_once("!=") {
        return Ok((k.trim().to_string(), LabelOp::NotEq(v.trim().to_string())));
    }
    if let Some((k, v)) = r.split_once("==") {
        return Ok((k.trim().to_string(), LabelOp::Eq(v.trim().to_string())));
    }
    if let Some((k, v)) = r.split_once('=') {
        return Ok((k.trim().to_string(), LabelOp::Eq(v.trim().to_string())));
    }
    for (sym, gt) in [('>', true), ('<', false)] {
        if let Some((k, v)) = r.split_once(sym) {
            let n: i64 = v.trim().parse().map_err(|_| bad(r))?;
            let op = if gt { LabelOp::Gt(n) } else { LabelOp::Lt(n) };
            return Ok((k.trim().to_string(), op));
        }
    }
    let mut words = r.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim().to_string();
    let rest = words.next().unwrap_or_default().trim();
    if rest.is_empty() {
        return Ok((key, LabelOp::Exists));
    }
    if let Some(set) = rest.strip_prefix("notin") {
        return Ok((key, LabelOp::NotIn(parse_set(set, r)?)));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Ok((key, LabelOp::In(parse_set(set, r)?)));
    }
    Err(bad(r))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            if part.trim().is_empty() {
                continue;
            }
            let (key, op) = parse_requirement(part)?;
            if key.is_empty() {
                return Err(bad(s));
            }
            reqs.push((key, op));
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The requirements a label index can answer: `key=value` and `key in (values)`, each
    /// with the values an object must carry under `key` to satisfy it.
    pub fn indexable(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.reqs.iter().filter_map(|(k, op)| match op {
            LabelOp::Eq(v) => Some((k.as_str(), vec![v.as_str()])),
            LabelOp::In(vs) => Some((k.as_str(), vs.iter().map(String::as_str).collect())),
            _ => None,
        })
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|(k, op)| match op {
            LabelOp::Exists => get(k).is_some(),
            LabelOp::NotExists => get(k).is_none(),
            LabelOp::Eq(v) => get(k) == Some(v.as_str()),
            LabelOp::NotEq(v) => get(k) != Some(v.as_str()),
            LabelOp::In(vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelOp::NotIn(vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelOp::Gt(n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelOp::Lt(n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// A parsed `fieldSelector`: `path=value` / `path!=value` terms on dotted paths.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    reqs: Vec<(Vec<String>, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid field selector: '{part}'"
                )));
            };
            let path = key.trim().split('.').map(str::to_string).collect();
            reqs.push((path, eq, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The `metadata.name=X` term, which lets a list or watch look up one object directly.
    pub fn exact_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(p, eq, _)| *eq && p.len() == 2 && p[0] == "metadata" && p[1] == "name")
            .map(|(_, _, v)| v.as_str())
    }

    /// Missing fields compare as the empty string, as the real server's field sets do.
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(path, eq, want)| {
            let got = path.iter().try_fold(obj, |v, k| v.get(k.as_str()));
            let got = match got {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

/// Renders a `metav1.LabelSelector` object as selector text (the `Scale` status form).
pub fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for expr in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match expr.get("operator").and_then(Value::as_str) {
            Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
            Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
            Some("Exists") => parts.push(key.to_string()),
            Some("DoesNotExist") => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns1", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn equality_and_set_based_labels() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "7"}));
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=web,tier=back", false),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("n>5", true),
            ("n<5", false),
            ("app in (api),tier", false),
        ];
        for (sel, want) in cases {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let sel = FieldSelector::parse("metadata.name=a,metadata.namespace!=ns2").unwrap();
        assert!(sel.matches(&o));
        assert_eq!(sel.exact_name(), Some("a"));
        assert!(
            !FieldSelector::parse("status.phase=Pending")
                .unwrap()
                .matches(&o)
        );
        assert!(FieldSelector::parse("spec.nodeName=").unwrap().matches(&o));
        assert!(FieldSelector::parse("bogus").is_err());
    }

    #[test]
    fn selector_object_renders_as_text() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(selector_string(&s), "app=web,t in (a,b)");
    }
}
