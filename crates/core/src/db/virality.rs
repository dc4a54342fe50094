//! What the virality tracker reads and writes: the engagement feed by transaction id, the
//! cascades with their prediction history and momentum, the learned thresholds, and the
//! metadata of the posts it tracks.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::types::ToSql;

use super::lock::Conn;
use crate::models::{EngagementKind, Platform, SentimentLabel};
use crate::virality::thresholds::Learned;
use crate::virality::{self, unix_seconds, PostMeta};

/// Most transaction ids one read of the feed spans, bounding what one read returns after a
/// pause; the next read follows at once.
pub const FEED_XID_SPAN: u64 = 256;
/// A row of `virality_cascades`, written as JSON through `jsonb_to_recordset`.
#[derive(Debug, Clone, Serialize)]
pub struct CascadeRow {
    pub post_id: String,
    pub platform: Option<&'static str>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub sentiment: Option<&'static str>,
    pub hashtags: Vec<String>,
    pub author_followers: i64,
    pub post_known: bool,
    pub producer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub observed_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub status: &'static str,
    pub shares: i64,
    pub likes: i64,
    pub comments: i64,
    pub views: i64,
    pub reach: i64,
    pub depth: i64,
    pub breadth: i64,
    pub structural_virality: f64,
    pub velocity: f64,
    pub acceleration: f64,
    pub virality_score: f64,
    pub virality_probability: f64,
    pub viral: bool,
    pub predicted_final_shares: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    pub ci_level: f64,
    pub threshold: f64,
    pub branching: f64,
    pub dynamics: &'static str,
    pub model_name: String,
    pub model_version: String,
    pub params_hash: String,
}

/// A row of `virality_predictions`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub post_id: String,
    pub observed_at: DateTime<Utc>,
    pub age_secs: f64,
    pub shares: i64,
    pub virality_score: f64,
    pub virality_probability: f64,
    pub viral: bool,
    pub predicted_final_shares: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    pub dynamics: &'static str,
    pub structural_virality: f64,
    pub velocity: f64,
    pub acceleration: f64,
    pub params_hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MomentumRow {
    pub dimension: &'static str,
    pub key: String,
    pub velocity: f64,
    pub acceleration: f64,
    pub posts: i64,
}

/// One committed engagement as the feed and the rebuild read it.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub post_id: String,
    /// The share's identity in the tree: the producer's id, else the engagement's key.
    pub share_id: String,
    pub kind: EngagementKind,
    pub at: f64,
    pub followers: Option<u64>,
    pub via: Option<String>,
    pub count: u32,
}

/// The order the feed reads engagements in, and the order a rebuild takes a cascade's tracked
/// shares in: the same, so a rebuilt tree tracks the shares the live one did. Rows without a
/// transaction id predate the feed.
const FEED_ORDER: &str = "tx NULLS FIRST, at, key";

/// The columns [`feed_row`] reads, in order.
pub const FEED_COLUMNS: &str = "post_id, key, kind, at, actor_followers, via, count, producer";

pub fn feed_row(row: &tokio_postgres::Row) -> FeedRow {
    let key: String = row.get(1);
    let kind: String = row.get(2);
    let at: DateTime<Utc> = row.get(3);
    let followers: Option<i64> = row.get(4);
    let count: i32 = row.get(6);
    FeedRow {
        post_id: row.get(0),
        share_id: share_id(&key, row.get(7)),
        kind: engagement_kind(&kind),
        at: unix_seconds(at),
        followers: followers.and_then(|f| u64::try_from(f).ok()),
        via: row.get(5),
        count: u32::try_from(count).unwrap_or(1),
    }
}

fn engagement_kind(kind: &str) -> EngagementKind {
    match kind {
        "share" => EngagementKind::Share,
        "like" => EngagementKind::Like,
        "comment" => EngagementKind::Comment,
        _ => EngagementKind::View,
    }
}

