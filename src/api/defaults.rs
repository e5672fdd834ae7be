//! Upstream defaults (spec §11, `utils/defaults/defaults.go`) as methods: read with the
//! default applied, never written back into stored objects (except `spec.replicas`, which
//! the controller itself writes, spec §1.1).

use std::time::Duration;

use super::analysis::{AnalysisRunSpec, Metric};
use super::canary::{CanaryStrategy, RolloutPause, SetMirrorRoute};
use super::duration::{DurationError, parse_duration};
use super::experiment::{ExperimentSpec, TemplateSpec};
use super::int_or_string::{IntOrStr, IntOrStrError, Rounding};
use super::providers::{
    CloudWatchMetric, DatadogMetric, NewRelicMetric, PrometheusMetric, WebMetric,
};
use super::rollout::{BlueGreenStrategy, RolloutSpec};
use super::traffic_routing::{
    AlbTrafficRouting, NginxTrafficRouting, RolloutTrafficRouting, SmiTrafficRouting,
};

/// `spec.replicas`.
pub const DEFAULT_REPLICAS: i32 = 1;
/// `spec.revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// `spec.progressDeadlineSeconds` (also Experiments).
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// `maxSurge` / `maxUnavailable`, as upstream writes it: a string, read as a percentage.
pub const DEFAULT_MAX_SURGE: &str = "25";
/// See [`DEFAULT_MAX_SURGE`].
pub const DEFAULT_MAX_UNAVAILABLE: &str = "25";
/// `scaleDownDelaySeconds` (canary with traffic routing, blue-green, experiments).
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// `abortScaleDownDelaySeconds`.
pub const DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// `analysis.successfulRunHistoryLimit`.
pub const DEFAULT_SUCCESSFUL_RUN_HISTORY_LIMIT: i32 = 5;
/// `analysis.unsuccessfulRunHistoryLimit`.
pub const DEFAULT_UNSUCCESSFUL_RUN_HISTORY_LIMIT: i32 = 5;
/// Metric `consecutiveErrorLimit`.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i64 = 4;
/// Measurements kept per metric when no retention rule matches.
pub const DEFAULT_MEASUREMENT_HISTORY_LIMIT: usize = 10;
/// Wait before measuring again after an Error measurement.
pub const DEFAULT_ERROR_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Prometheus request timeout, seconds.
pub const DEFAULT_PROMETHEUS_TIMEOUT_SECONDS: i64 = 30;
/// Web request timeout, seconds.
pub const DEFAULT_WEB_TIMEOUT_SECONDS: i64 = 10;
/// Web method.
pub const DEFAULT_WEB_METHOD: &str = "GET";
/// Web JSONPath (the whole document).
pub const DEFAULT_WEB_JSON_PATH: &str = "{$}";
/// New Relic timeout, seconds.
pub const DEFAULT_NEWRELIC_TIMEOUT_SECONDS: i64 = 5;
/// Datadog lookback window.
pub const DEFAULT_DATADOG_INTERVAL: &str = "5m";
/// Datadog request timeout.
pub const DEFAULT_DATADOG_REQUEST_TIMEOUT: &str = "10s";
/// Datadog API version.
pub const DEFAULT_DATADOG_API_VERSION: &str = "v1";
/// Datadog v2 aggregator.
pub const DEFAULT_DATADOG_AGGREGATOR: &str = "last";
/// CloudWatch lookback window.
pub const DEFAULT_CLOUDWATCH_INTERVAL: &str = "5m";
/// InfluxDB and SkyWalking timeouts, seconds.
pub const DEFAULT_INFLUXDB_SKYWALKING_TIMEOUT_SECONDS: i64 = 30;
/// nginx `annotationPrefix`.
pub const DEFAULT_NGINX_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";
/// ALB `annotationPrefix`.
pub const DEFAULT_ALB_ANNOTATION_PREFIX: &str = "alb.ingress.kubernetes.io";
/// `trafficRouting.maxTrafficWeight`.
pub const DEFAULT_MAX_TRAFFIC_WEIGHT: i32 = 100;
/// `setMirrorRoute.percentage`.
pub const DEFAULT_MIRROR_PERCENTAGE: i32 = 100;
/// Requeue after a workloadRef resolution error.
pub const WORKLOAD_REF_ERROR_REQUEUE: Duration = Duration::from_secs(20);
/// Retry after an unverified traffic weight (`ROLLOUT_VERIFY_RETRY_INTERVAL`).
pub const WEIGHT_VERIFY_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Recheck while pods remain to restart.
pub const RESTART_RECHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Backoff after a step plugin error.
pub const STEP_PLUGIN_ERROR_BACKOFF: Duration = Duration::from_secs(30);

