//! Per-metric classification of a canary sample against its baseline, following Kayenta's
//! NetflixACAJudge (`MannWhitneyClassifier`): no-data rules, identical data, the rank-sum
//! interval against a tolerance band, effect sizes, direction and criticality.

use serde::{Deserialize, Serialize};

use super::mann_whitney::{R_TOL_ROOT, RankSum, ShiftEstimate, StatsError};
use super::transform::{Descriptive, NanStrategy, OutlierConfig, describe, prepare};

/// The outcome labels of one metric (Kayenta's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Classification {
    /// The canary is within the tolerance band.
    Pass,
    /// The canary is higher than the baseline beyond the tolerance.
    High,
    /// The canary is lower than the baseline beyond the tolerance.
    Low,
    /// No data for a metric that must have data: counts as a failure in its groups.
    NodataFailMetric,
    /// No data: left out of its groups' scores.
    Nodata,
    /// The statistics could not be computed.
    Error,
}

impl Classification {
    /// The label as Kayenta writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::High => "High",
            Self::Low => "Low",
            Self::NodataFailMetric => "NodataFailMetric",
            Self::Nodata => "Nodata",
            Self::Error => "Error",
        }
    }
}

/// Which change of the canary is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Only a higher canary fails (error rates, latency).
    Increase,
    /// Only a lower canary fails (throughput, success rate).
    Decrease,
    /// Any significant change fails. Unknown spellings mean this, as in Kayenta.
    #[default]
    #[serde(other)]
    Either,
}

/// The effect size that must also be large enough before High or Low is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EffectMeasure {
    /// mean(canary) / mean(baseline).
    #[default]
    MeanRatio,
    /// Common-language effect size: P(canary > baseline), ties counting ½.
    Cles,
}

/// Effect-size gates; unset limits take the measure's neutral value (1.0 for the mean ratio,
/// 0.5 for CLES), so by default any effect in the right direction is enough.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EffectSizeConfig {
    /// Which effect size the gates below read.
    pub measure: EffectMeasure,
    /// Largest increase still accepted (a ratio or a CLES value, per `measure`).
    pub allowed_increase: Option<f64>,
    /// Largest decrease still accepted.
    pub allowed_decrease: Option<f64>,
    /// An increase beyond this fails the whole judgement.
    pub critical_increase: Option<f64>,
    /// A decrease beyond this fails the whole judgement.
    pub critical_decrease: Option<f64>,
}

impl EffectSizeConfig {
    fn neutral(&self) -> f64 {
        match self.measure {
            EffectMeasure::MeanRatio => 1.0,
            EffectMeasure::Cles => 0.5,
        }
    }
    fn limits(&self) -> EffectLimits {
        let n = self.neutral();
        EffectLimits {
            allowed_increase: self.allowed_increase.unwrap_or(n),
            allowed_decrease: self.allowed_decrease.unwrap_or(n),
            critical_increase: self.critical_increase.unwrap_or(n),
            critical_decrease: self.critical_decrease.unwrap_or(n),
        }
    }
}

struct EffectLimits {
    allowed_increase: f64,
    allowed_decrease: f64,
    critical_increase: f64,
    critical_decrease: f64,
}

/// Everything that shapes how one metric is judged (Kayenta's `analysisConfigurations.canary`
/// plus the test's confidence level, tolerance band and root-finding tolerance).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MetricConfig {
    /// Which direction of change counts against the canary.
    pub direction: Direction,
    /// What to do with NaN samples.
    pub nan_strategy: NanStrategy,
    /// Outlier handling before the test.
    pub outliers: OutlierConfig,
    /// A non-Pass result of a critical metric fails the whole judgement.
    pub critical: bool,
    /// Missing data counts as a failure in the metric's groups.
    pub must_have_data: bool,
    /// Reported but not scored.
    pub muted: bool,
    /// Effect-size gates applied after the rank-sum test.
    pub effect_size: EffectSizeConfig,
    /// Two-sided confidence level of the interval (Kayenta: 0.98).
    pub confidence: f64,
    /// Half-width of the band around zero, as a fraction of |estimate| (Kayenta: 0.25).
    pub tolerance: f64,
    /// Absolute tolerance of the interval search (R's `tol.root`, 1e-4). Express small metrics
    /// (ratios around 0.01) in percent, or lower this, so the search resolves their shifts.
    pub tol_root: f64,
}

