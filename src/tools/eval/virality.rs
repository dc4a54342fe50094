//! `pulse eval virality`: fits the virality model on one set of cascades and measures it on
//! another. Cascades come from the generator (true final sizes recorded as each cascade
//! ends) or from a file of real cascades, one JSON object per line:
//!
//! ```json
//! {"id": "post-1", "platform": "twitter", "author_followers": 1200,
//!  "shares": [[12.5, 300, -1], [40.0, 80, 0], [95.2, 15000, 1]]}
//! ```
//!
//! where each share is `[seconds after the post, sharer's followers, parent]` and `parent`
//! is the index of the share it came through in the same list, or -1 for the post itself.
//! `platform` and `author_followers` are optional. Cascades whose id hashes even train, odd
//! ones test.
//!
//! Reported on the test set: the median relative error of the final size predicted after
//! observing the first 10% of each cascade's lifetime (post to last share) and after one
//! hour; the AUC of viral (final size at or above the platform's top-1% threshold) versus
//! not; the calibration table of the probability of going viral and its expected
//! calibration error; the interval's coverage; and the tracker's throughput.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::generate::{Generator, GeneratorOptions};
use crate::models::{EngagementKind, Event, Platform};
use crate::virality::calibration::{self, Calibration, Sample};
use crate::virality::cascade::{ShareNode, ShareTree, ROOT};
use crate::virality::dynamics::Dynamics;
use crate::virality::seismic::{self, ModelParams};
use crate::virality::{unix_seconds, Model, PostMeta, Tracker};

/// Options of `pulse eval virality`.
#[derive(Debug, Clone, clap::Args)]
pub struct ViralityEvalArgs {
    /// Generator seed of the training cascades (the test set uses seed + 1).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Posts per split when generating.
    #[arg(long, default_value_t = 40_000)]
    pub posts: usize,
    /// A file of real cascades (JSON lines, see the module documentation) instead of the
    /// generator.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Cascades with at least this many shares count for the relative-error figures.
    #[arg(long, default_value_t = 20)]
    pub min_shares: u64,
    /// Write the fitted calibration here (the server's built-in one is such a file).
    #[arg(long)]
    pub write_calibration: Option<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

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
}

impl TrueCascade {
    fn size(&self) -> u64 {
        self.shares.iter().map(|s| u64::from(s.weight)).sum()
    }

    fn lifetime(&self) -> f64 {
        self.shares
            .iter()
            .map(|s| s.at - self.created_at)
            .fold(0.0, f64::max)
    }

    fn raw(&self, params: &ModelParams, age: f64) -> seismic::RawPrediction {
        seismic::predict(
            params,
            self.created_at,
            self.author_followers,
            &self.shares,
            0,
            self.created_at + age,
        )
    }
}

