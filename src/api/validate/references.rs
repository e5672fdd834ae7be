//! Referenced-resource rules 19–22 of spec §9: the Services, AnalysisTemplates, Ingresses and
//! Istio VirtualServices a Rollout names must exist and fit it (the Ingress and VirtualService
//! checks themselves are in `traffic.rs`).
//!
//! The objects come in a [`References`] value (filled from a cluster cache by the controller, or
//! from the linted files by `davy lint`). Errors come in upstream's order: first the look-ups
//! (missing objects, nginx/ALB/Istio configuration), then the checks of the objects found. For
//! each kind, [`References::known`] says whether the set is complete: a missing object of a kind
//! that is not known completely is not an error (the linter only knows what the files hold).
//!
//! Ingresses and VirtualServices are kept as JSON so that `networking.k8s.io/v1` and the legacy
//! `extensions/v1beta1` Ingress, and any Istio API version, are read alike.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use serde_json::Value;

use crate::api::analysis::{
    AnalysisTemplate, AnalysisTemplateSpec, Argument, ClusterAnalysisTemplate,
};
use crate::api::canary::CanaryStrategy;
use crate::api::rollout::{AnalysisRunArgument, Rollout, RolloutAnalysis};

use super::analysis::{check_value_or_value_from, effective_count, stand_in_args};
use super::{BadValue, ErrorList, FieldError, FieldPath};
use crate::api::field_ref::{json_field, metadata_field};
use crate::api::run_spec::{ArgsError, new_run_spec_from_templates, resolve_metric_args};

use crate::api::consts::annotation::MANAGED_BY_ROLLOUTS as MANAGED_BY;
use crate::api::consts::label::POD_TEMPLATE_HASH as HASH_LABEL;

/// Which kinds of [`References`] are complete, so that absence means "does not exist".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownKinds {
    /// Services.
    pub services: bool,
    /// Ingresses.
    pub ingresses: bool,
    /// Istio VirtualServices.
    pub virtual_services: bool,
    /// AnalysisTemplates.
    pub analysis_templates: bool,
    /// ClusterAnalysisTemplates.
    pub cluster_analysis_templates: bool,
}

impl KnownKinds {
    /// Every kind complete (a controller reading a full cache).
    pub fn all() -> Self {
        KnownKinds {
            services: true,
            ingresses: true,
            virtual_services: true,
            analysis_templates: true,
            cluster_analysis_templates: true,
        }
    }
}

fn ns_of(value: &Value) -> Option<&str> {
    value.pointer("/metadata/namespace").and_then(Value::as_str)
}

