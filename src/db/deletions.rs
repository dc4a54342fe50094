//! Deletions that raced their post: a batch that stores a post and a concurrent batch that
//! deletes it each see the database as it was before the other committed, so neither marks
//! the post. [`mark_raced`] finds such posts among the deletions of the last five minutes (a
//! race is between batches committed seconds apart, and the window keeps each run to the
//! deletions of those minutes) and marks them, taking them back out of the rollups, once (a
//! post already marked is skipped, and two processes running it at once are serialised by
//! the row lock).

use tokio_postgres::Client;

const MARK_RACED: &str = "
WITH gone AS (
    UPDATE posts SET deleted_at = d.at
    FROM post_deletions d
    WHERE d.ingested_at > now() - interval '5 minutes'
      AND posts.id = d.post_id AND posts.deleted_at IS NULL
    RETURNING posts.created_at, posts.platform, posts.city, posts.country, posts.product,
              posts.channel, posts.sentiment_label, posts.sentiment_score, posts.toxicity,
              posts.churn_risk, posts.emotion, posts.rollup_other
), deltas AS (
    SELECT date_trunc('minute', g.created_at) AS minute, d.dimension, d.key,
           -1 AS posts, -g.sentiment_score::float8 AS sentiment_sum,
           -(g.sentiment_label = 'negative')::int AS negative,
           -(g.sentiment_label = 'neutral')::int AS neutral,
           -(g.sentiment_label = 'positive')::int AS positive,
           -g.toxicity::float8 AS toxicity_sum, -g.churn_risk::float8 AS churn_sum,
           -(g.churn_risk >= $1::float4)::int AS high_churn,
           -(g.emotion IS NOT DISTINCT FROM 'anger')::int AS anger,
           -(g.emotion IS NOT DISTINCT FROM 'joy')::int AS joy,
           -(g.emotion IS NOT DISTINCT FROM 'optimism')::int AS optimism,
           -(g.emotion IS NOT DISTINCT FROM 'sadness')::int AS sadness
    FROM gone g CROSS JOIN LATERAL (VALUES
        ('overall', ''), ('platform', g.platform),
        ('city', rollup_key('city', g.city, g.rollup_other)),
        ('country', rollup_key('country', g.country, g.rollup_other)),
        ('product', rollup_key('product', g.product, g.rollup_other)),
        ('channel', rollup_key('channel', g.channel, g.rollup_other))) AS d(dimension, key)
    WHERE d.key IS NOT NULL
), r AS (
    UPDATE metric_rollups AS m SET
        posts = m.posts + x.posts, sentiment_sum = m.sentiment_sum + x.sentiment_sum,
        negative = m.negative + x.negative, neutral = m.neutral + x.neutral,
        positive = m.positive + x.positive, toxicity_sum = m.toxicity_sum + x.toxicity_sum,
        churn_sum = m.churn_sum + x.churn_sum, high_churn = m.high_churn + x.high_churn,
        anger = m.anger + x.anger, joy = m.joy + x.joy, optimism = m.optimism + x.optimism,
        sadness = m.sadness + x.sadness
    FROM (SELECT minute, dimension, key, sum(posts) AS posts,
                 sum(sentiment_sum) AS sentiment_sum, sum(negative) AS negative,
                 sum(neutral) AS neutral, sum(positive) AS positive,
                 sum(toxicity_sum) AS toxicity_sum, sum(churn_sum) AS churn_sum,
                 sum(high_churn) AS high_churn, sum(anger) AS anger, sum(joy) AS joy,
                 sum(optimism) AS optimism, sum(sadness) AS sadness
          FROM deltas GROUP BY minute, dimension, key) AS x
    WHERE m.minute = x.minute AND m.dimension = x.dimension AND m.key = x.key
)
SELECT count(*) FROM gone";

/// Marks the posts whose deletion raced them; returns how many.
pub async fn mark_raced(client: &Client, high_churn: f32) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(MARK_RACED, &[&high_churn]).await?.get(0))
}