/// Generates `posts` posts with `seed` and runs the generator until each of their cascades
/// has ended, keeping their shares.
pub fn generate(seed: u64, posts: usize) -> Vec<TrueCascade> {
    let mut generator = Generator::new(GeneratorOptions {
        seed,
        // A slow post rate keeps the run short: cascades last up to 12 hours of virtual time
        // and the generator keeps starting posts while the last ones end.
        posts_per_sec: 0.5,
        engagements: true,
        id_prefix: format!("v{seed}-"),
        ..GeneratorOptions::default()
    });
    let mut index: HashMap<String, usize> = HashMap::with_capacity(posts);
    let mut cascades: Vec<(TrueCascade, ShareTree)> = Vec::with_capacity(posts);
    let mut finished = 0usize;
    let mut emitted = 0usize;
    while finished < posts {
        match generator.next_event() {
            Event::Post(p) => {
                if emitted < posts {
                    emitted += 1;
                    index.insert(p.id.clone(), cascades.len());
                    cascades.push((
                        TrueCascade {
                            id: p.id,
                            platform: Some(p.platform),
                            author_followers: p.author.followers,
                            created_at: unix_seconds(p.created_at),
                            shares: Vec::new(),
                        },
                        ShareTree::new(usize::MAX),
                    ));
                }
            }
            Event::Engagement(e) => {
                if e.kind == EngagementKind::Share {
                    if let Some(&i) = index.get(&e.post_id) {
                        cascades[i].1.add(
                            e.id.as_deref(),
                            e.via.as_deref(),
                            unix_seconds(e.at),
                            e.actor_followers,
                            e.count.unwrap_or(1),
                        );
                    }
                }
            }
        }
        for (id, _) in generator.take_finished_cascades() {
            if index.contains_key(&id) {
                finished += 1;
            }
        }
    }
    cascades
        .into_iter()
        .map(|(mut c, tree)| {
            c.shares = tree.nodes().to_vec();
            c
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct FileCascade {
    id: String,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    author_followers: Option<u64>,
    shares: Vec<(f64, Option<u64>, i64)>,
}

/// Reads a file of real cascades.
pub fn read_file(path: &PathBuf) -> anyhow::Result<Vec<TrueCascade>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let c: FileCascade = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a cascade", path.display(), n + 1))?;
        let len = c.shares.len();
        let mut shares: Vec<ShareNode> = c
            .shares
            .iter()
            .map(|&(t, followers, parent)| ShareNode {
                at: t,
                followers,
                parent: if parent < 0 || parent as usize >= len {
                    ROOT
                } else {
                    parent as u32
                },
                weight: 1,
            })
            .collect();
        // Keep time order with parents re-indexed.
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|&a, &b| shares[a].at.total_cmp(&shares[b].at));
        let mut new_index = vec![0u32; len];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new as u32;
        }
        shares = order
            .iter()
            .map(|&old| {
                let mut s = shares[old];
                if s.parent != ROOT {
                    s.parent = new_index[s.parent as usize];
                }
                s
            })
            .collect();
        out.push(TrueCascade {
            id: c.id,
            platform: c.platform.as_deref().and_then(Platform::parse),
            author_followers: c.author_followers.unwrap_or(0),
            created_at: 0.0,
            shares,
        });
    }
    Ok(out)
}

/// Ages at which training samples are taken, in seconds (plus 10% of each lifetime).
const SAMPLE_AGES_S: [f64; 20] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 420.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0,
    3600.0, 5400.0, 7200.0, 10800.0, 14400.0, 21600.0, 32400.0,
];

fn quantile_of(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = (q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[pos]
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
            let raw = c.raw(params, 0.1 * c.lifetime());
            ((raw.expected_final() + 1.0) / (c.size() as f64 + 1.0))
                .ln()
                .abs()
        })
        .collect();
    errors.sort_by(f64::total_cmp);
    quantile_of(&errors, 0.5)
}

/// Fits the whole calibration on a training set.
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
    let params = best.map(|(_, p)| p).unwrap_or_default();
    let mut samples = Vec::new();
    // Per sample: its raw prediction and its cascade's index.
    let mut raws = Vec::new();
    for (i, c) in train.iter().enumerate() {
        let size = c.size() as f64;
        let lifetime = c.lifetime();
        for age in SAMPLE_AGES_S.iter().copied().chain([0.1 * lifetime]) {
            let raw = c.raw(&params, age);
            samples.push(Sample {
                observed: raw.observed,
                age_s: age,
                predicted_remaining: raw.remaining,
                true_remaining: size - raw.observed,
            });
            raws.push((raw, i));
        }
    }
    let mut calibration = Calibration {
        fitted_on,
        params,
        ..Calibration::default()
    };
    calibration.fit_bins(&samples);
    // Thresholds: the top 1% of final sizes per platform.
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
    calibration.max_final_shares = all.last().copied().unwrap_or(1e7).max(1.0);
    calibration.recalibration = fit_recalibration(&calibration, train, &samples, &raws);
    calibration
}

