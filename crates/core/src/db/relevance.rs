//! Each topic's learned relevance as stored: its models (adopted or not), its state (the adopted
//! model, the threshold, the newest label trained on, how far re-scoring got), and the one
//! statement that moves posts between a topic and its filtered posts with their rollups.
//!
//! A filtered post keeps the topic in `filtered_topics` and counts in none of the topic's
//! rollups: the move takes the topic out of (or puts it back into) the post's `topics`, and the
//! rollups of the dimension `topic` change with it as a re-tagging changes them (the pieces of
//! its statement, `db::retags`), so a move is exact whatever moved before.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::{GenericClient, Transaction};
use utoipa::ToSchema;

use super::retags::{filtered_cte, restored_cte, topic_deltas};
use crate::topics::relevance::TEXT_BYTES;

static MOVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {filtered}, {restored}, {deltas}
SELECT (SELECT count(*) FROM filtered)::int8, (SELECT count(*) FROM restored)::int8",
        filtered = filtered_cte("$3"),
        restored = restored_cte("$4"),
        deltas = topic_deltas("restored", "filtered"),
    )
});

/// Moves the posts `filter` out of topic `topic_id` into its filtered posts, and the posts
/// `restore` back (at the topic's `version`), with the topic's rollups; how many of each moved.
/// A post already where it is asked to go is left alone, and so is one whose own relevance
/// label says otherwise: the posts are locked first, as labelling locks them, so a label given
/// after the move was decided, and before it is written, is seen and wins.
pub async fn move_posts(
    tx: &Transaction<'_>,
    topic_id: i64,
    version: i32,
    filter: &[&str],
    restore: &[&str],
    high_churn: f32,
) -> Result<(i64, i64), tokio_postgres::Error> {
    if filter.is_empty() && restore.is_empty() {
        return Ok((0, 0));
    }
    super::labels::lock(tx, &[filter, restore].concat()).await?;
    let row = tx
        .query_one(
            MOVE.as_str(),
            &[&topic_id, &version, &filter, &restore, &high_churn],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// A stored model.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelRecord {
    pub id: i64,
    pub topic_id: i64,
    /// Labels it was trained on, and how many of them said related.
    pub labels: i32,
    pub related: i32,
    /// The newest label it saw.
    pub through_label: i64,
    /// Out-of-fold accuracy of its training, and of the model it was measured against on the
    /// same folds (the adopted one's training, or the query alone).
    pub accuracy: f32,
    pub incumbent: f32,
    pub adopted: bool,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

const MODEL_COLUMNS: &str = "id, topic_id, labels, related, through_label, accuracy, incumbent, \
    adopted, reason, created_at";

fn model_record(r: &tokio_postgres::Row) -> ModelRecord {
    ModelRecord {
        id: r.get("id"),
        topic_id: r.get("topic_id"),
        labels: r.get("labels"),
        related: r.get("related"),
        through_label: r.get("through_label"),
        accuracy: r.get("accuracy"),
        incumbent: r.get("incumbent"),
        adopted: r.get("adopted"),
        reason: r.get("reason"),
        created_at: r.get("created_at"),
    }
}

/// A topic's relevance state.
#[derive(Debug, Clone, Default)]
pub struct TopicState {
    pub model_id: Option<i64>,
    pub threshold: f32,
    pub trained_through: i64,
    /// The adopted model's newest label.
    pub adopted_through: Option<i64>,
}

/// The state of topic `topic_id` (defaults when it has none yet).
pub async fn state(
    client: &impl GenericClient,
    topic_id: i64,
) -> Result<TopicState, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT r.model_id, r.threshold, r.trained_through, m.through_label \
             FROM topic_relevance r LEFT JOIN relevance_models m ON m.id = r.model_id \
             WHERE r.topic_id = $1",
            &[&topic_id],
        )
        .await?;
    Ok(row.map_or(
        TopicState {
            threshold: DEFAULT_THRESHOLD,
            ..TopicState::default()
        },
        |r| TopicState {
            model_id: r.get(0),
            threshold: r.get(1),
            trained_through: r.get(2),
            adopted_through: r.get(3),
        },
    ))
}

