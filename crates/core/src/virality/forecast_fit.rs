//! Fitting the reach forecast: from drafts with what became of them to a [`ForecastModel`],
//! the same way offline (`pulse eval forecast --write-model` on a labelled set) and live (a
//! platform's own finished cascades in the store, so that what moves reach there, followers
//! included, gets its weight there).

use std::collections::HashMap;

use super::fit::{fold_of, quantile_of};
use super::forecast::{
    feature_names, features, AuthorRecord, Draft, ForecastModel, HeldOutEffect, Residuals, GROUPS,
};
use super::rank::{paired_bootstrap, spearman};
use super::ridge::{level_quantiles, out_of_fold, pick_alpha, Ridge};

/// Folds of a refit from the store (by author, so no author is both fitted and judged).
pub const REFIT_FOLDS: u64 = 5;
/// The share of cascades a model without a platform threshold calls viral: the top 10%.
pub const VIRAL_SHARE: f64 = 0.10;
/// Posts of one producer in a refit from which the refit must rank that producer's cascades
/// at least as well as the model it replaces.
pub const REFIT_PRODUCER_MIN: usize = 200;
/// How long after a post its cascade's final size is known: a record only holds cascades
/// posted at least this long before the post it is read for.
pub const HORIZON_S: f64 = 7.0 * 86_400.0;

/// A model fitted on feature rows, with its out-of-fold predictions.
pub struct Fitted {
    pub model: ForecastModel,
    pub out_of_fold: Vec<f64>,
}

/// What a fit is told besides its rows.
pub struct FitSpec {
    pub version: String,
    /// What it is fitted on, for the model's lineage.
    pub data: String,
    /// Mean ln(1 + final shares) of the rows, the shrinkage target the features were made with.
    pub prior: f64,
    pub shrink: f64,
    pub viral_log: f64,
    /// Each group's held-out effect when the caller measured it already (the evaluation does,
    /// with a penalty picked per outer fold); otherwise measured here, out of `fold`.
    pub effects: Option<Vec<HeldOutEffect>>,
}

/// Fits the model on `x` (rows of [`features`]) and `y` (ln(1 + final shares)): the penalty
/// picked over `fold`, the residual quantiles out of fold (apart for rows whose author had a
/// record, `known`, and new authors), each group's held-out effect, then the weights on every
/// row.
pub fn fit_model(
    spec: FitSpec,
    x: &[Vec<f64>],
    y: &[f64],
    fold: &[usize],
    known: &[bool],
) -> Fitted {
    let all = |_: usize| true;
    let alpha = pick_alpha(x, y, fold, &all);
    let oof = out_of_fold(x, y, fold, alpha, &all);
    // With no row of one kind (a young platform has no records yet), that kind takes every
    // row's residuals.
    let split = |want: bool| {
        let r: Vec<f64> = (0..y.len())
            .filter(|&i| known[i] == want)
            .map(|i| y[i] - oof[i])
            .collect();
        if r.is_empty() {
            level_quantiles(&(0..y.len()).map(|i| y[i] - oof[i]).collect::<Vec<_>>())
        } else {
            level_quantiles(&r)
        }
    };
    let names = feature_names();
    let full = spearman(&oof, y);
    let measure = || {
        GROUPS
            .iter()
            .map(|(group, members)| {
                let without =
                    out_of_fold(x, y, fold, alpha, &|j: usize| !members.contains(&names[j]));
                let loss = full - spearman(&without, y);
                HeldOutEffect {
                    group: group.to_string(),
                    // A flat ranking (NaN) says nothing either way.
                    spearman_loss_without: if loss.is_finite() { loss } else { 0.0 },
                }
            })
            .collect()
    };
    let effects = spec.effects.unwrap_or_else(measure);
    let ridge = Ridge::fit(x, y, alpha, &all);
    let model = ForecastModel {
        version: spec.version,
        data: spec.data,
        prior: spec.prior,
        shrink: spec.shrink,
        intercept: ridge.intercept,
        weights: ridge.weights(&names),
        residuals: Residuals {
            known: split(true),
            new: split(false),
        },
        viral_log: spec.viral_log,
        forecast_quantiles: level_quantiles(&oof),
        effects,
    };
    Fitted {
        model,
        out_of_fold: oof,
    }
}

