//! Webhook subscriptions (`/api/v1/webhooks`) and their delivery log.

use actix_web::{delete, get, post, web, HttpResponse};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::AppState;
use crate::actors::alerter::KINDS;

/// Longest webhook URL accepted.
const MAX_URL_BYTES: usize = 2_048;
/// Deliveries listed per request.
const DELIVERY_PAGE: i64 = 100;

/// A new subscription.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: String,
    /// Signing secret; generated (and returned once) when absent.
    pub secret: Option<String>,
    /// Alert kinds to deliver; all when absent.
    pub kinds: Option<Vec<String>>,
}

/// Subscribes a URL to alerts. The response carries the secret; later reads do not.
#[post("/api/v1/webhooks")]
pub async fn create(
    state: web::Data<AppState>,
    input: web::Json<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    let input = input.into_inner();
    let url = input.url.trim();
    if url.len() > MAX_URL_BYTES || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::bad_request(
            "invalid_webhook",
            "url must be an http:// or https:// URL",
        ));
    }
    if let Some(kinds) = &input.kinds {
        if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(ApiError::bad_request(
                "invalid_webhook",
                format!("unknown alert kind `{bad}`"),
            ));
        }
    }
    let secret = match input.secret {
        Some(s) if s.len() >= 16 && s.len() <= 256 => s,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_webhook",
                "secret must be 16 to 256 bytes",
            ))
        }
        None => {
            let bytes: [u8; 32] = rand::rng().random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    };
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "INSERT INTO webhooks (url, secret, kinds) VALUES ($1, $2, $3) RETURNING id, created_at",
            &[&url, &secret, &input.kinds],
        )
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": row.get::<_, i64>(0), "url": url, "secret": secret, "kinds": input.kinds,
        "enabled": true, "created_at": row.get::<_, chrono::DateTime<chrono::Utc>>(1),
    })))
}

/// Every subscription (secrets are never returned again).
#[get("/api/v1/webhooks")]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let items: Vec<serde_json::Value> = client
        .query(
            "SELECT id, url, kinds, enabled, created_at FROM webhooks ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            json!({"id": r.get::<_, i64>(0), "url": r.get::<_, String>(1),
                   "kinds": r.get::<_, Option<Vec<String>>>(2), "enabled": r.get::<_, bool>(3),
                   "created_at": r.get::<_, chrono::DateTime<chrono::Utc>>(4)})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

/// Removes a subscription and its delivery log.
#[delete("/api/v1/webhooks/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    if client
        .execute("DELETE FROM webhooks WHERE id = $1", &[&*id])
        .await?
        == 0
    {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The newest deliveries of a subscription with their status, attempts and last error.
#[get("/api/v1/webhooks/{id}/deliveries")]
pub async fn deliveries(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    if client
        .query_opt("SELECT 1 FROM webhooks WHERE id = $1", &[&*id])
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    let items: Vec<serde_json::Value> = client
        .query(
            "SELECT id, alert_id, status, attempts, last_status, last_error, created_at, delivered_at, next_attempt_at \
             FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
            &[&*id, &DELIVERY_PAGE],
        )
        .await?
        .iter()
        .map(|r| {
            json!({"id": r.get::<_, i64>(0), "alert_id": r.get::<_, i64>(1), "status": r.get::<_, String>(2),
                   "attempts": r.get::<_, i32>(3), "last_status": r.get::<_, Option<i32>>(4),
                   "last_error": r.get::<_, Option<String>>(5),
                   "created_at": r.get::<_, chrono::DateTime<chrono::Utc>>(6),
                   "delivered_at": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(7),
                   "next_attempt_at": r.get::<_, chrono::DateTime<chrono::Utc>>(8)})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}