impl Default for MetricConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Either,
            nan_strategy: NanStrategy::Remove,
            outliers: OutlierConfig::default(),
            critical: false,
            must_have_data: false,
            muted: false,
            effect_size: EffectSizeConfig::default(),
            confidence: 0.98,
            tolerance: 0.25,
            tol_root: R_TOL_ROOT,
        }
    }
}

/// The statistics behind a judgement, when they could be computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestStatistics {
    /// R's W: the Mann-Whitney U of the canary.
    pub statistic: f64,
    /// Two-sided p-value of the rank-sum test.
    pub p_value: f64,
    /// Location shift canary − baseline.
    pub estimate: f64,
    /// Lower end of the confidence interval of the shift.
    pub ci_low: f64,
    /// Upper end of the confidence interval of the shift.
    pub ci_high: f64,
}

/// One metric's verdict and the numbers that explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricJudgement {
    /// The verdict.
    pub classification: Classification,
    /// Why, in Kayenta's words.
    pub reason: String,
    /// Set when this result must fail the whole judgement (see [`classify`]).
    pub critical: bool,
    /// Summary of the baseline sample, when it had data.
    pub baseline: Option<Descriptive>,
    /// Summary of the canary sample, when it had data.
    pub canary: Option<Descriptive>,
    /// The rank-sum statistics, when they could be computed.
    pub statistics: Option<TestStatistics>,
    /// The tolerance band [−t·|est|, +t·|est|] the interval was compared with.
    pub bounds: Option<(f64, f64)>,
    /// mean(canary) / mean(baseline); `None` when a mean is 0 or there is no data.
    pub mean_ratio: Option<f64>,
    /// Common-language effect size P(canary > baseline); `None` without data.
    pub cles: Option<f64>,
}