fn ns_compatible(object_ns: Option<&str>, rollout_ns: Option<&str>) -> bool {
    match (object_ns, rollout_ns) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The objects a Rollout may reference, found by name (and namespace when both sides give one).
#[derive(Clone, Debug, Default)]
pub struct References {
    services: BTreeMap<String, Vec<Service>>,
    ingresses: BTreeMap<String, Vec<Value>>,
    virtual_services: BTreeMap<String, Vec<Value>>,
    analysis_templates: BTreeMap<String, Vec<AnalysisTemplate>>,
    cluster_analysis_templates: BTreeMap<String, ClusterAnalysisTemplate>,
    /// Kinds whose absence is an error.
    pub known: KnownKinds,
}

impl References {
    /// Adds a Service.
    pub fn add_service(&mut self, svc: Service) {
        let name = svc.metadata.name.clone().unwrap_or_default();
        self.services.entry(name).or_default().push(svc);
    }

    /// Adds an Ingress (any API version), as JSON.
    pub fn add_ingress(&mut self, ing: Value) {
        let name = ing
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.ingresses.entry(name).or_default().push(ing);
    }

    /// Adds an Istio VirtualService, as JSON.
    pub fn add_virtual_service(&mut self, vs: Value) {
        let name = vs
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.virtual_services.entry(name).or_default().push(vs);
    }

    /// Adds an AnalysisTemplate.
    pub fn add_analysis_template(&mut self, t: AnalysisTemplate) {
        let name = t.metadata.name.clone().unwrap_or_default();
        self.analysis_templates.entry(name).or_default().push(t);
    }

    /// Adds a ClusterAnalysisTemplate.
    pub fn add_cluster_analysis_template(&mut self, t: ClusterAnalysisTemplate) {
        let name = t.metadata.name.clone().unwrap_or_default();
        self.cluster_analysis_templates.insert(name, t);
    }

    /// Marks as known every kind of which at least one object was added: the linter's policy
    /// (a bundle that carries Services is expected to carry all the Services it uses).
    pub fn know_kinds_present(&mut self) {
        self.known = KnownKinds {
            services: !self.services.is_empty(),
            ingresses: !self.ingresses.is_empty(),
            virtual_services: !self.virtual_services.is_empty(),
            analysis_templates: !self.analysis_templates.is_empty(),
            cluster_analysis_templates: !self.cluster_analysis_templates.is_empty(),
        };
    }

    /// The Service `name` visible from namespace `ns`.
    pub fn service(&self, ns: Option<&str>, name: &str) -> Option<&Service> {
        self.services
            .get(name)?
            .iter()
            .find(|s| ns_compatible(s.metadata.namespace.as_deref(), ns))
    }

    /// The Ingress `name` visible from namespace `ns`.
    pub fn ingress(&self, ns: Option<&str>, name: &str) -> Option<&Value> {
        self.ingresses
            .get(name)?
            .iter()
            .find(|v| ns_compatible(ns_of(v), ns))
    }

    /// The VirtualService `name` in namespace `ns`.
    pub fn virtual_service(&self, ns: Option<&str>, name: &str) -> Option<&Value> {
        self.virtual_services
            .get(name)?
            .iter()
            .find(|v| ns_compatible(ns_of(v), ns))
    }

    /// The AnalysisTemplate `name` visible from namespace `ns`.
    pub fn analysis_template(&self, ns: Option<&str>, name: &str) -> Option<&AnalysisTemplate> {
        self.analysis_templates
            .get(name)?
            .iter()
            .find(|t| ns_compatible(t.metadata.namespace.as_deref(), ns))
    }

    /// The ClusterAnalysisTemplate `name`.
    pub fn cluster_analysis_template(&self, name: &str) -> Option<&ClusterAnalysisTemplate> {
        self.cluster_analysis_templates.get(name)
    }
}

/// Which role a Service plays for the Rollout (upstream's `ServiceType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServiceRole {
    Active,
    Preview,
    Stable,
    Canary,
    Ping,
    Pong,
}

impl ServiceRole {
    fn path(self) -> FieldPath {
        let base = FieldPath::new("spec").child("strategy");
        match self {
            ServiceRole::Active => base.child("blueGreen").child("activeService"),
            ServiceRole::Preview => base.child("blueGreen").child("previewService"),
            ServiceRole::Stable => base.child("canary").child("stableService"),
            ServiceRole::Canary => base.child("canary").child("canaryService"),
            ServiceRole::Ping => base.child("canary").child("pingPong").child("pingService"),
            ServiceRole::Pong => base.child("canary").child("pingPong").child("pongService"),
        }
    }
}

/// Which analysis a template group belongs to (upstream's `AnalysisTemplateType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AnalysisKind {
    PrePromotion,
    PostPromotion,
    Step(usize),
    Background,
}

impl AnalysisKind {
    fn path(self) -> FieldPath {
        let base = FieldPath::new("spec").child("strategy");
        match self {
            AnalysisKind::PrePromotion => base
                .child("blueGreen")
                .child("prePromotionAnalysis")
                .child("templates"),
            AnalysisKind::PostPromotion => base
                .child("blueGreen")
                .child("postPromotionAnalysis")
                .child("templates"),
            AnalysisKind::Step(i) => base
                .child("canary")
                .child("steps")
                .index(i)
                .child("analysis")
                .child("templates"),
            AnalysisKind::Background => base.child("canary").child("analysis").child("templates"),
        }
    }
}

struct TemplateGroup<'a> {
    kind: AnalysisKind,
    /// (name, spec, cluster-scoped) in reference order.
    templates: Vec<(String, &'a AnalysisTemplateSpec, bool)>,
    args: &'a [AnalysisRunArgument],
}

