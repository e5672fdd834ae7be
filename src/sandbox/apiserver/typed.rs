//! Unknown fields of built-in kinds, found as kube-apiserver finds them by decoding into its Go
//! types: the object goes through its k8s-openapi type and back, and every field of the input
//! that did not survive is unknown (`unknown field "spec.bogus"`) and removed, as the typed
//! store would drop it.

use k8s_openapi::api::{apps, batch, core, networking, policy, rbac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Option<Value> {
    // Decoded from the borrowed value: this runs on every built-in write (the simulator's
    // status patches included), so no copy of the object is made first.
    let typed = T::deserialize(obj).ok()?;
    serde_json::to_value(typed).ok()
}

/// The object as its type keeps it; `None` for a kind without a type here, or a value the type
/// does not decode (left as it is).
fn typed(group: &str, resource: &str, obj: &Value) -> Option<Value> {
    match (group, resource) {
        ("", "configmaps") => round_trip::<core::v1::ConfigMap>(obj),
        ("", "secrets") => round_trip::<core::v1::Secret>(obj),
        ("", "services") => round_trip::<core::v1::Service>(obj),
        ("", "pods") => round_trip::<core::v1::Pod>(obj),
        ("", "podtemplates") => round_trip::<core::v1::PodTemplate>(obj),
        ("", "namespaces") => round_trip::<core::v1::Namespace>(obj),
        ("", "serviceaccounts") => round_trip::<core::v1::ServiceAccount>(obj),
        ("apps", "deployments") => round_trip::<apps::v1::Deployment>(obj),
        ("apps", "replicasets") => round_trip::<apps::v1::ReplicaSet>(obj),
        ("apps", "statefulsets") => round_trip::<apps::v1::StatefulSet>(obj),
        ("apps", "daemonsets") => round_trip::<apps::v1::DaemonSet>(obj),
        ("batch", "jobs") => round_trip::<batch::v1::Job>(obj),
        ("networking.k8s.io", "ingresses") => round_trip::<networking::v1::Ingress>(obj),
        ("policy", "poddisruptionbudgets") => round_trip::<policy::v1::PodDisruptionBudget>(obj),
        ("rbac.authorization.k8s.io", "clusterroles") => round_trip::<rbac::v1::ClusterRole>(obj),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(obj)
        }
        ("rbac.authorization.k8s.io", "roles") => round_trip::<rbac::v1::Role>(obj),
        ("rbac.authorization.k8s.io", "rolebindings") => round_trip::<rbac::v1::RoleBinding>(obj),
        _ => None,
    }
}

/// Removes from `obj` the fields its built-in type does not have and returns their paths in
/// document order. One pass over the object (plus the round trip).
pub fn prune_unknown(group: &str, resource: &str, obj: &mut Value) -> Vec<String> {
    let Some(kept) = typed(group, resource, obj) else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    prune(obj, &kept, "", &mut unknown);
    unknown
}

fn prune(input: &mut Value, kept: &Value, path: &str, unknown: &mut Vec<String>) {
    match (input, kept) {
        (Value::Object(map), Value::Object(kept)) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match kept.get(&key) {
                    Some(k) => {
                        if let Some(v) = map.get_mut(&key) {
                            prune(v, k, &p, unknown);
                        }
                    }
                    // An explicit null is an absent optional field, not an unknown one.
                    None if map.get(&key).is_some_and(Value::is_null) => {}
                    None => {
                        map.shift_remove(&key);
                        unknown.push(p);
                    }
                }
            }
        }
        (Value::Array(items), Value::Array(kept)) if items.len() == kept.len() => {
            for (i, (v, k)) in items.iter_mut().zip(kept).enumerate() {
                prune(v, k, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_of_a_deployment() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "odd": 1},
            "spec": {"bogus": true, "replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolcy": "x"}]}}}});
        assert_eq!(
            prune_unknown("apps", "deployments", &mut d),
            [
                "metadata.odd",
                "spec.bogus",
                "spec.template.spec.containers[0].imagePullPolcy"
            ]
        );
        assert!(d["spec"].get("bogus").is_none());
        assert_eq!(d["spec"]["replicas"], 1);
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": "b"}, "immutable": null});
        assert!(prune_unknown("", "configmaps", &mut cm).is_empty());
        assert!(prune_unknown("example.dev", "gizmos", &mut json!({"x": 1})).is_empty());
    }
}
