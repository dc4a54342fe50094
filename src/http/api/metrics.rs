//! REST metrics: windowed aggregates by dimension, time series and trending terms.
//!
//! Unfiltered queries read the per-minute rollups, which the store maintains in the same
//! statement that inserts posts, so they are global across processes and exact. A window of
//! `5m` covers the current minute and the four before it; the response's `from` says exactly
//! where it starts. Queries with filters read the stored posts of the same window.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::rollups::{self, by_dimension, MAX_ITEMS};
use crate::http::answer::Answer;
use crate::http::documented::{error_responses, CostlyReadBusy};
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::filters::{self, with_post_filters};
use crate::http::state::State;
use crate::models::metrics::share;
pub use crate::models::metrics::{
    ChurnStats, Dimension, EmotionCounts, EngagementTotals, KeyedStats, Period, SentimentStats,
    Stats, TermStats, Window,
};

error_responses! {
    BadWindow: 400 = "A bad window or filter (`invalid_query`)",
}

/// Most points a time series may have.
pub const MAX_POINTS: i64 = 1_500;

with_post_filters! {
    /// Query of the window endpoints.
    #[derive(Debug, Deserialize, IntoParams)]
    #[serde(deny_unknown_fields)]
    #[into_params(parameter_in = Query)]
    pub struct WindowQuery {
        /// The window up to now (default `5m`); or give a period with `from` and `to`.
        #[param(inline)]
        pub window: Option<Window>,
        /// Start of a period (inclusive, taken back to its minute), instead of a window.
        #[serde(default, deserialize_with = "crate::models::time::bounded")]
        pub from: Option<DateTime<Utc>>,
        /// End of the period (exclusive, taken back to its minute; default now).
        #[serde(default, deserialize_with = "crate::models::time::bounded")]
        pub to: Option<DateTime<Utc>>,
    }
}

impl WindowQuery {
    /// What the query covers at `now` (default: the last 5 minutes).
    pub fn span(&self, now: DateTime<Utc>) -> Result<(Period, WindowSpan), ApiError> {
        WindowSpan::of(self.window, self.from, self.to, Window::FiveMinutes, now)
    }
}

/// What an answer covers: `from` is the start of its first minute; `to` the time of the query
/// for a window, the end (exclusive) of a period asked with `from` and `to`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WindowSpan {
    /// The window; absent for a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Longest period one query may cover, in days.
pub const MAX_PERIOD_DAYS: i64 = 366;

impl WindowSpan {
    /// The window `window` (default `default`) up to `now`, or the period `from`..`to` (`to`
    /// defaults to now): one or the other.
    pub fn of(
        window: Option<Window>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        default: Window,
        now: DateTime<Utc>,
    ) -> Result<(Period, WindowSpan), ApiError> {
        let bad = |message: &str| Err(ApiError::invalid_query(message));
        match (window, from, to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                bad("give either window or from and to, not both")
            }
            (_, None, Some(_)) => bad("to needs from"),
            (window, None, None) => {
                let window = window.unwrap_or(default);
                let period = Period::window(window, now);
                let span = WindowSpan {
                    window: Some(window),
                    from: period.from,
                    to: now,
                };
                Ok((period, span))
            }
            (None, Some(from), to) => {
                let period = Period::between(from, to.unwrap_or(now));
                let to = period.to.unwrap_or(now);
                if period.from >= to {
                    return bad("from must be at least a minute before to");
                }
                if to - period.from > TimeDelta::days(MAX_PERIOD_DAYS) {
                    return bad(&format!("a period covers at most {MAX_PERIOD_DAYS} days"));
                }
                let span = WindowSpan {
                    window: None,
                    from: period.from,
                    to,
                };
                Ok((period, span))
            }
        }
    }
}

/// `GET /api/v1/metrics/overall`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OverallMetrics {
    #[serde(flatten)]
    pub span: WindowSpan,
    pub stats: Stats,
}

/// The stats of every key of one dimension, most posts first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DimensionMetrics {
    #[serde(flatten)]
    pub span: WindowSpan,
    pub items: Vec<KeyedStats>,
}

