//! The virality API: trending posts ranked by virality score, a post's prediction history,
//! momentum by product and hashtag, scoring a post sent in the request, and feedback.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Row;

use super::error::ApiError;
use super::sql::Conditions;
use super::AppState;
use crate::actors::virality::{learned_thresholds, PostVirality};
use crate::models::{EngagementKind, Platform, SentimentLabel};
use crate::virality::calibration::Calibration;
use crate::virality::dynamics::Dynamics;
use crate::virality::{unix_seconds, Model, PostMeta, Tracker};

/// Largest page of trending posts.
pub const MAX_TRENDING: i64 = 200;
/// Most engagements `POST /api/v1/score` accepts.
pub const MAX_SCORE_ENGAGEMENTS: usize = 50_000;
/// Largest `count` of one engagement.
pub const MAX_COUNT: u32 = 1_000_000;
/// Most history rows returned for a post.
pub const MAX_HISTORY: i64 = 1_000;

const CASCADE_COLUMNS: &str = "post_id, platform, product, channel, city, country, sentiment, \
    hashtags, status, observed_at, created_at, shares, likes, comments, views, reach, depth, \
    breadth, structural_virality, velocity, acceleration, virality_score, virality_probability, \
    viral, predicted_final_shares, ci_lower, ci_upper, ci_level, threshold, dynamics, \
    model_name, model_version, params_hash, branching, updated_at";

/// The API's virality object of a stored cascade (the shape of `virality:update`'s data).
fn cascade_json(row: &Row) -> Value {
    let observed: DateTime<Utc> = row.get("observed_at");
    let created: DateTime<Utc> = row.get("created_at");
    let age = (observed - created).num_microseconds().unwrap_or(0) as f64 / 1e6;
    json!({
        "post_id": row.get::<_, String>("post_id"),
        "platform": row.get::<_, Option<String>>("platform"),
        "product": row.get::<_, Option<String>>("product"),
        "channel": row.get::<_, Option<String>>("channel"),
        "city": row.get::<_, Option<String>>("city"),
        "country": row.get::<_, Option<String>>("country"),
        "sentiment": row.get::<_, Option<String>>("sentiment"),
        "hashtags": row.get::<_, Vec<String>>("hashtags"),
        "status": row.get::<_, String>("status"),
        "observed_at": observed,
        "age_secs": age,
        "counts": {
            "shares": row.get::<_, i64>("shares"),
            "likes": row.get::<_, i64>("likes"),
            "comments": row.get::<_, i64>("comments"),
            "views": row.get::<_, i64>("views"),
        },
        "reach": row.get::<_, i64>("reach"),
        "structure": {
            "depth": row.get::<_, i32>("depth"),
            "breadth": row.get::<_, i64>("breadth"),
            "structural_virality": row.get::<_, f64>("structural_virality"),
        },
        "momentum": {
            "velocity": row.get::<_, f64>("velocity"),
            "acceleration": row.get::<_, f64>("acceleration"),
        },
        "virality_score": row.get::<_, f64>("virality_score"),
        "virality_probability": row.get::<_, f64>("virality_probability"),
        "viral_classification": if row.get::<_, bool>("viral") { "yes" } else { "no" },
        "confidence_interval": {
            "lower": row.get::<_, f64>("ci_lower"),
            "upper": row.get::<_, f64>("ci_upper"),
            "level": row.get::<_, f64>("ci_level"),
        },
        "predicted_final_shares": row.get::<_, f64>("predicted_final_shares"),
        "threshold": row.get::<_, f64>("threshold"),
        "virality_dynamics": row.get::<_, String>("dynamics"),
        "model_lineage": {
            "name": row.get::<_, String>("model_name"),
            "version": row.get::<_, String>("model_version"),
            "params_hash": row.get::<_, String>("params_hash"),
        },
        "branching": row.get::<_, f64>("branching"),
        "updated_at": row.get::<_, DateTime<Utc>>("updated_at"),
    })
}

