//! The review queue's reads and claims (see `http::api::review`).

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Transaction};

use crate::models::text::truncate_bytes;

/// A post a queue may hand out.
pub struct Candidate {
    pub id: String,
    /// The opening of its text, as much as ranking reads.
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

/// A post no one holds but its reviewer, who moved on from it: `$1` is the queue, `$2` the
/// reviewer; the post is `p`.
const UNCLAIMED: &str = "NOT EXISTS (SELECT 1 FROM review_claims c WHERE c.post_id = p.id \
    AND c.topic_id = $1 AND c.expires_at > now() AND (c.reviewer = $2 OR NOT c.released))";
/// A post no one labelled in a topic's queue (`$1`, the topic); the post is `p`.
const UNLABELLED_FOR_TOPIC: &str = "NOT EXISTS (SELECT 1 FROM post_labels l \
    WHERE l.post_id = p.id AND l.topic_id = $1 AND l.undone_at IS NULL)";
/// A post whose sentiment no one labelled, in the queue of every post; the post is `p`.
const UNLABELLED_SENTIMENT: &str = "NOT EXISTS (SELECT 1 FROM post_labels l \
    WHERE l.post_id = p.id AND l.kind IN ('sentiment', 'spam') AND l.undone_at IS NULL)";

/// Up to `limit` of the newest posts of a topic's queue (or of every post's) that no one has
/// labelled there and that are neither held by another reviewer nor claimed by `reviewer`,
/// each with the first `text_bytes` of its text (whole characters): the queue is ranked on
/// that, and the rest of up to 20,000 bytes a post would be read for nothing. Read without the
/// queue's lock: what it says may be stale by the time of the claim, which [`claimable`]
/// checks again.
pub async fn candidates(
    client: &impl GenericClient,
    topic: Option<i64>,
    reviewer: &str,
    limit: i64,
    text_bytes: usize,
) -> Result<Vec<Candidate>, tokio_postgres::Error> {
    // `left` counts characters, at least as many bytes: the cut to bytes is made below.
    let chars = i32::try_from(text_bytes).unwrap_or(i32::MAX);
    let rows = match topic {
        Some(t) => {
            client
                .query(
                    &format!(
                        "SELECT p.id, left(p.text, $4), p.author_id, p.lang, p.model, \
                                p.sentiment_label, p.sentiment_score FROM posts p \
                         WHERE (p.topics @> ARRAY[$1::int8] OR p.filtered_topics @> ARRAY[$1::int8]) \
                           AND p.deleted_at IS NULL AND {UNLABELLED_FOR_TOPIC} AND {UNCLAIMED} \
                         ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
                    ),
                    &[&t, &reviewer, &limit, &chars],
                )
                .await?
        }
        None => {
            // The posts recent alerts showed as evidence, then the newest.
            client
                .query(
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
                         SELECT p.id, left(p.text, $4), p.author_id, p.lang, p.model, \
                                p.sentiment_label, p.sentiment_score, \
                                p.id IN (SELECT id FROM evidence) FROM posts p \
                         WHERE (p.id IN (SELECT id FROM evidence) OR p.id IN (SELECT id FROM newest)) \
                           AND p.deleted_at IS NULL AND p.language_support <> 'unsupported' \
                           AND {UNLABELLED_SENTIMENT} AND {UNCLAIMED}"
                    ),
                    &[&0i64, &reviewer, &limit, &chars],
                )
                .await?
        }
    };
    Ok(rows
        .iter()
        .map(|r| {
            let mut text: String = r.get(1);
            truncate_bytes(&mut text, text_bytes);
            Candidate {
                id: r.get(0),
                text,
                author: r.get(2),
                lang: r.get(3),
                topic,
                model: r.get(4),
                sentiment_label: r.get(5),
                sentiment_score: r.get(6),
                evidence: topic.is_none() && r.get::<_, bool>(7),
            }
        })
        .collect())
}

/// The first `count` of `posts`, in their order, that may still be handed to `reviewer` from
/// the queue (a topic's, or every post's): not deleted, labelled or held since they were read
/// as candidates. Under the queue's lock, so what it answers stands until the claim.
pub async fn claimable(
    tx: &Transaction<'_>,
    topic: Option<i64>,
    reviewer: &str,
    posts: &[&str],
    count: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let unlabelled = match topic {
        Some(_) => UNLABELLED_FOR_TOPIC,
        None => UNLABELLED_SENTIMENT,
    };
    let rows = tx
        .query(
            &format!(
                "SELECT p.id FROM unnest($3::text[]) WITH ORDINALITY AS r(id, n) \
                 JOIN posts p ON p.id = r.id \
                 WHERE p.deleted_at IS NULL AND {unlabelled} AND {UNCLAIMED} \
                 ORDER BY r.n LIMIT $4"
            ),
            &[&topic.unwrap_or(0), &reviewer, &posts, &count],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
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