/// `GET /api/v1/metrics/geo`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GeoMetrics {
    #[serde(flatten)]
    pub span: WindowSpan,
    pub cities: Vec<KeyedStats>,
    pub countries: Vec<KeyedStats>,
}

/// A product's share of product-tagged volume, of positive and of negative volume (0 to 1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShareOfVoice {
    pub volume: f64,
    pub positive: f64,
    pub negative: f64,
}

impl ShareOfVoice {
    /// Each of `stats`' shares of their summed volume, positive and negative volume.
    fn each<'a>(stats: impl Iterator<Item = &'a Stats> + Clone) -> Vec<ShareOfVoice> {
        let total: i64 = stats.clone().map(|s| s.posts).sum();
        let positive: i64 = stats.clone().map(|s| s.sentiment.positive).sum();
        let negative: i64 = stats.clone().map(|s| s.sentiment.negative).sum();
        stats
            .map(|s| ShareOfVoice {
                volume: share(s.posts, total),
                positive: share(s.sentiment.positive, positive),
                negative: share(s.sentiment.negative, negative),
            })
            .collect()
    }
}

/// One product's stats with its share of voice.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductStats {
    #[serde(flatten)]
    pub keyed: KeyedStats,
    pub share_of_voice: ShareOfVoice,
}

/// `GET /api/v1/metrics/products`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductMetrics {
    #[serde(flatten)]
    pub span: WindowSpan,
    pub items: Vec<ProductStats>,
}

async fn items(
    state: &State,
    query: &WindowQuery,
    dimension: Dimension,
) -> Result<(WindowSpan, Vec<KeyedStats>), ApiError> {
    let filters = query.post_filters()?;
    let (period, span) = query.span(Utc::now())?;
    let client = state.db().await?;
    let items = by_dimension(
        &client,
        dimension,
        period,
        &filters,
        state.settings.metrics.high_churn_threshold,
    )
    .await?;
    Ok((span, items))
}

/// The stats of two dimensions of the same window, the span as the first one's query saw it.
async fn two_dimensions(
    state: &State,
    query: &WindowQuery,
    first: Dimension,
    second: Dimension,
) -> Result<(WindowSpan, Vec<KeyedStats>, Vec<KeyedStats>), ApiError> {
    let (span, first) = items(state, query, first).await?;
    let (_, second) = items(state, query, second).await?;
    Ok((span, first, second))
}

/// One dimension's stats, every key.
async fn dimension_metrics(state: &State, query: &WindowQuery, dimension: Dimension) -> Answer {
    let (span, items) = items(state, query, dimension).await?;
    Ok(HttpResponse::Ok().json(DimensionMetrics { span, items }))
}

/// Overall stats of the window.
#[utoipa::path(
    tag = "metrics", summary = "Overall stats of a window", params(WindowQuery),
    responses(
        (status = 200, description = "Stats of every post of the window", body = OverallMetrics),
        BadWindow, PostgresUnavailable,
    )
)]
#[get("/api/v1/metrics/overall")]
pub async fn overall(state: State, query: web::Query<WindowQuery>) -> Answer {
    let (span, items) = items(&state, &query, Dimension::Overall).await?;
    let stats = items
        .into_iter()
        .next()
        .map(|k| k.stats)
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(OverallMetrics { span, stats }))
}

/// Stats per platform.
#[utoipa::path(
    tag = "metrics", summary = "Stats per platform", params(WindowQuery),
    responses(
        (status = 200, description = "One entry per key, most posts first", body = DimensionMetrics),
        BadWindow, PostgresUnavailable,
    )
)]
#[get("/api/v1/metrics/platforms")]
pub async fn platforms(state: State, query: web::Query<WindowQuery>) -> Answer {
    dimension_metrics(&state, &query, Dimension::Platform).await
}

