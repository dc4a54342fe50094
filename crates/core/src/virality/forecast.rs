//! A post's reach before anyone has shared it: the expected final shares from who posts it
//! (their track record in Pulse's store, their audience) and, much more weakly, from what it
//! says and when. A linear model in log space (ridge, fitted offline by `pulse eval forecast`),
//! with its interval and viral probability read from the residuals it left on held-out folds,
//! separately for authors with a track record and for new ones.
//!
//! Every input is something known before the first share; nothing here reads engagements.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::models::Analysis;

/// The fitted model shipped with Pulse (written by `pulse eval forecast --write-model`).
const BUILT_IN: &str = include_str!("forecast.json");

/// A draft's cascades counted towards its author's record: at most this many, the most recent.
pub const RECORD_HISTORY: i64 = 200;

/// What Pulse knows of an author on one platform: their cascades' shares, final for those
/// finished, so far for those still growing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthorRecord {
    pub cascades: u64,
    /// Sum over them of ln(1 + shares).
    pub sum_log: f64,
    /// Largest ln(1 + shares).
    pub max_log: f64,
    /// Sum of ln(1 + shares) weighted by [`RECENT_HALF_LIFE_S`] of each cascade's age at the
    /// draft's time, and the sum of those weights.
    #[serde(default)]
    pub recent_sum: f64,
    #[serde(default)]
    pub recent_weight: f64,
}

/// The half-life of a cascade's weight in [`AuthorRecord::recent_mean`]. An author's recent
/// reach says more of their next post than their whole history: on Twitter15, among authors
/// with a record, adding it to the mean, largest and count ranks final sizes at Spearman 0.64
/// against 0.59 on the latest 30%, 0.55 against 0.52 over folds by author (half-lives of 3 to
/// 30 days all within 0.01 of that).
pub const RECENT_HALF_LIFE_S: f64 = 14.0 * 86_400.0;

impl AuthorRecord {
    /// Counts a cascade of `shares` posted at the draft's own time.
    pub fn add(&mut self, shares: u64) {
        self.add_aged(shares, 0.0);
    }

    /// Counts a cascade of `shares` posted `age` seconds before the draft.
    pub fn add_aged(&mut self, shares: u64, age: f64) {
        let y = (shares as f64).ln_1p();
        self.cascades += 1;
        self.sum_log += y;
        self.max_log = if self.cascades == 1 {
            y
        } else {
            self.max_log.max(y)
        };
        let w = 0.5f64.powf(age.max(0.0) / RECENT_HALF_LIFE_S);
        self.recent_sum += w * y;
        self.recent_weight += w;
    }

    /// The mean ln(1 + shares), each cascade weighted by its age; `None` without any (or with
    /// only cascades so old their weight vanished).
    pub fn recent_mean(&self) -> Option<f64> {
        (self.cascades > 0 && self.recent_weight > 0.0)
            .then(|| self.recent_sum / self.recent_weight)
    }

    /// exp of the mean ln(1 + final shares), minus 1: what the author's cascades typically
    /// reach; `None` without any.
    pub fn typical_shares(&self) -> Option<f64> {
        (self.cascades > 0).then(|| (self.sum_log / self.cascades as f64).exp_m1())
    }

    /// The record of the posts among `entries` (shares, Unix seconds posted) posted before
    /// `at`; one posted within a millisecond of it is taken for the post itself, whose time went
    /// through the store's microseconds and back.
    pub fn posted_before(entries: &[(u64, f64)], at: f64) -> Self {
        let mut record = Self::default();
        for &(shares, posted) in entries {
            if posted < at - 1e-3 {
                record.add_aged(shares, at - posted);
            }
        }
        record
    }

    /// The record's mean log size shrunk towards `prior` by `k` pseudo-cascades.
    pub fn shrunk_mean(&self, prior: f64, k: f64) -> f64 {
        (self.sum_log + k * prior) / (self.cascades as f64 + k)
    }
}

