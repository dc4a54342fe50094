//! Feedback: an observed outcome or a corrected label for a post.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{field_error, invalid_request};
use crate::db::cascades::{self, NewFeedback, StoredFeedback};
use crate::db::query as sql;
use crate::http::answer::Answer;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::SentimentLabel;

/// `POST /api/v1/feedback`: an observed outcome or a corrected label for a post. At least one
/// outcome or a label is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    /// 1 to 256 bytes.
    #[schema(min_length = 1, max_length = 256)]
    pub post_id: String,
    #[schema(minimum = 0)]
    pub final_shares: Option<i64>,
    #[schema(minimum = 0)]
    pub final_likes: Option<i64>,
    #[schema(minimum = 0)]
    pub final_comments: Option<i64>,
    #[schema(minimum = 0)]
    pub final_views: Option<i64>,
    #[schema(value_type = Option<SentimentLabel>)]
    pub sentiment_label: Option<String>,
    /// At most 2,000 bytes.
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// Records feedback. A post has one feedback record: a later report on it replaces the values it
/// gives and keeps the others.
#[utoipa::path(
    tag = "virality", summary = "Record an outcome or a corrected label", request_body = Feedback,
    responses(
        (status = 201, description = "The post's feedback as stored", body = StoredFeedback),
        (status = 400, description = "Invalid fields (`invalid_request`, `details.errors` names \
            each) or a body that is not feedback (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "No stored post has this id (or it was deleted)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/feedback")]
pub async fn feedback(state: State, body: web::Json<Feedback>) -> Answer {
    let f = body.into_inner();
    let mut errors = Vec::new();
    if f.post_id.is_empty() || f.post_id.len() > crate::models::event::MAX_ID_BYTES {
        errors.push(field_error("post_id", "must be 1 to 256 bytes"));
    }
    for (name, value) in [
        ("final_shares", f.final_shares),
        ("final_likes", f.final_likes),
        ("final_comments", f.final_comments),
        ("final_views", f.final_views),
    ] {
        if value.is_some_and(|v| v < 0) {
            errors.push(field_error(name, "must not be negative"));
        }
    }
    if let Some(label) = &f.sentiment_label {
        if SentimentLabel::parse(label).is_none() {
            errors.push(field_error(
                "sentiment_label",
                "must be negative, neutral or positive",
            ));
        }
    }
    if f.note.as_ref().is_some_and(|n| n.len() > 2_000) {
        errors.push(field_error("note", "at most 2000 bytes"));
    }
    if let Some(field) = sql::unstorable([
        ("post_id", Some(f.post_id.as_str())),
        ("note", f.note.as_deref()),
    ]) {
        errors.push(field_error(field, "must not contain NUL characters"));
    }
    if f.final_shares.is_none()
        && f.final_likes.is_none()
        && f.final_comments.is_none()
        && f.final_views.is_none()
        && f.sentiment_label.is_none()
    {
        errors.push(field_error(
            "final_shares",
            "give at least one outcome (final_shares, final_likes, final_comments, final_views) or a sentiment_label",
        ));
    }
    if !errors.is_empty() {
        return Err(invalid_request(errors));
    }
    let client = state.db().await?;
    let Some(stored) = cascades::record_feedback(
        &client,
        &NewFeedback {
            post_id: &f.post_id,
            final_shares: f.final_shares,
            final_likes: f.final_likes,
            final_comments: f.final_comments,
            final_views: f.final_views,
            sentiment_label: f.sentiment_label.as_deref(),
            note: f.note.as_deref(),
        },
    )
    .await?
    else {
        return Err(ApiError::not_found(format!(
            "no stored post {}: feedback is for posts Pulse has stored (and not deleted)",
            f.post_id
        )));
    };
    Ok(HttpResponse::Created().json(stored))
}
