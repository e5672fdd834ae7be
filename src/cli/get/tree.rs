//! The `NAME KIND STATUS AGE INFO` tree: a tab writer that aligns cells like Go's
//! `text/tabwriter` (minwidth 0, padding 2, cells measured in code points) and the row printers
//! for rollouts, revisions, ReplicaSets, pods, experiments, AnalysisRuns and jobs.

use k8s_openapi::jiff::Timestamp;

use super::info::{AnalysisRunInfo, ExperimentInfo, ReplicaSetInfo, RolloutInfo, revisions};
use super::{Colorizer, age, human_duration_millis, icon, tag};

/// Collects tab-separated lines and aligns them on [`TabWriter::finish`].
///
/// As in Go's tabwriter, only tab-terminated cells are aligned; the last cell of a line is
/// written as is. Column widths are per block of consecutive lines that have that column.
#[derive(Debug, Default)]
pub struct TabWriter {
    lines: Vec<Vec<String>>,
}

impl TabWriter {
    /// Adds one line (without its newline); `\t` separates cells.
    pub fn line(&mut self, text: &str) {
        self.lines
            .push(text.split('\t').map(str::to_string).collect());
    }

    /// The aligned text, each line ending in `\n`.
    pub fn finish(&self) -> String {
        let n = self.lines.len();
        // widths[i][col] = width of column `col` in the block containing line i.
        let mut widths: Vec<Vec<usize>> = vec![Vec::new(); n];
        let max_cols = self
            .lines
            .iter()
            .map(|l| l.len().saturating_sub(1))
            .max()
            .unwrap_or(0);
        for col in 0..max_cols {
            let mut i = 0;
            while i < n {
                if self.lines[i].len() <= col + 1 {
                    i += 1;
                    continue;
                }
                let start = i;
                let mut width = 0;
                while i < n && self.lines[i].len() > col + 1 {
                    width = width.max(self.lines[i][col].chars().count());
                    i += 1;
                }
                for w in widths.iter_mut().take(i).skip(start) {
                    w.push(width + PADDING);
                }
            }
        }
        let mut out = String::new();
        for (cells, w) in self.lines.iter().zip(&widths) {
            for (c, cell) in cells.iter().enumerate() {
                out.push_str(cell);
                if let Some(width) = w.get(c)
                    && c + 1 < cells.len()
                {
                    let len = cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Spaces between columns (upstream `tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)`).
const PADDING: usize = 2;

/// Tree branch prefixes for a child: its own prefix and the prefix of its children.
pub fn prefixes(is_last: bool, subpfx: &str) -> (String, String) {
    if is_last {
        (format!("{subpfx}└──"), format!("{subpfx}   "))
    } else {
        (format!("{subpfx}├──"), format!("{subpfx}│  "))
    }
}

/// Prints rows with a fixed clock and colour setting.
#[derive(Clone, Copy, Debug)]
pub struct TreePrinter {
    /// The clock for ages and scale-down delays.
    pub now: Timestamp,
    /// Colour switch.
    pub color: Colorizer,
}

impl TreePrinter {
    /// The whole rollout tree including the column header.
    pub fn rollout_tree(&self, w: &mut TabWriter, info: &RolloutInfo) {
        w.line("NAME\tKIND\tSTATUS\tAGE\tINFO");
        w.line(&format!(
            "{} {}\tRollout\t{} {}\t{}\t",
            icon::ROLLOUT,
            info.name,
            self.color.paint(info.icon),
            info.status,
            age(info.created, self.now)
        ));
        let revs = revisions(info);
        for (i, rev) in revs.iter().enumerate() {
            let (prefix, subpfx) = prefixes(i + 1 == revs.len(), "");
            self.revision(w, info, *rev, &prefix, &subpfx);
        }
    }

    fn revision(&self, w: &mut TabWriter, info: &RolloutInfo, rev: i64, prefix: &str, sub: &str) {
        w.line(&format!(
            "{prefix}{} revision:{rev}\t\t\t\t",
            icon::REVISION
        ));
        let rss: Vec<_> = info
            .replica_sets
            .iter()
            .filter(|r| r.revision == rev)
            .collect();
        let exps: Vec<_> = info
            .experiments
            .iter()
            .filter(|e| e.revision == rev)
            .collect();
        let ars: Vec<_> = info
            .analysis_runs
            .iter()
            .filter(|a| a.revision == rev)
            .collect();
        let total = rss.len() + exps.len() + ars.len();
        let mut curr = 0;
        for rs in rss {
            curr += 1;
            let (p, s) = prefixes(curr == total, sub);
            self.replica_set(w, rs, &p, &s);
        }
        for exp in exps {
            curr += 1;
            let (p, s) = prefixes(curr == total, sub);
            self.experiment(w, exp, &p, &s);
        }
        for ar in ars {
            curr += 1;
            let (p, s) = prefixes(curr == total, sub);
            self.analysis_run(w, ar, &p, &s);
        }
    }

    /// A ReplicaSet row and its pod rows.
    pub fn replica_set(&self, w: &mut TabWriter, rs: &ReplicaSetInfo, prefix: &str, sub: &str) {
        let mut info_col: Vec<String> = [
            (rs.stable, tag::STABLE),
            (rs.canary, tag::CANARY),
            (rs.active, tag::ACTIVE),
            (rs.preview, tag::PREVIEW),
            (rs.ping, tag::PING),
            (rs.pong, tag::PONG),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, t)| self.color.paint(t))
        .collect();
        if !rs.scale_down_deadline.is_empty() {
            info_col.push(format!(
                "delay:{}",
                scale_down_delay(&rs.scale_down_deadline, self.now)
            ));
        }
        w.line(&format!(
            "{prefix}{} {}\tReplicaSet\t{} {}\t{}\t{}",
            icon::REPLICA_SET,
            rs.name,
            self.color.paint(rs.icon),
            rs.status,
            age(rs.created, self.now),
            info_col.join(",")
        ));
        for (i, pod) in rs.pods.iter().enumerate() {
            let (p, _) = prefixes(i + 1 == rs.pods.len(), sub);
            let mut col = format!("ready:{}", pod.ready);
            if pod.restarts > 0 {
                col.push_str(&format!(",restarts:{}", pod.restarts));
            }
            w.line(&format!(
                "{p}{} {}\tPod\t{} {}\t{}\t{col}",
                icon::POD,
                pod.name,
                self.color.paint(pod.icon),
                pod.status,
                age(pod.created, self.now),
            ));
        }
    }

    /// An Experiment row, then its ReplicaSets and AnalysisRuns.
    pub fn experiment(&self, w: &mut TabWriter, exp: &ExperimentInfo, prefix: &str, sub: &str) {
        w.line(&format!(
            "{prefix}{} {}\tExperiment\t{} {}\t{}\t",
            icon::EXPERIMENT,
            exp.name,
            self.color.paint(exp.icon),
            exp.status,
            age(exp.created, self.now),
        ));
        let total = exp.replica_sets.len() + exp.analysis_runs.len();
        let mut curr = 0;
        for rs in &exp.replica_sets {
            curr += 1;
            let (p, s) = prefixes(curr == total, sub);
            self.replica_set(w, rs, &p, &s);
        }
        for ar in &exp.analysis_runs {
            curr += 1;
            let (p, s) = prefixes(curr == total, sub);
            self.analysis_run(w, ar, &p, &s);
        }
    }

    /// An AnalysisRun row with its counters, then its job rows.
    pub fn analysis_run(&self, w: &mut TabWriter, ar: &AnalysisRunInfo, prefix: &str, sub: &str) {
        let counters: Vec<String> = [
            (ar.successful, icon::OK),
            (ar.failed, icon::BAD),
            (ar.inconclusive, icon::UNKNOWN),
            (ar.error, icon::WARNING),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, i)| format!("{} {n}", self.color.paint(i)))
        .collect();
        w.line(&format!(
            "{prefix}{} {}\tAnalysisRun\t{} {}\t{}\t{}",
            icon::ANALYSIS,
            ar.name,
            self.color.paint(ar.icon),
            ar.status,
            age(ar.created, self.now),
            counters.join(",")
        ));
        for (i, job) in ar.jobs.iter().enumerate() {
            let (p, _) = prefixes(i + 1 == ar.jobs.len(), sub);
            w.line(&format!(
                "{p}{} {}\tJob\t{} {}\t{}\t",
                icon::JOB,
                job.name,
                self.color.paint(job.icon),
                job.status,
                age(job.created, self.now),
            ));
        }
    }
}

/// `passed` once the RFC 3339 deadline is before `now`, else the time left; empty when the
/// annotation does not parse (upstream `ScaleDownDelay`).
pub fn scale_down_delay(deadline: &str, now: Timestamp) -> String {
    match deadline.parse::<Timestamp>() {
        Ok(d) if d < now => "passed".to_string(),
        Ok(d) => human_duration_millis(d.as_millisecond() - now.as_millisecond()),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_writer_aligns_terminated_cells_only() {
        let mut w = TabWriter::default();
        w.line("a\tbb\tlast-is-free");
        w.line("ccc\td\t");
        w.line("⟳ x\tyy\tz");
        assert_eq!(w.finish(), "a    bb  last-is-free\nccc  d   \n⟳ x  yy  z\n");
    }

    #[test]
    fn tab_writer_blocks_reset_widths() {
        let mut w = TabWriter::default();
        w.line("aaaaaa\tb");
        w.line("no tabs here");
        w.line("c\td");
        assert_eq!(w.finish(), "aaaaaa  b\nno tabs here\nc  d\n");
    }

    #[test]
    fn delay_passed_and_remaining() {
        let now: Timestamp = "2024-01-08T00:00:00Z".parse().unwrap();
        assert_eq!(scale_down_delay("2024-01-07T23:00:00Z", now), "passed");
        assert_eq!(scale_down_delay("2024-01-08T03:59:59Z", now), "3h59m");
        assert_eq!(scale_down_delay("not a time", now), "");
    }
}
