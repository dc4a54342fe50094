//! Liveness, readiness and Prometheus metrics.

use actix_web::{get, web, HttpResponse};
use fred::prelude::*;
use serde_json::json;

use super::AppState;
use crate::actors::ingester;
use crate::telemetry::names;

/// A map of the API for people and scripts exploring it (`/` is the dashboard).
#[get("/api/v1")]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "pulse",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": [
            "GET /health", "GET /ready", "GET /metrics",
            "POST /api/v1/events", "GET /api/v1/posts", "GET /api/v1/posts/{id}",
            "GET /api/v1/metrics/overall", "GET /api/v1/metrics/platforms",
            "GET /api/v1/metrics/geo", "GET /api/v1/metrics/products",
            "GET /api/v1/metrics/channels", "GET /api/v1/metrics/timeseries",
            "GET /api/v1/trending/terms", "GET /api/v1/pipeline", "GET /api/v1/alert-rules", "GET /api/v1/alerts",
            "GET /api/v1/webhooks", "GET /ws"
        ]
    }))
}

/// Alive: the process answers HTTP. Load balancers restart a process that stops answering.
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready: PostgreSQL and Redis answer. The body carries consumer-group lag and pending
/// counts so an operator sees at once whether Pulse keeps up; 503 when a dependency is down.
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
    let status = |r: &Result<(), String>| match r {
        Ok(()) => json!({"status": "ok"}),
        Err(e) => json!({"status": "error", "error": e}),
    };
    let ready = postgres.is_ok() && redis.is_ok();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "postgres": status(&postgres),
        "redis": status(&redis),
        "consumer_group": stats,
        "consumer": state.consumer,
        "in_flight": state.in_flight(),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition of every Pulse metric.
#[get("/metrics")]
pub async fn prometheus(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
