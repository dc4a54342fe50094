//! Topics and their versions, the revision processes poll, and the stored posts a preview or a
//! re-tagging reads (docs/topics.md).

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};

use super::table::Table;
use crate::models::topic::{TopicStatus, TopicVersionView, TopicView};
use crate::topics::PostFields;

const TOPIC_COLUMNS: &str = "id, name, query, version, status, created_at, updated_at, created_by";

fn topic_view(row: &Row) -> TopicView {
    TopicView {
        id: row.get("id"),
        name: row.get("name"),
        query: row.get("query"),
        version: row.get("version"),
        status: TopicStatus::parse(row.get("status")).unwrap_or(TopicStatus::Paused),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        created_by: row.get("created_by"),
    }
}

const TOPICS: Table<TopicView> = Table {
    name: "topics",
    columns: TOPIC_COLUMNS,
    read: topic_view,
};

/// The topics' revision (0 before the first change): one counter every change a matcher or a
/// relevance filter follows moves in its own transaction ([`note_change`]). Moved under its
/// row's lock, it grows in the order changes commit: a process that saw it unchanged holds the
/// current topics. One row, however many topics were ever made.
pub async fn revision(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT revision FROM topic_changes", &[])
        .await?
        .get(0))
}

/// What moves the revision, as a statement of its own or a data-modifying CTE.
const NOTE_CHANGE: &str = "UPDATE topic_changes SET revision = revision + 1";

/// Moves the topics' revision, in the transaction of the change it announces, so every
/// process loads the change.
pub async fn note_change(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    client.execute(NOTE_CHANGE, &[]).await?;
    Ok(())
}

/// Every active topic's id and version, by id: what a process compares with the topics it
/// holds, reading no query.
pub async fn active_versions(
    client: &impl GenericClient,
) -> Result<Vec<(i64, i32)>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT id, version FROM topics WHERE status = 'active' AND deleted_at IS NULL \
         ORDER BY id",
        &[],
        |r| (r.get(0), r.get(1)),
    )
    .await
}

/// The active topics among `ids`: id, version and query.
pub async fn active_queries(
    client: &impl GenericClient,
    ids: &[i64],
) -> Result<Vec<(i64, i32, String)>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT id, version, query FROM topics WHERE id = ANY($1) AND status = 'active' \
         AND deleted_at IS NULL ORDER BY id",
        &[&ids],
        |r| (r.get(0), r.get(1), r.get(2)),
    )
    .await
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("a topic named `{0}` exists")]
    NameTaken(String),
    #[error("a cap on topics is reached: {0:?}")]
    TooMany(super::Limit),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

fn name_taken(e: tokio_postgres::Error, name: &str) -> TopicError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        TopicError::NameTaken(name.to_string())
    } else {
        TopicError::Db(e)
    }
}

/// Creates a topic (version 1) unless `max_topics` live ones exist.
pub async fn create(
    client: &mut deadpool_postgres::ClientWrapper,
    name: &str,
    query: &str,
    status: TopicStatus,
    by: Option<&str>,
    caps: super::Caps<'_>,
) -> Result<TopicView, TopicError> {
    let row = super::insert_in_turns(
        client,
        "topics/create",
        "SELECT count(*) FILTER (WHERE created_by = $1), count(*) FROM topics \
         WHERE deleted_at IS NULL",
        caps,
        &format!(
            "WITH t AS (INSERT INTO topics (name, query, status, created_by) \
             VALUES ($1, $2, $3, $4) RETURNING *), \
             v AS (INSERT INTO topic_versions (topic_id, version, query, created_by) \
             SELECT id, version, query, created_by FROM t), \
             c AS ({NOTE_CHANGE}) \
             SELECT {TOPIC_COLUMNS} FROM t"
        ),
        &[&name, &query, &status.as_str(), &by],
    )
    .await
    .map_err(|e| name_taken(e, name))?;
    row.map(|row| topic_view(&row)).map_err(TopicError::TooMany)
}

/// Up to `limit` live topics after id `after`, by id.
pub async fn list(
    client: &impl GenericClient,
    after: i64,
    limit: i64,
) -> Result<Vec<TopicView>, tokio_postgres::Error> {
    TOPICS
        .rows(
            client,
            "WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
            &[&after, &limit],
        )
        .await
}

/// Every live topic's id and name, by id: what a listing of all of them needs, without their
/// queries (up to 4,096 characters each).
pub async fn names(
    client: &impl GenericClient,
) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, name FROM topics WHERE deleted_at IS NULL ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A live topic.
pub async fn get(
    client: &impl GenericClient,
    id: i64,
) -> Result<Option<TopicView>, tokio_postgres::Error> {
    TOPICS
        .row(client, "WHERE id = $1 AND deleted_at IS NULL", &[&id])
        .await
}

