//! Liveness, readiness and Prometheus metrics.

use crate::telemetry::causes::causes;
use actix_web::{get, web, HttpResponse};
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::state::State;

/// The liveness answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// Alive: the process answers HTTP. Load balancers restart a process that stops answering.
#[utoipa::path(
    tag = "service", summary = "Liveness",
    responses((status = 200, description = "The process answers", body = Health))
)]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// Whether Pulse can serve: both dependencies answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    NotReady,
}

/// Whether one dependency answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DependencyStatus {
    Ok,
    Error,
}

/// One dependency's state. Why a dependency does not answer is logged, not sent: `/ready`
/// is public, and error texts name hosts, users and databases.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DependencyHealth {
    pub status: DependencyStatus,
}

impl DependencyHealth {
    fn of(name: &'static str, result: &Result<(), String>) -> DependencyHealth {
        match result {
            Ok(()) => DependencyHealth {
                status: DependencyStatus::Ok,
            },
            Err(e) => {
                tracing::warn!(dependency = name, error = %e, "not ready: a dependency does not answer");
                DependencyHealth {
                    status: DependencyStatus::Error,
                }
            }
        }
    }
}

/// The readiness answer: whether each dependency answers (and PostgreSQL takes the store's
/// writes), and nothing else a stranger could use (consumer names, lag and backlog are at
/// `GET /api/v1/pipeline`, for analysts).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub status: ReadyStatus,
    pub postgres: DependencyHealth,
    pub redis: DependencyHealth,
    /// How many of this process's sources are connected to their platforms. A disconnected
    /// source does not make the process unready: it reconnects by itself, and the API and
    /// the rest of the stream are served meanwhile. Names, lag and errors are at
    /// `GET /api/v1/pipeline`.
    pub sources: SourcesReadiness,
}

/// Counts of sources, without their names (the probe is public).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SourcesReadiness {
    pub total: usize,
    pub connected: usize,
}

/// Ready: PostgreSQL and Redis answer and the store's writes succeed; 503 when one does not
/// (the body says which, the log why).
#[utoipa::path(
    tag = "service", summary = "Readiness",
    responses(
        (status = 200, description = "PostgreSQL and Redis answer, and the store's writes have \
            not kept failing for want of the database", body = Readiness),
        (status = 503, description = "A dependency is down; the body says which", body = Readiness),
    )
)]
#[get("/ready")]
pub async fn ready(state: State) -> HttpResponse {
    // One check a second however many probe: the path is open to anyone, and the check takes
    // one of the pipeline's connections.
    let mut last = state.readiness.0.lock().await;
    let (up, body) = match &*last {
        Some((at, up, body)) if at.elapsed() < READY_FOR => (*up, body.clone()),
        _ => {
            let (up, body) = check_ready(&state).await;
            let body = web::Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
            *last = Some((std::time::Instant::now(), up, body.clone()));
            (up, body)
        }
    };
    drop(last);
    let mut response = if up {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.content_type("application/json").body(body)
}

/// How long one readiness check answers for.
const READY_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The last readiness check: when, whether ready, and the body.
#[derive(Debug, Default)]
pub struct ReadyCache(tokio::sync::Mutex<Option<(std::time::Instant, bool, web::Bytes)>>);

async fn check_ready(state: &State) -> (bool, Readiness) {
    let postgres = match state.pipeline_pool.get().await {
        Ok(client) => crate::db::ping(&client)
            .await
            .map_err(|e| causes(&e).to_string()),
        Err(e) => Err(causes(&e).to_string()),
    };
    // A database that answers may still refuse every write.
    let postgres =
        postgres.and_then(
            |()| match state.ingest.as_ref().and_then(|i| i.store.write_failure()) {
                Some(why) => Err(format!("answers, but writes fail: {why}")),
                None => Ok(()),
            },
        );
    let ping: Result<String, _> = state.redis.ping(None).await;
    let redis = ping.map(|_| ()).map_err(|e| e.to_string());
    let up = postgres.is_ok() && redis.is_ok();
    let body = Readiness {
        status: if up {
            ReadyStatus::Ready
        } else {
            ReadyStatus::NotReady
        },
        postgres: DependencyHealth::of("postgres", &postgres),
        redis: DependencyHealth::of("redis", &redis),
        sources: SourcesReadiness {
            total: state.sources.len(),
            connected: state.sources.iter().filter(|s| s.state().connected).count(),
        },
    };
    (up, body)
}

/// The content type of `GET /metrics` (Prometheus text exposition format 0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Prometheus text exposition of every Pulse metric.
#[utoipa::path(
    tag = "service", operation_id = "prometheus_metrics", summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Every Pulse metric in the Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
    )
)]
#[get("/metrics")]
pub async fn prometheus(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(PROMETHEUS_CONTENT_TYPE)
        .body(state.metrics.render())
}
