//! The virality engine: live share cascades per post, early prediction of their final size
//! with an interval, the calibrated probability of going viral, and deep versus broad
//! spreading.
//!
//! - [`cascade`]: the share tree of a post from `via` links; depth, breadth and structural
//!   virality in O(n);
//! - [`growth`]: the final size from the growth curve so far (median regression per age,
//!   fitted on real cascades);
//! - [`seismic`]: the self-exciting point process, for the infectiousness it reports and as
//!   the predictor of calibrations without a growth model;
//! - [`calibration`]: residual quantiles that turn a prediction into a calibrated point,
//!   interval and probability, plus the built-in virality thresholds;
//! - [`thresholds`]: the thresholds learned per producer and platform;
//! - [`fit`]: fitting all of the above on finished cascades;
//! - [`dynamics`]: deep / broad / hybrid from structural virality;
//! - [`momentum`]: engagement velocity and acceleration.
//!
//! [`Tracker`] holds one post's live state; [`Model`] scores it. The actor that feeds
//! trackers from committed engagements lives in `actors::virality`.

pub mod calibration;
pub mod cascade;
pub mod dynamics;
pub mod fit;
pub mod forecast;
pub mod forecast_fit;
pub mod growth;
pub mod momentum;
pub mod rank;
pub mod recent;
pub mod ridge;
pub mod seismic;
pub mod thresholds;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::models::{EngagementKind, Platform, SentimentLabel};
use calibration::{Calibrated, Calibration};
use cascade::{ShareTree, Structure};
use dynamics::Dynamics;
use momentum::{Momentum, Rates};
use seismic::RawPrediction;

/// What is known of a post (its event may arrive after its first engagements).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostMeta {
    pub platform: Option<Platform>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub sentiment: Option<SentimentLabel>,
    pub hashtags: Vec<String>,
    pub author_followers: u64,
    /// Unix seconds.
    pub created_at: f64,
    /// The topics the post matched, by id.
    pub topics: Vec<i64>,
    /// Who stored the post (see `models::producer`): its cascade is judged against the
    /// threshold learned from that producer's cascades.
    pub producer: Option<String>,
}

/// One post's live cascade.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub meta: Option<PostMeta>,
    /// Earliest and latest engagement times seen, Unix seconds.
    pub first_at: f64,
    pub last_at: f64,
    pub tree: ShareTree,
    pub likes: u64,
    pub comments: u64,
    pub views: u64,
    pub momentum: Momentum,
}

/// Unix seconds of a timestamp, with microseconds.
pub fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// The timestamp of Unix seconds (saturating).
pub fn from_unix_seconds(s: f64) -> DateTime<Utc> {
    let micros = (s * 1e6).round();
    let micros = if micros.is_finite() {
        micros.clamp(-8.0e18, 8.0e18) as i64
    } else {
        0
    };
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl Tracker {
    /// An empty cascade keeping at most `max_shares` shares in its tree.
    pub fn new(max_shares: usize) -> Self {
        Tracker {
            meta: None,
            first_at: f64::INFINITY,
            last_at: f64::NEG_INFINITY,
            tree: ShareTree::new(max_shares),
            likes: 0,
            comments: 0,
            views: 0,
            momentum: Momentum::default(),
        }
    }

    /// When the cascade starts: the post's creation, else its first engagement.
    pub fn origin(&self) -> f64 {
        match &self.meta {
            Some(m) => m.created_at,
            None if self.first_at.is_finite() => self.first_at,
            None => 0.0,
        }
    }

    /// The time predictions are made at: the latest event (the post's creation when it has
    /// no engagement yet).
    pub fn observed_at(&self) -> f64 {
        if self.last_at.is_finite() {
            self.last_at.max(self.origin())
        } else {
            self.origin()
        }
    }

    /// Adds one engagement event; returns false for a share seen before.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        id: Option<&str>,
        kind: EngagementKind,
        at: f64,
        followers: Option<u64>,
        via: Option<&str>,
        count: u32,
        momentum_window_min: i64,
    ) -> bool {
        if !at.is_finite() {
            return false;
        }
        let count = count.max(1);
        match kind {
            EngagementKind::Share => {
                if !self.tree.add(id, via, at, followers, count) {
                    return false;
                }
            }
            EngagementKind::Like => self.likes = self.likes.saturating_add(u64::from(count)),
            EngagementKind::Comment => {
                self.comments = self.comments.saturating_add(u64::from(count))
            }
            EngagementKind::View => self.views = self.views.saturating_add(u64::from(count)),
        }
        self.first_at = self.first_at.min(at);
        self.last_at = self.last_at.max(at);
        self.momentum.add(at, u64::from(count), momentum_window_min);
        true
    }
}

