//! Synthetic producer: an endless, reproducible stream of posts and engagements in virtual
//! time, realistic enough to exercise analysis, aggregation and virality prediction, and fast
//! enough to drive benchmarks.
//!
//! # Posts
//!
//! Posts arrive as a Poisson process at `posts_per_sec` (exponential gaps in virtual time;
//! timestamps have microsecond precision). 35% of texts are positive (joy, optimism), 30%
//! negative (anger, sadness, churn intent, mild toxicity) and 35% neutral (questions,
//! announcements), written from templates in the `text` submodule. About 5% are in Spanish,
//! French, German or Portuguese, from authors in those countries.
//!
//! Authors come from a pool of 20,000 recurring accounts (Zipf activity; 40 media and
//! influencer accounts with 50k to 20M followers, drawn log-uniformly; the rest log-normal with
//! median 120, sigma 1.7) or are one-off accounts. The pool is built from a fixed seed, so a
//! handle has the same followers, home city and usual platform in every run. There are 28
//! cities in 17 countries. Some posts are replies (`parent_id`), some lack geo, product tag or
//! language, some carry a permalink `url` or capture-time `metrics`.
//!
//! # Engagement cascades
//!
//! Shares of a post follow a self-exciting (Hawkes) process, simulated through its branching
//! structure:
//!
//! - the post draws Poisson direct shares with mean `0.2 * followers^0.4 * quality`, where
//!   quality is log-normal with mean 1 and sigma 0.8, and the mean is capped at 200;
//! - each share triggers Poisson(`b * influence`) further shares. The branching factor `b` is
//!   uniform in 0.15..0.65 for ordinary posts and in 0.95..1.3 for the 1% of posts that go
//!   viral (these also get 3x the direct shares). `influence = (actor_followers / 150)^0.15`,
//!   normalised to mean 1 and capped at 4; sharer audiences are log-normal (median 150,
//!   sigma 1.8);
//! - delays come from a power-law memory kernel: Lomax with shape 1.5 and scale 60 s, so
//!   excitation decays as `(1 + t / 60 s)^-2.5`;
//! - every cascade ends: at most 5,000 shares and 12 hours of virtual time.
//!
//! Each share, and the post itself, draws likes (3 per share), comments (0.4) and views (40),
//! with log-normal noise and a 20 s kernel scale. Large counts are batched into events with a
//! `count`, so one share costs about four events. Most cascades have zero to a few shares;
//! about 0.5% reach thousands. In steady state this gives roughly 130 events per post.
//!
//! Engagement ids are `<post_id>:e<n>`; a share's `via` is the id of the share it came
//! through (none for shares of the post itself). Only cascades with pending events are kept,
//! and pending events wait on a binary heap, so memory is bounded by the live cascades.
//!
//! # Demo scenarios
//!
//! [`Generator::with_scenarios`] adds what Pulse exists to catch, every 15 minutes from the
//! start: a product incident (an outage wave of angry and churn-intent posts on one product,
//! channel and country), a post that goes viral, and a praise wave on another product. The
//! `scenarios` module has the timetable.
//!
//! # Reproducibility
//!
//! One `SmallRng` seeded from `seed` drives everything, in a fixed order, and no hash map is
//! iterated, so equal options give equal streams. Streams may differ across `rand` versions
//! or platforms, because `SmallRng`'s algorithm is not guaranteed to stay the same.

mod cascade;
mod log_normal;
mod scenarios;
mod text;
mod world;

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use rand::distr::Distribution;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Exp;

use crate::models::{Author, Event, Geo, Platform, Post, PostMetrics};
use cascade::{poisson, Cascades};
use scenarios::{ScenarioPost, Scenarios};
use text::{Flavor, TextRequest};
use world::{Channel, World, CITIES, PRODUCTS};

/// Virtual time is kept in integer microseconds, the precision PostgreSQL timestamps keep.
pub(crate) const MICROS_PER_SEC: f64 = 1_000_000.0;

