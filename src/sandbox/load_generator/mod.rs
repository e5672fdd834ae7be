//! The sandbox load generator (named apart from `crate::traffic`, which holds the routers):
//! ingress-nginx's canary routing decision ([`routing`]), a bounded load loop that sends real requests to the demo apps ([`load`]), and the split read
//! from the API as ingress-nginx reads it: Ingress, Service, the Service's EndpointSlices
//! ([`cluster`]).
//!
//! A TrafficSplit (`SplitTargets::with_traffic_split`) is followed instead when it exists: its
//! `backends` are weighted Services, as an SMI mesh splits (experiment Services included).
//! Likewise an Istio VirtualService's route destinations (`with_virtual_service`) and an ALB
//! Ingress's forward action target groups (`with_alb_action`).
//!
//! The routing follows ingress-nginx: the `canary-by-header` header first, then the
//! `canary-by-cookie` cookie, then `canary-weight` out of `canary-weight-total`; so the metrics an
//! analysis reads come from real answers in the proportions a real ingress would produce.

pub mod cluster;
pub mod load;
pub mod routing;

pub use cluster::{
    BackendRef, SplitTargets, backend_endpoints, follow_split, ingress_route, ready_endpoints,
    resolve_split, service_endpoints,
};
pub use load::{
    LoadConfig, LoadReport, RequestRecord, Split, SplitSource, TaggedRequests, TrafficError,
    WeightedBackend, run_load,
};
pub use routing::{
    Backend, CanaryRules, DEFAULT_ANNOTATION_PREFIX, DEFAULT_WEIGHT_TOTAL, HeaderPattern,
    SplitMix64, choose_backend, choose_weighted,
};