/// What an edit changes; `None` keeps the field.
#[derive(Debug, Default)]
pub struct TopicEdit<'a> {
    pub name: Option<&'a str>,
    pub query: Option<&'a str>,
    pub status: Option<TopicStatus>,
}

/// Applies `edit` to a live topic; `None` when there is no such topic. A query unlike the
/// current one makes a new version, and the versions past the newest [`MAX_VERSIONS_LISTED`]
/// go (versions are numbered one after another: those numbered that far below the new one).
/// Only a new version or status moves the topics' revision: the matchers hold no names, and a
/// rename had every process load its topics again.
pub async fn update(
    client: &impl GenericClient,
    id: i64,
    edit: &TopicEdit<'_>,
    by: Option<&str>,
) -> Result<Option<TopicView>, TopicError> {
    let row = client
        .query_opt(
            &format!(
                "WITH old AS (SELECT * FROM topics WHERE id = $1 AND deleted_at IS NULL FOR UPDATE), \
                 t AS (UPDATE topics t SET \
                     name = COALESCE($2, t.name), \
                     query = COALESCE($3, t.query), \
                     status = COALESCE($4, t.status), \
                     version = t.version + (COALESCE($3, t.query) <> t.query)::int, \
                     updated_at = now() \
                   FROM old WHERE t.id = old.id \
                   RETURNING t.*, old.version AS old_version, old.status AS old_status), \
                 v AS (INSERT INTO topic_versions (topic_id, version, query, created_by) \
                   SELECT id, version, query, $5 FROM t WHERE version <> old_version), \
                 p AS (DELETE FROM topic_versions WHERE topic_id = $1 AND version <= \
                   (SELECT version FROM t WHERE version <> old_version) - $6::int), \
                 c AS ({NOTE_CHANGE} WHERE EXISTS (SELECT 1 FROM t \
                   WHERE version <> old_version OR status <> old_status)) \
                 SELECT {TOPIC_COLUMNS} FROM t"
            ),
            &[
                &id,
                &edit.name,
                &edit.query,
                &edit.status.map(|s| s.as_str()),
                &by,
                &(MAX_VERSIONS_LISTED as i32),
            ],
        )
        .await
        .map_err(|e| name_taken(e, edit.name.unwrap_or("")))?;
    Ok(row.as_ref().map(topic_view))
}

/// Deletes a live topic: it leaves every listing and the matcher, its id is never reused, and
/// what was matched before stays as it was; its row goes once nothing names it
/// ([`purge_deleted`]). Whether there was one.
pub async fn delete(client: &impl GenericClient, id: i64) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            &format!(
                "WITH t AS (UPDATE topics SET deleted_at = now(), status = 'paused', \
                   updated_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING id), \
                 c AS ({NOTE_CHANGE} WHERE EXISTS (SELECT 1 FROM t)) \
                 SELECT 1 FROM t"
            ),
            &[&id],
        )
        .await?
        > 0)
}

/// How long a deleted topic's rows stay at least: a training or a re-tagging of it that began
/// before its deletion ends well within it, so none writes a row of the topic after its purge.
pub const PURGE_AFTER_SECS: f64 = 3_600.0;

/// Purges up to `limit` deleted topics that nothing names any more, with their versions,
/// re-taggings, relevance models and state and review claims; how many went. A deleted topic's
/// row was kept for good, so creating and deleting topics in a loop grew the table without
/// bound, however few were live. A topic stays while a stored post carries it (matched or
/// filtered: posts go with retention), while a label or a digest schedule names it, and for
/// [`PURGE_AFTER_SECS`] after its deletion. Its id is never given again (ids come from a
/// sequence), and its rollups stay until retention takes them as any others.
pub async fn purge_deleted(
    client: &mut deadpool_postgres::ClientWrapper,
    limit: i64,
) -> Result<u64, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let ids: Vec<i64> = super::read_rows(
        &*tx,
        "SELECT t.id FROM topics t \
         WHERE t.deleted_at < now() - make_interval(secs => $2) \
           AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.topics @> ARRAY[t.id]) \
           AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.filtered_topics @> ARRAY[t.id]) \
           AND NOT EXISTS (SELECT 1 FROM post_labels l WHERE l.topic_id = t.id) \
           AND NOT EXISTS (SELECT 1 FROM digest_schedules d WHERE d.topic_id = t.id) \
         ORDER BY t.id LIMIT $1 FOR UPDATE OF t SKIP LOCKED",
        &[&limit, &PURGE_AFTER_SECS],
        |r| r.get(0),
    )
    .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    // The state names the adopted model: it goes before the models.
    for table in [
        "topic_relevance",
        "relevance_models",
        "topic_versions",
        "topic_retags",
        "review_claims",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE topic_id = ANY($1)"),
            &[&ids],
        )
        .await?;
    }
    let purged = tx
        .execute("DELETE FROM topics WHERE id = ANY($1)", &[&ids])
        .await?;
    tx.commit().await?;
    Ok(purged)
}

