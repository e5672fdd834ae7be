//! Canary strategy rules (spec §9 rules 8–17 and the canary half of 18), in upstream's order:
//! maxSurge/maxUnavailable, duplicate services, ping-pong, services required by the router,
//! traffic-routing–dependent options, then every step, then anti-affinity.
//!
//! Canary errors are reported under the strategy path itself (`spec.strategy.<field>`, no
//! `canary` segment), exactly as upstream does.

use crate::api::canary::{CanaryStep, CanaryStrategy};
use crate::api::common::StringMatch;
use crate::api::int_or_string::IntOrStr;
use crate::api::rollout::{AnalysisRunArgument, AntiAffinity, Rollout};
use crate::api::traffic_routing::RolloutTrafficRouting;

use super::{BadValue, ErrorList, FieldError, FieldPath};
use crate::api::field_ref::metadata_field;
use crate::api::go_quote::go_quote;

/// `Rollout has missing field '%s'`.
pub const MISSING_FIELD: &str = "Rollout has missing field";
/// Step with several of setWeight/pause/experiment/analysis, or with none of the known kinds.
pub const INVALID_STEP: &str = "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause";
const DUPLICATED_SERVICES_CANARY: &str = "This rollout uses the same service for the stable and canary services, but two different services are required.";
const DUPLICATED_PING_PONG: &str = "This rollout uses the same service for the ping and pong services, but two different services are required.";
const INVALID_PING_PONG: &str =
    "Ping service and Pong service must to be set to use Ping-Pong feature";
const MISSED_ALB_ROOT_SERVICE: &str =
    "Root service field is required for the configuration with ALB and ping-pong feature enabled";
const PING_PONG_ROUTERS: &str =
    "Ping-pong feature works with the ALB, Istio, and plugin-based traffic routers only";
const INVALID_TRAFFIC_ROUTING: &str =
    "Canary service and Stable service must to be set to use Traffic Routing";
const INVALID_SCALE_DOWN_DELAY: &str =
    "Canary scaleDownDelaySeconds can only be used with traffic routing";
const INVALID_DYNAMIC_STABLE_SCALE: &str =
    "Canary dynamicStableScale can only be used with traffic routing";
const DYNAMIC_STABLE_SCALE_WITH_DELAY: &str =
    "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds";
const MAX_WEIGHT_ROUTERS: &str =
    "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins";
const INVALID_DURATION: &str = "Duration needs to be greater than 0";
const SET_CANARY_SCALE_NEEDS_ROUTING: &str = "SetCanaryScale requires TrafficRouting to be set";
const SET_HEADER_ROUTE_NEEDS_ROUTING: &str =
    "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix";
const SET_MIRROR_ROUTE_NEEDS_ROUTING: &str =
    "SetMirrorRoute requires TrafficRouting, supports Istio and Plugins";
const STRING_MATCH_MULTIPLE: &str =
    "StringMatch match value must have exactly one of the following: exact, regex, prefix";
const STRING_MATCH_MISSED: &str =
    "StringMatch value missed, match value must have one of the following: exact, regex, prefix";
const ALB_HEADER_EXACT_ONLY: &str =
    "SetHeaderRoute match value invalid. ALB supports 'exact' value only";
const ROUTE_NOT_IN_MANAGED_ROUTES: &str =
    "Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes";
const EXPERIMENT_WEIGHT_NEEDS_ROUTING: &str =
    "Experiment template weight cannot be set unless TrafficRouting is enabled";
const EXPERIMENT_WEIGHT_ROUTERS: &str = "Experiment template weight is only available for TrafficRouting with SMI, ALB, Istio and Plugins at this time";
/// Rule 17: a `metadata…` fieldRef that the downward API cannot resolve.
pub const INVALID_ANALYSIS_ARGS: &str =
    "Analyses arguments must refer to valid object metadata supported by downwardAPI";
const ANTI_AFFINITY_ONE: &str = "AntiAffinity must have exactly one strategy listed";
const ANTI_AFFINITY_WEIGHT: &str = "AntiAffinity weight must be between 1-100";

fn missing_field(field: &str) -> String {
    format!("{MISSING_FIELD} '{field}'")
}

fn has_plugins(tr: &RolloutTrafficRouting) -> bool {
    tr.plugins.as_ref().is_some_and(|p| !p.is_empty())
}

