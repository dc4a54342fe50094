//! `GET /api/v1/search`: stored posts that a query of the topics language matches
//! (docs/search.md), with the posts API's filters, newest first or by relevance, highlighted,
//! with facets on request, keyset-paginated.
//!
//! The index finds candidates ([`crate::search::plan`]); every candidate whose vector is not
//! exact, and every candidate of a `NEAR` query, is checked against the query itself, so a
//! search returns what a topic with the same query would match. A request checks at most
//! [`MAX_CHECKED`] posts one by one; a page that reaches it ends early, with a cursor.

pub mod export;

use std::sync::Arc;

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::config::SearchSettings;
use crate::db::search::{self as db, After, Order, Scope};
use crate::http::answer::Answer;
use crate::http::api::topics::parsed;
use crate::http::cursor;
use crate::http::documented::{CostlyReadBusy, PostgresBusy, ReadTimedOut};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::filters::with_post_filters;
use crate::http::state::State;
use crate::models::errors::ErrorCode;
use crate::models::views::PostView;
use crate::search::{plan, PageHighlights};
use crate::telemetry::names;
use crate::topics::{Expr, PostFields, TopicSet};

/// Page size when the caller does not ask for one.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: i64 = 100;
/// Most posts one request checks against its query one by one.
pub const MAX_CHECKED: usize = 20_000;
/// Below this many candidates, a search finds them all through the index before ordering them.
const FEW: i64 = 2_000;
/// Candidates read at a time while a page needs checking.
const CHECK_BATCH: i64 = 500;

with_post_filters! {
    /// A search: the query and the posts API's filters.
    #[derive(Debug, Clone, Deserialize, Serialize, IntoParams)]
    #[serde(deny_unknown_fields)]
    #[into_params(parameter_in = Query)]
    pub struct SearchQuery {
        /// A query in the topics language (docs/topics.md): `refund* AND lang:de NOT "gift card"`.
        pub q: String,
        /// Inclusive lower bound on `created_at` (RFC 3339).
        #[serde(default, deserialize_with = "crate::models::time::bounded")]
        pub from: Option<DateTime<Utc>>,
        /// Exclusive upper bound on `created_at` (RFC 3339).
        #[serde(default, deserialize_with = "crate::models::time::bounded")]
        pub to: Option<DateTime<Utc>>,
        /// `newest` (default) or `relevance` (how densely the query's words stand in the post).
        pub order: Option<String>,
        /// Page size, 1 to 100 (default 20).
        #[param(minimum = 1, maximum = 100)]
        pub limit: Option<i64>,
        /// Opaque cursor from the previous page's `next_cursor` of the same search.
        pub cursor: Option<String>,
        /// `true` for counts by sentiment, platform, language, product, topic and time.
        pub facets: Option<bool>,
        /// The facets' time buckets: `hour` or `day` (default: `hour` for ranges up to three
        /// days); the newest 1,500 are answered.
        pub interval: Option<String>,
        /// `true` for facets that count every match however many there are; by default, facets
        /// over more than `search.exact_facets_up_to` matches are estimated from a sample.
        pub exact: Option<bool>,
        /// Exports only (`GET /api/v1/search/export`): `csv` (default) or `jsonl`.
        pub format: Option<String>,
    }
}

/// One post a search found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub post: PostView,
    /// Where the query's words stand in `post.text`: `[start, end)` in characters (Unicode
    /// code points), sorted, not overlapping.
    pub highlights: Vec<[usize; 2]>,
    /// The relevance score (ordered by relevance only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

/// A count under one key of a facet.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FacetCount {
    pub key: String,
    pub count: i64,
}

/// A count in one time bucket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BucketCount {
    pub at: DateTime<Utc>,
    pub count: i64,
}

/// Counts of every post the search matches (not only the page's).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchFacets {
    pub total: i64,
    pub sentiment: Vec<FacetCount>,
    pub platform: Vec<FacetCount>,
    pub lang: Vec<FacetCount>,
    pub product: Vec<FacetCount>,
    /// By topic id.
    pub topic: Vec<FacetCount>,
    /// `hour` or `day`.
    pub interval: String,
    pub buckets: Vec<BucketCount>,
    /// Present when the counts are estimates: what share of the matches was counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<FacetSample>,
}

