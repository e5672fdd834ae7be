//! Go duration strings (`10s`, `1m30s`, `500ms`, `1.5h`) as Argo's CRDs use them, parsed into
//! [`std::time::Duration`], and [`DurationString`], which keeps the text the user wrote.
//!
//! The grammar is Go's `time.ParseDuration`: a sequence of decimal numbers, each with an
//! optional fraction and a unit among `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`; there is no `d`.
//! Upstream's pause step additionally reads a plain integer as seconds (`"10"`), which
//! [`parse_duration`] does too; [`parse_go_duration`] is the strict Go grammar used for
//! metric `interval`/`initialDelay` validation.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a duration string was rejected. Every variant names the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty (or only a sign).
    #[error("invalid duration {input:?}: empty")]
    Empty {
        /// The rejected text.
        input: String,
    },
    /// A number is not followed by a unit (`"10"` in strict mode, `"1h30"`).
    #[error("invalid duration {input:?}: missing unit")]
    MissingUnit {
        /// The rejected text.
        input: String,
    },
    /// A unit other than ns, us, µs, ms, s, m, h (`"1d"`).
    #[error(
        "invalid duration {input:?}: unknown unit {unit:?} (valid units are ns, us, µs, ms, s, m, h)"
    )]
    UnknownUnit {
        /// The rejected text.
        input: String,
        /// The unit found.
        unit: String,
    },
    /// A negative duration, which has no meaning for intervals, delays and pauses.
    #[error("invalid duration {input:?}: negative")]
    Negative {
        /// The rejected text.
        input: String,
    },
    /// More than about 292 years (Go's limit).
    #[error("invalid duration {input:?}: out of range")]
    Overflow {
        /// The rejected text.
        input: String,
    },
    /// Anything else that is not a duration (`"abc"`, `"1..5s"`).
    #[error("invalid duration {input:?}")]
    Invalid {
        /// The rejected text.
        input: String,
    },
}

/// Nanoseconds per unit, in Go's `unitMap`.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 (micro sign) and U+03BC (Greek mu) are both accepted by Go.
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// A [`DurationError`] rendered with Go's `time.ParseDuration` text, which upstream's
/// validation messages embed (`time: unknown unit "d" in duration "1d"`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", go_text(.0))]
pub struct GoDurationError(pub DurationError);

fn go_text(error: &DurationError) -> String {
    use crate::api::go_quote::go_quote;
    match error {
        DurationError::MissingUnit { input } => {
            format!("time: missing unit in duration {}", go_quote(input))
        }
        DurationError::UnknownUnit { input, unit } => format!(
            "time: unknown unit {} in duration {}",
            go_quote(unit),
            go_quote(input)
        ),
        DurationError::Empty { input }
        | DurationError::Negative { input }
        | DurationError::Overflow { input }
        | DurationError::Invalid { input } => {
            format!("time: invalid duration {}", go_quote(input))
        }
    }
}

/// Go's limit: a `time.Duration` is an int64 of nanoseconds (so 2^63 is a magnitude only a
/// negative duration may have).
const MAX_NANOS: u128 = 1 << 63;

/// Go's `time.ParseDuration` itself: the signed number of nanoseconds `input` denotes. The one
/// scanner of the Go grammar: [`parse_go_duration`] builds on it, and validation renders its
/// errors with Go's exact text.
pub fn go_duration_nanos(input: &str) -> Result<i128, DurationError> {
    let err_invalid = || DurationError::Invalid {
        input: input.to_string(),
    };
    let overflow = || DurationError::Overflow {
        input: input.to_string(),
    };
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(DurationError::Empty {
            input: input.to_string(),
        });
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let bytes = s.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(err_invalid());
        }
        // Integer part.
        let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let int_part: u128 = if int_len == 0 {
            0
        } else {
            s[..int_len].parse().map_err(|_| overflow())?
        };
        s = &s[int_len..];
        // Fraction part: Go keeps at most the digits that fit; 18 digits is plenty here.
        let mut frac_digits = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
            frac_digits = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_digits.is_empty() {
            // "." or ".s": no digits at all.
            return Err(err_invalid());
        }
        // Unit: everything up to the next digit or dot.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(DurationError::MissingUnit {
                input: input.to_string(),
            });
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            input: input.to_string(),
            unit: unit.to_string(),
        })?;
        let mut value = int_part.checked_mul(scale).ok_or_else(overflow)?;
        if !frac_digits.is_empty() {
            let kept = &frac_digits[..frac_digits.len().min(18)];
            let numerator: u128 = kept.parse().map_err(|_| err_invalid())?;
            let denominator = 10u128.pow(kept.len() as u32);
            // Truncated like Go's float conversion of the fraction (exact for sane inputs).
            value = value
                .checked_add(numerator * scale / denominator)
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        if total > MAX_NANOS {
            return Err(overflow());
        }
    }
    if !negative && total == MAX_NANOS {
        return Err(overflow());
    }
    // `total` is at most 2^63 here, so it fits an i128 with its sign.
    let magnitude = total as i128;
    Ok(if negative { -magnitude } else { magnitude })
}

/// Parses `input` with Go's `time.ParseDuration` grammar (no bare numbers except `0`) into a
/// [`Duration`]; negative durations are refused.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let nanos = go_duration_nanos(input)?;
    let nanos = u128::try_from(nanos).map_err(|_| DurationError::Negative {
        input: input.to_string(),
    })?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| DurationError::Overflow {
        input: input.to_string(),
    })?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a duration the way upstream's pause step does: a plain (32-bit) integer is a
/// number of seconds (`"10"`), anything else follows [`parse_go_duration`].
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    if let Ok(secs) = input.parse::<i32>() {
        return u64::try_from(secs)
            .map(Duration::from_secs)
            .map_err(|_| DurationError::Negative {
                input: input.to_string(),
            });
    }
    parse_go_duration(input)
}

/// A duration as written in a manifest (`interval: 30s`), kept verbatim so it re-encodes as
/// written; parse it with [`DurationString::to_duration`]. A bare number (`duration: 60`,
/// seen in old manifests) decodes as its decimal text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DurationString(pub String);

impl<'de> Deserialize<'de> for DurationString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) => Ok(DurationString(s)),
            serde_json::Value::Number(n) => Ok(DurationString(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a duration string, found {other}"
            ))),
        }
    }
}

impl DurationString {
    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when nothing was written (Go's zero value).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The duration, accepting a plain integer as seconds (see [`parse_duration`]).
    pub fn to_duration(&self) -> Result<Duration, DurationError> {
        parse_duration(&self.0)
    }

    /// The duration under Go's strict grammar (see [`parse_go_duration`]); upstream's metric
    /// validation uses this one, so `"10"` is an error here.
    pub fn to_go_duration(&self) -> Result<Duration, DurationError> {
        parse_go_duration(&self.0)
    }
}

impl From<&str> for DurationString {
    fn from(s: &str) -> Self {
        DurationString(s.to_string())
    }
}

impl fmt::Display for DurationString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl schemars::JsonSchema for DurationString {
    fn schema_name() -> Cow<'static, str> {
        "DurationString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string" })
    }
}
