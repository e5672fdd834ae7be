//! Notifications as Argo Rollouts configures them (its notifications-engine's ConfigMap and
//! Secret formats), as pure parts: configuration parsing, subscriptions, triggers, template
//! rendering and the payload each service sends. The controller's sender executes what is
//! decided here (`controller::notifications`).
//!
//! Pure: no I/O and no clock; `time.Now` in a template is the `now` the caller passes.

pub mod config;
pub mod dedupe;
pub mod defaults;
pub mod payload;
pub mod subscriptions;
pub mod template;
pub mod triggers;

pub use config::{NotificationConfig, ServiceConfig};
pub use payload::{Delivery, EmailDelivery, HttpDelivery};
pub use subscriptions::Destination;
pub use template::{Notification, RenderError};
pub use triggers::trigger_for_reason;

/// The ConfigMap holding services, templates, triggers and subscriptions (controller namespace).
pub const CONFIG_MAP: &str = "argo-rollouts-notification-configmap";
/// The Secret holding the values `$key` references in service settings name.
pub const SECRET: &str = "argo-rollouts-notification-secret";
/// The annotation prefix of subscriptions on a Rollout.
pub const ANNOTATION_PREFIX: &str = "notifications.argoproj.io";
