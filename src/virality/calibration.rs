//! Calibration of the point process's raw predictions against outcomes: empirical quantiles
//! of the log-ratio residual `r = ln((remaining_true + 1) / (remaining_predicted + 1))`, per
//! bin of (shares observed, age of the post). From them come the calibrated point prediction
//! (the bin's median residual), the interval (its quantiles) and the probability of crossing
//! the virality threshold (the fraction of residuals above the one that would reach it).
//! Bins with too few samples fall back to the shares bin pooled over ages, then to every
//! sample; with no samples at all the interval comes from the model's variance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::seismic::{ModelParams, RawPrediction};

/// Upper edges of the shares-observed bins (the last bin is open).
pub const SHARE_EDGES: [f64; 9] = [0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 63.5, 127.5, 255.5];
/// Upper edges of the age bins, in seconds (the last bin is open).
pub const AGE_EDGES_S: [f64; 10] = [
    30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0, 5400.0, 10800.0, 21600.0,
];
/// Quantile levels stored per bin: 0%, 1%, ..., 100%.
pub const LEVELS: usize = 101;
/// Fewest samples a bin needs to be used on its own.
pub const MIN_BIN_SAMPLES: usize = 40;

/// Residual quantiles of one bin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub samples: usize,
    /// `LEVELS` quantiles, ascending; empty when `samples` is 0.
    pub quantiles: Vec<f32>,
}

impl Bin {
    fn from_residuals(mut r: Vec<f64>) -> Bin {
        if r.is_empty() {
            return Bin::default();
        }
        r.sort_by(f64::total_cmp);
        let n = r.len();
        let quantiles = (0..LEVELS)
            .map(|i| {
                let pos = i as f64 / (LEVELS - 1) as f64 * (n - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = pos.ceil() as usize;
                let frac = pos - lo as f64;
                (r[lo] * (1.0 - frac) + r[hi] * frac) as f32
            })
            .collect();
        Bin {
            samples: n,
            quantiles,
        }
    }

    /// The residual at quantile level `q` in 0..=1.
    pub fn quantile(&self, q: f64) -> f64 {
        let pos = q.clamp(0.0, 1.0) * (LEVELS - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil().min((LEVELS - 1) as f64) as usize;
        let frac = pos - lo as f64;
        f64::from(self.quantiles[lo]) * (1.0 - frac) + f64::from(self.quantiles[hi]) * frac
    }

    /// Fraction of residuals at or above `x`, interpolated between the stored quantiles.
    pub fn tail(&self, x: f64) -> f64 {
        let q = &self.quantiles;
        let last = LEVELS - 1;
        if x <= f64::from(q[0]) {
            return 1.0;
        }
        if x > f64::from(q[last]) {
            return 0.0;
        }
        // First stored quantile at or above x.
        let i = q.partition_point(|&v| f64::from(v) < x);
        if i == 0 {
            return 1.0;
        }
        let (a, b) = (f64::from(q[i - 1]), f64::from(q[i]));
        let frac = if b > a { (x - a) / (b - a) } else { 1.0 };
        let level = ((i - 1) as f64 + frac) / last as f64;
        (1.0 - level).clamp(0.0, 1.0)
    }
}

/// One training sample: what the model said at some age and what happened.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub observed: f64,
    pub age_s: f64,
    pub predicted_remaining: f64,
    pub true_remaining: f64,
}

/// The fitted calibration, model parameters and virality thresholds: everything a
/// prediction depends on. Serialized into `calibration.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Model name and version, for lineage.
    pub model: String,
    pub version: String,
    /// Where the calibration was fitted (a generator seed or a file).
    pub fitted_on: String,
    pub params: ModelParams,
    /// Bins by (shares bin, age bin), row-major.
    pub bins: Vec<Bin>,
    /// Bins by shares, pooled over ages.
    pub by_shares: Vec<Bin>,
    pub pooled: Bin,
    /// Final-size threshold of "viral" per platform (top 1% of final sizes by default).
    pub thresholds: BTreeMap<String, f64>,
    /// Threshold of platforms without their own.
    pub default_threshold: f64,
    /// Largest final size seen in the history (predictions are capped there).
    pub max_final_shares: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            model: MODEL_NAME.into(),
            version: MODEL_VERSION.into(),
            fitted_on: "uncalibrated defaults".into(),
            params: ModelParams::default(),
            bins: Vec::new(),
            by_shares: Vec::new(),
            pooled: Bin::default(),
            thresholds: BTreeMap::new(),
            default_threshold: 50.0,
            max_final_shares: 1e7,
        }
    }
}

