//! Engagement cascades: one self-exciting (Hawkes) process per post, simulated through its
//! branching structure so each event costs O(log pending) and nothing is precomputed.
//!
//! Every share is a parent: when it is emitted, its children are drawn and scheduled on a
//! min-heap of pending events in virtual time. A cascade lives in a slot only while it has
//! pending events; the slot is recycled when the last one fires.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;

use chrono::{DateTime, Utc};
use rand::distr::Distribution;
use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::{LogNormal, Poisson};

use super::log_normal::{mean_one, LogNormalParams};
use super::world::{World, ACTOR_FOLLOWERS};
use super::{virtual_time, MICROS_PER_SEC};
use crate::models::{Engagement, EngagementKind};

/// Expected direct shares of a post per `followers ^ FOLLOWER_EXPONENT`, before quality.
const SHARE_BASE_RATE: f64 = 0.2;
/// Reach grows sublinearly with audience: a 100x bigger account gets 6x the direct shares.
const FOLLOWER_EXPONENT: f64 = 0.4;
/// Ceiling on expected direct shares, so even the largest accounts stay bounded.
const MAX_DIRECT_SHARES_MEAN: f64 = 200.0;
/// Spread of the log-normal content quality (mean 1) multiplying the base intensity.
const QUALITY_SIGMA: f64 = 0.8;
/// Branching factor (mean children per share) of ordinary posts: subcritical, so most shares
/// come straight from the post, as in real share trees (85% direct in the median Twitter15
/// cascade of 50 or more, depth 3).
const BRANCHING: Range<f64> = 0.02..0.25;
/// Share of posts whose content "catches on". In real trees a large cascade is a broad one:
/// many direct shares, reshares a minority, so catching on multiplies the direct shares and
/// raises the branching only moderately.
const VIRAL_PROB: f64 = 0.025;
const VIRAL_BRANCHING: Range<f64> = 0.1..0.4;
/// Catching on multiplies the expected direct shares by a log-normal factor, at least to the
/// minimum, at most to the ceiling.
const VIRAL_DIRECT_BOOST: LogNormalParams = LogNormalParams {
    median: 120.0,
    sigma: 1.2,
};
const VIRAL_DIRECT_MIN: f64 = 100.0;
const MAX_VIRAL_DIRECT_MEAN: f64 = 3_000.0;
/// Expected direct shares, at least, of a cascade made viral on purpose (a demo scenario's):
/// among the largest real ones, so it stands out within minutes.
pub(crate) const FORCED_VIRAL_DIRECT_MIN: f64 = 1_500.0;
/// A sharer's audience scales their children by `(followers / median) ^ INFLUENCE_EXPONENT`,
/// normalised to mean 1 over sharers and capped.
const INFLUENCE_EXPONENT: f64 = 0.15;
const MAX_INFLUENCE: f64 = 4.0;
/// A Lomax (shifted Pareto) delay: `P(delay > t) = (1 + t / scale) ^ -shape`, so the
/// excitation decays as a power law; below shape 1 the mean is infinite and the lifetime cap
/// bounds it.
#[derive(Debug, Clone, Copy)]
struct Lomax {
    scale_s: f64,
    shape: f64,
}
/// Delay of a direct share after its post, fitted by maximum likelihood on real Twitter
/// propagation trees (Twitter15: scale 18 min, shape 0.58; half arrive within about 50
/// minutes, a tenth after 16 hours). See `pulse eval virality --data`.
const DIRECT_SHARE_DELAY: Lomax = Lomax {
    scale_s: 1_100.0,
    shape: 0.58,
};
/// Delay of a reshare after the share it came through (Twitter15: scale 7 min, shape 0.50).
const RESHARE_DELAY: Lomax = Lomax {
    scale_s: 420.0,
    shape: 0.50,
};
/// Delay between a post or share and the likes, comments and views it draws.
const REACTION_DELAY: Lomax = Lomax {
    scale_s: 20.0,
    shape: 1.5,
};
/// A cascade's own pace, multiplying all of its delays: real cascades differ in tempo, half of
/// one arriving within minutes and of another within hours (Twitter15: 10% / 50% / 90% of
/// cascades reach half their final size in 11 / 40 / 282 minutes).
const PACE: LogNormalParams = LogNormalParams {
    median: 1.0,
    sigma: 1.0,
};
/// A cascade made viral on purpose unfolds at the pace of the fastest tenth of real ones:
/// its pace is drawn below the log-normal's 10th percentile, `exp(-1.2816 * PACE.sigma)`.
const FORCED_VIRAL_PACE_Z: f64 = -1.2816;
/// Nobody reacts faster than this.
const MIN_REACTION_DELAY_S: f64 = 0.5;
/// Hard caps that make every cascade end: total shares and lifetime (the horizon the real
/// trees' final sizes are counted over).
const MAX_CASCADE_SHARES: u32 = 5_000;
const CASCADE_LIFETIME_S: f64 = 7.0 * 86_400.0;
/// Reactions per unit of exposure (one share, or the post's own expected direct shares).
const LIKES_PER_SHARE: f64 = 3.0;
const COMMENTS_PER_SHARE: f64 = 0.4;
const VIEWS_PER_SHARE: f64 = 40.0;
/// Exposure of a post beyond its expected shares, so posts nobody shares still get seen.
const ROOT_EXPOSURE_FLOOR: f64 = 0.5;
/// Spread of the per-node log-normal noise (mean 1) on reaction counts.
const REACTION_NOISE_SIGMA: f64 = 0.6;
/// Most like, comment and view events one node causes; larger totals are spread over them
/// as `count`s, so a celebrity post or a busy share costs a bounded number of events.
#[derive(Debug, Clone, Copy)]
struct ReactionEvents {
    likes: u64,
    comments: u64,
    views: u64,
}
const ROOT_REACTION_EVENTS: ReactionEvents = ReactionEvents {
    likes: 8,
    comments: 8,
    views: 3,
};
const SHARE_REACTION_EVENTS: ReactionEvents = ReactionEvents {
    likes: 2,
    comments: 1,
    views: 1,
};
/// How often a like or comment carries its actor's follower count.
const REACTION_ACTOR_PROB: f64 = 0.5;
/// Below this mean Poisson draws use Knuth's product method; above it, `rand_distr`.
const KNUTH_POISSON_LIMIT: f64 = 30.0;
/// `extra` of a share scheduled directly from the post.
const NO_VIA: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Share,
    Like,
    Comment,
    View,
}

