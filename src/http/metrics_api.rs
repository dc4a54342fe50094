//! REST metrics: windowed aggregates by dimension, time series and trending terms.
//!
//! Unfiltered queries read the per-minute rollups, which the store maintains in the same
//! statement that inserts posts, so they are global across processes and exact. A window of
//! `5m` covers the current minute and the four before it; the response's `from` says exactly
//! where it starts. Queries with filters read the stored posts of the same window.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::filters::{self, PostFilters};
use super::state::State;
use super::AppState;

/// Most items returned for one dimension.
pub const MAX_ITEMS: i64 = 200;
/// Most points a time series may have.
pub const MAX_POINTS: i64 = 1_500;

/// A rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub enum Window {
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "24h")]
    OneDay,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [
        Window::OneMinute,
        Window::FiveMinutes,
        Window::OneHour,
        Window::OneDay,
    ];

    /// Minutes the window spans.
    pub fn minutes(self) -> i64 {
        match self {
            Window::OneMinute => 1,
            Window::FiveMinutes => 5,
            Window::OneHour => 60,
            Window::OneDay => 1_440,
        }
    }

    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::OneMinute => "1m",
            Window::FiveMinutes => "5m",
            Window::OneHour => "1h",
            Window::OneDay => "24h",
        }
    }

    /// Start of the window: the first minute bucket it includes.
    pub fn start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        minute - TimeDelta::minutes(self.minutes() - 1)
    }
}

/// The dimensions Pulse aggregates by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    Overall,
    Platform,
    City,
    Country,
    Product,
    Channel,
}

impl Dimension {
    /// Name in the rollup table and in `posts`' column names.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Overall => "overall",
            Dimension::Platform => "platform",
            Dimension::City => "city",
            Dimension::Country => "country",
            Dimension::Product => "product",
            Dimension::Channel => "channel",
        }
    }
}

/// Query of the window endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// The window (default `5m`).
    #[param(inline)]
    pub window: Option<Window>,
    #[param(value_type = Option<crate::models::Platform>)]
    pub platform: Option<String>,
    pub product: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub channel: Option<String>,
    #[param(value_type = Option<crate::models::SentimentLabel>)]
    pub sentiment: Option<String>,
}

impl WindowQuery {
    fn filters(&self) -> Result<Vec<(&'static str, String)>, ApiError> {
        PostFilters {
            platform: &self.platform,
            product: &self.product,
            city: &self.city,
            country: &self.country,
            channel: &self.channel,
            sentiment: &self.sentiment,
        }
        .columns()
    }
}

/// Aggregates of one slice of posts over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub posts: i64,
    pub sentiment: SentimentStats,
    pub toxicity_mean: f64,
    pub churn: ChurnStats,
    pub emotions: EmotionCounts,
    pub engagement: EngagementTotals,
}

/// Sentiment of a slice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SentimentStats {
    pub mean: f64,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
    pub negative_share: f64,
    pub neutral_share: f64,
    pub positive_share: f64,
}

/// Churn risk of a slice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChurnStats {
    pub mean: f64,
    pub high: i64,
    pub high_share: f64,
}

/// Posts per dominant emotion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmotionCounts {
    pub anger: i64,
    pub joy: i64,
    pub optimism: i64,
    pub sadness: i64,
}

/// Engagement totals by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EngagementTotals {
    pub likes: i64,
    pub shares: i64,
    pub comments: i64,
    pub views: i64,
}

/// The sums every aggregate query selects, in this order, after any leading columns.
const SUMS: &str = "sum(posts)::int8, sum(sentiment_sum)::float8, sum(negative)::int8, \
    sum(neutral)::int8, sum(positive)::int8, sum(toxicity_sum)::float8, sum(churn_sum)::float8, \
    sum(high_churn)::int8, sum(anger)::int8, sum(joy)::int8, sum(optimism)::int8, \
    sum(sadness)::int8, sum(likes)::int8, sum(shares)::int8, sum(comments)::int8, sum(views)::int8";

