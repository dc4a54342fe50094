//! A topic's learned relevance: `GET`, `PUT /api/v1/topics/{id}/relevance`. What it learned
//! from (labels of each class), the model it adopted and each it trained, and the threshold
//! under which a post is filtered out of the topic.

use actix_web::{get, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::NoTopic;
use crate::db::relevance::{self as db, ModelRecord};
use crate::http::answer::Answer;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::errors::ErrorCode;
use crate::topics::relevance::too_few;

/// A topic's relevance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Relevance {
    pub topic_id: i64,
    /// A post the adopted model gives a probability under this is filtered out of the topic.
    pub threshold: f32,
    /// The adopted model's id; null while the query alone decides.
    pub model_id: Option<i64>,
    /// Posts not deleted with a relevance label that counts, by what it says: a deleted post's
    /// label trains no model.
    pub related: i64,
    pub unrelated: i64,
    /// Posts counted in the topic, and filtered out of it.
    pub kept_posts: i64,
    pub filtered_posts: i64,
    /// Why no model is adopted yet, when none is.
    pub waiting_for: Option<String>,
    /// The models trained, newest first (at most 20), adopted or not, with what each was
    /// measured against.
    pub models: Vec<ModelRecord>,
}

/// `PUT /api/v1/topics/{id}/relevance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelevanceInput {
    /// Above 0 and below 1 (default 0.5): higher filters more.
    pub threshold: f32,
}

async fn read(client: &tokio_postgres::Client, topic: i64) -> Result<Relevance, ApiError> {
    let state = db::state(client, topic).await?;
    let (related, unrelated, kept, filtered) = db::counts(client, topic).await?;
    let waiting_for = state.model_id.is_none().then(|| {
        too_few(related as usize, unrelated as usize)
            .unwrap_or_else(|| "a model that beats the query alone out of fold".to_string())
    });
    Ok(Relevance {
        topic_id: topic,
        threshold: state.threshold,
        model_id: state.model_id,
        related,
        unrelated,
        kept_posts: kept,
        filtered_posts: filtered,
        waiting_for,
        models: db::models(client, topic).await?,
    })
}

fn no_topic(id: i64) -> ApiError {
    ApiError::not_found(format!("no live topic with id {id}"))
}

/// A topic's learned relevance.
#[utoipa::path(
    tag = "review", operation_id = "get_topic_relevance", summary = "A topic's learned relevance",
    params(("id" = i64, Path, description = "The topic's id")),
    responses(
        (status = 200, description = "Its labels, models and threshold", body = Relevance),
        NoTopic, PostgresUnavailable,
    )
)]
#[get("/api/v1/topics/{id}/relevance")]
pub async fn get_one(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    if crate::db::topics::get(&**client, *id).await?.is_none() {
        return Err(no_topic(*id));
    }
    Ok(HttpResponse::Ok().json(read(&client, *id).await?))
}

/// Sets a topic's threshold; a new one re-scores its stored posts under the adopted model, the
/// one it has changes nothing.
#[utoipa::path(
    tag = "review", operation_id = "set_topic_relevance",
    summary = "Set a topic's relevance threshold",
    params(("id" = i64, Path, description = "The topic's id")), request_body = RelevanceInput,
    responses(
        (status = 200, description = "Its relevance", body = Relevance),
        (status = 400, description = "A threshold not strictly between 0 and 1 (`invalid_label`)", body = ErrorBody),
        NoTopic, PostgresUnavailable,
    )
)]
#[put("/api/v1/topics/{id}/relevance")]
pub async fn update(state: State, id: web::Path<i64>, input: web::Json<RelevanceInput>) -> Answer {
    let threshold = input.threshold;
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLabel,
            "threshold must be above 0 and below 1",
        ));
    }
    let mut client = state.db().await?;
    let tx = client.transaction().await?;
    if crate::db::topics::get(&*tx, *id).await?.is_none() {
        return Err(no_topic(*id));
    }
    db::set_threshold(&tx, *id, threshold).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(read(&client, *id).await?))
}