pub(super) fn rollout_ns(rollout: &Rollout) -> Option<&str> {
    rollout.metadata.namespace.as_deref()
}

fn service_refs(rollout: &Rollout) -> Vec<(ServiceRole, &str)> {
    let mut all: Vec<(ServiceRole, Option<&str>)> = Vec::new();
    if let Some(bg) = &rollout.spec.strategy.blue_green {
        all.push((ServiceRole::Active, Some(bg.active_service.as_str())));
        all.push((ServiceRole::Preview, bg.preview_service.as_deref()));
    } else if let Some(c) = &rollout.spec.strategy.canary {
        all.push((ServiceRole::Stable, c.stable_service.as_deref()));
        all.push((ServiceRole::Canary, c.canary_service.as_deref()));
        if let Some(pp) = &c.ping_pong {
            all.push((ServiceRole::Ping, Some(pp.ping_service.as_str())));
            all.push((ServiceRole::Pong, Some(pp.pong_service.as_str())));
        }
    }
    all.into_iter()
        .filter_map(|(role, name)| name.filter(|n| !n.is_empty()).map(|n| (role, n)))
        .collect()
}

/// The names of the objects a Rollout references, so that a reader of a cluster cache can put
/// just those into [`References`] (every other object is irrelevant to the rules).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferencedNames<'a> {
    /// Services, every role.
    pub services: Vec<&'a str>,
    /// AnalysisTemplates of the Rollout's namespace.
    pub analysis_templates: Vec<&'a str>,
    /// ClusterAnalysisTemplates.
    pub cluster_analysis_templates: Vec<&'a str>,
    /// Ingresses (nginx stable Ingresses, ALB Ingresses).
    pub ingresses: Vec<&'a str>,
    /// Istio VirtualServices: `(namespace, name)`, `None` for the Rollout's namespace.
    pub virtual_services: Vec<(Option<&'a str>, &'a str)>,
}

/// [`ReferencedNames`] of `rollout`.
pub fn referenced_names(rollout: &Rollout) -> ReferencedNames<'_> {
    let mut names = ReferencedNames {
        services: service_refs(rollout).into_iter().map(|(_, n)| n).collect(),
        ..ReferencedNames::default()
    };
    for (_, analysis) in analysis_refs(rollout) {
        for tref in analysis.templates.iter().flatten() {
            let name = tref.template_name.as_deref().unwrap_or("");
            if tref.cluster_scope.unwrap_or(false) {
                names.cluster_analysis_templates.push(name);
            } else {
                names.analysis_templates.push(name);
            }
        }
    }
    let routing = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.traffic_routing.as_ref());
    if let Some(routing) = routing {
        if let Some(nginx) = &routing.nginx {
            names.ingresses.extend(nginx.stable_ingress.as_deref());
            names
                .ingresses
                .extend(nginx.stable_ingresses.iter().flatten().map(String::as_str));
        }
        if let Some(alb) = &routing.alb {
            names.ingresses.extend(alb.ingress.as_deref());
            names
                .ingresses
                .extend(alb.ingresses.iter().flatten().map(String::as_str));
        }
    }
    names.virtual_services = super::traffic::virtual_service_refs(rollout);
    names
}

fn analysis_refs(rollout: &Rollout) -> Vec<(AnalysisKind, &RolloutAnalysis)> {
    let mut out = Vec::new();
    if let Some(bg) = &rollout.spec.strategy.blue_green {
        if let Some(a) = &bg.pre_promotion_analysis {
            out.push((AnalysisKind::PrePromotion, a));
        }
        if let Some(a) = &bg.post_promotion_analysis {
            out.push((AnalysisKind::PostPromotion, a));
        }
    } else if let Some(c) = &rollout.spec.strategy.canary {
        for (i, step) in c.steps.iter().flatten().enumerate() {
            if let Some(a) = &step.analysis {
                out.push((AnalysisKind::Step(i), a));
            }
        }
        if let Some(bg) = &c.analysis {
            out.push((AnalysisKind::Background, &bg.analysis));
        }
    }
    out
}

pub(super) fn tr_path() -> FieldPath {
    FieldPath::new("spec")
        .child("strategy")
        .child("canary")
        .child("trafficRouting")
}

