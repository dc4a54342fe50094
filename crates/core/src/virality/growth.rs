//! Early prediction of a cascade's final size from how it has grown so far.
//!
//! At each age of a fixed grid a linear model gives the median of `ln(1 + final) − ln(1 +
//! seen)` from features of the shares seen by then: the counts at that age and at six
//! successive halvings of it (the growth curve, so its speed and its acceleration), the direct
//! shares, the sharers who were reshared, the minutes since the last share and to the first,
//! the hour of day the post went out, and the post's reach forecast at age 0 (its prior, from
//! its author's track record and its text, when known). Between two grid ages both models answer from the
//! features at the actual age and their answers are interpolated in log age.
//!
//! Fitted by median regression (iteratively reweighted least squares), so a few cascades that
//! explode late do not drag every prediction up as a least-squares mean would. The spread
//! around the median, the interval and the probability of going viral come from the residual
//! bins of [`super::calibration`].

use serde::{Deserialize, Serialize};

use super::cascade::{ShareNode, ROOT};

/// Counts at the age and at this many halvings of it (the first is the age itself).
pub const HALVINGS: usize = 7;
/// Length of a feature vector.
pub const FEATURES: usize = HALVINGS + 7;
/// Where the prior sits: `ln(1 + expected final shares)` forecast before any share, NaN when
/// unknown (the model then reads it at its training mean, so it moves nothing).
pub const PRIOR: usize = FEATURES - 1;

/// What a prediction starts from at one observation time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Shares seen by the observation time.
    pub seen: f64,
    pub age_s: f64,
    pub features: [f64; FEATURES],
}

/// Features of the shares of a post created at `origin` (Unix seconds) seen at `at`;
/// `extra_shares` counts shares that were seen but not kept in the tree (they only add to the
/// counts at the observation time); `prior` is the post's forecast at age 0, if any.
pub fn observe(
    origin: f64,
    shares: &[ShareNode],
    extra_shares: u64,
    at: f64,
    prior: Option<f64>,
) -> Observation {
    let age = (at - origin).max(0.0);
    let mut counts = [0.0f64; HALVINGS];
    let mut direct = 0.0;
    let mut first = f64::INFINITY;
    let mut last = f64::NEG_INFINITY;
    let mut reshared = vec![false; shares.len()];
    for s in shares {
        if s.at.is_nan() || s.at > at {
            continue;
        }
        let since = (s.at - origin).max(0.0);
        let weight = f64::from(s.weight);
        let mut horizon = age;
        for c in counts.iter_mut() {
            if since > horizon {
                break;
            }
            *c += weight;
            horizon /= 2.0;
        }
        let parent = shares.get(s.parent as usize).filter(|p| p.at <= at);
        match parent {
            Some(_) if s.parent != ROOT => reshared[s.parent as usize] = true,
            _ => direct += weight,
        }
        first = first.min(since);
        last = last.max(since);
    }
    counts[0] += extra_shares as f64;
    let hubs = reshared.iter().filter(|r| **r).count() as f64;
    let minutes = |s: f64| (s.max(0.0) / 60.0).ln_1p();
    let (to_first, since_last) = if first.is_finite() {
        (minutes(first), minutes(age - last))
    } else {
        (minutes(age), minutes(age))
    };
    let hour = (origin / 3600.0).rem_euclid(24.0) / 24.0 * std::f64::consts::TAU;
    let mut features = [0.0; FEATURES];
    for (f, c) in features.iter_mut().zip(counts) {
        *f = c.ln_1p();
    }
    features[HALVINGS..].copy_from_slice(&[
        direct.ln_1p(),
        hubs.ln_1p(),
        since_last,
        to_first,
        if hour.is_finite() { hour.sin() } else { 0.0 },
        if hour.is_finite() { hour.cos() } else { 1.0 },
        prior.filter(|p| p.is_finite()).unwrap_or(f64::NAN),
    ]);
    Observation {
        seen: counts[0],
        age_s: age,
        features,
    }
}

/// The model of one grid age: standardisation and coefficients (intercept first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgeModel {
    pub age_s: f64,
    pub samples: usize,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub coef: Vec<f64>,
}

impl AgeModel {
    /// The predicted median of `ln(1 + final) − ln(1 + seen)`, never below 0. A model fitted
    /// before the prior was a feature has one coefficient fewer and reads no prior.
    pub fn log_growth(&self, features: &[f64; FEATURES]) -> f64 {
        let width = self.coef.len().saturating_sub(1);
        if !(width == FEATURES || width == PRIOR)
            || self.mean.len() != width
            || self.scale.len() != width
        {
            return 0.0;
        }
        let y = self.coef[0]
            + features[..width]
                .iter()
                .zip(&self.coef[1..])
                .zip(self.mean.iter().zip(&self.scale))
                .map(|((x, c), (m, s))| if x.is_nan() { 0.0 } else { c * (x - m) / s })
                .sum::<f64>();
        if y.is_finite() {
            y.max(0.0)
        } else {
            0.0
        }
    }