/// One scheduled engagement.
#[derive(Debug, PartialEq, Eq)]
struct Pending {
    /// Virtual time, microseconds since the generator's start.
    at: u64,
    /// Schedule order; breaks ties so the order never depends on heap internals.
    seq: u64,
    slot: u32,
    action: Action,
    /// Shares: engagement number of the share it came through, or `NO_VIA`. Others: count.
    extra: u32,
}

impl Ord for Pending {
    /// Reversed, so `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Cascade {
    post_id: String,
    /// Nothing is scheduled after this virtual time.
    end: u64,
    branching: f64,
    shares_scheduled: u32,
    shares_emitted: u64,
    next_engagement: u32,
    pending: u32,
    /// Virtual seconds per real-world second of this cascade's delays: the generator's time
    /// scale over the cascade's own pace.
    time_scale: f64,
}

struct Queue {
    heap: BinaryHeap<Pending>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, cascade: &mut Cascade, slot: u32, at: u64, action: Action, extra: u32) {
        self.seq += 1;
        cascade.pending += 1;
        self.heap.push(Pending {
            at,
            seq: self.seq,
            slot,
            action,
            extra,
        });
    }
}

/// Every active cascade and their pending engagements.
pub(crate) struct Cascades {
    queue: Queue,
    slots: Vec<Cascade>,
    free: Vec<u32>,
    quality: LogNormal<f64>,
    noise: LogNormal<f64>,
    pace: LogNormal<f64>,
    viral_boost: LogNormal<f64>,
    influence_norm: f64,
    /// Real-world seconds per virtual second: every delay and the lifetime are divided by it.
    time_scale: f64,
}

/// An engagement that fired, and the final share count if it was its cascade's last event.
pub(crate) struct Fired {
    pub engagement: Engagement,
    pub finished: Option<(String, u64)>,
}