/// Folds of the cross-fitted raw probabilities the recalibration learns from.
const RECALIBRATION_FOLDS: usize = 5;
/// Upper edges of the recalibration's age groups, in seconds.
pub const RECALIBRATION_AGE_EDGES_S: [f64; 4] = [60.0, 600.0, 3600.0, 14400.0];

/// Fits the monotone recalibration of the probability of going viral. Each training
/// cascade's raw probabilities (at every sampled age where it had not reached its
/// platform's threshold yet) come from residual bins fitted on the other folds' cascades,
/// so the map learns how the bins do on cascades they have not seen, as at run time.
fn fit_recalibration(
    calibration: &Calibration,
    train: &[TrueCascade],
    samples: &[Sample],
    raws: &[(seismic::RawPrediction, usize)],
) -> calibration::Recalibration {
    let fold = |cascade: usize| {
        (calibration::fnv1a(train[cascade].id.as_bytes()) % RECALIBRATION_FOLDS as u64) as usize
    };
    let mut outcomes = Vec::with_capacity(samples.len());
    for k in 0..RECALIBRATION_FOLDS {
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

/// The report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub train_cascades: usize,
    pub test_cascades: usize,
    pub min_shares: u64,
    pub params: ModelParams,
    pub thresholds: BTreeMap<String, f64>,
    pub default_threshold: f64,
    /// Cascades with at least `min_shares` shares in the test set.
    pub evaluated_cascades: usize,
    pub median_relative_error_at_10pct: f64,
    pub median_relative_error_at_10pct_uncalibrated: f64,
    pub median_relative_error_after_1h: f64,
    pub interval_coverage_at_10pct: f64,
    pub viral_test_cascades: usize,
    pub auc_at_10pct: f64,
    pub auc_after_1h: f64,
    pub ece_at_10pct: f64,
    pub ece_after_1h: f64,
    pub calibration_at_10pct: Vec<CalibrationRow>,
    pub calibration_after_1h: Vec<CalibrationRow>,
    /// The same figures for the raw probability (the residual bins' tail, before the
    /// monotone recalibration).
    pub before_recalibration: ProbabilityFigures,
    /// The probability at the 20 training ages (5 s to 9 h) of every test cascade that had
    /// not reached its threshold yet, as the server sees posts: after and before the
    /// recalibration.
    pub at_sampled_ages: Figures,
    pub at_sampled_ages_before_recalibration: Figures,
    pub dynamics_of_viral: BTreeMap<String, usize>,
    pub dynamics_of_others_with_shares: BTreeMap<String, usize>,
    pub tracker_events_per_sec: f64,
    pub params_hash: String,
}

/// AUC, expected calibration error and calibration table of one set of probabilities.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub predictions: usize,
    pub auc: f64,
    pub ece: f64,
    pub calibration: Vec<CalibrationRow>,
}

impl Figures {
    fn of(scores: &[(f64, bool)]) -> Figures {
        let (calibration, ece) = calibration_table(scores);
        Figures {
            predictions: scores.len(),
            auc: auc(scores),
            ece,
            calibration,
        }
    }
}

/// AUC, expected calibration error and calibration table of one probability.
#[derive(Debug, Clone, Serialize)]
pub struct ProbabilityFigures {
    pub auc_at_10pct: f64,
    pub auc_after_1h: f64,
    pub ece_at_10pct: f64,
    pub ece_after_1h: f64,
    pub calibration_at_10pct: Vec<CalibrationRow>,
    pub calibration_after_1h: Vec<CalibrationRow>,
}

impl ProbabilityFigures {
    fn of(at_10pct: &[(f64, bool)], after_1h: &[(f64, bool)]) -> ProbabilityFigures {
        let (calibration_at_10pct, ece_at_10pct) = calibration_table(at_10pct);
        let (calibration_after_1h, ece_after_1h) = calibration_table(after_1h);
        ProbabilityFigures {
            auc_at_10pct: auc(at_10pct),
            auc_after_1h: auc(after_1h),
            ece_at_10pct,
            ece_after_1h,
            calibration_at_10pct,
            calibration_after_1h,
        }
    }
}

