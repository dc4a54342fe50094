//! Search's reads and writes: posts found through their search vectors (`posts.search`,
//! written by [`crate::search::vector`]), the facets of a search, and the vectors of posts
//! stored before there were any.

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{GenericClient, Row};

use super::posts::{post_view, POST_COLUMNS};
use super::query::{holds, Conditions};
use super::topics::{stored_text, StoredText, STORED_TEXT_COLUMNS};
use crate::models::views::PostView;
use crate::search::vector::UNSURE;

/// A search vector in `tsvector`'s binary form ([`crate::search::vector::encode`]).
#[derive(Debug, Clone, Copy)]
pub struct TsVector<'a>(pub &'a [u8]);

impl ToSql for TsVector<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        ty.name() == "tsvector"
    }

    to_sql_checked!();
}

/// `tsquery` text finding the vectors that are not exact.
fn unsure_query() -> String {
    format!("'{UNSURE}'")
}

/// How hits are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Newest,
    /// By `ts_rank_cd` of the query over the vector, then newest.
    Relevance,
}

/// Where a page starts: after the hit with this rank (relevance only), time and id.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub rank: f32,
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// What a search reads: the posts' filters, the time range and the query's lookup.
#[derive(Debug, Clone)]
pub struct Scope {
    pub filters: Vec<(&'static str, String)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The plan's `tsquery`; `None` for no lookup.
    pub tsquery: Option<String>,
    /// Whether no exact vector can match (only unsure posts are candidates).
    pub empty: bool,
    /// The plan's `tsquery` an unsure vector must match for its post to be a candidate;
    /// `None` for every unsure post.
    pub unsure: Option<String>,
}

impl Scope {
    /// The conditions every read of the scope has: live posts, the filters, the range.
    fn conditions(&self) -> Conditions {
        let mut c = Conditions::default();
        c.clause("deleted_at IS NULL".to_string());
        for (column, value) in &self.filters {
            let value = c.bind(value.clone());
            c.clause(holds("", column, &value));
        }
        if let Some(from) = self.from {
            c.push("created_at >=", from);
        }
        if let Some(to) = self.to {
            c.push("created_at <", to);
        }
        c
    }