/// Stats per channel.
#[utoipa::path(
    tag = "metrics", summary = "Stats per channel", params(WindowQuery),
    responses(
        (status = 200, description = "One entry per key, most posts first", body = DimensionMetrics),
        BadWindow, PostgresUnavailable,
    )
)]
#[get("/api/v1/metrics/channels")]
pub async fn channels(state: State, query: web::Query<WindowQuery>) -> Answer {
    dimension_metrics(&state, &query, Dimension::Channel).await
}

/// Stats per language and per language support class.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LanguageMetrics {
    #[serde(flatten)]
    pub span: WindowSpan,
    /// One entry per language (`und`: none could be said), most posts first. Posts in a
    /// language no model understands count in `posts` with zero scores.
    pub languages: Vec<KeyedStats>,
    /// Posts per support class: `supported` (a model measured on the language),
    /// `unverified` (the multilingual model, not measured on it, or the detector was unsure),
    /// `unsupported` (left out of every other aggregate and of alerts).
    pub support: Vec<KeyedStats>,
}

/// Stats per language and per support class.
#[utoipa::path(
    tag = "metrics", summary = "Stats per language and per language support class",
    params(WindowQuery),
    responses(
        (status = 200, description = "Languages and support classes, most posts first", body = LanguageMetrics),
        BadWindow, PostgresUnavailable,
    )
)]
#[get("/api/v1/metrics/languages")]
pub async fn languages(state: State, query: web::Query<WindowQuery>) -> Answer {
    let (span, languages, support) =
        two_dimensions(&state, &query, Dimension::Language, Dimension::Support).await?;
    Ok(HttpResponse::Ok().json(LanguageMetrics {
        span,
        languages,
        support,
    }))
}

/// Stats per city and per country.
#[utoipa::path(
    tag = "metrics", summary = "Stats per city and per country", params(WindowQuery),
    responses(
        (status = 200, description = "Cities and countries, most posts first", body = GeoMetrics),
        BadWindow, PostgresUnavailable,
    )
)]
#[get("/api/v1/metrics/geo")]
pub async fn geo(state: State, query: web::Query<WindowQuery>) -> Answer {
    let (span, cities, countries) =
        two_dimensions(&state, &query, Dimension::City, Dimension::Country).await?;
    Ok(HttpResponse::Ok().json(GeoMetrics {
        span,
        cities,
        countries,
    }))
}

/// Stats per product with share of voice: each product's share of product-tagged volume,
/// of positive volume and of negative volume.
#[utoipa::path(
    tag = "metrics", summary = "Stats per product with share of voice", params(WindowQuery),
    responses(
        (status = 200, description = "Products, most posts first", body = ProductMetrics),
        BadWindow, PostgresUnavailable,
    )
)]
#[get("/api/v1/metrics/products")]
pub async fn products(state: State, query: web::Query<WindowQuery>) -> Answer {
    let (span, items) = items(&state, &query, Dimension::Product).await?;
    let shares = ShareOfVoice::each(items.iter().map(|i| &i.stats));
    let items: Vec<ProductStats> = items
        .into_iter()
        .zip(shares)
        .map(|(keyed, share_of_voice)| ProductStats {
            share_of_voice,
            keyed,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ProductMetrics { span, items }))
}

/// One topic's stats with its share of voice among the live topics.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicStats {
    pub id: i64,
    pub name: String,
    #[serde(flatten)]
    pub stats: Stats,
    pub share_of_voice: ShareOfVoice,
}

/// `GET /api/v1/metrics/topics`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicMetrics {
    #[serde(flatten)]
    pub span: WindowSpan,
    /// Every live topic, most posts first (those without posts at the end, by id).
    pub items: Vec<TopicStats>,
}

/// Stats per topic with their share of voice: topics compared with each other (a post that
/// matched two topics counts in both, so shares are of the topics' summed volume).
#[utoipa::path(
    tag = "metrics", summary = "Stats and share of voice per topic", params(WindowQuery),
    responses(
        (status = 200, description = "One entry per live topic, most posts first", body = TopicMetrics),
        BadWindow, PostgresUnavailable,
    )
)]
#[get("/api/v1/metrics/topics")]
pub async fn topics(state: State, query: web::Query<WindowQuery>) -> Answer {
    let filters = query.post_filters()?;
    let (period, span) = query.span(Utc::now())?;
    let high_churn = state.settings.metrics.high_churn_threshold;
    let client = state.db().await?;
    let items = topic_items(&client, period, &filters, high_churn).await?;
    Ok(HttpResponse::Ok().json(TopicMetrics { span, items }))
}

