//! Calibration of the point process's raw predictions against outcomes: empirical quantiles
//! of the log-ratio residual `r = ln((remaining_true + 1) / (remaining_predicted + 1))`, per
//! bin of (shares observed, age of the post). From them come the calibrated point prediction
//! (the bin's median residual), the interval (its quantiles) and the probability of crossing
//! the virality threshold (the fraction of residuals above the one that would reach it).
//! Bins with too few samples fall back to the shares bin pooled over ages, then to every
//! sample; with no samples at all the interval comes from the model's variance.
//!
//! That fraction is not itself a calibrated probability (the bins condition on shares seen
//! and age, not on how close to the threshold the cascade already is), so it goes through a
//! monotone [`Recalibration`]: isotonic regression (pool-adjacent-violators) of what happened
//! on training cascades against that raw fraction, per age group.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cascade::ShareNode;
use super::growth::{self, GrowthModel};
use super::seismic::{self, ModelParams, RawPrediction};

/// Upper edges of the shares-observed bins (the last bin is open).
pub const SHARE_EDGES: [f64; 9] = [0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 63.5, 127.5, 255.5];
/// Upper edges of the age bins, in seconds (the last bin is open).
pub const AGE_EDGES_S: [f64; 13] = [
    30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0, 5400.0, 10800.0, 21600.0, 43200.0, 86400.0,
    172800.0,
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
    /// Ceiling on predicted final sizes (ten times the largest final size of the training
    /// cascades; a cascade already larger is never predicted below its count).
    pub max_final_shares: f64,
    /// Monotone map of the raw probability to a calibrated one (absent in calibrations of
    /// model version 1: the identity).
    #[serde(default)]
    pub recalibration: Recalibration,
    /// The growth-curve model that predicts what remains (absent: the point process does).
    #[serde(default)]
    pub growth: GrowthModel,
    /// Where in the residual bins the point prediction is read, by age.
    #[serde(default)]
    pub point_levels: PointLevels,
}

/// The quantile level of the residual bins the point prediction is read at, per age group
/// (upper edges in seconds, the last group open). The median (0.5) minimises the absolute log
/// error; the relative error `|predicted − final| / final` weighs an overestimate of a small
/// cascade more than an underestimate of a large one, so the level that minimised it on
/// held-out training cascades is usually lower. Empty: the median.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointLevels {
    pub age_edges_s: Vec<f64>,
    pub levels: Vec<f64>,
}

impl PointLevels {
    /// The level at `age_s`.
    pub fn at(&self, age_s: f64) -> f64 {
        let g = self.age_edges_s.partition_point(|&e| e <= age_s);
        self.levels.get(g).copied().unwrap_or(0.5).clamp(0.01, 0.99)
    }
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
            recalibration: Recalibration::default(),
            growth: GrowthModel::default(),
            point_levels: PointLevels::default(),
        }
    }
}

/// Name of the model in lineage.
pub const MODEL_NAME: &str = "pulse-growth";
/// Version of the model code; changes whenever predictions would change for equal inputs.
pub const MODEL_VERSION: &str = "3";

