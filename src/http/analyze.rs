//! `POST /api/v1/analyze`: analyses texts synchronously with the same analyzer pool as the
//! pipeline, for trying Pulse out, checking a model, or scoring text that never enters the
//! stream. Nothing is stored.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::AppState;
use crate::actors::messages::AnalyzeTexts;
use crate::models::event::MAX_TEXT_BYTES;
use crate::telemetry::names;

/// Most texts in one request; larger jobs belong on the stream.
pub const MAX_TEXTS: usize = 256;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    pub texts: Vec<String>,
}

/// Analyses up to [`MAX_TEXTS`] texts and returns one analysis per text, in order.
#[post("/api/v1/analyze")]
pub async fn analyze(
    state: web::Data<AppState>,
    body: web::Json<AnalyzeRequest>,
) -> Result<HttpResponse, ApiError> {
    let texts = body.into_inner().texts;
    if texts.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "no texts in the request",
        ));
    }
    if texts.len() > MAX_TEXTS {
        return Err(ApiError::bad_request(
            "too_many_texts",
            format!(
                "{} texts in one request; the limit is {MAX_TEXTS}",
                texts.len()
            ),
        )
        .with_details(json!({"limit": MAX_TEXTS, "received": texts.len()})));
    }
    if let Some(index) = texts.iter().position(|t| t.len() > MAX_TEXT_BYTES) {
        return Err(ApiError::bad_request(
            "text_too_long",
            format!("text {index} is longer than {MAX_TEXT_BYTES} bytes"),
        )
        .with_details(json!({"index": index, "limit": MAX_TEXT_BYTES})));
    }
    let Some(ingest) = state.ingest.as_ref() else {
        return Err(ApiError::unavailable("this process runs no analyzer"));
    };
    let n = texts.len();
    let reply = ingest
        .analyzer
        .addr()
        .send(AnalyzeTexts(texts))
        .await
        .map_err(|_| ApiError::unavailable("the analyzer pool is restarting; retry"))?
        .map_err(|e| ApiError::internal(format!("analysis failed: {}", e.0)))?;
    metrics::counter!(names::HTTP_ANALYZED_TEXTS).increment(n as u64);
    let thresholds = reply.thresholds;
    let analyses: Vec<serde_json::Value> = reply
        .analyses
        .iter()
        .map(|a| {
            json!({
                "sentiment": {"label": a.sentiment_label, "score": a.sentiment_score},
                "emotions": a.emotions,
                "emotion": a.emotions.dominant(),
                "toxicity": a.toxicity,
                "offensive": a.toxicity.get() >= thresholds.offensive,
                "hate": a.hate,
                "hateful": a.hate.get() >= thresholds.hate,
                "churn_risk": a.churn_risk,
                "model": a.model,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "model": reply.analyses.first().map(|a| a.model.as_str()),
        "thresholds": thresholds,
        "analyses": analyses,
    })))
}
