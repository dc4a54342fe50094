//! Webhook subscriptions (`/api/v1/webhooks`) and their delivery log.

use crate::models::errors::ErrorCode;
use actix_web::{delete, get, post, web, HttpResponse};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::query as sql;
use crate::db::webhooks;
use crate::http::answer::{self, Answer};
use crate::http::documented::error_responses;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::alerts::{RuleKind, Severity};
pub use crate::models::webhooks::{ChannelKind, Delivery, DeliveryStatus, QuietHours, Webhook};

error_responses! {
    NoSubscription: 404 = "No subscription with this id",
}

/// Longest webhook URL accepted.
const MAX_URL_BYTES: usize = 2_048;
/// Deliveries listed per request.
const DELIVERY_PAGE: i64 = 100;

/// PagerDuty's Events API v2 endpoint, where a `pagerduty` subscription sends by default.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Longest subscription name.
const MAX_NAME_BYTES: usize = 200;

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// The format delivered: `webhook` (default), `slack`, `teams` or `pagerduty`.
    pub kind: Option<ChannelKind>,
    /// A label for people, at most 200 bytes.
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// An `http://` or `https://` URL, at most 2,048 bytes: the receiver, or the Slack or
    /// Teams incoming-webhook URL. Required except for `pagerduty`, which defaults to
    /// PagerDuty's Events API v2 endpoint.
    #[schema(max_length = 2048, example = "https://example.com/hooks/pulse")]
    pub url: Option<String>,
    /// For `webhook`: the signing secret (16 to 256 bytes), generated (and returned once) when
    /// absent. For `pagerduty`: the integration's routing key (required, 16 to 256 bytes).
    /// Not used by `slack` and `teams`, whose URL is their secret.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: Option<String>,
    /// Alert kinds to deliver; all when absent.
    pub kinds: Option<Vec<RuleKind>>,
    /// Alerts below this severity are not delivered (default `info`: all).
    pub min_severity: Option<Severity>,
    /// Hours during which only critical alerts are delivered at once; the others wait until
    /// they end.
    pub quiet_hours: Option<QuietHours>,
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
    tag = "webhooks", operation_id = "create_webhook", summary = "Subscribe a URL to alerts",
    request_body = WebhookInput,
    responses(
        (status = 201, description = "The subscription with its secret", body = WebhookCreated),
        (status = 400, description = "A bad URL, secret or kind (`invalid_webhook`) or a body \
            that is not a subscription (`invalid_json`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/webhooks")]
pub async fn create(state: State, input: web::Json<WebhookInput>) -> Answer {
    let input = input.into_inner();
    let kind = input.kind.unwrap_or(ChannelKind::Webhook);
    let name = input.name.as_deref().unwrap_or("").trim();
    if name.len() > MAX_NAME_BYTES {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidWebhook,
            "name must be at most 200 bytes",
        ));
    }
    if kind == ChannelKind::Email {
        if state.settings.email.smtp_host.is_empty() {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidWebhook,
                "email is not configured: set email.smtp_host (and its credentials) first",
            ));
        }
        let url = input.url.as_deref().unwrap_or("").trim();
        if let Err(e) = crate::actors::webhooks::mailer::recipients(url) {
            return Err(ApiError::bad_request(ErrorCode::InvalidWebhook, e));
        }
    }
    let url = match (input.url.as_deref(), kind) {
        (Some(url), _) => url.trim(),
        (None, ChannelKind::Pagerduty) => PAGERDUTY_EVENTS_URL,
        (None, _) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidWebhook,
                "url is required",
            ))
        }
    };
    let http_target = kind != ChannelKind::Email;
    if url.len() > MAX_URL_BYTES
        || (http_target && !(url.starts_with("http://") || url.starts_with("https://")))
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidWebhook,
            "url must be an http:// or https:// URL",
        ));
    }
    if http_target {
        if let Err(e) = crate::egress::TargetPolicy::from_settings(&state.settings.webhooks)
            .check_target(url)
            .await
        {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidWebhook,
                e.to_string(),
            ));
        }
    }
    if let Some(field) = sql::unstorable([
        ("url", Some(url)),
        ("secret", input.secret.as_deref()),
        ("name", Some(name)),
    ]) {
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
                if kind == ChannelKind::Pagerduty {
                    "secret (the routing key) must be 16 to 256 bytes"
                } else {
                    "secret must be 16 to 256 bytes"
                },
            ))
        }
        None if kind == ChannelKind::Pagerduty => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidWebhook,
                "a pagerduty subscription needs its routing key as secret",
            ))
        }
        None => {
            let bytes: [u8; 32] = rand::rng().random();
            crate::models::hex::hex(&bytes)
        }
    };
    let client = state.db().await?;
    let quiet = match &input.quiet_hours {
        None => None,
        Some(q) => {
            let time = |t: &str| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok();
            let (Some(from), Some(to)) = (time(&q.from), time(&q.to)) else {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidWebhook,
                    "quiet_hours from and to must be HH:MM",
                ));
            };
            let timezone = q.timezone.clone().unwrap_or_else(|| "UTC".into());
            if timezone.len() > 64
                || timezone.contains('\0')
                || !webhooks::known_timezone(&client, &timezone).await?
            {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidWebhook,
                    "quiet_hours timezone must be an IANA time zone, such as Europe/Paris",
                ));
            }
            Some((from, to, timezone))
        }
    };
    let webhook = webhooks::insert(
        &client,
        webhooks::NewWebhook {
            kind,
            name,
            url,
            secret: &secret,
            kinds: input.kinds.map(distinct),
            min_severity: input.min_severity.unwrap_or(Severity::Info),
            quiet,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(WebhookCreated { webhook, secret }))
}