/// Scores trackers: the calibration, the thresholds in force and the output options.
#[derive(Debug, Clone)]
pub struct Model {
    pub calibration: Arc<Calibration>,
    /// Thresholds learned from this installation's history, by producer and platform
    /// (override the calibration's).
    pub thresholds: thresholds::Learned,
    /// Coverage of the confidence interval.
    pub interval_level: f64,
    /// Probability at or above which a post is classified viral.
    pub classify_probability: f64,
    /// A fixed threshold for every platform, when positive.
    pub fixed_threshold: f64,
    hash: String,
}

/// Lineage of a prediction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Lineage {
    pub name: String,
    pub version: String,
    pub params_hash: String,
}

/// Engagement counts of a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Counts {
    pub shares: u64,
    pub likes: u64,
    pub comments: u64,
    pub views: u64,
}

/// A confidence interval on the final share count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
    pub level: f64,
}

/// The virality of a post at one observation time.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Virality {
    pub observed_at: DateTime<Utc>,
    pub age_secs: f64,
    pub counts: Counts,
    /// Followers of every sharer.
    pub reach: u64,
    pub structure: Structure,
    pub momentum: Rates,
    pub virality_score: f64,
    pub virality_probability: f64,
    /// `yes` or `no`.
    #[schema(value_type = String, pattern = "^(yes|no)$")]
    pub viral_classification: &'static str,
    pub confidence_interval: Interval,
    pub predicted_final_shares: f64,
    /// Final share count that counts as viral for this post: its producer's threshold on its
    /// platform (see [`thresholds`]).
    pub threshold: f64,
    pub virality_dynamics: Dynamics,
    pub model_lineage: Lineage,
    /// The process's estimated infectiousness (mean direct reshares per share).
    pub branching: f64,
}

/// [`Virality::viral_classification`] of a cascade classified viral or not.
pub fn viral_classification(viral: bool) -> &'static str {
    if viral {
        "yes"
    } else {
        "no"
    }
}

fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl Model {
    /// A model from a calibration.
    pub fn new(
        calibration: Arc<Calibration>,
        interval_level: f64,
        classify_probability: f64,
    ) -> Model {
        let mut model = Model {
            calibration,
            thresholds: thresholds::Learned::default(),
            interval_level,
            classify_probability,
            fixed_threshold: 0.0,
            hash: String::new(),
        };
        model.rehash();
        model
    }

    /// The built-in calibration with default options.
    pub fn built_in() -> Model {
        Model::new(Arc::new(Calibration::built_in()), 0.9, 0.5)
    }

    /// Replaces the learned thresholds.
    pub fn set_thresholds(&mut self, thresholds: thresholds::Learned, fixed: f64) {
        self.thresholds = thresholds;
        self.fixed_threshold = fixed;
        self.rehash();
    }

    fn rehash(&mut self) {
        let extra = serde_json::to_string(&(
            &self.thresholds,
            self.fixed_threshold,
            self.interval_level,
            self.classify_probability,
        ))
        .unwrap_or_default();
        let base = self.calibration.params_hash();
        self.hash = format!(
            "{:016x}",
            calibration::fnv1a(format!("{base}/{extra}").as_bytes())
        );
    }

    /// The virality threshold of `producer`'s posts on a platform (the platform's, for a post
    /// of no known producer).
    pub fn threshold(&self, platform: Option<Platform>, producer: Option<&str>) -> f64 {
        if self.fixed_threshold > 0.0 {
            return self.fixed_threshold;
        }
        let name = platform.map(Platform::as_str);
        name.and_then(|p| self.thresholds.get(p, producer))
            .unwrap_or_else(|| self.calibration.threshold(name))
            .max(1.0)
    }

    /// Lineage of this model's predictions.
    pub fn lineage(&self) -> Lineage {
        Lineage {
            name: self.calibration.model.clone(),
            version: self.calibration.version.clone(),
            params_hash: self.hash.clone(),
        }
    }

    /// The uncalibrated prediction for a tracker at `at` (Unix seconds).
    pub fn raw(&self, tracker: &Tracker, at: f64) -> RawPrediction {
        let followers = tracker.meta.as_ref().map_or(0, |m| m.author_followers);
        let tracked: u64 = tracker
            .tree
            .nodes()
            .iter()
            .map(|n| u64::from(n.weight))
            .sum();
        let untracked = tracker.tree.shares().saturating_sub(tracked);
        self.calibration.raw(
            tracker.origin(),
            followers,
            tracker.tree.nodes(),
            untracked,
            at,
            None,
        )
    }

    /// Calibrates a raw prediction for `producer`'s post on `platform`.
    pub fn calibrate(
        &self,
        raw: &RawPrediction,
        platform: Option<Platform>,
        producer: Option<&str>,
    ) -> Calibrated {
        self.calibration
            .apply(raw, self.threshold(platform, producer), self.interval_level)
    }

    /// Scores a tracker at its latest event, with `momentum_window_min` for its rates.
    pub fn score(&self, tracker: &Tracker, momentum_window_min: i64) -> Virality {
        let at = tracker.observed_at();
        let platform = tracker.meta.as_ref().and_then(|m| m.platform);
        let producer = tracker.meta.as_ref().and_then(|m| m.producer.as_deref());
        let raw = self.raw(tracker, at);
        let c = self.calibrate(&raw, platform, producer);
        let structure = tracker.tree.structure();
        let shares = tracker.tree.shares();
        let size_part = ((1.0 + c.predicted_final).ln() / (1.0 + c.threshold).ln()).min(1.0);
        let score = 100.0 * (0.5 * size_part.max(0.0) + 0.5 * c.probability);
        Virality {
            observed_at: from_unix_seconds(at),
            age_secs: round_to(raw.age_s, 3),
            counts: Counts {
                shares,
                likes: tracker.likes,
                comments: tracker.comments,
                views: tracker.views,
            },
            reach: tracker.tree.reach(),
            structure: Structure {
                structural_virality: round_to(structure.structural_virality, 4),
                ..structure
            },
            momentum: {
                let r = tracker.momentum.rates(momentum_window_min);
                Rates {
                    velocity: round_to(r.velocity, 4),
                    acceleration: round_to(r.acceleration, 4),
                }
            },
            virality_score: round_to(score, 2),
            virality_probability: round_to(c.probability, 4),
            viral_classification: viral_classification(c.probability >= self.classify_probability),
            confidence_interval: Interval {
                lower: round_to(c.lower, 2),
                upper: round_to(c.upper, 2),
                level: self.interval_level,
            },
            predicted_final_shares: round_to(c.predicted_final, 2),
            threshold: c.threshold,
            virality_dynamics: Dynamics::of(&structure, shares),
            model_lineage: self.lineage(),
            branching: round_to(raw.branching, 4),
        }
    }
}

