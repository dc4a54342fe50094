//! Re-tagging stored posts for a topic's current version ("apply to the last N days"): jobs,
//! and the one statement that moves a chunk of posts into or out of a topic with its rollups.
//!
//! A chunk is one transaction: the job's row is locked (`FOR UPDATE SKIP LOCKED`, so each job
//! is worked by one process at a time and another takes it over when that one stops), the
//! chunk's posts are read, matched by the caller, written, and the job's cursor moved, all
//! committed together. A post gains or loses only this topic (its array is changed in place
//! under its row lock, so jobs of different topics never undo each other), and the rollups of
//! the dimension `topic` change with it through `post_rollup_deltas` and
//! `engagement_rollup_deltas`, the functions the store adds posts with. A post that matches
//! goes where the topic's learned relevance puts it, as analysis puts a new post: into the
//! topic, or into its filtered posts (`filtered_topics`, in none of its rollups); a post that no
//! longer matches leaves either.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::{GenericClient, Row, Transaction};
use utoipa::ToSchema;

use super::rollups::{engagement_deltas, post_deltas, ADD_DELTAS, POST_DELTA_COLUMNS};
use super::table::Table;

/// A re-tagging and how far it got.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetagJob {
    pub id: i64,
    pub topic_id: i64,
    /// The topic's version the posts are matched against.
    pub version: i32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `queued`, `running`, `done`, `cancelled` or `failed`.
    pub status: String,
    /// Posts read so far, of `total` (counted when the job was created).
    pub scanned: i64,
    pub total: Option<i64>,
    /// Posts that match the topic, among those read.
    pub matched: i64,
    /// Posts that came to count in the topic, and that ceased to (a matched post its relevance
    /// filters is neither).
    pub added: i64,
    pub removed: i64,
    /// Why it was cancelled or failed.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    /// Where it stands, newest first: the last post done.
    #[serde(skip)]
    pub cursor: Option<(DateTime<Utc>, String)>,
}

const JOB_COLUMNS: &str = "id, topic_id, version, from_at, to_at, status, scanned, total, \
    matched, added, removed, error, created_at, updated_at, finished_at, created_by, cursor_at, cursor_id";

fn job(r: &Row) -> RetagJob {
    let cursor_at: Option<DateTime<Utc>> = r.get("cursor_at");
    let cursor_id: Option<String> = r.get("cursor_id");
    RetagJob {
        id: r.get("id"),
        topic_id: r.get("topic_id"),
        version: r.get("version"),
        from: r.get("from_at"),
        to: r.get("to_at"),
        status: r.get("status"),
        scanned: r.get("scanned"),
        total: r.get("total"),
        matched: r.get("matched"),
        added: r.get("added"),
        removed: r.get("removed"),
        error: r.get("error"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        finished_at: r.get("finished_at"),
        created_by: r.get("created_by"),
        cursor: cursor_at.zip(cursor_id),
    }
}

const JOBS: Table<RetagJob> = Table {
    name: "topic_retags",
    columns: JOB_COLUMNS,
    read: job,
};

/// Queues a re-tagging of the live topic `topic_id` at its current version over
/// `[from, to)`, cancelling the topic's earlier open ones (this one supersedes them). `None`
/// when there is no such topic.
pub async fn create(
    client: &impl GenericClient,
    topic_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    total: i64,
    by: Option<&str>,
) -> Result<Option<RetagJob>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "WITH t AS (SELECT id, version FROM topics WHERE id = $1 AND deleted_at IS NULL), \
                 old AS (UPDATE topic_retags SET status = 'cancelled', \
                     error = 'superseded by a newer re-tagging', finished_at = now(), updated_at = now() \
                   WHERE topic_id = $1 AND status IN ('queued', 'running') AND EXISTS (SELECT 1 FROM t)) \
                 INSERT INTO topic_retags (topic_id, version, from_at, to_at, total, created_by) \
                 SELECT id, version, $2, $3, $4, $5 FROM t RETURNING {JOB_COLUMNS}"
            ),
            &[&topic_id, &from, &to, &total, &by],
        )
        .await?;
    Ok(row.as_ref().map(job))
}

/// The re-taggings of a topic, newest first (at most 50).
pub async fn of_topic(
    client: &impl GenericClient,
    topic_id: i64,
) -> Result<Vec<RetagJob>, tokio_postgres::Error> {
    JOBS.rows(
        client,
        "WHERE topic_id = $1 ORDER BY id DESC LIMIT 50",
        &[&topic_id],
    )
    .await
}

