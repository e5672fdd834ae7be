//! Sample preparation before judging: the NaN strategy, R-7 percentiles, Kayenta's
//! reduced-sensitivity IQR outlier fence and the descriptive statistics that go into reports.

use serde::{Deserialize, Serialize};

/// What to do with NaN samples (a Prometheus range often holds NaN for 0/0 ratios).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NanStrategy {
    /// Drop NaN samples. Kayenta's config default string "none" means this too.
    #[default]
    #[serde(alias = "none")]
    Remove,
    /// Count NaN samples as 0.0 (right for counters where "no requests" means "no errors").
    Replace,
}

/// Whether outliers are dropped before the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutlierStrategy {
    /// Keep every sample.
    #[default]
    Keep,
    /// Drop samples outside the interquartile fences.
    Remove,
}

/// Outlier handling of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutlierConfig {
    /// Keep or remove outliers.
    pub strategy: OutlierStrategy,
    /// The IQR multiplier k of the fence.
    pub outlier_factor: f64,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            strategy: OutlierStrategy::Keep,
            outlier_factor: 3.0,
        }
    }
}

/// Applies the NaN strategy.
pub fn apply_nan_strategy(values: &[f64], strategy: NanStrategy) -> Vec<f64> {
    match strategy {
        NanStrategy::Remove => values.iter().copied().filter(|v| !v.is_nan()).collect(),
        NanStrategy::Replace => values
            .iter()
            .map(|&v| if v.is_nan() { 0.0 } else { v })
            .collect(),
    }
}

/// The R-7 (Hyndman & Fan type 7, R's and NumPy's default) percentile of ascending `sorted`
/// data, `p` in [0, 1]; `None` for no data.
pub fn quantile_r7(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let lower = sorted[lo.min(last)];
    if lo >= last {
        return Some(lower);
    }
    Some(lower + (h - lo as f64) * (sorted[lo + 1] - lower))
}

/// Kayenta's reduced-sensitivity Tukey fence: [min(P1, Q1 − k·IQR), max(P99, Q3 + k·IQR)], so
/// that a long but legitimate tail is never cut inside its outer percentile.
pub fn outlier_fence(sorted: &[f64], factor: f64) -> Option<(f64, f64)> {
    let q1 = quantile_r7(sorted, 0.25)?;
    let q3 = quantile_r7(sorted, 0.75)?;
    let p1 = quantile_r7(sorted, 0.01)?;
    let p99 = quantile_r7(sorted, 0.99)?;
    let iqr = q3 - q1;
    Some((p1.min(q1 - factor * iqr), p99.max(q3 + factor * iqr)))
}

/// Drops the values outside [`outlier_fence`]; keeps the original order of the rest.
pub fn remove_outliers(values: &[f64], factor: f64) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match outlier_fence(&sorted, factor) {
        Some((lower, upper)) => values
            .iter()
            .copied()
            .filter(|&v| v >= lower && v <= upper)
            .collect(),
        None => Vec::new(),
    }
}

/// NaN strategy, then (when configured) outlier removal.
pub fn prepare(values: &[f64], nan: NanStrategy, outliers: OutlierConfig) -> Vec<f64> {
    let cleaned = apply_nan_strategy(values, nan);
    match outliers.strategy {
        OutlierStrategy::Keep => cleaned,
        OutlierStrategy::Remove => remove_outliers(&cleaned, outliers.outlier_factor),
    }
}

/// Summary of one prepared sample, attached to every metric result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Descriptive {
    /// Number of samples.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Sample standard deviation (n − 1 denominator); 0 for a single value.
    pub std: f64,
}

/// Descriptive statistics of `values`; `None` when there are none.
pub fn describe(values: &[f64]) -> Option<Descriptive> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = quantile_r7(&sorted, 0.5)?;
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some(Descriptive {
        count: values.len(),
        mean,
        median,
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        std,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_strategies() {
        let v = [1.0, f64::NAN, 3.0];
        assert_eq!(apply_nan_strategy(&v, NanStrategy::Remove), vec![1.0, 3.0]);
        assert_eq!(
            apply_nan_strategy(&v, NanStrategy::Replace),
            vec![1.0, 0.0, 3.0]
        );
    }

    #[test]
    fn nan_strategy_parses_kayenta_spellings() {
        let parse = |s: &str| serde_json::from_str::<NanStrategy>(s).unwrap();
        assert_eq!(parse("\"none\""), NanStrategy::Remove);
        assert_eq!(parse("\"remove\""), NanStrategy::Remove);
        assert_eq!(parse("\"replace\""), NanStrategy::Replace);
    }

    #[test]
    fn r7_percentiles_match_r() {
        // R: quantile(c(1, 2, 4, 7, 11, 16), c(0, .01, .25, .5, .75, .99, 1), type = 7)
        //    1.00 1.05 2.50 5.50 10.00 15.75 16.00
        let s = [1.0, 2.0, 4.0, 7.0, 11.0, 16.0];
        let got: Vec<f64> = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]
            .iter()
            .map(|&p| quantile_r7(&s, p).unwrap())
            .collect();
        let want = [1.0, 1.05, 2.5, 5.5, 10.0, 15.75, 16.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert_eq!(quantile_r7(&[], 0.5), None);
        assert_eq!(quantile_r7(&[4.0], 0.99), Some(4.0));
    }

    #[test]
    fn fence_is_the_wider_of_tukey_and_p1_p99() {
        // 1..=100 plus one far outlier: Q1 = 25.25, Q3 = 75.75, IQR = 50.5; k = 3 gives
        // [-126.25, 227.25]; the outlier 1000 is dropped and nothing else.
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v.push(1000.0);
        let out = remove_outliers(&v, 3.0);
        assert_eq!(out.len(), 100);
        assert!(!out.contains(&1000.0));
        // With k = 0 the Tukey fence is [Q1, Q3], but P1/P99 widen it to keep the tail.
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        let (lo, hi) = outlier_fence(&sorted, 0.0).unwrap();
        assert_eq!(lo, quantile_r7(&sorted, 0.01).unwrap());
        assert_eq!(hi, quantile_r7(&sorted, 0.99).unwrap());
    }

    #[test]
    fn prepare_applies_nan_then_outliers() {
        let v = [
            f64::NAN,
            10.0,
            10.0,
            10.0,
            10.0,
            10.0,
            11.0,
            9.0,
            10.0,
            500.0,
        ];
        let keep = prepare(&v, NanStrategy::Remove, OutlierConfig::default());
        assert_eq!(keep.len(), 9);
        let removed = prepare(
            &v,
            NanStrategy::Replace,
            OutlierConfig {
                strategy: OutlierStrategy::Remove,
                outlier_factor: 3.0,
            },
        );
        // The NaN became 0.0. Sorted: 0 9 10 10 10 10 10 10 11 500; Q1 = Q3 = 10 (IQR 0),
        // P1 = 0 + 0.09·9 = 0.81, P99 = 11 + 0.91·489 = 455.99: the fence [0.81, 455.99]
        // drops both 0.0 and 500 and keeps 9 and 11.
        assert_eq!(removed, vec![10.0, 10.0, 10.0, 10.0, 10.0, 11.0, 9.0, 10.0]);
    }

    #[test]
    fn descriptive_statistics() {
        let d = describe(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(
            (d.count, d.mean, d.median, d.min, d.max),
            (8, 5.0, 4.5, 2.0, 9.0)
        );
        assert!((d.std - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(describe(&[]), None);
        assert_eq!(describe(&[3.0]).unwrap().std, 0.0);
    }
}
