//! `POST /api/v1/forecast`: the reach of posts nobody has shared yet (drafts, or posts just
//! published), from their author's track record in the store, their audience and their text.
//! The text is analysed once, by the same analyzer share as `/analyze` (so the pipeline keeps
//! its priority); its sentiment and emotion are inputs of the forecast. Nothing is stored.

use std::collections::HashMap;

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analysis::language::is_language_tag;
use crate::db::forecast::{author_entries, percentile_of, platform_models, share_history};
use crate::http::answer::Answer;
use crate::http::api::analyze::{share_error, SentimentView};
use crate::http::api::virality::{field_error, invalid_request, live_model};
use crate::http::documented::AnalysisBusy;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::State;
use crate::models::event::{MAX_ID_BYTES, MAX_LABEL_BYTES, MAX_TEXT_BYTES};
use crate::models::text::prefix_chars;
use crate::models::{Emotion, Platform};
use crate::telemetry::names;
use crate::virality::forecast::{AuthorRecord, Draft, Driver, ForecastModel, INTERVAL_LEVEL};
use crate::virality::unix_seconds;

/// Most posts in one request.
pub const MAX_DRAFTS: usize = 64;
/// Finished cascades a platform (or product) needs before a forecast is set to their level
/// and says where it falls among them.
pub const MIN_PERCENTILE_HISTORY: i64 = 20;
/// Most distinct (platform, product) pairs in one request: each costs a read of up to 10,000
/// finished cascades.
pub const MAX_COMPARISONS: usize = 8;
/// Largest follower count taken (beyond any account's).
pub const MAX_FOLLOWERS: u64 = 10_000_000_000;

/// Who posts it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftAuthor {
    /// The author's id on the platform (1 to 256 bytes), as their posts carry it.
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    /// Followers, when known (at most 10,000,000,000).
    pub followers: Option<u64>,
}

/// A post to forecast.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftPost {
    /// 1 to 20,000 bytes.
    #[schema(min_length = 1, max_length = 20000)]
    pub text: String,
    #[schema(value_type = Platform)]
    pub platform: String,
    pub author: DraftAuthor,
    /// When it is (or will be) posted; default now. The author's record counts only their posts
    /// before it.
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub at: Option<DateTime<Utc>>,
    /// Its language (`de`, `pt-BR`: ISO 639-1 or 639-3, a region allowed), routed to the
    /// model for it as a post so tagged would be; detected from the text when absent.
    #[schema(min_length = 2, max_length = 128)]
    pub lang: Option<String>,
    /// Compare with this product's stored posts only (1 to 256 bytes).
    #[schema(min_length = 1, max_length = 256)]
    pub product: Option<String>,
}

/// `POST /api/v1/forecast`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// 1 to 64 posts, of at most 8 distinct `platform` and `product` pairs.
    #[schema(min_items = 1, max_items = 64)]
    #[serde(deserialize_with = "crate::models::bounded::at_most::<_, _, MAX_DRAFTS>")]
    pub posts: Vec<DraftPost>,
}

/// The expected shares' 80% interval.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareInterval {
    pub low: f64,
    pub high: f64,
    pub level: f64,
}

/// What Pulse knew of the author.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorEvidence {
    /// Cascades of theirs in the store that the forecast read: finished, or still growing
    /// (counted at their shares so far).
    pub cascades: u64,
    /// Their median-like typical final shares: exp of their mean ln(1 + shares), minus 1;
    /// null without cascades.
    pub typical_shares: Option<f64>,
    /// True when Pulse had no finished cascade of theirs: the forecast stands on audience and
    /// text, and is less certain.
    pub new_author: bool,
}

/// One post's forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostForecast {
    /// The model that made it: the shipped one's id, or `<version>+<platform>:<hash>` where the
    /// platform's own finished cascades refitted it.
    pub model: String,
    /// Expected shares within 7 days of posting, at the level of the platform's (or product's)
    /// finished cascades once the store has 20; before that, at the level of the data the
    /// model was fitted on.
    pub expected_shares: f64,
    pub interval: ShareInterval,
    /// Where the expected shares fall among the platform's 10,000 most recently finished
    /// cascades (the product's among them, when given), 0 to 100; null with fewer than 20.
    pub percentile: Option<f64>,
    /// Finished cascades that percentile is taken among.
    pub percentile_among: i64,
    /// Probability of reaching `viral_threshold_shares`.
    pub viral_probability: f64,
    /// The platform's viral threshold, as the live predictor uses it for a producer without
    /// a history of its own: the median of the platform's producers' thresholds.
    pub viral_threshold_shares: f64,
    /// 0 to 100: where this forecast falls among the forecasts of the data the model was
    /// fitted on.
    pub score: u8,
    pub author: AuthorEvidence,
    /// Each group of inputs and the factor it multiplied the expected shares by, with the
    /// group's effect measured on held-out folds.
    pub drivers: Vec<Driver>,
    pub sentiment: SentimentView,
    pub emotion: Option<Emotion>,
    pub lang: Option<String>,
}

