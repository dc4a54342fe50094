//! The per-minute rollups: windowed stats by dimension, from the rollups or, with filters,
//! from the stored posts of the window.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::models::metrics::{Dimension, KeyedStats, Period, Stats, TermStats};

/// Most items returned for one dimension.
pub const MAX_ITEMS: i64 = 200;

/// The sums every aggregate query selects, in this order, after any leading columns.
pub const SUMS: &str = "sum(posts)::int8, sum(sentiment_sum)::float8, sum(negative)::int8, \
    sum(neutral)::int8, sum(positive)::int8, sum(toxicity_sum)::float8, sum(churn_sum)::float8, \
    sum(high_churn)::int8, sum(anger)::int8, sum(joy)::int8, sum(optimism)::int8, \
    sum(sadness)::int8, sum(likes)::int8, sum(shares)::int8, sum(comments)::int8, sum(views)::int8";

/// The columns of a post its rollup contribution depends on, in the order
/// `post_rollup_deltas` takes them (migration V20).
pub const POST_DELTA_COLUMNS: [&str; 15] = [
    "created_at",
    "platform",
    "city",
    "country",
    "product",
    "channel",
    "lang",
    "language_support",
    "rollup_other",
    "sentiment_label",
    "sentiment_score",
    "toxicity",
    "churn_risk",
    "emotion",
    "topics",
];

/// The columns of a post its engagements' contribution depends on.
pub const ENGAGEMENT_POST_COLUMNS: [&str; 7] = [
    "platform",
    "city",
    "country",
    "product",
    "channel",
    "rollup_other",
    "topics",
];

