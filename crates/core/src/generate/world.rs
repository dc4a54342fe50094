//! The fixed world posts come from: platforms, places, products, channels and authors.
//!
//! The recurring author pool is built from its own constant seed, so the same handle has the
//! same follower count, home city and favourite platform in every run; only what they post,
//! and when, depends on the run's seed.

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{LogNormal, Zipf};

use super::log_normal::LogNormalParams;
use crate::models::Platform;

/// Relative posting volume per platform, in `Platform::ALL` order.
const PLATFORM_WEIGHTS: [u32; 8] = [30, 18, 15, 17, 8, 5, 4, 3];

/// A place posts can be tagged with: city, ISO-3166 alpha-2 country, relative volume.
pub(crate) struct City {
    pub name: &'static str,
    pub country: &'static str,
    pub weight: u32,
}

const fn city(name: &'static str, country: &'static str, weight: u32) -> City {
    City {
        name,
        country,
        weight,
    }
}

/// Cities across four continents, weighted roughly by English-language social volume.
pub(crate) const CITIES: [City; 29] = [
    city("New York", "US", 14),
    city("San Francisco", "US", 8),
    city("Chicago", "US", 6),
    city("Austin", "US", 5),
    city("Los Angeles", "US", 9),
    city("Toronto", "CA", 6),
    city("Vancouver", "CA", 3),
    city("London", "GB", 12),
    city("Manchester", "GB", 4),
    city("Dublin", "IE", 3),
    city("Paris", "FR", 5),
    city("Lyon", "FR", 2),
    city("Berlin", "DE", 5),
    city("Munich", "DE", 2),
    city("Milan", "IT", 3),
    city("Madrid", "ES", 3),
    city("Barcelona", "ES", 3),
    city("Amsterdam", "NL", 3),
    city("Stockholm", "SE", 2),
    city("Mumbai", "IN", 6),
    city("Bangalore", "IN", 5),
    city("Singapore", "SG", 3),
    city("Tokyo", "JP", 4),
    city("Seoul", "KR", 3),
    city("Sydney", "AU", 4),
    city("Melbourne", "AU", 3),
    city("Sao Paulo", "BR", 4),
    city("Mexico City", "MX", 3),
    city("Lagos", "NG", 3),
];

/// One product of the fictional brand, with what people talk about and what breaks.
pub(crate) struct Product {
    /// The label in `Post::product`.
    pub slug: &'static str,
    pub weight: u32,
    /// Names the product goes by in text.
    pub names: &'static [&'static str],
    pub features: &'static [&'static str],
    /// Complaints, phrased to follow the product name ("my Pulse Phone keeps crashing").
    pub issues: &'static [&'static str],
    pub hashtag: &'static str,
    /// What kind of thing it is, for "a {product_kind}".
    pub kind: &'static str,
}

/// The brand's product line; phones and earbuds dominate the conversation.
pub(crate) const PRODUCTS: [Product; 5] = [
    Product {
        slug: "pulse-phone",
        weight: 35,
        names: &[
            "Pulse Phone",
            "Pulse Phone 3",
            "Pulse Phone Pro",
            "Pulse Phone Mini",
        ],
        features: &[
            "battery",
            "camera",
            "screen",
            "fast charging",
            "face unlock",
            "speaker",
            "night mode",
        ],
        issues: &[
            "keeps crashing",
            "won't charge",
            "drains in a few hours",
            "overheats",
            "keeps restarting",
            "froze again",
            "drops calls",
        ],
        hashtag: "#PulsePhone",
        kind: "phone",
    },
    Product {
        slug: "pulse-watch",
        weight: 18,
        names: &["Pulse Watch", "Pulse Watch 2", "Pulse Watch Ultra"],
        features: &[
            "battery",
            "heart rate sensor",
            "sleep tracking",
            "strap",
            "step counter",
            "display",
            "GPS",
        ],
        issues: &[
            "won't sync",
            "drains overnight",
            "keeps losing my workouts",
            "froze again",
            "won't charge",
            "keeps disconnecting",
        ],
        hashtag: "#PulseWatch",
        kind: "watch",
    },
    Product {
        slug: "pulse-buds",
        weight: 22,
        names: &["Pulse Buds", "Pulse Buds Pro", "Pulse Buds Lite"],
        features: &[
            "ANC",
            "pairing",
            "charging case",
            "bass",
            "mic",
            "ear tips",
            "transparency mode",
        ],
        issues: &[
            "keeps disconnecting",
            "won't pair",
            "crackles constantly",
            "drains in an hour",
            "keeps cutting out",
            "won't charge",
        ],
        hashtag: "#PulseBuds",
        kind: "pair of earbuds",
    },
    Product {
        slug: "pulse-tv",
        weight: 12,
        names: &["Pulse TV", "Pulse TV OLED", "Pulse TV Mini"],
        features: &[
            "picture quality",
            "remote",
            "streaming app",
            "sound",
            "HDR",
            "menu",
            "voice control",
        ],
        issues: &[
            "keeps rebooting",
            "won't turn on",
            "lags constantly",
            "loses wifi",
            "froze again",
            "won't update",
        ],
        hashtag: "#PulseTV",
        kind: "TV",
    },
    Product {
        slug: "pulse-cloud",
        weight: 13,
        names: &["Pulse Cloud", "Pulse Cloud Plus", "Pulse Cloud Family"],
        features: &[
            "sync",
            "backup",
            "storage plan",
            "photo library",
            "login",
            "web access",
        ],
        issues: &[
            "keeps failing to sync",
            "lost my files",
            "logs me out constantly",
            "won't load",
            "deleted my backup",
            "keeps crashing",
        ],
        hashtag: "#PulseCloud",
        kind: "cloud plan",
    },
];

