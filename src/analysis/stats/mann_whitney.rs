//! The Wilcoxon rank-sum (Mann-Whitney U) test with its shift estimate and confidence interval,
//! computed exactly as R's `wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE)`.
//!
//! `x` is the canary (experiment) sample, `y` the baseline (control), as in Kayenta's judge, so a
//! positive shift means the canary is higher.
//!
//! What R computes, and so what this module computes:
//! - `W` = sum of the ranks of `x` in `c(x, y)` (average ranks for ties) − nₓ(nₓ+1)/2, i.e. the
//!   number of pairs with xᵢ > yⱼ plus half the tied pairs (the U statistic of `x`).
//! - z = (W − nₓn_y/2 − sign(·)·½) / σ with the tie-corrected
//!   σ = √(nₓn_y/12 · ((N+1) − Σ(t³−t)/(N(N−1)))); two-sided p = 2·min(Φ(z), 1−Φ(z)).
//! - The shift estimate and interval are *not* the exact Hodges-Lehmann median and order
//!   statistics of the nₓ·n_y pairwise differences. R finds them by root finding on the
//!   standardized statistic of the shifted sample `c(x − d, y)`: the interval ends are the shifts
//!   d where it crosses ±z₁₋α/₂ (with continuity correction), the estimate the shift where it
//!   crosses 0 (without), each by `uniroot(tol = 1e-4)` on [min x − max y, max x − min y].
//!   We run the same root finder ([`super::zeroin`]) on the same function, so the numbers agree
//!   with R to the last few bits, not just to the tolerance.
//!
//! Speed: both samples are sorted once (O(N log N)). Because x ↦ x − d is monotone in IEEE
//! arithmetic, the sorted shifted canary merges with the sorted baseline in O(N) per evaluation,
//! which yields the rank sum and the tie counts of `c(x − d, y)` — the same quantities R gets from
//! `rank()` and `table()`. A search takes a few dozen evaluations, so n = 10,000 per side needs
//! about a million comparisons instead of the 10⁸ pairwise differences of a literal
//! Hodges-Lehmann estimate.
//!
//! statrs 0.19 has `mannwhitneyu`, but its two-sided p-value is `2·(1 − Φ(z))`, which loses all
//! relative precision below about 1e-10, its input check is quadratic, and it has no interval;
//! so only statrs' normal distribution is used here.

use statrs::distribution::{ContinuousCDF, Normal};
use thiserror::Error;

use super::zeroin::zeroin;

/// R's default `tol.root` for `wilcox.test`.
pub const R_TOL_ROOT: f64 = 1e-4;
/// R's default `maxiter` for `uniroot`.
pub const R_MAX_ITER: u32 = 1000;

/// Why the test could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    /// One of the samples has no values.
    #[error("the {0} sample is empty")]
    EmptySample(&'static str),
    /// A value is NaN or infinite (apply the NaN strategy first).
    #[error("the {0} sample holds a value that is not finite")]
    NonFinite(&'static str),
    /// Every value of both samples is the same, so ranks carry no information (σ = 0).
    #[error("all observations are tied")]
    AllTied,
    /// Both samples are constant (but different): R's interval search then divides by zero.
    #[error("both samples are constant; the rank-sum interval is undefined")]
    BothConstant,
    /// The confidence level must lie strictly between 0 and 1.
    #[error("confidence level {0} is not between 0 and 1")]
    InvalidConfidence(f64),
}

/// The test statistic and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankSumTest {
    /// R's `W` (the Mann-Whitney U of the canary).
    pub statistic: f64,
    /// The standardized statistic with continuity correction.
    pub z: f64,
    /// Two-sided p-value of the normal approximation.
    pub p_value: f64,
}

/// The location shift (canary − baseline) and its two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftEstimate {
    /// R's `estimate` ("difference in location").
    pub estimate: f64,
    /// Lower end of R's `conf.int`.
    pub ci_low: f64,
    /// Upper end of R's `conf.int`.
    pub ci_high: f64,
}

/// Everything `wilcox.test(conf.int = TRUE, exact = FALSE)` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WilcoxonResult {
    /// The rank-sum test (statistic and p-value).
    pub test: RankSumTest,
    /// The Hodges-Lehmann shift and its confidence interval.
    pub shift: ShiftEstimate,
}

/// Sorted copies of both samples; evaluates R's standardized statistic for any shift `d`.
#[derive(Debug, Clone)]
pub struct RankSum {
    xs: Vec<f64>,
    ys: Vec<f64>,
    nx: f64,
    ny: f64,
}

impl RankSum {
    /// Prepares the canary `x` and baseline `y` samples; both must be non-empty and finite.
    pub fn new(x: &[f64], y: &[f64]) -> Result<Self, StatsError> {
        let xs = sorted_finite(x, "canary")?;
        let ys = sorted_finite(y, "baseline")?;
        Ok(Self {
            nx: xs.len() as f64,
            ny: ys.len() as f64,
            xs,
            ys,
        })
    }