fn opt_str(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// Go's `%#v` of an `intstr.IntOrString` (the value upstream prints for the maxSurge error).
pub fn go_int_or_string(v: &IntOrStr) -> String {
    match v {
        IntOrStr::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrStr::Str(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
    }
}

/// Upstream's `getIntOrPercentValue`: a `N%` string gives N, anything else Go's `IntValue()`
/// (so `"0"` and even a non-number string count as 0).
fn int_or_percent_value(v: &IntOrStr) -> i64 {
    if let IntOrStr::Str(s) = v
        && let Some(digits) = s.strip_suffix('%')
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return digits.parse().unwrap_or(0);
    }
    v.int_value()
}

/// The highest `setWeight`: `trafficRouting.maxTrafficWeight` or 100.
pub fn max_traffic_weight(canary: &CanaryStrategy) -> i32 {
    canary
        .traffic_routing
        .as_ref()
        .and_then(|t| t.max_traffic_weight)
        .unwrap_or(100)
}

/// Rule 8 first half: maxSurge and maxUnavailable may not both resolve to zero.
pub fn invalid_max_surge_max_unavailable(canary: &CanaryStrategy, path: &FieldPath) -> ErrorList {
    if int_or_percent_value(&canary.max_surge()) == 0
        && int_or_percent_value(&canary.max_unavailable()) == 0
    {
        let value = canary
            .max_surge
            .as_ref()
            .map_or(BadValue::Null, |v| BadValue::Go(go_int_or_string(v)));
        return vec![FieldError::invalid(
            path.clone(),
            value,
            "MaxSurge and MaxUnavailable both can not be zero",
        )];
    }
    ErrorList::new()
}

/// Rule 12's "one kind per step" check; like upstream it only looks at setWeight, pause,
/// experiment and analysis.
pub fn has_multiple_steps_type(step: &CanaryStep, path: &FieldPath) -> ErrorList {
    let kinds = [
        step.set_weight.is_some(),
        step.pause.is_some(),
        step.experiment.is_some(),
        step.analysis.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() > 1 {
        let value = format!(
            "step.Experiment: {} step.Pause: {} step.SetWeight: {} step.Analysis: {}",
            step.experiment.is_some(),
            step.pause.is_some(),
            step.set_weight.is_some(),
            step.analysis.is_some()
        );
        return vec![FieldError::invalid(
            path.clone(),
            BadValue::Str(value),
            INVALID_STEP,
        )];
    }
    ErrorList::new()
}

/// Rule 18: exactly one anti-affinity kind; a preferred weight in 1..100.
pub fn validate_anti_affinity(aa: Option<&AntiAffinity>, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(aa) = aa else { return errs };
    let preferred = aa
        .preferred_during_scheduling_ignored_during_execution
        .as_ref();
    let required = aa
        .required_during_scheduling_ignored_during_execution
        .as_ref();
    if preferred.is_some() == required.is_some() {
        let value = format!(
            "antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution: {} antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution: {}",
            preferred.is_some(),
            required.is_some()
        );
        errs.push(FieldError::invalid(
            path.clone(),
            BadValue::Str(value),
            ANTI_AFFINITY_ONE,
        ));
    }
    if let Some(p) = preferred
        && !(1..=100).contains(&p.weight)
    {
        errs.push(FieldError::invalid(
            path.child("weight"),
            BadValue::Int(i64::from(p.weight)),
            ANTI_AFFINITY_WEIGHT,
        ));
    }
    errs
}

/// Whether the router needs both canaryService and stableService (rule 10).
fn require_canary_stable_services(canary: &CanaryStrategy) -> bool {
    let Some(tr) = &canary.traffic_routing else {
        return false;
    };
    (tr.alb.is_some() && canary.ping_pong.is_none())
        || (tr
            .istio
            .as_ref()
            .is_some_and(|i| i.destination_rule.is_none())
            && canary.ping_pong.is_none())
        || tr.smi.is_some()
        || tr.apisix.is_some()
        || tr.ambassador.is_some()
        || tr.nginx.is_some()
        || tr.app_mesh.is_some()
        || tr.traefik.is_some()
}

/// Go's `%#v` of a `v1alpha1.StringMatch` (upstream's value for match errors).
fn go_string_match(m: &StringMatch) -> String {
    format!(
        "v1alpha1.StringMatch{{Exact:{}, Prefix:{}, Regex:{}}}",
        go_quote(opt_str(&m.exact)),
        go_quote(opt_str(&m.prefix)),
        go_quote(opt_str(&m.regex))
    )
}

fn set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|v| !v.is_empty())
}

