//! Topics as the API and the pipeline carry them: what a post matched, and a topic's record.

use super::named::named_enum;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A topic a post matched, and the version of its query that matched.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub struct TopicMatch {
    pub id: i64,
    pub version: i32,
}

named_enum! {
    /// Whether a topic's posts are matched now.
    TopicStatus {
        /// New posts are matched against it.
        Active = "active",
        /// Kept with its posts and figures; new posts are not matched.
        Paused = "paused",
    }
}

/// A topic: a name and a query in the topic language (docs/topics.md).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicView {
    pub id: i64,
    pub name: String,
    pub query: String,
    /// The query's version: 1 when created, one more at every edit of the query.
    pub version: i32,
    pub status: TopicStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who created it (the key's or token's subject), when known.
    pub created_by: Option<String>,
}

/// One version of a topic's query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicVersionView {
    pub version: i32,
    pub query: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
}
