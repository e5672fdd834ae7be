//! AWS App Mesh router: edits in place the VirtualRouter the Rollout's VirtualService names
//! (`spec.provider.virtualRouter.virtualRouterRef`), giving the stable VirtualNode
//! `100 - weight` and the canary VirtualNode `weight` in the weighted targets of each route
//! (every route, or the named ones), and points each VirtualNode's pod selector at its
//! ReplicaSet's pod-template hash, as upstream. Header and mirror routes are no-ops, as
//! upstream.

use serde_json::{Value, json};

use crate::api::Rollout;
use crate::api::consts::{annotation, label};
use crate::api::traffic_routing::AppMeshTrafficRouting;

use super::error::TrafficError;
use super::objects::{DesiredObject, Ownership, ResourceType, str_at};
use super::{RouterInput, namespace};

/// Upstream's error texts.
const ERR_VIRTUAL_SERVICE_NOT_USING_ROUTER: &str =
    "Virtual-service is not associated with virtual-router";
const ERR_VIRTUAL_SERVICE_MISSING: &str = "Virtual-service is missing";
const ERR_VIRTUAL_ROUTER_MISSING: &str = "Virtual-router is missing";
const ERR_VIRTUAL_NODE_MISSING: &str = "Virtual-node is missing";
const ERR_NOT_WELL_FORMED: &str = "not well-formed";
/// Hashes given to the VirtualNodes when a ReplicaSet is missing (or canary = stable).
const DEFAULT_CANARY_HASH: &str = "canary-hash";
const DEFAULT_STABLE_HASH: &str = "stable-hash";
/// Route kinds whose `action.weightedTargets` are edited, in upstream's lookup order.
const ROUTE_TYPES: [&str; 4] = ["httpRoute", "tcpRoute", "http2Route", "grpcRoute"];

fn appmesh_config(rollout: &Rollout) -> Result<&AppMeshTrafficRouting, TrafficError> {
    super::traffic_routing(rollout)?
        .app_mesh
        .as_ref()
        .ok_or(TrafficError::NotConfigured("appMesh"))
}

fn invalid(message: &str) -> TrafficError {
    TrafficError::InvalidRoute(message.to_string())
}

/// Objects to observe: the VirtualService and both VirtualNodes (the VirtualRouter is found
/// through the VirtualService, see [`followed_refs`]).
pub fn watched(rollout: &Rollout) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    let config = appmesh_config(rollout)?;
    let ns = namespace(rollout);
    let mut out = Vec::new();
    if let Some(vs) = &config.virtual_service {
        out.push((
            ResourceType::appmesh_virtual_service(),
            ns.clone(),
            vs.name.clone(),
        ));
    }
    if let Some(group) = &config.virtual_node_group {
        for node in [
            &group.stable_virtual_node_ref,
            &group.canary_virtual_node_ref,
        ] {
            out.push((
                ResourceType::appmesh_virtual_node(),
                ns.clone(),
                node.name.clone(),
            ));
        }
    }
    Ok(out)
}

/// The objects an observed object names that must be observed too: for an App Mesh
/// VirtualService, its VirtualRouter. Empty for every other object.
pub fn followed_refs(
    resource: &ResourceType,
    object: &Value,
) -> Vec<(ResourceType, String, String)> {
    if *resource != ResourceType::appmesh_virtual_service() {
        return Vec::new();
    }
    virtual_router_ref(object)
        .map(|(ns, name)| vec![(ResourceType::appmesh_virtual_router(), ns, name)])
        .unwrap_or_default()
}

/// `(namespace, name)` of the VirtualRouter a VirtualService names (namespace defaulting to
/// the VirtualService's).
fn virtual_router_ref(vsvc: &Value) -> Option<(String, String)> {
    let reference = vsvc.pointer("/spec/provider/virtualRouter/virtualRouterRef")?;
    let ns = reference
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| str_at(vsvc, &["metadata", "namespace"]))
        .unwrap_or_default();
    let name = reference
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some((ns.to_string(), name.to_string()))
}

