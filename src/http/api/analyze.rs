//! `POST /api/v1/analyze`: analyses texts synchronously with the same analyzer pool as the
//! pipeline, for trying Pulse out, checking a model, or scoring text that never enters the
//! stream. Nothing is stored. The endpoint takes only the share of the pool the pipeline
//! leaves it (see [`crate::actors::analyzer::share`]); past it, 503 `busy`.

use crate::models::errors::ErrorCode;
use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::actors::analyzer::share::ShareError;
use crate::analysis::language::is_language_tag;
use crate::analysis::DecisionThresholds;
use crate::http::answer::Answer;
use crate::http::api::virality::{field_error, invalid_request};
use crate::http::documented::AnalysisBusy;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::State;
use crate::models::bounded::Bounded;
use crate::models::event::{MAX_LABEL_BYTES, MAX_TEXT_BYTES};
use crate::models::{
    Emotion, EmotionScores, LanguageSource, LanguageSupport, Probability, SentimentLabel,
    SentimentScore,
};
use crate::telemetry::names;

/// Most texts in one request; larger jobs belong on the stream.
pub const MAX_TEXTS: usize = 256;

/// The request body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// 1 to 256 texts of at most 20,000 bytes each: a string, or `{"text", "lang"}` where the
    /// caller knows the text's language.
    #[schema(value_type = Vec<TextInput>, min_items = 1, max_items = 256)]
    #[serde(deserialize_with = "texts_kept")]
    pub texts: Bounded<TextInput>,
}

/// The texts of a request, as many as one may hold, and how many it gave.
fn texts_kept<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Bounded<TextInput>, D::Error> {
    Bounded::read(d, MAX_TEXTS)
}

/// One text, with its language when the caller knows it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TextInput {
    /// Its language is detected.
    Plain(String),
    Tagged(TaggedText),
}

/// A text and the language it is written in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaggedText {
    pub text: String,
    /// ISO 639-1 or 639-3 (`de`, `fil`), a region allowed (`pt-BR`): routed as a post tagged so
    /// is; absent or null, detected.
    pub lang: Option<String>,
}

impl TextInput {
    fn into_parts(self) -> (String, Option<String>) {
        match self {
            TextInput::Plain(text) => (text, None),
            TextInput::Tagged(t) => (t.text, t.lang),
        }
    }
}

/// The sentiment of a text.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SentimentView {
    pub label: SentimentLabel,
    pub score: SentimentScore,
}

/// What the analyzer says about one text, with the backend's decisions applied.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TextAnalysis {
    pub sentiment: SentimentView,
    pub emotions: EmotionScores,
    /// The dominant emotion; null when no emotion scores above zero.
    pub emotion: Option<Emotion>,
    pub toxicity: Probability,
    /// Whether `toxicity` reaches the backend's offensive threshold.
    pub offensive: bool,
    pub hate: Probability,
    /// Whether `hate` reaches the backend's hate threshold.
    pub hateful: bool,
    pub churn_risk: Probability,
    /// Name and version of the model that produced it.
    pub model: String,
    /// The text's detected language (ISO 639-1 where it has one); null when it has no letters.
    pub lang: Option<String>,
    pub lang_source: LanguageSource,
    /// Whether a model measured on that language (docs/languages.md) analysed the text.
    pub language_support: LanguageSupport,
}

/// The answer: one analysis per text, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyzeResponse {
    /// The model of the first analysis (every text of a request goes to one backend).
    pub model: Option<String>,
    pub thresholds: DecisionThresholds,
    pub analyses: Vec<TextAnalysis>,
}

