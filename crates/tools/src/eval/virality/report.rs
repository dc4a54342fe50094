//! Pulse's predictions beside two simple baselines on cascades none of them was fitted on:
//! `shares seen` (the count so far is the final size) and `seen x c` (the count times one
//! constant per observation age, fitted on the training cascades, in two variants: the median
//! ratio of final to seen, and the constant with the lowest median relative error). Every
//! figure is given at 10 minutes, 1 hour, 6 hours and 10% of each cascade's lifetime.

use std::sync::Arc;

use serde::Serialize;

use super::data::TrueCascade;
use super::metrics::{auc, calibration_table, kendall_tau, median, quantile_of, CalibrationRow};
use crate::virality::calibration::Calibration;
use crate::virality::Model;

/// When a prediction is made.
#[derive(Debug, Clone, Copy)]
pub enum EvalAge {
    /// Seconds after the post.
    Fixed(f64),
    /// A share of the cascade's lifetime (post to last share).
    OfLifetime(f64),
}

impl EvalAge {
    pub fn seconds(&self, c: &TrueCascade) -> f64 {
        match *self {
            EvalAge::Fixed(s) => s,
            EvalAge::OfLifetime(f) => f * c.lifetime(),
        }
    }
}

/// The ages every figure is given at.
pub const EVAL_AGES: [(&str, EvalAge); 4] = [
    ("10 min", EvalAge::Fixed(600.0)),
    ("1 h", EvalAge::Fixed(3600.0)),
    ("6 h", EvalAge::Fixed(21600.0)),
    ("10% of lifetime", EvalAge::OfLifetime(0.1)),
];

/// Coverage of the intervals evaluated.
pub const INTERVAL_LEVEL: f64 = 0.9;

/// One predictor's answer for one cascade at one age.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub point: f64,
    pub interval: Option<(f64, f64)>,
    /// Probability of reaching the viral threshold.
    pub probability: Option<f64>,
}

/// Every predictor's answer for one cascade at one age.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub age: usize,
    pub size: f64,
    pub threshold: f64,
    pub pulse: Answer,
    /// The growth model's median, before the residual bins.
    pub pulse_median: Answer,
    pub seen: Answer,
    pub seen_x_c: Answer,
    pub seen_x_c_relative: Answer,
}

/// `seen x c` at one age, fitted on training cascades.
struct SeenTimesC {
    /// Ratios of final size to shares seen (at least 1), sorted.
    ratios: Vec<f64>,
    median: f64,
    relative: f64,
}

impl SeenTimesC {
    fn fit(train: &[&TrueCascade], age: EvalAge) -> SeenTimesC {
        let pairs: Vec<(f64, f64)> = train
            .iter()
            .map(|c| {
                let seen = c.seen_at(age.seconds(c)).max(1) as f64;
                (seen, c.size() as f64)
            })
            .collect();
        let mut ratios: Vec<f64> = pairs.iter().map(|(s, f)| f / s).collect();
        ratios.sort_by(f64::total_cmp);
        let median_ratio = quantile_of(&ratios, 0.5);
        // The constant with the lowest median relative error, on a log grid from 1 to 1,000.
        let mut relative = (f64::INFINITY, 1.0);
        for step in 0..=600 {
            let c = 10f64.powf(f64::from(step) / 200.0);
            let errors: Vec<f64> = pairs.iter().map(|(s, f)| (s * c - f).abs() / f).collect();
            let e = median(&errors);
            if e < relative.0 {
                relative = (e, c);
            }
        }
        SeenTimesC {
            ratios,
            median: median_ratio,
            relative: relative.1,
        }
    }

    fn answer(&self, seen: f64, c: f64, threshold: f64) -> Answer {
        let seen = seen.max(1.0);
        let level = (1.0 - INTERVAL_LEVEL) / 2.0;
        let need = threshold / seen;
        let above = self.ratios.len() - self.ratios.partition_point(|&r| r < need);
        Answer {
            point: seen * c,
            interval: Some((
                seen * quantile_of(&self.ratios, level),
                seen * quantile_of(&self.ratios, 1.0 - level),
            )),
            probability: Some(above as f64 / self.ratios.len().max(1) as f64),
        }
    }
}