/// The id other shares' `via` name: the producer's own id, whichever way the engagement
/// arrived (the store keys it `id:<id>`, or `id:<producer>/<id>` for a producer other than the
/// stream, see `producer::engagement_key`), else its key.
fn share_id(key: &str, producer: &str) -> String {
    let Some(id) = key.strip_prefix("id:") else {
        return key.to_string();
    };
    id.strip_prefix(producer)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(id)
        .to_string()
}

pub const UPSERT_CASCADES: &str = "
INSERT INTO virality_cascades AS c (
    post_id, platform, product, channel, city, country, sentiment, hashtags, author_followers,
    post_known, producer, created_at, observed_at, last_activity_at, status, shares, likes,
    comments, views, reach, depth, breadth, structural_virality, velocity, acceleration,
    virality_score, virality_probability, viral, predicted_final_shares, ci_lower, ci_upper,
    ci_level, threshold, branching, dynamics, model_name, model_version, params_hash, updated_at)
SELECT post_id, platform, product, channel, city, country, sentiment, hashtags,
       author_followers, post_known, producer, created_at, observed_at, last_activity_at,
       status, shares, likes, comments, views, reach, depth, breadth, structural_virality, velocity,
       acceleration, virality_score, virality_probability, viral, predicted_final_shares,
       ci_lower, ci_upper, ci_level, threshold, branching, dynamics, model_name,
       model_version, params_hash, now()
FROM jsonb_to_recordset($1::jsonb) AS r(
    post_id text, platform text, product text, channel text, city text, country text,
    sentiment text, hashtags text[], author_followers int8, post_known bool, producer text,
    created_at timestamptz, observed_at timestamptz, last_activity_at timestamptz,
    status text, shares int8, likes int8, comments int8, views int8, reach int8, depth int4,
    breadth int8, structural_virality float8, velocity float8, acceleration float8,
    virality_score float8, virality_probability float8, viral bool,
    predicted_final_shares float8, ci_lower float8, ci_upper float8, ci_level float8,
    threshold float8, branching float8, dynamics text, model_name text,
    model_version text, params_hash text)
ORDER BY post_id
ON CONFLICT (post_id) DO UPDATE SET
    platform = EXCLUDED.platform, product = EXCLUDED.product, channel = EXCLUDED.channel,
    city = EXCLUDED.city, country = EXCLUDED.country, sentiment = EXCLUDED.sentiment,
    hashtags = EXCLUDED.hashtags, author_followers = EXCLUDED.author_followers,
    post_known = EXCLUDED.post_known, producer = EXCLUDED.producer,
    created_at = EXCLUDED.created_at,
    observed_at = EXCLUDED.observed_at, last_activity_at = EXCLUDED.last_activity_at,
    status = EXCLUDED.status, shares = EXCLUDED.shares, likes = EXCLUDED.likes,
    comments = EXCLUDED.comments, views = EXCLUDED.views, reach = EXCLUDED.reach,
    depth = EXCLUDED.depth, breadth = EXCLUDED.breadth,
    structural_virality = EXCLUDED.structural_virality, velocity = EXCLUDED.velocity,
    acceleration = EXCLUDED.acceleration, virality_score = EXCLUDED.virality_score,
    virality_probability = EXCLUDED.virality_probability, viral = EXCLUDED.viral,
    predicted_final_shares = EXCLUDED.predicted_final_shares, ci_lower = EXCLUDED.ci_lower,
    ci_upper = EXCLUDED.ci_upper, ci_level = EXCLUDED.ci_level,
    threshold = EXCLUDED.threshold, branching = EXCLUDED.branching,
    dynamics = EXCLUDED.dynamics, model_name = EXCLUDED.model_name,
    model_version = EXCLUDED.model_version, params_hash = EXCLUDED.params_hash,
    updated_at = now()";

pub const INSERT_HISTORY: &str = "
INSERT INTO virality_predictions (
    post_id, observed_at, age_secs, shares, virality_score, virality_probability, viral,
    predicted_final_shares, ci_lower, ci_upper, dynamics, structural_virality, velocity,
    acceleration, params_hash)