/// A post that has not been shared yet, with what its analysis found.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    pub text: &'a str,
    pub followers: Option<u64>,
    /// Unix seconds it is (or will be) posted at.
    pub at: f64,
    pub record: AuthorRecord,
    pub sentiment: f64,
    pub anger: f64,
    pub joy: f64,
    pub sadness: f64,
    pub toxicity: f64,
}

impl<'a> Draft<'a> {
    pub fn new(
        text: &'a str,
        followers: Option<u64>,
        at: f64,
        record: AuthorRecord,
        analysis: &Analysis,
    ) -> Self {
        Draft {
            text,
            followers,
            at,
            record,
            sentiment: f64::from(analysis.sentiment_score.get()),
            anger: f64::from(analysis.emotions.anger.get()),
            joy: f64::from(analysis.emotions.joy.get()),
            sadness: f64::from(analysis.emotions.sadness.get()),
            toxicity: f64::from(analysis.toxicity.get()),
        }
    }
}

/// The groups a forecast's drivers are reported by, each with the features it is made of.
pub const GROUPS: [(&str, &[&str]); 9] = [
    (
        "author track record",
        &[
            "record_mean",
            "record_max",
            "record_count",
            "record_known",
            "record_recent",
        ],
    ),
    ("audience", &["log_followers", "followers_known"]),
    ("hour", &["hour_sin", "hour_cos"]),
    ("length", &["log_chars", "words"]),
    ("link", &["links"]),
    ("hashtags", &["hashtags"]),
    ("mentions", &["mentions"]),
    ("sentiment", &["sentiment", "toxicity"]),
    ("emotion", &["anger", "joy", "sadness"]),
];

/// Every feature's name, in the order [`features`] writes them.
pub fn feature_names() -> Vec<&'static str> {
    GROUPS.iter().flat_map(|(_, f)| f.iter().copied()).collect()
}

/// The features of `draft`, in [`feature_names`] order; `prior` and `shrink` as the model's.
pub fn features(draft: &Draft, prior: f64, shrink: f64) -> Vec<f64> {
    let r = &draft.record;
    let known = r.cascades > 0;
    let hour = (draft.at.rem_euclid(86_400.0)) / 3_600.0;
    let angle = std::f64::consts::TAU * hour / 24.0;
    let text = Surface::of(draft.text);
    vec![
        r.shrunk_mean(prior, shrink) - prior,
        if known { r.max_log - prior } else { 0.0 },
        (r.cascades as f64).ln_1p(),
        f64::from(u8::from(known)),
        r.recent_mean().map_or(0.0, |m| m - prior),
        draft.followers.map_or(0.0, |f| (f as f64).ln_1p()),
        f64::from(u8::from(draft.followers.is_some())),
        angle.sin(),
        angle.cos(),
        (text.chars as f64).ln_1p(),
        text.words as f64,
        text.links as f64,
        text.hashtags as f64,
        text.mentions as f64,
        draft.sentiment,
        draft.toxicity,
        draft.anger,
        draft.joy,
        draft.sadness,
    ]
}

/// What a text's surface shows: links, hashtags, mentions and length without them.
#[derive(Debug, Default, PartialEq)]
pub struct Surface {
    pub chars: usize,
    pub words: usize,
    pub links: usize,
    pub hashtags: usize,
    pub mentions: usize,
}

impl Surface {
    pub fn of(text: &str) -> Surface {
        let mut s = Surface::default();
        for word in text.split_whitespace() {
            let lower = word.to_ascii_lowercase();
            // Datasets that strip links leave the token `URL` in their place.
            if lower.starts_with("http://") || lower.starts_with("https://") || word == "URL" {
                s.links += 1;
                continue;
            }
            if word.len() > 1 && word.starts_with('#') {
                s.hashtags += 1;
            } else if word.len() > 1 && word.starts_with('@') {
                s.mentions += 1;
            }
            s.words += 1;
            s.chars += word.chars().count();
        }
        s
    }
}

/// One feature's place in the model: standardised by `mean` and `scale`, then weighted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Weight {
    pub name: String,
    pub mean: f64,
    pub scale: f64,
    pub weight: f64,
}