fn share(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

impl Stats {
    /// Reads the sums starting at column `at`.
    pub fn from_row(row: &Row, at: usize) -> Stats {
        let int = |i: usize| row.get::<_, Option<i64>>(at + i).unwrap_or(0);
        let float = |i: usize| row.get::<_, Option<f64>>(at + i).unwrap_or(0.0);
        let posts = int(0);
        let mean = |sum: f64| if posts > 0 { sum / posts as f64 } else { 0.0 };
        let (negative, neutral, positive) = (int(2), int(3), int(4));
        Stats {
            posts,
            sentiment: SentimentStats {
                mean: mean(float(1)),
                negative,
                neutral,
                positive,
                negative_share: share(negative, posts),
                neutral_share: share(neutral, posts),
                positive_share: share(positive, posts),
            },
            toxicity_mean: mean(float(5)),
            churn: ChurnStats {
                mean: mean(float(6)),
                high: int(7),
                high_share: share(int(7), posts),
            },
            emotions: EmotionCounts {
                anger: int(8),
                joy: int(9),
                optimism: int(10),
                sadness: int(11),
            },
            engagement: EngagementTotals {
                likes: int(12),
                shares: int(13),
                comments: int(14),
                views: int(15),
            },
        }
    }
}

/// One key of a dimension with its stats.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyedStats {
    pub key: String,
    #[serde(flatten)]
    pub stats: Stats,
}

