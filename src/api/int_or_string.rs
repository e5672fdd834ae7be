//! `IntOrStr`: the int-or-string value of Argo's CRDs (`maxSurge`, `pause.duration`, metric
//! `count`/limits, CloudWatch `period`), kept in the form the user wrote it.
//!
//! Upstream stores these as Kubernetes `intstr.IntOrString`. A value may be a number (`5`), a
//! percentage (`"25%"`), a number in a string (`"5"`, e.g. after argument substitution) or a
//! still unresolved placeholder (`"{{args.count}}"`). Keeping the original form means a
//! decode → encode round trip gives back exactly what the user wrote.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An integer or a string, as written in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IntOrStr {
    /// A plain number, e.g. `maxSurge: 1`.
    Int(i64),
    /// A string: a percentage (`"25%"`), a number in quotes or a `{{args.x}}` placeholder.
    Str(String),
}

/// How a percentage is turned into a count (spec §1.2: `maxSurge` rounds up, `maxUnavailable` down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// `ceil(value * total / 100)`.
    Up,
    /// `floor(value * total / 100)`.
    Down,
}

/// Why an int-or-string value could not be resolved to a number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntOrStrError {
    /// The string is not a decimal integer (for example an unresolved `{{args.x}}`).
    #[error("invalid int-or-string value {input:?}: not an integer")]
    NotAnInteger {
        /// The offending string.
        input: String,
    },
    /// The string is not an integer percentage such as `"25%"`.
    #[error("invalid int-or-string value {input:?}: not a percentage")]
    NotAPercentage {
        /// The offending string.
        input: String,
    },
    /// The number does not fit the target type.
    #[error("int-or-string value {input} is out of range")]
    OutOfRange {
        /// The offending number, rendered as text.
        input: String,
    },
}

impl IntOrStr {
    /// True when the value is a string that still holds a `{{...}}` placeholder.
    pub fn is_placeholder(&self) -> bool {
        matches!(self, IntOrStr::Str(s) if s.contains("{{"))
    }

    /// True when the value is a string ending in `%`.
    pub fn is_percent(&self) -> bool {
        matches!(self, IntOrStr::Str(s) if s.trim().ends_with('%'))
    }

    /// The value as an integer: a number, or a string holding a decimal integer (what
    /// `{{args.n}}` becomes after substitution). Percentages and placeholders are errors.
    pub fn as_int(&self) -> Result<i64, IntOrStrError> {
        match self {
            IntOrStr::Int(v) => Ok(*v),
            IntOrStr::Str(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| IntOrStrError::NotAnInteger { input: s.clone() }),
        }
    }

    /// Go's `intstr.IntValue()`: a number, or a string parsed as an integer with 0 when it is
    /// not one. Upstream uses this for metric `count` and limits, so an unparseable string
    /// silently counts as 0; use [`IntOrStr::as_int`] where an error is wanted instead.
    pub fn int_value(&self) -> i64 {
        self.as_int().unwrap_or(0)
    }

    /// Resolves the value against `total`, as upstream does for `maxSurge`/`maxUnavailable`.
    ///
    /// A number is taken as is. Any string is a percentage, with or without the `%` sign
    /// (upstream's default `maxSurge` is the string `"25"`, meaning 25%), scaled by `total`
    /// and rounded as `rounding` says.
    pub fn scaled_value(&self, total: i32, rounding: Rounding) -> Result<i32, IntOrStrError> {
        match self {
            IntOrStr::Int(v) => i32::try_from(*v).map_err(|_| IntOrStrError::OutOfRange {
                input: v.to_string(),
            }),
            IntOrStr::Str(s) => {
                let digits = s.trim().trim_end_matches('%').trim();
                let percent: i64 = digits
                    .parse()
                    .map_err(|_| IntOrStrError::NotAPercentage { input: s.clone() })?;
                let product = percent * i64::from(total);
                // Integer arithmetic instead of Go's float ceil/floor: exact for every int32 input.
                let scaled = match rounding {
                    Rounding::Up => {
                        product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
                    }
                    Rounding::Down => product.div_euclid(100),
                };
                i32::try_from(scaled).map_err(|_| IntOrStrError::OutOfRange { input: s.clone() })
            }
        }
    }
}

impl Default for IntOrStr {
    fn default() -> Self {
        IntOrStr::Int(0)
    }
}

impl From<i64> for IntOrStr {
    fn from(v: i64) -> Self {
        IntOrStr::Int(v)
    }
}

impl From<i32> for IntOrStr {
    fn from(v: i32) -> Self {
        IntOrStr::Int(i64::from(v))
    }
}

impl From<&str> for IntOrStr {
    fn from(v: &str) -> Self {
        IntOrStr::Str(v.to_string())
    }
}

impl From<String> for IntOrStr {
    fn from(v: String) -> Self {
        IntOrStr::Str(v)
    }
}

impl fmt::Display for IntOrStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrStr::Int(v) => write!(f, "{v}"),
            IntOrStr::Str(s) => f.write_str(s),
        }
    }
}

impl Serialize for IntOrStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrStr::Int(v) => serializer.serialize_i64(*v),
            IntOrStr::Str(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntOrStrVisitor;

        impl Visitor<'_> for IntOrStrVisitor {
            type Value = IntOrStr;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
                i64::try_from(v)
                    .map(IntOrStr::Int)
                    .map_err(|_| E::custom(format!("integer {v} is out of range")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IntOrStr, E> {
                // JSON has one number type: accept 5.0 (what some encoders emit) but not 5.5,
                // which upstream's intstr rejects too.
                if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(IntOrStr::Int(v as i64))
                } else {
                    Err(E::custom(format!("{v} is not an integer")))
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.to_string()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v))
            }
        }

        deserializer.deserialize_any(IntOrStrVisitor)
    }
}

impl schemars::JsonSchema for IntOrStr {
    fn schema_name() -> Cow<'static, str> {
        "IntOrStr".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // The structural form the API server wants for int-or-string fields.
        schemars::json_schema!({
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_reencodes_in_original_form() {
        for (json, expected) in [
            ("5", IntOrStr::Int(5)),
            ("\"25%\"", IntOrStr::Str("25%".into())),
            ("\"{{args.count}}\"", IntOrStr::Str("{{args.count}}".into())),
            ("\"5\"", IntOrStr::Str("5".into())),
        ] {
            let v: IntOrStr = serde_json::from_str(json).unwrap();
            assert_eq!(v, expected, "{json}");
            assert_eq!(serde_json::to_string(&v).unwrap(), json);
        }
        assert!(serde_json::from_str::<IntOrStr>("5.5").is_err());
        assert!(serde_json::from_str::<IntOrStr>("true").is_err());
    }
}