    /// Fits the median regression on `(features, target)` rows; an unknown feature (NaN) is
    /// read at the mean of the known ones.
    pub fn fit(age_s: f64, rows: &[([f64; FEATURES], f64)]) -> AgeModel {
        let mut mean = vec![0.0; FEATURES];
        let mut scale = vec![0.0; FEATURES];
        let mut known = vec![0usize; FEATURES];
        for (x, _) in rows {
            for i in 0..FEATURES {
                if !x[i].is_nan() {
                    mean[i] += x[i];
                    known[i] += 1;
                }
            }
        }
        for (m, n) in mean.iter_mut().zip(&known) {
            *m /= (*n).max(1) as f64;
        }
        let value = |x: &[f64; FEATURES], i: usize| if x[i].is_nan() { mean[i] } else { x[i] };
        for (x, _) in rows {
            for i in 0..FEATURES {
                scale[i] += (value(x, i) - mean[i]).powi(2) / known[i].max(1) as f64;
            }
        }
        for s in &mut scale {
            *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
        }
        let design: Vec<Vec<f64>> = rows
            .iter()
            .map(|(x, _)| {
                std::iter::once(1.0)
                    .chain((0..FEATURES).map(|i| (value(x, i) - mean[i]) / scale[i]))
                    .collect()
            })
            .collect();
        let target: Vec<f64> = rows.iter().map(|(_, y)| *y).collect();
        let coef = median_regression(&design, &target);
        AgeModel {
            age_s,
            samples: rows.len(),
            mean,
            scale,
            coef,
        }
    }
}

/// Ridge penalty on the standardised coefficients (not the intercept), per row.
const RIDGE: f64 = 1e-3;
/// Iterations of reweighting.
const IRLS_ROUNDS: usize = 60;

/// Least absolute deviations by iteratively reweighted least squares.
pub fn median_regression(design: &[Vec<f64>], target: &[f64]) -> Vec<f64> {
    let width = design.first().map_or(0, Vec::len);
    let mut weights = vec![1.0; target.len()];
    let mut coef = vec![0.0; width];
    for _ in 0..IRLS_ROUNDS {
        let Some(next) = weighted_least_squares(design, target, &weights) else {
            break;
        };
        coef = next;
        for ((row, y), w) in design.iter().zip(target).zip(weights.iter_mut()) {
            let fitted: f64 = row.iter().zip(&coef).map(|(a, b)| a * b).sum();
            *w = 1.0 / (y - fitted).abs().max(1e-4);
        }
    }
    coef
}