/// One re-tagging of a topic.
pub async fn get(
    client: &impl GenericClient,
    topic_id: i64,
    id: i64,
) -> Result<Option<RetagJob>, tokio_postgres::Error> {
    JOBS.row(client, "WHERE topic_id = $1 AND id = $2", &[&topic_id, &id])
        .await
}

/// Cancels an open re-tagging; whether one was open. What it changed stays.
pub async fn cancel(
    client: &impl GenericClient,
    topic_id: i64,
    id: i64,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "UPDATE topic_retags SET status = 'cancelled', error = 'cancelled by a user', \
             finished_at = now(), updated_at = now() \
             WHERE topic_id = $1 AND id = $2 AND status IN ('queued', 'running')",
            &[&topic_id, &id],
        )
        .await?
        > 0)
}

/// The oldest open re-tagging no other process is working, locked for this transaction, with
/// its topic's current version and query (`None` for a deleted topic).
pub async fn claim(
    tx: &Transaction<'_>,
) -> Result<Option<(RetagJob, Option<(i32, String)>)>, tokio_postgres::Error> {
    let Some(row) = tx
        .query_opt(
            &format!(
                "SELECT {JOB_COLUMNS} FROM topic_retags WHERE status IN ('queued', 'running') \
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            &[],
        )
        .await?
    else {
        return Ok(None);
    };
    let job = job(&row);
    let topic = tx
        .query_opt(
            "SELECT version, query FROM topics WHERE id = $1 AND deleted_at IS NULL",
            &[&job.topic_id],
        )
        .await?
        .map(|r| (r.get(0), r.get(1)));
    Ok(Some((job, topic)))
}

/// What a chunk changed: posts that came to count in the topic, and that ceased to (a post
/// its relevance filters is matched, but neither).
#[derive(Debug, Default, Clone, Copy)]
pub struct ChunkChanges {
    pub added: i64,
    pub removed: i64,
}

/// The posts of a chunk by what they become; only posts not there already.
pub struct ChunkWrite<'a> {
    pub topic_id: i64,
    pub version: i32,
    /// Posts that match and count in the topic: they gain it, or keep it at this version.
    pub counted: &'a [&'a str],
    /// Posts that match and that the topic's relevance leaves out: they become its filtered
    /// posts.
    pub filtered: &'a [&'a str],
    /// Posts that hold the topic, counted or filtered, and no longer match: they lose it.
    pub unmatched: &'a [&'a str],
    pub high_churn: f32,
}

/// A post's columns as `post_rollup_deltas` reads them, with topic `$1` as its only one, so only
/// that topic's rollups change: what a statement that moves posts into or out of the topic
/// returns of each.
pub(super) fn returned_for_topic() -> String {
    POST_DELTA_COLUMNS
        .iter()
        .map(|c| match *c {
            "topics" => "ARRAY[$1::int8] AS topics".to_string(),
            c => format!("t.{c}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `SET` clauses that take topic `$1` out of the post `t`'s `topics` and `topic_versions`.
pub(super) const DROP_TOPIC: &str = "\
        topics = NULLIF(t.topics[:array_position(t.topics, $1::int8) - 1]
                        || t.topics[array_position(t.topics, $1::int8) + 1:], '{}'),
        topic_versions = NULLIF(t.topic_versions[:array_position(t.topics, $1::int8) - 1]
                        || t.topic_versions[array_position(t.topics, $1::int8) + 1:], '{}')";

/// The newest relevance label of post `t` for topic `$1` that is not undone (`''` with none).
/// A move into the topic requires it not to say `unrelated`, a move out of it not `related`:
/// a move decided before a label was given never goes against the label.
const LABEL_OF_T: &str = "COALESCE((SELECT l.value FROM post_labels l \
    WHERE l.post_id = t.id AND l.topic_id = $1::int8 AND l.undone_at IS NULL \
    ORDER BY l.id DESC LIMIT 1), '')";

/// The common table expression `filtered`: the posts of `ids` (a `text[]` parameter) that count
/// in topic `$1` move to its filtered posts.
pub(super) fn filtered_cte(ids: &str) -> String {
    format!(
        "filtered AS (
    UPDATE posts AS t SET {DROP_TOPIC},
        filtered_topics = COALESCE(t.filtered_topics, '{{}}') || $1::int8
    WHERE t.id = ANY({ids}::text[]) AND t.deleted_at IS NULL AND t.topics @> ARRAY[$1::int8]
      AND {LABEL_OF_T} <> 'related'
    RETURNING t.id, {returned}
)",
        returned = returned_for_topic(),
    )
}

/// The common table expression `restored`: the filtered posts of `ids` (a `text[]` parameter)
/// move back into topic `$1` at version `$2`.
pub(super) fn restored_cte(ids: &str) -> String {
    format!(
        "restored AS (
    UPDATE posts AS t SET
        topics = COALESCE(t.topics, '{{}}') || $1::int8,
        topic_versions = COALESCE(t.topic_versions, '{{}}') || $2::int4,
        filtered_topics = NULLIF(array_remove(t.filtered_topics, $1::int8), '{{}}')
    WHERE t.id = ANY({ids}::text[]) AND t.deleted_at IS NULL
      AND t.filtered_topics @> ARRAY[$1::int8]
      AND NOT COALESCE(t.topics @> ARRAY[$1::int8], false)
      AND {LABEL_OF_T} <> 'unrelated'
    RETURNING t.id, {returned}
)",
        returned = returned_for_topic(),
    )
}

/// The `deltas` of the dimension `topic` for the posts of the relation `gained` (added, with
/// their engagements) and of `lost` (taken away), and their upsert into the rollups (`r`), as
/// common table expressions; `$5` is the high-churn threshold.
pub(super) fn topic_deltas(gained: &str, lost: &str) -> String {
    format!(
        "deltas AS (
    SELECT d.* FROM (
        SELECT d.* FROM {gained} CROSS JOIN LATERAL {add_posts} d
        UNION ALL
        SELECT d.* FROM {lost} CROSS JOIN LATERAL {remove_posts} d
        UNION ALL
        SELECT d.* FROM {gained} JOIN engagements x ON x.post_id = {gained}.id AND NOT x.held
        CROSS JOIN LATERAL {add_engagements} d
        UNION ALL
        SELECT d.* FROM {lost} JOIN engagements x ON x.post_id = {lost}.id AND NOT x.held
        CROSS JOIN LATERAL {remove_engagements} d
    ) d WHERE d.dimension = 'topic'
), r AS ({ADD_DELTAS}
)",
        add_posts = post_deltas("1", gained, "$5::float4"),
        remove_posts = post_deltas("-1", lost, "$5::float4"),
        add_engagements = engagement_deltas("1", "x", gained),
        remove_engagements = engagement_deltas("-1", "x", lost),
    )
}

