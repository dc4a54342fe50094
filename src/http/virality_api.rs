//! The virality API: trending posts ranked by virality score, a post's prediction history,
//! momentum by product and hashtag, scoring a post sent in the request, and feedback.

use std::collections::BTreeMap;

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::filters;
use super::state::State;
use crate::config::ViralitySettings;
use crate::db::query::{self as sql, Conditions};
use crate::db::virality::learned_thresholds;
use crate::models::{EngagementKind, Platform, SentimentLabel};
use crate::virality::calibration::Calibration;
use crate::virality::cascade::Structure;
use crate::virality::dynamics::Dynamics;
use crate::virality::momentum::Rates;
use crate::virality::{
    unix_seconds, Counts, Interval, Lineage, Model, PostMeta, Tracker, Virality,
};

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

/// Where a post's cascade stands: `active` and `finished` are tracked cascades, `scored` is
/// the answer of `POST /api/v1/score` (nothing tracked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CascadeStatus {
    Active,
    Finished,
    Scored,
}

/// A post's virality: what it is, where it was seen, and the model's reading of its cascade.
/// The same shape as the data of the live `virality:update` message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViralityView {
    pub post_id: String,
    #[schema(value_type = Option<Platform>)]
    pub platform: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    #[schema(value_type = Option<SentimentLabel>)]
    pub sentiment: Option<String>,
    /// Lowercase hashtags of the post, with their `#`.
    pub hashtags: Vec<String>,
    #[schema(value_type = CascadeStatus)]
    pub status: String,
    #[serde(flatten)]
    pub virality: Virality,
    /// When the stored cascade last changed (absent from scoring answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The API's virality object of a stored cascade (the shape of `virality:update`'s data).
fn cascade_json(row: &Row) -> Result<ViralityView, ApiError> {
    let observed: DateTime<Utc> = row.get("observed_at");
    let created: DateTime<Utc> = row.get("created_at");
    let age = (observed - created).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let dynamics: String = row.get("dynamics");
    let virality_dynamics = Dynamics::parse(&dynamics)
        .ok_or_else(|| ApiError::internal(format!("stored dynamics `{dynamics}` is unknown")))?;
    Ok(ViralityView {
        post_id: row.get("post_id"),
        platform: row.get("platform"),
        product: row.get("product"),
        channel: row.get("channel"),
        city: row.get("city"),
        country: row.get("country"),
        sentiment: row.get("sentiment"),
        hashtags: row.get("hashtags"),
        status: row.get("status"),
        virality: Virality {
            observed_at: observed,
            age_secs: age,
            counts: Counts {
                shares: unsigned(row.get("shares")),
                likes: unsigned(row.get("likes")),
                comments: unsigned(row.get("comments")),
                views: unsigned(row.get("views")),
            },
            reach: unsigned(row.get("reach")),
            structure: Structure {
                nodes: 0,
                depth: u32::try_from(row.get::<_, i32>("depth")).unwrap_or(0),
                breadth: unsigned(row.get("breadth")),
                structural_virality: row.get("structural_virality"),
            },
            momentum: Rates {
                velocity: row.get("velocity"),
                acceleration: row.get("acceleration"),
            },
            virality_score: row.get("virality_score"),
            virality_probability: row.get("virality_probability"),
            viral_classification: if row.get::<_, bool>("viral") {
                "yes"
            } else {
                "no"
            },
            confidence_interval: Interval {
                lower: row.get("ci_lower"),
                upper: row.get("ci_upper"),
                level: row.get("ci_level"),
            },
            predicted_final_shares: row.get("predicted_final_shares"),
            threshold: row.get("threshold"),
            virality_dynamics,
            model_lineage: Lineage {
                name: row.get("model_name"),
                version: row.get("model_version"),
                params_hash: row.get("params_hash"),
            },
            branching: row.get("branching"),
        },
        updated_at: Some(row.get("updated_at")),
    })
}

