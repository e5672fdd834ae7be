//! Classification tables for every rule of Kayenta's judge (`reference/ecosystem-anchors.md`
//! §3.2 per metric, §3.3 roll-up), one row per rule and variant.

use std::collections::BTreeMap;

use super::classify::{Classification as C, Direction, EffectMeasure, MetricConfig, classify};
use super::score::{ScoreClassification as S, ScoredMetric, Thresholds, classify_score, score};
use super::transform::{NanStrategy, OutlierStrategy};

/// Baseline latencies (ms): mean 208.5.
const BASE: &[f64] = &[
    201.0, 215.0, 188.0, 230.0, 207.0, 199.0, 222.0, 210.0, 195.0, 218.0,
];
/// Canary about 30 % slower: mean 274.1, every value above every baseline value. R gives
/// estimate 63.694, 98 % interval [44.000, 89.000].
const UP: &[f64] = &[
    262.0, 281.0, 255.0, 300.0, 247.0, 290.0, 271.0, 266.0, 310.0, 259.0,
];
/// Canary indistinguishable from the baseline.
const SAME: &[f64] = &[
    204.0, 212.0, 191.0, 226.0, 209.0, 197.0, 220.0, 213.0, 193.0, 216.0,
];

struct Row {
    rule: &'static str,
    baseline: Vec<f64>,
    canary: Vec<f64>,
    config: MetricConfig,
    want: C,
    want_critical: bool,
}

fn row(rule: &'static str, baseline: &[f64], canary: &[f64], want: C) -> Row {
    Row {
        rule,
        baseline: baseline.to_vec(),
        canary: canary.to_vec(),
        config: MetricConfig::default(),
        want,
        want_critical: false,
    }
}

impl Row {
    fn with(mut self, f: impl FnOnce(&mut MetricConfig)) -> Self {
        f(&mut self.config);
        self
    }
    fn critical(mut self) -> Self {
        self.want_critical = true;
        self
    }
}