/// Stats per key of `dimension` over `window` (keys with the most posts first), from the
/// rollups, or from the posts when `filters` are given.
pub async fn by_dimension(
    client: &tokio_postgres::Client,
    dimension: Dimension,
    window: Window,
    filters: &[(&'static str, String)],
    high_churn: f32,
    now: DateTime<Utc>,
) -> Result<Vec<KeyedStats>, tokio_postgres::Error> {
    let from = window.start(now);
    let rows = if filters.is_empty() {
        let sql = format!(
            "SELECT key, {SUMS} FROM metric_rollups WHERE dimension = $1 AND minute >= $2 \
             GROUP BY key ORDER BY 2 DESC, key LIMIT {MAX_ITEMS}"
        );
        client.query(&sql, &[&dimension.as_str(), &from]).await?
    } else {
        let key = match dimension {
            Dimension::Overall => "''".to_string(),
            d => d.as_str().to_string(),
        };
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
            vec![Box::new(from), Box::new(high_churn)];
        let mut clauses = vec!["p.created_at >= $1".to_string()];
        if dimension != Dimension::Overall {
            clauses.push(format!("p.{key} IS NOT NULL"));
        }
        for (column, value) in filters {
            params.push(Box::new(value.clone()));
            clauses.push(format!("p.{column} = ${}", params.len()));
        }
        // Only the columns the sums need, and the window's engagements summed per post once:
        // no copy of whole rows (texts included) is materialised.
        let sql = format!(
            "SELECT {key} AS key, {SUMS} FROM ( \
                 SELECT p.platform, p.city, p.country, p.product, p.channel, 1 AS posts, \
                 p.sentiment_score::float8 AS sentiment_sum, \
                 (p.sentiment_label = 'negative')::int AS negative, \
                 (p.sentiment_label = 'neutral')::int AS neutral, \
                 (p.sentiment_label = 'positive')::int AS positive, \
                 p.toxicity::float8 AS toxicity_sum, p.churn_risk::float8 AS churn_sum, \
                 (p.churn_risk >= $2)::int AS high_churn, \
                 (p.emotion IS NOT DISTINCT FROM 'anger')::int AS anger, \
                 (p.emotion IS NOT DISTINCT FROM 'joy')::int AS joy, \
                 (p.emotion IS NOT DISTINCT FROM 'optimism')::int AS optimism, \
                 (p.emotion IS NOT DISTINCT FROM 'sadness')::int AS sadness, \
                 COALESCE(eng.likes, 0) AS likes, COALESCE(eng.shares, 0) AS shares, \
                 COALESCE(eng.comments, 0) AS comments, COALESCE(eng.views, 0) AS views \
                 FROM posts p LEFT JOIN ( \
                     SELECT e.post_id, \
                     sum(CASE WHEN e.kind = 'like' THEN e.count ELSE 0 END) AS likes, \
                     sum(CASE WHEN e.kind = 'share' THEN e.count ELSE 0 END) AS shares, \
                     sum(CASE WHEN e.kind = 'comment' THEN e.count ELSE 0 END) AS comments, \
                     sum(CASE WHEN e.kind = 'view' THEN e.count ELSE 0 END) AS views \
                     FROM engagements e WHERE e.at >= $1 GROUP BY e.post_id) eng \
                 ON eng.post_id = p.id WHERE {where_}) s \
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {MAX_ITEMS}",
            where_ = clauses.join(" AND "),
            key = if dimension == Dimension::Overall {
                key
            } else {
                format!("s.{key}")
            },
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client.query(&sql, &refs).await?
    };
    Ok(rows
        .iter()
        .map(|row| KeyedStats {
            key: row.get(0),
            stats: Stats::from_row(row, 1),
        })
        .collect())
}

/// The window an answer covers: `from` is the start of its first minute, `to` the time of
/// the query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WindowSpan {
    pub window: Window,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl WindowSpan {
    fn new(window: Window, now: DateTime<Utc>) -> WindowSpan {
        WindowSpan {
            window,
            from: window.start(now),
            to: now,
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
    state: &AppState,
    query: &WindowQuery,
    dimension: Dimension,
) -> Result<(Window, DateTime<Utc>, Vec<KeyedStats>), ApiError> {
    let filters = query.filters()?;
    let window = query.window.unwrap_or(Window::FiveMinutes);
    let now = Utc::now();
    let client = state.pool.get().await?;
    let items = by_dimension(
        &client,
        dimension,
        window,
        &filters,
        state.settings.metrics.high_churn_threshold,
        now,
    )
    .await?;
    Ok((window, now, items))
}

/// Overall stats of the window.
#[utoipa::path(
    tag = "metrics",
    summary = "Overall stats of a window",
    params(WindowQuery),
    responses(
        (status = 200, description = "Stats of every post of the window", body = OverallMetrics),
        (status = 400, description = "A bad window or filter (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/metrics/overall")]
pub async fn overall(
    state: State,
    query: web::Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    let (window, now, items) = items(&state, &query, Dimension::Overall).await?;
    let stats = items
        .into_iter()
        .next()
        .map(|k| k.stats)
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(OverallMetrics {
        span: WindowSpan::new(window, now),
        stats,
    }))
}

/// Stats per platform.
#[utoipa::path(
    tag = "metrics",
    summary = "Stats per platform",
    params(WindowQuery),
    responses(
        (status = 200, description = "One entry per key, most posts first", body = DimensionMetrics),
        (status = 400, description = "A bad window or filter (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/metrics/platforms")]
pub async fn platforms(
    state: State,
    query: web::Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    let (window, now, items) = items(&state, &query, Dimension::Platform).await?;
    Ok(HttpResponse::Ok().json(DimensionMetrics {
        span: WindowSpan::new(window, now),
        items,
    }))
}

/// Stats per channel.
#[utoipa::path(
    tag = "metrics",
    summary = "Stats per channel",
    params(WindowQuery),
    responses(
        (status = 200, description = "One entry per key, most posts first", body = DimensionMetrics),
        (status = 400, description = "A bad window or filter (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/metrics/channels")]
pub async fn channels(
    state: State,
    query: web::Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    let (window, now, items) = items(&state, &query, Dimension::Channel).await?;
    Ok(HttpResponse::Ok().json(DimensionMetrics {
        span: WindowSpan::new(window, now),
        items,
    }))
}

/// Stats per city and per country.
#[utoipa::path(
    tag = "metrics",
    summary = "Stats per city and per country",
    params(WindowQuery),
    responses(
        (status = 200, description = "Cities and countries, most posts first", body = GeoMetrics),
        (status = 400, description = "A bad window or filter (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/metrics/geo")]
pub async fn geo(state: State, query: web::Query<WindowQuery>) -> Result<HttpResponse, ApiError> {
    let (window, now, cities) = items(&state, &query, Dimension::City).await?;
    let (_, _, countries) = items(&state, &query, Dimension::Country).await?;
    Ok(HttpResponse::Ok().json(GeoMetrics {
        span: WindowSpan::new(window, now),
        cities,
        countries,
    }))
}

/// Stats per product with share of voice: each product's share of product-tagged volume,
/// of positive volume and of negative volume.
#[utoipa::path(
    tag = "metrics",
    summary = "Stats per product with share of voice",
    params(WindowQuery),
    responses(
        (status = 200, description = "Products, most posts first", body = ProductMetrics),
        (status = 400, description = "A bad window or filter (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/metrics/products")]
pub async fn products(
    state: State,
    query: web::Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    let (window, now, items) = items(&state, &query, Dimension::Product).await?;
    let total: i64 = items.iter().map(|i| i.stats.posts).sum();
    let positive: i64 = items.iter().map(|i| i.stats.sentiment.positive).sum();
    let negative: i64 = items.iter().map(|i| i.stats.sentiment.negative).sum();
    let items: Vec<ProductStats> = items
        .into_iter()
        .map(|i| ProductStats {
            share_of_voice: ShareOfVoice {
                volume: share(i.stats.posts, total),
                positive: share(i.stats.sentiment.positive, positive),
                negative: share(i.stats.sentiment.negative, negative),
            },
            keyed: i,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ProductMetrics {
        span: WindowSpan::new(window, now),
        items,
    }))
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
    tag = "metrics",
    summary = "Time series of one dimension key",
    params(SeriesQuery),
    responses(
        (status = 200, description = "Buckets with posts, oldest first", body = TimeSeries),
        (status = 400, description = "A bad dimension, key, range or bucket, or too many \
            buckets (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/metrics/timeseries")]
pub async fn timeseries(
    state: State,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let dimension = q.dimension.unwrap_or(Dimension::Overall);
    let key = match (dimension, q.key) {
        (Dimension::Overall, _) => String::new(),
        (_, Some(k)) if !super::sql::storable(&k) => return Err(filters::nul_in_query("key")),
        (_, Some(k)) => k,
        (_, None) => {
            return Err(ApiError::bad_request(
                "invalid_query",
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
        return Err(ApiError::bad_request(
            "invalid_query",
            "from must be before to",
        ));
    }
    if (to - from).num_minutes() / bucket_minutes > MAX_POINTS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("more than {MAX_POINTS} points; use a larger bucket or a shorter range"),
        ));
    }
    let client = state.pool.get().await?;
    let sql = format!(
        "SELECT date_bin(make_interval(mins => $4), minute, TIMESTAMPTZ '2000-01-01') AS bucket, {SUMS} \
         FROM metric_rollups WHERE dimension = $1 AND key = $2 AND minute >= $3 AND minute < $5 \
         GROUP BY 1 ORDER BY 1"
    );
    let bucket_param = bucket_minutes as i32;
    let rows = client
        .query(
            &sql,
            &[&dimension.as_str(), &key, &from, &bucket_param, &to],
        )
        .await?;
    let points: Vec<SeriesPoint> = rows
        .iter()
        .map(|row| SeriesPoint {
            at: row.get(0),
            stats: Stats::from_row(row, 1),
        })
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
    /// The window (default `1h`).
    #[param(inline)]
    pub window: Option<Window>,
    /// How many terms, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One trending term.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TermStats {
    /// The term, or the hashtag with its `#`.
    pub term: String,
    /// Whether the term is a hashtag.
    pub hashtag: bool,
    /// Posts of the window that contain it.
    pub posts: i64,
    /// Mean sentiment score of those posts (-1 to 1).
    pub sentiment_mean: f64,
}

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
    tag = "metrics",
    summary = "Trending terms and hashtags",
    params(TermsQuery),
    responses(
        (status = 200, description = "The most frequent terms, with their mean sentiment", body = TrendingTerms),
        (status = 400, description = "A bad window or limit (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/trending/terms")]
pub async fn trending_terms(
    state: State,
    query: web::Query<TermsQuery>,
) -> Result<HttpResponse, ApiError> {
    let window = query.window.unwrap_or(Window::OneHour);
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_ITEMS).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_ITEMS}"),
        ));
    }
    let now = Utc::now();
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT term, sum(posts)::int8, (sum(sentiment_sum) / NULLIF(sum(posts), 0))::float8 \
             FROM term_rollups WHERE minute >= $1 GROUP BY term ORDER BY 2 DESC, term LIMIT $2",
            &[&window.start(now), &limit],
        )
        .await?;
    let terms: Vec<TermStats> = rows
        .iter()
        .map(|r| {
            let term: String = r.get(0);
            TermStats {
                hashtag: term.starts_with('#'),
                term,
                posts: r.get(1),
                sentiment_mean: r.get::<_, Option<f64>>(2).unwrap_or(0.0),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(TrendingTerms {
        span: WindowSpan::new(window, now),
        terms,
    }))
}