/// Predicts every test cascade at every evaluation age with a calibration fitted on `train`
/// and baselines fitted on its cascades with at least `min_shares` shares.
pub fn predict(
    calibration: &Calibration,
    train: &[&TrueCascade],
    test: &[&TrueCascade],
    min_shares: u64,
    rows: &mut Vec<Row>,
) {
    let model = Model::new(Arc::new(calibration.clone()), INTERVAL_LEVEL, 0.5);
    let baseline_train: Vec<&TrueCascade> = train
        .iter()
        .copied()
        .filter(|c| c.size() >= min_shares)
        .collect();
    for (a, (_, age)) in EVAL_AGES.iter().enumerate() {
        let baseline = SeenTimesC::fit(&baseline_train, *age);
        for c in test {
            let size = c.size() as f64;
            let threshold = model.threshold(c.platform, None);
            let at = c.created_at + age.seconds(c);
            let raw = calibration.raw(c.created_at, c.author_followers, &c.shares, 0, at, c.prior);
            let p = model.calibrate(&raw, c.platform, None);
            let seen = raw.observed;
            rows.push(Row {
                age: a,
                size,
                threshold,
                pulse: Answer {
                    point: p.predicted_final,
                    interval: Some((p.lower, p.upper)),
                    probability: Some(p.probability),
                },
                pulse_median: Answer {
                    point: raw.expected_final(),
                    interval: None,
                    probability: None,
                },
                seen: Answer {
                    point: seen,
                    interval: None,
                    probability: None,
                },
                seen_x_c: baseline.answer(seen, baseline.median, threshold),
                seen_x_c_relative: baseline.answer(seen, baseline.relative, threshold),
            });
        }
    }
}

/// The figures of one predictor at one age.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub median_relative_error: f64,
    /// Share of predictions within a factor 2 of the final size.
    pub within_2x: f64,
    pub kendall_tau: f64,
    /// AUC of the point prediction for final sizes in the top 10% and the top 1%.
    pub auc_top10: f64,
    pub auc_top1: f64,
    pub interval_coverage: Option<f64>,
    /// Expected calibration error of the probability of reaching the viral threshold, its AUC,
    /// and its calibration table.
    pub viral_ece: Option<f64>,
    pub viral_auc: Option<f64>,
    pub viral_calibration: Vec<CalibrationRow>,
}

/// Figures at one age.
#[derive(Debug, Clone, Serialize)]
pub struct AgeFigures {
    pub age: String,
    pub cascades: usize,
    pub viral: usize,
    pub pulse: Figures,
    pub pulse_median: Figures,
    pub seen: Figures,
    pub seen_x_c: Figures,
    pub seen_x_c_relative: Figures,
}

/// Figures of every predictor at every age, on rows of cascades with at least `min_shares`
/// shares.
pub fn figures(rows: &[Row], min_shares: u64) -> Vec<AgeFigures> {
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.size >= min_shares as f64)
        .collect();
    EVAL_AGES
        .iter()
        .enumerate()
        .map(|(a, (name, _))| {
            let at: Vec<&Row> = rows.iter().copied().filter(|r| r.age == a).collect();
            let mut sizes: Vec<f64> = at.iter().map(|r| r.size).collect();
            sizes.sort_by(f64::total_cmp);
            let top10 = quantile_of(&sizes, 0.9);
            let top1 = quantile_of(&sizes, 0.99);
            let of = |pick: fn(&Row) -> Answer| -> Figures {
                let answers: Vec<(Answer, &Row)> = at.iter().map(|r| (pick(r), *r)).collect();
                let relative: Vec<f64> = answers
                    .iter()
                    .map(|(a, r)| (a.point - r.size).abs() / r.size)
                    .collect();
                let within = answers
                    .iter()
                    .filter(|(a, r)| a.point >= r.size / 2.0 && a.point <= r.size * 2.0)
                    .count();
                let n = answers.len().max(1) as f64;
                let ranked = |cut: f64| -> f64 {
                    let scores: Vec<(f64, bool)> = answers
                        .iter()
                        .map(|(a, r)| (a.point, r.size >= cut))
                        .collect();
                    auc(&scores)
                };
                let coverage = answers.iter().all(|(a, _)| a.interval.is_some()).then(|| {
                    answers
                        .iter()
                        .filter(|(a, r)| {
                            a.interval
                                .is_some_and(|(lo, hi)| lo <= r.size && r.size <= hi)
                        })
                        .count() as f64
                        / n
                });
                let probabilities: Option<Vec<(f64, bool)>> = answers
                    .iter()
                    .map(|(a, r)| a.probability.map(|p| (p, r.size >= r.threshold)))
                    .collect();
                let (viral_calibration, viral_ece) = match &probabilities {
                    Some(p) => {
                        let (table, ece) = calibration_table(p);
                        (table, Some(ece))
                    }
                    None => (Vec::new(), None),
                };
                Figures {
                    median_relative_error: median(&relative),
                    within_2x: within as f64 / n,
                    kendall_tau: kendall_tau(
                        &answers
                            .iter()
                            .map(|(a, r)| (a.point, r.size))
                            .collect::<Vec<_>>(),
                    ),
                    auc_top10: ranked(top10),
                    auc_top1: ranked(top1),
                    interval_coverage: coverage,
                    viral_ece,
                    viral_auc: probabilities.as_deref().map(auc),
                    viral_calibration,
                }
            };
            AgeFigures {
                age: (*name).to_string(),
                cascades: at.len(),
                viral: at.iter().filter(|r| r.size >= r.threshold).count(),
                pulse: of(|r| r.pulse),
                pulse_median: of(|r| r.pulse_median),
                seen: of(|r| r.seen),
                seen_x_c: of(|r| r.seen_x_c),
                seen_x_c_relative: of(|r| r.seen_x_c_relative),
            }
        })
        .collect()
}
