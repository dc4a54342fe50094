//! What the analyzers say about a post. Ranges are carried by the types so that a value that
//! reaches the database or a client is always in range.

use super::named::named_enum;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Sentiment polarity in -1..=1 (negative to positive).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SentimentScore(f32);

impl SentimentScore {
    /// Clamps into -1..=1; NaN becomes 0 (neutral) so a model glitch cannot poison aggregates.
    pub fn new(value: f32) -> Self {
        Self(clamped(value, -1.0, 1.0))
    }

    /// The raw value, always in -1..=1.
    pub fn get(self) -> f32 {
        self.0
    }
}

/// A probability or share in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Probability(f32);

impl Probability {
    /// Clamps into 0..=1; NaN becomes 0.
    pub fn new(value: f32) -> Self {
        Self(clamped(value, 0.0, 1.0))
    }

    /// The raw value, always in 0..=1.
    pub fn get(self) -> f32 {
        self.0
    }
}

/// `value` within `min..=max`, 0 for NaN: the rule of the range-carrying newtypes above.
fn clamped(value: f32, min: f32, max: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(min, max)
    }
}

/// A JSON number schema bounded to `min..=max`, for the range-carrying newtypes above.
fn bounded_number(min: f64, max: f64) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Float)))
        .minimum(Some(min))
        .maximum(Some(max))
        .into()
}

impl utoipa::PartialSchema for SentimentScore {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        bounded_number(-1.0, 1.0)
    }
}

impl ToSchema for SentimentScore {}

impl utoipa::PartialSchema for Probability {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        bounded_number(0.0, 1.0)
    }
}

impl ToSchema for Probability {}

named_enum! {
    /// The three-way sentiment label used everywhere in Pulse.
    SentimentLabel {
        Negative = "negative",
        Neutral = "neutral",
        Positive = "positive",
    }
}

named_enum! {
    /// The four emotions of the TweetEval emotion task, which Pulse reports.
    Emotion {
        Anger = "anger",
        Joy = "joy",
        Optimism = "optimism",
        Sadness = "sadness",
    }
}

/// A distribution over the four emotions (sums to 1 when any emotion is present).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct EmotionScores {
    pub anger: Probability,
    pub joy: Probability,
    pub optimism: Probability,
    pub sadness: Probability,
}

impl EmotionScores {
    /// The most likely emotion, or `None` when the distribution is empty.
    pub fn dominant(&self) -> Option<Emotion> {
        let scores = [self.anger, self.joy, self.optimism, self.sadness];
        let (index, best) = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.get().total_cmp(&b.1.get()))?;
        (best.get() > 0.0).then_some(Emotion::ALL[index])
    }
}

named_enum! {
    /// Whether the analysis of a post's language can be trusted.
    #[derive(Default)]
    LanguageSupport {
        /// A model measured on this language (trained on it, or read against a published figure on a public set: docs/languages.md) analysed the post.
        #[default]
        Supported = "supported",
        /// The multilingual model analysed it, but was never measured on this language (or the
        /// detector was unsure which language it is).
        Unverified = "unverified",
        /// No model here understands the language: the scores are the English lexicon's or model's
        /// and must not be read as sentiment. Aggregates and alerts leave such posts out.
        Unsupported = "unsupported",
    }
}

named_enum! {
    /// Where a post's language came from.
    LanguageSource {
        /// The producer's `lang`.
        Given = "given",
        /// Detected with a confidence the detector calls reliable.
        Detected = "detected",
        /// Detected, but the detector was unsure (short or mixed text): the code is its best guess.
        Unsure = "unsure",
        /// No letters to detect from (emoji, numbers, links only).
        Unknown = "unknown",
    }
}

/// Everything Pulse infers from a post's text, with the model that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub sentiment_label: SentimentLabel,
    pub sentiment_score: SentimentScore,
    pub emotions: EmotionScores,
    pub toxicity: Probability,
    /// Probability that the post is hate speech (a narrower call than toxicity).
    #[serde(default)]
    pub hate: Probability,
    pub churn_risk: Probability,
    /// Name and version of the model, e.g. `lexicon-vader@1`.
    pub model: String,
    /// The post's language (ISO 639-1 where it has a code), given or detected.
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default = "unknown_source")]
    pub lang_source: LanguageSource,
    #[serde(default)]
    pub language_support: LanguageSupport,
    /// The shipped model's own sentiment, before any calibration; none from the lexicon. Not
    /// stored: calibration reads it as it analyses.
    #[serde(skip)]
    pub shipped_sentiment: Option<ShippedSentiment>,
}

/// A model's sentiment as shipped: its label and its probability of each label, in
/// [`SentimentLabel::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShippedSentiment {
    pub label: SentimentLabel,
    pub probs: [f32; 3],
}

fn unknown_source() -> LanguageSource {
    LanguageSource::Unknown
}

/// A post with its analysis, ready to store.
#[derive(Debug, Clone)]
pub struct AnalyzedPost {
    pub entry_id: String,
    /// Who wrote it (see [`super::producer`]).
    pub producer: String,
    pub post: super::Post,
    pub analysis: Analysis,
    /// The story the post was placed in when it was committed, if any yet.
    pub story_id: Option<i64>,
    /// The topics it matched when it was analysed, by id.
    pub topics: Vec<super::topic::TopicMatch>,
    /// Topics its query matched that the topic's learned relevance left out: the post is kept,
    /// and counts in none of their figures.
    pub filtered_topics: Vec<super::topic::TopicMatch>,
    /// Its search vector, in PostgreSQL's binary `tsvector` form; empty for none yet (the
    /// search indexer writes it later).
    pub search: Vec<u8>,
}

impl AnalyzedPost {
    /// When the post reached Pulse: its stream entry's XADD time, read off its id, but never
    /// after `acked_at`, when its batch was acknowledged (which it is when the id carries no
    /// time). An id can claim a time ahead of the clock (a producer that sets ids itself puts
    /// every later entry's after its own), and a post received in the future would look
    /// created long before it arrived.
    pub fn received_at(
        &self,
        acked_at: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        self.entry_id
            .split_once('-')
            .and_then(|(ms, _)| ms.parse().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or(acked_at, |at| at.min(acked_at))
    }
}
