//! The review queue's reads and claims (see `http::api::review`).

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;

/// A post a queue may hand out.
pub struct Candidate {
    pub id: String,
    pub text: String,
    pub author: String,
    pub lang: Option<String>,
    /// The queue's topic, for a topic's queue.
    pub topic: Option<i64>,
    pub model: String,
    pub sentiment_label: String,
    pub sentiment_score: f32,
    /// Whether an alert fired in the last week shows it as evidence.
    pub evidence: bool,
}

/// Serialises handing out of queue `queue` (a topic's id, 0 for every post) until the
/// transaction ends.
pub async fn lock_queue(tx: &Transaction<'_>, queue: i64) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('pulse.review'), hashtext($1::int8::text))",
        &[&queue],
    )
    .await?;
    Ok(())
}

/// Releases what `reviewer` holds of `queue`: others may be handed it now; it is not handed back
/// to `reviewer` while its claim stands. Expired claims are swept.
pub async fn release(
    tx: &Transaction<'_>,
    queue: i64,
    reviewer: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE review_claims SET released = true \
         WHERE topic_id = $1 AND reviewer = $2 AND NOT released",
        &[&queue, &reviewer],
    )
    .await?;
    tx.execute(
        "DELETE FROM review_claims WHERE expires_at < now() - interval '1 hour'",
        &[],
    )
    .await?;
    Ok(())
}

/// Up to `limit` of the newest posts of a topic's queue (or of every post's) that no one has
/// labelled there and that are neither held by another reviewer nor claimed by `reviewer`.
pub async fn candidates(
    tx: &Transaction<'_>,
    topic: Option<i64>,
    reviewer: &str,
    limit: i64,
) -> Result<Vec<Candidate>, tokio_postgres::Error> {
    let unclaimed = "NOT EXISTS (SELECT 1 FROM review_claims c WHERE c.post_id = p.id \
        AND c.topic_id = $1 AND c.expires_at > now() AND (c.reviewer = $2 OR NOT c.released))";
    let rows = match topic {
        Some(t) => {
            tx.query(
                &format!(
                    "SELECT p.id, p.text, p.author_id, p.lang, p.model, p.sentiment_label, \
                            p.sentiment_score FROM posts p \
                     WHERE (p.topics @> ARRAY[$1::int8] OR p.filtered_topics @> ARRAY[$1::int8]) \
                       AND p.deleted_at IS NULL \
                       AND NOT EXISTS (SELECT 1 FROM post_labels l WHERE l.post_id = p.id \
                                       AND l.topic_id = $1 AND l.undone_at IS NULL) \
                       AND {unclaimed} \
                     ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
                ),
                &[&t, &reviewer, &limit],
            )
            .await?
        }
        None => {
            // The posts recent alerts showed as evidence, then the newest.
            tx.query(
                &format!(
                    "WITH evidence AS ( \
                         SELECT DISTINCT e->>'id' AS id FROM ( \
                             SELECT evidence FROM alerts WHERE fired_at > now() - interval '7 days' \
                             ORDER BY fired_at DESC, id DESC LIMIT 500) a \
                         CROSS JOIN LATERAL jsonb_array_elements( \
                             CASE WHEN jsonb_typeof(a.evidence->'top_posts') = 'array' \
                                  THEN a.evidence->'top_posts' ELSE '[]' END) e), \
                     newest AS (SELECT id FROM posts WHERE deleted_at IS NULL \
                                ORDER BY created_at DESC, id DESC LIMIT $3) \
                     SELECT p.id, p.text, p.author_id, p.lang, p.model, p.sentiment_label, \
                            p.sentiment_score, p.id IN (SELECT id FROM evidence) FROM posts p \
                     WHERE (p.id IN (SELECT id FROM evidence) OR p.id IN (SELECT id FROM newest)) \
                       AND p.deleted_at IS NULL AND p.language_support <> 'unsupported' \
                       AND NOT EXISTS (SELECT 1 FROM post_labels l WHERE l.post_id = p.id \
                                       AND l.kind IN ('sentiment', 'spam') AND l.undone_at IS NULL) \
                       AND {unclaimed}"
                ),
                &[&0i64, &reviewer, &limit],
            )
            .await?
        }
    };
    Ok(rows
        .iter()
        .map(|r| Candidate {
            id: r.get(0),
            text: r.get(1),
            author: r.get(2),
            lang: r.get(3),
            topic,
            model: r.get(4),
            sentiment_label: r.get(5),
            sentiment_score: r.get(6),
            evidence: topic.is_none() && r.get::<_, bool>(7),
        })
        .collect())
}

/// Claims `posts` of `queue` for `reviewer` for `secs` seconds; until when.
pub async fn claim(
    tx: &Transaction<'_>,
    queue: i64,
    reviewer: &str,
    posts: &[&str],
    secs: f64,
) -> Result<DateTime<Utc>, tokio_postgres::Error> {
    Ok(tx
        .query_one(
            "WITH c AS (INSERT INTO review_claims (post_id, topic_id, reviewer, expires_at) \
               SELECT id, $1, $2, now() + make_interval(secs => $4) FROM unnest($3::text[]) AS id \
               ON CONFLICT (post_id, topic_id, reviewer) DO UPDATE \
               SET claimed_at = now(), expires_at = EXCLUDED.expires_at, released = false) \
             SELECT now() + make_interval(secs => $4)",
            &[&queue, &reviewer, &posts, &secs],
        )
        .await?
        .get(0))
}
