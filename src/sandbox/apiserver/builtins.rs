//! What kube-apiserver writes into built-in kinds on the way in, where clients can tell: a
//! Secret's `stringData` folded into base64 `data` (and never stored), a Service's cluster IP
//! (allocated from 10.96.0.0/12, kept across updates, immutable once set), a Pod's grace period
//! on deletion. Pure functions; the allocator's state lives in the store.

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::resources::ResourceDef;

/// The standard base64 alphabet with padding (what Secret `data` holds).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// A Secret as stored: `stringData` entries encoded into `data` (they win over `data` entries
/// of the same key, as in Kubernetes), `stringData` removed, `type` defaulted to `Opaque`.
pub fn normalize_secret(obj: &mut Map<String, Value>) {
    if let Some(Value::Object(strings)) = obj.remove("stringData") {
        let data = obj
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if !data.is_object() {
            *data = Value::Object(Map::new());
        }
        if let Some(data) = data.as_object_mut() {
            for (k, v) in strings {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                data.insert(k, json!(base64(text.as_bytes())));
            }
        }
    } else {
        obj.remove("stringData");
    }
    obj.entry("type").or_insert(json!("Opaque"));
}

/// A Pod's `terminationGracePeriodSeconds` when its spec names none.
pub const DEFAULT_POD_GRACE_SECONDS: i64 = 30;

/// The grace period a DELETE gives a Pod: `gracePeriodSeconds` of the request, else the Pod's
/// `terminationGracePeriodSeconds`, else 30 s; but 0 for a Pod not bound to a node or already
/// finished, which kube-apiserver deletes at once since no kubelet has anything to stop.
pub fn pod_grace_seconds(pod: &Value, requested: Option<i64>) -> i64 {
    let spec = spec(pod);
    let bound = spec
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod
        .get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str);
    if !bound || matches!(phase, Some("Succeeded" | "Failed")) {
        return 0;
    }
    requested
        .or_else(|| {
            spec.and_then(|s| s.get("terminationGracePeriodSeconds"))
                .and_then(Value::as_i64)
        })
        .unwrap_or(DEFAULT_POD_GRACE_SECONDS)
        .max(0)
}

/// `metadata.deletionGracePeriodSeconds` (0 when absent).
pub fn deletion_grace(obj: &Value) -> i64 {
    obj.get("metadata")
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// What a Service needs in the way of a cluster IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterIp {
    /// `type: ExternalName`: none.
    NotApplicable,
    /// `clusterIP: None`: headless, nothing to allocate.
    Headless,
    /// The client asked for this address.
    Requested(String),
    /// No address given: the server allocates one.
    Allocate,
}

fn spec(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("spec").and_then(Value::as_object)
}

/// What `obj` (a Service) asks for.
pub fn cluster_ip_request(obj: &Value) -> ClusterIp {
    let spec = spec(obj);
    if spec.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("ExternalName") {
        return ClusterIp::NotApplicable;
    }
    let given = spec
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            spec.and_then(|s| s.get("clusterIPs"))
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .filter(|ip| !ip.is_empty())
        });
    match given {
        Some("None") => ClusterIp::Headless,
        Some(ip) => ClusterIp::Requested(ip.to_string()),
        None => ClusterIp::Allocate,
    }
}

/// The stored address of a Service, if it holds one (not headless, not ExternalName).
pub fn allocated_ip(obj: &Value) -> Option<String> {
    match cluster_ip_request(obj) {
        ClusterIp::Requested(ip) => Some(ip),
        _ => None,
    }
}

/// Writes `clusterIP`, `clusterIPs` and the single-stack IPv4 family fields a real server adds.
pub fn set_cluster_ip(obj: &mut Value, ip: &str) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        spec.entry("sessionAffinity").or_insert(json!("None"));
        spec.entry("internalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
}

/// Offset of the first address handed out in 10.96.0.0/12.
const FIRST_SERVICE_IP: u32 = 10;
/// Addresses the allocator hands out (the range less the first ones and the broadcast).
pub const SERVICE_IPS: u32 = (1 << 20) - FIRST_SERVICE_IP - 1;

/// The `n`-th address the allocator hands out: 10.96.0.10 onwards inside 10.96.0.0/12 (the
/// default service range; the first addresses are left for `kubernetes` and DNS), wrapping.
pub fn nth_service_ip(n: u32) -> String {
    const BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
    let offset = FIRST_SERVICE_IP + n % SERVICE_IPS;
    Ipv4Addr::from(BASE + offset).to_string()
}