impl RolloutSpec {
    /// `spec.replicas`, default 1.
    pub fn effective_replicas(&self) -> i32 {
        self.replicas.unwrap_or(DEFAULT_REPLICAS)
    }

    /// `spec.revisionHistoryLimit`, default 10.
    pub fn revision_history_limit(&self) -> i32 {
        self.revision_history_limit
            .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
    }

    /// `spec.progressDeadlineSeconds`, default 600.
    pub fn progress_deadline_seconds(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
    }

    /// `spec.progressDeadlineAbort`, default false.
    pub fn progress_deadline_abort(&self) -> bool {
        self.progress_deadline_abort.unwrap_or(false)
    }

    /// `spec.minReadySeconds`, default 0.
    pub fn min_ready_seconds(&self) -> i32 {
        self.min_ready_seconds.unwrap_or(0)
    }

    /// `spec.paused`, default false.
    pub fn is_paused(&self) -> bool {
        self.paused.unwrap_or(false)
    }

    /// `spec.analysis.successfulRunHistoryLimit`, default 5.
    pub fn successful_run_history_limit(&self) -> i32 {
        self.analysis
            .as_ref()
            .and_then(|a| a.successful_run_history_limit)
            .unwrap_or(DEFAULT_SUCCESSFUL_RUN_HISTORY_LIMIT)
    }

    /// `spec.analysis.unsuccessfulRunHistoryLimit`, default 5.
    pub fn unsuccessful_run_history_limit(&self) -> i32 {
        self.analysis
            .as_ref()
            .and_then(|a| a.unsuccessful_run_history_limit)
            .unwrap_or(DEFAULT_UNSUCCESSFUL_RUN_HISTORY_LIMIT)
    }

    /// `spec.rollbackWindow.revisions`, none when unset.
    pub fn rollback_window_revisions(&self) -> Option<i32> {
        self.rollback_window.as_ref().and_then(|w| w.revisions)
    }

    /// The canary traffic routing block, when the strategy is canary and has one.
    pub fn traffic_routing(&self) -> Option<&RolloutTrafficRouting> {
        self.strategy
            .canary
            .as_ref()
            .and_then(|c| c.traffic_routing.as_ref())
    }

