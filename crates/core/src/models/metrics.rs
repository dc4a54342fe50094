//! Windowed metrics: the windows, the dimensions posts are aggregated by, and the stats of one
//! slice of posts. Shared by the REST API, the live snapshot and the alert rules.

use super::named::named_enum;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub enum Window {
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "24h")]
    OneDay,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [
        Window::OneMinute,
        Window::FiveMinutes,
        Window::OneHour,
        Window::OneDay,
    ];

    /// Minutes the window spans.
    pub fn minutes(self) -> i64 {
        match self {
            Window::OneMinute => 1,
            Window::FiveMinutes => 5,
            Window::OneHour => 60,
            Window::OneDay => 1_440,
        }
    }

    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::OneMinute => "1m",
            Window::FiveMinutes => "5m",
            Window::OneHour => "1h",
            Window::OneDay => "24h",
        }
    }

    /// Start of the window: the first minute bucket it includes.
    pub fn start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        minute_of(now) - TimeDelta::minutes(self.minutes() - 1)
    }
}

/// What an aggregate covers: the minute buckets from `from` up to `to` (exclusive), or up to
/// now when `to` is `None` (a window). Rollups count whole minutes, so both ends are minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

impl Period {
    /// The window `window` ending at `now`.
    pub fn window(window: Window, now: DateTime<Utc>) -> Period {
        Period {
            from: window.start(now),
            to: None,
        }
    }

    /// `[from, to)`, each taken back to the start of its minute.
    pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Period {
        Period {
            from: minute_of(from),
            to: Some(minute_of(to)),
        }
    }

    /// The period as long as this one that ends where it starts (`None` for a window), cut at
    /// the earliest time there is.
    pub fn previous(self) -> Option<Period> {
        let to = self.to?;
        Some(Period {
            from: self
                .from
                .checked_sub_signed(to - self.from)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            to: Some(self.from),
        })
    }
}

/// The start of `at`'s minute.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

named_enum! {
    /// The dimensions Pulse aggregates by.
    Dimension {
        Overall = "overall",
        Platform = "platform",
        City = "city",
        Country = "country",
        Product = "product",
        Channel = "channel",
        /// The post's language (`und` when none could be said).
        Language = "language",
        /// The language support class (supported, unverified, unsupported).
        Support = "support",
        /// A topic the post matched (the key is the topic's id); a post counts under each.
        Topic = "topic",
    }
}

impl Dimension {
    /// The `posts` column holding this dimension's key (`overall` has none).
    pub fn post_column(self) -> &'static str {
        match self {
            Dimension::Language => "lang",
            Dimension::Support => "language_support",
            Dimension::Topic => "topics",
            d => d.as_str(),
        }
    }
}

/// Aggregates of one slice of posts over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub posts: i64,
    pub sentiment: SentimentStats,
    pub toxicity_mean: f64,
    pub churn: ChurnStats,
    pub emotions: EmotionCounts,
    pub engagement: EngagementTotals,
}

/// Sentiment of a slice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SentimentStats {
    pub mean: f64,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
    pub negative_share: f64,
    pub neutral_share: f64,
    pub positive_share: f64,
}

/// Churn risk of a slice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChurnStats {
    pub mean: f64,
    pub high: i64,
    pub high_share: f64,
}

/// Posts per dominant emotion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmotionCounts {
    pub anger: i64,
    pub joy: i64,
    pub optimism: i64,
    pub sadness: i64,
}

/// Engagement totals by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EngagementTotals {
    pub likes: i64,
    pub shares: i64,
    pub comments: i64,
    pub views: i64,
}

/// `part` of `whole`, 0 when `whole` is 0.
pub fn share(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

impl Stats {
    /// The stats of a slice from its sums: `int(i)` and `float(i)` read the i-th sum of the
    /// rollup query (posts, sentiment, negative, neutral, positive, toxicity, churn, high
    /// churn, anger, joy, optimism, sadness, likes, shares, comments, views).
    pub fn from_sums(int: impl Fn(usize) -> i64, float: impl Fn(usize) -> f64) -> Stats {
        let posts = int(0);
        let mean = |sum: f64| if posts > 0 { sum / posts as f64 } else { 0.0 };
        let (negative, neutral, positive) = (int(2), int(3), int(4));
        Stats {
            posts,
            sentiment: SentimentStats {
                mean: mean(float(1)),
                negative,
                neutral,
                positive,
                negative_share: share(negative, posts),
                neutral_share: share(neutral, posts),
                positive_share: share(positive, posts),
            },
            toxicity_mean: mean(float(5)),
            churn: ChurnStats {
                mean: mean(float(6)),
                high: int(7),
                high_share: share(int(7), posts),
            },
            emotions: EmotionCounts {
                anger: int(8),
                joy: int(9),
                optimism: int(10),
                sadness: int(11),
            },
            engagement: EngagementTotals {
                likes: int(12),
                shares: int(13),
                comments: int(14),
                views: int(15),
            },
        }
    }
}

/// One key of a dimension with its stats.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyedStats {
    pub key: String,
    #[serde(flatten)]
    pub stats: Stats,
}

/// One trending term.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TermStats {
    /// The term, or the hashtag with its `#`.
    pub term: String,
    /// Whether the term is a hashtag.
    pub hashtag: bool,
    /// Posts of the window that contain it.
    pub posts: i64,
    /// Mean sentiment score of those posts (-1 to 1).
    pub sentiment_mean: f64,
}