/// Every live topic's stats over `period` with its share of voice, most posts first.
pub async fn topic_items(
    client: &tokio_postgres::Client,
    period: Period,
    filters: &[(&'static str, String)],
    high_churn: f32,
) -> Result<Vec<TopicStats>, ApiError> {
    let live = crate::db::topics::names(client).await?;
    // Every live topic's figures, however many topics there are.
    let ids: Vec<String> = live.iter().map(|(id, _)| id.to_string()).collect();
    let items =
        rollups::of_keys(client, Dimension::Topic, &ids, period, filters, high_churn).await?;
    let mut by_id: std::collections::HashMap<i64, Stats> = items
        .into_iter()
        .filter_map(|k| Some((k.key.parse().ok()?, k.stats)))
        .collect();
    let stats: Vec<(i64, String, Stats)> = live
        .into_iter()
        .map(|(id, name)| (id, name, by_id.remove(&id).unwrap_or_default()))
        .collect();
    let shares = ShareOfVoice::each(stats.iter().map(|(_, _, s)| s));
    let mut items: Vec<TopicStats> = stats
        .into_iter()
        .zip(shares)
        .map(|((id, name, stats), share_of_voice)| TopicStats {
            id,
            name,
            stats,
            share_of_voice,
        })
        .collect();
    items.sort_by(|a, b| b.stats.posts.cmp(&a.stats.posts).then(a.id.cmp(&b.id)));
    Ok(items)
}

/// Query of the time series endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// The dimension (default `overall`).
    #[param(inline)]
    pub dimension: Option<Dimension>,
    /// The key within the dimension; required unless the dimension is `overall`.
    pub key: Option<String>,
    /// Start (inclusive; default an hour before `to`).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive; default now).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub to: Option<DateTime<Utc>>,
    /// Bucket width (default `1m`); at most 1,500 buckets per query.
    #[param(inline)]
    pub bucket: Option<Bucket>,
}

/// Width of a time-series bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub enum Bucket {
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
}

impl Bucket {
    /// Minutes one bucket spans.
    pub fn minutes(self) -> i64 {
        match self {
            Bucket::OneMinute => 1,
            Bucket::FiveMinutes => 5,
            Bucket::OneHour => 60,
        }
    }
}

/// One bucket of a time series.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the bucket.
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub stats: Stats,
}

/// `GET /api/v1/metrics/timeseries`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimeSeries {
    pub dimension: Dimension,
    /// The key (empty for `overall`).
    pub key: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Bucket,
    /// Buckets with posts, oldest first (empty buckets are left out).
    pub points: Vec<SeriesPoint>,
}

/// Stats per time bucket of one dimension key, oldest first.
#[utoipa::path(
    tag = "metrics", summary = "Time series of one dimension key", params(SeriesQuery),
    responses(
        (status = 200, description = "Buckets with posts, oldest first", body = TimeSeries),
        (status = 400, description = "A bad dimension, key, range or bucket, or too many \
            buckets (`invalid_query`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/metrics/timeseries")]