/// How a post reached the stream; support and news posts read differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Organic,
    Support,
    Campaign,
    Influencer,
    News,
}

impl Channel {
    /// The label in `Post::channel`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Channel::Organic => "organic",
            Channel::Support => "support",
            Channel::Campaign => "campaign",
            Channel::Influencer => "influencer",
            Channel::News => "news",
        }
    }
}

/// Seed of the author pool, independent of the run seed so authors are stable across runs.
const AUTHOR_POOL_SEED: u64 = 0x5EED_A07B_0000_0001;
/// Recurring authors; a run of a few hours sees most of them several times.
pub(crate) const AUTHOR_POOL_SIZE: usize = 20_000;
/// The first pool entries are media and influencer accounts with very large audiences.
const NOTABLE_AUTHORS: usize = 40;
/// Follower range of notable accounts, drawn log-uniformly.
const NOTABLE_FOLLOWERS_MIN: f64 = 50_000.0;
const NOTABLE_FOLLOWERS_MAX: f64 = 20_000_000.0;
/// Audience of ordinary authors: median 120, so about 90% stay below 1,000.
const AUTHOR_FOLLOWERS: LogNormalParams = LogNormalParams {
    median: 120.0,
    sigma: 1.7,
};
/// Audience of people who engage: median 150, a long tail of big accounts.
pub(crate) const ACTOR_FOLLOWERS: LogNormalParams = LogNormalParams {
    median: 150.0,
    sigma: 1.8,
};
/// No sampled audience exceeds this; keeps arithmetic and influence bounded.
const MAX_FOLLOWERS: f64 = 50_000_000.0;
/// Zipf exponent of posting activity across the pool: a few authors post a lot, the most
/// active one about 1.5% of pool posts.
const AUTHOR_ACTIVITY_EXPONENT: f64 = 0.7;
/// Multiplier (coprime with the ordinary pool size) that scatters activity ranks over the
/// pool, so activity does not follow handle order.
const ACTIVITY_SCATTER: usize = 7_919;
/// How often a pool author posts on their usual platform rather than elsewhere.
const HOME_PLATFORM_PROB: f64 = 0.8;

/// A recurring author.
pub(crate) struct PoolAuthor {
    pub handle: String,
    pub followers: u64,
    pub home_city: usize,
    pub platform: Platform,
    /// Share of this author's posts that carry geo, a per-person habit.
    pub geo_tag_prob: f64,
}

const HANDLE_WORDS_A: [&str; 40] = [
    "quiet", "sunny", "lazy", "rapid", "cosmic", "pixel", "urban", "misty", "golden", "neon",
    "silent", "brave", "lucky", "retro", "clever", "frosty", "wild", "tiny", "atomic", "velvet",
    "crimson", "hidden", "electric", "lunar", "salty", "mellow", "stormy", "happy", "grumpy",
    "dusty", "swift", "noble", "fuzzy", "bold", "shy", "spicy", "chill", "vivid", "sleepy", "odd",
];
const HANDLE_WORDS_B: [&str; 40] = [
    "fox", "otter", "panda", "falcon", "tiger", "coder", "gamer", "lemur", "runner", "chef",
    "nomad", "owl", "wolf", "koala", "raven", "pilot", "artist", "dreamer", "maker", "rider",
    "bear", "lynx", "sparrow", "whale", "moth", "heron", "badger", "cat", "dog", "mango", "cactus",
    "comet", "river", "echo", "ninja", "wizard", "turtle", "beetle", "penguin", "yak",
];

/// The static tables and distributions a generator samples from.
pub(crate) struct World {
    pub authors: Vec<PoolAuthor>,
    platforms: WeightedIndex<u32>,
    cities: WeightedIndex<u32>,
    products: WeightedIndex<u32>,
    activity: Zipf<f64>,
    author_followers: LogNormal<f64>,
    actor_followers: LogNormal<f64>,
}