/// Rules 19–22 for one Rollout against `refs`, in upstream's order.
pub fn validate_rollout_references(rollout: &Rollout, refs: &References) -> ErrorList {
    let mut errs = ErrorList::new();
    let ns = rollout_ns(rollout);

    // Look-ups first, as upstream's getRolloutReferencedResources.
    let mut services = Vec::new();
    for (role, name) in service_refs(rollout) {
        match refs.service(ns, name) {
            Some(svc) => services.push((role, svc)),
            None if refs.known.services => errs.push(FieldError::invalid(
                role.path(),
                BadValue::str(name),
                format!("service \"{name}\" not found"),
            )),
            None => {}
        }
    }
    let mut groups = Vec::new();
    for (kind, analysis) in analysis_refs(rollout) {
        let mut group = TemplateGroup {
            kind,
            templates: Vec::new(),
            args: analysis.args.as_deref().unwrap_or(&[]),
        };
        let mut complete = true;
        for tref in analysis.templates.iter().flatten() {
            let name = tref.template_name.as_deref().unwrap_or("");
            if tref.cluster_scope.unwrap_or(false) {
                match refs.cluster_analysis_template(name) {
                    Some(t) => group.templates.push((name.to_string(), &t.spec.0, true)),
                    None => {
                        complete = false;
                        if refs.known.cluster_analysis_templates {
                            errs.push(FieldError::invalid(
                                kind.path(),
                                BadValue::str(name),
                                format!("ClusterAnalysisTemplate '{name}' not found"),
                            ));
                        }
                    }
                }
            } else {
                match refs.analysis_template(ns, name) {
                    Some(t) => group.templates.push((name.to_string(), &t.spec, false)),
                    None => {
                        complete = false;
                        if refs.known.analysis_templates {
                            errs.push(FieldError::invalid(
                                kind.path(),
                                BadValue::str(name),
                                format!("AnalysisTemplate '{name}' not found"),
                            ));
                        }
                    }
                }
            }
        }
        // Merging a partial set would report arguments the missing templates may declare.
        if complete {
            groups.push(group);
        }
    }
    let canary = rollout.spec.strategy.canary.as_ref();
    let tr = canary.and_then(|c| c.traffic_routing.as_ref());
    if let Some(nginx) = tr.and_then(|t| t.nginx.as_ref()) {
        let single = nginx
            .stable_ingress
            .as_deref()
            .is_some_and(|s| !s.is_empty());
        let multiple = nginx
            .stable_ingresses
            .as_ref()
            .is_some_and(|s| !s.is_empty());
        if single == multiple {
            let which = if single { "Both" } else { "Neither" };
            errs.push(FieldError::internal(
                tr_path().child("nginx"),
                format!("Either StableIngress or StableIngresses must be configured. {which} are configured."),
            ));
        }
    }
    if let Some(alb) = tr.and_then(|t| t.alb.as_ref()) {
        let single = alb.ingress.as_deref().is_some_and(|s| !s.is_empty());
        let multiple = alb.ingresses.as_ref().is_some_and(|s| !s.is_empty());
        if single == multiple {
            let which = if single { "Both" } else { "Neither" };
            errs.push(FieldError::internal(
                tr_path().child("alb"),
                format!("Either Ingress or Ingresses must be configured. {which} are configured."),
            ));
        }
    }
    let ingresses = super::traffic::lookup_ingresses(rollout, refs, &mut errs);
    let virtual_services = super::traffic::lookup_virtual_services(rollout, refs, &mut errs);

    // Then the checks of what was found (upstream's ValidateRolloutReferencedResources).
    for (role, svc) in &services {
        errs.extend(validate_service(rollout, *role, svc));
    }
    for group in &groups {
        errs.extend(validate_template_group(rollout, group));
    }
    if let Some(c) = canary {
        for ing in &ingresses {
            errs.extend(super::traffic::validate_ingress(c, ing));
        }
    }
    for vs in &virtual_services {
        errs.extend(super::traffic::validate_virtual_service(rollout, vs));
    }
    errs
}

