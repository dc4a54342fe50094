//! What the pipeline publishes live: the topics clients subscribe to, the message types, and
//! the keys an event carries for subscribers' filters.

use serde::{Deserialize, Serialize};

use super::named::named_enum;
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

named_enum! {
    /// What a client can subscribe to.
    Topic {
        /// Every new post (`message:new`) and deletion of one (`message:deleted`), filtered.
        Posts = "posts",
        /// Live metrics snapshots (`metrics:initial`, then coalesced `metrics:update`).
        Metrics = "metrics",
        /// Alerts (`alert:<kind>`), filtered by the keys they carry.
        Alerts = "alerts",
        /// Virality updates (`virality:update`), filtered by the keys they carry.
        Virality = "virality",
        /// Stories born (`story:new`) and grown (`story:update`).
        Stories = "stories",
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
