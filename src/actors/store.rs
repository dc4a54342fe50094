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
use crate::telemetry::names;

/// Inserts posts and engagements of a batch in one round trip, adds what was new to the
/// per-minute rollups, and returns the keys that were new. Everything commits together or
/// not at all, so rollups count each post exactly once however often it is delivered.
const INSERT_BATCH: &str = "
WITH p AS (
    INSERT INTO posts (
        id, platform, author_id, author_followers, text, created_at, lang, city, country,
        product, channel, parent_id, url, likes, shares, comments, views,
        sentiment_label, sentiment_score, emotions, emotion, toxicity, churn_risk, model, stream_id,
        hate, lang_source, language_support, rollup_other, deleted_at)
    SELECT u.*, dl.at FROM UNNEST(
        $1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[],
        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
        $14::int8[], $15::int8[], $16::int8[], $17::int8[],
        $18::text[], $19::float4[], $20::jsonb[], $21::text[], $22::float4[], $23::float4[],
        $24::text[], $25::text[], $35::float4[], $39::text[], $40::text[], $41::int2[])
        AS u(id, platform, author_id, author_followers, text, created_at, lang, city, country,
             product, channel, parent_id, url, likes, shares, comments, views,
             sentiment_label, sentiment_score, emotions, emotion, toxicity, churn_risk, model,
             stream_id, hate, lang_source, language_support, rollup_other)
    -- A post whose deletion came first (earlier or in this batch) is stored deleted.
    LEFT JOIN (
        SELECT post_id, min(at) AS at FROM (
            SELECT post_id, at FROM post_deletions WHERE post_id = ANY($1::text[])
            UNION ALL
            SELECT * FROM UNNEST($36::text[], $37::timestamptz[])
        ) AS known (post_id, at)
        GROUP BY post_id
    ) AS dl ON dl.post_id = u.id
    ON CONFLICT (id) DO NOTHING
    RETURNING id, created_at, platform, city, country, product, channel,
              sentiment_label, sentiment_score, toxicity, churn_risk, emotion, deleted_at,
              lang, language_support, rollup_other
), e AS (
    INSERT INTO engagements (key, post_id, kind, at, actor_followers, via, count, stream_id)
    SELECT * FROM UNNEST(
        $26::text[], $27::text[], $28::text[], $29::timestamptz[], $30::int8[], $31::text[],
        $32::int4[], $33::text[])
    ON CONFLICT (key) DO NOTHING
    RETURNING key, post_id, kind, at, count
), del AS (
    INSERT INTO post_deletions (post_id, at, stream_id)
    SELECT * FROM UNNEST($36::text[], $37::timestamptz[], $38::text[])
    ON CONFLICT (post_id) DO NOTHING
    RETURNING post_id
), gone AS (
    -- Posts stored before this batch that it deletes (once: a replayed deletion finds them
    -- marked already). Posts this batch inserts are not visible here; the join above marks
    -- them.
    UPDATE posts SET deleted_at = d.at
    FROM (SELECT post_id, min(at) AS at FROM UNNEST($36::text[], $37::timestamptz[])
          AS x (post_id, at) GROUP BY post_id) AS d
    WHERE posts.id = d.post_id AND posts.deleted_at IS NULL
    RETURNING posts.id, posts.created_at, posts.platform, posts.city, posts.country,
              posts.product, posts.channel, posts.sentiment_label, posts.sentiment_score,
              posts.toxicity, posts.churn_risk, posts.emotion, posts.lang,
              posts.language_support, posts.rollup_other
), counted AS (
    -- New live posts count once; deleted ones are taken back out. A post in a language no
    -- model understands counts only under `language` and `support`, with no scores (`w` 0).
    SELECT 1 AS sign, created_at, platform, city, country, product, channel, sentiment_label,
           sentiment_score, toxicity, churn_risk, emotion, lang, language_support,
           (language_support <> 'unsupported')::int AS w, rollup_other
    FROM p WHERE deleted_at IS NULL
    UNION ALL
    SELECT -1, created_at, platform, city, country, product, channel, sentiment_label,
           sentiment_score, toxicity, churn_risk, emotion, lang, language_support,
           (language_support <> 'unsupported')::int, rollup_other
    FROM gone
), deltas AS (
    SELECT date_trunc('minute', c.created_at) AS minute, d.dimension, d.key,
           c.sign AS posts, c.w * c.sign * c.sentiment_score::float8 AS sentiment_sum,
           c.w * c.sign * (c.sentiment_label = 'negative')::int AS negative,
           c.w * c.sign * (c.sentiment_label = 'neutral')::int AS neutral,
           c.w * c.sign * (c.sentiment_label = 'positive')::int AS positive,
           c.w * c.sign * c.toxicity::float8 AS toxicity_sum,
           c.w * c.sign * c.churn_risk::float8 AS churn_sum,
           c.w * c.sign * (c.churn_risk >= $34::float4)::int AS high_churn,
           c.w * c.sign * (c.emotion IS NOT DISTINCT FROM 'anger')::int AS anger,
           c.w * c.sign * (c.emotion IS NOT DISTINCT FROM 'joy')::int AS joy,
           c.w * c.sign * (c.emotion IS NOT DISTINCT FROM 'optimism')::int AS optimism,
           c.w * c.sign * (c.emotion IS NOT DISTINCT FROM 'sadness')::int AS sadness,
           0 AS likes, 0 AS shares, 0 AS comments, 0 AS views
    FROM counted c CROSS JOIN LATERAL (VALUES
        ('overall', ''), ('platform', c.platform),
        ('city', rollup_key('city', c.city, c.rollup_other)),
        ('country', rollup_key('country', c.country, c.rollup_other)),
        ('product', rollup_key('product', c.product, c.rollup_other)),
        ('channel', rollup_key('channel', c.channel, c.rollup_other)),
        ('language', rollup_key('language', COALESCE(c.lang, 'und'), c.rollup_other)),
        ('support', c.language_support))
        AS d(dimension, key)
    WHERE d.key IS NOT NULL
      AND (c.w = 1 OR d.dimension IN ('language', 'support'))
    UNION ALL
    SELECT date_trunc('minute', e.at), d.dimension, d.key,
           0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
           CASE WHEN e.kind = 'like' THEN e.count ELSE 0 END,
           CASE WHEN e.kind = 'share' THEN e.count ELSE 0 END,
           CASE WHEN e.kind = 'comment' THEN e.count ELSE 0 END,
           CASE WHEN e.kind = 'view' THEN e.count ELSE 0 END
    FROM e
    LEFT JOIN posts s ON s.id = e.post_id
    LEFT JOIN p ON p.id = e.post_id
    CROSS JOIN LATERAL (SELECT COALESCE(s.rollup_other, p.rollup_other, 0::int2) AS bits) AS o
    CROSS JOIN LATERAL (VALUES
        ('overall', ''), ('platform', COALESCE(s.platform, p.platform)),
        ('city', rollup_key('city', COALESCE(s.city, p.city), o.bits)),
        ('country', rollup_key('country', COALESCE(s.country, p.country), o.bits)),
        ('product', rollup_key('product', COALESCE(s.product, p.product), o.bits)),
        ('channel', rollup_key('channel', COALESCE(s.channel, p.channel), o.bits)))
        AS d(dimension, key)
    WHERE d.key IS NOT NULL
), r AS (
    -- Rows are upserted in key order, so concurrent batches lock them in the same order
    -- and cannot deadlock.
    INSERT INTO metric_rollups AS m (
        minute, dimension, key, posts, sentiment_sum, negative, neutral, positive,
        toxicity_sum, churn_sum, high_churn, anger, joy, optimism, sadness,
        likes, shares, comments, views)
    SELECT minute, dimension, key, sum(posts), sum(sentiment_sum), sum(negative),
           sum(neutral), sum(positive), sum(toxicity_sum), sum(churn_sum), sum(high_churn),
           sum(anger), sum(joy), sum(optimism), sum(sadness),
           sum(likes), sum(shares), sum(comments), sum(views)
    FROM deltas
    GROUP BY dimension, key, minute
    ORDER BY dimension, key, minute
    ON CONFLICT (dimension, key, minute) DO UPDATE SET
        posts = m.posts + EXCLUDED.posts,
        sentiment_sum = m.sentiment_sum + EXCLUDED.sentiment_sum,
        negative = m.negative + EXCLUDED.negative,
        neutral = m.neutral + EXCLUDED.neutral,
        positive = m.positive + EXCLUDED.positive,
        toxicity_sum = m.toxicity_sum + EXCLUDED.toxicity_sum,
        churn_sum = m.churn_sum + EXCLUDED.churn_sum,
        high_churn = m.high_churn + EXCLUDED.high_churn,
        anger = m.anger + EXCLUDED.anger,
        joy = m.joy + EXCLUDED.joy,
        optimism = m.optimism + EXCLUDED.optimism,
        sadness = m.sadness + EXCLUDED.sadness,
        likes = m.likes + EXCLUDED.likes,
        shares = m.shares + EXCLUDED.shares,
        comments = m.comments + EXCLUDED.comments,
        views = m.views + EXCLUDED.views
)
SELECT 'p'::text AS kind, id FROM p
UNION ALL
SELECT 'e'::text, key FROM e
UNION ALL
SELECT 'g'::text, id FROM gone";

