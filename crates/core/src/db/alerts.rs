//! Alert rules and alerts: the rules' CRUD, the alert list and its transitions, and what the
//! alerter reads and writes when it evaluates the rules.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Row};

use super::query::Conditions;
use super::rollups::{stats_at, SUMS};
use crate::models::alerts::{AlertRule, AlertStatus, AlertView, RuleInput, RuleKind};
use crate::models::metrics::{Dimension, Stats};

type Result<T> = std::result::Result<T, tokio_postgres::Error>;

/// Columns of `alert_rules` in [`AlertRule`] order.
const RULE_COLUMNS: &str = "id, name, kind, dimension, key, window_minutes, threshold, \
    min_volume, baseline_minutes, k, min_baseline_points, severity, cooldown_secs, enabled, \
    created_at, updated_at, channels";

const ALERT_COLUMNS: &str = "id, rule_id, rule_name, kind, severity, dimension, key, status, \
    value, threshold, evidence, fired_at, acknowledged_at, resolved_at";

fn rule_from_row(row: &Row) -> Result<AlertRule> {
    Ok(AlertRule {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        kind: row.try_get(2)?,
        dimension: row.try_get(3)?,
        key: row.try_get(4)?,
        window_minutes: row.try_get(5)?,
        threshold: row.try_get(6)?,
        min_volume: row.try_get(7)?,
        baseline_minutes: row.try_get(8)?,
        k: row.try_get(9)?,
        min_baseline_points: row.try_get(10)?,
        severity: row.try_get(11)?,
        cooldown_secs: row.try_get(12)?,
        enabled: row.try_get(13)?,
        created_at: row.try_get(14)?,
        updated_at: row.try_get(15)?,
        channels: row.try_get(16)?,
    })
}

fn alert_from_row(r: &Row) -> Result<AlertView> {
    Ok(AlertView {
        id: r.try_get(0)?,
        rule_id: r.try_get(1)?,
        rule_name: r.try_get(2)?,
        kind: r.try_get(3)?,
        severity: r.try_get(4)?,
        dimension: r.try_get(5)?,
        key: r.try_get(6)?,
        status: r.try_get(7)?,
        value: r.try_get(8)?,
        threshold: r.try_get(9)?,
        evidence: r.try_get(10)?,
        fired_at: r.try_get(11)?,
        acknowledged_at: r.try_get(12)?,
        resolved_at: r.try_get(13)?,
    })
}

/// Every rule (oldest first), or only the enabled ones.
pub async fn rules(client: &Client, only_enabled: bool) -> Result<Vec<AlertRule>> {
    let filter = if only_enabled { "WHERE enabled" } else { "" };
    let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules {filter} ORDER BY id");
    client
        .query(&sql, &[])
        .await?
        .iter()
        .map(rule_from_row)
        .collect()
}

/// One rule.
pub async fn rule(client: &impl GenericClient, id: i64) -> Result<Option<AlertRule>> {
    let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = $1");
    client
        .query_opt(&sql, &[&id])
        .await?
        .as_ref()
        .map(rule_from_row)
        .transpose()
}

/// Creates a rule with defaults for every field but its name and kind; returns its id.
pub async fn create_rule(client: &impl GenericClient, name: &str, kind: RuleKind) -> Result<i64> {
    let row = client
        .query_one(
            "INSERT INTO alert_rules (name, kind) VALUES ($1, $2) RETURNING id",
            &[&name, &kind],
        )
        .await?;
    row.try_get(0)
}