/// The calibration fitted on real Twitter cascades by `scripts/fit-virality.sh` (`pulse eval
/// virality --data ... --write-calibration`).
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

    /// The uncalibrated prediction from the shares of a post created at `origin` (Unix
    /// seconds) by an author with `author_followers`, observed at `at`: what remains from the
    /// growth model when there is one, else from the point process (which also gives the
    /// infectiousness and the variance either way). `prior` is the post's reach forecast at age
    /// 0 (`ln(1 + shares)`), when one was made.
    pub fn raw(
        &self,
        origin: f64,
        author_followers: u64,
        shares: &[ShareNode],
        extra_shares: u64,
        at: f64,
        prior: Option<f64>,
    ) -> RawPrediction {
        let mut raw = seismic::predict(
            &self.params,
            origin,
            author_followers,
            shares,
            extra_shares,
            at,
        );
        if !self.growth.is_empty() {
            let observation = growth::observe(origin, shares, extra_shares, at, prior);
            raw.remaining = self.growth.remaining(&observation);
        }
        raw
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
                    at(self.point_levels.at(raw.age_s)),
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
        // A cascade already at the threshold has crossed it; below it, the raw tail goes
        // through the monotone recalibration.
        let tail = if threshold - observed <= 0.0 {
            tail
        } else {
            self.recalibration.apply(tail, raw.age_s)
        };
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

/// Fewest training samples a block of the isotonic map holds (adjacent blocks are pooled
/// until they do): keeps the map from following single cascades.
pub const MIN_BLOCK_SAMPLES: f64 = 200.0;
/// Fewest samples, and fewest positives, an age group needs for a map of its own.
pub const MIN_GROUP_SAMPLES: usize = 5_000;
pub const MIN_GROUP_POSITIVES: usize = 50;

/// One block of pool-adjacent-violators: consecutive points sharing one fitted value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Block {
    /// Total weight of the block's points.
    pub weight: f64,
    /// Weighted mean of their inputs.
    pub x: f64,
    /// Weighted mean of their outcomes: the fitted value.
    pub y: f64,
}

/// Isotonic (non-decreasing) regression of `y` on `x` by pool-adjacent-violators, for
/// weighted points `(x, y, weight)` in any order. Returns the blocks in ascending order of
/// `x`; their `y` are non-decreasing, and each point's fitted value is the `y` of its block.
/// Points with equal `x` always share a block.
pub fn pav(points: &[(f64, f64, f64)]) -> Vec<Block> {
    let mut sorted: Vec<(f64, f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(x, y, w)| x.is_finite() && y.is_finite() && w > 0.0)
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sums of weight, weight·x and weight·y per block.
    let mut stack: Vec<(f64, f64, f64)> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut cur = (0.0, 0.0, 0.0);
        let x0 = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == x0 {
            let (x, y, w) = sorted[i];
            cur = (cur.0 + w, cur.1 + w * x, cur.2 + w * y);
            i += 1;
        }
        while let Some(&prev) = stack.last() {
            if prev.2 / prev.0 > cur.2 / cur.0 {
                stack.pop();
                cur = (prev.0 + cur.0, prev.1 + cur.1, prev.2 + cur.2);
            } else {
                break;
            }
        }
        stack.push(cur);
    }
    stack
        .into_iter()
        .map(|(w, wx, wy)| Block {
            weight: w,
            x: wx / w,
            y: wy / w,
        })
        .collect()
}

/// Pools adjacent blocks until each weighs at least `min_weight` (a short last run joins the
/// block before it). Pooling neighbours of a non-decreasing sequence keeps it non-decreasing.
pub fn pool_blocks(blocks: &[Block], min_weight: f64) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut acc: Option<Block> = None;
    let merge = |a: Block, b: Block| {
        let w = a.weight + b.weight;
        Block {
            weight: w,
            x: (a.x * a.weight + b.x * b.weight) / w,
            y: (a.y * a.weight + b.y * b.weight) / w,
        }
    };
    for &b in blocks {
        let cur = match acc.take() {
            Some(a) => merge(a, b),
            None => b,
        };
        if cur.weight >= min_weight {
            out.push(cur);
        } else {
            acc = Some(cur);
        }
    }
    if let Some(rest) = acc {
        match out.pop() {
            Some(last) => out.push(merge(last, rest)),
            None => out.push(rest),
        }
    }
    out
}

/// A fitted monotone map: the blocks' (mean raw probability, observed frequency), both
/// ascending, linearly interpolated between and held flat beyond the ends, up to the largest
/// raw probability it was fitted on. Above that it has seen nothing, so it runs straight to
/// (1, 1): a raw probability higher than any in the fit keeps its rank and tends to itself,
/// where holding flat would score a cascade that is near the threshold within minutes like
/// the top block of ordinary ones. Empty: the identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    pub samples: usize,
    pub positives: usize,
    pub knots: Vec<[f64; 2]>,
    /// The largest raw probability of the fit (absent in maps fitted before it was kept:
    /// those hold flat to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_max: Option<f64>,
}

