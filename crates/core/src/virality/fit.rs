//! Fitting the virality model on finished cascades: the growth model per age, the residual
//! bins behind the interval and the probability, the recalibration of that probability, the
//! level the point prediction is read at, the thresholds, and the point process's parameters
//! (behind the infectiousness it reports).
//!
//! Everything after the growth model learns from predictions the growth model made for
//! cascades it was not fitted on (five folds inside the training set), as at run time. Where
//! the cascades come from (files, the generator) and how the result is judged is the business
//! of `pulse eval virality`.

use std::collections::BTreeMap;

use super::calibration::{self, Calibration, PointLevels, Sample};
use super::cascade::{ShareNode, ROOT};
use super::growth::{self, AgeModel, GrowthModel};
use super::seismic::{self, ModelParams, RawPrediction};
use crate::models::Platform;

/// One finished cascade with its truth.
#[derive(Debug, Clone)]
pub struct TrueCascade {
    pub id: String,
    pub platform: Option<Platform>,
    pub author_followers: u64,
    /// Unix seconds.
    pub created_at: f64,
    /// Shares in time order; parents index into the same list.
    pub shares: Vec<ShareNode>,
    /// The post's reach forecast at age 0 (`ln(1 + shares)`), when one was made.
    pub prior: Option<f64>,
}

impl TrueCascade {
    pub fn size(&self) -> u64 {
        self.shares.iter().map(|s| u64::from(s.weight)).sum()
    }

    /// Seconds from the post to its last share.
    pub fn lifetime(&self) -> f64 {
        self.shares
            .iter()
            .map(|s| s.at - self.created_at)
            .fold(0.0, f64::max)
    }

    /// Shares seen `age` seconds after the post.
    pub fn seen_at(&self, age: f64) -> u64 {
        let at = self.created_at + age;
        self.shares
            .iter()
            .filter(|s| s.at <= at)
            .map(|s| u64::from(s.weight))
            .sum()
    }
}

/// The value at quantile `q` of sorted values (nearest rank); NaN for none.
pub fn quantile_of(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = (q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[pos]
}

/// The median of values in any order (NaNs left out).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    quantile_of(&v, 0.5)
}

/// Ages at which training samples are taken, in seconds (plus 10% of each lifetime).
pub const SAMPLE_AGES_S: [f64; 24] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 420.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0,
    3600.0, 5400.0, 7200.0, 10800.0, 14400.0, 21600.0, 32400.0, 43200.0, 86400.0, 172800.0,
    345600.0,
];

/// The growth model's grid of ages, in seconds.
pub const GROWTH_AGES_S: [f64; 17] = [
    15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
    43200.0, 86400.0, 172800.0, 345600.0, 604800.0,
];

/// Folds inside a training set for out-of-fold predictions.
const INNER_FOLDS: u64 = 5;
/// Upper edges of the recalibration's age groups, in seconds.
pub const RECALIBRATION_AGE_EDGES_S: [f64; 4] = [60.0, 600.0, 3600.0, 14400.0];
/// Upper edges of the point levels' age groups, in seconds.
pub const POINT_AGE_EDGES_S: [f64; 7] = [120.0, 600.0, 1800.0, 3600.0, 10800.0, 43200.0, 172800.0];

/// The fold of a cascade among `folds`, from its id and a salt (so folds inside a training set
/// are not the folds that made it).
pub fn fold_of(id: &str, salt: &str, folds: u64) -> u64 {
    calibration::fnv1a(format!("{salt}/{id}").as_bytes()) % folds.max(1)
}

/// The point process's prediction for a cascade `age` seconds after its post.
pub fn seismic_raw(c: &TrueCascade, params: &ModelParams, age: f64) -> RawPrediction {
    seismic::predict(
        params,
        c.created_at,
        c.author_followers,
        &c.shares,
        0,
        c.created_at + age,
    )
}