    /// Adds the lookup: posts the query's `tsquery` finds among exact vectors, or (with
    /// `unsure`) the posts whose vectors are not written yet and those not exact that could
    /// match (a flood of posts with a long token or a word repeated hundreds of times would
    /// otherwise be checked one by one for every search, and fill the budget of checks of
    /// every page and of facets whatever the query).
    fn lookup(&self, c: &mut Conditions, found: bool, unsure: bool) -> Option<String> {
        let q = self
            .tsquery
            .as_ref()
            .filter(|_| found && !self.empty)
            .map(|q| c.bind(q.clone()));
        let mut arms = Vec::new();
        if found && !self.empty {
            match &q {
                Some(q) => arms.push(format!("search @@ {q}::text::tsquery")),
                None => arms.push("true".to_string()),
            }
        }
        if unsure {
            let marker = c.bind(unsure_query());
            let narrowed = match &self.unsure {
                Some(u) => {
                    let u = c.bind(u.clone());
                    format!(" AND search @@ {u}::text::tsquery")
                }
                None => String::new(),
            };
            arms.push(format!(
                "search IS NULL OR (search @@ {marker}::text::tsquery{narrowed})"
            ));
        }
        if arms.is_empty() {
            arms.push("false".to_string());
        }
        c.clause(format!("({})", arms.join(" OR ")));
        q
    }
}

/// A post a search read, with what it needs to decide and order it.
pub struct Candidate {
    pub post: PostView,
    /// Its vector is not exact or not written: the query must be checked on the post.
    pub unsure: bool,
    pub rank: f32,
}

/// How many candidates `scope` has, counting no further than `cap`. PostgreSQL's estimate for
/// a word its statistics do not list is a guess, and for a rare word newest first it would scan
/// the whole range by time; a count capped low is cheap either way and tells which plan fits.
pub async fn count_upto(
    client: &impl GenericClient,
    scope: &Scope,
    cap: i64,
) -> Result<i64, tokio_postgres::Error> {
    let mut c = scope.conditions();
    scope.lookup(&mut c, true, true);
    let cap = c.bind(cap);
    let sql = format!(
        "SELECT count(*)::int8 FROM (SELECT 1 FROM posts {} LIMIT {cap}) AS s",
        c.where_sql()
    );
    Ok(client.query_one(&sql, &c.params()).await?.get(0))
}

/// Up to `rows` candidates of `scope` after `after`, in `order`: the posts the lookup finds
/// and every unsure one. With `few` (a scope of few candidates, [`count_upto`]) they are all
/// found through the index first and then ordered, rather than read in order and filtered.
pub async fn candidates(
    client: &impl GenericClient,
    scope: &Scope,
    order: Order,
    after: Option<&After>,
    rows: i64,
    few: bool,
) -> Result<Vec<Candidate>, tokio_postgres::Error> {
    let mut c = scope.conditions();
    let q = scope.lookup(&mut c, true, true);
    let marker = c.bind(unsure_query());
    let rank = match (&q, order) {
        (Some(q), Order::Relevance) => {
            format!("COALESCE(ts_rank_cd(search, {q}::text::tsquery), 0)::float4")
        }
        _ => "0::float4".to_string(),
    };
    if let Some(after) = after {
        let (at, id) = (c.bind(after.created_at), c.bind(after.id.clone()));
        let clause = match order {
            Order::Newest => format!("(created_at, id) < ({at}, {id})"),
            Order::Relevance => {
                let r = c.bind(after.rank);
                format!("({rank}, created_at, id) < ({r}::float4, {at}, {id})")
            }
        };
        c.clause(clause);
    }
    let order_by = match order {
        Order::Newest => "created_at DESC, id DESC".to_string(),
        Order::Relevance => format!("{rank} DESC, created_at DESC, id DESC"),
    };
    let limit = c.bind(rows);
    let select = format!(
        "SELECT {POST_COLUMNS}, (search IS NULL OR search @@ {marker}::text::tsquery) AS unsure, \
         {rank} AS rank FROM posts {}",
        c.where_sql()
    );
    let sql = if few {
        format!(
            "WITH m AS MATERIALIZED ({select}) SELECT * FROM m ORDER BY {} LIMIT {limit}",
            order_by.replace(&rank, "rank")
        )
    } else {
        format!("{select} ORDER BY {order_by} LIMIT {limit}")
    };
    super::read_rows(client, &sql, &c.params(), |r| Candidate {
        post: post_view(r),
        unsure: r.get("unsure"),
        rank: r.get("rank"),
    })
    .await
}

/// Counts of a facet by key.
pub type Counts = Vec<(String, i64)>;

/// How many buckets posts fall into by a hash of their id (the second column of the search
/// index): facets over many matches count those of the first few buckets only, a sample of the
/// matches that is independent of their time, place and words, which the index finds without
/// visiting any other post.
pub const SAMPLE_BUCKETS: i32 = 256;

/// Most keys a facet of free labels (language, product, topic) answers: the most common. A
/// producer may give every post a product of its own, and a facet of half a million of them
/// was a body of 75 MB built in memory for one request.
pub const MAX_FACET_KEYS: usize = 200;

/// Most time buckets a facet answers: the newest. Matches posted one an hour since 1970 (a
/// producer may backfill any date) were half a million buckets for one request; 1,500 is
/// two months by the hour, four years by the day.
pub const MAX_FACET_BUCKETS: usize = 1_500;

/// The facets of the posts a search finds among exact vectors (its exact part): counts by
/// sentiment, platform, language, product and topic, and per `day` or `hour`.
#[derive(Debug, Default, Clone)]
pub struct Facets {
    pub total: i64,
    pub sentiment: Counts,
    pub platform: Counts,
    pub lang: Counts,
    pub product: Counts,
    pub topic: Counts,
    pub buckets: Vec<(DateTime<Utc>, i64)>,
}

/// The facets of the posts of `scope` the lookup finds among exact vectors, per `unit`; with
/// `sample`, of those in the first `sample` of the [`SAMPLE_BUCKETS`] only.
pub async fn exact_facets(
    client: &impl GenericClient,
    scope: &Scope,
    unit: &'static str,
    sample: Option<i32>,
) -> Result<Facets, tokio_postgres::Error> {
    let mut c = scope.conditions();
    scope.lookup(&mut c, true, false);
    let marker = c.bind(unsure_query());
    c.clause(format!("NOT (search @@ {marker}::text::tsquery)"));
    if let Some(n) = sample {
        // The expression of the search index's second column, so the index answers it: one
        // bucket as an equality, more as one range from 0 (a GIN index reads each bound of a
        // range as a key of its own, and `>= 0` would be every post).
        let bucket = format!("(hashtext(id) & {})", SAMPLE_BUCKETS - 1);
        match n.clamp(1, SAMPLE_BUCKETS) {
            1 => c.clause(format!("{bucket} = 0")),
            n => c.push(&format!("{bucket} <"), n),
        }
    }
    let unit = c.bind(unit.to_string());
    let sql = format!(
        "WITH m AS MATERIALIZED (
             SELECT sentiment_label, platform, lang, product, topics,
                    date_trunc({unit}::text, created_at, 'UTC') AS at
             FROM posts {})
         SELECT 'total', NULL::text, NULL::timestamptz, count(*)::int8 FROM m
         UNION ALL SELECT 'sentiment', sentiment_label, NULL, count(*) FROM m GROUP BY 2
         UNION ALL SELECT 'platform', platform, NULL, count(*) FROM m GROUP BY 2
         UNION ALL (SELECT 'lang', COALESCE(lang, 'und'), NULL, count(*) FROM m GROUP BY 2
             ORDER BY 4 DESC, 2 LIMIT {MAX_FACET_KEYS})
         UNION ALL (SELECT 'product', product, NULL, count(*) FROM m
             WHERE product IS NOT NULL GROUP BY 2 ORDER BY 4 DESC, 2 LIMIT {MAX_FACET_KEYS})
         UNION ALL (SELECT 'topic', t::text, NULL, count(*) FROM m, unnest(topics) t GROUP BY 2
             ORDER BY 4 DESC, 2 LIMIT {MAX_FACET_KEYS})
         UNION ALL (SELECT 'bucket', NULL, at, count(*) FROM m GROUP BY 3
             ORDER BY 3 DESC LIMIT {MAX_FACET_BUCKETS})",
        c.where_sql()
    );
    // The index finds a common word's posts across the whole store and the time index those of
    // the range; at the default 4 MB their bitmaps turn lossy and every post of a lossy page is
    // checked again (500,000 for 56,000 matches over 30 days of 5,000,000 posts: 490 ms, and
    // 400 ms with 16 MB). The read runs in the request's transaction, so this ends with it.
    client.execute("SET LOCAL work_mem = '16MB'", &[]).await?;
    let rows = client.query(&sql, &c.params()).await?;
    let mut f = Facets::default();
    for r in &rows {
        let facet: &str = r.get(0);
        let key: Option<String> = r.get(1);
        let n: i64 = r.get(3);
        let key = key.unwrap_or_default();
        match facet {
            "total" => f.total = n,
            "sentiment" => f.sentiment.push((key, n)),
            "platform" => f.platform.push((key, n)),
            "lang" => f.lang.push((key, n)),
            "product" => f.product.push((key, n)),
            "topic" => f.topic.push((key, n)),
            _ => f.buckets.push((r.get(2), n)),
        }
    }
    Ok(f)
}