SELECT post_id, observed_at, age_secs, shares, virality_score, virality_probability, viral,
       predicted_final_shares, ci_lower, ci_upper, dynamics, structural_virality, velocity,
       acceleration, params_hash
FROM jsonb_to_recordset($1::jsonb) AS r(
    post_id text, observed_at timestamptz, age_secs float8, shares int8,
    virality_score float8, virality_probability float8, viral bool,
    predicted_final_shares float8, ci_lower float8, ci_upper float8, dynamics text,
    structural_virality float8, velocity float8, acceleration float8, params_hash text)";

pub const UPSERT_MOMENTUM: &str = "
INSERT INTO virality_momentum AS m (dimension, key, velocity, acceleration, posts, updated_at)
SELECT dimension, key, velocity, acceleration, posts, now()
FROM jsonb_to_recordset($1::jsonb) AS r(
    dimension text, key text, velocity float8, acceleration float8, posts int8)
ORDER BY dimension, key
ON CONFLICT (dimension, key) DO UPDATE SET velocity = EXCLUDED.velocity,
    acceleration = EXCLUDED.acceleration, updated_at = now()";

/// Rows per statement.
pub const WRITE_CHUNK: usize = 2_000;

pub const UPSERT_FEED_POSITION: &str = "
INSERT INTO virality_feed (id, position, holder, updated_at)
VALUES (true, $1::text::xid8, $2, now())
ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position, holder = EXCLUDED.holder,
    updated_at = now()";

/// A failed write gives its rows and history back, to be written next time.
pub type WriteResult = Result<(), (anyhow::Error, Vec<CascadeRow>, Vec<HistoryRow>)>;

/// One write: cascades, history and momentum with the feed position they account for, in one
/// transaction on the lock-holding connection.
pub struct WriteJob {
    pub conn: Conn,
    pub rows: Vec<CascadeRow>,
    pub history: Vec<HistoryRow>,
    pub momentum: Vec<MomentumRow>,
    pub cursor: Option<u64>,
    pub holder: String,
    pub epoch: u64,
}

impl WriteJob {
    pub async fn run(self) -> WriteResult {
        match write_rows(
            &self.conn,
            &self.rows,
            &self.history,
            &self.momentum,
            self.cursor,
            &self.holder,
        )
        .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err((e, self.rows, self.history)),
        }
    }
}

