//! The per-minute rollups: windowed stats by dimension, from the rollups or, with filters,
//! from the stored posts of the window.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::models::metrics::{Dimension, KeyedStats, Stats, TermStats, Window};

/// Most items returned for one dimension.
pub const MAX_ITEMS: i64 = 200;

/// The sums every aggregate query selects, in this order, after any leading columns.
pub const SUMS: &str = "sum(posts)::int8, sum(sentiment_sum)::float8, sum(negative)::int8, \
    sum(neutral)::int8, sum(positive)::int8, sum(toxicity_sum)::float8, sum(churn_sum)::float8, \
    sum(high_churn)::int8, sum(anger)::int8, sum(joy)::int8, sum(optimism)::int8, \
    sum(sadness)::int8, sum(likes)::int8, sum(shares)::int8, sum(comments)::int8, sum(views)::int8";

/// The stats whose [`SUMS`] start at column `at`.
pub fn stats_at(row: &Row, at: usize) -> Stats {
    Stats::from_sums(
        |i| row.get::<_, Option<i64>>(at + i).unwrap_or(0),
        |i| row.get::<_, Option<f64>>(at + i).unwrap_or(0.0),
    )
}

/// Stats per key of `dimension` over `window` (keys with the most posts first), from the
/// rollups, or from the posts when `filters` are given.
pub async fn by_dimension(
    client: &tokio_postgres::Client,
    dimension: Dimension,
    window: Window,
    filters: &[(&'static str, String)],
    high_churn: f32,
    now: DateTime<Utc>,
) -> Result<Vec<KeyedStats>, tokio_postgres::Error> {
    let from = window.start(now);
    let rows = if filters.is_empty() {
        let sql = format!(
            "SELECT key, {SUMS} FROM metric_rollups WHERE dimension = $1 AND minute >= $2 \
             GROUP BY key ORDER BY 2 DESC, key LIMIT {MAX_ITEMS}"
        );
        client.query(&sql, &[&dimension.as_str(), &from]).await?
    } else {
        let key = match dimension {
            Dimension::Overall => "''".to_string(),
            d => d.post_column().to_string(),
        };
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
            vec![Box::new(from), Box::new(high_churn)];
        let mut clauses = vec!["p.created_at >= $1".to_string()];
        if !matches!(dimension, Dimension::Overall | Dimension::Language) {
            clauses.push(format!("p.{key} IS NOT NULL"));
        }
        // As in the rollups: posts no model understands count only by language and support.
        if !matches!(dimension, Dimension::Language | Dimension::Support) {
            clauses.push("p.language_support <> 'unsupported'".to_string());
        }
        for (column, value) in filters {
            params.push(Box::new(value.clone()));
            clauses.push(format!("p.{column} = ${}", params.len()));
        }
        // Only the columns the sums need, and the window's engagements summed per post once:
        // no copy of whole rows (texts included) is materialised.
        let sql = format!(
            "SELECT {key} AS key, {SUMS} FROM ( \
                 SELECT p.platform, p.city, p.country, p.product, p.channel, \
                 COALESCE(p.lang, 'und') AS lang, p.language_support, 1 AS posts, \
                 p.sentiment_score::float8 AS sentiment_sum, \
                 (p.sentiment_label = 'negative')::int AS negative, \
                 (p.sentiment_label = 'neutral')::int AS neutral, \
                 (p.sentiment_label = 'positive')::int AS positive, \
                 p.toxicity::float8 AS toxicity_sum, p.churn_risk::float8 AS churn_sum, \
                 (p.churn_risk >= $2)::int AS high_churn, \
                 (p.emotion IS NOT DISTINCT FROM 'anger')::int AS anger, \
                 (p.emotion IS NOT DISTINCT FROM 'joy')::int AS joy, \
                 (p.emotion IS NOT DISTINCT FROM 'optimism')::int AS optimism, \
                 (p.emotion IS NOT DISTINCT FROM 'sadness')::int AS sadness, \
                 COALESCE(eng.likes, 0) AS likes, COALESCE(eng.shares, 0) AS shares, \
                 COALESCE(eng.comments, 0) AS comments, COALESCE(eng.views, 0) AS views \
                 FROM posts p LEFT JOIN ( \
                     SELECT e.post_id, \
                     sum(CASE WHEN e.kind = 'like' THEN e.count ELSE 0 END) AS likes, \
                     sum(CASE WHEN e.kind = 'share' THEN e.count ELSE 0 END) AS shares, \
                     sum(CASE WHEN e.kind = 'comment' THEN e.count ELSE 0 END) AS comments, \
                     sum(CASE WHEN e.kind = 'view' THEN e.count ELSE 0 END) AS views \
                     FROM engagements e WHERE e.at >= $1 GROUP BY e.post_id) eng \
                 ON eng.post_id = p.id WHERE {where_}) s \
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {MAX_ITEMS}",
            where_ = clauses.join(" AND "),
            key = if dimension == Dimension::Overall {
                key
            } else {
                format!("s.{key}")
            },
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client.query(&sql, &refs).await?
    };
    Ok(rows
        .iter()
        .map(|row| KeyedStats {
            key: row.get(0),
            stats: stats_at(row, 1),
        })
        .collect())
}

/// Stats of one key of `dimension` per bucket of `bucket_minutes` over `[from, to)`, oldest
/// first; buckets without posts are absent.
pub async fn series(
    client: &tokio_postgres::Client,
    dimension: Dimension,
    key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_minutes: i64,
) -> Result<Vec<(DateTime<Utc>, Stats)>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT date_bin(make_interval(mins => $4), minute, TIMESTAMPTZ '2000-01-01') AS bucket, {SUMS} \
         FROM metric_rollups WHERE dimension = $1 AND key = $2 AND minute >= $3 AND minute < $5 \
         GROUP BY 1 ORDER BY 1"
    );
    let bucket = bucket_minutes as i32;
    let rows = client
        .query(&sql, &[&dimension.as_str(), &key, &from, &bucket, &to])
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), stats_at(row, 1)))
        .collect())
}

