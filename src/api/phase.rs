//! Closed sets of upstream strings as enums: analysis phases, rollout phases, pause reasons.
//!
//! Each enum keeps an `Other(String)` variant so a value Davy does not know (a newer upstream,
//! a typo, the empty phase of a brand-new run) still decodes and re-encodes unchanged: a
//! controller must not fail on one odd status field.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a string enum with verbatim wire names and an `Other(String)` fallback.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value outside the known set, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Other(s) => s.as_str(),
                }
            }

            /// Parses a wire string; unknown strings become `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )+
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = Cow::<str>::deserialize(deserializer)?;
                Ok($name::parse(&s))
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                // Upstream's CRDs declare these as free strings (no enum), so do we.
                schemars::json_schema!({ "type": "string" })
            }
        }
    };
}

string_enum! {
    /// Phase of an AnalysisRun, a metric result, a measurement or an Experiment (spec §4.4).
    AnalysisPhase {
        /// Not started.
        Pending => "Pending",
        /// Measuring.
        Running => "Running",
        /// Completed successfully.
        Successful => "Successful",
        /// Completed with a failure.
        Failed => "Failed",
        /// Completed with errors.
        Error => "Error",
        /// Completed without a verdict.
        Inconclusive => "Inconclusive",
    }
}

impl AnalysisPhase {
    /// Successful, Failed, Error and Inconclusive are final (upstream `Completed()`).
    pub fn completed(&self) -> bool {
        matches!(
            self,
            AnalysisPhase::Successful
                | AnalysisPhase::Failed
                | AnalysisPhase::Error
                | AnalysisPhase::Inconclusive
        )
    }
}

impl Default for AnalysisPhase {
    /// A metric result or measurement written without a phase is treated as not started.
    fn default() -> Self {
        AnalysisPhase::Pending
    }
}

string_enum! {
    /// `status.phase` of a Rollout (spec §2.2).
    RolloutPhase {
        /// Fully promoted and available.
        Healthy => "Healthy",
        /// Updating.
        Progressing => "Progressing",
        /// Paused by the user or a pause condition.
        Paused => "Paused",
        /// Aborted, timed out or invalid.
        Degraded => "Degraded",
    }
}

string_enum! {
    /// Reason of a `status.pauseConditions[]` entry (spec §2).
    PauseReason {
        /// A `pause` step.
        CanaryPauseStep => "CanaryPauseStep",
        /// Blue-green waiting for promotion.
        BlueGreenPause => "BlueGreenPause",
        /// An AnalysisRun ended Inconclusive.
        InconclusiveAnalysisRun => "InconclusiveAnalysisRun",
        /// An Experiment ended Inconclusive.
        InconclusiveExperiment => "InconclusiveExperiment",
    }
}

/// Deserializes an optional string enum, mapping the empty string to `None`.
///
/// Upstream writes `phase: ""` for a run it has not assessed yet (the field has no
/// `omitempty`); reading that as "no phase" keeps decode → encode → decode stable.
pub(crate) fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: for<'a> From<&'a str>,
{
    let s: Option<String> = Option::deserialize(deserializer)?;
    Ok(match s.as_deref() {
        None | Some("") => None,
        Some(v) => Some(T::from(v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_values_round_trip() {
        let p: AnalysisPhase = serde_json::from_str("\"Inconclusive\"").unwrap();
        assert_eq!(p, AnalysisPhase::Inconclusive);
        assert!(p.completed());
        let q: AnalysisPhase = serde_json::from_str("\"Paused2\"").unwrap();
        assert_eq!(q, AnalysisPhase::Other("Paused2".into()));
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"Paused2\"");
        assert_eq!(PauseReason::CanaryPauseStep.as_str(), "CanaryPauseStep");
        assert_eq!(RolloutPhase::parse("Degraded"), RolloutPhase::Degraded);
    }
}
