//! Liveness, readiness and Prometheus metrics.

use actix_web::{get, web, HttpResponse};
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{openapi, AppState};
use crate::actors::ingester::{self, GroupStats};
use crate::telemetry::names;

/// The map of the API at `GET /api/v1`, for people and scripts exploring it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceMap {
    /// Always `pulse`.
    #[schema(example = "pulse")]
    pub name: String,
    /// The server's version.
    pub version: String,
    /// Every operation as `METHOD /path`, read from the OpenAPI document.
    #[schema(example = json!(["GET /health", "GET /api/v1/posts"]))]
    pub endpoints: Vec<String>,
    /// Path of the OpenAPI document.
    #[schema(example = "/api/openapi.json")]
    pub openapi: String,
    /// Path of the human-readable API reference.
    #[schema(example = "/api/docs")]
    pub docs: String,
}

/// A map of the API for people and scripts exploring it (`/` is the dashboard). The endpoint
/// list comes from the OpenAPI document, so it names every route.
#[utoipa::path(
    tag = "service",
    operation_id = "service_map",
    summary = "Service map",
    responses(
        (status = 200, description = "Name, version and every endpoint", body = ServiceMap),
    )
)]
#[get("/api/v1")]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().json(ServiceMap {
        name: "pulse".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        endpoints: openapi::endpoints().to_vec(),
        openapi: openapi::DOCUMENT_PATH.into(),
        docs: openapi::DOCS_PATH.into(),
    })
}

/// The liveness answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// Alive: the process answers HTTP. Load balancers restart a process that stops answering.
#[utoipa::path(
    tag = "service",
    summary = "Liveness",
    security(()),
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

/// One dependency's state, with the error when it does not answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DependencyHealth {
    pub status: DependencyStatus,
    /// Why the dependency does not answer (absent when it does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DependencyHealth {
    fn of(result: &Result<(), String>) -> DependencyHealth {
        match result {
            Ok(()) => DependencyHealth {
                status: DependencyStatus::Ok,
                error: None,
            },
            Err(e) => DependencyHealth {
                status: DependencyStatus::Error,
                error: Some(e.clone()),
            },
        }
    }
}

/// The readiness answer: dependencies, consumer-group figures and this process's backlog.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: ReadyStatus,
    pub postgres: DependencyHealth,
    pub redis: DependencyHealth,
    /// Consumer-group figures; null when Redis does not answer.
    pub consumer_group: Option<GroupStats>,
    /// This process's consumer name in the group.
    pub consumer: String,
    /// Entries this process has read and not yet acknowledged.
    pub in_flight: usize,
}

/// Ready: PostgreSQL and Redis answer. The body carries consumer-group lag and pending
/// counts so an operator sees at once whether Pulse keeps up; 503 when a dependency is down.
#[utoipa::path(
    tag = "service",
    summary = "Readiness",
    security(()),
    responses(
        (status = 200, description = "PostgreSQL and Redis answer", body = Readiness),
        (status = 503, description = "A dependency is down; the body says which", body = Readiness),
    )
)]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let postgres = match state.pool.get().await {
        Ok(client) => client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let ping: Result<String, _> = state.redis.ping(None).await;
    let redis = ping.map(|_| ()).map_err(|e| e.to_string());
    let stats = match &redis {
        Ok(()) => ingester::group_stats(&state.redis, &state.settings)
            .await
            .ok(),
        Err(_) => None,
    };
    if let Some(stats) = &stats {
        if let Some(lag) = stats.lag {
            metrics::gauge!(names::CONSUMER_LAG).set(lag as f64);
        }
        metrics::gauge!(names::CONSUMER_PENDING).set(stats.pending as f64);
    }
    let ready = postgres.is_ok() && redis.is_ok();
    let body = Readiness {
        status: if ready {
            ReadyStatus::Ready
        } else {
            ReadyStatus::NotReady
        },
        postgres: DependencyHealth::of(&postgres),
        redis: DependencyHealth::of(&redis),
        consumer_group: stats,
        consumer: state.consumer.clone(),
        in_flight: state.in_flight(),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The content type of `GET /metrics` (Prometheus text exposition format 0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Prometheus text exposition of every Pulse metric.
#[utoipa::path(
    tag = "service",
    operation_id = "prometheus_metrics",
    summary = "Prometheus metrics",
    security(()),
    responses(
        (status = 200, description = "Every Pulse metric in the Prometheus text format",
            body = String, content_type = "text/plain; version=0.0.4"),
    )
)]
#[get("/metrics")]
pub async fn prometheus(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(PROMETHEUS_CONTENT_TYPE)
        .body(state.metrics.render())
}
