//! Scoring a post sent in the request with the model in force, and the learned thresholds
//! it scores with.

use chrono::{DateTime, Utc};

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;

use utoipa::ToSchema;

use super::{field_error, invalid_request, MAX_COUNT, MAX_SCORE_ENGAGEMENTS};
use crate::config::ViralitySettings;
use crate::db::cascades::ViralityView;

use crate::db::virality::learned_thresholds;
use crate::http::answer::Answer;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::http::AppState;
use crate::models::{EngagementKind, Platform};
use crate::virality::calibration::Calibration;
use crate::virality::thresholds::Learned;
use crate::virality::{unix_seconds, Model, PostMeta, Tracker};

/// The post of a scoring request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScorePost {
    /// 1 to 256 bytes; echoed as `post_id`.
    #[schema(min_length = 1, max_length = 256)]
    pub id: Option<String>,
    #[schema(value_type = Option<Platform>)]
    pub platform: Option<String>,
    #[serde(deserialize_with = "crate::models::time::bounded_required")]
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
    #[serde(deserialize_with = "crate::models::time::bounded_required")]
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
    #[serde(
        default,
        deserialize_with = "crate::models::bounded::at_most::<_, _, MAX_SCORE_ENGAGEMENTS>"
    )]
    #[schema(max_items = 50000)]
    pub engagements: Vec<ScoreEngagement>,
    /// Observation time (not before the post's `created_at`); default the latest engagement
    /// (or the post's creation).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub observed_at: Option<DateTime<Utc>>,
}

/// Scores a post given with its engagement series, with the model in force (no state is
/// kept).
#[utoipa::path(
    tag = "virality", summary = "Score a post and its engagements", request_body = ScoreRequest,
    responses(
        (status = 200, description = "The post's virality (status `scored`)", body = ViralityView),
        (status = 400, description = "Invalid fields (`invalid_request`, `details.errors` names \
            each) or a body that is not a scoring request (`invalid_json`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/score")]
pub async fn score(state: State, body: web::Json<ScoreRequest>) -> Answer {
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
    let model = live_model(&state).await;

    let window = (v.momentum_window_secs / 60).max(1) as i64;
    let post_id = req.post.id.clone().unwrap_or_default();
    // Up to 50,000 engagements linked into a share tree and scored: off the HTTP worker, so
    // a large body does not stall the other connections it serves.
    let scored = web::block(move || {
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
        model.score(&tracker, window)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(ViralityView {
        post_id,
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

/// How long learned thresholds serve the score endpoint before they are learned again.
const THRESHOLD_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The learned viral thresholds as the score endpoint uses them: learned at most once a
/// minute per process, so a score costs no aggregate over the cascade history. No request
/// waits for them: while one request learns them again the others score with the previous
/// ones, and until any were learned (or when learning fails) with none, which leaves the
/// built-in calibration's threshold in force, as for a platform without enough history.
#[derive(Default)]
pub struct ThresholdCache {
    cached: std::sync::RwLock<Option<(std::time::Instant, Learned)>>,
    learning: tokio::sync::Mutex<()>,
}

impl ThresholdCache {
    /// The thresholds, learned again when the cached ones are older than a minute.
    pub async fn get(&self, pool: &crate::db::ApiPool, settings: &ViralitySettings) -> Learned {
        let cached = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let (fresh, previous) = match cached {
            Some((at, thresholds)) => (at.elapsed() < THRESHOLD_TTL, thresholds),
            None => (false, Learned::default()),
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
                tracing::debug!(error = %format_args!("{e:#}"), "could not learn the viral thresholds now; scoring with the previous ones");
                previous
            }
        }
    }
}

/// The model the live predictor scores with: the shipped calibration, the configured interval
/// and classification, and the learned thresholds (cached).
pub async fn live_model(state: &AppState) -> Model {
    let v = &state.settings.virality;
    let mut model = Model::new(
        Calibration::shared(),
        v.interval_level,
        v.classify_probability,
    );
    model.set_thresholds(
        state.thresholds.get(&state.pool, v).await,
        v.threshold_shares,
    );
    model
}