/// Fits the growth model on cascades.
pub fn fit_growth(train: &[&TrueCascade]) -> GrowthModel {
    let ages = GROWTH_AGES_S
        .iter()
        .map(|&age| {
            let rows: Vec<([f64; growth::FEATURES], f64)> = train
                .iter()
                .map(|c| {
                    let o =
                        growth::observe(c.created_at, &c.shares, 0, c.created_at + age, c.prior);
                    let target = (c.size() as f64).ln_1p() - o.seen.ln_1p();
                    (o.features, target)
                })
                .collect();
            AgeModel::fit(age, &rows)
        })
        .collect();
    GrowthModel { ages }
}

/// Fits the whole calibration on a training set; `min_shares` bounds the cascades the point
/// level is chosen on.
pub fn fit(train: &[TrueCascade], min_shares: u64, fitted_on: String) -> Calibration {
    let kernel = fit_kernel(train);
    let mut best: Option<(f64, ModelParams)> = None;
    for kappa in [0.0, 0.15, 0.3, 0.5, 1.0] {
        let params = fit_params(train, kernel, kappa);
        let score = objective(train, &params, min_shares);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, params));
        }
    }
    let mut calibration = Calibration {
        fitted_on,
        params: best.map(|(_, p)| p).unwrap_or_default(),
        ..Calibration::default()
    };
    set_thresholds(&mut calibration, train);
    // Out-of-fold raw predictions at every sampled age.
    let mut samples = Vec::new();
    let mut raws = Vec::new();
    for k in 0..INNER_FOLDS {
        let fitting: Vec<&TrueCascade> = train
            .iter()
            .filter(|c| fold_of(&c.id, "inner", INNER_FOLDS) != k)
            .collect();
        let held_out = Calibration {
            growth: fit_growth(&fitting),
            ..calibration.clone()
        };
        for (i, c) in train.iter().enumerate() {
            if fold_of(&c.id, "inner", INNER_FOLDS) != k {
                continue;
            }
            let size = c.size() as f64;
            for age in SAMPLE_AGES_S.iter().copied().chain([0.1 * c.lifetime()]) {
                let raw = held_out.raw(
                    c.created_at,
                    c.author_followers,
                    &c.shares,
                    0,
                    c.created_at + age,
                    c.prior,
                );
                samples.push(Sample {
                    observed: raw.observed,
                    age_s: age,
                    predicted_remaining: raw.remaining,
                    true_remaining: size - raw.observed,
                });
                raws.push((raw, i));
            }
        }
    }
    calibration.fit_bins(&samples);
    calibration.recalibration = fit_recalibration(&calibration, train, &samples, &raws);
    calibration.point_levels = fit_point_levels(&calibration, train, &raws, min_shares);
    let all: Vec<&TrueCascade> = train.iter().collect();
    calibration.growth = fit_growth(&all);
    calibration
}

/// Thresholds: the top 1% of final sizes, per platform with at least 200 cascades and over
/// every cascade; and the ceiling on predictions.
fn set_thresholds(calibration: &mut Calibration, train: &[TrueCascade]) {
    let mut by_platform: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut all = Vec::new();
    for c in train {
        let size = c.size() as f64;
        all.push(size);
        if let Some(p) = c.platform {
            by_platform.entry(p.as_str().into()).or_default().push(size);
        }
    }
    all.sort_by(f64::total_cmp);
    calibration.default_threshold = quantile_of(&all, 0.99).max(1.0);
    for (platform, mut sizes) in by_platform {
        if sizes.len() >= 200 {
            sizes.sort_by(f64::total_cmp);
            calibration
                .thresholds
                .insert(platform, quantile_of(&sizes, 0.99).max(1.0));
        }
    }
    // Ten times the largest final size: a guard against runaway predictions that still lets
    // a platform whose cascades grow larger than the training set's be predicted to grow.
    calibration.max_final_shares = 10.0 * all.last().copied().unwrap_or(1e6).max(1.0);
}

