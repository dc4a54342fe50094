//! Webhook subscriptions and their deliveries as the API shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::alerts::RuleKind;

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