/// Filters of the trending listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendingQuery {
    pub platform: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub sentiment: Option<String>,
    pub hashtag: Option<String>,
    pub dynamics: Option<String>,
    /// `yes` or `no`.
    pub viral: Option<String>,
    pub min_score: Option<f64>,
    /// `active` (default), `finished` or `all`.
    pub status: Option<String>,
    /// Only cascades with an engagement in the last this many seconds.
    pub active_within_secs: Option<u64>,
    pub limit: Option<i64>,
}

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// Posts ranked by virality score, highest first.
#[get("/api/v1/trending/posts")]
pub async fn trending_posts(
    state: web::Data<AppState>,
    query: web::Query<TrendingQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_TRENDING).contains(&limit) {
        return Err(invalid_query(format!(
            "limit must be between 1 and {MAX_TRENDING}"
        )));
    }
    let mut c = Conditions::default();
    if let Some(p) = &q.platform {
        if Platform::parse(p).is_none() {
            return Err(invalid_query(format!("unknown platform `{p}`")));
        }
        c.push("platform =", p.clone());
    }
    if let Some(s) = &q.sentiment {
        if SentimentLabel::parse(s).is_none() {
            return Err(invalid_query(
                "sentiment must be negative, neutral or positive",
            ));
        }
        c.push("sentiment =", s.clone());
    }
    for (column, value) in [
        ("product", &q.product),
        ("channel", &q.channel),
        ("city", &q.city),
        ("country", &q.country),
    ] {
        if let Some(v) = value {
            c.push(&format!("{column} ="), v.clone());
        }
    }
    if let Some(tag) = &q.hashtag {
        let tag = if tag.starts_with('#') {
            tag.to_lowercase()
        } else {
            format!("#{}", tag.to_lowercase())
        };
        let p = c.bind(tag);
        c.clause(format!("{p} = ANY(hashtags)"));
    }
    if let Some(d) = &q.dynamics {
        if Dynamics::parse(d).is_none() {
            return Err(invalid_query("dynamics must be deep, broad or hybrid"));
        }
        c.push("dynamics =", d.clone());
    }
    match q.viral.as_deref() {
        None => {}
        Some("yes") => c.clause("viral".into()),
        Some("no") => c.clause("NOT viral".into()),
        Some(_) => return Err(invalid_query("viral must be yes or no")),
    }
    if let Some(min) = q.min_score {
        if !(0.0..=100.0).contains(&min) {
            return Err(invalid_query("min_score must be between 0 and 100"));
        }
        c.push("virality_score >=", min);
    }
    match q.status.as_deref().unwrap_or("active") {
        "all" => {}
        s @ ("active" | "finished") => c.push("status =", s.to_string()),
        _ => return Err(invalid_query("status must be active, finished or all")),
    }
    if let Some(secs) = q.active_within_secs {
        let secs = secs.min(10 * 365 * 86_400) as f64;
        let p = c.bind(secs);
        c.clause(format!(
            "last_activity_at >= now() - make_interval(secs => {p})"
        ));
    }
    let limit_param = c.bind(limit);
    let sql = format!(
        "SELECT {CASCADE_COLUMNS} FROM virality_cascades {} \
         ORDER BY virality_score DESC, velocity DESC, post_id LIMIT {limit_param}",
        c.where_sql()
    );
    let client = state.pool.get().await?;
    let rows = client.query(&sql, &c.params()).await?;
    let items: Vec<Value> = rows.iter().map(cascade_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// Query of a post's virality history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub limit: Option<i64>,
}

