//! Digest schedules, their periods and the digests made of them.
//!
//! A schedule's periods are computed by PostgreSQL in the schedule's time zone
//! (`pulse_digest_period`, migration V26), as the quiet hours of the alert channels are: a
//! daily period runs from one local `at` to the next, whatever the day's length across a
//! change of daylight-saving time.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};
use utoipa::ToSchema;

use super::table::Table;

/// A schedule as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    /// The topic it reports on; null for every post.
    pub topic: Option<i64>,
    /// `daily` or `weekly`.
    pub cadence: String,
    /// ISO weekday a weekly period ends on (1 Monday .. 7 Sunday); null for daily.
    pub weekday: Option<i16>,
    /// Local time a period ends at, `HH:MM`.
    pub at: String,
    /// IANA time zone of `at`.
    pub timezone: String,
    /// The channels (`GET /api/v1/webhooks`) it is sent to.
    pub channels: Vec<i64>,
    /// A saved view its link opens.
    pub view: Option<i64>,
    pub enabled: bool,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it was last turned back on after a pause.
    #[serde(skip)]
    pub resumed_at: Option<DateTime<Utc>>,
}

impl Schedule {
    /// Its periods that ended by then are never made: they ended before it existed, or while
    /// it was paused, so nothing was due.
    pub fn makes_from(&self) -> DateTime<Utc> {
        self.resumed_at
            .map_or(self.created_at, |r| r.max(self.created_at))
    }
}

/// A schedule as it is written.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub name: String,
    pub topic: Option<i64>,
    pub cadence: String,
    pub weekday: Option<i16>,
    pub at: NaiveTime,
    pub timezone: String,
    pub channels: Vec<i64>,
    pub view: Option<i64>,
    pub created_by: Option<String>,
}

const COLUMNS: &str = "id, name, topic_id, cadence, weekday, at, timezone, channels, view_id, \
    enabled, created_by, created_at, resumed_at";

fn schedule(r: &Row) -> Schedule {
    let at: NaiveTime = r.get(5);
    Schedule {
        id: r.get(0),
        name: r.get(1),
        topic: r.get(2),
        cadence: r.get(3),
        weekday: r.get(4),
        at: at.format("%H:%M").to_string(),
        timezone: r.get(6),
        channels: r.get(7),
        view: r.get(8),
        enabled: r.get(9),
        created_by: r.get(10),
        created_at: r.get(11),
        resumed_at: r.get(12),
    }
}

const SCHEDULES: Table<Schedule> = Table {
    name: "digest_schedules",
    columns: COLUMNS,
    read: schedule,
};

/// Stores a schedule unless one of `caps` is reached (the cap then); creations take turns, so
/// the caps hold for requests of every process at once.
pub async fn create(
    client: &mut deadpool_postgres::ClientWrapper,
    s: &NewSchedule,
    caps: super::Caps<'_>,
) -> Result<Result<Schedule, super::Limit>, tokio_postgres::Error> {
    let row = super::insert_in_turns(
        client,
        "digest_schedules/create",
        "SELECT count(*) FILTER (WHERE created_by = $1), count(*) FROM digest_schedules",
        caps,
        &format!(
            "INSERT INTO digest_schedules (name, topic_id, cadence, weekday, at, timezone, \
             channels, view_id, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING {COLUMNS}"
        ),
        &[
            &s.name,
            &s.topic,
            &s.cadence,
            &s.weekday,
            &s.at,
            &s.timezone,
            &s.channels,
            &s.view,
            &s.created_by,
        ],
    )
    .await?;
    Ok(row.map(|row| schedule(&row)))
}

/// Every schedule, oldest first.
pub async fn list(client: &impl GenericClient) -> Result<Vec<Schedule>, tokio_postgres::Error> {
    SCHEDULES.rows(client, "ORDER BY id", &[]).await
}

/// One schedule.
pub async fn get(
    client: &impl GenericClient,
    id: i64,
) -> Result<Option<Schedule>, tokio_postgres::Error> {
    SCHEDULES.row(client, "WHERE id = $1", &[&id]).await
}

