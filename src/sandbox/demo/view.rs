//! What the demo prints while it runs: narration lines for the story's entries and the live
//! `get rollout` tree. On a colour terminal the screen is redrawn whenever the tree changes (as
//! `get rollout -w` does); otherwise each narrated transition prints the tree once, so a log or
//! a pipe keeps the whole story.

use std::io::Write as _;
use std::time::Duration;

use super::script::{Entry, Happened};
use crate::cli::color::stdout_colorizer;
use crate::cli::get::Colorizer;

/// Clears the screen and homes the cursor (what `get rollout -w` prints between frames).
const CLEAR: &str = "\x1b[H\x1b[2J";

/// The narration line of an entry (pure).
pub fn entry_line(entry: &Entry, color: Colorizer) -> String {
    let at = format_at(entry.at);
    let detail = if entry.detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", entry.detail)
    };
    match entry.what {
        Happened::Beat(beat) => format!(
            "[{at}] {} {}{detail}",
            color.paint(beat.icon()),
            beat.title()
        ),
        Happened::Action(action) => format!("[{at}] $ {}{detail}", action.command()),
    }
}

/// `  3.1s`: seconds with one decimal, right-aligned to 6 columns.
pub fn format_at(at: Duration) -> String {
    format!("{:>5.1}s", at.as_secs_f64())
}

/// `text` with every non-empty line indented by four spaces.
pub fn indent(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_string()
            } else {
                format!("    {line}\n")
            }
        })
        .collect()
}

/// The terminal side of the demo.
pub struct View {
    /// Colour switch for icons and tags.
    pub color: Colorizer,
    live: bool,
    intro: Vec<String>,
    lines: Vec<String>,
    last_frame: String,
}

impl View {
    /// A view for stdout: colour and live redraws only on a terminal with colour on (never
    /// escape codes into a pipe or a file).
    pub fn new(no_color: bool) -> View {
        let color = stdout_colorizer(no_color);
        View {
            color,
            live: color.enabled,
            intro: Vec::new(),
            lines: Vec::new(),
            last_frame: String::new(),
        }
    }

    /// Whether the screen is redrawn (a colour terminal).
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// A line printed before the story (and kept above it in live mode).
    pub fn intro(&mut self, line: &str) {
        if !self.live {
            println!("{line}");
        }
        self.intro.push(line.to_string());
    }

    /// Narrates one entry; in plain mode a beat also prints the tree as it is now.
    pub fn entry(&mut self, entry: &Entry, tree: &str) {
        let line = entry_line(entry, self.color);
        if !self.live {
            println!("{line}");
            if matches!(entry.what, Happened::Beat(_)) && !tree.is_empty() {
                print!("{}", indent(tree));
                println!();
            }
        }
        self.lines.push(line);
        self.refresh(tree);
    }

    /// A line of the story that is not an entry (kept on the live screen with the entries).
    pub fn note(&mut self, line: &str) {
        if !self.live {
            println!("{line}");
        }
        self.lines.push(line.to_string());
    }

    /// Redraws the live screen when anything changed (no-op in plain mode).
    pub fn refresh(&mut self, tree: &str) {
        if !self.live {
            return;
        }
        let mut frame = String::new();
        for line in &self.intro {
            frame.push_str(line);
            frame.push('\n');
        }
        frame.push('\n');
        frame.push_str(tree);
        frame.push('\n');
        for line in &self.lines {
            frame.push_str(line);
            frame.push('\n');
        }
        if frame != self.last_frame {
            print!("{CLEAR}{frame}");
            let _ = std::io::stdout().flush();
            self.last_frame = frame;
        }
    }

    /// A message outside the story (errors, the summary).
    pub fn say(&self, text: &str) {
        println!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::script::{Action, Beat, YELLOW};
    use super::*;

    #[test]
    fn lines() {
        let off = Colorizer { enabled: false };
        let beat = Entry {
            at: Duration::from_millis(3140),
            what: Happened::Beat(Beat::BlueHealthy),
            detail: "stable rollouts-demo-abc, 2/2 pods ready".into(),
        };
        assert_eq!(
            entry_line(&beat, off),
            "[  3.1s] ✔ blue is live: Healthy, all traffic on stable (stable rollouts-demo-abc, 2/2 pods ready)"
        );
        let on = Colorizer { enabled: true };
        assert!(entry_line(&beat, on).contains("\x1b[32m✔\x1b[0m blue is live"));
        let act = Entry {
            at: Duration::from_secs(12),
            what: Happened::Action(Action::SetImage(YELLOW)),
            detail: String::new(),
        };
        assert_eq!(
            entry_line(&act, off),
            "[ 12.0s] $ kubectl davy set image rollouts-demo rollouts-demo=argoproj/rollouts-demo:yellow"
        );
        assert_eq!(indent("a\n\nb\n"), "    a\n\n    b\n");
    }
}
