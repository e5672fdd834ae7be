//! SMI router (spec §7.2): one TrafficSplit, controlled by the Rollout, splitting the root
//! Service between the canary, any experiment Services and the stable Service.

use serde_json::{Value, json};

use crate::api::Rollout;
use crate::api::consts::event_reason;
use crate::api::traffic_routing::SmiTrafficRouting;

use super::error::TrafficError;
use super::objects::{DesiredObject, Ownership, ResourceType, RouterEvent};
use super::{
    RouterConfig, RouterInput, canary, controller_ref, namespace, rollout_name, service_name,
};

/// TrafficSplit API version (`--traffic-split-api-version`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmiApiVersion {
    /// `v1alpha1`: weights are Quantities (JSON strings), upstream's default.
    #[default]
    V1alpha1,
    /// `v1alpha2`: integer weights.
    V1alpha2,
    /// `v1alpha3`: integer weights.
    V1alpha3,
}

impl SmiApiVersion {
    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            SmiApiVersion::V1alpha1 => "v1alpha1",
            SmiApiVersion::V1alpha2 => "v1alpha2",
            SmiApiVersion::V1alpha3 => "v1alpha3",
        }
    }

    /// Parses a version string; `None` for versions upstream rejects.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "v1alpha1" => Some(SmiApiVersion::V1alpha1),
            "v1alpha2" => Some(SmiApiVersion::V1alpha2),
            "v1alpha3" => Some(SmiApiVersion::V1alpha3),
            _ => None,
        }
    }

    /// A backend weight as this version encodes it.
    fn weight(self, w: i32) -> Value {
        match self {
            // resource.NewQuantity(w, DecimalExponent) marshals as its decimal string.
            SmiApiVersion::V1alpha1 => Value::from(w.to_string()),
            SmiApiVersion::V1alpha2 | SmiApiVersion::V1alpha3 => Value::from(w),
        }
    }
}

fn smi_config(rollout: &Rollout) -> Result<&SmiTrafficRouting, TrafficError> {
    super::traffic_routing(rollout)?
        .smi
        .as_ref()
        .ok_or(TrafficError::NotConfigured("smi"))
}

/// `trafficSplitName`, default the Rollout name.
pub fn traffic_split_name(rollout: &Rollout) -> Result<String, TrafficError> {
    let name = rollout_name(rollout);
    Ok(smi_config(rollout)?.traffic_split_name(&name).to_string())
}

/// Objects to observe: the TrafficSplit.
pub fn watched(
    rollout: &Rollout,
    config: &RouterConfig,
) -> Result<Vec<(ResourceType, String, String)>, TrafficError> {
    Ok(vec![(
        ResourceType::traffic_split(config.smi_api_version.as_str()),
        namespace(rollout),
        traffic_split_name(rollout)?,
    )])
}

/// The TrafficSplit: canary `W`, each experiment Service its weight, stable the rest of 100.
pub fn desired(input: &RouterInput<'_>) -> Result<Vec<DesiredObject>, TrafficError> {
    let rollout = input.rollout;
    let strategy = canary(rollout)?;
    let smi = smi_config(rollout)?;
    let version = input.config.smi_api_version;
    let stable = service_name(
        &strategy.stable_service,
        "spec.strategy.canary.stableService",
    )?;
    let canary_svc = service_name(
        &strategy.canary_service,
        "spec.strategy.canary.canaryService",
    )?;
    let name = traffic_split_name(rollout)?;
    let ns = namespace(rollout);
    let weight = input.state.weight;

    let mut backends = vec![json!({"service": canary_svc, "weight": version.weight(weight)})];
    // Upstream does not clamp: an experiment heavier than the stable share goes negative.
    let mut stable_weight = 100 - weight;
    for dest in &input.state.additional_destinations {
        backends.push(json!({"service": dest.service_name, "weight": version.weight(dest.weight)}));
        stable_weight -= dest.weight;
    }
    backends.push(json!({"service": stable, "weight": version.weight(stable_weight)}));

    let resource = ResourceType::traffic_split(version.as_str());
    let object = json!({
        "apiVersion": resource.api_version(),
        "kind": "TrafficSplit",
        "metadata": {
            "name": name,
            "namespace": ns,
            "ownerReferences": [controller_ref(rollout)?],
        },
        "spec": {
            "service": smi.root_service(stable),
            "backends": backends,
        },
    });
    Ok(vec![DesiredObject {
        resource,
        namespace: ns,
        name: name.clone(),
        object,
        ownership: Ownership::Controlled,
        on_create: Some(RouterEvent::new(
            event_reason::TRAFFIC_SPLIT_CREATED,
            format!("TrafficSplit `{name}` created"),
        )),
        on_update: None,
    }])
}