/// Versions of a topic kept, and so listed at most: every edit of a query kept its version for
/// good, so an editor alternating two queries of 4,096 characters grew the table without bound.
pub const MAX_VERSIONS_LISTED: i64 = 500;

/// The versions of a topic's query (the newest [`MAX_VERSIONS_LISTED`], all that are kept),
/// newest first; empty for no live topic.
pub async fn versions(
    client: &impl GenericClient,
    id: i64,
) -> Result<Vec<TopicVersionView>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT v.version, v.query, v.created_at, v.created_by FROM topic_versions v \
         JOIN topics t ON t.id = v.topic_id AND t.deleted_at IS NULL \
         WHERE v.topic_id = $1 ORDER BY v.version DESC LIMIT $2",
        &[&id, &MAX_VERSIONS_LISTED],
        |r| TopicVersionView {
            version: r.get(0),
            query: r.get(1),
            created_at: r.get(2),
            created_by: r.get(3),
        },
    )
    .await
}

/// The ids of the live topics among `ids`.
pub async fn live_ids(
    client: &impl GenericClient,
    ids: &[i64],
) -> Result<Vec<i64>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT id FROM topics WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id",
        &[&ids],
        |r| r.get(0),
    )
    .await
}

/// What a query can look at of a stored post, and what a preview shows of it.
#[derive(Debug, Clone)]
pub struct StoredText {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub text: String,
    pub author: String,
    pub platform: String,
    pub lang: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub url: Option<String>,
    pub topics: Vec<i64>,
    /// The version of each of `topics` that matched, in the same order.
    pub topic_versions: Vec<i32>,
    /// The topics that matched it and whose learned relevance leaves it out.
    pub filtered_topics: Vec<i64>,
    pub language_support: String,
}

impl StoredText {
    /// The version of `topic` the post matched, if it did.
    pub fn version_of(&self, topic: i64) -> Option<i32> {
        let at = self.topics.iter().position(|&t| t == topic)?;
        self.topic_versions.get(at).copied()
    }

    /// Whether `topic` matched it and filters it out.
    pub fn filtered_by(&self, topic: i64) -> bool {
        self.filtered_topics.contains(&topic)
    }
}

/// The columns [`StoredText`] reads.
pub const STORED_TEXT_COLUMNS: &str = "id, created_at, text, author_id, platform, lang, country, \
    city, product, channel, url, COALESCE(topics, '{}') AS topics, language_support, \
    COALESCE(topic_versions, '{}') AS topic_versions, \
    COALESCE(filtered_topics, '{}') AS filtered_topics";

impl StoredText {
    /// What a query can see of it.
    pub fn fields(&self) -> PostFields<'_> {
        PostFields {
            text: &self.text,
            author: &self.author,
            platform: &self.platform,
            lang: self.lang.as_deref(),
            country: self.country.as_deref(),
            city: self.city.as_deref(),
            product: self.product.as_deref(),
            channel: self.channel.as_deref(),
            url: self.url.as_deref(),
        }
    }
}

pub fn stored_text(r: &Row) -> StoredText {
    StoredText {
        id: r.get(0),
        created_at: r.get(1),
        text: r.get(2),
        author: r.get(3),
        platform: r.get(4),
        lang: r.get(5),
        country: r.get(6),
        city: r.get(7),
        product: r.get(8),
        channel: r.get(9),
        url: r.get(10),
        topics: r.get(11),
        language_support: r.get(12),
        topic_versions: r.get(13),
        filtered_topics: r.get(14),
    }
}