/// The sample sampled facets were counted on: the matches in `share` of the store, chosen by a
/// hash of each post's id; each count is the sample's count divided by `share`, rounded (posts
/// that must be checked one by one are all counted, not sampled).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FacetSample {
    /// A multiple of 1/256.
    pub share: f64,
    /// Matches counted.
    pub posts: i64,
}

/// A page of a search.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    /// Pass as `cursor` (with the same search) for the next page; null on the last page. A
    /// page may hold fewer than `limit` hits and still have a next one, when it checked as
    /// many posts one by one as a request may.
    pub next_cursor: Option<String>,
    /// Posts checked against the query one by one for this page.
    pub checked: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<SearchFacets>,
}

/// A search validated: its parsed query, its plan and scope.
pub struct Prepared {
    pub expr: Arc<Expr>,
    pub set: Arc<TopicSet>,
    pub scope: Scope,
    /// Whether a candidate the index finds (with an exact vector) is a match unchecked.
    pub exact: bool,
    pub order: Order,
    /// Ties a cursor to the search that issued it.
    pub fingerprint: String,
}

/// Validates `q`: the query, the filters, the range and the order.
pub fn prepare(q: &SearchQuery) -> Result<Prepared, ApiError> {
    let expr = parsed(&q.q)?;
    let filters = q.post_filters()?;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from >= to {
            return Err(ApiError::invalid_query("from must be before to"));
        }
    }
    let order = match q.order.as_deref() {
        None | Some("newest") => Order::Newest,
        Some("relevance") => Order::Relevance,
        Some(other) => {
            return Err(ApiError::invalid_query(format!(
                "order must be newest or relevance, not `{other}`"
            )))
        }
    };
    let plan = plan(&expr);
    let fingerprint = {
        let mut h = Sha256::new();
        let key = (
            &q.q,
            &filters,
            q.from.map(|t| t.timestamp_micros()),
            q.to.map(|t| t.timestamp_micros()),
            matches!(order, Order::Relevance),
        );
        h.update(format!("{key:?}").as_bytes());
        crate::models::hex::hex(&h.finalize()[..8])
    };
    Ok(Prepared {
        set: Arc::new(TopicSet::of(0, 1, &expr)),
        expr: Arc::new(expr),
        scope: Scope {
            filters,
            from: q.from,
            to: q.to,
            tsquery: plan.tsquery,
            empty: plan.empty,
            unsure: plan.unsure,
        },
        exact: plan.exact,
        order,
        fingerprint,
    })
}

/// Whether `scope` has so few candidates that they are best found through the index first and
/// then ordered by time (a rare word newest first would otherwise read the range by time).
pub async fn few(
    client: &impl tokio_postgres::GenericClient,
    scope: &db::Scope,
) -> Result<bool, tokio_postgres::Error> {
    Ok(db::count_upto(client, scope, FEW).await? < FEW)
}

/// What a query can see of a stored post.
pub fn fields(p: &PostView) -> PostFields<'_> {
    PostFields {
        text: &p.text,
        author: &p.author.id,
        platform: p.platform.as_str(),
        lang: p.lang.as_deref(),
        country: p.geo.country.as_deref(),
        city: p.geo.city.as_deref(),
        product: p.product.as_deref(),
        channel: p.channel.as_deref(),
        url: p.url.as_deref(),
    }
}

fn encode_cursor(fingerprint: &str, after: &After) -> String {
    let raw = format!(
        "{fingerprint}|{}|{}|{}",
        after.rank.to_bits(),
        after.created_at.timestamp_micros(),
        after.id
    );
    cursor::encode(&raw)
}

fn decode_cursor(fingerprint: &str, encoded: &str) -> Result<After, ApiError> {
    let bad = |why: &str| ApiError::bad_request(ErrorCode::InvalidCursor, why.to_string());
    let raw = cursor::decode(encoded).ok_or_else(|| bad("cursor is not valid"))?;
    let mut parts = raw.splitn(4, '|');
    let (Some(print), Some(rank), Some(micros), Some(id)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("cursor is not valid"));
    };
    if print != fingerprint {
        return Err(bad(
            "cursor belongs to another search (query, filters, range or order)",
        ));
    }
    let rank = rank.parse::<u32>().ok().map(f32::from_bits);
    let created = cursor::time(micros);
    match (rank, created) {
        (Some(rank), Some(created_at)) if rank.is_finite() && crate::db::query::storable(id) => {
            Ok(After {
                rank,
                created_at,
                id: id.to_string(),
            })
        }
        _ => Err(bad("cursor is not valid")),
    }
}

