//! Webhook subscriptions (`/api/v1/webhooks`) and their delivery log.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::state::State;
use crate::db::query as sql;
use crate::models::alerts::RuleKind;

/// Longest webhook URL accepted.
const MAX_URL_BYTES: usize = 2_048;
/// Deliveries listed per request.
const DELIVERY_PAGE: i64 = 100;

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// An `http://` or `https://` URL, at most 2,048 bytes.
    #[schema(max_length = 2048, example = "https://example.com/hooks/pulse")]
    pub url: String,
    /// Signing secret (16 to 256 bytes); generated (and returned once) when absent.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: Option<String>,
    /// Alert kinds to deliver; all when absent.
    pub kinds: Option<Vec<RuleKind>>,
}

/// A subscription as listed (the secret is never returned after creation).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: i64,
    /// The receiver; in listings its user information and query values are hidden, like the
    /// signing secret.
    pub url: String,
    /// Alert kinds delivered; null for all.
    pub kinds: Option<Vec<RuleKind>>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A subscription just created, with its signing secret (returned this once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// Signs every delivery (HMAC-SHA256); keep it, it is not shown again.
    pub secret: String,
}

/// Every subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub items: Vec<Webhook>,
}

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

/// One delivery of an alert to a subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: i64,
    #[schema(value_type = DeliveryStatus)]
    pub status: String,
    pub attempts: i32,
    /// HTTP status of the last attempt; null before the first or when it got no answer.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
}

/// The newest deliveries of a subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first, at most 100.
    pub items: Vec<Delivery>,
}

/// Subscribes a URL to alerts. The response carries the secret; later reads do not.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "create_webhook",
    summary = "Subscribe a URL to alerts",
    request_body = WebhookInput,
    responses(
        (status = 201, description = "The subscription with its secret", body = WebhookCreated),
        (status = 400, description = "A bad URL, secret or kind (`invalid_webhook`) or a body \
            that is not a subscription (`invalid_json`)", body = ErrorBody),
        (status = 413, description = "Body larger than the JSON limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/webhooks")]
pub async fn create(
    state: State,
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
    if let Err(e) = crate::egress::TargetPolicy::from_settings(&state.settings.webhooks)
        .check_target(url)
        .await
    {
        return Err(ApiError::bad_request("invalid_webhook", e.to_string()));
    }
    if let Some(field) = sql::unstorable([("url", Some(url)), ("secret", input.secret.as_deref())])
    {
        return Err(ApiError::bad_request(
            "invalid_webhook",
            format!("{field} must not contain NUL characters"),
        ));
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
    Ok(HttpResponse::Created().json(WebhookCreated {
        webhook: Webhook {
            id: row.get(0),
            url: url.to_string(),
            kinds: input.kinds,
            enabled: true,
            created_at: row.get(1),
        },
        secret,
    }))
}

/// Every subscription (secrets are never returned again).
#[utoipa::path(
    tag = "webhooks",
    operation_id = "list_webhooks",
    summary = "List webhook subscriptions",
    responses(
        (status = 200, description = "Every subscription, without secrets", body = WebhookList),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/webhooks")]
pub async fn list(state: State) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let items: Vec<Webhook> = client
        .query(
            "SELECT id, url, kinds, enabled, created_at FROM webhooks ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| Webhook {
            id: r.get(0),
            url: crate::egress::redact_url(r.get(1)),
            kinds: r.get(2),
            enabled: r.get(3),
            created_at: r.get(4),
        })
        .collect();
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

/// Removes a subscription and its delivery log.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "delete_webhook",
    summary = "Remove a webhook subscription",
    params(("id" = i64, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Removed, with its delivery log"),
        (status = 400, description = "The id is not an integer (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No subscription with this id", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[delete("/api/v1/webhooks/{id}")]
pub async fn remove(state: State, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
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
#[utoipa::path(
    tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    summary = "Deliveries of a webhook subscription",
    params(("id" = i64, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The newest deliveries, newest first", body = DeliveryList),
        (status = 400, description = "The id is not an integer (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No subscription with this id", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/webhooks/{id}/deliveries")]
pub async fn deliveries(state: State, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    if client
        .query_opt("SELECT 1 FROM webhooks WHERE id = $1", &[&*id])
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    let items: Vec<Delivery> = client
        .query(
            "SELECT id, alert_id, status, attempts, last_status, last_error, created_at, delivered_at, next_attempt_at \
             FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
            &[&*id, &DELIVERY_PAGE],
        )
        .await?
        .iter()
        .map(|r| Delivery {
            id: r.get(0),
            alert_id: r.get(1),
            status: r.get(2),
            attempts: r.get(3),
            last_status: r.get(4),
            last_error: r.get(5),
            created_at: r.get(6),
            delivered_at: r.get(7),
            next_attempt_at: r.get(8),
        })
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryList { items }))
}