/// Writes the given fields of `input` to rule `id`; `None` when there is no such rule.
pub async fn update_rule(
    client: &impl GenericClient,
    id: i64,
    input: &RuleInput,
) -> Result<Option<AlertRule>> {
    let mut sets: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    macro_rules! set {
        ($($field:ident),+) => {$(
            if let Some(v) = &input.$field {
                params.push(Box::new(v.clone()));
                sets.push(format!("{} = ${}", stringify!($field), params.len()));
            }
        )+};
    }
    set!(
        name,
        kind,
        dimension,
        key,
        window_minutes,
        threshold,
        min_volume,
        baseline_minutes,
        k,
        min_baseline_points,
        severity,
        cooldown_secs,
        enabled,
        channels
    );
    if !sets.is_empty() {
        params.push(Box::new(id));
        let sql = format!(
            "UPDATE alert_rules SET {}, updated_at = now() WHERE id = ${}",
            sets.join(", "),
            params.len()
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        if client.execute(&sql, &refs).await? == 0 {
            return Ok(None);
        }
    }
    rule(client, id).await
}

/// Deletes a rule (its alerts stay); whether it existed.
pub async fn delete_rule(client: &Client, id: i64) -> Result<bool> {
    Ok(client
        .execute("DELETE FROM alert_rules WHERE id = $1", &[&id])
        .await?
        > 0)
}

/// Filters of the alert list; kinds, severities and dimensions are matched as given, so an
/// unknown one matches nothing.
#[derive(Debug, Default)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub dimension: Option<String>,
    pub key: Option<String>,
    pub rule_id: Option<i64>,
    /// Only alerts with an id below this.
    pub before: Option<i64>,
    /// Only alerts fired at or after this time.
    pub fired_from: Option<DateTime<Utc>>,
    /// Only alerts fired before this time.
    pub fired_before: Option<DateTime<Utc>>,
}

/// Up to `rows` alerts matching `filter`, newest first.
pub async fn alerts(client: &Client, filter: AlertFilter, rows: i64) -> Result<Vec<AlertView>> {
    let mut conditions = Conditions::default();
    if let Some(status) = filter.status {
        conditions.push("status =", status);
    }
    for (column, value) in [
        ("kind", filter.kind),
        ("severity", filter.severity),
        ("dimension", filter.dimension),
        ("key", filter.key),
    ] {
        if let Some(v) = value {
            conditions.push(&format!("{column} ="), v);
        }
    }
    if let Some(rule) = filter.rule_id {
        conditions.push("rule_id =", rule);
    }
    if let Some(before) = filter.before {
        conditions.push("id <", before);
    }
    if let Some(from) = filter.fired_from {
        conditions.push("fired_at >=", from);
    }
    if let Some(to) = filter.fired_before {
        conditions.push("fired_at <", to);
    }
    let limit = conditions.bind(rows);
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts {} ORDER BY id DESC LIMIT {limit}",
        conditions.where_sql()
    );
    client
        .query(&sql, &conditions.params())
        .await?
        .iter()
        .map(alert_from_row)
        .collect()
}

/// One alert.
pub async fn alert(client: &Client, id: i64) -> Result<Option<AlertView>> {
    let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
    client
        .query_opt(&sql, &[&id])
        .await?
        .as_ref()
        .map(alert_from_row)
        .transpose()
}

/// Queues the resolution of the alerts in `r` (id, resolved_at, severity, resolution,
/// resolved_by) for each channel that was told of their firing and announces resolutions, in
/// the statement that resolves them, so a resolution is never lost between the two. The
/// payload says how the alert was resolved (`resolution`: `cleared` or `manual`) and by whom
/// (`resolved_by`, null when not known), so no channel says a condition cleared when a person
/// closed the alert.
const ANNOUNCE_RESOLVED: &str =
    "INSERT INTO webhook_deliveries (webhook_id, alert_id, event, payload, next_attempt_at) \
     SELECT d.webhook_id, r.id, 'resolve', \
            d.payload || jsonb_build_object('status', 'resolved', 'resolved_at', r.resolved_at, \
                'resolution', r.resolution, 'resolved_by', r.resolved_by), \
            CASE WHEN r.severity = 'critical' THEN now() ELSE COALESCE( \
                pulse_quiet_until(w.quiet_from, w.quiet_to, w.quiet_timezone, now()), now()) END \
     FROM r JOIN webhook_deliveries d ON d.alert_id = r.id AND d.event = 'fire' \
     JOIN webhooks w ON w.id = d.webhook_id \
     WHERE w.enabled AND w.kind <> 'webhook' \
     ON CONFLICT (webhook_id, alert_id, event) DO NOTHING";