impl Isotonic {
    /// Fits the map on `(raw probability, outcome)` pairs.
    pub fn fit(points: &[(f64, bool)], min_block: f64) -> Isotonic {
        let weighted: Vec<(f64, f64, f64)> = points
            .iter()
            .map(|&(p, y)| (p, f64::from(u8::from(y)), 1.0))
            .collect();
        let blocks = pool_blocks(&pav(&weighted), min_block);
        Isotonic {
            samples: points.len(),
            positives: points.iter().filter(|(_, y)| *y).count(),
            knots: blocks.iter().map(|b| [b.x, b.y]).collect(),
            support_max: points
                .iter()
                .map(|&(p, _)| p)
                .filter(|p| p.is_finite())
                .reduce(f64::max),
        }
    }

    /// The calibrated probability of a raw one.
    pub fn apply(&self, p: f64) -> f64 {
        let k = &self.knots;
        let (Some(first), Some(last)) = (k.first(), k.last()) else {
            return p;
        };
        if p <= first[0] {
            return first[1];
        }
        if p >= last[0] {
            return match self.support_max {
                Some(max) if p > max && max < 1.0 && last[1] < 1.0 => {
                    let from = last[1].max(0.0);
                    from + (1.0 - from) * (p - max) / (1.0 - max)
                }
                _ => last[1],
            };
        }
        let i = k.partition_point(|knot| knot[0] <= p);
        let ([x0, y0], [x1, y1]) = (k[i - 1], k[i]);
        if x1 > x0 {
            y0 + (y1 - y0) * (p - x0) / (x1 - x0)
        } else {
            y1
        }
    }
}

/// The recalibration of the raw probability: an isotonic map per age group (upper edges in
/// seconds, the last group open), and one over every age for groups with too few samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recalibration {
    pub age_edges_s: Vec<f64>,
    pub by_age: Vec<Isotonic>,
    pub pooled: Isotonic,
}

/// One recalibration sample: the raw probability at some age and whether the cascade went
/// viral.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub age_s: f64,
    pub raw_probability: f64,
    pub viral: bool,
}

impl Recalibration {
    /// Fits the maps on outcomes, with the age groups ending at `age_edges_s`.
    pub fn fit(outcomes: &[Outcome], age_edges_s: &[f64]) -> Recalibration {
        let points = |keep: &dyn Fn(&Outcome) -> bool| -> Vec<(f64, bool)> {
            outcomes
                .iter()
                .filter(|o| keep(o))
                .map(|o| (o.raw_probability, o.viral))
                .collect()
        };
        let group = |age: f64| age_edges_s.partition_point(|&e| e <= age);
        let by_age = (0..=age_edges_s.len())
            .map(|g| {
                let map = Isotonic::fit(&points(&|o| group(o.age_s) == g), MIN_BLOCK_SAMPLES);
                if map.samples >= MIN_GROUP_SAMPLES && map.positives >= MIN_GROUP_POSITIVES {
                    map
                } else {
                    Isotonic::default()
                }
            })
            .collect();
        Recalibration {
            age_edges_s: age_edges_s.to_vec(),
            by_age,
            pooled: Isotonic::fit(&points(&|_| true), MIN_BLOCK_SAMPLES),
        }
    }

    /// The calibrated probability of a raw one at `age_s` (the identity when nothing was
    /// fitted).
    pub fn apply(&self, p: f64, age_s: f64) -> f64 {
        let g = self.age_edges_s.partition_point(|&e| e <= age_s);
        let map = self
            .by_age
            .get(g)
            .filter(|m| !m.knots.is_empty())
            .unwrap_or(&self.pooled);
        map.apply(p).clamp(0.0, 1.0)
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

    /// A prediction ten shares in, a minute after the post.
    fn sample_raw() -> RawPrediction {
        RawPrediction {
            observed: 10.0,
            remaining: 5.0,
            variance: 4.0,
            branching: 0.3,
            age_s: 60.0,
        }
    }

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
        let raw = sample_raw();
        let p = c.apply(&raw, 12.0, 0.9);
        assert!(p.lower <= p.predicted_final && p.predicted_final <= p.upper);
        assert!(p.lower >= 10.0);
        assert!(p.probability > 0.5 && p.probability < 1.0);
        assert_eq!(c.apply(&raw, 8.0, 0.9).probability, 1.0);
    }