fn has_multiple_match_values(m: Option<&StringMatch>, path: &FieldPath) -> ErrorList {
    let Some(m) = m else {
        return vec![FieldError::invalid(
            path.clone(),
            BadValue::Null,
            STRING_MATCH_MISSED,
        )];
    };
    let n = [set(&m.exact), set(&m.regex), set(&m.prefix)]
        .iter()
        .filter(|b| **b)
        .count();
    let value = || BadValue::Go(go_string_match(m));
    match n {
        0 => vec![FieldError::invalid(
            path.clone(),
            value(),
            STRING_MATCH_MISSED,
        )],
        1 => ErrorList::new(),
        _ => vec![FieldError::invalid(
            path.clone(),
            value(),
            STRING_MATCH_MULTIPLE,
        )],
    }
}

fn has_alb_invalid_values(m: Option<&StringMatch>, path: &FieldPath) -> ErrorList {
    let Some(m) = m else {
        return vec![FieldError::invalid(
            path.clone(),
            BadValue::Null,
            STRING_MATCH_MISSED,
        )];
    };
    if !set(&m.exact) || set(&m.regex) || set(&m.prefix) {
        return vec![FieldError::invalid(
            path.clone(),
            BadValue::Go(go_string_match(m)),
            ALB_HEADER_EXACT_ONLY,
        )];
    }
    ErrorList::new()
}

fn route_in_managed_routes(
    path: &FieldPath,
    name: &str,
    tr: &RolloutTrafficRouting,
) -> Option<FieldError> {
    let found = tr.managed_routes.iter().flatten().any(|r| r.name == name);
    (!found).then(|| {
        FieldError::invalid(
            path.clone(),
            BadValue::str(name),
            ROUTE_NOT_IN_MANAGED_ROUTES,
        )
    })
}

fn validate_step_args(
    rollout: &Rollout,
    step: &CanaryStep,
    step_path: &FieldPath,
    errs: &mut ErrorList,
) {
    let mut args: Vec<&AnalysisRunArgument> = Vec::new();
    if let Some(exp) = &step.experiment {
        for a in exp.analyses.iter().flatten() {
            args.extend(a.args.iter().flatten());
        }
    }
    if let Some(an) = &step.analysis {
        args.extend(an.args.iter().flatten());
    }
    for arg in &args {
        let Some(fr) = arg.value_from.as_ref().and_then(|v| v.field_ref.as_ref()) else {
            continue;
        };
        if fr.field_path.starts_with("metadata") && metadata_field(rollout, &fr.field_path).is_err()
        {
            errs.push(FieldError::invalid(
                step_path.child("analyses"),
                BadValue::json(&args),
                INVALID_ANALYSIS_ARGS,
            ));
        }
    }
}