/// The model that forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastLineage {
    /// `<version>:<hash of its parameters>`.
    pub id: String,
    pub version: String,
    /// What it was fitted on.
    pub data: String,
    /// The analyzer that read the texts.
    pub analyzer: Option<String>,
}

/// The answer: one forecast per post, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastResponse {
    pub model: ForecastLineage,
    pub forecasts: Vec<PostForecast>,
}

/// Forecasts the reach of up to 64 posts before any share.
#[utoipa::path(
    tag = "virality", summary = "Forecast the reach of posts before anyone shares them",
    request_body = ForecastRequest,
    responses(
        (status = 200, description = "One forecast per post, in order", body = ForecastResponse),
        (status = 400, description = "Invalid fields (`invalid_request`, `details.errors` names \
            each) or not a forecast request (`invalid_json`)", body = ErrorBody),
        (status = 503, description = "No analyzer in this process, the analyzer's API share is \
            in use (`busy`, `Retry-After`), or PostgreSQL is unavailable", body = ErrorBody),
        AnalysisBusy,
    )
)]
#[post("/api/v1/forecast")]
pub async fn forecast(state: State, body: web::Json<ForecastRequest>) -> Answer {
    let posts = body.into_inner().posts;
    let platforms = validate(&posts)?;
    let Some(ingest) = state.ingest.as_ref() else {
        return Err(ApiError::unavailable("this process runs no analyzer"));
    };
    let texts: Vec<(String, Option<String>)> = posts
        .iter()
        .map(|p| (p.text.clone(), p.lang.clone()))
        .collect();
    let analysed = ingest
        .api_share
        .analyze_tagged(&ingest.analyzer, &ingest.route, &state.client_id(), texts)
        .await
        .map_err(share_error)?;

    let client = state.db().await?;
    let mut records = HashMap::new();
    let mut authors_of: HashMap<Platform, Vec<String>> = HashMap::new();
    for (p, platform) in posts.iter().zip(&platforms) {
        authors_of
            .entry(*platform)
            .or_default()
            .push(p.author.id.clone());
    }
    for (platform, mut authors) in authors_of {
        authors.sort();
        authors.dedup();
        for (author, entries) in author_entries(&client, platform.as_str(), &authors).await? {
            records.insert((platform, author), entries);
        }
    }
    let mut percentiles = HashMap::new();
    for (p, platform) in posts.iter().zip(&platforms) {
        if let std::collections::hash_map::Entry::Vacant(slot) =
            percentiles.entry((*platform, p.product.clone()))
        {
            slot.insert(share_history(&client, platform.as_str(), p.product.as_deref()).await?);
        }
    }
    let mut names: Vec<String> = platforms.iter().map(|p| p.as_str().to_string()).collect();
    names.sort();
    names.dedup();
    let refitted = platform_models(&client, &names).await?;
    drop(client);
    let live = live_model(&state).await;

    let shipped = ForecastModel::built_in();
    let now = unix_seconds(Utc::now());
    let mut forecasts = Vec::with_capacity(posts.len());
    for ((p, platform), analysis) in posts.iter().zip(&platforms).zip(&analysed.analyses) {
        let at = p.at.map_or(now, unix_seconds);
        let record = records
            .get(&(*platform, p.author.id.clone()))
            .map(|entries| AuthorRecord::posted_before(entries, at))
            .unwrap_or_default();
        let draft = Draft::new(&p.text, p.author.followers, at, record, analysis);
        let threshold = live.threshold(Some(*platform), None);
        let model = refitted.get(platform.as_str()).unwrap_or(shipped);
        let history = &percentiles[&(*platform, p.product.clone())];
        let enough = history.cascades >= MIN_PERCENTILE_HISTORY;
        let f = model.forecast(&draft, Some(threshold), history.mean_log.filter(|_| enough));
        forecasts.push(PostForecast {
            model: model.id(),
            expected_shares: f.expected_shares,
            interval: ShareInterval {
                low: f.low,
                high: f.high,
                level: INTERVAL_LEVEL,
            },
            percentile: enough.then(|| percentile_of(&history.percentiles, f.expected_shares)),
            percentile_among: history.cascades,
            viral_probability: f.viral_probability,
            viral_threshold_shares: threshold,
            score: f.score,
            author: AuthorEvidence {
                cascades: record.cascades,
                typical_shares: record.typical_shares(),
                new_author: f.new_author,
            },
            drivers: f.drivers,
            sentiment: SentimentView {
                label: analysis.sentiment_label,
                score: analysis.sentiment_score,
            },
            emotion: analysis.emotions.dominant(),
            lang: analysis.lang.clone(),
        });
    }
    metrics::counter!(names::FORECASTS).increment(forecasts.len() as u64);
    Ok(HttpResponse::Ok().json(ForecastResponse {
        model: ForecastLineage {
            id: shipped.id(),
            version: shipped.version.clone(),
            data: shipped.data.clone(),
            analyzer: analysed.analyses.first().map(|a| a.model.clone()),
        },
        forecasts,
    }))
}