/// A requested address must be an IPv4 address inside the service range.
pub fn check_requested_ip(def: &ResourceDef, name: &str, ip: &str) -> Result<(), ApiError> {
    let ok = ip
        .parse::<Ipv4Addr>()
        .is_ok_and(|a| a.octets()[0] == 10 && (a.octets()[1] & 0xf0) == 96);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &def.gr.group,
            &def.kind,
            name,
            "spec.clusterIPs",
            format!(
                "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
            ),
        ))
    }
}

/// An update keeps the stored address when it names none, and may not change it.
pub fn keep_cluster_ip(def: &ResourceDef, old: &Value, new: &mut Value) -> Result<(), ApiError> {
    let Some(old_ip) = allocated_ip(old) else {
        return Ok(());
    };
    match cluster_ip_request(new) {
        ClusterIp::Allocate => {
            set_cluster_ip(new, &old_ip);
            Ok(())
        }
        ClusterIp::Requested(ip) if ip == old_ip => {
            set_cluster_ip(new, &old_ip);
            Ok(())
        }
        ClusterIp::NotApplicable => Ok(()),
        other => {
            let shown = match other {
                ClusterIp::Requested(ip) => ip,
                _ => "None".to_string(),
            };
            Err(ApiError::invalid(
                &def.gr.group,
                &def.kind,
                super::rules::meta_str(old, "name").unwrap_or_default(),
                "spec.clusterIPs[0]",
                format!("Invalid value: []string{{\"{shown}\"}}: may not change once set"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"s3cr3t-token"), "czNjcjN0LXRva2Vu");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn string_data_folds_into_data() {
        let mut s =
            json!({"data": {"a": "eA==", "b": "eA=="}, "stringData": {"b": "yes", "c": "token"}});
        normalize_secret(s.as_object_mut().unwrap());
        assert_eq!(
            s,
            json!({"data": {"a": "eA==", "b": "eWVz", "c": "dG9rZW4="}, "type": "Opaque"})
        );
        let mut t = json!({"type": "kubernetes.io/tls", "stringData": {"k": "v"}});
        normalize_secret(t.as_object_mut().unwrap());
        assert_eq!(
            t,
            json!({"type": "kubernetes.io/tls", "data": {"k": "dg=="}})
        );
    }

    #[test]
    fn pod_grace_periods() {
        let pod = |spec: Value, phase: &str| json!({"spec": spec, "status": {"phase": phase}});
        let bound = json!({"nodeName": "sandbox"});
        assert_eq!(pod_grace_seconds(&pod(bound.clone(), "Running"), None), 30);
        assert_eq!(
            pod_grace_seconds(&pod(bound.clone(), "Running"), Some(0)),
            0
        );
        assert_eq!(
            pod_grace_seconds(&pod(bound.clone(), "Running"), Some(5)),
            5
        );
        let custom = json!({"nodeName": "sandbox", "terminationGracePeriodSeconds": 2});
        assert_eq!(pod_grace_seconds(&pod(custom, "Running"), None), 2);
        assert_eq!(
            pod_grace_seconds(&pod(json!({}), "Running"), None),
            0,
            "unbound"
        );
        assert_eq!(
            pod_grace_seconds(&pod(bound, "Succeeded"), None),
            0,
            "finished"
        );
        assert_eq!(
            deletion_grace(&json!({"metadata": {"deletionGracePeriodSeconds": 3}})),
            3
        );
        assert_eq!(deletion_grace(&json!({"metadata": {}})), 0);
    }

    #[test]
    fn cluster_ip_requests() {
        let svc = |spec: Value| json!({"spec": spec});
        assert_eq!(cluster_ip_request(&svc(json!({}))), ClusterIp::Allocate);
        assert_eq!(
            cluster_ip_request(&svc(json!({"clusterIP": ""}))),
            ClusterIp::Allocate
        );
        assert_eq!(
            cluster_ip_request(&svc(json!({"clusterIP": "None"}))),
            ClusterIp::Headless
        );
        assert_eq!(
            cluster_ip_request(&svc(json!({"clusterIPs": ["10.96.1.1"]}))),
            ClusterIp::Requested("10.96.1.1".into())
        );
        assert_eq!(
            cluster_ip_request(&svc(json!({"type": "ExternalName", "externalName": "x"}))),
            ClusterIp::NotApplicable
        );
        assert_eq!(nth_service_ip(0), "10.96.0.10");
        assert_eq!(nth_service_ip(300), "10.96.1.54");
    }
}
