//! Upkeep of deletions and held engagements, off the hot path.
//!
//! Deletions that raced their post: a batch that stores a post and a concurrent batch that
//! deletes it each see the database as it was before the other committed, so neither marks
//! the post. [`mark_raced`] finds such posts among the deletions of the last five minutes (a
//! race is between batches committed seconds apart, and the window keeps each run to the
//! deletions of those minutes) and marks them, taking them and the engagements that counted
//! with them back out of the rollups through the same `post_rollup_deltas` and
//! `engagement_rollup_deltas` the store adds them with, once (a post already marked is
//! skipped, and two processes running it at once are serialised by the row lock), and out of
//! their stories' sizes ([`super::stories::TAKE_OUT_DELETED`]). It takes
//! the posts' locks as a deleting batch does ([`super::batch::LOCK_POSTS`]), so an engagement
//! committed meanwhile is either seen and taken out, or sees the post deleted.
//!
//! Engagements held for a post that was stored by a concurrent batch (which could not see
//! them) are released by [`settle_held`], or refused when their producer may not act for the
//! post's; those still without a post after the hold are dropped. It counts those it releases
//! when their post is live, so it takes the posts' locks shared first, as an engaging batch
//! does ([`LOCK_EVERY_POST`]).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::db::rollups::{
    engagement_deltas, post_deltas, qualified, ADD_DELTAS, ENGAGEMENT_POST_COLUMNS,
    POST_DELTA_COLUMNS,
};
use crate::models::deletion::DeletedPost;

static MARK_RACED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH gone AS (
    UPDATE posts AS t SET deleted_at = d.at
    FROM (SELECT k.post_id, min(k.at) AS at FROM post_deletions k JOIN posts s ON s.id = k.post_id
          WHERE k.ingested_at > now() - interval '5 minutes'
            AND may_act(k.producer, s.producer, $2::text[]) AND k.post_id = ANY($3::text[])
          GROUP BY k.post_id) AS d
    WHERE t.id = d.post_id AND t.deleted_at IS NULL
    RETURNING t.id, deleted_post(t) AS summary, {returned}
), deltas AS (
    SELECT d.* FROM gone CROSS JOIN LATERAL {gone_posts} d
    UNION ALL
    SELECT d.* FROM gone JOIN engagements x ON x.post_id = gone.id AND NOT x.held
    CROSS JOIN LATERAL {gone_engagements} d
), r AS ({ADD_DELTAS}
)
SELECT summary, id FROM gone",
        returned = qualified("t", &POST_DELTA_COLUMNS),
        gone_posts = post_deltas("-1", "gone", "$1::float4"),
        gone_engagements = engagement_deltas("-1", "x", "gone"),
    )
});

/// Posts stored and not marked that a deletion of the last five minutes may act for.
const RACED: &str = "
SELECT DISTINCT k.post_id FROM post_deletions k JOIN posts s ON s.id = k.post_id
WHERE k.ingested_at > now() - interval '5 minutes' AND s.deleted_at IS NULL
  AND may_act(k.producer, s.producer, $1::text[])";

/// Marks the posts whose deletion raced them; returns them.
pub async fn mark_raced(
    client: &mut Client,
    high_churn: f32,
    trust: &[String],
) -> Result<Vec<DeletedPost>, tokio_postgres::Error> {
    let ids: Vec<String> = client
        .query(RACED, &[&trust])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tx = client.transaction().await?;
    tx.execute(super::batch::LOCK_POSTS, &[&ids, &vec![true; ids.len()]])
        .await?;
    let rows = tx
        .query(MARK_RACED.as_str(), &[&high_churn, &trust, &ids])
        .await?;
    let gone: Vec<&str> = rows.iter().map(|r| r.get(1)).collect();
    if !gone.is_empty() {
        tx.execute(super::stories::TAKE_OUT_DELETED, &[&gone])
            .await?;
    }
    tx.commit().await?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_value(r.get(0)).ok())
        .collect())
}

/// Every bucket of [`super::batch::LOCK_POSTS`], shared, in bucket order: what a settling pass
/// takes in its transaction before its statement, since it may release the engagements of any
/// post.
///
/// Why: the pass counts an engagement it releases in the rollups when its post is live as the
/// statement sees it. A batch deleting that post, in flight when the statement started, takes
/// out of the rollups the post and the engagements it saw counted, not this one, which it saw
/// held: the engagement would stay counted in the rollups of a deleted post for good. With the
/// locks, the deleting batch (which holds its posts' locks exclusively) and the pass wait for
/// each other, and whichever comes second sees what the first committed. Engaging batches
/// take theirs shared too, so they never wait for the pass.
pub const LOCK_EVERY_POST: &str =
    "SELECT pg_advisory_xact_lock_shared(1347, b) FROM generate_series(0, 63) AS b";