fn run(rows: Vec<Row>) {
    let mut failures = Vec::new();
    for r in &rows {
        let j = classify(&r.baseline, &r.canary, &r.config);
        if j.classification != r.want || j.critical != r.want_critical {
            failures.push(format!(
                "{}: got {:?} critical={} ({}), want {:?} critical={}",
                r.rule, j.classification, j.critical, j.reason, r.want, r.want_critical
            ));
        }
    }
    println!("judge rule rows: {} checked", rows.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_data_rules() {
    let nan = [f64::NAN, f64::NAN];
    run(vec![
        row("empty canary", BASE, &[], C::Nodata),
        row("empty baseline", &[], UP, C::Nodata),
        row("all NaN removed", BASE, &nan, C::Nodata),
        row("empty, critical", BASE, &[], C::Nodata)
            .with(|c| c.critical = true)
            .critical(),
        row("empty, mustHaveData", BASE, &[], C::NodataFailMetric)
            .with(|c| c.must_have_data = true),
        row("empty, mustHaveData and critical", BASE, &[], C::Nodata)
            .with(|c| {
                c.must_have_data = true;
                c.critical = true;
            })
            .critical(),
        row("empty, NaN strategy replace", BASE, &[], C::Pass)
            .with(|c| c.nan_strategy = NanStrategy::Replace),
        // Replace turns NaN into 0.0: data exist, and zeros against ~200 ms are Low.
        row("all NaN replaced by 0", BASE, &nan, C::Low)
            .with(|c| c.nan_strategy = NanStrategy::Replace),
    ]);
}

#[test]
fn identical_and_degenerate_data() {
    let mut shuffled = BASE.to_vec();
    shuffled.reverse();
    run(vec![
        row("identical after sorting", BASE, &shuffled, C::Pass),
        row("all values equal", &[5.0, 5.0, 5.0], &[5.0, 5.0], C::Pass),
        // Both constant but different: the limit interval [1, 1] lies above the band ±0.25.
        row(
            "constant but different, higher",
            &[2.0, 2.0, 2.0],
            &[3.0, 3.0],
            C::High,
        ),
        row(
            "constant but different, lower",
            &[3.0, 3.0, 3.0],
            &[2.0, 2.0],
            C::Low,
        ),
        row("infinite value", BASE, &[1.0, f64::INFINITY], C::Error),
        row(
            "infinite value, critical",
            BASE,
            &[1.0, f64::INFINITY],
            C::Error,
        )
        .with(|c| c.critical = true)
        .critical(),
    ]);
}

#[test]
fn direction_and_tolerance_band() {
    run(vec![
        row("higher, either", BASE, UP, C::High),
        row("higher, increase", BASE, UP, C::High).with(|c| c.direction = Direction::Increase),
        row("higher, decrease", BASE, UP, C::Pass).with(|c| c.direction = Direction::Decrease),
        row("lower, either", UP, BASE, C::Low),
        row("lower, decrease", UP, BASE, C::Low).with(|c| c.direction = Direction::Decrease),
        row("lower, increase", UP, BASE, C::Pass).with(|c| c.direction = Direction::Increase),
        row("no difference", BASE, SAME, C::Pass),
        // The interval's low end 44.0 must clear tolerance·63.694: 0.69 is the crossover.
        row("band 0.68 cleared", BASE, UP, C::High).with(|c| c.tolerance = 0.68),
        row("band 0.70 not cleared", BASE, UP, C::Pass).with(|c| c.tolerance = 0.70),
        row("band 0.70 not cleared below", UP, BASE, C::Pass).with(|c| c.tolerance = 0.70),
        // A lower confidence narrows the interval; 0.5 keeps the verdict.
        row("confidence 0.5", BASE, UP, C::High).with(|c| c.confidence = 0.5),
    ]);
}

#[test]
fn outliers_are_removed_before_judging() {
    // One wild canary value doubles its mean: with meanRatio ≥ 1.5 required the canary fails
    // only while the outlier is kept.
    let mut canary = UP.to_vec();
    canary.push(100_000.0);
    run(vec![
        row("outlier kept", BASE, &canary, C::High)
            .with(|c| c.effect_size.allowed_increase = Some(1.5)),
        row("outlier removed", BASE, &canary, C::Pass).with(|c| {
            c.effect_size.allowed_increase = Some(1.5);
            c.outliers.strategy = OutlierStrategy::Remove;
        }),
    ]);
    let mut config = MetricConfig::default();
    config.outliers.strategy = OutlierStrategy::Remove;
    let j = classify(BASE, &canary, &config);
    assert_eq!(j.canary.map(|d| d.count), Some(10));
}

#[test]
fn effect_size_gates() {
    // Mean ratio of UP over BASE is 274.1 / 208.5 = 1.3146; CLES is 1.0.
    let zero_mean = [-2.0, -1.0, 0.0, 1.0, 2.0];
    let above = [10.0, 11.0, 12.0, 13.0, 14.0];
    run(vec![
        row("ratio 1.31 ≥ allowed 1.3", BASE, UP, C::High)
            .with(|c| c.effect_size.allowed_increase = Some(1.3)),
        row("ratio 1.31 < allowed 1.4", BASE, UP, C::Pass)
            .with(|c| c.effect_size.allowed_increase = Some(1.4)),
        row("ratio 0.76 ≤ allowed decrease 0.8", UP, BASE, C::Low)
            .with(|c| c.effect_size.allowed_decrease = Some(0.8)),
        row("ratio 0.76 > allowed decrease 0.7", UP, BASE, C::Pass)
            .with(|c| c.effect_size.allowed_decrease = Some(0.7)),
        row("CLES 1.0 ≥ default 0.5", BASE, UP, C::High)
            .with(|c| c.effect_size.measure = EffectMeasure::Cles),
        row("CLES 1.0 < allowed 1.01", BASE, UP, C::Pass).with(|c| {
            c.effect_size.measure = EffectMeasure::Cles;
            c.effect_size.allowed_increase = Some(1.01);
        }),
        row("CLES 0.0 ≤ allowed decrease 0.1", UP, BASE, C::Low).with(|c| {
            c.effect_size.measure = EffectMeasure::Cles;
            c.effect_size.allowed_decrease = Some(0.1);
        }),
        // Baseline mean 0: the ratio is undefined and the gate is skipped.
        row(
            "undefined ratio skips the gate",
            &zero_mean,
            &above,
            C::High,
        )
        .with(|c| c.effect_size.allowed_increase = Some(100.0)),
    ]);
}

#[test]
fn critical_metrics() {
    run(vec![
        row("critical High", BASE, UP, C::High)
            .with(|c| c.critical = true)
            .critical(),
        row("critical Low", UP, BASE, C::Low)
            .with(|c| c.critical = true)
            .critical(),
        row("critical Pass", BASE, SAME, C::Pass).with(|c| c.critical = true),
        row("not critical High", BASE, UP, C::High),
        row("critical High below criticalIncrease", BASE, UP, C::High).with(|c| {
            c.critical = true;
            c.effect_size.critical_increase = Some(1.5);
        }),
        row("critical High at criticalIncrease", BASE, UP, C::High)
            .with(|c| {
                c.critical = true;
                c.effect_size.critical_increase = Some(1.3);
            })
            .critical(),
        row("critical Low above criticalDecrease", UP, BASE, C::Low).with(|c| {
            c.critical = true;
            c.effect_size.critical_decrease = Some(0.5);
        }),
    ]);
}

#[test]
fn judgement_reports_statistics_and_effects() {
    let j = classify(BASE, UP, &MetricConfig::default());
    let s = j.statistics.unwrap();
    // R 4.2.2: wilcox.test(UP, BASE, conf.int=TRUE, conf.level=0.98, exact=FALSE)
    assert_eq!(s.statistic, 100.0);
    assert!((s.p_value / 0.000_182_671_791_109_550_16 - 1.0).abs() < 1e-9);
    assert_eq!(
        (s.estimate, s.ci_low, s.ci_high),
        (
            63.694_024_469_940_31,
            44.000_058_295_261_276,
            88.999_961_158_754_47
        )
    );
    let band = 0.25 * s.estimate;
    assert_eq!(j.bounds, Some((-band, band)));
    assert_eq!(j.mean_ratio, Some(274.1 / 208.5));
    assert_eq!(j.cles, Some(1.0));
    assert_eq!(j.baseline.unwrap().count, 10);
}

fn metric(name: &str, groups: &[&str], class: C) -> ScoredMetric {
    ScoredMetric {
        name: name.to_string(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        classification: class,
        critical: false,
        muted: false,
    }
}

fn weights(w: &[(&str, f64)]) -> BTreeMap<String, f64> {
    w.iter().map(|(g, v)| (g.to_string(), *v)).collect()
}

#[test]
fn group_scores_count_pass_over_judged() {
    let metrics = vec![
        metric("a", &["g"], C::Pass),
        metric("b", &["g"], C::High),
        metric("c", &["g"], C::Low),
        metric("d", &["g"], C::NodataFailMetric),
        metric("e", &["g"], C::Nodata),
        metric("f", &["g"], C::Error),
        metric("p", &["g"], C::Pass),
        metric("q", &["g"], C::Pass),
        metric("r", &["g"], C::Pass),
    ];
    // 4 Pass / (4 Pass + High + Low + NodataFailMetric) = 4/7; Nodata and Error left out.
    let card = score(&metrics, &BTreeMap::new(), Thresholds::default());
    assert_eq!(card.groups.len(), 1);
    assert_eq!(card.groups[0].score, 400.0 / 7.0);
    assert_eq!(card.score, 57.14);
    assert_eq!(card.classification, S::Marginal);
    assert_eq!(card.reason, None);
}

#[test]
fn weights_and_no_data_groups() {
    let metrics = vec![
        metric("err", &["errors"], C::High),
        metric("lat", &["latency", "all"], C::Pass),
        metric("lat2", &["latency"], C::High),
        metric("cpu", &["saturation"], C::Nodata),
        metric("sat", &["saturation"], C::Error),
    ];
    // errors 0 (weight 50), latency 50 (weight 30), all 100 and saturation (no data) 100 share
    // the remaining 20: 0 + 15 + 10 + 10 = 35.
    let card = score(
        &metrics,
        &weights(&[("errors", 50.0), ("latency", 30.0)]),
        Thresholds::default(),
    );
    let got: Vec<(&str, f64, bool, f64)> = card
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.score, g.no_data, g.weight))
        .collect();
    assert_eq!(
        got,
        vec![
            ("errors", 0.0, false, 50.0),
            ("latency", 50.0, false, 30.0),
            ("all", 100.0, false, 10.0),
            ("saturation", 100.0, true, 10.0),
        ]
    );
    assert_eq!(card.score, 35.0);
    assert_eq!(card.classification, S::Fail);
}

#[test]
fn equal_shares_without_weights_and_rounding() {
    let metrics = vec![
        metric("a", &["x"], C::Pass),
        metric("b", &["y"], C::Pass),
        metric("c", &["z"], C::High),
    ];
    // 100·⅓ + 100·⅓ + 0 = 66.666… → 66.67
    let card = score(&metrics, &BTreeMap::new(), Thresholds::default());
    assert_eq!(card.score, 66.67);
    assert_eq!(card.classification, S::Marginal);
}

#[test]
fn muted_metrics_are_not_scored() {
    let mut muted = metric("m", &["g"], C::High);
    muted.muted = true;
    muted.critical = true;
    let metrics = vec![metric("a", &["g"], C::Pass), muted];
    let card = score(&metrics, &BTreeMap::new(), Thresholds::default());
    assert_eq!(
        (card.score, card.classification, card.reason),
        (100.0, S::Pass, None)
    );
}

#[test]
fn critical_failure_overrides_the_score() {
    let mut crit = metric("errors", &["e"], C::High);
    crit.critical = true;
    let metrics = vec![
        metric("a", &["g"], C::Pass),
        metric("b", &["g"], C::Pass),
        crit,
    ];
    let card = score(&metrics, &BTreeMap::new(), Thresholds::default());
    assert_eq!(card.score, 0.0);
    assert_eq!(card.classification, S::Fail);
    assert_eq!(
        card.reason.as_deref(),
        Some("Canary Failed: critical metric(s) errors")
    );
    // A critical flag on a Pass never fails the run.
    let mut ok = metric("errors", &["e"], C::Pass);
    ok.critical = true;
    let card = score(&[ok], &BTreeMap::new(), Thresholds::default());
    assert_eq!(card.score, 100.0);
}

#[test]
fn half_the_metrics_without_data_overrides_the_score() {
    let two_of_four = vec![
        metric("a", &["g"], C::Pass),
        metric("b", &["g"], C::Pass),
        metric("c", &["h"], C::Nodata),
        metric("d", &["h"], C::Nodata),
    ];
    let card = score(&two_of_four, &BTreeMap::new(), Thresholds::default());
    assert_eq!(card.score, 0.0);
    assert_eq!(
        card.reason.as_deref(),
        Some("Canary Failed: 50% or more metrics returned NODATA")
    );
    // One in three is below half: groups g = 100 and h (no data) = 100.
    let card = score(&two_of_four[..3], &BTreeMap::new(), Thresholds::default());
    assert_eq!((card.score, card.reason), (100.0, None));
}

#[test]
fn score_thresholds() {
    let t = Thresholds {
        pass: 95.0,
        marginal: 75.0,
    };
    let table = [
        (100.0, S::Pass),
        (95.0, S::Pass),
        (94.99, S::Marginal),
        (75.0, S::Marginal),
        (74.99, S::Fail),
        (0.0, S::Fail),
    ];
    for (s, want) in table {
        assert_eq!(classify_score(s, t), want, "score {s}");
    }
}