/// Up to `limit` live posts created in `[from, to)` before the keyset `after` (newest first).
pub async fn texts_before(
    client: &impl GenericClient,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<StoredText>, tokio_postgres::Error> {
    let rows = match after {
        Some((at, id)) => {
            client
                .query(
                    &format!(
                        "SELECT {STORED_TEXT_COLUMNS} FROM posts \
                         WHERE created_at >= $1 AND created_at < $2 AND deleted_at IS NULL \
                           AND (created_at, id) < ($3, $4) \
                         ORDER BY created_at DESC, id DESC LIMIT $5"
                    ),
                    &[&from, &to, &at, &id, &limit],
                )
                .await?
        }
        None => {
            client
                .query(
                    &format!(
                        "SELECT {STORED_TEXT_COLUMNS} FROM posts \
                         WHERE created_at >= $1 AND created_at < $2 AND deleted_at IS NULL \
                         ORDER BY created_at DESC, id DESC LIMIT $3"
                    ),
                    &[&from, &to, &limit],
                )
                .await?
        }
    };
    Ok(rows.iter().map(stored_text).collect())
}

/// What a post read as a [`StoredText`] holds, in bytes: its text, its labels and the topic
/// ids of its three lists (at 8 bytes each). Measured without reading the text (the length
/// of a stored value is known without decompressing it).
const STORED_TEXT_BYTES: &str = "octet_length(text) \
    + octet_length(concat(id, author_id, platform, lang, country, city, product, channel, url, \
                          language_support)) \
    + 8 * (COALESCE(cardinality(topics), 0) + COALESCE(cardinality(topic_versions), 0) \
           + COALESCE(cardinality(filtered_topics), 0))";

/// A page of stored posts bounded in rows and in bytes ([`text_page`]).
#[derive(Debug)]
pub struct TextPage {
    /// Newest first.
    pub posts: Vec<StoredText>,
    /// Whether no post of the stretch is left past the page.
    pub last: bool,
}

/// The live posts created in `[from, to)` before the keyset `after` (newest first), as many as
/// fit in `rows` posts and `max_bytes` bytes (as [`StoredText`] holds them); the first always
/// does, so a page moves on whatever the bound. Rows alone let a page of 5,000 posts of 20,000
/// bytes hold 100 MB.
pub async fn text_page(
    client: &impl GenericClient,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    after: Option<(DateTime<Utc>, &str)>,
    rows: i64,
    max_bytes: i64,
) -> Result<TextPage, tokio_postgres::Error> {
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&from, &to, &rows, &max_bytes];
    let before = match &after {
        Some((at, id)) => {
            params.push(at);
            params.push(id);
            "AND (created_at, id) < ($5, $6)"
        }
        None => "",
    };
    // The page's bounds are read from the sizes alone; only the posts within them are read
    // whole. `listed` is how many the rows bound let in, so a page cut by bytes is not taken
    // for the last.
    let sql = format!(
        "WITH page (page_id, page_bytes, page_row) AS (
            SELECT id, sum({STORED_TEXT_BYTES}) OVER w, row_number() OVER w FROM posts
            WHERE created_at >= $1 AND created_at < $2 AND deleted_at IS NULL {before}
            WINDOW w AS (ORDER BY created_at DESC, id DESC)
            ORDER BY created_at DESC, id DESC LIMIT $3)
         SELECT {STORED_TEXT_COLUMNS}, (SELECT count(*) FROM page) AS listed
         FROM page JOIN posts ON posts.id = page.page_id
         WHERE page.page_bytes <= $4 OR page.page_row = 1
         ORDER BY page.page_row"
    );
    let read = client.query(&sql, &params).await?;
    let listed: i64 = read.first().map_or(0, |r| r.get("listed"));
    let posts: Vec<StoredText> = read.into_iter().map(|r| stored_text(&r)).collect();
    Ok(TextPage {
        last: listed < rows && posts.len() as i64 == listed,
        posts,
    })
}

/// Live posts created in `[from, to)`, the number a preview or a re-tagging would read.
pub async fn count_between(
    client: &impl GenericClient,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT count(*)::int8 FROM posts WHERE created_at >= $1 AND created_at < $2 \
             AND deleted_at IS NULL",
            &[&from, &to],
        )
        .await?
        .get(0))
}

/// What of each post's text [`scored_texts`] reads: the terms of a post are mostly in its
/// first lines, and 20,000 posts of 20 KB each would be 400 MB read for one listing.
pub const SCORED_TEXT_CHARS: i32 = 1_000;

/// The texts (their first [`SCORED_TEXT_CHARS`]) and sentiment scores of the newest `limit`
/// live posts of topic `id` created in `period`.
pub async fn scored_texts(
    client: &impl GenericClient,
    id: i64,
    period: crate::models::metrics::Period,
    limit: i64,
) -> Result<Vec<(String, f64)>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT left(text, $5), sentiment_score::float8 FROM posts \
         WHERE topics @> ARRAY[$1::int8] AND created_at >= $2 \
         AND ($4::timestamptz IS NULL OR created_at < $4) AND deleted_at IS NULL \
         ORDER BY created_at DESC LIMIT $3",
        &[&id, &period.from, &limit, &period.to, &SCORED_TEXT_CHARS],
        |r| (r.get(0), r.get(1)),
    )
    .await
}
