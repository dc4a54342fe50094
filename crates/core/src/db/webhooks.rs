//! The `webhooks` subscriptions and their `webhook_deliveries`: the API's reads and writes,
//! and the delivery worker's claims and outcomes.

use tokio_postgres::Client;

use crate::models::alerts::{RuleKind, Severity};
use crate::models::webhooks::{
    ChannelKind, Delivery, DeliveryEvent, DeliveryStatus, LastDelivery, QuietHours, Webhook,
};

type Result<T> = std::result::Result<T, tokio_postgres::Error>;

/// A subscription to store.
pub struct NewWebhook<'a> {
    pub kind: ChannelKind,
    pub name: &'a str,
    pub url: &'a str,
    /// The signing secret, or PagerDuty's routing key.
    pub secret: &'a str,
    pub kinds: Option<Vec<RuleKind>>,
    pub min_severity: Severity,
    /// (from, to, time zone), already checked.
    pub quiet: Option<(chrono::NaiveTime, chrono::NaiveTime, String)>,
}

/// Stores a subscription.
pub async fn insert(client: &Client, new: NewWebhook<'_>) -> Result<Webhook> {
    let row = client
        .query_one(
            "INSERT INTO webhooks (kind, name, url, secret, kinds, min_severity, quiet_from, quiet_to, quiet_timezone) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, 'UTC')) RETURNING id, created_at",
            &[
                &new.kind,
                &new.name,
                &new.url,
                &new.secret,
                &new.kinds,
                &new.min_severity,
                &new.quiet.as_ref().map(|q| q.0),
                &new.quiet.as_ref().map(|q| q.1),
                &new.quiet.as_ref().map(|q| q.2.as_str()),
            ],
        )
        .await?;
    Ok(Webhook {
        id: row.get(0),
        kind: new.kind,
        name: new.name.to_string(),
        min_severity: new.min_severity,
        quiet_hours: new.quiet.map(|(from, to, tz)| quiet_hours(from, to, tz)),
        held_until: None,
        last_delivery: None,
        url: new.url.to_string(),
        kinds: new.kinds,
        enabled: true,
        created_at: row.get(1),
    })
}

/// Every subscription, oldest first, with its URL as stored and its hold while one lasts (a
/// past `held_until` holds nothing and reads null).
pub async fn list(client: &Client) -> Result<Vec<Webhook>> {
    super::read_rows(
        client,
        "SELECT w.id, w.kind, w.name, w.min_severity, w.url, w.kinds, w.enabled, w.created_at, \
         w.quiet_from, w.quiet_to, w.quiet_timezone, \
         d.alert_id, d.event, d.status, d.attempts, d.last_status, d.last_error, \
         COALESCE(d.delivered_at, d.created_at), d.digest_id, d.id, \
         CASE WHEN w.held_until > now() THEN w.held_until END \
         FROM webhooks w LEFT JOIN LATERAL (SELECT * FROM webhook_deliveries x \
             WHERE x.webhook_id = w.id ORDER BY x.id DESC LIMIT 1) d ON true \
         ORDER BY w.id",
        &[],
        |r| Webhook {
            id: r.get(0),
            kind: r.get(1),
            name: r.get(2),
            min_severity: r.get(3),
            url: r.get(4),
            kinds: r.get(5),
            enabled: r.get(6),
            created_at: r.get(7),
            quiet_hours: match (r.get(8), r.get(9)) {
                (Some(from), Some(to)) => Some(quiet_hours(from, to, r.get(10))),
                _ => None,
            },
            held_until: r.get(20),
            last_delivery: r.get::<_, Option<i64>>(19).map(|_| LastDelivery {
                alert_id: r.get(11),
                digest_id: r.get(18),
                event: r.get(12),
                status: DeliveryStatus::parse(r.get(13)).unwrap_or(DeliveryStatus::Pending),
                attempts: r.get(14),
                last_status: r.get(15),
                last_error: r.get(16),
                at: r.get(17),
            }),
        },
    )
    .await
}

fn quiet_hours(from: chrono::NaiveTime, to: chrono::NaiveTime, timezone: String) -> QuietHours {
    QuietHours {
        from: from.format("%H:%M").to_string(),
        to: to.format("%H:%M").to_string(),
        timezone: Some(timezone),
    }
}

/// Whether PostgreSQL knows the time zone `name`.
pub async fn known_timezone(client: &Client, name: &str) -> Result<bool> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_timezone_names WHERE name = $1", &[&name])
        .await?
        .is_some())
}