impl Cascades {
    /// Cascades whose timing runs `time_scale` times faster than the real trees' (1: as fast).
    pub(crate) fn new(time_scale: f64) -> Self {
        Cascades {
            time_scale: if time_scale.is_finite() && time_scale > 0.0 {
                time_scale
            } else {
                1.0
            },
            queue: Queue {
                heap: BinaryHeap::new(),
                seq: 0,
            },
            slots: Vec::new(),
            free: Vec::new(),
            quality: mean_one(QUALITY_SIGMA),
            pace: PACE.distribution(),
            viral_boost: VIRAL_DIRECT_BOOST.distribution(),
            noise: mean_one(REACTION_NOISE_SIGMA),
            // E[(F / median) ^ k] for log-normal F is exp((k * sigma) ^ 2 / 2).
            influence_norm: ((INFLUENCE_EXPONENT * ACTOR_FOLLOWERS.sigma).powi(2) / 2.0).exp(),
        }
    }

    /// Virtual time of the next pending engagement.
    pub(crate) fn next_at(&self) -> Option<u64> {
        self.queue.heap.peek().map(|p| p.at)
    }

    /// Cascades with pending engagements.
    pub(crate) fn active(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Engagements scheduled but not yet fired.
    pub(crate) fn pending(&self) -> usize {
        self.queue.heap.len()
    }

    /// Draws a post's cascade parameters and schedules its first generation; `viral` makes
    /// it one that catches on, with at least [`FORCED_VIRAL_DIRECT_MIN`] expected direct
    /// shares. Returns false when nothing was scheduled, i.e. the cascade is already over with
    /// zero shares.
    pub(crate) fn start(
        &mut self,
        rng: &mut SmallRng,
        post_id: &str,
        at: u64,
        followers: u64,
        viral: bool,
    ) -> bool {
        let quality = self.quality.sample(rng);
        let pace = if viral {
            let fastest_tenth = (FORCED_VIRAL_PACE_Z * PACE.sigma).exp();
            // Rejection from the log-normal keeps the tail's shape; one draw in ten passes.
            loop {
                let pace = self.pace.sample(rng);
                if pace <= fastest_tenth {
                    break pace;
                }
            }
        } else {
            self.pace.sample(rng)
        };
        let mut direct_mean =
            (SHARE_BASE_RATE * (followers as f64).powf(FOLLOWER_EXPONENT) * quality)
                .min(MAX_DIRECT_SHARES_MEAN);
        let branching = if viral || rng.random_bool(VIRAL_PROB) {
            direct_mean = (direct_mean * self.viral_boost.sample(rng))
                .clamp(VIRAL_DIRECT_MIN, MAX_VIRAL_DIRECT_MEAN);
            if viral {
                direct_mean = direct_mean.max(FORCED_VIRAL_DIRECT_MIN);
            }
            rng.random_range(VIRAL_BRANCHING)
        } else {
            rng.random_range(BRANCHING)
        };

        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Cascade {
                    post_id: String::new(),
                    end: 0,
                    branching: 0.0,
                    shares_scheduled: 0,
                    shares_emitted: 0,
                    next_engagement: 0,
                    pending: 0,
                    time_scale: 1.0,
                });
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 active cascades")
            }
        };
        let cascade = &mut self.slots[slot as usize];
        cascade.post_id.clear();
        cascade.post_id.push_str(post_id);
        cascade.end = at + seconds_to_micros(CASCADE_LIFETIME_S / self.time_scale);
        cascade.branching = branching;
        cascade.shares_scheduled = 0;
        cascade.shares_emitted = 0;
        cascade.next_engagement = 0;
        cascade.pending = 0;
        cascade.time_scale = self.time_scale / pace;

        let direct = poisson(rng, direct_mean);
        let timing = Timing {
            kernel: DIRECT_SHARE_DELAY,
            time_scale: cascade.time_scale,
        };
        schedule_shares(
            &mut self.queue,
            rng,
            cascade,
            slot,
            at,
            direct,
            NO_VIA,
            timing,
        );
        let exposure = (direct_mean + ROOT_EXPOSURE_FLOOR) * self.noise.sample(rng);
        schedule_reactions(
            &mut self.queue,
            rng,
            cascade,
            slot,
            at,
            exposure,
            ROOT_REACTION_EVENTS,
            cascade.time_scale,
        );

        if cascade.pending == 0 {
            self.free.push(slot);
            false
        } else {
            true
        }
    }

    /// Fires the earliest pending engagement, scheduling what a share triggers.
    ///
    /// # Panics
    /// When nothing is pending; callers check [`Cascades::next_at`] first.
    pub(crate) fn fire(
        &mut self,
        rng: &mut SmallRng,
        world: &World,
        start: DateTime<Utc>,
    ) -> Fired {
        let event = self.queue.heap.pop().expect("a pending engagement");
        let cascade = &mut self.slots[event.slot as usize];
        let number = cascade.next_engagement;
        cascade.next_engagement += 1;
        let id = engagement_id(&cascade.post_id, number);

        let (kind, actor_followers, via, count) = match event.action {
            Action::Share => {
                cascade.shares_emitted += 1;
                let followers = world.actor_followers(rng);
                let influence = (followers as f64 / ACTOR_FOLLOWERS.median)
                    .powf(INFLUENCE_EXPONENT)
                    / self.influence_norm;
                let children = poisson(rng, cascade.branching * influence.min(MAX_INFLUENCE));
                let timing = Timing {
                    kernel: RESHARE_DELAY,
                    time_scale: cascade.time_scale,
                };
                schedule_shares(
                    &mut self.queue,
                    rng,
                    cascade,
                    event.slot,
                    event.at,
                    children,
                    number,
                    timing,
                );
                let exposure = self.noise.sample(rng);
                schedule_reactions(
                    &mut self.queue,
                    rng,
                    cascade,
                    event.slot,
                    event.at,
                    exposure,
                    SHARE_REACTION_EVENTS,
                    cascade.time_scale,
                );
                let via =
                    (event.extra != NO_VIA).then(|| engagement_id(&cascade.post_id, event.extra));
                (EngagementKind::Share, Some(followers), via, None)
            }
            Action::Like | Action::Comment => {
                let kind = if event.action == Action::Like {
                    EngagementKind::Like
                } else {
                    EngagementKind::Comment
                };
                let followers = rng
                    .random_bool(REACTION_ACTOR_PROB)
                    .then(|| world.actor_followers(rng));
                (
                    kind,
                    followers,
                    None,
                    (event.extra > 1).then_some(event.extra),
                )
            }
            Action::View => (EngagementKind::View, None, None, Some(event.extra)),
        };

        let engagement = Engagement {
            id: Some(id),
            post_id: cascade.post_id.clone(),
            kind,
            at: virtual_time(start, event.at),
            actor_followers,
            via,
            count,
        };
        cascade.pending -= 1;
        let finished = if cascade.pending == 0 {
            let total = cascade.shares_emitted;
            let post_id = std::mem::take(&mut cascade.post_id);
            self.free.push(event.slot);
            Some((post_id, total))
        } else {
            None
        };
        Fired {
            engagement,
            finished,
        }
    }
}

