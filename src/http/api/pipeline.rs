//! `GET /api/v1/pipeline`: the pipeline's health in one read for the dashboard — throughput
//! over the last minute, the models that analysed those posts, consumer-group lag and pending
//! entries, and dead letters. Read-only and global (PostgreSQL and Redis, not this process).

use actix_web::{get, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::actors::ingester::waits::ProducerWait;
use crate::http::answer::Answer;
use crate::http::api::events::fair_share::ProducerShare;
use crate::http::error::PostgresUnavailable;
use crate::http::state::State;
use crate::sources::SourceState;
use crate::streams::group::{self, GroupStats};

/// Seconds the throughput and model figures look back.
pub const WINDOW_SECS: i64 = 60;

/// How many of the window's posts one model analysed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelUse {
    pub model: String,
    pub posts: i64,
}

/// The pipeline's health in one read.
#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineStatus {
    /// When the figures were taken.
    pub at: DateTime<Utc>,
    /// Seconds the throughput and model figures look back.
    #[schema(example = 60)]
    pub window_secs: i64,
    /// Posts created in the window and already stored.
    pub posts: i64,
    pub posts_per_sec: f64,
    /// The models that analysed those posts, busiest first.
    pub models: Vec<ModelUse>,
    /// Consumer-group lag, pending entries and dead letters; null when Redis does not answer.
    pub consumer_group: Option<GroupStats>,
    /// This process's consumer name in the group.
    pub consumer: String,
    /// Entries this process has read and not yet acknowledged.
    pub in_flight: usize,
    /// The sources this process runs: connected or not, how far behind, the last error, and
    /// the gaps they know of (records missed that could not be read back).
    pub sources: Vec<SourceState>,
    /// Whether this process's HTTP intake is sharing what the group drains between producers
    /// (its oldest unacknowledged entry waited past `ingest.fair_share_after_secs`), and how
    /// many events a second it shares.
    pub sharing_per_sec: Option<f64>,
    /// What each producer appending over HTTP to this process asks, gets and is told to wait,
    /// busiest first.
    pub producers: Vec<ProducerShare>,
    /// How long each producer's entries waited from append to commit in this process over the
    /// last minute or two, longest first.
    pub waits: Vec<ProducerWait>,
    /// This process's fingerprint of the settings that decide what becomes of an entry.
    pub settings_fingerprint: String,
    /// Each live process of the group and its fingerprint (published every 5 s): processes
    /// whose fingerprints differ decide the same entry differently.
    pub group_settings: Vec<GroupMemberSettings>,
}

/// One process of the group and the fingerprint of its deciding settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMemberSettings {
    pub consumer: String,
    pub fingerprint: String,
}

/// Throughput, models, lag and dead letters. The figures cover posts created in the last
/// minute and already stored; `consumer_group` is null when Redis does not answer.
#[utoipa::path(
    tag = "pipeline", summary = "Pipeline health",
    responses(
        (status = 200, description = "Throughput, models, lag and dead letters", body = PipelineStatus),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/pipeline")]
pub async fn pipeline(state: State) -> Answer {
    let now = Utc::now();
    let from = now - TimeDelta::seconds(WINDOW_SECS);
    let client = state.db().await?;
    let models: Vec<ModelUse> = crate::db::posts::by_model_since(&client, from)
        .await?
        .into_iter()
        .map(|(model, posts)| ModelUse { model, posts })
        .collect();
    let posts: i64 = models.iter().map(|m| m.posts).sum();
    let group = group::detailed_group_stats(&state.redis, &state.settings)
        .await
        .ok();
    let sharing = state.sharing.last();
    let mut producers = state.fair.shares(sharing, std::time::Instant::now());
    if let Some(auth) = &state.auth {
        for p in &mut producers {
            p.scope = p
                .producer
                .strip_prefix("key:")
                .and_then(|id| auth.scope_of(id));
        }
    }
    let group_settings = crate::streams::upkeep::fingerprints(
        &state.redis,
        &state.settings.redis.stream,
        now.timestamp_millis(),
        crate::actors::monitor::FINGERPRINT_FRESH_MS,
    )
    .await
    .unwrap_or_default()
    .into_iter()
    .map(|(consumer, fingerprint)| GroupMemberSettings {
        consumer,
        fingerprint,
    })
    .collect();
    let waits = state
        .ingest
        .as_ref()
        .map(|i| i.waits.snapshot(now.timestamp_millis()))
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(PipelineStatus {
        at: now,
        window_secs: WINDOW_SECS,
        posts,
        posts_per_sec: posts as f64 / WINDOW_SECS as f64,
        models,
        consumer_group: group,
        consumer: state.consumer.clone(),
        in_flight: state.in_flight(),
        sources: state.sources.iter().map(|s| s.state()).collect(),
        sharing_per_sec: sharing,
        producers,
        waits,
        settings_fingerprint: state.settings.decisions_fingerprint(),
        group_settings,
    }))
}
