//! `GET /api/v1/posts` (filtered, newest first, keyset-paginated) and `GET /api/v1/posts/{id}`.

use crate::models::errors::ErrorCode;
use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::posts::{self, PostSelection};
use crate::db::query as sql;
use crate::http::answer::Answer;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::filters::with_post_filters;
use crate::http::state::State;
use crate::http::{answer, cursor};
pub use crate::models::views::PostView;

/// Page size when the caller does not ask for one.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: i64 = 500;

with_post_filters! {
    /// Filters of the post listing; every one is optional.
    #[derive(Debug, Deserialize, IntoParams)]
    #[serde(deny_unknown_fields)]
    #[into_params(parameter_in = Query)]
    pub struct PostQuery {
        /// A topic's id: only posts its query matched that its relevance (a reviewer's label or
        /// its learned filter) left out, which `topic` does not list.
        pub filtered_topic: Option<i64>,
        /// Inclusive lower bound on `created_at` (RFC 3339).
        #[serde(default, deserialize_with = "crate::models::time::bounded")]
        pub from: Option<DateTime<Utc>>,
        /// Exclusive upper bound on `created_at` (RFC 3339).
        #[serde(default, deserialize_with = "crate::models::time::bounded")]
        pub to: Option<DateTime<Utc>>,
        /// Page size, 1 to 500 (default 50).
        #[param(minimum = 1, maximum = 500)]
        pub limit: Option<i64>,
        /// Opaque cursor from the previous page's `next_cursor`.
        pub cursor: Option<String>,
    }
}

/// A page of posts, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PostPage {
    pub items: Vec<PostView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Keyset cursor: the (created_at, id) of the last post of a page.
fn encode_cursor(created_at: DateTime<Utc>, id: &str) -> String {
    cursor::encode(&format!("{}|{id}", created_at.timestamp_micros()))
}

fn decode_cursor(encoded: &str) -> Option<(DateTime<Utc>, String)> {
    let raw = cursor::decode(encoded)?;
    let (micros, id) = raw.split_once('|')?;
    if !sql::storable(id) {
        return None;
    }
    Some((cursor::time(micros)?, id.to_string()))
}

/// A 400 for a path id no post can have (empty, longer than ids may be, or holding NUL), so
/// lookups only ever bind ids that could be stored.
pub fn check_post_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > crate::models::event::MAX_ID_BYTES || !sql::storable(id) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidPath,
            "a post id is 1 to 256 bytes without NUL characters",
        ));
    }
    Ok(())
}

/// Lists posts newest first.
#[utoipa::path(
    tag = "posts", operation_id = "list_posts", summary = "List posts",
    description = "Stored posts with their analysis, newest first, filtered and keyset-paginated.",
    params(PostQuery),
    responses(
        (status = 200, description = "A page of posts", body = PostPage),
        (status = 400, description = "A bad filter, limit or cursor (`invalid_query`, \
            `invalid_cursor`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/posts")]
pub async fn list(state: State, query: web::Query<PostQuery>) -> Answer {
    let q = query.into_inner();
    let limit = crate::http::filters::page_limit(q.limit, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let filters = q.post_filters()?;
    let mut filters = filters;
    if let Some(id) = q.filtered_topic {
        filters.push(("filtered_topics", id.to_string()));
    }
    let cursor = match &q.cursor {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::bad_request(ErrorCode::InvalidCursor, "cursor is not valid")
        })?),
        None => None,
    };

    let client = state.db().await?;
    let mut items = posts::list(
        &client,
        PostSelection {
            filters,
            from: q.from,
            to: q.to,
            after: cursor,
            rows: limit + 1,
        },
    )
    .await?;
    let next_cursor =
        cursor::trim_to_page(&mut items, limit, |p| encode_cursor(p.created_at, &p.id));
    Ok(HttpResponse::Ok().json(PostPage { items, next_cursor }))
}

/// One post by id.
#[utoipa::path(
    tag = "posts", operation_id = "get_post", summary = "One post",
    params(("id" = String, Path, description = "The post's id (1 to 256 bytes)")),
    responses(
        (status = 200, description = "The post with its analysis", body = PostView),
        (status = 400, description = "Not a possible post id (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No post with this id", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/posts/{id}")]
pub async fn get_one(state: State, id: web::Path<String>) -> Answer {
    check_post_id(&id)?;
    let client = state.db().await?;
    answer::found(posts::get(&client, &id).await?, || {
        ApiError::not_found(format!("no post with id `{id}`"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let c = encode_cursor(at, "post|with|bars");
        assert_eq!(decode_cursor(&c), Some((at, "post|with|bars".to_string())));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor("abc"), None);
        assert_eq!(decode_cursor(""), None);
        assert_eq!(decode_cursor(&encode_cursor(at, "nul\0")), None);
        let ancient = crate::models::hex::hex(b"-3000000000000000000|x");
        assert_eq!(decode_cursor(&ancient), None);
    }
}
