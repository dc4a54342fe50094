//! Saved searches: `GET`, `POST /api/v1/saved-searches`, `GET`, `DELETE
//! /api/v1/saved-searches/{id}`. A query and its filters under a name, for the team to run
//! again, share by link or turn into a topic (`POST /api/v1/topics` with its query). Checked as
//! a search is, so a saved search always runs.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::saved_searches::{self as db, SaveError, SavedSearch};
use crate::http::answer::{self, Answer};
use crate::http::api::search::{prepare, SearchQuery};
use crate::http::api::topics::name_problem;
use crate::http::documented::{error_responses, Deleted};
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::filters::enumerated;
use crate::http::state::State;
use crate::models::errors::ErrorCode;

error_responses! {
    NoSavedSearch: 404 = "No saved search with this id",
}

/// Most saved searches a deployment holds.
pub const MAX_SAVED_SEARCHES: i64 = 1_000;
/// Most saved searches one key may have created (an administrator's count only towards
/// [`MAX_SAVED_SEARCHES`]).
pub const MAX_SAVED_SEARCHES_PER_KEY: i64 = 100;

/// The filters of a search, as `GET /api/v1/search` takes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedFilters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_support: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::models::time::bounded"
    )]
    pub from: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::models::time::bounded"
    )]
    pub to: Option<DateTime<Utc>>,
    /// `newest` or `relevance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// A search to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSavedSearch {
    /// 1 to 200 characters, unique whatever the case.
    pub name: String,
    pub query: String,
    #[serde(default)]
    pub filters: SavedFilters,
}

/// Every saved search.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SavedSearchList {
    /// By name.
    pub items: Vec<SavedSearch>,
}

fn no_saved_search(id: i64) -> ApiError {
    ApiError::not_found(format!("no saved search {id}"))
}

/// Lists the saved searches.
#[utoipa::path(
    tag = "search", operation_id = "list_saved_searches", summary = "List saved searches",
    responses(
        (status = 200, description = "Every saved search, by name", body = SavedSearchList),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/saved-searches")]
pub async fn list(state: State) -> Answer {
    let client = state.db().await?;
    Ok(HttpResponse::Ok().json(SavedSearchList {
        items: db::list(&**client).await?,
    }))
}

/// Saves a search.
#[utoipa::path(
    tag = "search", operation_id = "create_saved_search", summary = "Save a search",
    request_body = NewSavedSearch,
    responses(
        (status = 201, description = "The saved search", body = SavedSearch),
        (status = 400, description = "A query that does not parse (`invalid_topic_query`), a \
            bad filter (`invalid_query`), a bad name (`invalid_request`) or a body that is not \
            a saved search (`invalid_json`)", body = ErrorBody),
        (status = 409, description = "The name is taken (`name_taken`), or the caller's key \
            holds 100 saved searches or the deployment 1,000 (`limit_reached`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/saved-searches")]
pub async fn create(state: State, input: web::Json<NewSavedSearch>) -> Answer {
    let input = input.into_inner();
    if let Some(why) = name_problem(&input.name) {
        return Err(ApiError::bad_request(ErrorCode::InvalidRequest, why));
    }
    let f = input.filters.clone();
    prepare(&SearchQuery {
        q: input.query.clone(),
        platform: enumerated("platform", f.platform)?,
        product: f.product,
        city: f.city,
        country: f.country,
        channel: f.channel,
        lang: f.lang,
        language_support: enumerated("language_support", f.language_support)?,
        sentiment: enumerated("sentiment", f.sentiment)?,
        topic: f.topic,
        from: f.from,
        to: f.to,
        order: f.order,
        limit: None,
        cursor: None,
        facets: None,
        interval: None,
        exact: None,
        format: None,
    })?;
    let filters = serde_json::to_value(&input.filters).map_err(ApiError::internal)?;
    let actor = state.actor();
    let mut client = state.db().await?;
    let saved = db::create(
        &mut client,
        input.name.trim(),
        &input.query,
        &filters,
        Some(&actor),
        state.caps(&actor, MAX_SAVED_SEARCHES_PER_KEY, MAX_SAVED_SEARCHES),
    )
    .await
    .map_err(|e| match e {
        SaveError::NameTaken(name) => ApiError::new(
            ErrorCode::NameTaken,
            format!("a saved search named `{name}` exists"),
        ),
        SaveError::TooMany(limit) => ApiError::limit_reached(limit, "saved searches", None),
        SaveError::Db(e) => e.into(),
    })?;
    Ok(HttpResponse::Created().json(saved))
}

/// One saved search.
#[utoipa::path(
    tag = "search", operation_id = "get_saved_search", summary = "One saved search",
    params(("id" = i64, Path, description = "The saved search's id")),
    responses(
        (status = 200, description = "The saved search", body = SavedSearch),
        NoSavedSearch, PostgresUnavailable,
    )
)]
#[get("/api/v1/saved-searches/{id}")]
pub async fn get_one(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    answer::found(db::get(&**client, *id).await?, || no_saved_search(*id))
}

/// Deletes a saved search.
#[utoipa::path(
    tag = "search", operation_id = "delete_saved_search", summary = "Delete a saved search",
    params(("id" = i64, Path, description = "The saved search's id")),
    responses(Deleted, NoSavedSearch, PostgresUnavailable)
)]
#[delete("/api/v1/saved-searches/{id}")]
pub async fn remove(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    answer::deleted(db::delete(&**client, *id).await?, || no_saved_search(*id))
}