/// Moves alert `id` to `to` if it may go there (only a firing alert is acknowledged; any
/// open alert is resolved); whether it moved. A resolution here is a manual one, by the API
/// key `key_id` when the caller had one: its channels are told so, with the key's name.
pub async fn transition(
    client: &Client,
    id: i64,
    to: AlertStatus,
    key_id: Option<&str>,
) -> Result<bool> {
    let sql = match to {
        AlertStatus::Acknowledged => {
            "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now() \
             WHERE id = $1 AND status = 'firing'"
        }
        AlertStatus::Resolved => {
            let sql = format!(
                "WITH r AS (UPDATE alerts SET status = 'resolved', resolved_at = now() \
                 WHERE id = $1 AND status <> 'resolved' \
                 RETURNING id, resolved_at, severity, 'manual'::text AS resolution, \
                     COALESCE((SELECT k.name || ' (key:' || k.id || ')' FROM api_keys k \
                         WHERE k.id = $2::text), 'key:' || $2::text) AS resolved_by), \
                 d AS ({ANNOUNCE_RESOLVED}) SELECT count(*) FROM r"
            );
            let row = client.query_one(&sql, &[&id, &key_id]).await?;
            return Ok(row.get::<_, i64>(0) > 0);
        }
        AlertStatus::Firing => return Ok(false),
    };
    Ok(client.execute(sql, &[&id]).await? > 0)
}

/// The stats of each key of `rule`'s scope over the window from `from` to `now`. Posts may
/// be dated a few minutes ahead of the clock: the minutes after `now` are left out, so such a
/// post counts in a window only once its minute has come, and for no longer than any other.
pub async fn window_stats(
    client: &Client,
    rule: &AlertRule,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Stats)>> {
    let key_filter = if rule.key.is_some() {
        "AND key = $3"
    } else {
        "AND $3::text IS NULL"
    };
    let sql = format!(
        "SELECT key, {SUMS} FROM metric_rollups WHERE dimension = $1 AND minute >= $2 \
         AND minute <= $4 {key_filter} GROUP BY key"
    );
    super::read_rows(
        client,
        &sql,
        &[&rule.dimension, &from, &rule.key, &now],
        |row| (row.get(0), stats_at(row, 1)),
    )
    .await
}

/// Posts and mean sentiment of each earlier window of `window_minutes` between
/// `baseline_from` and `from`, by its distance from `from` in windows (0 the latest: the
/// `window_minutes` minutes before `from`, the minute before it included), for each
/// of `keys`, in one statement whatever their number; windows without posts are absent. The
/// mean is of the posts a model scored (those with a label), as the alerter reads the window
/// itself.
pub async fn baseline_windows(
    client: &Client,
    dimension: Dimension,
    keys: &[String],
    from: DateTime<Utc>,
    window_minutes: i64,
    baseline_from: DateTime<Utc>,
) -> Result<HashMap<String, Vec<(i64, i64, Option<f64>)>>> {
    let rows = super::read_rows(
        client,
        "SELECT key, floor((extract(epoch FROM ($3::timestamptz - minute))::float8 / 60 - 1) / $4::float8)::int8 AS w, \
         sum(posts)::int8, \
         (sum(sentiment_sum) / NULLIF(sum(negative + neutral + positive), 0))::float8 \
         FROM metric_rollups WHERE dimension = $1 AND key = ANY($2) \
         AND minute >= $5 AND minute < $3 GROUP BY 1, 2 ORDER BY 1, 2 DESC",
        &[&dimension, &keys, &from, &(window_minutes as f64), &baseline_from],
        |r| (r.get::<_, String>(0), (r.get(1), r.get(2), r.get(3))),
    )
    .await?;
    let mut by_key: HashMap<String, Vec<(i64, i64, Option<f64>)>> = HashMap::new();
    for (key, row) in rows {
        by_key.entry(key).or_default().push(row);
    }
    Ok(by_key)
}

/// A post offered as evidence of an alert.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvidencePost {
    pub id: String,
    pub platform: String,
    pub text: String,
    pub sentiment: String,
    pub sentiment_score: f32,
    pub churn_risk: f32,
    pub toxicity: f32,
    pub created_at: DateTime<Utc>,
}