/// Most held engagements one [`settle_held`] looks at.
pub const SETTLE_BATCH: i64 = 5_000;

static SETTLE_HELD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH h AS MATERIALIZED (
    SELECT e.key, e.ingested_at, s.id IS NOT NULL AS known,
           s.id IS NOT NULL AND may_act(e.producer, s.producer, $1::text[]) AS allowed
    FROM engagements e LEFT JOIN posts s ON s.id = e.post_id
    WHERE e.held AND e.ingested_at >= $3 AND (e.ingested_at > $3 OR e.key > $4)
    ORDER BY e.ingested_at, e.key LIMIT {SETTLE_BATCH}
), released AS (
    UPDATE engagements AS t SET held = false, tx = pg_current_xact_id()
    FROM h, posts s
    WHERE t.key = h.key AND h.allowed AND t.held AND s.id = t.post_id
    RETURNING t.at, t.kind, t.count, s.deleted_at, {post}
), refused AS (
    DELETE FROM engagements AS t USING h
    WHERE t.key = h.key AND t.held AND h.known AND NOT h.allowed
    RETURNING t.key
), dropped AS (
    DELETE FROM engagements AS t USING h
    WHERE t.key = h.key AND t.held AND NOT h.known
      AND t.ingested_at < now() - make_interval(secs => $2)
    RETURNING t.key
), deltas AS (
    SELECT d.* FROM released r CROSS JOIN LATERAL {released} d WHERE r.deleted_at IS NULL
), r AS ({ADD_DELTAS}
)
SELECT (SELECT count(*) FROM released), (SELECT count(*) FROM refused),
       (SELECT count(*) FROM dropped), (SELECT count(*) FROM h),
       (SELECT ingested_at FROM h ORDER BY ingested_at DESC, key DESC LIMIT 1),
       (SELECT key FROM h ORDER BY ingested_at DESC, key DESC LIMIT 1)",
        post = qualified("s", &ENGAGEMENT_POST_COLUMNS),
        released = engagement_deltas("1", "r", "r"),
    )
});

/// What [`settle_held`] did with held engagements.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Their post arrived: released, and counted if it is live.
    pub released: i64,
    /// Their post arrived from a producer theirs may not act for: deleted.
    pub refused: i64,
    /// No post after the hold: deleted.
    pub dropped: i64,
}

/// Where the next settling pass goes on from. Held engagements are looked at in arrival order,
/// [`SETTLE_BATCH`] a pass, each pass after the last one the previous pass looked at, starting
/// over once a pass reaches the newest. Oldest first every time looked at the same batch over
/// and over while it held engagements whose post had not come (they stay held for the whole
/// hold): a flood of those kept every other held engagement waiting behind it for that long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldCursor(Option<(DateTime<Utc>, String)>);

/// Releases, refuses or drops the held engagements after `cursor` (see [`HeldCursor`] and the
/// module documentation); engagements without a post are kept until `hold_secs` after they
/// arrived. Returns what it did and where the next pass goes on from.
pub async fn settle_held(
    client: &mut Client,
    trust: &[String],
    hold_secs: f64,
    cursor: &HeldCursor,
) -> Result<(Settled, HeldCursor), tokio_postgres::Error> {
    let (after, key) = match &cursor.0 {
        Some((at, key)) => (*at, key.as_str()),
        None => (DateTime::UNIX_EPOCH, ""),
    };
    let tx = client.transaction().await?;
    tx.execute(LOCK_EVERY_POST, &[]).await?;
    let row = tx
        .query_one(SETTLE_HELD.as_str(), &[&trust, &hold_secs, &after, &key])
        .await?;
    tx.commit().await?;
    let looked_at: i64 = row.get(3);
    let next = match (row.get(4), row.get(5)) {
        (Some(at), Some(key)) if looked_at >= SETTLE_BATCH => HeldCursor(Some((at, key))),
        _ => HeldCursor::default(),
    };
    let settled = Settled {
        released: row.get(0),
        refused: row.get(1),
        dropped: row.get(2),
    };
    Ok((settled, next))
}
