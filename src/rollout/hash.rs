//! Pod-template hash and steps hash (spec §3.9): FNV-32a over Go-style JSON, rendered in
//! decimal and passed through Kubernetes' `SafeEncodeString`.
//!
//! Upstream hashes the bytes of Go's `json.Marshal` of the typed object. Names match upstream
//! only if the bytes match: struct fields in Go declaration order, `omitempty` fields left out,
//! map keys (labels, annotations, nodeSelector, ...) sorted, and Go's string escaping. The
//! functions here take care of the escaping and keep the key order of the given
//! `serde_json::Value`; building the value in Go's field order is the caller's job. Where the
//! bytes differ, the controller still finds its ReplicaSets through the template comparison
//! fallback of §3.9, so a mismatch costs a differently named RS, not a redeploy loop.

use std::fmt::Write as _;

use serde_json::Value;

/// FNV-1a 32-bit offset basis.
const FNV32_OFFSET_BASIS: u32 = 0x811c_9dc5;
/// FNV-1a 32-bit prime.
const FNV32_PRIME: u32 = 0x0100_0193;

/// Kubernetes' alphabet for hash-derived names: no vowels (no accidental words) and no
/// look-alike characters.
const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// Incremental FNV-1a 32-bit hasher (Go's `hash/fnv.New32a`).
#[derive(Debug, Clone, Copy)]
pub struct Fnv32a(u32);

impl Default for Fnv32a {
    fn default() -> Self {
        Self(FNV32_OFFSET_BASIS)
    }
}

impl Fnv32a {
    /// A hasher with nothing written yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u32::from(byte);
            self.0 = self.0.wrapping_mul(FNV32_PRIME);
        }
    }

    /// The hash of everything written so far.
    pub fn sum32(&self) -> u32 {
        self.0
    }
}

/// FNV-1a 32-bit hash of `bytes`.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    let mut hasher = Fnv32a::new();
    hasher.write(bytes);
    hasher.sum32()
}

/// Kubernetes `rand.SafeEncodeString`: each character is replaced by
/// `"bcdfghjklmnpqrstvwxz2456789"[code point % 27]`.
pub fn safe_encode_string(text: &str) -> String {
    text.chars()
        .map(|ch| char::from(SAFE_ALPHABET[(u32::from(ch) % 27) as usize]))
        .collect()
}

/// How upstream turns a 32-bit hash into a name suffix: decimal, then [`safe_encode_string`].
pub fn encode_hash(sum: u32) -> String {
    safe_encode_string(&sum.to_string())
}

/// The `rollouts-pod-template-hash` of a pod template given as the exact JSON bytes Go would
/// marshal. When `status.collisionCount` is set, an 8-byte buffer holding it as a little-endian
/// uint32 (the last 4 bytes zero) is hashed after the JSON.
pub fn pod_template_hash_from_json(json: &[u8], collision_count: Option<i32>) -> String {
    let mut hasher = Fnv32a::new();
    hasher.write(json);
    if let Some(count) = collision_count {
        // Go converts with uint32(count): a negative count wraps, it does not fail.
        let mut buffer = [0_u8; 8];
        buffer[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hasher.write(&buffer);
    }
    encode_hash(hasher.sum32())
}

/// The `rollouts-pod-template-hash` of `spec.template`, serialised with [`go_json`] in the
/// value's own key order (see the module notes on matching Go's bytes).
pub fn pod_template_hash(template: &Value, collision_count: Option<i32>) -> String {
    pod_template_hash_from_json(go_json(template).as_bytes(), collision_count)
}

/// `status.currentStepHash`: the hash of `spec.strategy.canary.steps` serialised with
/// [`go_json`]. Pass `Value::Null` when the canary has no `steps` (Go marshals the nil slice
/// as `null`); a blue-green Rollout has no steps hash at all (upstream stores `""`).
pub fn steps_hash(steps: &Value) -> String {
    encode_hash(fnv32a(go_json(steps).as_bytes()))
}

/// Compact JSON as Go's `encoding/json` writes it: no spaces, object keys in the given order,
/// `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c` etc., control characters as `\b`, `\f`,
/// `\n`, `\r`, `\t` or `\u00xx`. Integral floats below 1e21 are written without a fraction as
/// Go does; other floats use Rust's shortest form (Go would switch to exponent form below
/// 1e-6, which pod templates do not contain).
pub fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, number: &serde_json::Number) {
    if number.is_i64() || number.is_u64() {
        out.push_str(&number.to_string());
        return;
    }
    let float = number.as_f64().unwrap_or_default();
    // Writing to a String cannot fail.
    if float.fract() == 0.0 && float.abs() < 1e21 {
        let _ = write!(out, "{float:.0}");
    } else {
        let _ = write!(out, "{float}");
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(ch));
            }
            ch if u32::from(ch) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(ch));
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv32a_matches_reference_vectors() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
        let mut split = Fnv32a::new();
        split.write(b"foo");
        split.write(b"bar");
        assert_eq!(split.sum32(), 0xbf9c_f968);
    }

    #[test]
    fn safe_encode_maps_code_points_modulo_27() {
        // '0' is 48, 48 % 27 = 21 -> '4'; '6' is 54 -> 0 -> 'b'.
        assert_eq!(safe_encode_string("0123456789"), "456789bcdf");
        // 'a' is 97, 97 % 27 = 16 -> 'v'.
        assert_eq!(safe_encode_string("a"), "v");
        assert_eq!(safe_encode_string(""), "");
        // 2166136261 (the FNV offset basis) digit by digit.
        assert_eq!(encode_hash(0x811c_9dc5), "65bb57b6b5");
        assert_eq!(encode_hash(0), "4");
    }

    #[test]
    fn collision_count_appends_eight_little_endian_bytes() {
        // Expected sums computed independently (Python FNV-1a over the same bytes).
        let json = br#"{"metadata":{"creationTimestamp":null},"spec":{"containers":null}}"#;
        assert_eq!(
            pod_template_hash_from_json(json, None),
            encode_hash(0xc2b4_9692)
        );
        assert_eq!(
            pod_template_hash_from_json(json, Some(1)),
            encode_hash(0x91da_f5f3)
        );
        assert_eq!(
            pod_template_hash_from_json(json, Some(-1)),
            encode_hash(0x5af4_592e)
        );
    }

    #[test]
    fn go_json_escapes_like_encoding_json() {
        let value =
            json!({"b": ["a && b > c <d>", "tab\tnl\n\u{1}\u{8}\u{c}"], "a": "\u{2028}q\"\\"});
        assert_eq!(
            go_json(&value),
            r#"{"b":["a \u0026\u0026 b \u003e c \u003cd\u003e","tab\tnl\n\u0001\b\f"],"a":"\u2028q\"\\"}"#
        );
        assert_eq!(
            go_json(&json!([1, -2, 2.5, 3.0, null, true])),
            "[1,-2,2.5,3,null,true]"
        );
    }

    #[test]
    fn hashes_go_through_go_json() {
        let template =
            json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}});
        let bytes = br#"{"metadata":{"creationTimestamp":null},"spec":{"containers":null}}"#;
        assert_eq!(
            pod_template_hash(&template, Some(3)),
            pod_template_hash_from_json(bytes, Some(3))
        );
        assert_eq!(steps_hash(&Value::Null), encode_hash(fnv32a(b"null")));
        assert_eq!(
            steps_hash(&json!([{"setWeight": 20}, {"pause": {}}])),
            encode_hash(fnv32a(br#"[{"setWeight":20},{"pause":{}}]"#))
        );
    }
}
