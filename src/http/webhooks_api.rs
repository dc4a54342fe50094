//! Webhook subscriptions (`/api/v1/webhooks`) and their delivery log.

use crate::models::errors::ErrorCode;
use actix_web::{delete, get, post, web, HttpResponse};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::state::State;
use crate::db::query as sql;
use crate::db::webhooks;
use crate::models::alerts::RuleKind;
pub use crate::models::webhooks::{Delivery, DeliveryStatus, Webhook};

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
            ErrorCode::InvalidWebhook,
            "url must be an http:// or https:// URL",
        ));
    }
    if let Err(e) = crate::egress::TargetPolicy::from_settings(&state.settings.webhooks)
        .check_target(url)
        .await
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidWebhook,
            e.to_string(),
        ));
    }
    if let Some(field) = sql::unstorable([("url", Some(url)), ("secret", input.secret.as_deref())])
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidWebhook,
            format!("{field} must not contain NUL characters"),
        ));
    }
    let secret = match input.secret {
        Some(s) if s.len() >= 16 && s.len() <= 256 => s,
        Some(_) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidWebhook,
                "secret must be 16 to 256 bytes",
            ))
        }
        None => {
            let bytes: [u8; 32] = rand::rng().random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    };
    let client = state.pool.get().await?;
    let webhook = webhooks::insert(&client, url, &secret, input.kinds).await?;
    Ok(HttpResponse::Created().json(WebhookCreated { webhook, secret }))
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
    let mut items = webhooks::list(&client).await?;
    for webhook in &mut items {
        webhook.url = crate::egress::redact_url(&webhook.url);
    }
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
    if !webhooks::delete(&client, *id).await? {
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
    if !webhooks::exists(&client, *id).await? {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    let items = webhooks::deliveries(&client, *id, DELIVERY_PAGE).await?;
    Ok(HttpResponse::Ok().json(DeliveryList { items }))
}