fn weighted_least_squares(
    design: &[Vec<f64>],
    target: &[f64],
    weights: &[f64],
) -> Option<Vec<f64>> {
    let width = design.first().map_or(0, Vec::len);
    if width == 0 {
        return None;
    }
    let mut a = vec![vec![0.0; width]; width];
    let mut b = vec![0.0; width];
    let mut total = 0.0;
    for ((row, y), w) in design.iter().zip(target).zip(weights) {
        total += w;
        for i in 0..width {
            b[i] += w * row[i] * y;
            for j in 0..width {
                a[i][j] += w * row[i] * row[j];
            }
        }
    }
    for (i, r) in a.iter_mut().enumerate().skip(1) {
        r[i] += RIDGE * total;
    }
    solve(a, b)
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The models of every grid age, ascending. Empty: no growth model (the point process
/// predicts alone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrowthModel {
    pub ages: Vec<AgeModel>,
}

impl GrowthModel {
    pub fn is_empty(&self) -> bool {
        self.ages.is_empty()
    }

    /// Expected shares still to come after an observation (the median).
    pub fn remaining(&self, o: &Observation) -> f64 {
        let growth = self.log_growth(o);
        let remaining = (1.0 + o.seen) * growth.exp_m1();
        if remaining.is_finite() {
            remaining.max(0.0)
        } else {
            0.0
        }
    }

    fn log_growth(&self, o: &Observation) -> f64 {
        let ages = &self.ages;
        let (Some(first), Some(last)) = (ages.first(), ages.last()) else {
            return 0.0;
        };
        if o.age_s <= first.age_s {
            return first.log_growth(&o.features);
        }
        if o.age_s >= last.age_s {
            return last.log_growth(&o.features);
        }
        let i = ages.partition_point(|m| m.age_s <= o.age_s);
        let (lo, hi) = (&ages[i - 1], &ages[i]);
        let span = (hi.age_s / lo.age_s.max(1e-9)).ln();
        let t = if span > 0.0 {
            ((o.age_s / lo.age_s.max(1e-9)).ln() / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        lo.log_growth(&o.features) * (1.0 - t) + hi.log_growth(&o.features) * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(at: f64, parent: u32) -> ShareNode {
        ShareNode {
            at,
            followers: None,
            parent,
            weight: 1,
        }
    }

    #[test]
    fn features_count_the_growth_curve_and_the_tree() {
        // Shares at 10, 20, ..., 80 s; the fourth reshares the first.
        let shares: Vec<ShareNode> = (1..=8)
            .map(|i| share(f64::from(i) * 10.0, if i == 4 { 0 } else { ROOT }))
            .collect();
        let o = observe(0.0, &shares, 2, 80.0, None);
        assert_eq!(o.seen, 10.0);
        // 80 s: all 8 (+2 untracked); 40 s: 4; 20 s: 2; 10 s: 1; 5 s and below: 0.
        let counts: Vec<f64> = o.features[..HALVINGS].iter().map(|f| f.exp_m1()).collect();
        let expected = [10.0, 4.0, 2.0, 1.0, 0.0, 0.0, 0.0];
        for (c, e) in counts.iter().zip(expected) {
            assert!((c - e).abs() < 1e-9, "{counts:?}");
        }
        assert!((o.features[HALVINGS].exp_m1() - 7.0).abs() < 1e-9);
        assert!((o.features[HALVINGS + 1].exp_m1() - 1.0).abs() < 1e-9);
        // Shares after the observation are not seen.
        assert_eq!(observe(0.0, &shares, 0, 35.0, None).seen, 3.0);
        assert!(o.features[PRIOR].is_nan());
        assert_eq!(
            observe(0.0, &shares, 0, 35.0, Some(4.5)).features[PRIOR],
            4.5
        );
    }

    #[test]
    fn a_known_prior_moves_the_prediction_and_an_unknown_one_reads_at_the_mean() {
        // Growth is half the prior, plus a little from the first count; a third of the rows
        // have no prior.
        let rows: Vec<([f64; FEATURES], f64)> = (0..300)
            .map(|i| {
                let mut x = [0.0; FEATURES];
                x[0] = f64::from(i % 7);
                let prior = f64::from(i % 11);
                x[PRIOR] = if i % 3 == 0 { f64::NAN } else { prior };
                (x, 0.5 * prior + 0.1 * x[0] + 1.0)
            })
            .collect();
        let model = AgeModel::fit(600.0, &rows);
        let at = |prior: f64| {
            let mut x = [0.0; FEATURES];
            x[0] = 3.0;
            x[PRIOR] = prior;
            model.log_growth(&x)
        };
        assert!(at(8.0) - at(2.0) > 2.0, "{} {}", at(8.0), at(2.0));
        let mean = model.mean[PRIOR];
        assert!((at(f64::NAN) - at(mean)).abs() < 1e-9);
        // A model fitted before the prior was a feature reads none.
        let older = AgeModel {
            coef: model.coef[..FEATURES].to_vec(),
            mean: model.mean[..PRIOR].to_vec(),
            scale: model.scale[..PRIOR].to_vec(),
            ..model.clone()
        };
        let mut x = [0.0; FEATURES];
        x[PRIOR] = 8.0;
        let mut y = x;
        y[PRIOR] = 2.0;
        assert_eq!(older.log_growth(&x), older.log_growth(&y));
    }

    #[test]
    fn median_regression_ignores_outliers() {
        // y = 1 + 2x for 90 rows, and 10 rows wildly above.
        let design: Vec<Vec<f64>> = (0..100).map(|i| vec![1.0, f64::from(i) / 10.0]).collect();
        let target: Vec<f64> = (0..100)
            .map(|i| 1.0 + 2.0 * f64::from(i) / 10.0 + if i % 10 == 0 { 50.0 } else { 0.0 })
            .collect();
        let coef = median_regression(&design, &target);
        assert!(
            (coef[0] - 1.0).abs() < 0.05 && (coef[1] - 2.0).abs() < 0.05,
            "{coef:?}"
        );
    }

    #[test]
    fn predictions_interpolate_between_ages_and_never_shrink() {
        let flat = |age_s: f64, intercept: f64| AgeModel {
            age_s,
            samples: 1,
            mean: vec![0.0; FEATURES],
            scale: vec![1.0; FEATURES],
            coef: std::iter::once(intercept)
                .chain(std::iter::repeat_n(0.0, FEATURES))
                .collect(),
        };
        let model = GrowthModel {
            ages: vec![flat(60.0, 2.0), flat(3600.0, 1.0), flat(7200.0, -3.0)],
        };
        let at = |age_s: f64| Observation {
            seen: 9.0,
            age_s,
            features: [0.0; FEATURES],
        };
        assert!((model.remaining(&at(10.0)) - 10.0 * 2f64.exp_m1()).abs() < 1e-9);
        let middle = (60.0f64 * 3600.0).sqrt();
        assert!((model.remaining(&at(middle)) - 10.0 * 1.5f64.exp_m1()).abs() < 1e-9);
        assert_eq!(model.remaining(&at(1e6)), 0.0);
        assert_eq!(GrowthModel::default().remaining(&at(60.0)), 0.0);
    }
}