pub async fn write_rows(
    conn: &Conn,
    rows: &[CascadeRow],
    history: &[HistoryRow],
    momentum: &[MomentumRow],
    cursor: Option<u64>,
    holder: &str,
) -> anyhow::Result<()> {
    let mut client = conn.lock().await;
    let tx = client.transaction().await?;
    write_json(&tx, UPSERT_CASCADES, rows).await?;
    write_json(&tx, INSERT_HISTORY, history).await?;
    write_json(&tx, UPSERT_MOMENTUM, momentum).await?;
    if let Some(cursor) = cursor {
        tx.execute(UPSERT_FEED_POSITION, &[&cursor.to_string(), &holder])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Runs `sql` on `rows`, [`WRITE_CHUNK`] at a time, each chunk a JSON array.
async fn write_json<T: Serialize>(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    rows: &[T],
) -> anyhow::Result<()> {
    for chunk in rows.chunks(WRITE_CHUNK) {
        tx.execute(sql, &[&serde_json::to_value(chunk)?]).await?;
    }
    Ok(())
}

/// The id below which every transaction has ended: the oldest one still running.
pub async fn horizon(client: &tokio_postgres::Client) -> anyhow::Result<u64> {
    let row = client
        .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
        .await?;
    Ok(row.get::<_, String>(0).parse()?)
}

/// One read of the feed: the rows of the transactions in `[position, upper)`, and whether
/// more ended transactions lie beyond `upper`.
pub struct FeedRead {
    pub rows: Vec<FeedRow>,
    pub upper: u64,
    pub more: bool,
}

/// Reads the engagements committed by transactions from `cursor` up to the oldest one still
/// running (at most [`FEED_XID_SPAN`] ids): every transaction in that range has ended, so
/// what it committed is visible now and nothing will be added to the range later.
pub async fn read_feed(conn: &Conn, cursor: u64) -> anyhow::Result<FeedRead> {
    let client = conn.lock().await;
    let horizon = horizon(&client).await?;
    if horizon <= cursor {
        return Ok(FeedRead {
            rows: Vec::new(),
            upper: cursor,
            more: false,
        });
    }
    let upper = horizon.min(cursor.saturating_add(FEED_XID_SPAN));
    let rows = client
        .query(
            &format!(
                "SELECT {FEED_COLUMNS} FROM engagements
                 WHERE tx >= $1::text::xid8 AND tx < $2::text::xid8 AND NOT held
                   AND NOT EXISTS (SELECT 1 FROM posts p
                                   WHERE p.id = engagements.post_id AND p.deleted_at IS NOT NULL)
                 ORDER BY {FEED_ORDER}"
            ),
            &[&cursor.to_string(), &upper.to_string()],
        )
        .await?;
    Ok(FeedRead {
        rows: rows.iter().map(feed_row).collect(),
        upper,
        more: upper < horizon,
    })
}

/// Finished cascades per producer and platform the thresholds are learned from: the most
/// recent ones, so the cost of learning is bounded however long history grows, and the
/// threshold follows what is viral now.
pub const THRESHOLD_HISTORY: i64 = 10_000;
/// Producers whose thresholds are learned in one pass, the first in name order; the posts of
/// any further ones are judged by their platform's threshold.
pub const THRESHOLD_PRODUCERS: i64 = 1_000;
/// An analyst's reported final share count counts for at most this many times the shares
/// Pulse observed (plus [`FEEDBACK_SLACK`]): feedback corrects an outcome Pulse saw part of,
/// it cannot move a platform's threshold without bound.
pub const FEEDBACK_FACTOR: i64 = 10;
/// See [`FEEDBACK_FACTOR`].
pub const FEEDBACK_SLACK: i64 = 100;

/// Thresholds learned from finished cascades (feedback outcomes, bounded, win over observed
/// counts; a reported final count below the shares Pulse observed counts as observed, since a
/// report of 0 on a platform's largest cascades would otherwise pull its bar to the floor):
/// the `quantile` of final shares of each producer's [`THRESHOLD_HISTORY`] most recent
/// finished cascades per platform, for producers with at least `min_history` of them (see
/// [`Learned`] for how a platform's follows). The producers are found by skipping through the
/// index of finished cascades, one probe each, so a platform's millions of rows are not read
/// to list its few producers.
pub async fn learned_thresholds(
    client: &tokio_postgres::Client,
    quantile: f64,
    min_history: i64,
) -> anyhow::Result<Learned> {
    let platforms: Vec<&str> = Platform::ALL.iter().map(|p| p.as_str()).collect();
    let rows = client
        .query(
            "WITH RECURSIVE producers(platform, producer, n) AS (
                 (SELECT platform, producer, 1::int8 FROM virality_cascades
                  WHERE status = 'finished' AND platform = ANY($2) AND producer IS NOT NULL
                  ORDER BY platform, producer LIMIT 1)
                 UNION ALL
                 SELECT next.platform, next.producer, pr.n + 1
                 FROM producers pr CROSS JOIN LATERAL (
                     SELECT platform, producer FROM virality_cascades
                     WHERE status = 'finished' AND platform = ANY($2) AND producer IS NOT NULL
                       AND (platform, producer) > (pr.platform, pr.producer)
                     ORDER BY platform, producer LIMIT 1) next
                 WHERE pr.n < $6::int8)
             SELECT pr.platform, pr.producer, count(*),
                    percentile_disc($1::float8) WITHIN GROUP (ORDER BY h.shares)
             FROM producers pr
             CROSS JOIN LATERAL (
                 -- LEAST skips a NULL: without feedback it would answer the bound, not the
                 -- shares observed. A report under what was observed counts as observed.
                 SELECT CASE WHEN f.final_shares IS NULL THEN c.shares
                             ELSE GREATEST(c.shares, LEAST(f.final_shares, c.shares * $4 + $5))
                        END AS shares
                 FROM virality_cascades c
                 -- One feedback row per post, holding the latest final shares reported.
                 LEFT JOIN virality_feedback f ON f.post_id = c.post_id
                 WHERE c.status = 'finished' AND c.platform = pr.platform
                   AND c.producer = pr.producer
                 ORDER BY c.last_activity_at DESC
                 LIMIT $3) h
             GROUP BY pr.platform, pr.producer",
            &[
                &quantile.clamp(0.5, 0.9999),
                &platforms,
                &THRESHOLD_HISTORY,
                &FEEDBACK_FACTOR,
                &FEEDBACK_SLACK,
                &THRESHOLD_PRODUCERS,
            ],
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let n: i64 = row.get(2);
        let value: i64 = row.get(3);
        if n >= min_history.max(1) {
            out.insert((row.get(0), row.get(1)), (value as f64).max(1.0));
        }
    }
    Ok(Learned::new(out))
}

pub fn meta_of(row: &tokio_postgres::Row, offset: usize) -> PostMeta {
    let platform: Option<String> = row.get(offset);
    let sentiment: Option<String> = row.get(offset + 5);
    let created: DateTime<Utc> = row.get(offset + 8);
    PostMeta {
        platform: platform.as_deref().and_then(Platform::parse),
        product: row.get(offset + 1),
        channel: row.get(offset + 2),
        city: row.get(offset + 3),
        country: row.get(offset + 4),
        sentiment: sentiment.as_deref().and_then(SentimentLabel::parse),
        hashtags: row.get(offset + 6),
        author_followers: u64::try_from(row.get::<_, i64>(offset + 7)).unwrap_or(0),
        created_at: unix_seconds(created),
        // Kept cascades do not store them; live filters by topic see a restored cascade
        // once its post's metadata is read again (`load_meta`).
        topics: Vec::new(),
        producer: row.get(offset + 9),
    }
}

pub async fn load_meta(pool: &Pool, ids: &[String]) -> anyhow::Result<Vec<(String, PostMeta)>> {
    let client = pool.get().await?;
    Ok(super::read_rows(
        &**client,
        "SELECT id, platform, product, channel, city, country, sentiment_label, text,
                author_followers, created_at, COALESCE(topics, '{}'), producer
         FROM posts WHERE id = ANY($1)",
        &[&ids],
        |row| {
            let platform: String = row.get(1);
            let sentiment: String = row.get(6);
            let text: String = row.get(7);
            let created: DateTime<Utc> = row.get(9);
            (
                row.get(0),
                PostMeta {
                    platform: Platform::parse(&platform),
                    product: row.get(2),
                    channel: row.get(3),
                    city: row.get(4),
                    country: row.get(5),
                    sentiment: SentimentLabel::parse(&sentiment),
                    hashtags: virality::hashtags(&text),
                    author_followers: u64::try_from(row.get::<_, i64>(8)).unwrap_or(0),
                    created_at: unix_seconds(created),
                    topics: row.get(10),
                    producer: row.get(11),
                },
            )
        },
    )
    .await?)
}

/// The feed position stored with the cascades, if any.
pub async fn stored_feed_position(client: &tokio_postgres::Client) -> anyhow::Result<Option<u64>> {
    Ok(client
        .query_opt("SELECT position::text FROM virality_feed", &[])
        .await?
        .map(|r| r.get::<_, String>(0).parse())
        .transpose()?)
}

/// Forgets the transaction ids at or above `horizon`: after a restore elsewhere they name
/// transactions of another database, and such rows count for rebuilds only.
pub async fn forget_foreign_tx(
    client: &tokio_postgres::Client,
    horizon: u64,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE engagements SET tx = NULL WHERE tx >= $1::text::xid8",
            &[&horizon.to_string()],
        )
        .await?;
    Ok(())
}