/// Fits the monotone recalibration of the probability of going viral. Each training
/// cascade's raw probabilities (at every sampled age where it had not reached its
/// platform's threshold yet) come from residual bins fitted on the other folds' cascades,
/// so the map learns how the bins do on cascades they have not seen, as at run time.
fn fit_recalibration(
    calibration: &Calibration,
    train: &[TrueCascade],
    samples: &[Sample],
    raws: &[(RawPrediction, usize)],
) -> calibration::Recalibration {
    let fold = |cascade: usize| fold_of(&train[cascade].id, "inner", INNER_FOLDS);
    let mut outcomes = Vec::with_capacity(samples.len());
    for k in 0..INNER_FOLDS {
        let mut held_out = calibration.clone();
        held_out.recalibration = calibration::Recalibration::default();
        let others: Vec<Sample> = samples
            .iter()
            .zip(raws)
            .filter(|(_, (_, c))| fold(*c) != k)
            .map(|(s, _)| *s)
            .collect();
        held_out.fit_bins(&others);
        for (raw, c) in raws.iter().filter(|(_, c)| fold(*c) == k) {
            let cascade = &train[*c];
            let threshold = calibration.threshold(cascade.platform.map(Platform::as_str));
            if raw.observed >= threshold {
                continue;
            }
            let p = held_out.apply(raw, threshold, 0.9).probability;
            outcomes.push(calibration::Outcome {
                age_s: raw.age_s,
                raw_probability: p,
                viral: cascade.size() as f64 >= threshold,
            });
        }
    }
    calibration::Recalibration::fit(&outcomes, &RECALIBRATION_AGE_EDGES_S)
}

/// Chooses, per age group, the quantile level of the residual bins whose reading has the
/// lowest median relative error on the out-of-fold predictions of cascades with at least
/// `min_shares` shares.
fn fit_point_levels(
    calibration: &Calibration,
    train: &[TrueCascade],
    raws: &[(RawPrediction, usize)],
    min_shares: u64,
) -> PointLevels {
    let group = |age: f64| POINT_AGE_EDGES_S.partition_point(|&e| e <= age);
    let mut levels = Vec::new();
    for g in 0..=POINT_AGE_EDGES_S.len() {
        let inside: Vec<&(RawPrediction, usize)> = raws
            .iter()
            .filter(|(raw, c)| group(raw.age_s) == g && train[*c].size() >= min_shares)
            .collect();
        if inside.len() < 200 {
            levels.push(0.5);
            continue;
        }
        let mut best = (f64::INFINITY, 0.5);
        let mut probe = calibration.clone();
        for step in 5..=95 {
            let level = f64::from(step) / 100.0;
            probe.point_levels = PointLevels {
                age_edges_s: Vec::new(),
                levels: vec![level],
            };
            let errors: Vec<f64> = inside
                .iter()
                .map(|(raw, c)| {
                    let size = train[*c].size() as f64;
                    let p = probe.apply(raw, f64::INFINITY, 0.9).predicted_final;
                    (p - size).abs() / size
                })
                .collect();
            let error = median(&errors);
            if error < best.0 {
                best = (error, level);
            }
        }
        levels.push(best.1);
    }
    PointLevels {
        age_edges_s: POINT_AGE_EDGES_S.to_vec(),
        levels,
    }
}

/// Fits the kernel of the delays between a share and the shares it triggered: a Lomax
/// (power-law) maximum-likelihood fit on a grid.
fn fit_kernel(train: &[TrueCascade]) -> (f64, f64) {
    let mut delays = Vec::new();
    for c in train {
        for s in &c.shares {
            let parent_at = if s.parent == ROOT {
                c.created_at
            } else {
                c.shares[s.parent as usize].at
            };
            let d = s.at - parent_at;
            if d.is_finite() && d >= 0.0 {
                delays.push(d);
            }
        }
    }
    if delays.len() < 100 {
        let p = ModelParams::default();
        return (p.kernel_scale_s, p.kernel_shape);
    }
    let mut best = (f64::NEG_INFINITY, 60.0, 1.5);
    for si in 0..60 {
        let scale = 2f64.powf(f64::from(si) / 5.0); // 1 s .. ~3.6 h
        let sum_log: f64 = delays.iter().map(|d| (1.0 + d / scale).ln()).sum();
        let n = delays.len() as f64;
        for hi in 2..=50 {
            let shape = f64::from(hi) / 10.0;
            let ll = n * (shape / scale).ln() - (1.0 + shape) * sum_log;
            if ll > best.0 {
                best = (ll, scale, shape);
            }
        }
    }
    (best.1, best.2)
}

