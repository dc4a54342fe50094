//! People's labels on posts (docs/review.md): kept with who gave them and when, never changed,
//! undone by marking them so; the newest label of a kind (for relevance, of a topic) that is
//! not undone is the one that counts.

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row, Transaction};

use super::table::Table;
use crate::models::label::{Label, LabelKind};

const COLUMNS: &str =
    "id, post_id, topic_id, kind, value, reviewer, created_at, undone_at, undone_by";

fn label(r: &Row) -> Label {
    Label {
        id: r.get("id"),
        post_id: r.get("post_id"),
        topic_id: r.get("topic_id"),
        kind: LabelKind::parse(r.get("kind")).unwrap_or(LabelKind::Note),
        value: r.get("value"),
        reviewer: r.get("reviewer"),
        created_at: r.get("created_at"),
        undone_at: r.get("undone_at"),
        undone_by: r.get("undone_by"),
    }
}

const LABELS: Table<Label> = Table {
    name: "post_labels",
    columns: COLUMNS,
    read: label,
};

/// The live post a label is for, locked until the transaction ends so labels of one post are
/// applied one after another.
pub struct Target {
    pub topics: Vec<i64>,
    pub filtered: Vec<i64>,
    pub text: String,
    pub author: String,
    pub lang: Option<String>,
}

impl Target {
    /// Whether the topic's query matched the post (it counts in the topic, or is filtered).
    pub fn matched(&self, topic: i64) -> bool {
        self.topics.contains(&topic) || self.filtered.contains(&topic)
    }
}

pub async fn target(
    tx: &Transaction<'_>,
    post_id: &str,
) -> Result<Option<Target>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT COALESCE(topics, '{}'), COALESCE(filtered_topics, '{}'), text, author_id, lang \
             FROM posts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
            &[&post_id],
        )
        .await?
        .map(|r| Target {
            topics: r.get(0),
            filtered: r.get(1),
            text: r.get(2),
            author: r.get(3),
            lang: r.get(4),
        }))
}

/// Locks the posts `ids` until the transaction ends, in the order of their ids, as labelling
/// locks its post ([`target`]). A statement that moves them after it sees every label given
/// before: one that waited on a labelling's lock without it would go on with what it read
/// before that label.
pub async fn lock(tx: &Transaction<'_>, ids: &[&str]) -> Result<(), tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT 1 FROM posts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// Labels on a post, undone ones included: all of them, and those `reviewer` gave.
pub async fn count_on_post(
    tx: &Transaction<'_>,
    post_id: &str,
    reviewer: &str,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE reviewer = $2) FROM post_labels \
             WHERE post_id = $1",
            &[&post_id, &reviewer],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// A label to store.
pub struct NewLabel<'a> {
    pub post_id: &'a str,
    pub topic_id: Option<i64>,
    pub kind: LabelKind,
    pub value: &'a str,
    pub reviewer: &'a str,
}

pub async fn insert(
    tx: &Transaction<'_>,
    new: &NewLabel<'_>,
) -> Result<Label, tokio_postgres::Error> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO post_labels (post_id, topic_id, kind, value, reviewer) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
            ),
            &[
                &new.post_id,
                &new.topic_id,
                &new.kind.as_str(),
                &new.value,
                &new.reviewer,
            ],
        )
        .await?;
    Ok(label(&row))
}

pub async fn get(
    client: &impl GenericClient,
    id: i64,
) -> Result<Option<Label>, tokio_postgres::Error> {
    LABELS.row(client, "WHERE id = $1", &[&id]).await
}

/// Marks label `id` undone by `by`; `None` when it does not exist or is undone already.
pub async fn undo(
    tx: &Transaction<'_>,
    id: i64,
    by: &str,
) -> Result<Option<Label>, tokio_postgres::Error> {
    super::read_opt(
        tx,
        &format!(
            "UPDATE post_labels SET undone_at = now(), undone_by = $2 \
             WHERE id = $1 AND undone_at IS NULL RETURNING {COLUMNS}"
        ),
        &[&id, &by],
        label,
    )
    .await
}

/// The newest relevance label of `post_id` for `topic_id` that is not undone: whether it says
/// related.
pub async fn relevance_of(
    tx: &Transaction<'_>,
    post_id: &str,
    topic_id: i64,
) -> Result<Option<bool>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT value = 'related' FROM post_labels \
             WHERE post_id = $1 AND topic_id = $2 AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
            &[&post_id, &topic_id],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The posts among `ids` with a relevance label for `topic_id` that counts (the newest not
/// undone): each id and whether its label says related.
pub async fn relevance_of_posts(
    client: &impl GenericClient,
    topic_id: i64,
    ids: &[&str],
) -> Result<Vec<(String, bool)>, tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    super::read_rows(
        client,
        "SELECT DISTINCT ON (post_id) post_id, value = 'related' FROM post_labels \
         WHERE post_id = ANY($2::text[]) AND topic_id = $1 AND undone_at IS NULL \
         ORDER BY post_id, id DESC",
        &[&topic_id, &ids],
        |r| (r.get(0), r.get(1)),
    )
    .await
}

/// Which labels a listing returns.
#[derive(Debug, Default)]
pub struct Query<'a> {
    pub post_id: Option<&'a str>,
    pub topic_id: Option<i64>,
    pub reviewer: Option<&'a str>,
    pub kind: Option<LabelKind>,
    pub since: Option<DateTime<Utc>>,
    /// Undone labels too.
    pub undone: bool,
    /// Labels after this id (the previous page's last).
    pub after: i64,
    pub limit: i64,
}

/// Labels in the order they were given; none of a post deleted since (a note may quote it).
pub async fn list(
    client: &impl GenericClient,
    q: &Query<'_>,
) -> Result<Vec<Label>, tokio_postgres::Error> {
    let kind = q.kind.map(LabelKind::as_str);
    LABELS
        .rows(
            client,
            "WHERE id > $1 AND ($2::text IS NULL OR post_id = $2) \
               AND ($3::int8 IS NULL OR topic_id = $3) AND ($4::text IS NULL OR reviewer = $4) \
               AND ($5::text IS NULL OR kind = $5) AND ($6::timestamptz IS NULL OR created_at >= $6) \
               AND ($7 OR undone_at IS NULL) \
               AND NOT EXISTS (SELECT 1 FROM posts p \
                   WHERE p.id = post_labels.post_id AND p.deleted_at IS NOT NULL) \
             ORDER BY id LIMIT $8",
            &[
                &q.after,
                &q.post_id,
                &q.topic_id,
                &q.reviewer,
                &kind,
                &q.since,
                &q.undone,
                &q.limit,
            ],
        )
        .await
}

/// The labels of each of `posts` that count (not undone, the newest of each kind and topic),
/// by post.
pub async fn current_of(
    client: &impl GenericClient,
    posts: &[&str],
) -> Result<Vec<Label>, tokio_postgres::Error> {
    super::read_rows(
        client,
        &format!(
            "SELECT {COLUMNS} FROM (
               SELECT *, row_number() OVER (
                   PARTITION BY post_id, kind, COALESCE(topic_id, 0),
                                CASE WHEN kind IN ('tag', 'note') THEN id END
                   ORDER BY id DESC) AS n
               FROM post_labels WHERE post_id = ANY($1) AND undone_at IS NULL) l
             WHERE n = 1 ORDER BY post_id, id"
        ),
        &[&posts],
        label,
    )
    .await
}
