//! `davy judge`: judge a canary sample against a baseline sample from two files, with the same
//! statistics the `davy/judge` analysis provider uses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::analysis::stats::{Classification, Direction, MetricConfig, MetricJudgement, classify};

/// Arguments of `davy judge`.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Baseline (control) sample: one number per line; blank lines and `#` comments ignored.
    #[arg(long, value_name = "FILE")]
    pub baseline: PathBuf,
    /// Canary (experiment) sample, same format.
    #[arg(long, value_name = "FILE")]
    pub canary: PathBuf,
    /// Which change of the canary fails.
    #[arg(long, value_enum, default_value_t = DirectionArg::Either)]
    pub direction: DirectionArg,
    /// Two-sided confidence level of the shift interval.
    #[arg(long, default_value_t = 0.98)]
    pub confidence: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// `--direction` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// A higher canary value is worse (latency, errors).
    Increase,
    /// A lower canary value is worse (throughput, success).
    Decrease,
    /// Any significant difference is worse.
    Either,
}

/// `--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable lines.
    Text,
    /// The judgement as JSON.
    Json,
}

/// Runs `davy judge`; exit code 0 for Pass, 1 for High or Low, 2 when no verdict was possible.
pub fn run(args: &JudgeArgs) -> anyhow::Result<i32> {
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        bail!(
            "--confidence must be between 0 and 1 (exclusive), got {}",
            args.confidence
        );
    }
    let baseline = read_sample(&args.baseline)?;
    let canary = read_sample(&args.canary)?;
    let config = MetricConfig {
        direction: match args.direction {
            DirectionArg::Increase => Direction::Increase,
            DirectionArg::Decrease => Direction::Decrease,
            DirectionArg::Either => Direction::Either,
        },
        confidence: args.confidence,
        ..MetricConfig::default()
    };
    let judgement = classify(&baseline, &canary, &config);
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&to_json(&judgement))?),
        OutputFormat::Text => print!("{}", to_text(&judgement, args.confidence)),
    }
    Ok(match judgement.classification {
        Classification::Pass => 0,
        Classification::High | Classification::Low => 1,
        Classification::Nodata | Classification::NodataFailMetric | Classification::Error => 2,
    })
}

/// Reads one number per line; blank lines and `#` comments (whole-line or trailing) are skipped.
/// `NaN` is accepted (the judge drops it); anything else unparsable or infinite is an error
/// naming the file, the line number and the text.
pub fn read_sample(path: &Path) -> anyhow::Result<Vec<f64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read sample file {}", path.display()))?;
    parse_sample(&text).map_err(|(line, bad)| {
        anyhow::anyhow!("{}:{line}: not a finite number: {bad:?}", path.display())
    })
}

/// Parses sample text; the error is (1-based line number, offending text).
pub fn parse_sample(text: &str) -> Result<Vec<f64>, (usize, String)> {
    let mut values = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        match content.parse::<f64>() {
            Ok(v) if !v.is_infinite() => values.push(v),
            _ => return Err((index + 1, content.to_string())),
        }
    }
    Ok(values)
}

fn finite(v: Option<f64>) -> serde_json::Value {
    match v {
        Some(x) if x.is_finite() => json!(x),
        _ => serde_json::Value::Null,
    }
}

fn to_json(j: &MetricJudgement) -> serde_json::Value {
    let s = j.statistics;
    json!({
        "classification": j.classification.as_str(),
        "p_value": finite(s.map(|s| s.p_value)),
        "estimate": finite(s.map(|s| s.estimate)),
        "ci_low": finite(s.map(|s| s.ci_low)),
        "ci_high": finite(s.map(|s| s.ci_high)),
        "mean_ratio": finite(j.mean_ratio),
        "cles": finite(j.cles),
        "statistic": finite(s.map(|s| s.statistic)),
        "reason": j.reason,
        "baseline": j.baseline,
        "canary": j.canary,
    })
}

fn to_text(j: &MetricJudgement, confidence: f64) -> String {
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.6}"));
    let mut out = String::new();
    let s = j.statistics;
    // Writing to a String cannot fail; the results are ignored deliberately.
    let _ = writeln!(out, "classification:  {}", j.classification.as_str());
    let _ = writeln!(out, "reason:          {}", j.reason);
    let _ = writeln!(
        out,
        "p-value:         {}",
        s.map_or_else(|| "-".to_string(), |s| format!("{:.6e}", s.p_value))
    );
    let _ = writeln!(
        out,
        "shift estimate:  {} (canary - baseline)",
        show(s.map(|s| s.estimate))
    );
    let _ = writeln!(
        out,
        "{:<17}[{}, {}]",
        format!("{}% interval:", confidence * 100.0),
        show(s.map(|s| s.ci_low)),
        show(s.map(|s| s.ci_high))
    );
    let _ = writeln!(out, "mean ratio:      {}", show(j.mean_ratio));
    let _ = writeln!(out, "CLES:            {}", show(j.cles));
    for (name, d) in [("baseline:", j.baseline), ("canary:", j.canary)] {
        let _ = match d {
            Some(d) => writeln!(
                out,
                "{name:<17}n={} mean={:.6} median={:.6} min={:.6} max={:.6}",
                d.count, d.mean, d.median, d.min, d.max
            ),
            None => writeln!(out, "{name:<17}no data"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_comments_and_blank_lines() {
        let text = "# latency in ms\n1.5\n\n  2 # trailing comment\nNaN\n-3e2\n";
        let v = parse_sample(text).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!((v[0], v[1], v[3]), (1.5, 2.0, -300.0));
        assert!(v[2].is_nan());
    }

    #[test]
    fn reports_the_line_and_text_of_a_bad_value() {
        assert_eq!(parse_sample("1\n2\nabc\n"), Err((3, "abc".to_string())));
        assert_eq!(parse_sample("inf\n"), Err((1, "inf".to_string())));
    }
}