/// The PostgreSQL writer actor.
pub struct Store {
    pool: Pool,
    stream: String,
    high_churn: f32,
    admission: Arc<KeyAdmission>,
}

impl Store {
    /// A store writing through `pool`; `stream` qualifies engagement keys derived from entry
    /// ids; posts with churn risk at or above `high_churn` count as high-churn in rollups;
    /// `admission` decides which keys get rollups of their own.
    pub fn new(pool: Pool, stream: String, high_churn: f32, admission: Arc<KeyAdmission>) -> Self {
        Self {
            pool,
            stream,
            high_churn,
            admission,
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
        Box::pin(async move {
            let started = Instant::now();
            let result = write_batch(&pool, &stream, high_churn, &admission, &msg.0).await;
            match &result {
                Ok(outcome) => {
                    metrics::histogram!(names::STORE_BATCH_SECONDS).record(started.elapsed());
                    metrics::counter!(names::STORED_ROWS, "table" => "posts")
                        .increment(outcome.inserted_posts.len() as u64);
                    metrics::counter!(names::STORED_ROWS, "table" => "engagements")
                        .increment(outcome.inserted_engagements);
                    metrics::counter!(names::POSTS_DELETED)
                        .increment(outcome.deleted_posts.len() as u64);
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

/// The natural key of an engagement: the producer's id, else the stream entry it came from.
pub fn engagement_key(stream: &str, id: Option<&str>, entry_id: &str) -> String {
    match id {
        Some(id) => format!("id:{id}"),
        None => format!("entry:{stream}/{entry_id}"),
    }
}

/// Writes one batch in one statement; the store actor and the benchmark's raw insert ceiling
/// share it, so the ceiling measures exactly the statement Pulse runs.
pub async fn write_batch(
    pool: &Pool,
    stream: &str,
    high_churn: f32,
    admission: &KeyAdmission,
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
        .prepare_cached(INSERT_BATCH)
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

    let engs = &batch.engagements;
    let keys: Vec<String> = engs
        .iter()
        .map(|e| engagement_key(stream, e.engagement.id.as_deref(), &e.entry_id))
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
        .map(|e| i32::try_from(e.engagement.count.unwrap_or(1)).unwrap_or(i32::MAX))
        .collect();
    let eng_entries: Vec<&str> = engs.iter().map(|e| e.entry_id.as_str()).collect();
    let dels = &batch.deletions;
    let deleted_ids: Vec<&str> = dels.iter().map(|d| d.deletion.post_id.as_str()).collect();
    let deleted_ats: Vec<chrono::DateTime<chrono::Utc>> =
        dels.iter().map(|d| d.deletion.at).collect();
    let deleted_entries: Vec<&str> = dels.iter().map(|d| d.entry_id.as_str()).collect();

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
            ],
        )
        .await
        .map_err(classify)?;

    let mut outcome = StoreOutcome::default();
    for row in rows {
        let kind: &str = row.get(0);
        match kind {
            "p" => outcome.inserted_posts.push(row.get(1)),
            "g" => outcome.deleted_posts.push(row.get(1)),
            _ => {
                outcome.inserted_engagements += 1;
                outcome.inserted_engagement_keys.push(row.get(1));
            }
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