    #[test]
    fn pav_pools_violators_into_non_decreasing_blocks() {
        // 0, 1, 0, 0, 1, 1 at x = 1..6: the 1, 0, 0 in the middle pool to 1/3.
        let points: Vec<(f64, f64, f64)> = [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]
            .iter()
            .enumerate()
            .map(|(i, &y)| (i as f64 + 1.0, y, 1.0))
            .collect();
        let blocks = pav(&points);
        let fitted: Vec<(f64, f64, f64)> = blocks.iter().map(|b| (b.x, b.y, b.weight)).collect();
        assert_eq!(
            fitted,
            vec![
                (1.0, 0.0, 1.0),
                (3.0, 1.0 / 3.0, 3.0),
                (5.0, 1.0, 1.0),
                (6.0, 1.0, 1.0)
            ]
        );
        // Weights count, equal inputs share a block, order of the input does not matter.
        let blocks = pav(&[(2.0, 0.0, 3.0), (1.0, 1.0, 1.0), (2.0, 1.0, 1.0)]);
        assert_eq!(blocks.len(), 1);
        assert!((blocks[0].y - 0.4).abs() < 1e-12);
        assert!((blocks[0].x - 1.8).abs() < 1e-12);
        // Pooling small blocks keeps the sequence non-decreasing.
        let pooled = pool_blocks(&pav(&points), 2.0);
        assert!(pooled.iter().all(|b| b.weight >= 2.0));
        assert!(pooled
            .windows(2)
            .all(|w| w[0].y <= w[1].y && w[0].x < w[1].x));
        assert_eq!(pooled.iter().map(|b| b.weight).sum::<f64>(), 6.0);
    }

    /// Raw probabilities that are over-confident in the middle, as the bins' tails were: a raw
    /// 0.1–0.9 comes true a fifth as often as it says.
    fn over_confident() -> Vec<(f64, bool)> {
        let mut points = Vec::new();
        for level in 0..10 {
            let p = (f64::from(level) + 0.5) / 10.0;
            let truth = if level == 0 {
                0.001
            } else if level == 9 {
                0.93
            } else {
                p / 5.0
            };
            let positives = (1000.0 * truth).round() as usize;
            points.extend((0..1000).map(|i| (p + (i as f64 - 500.0) * 1e-5, i < positives)));
        }
        points
    }

    #[test]
    fn beyond_its_support_the_map_runs_to_certainty() {
        // Fitted on raw probabilities up to 0.3 that came true a tenth as often as they said.
        let points: Vec<(f64, bool)> = (0..3000)
            .map(|i| {
                let p = 0.3 * f64::from(i) / 2999.0;
                (p, i % 100 < (p * 10.0 * 100.0 / 3.0) as i32 / 10)
            })
            .collect();
        let map = Isotonic::fit(&points, 200.0);
        assert_eq!(map.support_max, Some(0.3));
        let top = map.knots.last().unwrap()[1];
        // Within the support, flat beyond the last block's mean, as before.
        assert_eq!(map.apply(0.3), top);
        // Above it, monotone up to 1.
        assert!(map.apply(0.31) > top);
        assert!((map.apply(0.65) - (top + (1.0 - top) * 0.5)).abs() < 1e-12);
        assert_eq!(map.apply(1.0), 1.0);
        let grid: Vec<f64> = (0..=1000)
            .map(|i| map.apply(f64::from(i) / 1000.0))
            .collect();
        assert!(grid.windows(2).all(|w| w[0] <= w[1]));
        // A map saved without its support holds flat, as maps always did.
        let old = Isotonic {
            support_max: None,
            ..map.clone()
        };
        assert_eq!(old.apply(0.9), top);
    }

