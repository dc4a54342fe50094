//! `GET /api/v1/posts` (filtered, newest first, keyset-paginated) and `GET /api/v1/posts/{id}`.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::filters::PostFilters;
use super::sql::{self, Conditions};
use super::state::State;
use crate::actors::messages::AnalyzedPost;
use crate::models::EmotionScores;

/// Page size when the caller does not ask for one.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: i64 = 500;

const POST_COLUMNS: &str = "id, platform, author_id, author_followers, text, created_at, lang, \
    city, country, product, channel, parent_id, url, likes, shares, comments, views, \
    sentiment_label, sentiment_score, emotions, emotion, toxicity, hate, churn_risk, model, \
    ingested_at";

/// Filters of the post listing; every one is optional.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PostQuery {
    #[param(value_type = Option<crate::models::Platform>)]
    pub platform: Option<String>,
    pub product: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub channel: Option<String>,
    #[param(value_type = Option<crate::models::SentimentLabel>)]
    pub sentiment: Option<String>,
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

/// A stored post with its analysis, as the API (and the live `post:new` message) returns it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PostView {
    pub id: String,
    #[schema(value_type = crate::models::Platform)]
    pub platform: String,
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
    pub ingested_at: DateTime<Utc>,
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
    #[schema(value_type = Option<crate::models::Emotion>)]
    pub emotion: Option<String>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub toxicity: f32,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub hate: f32,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub churn_risk: f32,
    /// Name and version of the model, e.g. `lexicon-vader@1`.
    pub model: String,
}

/// A stored sentiment label and score.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredSentiment {
    #[schema(value_type = crate::models::SentimentLabel)]
    pub label: String,
    #[schema(minimum = -1.0, maximum = 1.0)]
    pub score: f32,
}

/// A page of posts, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PostPage {
    pub items: Vec<PostView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl PostView {
    fn from_row(row: &Row) -> PostView {
        let likes: Option<i64> = row.get("likes");
        let metrics = likes.map(|likes| {
            metrics_json(
                likes,
                row.get::<_, Option<i64>>("shares"),
                row.get::<_, Option<i64>>("comments"),
                row.get::<_, Option<i64>>("views"),
            )
        });
        PostView {
            id: row.get("id"),
            platform: row.get("platform"),
            author: author_json(row.get("author_id"), row.get("author_followers")),
            text: row.get("text"),
            created_at: row.get("created_at"),
            lang: row.get("lang"),
            geo: geo_json(row.get("city"), row.get("country")),
            product: row.get("product"),
            channel: row.get("channel"),
            parent_id: row.get("parent_id"),
            url: row.get("url"),
            metrics,
            analysis: analysis_json(AnalysisColumns {
                label: row.get("sentiment_label"),
                score: row.get("sentiment_score"),
                emotions: serde_json::from_value(row.get("emotions")).unwrap_or_default(),
                emotion: row.get("emotion"),
                toxicity: row.get("toxicity"),
                hate: row.get("hate"),
                churn_risk: row.get("churn_risk"),
                model: row.get("model"),
            }),
            ingested_at: row.get("ingested_at"),
        }
    }

    /// The view of a post that was just committed, built from what the pipeline wrote rather
    /// than read back, so live subscribers see the same shape as the API without a query.
    /// `ingested_at` is the caller's commit time (the stored value is the transaction's).
    pub fn from_analyzed(p: &AnalyzedPost, ingested_at: DateTime<Utc>) -> PostView {
        let post = &p.post;
        let analysis = &p.analysis;
        PostView {
            id: post.id.clone(),
            platform: post.platform.as_str().to_string(),
            author: author_json(&post.author.id, saturating_i64(post.author.followers)),
            text: post.text.clone(),
            // PostgreSQL keeps microseconds; the stored value is the truncated one.
            created_at: post.created_at.trunc_subsecs(6),
            lang: post.lang.clone(),
            geo: geo_json(post.city(), post.country()),
            product: post.product.clone(),
            channel: post.channel.clone(),
            parent_id: post.parent_id.clone(),
            url: post.url.clone(),
            metrics: post.metrics.map(|m| {
                metrics_json(
                    saturating_i64(m.likes),
                    Some(saturating_i64(m.shares)),
                    Some(saturating_i64(m.comments)),
                    Some(saturating_i64(m.views)),
                )
            }),
            analysis: analysis_json(AnalysisColumns {
                label: analysis.sentiment_label.as_str(),
                score: analysis.sentiment_score.get(),
                emotions: analysis.emotions,
                emotion: analysis.emotions.dominant().map(|e| e.as_str()),
                toxicity: analysis.toxicity.get(),
                hate: analysis.hate.get(),
                churn_risk: analysis.churn_risk.get(),
                model: &analysis.model,
            }),
            ingested_at,
        }
    }
}