fn validate_step(
    rollout: &Rollout,
    canary: &CanaryStrategy,
    step: &CanaryStep,
    path: &FieldPath,
    step_path: &FieldPath,
    errs: &mut ErrorList,
) {
    let tr = canary.traffic_routing.as_ref();
    errs.extend(has_multiple_steps_type(step, step_path));
    if step.experiment.is_none()
        && step.pause.is_none()
        && step.set_weight.is_none()
        && step.analysis.is_none()
        && step.set_canary_scale.is_none()
        && step.set_header_route.is_none()
        && step.set_mirror_route.is_none()
        && step.plugin.is_none()
    {
        // Upstream prints `== nil` for each kind here (all true), not `!= nil`.
        let value = "step.Experiment: true step.Pause: true step.SetWeight: true step.Analysis: true step.SetCanaryScale: true step.SetHeaderRoute: true step.SetMirrorRoutes: true";
        errs.push(FieldError::invalid(
            step_path.clone(),
            BadValue::str(value),
            INVALID_STEP,
        ));
    }
    let max_weight = max_traffic_weight(canary);
    if let Some(w) = step.set_weight
        && !(0..=max_weight).contains(&w)
    {
        errs.push(FieldError::invalid(
            step_path.child("setWeight"),
            BadValue::Int(i64::from(w)),
            format!("SetWeight needs to be between 0 and {max_weight}"),
        ));
    }
    if let Some(pause) = &step.pause {
        let secs = pause_duration_seconds(pause.duration.as_ref());
        if secs < 0 {
            errs.push(FieldError::invalid(
                step_path.child("pause").child("duration"),
                BadValue::Int(secs),
                INVALID_DURATION,
            ));
        }
    }
    if step.set_canary_scale.is_some() && tr.is_none() {
        errs.push(FieldError::required(
            path.child("trafficRouting"),
            SET_CANARY_SCALE_NEEDS_ROUTING,
        ));
    }
    if let Some(hr) = &step.set_header_route {
        let supported = tr.filter(|t| {
            t.istio.is_some() || t.alb.is_some() || t.apisix.is_some() || has_plugins(t)
        });
        match supported {
            None => errs.push(FieldError::invalid(
                step_path.child("setHeaderRoute"),
                BadValue::json(hr),
                SET_HEADER_ROUTE_NEEDS_ROUTING,
            )),
            Some(t) => {
                for (j, m) in hr.match_.iter().flatten().enumerate() {
                    let mp = step_path.child("setHeaderRoute").child("match").index(j);
                    if t.alb.is_some() {
                        errs.extend(has_alb_invalid_values(m.header_value.as_ref(), &mp));
                    } else {
                        errs.extend(has_multiple_match_values(m.header_value.as_ref(), &mp));
                    }
                }
            }
        }
    }
    if let Some(mr) = &step.set_mirror_route {
        if !tr.is_some_and(|t| t.istio.is_some() || has_plugins(t)) {
            errs.push(FieldError::invalid(
                step_path.child("setMirrorRoute"),
                BadValue::json(mr),
                SET_MIRROR_ROUTE_NEEDS_ROUTING,
            ));
        }
        for (j, m) in mr.match_.iter().flatten().enumerate() {
            let mp = step_path.child("setMirrorRoute").child("match").index(j);
            if let Some(method) = &m.method {
                errs.extend(has_multiple_match_values(Some(method), &mp));
            }
            if let Some(p) = &m.path {
                errs.extend(has_multiple_match_values(Some(p), &mp));
            }
        }
    }
    if let Some(t) = tr {
        if (step.set_header_route.is_some() || step.set_mirror_route.is_some())
            && t.managed_routes.is_none()
        {
            errs.push(FieldError::required(
                path.child("trafficRouting").child("managedRoutes"),
                missing_field("spec.strategy.canary.trafficRouting.managedRoutes"),
            ));
        }
        if t.managed_routes.is_some() {
            if let Some(hr) = &step.set_header_route {
                errs.extend(route_in_managed_routes(
                    &step_path.child("setHeaderRoute"),
                    opt_str(&hr.name),
                    t,
                ));
            }
            if let Some(mr) = &step.set_mirror_route {
                errs.extend(route_in_managed_routes(
                    &step_path.child("setMirrorRoute"),
                    &mr.name,
                    t,
                ));
            }
        }
    }
    if let Some(exp) = &step.experiment {
        for (k, t) in exp.templates.iter().enumerate() {
            let Some(w) = t.weight else { continue };
            let wp = step_path
                .child("experiment")
                .child("templates")
                .index(k)
                .child("weight");
            match tr {
                None => errs.push(FieldError::invalid(
                    wp,
                    BadValue::Int(i64::from(w)),
                    EXPERIMENT_WEIGHT_NEEDS_ROUTING,
                )),
                Some(t)
                    if t.alb.is_none()
                        && t.smi.is_none()
                        && t.istio.is_none()
                        && t.plugins.is_none() =>
                {
                    errs.push(FieldError::invalid(
                        wp,
                        BadValue::Int(i64::from(w)),
                        EXPERIMENT_WEIGHT_ROUTERS,
                    ))
                }
                Some(_) => {}
            }
        }
    }
    validate_step_args(rollout, step, step_path, errs);
}

/// Upstream's `RolloutPause.DurationSeconds()`: seconds of a pause, 0 when indefinite and −1
/// when the string is neither an integer nor a Go duration.
pub fn pause_duration_seconds(duration: Option<&IntOrStr>) -> i64 {
    match duration {
        None => 0,
        Some(IntOrStr::Int(v)) => *v,
        Some(IntOrStr::Str(s)) => match s.parse::<i32>() {
            Ok(v) => i64::from(v),
            Err(_) => super::analysis::parse_go_duration(s)
                .map(|nanos| (nanos / 1_000_000_000) as i64)
                .unwrap_or(-1),
        },
    }
}