/// A post of the store whose cascade finished, with what was known of it when it went out.
#[derive(Debug, Clone)]
pub struct FinishedPost {
    pub author: String,
    pub text: String,
    pub followers: Option<u64>,
    /// Unix seconds.
    pub at: f64,
    /// The author's cascades finished by then (posted at least [`HORIZON_S`] before).
    pub record: AuthorRecord,
    pub sentiment: f64,
    pub toxicity: f64,
    pub anger: f64,
    pub joy: f64,
    pub sadness: f64,
    pub final_shares: u64,
    /// Who sent it (`key:<id>`, `source:<name>`, ...).
    pub producer: String,
}

impl FinishedPost {
    pub fn draft(&self) -> Draft<'_> {
        Draft {
            text: &self.text,
            followers: self.followers,
            at: self.at,
            record: self.record,
            sentiment: self.sentiment,
            anger: self.anger,
            joy: self.joy,
            sadness: self.sadness,
            toxicity: self.toxicity,
        }
    }
}

/// A model refitted on one platform's finished cascades, and how it ranks them out of fold
/// beside the model it would replace.
pub struct Refit {
    pub model: ForecastModel,
    pub cascades: usize,
    /// Spearman of its out-of-fold forecasts with the final sizes.
    pub spearman: f64,
    /// Spearman of the replaced model's forecasts (at the platform's level) on the same posts.
    pub replaced_spearman: f64,
    /// The same two figures on each producer's posts, for every producer with at least
    /// [`REFIT_PRODUCER_MIN`] of them.
    pub producers: Vec<ProducerRanking>,
}

/// How a refit and the model it would replace rank one producer's cascades.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRanking {
    pub producer: String,
    pub cascades: usize,
    pub spearman: f64,
    pub replaced_spearman: f64,
    /// The 97.5th percentile of `spearman - replaced_spearman` over resamples of the
    /// producer's authors ([`REFIT_RESAMPLES`], paired): below 0, the refit ranks the
    /// producer's cascades worse beyond what the choice of cascades moves the figures by. The
    /// difference itself where the refit does not read lower.
    pub upper_difference: f64,
}

/// Resamples of a producer's authors that judge whether a refit ranks its cascades worse.
pub const REFIT_RESAMPLES: usize = 200;
/// Fewest authors resampled as wholes; with fewer, cascades are resampled one by one.
pub const MIN_RESAMPLED_AUTHORS: usize = 20;

impl ProducerRanking {
    /// Whether the refit ranks this producer's cascades worse than the replaced model does,
    /// surely: the whole 95% interval of the difference below 0. A refit no worse for a
    /// producer still reads lower on its cascades by chance about half of the time, so a veto
    /// on any drop at all kept a platform of two sizeable producers on its shipped model most
    /// of the time, whatever the refit was worth.
    pub fn worse(&self) -> bool {
        self.replaced_spearman.is_finite()
            && !(self.spearman.is_finite() && self.upper_difference >= 0.0)
    }
}

impl Refit {
    /// Whether it ranks the platform's cascades better than the shipped model (`replaced`)
    /// does, and no producer's worse: one producer's cascades, built to teach the model what
    /// moves them, cannot buy a model that ranks another's worse.
    pub fn better(&self) -> bool {
        self.spearman.is_finite()
            && (!self.replaced_spearman.is_finite() || self.spearman > self.replaced_spearman)
            && !self.producers.iter().any(ProducerRanking::worse)
    }
}

