//! Structural comparison of two JSON values, reporting the paths where they differ.
//!
//! Used to prove a typed decode → encode keeps every field (round-trip tests), and by the
//! strict lint, which reports fields of the input that the typed encoding dropped or changed.

use serde_json::Value;

/// One difference between an input document and its re-encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonDifference {
    /// Present in the input, absent from the re-encoding (an unknown or dropped field).
    Dropped {
        /// JSON path, e.g. `.spec.strategy.canary.steps[1].pause`.
        path: String,
    },
    /// Absent from the input, added by the re-encoding.
    Added {
        /// JSON path.
        path: String,
    },
    /// Present in both with different values.
    Changed {
        /// JSON path.
        path: String,
        /// Value in the input (compact JSON).
        input: String,
        /// Value in the re-encoding (compact JSON).
        output: String,
    },
}

impl JsonDifference {
    /// The path of the difference.
    pub fn path(&self) -> &str {
        match self {
            JsonDifference::Dropped { path }
            | JsonDifference::Added { path }
            | JsonDifference::Changed { path, .. } => path,
        }
    }
}

impl std::fmt::Display for JsonDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonDifference::Dropped { path } => write!(f, "{path}: dropped"),
            JsonDifference::Added { path } => write!(f, "{path}: added"),
            JsonDifference::Changed {
                path,
                input,
                output,
            } => write!(f, "{path}: {input} became {output}"),
        }
    }
}

/// Lists every path where `output` differs from `input`; empty when they are equal.
/// Object key order is ignored; array order is not. A key whose value is `null` counts as
/// absent (Go writes `creationTimestamp: null`; the API server prunes such nulls).
pub fn json_diff(input: &Value, output: &Value) -> Vec<JsonDifference> {
    let mut out = Vec::new();
    diff_into(input, output, &mut String::new(), &mut out);
    out
}

fn diff_into(input: &Value, output: &Value, path: &mut String, out: &mut Vec<JsonDifference>) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, av) in a {
                let len = path.len();
                push_key(path, key);
                match b.get(key) {
                    Some(bv) => diff_into(av, bv, path, out),
                    None if av.is_null() => {}
                    None => out.push(JsonDifference::Dropped { path: path.clone() }),
                }
                path.truncate(len);
            }
            let added = b
                .iter()
                .filter(|(k, v)| !a.contains_key(*k) && !v.is_null());
            for (key, _) in added {
                let len = path.len();
                push_key(path, key);
                out.push(JsonDifference::Added { path: path.clone() });
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (av, bv)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                diff_into(av, bv, path, out);
                path.truncate(len);
            }
        }
        (a, b) if numbers_equal(a, b) || a == b => {}
        (a, b) => out.push(JsonDifference::Changed {
            path: if path.is_empty() {
                ".".into()
            } else {
                path.clone()
            },
            input: a.to_string(),
            output: b.to_string(),
        }),
    }
}

/// `5` and `5.0` are the same JSON number (YAML decoders differ on which they produce).
fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => false,
    }
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push_str(&format!("[{key:?}]"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_dropped_added_and_changed_paths() {
        let input = json!({"spec": {"a": 1, "b": [1, {"c": "x"}], "d/e": true, "n": null}});
        let output = json!({"spec": {"a": 1.0, "b": [1, {"c": "y"}], "f": 2, "m": null}});
        let diffs: Vec<String> = json_diff(&input, &output)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            diffs,
            vec![
                ".spec.b[1].c: \"x\" became \"y\"".to_string(),
                ".spec[\"d/e\"]: dropped".to_string(),
                ".spec.f: added".to_string(),
            ]
        );
        assert!(json_diff(&input, &input).is_empty());
    }
}
