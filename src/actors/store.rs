//! The store: writes analysed posts, engagement events and deletions to PostgreSQL, one
//! statement per batch (UNNEST arrays), idempotent through `ON CONFLICT DO NOTHING` on
//! natural keys.

use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, Context, Handler, ResponseFuture};
use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;

use super::messages::{AnalyzedBatch, StoreBatch, StoreError, StoreOutcome};
use crate::db::rollup_keys::{KeyAdmission, PostKeys};
use crate::models::event::MAX_ENGAGEMENT_COUNT;
use crate::models::producer::{engagement_key, Trust};
use crate::telemetry::names;

/// The writes of a batch, before its rollup deltas: posts, engagements and deletions, each
/// idempotent on its natural key, with ownership applied (see [`crate::models::producer`]):
///
/// - a post whose id another producer stored first is not stored (`t`);
/// - a deletion or engagement of a post another producer owns is refused (`d`, `r`) unless
///   `$45`'s trust pairs allow it; a deletion of a post not stored yet is kept, and applies
///   to the post when it arrives only if its producer may act for the post's;
/// - an engagement whose post is not stored yet is kept `held` (`h`), uncounted, and released
///   (or refused) when its post arrives in a later batch.
///
/// Every change to the rollups goes through `post_rollup_deltas` and
/// `engagement_rollup_deltas`: new live posts and the engagements that count with them, and
/// deleted posts taken back out with the engagements that had counted.
const INSERT_BATCH_WRITES: &str = "
WITH dl AS MATERIALIZED (
    -- Deletions that may apply to this batch's posts: stored earlier or in this batch. Read
    -- once: as a subquery of each post, a generic plan would look the batch's ids up again
    -- for every post.
    SELECT post_id, at, producer, true AS stored FROM post_deletions
    WHERE post_id = ANY($1::text[])
    UNION ALL
    SELECT u.*, false FROM UNNEST($36::text[], $37::timestamptz[], $44::text[])
        AS u (post_id, at, producer)
), p AS (
    INSERT INTO posts AS t (
        id, platform, author_id, author_followers, text, created_at, lang, city, country,
        product, channel, parent_id, url, likes, shares, comments, views,
        sentiment_label, sentiment_score, emotions, emotion, toxicity, churn_risk, model, stream_id,
        hate, lang_source, language_support, rollup_other, producer, deleted_at)
    SELECT u.*, (SELECT min(dl.at) FROM dl
                 WHERE dl.post_id = u.id AND may_act(dl.producer, u.producer, $45::text[]))
    FROM UNNEST(
        $1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[],
        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
        $14::int8[], $15::int8[], $16::int8[], $17::int8[],
        $18::text[], $19::float4[], $20::jsonb[], $21::text[], $22::float4[], $23::float4[],
        $24::text[], $25::text[], $35::float4[], $39::text[], $40::text[], $41::int2[],
        $42::text[])
        AS u(id, platform, author_id, author_followers, text, created_at, lang, city, country,
             product, channel, parent_id, url, likes, shares, comments, views,
             sentiment_label, sentiment_score, emotions, emotion, toxicity, churn_risk, model,
             stream_id, hate, lang_source, language_support, rollup_other, producer)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, producer, deleted_at, {POST_COLUMNS}
), taken AS (
    -- Posts of this batch whose id belongs to another producer (stored before, or by an
    -- earlier post of this batch). Only the posts not stored now are looked up.
    SELECT u.id FROM UNNEST($1::text[], $42::text[]) AS u (id, producer)
    WHERE NOT EXISTS (SELECT 1 FROM p WHERE p.id = u.id AND p.producer = u.producer)
      AND NOT EXISTS (SELECT 1 FROM posts s WHERE s.id = u.id AND s.producer = u.producer)
), ev AS MATERIALIZED (
    -- The batch's engagements, each with the producer that owns its post, if stored.
    SELECT u.*, COALESCE(s.producer, p.producer) AS owner
    FROM UNNEST($26::text[], $27::text[], $28::text[], $29::timestamptz[], $30::int8[],
                $31::text[], $32::int4[], $33::text[], $43::text[])
        AS u (key, post_id, kind, at, actor_followers, via, count, stream_id, producer)
    LEFT JOIN posts s ON s.id = u.post_id
    LEFT JOIN p ON p.id = u.post_id
), e AS (
    INSERT INTO engagements AS t (
        key, post_id, kind, at, actor_followers, via, count, stream_id, producer, held)
    SELECT key, post_id, kind, at, actor_followers, via, count, stream_id, producer,
           owner IS NULL
    FROM ev WHERE owner IS NULL OR may_act(producer, owner, $45::text[])
    ON CONFLICT (key) DO NOTHING
    RETURNING key, post_id, kind, at, count, held
), dv AS MATERIALIZED (
    -- The batch's deletions, each with the producer that owns its post, if stored.
    SELECT u.*, COALESCE(s.producer, p.producer) AS owner
    FROM UNNEST($36::text[], $37::timestamptz[], $38::text[], $44::text[])
        AS u (post_id, at, stream_id, producer)
    LEFT JOIN posts s ON s.id = u.post_id
    LEFT JOIN p ON p.id = u.post_id
), del AS (
    INSERT INTO post_deletions (post_id, at, stream_id, producer)
    SELECT post_id, at, stream_id, producer FROM dv
    WHERE owner IS NULL OR may_act(producer, owner, $45::text[])
    ON CONFLICT (post_id, producer) DO NOTHING
    RETURNING post_id
), refused_deletions AS (
    SELECT post_id FROM dv WHERE owner IS NOT NULL AND NOT may_act(producer, owner, $45::text[])
    UNION ALL
    -- Deletions kept for a post that has now arrived from a producer they may not act for.
    SELECT dl.post_id FROM p JOIN dl ON dl.post_id = p.id
    WHERE dl.stored AND NOT may_act(dl.producer, p.producer, $45::text[])
), gone AS (
    -- Posts stored before this batch that it deletes (once: a replayed deletion finds them
    -- marked already). Posts this batch inserts are not visible here; `p` marks them.
    UPDATE posts AS t SET deleted_at = d.at
    FROM (SELECT post_id, min(at) AS at FROM dv
          WHERE owner IS NOT NULL AND may_act(producer, owner, $45::text[])
          GROUP BY post_id) AS d
    WHERE t.id = d.post_id AND t.deleted_at IS NULL
    RETURNING t.id, deleted_post(t) AS summary, {POST_COLUMNS_OF_T}
), released AS (
    -- Held engagements of the posts this batch stores, from producers that may act for them;
    -- they reach the virality tracker's feed as of this transaction.
    UPDATE engagements AS eg SET held = false, tx = pg_current_xact_id()
    FROM p
    WHERE eg.held AND eg.post_id = p.id
      AND may_act(eg.producer, p.producer, $45::text[])
    RETURNING eg.key, eg.at, eg.kind, eg.count, p.deleted_at, {ENGAGEMENT_POST_COLUMNS_OF_P}
), refused_held AS (
    DELETE FROM engagements AS eg USING p
    WHERE eg.held AND eg.post_id = p.id
      AND NOT may_act(eg.producer, p.producer, $45::text[])
    RETURNING eg.key
), live AS (
    -- The posts of this batch's engagements, as they stand once it commits.
    SELECT id, deleted_at, {ENGAGEMENT_POST_COLUMNS} FROM p
    UNION ALL
    SELECT s.id, s.deleted_at, {ENGAGEMENT_POST_COLUMNS_OF_S} FROM posts s
    WHERE s.id IN (SELECT post_id FROM e WHERE NOT held)
      AND NOT EXISTS (SELECT 1 FROM gone WHERE gone.id = s.id)
), deltas AS (
    SELECT d.* FROM p CROSS JOIN LATERAL {NEW_POSTS} d WHERE p.deleted_at IS NULL
    UNION ALL
    SELECT d.* FROM gone CROSS JOIN LATERAL {GONE_POSTS} d
    UNION ALL
    SELECT d.* FROM gone JOIN engagements x ON x.post_id = gone.id AND NOT x.held
    CROSS JOIN LATERAL {GONE_ENGAGEMENTS} d
    UNION ALL
    SELECT d.* FROM released r CROSS JOIN LATERAL {RELEASED} d WHERE r.deleted_at IS NULL
    UNION ALL
    SELECT d.* FROM e JOIN live q ON q.id = e.post_id
    CROSS JOIN LATERAL {BATCH_ENGAGEMENTS} d
    WHERE NOT e.held AND q.deleted_at IS NULL
), r AS (";

/// What the batch statement returns: one row per change, its kind, key and, for a deleted
/// post, what the live stages need of it.
const INSERT_BATCH_RESULT: &str = "
)
SELECT 'p'::text AS kind, id, NULL::jsonb FROM p WHERE deleted_at IS NULL
UNION ALL
SELECT 'x', id, NULL FROM p WHERE deleted_at IS NOT NULL
UNION ALL
SELECT 'e', key, NULL FROM e WHERE NOT held
UNION ALL
SELECT 'h', key, NULL FROM e WHERE held
UNION ALL
SELECT 'l', key, NULL FROM released
UNION ALL
SELECT 'g', id, summary FROM gone
UNION ALL
SELECT 't', id, NULL FROM taken
UNION ALL
SELECT 'r', key, NULL FROM ev WHERE owner IS NOT NULL AND NOT may_act(producer, owner, $45::text[])
UNION ALL
SELECT 'r', key, NULL FROM refused_held
UNION ALL
SELECT 'd', post_id, NULL FROM refused_deletions";