/// Share of posts with no channel label.
const NO_CHANNEL_PROB: f64 = 0.05;
/// News and influencer posts come from a big account this often.
const NOTABLE_AUTHOR_PROB: f64 = 0.25;
/// Other posts come from the recurring pool this often, else from a one-off account.
const POOL_AUTHOR_PROB: f64 = 0.75;
/// Geo habits of one-off accounts; pool authors each have their own.
const ONE_OFF_GEO_PROB: f64 = 0.6;
/// Among geotagged posts, those that only reveal the country.
const COUNTRY_ONLY_PROB: f64 = 0.1;
/// Posts about a product that the producer did not tag with it.
const UNTAGGED_PRODUCT_PROB: f64 = 0.12;
/// Geotagged share, at least, of the posts of a regional scenario.
const SCENARIO_GEO_PROB: f64 = 0.7;
/// Posts that reply to one of the recent posts.
const REPLY_PROB: f64 = 0.12;
/// How many recent posts replies can point at.
const RECENT_POSTS: usize = 256;
/// Posts whose producer did not detect a language.
const NO_LANG_PROB: f64 = 0.1;
/// Posts carrying their permalink.
const URL_PROB: f64 = 0.25;
/// Posts captured with engagement counts already on them, and those counts' means.
const METRICS_PROB: f64 = 0.15;
const METRICS_LIKES_MEAN: f64 = 4.0;
const METRICS_SHARES_MEAN: f64 = 0.5;
const METRICS_COMMENTS_MEAN: f64 = 1.0;
const METRICS_VIEWS_MEAN: f64 = 60.0;
/// Finished cascades kept for a caller that never drains them; the oldest are dropped first.
const MAX_UNCLAIMED_FINISHED: usize = 1 << 20;
/// Subreddits used in Reddit permalinks.
const SUBREDDITS: [&str; 4] = ["gadgets", "technology", "PulseDevices", "headphones"];
const URL_CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URL_CODE_LEN: usize = 11;

/// Options of a generator run.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorOptions {
    /// Everything random derives from this, so a run can be replayed exactly.
    pub seed: u64,
    /// Mean new posts per second of virtual time.
    pub posts_per_sec: f64,
    /// Emit engagement events (likes, shares, comments, views) as well as posts.
    pub engagements: bool,
    /// Virtual time of the first event.
    pub start: DateTime<Utc>,
    /// Prefix of generated post ids, so several runs never collide (e.g. "g1-"). One-off
    /// author ids carry it too.
    pub id_prefix: String,
    /// How many times faster than real cascades the engagements unfold: 1 gives the timing
    /// fitted on real share trees (most of a cascade within a day, its tail up to a week);
    /// 60 plays an hour of it in a minute.
    pub time_scale: f64,
    /// After this many posts, only engagements come until none is pending (then posts
    /// resume), so a run can wait for its cascades to end without starting new ones.
    pub max_posts: Option<u64>,
}

impl Default for GeneratorOptions {
    /// A fixed start time rather than the wall clock, so defaults are reproducible too.
    fn default() -> Self {
        GeneratorOptions {
            seed: 0,
            posts_per_sec: 10.0,
            engagements: true,
            start: DateTime::from_timestamp(DEFAULT_START_UNIX_S, 0).expect("valid timestamp"),
            id_prefix: "g-".to_string(),
            time_scale: 1.0,
            max_posts: None,
        }
    }
}

/// 2026-01-01T00:00:00Z.
const DEFAULT_START_UNIX_S: i64 = 1_767_225_600;

/// Produces the event stream; one instance per producer task, not shared across threads.
pub struct Generator {
    options: GeneratorOptions,
    rng: SmallRng,
    world: World,
    cascades: Cascades,
    post_gaps: Exp<f64>,
    /// Virtual seconds of the next post, kept in floating point so gaps never round away.
    next_post_s: f64,
    next_post_at: u64,
    posts: u64,
    one_off_authors: u64,
    /// Last emitted event, microseconds since start.
    now: u64,
    /// Recent (post id, author handle), for replies.
    recent: VecDeque<(String, String)>,
    finished: VecDeque<(String, u64)>,
    /// The demo's incidents, praise waves and viral posts, when on.
    scenarios: Option<Scenarios>,
}

impl Generator {
    /// Builds the world and the first post's schedule; no event is drawn yet.
    ///
    /// # Panics
    /// If `posts_per_sec` is not a finite positive number.
    pub fn new(options: GeneratorOptions) -> Self {
        assert!(
            options.posts_per_sec.is_finite() && options.posts_per_sec > 0.0,
            "posts_per_sec must be a finite positive number, got {}",
            options.posts_per_sec
        );
        let post_gaps = Exp::new(options.posts_per_sec).expect("positive rate");
        Generator {
            rng: SmallRng::seed_from_u64(options.seed),
            world: World::new(),
            cascades: Cascades::new(options.time_scale),
            post_gaps,
            next_post_s: 0.0,
            next_post_at: 0,
            posts: 0,
            one_off_authors: 0,
            now: 0,
            recent: VecDeque::with_capacity(RECENT_POSTS),
            finished: VecDeque::new(),
            scenarios: None,
            options,
        }
    }

    /// Lays the demo scenarios over the steady feed: product incidents, praise waves and viral
    /// posts on a timetable counted from the start (the `scenarios` module says which, when).
    pub fn with_scenarios(mut self) -> Self {
        self.scenarios = Some(Scenarios::new(&mut self.rng, self.options.posts_per_sec));
        self
    }