    /// Delay before scaling down the previous stable ReplicaSet after promotion: the
    /// configured value, else 30 for blue-green and for canary with traffic routing; 0 for a
    /// basic canary, which ignores the field (old replicas are drained through the steps).
    pub fn scale_down_delay_seconds(&self) -> i32 {
        if let Some(bg) = &self.strategy.blue_green {
            return bg
                .scale_down_delay_seconds
                .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS);
        }
        match &self.strategy.canary {
            Some(c) if c.traffic_routing.is_some() => c
                .scale_down_delay_seconds
                .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
            _ => 0,
        }
    }

    /// Delay before scaling down the canary (preview) ReplicaSet after an abort.
    ///
    /// `None` means never scale it down (an explicit `0`). Basic canary always drains the
    /// canary, so it gets `Some(0)`; blue-green and traffic-routed canary default to 30.
    pub fn abort_scale_down_delay_seconds(&self) -> Option<i32> {
        let configured = if let Some(bg) = &self.strategy.blue_green {
            bg.abort_scale_down_delay_seconds
        } else {
            match &self.strategy.canary {
                Some(c) if c.traffic_routing.is_some() => c.abort_scale_down_delay_seconds,
                _ => return Some(0),
            }
        };
        match configured {
            Some(0) => None,
            Some(v) => Some(v),
            None => Some(DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS),
        }
    }

    /// True when `abortScaleDownDelaySeconds` was written for a strategy that honours it
    /// (blue-green, traffic-routed canary); the dynamic-stable-scale abort depends on it.
    pub fn abort_scale_down_delay_was_set(&self) -> bool {
        if let Some(bg) = &self.strategy.blue_green {
            return bg.abort_scale_down_delay_seconds.is_some();
        }
        matches!(&self.strategy.canary, Some(c) if c.traffic_routing.is_some() && c.abort_scale_down_delay_seconds.is_some())
    }

    /// Old ReplicaSets allowed to wait for a scale-down delay; `None` means unlimited.
    pub fn scale_down_delay_revision_limit(&self) -> Option<i32> {
        if let Some(bg) = &self.strategy.blue_green {
            return bg.scale_down_delay_revision_limit;
        }
        self.strategy
            .canary
            .as_ref()
            .and_then(|c| c.scale_down_delay_revision_limit)
    }

    /// `trafficRouting.maxTrafficWeight`, default 100 (also without traffic routing).
    pub fn max_traffic_weight(&self) -> i32 {
        self.traffic_routing().map_or(
            DEFAULT_MAX_TRAFFIC_WEIGHT,
            RolloutTrafficRouting::max_traffic_weight,
        )
    }
}

impl CanaryStrategy {
    /// `maxSurge`, default `"25"` (25%).
    pub fn max_surge(&self) -> IntOrStr {
        self.max_surge
            .clone()
            .unwrap_or_else(|| IntOrStr::Str(DEFAULT_MAX_SURGE.into()))
    }

    /// `maxUnavailable`, default `"25"` (25%).
    pub fn max_unavailable(&self) -> IntOrStr {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrStr::Str(DEFAULT_MAX_UNAVAILABLE.into()))
    }

    /// Resolved `(maxSurge, maxUnavailable)` for `replicas`: surge rounds up, unavailable
    /// rounds down, and when both resolve to 0 unavailable becomes 1 (upstream
    /// `resolveFenceposts`).
    pub fn surge_and_unavailable(&self, replicas: i32) -> Result<(i32, i32), IntOrStrError> {
        let surge = self.max_surge().scaled_value(replicas, Rounding::Up)?;
        let unavailable = self
            .max_unavailable()
            .scaled_value(replicas, Rounding::Down)?;
        if surge == 0 && unavailable == 0 {
            return Ok((0, 1));
        }
        Ok((surge, unavailable))
    }

    /// `dynamicStableScale`, default false.
    pub fn dynamic_stable_scale(&self) -> bool {
        self.dynamic_stable_scale.unwrap_or(false)
    }

    /// The steps, empty when none.
    pub fn steps(&self) -> &[super::canary::CanaryStep] {
        self.steps.as_deref().unwrap_or(&[])
    }
}

impl BlueGreenStrategy {
    /// `autoPromotionEnabled`, default true.
    pub fn auto_promotion_enabled(&self) -> bool {
        self.auto_promotion_enabled.unwrap_or(true)
    }

    /// `autoPromotionSeconds`, default 0.
    pub fn auto_promotion_seconds(&self) -> i32 {
        self.auto_promotion_seconds.unwrap_or(0)
    }

    /// `maxUnavailable` for restarts, default `"25"` (25%).
    pub fn max_unavailable(&self) -> IntOrStr {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrStr::Str(DEFAULT_MAX_UNAVAILABLE.into()))
    }
}

impl RolloutTrafficRouting {
    /// `maxTrafficWeight`, default 100.
    pub fn max_traffic_weight(&self) -> i32 {
        self.max_traffic_weight
            .unwrap_or(DEFAULT_MAX_TRAFFIC_WEIGHT)
    }
}

impl NginxTrafficRouting {
    /// `annotationPrefix`, default `nginx.ingress.kubernetes.io`.
    pub fn annotation_prefix(&self) -> &str {
        self.annotation_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_NGINX_ANNOTATION_PREFIX)
    }
}

