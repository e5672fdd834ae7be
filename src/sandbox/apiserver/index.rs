//! The label index: for each resource, `(label key, value)` to the keys of the objects that
//! carry that label, so that a list or watch with an equality (`k=v`) or set (`k in (a,b)`)
//! requirement reads only its candidates instead of every object of the resource.
//!
//! Controllers select by labels they set (`rollouts-pod-template-hash=…`, a ReplicaSet's
//! selector), and each such set is small while the resource holds many objects; without the
//! index every such list cost O(objects of the kind) and, with one list per reconcile, the
//! sandbox's work grew with the square of the number of Rollouts.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::resources::GroupResource;
use super::selectors::LabelSelector;
use super::store::ObjKey;

/// `(key, value)` of one label.
type Label = (String, String);

/// The index of every resource's labels; updated by every store write.
#[derive(Debug, Default)]
pub struct LabelIndex {
    by_resource: HashMap<GroupResource, HashMap<Label, BTreeSet<ObjKey>>>,
}

/// The object's `metadata.labels` as (key, value) pairs; non-string values are not labels.
fn labels_of(obj: &Value) -> Vec<(&str, &str)> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                .collect()
        })
        .unwrap_or_default()
}

/// Which objects may match a selector, as the index knows them.
#[derive(Debug)]
pub enum Candidates<'a> {
    /// No requirement the index can answer (or only `!=`, `notin`, `exists`…): scan.
    All,
    /// Every match is in one of these sets (the sets of one requirement's values).
    Among(Vec<&'a BTreeSet<ObjKey>>),
}

impl LabelIndex {
    /// Records that the object at `key` changed from `old` to `new` (`None`: absent).
    /// Only the labels that differ are touched, so a status write costs a comparison.
    pub fn update(
        &mut self,
        gr: &GroupResource,
        key: &ObjKey,
        old: Option<&Value>,
        new: Option<&Value>,
    ) {
        let before = old.map(labels_of).unwrap_or_default();
        let after = new.map(labels_of).unwrap_or_default();
        if before == after {
            return;
        }
        let table = self.by_resource.entry(gr.clone()).or_default();
        for label in before.iter().filter(|l| !after.contains(l)) {
            let label = (label.0.to_string(), label.1.to_string());
            if let Some(set) = table.get_mut(&label) {
                set.remove(key);
                if set.is_empty() {
                    table.remove(&label);
                }
            }
        }
        for label in after.iter().filter(|l| !before.contains(l)) {
            table
                .entry((label.0.to_string(), label.1.to_string()))
                .or_default()
                .insert(key.clone());
        }
    }

    /// Forgets a resource entirely (its CRD was deleted).
    pub fn remove_resource(&mut self, gr: &GroupResource) {
        self.by_resource.remove(gr);
    }

    /// The smallest candidate sets for `selector`: of its `=` and `in` requirements, the one
    /// whose values index the fewest objects.
    pub fn candidates(&self, gr: &GroupResource, selector: &LabelSelector) -> Candidates<'_> {
        static EMPTY: BTreeSet<ObjKey> = BTreeSet::new();
        let table = self.by_resource.get(gr);
        let mut best: Option<(usize, Vec<&BTreeSet<ObjKey>>)> = None;
        for (key, values) in selector.indexable() {
            let sets: Vec<&BTreeSet<ObjKey>> = values
                .iter()
                .map(|v| {
                    table
                        .and_then(|t| t.get(&(key.to_string(), v.to_string())))
                        .unwrap_or(&EMPTY)
                })
                .collect();
            let size = sets.iter().map(|s| s.len()).sum();
            if best.as_ref().is_none_or(|(n, _)| size < *n) {
                best = Some((size, sets));
            }
        }
        match best {
            Some((_, sets)) => Candidates::Among(sets),
            None => Candidates::All,
        }
    }
}

