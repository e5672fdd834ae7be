//! Leader election on a `coordination.k8s.io/v1` Lease, as upstream's controller does with
//! client-go (spec §10.1): the pure [`decide`] step of client-go's `tryAcquireOrRenew`, and the
//! thin [`run_elected`] loop that campaigns, keeps the lease renewed while the reconcilers run,
//! and stops them when the lease is lost.
//!
//! Writes use optimistic concurrency: a `replace` carries the `resourceVersion` that was read,
//! so when two candidates race for an expired lease exactly one wins and the other gets a 409.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

/// Upstream's lock name (`defaultLeaderElectionLeaseLockName`).
pub const LOCK_NAME: &str = "argo-rollouts-controller-lock";

/// Upstream's namespace when neither `POD_NAMESPACE` nor the service account says otherwise.
pub const DEFAULT_NAMESPACE: &str = "argo-rollouts";

/// The file a pod's service account namespace is mounted at.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// How long a lease lasts, how long a leader keeps trying to renew it, and how often
/// candidates retry (upstream defaults 15 s, 10 s, 2 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// A follower takes over a lease not renewed for this long.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long gives up.
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Where the lock lives, who we are, and the timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease ([`LOCK_NAME`]).
    pub lock_name: String,
    /// Our identity (the Lease's `holderIdentity` while we lead).
    pub identity: String,
    /// Durations.
    pub timing: LeaseTiming,
}

/// Upstream's `leaseLockName`: [`LOCK_NAME`], suffixed `-<instance-id>` for a sharded controller
/// so each instance elects its own leader.
pub fn lock_name(instance_id: Option<&str>) -> String {
    match instance_id.filter(|id| !id.is_empty()) {
        Some(id) => format!("{LOCK_NAME}-{id}"),
        None => LOCK_NAME.to_string(),
    }
}

impl LeaderElection {
    /// Upstream's defaults for `namespace` with a fresh [`default_identity`].
    pub fn new(namespace: impl Into<String>) -> Self {
        LeaderElection {
            namespace: namespace.into(),
            lock_name: LOCK_NAME.to_string(),
            identity: default_identity(),
            timing: LeaseTiming::default(),
        }
    }
}

/// Upstream's identity: hostname, `_`, a random suffix (so two processes on one host differ).
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "davy".to_string());
    format!("{host}_{}", random_suffix())
}

/// 16 hex digits from the std hasher's per-process random keys, the clock and the pid: unique
/// enough to tell candidates apart without a random-number dependency.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The lock namespace when no flag names one: where the controller runs (`POD_NAMESPACE`, else
/// the service account's namespace), else `outside` — the kubeconfig context's namespace for a
/// controller run outside a cluster. Upstream falls back to [`DEFAULT_NAMESPACE`] instead, which
/// leaves a controller started by hand against a cluster without that namespace campaigning
/// forever.
pub fn default_namespace(outside: &str) -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .ok()
                .map(|ns| ns.trim().to_string())
        })
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| outside.to_string())
}

/// What one election step decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No Lease yet: create it with this spec.
    Create(LeaseSpec),
    /// The lease is free or expired: take it over with this spec.
    Acquire(LeaseSpec),
    /// We hold it: write this spec (renew time moved to now).
    Renew(LeaseSpec),
    /// Someone else holds a live lease.
    Follow {
        /// The current holder.
        holder: String,
    },
}

/// When `current` was first seen in its present form, given what was seen before: client-go
/// measures expiry from its own observation time, not from the holder's `renewTime`, so clock
/// skew between candidates cannot make a live lease look expired.
pub fn observed_at(
    previous: Option<&(LeaseSpec, DateTime<Utc>)>,
    current: &LeaseSpec,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match previous {
        Some((spec, seen)) if spec == current => *seen,
        _ => now,
    }
}