    /// The next event in virtual-time order (posts and engagements interleaved).
    pub fn next_event(&mut self) -> Event {
        let posts_done = self.options.max_posts.is_some_and(|m| self.posts >= m);
        let scenario_at = self
            .scenarios
            .as_ref()
            .map(|s| (s.next_at_s() * MICROS_PER_SEC) as u64)
            .filter(|&at| {
                !posts_done
                    && at < self.next_post_at
                    && self.cascades.next_at().is_none_or(|c| at <= c)
            });
        if let Some(at) = scenario_at {
            let spec = self
                .scenarios
                .as_mut()
                .map(|s| s.take(&mut self.rng))
                .expect("scenarios are on");
            return Event::Post(self.emit_post(at, Some(spec)));
        }
        match self.cascades.next_at() {
            Some(at) if at < self.next_post_at || posts_done => {
                self.now = at;
                let fired = self
                    .cascades
                    .fire(&mut self.rng, &self.world, self.options.start);
                if let Some(done) = fired.finished {
                    self.push_finished(done);
                }
                Event::Engagement(fired.engagement)
            }
            _ => Event::Post(self.next_post()),
        }
    }

    /// True final size (total shares) of every cascade that has ended, drained as they end,
    /// for later evaluation of virality predictions: (post_id, final_shares).
    ///
    /// Posts that drew no engagement at all are reported with 0 as soon as they are emitted.
    /// Nothing is reported when engagements are off. At most 2^20 undrained results are kept.
    pub fn take_finished_cascades(&mut self) -> Vec<(String, u64)> {
        self.finished.drain(..).collect()
    }

    /// Virtual time of the last event emitted, so a paced producer can sleep until the wall
    /// clock catches up.
    pub fn now(&self) -> DateTime<Utc> {
        virtual_time(self.options.start, self.now)
    }

    /// Cascades still running, to watch memory in long runs.
    pub fn active_cascades(&self) -> usize {
        self.cascades.active()
    }

    /// Engagements scheduled but not yet emitted, to watch memory in long runs.
    pub fn pending_engagements(&self) -> usize {
        self.cascades.pending()
    }

    /// The options this generator was built with, so a run can be described or replayed.
    pub fn options(&self) -> &GeneratorOptions {
        &self.options
    }

    fn push_finished(&mut self, done: (String, u64)) {
        if self.finished.len() >= MAX_UNCLAIMED_FINISHED {
            self.finished.pop_front();
        }
        self.finished.push_back(done);
    }

    fn next_post(&mut self) -> Post {
        let at = self.next_post_at;
        self.next_post_s += self.post_gaps.sample(&mut self.rng);
        self.next_post_at = (self.next_post_s * MICROS_PER_SEC) as u64;
        self.emit_post(at, None)
    }

    /// Draws the post due `at` (a scenario's when `spec` is given) and starts its cascade.
    fn emit_post(&mut self, at: u64, spec: Option<ScenarioPost>) -> Post {
        self.now = at;
        let id = format!("{}{}", self.options.id_prefix, self.posts);
        self.posts += 1;
        let post = self.draw_post(id, at, spec);

        let viral = spec.is_some_and(|s| s.viral);
        if self.options.engagements
            && !self
                .cascades
                .start(&mut self.rng, &post.id, at, post.author.followers, viral)
        {
            self.push_finished((post.id.clone(), 0));
        }
        if self.recent.len() == RECENT_POSTS {
            self.recent.pop_front();
        }
        self.recent
            .push_back((post.id.clone(), post.author.id.clone()));
        post
    }

