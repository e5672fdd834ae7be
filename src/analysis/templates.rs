//! The templates one analysis uses: the referenced AnalysisTemplates and
//! ClusterAnalysisTemplates and, through their own `templates`, everything they nest, each
//! once, in upstream's order (depth first, references in the order written). The Rollout's
//! AnalysisRuns, `davy analyze` and `davy lint` all walk them here; each supplies its own
//! lookup (the observed templates, the files given, the linted documents).

use std::collections::BTreeSet;

use crate::api::AnalysisTemplateSpec;
use crate::api::common::AnalysisTemplateRef;

/// A template as a reference names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateKey {
    /// `templateName`.
    pub name: String,
    /// `clusterScope`: a ClusterAnalysisTemplate.
    pub cluster: bool,
}

/// A referenced template that does not exist; renders as upstream's NotFound error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.not_found())]
pub struct TemplateNotFound(pub TemplateKey);

impl TemplateKey {
    fn of(reference: &AnalysisTemplateRef) -> Self {
        TemplateKey {
            name: reference.template_name.clone().unwrap_or_default(),
            cluster: reference.cluster_scope.unwrap_or(false),
        }
    }

    /// Upstream's error for a template that does not exist.
    pub fn not_found(&self) -> String {
        let resource = if self.cluster {
            "clusteranalysistemplate"
        } else {
            "analysistemplate"
        };
        format!("{resource}.argoproj.io \"{}\" not found", self.name)
    }
}

/// What a walk reached.
#[derive(Debug, Default)]
pub struct Reached<'a> {
    /// Specs of the AnalysisTemplates, in walk order.
    pub namespaced: Vec<&'a AnalysisTemplateSpec>,
    /// Specs of the ClusterAnalysisTemplates, in walk order.
    pub cluster: Vec<&'a AnalysisTemplateSpec>,
    /// References `find` could not resolve, in walk order (their nested templates are unknown).
    pub missing: Vec<TemplateKey>,
}

/// Walks `references` and everything they nest; `find` looks one template up.
pub fn walk<'a>(
    references: &[AnalysisTemplateRef],
    find: impl Fn(&TemplateKey) -> Option<&'a AnalysisTemplateSpec>,
) -> Reached<'a> {
    let mut reached = Reached::default();
    let mut seen = BTreeSet::new();
    // A stack of references still to visit, the next one on top.
    let mut pending: Vec<TemplateKey> = references.iter().rev().map(TemplateKey::of).collect();
    while let Some(key) = pending.pop() {
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(spec) = find(&key) else {
            reached.missing.push(key);
            continue;
        };
        if key.cluster {
            reached.cluster.push(spec);
        } else {
            reached.namespaced.push(spec);
        }
        pending.extend(spec.templates.iter().flatten().rev().map(TemplateKey::of));
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(nested: serde_json::Value) -> AnalysisTemplateSpec {
        serde_json::from_value(json!({"metrics": [], "templates": nested})).expect("spec")
    }

    #[test]
    fn depth_first_in_reference_order_each_once() {
        let a = spec(json!([{"templateName": "c"}, {"templateName": "b", "clusterScope": true}]));
        let b = spec(json!([{"templateName": "c"}]));
        let c = spec(json!([{"templateName": "gone"}]));
        let find = |key: &TemplateKey| match (key.name.as_str(), key.cluster) {
            ("a", false) => Some(&a),
            ("b", true) => Some(&b),
            ("c", false) => Some(&c),
            _ => None,
        };
        let roots: Vec<AnalysisTemplateRef> =
            serde_json::from_value(json!([{"templateName": "a"}, {"templateName": "c"}]))
                .expect("refs");
        let reached = walk(&roots, find);
        let same = |got: &[&AnalysisTemplateSpec], want: &[&AnalysisTemplateSpec]| {
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| std::ptr::eq(*g, *w))
        };
        assert!(same(&reached.namespaced, &[&a, &c]));
        assert!(same(&reached.cluster, &[&b]));
        assert_eq!(
            reached
                .missing
                .iter()
                .map(TemplateKey::not_found)
                .collect::<Vec<_>>(),
            vec!["analysistemplate.argoproj.io \"gone\" not found".to_string()]
        );
    }
}
