//! The resource table: built-in kinds the sandbox serves, plus kinds registered from CRDs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::error::{ApiError, Cause};

/// A group and a plural resource name: the storage key of a kind, independent of version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    /// `configmaps` for the core group, `deployments.apps` otherwise, as apimachinery prints it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Where the replica counts and selector of a kind live, for its `scale` subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    /// Dotted path, e.g. `.spec.replicas`.
    pub spec_replicas: String,
    pub status_replicas: String,
    /// Built-ins render `spec.selector` as a string; CRDs name a string field.
    pub label_selector: Option<String>,
}

/// How a list field merges, for strategic merge patch and server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars, merged by value.
    Set,
    /// A list of maps, merged by the values of these keys.
    Map(Vec<String>),
}

/// One servable kind.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub gr: GroupResource,
    /// Served versions; the first one is the storage version.
    pub versions: Vec<String>,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `status` subresource: the main endpoint ignores status, `/status` ignores the rest.
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Built-in kinds accept strategic merge patch; custom resources answer 415.
    pub builtin: bool,
    /// Sets and bumps `metadata.generation`.
    pub generation: bool,
    /// DELETE answers with the deleted object rather than a `Status`.
    pub return_deleted: bool,
    /// List types declared by a CRD schema, keyed by dotted field path (no indices).
    pub list_types: HashMap<String, ListType>,
    /// The storage version's structural schema (`openAPIV3Schema`) of a CRD's kind.
    pub schema: Option<Arc<Value>>,
}

impl ResourceDef {
    pub fn storage_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.gr.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.gr.group, version)
        }
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// The merge strategy of the list at `path` (field names from the object root).
    pub fn list_type(&self, path: &[&str]) -> ListType {
        match path {
            ["metadata", "finalizers"] => return ListType::Set,
            ["metadata", "ownerReferences"] => return ListType::Map(vec!["uid".into()]),
            ["metadata", ..] => return ListType::Atomic,
            _ => {}
        }
        if self.builtin {
            return builtin_list_type(&self.kind, path);
        }
        self.list_types
            .get(&path.join("."))
            .cloned()
            .unwrap_or(ListType::Atomic)
    }
}

/// Merge keys of built-in kinds (the `patchMergeKey`s of k8s.io/api), by field name.
fn builtin_list_type(kind: &str, path: &[&str]) -> ListType {
    let key = |k: &str| ListType::Map(vec![k.to_string()]);
    let Some(last) = path.last() else {
        return ListType::Atomic;
    };
    match *last {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => key("name"),
        "volumeMounts" => key("mountPath"),
        "volumeDevices" => key("devicePath"),
        "hostAliases" => key("ip"),
        "conditions" => key("type"),
        "topologySpreadConstraints" => key("topologyKey"),
        "ports" => {
            let in_container = path
                .iter()
                .any(|p| matches!(*p, "containers" | "initContainers" | "ephemeralContainers"));
            if in_container {
                key("containerPort")
            } else if kind == "Service" {
                key("port")
            } else {
                ListType::Atomic
            }
        }
        _ => ListType::Atomic,
    }
}

/// Every kind the server currently serves, keyed by group and resource.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    defs: BTreeMap<GroupResource, Arc<ResourceDef>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut registry = Registry::default();
        for def in builtin_defs() {
            registry.insert(def);
        }
        registry
    }

    pub fn insert(&mut self, def: ResourceDef) {
        self.defs.insert(def.gr.clone(), Arc::new(def));
    }

    pub fn remove(&mut self, gr: &GroupResource) -> Option<Arc<ResourceDef>> {
        self.defs.remove(gr)
    }

    pub fn get(&self, gr: &GroupResource) -> Option<Arc<ResourceDef>> {
        self.defs.get(gr).cloned()
    }

    /// The kind served at `group/version/resource`, if that version is served.
    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .get(&GroupResource::new(group, resource))
            .filter(|d| d.serves(version))
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.defs.values()
    }

    /// Served group versions, core first, then groups by name; versions in served order.
    pub fn group_versions(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for def in self.defs.values() {
            let entry = match out.iter_mut().find(|(g, _)| *g == def.gr.group) {
                Some(e) => e,
                None => {
                    out.push((def.gr.group.clone(), Vec::new()));
                    let last = out.len() - 1;
                    &mut out[last]
                }
            };
            for v in &def.versions {
                if !entry.1.contains(v) {
                    entry.1.push(v.clone());
                }
            }
        }
        out.sort_by(|a, b| (!a.0.is_empty(), &a.0).cmp(&(!b.0.is_empty(), &b.0)));
        out
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
    return_deleted: bool,
    all: bool,
}