/// Searches stored posts.
#[utoipa::path(
    tag = "search", operation_id = "search_posts", summary = "Search stored posts",
    description = "Posts a query of the topics language matches, with the posts API's filters, \
            a topic and a time range; newest first or by relevance; each hit with its analysis, \
            topics, story and highlights; facets on request. Deleted posts never appear.",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of hits", body = SearchPage),
        (status = 400, description = "A query that does not parse (`invalid_topic_query`), a \
            bad filter, limit or order (`invalid_query`), a cursor of another search \
            (`invalid_cursor`), facets too broad to count (`query_too_broad`)", body = ErrorBody),
        CostlyReadBusy, PostgresBusy, ReadTimedOut,
    )
)]
#[get("/api/v1/search")]
pub async fn search(state: State, query: web::Query<SearchQuery>) -> Answer {
    let q = query.into_inner();
    let _costly = match q.facets {
        Some(true) => Some(state.costly_read().await?),
        _ => None,
    };
    let limit = crate::http::filters::page_limit(q.limit, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let interval = match q.interval.as_deref() {
        None => None,
        Some("hour") => Some("hour"),
        Some("day") => Some("day"),
        Some(other) => {
            return Err(ApiError::invalid_query(format!(
                "interval must be hour or day, not `{other}`"
            )))
        }
    };
    if q.format.is_some() {
        return Err(ApiError::invalid_query(
            "format applies to exports (GET /api/v1/search/export)",
        ));
    }
    let prepared = prepare(&q)?;
    let mut after = match &q.cursor {
        Some(c) => Some(decode_cursor(&prepared.fingerprint, c)?),
        None => None,
    };
    // One connection for the whole request: the API's connections rest in proportion to their
    // use after each is given back, and a page's reads and its facets are one piece of work,
    // read from one snapshot (the search indexer may write vectors meanwhile: a post read as
    // unsure by one statement and as indexed by the next would be counted twice or not at all).
    let mut connection = state.db().await?;
    let client = connection
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let few = prepared.order == Order::Newest && few(&*client, &prepared.scope).await?;
    let page_time = std::time::Duration::from_millis(state.settings.search.page_time_ms);
    let deadline = std::time::Instant::now() + page_time;
    let mut items: Vec<SearchHit> = Vec::new();
    let mut checked = 0usize;
    let mut more = false;
    let mut first = true;
    // One budget of highlighting for the whole page, however many batches it reads.
    let mut page_marks = PageHighlights::default();
    loop {
        // An exact plan's candidates are hits but for the unsure ones that fail their check:
        // its first read takes a page, and only a page that must read on (its unsure candidates
        // failed) reads batches, not a page at a time (a flood of them was a statement for
        // every 21 posts checked).
        let rows = if prepared.exact && first {
            limit + 1
        } else {
            CHECK_BATCH.max(limit + 1)
        };
        first = false;
        let candidates = db::candidates(
            &*client,
            &prepared.scope,
            prepared.order,
            after.as_ref(),
            rows,
            few,
        )
        .await?;
        let read = candidates.len() as i64;
        let set = prepared.set.clone();
        let exact = prepared.exact;
        let expr = prepared.expr.clone();
        let wanted = (limit + 1) as usize - items.len();
        let budget = MAX_CHECKED - checked;
        let relevance = prepared.order == Order::Relevance;
        let mut marks = std::mem::take(&mut page_marks);
        let (hits, examined, last, marks) = web::block(move || {
            let mut hits = Vec::new();
            let mut examined = 0;
            let mut last = None;
            for c in candidates {
                if hits.len() == wanted || examined == budget {
                    break;
                }
                last = Some(After {
                    rank: c.rank,
                    created_at: c.post.created_at,
                    id: c.post.id.clone(),
                });
                if c.unsure || !exact {
                    examined += 1;
                    if set.matches(&fields(&c.post)).is_empty() {
                        continue;
                    }
                }
                hits.push(SearchHit {
                    highlights: marks.of(&expr, &c.post.text),
                    score: relevance.then_some(c.rank),
                    post: c.post,
                });
            }
            (hits, examined, last, marks)
        })
        .await
        .map_err(ApiError::internal)?;
        page_marks = marks;
        checked += examined;
        items.extend(hits);
        if last.is_some() {
            after = last;
        }
        if items.len() > limit as usize {
            more = true;
            break;
        }
        if read < rows {
            break;
        }
        if checked >= MAX_CHECKED || std::time::Instant::now() >= deadline {
            more = true;
            break;
        }
    }
    metrics::counter!(names::SEARCH_CHECKED).increment(checked as u64);
    metrics::counter!(names::SEARCHES, "kind" => "page").increment(1);
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|h| After {
            rank: h.score.unwrap_or(0.0),
            created_at: h.post.created_at,
            id: h.post.id.clone(),
        })
    } else if more {
        after
    } else {
        None
    };
    let facets = if q.facets == Some(true) {
        let interval = interval.unwrap_or_else(|| default_interval(q.from, q.to));
        // A scope of few candidates is counted whole, without a first count to estimate it.
        let exact = q.exact == Some(true) || few;
        Some(facets_of(&*client, &prepared, interval, &state.settings.search, exact).await?)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(SearchPage {
        items,
        next_cursor: next_cursor.map(|a| encode_cursor(&prepared.fingerprint, &a)),
        checked,
        facets,
    }))
}