    #[test]
    fn isotonic_maps_over_confident_middle_probabilities_to_frequencies() {
        let points = over_confident();
        let map = Isotonic::fit(&points, 200.0);
        assert_eq!(map.samples, 10_000);
        // Monotone knots.
        assert!(map
            .knots
            .windows(2)
            .all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]));
        // The middle comes down to what happened.
        for level in 1..9 {
            let p = (f64::from(level) + 0.5) / 10.0;
            let q = map.apply(p);
            assert!((q - p / 5.0).abs() < 0.03, "{p} -> {q}");
        }
        assert!(map.apply(0.0) < 0.01);
        assert!(map.apply(1.0) > 0.85);
        // Monotone everywhere: order is kept, so the ranking (the AUC) is too.
        let grid: Vec<f64> = (0..=1000)
            .map(|i| map.apply(f64::from(i) / 1000.0))
            .collect();
        assert!(grid.windows(2).all(|w| w[0] <= w[1]));
        // Calibrated on the data it was fitted on: each decile's mean equals its frequency.
        for level in 0..10 {
            let inside: Vec<&(f64, bool)> =
                points[level * 1000..(level + 1) * 1000].iter().collect();
            let mean = inside.iter().map(|(p, _)| map.apply(*p)).sum::<f64>() / 1000.0;
            let freq = inside.iter().filter(|(_, y)| *y).count() as f64 / 1000.0;
            assert!(
                (mean - freq).abs() < 0.02,
                "decile {level}: {mean} vs {freq}"
            );
        }
    }

    #[test]
    fn recalibration_groups_by_age_and_falls_back() {
        let young: Vec<Outcome> = over_confident()
            .into_iter()
            .map(|(p, viral)| Outcome {
                age_s: 10.0,
                raw_probability: p,
                viral,
            })
            .collect();
        let r = Recalibration::fit(&young, &[60.0, 3600.0]);
        assert_eq!(r.by_age.len(), 3);
        assert!(!r.by_age[0].knots.is_empty());
        // Too few samples older than a minute: those ages use the pooled map.
        assert!(r.by_age[1].knots.is_empty() && r.by_age[2].knots.is_empty());
        assert_eq!(r.apply(0.55, 10.0), r.by_age[0].apply(0.55));
        assert_eq!(r.apply(0.55, 7200.0), r.pooled.apply(0.55));
        assert!((r.apply(0.55, 10.0) - 0.11).abs() < 0.03);
        // Nothing fitted: the identity.
        assert_eq!(Recalibration::default().apply(0.37, 100.0), 0.37);
    }

    #[test]
    fn the_recalibration_applies_below_the_threshold_only() {
        let mut c = Calibration::default();
        c.recalibration.pooled = Isotonic {
            samples: 2,
            positives: 1,
            knots: vec![[0.0, 0.0], [1.0, 0.2]],
            support_max: None,
        };
        let raw = sample_raw();
        let before = Calibration::default().apply(&raw, 12.0, 0.9).probability;
        let after = c.apply(&raw, 12.0, 0.9).probability;
        assert!((after - 0.2 * before).abs() < 1e-12);
        // Already at the threshold: certain either way.
        assert_eq!(c.apply(&raw, 8.0, 0.9).probability, 1.0);
        assert_ne!(c.params_hash(), Calibration::default().params_hash());
    }

    #[test]
    fn a_calibration_without_recalibration_still_loads() {
        let mut v = serde_json::to_value(Calibration::default()).unwrap();
        v.as_object_mut().unwrap().remove("recalibration");
        let c: Calibration = serde_json::from_value(v).unwrap();
        assert_eq!(c, Calibration::default());
        // The built-in one carries its recalibration.
        let built_in = Calibration::built_in();
        assert_eq!(built_in.version, MODEL_VERSION);
        assert!(!built_in.recalibration.pooled.knots.is_empty());
    }

    #[test]
    fn normal_helpers_agree() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-6);
        assert!((normal_quantile(0.95) - 1.6449).abs() < 1e-3);
    }
}