const BUILTINS: &[Builtin] = &[
    b(
        "",
        "v1",
        "namespaces",
        "Namespace",
        false,
        &["ns"],
        (true, false, false, false, false),
    ),
    b(
        "",
        "v1",
        "pods",
        "Pod",
        true,
        &["po"],
        (true, false, true, true, true),
    ),
    b(
        "",
        "v1",
        "services",
        "Service",
        true,
        &["svc"],
        (true, false, false, false, true),
    ),
    b(
        "",
        "v1",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        (false, false, false, false, false),
    ),
    b(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        &[],
        (false, false, true, false, false),
    ),
    b(
        "",
        "v1",
        "secrets",
        "Secret",
        true,
        &[],
        (false, false, false, false, false),
    ),
    b(
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        true,
        &["cm"],
        (false, false, false, false, false),
    ),
    // What a Rollout's `workloadRef` may name; `generation` is bumped by template changes.
    b(
        "",
        "v1",
        "podtemplates",
        "PodTemplate",
        true,
        &[],
        (false, false, true, false, false),
    ),
    b(
        "",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        (false, false, false, false, false),
    ),
    b(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        (false, false, false, true, false),
    ),
    b(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        (false, false, false, false, false),
    ),
    b(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["rs"],
        (true, true, true, false, true),
    ),
    b(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        (true, true, true, false, true),
    ),
    b(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        (true, false, true, false, false),
    ),
    b(
        "batch",
        "v1",
        "jobs",
        "Job",
        true,
        &[],
        (true, false, true, false, true),
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        &[],
        (false, false, false, false, false),
    ),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        (true, false, true, false, false),
    ),
    // RBAC objects are stored, not enforced: `davy install` applies into the sandbox.
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        (false, false, false, false, false),
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        (false, false, false, false, false),
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
        (false, false, false, false, false),
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        (false, false, false, false, false),
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        (true, false, true, false, false),
    ),
];

/// Table-row helper; the flags are (status, scale, generation, return_deleted, category `all`).
const fn b(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    flags: (bool, bool, bool, bool, bool),
) -> Builtin {
    Builtin {
        group,
        version,
        resource,
        kind,
        namespaced,
        short,
        status: flags.0,
        scale: flags.1,
        generation: flags.2,
        return_deleted: flags.3,
        all: flags.4,
    }
}

fn builtin_defs() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(|b| ResourceDef {
            gr: GroupResource::new(b.group, b.resource),
            versions: vec![b.version.to_string()],
            singular: b.kind.to_lowercase(),
            kind: b.kind.to_string(),
            list_kind: format!("{}List", b.kind),
            namespaced: b.namespaced,
            short_names: b.short.iter().map(|s| s.to_string()).collect(),
            categories: if b.all { vec!["all".into()] } else { vec![] },
            status: b.status,
            scale: b.scale.then(|| ScalePaths {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                label_selector: None,
            }),
            builtin: true,
            generation: b.generation,
            return_deleted: b.return_deleted,
            list_types: HashMap::new(),
            schema: None,
        })
        .collect()
}