/// A post's current virality and its history of predictions, oldest first.
#[get("/api/v1/posts/{id}/virality")]
pub async fn post_virality(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(200);
    if !(1..=MAX_HISTORY).contains(&limit) {
        return Err(invalid_query(format!(
            "limit must be between 1 and {MAX_HISTORY}"
        )));
    }
    let client = state.pool.get().await?;
    let current = client
        .query_opt(
            &format!("SELECT {CASCADE_COLUMNS} FROM virality_cascades WHERE post_id = $1"),
            &[&id.as_str()],
        )
        .await?;
    let Some(current) = current else {
        return Err(ApiError::not_found(format!(
            "no virality tracked for post `{id}`"
        )));
    };
    let rows = client
        .query(
            "SELECT * FROM (
                 SELECT id, recorded_at, observed_at, age_secs, shares, virality_score,
                        virality_probability, viral, predicted_final_shares, ci_lower, ci_upper,
                        dynamics, structural_virality, velocity, acceleration, params_hash
                 FROM virality_predictions WHERE post_id = $1 ORDER BY id DESC LIMIT $2) h
             ORDER BY id",
            &[&id.as_str(), &limit],
        )
        .await?;
    let history: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "recorded_at": r.get::<_, DateTime<Utc>>("recorded_at"),
                "observed_at": r.get::<_, DateTime<Utc>>("observed_at"),
                "age_secs": r.get::<_, f64>("age_secs"),
                "shares": r.get::<_, i64>("shares"),
                "virality_score": r.get::<_, f64>("virality_score"),
                "virality_probability": r.get::<_, f64>("virality_probability"),
                "viral_classification": if r.get::<_, bool>("viral") { "yes" } else { "no" },
                "predicted_final_shares": r.get::<_, f64>("predicted_final_shares"),
                "confidence_interval": {
                    "lower": r.get::<_, f64>("ci_lower"),
                    "upper": r.get::<_, f64>("ci_upper"),
                },
                "virality_dynamics": r.get::<_, String>("dynamics"),
                "structural_virality": r.get::<_, f64>("structural_virality"),
                "momentum": {
                    "velocity": r.get::<_, f64>("velocity"),
                    "acceleration": r.get::<_, f64>("acceleration"),
                },
                "params_hash": r.get::<_, String>("params_hash"),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "post_id": id.as_str(),
        "current": cascade_json(&current),
        "history": history,
    })))
}

/// Query of the momentum listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumQuery {
    /// `product` (default) or `hashtag`.
    pub dimension: Option<String>,
    pub limit: Option<i64>,
}

/// Engagement velocity and acceleration by product or hashtag, fastest first.
#[get("/api/v1/trending/momentum")]
pub async fn momentum(
    state: web::Data<AppState>,
    query: web::Query<MomentumQuery>,
) -> Result<HttpResponse, ApiError> {
    let dimension = query.dimension.as_deref().unwrap_or("product");
    if !matches!(dimension, "product" | "hashtag") {
        return Err(invalid_query("dimension must be product or hashtag"));
    }
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_TRENDING).contains(&limit) {
        return Err(invalid_query(format!(
            "limit must be between 1 and {MAX_TRENDING}"
        )));
    }
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT key, velocity, acceleration, updated_at FROM virality_momentum
             WHERE dimension = $1 ORDER BY velocity DESC, key LIMIT $2",
            &[&dimension, &limit],
        )
        .await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "key": r.get::<_, String>(0),
                "velocity": r.get::<_, f64>(1),
                "acceleration": r.get::<_, f64>(2),
                "updated_at": r.get::<_, DateTime<Utc>>(3),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"dimension": dimension, "items": items})))
}

/// The post of a scoring request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorePost {
    pub id: Option<String>,
    pub platform: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub author_followers: u64,
}

/// One engagement of a scoring request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreEngagement {
    pub id: Option<String>,
    pub kind: EngagementKind,
    pub at: DateTime<Utc>,
    pub actor_followers: Option<u64>,
    pub via: Option<String>,
    pub count: Option<u32>,
}

/// `POST /api/v1/score`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    pub post: ScorePost,
    #[serde(default)]
    pub engagements: Vec<ScoreEngagement>,
    /// Observation time; default the latest engagement (or the post's creation).
    pub observed_at: Option<DateTime<Utc>>,
}

fn invalid_request(errors: Vec<Value>) -> ApiError {
    ApiError::bad_request(
        "invalid_request",
        format!("{} field(s) of the request are invalid", errors.len()),
    )
    .with_details(json!({ "errors": errors }))
}

fn field_error(field: impl Into<String>, reason: impl Into<String>) -> Value {
    json!({"field": field.into(), "reason": reason.into()})
}