/// A chunk's writes: `$3` the posts that count (`added` from outside the topic, `kept` at
/// another version, `restored` from its filtered posts), `$6` those it filters (`filtered` out
/// of the topic, `held_out` from outside it), `$4` those that no longer match (`removed` from
/// the topic, `forgotten` from its filtered posts). Each case reads the post as it is, so a post
/// is written by one of them at most.
static WRITE_CHUNK: LazyLock<String> = LazyLock::new(|| {
    let returned = returned_for_topic();
    format!(
        "WITH added AS (
    UPDATE posts AS t SET topics = COALESCE(t.topics, '{{}}') || $1::int8,
                          topic_versions = COALESCE(t.topic_versions, '{{}}') || $2::int4
    WHERE t.id = ANY($3::text[]) AND t.deleted_at IS NULL
      AND NOT COALESCE(t.topics @> ARRAY[$1::int8], false)
      AND NOT COALESCE(t.filtered_topics @> ARRAY[$1::int8], false)
      AND {LABEL_OF_T} <> 'unrelated'
    RETURNING t.id, {returned}
), kept AS (
    UPDATE posts AS t SET topic_versions[array_position(t.topics, $1::int8)] = $2::int4
    WHERE t.id = ANY($3::text[]) AND t.topics @> ARRAY[$1::int8]
      AND t.topic_versions[array_position(t.topics, $1::int8)] IS DISTINCT FROM $2::int4
    RETURNING t.id
), {restored}, {filtered}, held_out AS (
    UPDATE posts AS t SET filtered_topics = COALESCE(t.filtered_topics, '{{}}') || $1::int8
    WHERE t.id = ANY($6::text[]) AND t.deleted_at IS NULL
      AND NOT COALESCE(t.topics @> ARRAY[$1::int8], false)
      AND NOT COALESCE(t.filtered_topics @> ARRAY[$1::int8], false)
      AND {LABEL_OF_T} <> 'related'
    RETURNING t.id
), removed AS (
    UPDATE posts AS t SET {DROP_TOPIC}
    WHERE t.id = ANY($4::text[]) AND t.deleted_at IS NULL AND t.topics @> ARRAY[$1::int8]
    RETURNING t.id, {returned}
), forgotten AS (
    UPDATE posts AS t SET filtered_topics = NULLIF(array_remove(t.filtered_topics, $1::int8), '{{}}')
    WHERE t.id = ANY($4::text[]) AND t.deleted_at IS NULL
      AND t.filtered_topics @> ARRAY[$1::int8]
      AND NOT COALESCE(t.topics @> ARRAY[$1::int8], false)
    RETURNING t.id
), gained AS (
    SELECT * FROM added UNION ALL SELECT * FROM restored
), lost AS (
    SELECT * FROM removed UNION ALL SELECT * FROM filtered
), {deltas}
SELECT (SELECT count(*) FROM gained)::int8, (SELECT count(*) FROM lost)::int8",
        restored = restored_cte("$3"),
        filtered = filtered_cte("$6"),
        deltas = topic_deltas("gained", "lost"),
    )
});