    fn draw_post(&mut self, id: String, at: u64, spec: Option<ScenarioPost>) -> Post {
        let rng = &mut self.rng;
        let world = &self.world;

        let flavor = spec.map_or_else(|| Flavor::pick(rng), |s| s.flavor);
        let channel = match spec {
            Some(s) => Some(s.channel),
            None => (!rng.random_bool(NO_CHANNEL_PROB)).then(|| flavor.channel(rng)),
        };
        let wants_notable = spec.map_or_else(
            || {
                matches!(channel, Some(Channel::News | Channel::Influencer))
                    && rng.random_bool(NOTABLE_AUTHOR_PROB)
            },
            |s| s.viral,
        );
        let pool_author = if wants_notable {
            Some(world.notable_author(rng))
        } else if rng.random_bool(POOL_AUTHOR_PROB) {
            Some(world.active_author(rng))
        } else {
            None
        };
        let (author, platform, city, geo_prob) = match pool_author {
            Some(i) => {
                let a = &world.authors[i];
                let author = Author {
                    id: a.handle.clone(),
                    followers: a.followers,
                };
                (
                    author,
                    world.platform_of(rng, i),
                    a.home_city,
                    a.geo_tag_prob,
                )
            }
            None => {
                self.one_off_authors += 1;
                let author = Author {
                    id: format!("{}user{}", self.options.id_prefix, self.one_off_authors),
                    followers: world.author_followers(rng),
                };
                (
                    author,
                    world.platform(rng),
                    world.city(rng),
                    ONE_OFF_GEO_PROB,
                )
            }
        };
        // A regional scenario's posts come from its region, and say so more often.
        let (city, geo_prob) = match spec.and_then(|s| s.city) {
            Some(region) => (region, geo_prob.max(SCENARIO_GEO_PROB)),
            None => (city, geo_prob),
        };
        let place = &CITIES[city];
        let geo = rng.random_bool(geo_prob).then(|| Geo {
            city: (!rng.random_bool(COUNTRY_ONLY_PROB)).then(|| place.name.to_string()),
            country: Some(place.country.to_string()),
        });
        let product = spec.map_or_else(|| world.product(rng), |s| s.product);
        let parent = (spec.is_none() && !self.recent.is_empty() && rng.random_bool(REPLY_PROB))
            .then(|| &self.recent[rng.random_range(0..self.recent.len())]);
        let other_user = &world.authors[world.active_author(rng)].handle;

        let mut text = String::with_capacity(160);
        let request = TextRequest {
            flavor,
            product,
            channel,
            city: place.name,
            country: Some(place.country),
            reply_to: parent.map(|(_, handle)| handle.as_str()),
            other_user,
            topic: spec.and_then(|s| s.topic),
        };
        let lang = text::compose(rng, &request, &mut text);

        let url = rng
            .random_bool(URL_PROB)
            .then(|| permalink(rng, platform, &author.id));
        let metrics = rng.random_bool(METRICS_PROB).then(|| {
            let likes = poisson(rng, METRICS_LIKES_MEAN);
            PostMetrics {
                likes,
                shares: poisson(rng, METRICS_SHARES_MEAN),
                comments: poisson(rng, METRICS_COMMENTS_MEAN),
                views: likes + poisson(rng, METRICS_VIEWS_MEAN),
            }
        });
        Post {
            id,
            platform,
            author,
            text,
            created_at: virtual_time(self.options.start, at),
            lang: (!rng.random_bool(NO_LANG_PROB)).then(|| lang.to_string()),
            geo,
            product: (!rng.random_bool(UNTAGGED_PRODUCT_PROB))
                .then(|| PRODUCTS[product].slug.to_string()),
            channel: channel.map(|c| c.as_str().to_string()),
            parent_id: parent.map(|(id, _)| id.clone()),
            url,
            metrics,
        }
    }
}

impl Iterator for Generator {
    type Item = Event;

    /// Never ends; take as many as needed.
    fn next(&mut self) -> Option<Event> {
        Some(self.next_event())
    }
}

/// The wall-clock instant of a virtual offset; saturates instead of panicking.
pub(crate) fn virtual_time(start: DateTime<Utc>, micros: u64) -> DateTime<Utc> {
    let offset = TimeDelta::microseconds(i64::try_from(micros).unwrap_or(i64::MAX));
    start
        .checked_add_signed(offset)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A plausible permalink of a post on its platform.
fn permalink(rng: &mut SmallRng, platform: Platform, handle: &str) -> String {
    let number: u64 = rng.random_range(1_000_000_000_000_000_000..2_000_000_000_000_000_000);
    let code: String = (0..URL_CODE_LEN)
        .map(|_| URL_CODE_ALPHABET[rng.random_range(0..URL_CODE_ALPHABET.len())] as char)
        .collect();
    match platform {
        Platform::Twitter => format!("https://x.com/{handle}/status/{number}"),
        Platform::Reddit => {
            let sub = SUBREDDITS[rng.random_range(0..SUBREDDITS.len())];
            format!(
                "https://www.reddit.com/r/{sub}/comments/{}/",
                code[..7].to_lowercase()
            )
        }
        Platform::Instagram => format!("https://www.instagram.com/p/{code}/"),
        Platform::Tiktok => format!("https://www.tiktok.com/@{handle}/video/{number}"),
        Platform::Youtube => format!("https://www.youtube.com/watch?v={code}"),
        Platform::Bluesky => format!(
            "https://bsky.app/profile/{handle}.bsky.social/post/{}",
            code.to_lowercase()
        ),
        Platform::Mastodon => format!("https://mastodon.social/@{handle}/{}", number / 10),
        Platform::Other => format!("https://forum.example.com/t/{}", number % 1_000_000),
    }
}

#[cfg(test)]
mod tests;