/// Turns a schedule on or off; whether it exists. Turned back on from a pause, it is resumed
/// now ([`Schedule::makes_from`]); turned on while on, it is not, so a period that has just
/// ended and is not made yet stays due.
pub async fn set_enabled(
    client: &impl GenericClient,
    id: i64,
    enabled: bool,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "UPDATE digest_schedules SET enabled = $2, \
                 resumed_at = CASE WHEN $2 AND NOT enabled THEN now() ELSE resumed_at END \
             WHERE id = $1",
            &[&id, &enabled],
        )
        .await?
        == 1)
}

/// Points a schedule's link at a saved view (or at its scope and period alone); whether the
/// schedule exists.
pub async fn set_view(
    client: &impl GenericClient,
    id: i64,
    view: Option<i64>,
) -> Result<bool, tokio_postgres::Error> {
    set(client, id, "view_id", &view).await
}

/// Sets `column` of schedule `id` to `value`; whether the schedule exists.
async fn set(
    client: &impl GenericClient,
    id: i64,
    column: &'static str,
    value: &(dyn ToSql + Sync),
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            &format!("UPDATE digest_schedules SET {column} = $2 WHERE id = $1"),
            &[&id, value],
        )
        .await?
        == 1)
}

/// Deletes a schedule and the digests made of it; whether it existed.
pub async fn remove(client: &impl GenericClient, id: i64) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute("DELETE FROM digest_schedules WHERE id = $1", &[&id])
        .await?
        == 1)
}

/// Whether PostgreSQL knows `name` as a time zone.
pub async fn known_timezone(
    client: &impl GenericClient,
    name: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)",
            &[&name],
        )
        .await?
        .get(0))
}

/// The channels of `ids` that exist, with their kind.
pub async fn channel_kinds(
    client: &impl GenericClient,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT id, kind FROM webhooks WHERE id = ANY($1) ORDER BY id",
        &[&ids],
        |r| (r.get(0), r.get(1)),
    )
    .await
}

/// A period: `[from, to)`.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// Periods of `s` that ended by `now`, newest first: the latest (`back` 0) and `back` more
/// before it.
pub async fn periods(
    client: &impl GenericClient,
    s: &Schedule,
    now: DateTime<Utc>,
    back: i32,
) -> Result<Vec<Span>, tokio_postgres::Error> {
    let at = NaiveTime::parse_from_str(&s.at, "%H:%M").unwrap_or_default();
    super::read_rows(
        client,
        "SELECT p.period_from, p.period_to FROM generate_series(0, $6::int4) AS b, \
         LATERAL pulse_digest_period($1, $2, $3, $4, $5, b) AS p ORDER BY b",
        &[&s.cadence, &s.weekday, &at, &s.timezone, &now, &back],
        |r| (r.get(0), r.get(1)),
    )
    .await
}

/// The ends of the periods of schedule `id` already made (scheduled ones, not `send now`).
pub async fn made(
    client: &impl GenericClient,
    id: i64,
    ends: &[DateTime<Utc>],
) -> Result<Vec<DateTime<Utc>>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT period_to FROM digests WHERE schedule_id = $1 AND NOT manual \
         AND period_to = ANY($2)",
        &[&id, &ends],
        |r| r.get(0),
    )
    .await
}

/// A digest to store with its deliveries.
pub struct NewDigest<'a> {
    pub schedule: Option<i64>,
    pub span: Span,
    pub late: bool,
    pub manual: bool,
    pub content: &'a serde_json::Value,
    /// What each delivery carries (its rendered forms).
    pub payload: &'a serde_json::Value,
    pub channels: &'a [i64],
}