/// Locks, in the order of their ids as labelling locks posts ([`super::labels::lock`]), the
/// posts of a chunk that move between topic `$1` and its filtered posts (`$2` those that count,
/// `$3` those it filters): the only ones a label given meanwhile may be about, since a label is
/// for a post the topic matched. The chunk's statement after it sees those labels.
const LOCK_CROSSING: &str = "SELECT 1 FROM posts \
    WHERE (id = ANY($2::text[]) AND filtered_topics @> ARRAY[$1::int8]) \
       OR (id = ANY($3::text[]) AND topics @> ARRAY[$1::int8]) \
    ORDER BY id FOR UPDATE";

/// Writes a chunk's changes and their rollups.
pub async fn write_chunk(
    tx: &Transaction<'_>,
    chunk: &ChunkWrite<'_>,
) -> Result<ChunkChanges, tokio_postgres::Error> {
    if chunk.counted.is_empty() && chunk.filtered.is_empty() && chunk.unmatched.is_empty() {
        return Ok(ChunkChanges::default());
    }
    tx.execute(
        LOCK_CROSSING,
        &[&chunk.topic_id, &chunk.counted, &chunk.filtered],
    )
    .await?;
    let row = tx
        .query_one(
            WRITE_CHUNK.as_str(),
            &[
                &chunk.topic_id,
                &chunk.version,
                &chunk.counted,
                &chunk.unmatched,
                &chunk.high_churn,
                &chunk.filtered,
            ],
        )
        .await?;
    Ok(ChunkChanges {
        added: row.get(0),
        removed: row.get(1),
    })
}

/// Records a chunk's progress: the cursor after it, what it read and changed, and whether the
/// job is done.
pub struct Progress<'a> {
    pub cursor: Option<(DateTime<Utc>, &'a str)>,
    pub scanned: i64,
    pub matched: i64,
    pub changes: ChunkChanges,
    pub done: bool,
}

pub async fn advance(
    tx: &Transaction<'_>,
    id: i64,
    progress: &Progress<'_>,
) -> Result<(), tokio_postgres::Error> {
    let (at, cursor_id) = match progress.cursor {
        Some((at, cursor_id)) => (Some(at), Some(cursor_id)),
        None => (None, None),
    };
    tx.execute(
        "UPDATE topic_retags SET status = CASE WHEN $7 THEN 'done' ELSE 'running' END, \
         cursor_at = COALESCE($2, cursor_at), cursor_id = COALESCE($3, cursor_id), \
         scanned = scanned + $4, matched = matched + $5, added = added + $6, removed = removed + $8, \
         failures = 0, updated_at = now(), finished_at = CASE WHEN $7 THEN now() END \
         WHERE id = $1",
        &[
            &id,
            &at,
            &cursor_id,
            &progress.scanned,
            &progress.matched,
            &progress.changes.added,
            &progress.done,
            &progress.changes.removed,
        ],
    )
    .await?;
    Ok(())
}

/// Chunks a job may fail in a row before it is `failed`.
pub const MAX_FAILURES: i32 = 5;

/// Records that a chunk of job `id` failed with `error` (outside its rolled-back transaction);
/// the job is `failed` after [`MAX_FAILURES`] in a row.
pub async fn record_failure(
    client: &impl GenericClient,
    id: i64,
    error: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE topic_retags SET failures = failures + 1, error = $2, updated_at = now(), \
             status = CASE WHEN failures + 1 >= $3 THEN 'failed' ELSE status END, \
             finished_at = CASE WHEN failures + 1 >= $3 THEN now() END \
             WHERE id = $1 AND status IN ('queued', 'running')",
            &[&id, &error, &MAX_FAILURES],
        )
        .await?;
    Ok(())
}

/// Ends a job that cannot go on (its topic was deleted or edited since), with the reason.
pub async fn stop(
    tx: &Transaction<'_>,
    id: i64,
    status: &str,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE topic_retags SET status = $2, error = $3, finished_at = now(), updated_at = now() \
         WHERE id = $1",
        &[&id, &status, &reason],
    )
    .await?;
    Ok(())
}
