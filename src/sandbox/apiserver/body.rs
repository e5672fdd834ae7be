//! Request bodies decoded as kube-apiserver decodes them, noting duplicate fields on the way:
//! JSON bodies report `duplicate field "spec.replicas"` (sigs.k8s.io/json's strict wording,
//! with the field's path), YAML bodies `line 10: key "replicas" already set in map` (go-yaml's,
//! with the line of the repeated key). The last value wins, as in Go. One pass over the body
//! builds a tree that keeps repeated keys, a second over that tree builds the value.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// How the body was written: it decides the wording of duplicate-field errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// JSON (the usual `application/json` body).
    Json,
    /// YAML (`application/yaml`, apply patches, and bodies that are not JSON).
    Yaml,
}

/// A decoded body and the duplicate fields found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The value, the last of repeated keys winning.
    pub value: Value,
    /// How the body was written.
    pub syntax: Syntax,
    /// One text per repeated key, in document order (without any prefix).
    pub duplicates: Vec<String>,
}

impl Decoded {
    /// A body with no duplicates (an empty body, or one the server built).
    pub fn plain(value: Value) -> Self {
        Decoded {
            value,
            syntax: Syntax::Json,
            duplicates: Vec::new(),
        }
    }

    /// The strict-decoding errors as kube-apiserver joins them into its message: one per JSON
    /// duplicate; the YAML ones are a single go-yaml error listing every line.
    pub fn strict_errors(&self) -> Vec<String> {
        if self.duplicates.is_empty() {
            return Vec::new();
        }
        match self.syntax {
            Syntax::Json => self.duplicates.clone(),
            Syntax::Yaml => {
                let lines: Vec<String> = self.duplicates.iter().map(|d| format!("  {d}")).collect();
                vec![format!(
                    "error converting YAML to JSON: yaml: unmarshal errors:\n{}",
                    lines.join("\n")
                )]
            }
        }
    }
}

/// A value as Go's `%v` prints the decoded map kube-apiserver quotes in a patch's strict
/// error: `map[spec:map[paused:false]]`, keys sorted, strings bare, `null` as `<nil>`.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_value(&map[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub String);

/// Decodes `bytes` as `syntax`, collecting duplicate fields.
pub fn decode(bytes: &[u8], syntax: Syntax) -> Result<Decoded, BodyError> {
    let (value, duplicates) = match syntax {
        Syntax::Json => {
            let node: Node<String> =
                serde_json::from_slice(bytes).map_err(|e| BodyError(e.to_string()))?;
            build(node)
        }
        Syntax::Yaml => {
            let text = std::str::from_utf8(bytes).map_err(|e| BodyError(e.to_string()))?;
            let mut options = serde_saphyr::options::Options::default();
            options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::PassThrough;
            let node: Node<serde_saphyr::Spanned<String>> =
                serde_saphyr::from_str_with_options(text, options)
                    .map_err(|e| BodyError(e.to_string()))?;
            build(node)
        }
    };
    Ok(Decoded {
        value,
        syntax,
        duplicates,
    })
}

/// A map key: its text, and for YAML the line it is on.
trait Key {
    fn name(&self) -> &str;
    fn duplicate(&self, path: &str) -> String;
}

impl Key for String {
    fn name(&self) -> &str {
        self
    }
    fn duplicate(&self, path: &str) -> String {
        format!("duplicate field \"{path}\"")
    }
}

impl Key for serde_saphyr::Spanned<String> {
    fn name(&self) -> &str {
        &self.value
    }
    fn duplicate(&self, _path: &str) -> String {
        format!(
            "line {}: key \"{}\" already set in map",
            self.referenced.line(),
            self.value
        )
    }
}

/// A decoded document that keeps every map entry, repeated keys included.
enum Node<K> {
    Leaf(Value),
    Seq(Vec<Node<K>>),
    Map(Vec<(K, Node<K>)>),
}

fn build<K: Key>(node: Node<K>) -> (Value, Vec<String>) {
    let mut duplicates = Vec::new();
    let value = walk(node, "", &mut duplicates);
    (value, duplicates)
}

fn walk<K: Key>(node: Node<K>, path: &str, duplicates: &mut Vec<String>) -> Value {
    match node {
        Node::Leaf(v) => v,
        Node::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, n)| walk(n, &format!("{path}[{i}]"), duplicates))
                .collect(),
        ),
        Node::Map(entries) => {
            let mut map = Map::new();
            for (key, n) in entries {
                let name = key.name().to_string();
                let p = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if map.contains_key(&name) {
                    duplicates.push(key.duplicate(&p));
                }
                let v = walk(n, &p, duplicates);
                map.insert(name, v);
            }
            Value::Object(map)
        }
    }
}

impl<'de, K: Deserialize<'de>> Deserialize<'de> for Node<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor(PhantomData))
    }
}

struct NodeVisitor<K>(PhantomData<K>);

impl<'de, K: Deserialize<'de>> Visitor<'de> for NodeVisitor<K> {
    type Value = Node<K>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Node::Leaf(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Node::Leaf(Value::Number(v.into())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Node::Leaf(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Node::Leaf(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Node::Leaf(Value::String(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Node::Leaf(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Node::Leaf(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Node::Leaf(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(n) = seq.next_element()? {
            items.push(n);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry()? {
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_duplicates_have_their_paths_and_the_last_wins() {
        let body = br#"{"spec": {"replicas": 2, "replicas": 3,
            "ports": [{"port": 1, "port": 2}]}, "kind": "A"}"#;
        let d = decode(body, Syntax::Json).unwrap();
        assert_eq!(
            d.value,
            json!({"spec": {"replicas": 3, "ports": [{"port": 2}]}, "kind": "A"})
        );
        assert_eq!(
            d.duplicates,
            [
                "duplicate field \"spec.replicas\"",
                "duplicate field \"spec.ports[0].port\""
            ]
        );
        assert_eq!(d.strict_errors(), d.duplicates);
    }

    #[test]
    fn yaml_duplicates_name_the_line_of_the_repeated_key() {
        let body = b"\napiVersion: v1\nspec:\n  paused: true\n  paused: false\n  list:\n  - a: 1\n    a: 2\n";
        let d = decode(body, Syntax::Yaml).unwrap();
        assert_eq!(
            d.value,
            json!({"apiVersion": "v1", "spec": {"paused": false, "list": [{"a": 2}]}})
        );
        assert_eq!(
            d.duplicates,
            [
                "line 5: key \"paused\" already set in map",
                "line 8: key \"a\" already set in map"
            ]
        );
        assert_eq!(
            d.strict_errors(),
            [
                "error converting YAML to JSON: yaml: unmarshal errors:\n  line 5: key \"paused\" already set in map\n  line 8: key \"a\" already set in map"
            ]
        );
    }

    #[test]
    fn go_formatting_of_a_patch() {
        let v = json!({"spec": {"paused": false, "a": [1, "x", null]}});
        assert_eq!(go_value(&v), "map[spec:map[a:[1 x <nil>] paused:false]]");
    }

    #[test]
    fn no_duplicates_no_errors() {
        let d = decode(br#"{"a": [1, 2.5, null, "x", true]}"#, Syntax::Json).unwrap();
        assert_eq!(d.value, json!({"a": [1, 2.5, null, "x", true]}));
        assert!(d.strict_errors().is_empty());
        assert!(decode(b"{", Syntax::Json).is_err());
    }
}