pub async fn timeseries(state: State, query: web::Query<SeriesQuery>) -> Answer {
    let q = query.into_inner();
    let dimension = q.dimension.unwrap_or(Dimension::Overall);
    let key = match (dimension, q.key) {
        (Dimension::Overall, _) => String::new(),
        (_, Some(k)) if !crate::db::query::storable(&k) => {
            return Err(filters::nul_in_query("key"))
        }
        (_, Some(k)) => k,
        (_, None) => {
            return Err(ApiError::invalid_query(
                "key is required for this dimension",
            ))
        }
    };
    let bucket = q.bucket.unwrap_or(Bucket::OneMinute);
    let bucket_minutes = bucket.minutes();
    let now = Utc::now();
    let to = q.to.unwrap_or(now);
    let from = q.from.unwrap_or(to - TimeDelta::hours(1));
    if from >= to {
        return Err(ApiError::invalid_query("from must be before to"));
    }
    if (to - from).num_minutes() / bucket_minutes > MAX_POINTS {
        return Err(ApiError::invalid_query(format!(
            "more than {MAX_POINTS} points; use a larger bucket or a shorter range"
        )));
    }
    let client = state.db().await?;
    let points: Vec<SeriesPoint> =
        rollups::series(&client, dimension, &key, from, to, bucket_minutes)
            .await?
            .into_iter()
            .map(|(at, stats)| SeriesPoint { at, stats })
            .collect();
    Ok(HttpResponse::Ok().json(TimeSeries {
        dimension,
        key,
        from,
        to,
        bucket,
        points,
    }))
}

/// Query of the trending terms endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TermsQuery {
    /// The window up to now (default `1h`); or give a period with `from` and `to`.
    #[param(inline)]
    pub window: Option<Window>,
    /// Start of a period (inclusive, taken back to its minute), instead of a window.
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub from: Option<DateTime<Utc>>,
    /// End of the period (exclusive, taken back to its minute; default now).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub to: Option<DateTime<Utc>>,
    /// How many terms, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// A topic's id: the terms of its posts (the newest 20,000 of the window).
    pub topic: Option<i64>,
}

impl TermsQuery {
    /// What the query covers at `now` (default: the last hour).
    pub fn span(&self, now: DateTime<Utc>) -> Result<(Period, WindowSpan), ApiError> {
        WindowSpan::of(self.window, self.from, self.to, Window::OneHour, now)
    }
}

/// Posts of a topic whose terms are counted, the newest of the window.
pub const MAX_TOPIC_TERM_POSTS: i64 = 20_000;

/// `GET /api/v1/trending/terms`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrendingTerms {
    #[serde(flatten)]
    pub span: WindowSpan,
    /// Most frequent first.
    pub terms: Vec<TermStats>,
}

/// The most frequent terms and hashtags of the window with their mean sentiment.
#[utoipa::path(
    tag = "metrics", summary = "Trending terms and hashtags", params(TermsQuery),
    responses(
        (status = 200, description = "The most frequent terms, with their mean sentiment", body = TrendingTerms),
        (status = 400, description = "A bad window or limit (`invalid_query`)", body = ErrorBody),
        CostlyReadBusy, PostgresUnavailable,
    )
)]
#[get("/api/v1/trending/terms")]
pub async fn trending_terms(state: State, query: web::Query<TermsQuery>) -> Answer {
    let (period, span) = query.span(Utc::now())?;
    let limit = filters::page_limit(query.limit, 20, MAX_ITEMS)?;
    // A topic's terms are counted from its posts' texts: a costly read, one at a time a caller.
    let _slot = match query.topic {
        Some(_) => Some(state.costly_read().await?),
        None => None,
    };
    let client = state.db().await?;
    let terms = terms_of(&client, query.topic, period, limit).await?;
    Ok(HttpResponse::Ok().json(TrendingTerms { span, terms }))
}

/// The `limit` most frequent terms of `period` (of `topic`'s posts, the newest
/// [`MAX_TOPIC_TERM_POSTS`], when given), with their mean sentiment.
pub async fn terms_of(
    client: &tokio_postgres::Client,
    topic: Option<i64>,
    period: Period,
    limit: i64,
) -> Result<Vec<TermStats>, ApiError> {
    Ok(match topic {
        None => rollups::trending_terms(client, period, limit).await?,
        Some(topic) => {
            let posts =
                crate::db::topics::scored_texts(client, topic, period, MAX_TOPIC_TERM_POSTS)
                    .await?;
            web::block(move || {
                crate::analysis::terms::rank_terms(
                    posts.iter().map(|(t, s)| (t.as_str(), *s)),
                    limit as usize,
                )
            })
            .await
            .map_err(ApiError::internal)?
        }
    })
}