/// `columns` qualified by `alias`, comma-separated, for a select list or a call.
pub fn qualified(alias: &str, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `post_rollup_deltas` called on the post whose columns `post` qualifies, with the SQL
/// expressions `sign` (1 or -1) and `high_churn`.
pub fn post_deltas(sign: &str, post: &str, high_churn: &str) -> String {
    format!(
        "post_rollup_deltas({sign}, {}, {high_churn})",
        qualified(post, &POST_DELTA_COLUMNS)
    )
}

/// `engagement_rollup_deltas` called on the engagement whose columns `engagement` qualifies
/// (`at`, `kind`, `count`), counted under the post whose columns `post` qualifies.
pub fn engagement_deltas(sign: &str, engagement: &str, post: &str) -> String {
    format!(
        "engagement_rollup_deltas({sign}, {engagement}.at, {engagement}.kind, {engagement}.count, {})",
        qualified(post, &ENGAGEMENT_POST_COLUMNS)
    )
}

/// Adds the rows of a `deltas` relation (the columns `post_rollup_deltas` returns) to the
/// rollups, one upsert per key and minute. Rows are upserted in key order, so concurrent
/// writers lock them in the same order and cannot deadlock. Every statement that changes the
/// rollups ends with it.
pub const ADD_DELTAS: &str = "
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
        views = m.views + EXCLUDED.views";

/// The stats whose [`SUMS`] start at column `at`.
pub fn stats_at(row: &Row, at: usize) -> Stats {
    Stats::from_sums(
        |i| row.get::<_, Option<i64>>(at + i).unwrap_or(0),
        |i| row.get::<_, Option<f64>>(at + i).unwrap_or(0.0),
    )
}

/// Stats per key of `dimension` over `period` (the [`MAX_ITEMS`] keys with the most posts,
/// most first), from the rollups, or from the posts when `filters` are given.
pub async fn by_dimension(
    client: &tokio_postgres::Client,
    dimension: Dimension,
    period: Period,
    filters: &[(&'static str, String)],
    high_churn: f32,
) -> Result<Vec<KeyedStats>, tokio_postgres::Error> {
    stats_by_key(client, dimension, None, period, filters, high_churn).await
}

/// [`by_dimension`] for the keys `keys` only, however many (a deployment's topics).
pub async fn of_keys(
    client: &tokio_postgres::Client,
    dimension: Dimension,
    keys: &[String],
    period: Period,
    filters: &[(&'static str, String)],
    high_churn: f32,
) -> Result<Vec<KeyedStats>, tokio_postgres::Error> {
    stats_by_key(client, dimension, Some(keys), period, filters, high_churn).await
}

/// The SQL bound on `column` (a minute) that keeps it before `period`'s end, as the `n`th
/// parameter; nothing for a window, which runs up to now.
fn before_end(period: Period, column: &str, n: usize) -> String {
    match period.to {
        Some(_) => format!("AND {column} < ${n}::timestamptz"),
        None => String::new(),
    }
}

async fn stats_by_key(
    client: &tokio_postgres::Client,
    dimension: Dimension,
    keys: Option<&[String]>,
    period: Period,
    filters: &[(&'static str, String)],
    high_churn: f32,
) -> Result<Vec<KeyedStats>, tokio_postgres::Error> {
    let from = period.from;
    let to = period.to;
    let limit = match keys {
        Some(_) => String::new(),
        None => format!("LIMIT {MAX_ITEMS}"),
    };
    let keys = keys.map(<[String]>::to_vec);
    let rows = if filters.is_empty() {
        let name = dimension.as_str();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name, &from];
        let mut only = String::new();
        if let Some(keys) = &keys {
            params.push(keys);
            only = format!("AND key = ANY(${}::text[])", params.len());
        }
        if let Some(to) = &to {
            params.push(to);
        }
        let sql = format!(
            "SELECT key, {SUMS} FROM metric_rollups WHERE dimension = $1 AND minute >= $2 {only}              {} GROUP BY key ORDER BY 2 DESC, key {limit}",
            before_end(period, "minute", params.len())
        );
        client.query(&sql, &params).await?
    } else if let (Dimension::Overall, [("topics", topic)]) = (dimension, filters) {
        // A topic's own rollups: the overall figures of its posts.
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![topic, &from];
        if let Some(to) = &to {
            params.push(to);
        }
        let sql = format!(
            "SELECT '' AS key, {SUMS} FROM metric_rollups WHERE dimension = 'topic' AND key = $1 \
             AND minute >= $2 {} HAVING count(*) > 0",
            before_end(period, "minute", 3)
        );
        client.query(&sql, &params).await?
    } else {
        // The same contributions the rollups add up (`post_rollup_deltas`), from the posts
        // and engagements that pass the filters: filtered and unfiltered figures agree.
        let only = if keys.is_some() {
            "AND d.key = ANY($4::text[])"
        } else {
            ""
        };
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![
            Box::new(from),
            Box::new(high_churn),
            Box::new(dimension.as_str()),
            Box::new(keys.unwrap_or_default()),
            // A window's end: none (the far future stands in for it).
            Box::new(to),
        ];
        let mut clauses = vec!["p.deleted_at IS NULL".to_string()];
        for (column, value) in filters {
            params.push(Box::new(value.clone()));
            clauses.push(super::query::holds(
                "p",
                column,
                &format!("${}", params.len()),
            ));
        }
        let where_ = clauses.join(" AND ");
        let sql = format!(
            "SELECT d.key, {SUMS} FROM ( \
                 SELECT d.* FROM posts p \
                 CROSS JOIN LATERAL {} d \
                 WHERE p.created_at >= $1::timestamptz - interval '1 minute' \
                   AND ($5::timestamptz IS NULL OR p.created_at < $5::timestamptz + interval '1 minute') \
                   AND {where_} \
                 UNION ALL \
                 SELECT d.* FROM engagements e JOIN posts p ON p.id = e.post_id \
                 CROSS JOIN LATERAL {} d \
                 WHERE e.at >= $1::timestamptz - interval '1 minute' \
                   AND ($5::timestamptz IS NULL OR e.at < $5::timestamptz + interval '1 minute') \
                   AND NOT e.held AND {where_}) d \
             WHERE d.dimension = $3::text AND d.minute >= $1::timestamptz \
               AND ($5::timestamptz IS NULL OR d.minute < $5::timestamptz) \
               AND ($4::text[] IS NOT NULL) {only} \
             GROUP BY 1 ORDER BY 2 DESC, 1 {limit}",
            post_deltas("1", "p", "$2::float4"),
            engagement_deltas("1", "e", "p"),
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
/// first; buckets without posts are absent. Buckets are counted from midnight UTC, whatever the
/// session's time zone (an origin without a zone is read in it: hours at :30 in India).
pub async fn series(
    client: &tokio_postgres::Client,
    dimension: Dimension,
    key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_minutes: i64,
) -> Result<Vec<(DateTime<Utc>, Stats)>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT date_bin(make_interval(mins => $4), minute, TIMESTAMPTZ '2000-01-01 00:00+00') AS bucket, {SUMS} \
         FROM metric_rollups WHERE dimension = $1 AND key = $2 AND minute >= $3 AND minute < $5 \
         GROUP BY 1 ORDER BY 1"
    );
    let bucket = bucket_minutes as i32;
    super::read_rows(
        client,
        &sql,
        &[&dimension.as_str(), &key, &from, &bucket, &to],
        |row| (row.get(0), stats_at(row, 1)),
    )
    .await
}

/// The `limit` terms in the most posts of `period`, with their mean sentiment.
pub async fn trending_terms(
    client: &tokio_postgres::Client,
    period: Period,
    limit: i64,
) -> Result<Vec<TermStats>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT term, sum(posts)::int8, (sum(sentiment_sum) / NULLIF(sum(posts), 0))::float8 \
         FROM term_rollups WHERE minute >= $1 AND ($3::timestamptz IS NULL OR minute < $3) \
         GROUP BY term HAVING sum(posts) > 0 ORDER BY 2 DESC, term LIMIT $2",
        &[&period.from, &limit, &period.to],
        |r| {
            let term: String = r.get(0);
            TermStats {
                hashtag: term.starts_with('#'),
                term,
                posts: r.get(1),
                sentiment_mean: r.get::<_, Option<f64>>(2).unwrap_or(0.0),
            }
        },
    )
    .await
}

/// Applies per-minute term deltas (posts and sentiment sums) to `term_rollups`: additions
/// upserted, removals (negative counts, of deleted posts) subtracted from the rows they were
/// added to, never below zero, in one transaction.
pub async fn apply_terms(
    client: &mut tokio_postgres::Client,
    terms: &std::collections::BTreeMap<
        DateTime<Utc>,
        std::collections::BTreeMap<String, (i64, f64)>,
    >,
) -> anyhow::Result<()> {
    let (mut added, mut removed) = (TermRows::default(), TermRows::default());
    for (minute, bucket) in terms {
        for (term, (n, s)) in bucket {
            match n.cmp(&0) {
                std::cmp::Ordering::Greater => added.push(*minute, term, *n, *s),
                std::cmp::Ordering::Less => removed.push(*minute, term, -*n, -*s),
                std::cmp::Ordering::Equal => {}
            }
        }
    }
    if added.minutes.is_empty() && removed.minutes.is_empty() {
        return Ok(());
    }
    let tx = client.transaction().await?;
    if !added.minutes.is_empty() {
        tx.execute(
            "INSERT INTO term_rollups AS t (minute, term, posts, sentiment_sum) \
             SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::int8[], $4::float8[]) \
             ORDER BY 1, 2 \
             ON CONFLICT (minute, term) DO UPDATE SET posts = t.posts + EXCLUDED.posts, \
             sentiment_sum = t.sentiment_sum + EXCLUDED.sentiment_sum",
            &[&added.minutes, &added.terms, &added.posts, &added.sums],
        )
        .await?;
    }
    if !removed.minutes.is_empty() {
        tx.execute(
            "UPDATE term_rollups AS t SET posts = GREATEST(t.posts - r.posts, 0), \
             sentiment_sum = CASE WHEN t.posts - r.posts > 0 \
                 THEN t.sentiment_sum - r.sentiment_sum ELSE 0 END \
             FROM (SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::int8[], $4::float8[]) \
                   ORDER BY 1, 2) AS r (minute, term, posts, sentiment_sum) \
             WHERE t.minute = r.minute AND t.term = r.term",
            &[
                &removed.minutes,
                &removed.terms,
                &removed.posts,
                &removed.sums,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Term rows as the columns of an UNNEST.
#[derive(Default)]
struct TermRows<'a> {
    minutes: Vec<DateTime<Utc>>,
    terms: Vec<&'a str>,
    posts: Vec<i64>,
    sums: Vec<f64>,
}

impl<'a> TermRows<'a> {
    fn push(&mut self, minute: DateTime<Utc>, term: &'a str, posts: i64, sum: f64) {
        self.minutes.push(minute);
        self.terms.push(term);
        self.posts.push(posts);
        self.sums.push(sum);
    }
}