/// Stores a batch in one round trip: [`INSERT_BATCH_WRITES`], the rollups
/// ([`crate::db::rollups::ADD_DELTAS`]), then [`INSERT_BATCH_RESULT`]. Everything commits
/// together or not at all, so rollups count each post exactly once however often it is
/// delivered.
static INSERT_BATCH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use crate::db::rollups::{
        engagement_deltas, post_deltas, qualified as of, ADD_DELTAS, ENGAGEMENT_POST_COLUMNS,
        POST_DELTA_COLUMNS,
    };
    let writes = INSERT_BATCH_WRITES
        .replace("{POST_COLUMNS_OF_T}", &of("t", &POST_DELTA_COLUMNS))
        .replace("{POST_COLUMNS}", &POST_DELTA_COLUMNS.join(", "))
        .replace(
            "{ENGAGEMENT_POST_COLUMNS_OF_P}",
            &of("p", &ENGAGEMENT_POST_COLUMNS),
        )
        .replace(
            "{ENGAGEMENT_POST_COLUMNS_OF_S}",
            &of("s", &ENGAGEMENT_POST_COLUMNS),
        )
        .replace(
            "{ENGAGEMENT_POST_COLUMNS}",
            &ENGAGEMENT_POST_COLUMNS.join(", "),
        )
        .replace("{NEW_POSTS}", &post_deltas("1", "p", "$34::float4"))
        .replace("{GONE_POSTS}", &post_deltas("-1", "gone", "$34::float4"))
        .replace("{GONE_ENGAGEMENTS}", &engagement_deltas("-1", "x", "gone"))
        .replace("{RELEASED}", &engagement_deltas("1", "r", "r"))
        .replace("{BATCH_ENGAGEMENTS}", &engagement_deltas("1", "e", "q"));
    format!("{writes}{ADD_DELTAS}{INSERT_BATCH_RESULT}")
});