/// Up to `rows` posts of `scope` after `after` (newest first) that a search must check
/// itself: every candidate with `all`, else only the unsure ones.
pub async fn to_check(
    client: &impl GenericClient,
    scope: &Scope,
    all: bool,
    after: Option<&After>,
    rows: i64,
) -> Result<Vec<PostView>, tokio_postgres::Error> {
    let mut c = scope.conditions();
    scope.lookup(&mut c, all, true);
    let after = after.map(|a| (a.created_at, a.id.clone()));
    super::posts::newest_after(client, c, after, rows).await
}

/// Up to `limit` live posts without a vector, newest first.
pub async fn unindexed(
    client: &impl GenericClient,
    limit: i64,
) -> Result<Vec<StoredText>, tokio_postgres::Error> {
    let rows: Vec<Row> = client
        .query(
            &format!(
                "SELECT {STORED_TEXT_COLUMNS} FROM posts \
                 WHERE search IS NULL AND deleted_at IS NULL \
                 ORDER BY created_at DESC, id DESC LIMIT $1"
            ),
            &[&limit],
        )
        .await?;
    Ok(rows.iter().map(stored_text).collect())
}

/// Writes the vectors of posts that have none; returns how many it wrote.
pub async fn write_vectors(
    client: &impl GenericClient,
    ids: &[&str],
    vectors: &[TsVector<'_>],
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE posts AS p SET search = u.v \
             FROM UNNEST($1::text[], $2::tsvector[]) AS u (id, v) \
             WHERE p.id = u.id AND p.search IS NULL",
            &[&ids, &vectors],
        )
        .await
}

/// Live posts without a vector.
pub async fn count_unindexed(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT count(*)::int8 FROM posts WHERE search IS NULL AND deleted_at IS NULL",
            &[],
        )
        .await?
        .get(0))
}