fn validate_service(rollout: &Rollout, role: ServiceRole, svc: &Service) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let template = rollout.spec.template.as_ref();
    let labels = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    // A workloadRef Rollout has its template elsewhere: its labels can be checked only once
    // the controller resolved it (then the template holds the workload's labels).
    let check_labels = rollout.spec.workload_ref.is_none() || labels.is_some();
    let selector = svc.spec.as_ref().and_then(|s| s.selector.as_ref());
    for (key, value) in selector.into_iter().flatten() {
        if key == HASH_LABEL || !check_labels {
            continue;
        }
        let in_template = labels.and_then(|l| l.get(key)) == Some(value);
        if !in_template && !selector_matches_role_metadata(rollout, role, &name, key, value) {
            errs.push(FieldError::invalid(
                role.path(),
                BadValue::str(&name),
                format!("Service \"{name}\" has unmatch label \"{key}\" in rollout"),
            ));
        }
    }
    let managed_by = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANAGED_BY));
    let rollout_name = rollout.metadata.name.as_deref().unwrap_or("");
    if let Some(owner) = managed_by
        && owner != rollout_name
    {
        errs.push(FieldError::invalid(
            role.path(),
            BadValue::str(&name),
            format!("Service \"{name}\" is managed by another Rollout"),
        ));
    }
    errs
}

/// Upstream's `validSvcSelectorForType`: a selector label may come from the role's ephemeral
/// metadata instead of the template.
fn selector_matches_role_metadata(
    rollout: &Rollout,
    role: ServiceRole,
    svc: &str,
    key: &str,
    value: &str,
) -> bool {
    let s = &rollout.spec.strategy;
    let (meta, expected) = match role {
        ServiceRole::Stable => (
            s.canary.as_ref().and_then(|c| c.stable_metadata.as_ref()),
            s.canary.as_ref().and_then(|c| c.stable_service.as_deref()),
        ),
        ServiceRole::Canary => (
            s.canary.as_ref().and_then(|c| c.canary_metadata.as_ref()),
            s.canary.as_ref().and_then(|c| c.canary_service.as_deref()),
        ),
        ServiceRole::Active => (
            s.blue_green
                .as_ref()
                .and_then(|b| b.active_metadata.as_ref()),
            s.blue_green.as_ref().map(|b| b.active_service.as_str()),
        ),
        ServiceRole::Preview => (
            s.blue_green
                .as_ref()
                .and_then(|b| b.preview_metadata.as_ref()),
            s.blue_green
                .as_ref()
                .and_then(|b| b.preview_service.as_deref()),
        ),
        ServiceRole::Ping | ServiceRole::Pong => return false,
    };
    expected == Some(svc)
        && meta
            .and_then(|m| m.labels.as_ref())
            .and_then(|l| l.get(key))
            .is_some_and(|v| v == value)
}

/// Upstream's `BuildArgumentsForRolloutAnalysisRun` with stand-in hashes: the values the
/// Rollout would pass. `None` when a metadata fieldRef cannot be resolved (upstream then
/// passes no arguments at all).
fn build_analysis_args(args: &[AnalysisRunArgument], rollout: &Rollout) -> Option<Vec<Argument>> {
    let mut out = Vec::new();
    // Encoded only when an argument reads a non-metadata field.
    let mut rollout_json = None;
    for arg in args {
        if arg.name.is_empty() {
            continue;
        }
        let value = match &arg.value_from {
            None => arg.value.clone().unwrap_or_default(),
            Some(vf) => match (&vf.pod_template_hash_value, &vf.field_ref) {
                (Some(h), _) if h == "Latest" => "dummy-new-hash".to_string(),
                (Some(h), _) if h == "Stable" => "dummy-stable-hash".to_string(),
                (Some(_), _) => String::new(),
                (None, Some(fr)) if fr.field_path.starts_with("metadata") => {
                    metadata_field(rollout, &fr.field_path).ok()?
                }
                (None, Some(fr)) => {
                    let root = rollout_json.get_or_insert_with(|| {
                        serde_json::to_value(rollout).unwrap_or(Value::Null)
                    });
                    json_field(root, &fr.field_path).unwrap_or_default()
                }
                (None, None) => String::new(),
            },
        };
        out.push(Argument {
            name: arg.name.clone(),
            value: Some(value),
            value_from: None,
        });
    }
    Some(out)
}

