//! The one JSON shape of a stored post, as the REST API returns it and as live subscribers
//! receive it in `message:new`.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    AnalyzedPost, Emotion, EmotionScores, LanguageSource, LanguageSupport, Platform, SentimentLabel,
};

/// A stored post with its analysis, as the API (and the live `post:new` message) returns it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PostView {
    pub id: String,
    pub platform: Platform,
    pub author: AuthorView,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub lang: Option<String>,
    pub geo: GeoView,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub parent_id: Option<String>,
    pub url: Option<String>,
    /// Engagement counts the producer reported with the post; null when it sent none.
    pub metrics: Option<MetricsView>,
    pub analysis: AnalysisView,
    /// The story the post belongs to (`GET /api/v1/stories/{id}`); null while it is in none.
    #[serde(default)]
    pub story_id: Option<i64>,
    /// The topics the post matched (`GET /api/v1/topics/{id}`), by id.
    #[serde(default)]
    pub topics: Vec<i64>,
    /// The version of each topic's query that matched, in the order of `topics`.
    #[serde(default)]
    pub topic_versions: Vec<i32>,
    /// Topics its query matched that the topic's relevance (a reviewer's label, or the learned
    /// filter) left out: listed as filtered, counted in none of their figures.
    #[serde(default)]
    pub filtered_topics: Vec<i64>,
    pub ingested_at: DateTime<Utc>,
    /// When the platform deleted the post (only a post read by its id can be deleted:
    /// listings leave deleted posts out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Who wrote a post.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthorView {
    pub id: String,
    pub followers: i64,
}

/// Where a post was written, when known.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GeoView {
    pub city: Option<String>,
    pub country: Option<String>,
}

/// Engagement counts as the producer reported them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetricsView {
    pub likes: i64,
    pub shares: Option<i64>,
    pub comments: Option<i64>,
    pub views: Option<i64>,
}

/// The stored analysis of a post.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnalysisView {
    pub sentiment: StoredSentiment,
    pub emotions: EmotionScores,
    /// The dominant emotion; null when none scored above zero.
    pub emotion: Option<Emotion>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub toxicity: f32,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub hate: f32,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub churn_risk: f32,
    /// Name and version of the model, e.g. `lexicon-vader@1`.
    pub model: String,
    /// Where the post's `lang` came from: the producer (`given`), the detector (`detected`),
    /// the detector's best guess (`unsure`), or nowhere (`unknown`).
    pub lang_source: LanguageSource,
    /// Whether a model measured on the post's language analysed it
    /// (`supported`), one not measured on it (`unverified`), or none understands it
    /// (`unsupported`: the scores are not sentiment and aggregates leave the post out).
    pub language_support: LanguageSupport,
}

/// A stored sentiment label and score.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredSentiment {
    pub label: SentimentLabel,
    #[schema(minimum = -1.0, maximum = 1.0)]
    pub score: f32,
}

impl PostView {
    /// The view of a post that was just committed, built from what the pipeline wrote rather
    /// than read back, so live subscribers see the same shape as the API without a query.
    /// `ingested_at` is the caller's commit time (the stored value is the transaction's).
    pub fn from_analyzed(p: &AnalyzedPost, ingested_at: DateTime<Utc>) -> PostView {
        let post = &p.post;
        let analysis = &p.analysis;
        PostView {
            id: post.id.clone(),
            platform: post.platform,
            author: author_view(&post.author.id, saturating_i64(post.author.followers)),
            text: post.text.clone(),
            // PostgreSQL keeps microseconds; the stored value is the truncated one.
            created_at: post.created_at.trunc_subsecs(6),
            lang: analysis.lang.clone(),
            geo: geo_view(post.city(), post.country()),
            product: post.product.clone(),
            channel: post.channel.clone(),
            parent_id: post.parent_id.clone(),
            url: post.url.clone(),
            metrics: post.metrics.map(|m| {
                metrics_view(
                    saturating_i64(m.likes),
                    Some(saturating_i64(m.shares)),
                    Some(saturating_i64(m.comments)),
                    Some(saturating_i64(m.views)),
                )
            }),
            analysis: analysis_view(AnalysisColumns {
                label: analysis.sentiment_label,
                score: analysis.sentiment_score.get(),
                emotions: analysis.emotions,
                emotion: analysis.emotions.dominant(),
                toxicity: analysis.toxicity.get(),
                hate: analysis.hate.get(),
                churn_risk: analysis.churn_risk.get(),
                model: &analysis.model,
                lang_source: analysis.lang_source,
                language_support: analysis.language_support,
            }),
            story_id: p.story_id,
            topics: p.topics.iter().map(|t| t.id).collect(),
            topic_versions: p.topics.iter().map(|t| t.version).collect(),
            filtered_topics: p.filtered_topics.iter().map(|t| t.id).collect(),
            ingested_at,
            deleted_at: None,
        }
    }
}

/// A post's stored topics and versions (arrays in the same order, null for none), sorted by
/// topic id.
pub fn topics_view(topics: Option<Vec<i64>>, versions: Option<Vec<i32>>) -> (Vec<i64>, Vec<i32>) {
    let mut pairs: Vec<(i64, i32)> = topics
        .unwrap_or_default()
        .into_iter()
        .zip(versions.unwrap_or_default())
        .collect();
    pairs.sort_unstable();
    pairs.into_iter().unzip()
}

/// Counts are stored as `int8`; larger values are saturated the same way the store does.
pub fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn author_view(id: &str, followers: i64) -> AuthorView {
    AuthorView {
        id: id.to_string(),
        followers,
    }
}

pub fn geo_view(city: Option<&str>, country: Option<&str>) -> GeoView {
    GeoView {
        city: city.map(str::to_string),
        country: country.map(str::to_string),
    }
}

pub fn metrics_view(
    likes: i64,
    shares: Option<i64>,
    comments: Option<i64>,
    views: Option<i64>,
) -> MetricsView {
    MetricsView {
        likes,
        shares,
        comments,
        views,
    }
}

/// The analysis columns of a post, from a row or from the pipeline.
pub struct AnalysisColumns<'a> {
    pub label: SentimentLabel,
    pub score: f32,
    pub emotions: EmotionScores,
    pub emotion: Option<Emotion>,
    pub toxicity: f32,
    pub hate: f32,
    pub churn_risk: f32,
    pub model: &'a str,
    pub lang_source: LanguageSource,
    pub language_support: LanguageSupport,
}

pub fn analysis_view(a: AnalysisColumns<'_>) -> AnalysisView {
    AnalysisView {
        sentiment: StoredSentiment {
            label: a.label,
            score: a.score,
        },
        emotions: a.emotions,
        emotion: a.emotion,
        toxicity: a.toxicity,
        hate: a.hate,
        churn_risk: a.churn_risk,
        model: a.model.to_string(),
        lang_source: a.lang_source,
        language_support: a.language_support,
    }
}