/// The keys of `sets`, in key order, without duplicates, in namespace `ns` (all when `None`)
/// and strictly after `after`.
pub fn ordered_keys<'a>(
    sets: &[&'a BTreeSet<ObjKey>],
    ns: Option<&str>,
    after: Option<&ObjKey>,
) -> Vec<&'a ObjKey> {
    use std::ops::Bound;
    let start = match (after, ns) {
        (Some(k), _) => Bound::Excluded(k.clone()),
        (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
        (None, None) => Bound::Unbounded,
    };
    let mut keys: Vec<&'a ObjKey> = Vec::new();
    for set in sets {
        keys.extend(
            set.range((start.clone(), Bound::Unbounded))
                .take_while(|k| ns.is_none_or(|ns| k.0 == ns)),
        );
    }
    if sets.len() > 1 {
        keys.sort();
        keys.dedup();
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}})
    }

    fn key(ns: &str, name: &str) -> ObjKey {
        (ns.to_string(), name.to_string())
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    fn keys(index: &LabelIndex, gr: &GroupResource, s: &str, ns: Option<&str>) -> Vec<String> {
        match index.candidates(gr, &sel(s)) {
            Candidates::All => vec!["*".into()],
            Candidates::Among(sets) => ordered_keys(&sets, ns, None)
                .into_iter()
                .map(|k| format!("{}/{}", k.0, k.1))
                .collect(),
        }
    }

    #[test]
    fn picks_the_smallest_requirement_and_follows_label_changes() {
        let gr = GroupResource::new("apps", "replicasets");
        let mut index = LabelIndex::default();
        let a = obj(json!({"app": "web", "hash": "1"}));
        let b = obj(json!({"app": "web", "hash": "2"}));
        let c = obj(json!({"app": "api", "hash": "1"}));
        index.update(&gr, &key("ns", "a"), None, Some(&a));
        index.update(&gr, &key("ns", "b"), None, Some(&b));
        index.update(&gr, &key("other", "c"), None, Some(&c));

        assert_eq!(keys(&index, &gr, "app=web", None), ["ns/a", "ns/b"]);
        // hash=2 indexes one object, app=web two: the smaller one is read.
        assert_eq!(keys(&index, &gr, "app=web,hash=2", None), ["ns/b"]);
        assert_eq!(
            keys(&index, &gr, "hash in (1, 2)", None),
            ["ns/a", "ns/b", "other/c"]
        );
        assert_eq!(
            keys(&index, &gr, "hash in (1, 2)", Some("ns")),
            ["ns/a", "ns/b"]
        );
        assert_eq!(keys(&index, &gr, "app=nope", None), Vec::<String>::new());
        assert_eq!(keys(&index, &gr, "app!=web", None), ["*"]);
        assert_eq!(keys(&index, &gr, "", None), ["*"]);

        // Relabelled, then deleted: the old entries go.
        let b2 = obj(json!({"app": "api", "hash": "2"}));
        index.update(&gr, &key("ns", "b"), Some(&b), Some(&b2));
        assert_eq!(keys(&index, &gr, "app=web", None), ["ns/a"]);
        assert_eq!(keys(&index, &gr, "app=api", None), ["ns/b", "other/c"]);
        index.update(&gr, &key("ns", "b"), Some(&b2), None);
        assert_eq!(keys(&index, &gr, "app=api", None), ["other/c"]);
        // Another resource's labels are not mixed in.
        let pods = GroupResource::new("", "pods");
        assert_eq!(keys(&index, &pods, "app=api", None), Vec::<String>::new());
    }

    #[test]
    fn ordered_keys_resume_after_a_continue_key() {
        let set: BTreeSet<ObjKey> = [key("a", "1"), key("a", "2"), key("b", "1")].into();
        let after = key("a", "1");
        let got = ordered_keys(&[&set], None, Some(&after));
        assert_eq!(got, [&key("a", "2"), &key("b", "1")]);
        let got = ordered_keys(&[&set], Some("a"), Some(&after));
        assert_eq!(got, [&key("a", "2")]);
    }
}