/// One row of a calibration table.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRow {
    pub from: f64,
    pub to: f64,
    pub posts: usize,
    pub mean_predicted: f64,
    pub observed_frequency: f64,
}

/// Area under the ROC curve (ties count half).
pub fn auc(scores: &[(f64, bool)]) -> f64 {
    let mut v: Vec<(f64, bool)> = scores.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = v.iter().filter(|(_, y)| *y).count() as f64;
    let negatives = v.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let mean_rank = (i + j + 1) as f64 / 2.0; // ranks i+1 ..= j
        rank_sum += mean_rank * v[i..j].iter().filter(|(_, y)| *y).count() as f64;
        i = j;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Calibration table over ten probability bins and the expected calibration error.
pub fn calibration_table(scores: &[(f64, bool)]) -> (Vec<CalibrationRow>, f64) {
    let mut rows = Vec::new();
    let mut ece = 0.0;
    let n = scores.len().max(1) as f64;
    for b in 0..10 {
        let (from, to) = (f64::from(b) / 10.0, f64::from(b + 1) / 10.0);
        let inside: Vec<&(f64, bool)> = scores
            .iter()
            .filter(|(p, _)| *p >= from && (*p < to || (b == 9 && *p <= 1.0)))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let k = inside.len() as f64;
        let mean = inside.iter().map(|(p, _)| p).sum::<f64>() / k;
        let freq = inside.iter().filter(|(_, y)| *y).count() as f64 / k;
        ece += k / n * (mean - freq).abs();
        rows.push(CalibrationRow {
            from,
            to,
            posts: inside.len(),
            mean_predicted: mean,
            observed_frequency: freq,
        });
    }
    (rows, ece)
}

/// Measures the model on a test set.
pub fn evaluate(
    calibration: &Calibration,
    test: &[TrueCascade],
    min_shares: u64,
    source: String,
    train_cascades: usize,
) -> Report {
    let model = Model::new(Arc::new(calibration.clone()), 0.9, 0.5);
    let unrecalibrated = Model::new(
        Arc::new(Calibration {
            recalibration: calibration::Recalibration::default(),
            ..calibration.clone()
        }),
        0.9,
        0.5,
    );
    let mut raw_scores_10 = Vec::new();
    let mut raw_scores_1h = Vec::new();
    let mut scores_ages = Vec::new();
    let mut raw_scores_ages = Vec::new();
    let mut rel_10 = Vec::new();
    let mut rel_10_raw = Vec::new();
    let mut rel_1h = Vec::new();
    let mut covered = 0usize;
    let mut scores_10 = Vec::new();
    let mut scores_1h = Vec::new();
    let mut dyn_viral: BTreeMap<String, usize> = BTreeMap::new();
    let mut dyn_other: BTreeMap<String, usize> = BTreeMap::new();
    let mut viral_count = 0;
    for c in test {
        let size = c.size() as f64;
        let threshold = model.threshold(c.platform);
        let viral = size >= threshold;
        viral_count += usize::from(viral);
        let lifetime = c.lifetime();
        let raw10 = c.raw(&calibration.params, 0.1 * lifetime);
        let cal10 = model.calibrate(&raw10, c.platform);
        let raw1h = c.raw(&calibration.params, 3600.0);
        let cal1h = model.calibrate(&raw1h, c.platform);
        if c.size() >= 1 {
            scores_10.push((cal10.probability, viral));
            let p = unrecalibrated.calibrate(&raw10, c.platform).probability;
            raw_scores_10.push((p, viral));
        }
        scores_1h.push((cal1h.probability, viral));
        let p = unrecalibrated.calibrate(&raw1h, c.platform).probability;
        raw_scores_1h.push((p, viral));
        for age in SAMPLE_AGES_S {
            let raw = c.raw(&calibration.params, age);
            if raw.observed >= threshold {
                continue;
            }
            let after = model.calibrate(&raw, c.platform).probability;
            let before = unrecalibrated.calibrate(&raw, c.platform).probability;
            scores_ages.push((after, viral));
            raw_scores_ages.push((before, viral));
        }
        if c.size() >= min_shares {
            rel_10.push((cal10.predicted_final - size).abs() / size);
            rel_10_raw.push((raw10.expected_final() - size).abs() / size);
            rel_1h.push((cal1h.predicted_final - size).abs() / size);
            covered += usize::from(cal10.lower <= size && size <= cal10.upper);
        }
        if c.size() >= dynamics::MIN_SHARES {
            let parents: Vec<u32> = c.shares.iter().map(|s| s.parent).collect();
            let d = Dynamics::of(&crate::virality::cascade::structure_of(&parents), c.size());
            let target = if viral {
                &mut dyn_viral
            } else {
                &mut dyn_other
            };
            *target.entry(d.as_str().into()).or_default() += 1;
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        quantile_of(v, 0.5)
    };
    let (table_10, ece_10) = calibration_table(&scores_10);
    let (table_1h, ece_1h) = calibration_table(&scores_1h);
    Report {
        source,
        train_cascades,
        test_cascades: test.len(),
        min_shares,
        params: calibration.params,
        thresholds: calibration.thresholds.clone(),
        default_threshold: calibration.default_threshold,
        evaluated_cascades: rel_10.len(),
        median_relative_error_at_10pct: median(&mut rel_10),
        median_relative_error_at_10pct_uncalibrated: median(&mut rel_10_raw),
        median_relative_error_after_1h: median(&mut rel_1h),
        interval_coverage_at_10pct: covered as f64 / rel_10.len().max(1) as f64,
        viral_test_cascades: viral_count,
        auc_at_10pct: auc(&scores_10),
        auc_after_1h: auc(&scores_1h),
        ece_at_10pct: ece_10,
        ece_after_1h: ece_1h,
        calibration_at_10pct: table_10,
        calibration_after_1h: table_1h,
        before_recalibration: ProbabilityFigures::of(&raw_scores_10, &raw_scores_1h),
        at_sampled_ages: Figures::of(&scores_ages),
        at_sampled_ages_before_recalibration: Figures::of(&raw_scores_ages),
        dynamics_of_viral: dyn_viral,
        dynamics_of_others_with_shares: dyn_other,
        tracker_events_per_sec: 0.0,
        params_hash: model.lineage().params_hash,
    }
}

use crate::virality::dynamics;

/// Throughput of live tracking: generator events (every kind) into per-post trackers, with
/// every changed tracker rescored after each 50,000 events, on one thread.
pub fn tracker_throughput(seed: u64, events: usize) -> f64 {
    let model = Model::built_in();
    let mut generator = Generator::new(GeneratorOptions {
        seed,
        posts_per_sec: 20.0,
        ..GeneratorOptions::default()
    });
    let batch: Vec<Event> = (0..events).map(|_| generator.next_event()).collect();
    let started = Instant::now();
    let mut trackers: HashMap<String, Tracker> = HashMap::new();
    let mut dirty: Vec<String> = Vec::new();
    let mut scored = 0.0;
    for (i, event) in batch.iter().enumerate() {
        match event {
            Event::Post(p) => {
                let t = trackers
                    .entry(p.id.clone())
                    .or_insert_with(|| Tracker::new(20_000));
                t.meta = Some(PostMeta {
                    platform: Some(p.platform),
                    author_followers: p.author.followers,
                    created_at: unix_seconds(p.created_at),
                    ..PostMeta::default()
                });
            }
            Event::Engagement(e) => {
                let t = trackers
                    .entry(e.post_id.clone())
                    .or_insert_with(|| Tracker::new(20_000));
                t.add(
                    e.id.as_deref(),
                    e.kind,
                    unix_seconds(e.at),
                    e.actor_followers,
                    e.via.as_deref(),
                    e.count.unwrap_or(1),
                    5,
                );
                dirty.push(e.post_id.clone());
            }
        }
        if (i + 1) % 50_000 == 0 {
            dirty.sort_unstable();
            dirty.dedup();
            for id in dirty.drain(..) {
                if let Some(t) = trackers.get(&id) {
                    scored += model.score(t, 5).virality_score;
                }
            }
        }
    }
    std::hint::black_box(scored);
    events as f64 / started.elapsed().as_secs_f64()
}

fn split(cascades: Vec<TrueCascade>) -> (Vec<TrueCascade>, Vec<TrueCascade>) {
    cascades
        .into_iter()
        .partition(|c| calibration::fnv1a(c.id.as_bytes()).is_multiple_of(2))
}

/// Runs `pulse eval virality`.
pub fn run(args: ViralityEvalArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (train, test, source) = match &args.data {
        Some(path) => {
            let (train, test) = split(read_file(path)?);
            (train, test, format!("file {}", path.display()))
        }
        None => (
            generate(args.seed, args.posts),
            generate(args.seed + 1, args.posts),
            format!(
                "generator: seed {} (train) and {} (test), {} posts each",
                args.seed,
                args.seed + 1,
                args.posts
            ),
        ),
    };
    anyhow::ensure!(
        !train.is_empty() && !test.is_empty(),
        "need cascades in both the training and the test set"
    );
    eprintln!(
        "{} training and {} test cascades ready in {:.1} s; fitting",
        train.len(),
        test.len(),
        started.elapsed().as_secs_f64()
    );
    let calibration = fit(&train, args.min_shares, source.clone());
    let mut report = evaluate(&calibration, &test, args.min_shares, source, train.len());
    report.tracker_events_per_sec = tracker_throughput(args.seed, 1_000_000);
    print_report(&report);
    if let Some(path) = &args.write_calibration {
        std::fs::write(path, serde_json::to_string(&calibration)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("calibration written to {}", path.display());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn print_report(r: &Report) {
    println!("virality evaluation on {}", r.source);
    println!(
        "train {} cascades, test {} ({} with >= {} shares, {} viral)",
        r.train_cascades,
        r.test_cascades,
        r.evaluated_cascades,
        r.min_shares,
        r.viral_test_cascades
    );
    println!(
        "fitted kernel: scale {:.1} s, shape {:.2}; follower exponent {}; branching prior {:.3}",
        r.params.kernel_scale_s,
        r.params.kernel_shape,
        r.params.follower_exponent,
        r.params.branching_prior
    );
    println!(
        "viral threshold (top 1% final shares): default {}, by platform {:?}",
        r.default_threshold, r.thresholds
    );
    println!();
    println!("| measure | result | anchor / target |");
    println!("|---|---|---|");
    println!(
        "| median relative error of final size after 10% of lifetime | {:.1}% (uncalibrated {:.1}%) | target <= 15% |",
        100.0 * r.median_relative_error_at_10pct,
        100.0 * r.median_relative_error_at_10pct_uncalibrated
    );
    println!(
        "| median relative error after 1 hour | {:.1}% | SEISMIC 15% on Twitter |",
        100.0 * r.median_relative_error_after_1h
    );
    println!(
        "| 90% interval coverage after 10% of lifetime | {:.1}% | |",
        100.0 * r.interval_coverage_at_10pct
    );
    println!(
        "| AUC viral / not after 10% of lifetime | {:.3} | Cheng et al. 0.877; target >= 0.9 |",
        r.auc_at_10pct
    );
    println!("| AUC viral / not after 1 hour | {:.3} | |", r.auc_after_1h);
    println!(
        "| expected calibration error after 10% of lifetime | {:.4} | target <= 0.05 |",
        r.ece_at_10pct
    );
    println!(
        "| expected calibration error after 1 hour | {:.4} | |",
        r.ece_after_1h
    );
    let b = &r.before_recalibration;
    println!(
        "| before recalibration: AUC after 10% / 1 hour | {:.3} / {:.3} | |",
        b.auc_at_10pct, b.auc_after_1h
    );
    println!(
        "| before recalibration: expected calibration error after 10% / 1 hour | {:.4} / {:.4} | |",
        b.ece_at_10pct, b.ece_after_1h
    );
    let (a, z) = (&r.at_sampled_ages, &r.at_sampled_ages_before_recalibration);
    println!(
        "| at the 20 sampled ages, below the threshold ({} predictions): AUC | {:.3} (before recalibration {:.3}) | |",
        a.predictions, a.auc, z.auc
    );
    println!(
        "| at the 20 sampled ages: expected calibration error | {:.4} (before recalibration {:.4}) | |",
        a.ece, z.ece
    );
    println!(
        "| tracker throughput (one thread) | {:.0} events/s | >= 50,000 |",
        r.tracker_events_per_sec
    );
    for (name, table) in [
        ("after 10% of lifetime", &r.calibration_at_10pct),
        ("after 1 hour", &r.calibration_after_1h),
        (
            "after 10% of lifetime, before recalibration",
            &b.calibration_at_10pct,
        ),
        (
            "after 1 hour, before recalibration",
            &b.calibration_after_1h,
        ),
        ("at the 20 sampled ages", &a.calibration),
        (
            "at the 20 sampled ages, before recalibration",
            &z.calibration,
        ),
    ] {
        println!();
        println!("calibration {name}:");
        println!("| predicted | posts | mean predicted | observed |");
        println!("|---|---|---|---|");
        for row in table {
            println!(
                "| {:.1}-{:.1} | {} | {:.3} | {:.3} |",
                row.from, row.to, row.posts, row.mean_predicted, row.observed_frequency
            );
        }
    }
    println!();
    println!(
        "dynamics of viral cascades: {:?}; of other cascades with >= 3 shares: {:?}",
        r.dynamics_of_viral, r.dynamics_of_others_with_shares
    );
    println!("params hash {}", r.params_hash);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_calibration_helpers() {
        assert_eq!(auc(&[(0.1, false), (0.9, true)]), 1.0);
        assert_eq!(auc(&[(0.5, false), (0.5, true)]), 0.5);
        let (rows, ece) = calibration_table(&[(0.05, false), (0.95, true)]);
        assert_eq!(rows.len(), 2);
        assert!((ece - 0.05).abs() < 1e-9);
    }

    #[test]
    fn a_small_generated_run_fits_and_evaluates() {
        let cascades = generate(3, 600);
        assert_eq!(cascades.len(), 600);
        let (train, test) = split(cascades);
        let calibration = fit(&train, 5, "test".into());
        let report = evaluate(&calibration, &test, 5, "test".into(), train.len());
        assert!(report.median_relative_error_at_10pct.is_finite());
        // The recalibration was fitted, is monotone and is applied.
        let map = &calibration.recalibration.pooled;
        assert!(map.samples > 0 && !map.knots.is_empty());
        assert!(map.knots.windows(2).all(|w| w[0][1] <= w[1][1]));
        assert_eq!(
            calibration.recalibration.by_age.len(),
            RECALIBRATION_AGE_EDGES_S.len() + 1
        );
        assert!(report.at_sampled_ages.predictions > 0);
        assert_eq!(
            report.at_sampled_ages.predictions,
            report.at_sampled_ages_before_recalibration.predictions
        );
        assert!(
            report.ece_at_10pct.is_finite() && report.before_recalibration.ece_at_10pct.is_finite()
        );
    }
}