/// Filters of the trending listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrendingQuery {
    #[param(value_type = Option<Platform>)]
    pub platform: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    #[param(value_type = Option<SentimentLabel>)]
    pub sentiment: Option<String>,
    /// A hashtag, with or without its `#` (case-insensitive).
    pub hashtag: Option<String>,
    #[param(value_type = Option<Dynamics>)]
    pub dynamics: Option<String>,
    /// `yes` or `no`.
    #[param(pattern = "^(yes|no)$")]
    pub viral: Option<String>,
    /// Lowest virality score, 0 to 100.
    #[param(minimum = 0.0, maximum = 100.0)]
    pub min_score: Option<f64>,
    /// `active` (default), `finished` or `all`.
    #[param(pattern = "^(active|finished|all)$")]
    pub status: Option<String>,
    /// Only cascades with an engagement in the last this many seconds.
    pub active_within_secs: Option<u64>,
    /// How many posts, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// Trending posts, highest virality score first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendingPosts {
    pub items: Vec<ViralityView>,
}

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// Posts ranked by virality score, highest first.
#[utoipa::path(
    tag = "virality",
    summary = "Trending posts by virality score",
    params(TrendingQuery),
    responses(
        (status = 200, description = "Posts by virality score, highest first", body = TrendingPosts),
        (status = 400, description = "A bad filter or limit (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/trending/posts")]
pub async fn trending_posts(
    state: State,
    query: web::Query<TrendingQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_TRENDING).contains(&limit) {
        return Err(invalid_query(format!(
            "limit must be between 1 and {MAX_TRENDING}"
        )));
    }
    if let Some(name) = sql::unstorable([
        ("product", q.product.as_deref()),
        ("channel", q.channel.as_deref()),
        ("city", q.city.as_deref()),
        ("country", q.country.as_deref()),
        ("hashtag", q.hashtag.as_deref()),
    ]) {
        return Err(filters::nul_in_query(name));
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
    let items = rows.iter().map(cascade_json).collect::<Result<_, _>>()?;
    Ok(HttpResponse::Ok().json(TrendingPosts { items }))
}

/// Query of a post's virality history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many of the newest predictions, 1 to 1000 (default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The lower and upper bounds of a past prediction's interval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bounds {
    pub lower: f64,
    pub upper: f64,
}

/// One recorded prediction of a post's virality.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Prediction {
    pub recorded_at: DateTime<Utc>,
    pub observed_at: DateTime<Utc>,
    pub age_secs: f64,
    pub shares: i64,
    pub virality_score: f64,
    pub virality_probability: f64,
    /// `yes` or `no`.
    #[schema(pattern = "^(yes|no)$")]
    pub viral_classification: String,
    pub predicted_final_shares: f64,
    pub confidence_interval: Bounds,
    #[schema(value_type = Dynamics)]
    pub virality_dynamics: String,
    pub structural_virality: f64,
    pub momentum: Rates,
    pub params_hash: String,
}

/// A post's current virality and its predictions.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostViralityHistory {
    pub post_id: String,
    pub current: ViralityView,
    /// Oldest first.
    pub history: Vec<Prediction>,
}