    /// Rank sum of the shifted canary values in `c(x − d, y)` and Σ(t³ − t) over tie groups.
    fn rank_sum_and_ties(&self, d: f64) -> (f64, f64) {
        let (xs, ys) = (&self.xs, &self.ys);
        let (mut i, mut j, mut placed) = (0usize, 0usize, 0u64);
        let (mut rank_sum, mut tie_sum) = (0.0f64, 0.0f64);
        while i < xs.len() || j < ys.len() {
            // The smallest value not yet ranked; all its copies sit at the front of both runs.
            let v = match (xs.get(i), ys.get(j)) {
                (Some(&a), Some(&b)) => (a - d).min(b),
                (Some(&a), None) => a - d,
                (None, Some(&b)) => b,
                (None, None) => break,
            };
            let mut cx = 0u64;
            while i < xs.len() && xs[i] - d == v {
                cx += 1;
                i += 1;
            }
            let mut cy = 0u64;
            while j < ys.len() && ys[j] == v {
                cy += 1;
                j += 1;
            }
            let t = cx + cy;
            // Ranks placed+1 ..= placed+t share their average; every term is a multiple of ½
            // far below 2⁵³, so the sum is exact whatever the order (as R's is).
            let average = placed as f64 + (t as f64 + 1.0) / 2.0;
            rank_sum += cx as f64 * average;
            let tf = t as f64;
            tie_sum += tf * tf * tf - tf;
            placed += t;
        }
        (rank_sum, tie_sum)
    }

    /// R's `W(d)` inside `wilcox.test`: the standardized rank-sum statistic of `c(x − d, y)`,
    /// with the continuity correction when `correct` is set. Decreasing in `d`.
    pub fn standardized(&self, d: f64, correct: bool) -> f64 {
        let (nx, ny) = (self.nx, self.ny);
        let (rank_sum, tie_sum) = self.rank_sum_and_ties(d);
        // Same operations in the same order as R, so the values are bit-identical.
        let dz = rank_sum - nx * (nx + 1.0) / 2.0 - nx * ny / 2.0;
        let correction = if correct { r_sign(dz) * 0.5 } else { 0.0 };
        let sigma =
            ((nx * ny / 12.0) * ((nx + ny + 1.0) - tie_sum / ((nx + ny) * (nx + ny - 1.0)))).sqrt();
        (dz - correction) / sigma
    }

    /// The test of "no shift": statistic, z and two-sided p-value (R's `statistic`, `p.value`).
    pub fn test(&self) -> Result<RankSumTest, StatsError> {
        let (nx, ny) = (self.nx, self.ny);
        let (rank_sum, tie_sum) = self.rank_sum_and_ties(0.0);
        let statistic = rank_sum - nx * (nx + 1.0) / 2.0;
        let centred = statistic - nx * ny / 2.0;
        let sigma =
            ((nx * ny / 12.0) * ((nx + ny + 1.0) - tie_sum / ((nx + ny) * (nx + ny - 1.0)))).sqrt();
        if sigma == 0.0 || sigma.is_nan() {
            return Err(StatsError::AllTied);
        }
        let z = (centred - r_sign(centred) * 0.5) / sigma;
        // 2·min(Φ(z), 1 − Φ(z)) = 2·Φ(−|z|), taken from the upper tail so tiny p-values keep
        // their relative precision.
        let p_value = 2.0 * standard_normal().sf(z.abs());
        Ok(RankSumTest {
            statistic,
            z,
            p_value,
        })
    }

    /// The shift estimate and two-sided interval at `confidence`, found as R finds them.
    pub fn shift(&self, confidence: f64, tol_root: f64) -> Result<ShiftEstimate, StatsError> {
        if !(confidence > 0.0 && confidence < 1.0) {
            return Err(StatsError::InvalidConfidence(confidence));
        }
        let (x_min, x_max) = (self.xs[0], self.xs[self.xs.len() - 1]);
        let (y_min, y_max) = (self.ys[0], self.ys[self.ys.len() - 1]);
        if x_min == x_max && y_min == y_max {
            return Err(if x_min == y_min {
                StatsError::AllTied
            } else {
                StatsError::BothConstant
            });
        }
        let mu_min = x_min - y_max;
        let mu_max = x_max - y_min;
        if mu_min >= mu_max {
            // R's uniroot stops with "lower < upper is not fulfilled"; only reachable when
            // rounding collapses the range of nearly constant samples.
            return Err(StatsError::BothConstant);
        }

        let alpha = 1.0 - confidence;
        let q = standard_normal().inverse_cdf(alpha / 2.0); // qnorm(alpha/2), negative
        let w_min = self.standardized(mu_min, true);
        let w_max = self.standardized(mu_max, true);
        let root = |zq: f64| {
            // In extreme cases R returns the end points (e.g. wilcox.test(1, 2:60, conf.int=TRUE)).
            let f_lower = w_min - zq;
            if f_lower <= 0.0 {
                return mu_min;
            }
            let f_upper = w_max - zq;
            if f_upper >= 0.0 {
                return mu_max;
            }
            zeroin(
                |d| self.standardized(d, true) - zq,
                mu_min,
                mu_max,
                f_lower,
                f_upper,
                tol_root,
                R_MAX_ITER,
            )
            .root
        };
        let ci_low = root(-q);
        let ci_high = root(q);
        // The estimate uses the statistic without continuity correction, from fresh end values.
        let estimate = zeroin(
            |d| self.standardized(d, false),
            mu_min,
            mu_max,
            self.standardized(mu_min, false),
            self.standardized(mu_max, false),
            tol_root,
            R_MAX_ITER,
        )
        .root;
        Ok(ShiftEstimate {
            estimate,
            ci_low,
            ci_high,
        })
    }