/// The PostgreSQL writer actor.
pub struct Store {
    pool: Pool,
    stream: String,
    high_churn: f32,
    admission: Arc<KeyAdmission>,
    trust: Arc<Trust>,
}

impl Store {
    /// A store writing through `pool`; `stream` qualifies engagement keys derived from entry
    /// ids; posts with churn risk at or above `high_churn` count as high-churn in rollups;
    /// `admission` decides which keys get rollups of their own; `trust` which producers may
    /// act for others' posts.
    pub fn new(
        pool: Pool,
        stream: String,
        high_churn: f32,
        admission: Arc<KeyAdmission>,
        trust: Arc<Trust>,
    ) -> Self {
        Self {
            pool,
            stream,
            high_churn,
            admission,
            trust,
        }
    }
}

impl Actor for Store {
    type Context = Context<Self>;
}

impl Handler<StoreBatch> for Store {
    type Result = ResponseFuture<Result<StoreOutcome, StoreError>>;

    fn handle(&mut self, msg: StoreBatch, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let stream = self.stream.clone();
        let high_churn = self.high_churn;
        let admission = self.admission.clone();
        let trust = self.trust.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = write_batch(&pool, &stream, high_churn, &admission, &trust, &msg.0).await;
            match &result {
                Ok(outcome) => {
                    metrics::histogram!(names::STORE_BATCH_SECONDS).record(started.elapsed());
                    metrics::counter!(names::STORED_ROWS, "table" => "posts").increment(
                        (outcome.inserted_posts.len() + outcome.inserted_deleted_posts.len())
                            as u64,
                    );
                    metrics::counter!(names::STORED_ROWS, "table" => "engagements")
                        .increment(outcome.inserted_engagements);
                    metrics::counter!(names::POSTS_DELETED)
                        .increment(outcome.deleted_posts.len() as u64);
                    outcome.refused.count();
                    if outcome.held_engagements > 0 {
                        metrics::counter!(names::ENGAGEMENTS_HELD)
                            .increment(outcome.held_engagements);
                    }
                }
                Err(e) => {
                    let kind = match e {
                        StoreError::Unavailable(_) => "unavailable",
                        StoreError::Refused(_) => "refused",
                    };
                    metrics::counter!(names::STORE_ERRORS, "error_type" => kind).increment(1);
                }
            }
            result
        })
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<super::messages::InjectFault> for Store {
    type Result = ();

    fn handle(&mut self, _: super::messages::InjectFault, _: &mut Self::Context) {
        panic!("injected store fault");
    }
}

