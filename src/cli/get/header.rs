//! The header block of `get rollout` / `get experiment`: labels padded to 17 columns
//! (upstream `fmt "%-17s%v"`), images with tags, replica counts; and the full rollout text.

use k8s_openapi::jiff::Timestamp;

use super::Colorizer;
use super::info::{RolloutInfo, images};
use super::tree::{TabWriter, TreePrinter};

/// One `%-17s%v` header line.
pub fn field(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<17}{value}\n"));
}

/// `image (tag, tag)` with colourised tags, or just the image.
pub fn format_image(color: Colorizer, image: &str, tags: &[String]) -> String {
    if tags.is_empty() {
        image.to_string()
    } else {
        let tags: Vec<String> = tags.iter().map(|t| color.paint(t)).collect();
        format!("{image} ({})", tags.join(", "))
    }
}

/// Image lines: the first labelled `Images:`, the rest with an empty label.
pub fn image_lines(out: &mut String, color: Colorizer, imgs: &[(String, Vec<String>)]) {
    for (i, (image, tags)) in imgs.iter().enumerate() {
        let label = if i == 0 { "Images:" } else { "" };
        field(out, label, &format_image(color, image, tags));
    }
}

/// The rollout header (everything above the blank line).
pub fn rollout_header(info: &RolloutInfo, color: Colorizer) -> String {
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
    field(&mut out, "Strategy:", &info.strategy);
    if info.strategy == "Canary" {
        field(&mut out, "  Step:", &info.step);
        field(&mut out, "  SetWeight:", &info.set_weight);
        field(&mut out, "  ActualWeight:", &info.actual_weight);
    }
    image_lines(&mut out, color, &images(info));
    out.push_str("Replicas:\n");
    field(&mut out, "  Desired:", &info.desired.to_string());
    field(&mut out, "  Current:", &info.current.to_string());
    field(&mut out, "  Updated:", &info.updated.to_string());
    field(&mut out, "  Ready:", &info.ready.to_string());
    field(&mut out, "  Available:", &info.available.to_string());
    out
}

/// The complete `get rollout` output: header, blank line, tree.
pub fn render_rollout(info: &RolloutInfo, now: Timestamp, color: Colorizer) -> String {
    let mut out = rollout_header(info, color);
    out.push('\n');
    let mut w = TabWriter::default();
    TreePrinter { now, color }.rollout_tree(&mut w, info);
    out.push_str(&w.finish());
    out
}
