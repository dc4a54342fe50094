//! What the pipeline publishes live: the topics clients subscribe to, the message types, and
//! the keys an event carries for subscribers' filters.

use serde::{Deserialize, Serialize};

use super::{Platform, SentimentLabel};

/// `type` of a new committed post.
pub const MESSAGE_NEW: &str = "message:new";
/// `type` of a post deleted after it was pushed (`{"id", "deleted_at"}`): dashboards take
/// it out of what they show.
pub const MESSAGE_DELETED: &str = "message:deleted";
/// `type` of the metrics snapshot sent on subscribing to `metrics`.
pub const METRICS_INITIAL: &str = "metrics:initial";
/// `type` of a later metrics snapshot.
pub const METRICS_UPDATE: &str = "metrics:update";
/// `type` of virality updates.
pub const VIRALITY_UPDATE: &str = "virality:update";
/// `type` of a story just born.
pub const STORY_NEW: &str = "story:new";
/// `type` of a story that grew.
pub const STORY_UPDATE: &str = "story:update";
/// Prefix of alert `type`s: `alert:<kind>`.
pub const ALERT_PREFIX: &str = "alert:";

/// What a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every new post (`message:new`) and deletion of one (`message:deleted`), filtered.
    Posts,
    /// Live metrics snapshots (`metrics:initial`, then coalesced `metrics:update`).
    Metrics,
    /// Alerts (`alert:<kind>`), filtered by the keys they carry.
    Alerts,
    /// Virality updates (`virality:update`), filtered by the keys they carry.
    Virality,
    /// Stories born (`story:new`) and grown (`story:update`).
    Stories,
}

impl Topic {
    /// Every topic, in documentation order.
    pub const ALL: [Topic; 5] = [
        Topic::Posts,
        Topic::Metrics,
        Topic::Alerts,
        Topic::Virality,
        Topic::Stories,
    ];

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Posts => "posts",
            Topic::Metrics => "metrics",
            Topic::Alerts => "alerts",
            Topic::Virality => "virality",
            Topic::Stories => "stories",
        }
    }

    /// Parses a wire name; `None` for an unknown topic.
    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The dimensions an event can be filtered on. On an event, `None` means the event is not
/// about any particular value of that dimension (a post without a city, a stream-wide alert).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterKeys {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<SentimentLabel>,
    /// The post's language (ISO 639-1 where it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// On an event, the topics it is about (a post's matched topics, a topic's alert); on a
    /// filter, the topics of which an event must be about at least one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<i64>,
}