/// Refits the forecast on `platform`'s finished posts, folds by author; `replaced` is the model
/// forecasts use there now. `None` when the posts are too alike to rank (every final size the
/// same).
pub fn refit(platform: &str, posts: &[FinishedPost], replaced: &ForecastModel) -> Option<Refit> {
    let y: Vec<f64> = posts
        .iter()
        .map(|p| (p.final_shares as f64).ln_1p())
        .collect();
    if y.len() < 2 * REFIT_FOLDS as usize || y.iter().all(|v| *v == y[0]) {
        return None;
    }
    let prior = y.iter().sum::<f64>() / y.len() as f64;
    let drafts: Vec<Draft> = posts.iter().map(FinishedPost::draft).collect();
    let x: Vec<Vec<f64>> = drafts
        .iter()
        .map(|d| features(d, prior, replaced.shrink))
        .collect();
    let fold: Vec<usize> = posts
        .iter()
        .map(|p| fold_of(&p.author, "forecast", REFIT_FOLDS) as usize)
        .collect();
    let known: Vec<bool> = posts.iter().map(|p| p.record.cascades > 0).collect();
    let mut sorted = y.clone();
    sorted.sort_by(f64::total_cmp);
    let spec = FitSpec {
        version: format!(
            "{}+{platform}",
            replaced.version.split('+').next().unwrap_or("reach")
        ),
        data: format!(
            "{} finished {platform} cascades in the store, {REFIT_FOLDS} folds by author",
            posts.len()
        ),
        prior,
        shrink: replaced.shrink,
        viral_log: quantile_of(&sorted, 1.0 - VIRAL_SHARE),
        effects: None,
    };
    let fitted = fit_model(spec, &x, &y, &fold, &known);
    let before: Vec<f64> = drafts
        .iter()
        .map(|d| replaced.forecast(d, None, Some(prior)).log_shares)
        .collect();
    Some(Refit {
        spearman: spearman(&fitted.out_of_fold, &y),
        replaced_spearman: spearman(&before, &y),
        producers: by_producer(posts, &fitted.out_of_fold, &before, &y),
        model: fitted.model,
        cascades: posts.len(),
    })
}

/// The refit's out-of-fold forecasts (`refitted`) and the replaced model's (`replaced`) ranked
/// against the final sizes `y` on each producer's posts, for producers with at least
/// [`REFIT_PRODUCER_MIN`], in producer order.
fn by_producer(
    posts: &[FinishedPost],
    refitted: &[f64],
    replaced: &[f64],
    y: &[f64],
) -> Vec<ProducerRanking> {
    let mut rows: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, p) in posts.iter().enumerate() {
        rows.entry(p.producer.as_str()).or_default().push(i);
    }
    rows.into_iter()
        .filter(|(_, rows)| rows.len() >= REFIT_PRODUCER_MIN)
        .map(|(producer, rows)| {
            let pick = |v: &[f64]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let (refitted, replaced, y) = (pick(refitted), pick(replaced), pick(y));
            let (refit, before) = (spearman(&refitted, &y), spearman(&replaced, &y));
            // Resampled only where the refit reads lower: otherwise nothing to be sure of.
            let upper = if refit >= before {
                refit - before
            } else {
                let authors: Vec<&str> = rows.iter().map(|&i| posts[i].author.as_str()).collect();
                upper_difference(&authors, &refitted, &replaced, &y)
            };
            ProducerRanking {
                producer: producer.to_string(),
                cascades: rows.len(),
                spearman: refit,
                replaced_spearman: before,
                upper_difference: upper,
            }
        })
        .collect()
}