/// Residual quantiles (truth minus forecast, log space) at [`LEVELS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Residuals {
    pub known: Vec<f64>,
    pub new: Vec<f64>,
}

/// The levels residual quantiles are kept at: every 5% and, for the tails a viral threshold
/// lies in, 1%, 2%, 98% and 99%.
pub const LEVELS: [f64; 23] = [
    0.01, 0.02, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70,
    0.75, 0.80, 0.85, 0.90, 0.95, 0.98, 0.99,
];

/// A group's effect measured on held-out folds: how much worse the forecast ranks final
/// sizes (Spearman) with that group left out of the fit.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldOutEffect {
    pub group: String,
    pub spearman_loss_without: f64,
}

/// The fitted forecast model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForecastModel {
    pub version: String,
    /// What it was fitted on.
    pub data: String,
    /// Mean ln(1 + final shares) of the training cascades: an author's record is shrunk to it.
    pub prior: f64,
    /// Pseudo-cascades of that shrinkage.
    pub shrink: f64,
    pub intercept: f64,
    pub weights: Vec<Weight>,
    pub residuals: Residuals,
    /// ln(1 + shares) from which a cascade counts as viral when the platform has no learned
    /// threshold (the top 10% of the training cascades).
    pub viral_log: f64,
    /// Quantiles at [`LEVELS`] of the held-out forecasts (log), for the 0-100 score.
    pub forecast_quantiles: Vec<f64>,
    pub effects: Vec<HeldOutEffect>,
}

/// One group's part in a forecast: the factor it multiplied the expected shares by, against a
/// draft at the training average.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Driver {
    pub group: String,
    /// exp(contribution in log space); 1 is no effect.
    pub factor: f64,
    /// The group's held-out effect (see [`HeldOutEffect`]); null when not measured.
    pub spearman_loss_without: Option<f64>,
}

/// A forecast of one draft.
#[derive(Debug, Clone, Serialize)]
pub struct Forecast {
    /// Expected ln(1 + final shares).
    pub log_shares: f64,
    pub expected_shares: f64,
    pub low: f64,
    pub high: f64,
    pub viral_probability: f64,
    pub score: u8,
    /// Whether Pulse had no finished cascade of this author: the forecast stands on audience
    /// and text alone.
    pub new_author: bool,
    pub drivers: Vec<Driver>,
}