/// Judges one metric: `baseline` (control) and `canary` (experiment) are the raw samples.
///
/// Rules, in order (Kayenta NetflixACAJudge, `reference/ecosystem-anchors.md` §3.2):
/// 1. NaN strategy, then optional outlier removal, on each sample.
/// 2. An empty sample: with NaN strategy `replace` → Pass; else `mustHaveData` on a non-critical
///    metric → NodataFailMetric; else Nodata.
/// 3. Identical samples (equal when sorted), or all values of both equal → Pass.
/// 4. Otherwise the rank-sum test gives the shift estimate and interval. High when the direction
///    allows an increase, the interval's low end lies above +tolerance·|estimate| and the effect
///    size reaches `allowedIncrease`; Low symmetrically; else Pass. A NaN effect size does not
///    block. Both samples constant (but different): R cannot run its interval search, Kayenta
///    jitters the data randomly; we use the limit of that jitter, estimate = interval = the
///    difference of the two constants, with R's p-value (which is defined).
/// 5. `critical` is flagged for a critical metric that is High with effect ≥ criticalIncrease,
///    Low with effect ≤ criticalDecrease, Nodata or Error.
pub fn classify(baseline: &[f64], canary: &[f64], config: &MetricConfig) -> MetricJudgement {
    let base = prepare(baseline, config.nan_strategy, config.outliers);
    let cand = prepare(canary, config.nan_strategy, config.outliers);
    let mut out = MetricJudgement {
        classification: Classification::Pass,
        reason: String::new(),
        critical: false,
        baseline: describe(&base),
        canary: describe(&cand),
        statistics: None,
        bounds: None,
        mean_ratio: None,
        cles: None,
    };

    if base.is_empty() || cand.is_empty() {
        let (class, reason) = match (
            config.nan_strategy,
            config.must_have_data && !config.critical,
        ) {
            (NanStrategy::Replace, _) => (Classification::Pass, "no data (NaN strategy replace)"),
            (NanStrategy::Remove, true) => (
                Classification::NodataFailMetric,
                "no data for a metric that must have data",
            ),
            (NanStrategy::Remove, false) => (Classification::Nodata, "no data"),
        };
        out.classification = class;
        out.reason = reason.to_string();
        out.critical = config.critical && class == Classification::Nodata;
        return out;
    }

    out.mean_ratio = mean_ratio(out.baseline, out.canary);
    let rank_sum = match RankSum::new(&cand, &base) {
        Ok(rs) => rs,
        Err(err) => return error(out, config, &err),
    };
    out.cles = Some(rank_sum.cles());

    let mut sorted_base = base.clone();
    sorted_base.sort_by(f64::total_cmp);
    let mut sorted_cand = cand.clone();
    sorted_cand.sort_by(f64::total_cmp);
    let first = sorted_base[0];
    if sorted_base == sorted_cand || sorted_base.iter().chain(&sorted_cand).all(|&v| v == first) {
        // Still report the statistics when ranks carry information (identical, varied data).
        out.statistics = statistics(&rank_sum, config).ok();
        out.reason = "data are identical".to_string();
        return out;
    }

    let stats = match statistics(&rank_sum, config) {
        Ok(s) => s,
        Err(err) => return error(out, config, &err),
    };
    out.statistics = Some(stats);
    let band = config.tolerance * stats.estimate.abs();
    out.bounds = Some((-band, band));

    let effect = match config.effect_size.measure {
        EffectMeasure::MeanRatio => out.mean_ratio.unwrap_or(f64::NAN),
        EffectMeasure::Cles => out.cles.unwrap_or(f64::NAN),
    };
    let limits = config.effect_size.limits();
    // A NaN effect size skips the effect-size gate (Kayenta).
    let at_least = |limit: f64| effect.is_nan() || effect >= limit;
    let at_most = |limit: f64| effect.is_nan() || effect <= limit;
    let watches_increase = matches!(config.direction, Direction::Increase | Direction::Either);
    let watches_decrease = matches!(config.direction, Direction::Decrease | Direction::Either);

    if watches_increase && stats.ci_low > band && at_least(limits.allowed_increase) {
        out.classification = Classification::High;
        out.reason = format!(
            "canary is higher: interval [{}, {}] lies above +{}",
            num(stats.ci_low),
            num(stats.ci_high),
            num(band)
        );
        out.critical = config.critical && at_least(limits.critical_increase);
    } else if watches_decrease && stats.ci_high < -band && at_most(limits.allowed_decrease) {
        out.classification = Classification::Low;
        out.reason = format!(
            "canary is lower: interval [{}, {}] lies below -{}",
            num(stats.ci_low),
            num(stats.ci_high),
            num(band)
        );
        out.critical = config.critical && at_most(limits.critical_decrease);
    } else {
        out.reason = "no significant difference in the watched direction".to_string();
    }
    out
}

/// Test statistics, with the both-constant limit described at [`classify`].
fn statistics(rank_sum: &RankSum, config: &MetricConfig) -> Result<TestStatistics, StatsError> {
    let test = rank_sum.test()?;
    let shift = match rank_sum.shift(config.confidence, config.tol_root) {
        Ok(shift) => shift,
        Err(StatsError::BothConstant) => {
            let d = rank_sum
                .constant_difference()
                .ok_or(StatsError::BothConstant)?;
            ShiftEstimate {
                estimate: d,
                ci_low: d,
                ci_high: d,
            }
        }
        Err(err) => return Err(err),
    };
    Ok(TestStatistics {
        statistic: test.statistic,
        p_value: test.p_value,
        estimate: shift.estimate,
        ci_low: shift.ci_low,
        ci_high: shift.ci_high,
    })
}

fn error(mut out: MetricJudgement, config: &MetricConfig, err: &StatsError) -> MetricJudgement {
    out.classification = Classification::Error;
    out.reason = format!("Metric Classification Failed: {err}");
    out.critical = config.critical;
    out
}

/// Six significant digits for reasons meant to be read.
fn num(v: f64) -> String {
    if v == 0.0 || (1e-3..1e6).contains(&v.abs()) {
        let digits = 5usize.saturating_sub(v.abs().log10().floor().max(0.0) as usize);
        format!("{v:.digits$}")
    } else {
        format!("{v:.5e}")
    }
}

fn mean_ratio(base: Option<Descriptive>, cand: Option<Descriptive>) -> Option<f64> {
    let (b, c) = (base?.mean, cand?.mean);
    // Kayenta: NaN (here: none) when either mean is 0.
    (b != 0.0 && c != 0.0).then(|| c / b)
}
