//! `GET /api/v1/posts` (filtered, newest first, keyset-paginated) and `GET /api/v1/posts/{id}`.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::Row;

use super::error::ApiError;
use super::filters::PostFilters;
use super::sql::Conditions;
use super::AppState;
use crate::actors::messages::AnalyzedPost;

/// Page size when the caller does not ask for one.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: i64 = 500;

const POST_COLUMNS: &str = "id, platform, author_id, author_followers, text, created_at, lang, \
    city, country, product, channel, parent_id, url, likes, shares, comments, views, \
    sentiment_label, sentiment_score, emotions, emotion, toxicity, hate, churn_risk, model, \
    ingested_at";

/// Filters of the post listing; every one is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostQuery {
    pub platform: Option<String>,
    pub product: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub channel: Option<String>,
    pub sentiment: Option<String>,
    /// Inclusive lower bound on `created_at` (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `created_at` (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A stored post with its analysis, as the API returns it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PostView {
    pub id: String,
    pub platform: String,
    pub author: serde_json::Value,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub lang: Option<String>,
    pub geo: serde_json::Value,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub parent_id: Option<String>,
    pub url: Option<String>,
    pub metrics: Option<serde_json::Value>,
    pub analysis: serde_json::Value,
    pub ingested_at: DateTime<Utc>,
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
                emotions: row.get("emotions"),
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
                emotions: serde_json::to_value(analysis.emotions).unwrap_or_default(),
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

fn author_json(id: &str, followers: i64) -> serde_json::Value {
    json!({"id": id, "followers": followers})
}

fn geo_json(city: Option<&str>, country: Option<&str>) -> serde_json::Value {
    json!({"city": city, "country": country})
}

fn metrics_json(
    likes: i64,
    shares: Option<i64>,
    comments: Option<i64>,
    views: Option<i64>,
) -> serde_json::Value {
    json!({"likes": likes, "shares": shares, "comments": comments, "views": views})
}

/// The analysis columns of a post, from a row or from the pipeline.
struct AnalysisColumns<'a> {
    label: &'a str,
    score: f32,
    emotions: serde_json::Value,
    emotion: Option<&'a str>,
    toxicity: f32,
    hate: f32,
    churn_risk: f32,
    model: &'a str,
}

fn analysis_json(a: AnalysisColumns<'_>) -> serde_json::Value {
    json!({
        "sentiment": {"label": a.label, "score": a.score},
        "emotions": a.emotions,
        "emotion": a.emotion,
        "toxicity": a.toxicity,
        "hate": a.hate,
        "churn_risk": a.churn_risk,
        "model": a.model,
    })
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
    let created = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((created, id.to_string()))
}

/// Lists posts newest first.
#[get("/api/v1/posts")]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<PostQuery>,
) -> Result<HttpResponse, ApiError> {
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
    Ok(HttpResponse::Ok().json(json!({"items": items, "next_cursor": next_cursor})))
}

/// One post by id.
#[get("/api/v1/posts/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
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
    }
}