/// The threshold of a topic that has not set one.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// Sets topic `topic_id`'s threshold; whether it changed. A change moves the topics' revision,
/// so every process reloads it, and, under an adopted model, begins the re-scoring of the
/// topic's stored posts again. The threshold the topic has already changes nothing: sent again
/// and again, it restarted the re-scoring of every stored post each time.
pub async fn set_threshold(
    tx: &Transaction<'_>,
    topic_id: i64,
    threshold: f32,
) -> Result<bool, tokio_postgres::Error> {
    // Without a model nothing is filtered but by the posts' own labels, which a re-scoring
    // leaves alone: it would read every stored post for nothing.
    let changed = tx
        .query_opt(
            "INSERT INTO topic_relevance (topic_id, threshold) VALUES ($1, $2) \
             ON CONFLICT (topic_id) DO UPDATE SET threshold = $2, updated_at = now(), \
                 rescore_done = topic_relevance.rescore_done AND topic_relevance.model_id IS NULL, \
                 rescore_at = CASE WHEN topic_relevance.model_id IS NULL \
                                   THEN topic_relevance.rescore_at END, \
                 rescore_id = CASE WHEN topic_relevance.model_id IS NULL \
                                   THEN topic_relevance.rescore_id END, \
                 rescore_since = CASE WHEN topic_relevance.model_id IS NULL \
                                      THEN topic_relevance.rescore_since ELSE now() END, \
                 rescore_last = topic_relevance.rescore_last AND topic_relevance.model_id IS NULL \
             WHERE topic_relevance.threshold <> $2 \
             RETURNING true",
            &[&topic_id, &threshold],
        )
        .await?
        .is_some();
    if changed {
        super::topics::note_change(tx).await?;
    }
    Ok(changed)
}

/// Counts a relevance label given or undone for `topic_id`, so the learner trains the topic
/// again.
pub async fn count_change(
    tx: &Transaction<'_>,
    topic_id: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO topic_relevance (topic_id, changes) VALUES ($1, 1) \
         ON CONFLICT (topic_id) DO UPDATE SET changes = topic_relevance.changes + 1",
        &[&topic_id],
    )
    .await?;
    Ok(())
}

/// The next topic whose labels changed since it was trained, and that was not trained in the
/// last `gap`, held by this transaction (an advisory lock, so labelling the topic meanwhile
/// never waits on the training): its id, its count of label changes and its newest label. The
/// gap is what a burst of labels costs: one round for the first, one more for all the others.
///
/// The lock is tried on the waiting topics in order, outside the sorted subquery, and stops at
/// the first taken: tried beside the sort, it would be taken on every waiting topic, and the
/// other processes would skip them all for as long as this one trains.
pub async fn claim_training(
    tx: &Transaction<'_>,
    gap: std::time::Duration,
) -> Result<Option<(i64, i64, i64)>, tokio_postgres::Error> {
    let gap_ms = gap.as_millis().min(i64::MAX as u128) as f64;
    let row = tx
        .query_opt(
            "SELECT w.topic_id, w.changes, \
                    COALESCE((SELECT max(l.id) FROM post_labels l WHERE l.topic_id = w.topic_id), 0) \
             FROM (SELECT r.topic_id, r.changes FROM topic_relevance r \
                   JOIN topics t ON t.id = r.topic_id AND t.deleted_at IS NULL \
                   WHERE r.changes > r.trained_changes \
                     AND (r.trained_at IS NULL \
                          OR now() >= r.trained_at + $1::float8 * interval '1 millisecond') \
                   ORDER BY r.updated_at) w \
             WHERE pg_try_advisory_xact_lock(hashtextextended('pulse.relevance.train:' || w.topic_id, 0)) \
             LIMIT 1",
            &[&gap_ms],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Puts topic `topic_id` behind the other topics waiting to be trained.
pub async fn postpone_training(
    client: &impl GenericClient,
    topic_id: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE topic_relevance SET updated_at = now() WHERE topic_id = $1",
            &[&topic_id],
        )
        .await?;
    Ok(())
}

/// The labels of topic `$1` that count, as `l`: the latest relevance label (not undone) of each
/// live post, its post's id, its id and its value. The trainer learns from them and the topic's
/// page counts them: counted apart, a deleted post's label let the page say a model had enough
/// labels while the trainer found too few.
const LIVE_LABELS: &str = "SELECT l.post_id, l.id, l.value \
    FROM (SELECT DISTINCT ON (post_id) post_id, id, value FROM post_labels \
          WHERE topic_id = $1 AND undone_at IS NULL ORDER BY post_id, id DESC) l \
    JOIN posts p ON p.id = l.post_id AND p.deleted_at IS NULL";

/// A topic's labelled posts as the trainer reads them: the newest undone-free relevance label
/// of each live post, with the opening of the post's text (what the model reads of it,
/// [`TEXT_BYTES`]), author and language.
pub struct LabelledPost {
    pub post_id: String,
    pub label_id: i64,
    pub related: bool,
    pub text: String,
    pub author: String,
    pub lang: Option<String>,
}

/// The `limit` labelled posts of topic `topic_id` with the newest labels, oldest label first.
pub async fn labelled_posts(
    client: &impl GenericClient,
    topic_id: i64,
    limit: i64,
) -> Result<Vec<LabelledPost>, tokio_postgres::Error> {
    // The newest are chosen before the texts are read, so a topic's older labelled posts cost
    // their label rows and no more. A character is one byte or more: the first TEXT_BYTES
    // characters hold every byte the model reads.
    super::read_rows(
        client,
        &format!(
            "SELECT l.post_id, l.id, l.value = 'related', left(p.text, $3), p.author_id, \
                    p.lang \
             FROM ({LIVE_LABELS} ORDER BY l.id DESC LIMIT $2) l \
             JOIN posts p ON p.id = l.post_id \
             ORDER BY l.id"
        ),
        &[&topic_id, &limit, &TEXT_CHARS],
        |r| LabelledPost {
            post_id: r.get(0),
            label_id: r.get(1),
            related: r.get(2),
            text: r.get(3),
            author: r.get(4),
            lang: r.get(5),
        },
    )
    .await
}

/// Characters of a post's text read for its features: as many as the bytes the model reads.
const TEXT_CHARS: i32 = TEXT_BYTES as i32;

/// What a training round produced.
pub struct Trained<'a> {
    pub topic_id: i64,
    /// The topic's count of label changes the training saw.
    pub changes: i64,
    pub labels: i32,
    pub related: i32,
    pub through_label: i64,
    pub accuracy: f32,
    pub incumbent: f32,
    pub adopted: bool,
    pub reason: &'a str,
    /// The model's bias and weights; `None` when nothing was trained (too few labels).
    pub weights: Option<(f32, Vec<u8>)>,
}