/// The 97.5th percentile of Spearman's of `refitted` minus that of `replaced` (both against
/// `y`) over [`REFIT_RESAMPLES`] resamples of the authors (`authors[i]` wrote post `i`), each
/// with all its posts and both forecasts of each (of the posts one by one, below
/// [`MIN_RESAMPLED_AUTHORS`] authors).
pub fn upper_difference(authors: &[&str], refitted: &[f64], replaced: &[f64], y: &[f64]) -> f64 {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<usize> = authors
        .iter()
        .map(|a| {
            let next = ids.len();
            *ids.entry(a).or_insert(next)
        })
        .collect();
    // Of a few authors, resamples repeat the same one or two and say nothing of the rest
    // (a producer of 200 cascades by three accounts would practically never be sure): each
    // cascade is resampled on its own instead.
    if ids.len() < MIN_RESAMPLED_AUTHORS {
        groups = (0..authors.len()).collect();
    }
    let difference = |rows: &[usize]| {
        let pick = |v: &[f64]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let y = pick(y);
        spearman(&pick(refitted), &y) - spearman(&pick(replaced), &y)
    };
    paired_bootstrap(&groups, REFIT_RESAMPLES, authors.len() as u64, &difference).2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Posts of 60 authors whose final shares follow their followers, the text saying nothing.
    fn audience_driven(n: usize) -> Vec<FinishedPost> {
        (0..n)
            .map(|i| {
                let followers = 10u64 * (1 + (i as u64 * 7919) % 5_000);
                FinishedPost {
                    author: format!("a{}", i % 60),
                    text: format!("post number {i} about nothing in particular"),
                    followers: Some(followers),
                    at: 1_700_000_000.0 + i as f64 * 600.0,
                    record: AuthorRecord::default(),
                    sentiment: 0.0,
                    toxicity: 0.0,
                    anger: 0.0,
                    joy: 0.0,
                    sadness: 0.0,
                    final_shares: followers / 100 + (i as u64 % 3),
                    producer: "source:main".to_string(),
                }
            })
            .collect()
    }

    #[test]
    fn a_platform_where_followers_drive_reach_gets_a_model_that_weighs_them() {
        let posts = audience_driven(600);
        let built_in = ForecastModel::built_in();
        let r = refit("bluesky", &posts, built_in).unwrap();
        assert!(r.spearman > 0.9, "{}", r.spearman);
        assert!(r.better(), "{} against {}", r.spearman, r.replaced_spearman);
        assert_eq!(r.cascades, 600);
        assert!(r.model.version.ends_with("+bluesky"), "{}", r.model.version);
        let audience = r.model.weight("log_followers").unwrap();
        assert!(audience.weight > 0.5, "{audience:?}");
        let effect = r.model.effect("audience").unwrap();
        assert!(effect.spearman_loss_without > 0.5, "{effect:?}");
        // Forecasts with the refitted model follow the audience.
        let mut small = posts[0].clone();
        small.followers = Some(100);
        let mut large = small.clone();
        large.followers = Some(50_000);
        let f = |p: &FinishedPost| r.model.forecast(&p.draft(), None, None).expected_shares;
        assert!(f(&large) > 10.0 * f(&small), "{} {}", f(&large), f(&small));
        // No author has a record yet: both kinds of residuals are every row's, and the model
        // is stored and read back whole.
        assert_eq!(r.model.residuals.known, r.model.residuals.new);
        let json = serde_json::to_string(&r.model).unwrap();
        let back: ForecastModel = serde_json::from_str(&json).unwrap();
        let read = back.forecast(&large.draft(), None, None).log_shares;
        assert!((read - r.model.forecast(&large.draft(), None, None).log_shares).abs() < 1e-9);
    }

    /// `n` posts of `producer` by 60 authors, half with a link; each author's record says
    /// their typical reach. `shares(author's typical ln, has a link)` is what became of each.
    fn produced(producer: &str, n: usize, shares: impl Fn(f64, bool) -> u64) -> Vec<FinishedPost> {
        (0..n)
            .map(|i| {
                let typical = 0.1 * (i % 60) as f64;
                let link = (i / 60) % 2 == 0;
                FinishedPost {
                    author: format!("{producer}-a{}", i % 60),
                    text: if link {
                        format!("post number {i} https://example.com/{i}")
                    } else {
                        format!("post number {i} without one")
                    },
                    followers: Some(1_000),
                    at: 1_700_000_000.0 + i as f64 * 600.0,
                    record: AuthorRecord {
                        cascades: 5,
                        sum_log: 5.0 * typical,
                        max_log: typical,
                        recent_sum: 5.0 * typical,
                        recent_weight: 5.0,
                    },
                    sentiment: 0.0,
                    toxicity: 0.0,
                    anger: 0.0,
                    joy: 0.0,
                    sadness: 0.0,
                    final_shares: shares(typical, link),
                    producer: producer.to_string(),
                }
            })
            .collect()
    }

    #[test]
    fn a_refit_that_ranks_one_producers_cascades_worse_is_not_adopted() {
        // The main feed's reach follows its authors' records, links aside; another producer's
        // follows its links alone, far above: a model refitted on both weighs links, which say
        // nothing of the main feed's posts.
        let main = produced("source:main", 600, |typical, _| {
            typical.exp_m1().round() as u64
        });
        let links = produced("key:b", 600, |_, link| if link { 5_000 } else { 1 });
        let both: Vec<FinishedPost> = main.iter().chain(&links).cloned().collect();
        let r = refit("twitter", &both, ForecastModel::built_in()).unwrap();
        assert!(
            r.spearman > r.replaced_spearman,
            "{} against {}: {:?}",
            r.spearman,
            r.replaced_spearman,
            r.producers
        );
        let ranking = |producer: &str| {
            r.producers
                .iter()
                .find(|p| p.producer == producer)
                .unwrap()
                .clone()
        };
        assert!(
            ranking("source:main").worse(),
            "{} against {}: {:?}",
            r.spearman,
            r.replaced_spearman,
            r.producers
        );
        assert!(
            !ranking("key:b").worse(),
            "{} against {}: {:?}",
            r.spearman,
            r.replaced_spearman,
            r.producers
        );
        assert!(
            !r.better(),
            "{} against {}: {:?}",
            r.spearman,
            r.replaced_spearman,
            r.producers
        );
        // One producer's cascades alone: its figures are the platform's, so the rule adds
        // nothing to the platform's.
        let alone = refit("twitter", &main, ForecastModel::built_in()).unwrap();
        assert_eq!(alone.producers.len(), 1);
        assert_eq!(alone.producers[0].spearman, alone.spearman);
        assert_eq!(
            alone.producers[0].replaced_spearman,
            alone.replaced_spearman
        );
        // A producer with fewer posts than the minimum is not judged apart.
        let few = produced(
            "key:c",
            REFIT_PRODUCER_MIN - 1,
            |_, link| if link { 9 } else { 1 },
        );
        let r = refit(
            "twitter",
            &main.iter().chain(&few).cloned().collect::<Vec<_>>(),
            ForecastModel::built_in(),
        )
        .unwrap();
        assert!(r.producers.iter().all(|p| p.producer == "source:main"));
    }

    /// A producer vetoes a refit only when it ranks the producer's cascades worse beyond
    /// chance: a small drop among many authors' cascades does not, a reversed ranking does.
    #[test]
    fn only_a_drop_beyond_chance_is_a_producers_veto() {
        let posts = produced("key:b", 600, |typical, _| typical.exp_m1().round() as u64);
        let y: Vec<f64> = posts
            .iter()
            .map(|p| (p.final_shares as f64).ln_1p())
            .collect();
        // The replaced model ranks by the truth with noise; the refit alike, with other noise.
        let noisy = |seed: u64| -> Vec<f64> {
            y.iter()
                .enumerate()
                .map(|(i, v)| {
                    // splitmix64 of the post and the seed.
                    let mut h =
                        (i as u64 + 1).wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    h ^= h >> 31;
                    v + ((h >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0
                })
                .collect()
        };
        let replaced = noisy(1);
        let ranking = |refitted: &[f64]| by_producer(&posts, refitted, &replaced, &y).remove(0);
        let same = ranking(&replaced);
        assert_eq!(same.upper_difference, 0.0);
        assert!(!same.worse());
        let (mut worse_by_chance, mut vetoed) = (0, 0);
        for seed in 2..12 {
            let r = ranking(&noisy(seed));
            worse_by_chance += usize::from(r.spearman < r.replaced_spearman);
            vetoed += usize::from(r.worse());
        }
        assert!(worse_by_chance > 0, "the noise never lowered the figure");
        assert_eq!(
            vetoed, 0,
            "a refit as good as the replaced model was vetoed"
        );
        let reversed: Vec<f64> = replaced.iter().map(|v| -v).collect();
        let r = ranking(&reversed);
        assert!(r.worse() && r.upper_difference < 0.0, "{r:?}");
        // Three accounts' cascades: resampled one by one, a reversed ranking is still sure.
        let three: Vec<&str> = (0..posts.len()).map(|i| ["a", "b", "c"][i % 3]).collect();
        let noisy_truth = noisy(99);
        assert!(upper_difference(&three, &reversed, &noisy_truth, &y) < 0.0);
        assert!(upper_difference(&three, &noisy_truth, &noisy_truth, &y) == 0.0);
    }

    #[test]
    fn posts_that_all_end_alike_give_no_model() {
        let mut posts = audience_driven(100);
        for p in &mut posts {
            p.final_shares = 4;
        }
        assert!(refit("bluesky", &posts, ForecastModel::built_in()).is_none());
        assert!(refit("bluesky", &posts[..3], ForecastModel::built_in()).is_none());
    }
}