impl ForecastModel {
    /// The model shipped with Pulse.
    pub fn built_in() -> &'static ForecastModel {
        static MODEL: std::sync::OnceLock<ForecastModel> = std::sync::OnceLock::new();
        MODEL.get_or_init(|| {
            serde_json::from_str(BUILT_IN).expect("the built-in forecast model parses")
        })
    }

    /// Whether its weights are [`feature_names`], in order.
    pub fn reads_these_features(&self) -> bool {
        self.weights
            .iter()
            .map(|w| w.name.as_str())
            .eq(feature_names())
    }

    /// The weight of feature `name`.
    pub fn weight(&self, name: &str) -> Option<&Weight> {
        self.weights.iter().find(|w| w.name == name)
    }

    /// The held-out effect of feature group `group`.
    pub fn effect(&self, group: &str) -> Option<&HeldOutEffect> {
        self.effects.iter().find(|e| e.group == group)
    }

    /// `<version>:<first 12 hex digits of the SHA-256 of its JSON>`.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let hash = Sha256::digest(&json);
        format!("{}:{}", self.version, crate::models::hex::hex(&hash[..6]))
    }

    /// Each feature's contribution (log space) to the forecast of `x`.
    fn contributions(&self, x: &[f64]) -> Vec<f64> {
        self.weights
            .iter()
            .zip(x)
            .map(|(w, v)| {
                if w.scale > 0.0 {
                    w.weight * (v - w.mean) / w.scale
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The expected ln(1 + final shares) of features `x`.
    pub fn predict_log(&self, x: &[f64]) -> f64 {
        self.intercept + self.contributions(x).iter().sum::<f64>()
    }

    /// The forecast of `draft`; `viral_shares` is the platform's learned viral threshold when
    /// it has one; `level` the mean ln(1 + final shares) of the platform's finished cascades
    /// when the store has enough of them.
    ///
    /// The model was fitted on one platform's cascades, whose sizes need not be another's. On
    /// a platform of its own level the forecast moves by the difference of the two means, and
    /// an author's record is read against the platform's mean (the features are already
    /// relative to it): the weights say how far above or below the typical cascade a post
    /// lands, the level says where the typical cascade is.
    pub fn forecast(
        &self,
        draft: &Draft,
        viral_shares: Option<f64>,
        level: Option<f64>,
    ) -> Forecast {
        let level = level.filter(|l| l.is_finite()).unwrap_or(self.prior);
        let shift = level - self.prior;
        let x = features(draft, level, self.shrink);
        let contributions = self.contributions(&x);
        let log_shares = self.intercept + contributions.iter().sum::<f64>() + shift;
        let new_author = draft.record.cascades == 0;
        let residuals = if new_author {
            &self.residuals.new
        } else {
            &self.residuals.known
        };
        let shares = |log: f64| log.exp_m1().max(0.0);
        let viral_log = viral_shares.map_or(self.viral_log, |s| s.ln_1p());
        let viral_probability = reach_probability(residuals, log_shares, viral_log);
        let (low, high) = interval(residuals, log_shares);
        let names = feature_names();
        let drivers = GROUPS
            .iter()
            .map(|(group, members)| {
                let sum: f64 = names
                    .iter()
                    .zip(&contributions)
                    .filter(|(n, _)| members.contains(n))
                    .map(|(_, c)| c)
                    .sum();
                Driver {
                    group: group.to_string(),
                    factor: sum.exp(),
                    spearman_loss_without: self.effect(group).map(|e| e.spearman_loss_without),
                }
            })
            .collect();
        Forecast {
            log_shares,
            expected_shares: shares(log_shares),
            low: shares(low),
            high: shares(high),
            viral_probability,
            score: (100.0 * cdf(&self.forecast_quantiles, log_shares - shift)).round() as u8,
            new_author,
            drivers,
        }
    }
}

/// The central share of outcomes a forecast's interval holds.
pub const INTERVAL_LEVEL: f64 = 0.8;

/// The interval (log space) around the forecast `log_shares` that its `residuals` put
/// [`INTERVAL_LEVEL`] of outcomes in.
pub fn interval(residuals: &[f64], log_shares: f64) -> (f64, f64) {
    let tail = (1.0 - INTERVAL_LEVEL) / 2.0;
    (
        log_shares + quantile(residuals, tail),
        log_shares + quantile(residuals, 1.0 - tail),
    )
}

/// The probability that an outcome forecast at `log_shares` with `residuals` reaches
/// `threshold_log`.
pub fn reach_probability(residuals: &[f64], log_shares: f64, threshold_log: f64) -> f64 {
    1.0 - cdf(residuals, threshold_log - log_shares)
}

/// The value at `level` of quantiles kept at [`LEVELS`] (linear between them, the end ones
/// beyond them).
pub fn quantile(q: &[f64], level: f64) -> f64 {
    let n = q.len().min(LEVELS.len());
    if n == 0 {
        return 0.0;
    }
    let i = LEVELS[..n].partition_point(|&l| l < level);
    if i == 0 {
        return q[0];
    }
    if i >= n {
        return q[n - 1];
    }
    let (l0, l1) = (LEVELS[i - 1], LEVELS[i]);
    q[i - 1] + (q[i] - q[i - 1]) * (level - l0) / (l1 - l0)
}

/// The probability below `value` of the distribution with quantiles `q` at [`LEVELS`]: linear
/// between them; beyond the end ones, the last step's slope carried on to 0 and 1.
pub fn cdf(q: &[f64], value: f64) -> f64 {
    let n = q.len().min(LEVELS.len());
    if n < 2 {
        return 0.5;
    }
    if value <= q[0] {
        let slope = (LEVELS[1] - LEVELS[0]) / (q[1] - q[0]).max(1e-6);
        return (LEVELS[0] - slope * (q[0] - value)).max(0.0);
    }
    if value >= q[n - 1] {
        let slope = (LEVELS[n - 1] - LEVELS[n - 2]) / (q[n - 1] - q[n - 2]).max(1e-6);
        return (LEVELS[n - 1] + slope * (value - q[n - 1])).min(1.0);
    }
    let i = q[..n].partition_point(|&x| x <= value).clamp(1, n - 1);
    let (a, b) = (q[i - 1], q[i]);
    let t = if b > a { (value - a) / (b - a) } else { 0.5 };
    LEVELS[i - 1] + (LEVELS[i] - LEVELS[i - 1]) * t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(record: AuthorRecord) -> Draft<'static> {
        Draft {
            text: "big news today #launch URL",
            followers: None,
            at: 1_420_070_400.0,
            record,
            sentiment: 0.2,
            anger: 0.1,
            joy: 0.5,
            sadness: 0.1,
            toxicity: 0.05,
        }
    }

    #[test]
    fn of_two_authors_with_the_same_cascades_the_one_whose_large_ones_are_recent_ranks_higher() {
        let day = 86_400.0;
        let at = 1_420_070_400.0;
        // Three small cascades and one of 500 shares, the large one 2 days or 60 days ago.
        let entries = |large_age: f64| {
            let mut e = vec![
                (3, at - 30.0 * day),
                (5, at - 40.0 * day),
                (4, at - 50.0 * day),
            ];
            e.push((500, at - large_age * day));
            e
        };
        let recent = AuthorRecord::posted_before(&entries(2.0), at);
        let old = AuthorRecord::posted_before(&entries(60.0), at);
        assert_eq!(
            (recent.cascades, recent.sum_log),
            (old.cascades, old.sum_log)
        );
        assert!(recent.recent_mean().unwrap() > old.recent_mean().unwrap() + 1.0);
        let m = ForecastModel::built_in();
        let f = |r| m.forecast(&draft(r), None, None).expected_shares;
        assert!(f(recent) > f(old), "{} {}", f(recent), f(old));
        // A cascade posted after the draft is not in its record.
        let later = AuthorRecord::posted_before(&[(900, at + day)], at);
        assert_eq!(later, AuthorRecord::default());
        assert_eq!(later.recent_mean(), None);
    }

    #[test]
    fn a_model_fitted_on_other_features_is_told_apart() {
        let mut m = ForecastModel::built_in().clone();
        assert!(m.reads_these_features());
        m.weights.retain(|w| w.name != "record_recent");
        assert!(!m.reads_these_features());
    }

    #[test]
    fn the_built_in_model_has_a_weight_for_every_feature() {
        let m = ForecastModel::built_in();
        let names: Vec<&str> = m.weights.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, feature_names());
        assert_eq!(m.residuals.known.len(), LEVELS.len());
        assert_eq!(m.forecast_quantiles.len(), LEVELS.len());
    }

    #[test]
    fn a_model_read_back_from_its_json_is_the_same_model_with_the_same_id() {
        let m = ForecastModel::built_in();
        let text = serde_json::to_string_pretty(m).unwrap();
        assert_eq!(
            text.trim_end(),
            BUILT_IN.trim_end(),
            "the shipped file is the model's JSON"
        );
        let again: ForecastModel = serde_json::from_str(&text).unwrap();
        assert_eq!(
            serde_json::to_string(&again).unwrap(),
            serde_json::to_string(m).unwrap()
        );
        assert_eq!(again.id(), m.id());
    }

    #[test]
    fn an_author_whose_cascades_spread_is_forecast_above_one_whose_did_not() {
        let m = ForecastModel::built_in();
        let mut big = AuthorRecord::default();
        let mut small = AuthorRecord::default();
        for _ in 0..6 {
            big.add(2_000);
            small.add(20);
        }
        let a = m.forecast(&draft(big), None, None);
        let b = m.forecast(&draft(small), None, None);
        let new = m.forecast(&draft(AuthorRecord::default()), None, None);
        assert!(a.expected_shares > new.expected_shares);
        assert!(new.expected_shares > b.expected_shares);
        assert!(a.viral_probability > b.viral_probability);
        assert!(new.new_author && !a.new_author);
        for f in [&a, &b, &new] {
            assert!(
                f.low <= f.expected_shares && f.expected_shares <= f.high,
                "{f:?}"
            );
            assert!((0.0..=1.0).contains(&f.viral_probability));
            assert!(f.score <= 100);
        }
        let record = |f: &Forecast| {
            f.drivers
                .iter()
                .find(|d| d.group == "author track record")
                .unwrap()
                .factor
        };
        assert!(record(&a) > 1.0 && record(&b) < 1.0);
    }

    #[test]
    fn on_a_platform_of_smaller_cascades_the_forecast_is_set_to_its_level() {
        let m = ForecastModel::built_in();
        // A platform whose cascades typically reach 3 shares, an author typical of it, and one
        // whose cascades reach ten times that.
        let level = 3f64.ln_1p();
        let mut typical = AuthorRecord::default();
        let mut strong = AuthorRecord::default();
        for _ in 0..8 {
            typical.add(3);
            strong.add(30);
        }
        let here = |r: AuthorRecord| m.forecast(&draft(r), Some(40.0), Some(level));
        let (t, s, new) = (here(typical), here(strong), here(AuthorRecord::default()));
        // A new author is forecast at the platform's typical cascade, not the training data's.
        let away = m.forecast(&draft(AuthorRecord::default()), Some(40.0), None);
        assert!(new.expected_shares < 10.0, "{new:?}");
        assert!(
            away.expected_shares > 10.0 * new.expected_shares,
            "{away:?}"
        );
        // The typical author of the platform is forecast near a new one there (a little above:
        // having a record at all counts for something), not far below as the training data's
        // level would put them; the strong one is above both.
        assert!((t.log_shares - new.log_shares).abs() < 0.5, "{t:?} {new:?}");
        assert!(s.expected_shares > t.expected_shares);
        assert!(s.viral_probability > t.viral_probability);
        // The score ranks the post among the model's forecasts, whatever the level.
        assert_eq!(
            here(AuthorRecord::default()).score,
            m.forecast(&draft(AuthorRecord::default()), None, None)
                .score
        );
    }

    #[test]
    fn a_lower_viral_threshold_makes_going_viral_likelier() {
        let m = ForecastModel::built_in();
        let d = draft(AuthorRecord::default());
        assert!(
            m.forecast(&d, Some(10.0), None).viral_probability
                > m.forecast(&d, Some(10_000.0), None).viral_probability
        );
    }

    #[test]
    fn the_surface_counts_links_tags_and_mentions_apart_from_words() {
        let s = Surface::of("@ana look #news https://x.co/a URL done");
        assert_eq!(
            s,
            Surface {
                chars: 4 + 4 + 5 + 4,
                words: 4,
                links: 2,
                hashtags: 1,
                mentions: 1
            }
        );
    }

    #[test]
    fn quantiles_and_their_distribution_agree() {
        let q: Vec<f64> = LEVELS.iter().map(|l| 10.0 * l).collect();
        assert!((cdf(&q, 5.0) - 0.5).abs() < 1e-9);
        assert!((quantile(&q, 0.9) - 9.0).abs() < 1e-9);
        assert!((quantile(&q, 0.125) - 1.25).abs() < 1e-9);
        assert!(cdf(&q, -100.0) == 0.0 && cdf(&q, 100.0) == 1.0);
        assert!(cdf(&q, 0.05) < 0.01 && cdf(&q, 0.05) > 0.0);
        for level in [0.01, 0.03, 0.5, 0.97, 0.99] {
            assert!(
                (cdf(&q, quantile(&q, level)) - level).abs() < 1e-9,
                "{level}"
            );
        }
    }
}