/// The `limit` terms in the most posts since `from`, with their mean sentiment.
pub async fn trending_terms(
    client: &tokio_postgres::Client,
    from: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<TermStats>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT term, sum(posts)::int8, (sum(sentiment_sum) / NULLIF(sum(posts), 0))::float8 \
             FROM term_rollups WHERE minute >= $1 GROUP BY term ORDER BY 2 DESC, term LIMIT $2",
            &[&from, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let term: String = r.get(0);
            TermStats {
                hashtag: term.starts_with('#'),
                term,
                posts: r.get(1),
                sentiment_mean: r.get::<_, Option<f64>>(2).unwrap_or(0.0),
            }
        })
        .collect())
}

/// Adds per-minute term counts and sentiment sums to `term_rollups`.
pub async fn add_terms(
    client: &tokio_postgres::Client,
    terms: &std::collections::BTreeMap<
        DateTime<Utc>,
        std::collections::BTreeMap<String, (i64, f64)>,
    >,
) -> anyhow::Result<()> {
    if terms.is_empty() {
        return Ok(());
    }
    let mut minutes = Vec::new();
    let mut names = Vec::new();
    let mut counts = Vec::new();
    let mut sums = Vec::new();
    for (minute, bucket) in terms {
        for (term, (n, s)) in bucket {
            minutes.push(*minute);
            names.push(term.as_str());
            counts.push(*n);
            sums.push(*s);
        }
    }
    client
        .execute(
            "INSERT INTO term_rollups AS t (minute, term, posts, sentiment_sum) \
             SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::int8[], $4::float8[]) \
             ORDER BY 1, 2 \
             ON CONFLICT (minute, term) DO UPDATE SET posts = t.posts + EXCLUDED.posts, \
             sentiment_sum = t.sentiment_sum + EXCLUDED.sentiment_sum",
            &[&minutes, &names, &counts, &sums],
        )
        .await?;
    Ok(())
}