/// Claims a send on request of `schedule` if neither it nor any of its channels was sent a
/// digest on request in the last `every_secs` seconds (one statement, so two processes asking
/// at once cannot both have it); otherwise the seconds until one may be. `Ok` too for no such
/// schedule (there is nothing to send). A claim per schedule alone let a caller reach a channel
/// as often as it made schedules naming it (or made, sent and deleted one again and again).
pub async fn claim_send_on_request(
    client: &impl GenericClient,
    schedule: i64,
    every_secs: f64,
) -> Result<Result<(), f64>, tokio_postgres::Error> {
    // The channels are locked first, in id order, then the schedule: two claims naming one
    // channel wait for each other, and the later one reads the earlier one's time. The order
    // holds because the claim's condition on `channel_wait` names no column of the schedule:
    // PostgreSQL plans such a condition as a one-time filter above the schedule's scan (see
    // `EXPLAIN`), so `channels` is read and locked before the schedule's row is.
    let row = client
        .query_opt(
            "WITH channels AS ( \
                 SELECT id, digest_sent_on_request_at AS at FROM webhooks \
                 WHERE id IN (SELECT unnest(channels) FROM digest_schedules WHERE id = $1) \
                 ORDER BY id FOR UPDATE), \
             channel_wait AS ( \
                 SELECT max(extract(epoch FROM at + make_interval(secs => $2) - now()))::float8 \
                     AS secs FROM channels), \
             claimed AS ( \
                 UPDATE digest_schedules SET sent_on_request_at = now() \
                 WHERE id = $1 AND (sent_on_request_at IS NULL \
                     OR sent_on_request_at <= now() - make_interval(secs => $2)) \
                 AND coalesce((SELECT secs FROM channel_wait), 0) <= 0 \
                 RETURNING id), \
             marked AS ( \
                 -- Run to its end whether read or not, as every data-modifying WITH is.
                 UPDATE webhooks SET digest_sent_on_request_at = now() \
                 WHERE id IN (SELECT id FROM channels) AND EXISTS (SELECT 1 FROM claimed) \
                 RETURNING id) \
             SELECT EXISTS (SELECT 1 FROM claimed), greatest( \
                 extract(epoch FROM s.sent_on_request_at + make_interval(secs => $2) - now()) \
                     ::float8, \
                 (SELECT secs FROM channel_wait)) \
             FROM digest_schedules s WHERE s.id = $1",
            &[&schedule, &every_secs],
        )
        .await?;
    Ok(match row {
        Some(row) if !row.get::<_, bool>(0) => Err(row.get::<_, Option<f64>>(1).unwrap_or(0.0)),
        _ => Ok(()),
    })
}

/// Stores a digest and one delivery per enabled channel of `channels`, in one statement, so
/// a digest is never stored without its deliveries; `None` when this schedule's period was
/// made already (by another process). Returns the digest's id and its deliveries.
pub async fn store(
    client: &impl GenericClient,
    d: NewDigest<'_>,
) -> Result<Option<(i64, i64)>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "WITH g AS ( \
                 INSERT INTO digests (schedule_id, period_from, period_to, late, manual, content) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (schedule_id, period_to) WHERE NOT manual DO NOTHING \
                 RETURNING id), \
             d AS ( \
                 INSERT INTO webhook_deliveries (webhook_id, digest_id, event, payload) \
                 SELECT w.id, g.id, 'digest', $7::jsonb FROM g JOIN webhooks w \
                 ON w.id = ANY($8) AND w.enabled AND w.kind <> 'pagerduty' \
                 RETURNING 1) \
             SELECT id, (SELECT count(*) FROM d) FROM g",
            &[
                &d.schedule,
                &d.span.0,
                &d.span.1,
                &d.late,
                &d.manual,
                d.content,
                d.payload,
                &d.channels,
            ],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// A digest made, as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DigestRecord {
    pub id: i64,
    pub schedule: Option<i64>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub late: bool,
    /// Sent with `send now`, not on schedule.
    pub manual: bool,
    pub created_at: DateTime<Utc>,
    /// Deliveries by status (`pending`, `delivered`, `dead`).
    #[schema(value_type = Object)]
    pub deliveries: serde_json::Value,
}

/// The newest `limit` digests of schedule `id`.
pub async fn recent(
    client: &impl GenericClient,
    id: i64,
    limit: i64,
) -> Result<Vec<DigestRecord>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT g.id, g.schedule_id, g.period_from, g.period_to, g.late, g.manual, g.created_at, \
                COALESCE((SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) AS n \
                    FROM webhook_deliveries WHERE digest_id = g.id GROUP BY status) s), '{}') \
         FROM digests g WHERE g.schedule_id = $1 ORDER BY g.period_to DESC, g.id DESC LIMIT $2",
        &[&id, &limit],
        |r| DigestRecord {
            id: r.get(0),
            schedule: r.get(1),
            from: r.get(2),
            to: r.get(3),
            late: r.get(4),
            manual: r.get(5),
            created_at: r.get(6),
            deliveries: r.get(7),
        },
    )
    .await
}