/// Hashtags of a post text, lowercased with their `#`, each once.
pub fn hashtags(text: &str) -> Vec<String> {
    crate::analysis::terms::extract_terms(text)
        .into_iter()
        .filter(|t| t.starts_with('#'))
        .take(16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker_with(shares: &[(f64, Option<&str>)]) -> Tracker {
        let mut t = Tracker::new(1000);
        t.meta = Some(PostMeta {
            platform: Some(Platform::Twitter),
            author_followers: 1000,
            created_at: 0.0,
            ..Default::default()
        });
        for (i, (at, via)) in shares.iter().enumerate() {
            let id = format!("s{i}");
            t.add(Some(&id), EngagementKind::Share, *at, Some(150), *via, 1, 5);
        }
        t
    }

    /// Real cascades come in bursts with long gaps (their delays have a power-law tail), so a
    /// few minutes of silence say little; once the silence lasts, the interval shrinks.
    #[test]
    fn a_cascade_that_stops_early_gets_a_shrinking_interval() {
        let model = Model::built_in();
        let t = tracker_with(
            &(0..15)
                .map(|i| (f64::from(i) * 4.0, None))
                .collect::<Vec<_>>(),
        );
        let mut widths = Vec::new();
        for age in [600.0, 3600.0, 6.0 * 3600.0, 24.0 * 3600.0, 96.0 * 3600.0] {
            let raw = model.raw(&t, age);
            let c = model.calibrate(&raw, Some(Platform::Twitter), None);
            assert!(c.lower >= 15.0 && c.lower <= c.upper, "{c:?}");
            widths.push(c.upper - c.lower);
        }
        for w in widths.windows(2) {
            assert!(w[1] <= w[0] + 1e-9, "{widths:?}");
        }
        assert!(widths[4] < widths[0] / 10.0, "{widths:?}");
    }

    #[test]
    fn scores_are_bounded_and_deterministic() {
        let model = Model::built_in();
        let t = tracker_with(&[(1.0, None), (2.0, Some("s0")), (3.0, Some("s1"))]);
        let a = model.score(&t, 5);
        assert_eq!(a, model.score(&t.clone(), 5));
        assert!((0.0..=100.0).contains(&a.virality_score));
        assert!((0.0..=1.0).contains(&a.virality_probability));
        assert_eq!(a.counts.shares, 3);
        assert_eq!(a.structure.depth, 3);
        assert_eq!(a.model_lineage.name, calibration::MODEL_NAME);
    }
}