/// Name of the model in lineage.
pub const MODEL_NAME: &str = "pulse-seismic";
/// Version of the model code; changes whenever predictions would change for equal inputs.
pub const MODEL_VERSION: &str = "1";

/// The calibration fitted on generated cascades by `pulse eval virality --write-calibration`.
const BUILT_IN: &str = include_str!("calibration.json");

fn share_bin(observed: f64) -> usize {
    SHARE_EDGES.partition_point(|&e| e < observed)
}

fn age_bin(age_s: f64) -> usize {
    AGE_EDGES_S.partition_point(|&e| e <= age_s)
}

/// Residual of one sample.
pub fn residual(predicted_remaining: f64, true_remaining: f64) -> f64 {
    ((true_remaining.max(0.0) + 1.0) / (predicted_remaining.max(0.0) + 1.0)).ln()
}

/// A calibrated prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Calibrated {
    pub predicted_final: f64,
    pub lower: f64,
    pub upper: f64,
    /// Probability that the final size reaches `threshold`.
    pub probability: f64,
    pub threshold: f64,
}

impl Calibration {
    /// The built-in calibration (falls back to uncalibrated defaults if it cannot be read).
    pub fn built_in() -> Calibration {
        serde_json::from_str(BUILT_IN).unwrap_or_default()
    }