/// Up to 200 live (not deleted) posts of the scope created in `[from, to]` that drove a rule
/// of `kind`: the most negative, most at risk, most toxic or newest first, each text cut to
/// what [`quoted_text`](crate::models::alerts::quoted_text) needs: 200 whole texts of 20 KB
/// were 4 MB read and scanned for terms each time an alert's evidence was chosen.
pub async fn evidence_posts(
    client: &Client,
    kind: RuleKind,
    dimension: Dimension,
    key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<EvidencePost>> {
    let order = match kind {
        RuleKind::Churn => "churn_risk DESC",
        RuleKind::Toxicity => "toxicity DESC",
        RuleKind::VolumeSpike | RuleKind::NewStory | RuleKind::StorySurge => "created_at DESC",
        RuleKind::Negativity | RuleKind::SentimentDip => "sentiment_score ASC",
    };
    let scope = match dimension {
        // A story rule's key is the story.
        _ if kind.watches_stories() => "story_id::text = $2".to_string(),
        Dimension::Overall => "$2::text IS NOT NULL".to_string(),
        Dimension::Language => "COALESCE(lang, 'und') = $2".to_string(),
        d => super::query::holds("", d.post_column(), "$2"),
    };
    // Only the posts the rule counted: the rollups leave out those no model read (their
    // scores are not sentiment) but for the volume of their language and support class.
    let counted = match (kind, dimension) {
        _ if kind.watches_stories() => "",
        (RuleKind::VolumeSpike, Dimension::Language | Dimension::Support) => "",
        _ => "AND language_support <> 'unsupported'",
    };
    // A text is read as far as evidence uses it: the quote's opening and one character more.
    let chars = crate::models::alerts::EVIDENCE_TEXT_CHARS + 1;
    let sql = format!(
        "SELECT id, platform, left(text, {chars}), sentiment_label, sentiment_score, churn_risk, toxicity, created_at \
         FROM posts WHERE created_at >= $1 AND created_at <= $3 AND deleted_at IS NULL AND {scope} \
         {counted} ORDER BY {order} LIMIT 200"
    );
    super::read_rows(client, &sql, &[&from, &key, &to], |r| EvidencePost {
        id: r.get(0),
        platform: r.get(1),
        text: r.get(2),
        sentiment: r.get(3),
        sentiment_score: r.get(4),
        churn_risk: r.get(5),
        toxicity: r.get(6),
        created_at: r.get(7),
    })
    .await
}

/// Marks the open alert of `rule` on `key` as not clearing; whether one is open.
pub async fn keep_open(client: &Client, rule: &AlertRule, key: &str) -> Result<bool> {
    Ok(client
        .execute(
            "UPDATE alerts SET cleared_since = NULL WHERE rule_id = $1 AND dimension = $2 \
             AND key = $3 AND status <> 'resolved'",
            &[&rule.id, &rule.dimension, &key],
        )
        .await?
        > 0)
}

/// Alerts of rule `rule_id` open now (firing or acknowledged).
pub async fn open_alerts(client: &Client, rule_id: i64) -> Result<i64> {
    client
        .query_one(
            "SELECT count(*) FROM alerts WHERE rule_id = $1 AND status <> 'resolved'",
            &[&rule_id],
        )
        .await?
        .try_get(0)
}

/// Whether `rule` fired on `key` within its cooldown.
pub async fn cooling_down(client: &Client, rule: &AlertRule, key: &str) -> Result<bool> {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM alerts WHERE rule_id = $1 AND dimension = $2 AND key = $3 \
             AND fired_at > now() - make_interval(secs => $4))",
            &[&rule.id, &rule.dimension, &key, &f64::from(rule.cooldown_secs)],
        )
        .await?
        .try_get(0)
}

/// An alert about to fire.
pub struct NewAlert<'a> {
    pub rule: &'a AlertRule,
    pub key: &'a str,
    pub value: f64,
    pub threshold: f64,
    pub evidence: &'a serde_json::Value,
    /// The webhook payload without `id` and `fired_at`, which the insert adds.
    pub payload: &'a serde_json::Value,
}