/// A `.`-separated path (with `[i]` indexes) into the Rollout's JSON, printed like Go's `%v`;
/// empty when absent (upstream's validation stage passes an empty value then).
fn validate_template_group(rollout: &Rollout, group: &TemplateGroup<'_>) -> ErrorList {
    let path = group.kind.path();
    let names: Vec<&str> = group.templates.iter().map(|(n, _, _)| n.as_str()).collect();
    let value = BadValue::Str(format!("templateNames: [{}]", names.join(" ")));
    let namespaced: Vec<&AnalysisTemplateSpec> = group
        .templates
        .iter()
        .filter(|t| !t.2)
        .map(|t| t.1)
        .collect();
    let cluster: Vec<&AnalysisTemplateSpec> = group
        .templates
        .iter()
        .filter(|t| t.2)
        .map(|t| t.1)
        .collect();
    let args = build_analysis_args(group.args, rollout).unwrap_or_default();
    if let Err(e) = new_run_spec_from_templates(&namespaced, &cluster, &args, &[], &[]) {
        return vec![FieldError::invalid(path, value, e.to_string())];
    }
    // Upstream re-checks the group with each analysis step's dryRun/retention rules.
    for step in rollout
        .spec
        .strategy
        .canary
        .iter()
        .flat_map(|c| c.steps.iter().flatten())
    {
        if let Some(a) = &step.analysis
            && let Err(e) = new_run_spec_from_templates(
                &namespaced,
                &cluster,
                &args,
                a.dry_run.as_deref().unwrap_or(&[]),
                a.measurement_retention.as_deref().unwrap_or(&[]),
            )
        {
            return vec![FieldError::invalid(path, value, e.to_string())];
        }
    }
    let mut errs = ErrorList::new();
    for (name, spec, _) in &group.templates {
        errs.extend(validate_template_for_kind(
            rollout, group.kind, name, spec, &path,
        ));
    }
    errs
}

/// Upstream's `ValidateAnalysisTemplateWithType`.
fn validate_template_for_kind(
    rollout: &Rollout,
    kind: AnalysisKind,
    name: &str,
    spec: &AnalysisTemplateSpec,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let template_args = spec.args.as_deref().unwrap_or(&[]);
    if kind != AnalysisKind::Background {
        match checked_stand_ins(template_args).and_then(|args| {
            spec.metrics
                .iter()
                .map(|m| resolve_metric_args(m, &args))
                .collect::<Result<Vec<_>, _>>()
        }) {
            Err(e) => errs.push(FieldError::invalid(
                path.clone(),
                BadValue::str(name),
                format!("AnalysisTemplate {name}: {e}"),
            )),
            Ok(metrics) => {
                for m in metrics {
                    if effective_count(&m).is_none() {
                        let count = m
                            .count
                            .as_ref()
                            .map_or("<nil>".to_string(), |c| c.to_string());
                        errs.push(FieldError::invalid(
                            path.clone(),
                            BadValue::str(name),
                            format!(
                                "AnalysisTemplate {name} has metric {} which runs indefinitely. Invalid value for count: {count}",
                                m.name
                            ),
                        ));
                    }
                }
            }
        }
        return errs;
    }
    let rollout_args = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c: &CanaryStrategy| c.analysis.as_ref())
        .and_then(|a| a.analysis.args.as_ref());
    for arg in template_args {
        if arg.value.is_some() || arg.value_from.is_some() {
            continue;
        }
        match rollout_args {
            None => errs.push(FieldError::invalid(
                path.clone(),
                BadValue::str(name),
                "missing analysis arguments in rollout spec",
            )),
            Some(given) if !given.iter().any(|g| g.name == arg.name) => errs.push(
                FieldError::invalid(path.clone(), BadValue::str(name), arg.name.clone()),
            ),
            Some(_) => {}
        }
    }
    errs
}

/// Upstream's placeholder values for validation: every argument gets a stand-in unless it
/// has a literal value; an argument with both a value and a valueFrom is an error.
fn checked_stand_ins(args: &[Argument]) -> Result<Vec<Argument>, ArgsError> {
    check_value_or_value_from(args).map(|()| stand_in_args(args))
}