/// Models kept of each topic: the newest, as many as its relevance lists, and the adopted one
/// however old.
pub const KEPT_MODELS: i64 = 20;

/// Records a training round in `tx` and marks the topic trained through its newest label; an
/// adopted model becomes the topic's, its stored posts are re-scored from the newest, and the
/// topics' revision moves so every process loads it. The topic's models past the newest
/// [`KEPT_MODELS`], other than the adopted one, are deleted: each label given or undone can be
/// followed by a training, each with its weights.
pub async fn record(tx: &Transaction<'_>, t: &Trained<'_>) -> Result<(), tokio_postgres::Error> {
    let model_id: Option<i64> = match &t.weights {
        Some((bias, weights)) => Some(
            tx.query_one(
                "INSERT INTO relevance_models (topic_id, labels, related, through_label, \
                 accuracy, incumbent, adopted, reason, bias, weights) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    &t.topic_id,
                    &t.labels,
                    &t.related,
                    &t.through_label,
                    &t.accuracy,
                    &t.incumbent,
                    &t.adopted,
                    &t.reason,
                    bias,
                    weights,
                ],
            )
            .await?
            .get(0),
        ),
        None => None,
    };
    if t.adopted {
        tx.execute(
            "UPDATE topic_relevance SET model_id = $2, trained_through = $3, trained_changes = $4, \
             trained_at = now(), updated_at = now(), rescore_done = false, rescore_at = NULL, rescore_id = NULL, \
             rescore_since = now(), rescore_last = false \
             WHERE topic_id = $1",
            &[&t.topic_id, &model_id, &t.through_label, &t.changes],
        )
        .await?;
        super::topics::note_change(tx).await?;
    } else {
        tx.execute(
            "UPDATE topic_relevance SET trained_through = $2, trained_changes = $3, \
             trained_at = now(), updated_at = now() WHERE topic_id = $1",
            &[&t.topic_id, &t.through_label, &t.changes],
        )
        .await?;
    }
    if model_id.is_some() {
        tx.execute(
            "DELETE FROM relevance_models m WHERE m.topic_id = $1 \
               AND m.id < (SELECT min(k.id) FROM (SELECT id FROM relevance_models \
                           WHERE topic_id = $1 ORDER BY id DESC LIMIT $2) k) \
               AND NOT EXISTS (SELECT 1 FROM topic_relevance r WHERE r.model_id = m.id)",
            &[&t.topic_id, &KEPT_MODELS],
        )
        .await?;
    }
    Ok(())
}

