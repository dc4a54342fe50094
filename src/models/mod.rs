//! Domain types shared by every stage: the event format producers send and the analysis Pulse
//! attaches to each post. Values are validated once, at the edge, and carry their ranges in
//! their types.

pub mod analysis;
pub mod event;
pub mod time;

pub use analysis::{Analysis, Emotion, EmotionScores, Probability, SentimentLabel, SentimentScore};
pub use event::{
    Author, Engagement, EngagementKind, Event, EventError, Geo, Platform, Post, PostMetrics,
};