    /// The built-in calibration, parsed once per process.
    pub fn shared() -> std::sync::Arc<Calibration> {
        static SHARED: std::sync::OnceLock<std::sync::Arc<Calibration>> =
            std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| std::sync::Arc::new(Calibration::built_in()))
            .clone()
    }

    /// Fits the residual bins from samples (the model parameters stay as they are).
    pub fn fit_bins(&mut self, samples: &[Sample]) {
        let shares_bins = SHARE_EDGES.len() + 1;
        let age_bins = AGE_EDGES_S.len() + 1;
        let mut grid: Vec<Vec<f64>> = vec![Vec::new(); shares_bins * age_bins];
        let mut by_shares: Vec<Vec<f64>> = vec![Vec::new(); shares_bins];
        let mut pooled = Vec::with_capacity(samples.len());
        for s in samples {
            let r = residual(s.predicted_remaining, s.true_remaining);
            if !r.is_finite() {
                continue;
            }
            let sb = share_bin(s.observed);
            grid[sb * age_bins + age_bin(s.age_s)].push(r);
            by_shares[sb].push(r);
            pooled.push(r);
        }
        self.bins = grid.into_iter().map(Bin::from_residuals).collect();
        self.by_shares = by_shares.into_iter().map(Bin::from_residuals).collect();
        self.pooled = Bin::from_residuals(pooled);
    }

    /// The bin that calibrates a prediction, if any has enough samples.
    fn bin_for(&self, observed: f64, age_s: f64) -> Option<&Bin> {
        let age_bins = AGE_EDGES_S.len() + 1;
        let sb = share_bin(observed);
        let enough = |b: &&Bin| b.samples >= MIN_BIN_SAMPLES && b.quantiles.len() == LEVELS;
        self.bins
            .get(sb * age_bins + age_bin(age_s))
            .filter(enough)
            .or_else(|| self.by_shares.get(sb).filter(enough))
            .or_else(|| Some(&self.pooled).filter(enough))
    }

    /// The threshold of a platform.
    pub fn threshold(&self, platform: Option<&str>) -> f64 {
        platform
            .and_then(|p| self.thresholds.get(p))
            .copied()
            .unwrap_or(self.default_threshold)
            .max(1.0)
    }

    /// Calibrates a raw prediction; `level` is the interval's coverage (e.g. 0.9).
    pub fn apply(&self, raw: &RawPrediction, threshold: f64, level: f64) -> Calibrated {
        let observed = raw.observed;
        let cap = self.max_final_shares.max(observed);
        let mu = raw.remaining.max(0.0);
        let level = level.clamp(0.5, 0.999);
        let (point, lower, upper, tail) = match self.bin_for(observed, raw.age_s) {
            Some(bin) => {
                let at = |q: f64| ((mu + 1.0) * bin.quantile(q).exp() - 1.0).max(0.0);
                let need = threshold - observed;
                let tail = if need <= 0.0 {
                    1.0
                } else {
                    bin.tail(((need + 1.0) / (mu + 1.0)).ln())
                };
                (
                    at(0.5),
                    at((1.0 - level) / 2.0),
                    at((1.0 + level) / 2.0),
                    tail,
                )
            }
            None => {
                // The model's variance, through a normal approximation on the log scale.
                let z = normal_quantile((1.0 + level) / 2.0);
                let sd = raw.variance.max(0.0).sqrt();
                let need = threshold - observed;
                let tail = if need <= 0.0 {
                    1.0
                } else if sd == 0.0 {
                    f64::from(u8::from(mu >= need))
                } else {
                    1.0 - normal_cdf((need - 0.5 - mu) / sd)
                };
                (mu, (mu - z * sd).max(0.0), mu + z * sd, tail)
            }
        };
        let clamp = |x: f64| (observed + x).min(cap);
        Calibrated {
            predicted_final: clamp(point),
            lower: clamp(lower),
            upper: clamp(upper),
            probability: if observed + mu.min(cap) < 0.0 {
                0.0
            } else {
                tail.clamp(0.0, 1.0)
            },
            threshold,
        }
    }

    /// A stable hash of everything the predictions depend on: parameters, bins, thresholds.
    pub fn params_hash(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        format!("{:016x}", fnv1a(text.as_bytes()))
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 through erf).
pub fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + y)
    } else {
        0.5 * (1.0 - y)
    }
}

/// Standard normal quantile by bisection on [`normal_cdf`].
pub fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_answer_quantiles_and_tails() {
        let b = Bin::from_residuals((0..1000).map(|i| f64::from(i) / 999.0).collect());
        assert!((b.quantile(0.5) - 0.5).abs() < 1e-3);
        assert!((b.tail(0.25) - 0.75).abs() < 0.02);
        assert_eq!(b.tail(-1.0), 1.0);
        assert_eq!(b.tail(2.0), 0.0);
    }

    #[test]
    fn the_built_in_calibration_loads() {
        let c = Calibration::built_in();
        assert_eq!(c.model, MODEL_NAME);
        assert_eq!(c.params_hash(), Calibration::built_in().params_hash());
    }

    #[test]
    fn uncalibrated_predictions_use_the_model_variance() {
        let c = Calibration::default();
        let raw = RawPrediction {
            observed: 10.0,
            remaining: 5.0,
            variance: 4.0,
            branching: 0.3,
            age_s: 60.0,
        };
        let p = c.apply(&raw, 12.0, 0.9);
        assert!(p.lower <= p.predicted_final && p.predicted_final <= p.upper);
        assert!(p.lower >= 10.0);
        assert!(p.probability > 0.5 && p.probability < 1.0);
        assert_eq!(c.apply(&raw, 8.0, 0.9).probability, 1.0);
    }

    #[test]
    fn normal_helpers_agree() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-6);
        assert!((normal_quantile(0.95) - 1.6449).abs() < 1e-3);
    }
}