/// A delay distribution and how much faster than real time it runs.
#[derive(Debug, Clone, Copy)]
struct Timing {
    kernel: Lomax,
    time_scale: f64,
}

/// Schedules up to `n` shares after `from`, within the cascade's size and lifetime caps.
#[allow(clippy::too_many_arguments)]
fn schedule_shares(
    queue: &mut Queue,
    rng: &mut SmallRng,
    cascade: &mut Cascade,
    slot: u32,
    from: u64,
    n: u64,
    via: u32,
    timing: Timing,
) {
    for _ in 0..n {
        if cascade.shares_scheduled >= MAX_CASCADE_SHARES {
            return;
        }
        let at = from + delay(rng, timing);
        if at <= cascade.end {
            cascade.shares_scheduled += 1;
            queue.push(cascade, slot, at, Action::Share, via);
        }
    }
}

/// Schedules the likes, comments and views one node (the post or a share) draws.
#[allow(clippy::too_many_arguments)]
fn schedule_reactions(
    queue: &mut Queue,
    rng: &mut SmallRng,
    cascade: &mut Cascade,
    slot: u32,
    from: u64,
    exposure: f64,
    max_events: ReactionEvents,
    time_scale: f64,
) {
    let timing = Timing {
        kernel: REACTION_DELAY,
        time_scale,
    };
    let likes = poisson(rng, LIKES_PER_SHARE * exposure);
    let comments = poisson(rng, COMMENTS_PER_SHARE * exposure);
    let views = poisson(rng, VIEWS_PER_SHARE * exposure);
    for (action, total, max_events) in [
        (Action::Like, likes, max_events.likes),
        (Action::Comment, comments, max_events.comments),
        (Action::View, views, max_events.views),
    ] {
        let events = total.min(max_events);
        for i in 0..events {
            // Spread `total` over `events` as evenly as possible; each part is at least 1.
            let count = total / events + u64::from(i < total % events);
            let at = from + delay(rng, timing);
            if at <= cascade.end {
                let count = u32::try_from(count).unwrap_or(u32::MAX);
                queue.push(cascade, slot, at, action, count);
            }
        }
    }
}