fn invalid_crd(name: &str, field: &str, message: &str) -> ApiError {
    ApiError::Invalid {
        group: "apiextensions.k8s.io".into(),
        kind: "CustomResourceDefinition".into(),
        name: name.to_string(),
        causes: vec![Cause {
            field: field.to_string(),
            message: message.to_string(),
        }],
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Turns a CustomResourceDefinition object into the kind it defines.
pub fn def_from_crd(crd: &Value) -> Result<ResourceDef, ApiError> {
    let name = str_at(crd, &["metadata", "name"]).unwrap_or_default();
    let spec = crd
        .get("spec")
        .ok_or_else(|| invalid_crd(name, "spec", "Required value"))?;
    let group = str_at(spec, &["group"])
        .ok_or_else(|| invalid_crd(name, "spec.group", "Required value"))?;
    let plural = str_at(spec, &["names", "plural"])
        .ok_or_else(|| invalid_crd(name, "spec.names.plural", "Required value"))?;
    let kind = str_at(spec, &["names", "kind"])
        .ok_or_else(|| invalid_crd(name, "spec.names.kind", "Required value"))?;
    if name != format!("{plural}.{group}") {
        return Err(invalid_crd(
            name,
            "metadata.name",
            &format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = str_at(spec, &["scope"]).unwrap_or("Namespaced");
    let versions: Vec<&Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let served: Vec<&Value> = versions
        .iter()
        .copied()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .collect();
    if served.is_empty() {
        return Err(invalid_crd(
            name,
            "spec.versions",
            "must have at least one served version",
        ));
    }
    // The storage version comes first so that stored objects carry its apiVersion.
    let storage = served
        .iter()
        .copied()
        .find(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
        .unwrap_or(served[0]);
    let mut version_names: Vec<String> =
        vec![str_at(storage, &["name"]).unwrap_or("v1").to_string()];
    for v in &served {
        let n = str_at(v, &["name"]).unwrap_or("v1").to_string();
        if !version_names.contains(&n) {
            version_names.push(n);
        }
    }
    let subresources = storage.get("subresources");
    let scale = subresources
        .and_then(|s| s.get("scale"))
        .map(|s| ScalePaths {
            spec_replicas: str_at(s, &["specReplicasPath"])
                .unwrap_or(".spec.replicas")
                .to_string(),
            status_replicas: str_at(s, &["statusReplicasPath"])
                .unwrap_or(".status.replicas")
                .to_string(),
            label_selector: str_at(s, &["labelSelectorPath"]).map(str::to_string),
        });
    let strings = |key: &str| -> Vec<String> {
        spec.get("names")
            .and_then(|n| n.get(key))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut list_types = HashMap::new();
    let schema = storage.get("schema").and_then(|s| s.get("openAPIV3Schema"));
    if let Some(schema) = schema {
        collect_list_types(schema, &mut Vec::new(), &mut list_types);
    }
    Ok(ResourceDef {
        gr: GroupResource::new(group, plural),
        versions: version_names,
        singular: str_at(spec, &["names", "singular"])
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase()),
        kind: kind.to_string(),
        list_kind: str_at(spec, &["names", "listKind"])
            .map(str::to_string)
            .unwrap_or_else(|| format!("{kind}List")),
        namespaced: scope != "Cluster",
        short_names: strings("shortNames"),
        categories: strings("categories"),
        status: subresources.and_then(|s| s.get("status")).is_some(),
        scale,
        builtin: false,
        generation: true,
        return_deleted: false,
        list_types,
        schema: schema.cloned().map(Arc::new),
    })
}

/// Records `x-kubernetes-list-type` declarations of a structural schema by field path.
fn collect_list_types(schema: &Value, path: &mut Vec<String>, out: &mut HashMap<String, ListType>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            path.push(k.clone());
            collect_list_types(sub, path, out);
            path.pop();
        }
    }
    if let Some(items) = schema.get("items") {
        let declared = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => Some(ListType::Set),
            Some("map") => {
                let keys = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Some(ListType::Map(keys))
            }
            _ => None,
        };
        if let Some(t) = declared {
            out.insert(path.join("."), t);
        }
        collect_list_types(items, path, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_defines_kind_with_subresources_and_list_types() {
        let crd = json!({
            "metadata": {"name": "widgets.example.dev"},
            "spec": {
                "group": "example.dev", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object"}}}}}}}}
                ]
            }
        });
        let def = def_from_crd(&crd).unwrap();
        assert_eq!(def.versions, vec!["v1".to_string(), "v1alpha1".to_string()]);
        assert!(def.status && def.namespaced && !def.builtin);
        assert_eq!(def.scale.as_ref().unwrap().spec_replicas, ".spec.size");
        assert_eq!(
            def.list_type(&["spec", "ports"]),
            ListType::Map(vec!["name".into()])
        );
        assert_eq!(def.list_type(&["spec", "other"]), ListType::Atomic);
        assert_eq!(def.short_names, vec!["wd".to_string()]);
    }

    #[test]
    fn crd_name_must_match_plural_and_group() {
        let crd = json!({"metadata": {"name": "x.example.dev"}, "spec": {"group": "example.dev",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1", "served": true, "storage": true}]}});
        assert!(matches!(def_from_crd(&crd), Err(ApiError::Invalid { .. })));
    }

    #[test]
    fn builtin_merge_keys() {
        let reg = Registry::with_builtins();
        let deploy = reg.lookup("apps", "v1", "deployments").unwrap();
        let path = ["spec", "template", "spec", "containers", "ports"];
        assert_eq!(
            deploy.list_type(&path),
            ListType::Map(vec!["containerPort".into()])
        );
        let svc = reg.lookup("", "v1", "services").unwrap();
        assert_eq!(
            svc.list_type(&["spec", "ports"]),
            ListType::Map(vec!["port".into()])
        );
        assert_eq!(svc.list_type(&["metadata", "finalizers"]), ListType::Set);
        assert!(reg.lookup("apps", "v2", "deployments").is_none());
        let gvs = reg.group_versions();
        assert_eq!(gvs[0], ("".to_string(), vec!["v1".to_string()]));
    }
}