/// Writes one batch in one statement; the store actor and the benchmark's raw insert ceiling
/// share it, so the ceiling measures exactly the statement Pulse runs.
pub async fn write_batch(
    pool: &Pool,
    stream: &str,
    high_churn: f32,
    admission: &KeyAdmission,
    trust: &Trust,
    batch: &AnalyzedBatch,
) -> Result<StoreOutcome, StoreError> {
    if batch.posts.is_empty() && batch.engagements.is_empty() && batch.deletions.is_empty() {
        return Ok(StoreOutcome::default());
    }
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let statement = client
        .prepare_cached(&INSERT_BATCH)
        .await
        .map_err(classify)?;

    let posts = &batch.posts;
    let keys_of: Vec<PostKeys<'_>> = posts
        .iter()
        .map(|p| PostKeys {
            created_at: p.post.created_at,
            keys: [
                p.post.city(),
                p.post.country(),
                p.post.product.as_deref(),
                p.post.channel.as_deref(),
                Some(p.analysis.lang.as_deref().unwrap_or("und")),
            ],
        })
        .collect();
    let rollup_other = admission
        .other_bits(&**client, &keys_of)
        .await
        .map_err(classify)?;
    let col =
        |f: &dyn Fn(&super::messages::AnalyzedPost) -> Option<String>| -> Vec<Option<String>> {
            posts.iter().map(f).collect()
        };
    let ids: Vec<&str> = posts.iter().map(|p| p.post.id.as_str()).collect();
    let platforms: Vec<&str> = posts.iter().map(|p| p.post.platform.as_str()).collect();
    let authors: Vec<&str> = posts.iter().map(|p| p.post.author.id.as_str()).collect();
    let followers: Vec<i64> = posts
        .iter()
        .map(|p| saturating_i64(p.post.author.followers))
        .collect();
    let texts: Vec<&str> = posts.iter().map(|p| p.post.text.as_str()).collect();
    let created: Vec<chrono::DateTime<chrono::Utc>> =
        posts.iter().map(|p| p.post.created_at).collect();
    let langs = col(&|p| p.analysis.lang.clone());
    let lang_sources: Vec<&str> = posts
        .iter()
        .map(|p| p.analysis.lang_source.as_str())
        .collect();
    let supports: Vec<&str> = posts
        .iter()
        .map(|p| p.analysis.language_support.as_str())
        .collect();
    let cities = col(&|p| p.post.city().map(str::to_string));
    let countries = col(&|p| p.post.country().map(str::to_string));
    let products = col(&|p| p.post.product.clone());
    let channels = col(&|p| p.post.channel.clone());
    let parents = col(&|p| p.post.parent_id.clone());
    let urls = col(&|p| p.post.url.clone());
    let metric = |f: fn(&crate::models::PostMetrics) -> u64| -> Vec<Option<i64>> {
        posts
            .iter()
            .map(|p| p.post.metrics.as_ref().map(|m| saturating_i64(f(m))))
            .collect()
    };
    let likes = metric(|m| m.likes);
    let shares = metric(|m| m.shares);
    let comments = metric(|m| m.comments);
    let views = metric(|m| m.views);
    let labels: Vec<&str> = posts
        .iter()
        .map(|p| p.analysis.sentiment_label.as_str())
        .collect();
    let scores: Vec<f32> = posts
        .iter()
        .map(|p| p.analysis.sentiment_score.get())
        .collect();
    let emotions: Vec<serde_json::Value> = posts
        .iter()
        .map(|p| serde_json::to_value(p.analysis.emotions).unwrap_or_default())
        .collect();
    let dominant = col(&|p| {
        p.analysis
            .emotions
            .dominant()
            .map(|e| e.as_str().to_string())
    });
    let toxicity: Vec<f32> = posts.iter().map(|p| p.analysis.toxicity.get()).collect();
    let churn: Vec<f32> = posts.iter().map(|p| p.analysis.churn_risk.get()).collect();
    let hate: Vec<f32> = posts.iter().map(|p| p.analysis.hate.get()).collect();
    let models: Vec<&str> = posts.iter().map(|p| p.analysis.model.as_str()).collect();
    let post_entries: Vec<&str> = posts.iter().map(|p| p.entry_id.as_str()).collect();
    let post_producers: Vec<&str> = posts.iter().map(|p| p.producer.as_str()).collect();

    let engs = &batch.engagements;
    let keys: Vec<String> = engs
        .iter()
        .map(|e| engagement_key(stream, &e.producer, e.engagement.id.as_deref(), &e.entry_id))
        .collect();
    let eng_posts: Vec<&str> = engs.iter().map(|e| e.engagement.post_id.as_str()).collect();
    let kinds: Vec<&str> = engs.iter().map(|e| e.engagement.kind.as_str()).collect();
    let ats: Vec<chrono::DateTime<chrono::Utc>> = engs.iter().map(|e| e.engagement.at).collect();
    let actor_followers: Vec<Option<i64>> = engs
        .iter()
        .map(|e| e.engagement.actor_followers.map(saturating_i64))
        .collect();
    let vias: Vec<Option<&str>> = engs.iter().map(|e| e.engagement.via.as_deref()).collect();
    let counts: Vec<i32> = engs
        .iter()
        .map(|e| {
            let count = e.engagement.count.unwrap_or(1).min(MAX_ENGAGEMENT_COUNT);
            i32::try_from(count).unwrap_or(i32::MAX)
        })
        .collect();
    let eng_producers: Vec<&str> = engs.iter().map(|e| e.producer.as_str()).collect();
    let eng_entries: Vec<&str> = engs.iter().map(|e| e.entry_id.as_str()).collect();
    let dels = &batch.deletions;
    let deleted_ids: Vec<&str> = dels.iter().map(|d| d.deletion.post_id.as_str()).collect();
    let deleted_ats: Vec<chrono::DateTime<chrono::Utc>> =
        dels.iter().map(|d| d.deletion.at).collect();
    let deleted_entries: Vec<&str> = dels.iter().map(|d| d.entry_id.as_str()).collect();
    let deletion_producers: Vec<&str> = dels.iter().map(|d| d.producer.as_str()).collect();
    let trust_pairs = trust.pairs();

    let rows = client
        .query(
            &statement,
            &[
                &ids,
                &platforms,
                &authors,
                &followers,
                &texts,
                &created,
                &langs,
                &cities,
                &countries,
                &products,
                &channels,
                &parents,
                &urls,
                &likes,
                &shares,
                &comments,
                &views,
                &labels,
                &scores,
                &emotions,
                &dominant,
                &toxicity,
                &churn,
                &models,
                &post_entries,
                &keys,
                &eng_posts,
                &kinds,
                &ats,
                &actor_followers,
                &vias,
                &counts,
                &eng_entries,
                &high_churn,
                &hate,
                &deleted_ids,
                &deleted_ats,
                &deleted_entries,
                &lang_sources,
                &supports,
                &rollup_other,
                &post_producers,
                &eng_producers,
                &deletion_producers,
                &trust_pairs,
            ],
        )
        .await
        .map_err(classify)?;

    let mut outcome = StoreOutcome::default();
    for row in rows {
        let kind: &str = row.get(0);
        match kind {
            "p" => outcome.inserted_posts.push(row.get(1)),
            "x" => outcome.inserted_deleted_posts.push(row.get(1)),
            "e" | "l" => {
                outcome.inserted_engagements += 1;
                outcome.inserted_engagement_keys.push(row.get(1));
            }
            "h" => outcome.held_engagements += 1,
            "g" => {
                outcome.deleted_posts.push(row.get(1));
                let json: serde_json::Value = row.get(2);
                match serde_json::from_value(json) {
                    Ok(post) => outcome.deleted.push(post),
                    Err(e) => tracing::warn!(error = %e, "a deleted post's summary did not parse"),
                }
            }
            "t" => outcome.refused.id_taken += 1,
            "r" => outcome.refused.not_owner_engagement += 1,
            "d" => outcome.refused.not_owner_deletion += 1,
            _ => {}
        }
    }
    Ok(outcome)
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Data errors (classes 22 and 23) mean the batch itself is bad and must be split; anything
/// else (connection loss, shutdown, serialization) is worth retrying as is.
fn classify(e: tokio_postgres::Error) -> StoreError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => format!("{e:#}"),
    };
    match e.code() {
        Some(code)
            if code.code().starts_with("22")
                || code.code().starts_with("23")
                || *code == SqlState::PROGRAM_LIMIT_EXCEEDED =>
        {
            StoreError::Refused(detail)
        }
        _ => StoreError::Unavailable(detail),
    }
}
