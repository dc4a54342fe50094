//! `GET /api/v1/stories` (newest or fastest-growing first, filtered like the other metrics
//! endpoints) and `GET /api/v1/stories/{id}` (one story with what its posts say).

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::stories::{self, StoryDetail, StoryOrder, StorySelection, StorySummary};
use crate::http::answer::{self, Answer};
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::filters::with_post_filters;
use crate::http::state::State;
use crate::models::errors::ErrorCode;

/// Stories a page holds when the caller does not ask.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;
/// The growth window when the caller does not ask: an hour.
const DEFAULT_WINDOW_SECS: i64 = 3_600;
const MAX_WINDOW_SECS: i64 = 7 * 86_400;

with_post_filters! {
    /// Filters of the story listing; every one is optional. A post filter keeps the stories
    /// with at least one post it matches.
    #[derive(Debug, Default, Deserialize, IntoParams)]
    #[serde(deny_unknown_fields)]
    #[into_params(parameter_in = Query)]
    pub struct StoryQuery {
        /// Stories with a post at or after this time (RFC 3339).
        #[serde(default, deserialize_with = "crate::models::time::bounded")]
        pub from: Option<DateTime<Utc>>,
        /// Stories with a post before this time (RFC 3339).
        #[serde(default, deserialize_with = "crate::models::time::bounded")]
        pub to: Option<DateTime<Utc>>,
        /// `live` or `faded` (default: both).
        pub status: Option<String>,
        /// `newest` (born most recently first, the default) or `growing` (most posts in the
        /// window before each story's latest post first).
        pub sort: Option<String>,
        /// The growth window in seconds, 60 to 604800 (default 3600).
        #[param(minimum = 60, maximum = 604800)]
        pub window_secs: Option<i64>,
        /// Stories to return, 1 to 200 (default 50).
        #[param(minimum = 1, maximum = 200)]
        pub limit: Option<i64>,
    }
}

/// Stories, in the order asked for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoryList {
    pub items: Vec<StorySummary>,
}

fn window(secs: Option<i64>) -> Result<i64, ApiError> {
    let secs = secs.unwrap_or(DEFAULT_WINDOW_SECS);
    if !(60..=MAX_WINDOW_SECS).contains(&secs) {
        return Err(ApiError::invalid_query(format!(
            "window_secs must be between 60 and {MAX_WINDOW_SECS}"
        )));
    }
    Ok(secs)
}

impl StoryQuery {
    /// The stories the query selects.
    pub fn selection(&self) -> Result<StorySelection, ApiError> {
        let q = self;
        let limit = crate::http::filters::page_limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        let order = match q.sort.as_deref() {
            None | Some("newest") => StoryOrder::Newest,
            Some("growing") => StoryOrder::Growing,
            Some(_) => {
                return Err(ApiError::invalid_query(
                    "sort must be `newest` or `growing`",
                ))
            }
        };
        if let Some(status) = q.status.as_deref() {
            if !matches!(status, "live" | "faded") {
                return Err(ApiError::invalid_query("status must be `live` or `faded`"));
            }
        }
        let filters = q.post_filters()?;
        Ok(StorySelection {
            filters,
            from: q.from,
            to: q.to,
            status: q.status.clone(),
            order,
            window_secs: window(q.window_secs)?,
            limit,
        })
    }
}

/// Lists stories.
#[utoipa::path(
    tag = "stories", operation_id = "list_stories", summary = "List stories",
    description = "What the posts are about: stories Pulse found live, newest or fastest-growing first.",
    params(StoryQuery),
    responses(
        (status = 200, description = "Stories", body = StoryList),
        (status = 400, description = "A bad filter, sort, window or limit (`invalid_query`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/stories")]
pub async fn list(state: State, query: web::Query<StoryQuery>) -> Answer {
    let selection = query.selection()?;
    let client = state.db().await?;
    let items = stories::list(&client, selection).await?;
    Ok(HttpResponse::Ok().json(StoryList { items }))
}

/// Growth window of the story view.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StoryViewQuery {
    /// The window of `recent`, in seconds, 60 to 604800 (default 3600).
    #[param(minimum = 60, maximum = 604800)]
    pub window_secs: Option<i64>,
}

/// One story.
#[utoipa::path(
    tag = "stories", operation_id = "get_story", summary = "One story",
    description = "A story with its sentiment and emotion mix, languages, products, places, \
            growth per hour and representative posts. A merged story answers with `status` \
            `merged` and `merged_into`.",
    params(("id" = i64, Path, description = "The story's id"), StoryViewQuery),
    responses(
        (status = 200, description = "The story", body = StoryDetail),
        (status = 400, description = "Not a story id (`invalid_path`) or a bad window (`invalid_query`)", body = ErrorBody),
        (status = 404, description = "No story with this id", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/stories/{id}")]
pub async fn get_one(
    state: State,
    id: web::Path<String>,
    query: web::Query<StoryViewQuery>,
) -> Answer {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(ErrorCode::InvalidPath, "a story id is a whole number")
    })?;
    let window = window(query.window_secs)?;
    let client = state.db().await?;
    answer::found(stories::detail(&client, id, window).await?, || {
        ApiError::not_found(format!("no story with id {id}"))
    })
}
