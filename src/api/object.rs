//! [`DavyObject`]: any of the five kinds, decoded from an untyped JSON document by its
//! `apiVersion`/`kind` (for `lint`, `create -f`, the sandbox and tests).

use serde_json::Value;

use super::analysis::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate};
use super::consts::{API_VERSION, kind};
use super::experiment::Experiment;
use super::rollout::Rollout;

/// One object of a Davy kind.
#[derive(Clone, Debug, PartialEq)]
pub enum DavyObject {
    /// A Rollout.
    Rollout(Box<Rollout>),
    /// An AnalysisTemplate.
    AnalysisTemplate(Box<AnalysisTemplate>),
    /// A ClusterAnalysisTemplate.
    ClusterAnalysisTemplate(Box<ClusterAnalysisTemplate>),
    /// An AnalysisRun.
    AnalysisRun(Box<AnalysisRun>),
    /// An Experiment.
    Experiment(Box<Experiment>),
}

/// The kind of `doc` when it is one of Davy's (`argoproj.io/v1alpha1` and a known kind).
pub fn davy_kind(doc: &Value) -> Option<&'static str> {
    if doc.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION) {
        return None;
    }
    let k = doc.get("kind").and_then(Value::as_str)?;
    kind::ALL.into_iter().find(|known| *known == k)
}

impl DavyObject {
    /// Decodes `doc` leniently (unknown fields ignored); `Ok(None)` when it is not a Davy kind.
    pub fn from_value(doc: &Value) -> Result<Option<DavyObject>, serde_json::Error> {
        let Some(k) = davy_kind(doc) else {
            return Ok(None);
        };
        let doc = doc.clone();
        Ok(Some(match k {
            kind::ROLLOUT => DavyObject::Rollout(Box::new(serde_json::from_value(doc)?)),
            kind::ANALYSIS_TEMPLATE => {
                DavyObject::AnalysisTemplate(Box::new(serde_json::from_value(doc)?))
            }
            kind::CLUSTER_ANALYSIS_TEMPLATE => {
                DavyObject::ClusterAnalysisTemplate(Box::new(serde_json::from_value(doc)?))
            }
            kind::ANALYSIS_RUN => DavyObject::AnalysisRun(Box::new(serde_json::from_value(doc)?)),
            _ => DavyObject::Experiment(Box::new(serde_json::from_value(doc)?)),
        }))
    }

    /// Re-encodes the object.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            DavyObject::Rollout(o) => serde_json::to_value(o),
            DavyObject::AnalysisTemplate(o) => serde_json::to_value(o),
            DavyObject::ClusterAnalysisTemplate(o) => serde_json::to_value(o),
            DavyObject::AnalysisRun(o) => serde_json::to_value(o),
            DavyObject::Experiment(o) => serde_json::to_value(o),
        }
    }

    /// The kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            DavyObject::Rollout(_) => kind::ROLLOUT,
            DavyObject::AnalysisTemplate(_) => kind::ANALYSIS_TEMPLATE,
            DavyObject::ClusterAnalysisTemplate(_) => kind::CLUSTER_ANALYSIS_TEMPLATE,
            DavyObject::AnalysisRun(_) => kind::ANALYSIS_RUN,
            DavyObject::Experiment(_) => kind::EXPERIMENT,
        }
    }
}