/// Each kind once, in the order first given: a list is a set of the few kinds there are, however
/// long the body that spelled it.
fn distinct(kinds: Vec<RuleKind>) -> Vec<RuleKind> {
    let mut once = Vec::new();
    for kind in kinds {
        if !once.contains(&kind) {
            once.push(kind);
        }
    }
    once
}

/// Every subscription (secrets are never returned again).
#[utoipa::path(
    tag = "webhooks", operation_id = "list_webhooks", summary = "List webhook subscriptions",
    responses(
        (status = 200, description = "Every subscription, without secrets", body = WebhookList),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/webhooks")]
pub async fn list(state: State) -> Answer {
    let client = state.db().await?;
    let mut items = webhooks::list(&client).await?;
    for webhook in &mut items {
        webhook.url = match webhook.kind {
            // Slack's and Teams' incoming-webhook URLs carry their secret in the path.
            ChannelKind::Slack | ChannelKind::Teams => crate::egress::origin_only(&webhook.url),
            _ => crate::egress::redact_url(&webhook.url),
        };
    }
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

fn no_webhook(id: i64) -> ApiError {
    ApiError::not_found(format!("no webhook {id}"))
}

/// Removes a subscription and its delivery log.
#[utoipa::path(
    tag = "webhooks", operation_id = "delete_webhook", summary = "Remove a webhook subscription",
    params(("id" = i64, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Removed, with its delivery log"),
        NoSubscription, PostgresUnavailable,
    )
)]
#[delete("/api/v1/webhooks/{id}")]
pub async fn remove(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    answer::deleted(webhooks::delete(&client, *id).await?, || no_webhook(*id))
}

/// The newest deliveries of a subscription with their status, attempts and last error.
#[utoipa::path(
    tag = "webhooks", operation_id = "list_webhook_deliveries",
    summary = "Deliveries of a webhook subscription",
    params(("id" = i64, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The newest deliveries, newest first", body = DeliveryList),
        NoSubscription, PostgresUnavailable,
    )
)]
#[get("/api/v1/webhooks/{id}/deliveries")]
pub async fn deliveries(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    if !webhooks::exists(&client, *id).await? {
        return Err(no_webhook(*id));
    }
    let items = webhooks::deliveries(&client, *id, DELIVERY_PAGE).await?;
    Ok(HttpResponse::Ok().json(DeliveryList { items }))
}

/// What a test message met.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestOutcome {
    /// Whether the receiver took it (a 2xx answer).
    pub delivered: bool,
    /// The receiver's HTTP status; null when it gave none.
    pub status: Option<u16>,
    /// What went wrong, when it was not delivered.
    pub error: Option<String>,
}

/// A sample alert in the shape the alerter sends, for test messages.
fn sample_alert() -> serde_json::Value {
    serde_json::json!({
        "id": 0, "rule_id": null, "rule_name": "Test message from Pulse", "kind": "negativity",
        "severity": "info", "dimension": "overall", "key": "", "status": "firing",
        "value": 0.62, "threshold": 0.5, "fired_at": chrono::Utc::now(),
        "evidence": {
            "window": {"minutes": 5, "stats": {"posts": 100}},
            "top_posts": [{"id": "test", "text": "This is a test: this channel receives Pulse alerts."}],
            "top_terms": [{"term": "test", "posts": 1}],
        },
    })
}

/// Sends a test message to a channel now, in its format, and says what the receiver answered.
/// PagerDuty gets a trigger and, once it is taken, the matching resolve, so no incident stays
/// open. Nothing is written to the delivery log.
#[utoipa::path(
    tag = "webhooks", operation_id = "test_webhook", summary = "Send a test message to a channel",
    params(("id" = i64, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "What the receiver answered", body = TestOutcome),
        NoSubscription, PostgresUnavailable,
    )
)]
#[post("/api/v1/webhooks/{id}/test")]
pub async fn test(state: State, id: web::Path<i64>) -> Answer {
    use crate::actors::webhooks::channels::render;
    use crate::actors::webhooks::mailer::Mailer;
    use crate::actors::webhooks::{deliver, Target};
    use crate::models::webhooks::DeliveryEvent;

    let client = state.db().await?;
    let Some((kind, url, secret)) = webhooks::target(&client, *id).await? else {
        return Err(no_webhook(*id));
    };
    drop(client);
    let settings = &state.settings.webhooks;
    let policy = crate::egress::TargetPolicy::from_settings(settings);
    let http = policy.client(std::time::Duration::from_secs(settings.timeout_secs.max(1)));
    let mailer = match kind {
        ChannelKind::Email => Mailer::from_settings(&state.settings.email).unwrap_or(None),
        _ => None,
    };
    let target = Target {
        channel: kind,
        url: &url,
        secret: &secret,
    };
    let alert = sample_alert();
    let events: &[DeliveryEvent] = if kind == ChannelKind::Pagerduty {
        &[DeliveryEvent::Fire, DeliveryEvent::Resolve]
    } else {
        &[DeliveryEvent::Fire]
    };
    let mut outcome = Ok(0);
    for &event in events {
        let body = render(kind, event, &alert, &settings.dashboard_url, &secret);
        outcome = deliver(&http, &policy, mailer.as_ref(), &target, "test", 0, body).await;
        if outcome.is_err() {
            break;
        }
    }
    Ok(HttpResponse::Ok().json(match outcome {
        Ok(status) => TestOutcome {
            delivered: true,
            status: Some(status),
            error: None,
        },
        Err(refusal) => TestOutcome {
            delivered: false,
            status: refusal.status,
            error: Some(refusal.error),
        },
    }))
}