impl AlbTrafficRouting {
    /// `annotationPrefix`, default `alb.ingress.kubernetes.io`.
    pub fn annotation_prefix(&self) -> &str {
        self.annotation_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_ALB_ANNOTATION_PREFIX)
    }
}

impl SmiTrafficRouting {
    /// `rootService`, default the canary's stable service.
    pub fn root_service<'a>(&'a self, stable_service: &'a str) -> &'a str {
        self.root_service
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(stable_service)
    }

    /// `trafficSplitName`, default the Rollout's name.
    pub fn traffic_split_name<'a>(&'a self, rollout_name: &'a str) -> &'a str {
        self.traffic_split_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(rollout_name)
    }
}

impl SetMirrorRoute {
    /// `percentage`, default 100.
    pub fn percentage(&self) -> i32 {
        self.percentage.unwrap_or(DEFAULT_MIRROR_PERCENTAGE)
    }
}

impl RolloutPause {
    /// Upstream `DurationSeconds()`: 0 without a duration; an int as is; a string holding a
    /// 32-bit integer as seconds; else a Go duration truncated to seconds; −1 when the string
    /// is not a duration (which validation reports as "Duration needs to be greater than 0").
    pub fn duration_seconds(&self) -> i64 {
        match &self.duration {
            None => 0,
            Some(IntOrStr::Int(v)) => *v,
            Some(IntOrStr::Str(s)) => match s.parse::<i32>() {
                Ok(v) => i64::from(v),
                Err(_) => parse_duration(s).map_or(-1, |d| d.as_secs() as i64),
            },
        }
    }

    /// The pause length; `Ok(None)` for an indefinite pause (`pause: {}`).
    pub fn duration(&self) -> Result<Option<Duration>, DurationError> {
        match &self.duration {
            None => Ok(None),
            Some(IntOrStr::Int(v)) => u64::try_from(*v)
                .map(|s| Some(Duration::from_secs(s)))
                .map_err(|_| DurationError::Negative {
                    input: v.to_string(),
                }),
            // Truncated to whole seconds, as upstream does.
            Some(IntOrStr::Str(s)) => {
                parse_duration(s).map(|d| Some(Duration::from_secs(d.as_secs())))
            }
        }
    }
}

/// The number of measurements a metric takes (spec §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectiveCount {
    /// Stop after this many non-error measurements.
    Limited(i64),
    /// Measure until terminated (interval set, count unset or 0).
    Unlimited,
}

impl Metric {
    /// Spec §4.2: count unset (or 0) and no interval ⇒ 1; unset (or 0) with an interval ⇒
    /// unlimited; else the count. A string count is read like Go's `IntValue()` (0 when not a
    /// number), so resolve `{{args.x}}` before asking.
    pub fn effective_count(&self) -> EffectiveCount {
        let count = self.count.as_ref().map_or(0, IntOrStr::int_value);
        if count == 0 {
            if self.interval.as_ref().is_none_or(|i| i.is_empty()) {
                EffectiveCount::Limited(1)
            } else {
                EffectiveCount::Unlimited
            }
        } else {
            EffectiveCount::Limited(count)
        }
    }

    /// `failureLimit`, default 0 (−1 disables the check).
    pub fn failure_limit(&self) -> i64 {
        self.failure_limit.as_ref().map_or(0, IntOrStr::int_value)
    }

    /// `inconclusiveLimit`, default 0.
    pub fn inconclusive_limit(&self) -> i64 {
        self.inconclusive_limit
            .as_ref()
            .map_or(0, IntOrStr::int_value)
    }