/// A delay in virtual microseconds: the reaction time plus `scale * ((1 - u) ^ (-1 / shape) -
/// 1)`, capped at the lifetime, over the time scale.
fn delay(rng: &mut SmallRng, timing: Timing) -> u64 {
    let u: f64 = rng.random();
    let k = timing.kernel;
    let lomax = k.scale_s * ((1.0 - u).powf(-1.0 / k.shape) - 1.0);
    seconds_to_micros((MIN_REACTION_DELAY_S + lomax.min(CASCADE_LIFETIME_S)) / timing.time_scale)
}

fn seconds_to_micros(seconds: f64) -> u64 {
    (seconds * MICROS_PER_SEC) as u64
}

/// A Poisson draw; 0 for a non-positive or non-finite mean.
pub(crate) fn poisson(rng: &mut SmallRng, mean: f64) -> u64 {
    if !(mean.is_finite() && mean > 0.0) {
        return 0;
    }
    if mean < KNUTH_POISSON_LIMIT {
        let limit = (-mean).exp();
        let mut product: f64 = rng.random();
        let mut k = 0;
        while product > limit {
            product *= rng.random::<f64>();
            k += 1;
        }
        return k;
    }
    Poisson::new(mean).map_or(0, |d| d.sample(rng) as u64)
}

/// `<post_id>:e<number>`, the id every engagement carries so `via` can point at it.
fn engagement_id(post_id: &str, number: u32) -> String {
    use std::fmt::Write;
    let mut id = String::with_capacity(post_id.len() + 12);
    id.push_str(post_id);
    let _ = write!(id, ":e{number}");
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn poisson_draws_have_the_requested_mean() {
        let mut rng = SmallRng::seed_from_u64(3);
        for mean in [0.3, 2.0, 12.0, 80.0] {
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| poisson(&mut rng, mean)).sum();
            let got = sum as f64 / f64::from(n);
            assert!(
                (got - mean).abs() < 0.05 * mean + 0.02,
                "mean {mean}, got {got}"
            );
        }
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
    }

    #[test]
    fn delays_are_positive_heavy_tailed_and_bounded() {
        let mut rng = SmallRng::seed_from_u64(4);
        let mut delays: Vec<u64> = (0..50_000)
            .map(|_| {
                delay(
                    &mut rng,
                    Timing {
                        kernel: RESHARE_DELAY,
                        time_scale: 1.0,
                    },
                )
            })
            .collect();
        delays.sort_unstable();
        let min = seconds_to_micros(MIN_REACTION_DELAY_S);
        assert!(delays[0] >= min);
        let median = delays[delays.len() / 2];
        let p999 = delays[delays.len() * 999 / 1000];
        assert!(p999 > 50 * median, "median {median} p99.9 {p999}");
        let cap = seconds_to_micros(MIN_REACTION_DELAY_S + CASCADE_LIFETIME_S);
        assert!(*delays.last().unwrap() <= cap);
    }

    #[test]
    fn a_forced_viral_cascade_takes_off_within_minutes() {
        for seed in 0..20 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut cascades = Cascades::new(1.0);
            assert!(cascades.start(&mut rng, "p", 0, 1_000_000, true));
            let early = cascades
                .queue
                .heap
                .iter()
                .filter(|p| p.action == Action::Share && p.at <= seconds_to_micros(120.0))
                .count();
            // At the fastest tenth's pace a sixth or more of 1,500+ direct shares come
            // within two minutes.
            assert!(early >= 250, "seed {seed}: {early} shares in two minutes");
        }
    }

    #[test]
    fn reactions_spread_counts_without_losing_any() {
        let mut rng = SmallRng::seed_from_u64(5);
        let mut cascades = Cascades::new(1.0);
        assert!(cascades.start(&mut rng, "p", 0, 50_000_000, false));
        let mut counted = 0u64;
        for pending in cascades.queue.heap.iter() {
            assert!(pending.extra >= 1);
            if pending.action != Action::Share {
                counted += u64::from(pending.extra);
            }
        }
        assert!(
            counted > 100,
            "a celebrity post draws many reactions: {counted}"
        );
        assert!(cascades.pending() <= MAX_DIRECT_SHARES_MEAN as usize * 2 + 19);
    }
}