/// Which of `ids` are not channels.
pub async fn unknown(client: &Client, ids: &[i64]) -> Result<Vec<i64>> {
    super::read_rows(
        client,
        "SELECT u.id FROM unnest($1::bigint[]) AS u(id) WHERE NOT EXISTS \
         (SELECT 1 FROM webhooks w WHERE w.id = u.id)",
        &[&ids],
        |r| r.get(0),
    )
    .await
}

/// One subscription's target: (kind, url, secret).
pub async fn target(client: &Client, id: i64) -> Result<Option<(ChannelKind, String, String)>> {
    Ok(client
        .query_opt(
            "SELECT kind, url, secret FROM webhooks WHERE id = $1",
            &[&id],
        )
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Removes subscription `id` with its delivery log; `false` when there is none.
pub async fn delete(client: &Client, id: i64) -> Result<bool> {
    Ok(client
        .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
        .await?
        == 1)
}

pub async fn exists(client: &Client, id: i64) -> Result<bool> {
    Ok(client
        .query_opt("SELECT 1 FROM webhooks WHERE id = $1", &[&id])
        .await?
        .is_some())
}

/// The `limit` newest deliveries of subscription `id`, newest first. A pending one is due no
/// sooner than its channel's hold ends ([`claim_due`] skips a held channel), so that is the
/// time it reports.
pub async fn deliveries(client: &Client, id: i64, limit: i64) -> Result<Vec<Delivery>> {
    super::read_rows(client, "SELECT d.id, d.alert_id, d.status, d.attempts, d.last_status, d.last_error, d.created_at, d.delivered_at, \
         CASE WHEN d.status = 'pending' AND w.held_until > now() \
             THEN GREATEST(d.next_attempt_at, w.held_until) ELSE d.next_attempt_at END, \
         d.event, d.digest_id \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2",
            &[&id, &limit], |r| Delivery {
            id: r.get(0),
            alert_id: r.get(1),
            status: DeliveryStatus::parse(r.get(2)).unwrap_or(DeliveryStatus::Pending),
            attempts: r.get(3),
            last_status: r.get(4),
            last_error: r.get(5),
            created_at: r.get(6),
            delivered_at: r.get(7),
            next_attempt_at: r.get(8),
            event: r.get(9),
            digest_id: r.get(10),
        }).await
}

/// A delivery due now, claimed by this process.
pub struct Due {
    pub id: i64,
    /// The channel's id.
    pub webhook_id: i64,
    pub channel: ChannelKind,
    pub event: DeliveryEvent,
    pub url: String,
    pub secret: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    /// The alert's kind, from its payload.
    pub kind: String,
}

/// The deliveries a process is sending now: each one's channel id, by delivery id. A send
/// outliving its lease is not claimed again beside itself.
#[derive(Debug, Clone, Default)]
pub struct Sending(pub std::collections::HashMap<i64, i64>);

impl Sending {
    fn by_channel(&self) -> std::collections::HashMap<i64, usize> {
        let mut counts = std::collections::HashMap::new();
        for channel in self.0.values() {
            *counts.entry(*channel).or_default() += 1;
        }
        counts
    }
}

/// Claims up to `limit` pending deliveries due now and reserves them for `lease_secs`, in one
/// transaction that skips deliveries another process holds: each is sent by one process. A
/// resolution waits while its firing is still pending, so no channel hears of a resolution
/// before the alert (PagerDuty would open an incident nothing resolves). A channel gets at
/// most `per_channel` deliveries in flight, counting `sending` (what the caller is sending
/// now: how many by channel id, and which), so a slow receiver holds only its own places and a
/// channel's backlog hides no other's; a channel that is failing (a delivery of it due again
/// after a failed attempt) gets one, so receivers that time out hold a place each, not four.
/// A channel whose receiver asked for a wait gets none until the wait is over, whatever was
/// queued for it and whenever (see [`hold_channel`]). A channel's alerts go before its digests,
/// however long the digests have waited: digests sent on request to every channel would
/// otherwise queue an alert behind them, and a receiver's rate limit would hold it longer.
pub async fn claim_due(
    client: &mut Client,
    limit: usize,
    lease_secs: f64,
    per_channel: usize,
    sending: &Sending,
) -> Result<Vec<Due>> {
    let mut taken = sending.by_channel();
    let full: Vec<i64> = taken
        .iter()
        .filter(|(_, n)| **n >= per_channel)
        .map(|(id, _)| *id)
        .collect();
    let in_flight: Vec<i64> = sending.0.keys().copied().collect();
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "WITH failing AS (SELECT DISTINCT webhook_id FROM webhook_deliveries \
                 WHERE status = 'pending' AND attempts > 0), \
             held AS (SELECT id FROM webhooks WHERE held_until > now()) \
             SELECT d.id, w.url, w.secret, d.payload, d.attempts, d.payload->>'kind', w.kind, d.event, \
             d.webhook_id, q.failing \
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             JOIN (SELECT id, failing FROM (SELECT e.id, row_number() OVER \
                     (PARTITION BY e.webhook_id ORDER BY e.event = 'digest', e.next_attempt_at, e.id) AS place, \
                     e.webhook_id IN (SELECT webhook_id FROM failing) AS failing \
                 FROM webhook_deliveries e WHERE e.status = 'pending' \
                 AND e.next_attempt_at <= now() AND NOT (e.webhook_id = ANY($2)) \
                 AND e.webhook_id NOT IN (SELECT id FROM held) \
                 AND NOT (e.id = ANY($3))) firsts \
                 WHERE place <= CASE WHEN failing THEN 1 ELSE $4::int8 END) q ON q.id = d.id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= now() \
             AND NOT (d.event = 'resolve' AND EXISTS (SELECT 1 FROM webhook_deliveries f \
                 WHERE f.webhook_id = d.webhook_id AND f.alert_id = d.alert_id \
                 AND f.event = 'fire' AND f.status = 'pending')) \
             ORDER BY d.event = 'digest', d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED",
            &[
                &((limit * per_channel.max(1)) as i64),
                &full,
                &in_flight,
                &(per_channel as i64),
            ],
        )
        .await?;
    let due: Vec<Due> = rows
        .iter()
        .filter(|r| {
            let limit = if r.get::<_, bool>(9) { 1 } else { per_channel };
            let n = taken.entry(r.get(8)).or_default();
            *n += 1;
            *n <= limit
        })
        .map(|r| Due {
            id: r.get(0),
            url: r.get(1),
            secret: r.get(2),
            payload: r.get(3),
            attempts: r.get(4),
            kind: r.get::<_, Option<String>>(5).unwrap_or_default(),
            channel: r.get(6),
            event: r.get(7),
            webhook_id: r.get(8),
        })
        .take(limit)
        .collect();
    if !due.is_empty() {
        let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
        tx.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => $2) WHERE id = ANY($1)",
            &[&ids, &lease_secs],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(due)
}

/// Records a delivery the receiver accepted with `status` on attempt `attempts`.
pub async fn mark_delivered(client: &Client, id: i64, attempts: i32, status: u16) -> Result<()> {
    client
        .execute(
            "UPDATE webhook_deliveries SET status = 'delivered', attempts = $2, \
             last_status = $3, last_error = NULL, delivered_at = now() WHERE id = $1",
            &[&id, &attempts, &i32::from(status)],
        )
        .await?;
    Ok(())
}

/// Holds channel `webhook_id` for `wait_secs` from now at least (a hold that ends later
/// stands): its receiver asked for that before its next request. The hold is the channel's,
/// not its deliveries': it ends when the wait does, however long the refused delivery's own
/// backoff, and covers deliveries queued after it began.
pub async fn hold_channel(client: &Client, webhook_id: i64, wait_secs: f64) -> Result<()> {
    client
        .execute(
            "UPDATE webhooks \
             SET held_until = GREATEST(held_until, now() + make_interval(secs => $2)) \
             WHERE id = $1",
            &[&webhook_id, &wait_secs],
        )
        .await?;
    Ok(())
}

/// Records a failed attempt: `dead` when no attempt is left, else due again in
/// `retry_in_secs`.
pub async fn mark_failed(
    client: &Client,
    id: i64,
    attempts: i32,
    status: Option<u16>,
    error: &str,
    dead: bool,
    retry_in_secs: f64,
) -> Result<()> {
    client
        .execute(
            "UPDATE webhook_deliveries SET status = CASE WHEN $5 THEN 'dead' ELSE 'pending' END, \
             attempts = $2, last_status = $3, last_error = $4, \
             next_attempt_at = now() + make_interval(secs => $6) WHERE id = $1",
            &[
                &id,
                &attempts,
                &status.map(i32::from),
                &error,
                &dead,
                &retry_in_secs,
            ],
        )
        .await?;
    Ok(())
}