/// A topic's models, newest first (at most [`KEPT_MODELS`]).
pub async fn models(
    client: &impl GenericClient,
    topic_id: i64,
) -> Result<Vec<ModelRecord>, tokio_postgres::Error> {
    super::read_rows(
        client,
        &format!(
            "SELECT {MODEL_COLUMNS} FROM relevance_models WHERE topic_id = $1 \
             ORDER BY id DESC LIMIT $2"
        ),
        &[&topic_id, &KEPT_MODELS],
        model_record,
    )
    .await
}

/// The adopted model and threshold of every live topic that has one: topic, model id,
/// threshold. No weights: a process reads those only of the models it does not hold
/// ([`weights_of`]).
pub async fn adopted(
    client: &impl GenericClient,
) -> Result<Vec<(i64, i64, f32)>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT r.topic_id, r.model_id, r.threshold FROM topic_relevance r \
         JOIN topics t ON t.id = r.topic_id AND t.deleted_at IS NULL \
         WHERE r.model_id IS NOT NULL",
        &[],
        |r| (r.get(0), r.get(1), r.get(2)),
    )
    .await
}

/// The bias and weights of the models `ids`: id, bias, weights.
pub async fn weights_of(
    client: &impl GenericClient,
    ids: &[i64],
) -> Result<Vec<(i64, f32, Vec<u8>)>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT id, bias, weights FROM relevance_models WHERE id = ANY($1)",
        &[&ids],
        |r| (r.get(0), r.get(1), r.get(2)),
    )
    .await
}

/// A chunk of a topic's stored posts to re-score, held by this transaction (an advisory lock):
/// the next topic whose re-scoring is not done, its current version, and up to `limit` of its
/// posts (matched or filtered, newest first after its cursor) with no relevance label of their
/// own.
///
/// A re-scoring makes two passes. The first reads every stored post; the processes go on
/// matching with what they held until each loads the change (`topics.refresh_ms`), so posts
/// stored meanwhile may be newer than where it began and are never reached. The last pass reads
/// again the posts stored since the re-scoring began, once `settle` has passed since then, and
/// those stored up to `settle` before it too: a batch's transaction may have begun before and
/// committed after the first pass read its posts.
pub struct RescoreChunk {
    pub topic_id: i64,
    pub version: i32,
    pub posts: Vec<RescorePost>,
}

pub struct RescorePost {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// The opening of its text, as [`labelled_posts`] reads it.
    pub text: String,
    pub author: String,
    pub lang: Option<String>,
    /// Whether it counts in the topic now.
    pub kept: bool,
}

/// The posts of a re-scoring chunk: of topic `$1`, after the cursor `($2, $3)` (none: from
/// the newest), `$4` at most, `$5` characters of each text, those stored since `$6` (none:
/// all). The cursor is compared as it is, never beside "or no cursor": a plan made for any
/// cursor (a generic plan, as a cached statement gets) then read the posts from the newest on
/// at each chunk, every one before the cursor again, instead of going down the index from it.
pub const RESCORE_POSTS: &str = "SELECT p.id, p.created_at, left(p.text, $5), p.author_id, \
        p.lang, COALESCE(p.topics @> ARRAY[$1::int8], false) \
    FROM posts p \
    WHERE (p.topics @> ARRAY[$1::int8] OR p.filtered_topics @> ARRAY[$1::int8]) \
      AND p.deleted_at IS NULL \
      AND (p.created_at, p.id) < (COALESCE($2::timestamptz, 'infinity'), COALESCE($3::text, '')) \
      AND ($6::timestamptz IS NULL OR p.ingested_at >= $6) \
      AND NOT EXISTS (SELECT 1 FROM post_labels l WHERE l.post_id = p.id \
                      AND l.topic_id = $1 AND l.undone_at IS NULL) \
    ORDER BY p.created_at DESC, p.id DESC LIMIT $4";