/// Counts are stored as `int8`; larger values are saturated the same way the store does.
fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn author_json(id: &str, followers: i64) -> AuthorView {
    AuthorView {
        id: id.to_string(),
        followers,
    }
}

fn geo_json(city: Option<&str>, country: Option<&str>) -> GeoView {
    GeoView {
        city: city.map(str::to_string),
        country: country.map(str::to_string),
    }
}

fn metrics_json(
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
struct AnalysisColumns<'a> {
    label: &'a str,
    score: f32,
    emotions: EmotionScores,
    emotion: Option<&'a str>,
    toxicity: f32,
    hate: f32,
    churn_risk: f32,
    model: &'a str,
}

fn analysis_json(a: AnalysisColumns<'_>) -> AnalysisView {
    AnalysisView {
        sentiment: StoredSentiment {
            label: a.label.to_string(),
            score: a.score,
        },
        emotions: a.emotions,
        emotion: a.emotion.map(str::to_string),
        toxicity: a.toxicity,
        hate: a.hate,
        churn_risk: a.churn_risk,
        model: a.model.to_string(),
    }
}

/// Keyset cursor: the (created_at, id) of the last post of a page, hex-encoded so callers
/// treat it as opaque.
fn encode_cursor(created_at: DateTime<Utc>, id: &str) -> String {
    let raw = format!("{}|{id}", created_at.timestamp_micros());
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, String)> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 1024 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    let raw = String::from_utf8(bytes?).ok()?;
    let (micros, id) = raw.split_once('|')?;
    if !sql::storable(id) {
        return None;
    }
    let created = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((created, id.to_string()))
}

/// A 400 for a path id no post can have (empty, longer than ids may be, or holding NUL), so
/// lookups only ever bind ids that could be stored.
pub fn check_post_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > crate::models::event::MAX_ID_BYTES || !sql::storable(id) {
        return Err(ApiError::bad_request(
            "invalid_path",
            "a post id is 1 to 256 bytes without NUL characters",
        ));
    }
    Ok(())
}

/// Lists posts newest first.
#[utoipa::path(
    tag = "posts",
    operation_id = "list_posts",
    summary = "List posts",
    description = "Stored posts with their analysis, newest first, filtered and keyset-paginated.",
    params(PostQuery),
    responses(
        (status = 200, description = "A page of posts", body = PostPage),
        (status = 400, description = "A bad filter, limit or cursor (`invalid_query`, \
            `invalid_cursor`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/posts")]
pub async fn list(state: State, query: web::Query<PostQuery>) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let filters = PostFilters {
        platform: &q.platform,
        product: &q.product,
        city: &q.city,
        country: &q.country,
        channel: &q.channel,
        sentiment: &q.sentiment,
    }
    .columns()?;
    let cursor = match &q.cursor {
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ApiError::bad_request("invalid_cursor", "cursor is not valid"))?,
        ),
        None => None,
    };

    let mut conditions = Conditions::default();
    for (column, value) in filters {
        conditions.push(&format!("{column} ="), value);
    }
    if let Some(from) = q.from {
        conditions.push("created_at >=", from);
    }
    if let Some(to) = q.to {
        conditions.push("created_at <", to);
    }
    if let Some((created, id)) = cursor {
        let (created, id) = (conditions.bind(created), conditions.bind(id));
        conditions.clause(format!("(created_at, id) < ({created}, {id})"));
    }
    let limit_param = conditions.bind(limit + 1);
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM posts {} ORDER BY created_at DESC, id DESC LIMIT {limit_param}",
        conditions.where_sql()
    );

    let client = state.pool.get().await?;
    let refs = conditions.params();
    let rows = client.query(&sql, &refs).await?;
    let has_more = rows.len() as i64 > limit;
    let items: Vec<PostView> = rows
        .iter()
        .take(limit as usize)
        .map(PostView::from_row)
        .collect();
    let next_cursor = if has_more {
        items.last().map(|p| encode_cursor(p.created_at, &p.id))
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(PostPage { items, next_cursor }))
}

/// One post by id.
#[utoipa::path(
    tag = "posts",
    operation_id = "get_post",
    summary = "One post",
    params(("id" = String, Path, description = "The post's id (1 to 256 bytes)")),
    responses(
        (status = 200, description = "The post with its analysis", body = PostView),
        (status = 400, description = "Not a possible post id (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No post with this id", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/posts/{id}")]
pub async fn get_one(state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    check_post_id(&id)?;
    let client = state.pool.get().await?;
    let sql = format!("SELECT {POST_COLUMNS} FROM posts WHERE id = $1");
    let row = client.query_opt(&sql, &[&id.as_str()]).await?;
    match row {
        Some(row) => Ok(HttpResponse::Ok().json(PostView::from_row(&row))),
        None => Err(ApiError::not_found(format!("no post with id `{id}`"))),
    }
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
    }
}