    /// `consecutiveErrorLimit`, default 4 (Error after 5 in a row).
    pub fn consecutive_error_limit(&self) -> i64 {
        self.consecutive_error_limit
            .as_ref()
            .map_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT, IntOrStr::int_value)
    }

    /// `consecutiveSuccessLimit`, default 0 (disabled).
    pub fn consecutive_success_limit(&self) -> i64 {
        self.consecutive_success_limit
            .as_ref()
            .map_or(0, IntOrStr::int_value)
    }

    /// `interval` parsed; `Ok(None)` when unset.
    pub fn interval(&self) -> Result<Option<Duration>, DurationError> {
        optional_duration(self.interval.as_ref().map(|d| d.as_str()))
    }

    /// `initialDelay` parsed; `Ok(None)` when unset.
    pub fn initial_delay(&self) -> Result<Option<Duration>, DurationError> {
        optional_duration(self.initial_delay.as_ref().map(|d| d.as_str()))
    }
}

fn optional_duration(text: Option<&str>) -> Result<Option<Duration>, DurationError> {
    match text {
        None | Some("") => Ok(None),
        Some(s) => parse_duration(s).map(Some),
    }
}

impl AnalysisRunSpec {
    /// `spec.terminate`, default false.
    pub fn is_terminating(&self) -> bool {
        self.terminate.unwrap_or(false)
    }
}

impl PrometheusMetric {
    /// Request timeout in seconds, default 30.
    pub fn timeout_seconds(&self) -> i64 {
        self.timeout.unwrap_or(DEFAULT_PROMETHEUS_TIMEOUT_SECONDS)
    }
}

impl WebMetric {
    /// HTTP method, default GET.
    pub fn method(&self) -> &str {
        self.method
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or(DEFAULT_WEB_METHOD)
    }

    /// Timeout in seconds, default 10.
    pub fn timeout_seconds(&self) -> i64 {
        self.timeout_seconds
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_WEB_TIMEOUT_SECONDS)
    }

    /// JSONPath, default `{$}`.
    pub fn json_path(&self) -> &str {
        self.json_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_WEB_JSON_PATH)
    }
}

impl NewRelicMetric {
    /// Timeout in seconds, default 5.
    pub fn timeout_seconds(&self) -> i64 {
        self.timeout.unwrap_or(DEFAULT_NEWRELIC_TIMEOUT_SECONDS)
    }
}

impl DatadogMetric {
    /// Lookback window, default `5m`.
    pub fn interval(&self) -> &str {
        non_empty(
            self.interval.as_ref().map(|d| d.as_str()),
            DEFAULT_DATADOG_INTERVAL,
        )
    }

    /// Request timeout, default `10s`.
    pub fn request_timeout(&self) -> &str {
        non_empty(
            self.request_timeout.as_ref().map(|d| d.as_str()),
            DEFAULT_DATADOG_REQUEST_TIMEOUT,
        )
    }

    /// API version, default `v1`.
    pub fn api_version(&self) -> &str {
        non_empty(self.api_version.as_deref(), DEFAULT_DATADOG_API_VERSION)
    }

    /// v2 aggregator, default `last`.
    pub fn aggregator(&self) -> &str {
        non_empty(self.aggregator.as_deref(), DEFAULT_DATADOG_AGGREGATOR)
    }
}

impl CloudWatchMetric {
    /// Lookback window, default `5m`.
    pub fn interval(&self) -> &str {
        non_empty(
            self.interval.as_ref().map(|d| d.as_str()),
            DEFAULT_CLOUDWATCH_INTERVAL,
        )
    }
}

fn non_empty<'a>(value: Option<&'a str>, default: &'a str) -> &'a str {
    value.filter(|v| !v.is_empty()).unwrap_or(default)
}

impl ExperimentSpec {
    /// `progressDeadlineSeconds`, default 600.
    pub fn progress_deadline_seconds(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
    }

    /// `scaleDownDelaySeconds`, default 30.
    pub fn scale_down_delay_seconds(&self) -> i32 {
        self.scale_down_delay_seconds
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    }

    /// `terminate`, default false.
    pub fn is_terminating(&self) -> bool {
        self.terminate.unwrap_or(false)
    }
}

impl TemplateSpec {
    /// `replicas`, default 1.
    pub fn effective_replicas(&self) -> i32 {
        self.replicas.unwrap_or(DEFAULT_REPLICAS)
    }
}