/// Analyses up to [`MAX_TEXTS`] texts and returns one analysis per text, in order.
#[utoipa::path(
    tag = "analysis", summary = "Analyse texts synchronously", request_body = AnalyzeRequest,
    responses(
        (status = 200, description = "One analysis per text, in order", body = AnalyzeResponse),
        (status = 400, description = "Not valid JSON for this body (`invalid_json`), no texts \
            (`empty_batch`), more than 256 texts (`too_many_texts`), a text longer than 20,000 \
            bytes (`text_too_long`) or a `lang` that is not a language tag (`invalid_request`, \
            `details.errors` names each)", body = ErrorBody),
        (status = 500, description = "The analyzer failed", body = ErrorBody),
        (status = 503, description = "No analyzer in this process, or it is restarting \
            (`unavailable`); the API's share of the analyzer is taken, or the pipeline is behind \
            (`busy`, `Retry-After`)", body = ErrorBody),
        AnalysisBusy,
    )
)]
#[post("/api/v1/analyze")]
pub async fn analyze(state: State, body: web::Json<AnalyzeRequest>) -> Answer {
    let texts = body.into_inner().texts;
    ApiError::check_batch(texts.received, MAX_TEXTS, "texts", ErrorCode::TooManyTexts)?;
    let texts: Vec<(String, Option<String>)> =
        texts.items.into_iter().map(TextInput::into_parts).collect();
    if let Some(index) = texts.iter().position(|(t, _)| t.len() > MAX_TEXT_BYTES) {
        return Err(ApiError::bad_request(
            ErrorCode::TextTooLong,
            format!("text {index} is longer than {MAX_TEXT_BYTES} bytes"),
        )
        .with_details(json!({"index": index, "limit": MAX_TEXT_BYTES})));
    }
    let bad_langs: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .filter(|(_, (_, lang))| {
            lang.as_deref()
                .is_some_and(|l| l.len() > MAX_LABEL_BYTES || !is_language_tag(l))
        })
        .map(|(i, _)| {
            field_error(
                format!("texts[{i}].lang"),
                "must be a language tag: ISO 639-1 or 639-3 (`de`, `fil`), a region allowed (`pt-BR`)",
            )
        })
        .collect();
    if !bad_langs.is_empty() {
        return Err(invalid_request(bad_langs));
    }
    let Some(ingest) = state.ingest.as_ref() else {
        return Err(ApiError::unavailable("this process runs no analyzer"));
    };
    let n = texts.len();
    let caller = state.client_id();
    let reply = ingest
        .api_share
        .analyze_tagged(&ingest.analyzer, &ingest.route, &caller, texts)
        .await
        .map_err(share_error)?;
    metrics::counter!(names::HTTP_ANALYZED_TEXTS).increment(n as u64);
    let thresholds = reply.thresholds;
    let analyses: Vec<TextAnalysis> = reply
        .analyses
        .iter()
        .zip(&reply.thresholds_each)
        .map(|(a, thresholds)| TextAnalysis {
            sentiment: SentimentView {
                label: a.sentiment_label,
                score: a.sentiment_score,
            },
            emotions: a.emotions,
            emotion: a.emotions.dominant(),
            toxicity: a.toxicity,
            offensive: a.toxicity.get() >= thresholds.offensive,
            hate: a.hate,
            hateful: a.hate.get() >= thresholds.hate,
            churn_risk: a.churn_risk,
            model: a.model.clone(),
            lang: a.lang.clone(),
            lang_source: a.lang_source,
            language_support: a.language_support,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AnalyzeResponse {
        model: reply.analyses.first().map(|a| a.model.clone()),
        thresholds,
        analyses,
    }))
}

/// The answer to a request the analyzer's API share could not serve.
pub(super) fn share_error(e: ShareError) -> ApiError {
    match e {
        ShareError::CallerBusy => ApiError::rate_limited(
            "analysis",
            "this caller's previous analysis is still running; one at a time",
            std::time::Duration::from_secs(1),
        ),
        ShareError::Busy => ApiError::busy_for(
            "analyzer",
            "the analyzer's share for direct analysis is in use, or the pipeline is behind; \
             retry shortly",
            1,
        ),
        ShareError::Unavailable => ApiError::unavailable("the analyzer pool is restarting; retry"),
        ShareError::Failed(e) => ApiError::internal(format!("analysis failed: {}", e.0)),
    }
}