/// A post's current virality and its history of predictions, oldest first.
#[utoipa::path(
    tag = "virality",
    summary = "A post's virality and its history",
    params(
        ("id" = String, Path, description = "The post's id (1 to 256 bytes)"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "Current virality and predictions, oldest first", body = PostViralityHistory),
        (status = 400, description = "A bad limit (`invalid_query`) or not a possible post id \
            (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No virality tracked for this post", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/posts/{id}/virality")]
pub async fn post_virality(
    state: State,
    id: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    super::posts::check_post_id(&id)?;
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
    let history: Vec<Prediction> = rows
        .iter()
        .map(|r| Prediction {
            recorded_at: r.get("recorded_at"),
            observed_at: r.get("observed_at"),
            age_secs: r.get("age_secs"),
            shares: r.get("shares"),
            virality_score: r.get("virality_score"),
            virality_probability: r.get("virality_probability"),
            viral_classification: if r.get::<_, bool>("viral") {
                "yes"
            } else {
                "no"
            }
            .into(),
            predicted_final_shares: r.get("predicted_final_shares"),
            confidence_interval: Bounds {
                lower: r.get("ci_lower"),
                upper: r.get("ci_upper"),
            },
            virality_dynamics: r.get("dynamics"),
            structural_virality: r.get("structural_virality"),
            momentum: Rates {
                velocity: r.get("velocity"),
                acceleration: r.get("acceleration"),
            },
            params_hash: r.get("params_hash"),
        })
        .collect();
    Ok(HttpResponse::Ok().json(PostViralityHistory {
        post_id: id.into_inner(),
        current: cascade_json(&current)?,
        history,
    }))
}

/// Query of the momentum listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MomentumQuery {
    /// `product` (default) or `hashtag`.
    #[param(value_type = Option<MomentumDimension>, inline)]
    pub dimension: Option<String>,
    /// How many keys, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// What momentum is tracked by.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MomentumDimension {
    Product,
    Hashtag,
}

/// The momentum of one product or hashtag.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MomentumItem {
    pub key: String,
    /// Engagements per minute over the momentum window.
    pub velocity: f64,
    /// Change of velocity from the window before, per minute.
    pub acceleration: f64,
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/v1/trending/momentum`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MomentumList {
    #[schema(value_type = MomentumDimension)]
    pub dimension: String,
    /// Fastest first.
    pub items: Vec<MomentumItem>,
}

/// Engagement velocity and acceleration by product or hashtag, fastest first.
#[utoipa::path(
    tag = "virality",
    summary = "Momentum by product or hashtag",
    params(MomentumQuery),
    responses(
        (status = 200, description = "Keys by velocity, fastest first", body = MomentumList),
        (status = 400, description = "A bad dimension or limit (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/trending/momentum")]
pub async fn momentum(
    state: State,
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
    let items: Vec<MomentumItem> = rows
        .iter()
        .map(|r| MomentumItem {
            key: r.get(0),
            velocity: r.get(1),
            acceleration: r.get(2),
            updated_at: r.get(3),
        })
        .collect();
    Ok(HttpResponse::Ok().json(MomentumList {
        dimension: dimension.to_string(),
        items,
    }))
}

/// The post of a scoring request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScorePost {
    /// 1 to 256 bytes; echoed as `post_id`.
    #[schema(min_length = 1, max_length = 256)]
    pub id: Option<String>,
    #[schema(value_type = Option<Platform>)]
    pub platform: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub author_followers: u64,
}

/// One engagement of a scoring request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreEngagement {
    /// 1 to 256 bytes; shares name each other by it in `via`.
    #[schema(min_length = 1, max_length = 256)]
    pub id: Option<String>,
    pub kind: EngagementKind,
    /// Not before the post's `created_at`.
    pub at: DateTime<Utc>,
    pub actor_followers: Option<u64>,
    /// The id of the share this one came through (1 to 256 bytes).
    #[schema(min_length = 1, max_length = 256)]
    pub via: Option<String>,
    /// How many engagements this one stands for, 1 to 1,000,000 (default 1).
    #[schema(minimum = 1, maximum = 1000000)]
    pub count: Option<u32>,
}

/// `POST /api/v1/score`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    pub post: ScorePost,
    /// At most 50,000.
    #[serde(default)]
    #[schema(max_items = 50000)]
    pub engagements: Vec<ScoreEngagement>,
    /// Observation time (not before the post's `created_at`); default the latest engagement
    /// (or the post's creation).
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
#[utoipa::path(
    tag = "virality",
    summary = "Score a post and its engagements",
    request_body = ScoreRequest,
    responses(
        (status = 200, description = "The post's virality (status `scored`)", body = ViralityView),
        (status = 400, description = "Invalid fields (`invalid_request`, `details.errors` names \
            each) or a body that is not a scoring request (`invalid_json`)", body = ErrorBody),
        (status = 413, description = "Body larger than the JSON limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/score")]
pub async fn score(state: State, body: web::Json<ScoreRequest>) -> Result<HttpResponse, ApiError> {
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
    let thresholds = state.thresholds.get(&state.pool, v).await;
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
    Ok(HttpResponse::Ok().json(ViralityView {
        post_id: req.post.id.clone().unwrap_or_default(),
        platform: platform.map(|p| p.as_str().to_string()),
        product: None,
        channel: None,
        city: None,
        country: None,
        sentiment: None,
        hashtags: Vec::new(),
        status: "scored".into(),
        virality: scored,
        updated_at: None,
    }))
}

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

/// Feedback as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackRecord {
    pub id: i64,
    pub post_id: String,
    pub final_shares: Option<i64>,
    pub final_likes: Option<i64>,
    pub final_comments: Option<i64>,
    pub final_views: Option<i64>,
    #[schema(value_type = Option<SentimentLabel>)]
    pub sentiment_label: Option<String>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Records feedback.
#[utoipa::path(
    tag = "virality",
    summary = "Record an outcome or a corrected label",
    request_body = Feedback,
    responses(
        (status = 201, description = "The feedback as recorded", body = FeedbackRecord),
        (status = 400, description = "Invalid fields (`invalid_request`, `details.errors` names \
            each) or a body that is not feedback (`invalid_json`)", body = ErrorBody),
        (status = 413, description = "Body larger than the JSON limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/feedback")]
pub async fn feedback(state: State, body: web::Json<Feedback>) -> Result<HttpResponse, ApiError> {
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
    Ok(HttpResponse::Created().json(FeedbackRecord {
        id: row.get(0),
        post_id: f.post_id,
        final_shares: f.final_shares,
        final_likes: f.final_likes,
        final_comments: f.final_comments,
        final_views: f.final_views,
        sentiment_label: f.sentiment_label,
        note: f.note,
        created_at: row.get(1),
    }))
}

/// How long learned thresholds serve the score endpoint before they are learned again.
const THRESHOLD_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The learned viral thresholds as the score endpoint uses them: learned at most once a
/// minute per process, so a score costs no aggregate over the cascade history. No request
/// waits for them: while one request learns them again the others score with the previous
/// ones, and until any were learned (or when learning fails) with none, which leaves the
/// built-in calibration's threshold in force, as for a platform without enough history.
#[derive(Default)]
pub struct ThresholdCache {
    cached: std::sync::RwLock<Option<(std::time::Instant, BTreeMap<String, f64>)>>,
    learning: tokio::sync::Mutex<()>,
}

impl ThresholdCache {
    /// The thresholds, learned again when the cached ones are older than a minute.
    pub async fn get(
        &self,
        pool: &crate::db::ApiPool,
        settings: &ViralitySettings,
    ) -> BTreeMap<String, f64> {
        let cached = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let (fresh, previous) = match cached {
            Some((at, thresholds)) => (at.elapsed() < THRESHOLD_TTL, thresholds),
            None => (false, BTreeMap::new()),
        };
        if fresh {
            return previous;
        }
        let Ok(_learning) = self.learning.try_lock() else {
            return previous;
        };
        let learned = async {
            let client = pool.get().await?;
            learned_thresholds(
                &client,
                settings.threshold_quantile,
                settings.threshold_min_history,
            )
            .await
        }
        .await;
        match learned {
            Ok(thresholds) => {
                *self
                    .cached
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((std::time::Instant::now(), thresholds.clone()));
                thresholds
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not learn the viral thresholds now; scoring with the previous ones");
                previous
            }
        }
    }
}