/// Checks every field, naming each that is wrong; the posts' platforms when all are right.
fn validate(posts: &[DraftPost]) -> Result<Vec<Platform>, ApiError> {
    let mut errors = Vec::new();
    if posts.is_empty() || posts.len() > MAX_DRAFTS {
        errors.push(field_error(
            "posts",
            format!("must hold 1 to {MAX_DRAFTS} posts"),
        ));
    }
    let mut platforms = Vec::with_capacity(posts.len());
    for (i, p) in posts.iter().enumerate().take(MAX_DRAFTS) {
        if p.text.trim().is_empty() || p.text.len() > MAX_TEXT_BYTES {
            errors.push(field_error(
                format!("posts[{i}].text"),
                format!("must be 1 to {MAX_TEXT_BYTES} bytes, not only spaces"),
            ));
        }
        match Platform::parse(&p.platform) {
            Some(platform) => platforms.push(platform),
            None => errors.push(field_error(
                format!("posts[{i}].platform"),
                format!(
                    "unknown platform `{}`",
                    prefix_chars(&p.platform, ECHOED_CHARS)
                ),
            )),
        }
        if !is_stored_id(&p.author.id) {
            errors.push(field_error(
                format!("posts[{i}].author.id"),
                format!("must be 1 to {MAX_ID_BYTES} bytes without NUL characters"),
            ));
        }
        if p.author.followers.is_some_and(|f| f > MAX_FOLLOWERS) {
            errors.push(field_error(
                format!("posts[{i}].author.followers"),
                format!("must be at most {MAX_FOLLOWERS}"),
            ));
        }
        if p.lang
            .as_deref()
            .is_some_and(|l| l.len() > MAX_LABEL_BYTES || !is_language_tag(l))
        {
            errors.push(field_error(
                format!("posts[{i}].lang"),
                "must be a language tag: ISO 639-1 or 639-3 (`de`, `fil`), a region allowed (`pt-BR`)",
            ));
        }
        if p.product.as_deref().is_some_and(|s| !is_stored_id(s)) {
            errors.push(field_error(
                format!("posts[{i}].product"),
                format!("must be 1 to {MAX_ID_BYTES} bytes without NUL characters"),
            ));
        }
        if errors.len() >= 20 {
            break;
        }
    }
    let mut pairs: Vec<(&Platform, Option<&str>)> = platforms
        .iter()
        .zip(posts)
        .map(|(platform, p)| (platform, p.product.as_deref()))
        .collect();
    pairs.sort_by_key(|(platform, product)| (platform.as_str(), *product));
    pairs.dedup();
    if pairs.len() > MAX_COMPARISONS {
        errors.push(field_error(
            "posts",
            format!(
                "{} distinct platform and product pairs; at most {MAX_COMPARISONS} in one request",
                pairs.len()
            ),
        ));
    }
    if errors.is_empty() {
        Ok(platforms)
    } else {
        Err(invalid_request(errors))
    }
}

/// Whether an author id or product could be one the store holds (PostgreSQL text cannot hold
/// NUL), so a lookup is worth making.
fn is_stored_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_BYTES && !s.contains('\0')
}

/// Characters of a value echoed in an error.
const ECHOED_CHARS: usize = 64;