/// `ValidateRolloutStrategyCanary`: all canary rules in upstream's order. `path` is the
/// strategy path (`spec.strategy`).
pub fn validate_canary(rollout: &Rollout, canary: &CanaryStrategy, path: &FieldPath) -> ErrorList {
    let mut errs = invalid_max_surge_max_unavailable(canary, &path.child("maxSurge"));
    let canary_svc = opt_str(&canary.canary_service);
    let stable_svc = opt_str(&canary.stable_service);
    if !canary_svc.is_empty() && canary_svc == stable_svc {
        errs.push(FieldError::invalid(
            path.child("stableService"),
            BadValue::str(stable_svc),
            DUPLICATED_SERVICES_CANARY,
        ));
    }
    let tr = canary.traffic_routing.as_ref();
    if let Some(pp) = &canary.ping_pong {
        if let Some(t) = tr
            && t.alb.is_none()
            && t.istio.is_none()
            && t.plugins.is_none()
        {
            errs.push(FieldError::invalid(
                path.child("trafficRouting").child("alb"),
                BadValue::Null,
                PING_PONG_ROUTERS,
            ));
        }
        if pp.ping_service.is_empty() {
            errs.push(FieldError::invalid(
                path.child("pingPong").child("pingService"),
                BadValue::str(""),
                INVALID_PING_PONG,
            ));
        }
        if pp.pong_service.is_empty() {
            errs.push(FieldError::invalid(
                path.child("pingPong").child("pongService"),
                BadValue::str(""),
                INVALID_PING_PONG,
            ));
        }
        if pp.ping_service == pp.pong_service {
            errs.push(FieldError::invalid(
                path.child("pingPong").child("pingService"),
                BadValue::str(&pp.ping_service),
                DUPLICATED_PING_PONG,
            ));
        }
        if let Some(alb) = tr.and_then(|t| t.alb.as_ref())
            && opt_str(&alb.root_service).is_empty()
        {
            errs.push(FieldError::invalid(
                path.child("trafficRouting")
                    .child("alb")
                    .child("rootService"),
                BadValue::str(""),
                MISSED_ALB_ROOT_SERVICE,
            ));
        }
    }
    if require_canary_stable_services(canary) {
        if stable_svc.is_empty() {
            errs.push(FieldError::invalid(
                path.child("stableService"),
                BadValue::str(""),
                INVALID_TRAFFIC_ROUTING,
            ));
        }
        if canary_svc.is_empty() {
            errs.push(FieldError::invalid(
                path.child("canaryService"),
                BadValue::str(""),
                INVALID_TRAFFIC_ROUTING,
            ));
        }
    }
    let dynamic = canary.dynamic_stable_scale.unwrap_or(false);
    match tr {
        None => {
            if let Some(d) = canary.scale_down_delay_seconds {
                errs.push(FieldError::invalid(
                    path.child("scaleDownDelaySeconds"),
                    BadValue::Int(i64::from(d)),
                    INVALID_SCALE_DOWN_DELAY,
                ));
            }
            if dynamic {
                errs.push(FieldError::invalid(
                    path.child("dynamicStableScale"),
                    BadValue::Bool(true),
                    INVALID_DYNAMIC_STABLE_SCALE,
                ));
            }
        }
        Some(t) => {
            if canary.scale_down_delay_seconds.is_some() && dynamic {
                errs.push(FieldError::invalid(
                    path.child("dynamicStableScale"),
                    BadValue::Bool(true),
                    DYNAMIC_STABLE_SCALE_WITH_DELAY,
                ));
            }
            if let Some(w) = t.max_traffic_weight
                && t.nginx.is_none()
                && !has_plugins(t)
            {
                errs.push(FieldError::invalid(
                    path.child("trafficRouting").child("maxTrafficWeight"),
                    BadValue::Int(i64::from(w)),
                    MAX_WEIGHT_ROUTERS,
                ));
            }
        }
    }
    for (i, step) in canary.steps.iter().flatten().enumerate() {
        let step_path = path.child("steps").index(i);
        validate_step(rollout, canary, step, path, &step_path, &mut errs);
    }
    errs.extend(validate_anti_affinity(
        canary.anti_affinity.as_ref(),
        &path.child("antiAffinity"),
    ));
    errs
}