/// `hour` for a range of up to three days, else `day`.
fn default_interval(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> &'static str {
    match (from, to.unwrap_or_else(Utc::now)) {
        (Some(from), to) if to - from <= TimeDelta::days(3) => "hour",
        _ => "day",
    }
}

/// The facets of every post the search matches: counted by PostgreSQL among exact vectors
/// (for an exact plan), and one by one for the rest, within [`MAX_CHECKED`] posts.
async fn facets_of(
    client: &impl tokio_postgres::GenericClient,
    prepared: &Prepared,
    interval: &'static str,
    settings: &SearchSettings,
    exact: bool,
) -> Result<SearchFacets, ApiError> {
    let mut tally = Tally::default();
    if prepared.exact {
        let (f, sample) = counted_facets(client, prepared, interval, settings, exact).await?;
        let scale = |n: i64| match sample {
            Some(m) => (n as f64 * f64::from(db::SAMPLE_BUCKETS) / f64::from(m)).round() as i64,
            None => n,
        };
        tally.total = scale(f.total);
        for (map, counts) in [
            (&mut tally.sentiment, f.sentiment),
            (&mut tally.platform, f.platform),
            (&mut tally.lang, f.lang),
            (&mut tally.product, f.product),
            (&mut tally.topic, f.topic),
        ] {
            for (k, n) in counts {
                *map.entry(k).or_default() += scale(n);
            }
        }
        for (at, n) in f.buckets {
            *tally.buckets.entry(at).or_default() += scale(n);
        }
        tally.sample = sample.map(|m| FacetSample {
            share: f64::from(m) / f64::from(db::SAMPLE_BUCKETS),
            posts: f.total,
        });
    }
    // The posts to check one by one: the unsure ones, or every candidate of an inexact plan.
    let mut after: Option<After> = None;
    let mut checked = 0usize;
    loop {
        let page = db::to_check(
            client,
            &prepared.scope,
            !prepared.exact,
            after.as_ref(),
            CHECK_BATCH,
        )
        .await?;
        let read = page.len() as i64;
        checked += page.len();
        if checked > MAX_CHECKED {
            return Err(ApiError::bad_request(
                ErrorCode::QueryTooBroad,
                format!(
                    "counting these facets would check more than {MAX_CHECKED} posts one by one; \
                     add words, filters or a shorter time range"
                ),
            ));
        }
        if let Some(last) = page.last() {
            after = Some(After {
                rank: 0.0,
                created_at: last.created_at,
                id: last.id.clone(),
            });
        }
        let set = prepared.set.clone();
        let matched: Vec<PostView> = web::block(move || {
            page.into_iter()
                .filter(|p| !set.matches(&fields(p)).is_empty())
                .collect()
        })
        .await
        .map_err(ApiError::internal)?;
        for p in &matched {
            tally.add(p, interval);
        }
        if read < CHECK_BATCH {
            break;
        }
    }
    metrics::counter!(names::SEARCH_CHECKED).increment(checked as u64);
    metrics::counter!(names::SEARCHES, "kind" => "facets").increment(1);
    Ok(tally.into_facets(interval))
}