/// Fits the prior of direct shares: `a · F^β` and the Gamma shape, from binned means.
fn fit_root_prior(train: &[TrueCascade]) -> (f64, f64, f64) {
    let mut bins: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for c in train {
        let direct = c
            .shares
            .iter()
            .filter(|s| s.parent == ROOT)
            .map(|s| f64::from(s.weight))
            .sum::<f64>();
        let key = ((c.author_followers.max(1) as f64).log10() * 4.0).floor() as i64;
        bins.entry(key).or_default().push(direct);
    }
    let (mut sx, mut sy, mut sxx, mut sxy, mut sw) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut num, mut den) = (0.0, 0.0);
    for (key, values) in &bins {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        if values.len() < 20 || mean <= 0.0 {
            continue;
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let x = (10f64.powf((*key as f64 + 0.5) / 4.0)).ln();
        let y = mean.ln();
        sx += n * x;
        sy += n * y;
        sxx += n * x * x;
        sxy += n * x * y;
        sw += n;
        num += n * mean * mean;
        den += n * (var - mean).max(1e-3 * mean);
    }
    let d = ModelParams::default();
    if sw == 0.0 || (sw * sxx - sx * sx).abs() < 1e-9 {
        return (d.root_coef, d.root_exponent, d.root_shape);
    }
    let beta = (sw * sxy - sx * sy) / (sw * sxx - sx * sx);
    let alpha = ((sy - beta * sx) / sw).exp();
    let shape = if den > 0.0 {
        (num / den).clamp(0.2, 50.0)
    } else {
        d.root_shape
    };
    (alpha, beta, shape)
}

/// Fits the model parameters for a given follower exponent.
fn fit_params(train: &[TrueCascade], kernel: (f64, f64), follower_exponent: f64) -> ModelParams {
    let mut p = ModelParams {
        kernel_scale_s: kernel.0,
        kernel_shape: kernel.1,
        follower_exponent,
        weight_mean: 1.0,
        ..ModelParams::default()
    };
    let (mut wsum, mut n) = (0.0, 0.0);
    for c in train {
        for s in &c.shares {
            if s.followers.is_some() {
                wsum += p.weight(s.followers) * f64::from(s.weight);
                n += f64::from(s.weight);
            }
        }
    }
    if n > 0.0 {
        p.weight_mean = wsum / n;
    }
    let (mut children, mut exposure) = (0.0, 0.0);
    for c in train {
        for s in &c.shares {
            exposure += p.weight(s.followers) * f64::from(s.weight);
            if s.parent != ROOT {
                children += f64::from(s.weight);
            }
        }
    }
    if exposure > 0.0 {
        p.branching_prior = (children / exposure).clamp(0.01, 0.95);
    }
    let (a, b, k) = fit_root_prior(train);
    p.root_coef = a;
    p.root_exponent = b;
    p.root_shape = k;
    p
}

/// Median absolute log error of the raw model at 10% of lifetime on cascades with at least
/// `min_shares` shares: the objective the follower exponent is chosen by.
fn objective(train: &[TrueCascade], params: &ModelParams, min_shares: u64) -> f64 {
    let mut errors: Vec<f64> = train
        .iter()
        .filter(|c| c.size() >= min_shares)
        .map(|c| {
            let raw = seismic_raw(c, params, 0.1 * c.lifetime());
            ((raw.expected_final() + 1.0) / (c.size() as f64 + 1.0))
                .ln()
                .abs()
        })
        .collect();
    errors.sort_by(f64::total_cmp);
    quantile_of(&errors, 0.5)
}
