//! The virality API: trending posts ranked by virality score, a post's prediction history,
//! momentum by product and hashtag, scoring a post sent in the request, and feedback.
//!
//! Handlers validate and answer; the queries are in `db::cascades`.

mod outcomes;
mod scoring;
mod trending;

use crate::models::errors::ErrorCode;
use serde_json::{json, Value};

pub use self::outcomes::{__path_feedback, feedback, Feedback};
pub use self::scoring::{
    __path_score, live_model, score, ScoreEngagement, ScorePost, ScoreRequest, ThresholdCache,
};
pub use self::trending::{
    __path_momentum, __path_post_virality, __path_trending_posts, momentum, post_virality,
    trending_posts, HistoryQuery, MomentumDimension, MomentumList, MomentumQuery,
    PostViralityHistory, TrendingPosts, TrendingQuery,
};
pub use crate::db::cascades::{CascadeStatus, ViralityView};
use crate::http::error::ApiError;

/// Largest page of trending posts.
pub const MAX_TRENDING: i64 = 200;
/// Most engagements `POST /api/v1/score` accepts.
pub const MAX_SCORE_ENGAGEMENTS: usize = 50_000;
/// Largest `count` of one engagement.
pub const MAX_COUNT: u32 = crate::models::event::MAX_ENGAGEMENT_COUNT;
/// Most history rows returned for a post.
pub const MAX_HISTORY: i64 = 1_000;

pub(super) fn invalid_request(errors: Vec<Value>) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidRequest,
        format!("{} field(s) of the request are invalid", errors.len()),
    )
    .with_details(json!({ "errors": errors }))
}

pub(super) fn field_error(field: impl Into<String>, reason: impl Into<String>) -> Value {
    json!({"field": field.into(), "reason": reason.into()})
}
