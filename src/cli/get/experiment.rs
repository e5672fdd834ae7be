//! `get experiment`: the experiment header (name, namespace, status, images) and its tree.

use k8s_openapi::jiff::Timestamp;

use super::Colorizer;
use super::header::{field, image_lines};
use super::info::{ExperimentInfo, experiment_images};
use super::tree::{TabWriter, TreePrinter};

/// The complete `get experiment` output.
pub fn render_experiment(info: &ExperimentInfo, now: Timestamp, color: Colorizer) -> String {
    let mut out = String::new();
    field(&mut out, "Name:", &info.name);
    field(&mut out, "Namespace:", &info.namespace);
    field(
        &mut out,
        "Status:",
        &format!("{} {}", color.paint(info.icon), info.status),
    );
    if !info.message.is_empty() {
        field(&mut out, "Message:", &info.message);
    }
    image_lines(&mut out, color, &experiment_images(info));
    out.push('\n');
    let mut w = TabWriter::default();
    w.line("NAME\tKIND\tSTATUS\tAGE\tINFO");
    TreePrinter { now, color }.experiment(&mut w, info, "", "");
    out.push_str(&w.finish());
    out
}
