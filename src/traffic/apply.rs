//! The thin executor: reads router objects through a dynamic `kube::Api`, and writes desired
//! objects (create when absent, JSON merge patch when different, delete when they must not
//! exist), with every decision taken by the pure [`plan_write`].

use kube::Client;
use kube::api::{Api, DynamicObject, Patch};
use kube::discovery::ApiResource;
use serde_json::Value;
use thiserror::Error;

use super::error::TrafficError;
use super::objects::{
    DesiredObject, Observed, PlannedWrite, ResourceType, RouterEvent, WriteAction, plan_write,
};
use crate::api::field_manager;

/// A failed [`apply`]: the error, and the events of the writes that succeeded before it (the
/// caller still records them).
#[derive(Debug, Error)]
#[error("{error}")]
pub struct ApplyFailure {
    /// Events of the writes done before the failure.
    pub events: Vec<RouterEvent>,
    /// What failed.
    pub error: TrafficError,
}

fn api_resource(resource: &ResourceType) -> ApiResource {
    ApiResource {
        group: resource.group.clone(),
        version: resource.version.clone(),
        api_version: resource.api_version(),
        kind: resource.kind.clone(),
        plural: resource.plural.clone(),
    }
}

fn api(client: &Client, resource: &ResourceType, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &api_resource(resource))
}

async fn get(
    client: &Client,
    resource: &ResourceType,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, TrafficError> {
    let found = api(client, resource, namespace).get_opt(name).await?;
    found
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| TrafficError::Api {
            code: None,
            message: e.to_string(),
        })
}

/// Reads every `(type, namespace, name)` in `refs` (as `Router::watched` lists them), and the
/// objects those name that no Rollout field names (the App Mesh VirtualRouter of a
/// VirtualService); absent objects are simply not in the result.
pub async fn observe(
    client: &Client,
    refs: &[(ResourceType, String, String)],
) -> Result<Observed, TrafficError> {
    let mut observed = Observed::new();
    for (resource, namespace, name) in refs {
        if let Some(object) = get(client, resource, namespace, name).await? {
            let next = super::appmesh::followed_refs(resource, &object);
            observed.insert(object);
            for (resource, namespace, name) in next {
                if let Some(object) = get(client, &resource, &namespace, &name).await? {
                    observed.insert(object);
                }
            }
        }
    }
    Ok(observed)
}

/// Writes `desired` in order for the Rollout whose uid is `rollout_uid`: each object is read,
/// [`plan_write`] decides, the write is sent. Returns the events to record on the Rollout.
/// A create that races with another writer (409 AlreadyExists) falls back to a patch of what
/// is there, as upstream does.
pub async fn apply(
    client: &Client,
    rollout_uid: &str,
    desired: &[DesiredObject],
) -> Result<Vec<RouterEvent>, ApplyFailure> {
    let mut events = Vec::new();
    for object in desired {
        match apply_one(client, rollout_uid, object).await {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(error) => return Err(ApplyFailure { events, error }),
        }
    }
    Ok(events)
}

async fn apply_one(
    client: &Client,
    rollout_uid: &str,
    desired: &DesiredObject,
) -> Result<Option<RouterEvent>, TrafficError> {
    let live = get(client, &desired.resource, &desired.namespace, &desired.name).await?;
    let Some(write) = plan_write(desired, live.as_ref(), rollout_uid)? else {
        return Ok(None);
    };
    match send(client, &write).await {
        Err(TrafficError::Api {
            code: Some(409), ..
        }) if matches!(write.action, WriteAction::Create(_)) => {
            let live = get(client, &desired.resource, &desired.namespace, &desired.name).await?;
            match plan_write(desired, live.as_ref(), rollout_uid)? {
                Some(write) => {
                    send(client, &write).await?;
                    Ok(write.event)
                }
                None => Ok(None),
            }
        }
        Err(e) => Err(e),
        Ok(()) => Ok(write.event),
    }
}

async fn send(client: &Client, write: &PlannedWrite) -> Result<(), TrafficError> {
    let api = api(client, &write.resource, &write.namespace);
    match &write.action {
        WriteAction::Create(object) => {
            let object: DynamicObject =
                serde_json::from_value(object.clone()).map_err(|e| TrafficError::Api {
                    code: None,
                    message: e.to_string(),
                })?;
            let params = field_manager::post(field_manager::CONTROLLER);
            api.create(&params, &object).await?;
        }
        WriteAction::Patch(patch) => {
            let params = field_manager::patch(field_manager::CONTROLLER);
            api.patch(&write.name, &params, &Patch::Merge(patch))
                .await?;
        }
        WriteAction::Delete => {
            match api.delete(&write.name, &Default::default()).await {
                // Already gone: what the write wanted.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
    }
    Ok(())
}