/// Finishes the active cascades without engagement for `expiry_secs`.
pub async fn finish_quiet_cascades(
    client: &tokio_postgres::Client,
    expiry_secs: f64,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE virality_cascades SET status = 'finished', updated_at = now()
             WHERE status = 'active' AND last_activity_at < now() - make_interval(secs => $1)",
            &[&expiry_secs],
        )
        .await?;
    Ok(())
}

/// A cascade as stored, from which a takeover (or an engagement after it finished) rebuilds it.
pub struct StoredCascade {
    pub post_id: String,
    /// The post's metadata, when the post was known when the row was written.
    pub meta: Option<PostMeta>,
    pub last_activity_at: DateTime<Utc>,
    pub virality_score: f64,
    pub predicted_final_shares: f64,
}

/// The `limit` most recently active cascades.
pub async fn active_cascades(
    client: &tokio_postgres::Client,
    limit: i64,
) -> anyhow::Result<Vec<StoredCascade>> {
    stored_cascades(
        client,
        "status = 'active' ORDER BY last_activity_at DESC LIMIT $1",
        &[&limit],
    )
    .await
}

/// The finished cascades among `post_ids` whose last engagement is less than `window_secs`
/// old: those an engagement arriving now takes up again.
pub async fn finished_cascades(
    client: &tokio_postgres::Client,
    post_ids: &[String],
    window_secs: f64,
) -> anyhow::Result<Vec<StoredCascade>> {
    stored_cascades(
        client,
        "post_id = ANY($1) AND status = 'finished'
           AND last_activity_at > now() - make_interval(secs => $2)",
        &[&post_ids, &window_secs],
    )
    .await
}

