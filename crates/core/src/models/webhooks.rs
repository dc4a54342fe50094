//! Webhook subscriptions and their deliveries as the API shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::alerts::{RuleKind, Severity};
use super::named::named_enum;

named_enum! {
    /// The format a subscription delivers in.
    ChannelKind {
        /// Pulse's own JSON alert, signed with HMAC-SHA256.
        Webhook = "webhook",
        /// A Slack incoming webhook: a message of blocks.
        Slack = "slack",
        /// A Microsoft Teams incoming webhook: an Adaptive Card.
        Teams = "teams",
        /// PagerDuty Events API v2: trigger on firing, resolve on resolution, the alert's id
        /// as the deduplication key.
        Pagerduty = "pagerduty",
        /// Email through the configured SMTP relay, to the recipients of a `mailto:` URL.
        Email = "email",
    }
}

impl ChannelKind {
    /// Whether the channel is told when an alert resolves (the generic webhook keeps its
    /// one event per alert).
    pub fn announces_resolution(self) -> bool {
        !matches!(self, ChannelKind::Webhook)
    }
}

named_enum! {
    /// What a delivery announces.
    DeliveryEvent {
        Fire = "fire",
        Resolve = "resolve",
        /// A scheduled or sent-now digest (docs/digests.md).
        Digest = "digest",
    }
}

/// Local times during which a channel gets only critical alerts; the others wait until the
/// quiet hours end. `to` before `from` runs overnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `HH:MM`, local time.
    #[schema(example = "22:00")]
    pub from: String,
    /// `HH:MM`, local time.
    #[schema(example = "07:00")]
    pub to: String,
    /// An IANA time zone (default `UTC`).
    #[schema(example = "Europe/Paris")]
    pub timezone: Option<String>,
}

/// How a channel's newest delivery went.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LastDelivery {
    /// The alert it announces; null for a digest.
    pub alert_id: Option<i64>,
    /// The digest it carries; null for an alert.
    pub digest_id: Option<i64>,
    pub event: DeliveryEvent,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// The receiver's last status (HTTP, or the SMTP reply code); null before an answer.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// When it was delivered, or else when it was written.
    pub at: DateTime<Utc>,
}

/// A subscription as listed (the secret is never returned after creation).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: i64,
    pub kind: ChannelKind,
    /// A label for people; may be empty.
    pub name: String,
    /// Alerts below this severity are not delivered here.
    pub min_severity: Severity,
    /// Null: none.
    pub quiet_hours: Option<QuietHours>,
    /// Until when the channel sends nothing, because its receiver asked for a wait (a 429 or
    /// 503 with `Retry-After`, or a spent rate-limit window); null when it is not held. Its
    /// pending deliveries, whenever queued, wait for it.
    pub held_until: Option<DateTime<Utc>>,
    /// The newest delivery, or null before the first.
    pub last_delivery: Option<LastDelivery>,
    /// The receiver; in listings its user information and query values are hidden, like the
    /// signing secret.
    pub url: String,
    /// Alert kinds delivered; null for all.
    pub kinds: Option<Vec<RuleKind>>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

named_enum! {
    /// Where one delivery stands.
    DeliveryStatus {
        Pending = "pending",
        Delivered = "delivered",
        Dead = "dead",
    }
}

/// One delivery of an alert or a digest to a subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    /// The alert it announces; null for a digest.
    pub alert_id: Option<i64>,
    /// The digest it carries; null for an alert.
    pub digest_id: Option<i64>,
    pub event: DeliveryEvent,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// HTTP status of the last attempt; null before the first or when it got no answer.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// When a pending delivery goes next, at the earliest: its own schedule (backoff, quiet
    /// hours) or its channel's `held_until`, whichever is later, since a held channel sends
    /// nothing, however long ago a delivery queued during the hold was due. For a delivered or
    /// dead one, when it was last due.
    pub next_attempt_at: DateTime<Utc>,
}