/// One step of client-go's `tryAcquireOrRenew` for `identity` at `now`; `seen_at` is
/// [`observed_at`] of `current`.
pub fn decide(
    current: Option<&LeaseSpec>,
    seen_at: DateTime<Utc>,
    identity: &str,
    now: DateTime<Utc>,
    timing: &LeaseTiming,
) -> Decision {
    let duration_seconds =
        i32::try_from(timing.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let fresh = |acquire: DateTime<Utc>, transitions: i32| LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(duration_seconds),
        acquire_time: Some(micro_time(acquire)),
        renew_time: Some(micro_time(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    };
    let Some(current) = current else {
        return Decision::Create(fresh(now, 0));
    };
    let holder = current.holder_identity.clone().unwrap_or_default();
    let transitions = current.lease_transitions.unwrap_or(0);
    if holder == identity {
        let acquired = current.acquire_time.as_ref().map_or(now, from_micro_time);
        return Decision::Renew(LeaseSpec {
            preferred_holder: current.preferred_holder.clone(),
            strategy: current.strategy.clone(),
            ..fresh(acquired, transitions)
        });
    }
    // The holder's own duration counts (it may differ from ours); a released lease has none.
    let held_for = current
        .lease_duration_seconds
        .map_or(timing.lease_duration, |s| {
            Duration::from_secs(u64::try_from(s).unwrap_or(0))
        });
    let expires = seen_at + chrono::Duration::from_std(held_for).unwrap_or_default();
    if !holder.is_empty() && expires > now {
        return Decision::Follow { holder };
    }
    Decision::Acquire(fresh(now, transitions.saturating_add(1)))
}

/// Whether a leader whose last successful renewal was at `renewed` still counts as leading.
pub fn still_leading(renewed: DateTime<Utc>, now: DateTime<Utc>, timing: &LeaseTiming) -> bool {
    now - renewed < chrono::Duration::from_std(timing.renew_deadline).unwrap_or_default()
}

/// The spec written when a leader steps down cleanly: no holder, so a follower takes over at
/// its next retry instead of waiting for the lease to expire.
pub fn released(current: &LeaseSpec, now: DateTime<Utc>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(micro_time(now)),
        renew_time: Some(micro_time(now)),
        lease_transitions: current.lease_transitions,
        ..LeaseSpec::default()
    }
}

fn micro_time(time: DateTime<Utc>) -> MicroTime {
    let micros = time.timestamp_micros();
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(micros)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn from_micro_time(time: &MicroTime) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.0.as_microsecond()).unwrap_or_default()
}

/// Why leading ended other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The lease could not be renewed within the renew deadline (or another candidate took
    /// it): the reconcilers were stopped. Upstream's process exits here and is restarted.
    #[error("lost the leader lease {namespace}/{name}")]
    Lost {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
    },
}

/// The outcome of one attempt against the API.
enum Attempt {
    Leading,
    Following(String),
    /// The API failed or another candidate won the write race (409).
    Failed,
}

struct Elector {
    api: Api<Lease>,
    config: LeaderElection,
    /// The last record read and when it was first seen (client-go's observedRecord/Time).
    observed: Option<(LeaseSpec, DateTime<Utc>)>,
}

impl Elector {
    async fn try_acquire_or_renew(&mut self) -> Attempt {
        let now = Utc::now();
        let lease = match self.api.get_opt(&self.config.lock_name).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(
                    namespace = %self.config.namespace,
                    lease = %self.config.lock_name,
                    %error,
                    "cannot read the leader Lease; retrying"
                );
                return Attempt::Failed;
            }
        };
        let spec = lease.as_ref().map(|l| l.spec.clone().unwrap_or_default());
        let seen_at = spec
            .as_ref()
            .map_or(now, |s| observed_at(self.observed.as_ref(), s, now));
        if let Some(spec) = &spec {
            self.observed = Some((spec.clone(), seen_at));
        }
        let decision = decide(
            spec.as_ref(),
            seen_at,
            &self.config.identity,
            now,
            &self.config.timing,
        );
        let result = match (decision, lease) {
            (Decision::Follow { holder }, _) => return Attempt::Following(holder),
            (Decision::Create(spec), _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.lock_name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Decision::Acquire(spec) | Decision::Renew(spec), Some(mut lease)) => {
                // `lease` keeps the resourceVersion just read: a concurrent write makes this 409.
                lease.spec = Some(spec);
                self.api
                    .replace(&self.config.lock_name, &PostParams::default(), &lease)
                    .await
            }
            (Decision::Acquire(_) | Decision::Renew(_), None) => return Attempt::Failed,
        };
        match result {
            Ok(written) => {
                self.observed = written.spec.map(|spec| (spec, now));
                Attempt::Leading
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!("another candidate wrote the leader lease first");
                Attempt::Failed
            }
            Err(error) => {
                tracing::warn!(
                    namespace = %self.config.namespace,
                    lease = %self.config.lock_name,
                    %error,
                    "cannot create or renew the leader Lease; retrying"
                );
                Attempt::Failed
            }
        }
    }

    /// Steps down: clears the holder if we still hold the lease (best effort).
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.lock_name).await else {
            return;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        lease.spec = Some(released(&spec, Utc::now()));
        if let Err(error) = self
            .api
            .replace(&self.config.lock_name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, "releasing the leader lease");
        }
    }
}

