//! A post just marked deleted, as the store and the raced-deletion sweeper report it to the
//! live stages (trending terms, WebSocket subscribers, alert evidence, the virality tracker).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::live::FilterKeys;
use super::{Platform, SentimentLabel};

/// What the live stages need of a deleted post (the SQL function `deleted_post` builds it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeletedPost {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: DateTime<Utc>,
    /// Kept only to take the post's terms back out of the trending terms; never shown.
    pub text: String,
    pub sentiment_score: f32,
    pub sentiment_label: SentimentLabel,
    pub platform: String,
    pub city: Option<String>,
    pub country: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub lang: Option<String>,
    #[serde(default)]
    pub topics: Vec<i64>,
}

impl DeletedPost {
    /// The keys subscribers' filters see, as they saw them on the post.
    pub fn filter_keys(&self) -> FilterKeys {
        FilterKeys {
            platform: Platform::parse(&self.platform),
            product: self.product.clone(),
            city: self.city.clone(),
            country: self.country.clone(),
            channel: self.channel.clone(),
            sentiment: Some(self.sentiment_label),
            lang: self.lang.clone(),
            topics: self.topics.clone(),
        }
    }

    /// What `message:deleted` carries: which post, and since when.
    pub fn notice(&self) -> DeletedNotice<'_> {
        DeletedNotice {
            id: &self.id,
            deleted_at: self.deleted_at,
        }
    }
}

/// The data of a `message:deleted`.
#[derive(Debug, Serialize)]
pub struct DeletedNotice<'a> {
    pub id: &'a str,
    pub deleted_at: DateTime<Utc>,
}
