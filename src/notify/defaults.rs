//! The built-in triggers and templates: upstream's names (`on-rollout-aborted` sends
//! `rollout-aborted`, ...) and message texts, so a Rollout subscribed to a built-in trigger gets
//! the message it got from Argo Rollouts without any `trigger.`/`template.` keys. A ConfigMap key
//! of the same name replaces the built-in.
//!
//! The message and subject texts are data taken from Argo Rollouts' `manifests/notifications/`
//! (Apache-2.0) for compatibility; the Slack attachment layout is Davy's own with the same
//! content (strategy, step, each container's image).

/// Trigger name, template name, message, Slack colour, whether the step is shown.
const BUILTINS: [(&str, &str, &str, &str, bool); 9] = [
    (
        "on-rollout-completed",
        "rollout-completed",
        "Rollout {{.rollout.metadata.name}} has been completed.",
        "#18be52",
        false,
    ),
    (
        "on-rollout-step-completed",
        "rollout-step-completed",
        "Rollout {{.rollout.metadata.name}} step number {{ add .rollout.status.currentStepIndex 1}}/{{len .rollout.spec.strategy.canary.steps}} has been completed.",
        "#18be52",
        true,
    ),
    (
        "on-rollout-updated",
        "rollout-updated",
        "Rollout {{.rollout.metadata.name}} has been updated.",
        "#18be52",
        false,
    ),
    (
        "on-rollout-aborted",
        "rollout-aborted",
        "Rollout {{.rollout.metadata.name}} has been aborted.",
        "#E01E5A",
        false,
    ),
    (
        "on-rollout-paused",
        "rollout-paused",
        "Rollout {{.rollout.metadata.name}} has been paused.",
        "#418fde",
        false,
    ),
    (
        "on-analysis-run-running",
        "analysis-run-running",
        "Rollout {{.rollout.metadata.name}}'s analysis run is running.",
        "#18be52",
        false,
    ),
    (
        "on-analysis-run-error",
        "analysis-run-error",
        "Rollout {{.rollout.metadata.name}}'s analysis run is in error state.",
        "#E01E5A",
        false,
    ),
    (
        "on-analysis-run-failed",
        "analysis-run-failed",
        "Rollout {{.rollout.metadata.name}}'s analysis run failed.",
        "#E01E5A",
        false,
    ),
    (
        "on-scaling-replica-set",
        "scaling-replicaset",
        "Scaling Rollout {{.rollout.metadata.name}}'s replicaset to {{.rollout.spec.replicas}}.",
        "#18be52",
        false,
    ),
];

/// The built-ins as ConfigMap entries (`trigger.<name>` and `template.<name>` keys).
pub fn entries() -> Vec<(String, String)> {
    BUILTINS
        .iter()
        .flat_map(|&(trigger, template, message, color, step)| {
            [
                (
                    format!("trigger.{trigger}"),
                    format!("- send: [{template}]\n"),
                ),
                (
                    format!("template.{template}"),
                    template_yaml(message, color, step),
                ),
            ]
        })
        .collect()
}

/// A template with the message as text, e-mail subject and a Slack attachment.
fn template_yaml(message: &str, color: &str, step: bool) -> String {
    let step_field = if step {
        r#"{"title": "Step completed", "value": "{{add .rollout.status.currentStepIndex 1}}/{{len .rollout.spec.strategy.canary.steps}}", "short": true},"#
    } else {
        ""
    };
    let attachments = format!(
        r#"[{{"title": "{{{{.rollout.metadata.name}}}}", "color": "{color}", "fields": [{{"title": "Strategy", "value": "{{{{if .rollout.spec.strategy.blueGreen}}}}BlueGreen{{{{end}}}}{{{{if .rollout.spec.strategy.canary}}}}Canary{{{{end}}}}", "short": true}},{step_field}{{{{range $index, $c := .rollout.spec.template.spec.containers}}}}{{{{if $index}}}},{{{{end}}}}{{"title": "{{{{$c.name}}}}", "value": "{{{{$c.image}}}}", "short": true}}{{{{end}}}}]}}]"#
    );
    let quoted = |text: &str| serde_json::Value::String(text.to_string()).to_string();
    format!(
        "message: {}\nemail:\n  subject: {}\nslack:\n  attachments: {}\n",
        quoted(message),
        quoted(message),
        quoted(&attachments)
    )
}