/// The facets PostgreSQL counts among exact vectors, and how many of the
/// [`db::SAMPLE_BUCKETS`] they were counted in when sampled. A first count in one bucket
/// estimates the matches; up to `settings.exact_facets_up_to` of them are all counted,
/// above that about `settings.facet_sample`, in as many buckets as that takes.
async fn counted_facets(
    client: &impl tokio_postgres::GenericClient,
    prepared: &Prepared,
    interval: &'static str,
    settings: &SearchSettings,
    exact: bool,
) -> Result<(db::Facets, Option<i32>), ApiError> {
    let scope = &prepared.scope;
    if exact {
        return Ok((db::exact_facets(client, scope, interval, None).await?, None));
    }
    let first = db::exact_facets(client, scope, interval, Some(1)).await?;
    let estimate = first.total * i64::from(db::SAMPLE_BUCKETS);
    let buckets = (settings.facet_sample * i64::from(db::SAMPLE_BUCKETS) + estimate - 1)
        .checked_div(estimate)
        .unwrap_or(i64::MAX);
    if estimate <= settings.exact_facets_up_to || buckets >= i64::from(db::SAMPLE_BUCKETS) {
        return Ok((db::exact_facets(client, scope, interval, None).await?, None));
    }
    match buckets.max(1) as i32 {
        1 => Ok((first, Some(1))),
        n => Ok((
            db::exact_facets(client, scope, interval, Some(n)).await?,
            Some(n),
        )),
    }
}

/// Facet counts as they add up.
#[derive(Default)]
struct Tally {
    total: i64,
    sentiment: std::collections::BTreeMap<String, i64>,
    platform: std::collections::BTreeMap<String, i64>,
    lang: std::collections::BTreeMap<String, i64>,
    product: std::collections::BTreeMap<String, i64>,
    topic: std::collections::BTreeMap<String, i64>,
    buckets: std::collections::BTreeMap<DateTime<Utc>, i64>,
    sample: Option<FacetSample>,
}

impl Tally {
    fn add(&mut self, p: &PostView, interval: &str) {
        self.total += 1;
        *self
            .sentiment
            .entry(p.analysis.sentiment.label.as_str().to_string())
            .or_default() += 1;
        *self
            .platform
            .entry(p.platform.as_str().to_string())
            .or_default() += 1;
        *self
            .lang
            .entry(p.lang.clone().unwrap_or_else(|| "und".into()))
            .or_default() += 1;
        if let Some(product) = &p.product {
            *self.product.entry(product.clone()).or_default() += 1;
        }
        for t in &p.topics {
            *self.topic.entry(t.to_string()).or_default() += 1;
        }
        *self
            .buckets
            .entry(truncate(p.created_at, interval))
            .or_default() += 1;
    }

    fn into_facets(self, interval: &str) -> SearchFacets {
        let counts = |m: std::collections::BTreeMap<String, i64>| {
            let mut v: Vec<FacetCount> = m
                .into_iter()
                .map(|(key, count)| FacetCount { key, count })
                .collect();
            v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
            v.truncate(db::MAX_FACET_KEYS);
            v
        };
        SearchFacets {
            total: self.total,
            sentiment: counts(self.sentiment),
            platform: counts(self.platform),
            lang: counts(self.lang),
            product: counts(self.product),
            topic: counts(self.topic),
            interval: interval.to_string(),
            buckets: newest_buckets(self.buckets),
            sample: self.sample,
        }
    }
}

/// The newest [`db::MAX_FACET_BUCKETS`] buckets, oldest first. Those the exact count answered
/// are its newest too, so a bucket kept is never one it left out.
fn newest_buckets(buckets: std::collections::BTreeMap<DateTime<Utc>, i64>) -> Vec<BucketCount> {
    let skip = buckets.len().saturating_sub(db::MAX_FACET_BUCKETS);
    buckets
        .into_iter()
        .skip(skip)
        .map(|(at, count)| BucketCount { at, count })
        .collect()
}

/// The start of `at`'s hour or day (UTC).
fn truncate(at: DateTime<Utc>, interval: &str) -> DateTime<Utc> {
    let step = if interval == "day" { 86_400 } else { 3_600 };
    let secs = at.timestamp().div_euclid(step) * step;
    DateTime::from_timestamp(secs, 0).unwrap_or(at)
}
