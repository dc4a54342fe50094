//! Posts for tests, here and in the server's unit tests (which enable the `fixtures` feature).

use chrono::{DateTime, Utc};

use super::{
    Analysis, AnalyzedPost, Author, EmotionScores, LanguageSource, LanguageSupport, Platform, Post,
    Probability, SentimentLabel, SentimentScore,
};

/// Five posts of one conversation (an outage in Lyon), in the words people would use.
pub const OUTAGE: [&str; 5] = [
    "pulse-buds outage in Lyon, nothing connects",
    "Lyon outage again, pulse-buds dead since noon",
    "is the pulse-buds outage in Lyon fixed yet?",
    "panne pulse-buds à Lyon, outage total",
    "Lyon pulse-buds outage day two",
];

/// A post `id` of `text` written at `created_at` by an author without followers, with
/// nothing else known (platform `other`).
pub fn post(id: &str, text: impl Into<String>, created_at: DateTime<Utc>) -> Post {
    Post {
        id: id.into(),
        platform: Platform::Other,
        author: Author {
            id: "author".into(),
            followers: 0,
        },
        text: text.into(),
        created_at,
        lang: None,
        geo: None,
        product: None,
        channel: None,
        parent_id: None,
        url: None,
        metrics: None,
    }
}

/// `post` as the pipeline stores it from stream entry `entry_id`, read as neutral by a model
/// named `test`, in no story or topic.
pub fn analyzed(post: Post, entry_id: impl Into<String>) -> AnalyzedPost {
    AnalyzedPost {
        entry_id: entry_id.into(),
        producer: super::producer::STREAM.into(),
        post,
        analysis: Analysis {
            sentiment_label: SentimentLabel::Neutral,
            sentiment_score: SentimentScore::new(0.0),
            emotions: EmotionScores::default(),
            toxicity: Probability::default(),
            hate: Probability::default(),
            churn_risk: Probability::default(),
            model: "test".into(),
            lang: None,
            lang_source: LanguageSource::Given,
            language_support: LanguageSupport::default(),
            shipped_sentiment: None,
        },
        story_id: None,
        topics: Vec::new(),
        filtered_topics: Vec::new(),
        search: Vec::new(),
    }
}