impl World {
    pub(crate) fn new() -> Self {
        let platforms = WeightedIndex::new(PLATFORM_WEIGHTS).expect("platform weights");
        let cities = WeightedIndex::new(CITIES.iter().map(|c| c.weight)).expect("city weights");
        let products =
            WeightedIndex::new(PRODUCTS.iter().map(|p| p.weight)).expect("product weights");
        let author_followers = AUTHOR_FOLLOWERS.distribution();
        let actor_followers = ACTOR_FOLLOWERS.distribution();
        let ordinary = (AUTHOR_POOL_SIZE - NOTABLE_AUTHORS) as f64;
        let activity = Zipf::new(ordinary, AUTHOR_ACTIVITY_EXPONENT).expect("zipf params");

        let mut rng = SmallRng::seed_from_u64(AUTHOR_POOL_SEED);
        let authors = (0..AUTHOR_POOL_SIZE)
            .map(|i| {
                let followers = if i < NOTABLE_AUTHORS {
                    let span = (NOTABLE_FOLLOWERS_MAX / NOTABLE_FOLLOWERS_MIN).ln();
                    NOTABLE_FOLLOWERS_MIN * (span * rng.random::<f64>()).exp()
                } else {
                    author_followers.sample(&mut rng)
                };
                PoolAuthor {
                    handle: handle(i),
                    followers: clamp_followers(followers),
                    home_city: cities.sample(&mut rng),
                    platform: Platform::ALL[platforms.sample(&mut rng)],
                    geo_tag_prob: rng.random_range(0.3..0.95),
                }
            })
            .collect();
        World {
            authors,
            platforms,
            cities,
            products,
            activity,
            author_followers,
            actor_followers,
        }
    }

    /// An ordinary pool author, active ones more often (Zipf over scattered ranks).
    pub(crate) fn active_author(&self, rng: &mut SmallRng) -> usize {
        let rank = self.activity.sample(rng) as usize - 1;
        NOTABLE_AUTHORS + (rank * ACTIVITY_SCATTER) % (AUTHOR_POOL_SIZE - NOTABLE_AUTHORS)
    }

    /// One of the media and influencer accounts.
    pub(crate) fn notable_author(&self, rng: &mut SmallRng) -> usize {
        rng.random_range(0..NOTABLE_AUTHORS)
    }

    pub(crate) fn platform(&self, rng: &mut SmallRng) -> Platform {
        Platform::ALL[self.platforms.sample(rng)]
    }

    /// The platform a pool author posts on this time.
    pub(crate) fn platform_of(&self, rng: &mut SmallRng, author: usize) -> Platform {
        if rng.random_bool(HOME_PLATFORM_PROB) {
            self.authors[author].platform
        } else {
            self.platform(rng)
        }
    }

    pub(crate) fn city(&self, rng: &mut SmallRng) -> usize {
        self.cities.sample(rng)
    }

    pub(crate) fn product(&self, rng: &mut SmallRng) -> usize {
        self.products.sample(rng)
    }

    /// Audience of a one-off author.
    pub(crate) fn author_followers(&self, rng: &mut SmallRng) -> u64 {
        clamp_followers(self.author_followers.sample(rng))
    }

    /// Audience of someone who likes, shares or comments.
    pub(crate) fn actor_followers(&self, rng: &mut SmallRng) -> u64 {
        clamp_followers(self.actor_followers.sample(rng))
    }
}

fn clamp_followers(value: f64) -> u64 {
    value.clamp(0.0, MAX_FOLLOWERS) as u64
}

/// A readable handle, unique per pool index ("quiet_fox", "sunny_otter7", ...).
fn handle(index: usize) -> String {
    let a = HANDLE_WORDS_A[index % HANDLE_WORDS_A.len()];
    let rest = index / HANDLE_WORDS_A.len();
    let b = HANDLE_WORDS_B[rest % HANDLE_WORDS_B.len()];
    let n = rest / HANDLE_WORDS_B.len();
    if n == 0 {
        format!("{a}_{b}")
    } else {
        format!("{a}_{b}{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn handles_are_unique() {
        let world = World::new();
        let handles: HashSet<&str> = world.authors.iter().map(|a| a.handle.as_str()).collect();
        assert_eq!(handles.len(), AUTHOR_POOL_SIZE);
    }

    #[test]
    fn the_pool_is_the_same_in_every_run() {
        let (a, b) = (World::new(), World::new());
        for (x, y) in a.authors.iter().zip(&b.authors) {
            assert_eq!(
                (&x.handle, x.followers, x.home_city),
                (&y.handle, y.followers, y.home_city)
            );
        }
    }

    #[test]
    fn audiences_are_heavy_tailed() {
        let world = World::new();
        let small = world.authors.iter().filter(|a| a.followers < 1_000).count();
        let huge = world
            .authors
            .iter()
            .filter(|a| a.followers > 1_000_000)
            .count();
        assert!(
            small * 10 > AUTHOR_POOL_SIZE * 8,
            "{small} authors under 1k"
        );
        assert!(
            (3..=NOTABLE_AUTHORS).contains(&huge),
            "{huge} authors over 1M"
        );
    }

    #[test]
    fn places_span_enough_countries() {
        let countries: HashSet<&str> = CITIES.iter().map(|c| c.country).collect();
        assert!(CITIES.len() >= 20 && countries.len() >= 8);
        assert!(countries
            .iter()
            .all(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_uppercase())));
    }
}
