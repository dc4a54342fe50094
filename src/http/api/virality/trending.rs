//! Reading what the tracker stored: trending posts, a post's prediction history, momentum.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{MAX_HISTORY, MAX_TRENDING};
use crate::db::cascades::{self, MomentumItem, Prediction, ViralityView};
use crate::db::query::Conditions;
use crate::http::answer::Answer;
use crate::http::documented::BadFilter;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::filters;
use crate::http::state::State;
use crate::models::{Platform, SentimentLabel};
use crate::virality::dynamics::Dynamics;

/// Filters of the trending listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrendingQuery {
    pub platform: Option<Platform>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub sentiment: Option<SentimentLabel>,
    /// A hashtag, with or without its `#` (case-insensitive).
    pub hashtag: Option<String>,
    /// A topic's id: only posts that matched it.
    pub topic: Option<i64>,
    pub dynamics: Option<Dynamics>,
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
    /// Only posts created at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub from: Option<DateTime<Utc>>,
    /// Only posts created before this time (RFC 3339).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub to: Option<DateTime<Utc>>,
    /// How many posts, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl TrendingQuery {
    /// The query's filters as SQL conditions on the cascades, and its limit.
    pub fn conditions(&self) -> Result<(Conditions, i64), ApiError> {
        let limit = filters::page_limit(self.limit, 20, MAX_TRENDING)?;
        filters::no_nul_in_query([
            ("product", self.product.as_deref()),
            ("channel", self.channel.as_deref()),
            ("city", self.city.as_deref()),
            ("country", self.country.as_deref()),
            ("hashtag", self.hashtag.as_deref()),
        ])?;
        let mut c = Conditions::default();
        if let Some(p) = self.platform {
            c.push("platform =", p.as_str().to_string());
        }
        if let Some(s) = self.sentiment {
            c.push("sentiment =", s.as_str().to_string());
        }
        for (column, value) in [
            ("product", &self.product),
            ("channel", &self.channel),
            ("city", &self.city),
            ("country", &self.country),
        ] {
            if let Some(v) = value {
                c.push(&format!("{column} ="), v.clone());
            }
        }
        if let Some(tag) = &self.hashtag {
            let tag = if tag.starts_with('#') {
                tag.to_lowercase()
            } else {
                format!("#{}", tag.to_lowercase())
            };
            let p = c.bind(tag);
            c.clause(format!("{p} = ANY(hashtags)"));
        }
        if let Some(topic) = self.topic {
            let p = c.bind(topic);
            c.clause(format!(
                "EXISTS (SELECT 1 FROM posts t WHERE t.id = virality_cascades.post_id \
                 AND t.topics @> ARRAY[{p}::int8])"
            ));
        }
        if let Some(d) = self.dynamics {
            c.push("dynamics =", d.as_str().to_string());
        }
        match self.viral.as_deref() {
            None => {}
            Some("yes") => c.clause("viral".into()),
            Some("no") => c.clause("NOT viral".into()),
            Some(_) => return Err(ApiError::invalid_query("viral must be yes or no")),
        }
        if let Some(min) = self.min_score {
            if !(0.0..=100.0).contains(&min) {
                return Err(ApiError::invalid_query(
                    "min_score must be between 0 and 100",
                ));
            }
            c.push("virality_score >=", min);
        }
        match self.status.as_deref().unwrap_or("active") {
            "all" => {}
            s @ ("active" | "finished") => c.push("status =", s.to_string()),
            _ => {
                return Err(ApiError::invalid_query(
                    "status must be active, finished or all",
                ))
            }
        }
        if let Some(secs) = self.active_within_secs {
            let secs = secs.min(10 * 365 * 86_400) as f64;
            let p = c.bind(secs);
            c.clause(format!(
                "last_activity_at >= now() - make_interval(secs => {p})"
            ));
        }
        if let Some(from) = self.from {
            c.push("created_at >=", from);
        }
        if let Some(to) = self.to {
            c.push("created_at <", to);
        }
        Ok((c, limit))
    }
}

/// Trending posts, highest virality score first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendingPosts {
    pub items: Vec<ViralityView>,
}

/// Posts ranked by virality score, highest first.
#[utoipa::path(
    tag = "virality", summary = "Trending posts by virality score", params(TrendingQuery),
    responses(
        (status = 200, description = "Posts by virality score, highest first", body = TrendingPosts),
        BadFilter, PostgresUnavailable,
    )
)]
#[get("/api/v1/trending/posts")]
pub async fn trending_posts(state: State, query: web::Query<TrendingQuery>) -> Answer {
    let q = query.into_inner();
    let (c, limit) = q.conditions()?;
    let client = state.db().await?;
    let items = cascades::trending(&client, c, limit).await?;
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
    tag = "virality", summary = "A post's virality and its history",
    params(("id" = String, Path, description = "The post's id (1 to 256 bytes)"), HistoryQuery),
    responses(
        (status = 200, description = "Current virality and predictions, oldest first", body = PostViralityHistory),
        (status = 400, description = "A bad limit (`invalid_query`) or not a possible post id \
            (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No virality tracked for this post, or the post was deleted", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/posts/{id}/virality")]
pub async fn post_virality(
    state: State,
    id: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Answer {
    crate::http::api::posts::check_post_id(&id)?;
    let limit = crate::http::filters::page_limit(query.limit, 200, MAX_HISTORY)?;
    let client = state.db().await?;
    let Some(current) = cascades::current(&client, &id).await? else {
        return Err(ApiError::not_found(format!(
            "no virality tracked for post `{id}`"
        )));
    };
    let history = cascades::history(&client, &id, limit).await?;
    Ok(HttpResponse::Ok().json(PostViralityHistory {
        post_id: id.into_inner(),
        current,
        history,
    }))
}

/// Query of the momentum listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MomentumQuery {
    /// `product` (default) or `hashtag`.
    #[param(inline)]
    pub dimension: Option<MomentumDimension>,
    /// How many keys, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// What momentum is tracked by.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MomentumDimension {
    #[default]
    Product,
    Hashtag,
}

impl MomentumDimension {
    pub fn as_str(self) -> &'static str {
        match self {
            MomentumDimension::Product => "product",
            MomentumDimension::Hashtag => "hashtag",
        }
    }
}

/// `GET /api/v1/trending/momentum`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MomentumList {
    pub dimension: MomentumDimension,
    /// Fastest first.
    pub items: Vec<MomentumItem>,
}

/// Engagement velocity and acceleration by product or hashtag, fastest first.
#[utoipa::path(
    tag = "virality", summary = "Momentum by product or hashtag", params(MomentumQuery),
    responses(
        (status = 200, description = "Keys by velocity, fastest first", body = MomentumList),
        (status = 400, description = "A bad dimension or limit (`invalid_query`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/trending/momentum")]
pub async fn momentum(state: State, query: web::Query<MomentumQuery>) -> Answer {
    let dimension = query.dimension.unwrap_or_default();
    let limit = crate::http::filters::page_limit(query.limit, 20, MAX_TRENDING)?;
    let window_secs = (state.settings.virality.momentum_window_secs / 60).max(1) * 60;
    let client = state.db().await?;
    let items = cascades::momentum(&client, dimension.as_str(), limit, window_secs as f64).await?;
    Ok(HttpResponse::Ok().json(MomentumList { dimension, items }))
}