pub async fn claim_rescore(
    tx: &Transaction<'_>,
    limit: i64,
    settle: std::time::Duration,
) -> Result<Option<RescoreChunk>, tokio_postgres::Error> {
    // The lock is tried outside the sorted subquery, as `claim_training` tries its own: beside
    // the sort it would be taken on every topic waiting.
    let settle_ms = settle.as_millis().min(i64::MAX as u128) as i64;
    let Some(row) = tx
        .query_opt(
            "SELECT w.topic_id, w.version, w.rescore_at, w.rescore_id, w.since \
             FROM (SELECT r.topic_id, t.version, r.rescore_at, r.rescore_id, \
                          CASE WHEN r.rescore_last \
                               THEN r.rescore_since - $1::float8 * interval '1 millisecond' \
                          END AS since \
                   FROM topic_relevance r \
                   JOIN topics t ON t.id = r.topic_id AND t.deleted_at IS NULL \
                   WHERE NOT r.rescore_done \
                     AND (NOT r.rescore_last \
                          OR now() >= r.rescore_since + $1::float8 * interval '1 millisecond') \
                   ORDER BY r.updated_at) w \
             WHERE pg_try_advisory_xact_lock(hashtextextended('pulse.relevance.rescore:' || w.topic_id, 0)) \
             LIMIT 1",
            &[&(settle_ms as f64)],
        )
        .await?
    else {
        return Ok(None);
    };
    let (topic_id, version): (i64, i32) = (row.get(0), row.get(1));
    let at: Option<DateTime<Utc>> = row.get(2);
    let id: Option<String> = row.get(3);
    let since: Option<DateTime<Utc>> = row.get(4);
    let rows = tx
        .query(
            RESCORE_POSTS,
            &[&topic_id, &at, &id, &limit, &TEXT_CHARS, &since],
        )
        .await?;
    Ok(Some(RescoreChunk {
        topic_id,
        version,
        posts: rows
            .iter()
            .map(|r| RescorePost {
                id: r.get(0),
                created_at: r.get(1),
                text: r.get(2),
                author: r.get(3),
                lang: r.get(4),
                kept: r.get(5),
            })
            .collect(),
    }))
}

/// Moves a topic's re-scoring cursor past `last`; at the end of a pass (`done`: the chunk was
/// short) the first pass gives way to the last, from the newest post again, and the last ends
/// the re-scoring.
pub async fn advance_rescore(
    tx: &Transaction<'_>,
    topic_id: i64,
    last: Option<(DateTime<Utc>, &str)>,
    done: bool,
) -> Result<(), tokio_postgres::Error> {
    let (at, id) = last.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    tx.execute(
        "UPDATE topic_relevance SET \
         rescore_at = CASE WHEN $4 THEN NULL ELSE COALESCE($2, rescore_at) END, \
         rescore_id = CASE WHEN $4 THEN NULL ELSE COALESCE($3, rescore_id) END, \
         rescore_done = $4 AND rescore_last, rescore_last = rescore_last OR $4, \
         updated_at = now() \
         WHERE topic_id = $1",
        &[&topic_id, &at, &id, &done],
    )
    .await?;
    Ok(())
}

/// A topic's live posts with a relevance label that counts (`LIVE_LABELS`), related and
/// unrelated, and its posts counted and filtered.
pub async fn counts(
    client: &impl GenericClient,
    topic_id: i64,
) -> Result<(i64, i64, i64, i64), tokio_postgres::Error> {
    let r = client
        .query_one(
            &format!(
                "WITH l AS ({LIVE_LABELS}) \
                 SELECT (SELECT count(*) FROM l WHERE value = 'related'), \
                        (SELECT count(*) FROM l WHERE value = 'unrelated'), \
                        (SELECT count(*) FROM posts WHERE topics @> ARRAY[$1::int8] \
                         AND deleted_at IS NULL), \
                        (SELECT count(*) FROM posts WHERE filtered_topics @> ARRAY[$1::int8] \
                         AND deleted_at IS NULL)"
            ),
            &[&topic_id],
        )
        .await?;
    Ok((r.get(0), r.get(1), r.get(2), r.get(3)))
}

/// The adopted model of topic `topic_id`: its id, the threshold, bias and weights.
pub async fn adopted_of(
    client: &impl GenericClient,
    topic_id: i64,
) -> Result<Option<(i64, f32, f32, Vec<u8>)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT m.id, r.threshold, m.bias, m.weights FROM topic_relevance r \
             JOIN relevance_models m ON m.id = r.model_id WHERE r.topic_id = $1",
            &[&topic_id],
        )
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
}