/// The VirtualNodes with their hashes (upstream `UpdateHash`), then the VirtualRouter with the
/// weights (upstream `SetWeight`).
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let config = appmesh_config(rollout)?;
    let ns = namespace(rollout);
    let mut out = Vec::new();

    let group = config.virtual_node_group.clone().unwrap_or_default();
    let stable_hash = if input.state.stable_hash.is_empty() {
        DEFAULT_STABLE_HASH
    } else {
        input.state.stable_hash.as_str()
    };
    let canary_hash =
        if input.state.canary_hash.is_empty() || input.state.canary_hash == stable_hash {
            DEFAULT_CANARY_HASH
        } else {
            input.state.canary_hash.as_str()
        };
    let node = ResourceType::appmesh_virtual_node();
    for (reference, hash) in [
        (&group.stable_virtual_node_ref, stable_hash),
        (&group.canary_virtual_node_ref, canary_hash),
    ] {
        let live = input
            .observed
            .get(&node, &ns, &reference.name)
            .ok_or_else(|| invalid(ERR_VIRTUAL_NODE_MISSING))?;
        let mut object = live.clone();
        super::objects::set_at(
            &mut object,
            &["metadata", "annotations", annotation::MANAGED_BY_ROLLOUTS],
            json!(super::rollout_name(rollout)),
        );
        let labels = object
            .pointer("/spec/podSelector/matchLabels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut labels = labels;
        labels.insert(label::POD_TEMPLATE_HASH.into(), json!(hash));
        super::objects::set_at(
            &mut object,
            &["spec", "podSelector", "matchLabels"],
            Value::Object(labels),
        );
        out.push(edit(node.clone(), &ns, &reference.name, object));
    }

    let vs_name = config
        .virtual_service
        .as_ref()
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let vsvc = input
        .observed
        .get(&ResourceType::appmesh_virtual_service(), &ns, &vs_name)
        .ok_or_else(|| invalid(ERR_VIRTUAL_SERVICE_MISSING))?;
    let (router_ns, router_name) =
        virtual_router_ref(vsvc).ok_or_else(|| invalid(ERR_VIRTUAL_SERVICE_NOT_USING_ROUTER))?;
    let router = ResourceType::appmesh_virtual_router();
    let live = input
        .observed
        .get(&router, &router_ns, &router_name)
        .ok_or_else(|| invalid(ERR_VIRTUAL_ROUTER_MISSING))?;
    let routes: Vec<String> = config
        .virtual_service
        .as_ref()
        .and_then(|v| v.routes.clone())
        .unwrap_or_default();
    let object = weighted_router(
        live,
        &routes,
        &ns,
        &group.stable_virtual_node_ref.name,
        &group.canary_virtual_node_ref.name,
        i64::from(input.state.weight),
    )?;
    out.push(edit(router, &router_ns, &router_name, object));
    Ok(out)
}

fn edit(resource: ResourceType, ns: &str, name: &str, object: Value) -> DesiredObject {
    DesiredObject {
        resource,
        namespace: ns.to_string(),
        name: name.to_string(),
        object,
        ownership: Ownership::EditInPlace,
        on_create: None,
        on_update: None,
    }
}

/// The VirtualRouter with the weighted targets of the stable and canary VirtualNodes (in the
/// Rollout's namespace) set, in every route or only those named in `routes`.
pub fn weighted_router(
    live: &Value,
    routes: &[String],
    rollout_ns: &str,
    stable_node: &str,
    canary_node: &str,
    weight: i64,
) -> Result<Value, TrafficError> {
    let mut object = live.clone();
    let name = str_at(live, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    let not_well_formed = |path: String| {
        TrafficError::InvalidRoute(format!(
            "{path}: Invalid value: \"{name}\": {ERR_NOT_WELL_FORMED}"
        ))
    };
    let Some(list) = object
        .pointer_mut("/spec/routes")
        .and_then(Value::as_array_mut)
    else {
        return Err(TrafficError::InvalidRoute(format!(
            "spec.routes: Invalid value: \"{name}\": No routes found"
        )));
    };
    for (idx, route) in list.iter_mut().enumerate() {
        let path = format!("spec.routes[{idx}]");
        let Some(route) = route.as_object_mut() else {
            return Err(not_well_formed(path));
        };
        let Some(route_name) = route.get("name").and_then(Value::as_str) else {
            return Err(not_well_formed(format!("{path}.name")));
        };
        if !routes.is_empty() && !routes.iter().any(|r| r == route_name) {
            continue;
        }
        let Some(route_type) = ROUTE_TYPES
            .iter()
            .find(|t| route.get(**t).is_some_and(Value::is_object))
        else {
            return Err(not_well_formed(path));
        };
        let targets_path = format!("{path}.{route_type}.action.weightedTargets");
        let targets = route
            .get_mut(*route_type)
            .and_then(|r| r.pointer_mut("/action/weightedTargets"))
            .and_then(Value::as_array_mut)
            .ok_or_else(|| not_well_formed(targets_path.clone()))?;
        for (i, target) in targets.iter_mut().enumerate() {
            let target_path = format!("{targets_path}[{i}]");
            let Some(target) = target.as_object_mut() else {
                return Err(not_well_formed(target_path));
            };
            let Some(node_ref) = target.get("virtualNodeRef").and_then(Value::as_object) else {
                return Err(not_well_formed(format!("{target_path}.virtualNodeRef")));
            };
            let node = node_ref
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let node_ns = node_ref
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(rollout_ns);
            if !target.get("weight").is_some_and(Value::is_number) {
                return Err(not_well_formed(format!("{target_path}.weight")));
            }
            let want = if node == stable_node && node_ns == rollout_ns {
                Some(100 - weight)
            } else if node == canary_node && node_ns == rollout_ns {
                Some(weight)
            } else {
                None
            };
            if let Some(want) = want {
                target.insert("weight".into(), json!(want));
            }
        }
    }
    Ok(object)
}