    /// `x₀ − y₀` when each sample is constant (the case R's interval search cannot handle).
    pub fn constant_difference(&self) -> Option<f64> {
        let (x0, y0) = (self.xs[0], self.ys[0]);
        let constant = x0 == self.xs[self.xs.len() - 1] && y0 == self.ys[self.ys.len() - 1];
        constant.then_some(x0 - y0)
    }

    /// The common-language effect size: the share of (canary, baseline) pairs in which the
    /// canary is larger, ties counting one half (Vargha-Delaney A = W / (nₓ·n_y)).
    pub fn cles(&self) -> f64 {
        let (rank_sum, _) = self.rank_sum_and_ties(0.0);
        (rank_sum - self.nx * (self.nx + 1.0) / 2.0) / (self.nx * self.ny)
    }
}

/// `wilcox.test(x, y, conf.int = TRUE, conf.level = confidence, exact = FALSE, correct = TRUE,
/// tol.root = tol_root)`.
pub fn wilcoxon(
    x: &[f64],
    y: &[f64],
    confidence: f64,
    tol_root: f64,
) -> Result<WilcoxonResult, StatsError> {
    let rank_sum = RankSum::new(x, y)?;
    let test = rank_sum.test()?;
    let shift = rank_sum.shift(confidence, tol_root)?;
    Ok(WilcoxonResult { test, shift })
}

fn sorted_finite(values: &[f64], which: &'static str) -> Result<Vec<f64>, StatsError> {
    if values.is_empty() {
        return Err(StatsError::EmptySample(which));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(StatsError::NonFinite(which));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(sorted)
}

/// R's `sign()`: −1, 0 or 1.
fn r_sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn standard_normal() -> Normal {
    Normal::standard()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistic_counts_pairs_with_half_ties() {
        let rs = RankSum::new(&[1.0, 2.0, 3.0], &[2.0, 4.0]).unwrap();
        // pairs x > y: (3,2) → 1; ties: (2,2) → ½; W = 1.5
        assert_eq!(rs.test().unwrap().statistic, 1.5);
        assert_eq!(rs.cles(), 1.5 / 6.0);
    }

    #[test]
    fn zero_shift_gives_p_value_one() {
        let rs = RankSum::new(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let t = rs.test().unwrap();
        assert_eq!((t.statistic, t.z, t.p_value), (8.0, 0.0, 1.0));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            RankSum::new(&[], &[1.0]).unwrap_err(),
            StatsError::EmptySample("canary")
        );
        assert_eq!(
            RankSum::new(&[1.0], &[f64::INFINITY]).unwrap_err(),
            StatsError::NonFinite("baseline")
        );
        let tied = RankSum::new(&[2.0, 2.0], &[2.0]).unwrap();
        assert_eq!(tied.test().unwrap_err(), StatsError::AllTied);
        assert_eq!(
            tied.shift(0.98, R_TOL_ROOT).unwrap_err(),
            StatsError::AllTied
        );
        let constant = RankSum::new(&[3.0, 3.0], &[2.0, 2.0]).unwrap();
        assert_eq!(
            constant.shift(0.98, R_TOL_ROOT).unwrap_err(),
            StatsError::BothConstant
        );
        let varied = RankSum::new(&[3.0, 4.0], &[2.0, 2.5]).unwrap();
        assert_eq!(
            varied.shift(1.0, R_TOL_ROOT).unwrap_err(),
            StatsError::InvalidConfidence(1.0)
        );
    }

    #[test]
    fn standardized_statistic_decreases_with_the_shift() {
        let rs = RankSum::new(&[5.0, 6.0, 7.5, 9.0], &[1.0, 2.0, 2.0, 3.0, 4.0]).unwrap();
        let mut last = f64::INFINITY;
        for k in 0..=40 {
            let d = -2.0 + 0.25 * f64::from(k);
            let w = rs.standardized(d, true);
            assert!(w <= last, "W({d}) = {w} rose above {last}");
            last = w;
        }
    }
}