/// The stored cascades `filter` (a `WHERE` condition, and what follows it) selects.
async fn stored_cascades(
    client: &tokio_postgres::Client,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> anyhow::Result<Vec<StoredCascade>> {
    let sql = format!(
        "SELECT post_id, post_known, last_activity_at, virality_score, predicted_final_shares,
                platform, product, channel, city, country, sentiment, hashtags, author_followers,
                created_at, producer
         FROM virality_cascades WHERE {filter}"
    );
    Ok(super::read_rows(client, &sql, params, stored_cascade).await?)
}

fn stored_cascade(row: &tokio_postgres::Row) -> StoredCascade {
    StoredCascade {
        post_id: row.get(0),
        meta: row.get::<_, bool>(1).then(|| meta_of(row, 5)),
        last_activity_at: row.get(2),
        virality_score: row.get(3),
        predicted_final_shares: row.get(4),
    }
}

/// How much of a cascade's past a rebuild reads row by row. A tracker keeps at most
/// `max_shares` shares as nodes and per-minute momentum over a few windows; everything else
/// of a cascade is counts, so the rest is read summed: a post of ten million likes is rebuilt
/// from a few rows a minute, not ten million.
#[derive(Debug, Clone, Copy)]
pub struct RebuildBounds {
    /// The shares of a cascade its tree tracks (`virality.max_tracked_shares`).
    pub max_shares: usize,
    /// Before this many minutes ahead of a cascade's last engagement, its engagements are
    /// summed into one group per kind (momentum forgets them anyway).
    pub recent_minutes: i64,
}

/// The engagements of `post_ids` committed before the feed position `cursor` (rows without a
/// transaction id predate the feed, so all of them are before it): each cascade's first
/// `max_shares` shares one by one, in the order the feed read them (by transaction, then time
/// and key: the shares the live tree tracked), then the rest summed by kind and minute (see
/// [`RebuildBounds`]), oldest first. A sum comes as two rows, at its first and its last engagement, so a
/// cascade's first and last activity stay what they were; a summed share carries no id (it is
/// past the tracked tree) and the mean of its group's followers.
pub async fn engagements_before(
    client: &tokio_postgres::Client,
    post_ids: &[String],
    cursor: u64,
    bounds: RebuildBounds,
) -> anyhow::Result<Vec<FeedRow>> {
    let max_shares = i64::try_from(bounds.max_shares).unwrap_or(i64::MAX);
    let cursor = cursor.to_string();
    let before = "post_id = ANY($1) AND (tx IS NULL OR tx < $2::text::xid8) AND NOT held";
    let shares = format!(
        "SELECT {FEED_COLUMNS} FROM (
             SELECT *, row_number() OVER (PARTITION BY post_id ORDER BY {FEED_ORDER}) AS rank
             FROM engagements WHERE {before} AND kind = 'share') s
         WHERE rank <= $3 ORDER BY rank"
    );
    let mut rows = super::read_rows(
        client,
        &shares,
        &[&post_ids, &cursor, &max_shares],
        feed_row,
    )
    .await?;
    let mut sums = Vec::new();
    let summed = format!(
        "WITH e AS (
             SELECT post_id, kind, at, actor_followers, count,
                    CASE WHEN kind = 'share'
                         THEN row_number() OVER (PARTITION BY post_id, kind ORDER BY {FEED_ORDER})
                    END
                        AS rank,
                    max(at) OVER (PARTITION BY post_id) AS last_at
             FROM engagements WHERE {before})
         SELECT post_id, kind, min(at), max(at), sum(count)::int8,
                LEAST(sum(COALESCE(actor_followers, 0)::numeric * count)
                      / sum(count), 9223372036854775807)::int8
         FROM e WHERE kind <> 'share' OR rank > $3
         GROUP BY post_id, kind,
                  CASE WHEN at > last_at - make_interval(mins => $4::int4)
                       THEN date_trunc('minute', at, 'UTC') END"
    );
    let recent = i32::try_from(bounds.recent_minutes.max(1)).unwrap_or(i32::MAX);
    for group in client
        .query(&summed, &[&post_ids, &cursor, &max_shares, &recent])
        .await?
    {
        let (first, last): (DateTime<Utc>, DateTime<Utc>) = (group.get(2), group.get(3));
        let count: i64 = group.get(4);
        let followers: i64 = group.get(5);
        let row = |at: DateTime<Utc>, count: u32| FeedRow {
            post_id: group.get(0),
            share_id: String::new(),
            kind: engagement_kind(group.get(1)),
            at: unix_seconds(at),
            followers: u64::try_from(followers).ok(),
            via: None,
            count,
        };
        sums.push(row(first, 1));
        let mut rest = u64::try_from(count).unwrap_or(0).saturating_sub(1);
        while rest > 0 {
            let part = u32::try_from(rest).unwrap_or(u32::MAX);
            sums.push(row(last, part));
            rest -= u64::from(part);
        }
    }
    // After the tracked shares, so none of the sums takes a place in a tree.
    sums.sort_by(|a, b| a.at.total_cmp(&b.at));
    rows.extend(sums);
    Ok(rows)
}

#[cfg(test)]
mod share_id_tests {
    use super::share_id;
    use crate::models::producer::engagement_key;

    #[test]
    fn a_share_is_named_by_its_producer_id_whoever_produced_it() {
        for producer in ["stream", "key:k_1", "source:bsky", "import"] {
            let key = engagement_key(
                "s",
                producer,
                Some("at://did:plc:x/app.bsky.feed.repost/1"),
                "1-0",
            );
            assert_eq!(
                share_id(&key, producer),
                "at://did:plc:x/app.bsky.feed.repost/1"
            );
        }
        let key = engagement_key("s", "key:k_1", None, "1-0");
        assert_eq!(share_id(&key, "key:k_1"), key);
    }
}