/// Inserts the alert and its webhook deliveries in one statement, so a crash can never leave
/// an alert that no subscriber will hear about; `None` when an open alert of the rule and key
/// exists (another process fired it).
pub async fn fire(client: &Client, alert: NewAlert<'_>) -> Result<Option<(i64, DateTime<Utc>)>> {
    let rule = alert.rule;
    let row = client
        .query_opt(
            "WITH a AS ( \
                 INSERT INTO alerts (rule_id, rule_name, kind, severity, dimension, key, value, threshold, evidence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (rule_id, dimension, key) WHERE status <> 'resolved' DO NOTHING \
                 RETURNING id, fired_at), \
             d AS ( \
                 INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, next_attempt_at) \
                 SELECT w.id, a.id, $10::jsonb || jsonb_build_object('id', a.id, 'fired_at', a.fired_at), \
                        CASE WHEN $4::text = 'critical' THEN now() ELSE COALESCE( \
                            pulse_quiet_until(w.quiet_from, w.quiet_to, w.quiet_timezone, now()), now()) END \
                 FROM a CROSS JOIN webhooks w \
                 WHERE w.enabled AND (w.kinds IS NULL OR $3 = ANY(w.kinds)) \
                 AND ($11::bigint[] IS NULL OR w.id = ANY($11)) \
                 AND array_position(ARRAY['info', 'warning', 'critical'], $4::text) \
                     >= array_position(ARRAY['info', 'warning', 'critical'], w.min_severity)) \
             SELECT id, fired_at FROM a",
            &[
                &rule.id,
                &rule.name,
                &rule.kind,
                &rule.severity,
                &rule.dimension,
                &alert.key,
                &alert.value,
                &alert.threshold,
                alert.evidence,
                alert.payload,
                &rule.channels,
            ],
        )
        .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// Open alerts of `rule` on keys outside `holding` start (or go on) clearing; those clear
/// for `resolve_after_secs` are resolved.
pub async fn clear(
    client: &Client,
    rule_id: i64,
    holding: &[String],
    resolve_after_secs: f64,
) -> Result<()> {
    client
        .execute(
            "UPDATE alerts SET cleared_since = COALESCE(cleared_since, now()) \
             WHERE rule_id = $1 AND status <> 'resolved' AND NOT (key = ANY($2))",
            &[&rule_id, &holding],
        )
        .await?;
    client
        .execute(
            &format!(
                "WITH r AS (UPDATE alerts SET status = 'resolved', resolved_at = now() \
                 WHERE rule_id = $1 AND status <> 'resolved' AND cleared_since IS NOT NULL \
                 AND cleared_since <= now() - make_interval(secs => $2) \
                 RETURNING id, resolved_at, severity, 'cleared'::text AS resolution, \
                     NULL::text AS resolved_by) \
                 {ANNOUNCE_RESOLVED}"
            ),
            &[&rule_id, &resolve_after_secs],
        )
        .await?;
    Ok(())
}

/// An alert whose evidence quotes a post that was deleted.
pub struct Quoting {
    pub id: i64,
    pub kind: RuleKind,
    pub dimension: Dimension,
    pub key: String,
    pub evidence: serde_json::Value,
}

/// The query of [`quoting`]: `$1` the post ids, `$2` the date they were created.
pub const QUOTING: &str = "SELECT a.id, a.kind, a.dimension, a.key, a.evidence FROM alerts a \
     WHERE a.fired_at >= $2 \
     AND jsonb_path_query_array(a.evidence, '$.top_posts[*].id') ?| $1::text[]";

/// The alerts whose `top_posts` quote any of `ids`, among those fired since `since` (an alert
/// fired before a post was created cannot quote it), found through the index of quoted ids
/// (`alerts_quoted_posts_idx`): `since` is the posts' own date, which their producer chose.
pub async fn quoting(client: &Client, ids: &[&str], since: DateTime<Utc>) -> Result<Vec<Quoting>> {
    let rows = client.query(QUOTING, &[&ids, &since]).await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get(1)?;
            let dimension: String = r.try_get(2)?;
            Ok(Quoting {
                id: r.try_get(0)?,
                kind: RuleKind::parse(&kind).unwrap_or(RuleKind::Negativity),
                dimension: Dimension::parse(&dimension).unwrap_or(Dimension::Overall),
                key: r.try_get(3)?,
                evidence: r.try_get(4)?,
            })
        })
        .collect()
}

/// Replaces the evidence of alert `id`, and in every delivery of it (pending ones send it;
/// delivered ones are what the deliveries log shows).
pub async fn replace_evidence(
    client: &mut Client,
    id: i64,
    evidence: &serde_json::Value,
) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE alerts SET evidence = $2 WHERE id = $1",
        &[&id, evidence],
    )
    .await?;
    tx.execute(
        "UPDATE webhook_deliveries SET payload = jsonb_set(payload, '{evidence}', $2) \
         WHERE alert_id = $1 AND payload ? 'evidence'",
        &[&id, evidence],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
