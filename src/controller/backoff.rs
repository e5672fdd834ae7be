//! Per-object retry backoff shared by the reconcilers: 250 ms after the first failure,
//! doubling per consecutive failure up to [`MAX_BACKOFF`], forgotten on the next success.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::Resource;
use kube::runtime::reflector::ObjectRef;

/// Longest wait between retries of a failing reconcile.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Consecutive failures by object.
pub struct Backoff<K: Resource<DynamicType = ()>> {
    failures: Mutex<HashMap<ObjectRef<K>, u32>>,
}

impl<K: Resource<DynamicType = ()>> Default for Backoff<K> {
    fn default() -> Self {
        Backoff {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Resource<DynamicType = ()>> Backoff<K> {
    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<K>, u32>> {
        // A poisoned map only means a reconcile panicked; the counters are still usable.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more failure of `object` and returns how long to wait before retrying.
    pub fn failed(&self, object: &K) -> Duration {
        let mut failures = self.failures();
        let count = failures.entry(ObjectRef::from_obj(object)).or_insert(0);
        *count = count.saturating_add(1);
        Duration::from_millis(250)
            .saturating_mul(1u32 << (*count - 1).min(6))
            .min(MAX_BACKOFF)
    }

    /// Forgets the failures of `object` after a successful reconcile.
    pub fn succeeded(&self, object: &K) {
        self.failures().remove(&ObjectRef::from_obj(object));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Rollout;

    #[test]
    fn doubles_from_250ms_up_to_the_cap_and_resets_on_success() {
        let backoff = Backoff::<Rollout>::default();
        let rollout: Rollout = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {}
        }))
        .unwrap();
        let delays: Vec<u128> = (0..8)
            .map(|_| backoff.failed(&rollout).as_millis())
            .collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        backoff.succeeded(&rollout);
        assert_eq!(backoff.failed(&rollout), Duration::from_millis(250));
    }
}