/// Campaigns for the lease until `shutdown`; once leading, runs `lead` with a token that is
/// cancelled on shutdown or when the lease is lost, and keeps renewing meanwhile.
///
/// Returns `Ok` after a shutdown (the lease is then released, once `lead` has finished, so a
/// follower takes over at its next retry — upstream leaves the lease to expire because its
/// workers may still be writing at that point; ours have stopped), or [`LeaderError::Lost`]
/// after the lease was lost and `lead` has stopped: the caller exits non-zero like upstream's
/// process and is restarted as a fresh candidate.
pub async fn run_elected<F, Fut, E>(
    client: Client,
    config: LeaderElection,
    shutdown: CancellationToken,
    lead: F,
) -> Result<Result<(), E>, LeaderError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let timing = config.timing;
    let mut elector = Elector {
        api,
        config,
        observed: None,
    };
    tracing::info!(
        namespace = %elector.config.namespace,
        lease = %elector.config.lock_name,
        identity = %elector.config.identity,
        "campaigning for the leader Lease"
    );
    let mut last_holder = String::new();
    loop {
        match elector.try_acquire_or_renew().await {
            Attempt::Leading => break,
            Attempt::Following(holder) if holder != last_holder => {
                tracing::info!(leader = %holder, "new leader elected");
                last_holder = holder;
            }
            Attempt::Following(_) | Attempt::Failed => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(Ok(())),
            _ = tokio::time::sleep(timing.retry_period) => {}
        }
    }
    tracing::info!(
        namespace = %elector.config.namespace,
        lease = %elector.config.lock_name,
        identity = %elector.config.identity,
        "became leader; starting controllers"
    );
    let leading = shutdown.child_token();
    let mut task = tokio::spawn(lead(leading.clone()));
    let mut renewed = Utc::now();
    loop {
        tokio::select! {
            joined = &mut task => {
                // The reconcilers ended by themselves (shutdown, or a start-up failure).
                elector.release().await;
                return Ok(joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic())));
            }
            _ = tokio::time::sleep(timing.retry_period) => {}
        }
        if shutdown.is_cancelled() {
            // Keep the lease until the reconcilers have drained, then release it above.
            continue;
        }
        match elector.try_acquire_or_renew().await {
            Attempt::Leading => renewed = Utc::now(),
            Attempt::Following(holder) => {
                tracing::warn!(leader = %holder, "another controller holds the leader lease");
                break;
            }
            Attempt::Failed if !still_leading(renewed, Utc::now(), &timing) => break,
            Attempt::Failed => {}
        }
    }
    tracing::error!(identity = %elector.config.identity, "lost the leader lease; stopping controllers");
    leading.cancel();
    let _ = task.await;
    Err(LeaderError::Lost {
        namespace: elector.config.namespace.clone(),
        name: elector.config.lock_name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me_1";
    const THEM: &str = "them_2";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn held(holder: &str, renewed: i64, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(micro_time(at(0))),
            renew_time: Some(micro_time(at(renewed))),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn spec(holder: &str, acquired: i64, renewed: i64, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(micro_time(at(acquired))),
            renew_time: Some(micro_time(at(renewed))),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decision_table() {
        let timing = LeaseTiming::default();
        // (case, current lease, seen at, now, expected)
        let cases: Vec<(&str, Option<LeaseSpec>, i64, i64, Decision)> = vec![
            (
                "no lease: create it",
                None,
                100,
                100,
                Decision::Create(spec(ME, 100, 100, 0)),
            ),
            (
                "ours: renew, keep acquire time and transitions",
                Some(held(ME, 90, 3)),
                90,
                100,
                Decision::Renew(spec(ME, 0, 100, 3)),
            ),
            (
                "ours even if expired: renew",
                Some(held(ME, 10, 3)),
                10,
                100,
                Decision::Renew(spec(ME, 0, 100, 3)),
            ),
            (
                "theirs, seen 14 s ago: follow",
                Some(held(THEM, 86, 1)),
                86,
                100,
                Decision::Follow {
                    holder: THEM.to_string(),
                },
            ),
            (
                "theirs, seen exactly 15 s ago: take over",
                Some(held(THEM, 85, 1)),
                85,
                100,
                Decision::Acquire(spec(ME, 100, 100, 2)),
            ),
            (
                "theirs, renewTime old but first seen just now (clock skew): follow",
                Some(held(THEM, 0, 1)),
                100,
                100,
                Decision::Follow {
                    holder: THEM.to_string(),
                },
            ),
            (
                "released (no holder): take over at once",
                Some(held("", 99, 4)),
                99,
                100,
                Decision::Acquire(spec(ME, 100, 100, 5)),
            ),
        ];
        let mut failures = Vec::new();
        for (name, current, seen, now, expected) in &cases {
            let got = decide(current.as_ref(), at(*seen), ME, at(*now), &timing);
            if &got != expected {
                failures.push(format!("{name}: got {got:?}, want {expected:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        println!("leader decision cases: {} passed", cases.len());
    }

    #[test]
    fn holder_duration_wins_over_ours() {
        let timing = LeaseTiming::default();
        let mut lease = held(THEM, 100, 1);
        lease.lease_duration_seconds = Some(60);
        assert_eq!(
            decide(Some(&lease), at(100), ME, at(130), &timing),
            Decision::Follow {
                holder: THEM.to_string()
            }
        );
        assert_eq!(
            decide(Some(&lease), at(100), ME, at(160), &timing),
            Decision::Acquire(spec(ME, 160, 160, 2))
        );
    }

    #[test]
    fn observation_time_moves_only_when_the_record_changes() {
        let first = held(THEM, 10, 1);
        let seen = observed_at(None, &first, at(20));
        assert_eq!(seen, at(20));
        let previous = (first.clone(), seen);
        assert_eq!(observed_at(Some(&previous), &first, at(30)), at(20));
        let renewed = held(THEM, 25, 1);
        assert_eq!(observed_at(Some(&previous), &renewed, at(30)), at(30));
    }

    #[test]
    fn renew_deadline() {
        let timing = LeaseTiming::default();
        assert!(still_leading(at(0), at(9), &timing));
        assert!(!still_leading(at(0), at(10), &timing));
    }

    #[test]
    fn release_clears_the_holder_and_keeps_transitions() {
        let lease = held(ME, 50, 7);
        let out = released(&lease, at(60));
        assert_eq!(out.holder_identity, None);
        assert_eq!(out.lease_transitions, Some(7));
        assert_eq!(out.lease_duration_seconds, Some(1));
        assert_eq!(
            decide(Some(&out), at(60), THEM, at(60), &LeaseTiming::default()),
            Decision::Acquire(LeaseSpec {
                holder_identity: Some(THEM.to_string()),
                ..spec(THEM, 60, 60, 8)
            })
        );
    }

    #[test]
    fn identity_is_host_underscore_suffix_and_unique() {
        let a = default_identity();
        let b = default_identity();
        assert_ne!(a, b);
        let (_, suffix) = a.rsplit_once('_').unwrap();
        assert_eq!(suffix.len(), 16);
    }
}
