//! Domain types shared by every stage: the event format producers send and the analysis Pulse
//! attaches to each post. Values are validated once, at the edge, and carry their ranges in
//! their types.

pub mod alerts;
pub mod analysis;
pub mod backoff;
pub mod bounded;
pub mod deletion;
pub mod errors;
pub mod event;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod hex;
pub mod key_scope;
pub mod key_text;
pub mod label;
pub mod live;
pub mod metrics;
pub mod named;
pub mod places;
pub mod printable;
pub mod producer;
pub mod role;
pub mod text;
pub mod time;
pub mod topic;
pub mod views;
pub mod webhooks;

pub use analysis::{
    Analysis, AnalyzedPost, Emotion, EmotionScores, LanguageSource, LanguageSupport, Probability,
    SentimentLabel, SentimentScore, ShippedSentiment,
};
pub use event::{
    Author, Deletion, Engagement, EngagementKind, Event, EventError, Geo, Platform, Post,
    PostMetrics,
};