/// Scores a post given with its engagement series, with the model in force (no state is
/// kept).
#[post("/api/v1/score")]
pub async fn score(
    state: web::Data<AppState>,
    body: web::Json<ScoreRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let mut errors = Vec::new();
    let platform = match &req.post.platform {
        None => None,
        Some(p) => match Platform::parse(p) {
            Some(p) => Some(p),
            None => {
                errors.push(field_error(
                    "post.platform",
                    format!("unknown platform `{p}`"),
                ));
                None
            }
        },
    };
    if let Some(id) = &req.post.id {
        if id.is_empty() || id.len() > crate::models::event::MAX_ID_BYTES {
            errors.push(field_error("post.id", "must be 1 to 256 bytes"));
        }
    }
    if req.engagements.len() > MAX_SCORE_ENGAGEMENTS {
        errors.push(field_error(
            "engagements",
            format!("at most {MAX_SCORE_ENGAGEMENTS} engagements"),
        ));
    }
    for (i, e) in req
        .engagements
        .iter()
        .enumerate()
        .take(MAX_SCORE_ENGAGEMENTS)
    {
        if e.at < req.post.created_at {
            errors.push(field_error(
                format!("engagements[{i}].at"),
                "is before the post's created_at",
            ));
        }
        if let Some(c) = e.count {
            if c == 0 || c > MAX_COUNT {
                errors.push(field_error(
                    format!("engagements[{i}].count"),
                    format!("must be between 1 and {MAX_COUNT}"),
                ));
            }
        }
        for (name, value) in [("id", &e.id), ("via", &e.via)] {
            if let Some(v) = value {
                if v.is_empty() || v.len() > crate::models::event::MAX_ID_BYTES {
                    errors.push(field_error(
                        format!("engagements[{i}].{name}"),
                        "must be 1 to 256 bytes",
                    ));
                }
            }
        }
        if errors.len() >= 20 {
            break;
        }
    }
    if let Some(at) = req.observed_at {
        if at < req.post.created_at {
            errors.push(field_error(
                "observed_at",
                "is before the post's created_at",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(invalid_request(errors));
    }

    let v = &state.settings.virality;
    let mut model = Model::new(
        Calibration::shared(),
        v.interval_level,
        v.classify_probability,
    );
    let client = state.pool.get().await?;
    let thresholds = learned_thresholds(&client, v.threshold_quantile, v.threshold_min_history)
        .await
        .map_err(ApiError::internal)?;
    drop(client);
    model.set_thresholds(thresholds, v.threshold_shares);

    let window = (v.momentum_window_secs / 60).max(1) as i64;
    let mut tracker = Tracker::new(MAX_SCORE_ENGAGEMENTS);
    tracker.meta = Some(PostMeta {
        platform,
        author_followers: req.post.author_followers,
        created_at: unix_seconds(req.post.created_at),
        ..PostMeta::default()
    });
    let observed = req.observed_at;
    for (i, e) in req.engagements.iter().enumerate() {
        if observed.is_some_and(|o| e.at > o) {
            continue;
        }
        let fallback = format!("#{i}");
        tracker.add(
            Some(e.id.as_deref().unwrap_or(&fallback)),
            e.kind,
            unix_seconds(e.at),
            e.actor_followers,
            e.via.as_deref(),
            e.count.unwrap_or(1),
            window,
        );
    }
    if let Some(o) = observed {
        tracker.last_at = tracker.last_at.max(unix_seconds(o));
    }
    let scored = model.score(&tracker, window);
    let id = req.post.id.clone().unwrap_or_default();
    let body = PostVirality {
        post_id: &id,
        platform: platform.map(Platform::as_str),
        product: None,
        channel: None,
        city: None,
        country: None,
        sentiment: None,
        hashtags: &[],
        status: "scored",
        virality: &scored,
    };
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /api/v1/feedback`: an observed outcome or a corrected label for a post.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    pub post_id: String,
    pub final_shares: Option<i64>,
    pub final_likes: Option<i64>,
    pub final_comments: Option<i64>,
    pub final_views: Option<i64>,
    pub sentiment_label: Option<String>,
    pub note: Option<String>,
}

/// Records feedback.
#[post("/api/v1/feedback")]
pub async fn feedback(
    state: web::Data<AppState>,
    body: web::Json<Feedback>,
) -> Result<HttpResponse, ApiError> {
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
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "INSERT INTO virality_feedback (post_id, final_shares, final_likes, final_comments,
                 final_views, sentiment_label, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at",
            &[
                &f.post_id,
                &f.final_shares,
                &f.final_likes,
                &f.final_comments,
                &f.final_views,
                &f.sentiment_label,
                &f.note,
            ],
        )
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": row.get::<_, i64>(0),
        "post_id": f.post_id,
        "final_shares": f.final_shares,
        "final_likes": f.final_likes,
        "final_comments": f.final_comments,
        "final_views": f.final_views,
        "sentiment_label": f.sentiment_label,
        "note": f.note,
        "created_at": row.get::<_, DateTime<Utc>>(1),
    })))
}
