//! The aggregator: keeps the live metrics snapshot that subscribers see, and counts terms and
//! hashtags for trending terms.
//!
//! Windowed numbers come from the per-minute rollups in PostgreSQL (the store maintains them
//! in the same statement as the posts), so every Pulse process of a group publishes the same
//! global figures, and the figures on a dashboard are the figures in the database. Snapshots
//! are computed at `metrics.updates_per_sec`; the 24 h window, which reads the most rows, is
//! refreshed every [`SLOW_WINDOW_REFRESH`].
//!
//! Terms are counted in memory per minute from committed new posts, taken back out for posts
//! deleted since, and flushed with additive upserts every [`TERM_FLUSH_INTERVAL`]; a crash
//! loses at most that much of the term counts (never posts or metrics).
//!
//! A minute keeps at most [`MAX_TERMS_PER_MINUTE`] terms, chosen on the whole minute rather
//! than flush by flush: a minute's counts stay in memory across its flushes while it is open
//! (until [`MINUTE_OPEN_FOR`] after it began), and each flush writes what the database lacks
//! of the terms the minute keeps so far, at their counts so far, and takes back what a term
//! that has dropped out of them had written. A term that comes up a few times in each flush
//! thus counts with its whole minute; cut flush by flush, it would lose to whatever a single
//! flush held more of, every time, and never be written.
//!
//! Terms are weighed by the distinct authors of their posts first ([`AUTHORS_COUNTED`] at most),
//! then by their posts. One author's posts, however many distinct words they hold and however
//! often they are repeated, give each of their words the weight of one author, so they cannot
//! push out the terms several people use. Terms tied at the cap are left out together (which
//! of them to keep would be arbitrary), which is also what keeps a flood of one author's words,
//! all tied, out whole. A minute of very many distinct words forgets the lightest of those it
//! has written nothing of past [`MAX_TRACKED_TERMS_PER_MINUTE`], so its memory stays bounded;
//! the terms of deleted posts it does not hold become removals only up to that bound, and
//! each is forgotten once written.
//! Posts of a minute no longer open (late or backfilled) are written flush by flush, each
//! flush's terms cut on their own. Each process keeps its own cap.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use deadpool_postgres::Pool;
use serde_json::json;

use super::messages::{Committed, MetricsUpdate};
use crate::analysis::terms::extract_terms;
use crate::config::Settings;
use crate::db::rollups::by_dimension;
use crate::models::deletion::DeletedPost;
use crate::models::metrics::{Dimension, KeyedStats, Period, Window};
use crate::telemetry::names;

/// How often counted terms are written to PostgreSQL.
pub const TERM_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// How often the 24 h window of the snapshot is recomputed.
pub const SLOW_WINDOW_REFRESH: Duration = Duration::from_secs(10);
/// Keys per dimension in a snapshot (the busiest); REST serves the full lists. Every
/// subscriber's connection buffers a snapshot, so its size is paid once per session.
pub const SNAPSHOT_KEYS_PER_DIMENSION: usize = 10;
/// Most distinct terms kept per minute; the lightest are dropped first (see the module
/// documentation).
pub const MAX_TERMS_PER_MINUTE: usize = 500;
/// Distinct terms of a minute counted in memory before the lightest are forgotten. With
/// [`MAX_PENDING_MINUTES`] minutes (a backfill opens past ones) this bounds what one producer's
/// posts of many distinct words hold between two flushes: 120,000 terms, some 20 MB.
pub const MAX_TRACKED_TERMS_PER_MINUTE: usize = 4 * MAX_TERMS_PER_MINUTE;
/// Distinct authors of a term told apart in its weight: past them, posts decide.
pub const AUTHORS_COUNTED: usize = 32;
/// How long after it began a minute's counts stay in memory, for its late posts to count with
/// the rest of it.
pub const MINUTE_OPEN_FOR: TimeDelta = TimeDelta::minutes(3);
/// Most minutes of terms kept while the database is unreachable.
const MAX_PENDING_MINUTES: usize = 60;

/// The aggregator actor.
pub struct Aggregator {
    settings: Arc<Settings>,
    pool: Pool,
    terms: TermCounts,
    /// A flush is being written.
    flushing: bool,
    subscribers: Vec<Recipient<MetricsUpdate>>,
    latest: Option<Arc<str>>,
    day: Option<(Instant, serde_json::Value)>,
    busy: bool,
}

impl Aggregator {
    /// An aggregator reading rollups through `pool`.
    pub fn new(settings: Arc<Settings>, pool: Pool) -> Self {
        Self {
            settings,
            pool,
            terms: TermCounts::default(),
            flushing: false,
            subscribers: Vec::new(),
            latest: None,
            day: None,
            busy: false,
        }
    }

    /// Adds a recipient of every snapshot.
    pub fn with_subscriber(mut self, recipient: Recipient<MetricsUpdate>) -> Self {
        self.subscribers.push(recipient);
        self
    }

    fn count_terms(&mut self, msg: &Committed) {
        for post in msg.new_posts() {
            let minute = post
                .post
                .created_at
                .duration_trunc(TimeDelta::minutes(1))
                .unwrap_or(post.post.created_at);
            let score = f64::from(post.analysis.sentiment_score.get());
            let author = author_key(post.post.platform.as_str(), &post.post.author.id);
            let terms = extract_terms(&post.post.text);
            self.terms.count(minute, author, score, terms);
        }
    }

    /// Takes the terms of posts just deleted back out: from the pending counts, and through
    /// them from `term_rollups` at the next flush (a negative count there).
    fn uncount_terms(&mut self, deleted: &[DeletedPost]) {
        for post in deleted {
            let minute = post
                .created_at
                .duration_trunc(TimeDelta::minutes(1))
                .unwrap_or(post.created_at);
            let score = f64::from(post.sentiment_score);
            self.terms.uncount(minute, score, extract_terms(&post.text));
        }
    }

    fn flush_terms(&mut self, ctx: &mut Context<Self>) {
        // One write at a time: a write that fails gives its counts back, and one that overtook
        // it could take back what the failed one had yet to add.
        if self.flushing {
            return;
        }
        let deltas = self.terms.take_writes(Utc::now());
        if deltas.is_empty() {
            return;
        }
        self.flushing = true;
        let pool = self.pool.clone();
        let written = async move {
            let result = write_terms(&pool, &deltas).await;
            (result, deltas)
        };
        ctx.spawn(
            wrap_future::<_, Self>(written).map(|(result, deltas), this, _| {
                this.flushing = false;
                if let Err(e) = result {
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "writing trending terms failed; keeping them for the next flush");
                    this.terms.unwrite(deltas);
                }
            }),
        );
    }

    fn refresh(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let pool = self.pool.clone();
        let high_churn = self.settings.metrics.high_churn_threshold;
        let day = self
            .day
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SLOW_WINDOW_REFRESH)
            .map(|(_, v)| v.clone());
        ctx.spawn(
            wrap_future::<_, Self>(async move { snapshot(&pool, high_churn, day).await }).map(
                |result, this, _| {
                    this.busy = false;
                    match result {
                        Ok((value, day)) => {
                            if let Some(day) = day {
                                this.day = Some((Instant::now(), day));
                            }
                            let json: Arc<str> = Arc::from(value.to_string());
                            this.latest = Some(json.clone());
                            for s in &this.subscribers {
                                s.do_send(MetricsUpdate { json: json.clone() });
                            }
                        }
                        Err(e) => tracing::debug!(error = %format_args!("{e:#}"), "metrics snapshot failed"),
                    }
                },
            ),
        );
    }
}

impl Actor for Aggregator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let rate = self.settings.metrics.updates_per_sec;
        if rate > 0.0 {
            let rate = rate.clamp(0.1, 50.0);
            ctx.run_interval(Duration::from_secs_f64(1.0 / rate), |this, ctx| {
                this.refresh(ctx)
            });
        }
        ctx.run_interval(TERM_FLUSH_INTERVAL, |this, ctx| this.flush_terms(ctx));
    }

    fn stopping(&mut self, _: &mut Self::Context) -> actix::Running {
        let deltas = self.terms.take_writes(Utc::now());
        if !deltas.is_empty() {
            let pool = self.pool.clone();
            actix_rt::spawn(async move {
                let _ = write_terms(&pool, &deltas).await;
            });
        }
        actix::Running::Stop
    }
}

impl Handler<Committed> for Aggregator {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Self::Context) {
        self.count_terms(&msg);
        self.uncount_terms(&msg.outcome.deleted);
    }
}

/// Asks for the latest snapshot (None before the first one is computed).
#[derive(actix::Message)]
#[rtype(result = "Option<Arc<str>>")]
pub struct LatestSnapshot;

impl Handler<LatestSnapshot> for Aggregator {
    type Result = Option<Arc<str>>;

    fn handle(&mut self, _: LatestSnapshot, _: &mut Self::Context) -> Self::Result {
        self.latest.clone()
    }
}

/// Writes terms out now (used by shutdown and tests).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct FlushTerms;

impl Handler<FlushTerms> for Aggregator {
    type Result = actix::ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushTerms, _: &mut Self::Context) -> Self::Result {
        let deltas = self.terms.take_writes(Utc::now());
        let pool = self.pool.clone();
        let written = async move {
            let result = write_terms(&pool, &deltas).await;
            (result, deltas)
        };
        Box::pin(
            wrap_future::<_, Self>(written).map(|(result, deltas), this, _| {
                if let Err(e) = result {
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "writing trending terms failed");
                    this.terms.unwrite(deltas);
                }
            }),
        )
    }
}

/// Term counts to add to `term_rollups`, by minute: posts and sentiment sums, negative to take
/// back what was added.
type TermDeltas = BTreeMap<DateTime<Utc>, BTreeMap<String, (i64, f64)>>;

/// The terms of one minute, by term.
type MinuteTerms = HashMap<String, Tally>;

/// A term of a minute: what the posts counted here hold of it, and what of that was written.
#[derive(Debug, Default)]
struct Tally {
    /// Posts of the minute that hold the term, less those deleted since.
    posts: i64,
    /// Their sentiment scores, summed.
    sentiment: f64,
    /// What of `posts` and `sentiment` this process has added to `term_rollups`.
    written: (i64, f64),
    /// The posts' distinct authors (see [`author_key`]), the first [`AUTHORS_COUNTED`].
    authors: Vec<u64>,
}

impl Tally {
    /// How much the term weighs in its minute: by the people using it, then by its posts.
    fn weight(&self) -> (usize, i64) {
        (self.authors.len(), self.posts)
    }
}

/// An author as the tallies tell them apart: ids are the platform's own.
fn author_key(platform: &str, id: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (platform, id).hash(&mut hasher);
    hasher.finish()
}

/// The terms held in memory, by minute (see the module documentation).
#[derive(Debug, Default)]
struct TermCounts {
    minutes: BTreeMap<DateTime<Utc>, MinuteTerms>,
}

impl TermCounts {
    /// Counts the `terms` of a new post of `minute` by `author`.
    fn count(&mut self, minute: DateTime<Utc>, author: u64, score: f64, terms: Vec<String>) {
        let bucket = self.minutes.entry(minute).or_default();
        for term in terms {
            let tally = bucket.entry(term).or_default();
            tally.posts += 1;
            tally.sentiment += score;
            if tally.authors.len() < AUTHORS_COUNTED && !tally.authors.contains(&author) {
                tally.authors.push(author);
            }
        }
        if bucket.len() > MAX_TRACKED_TERMS_PER_MINUTE {
            forget_lightest(bucket);
        }
        self.bound();
    }

    /// Takes the `terms` of a deleted post of `minute` back out. A term the minute does not
    /// hold becomes a removal to write, while the minute holds fewer than
    /// [`MAX_TRACKED_TERMS_PER_MINUTE`] terms; past that the removal is dropped (the term
    /// stays counted): a producer sending posts of thousands of distinct words and deleting
    /// them held thousands of removals a pair until the minute closed, gigabytes in minutes.
    fn uncount(&mut self, minute: DateTime<Utc>, score: f64, terms: Vec<String>) {
        let bucket = self.minutes.entry(minute).or_default();
        let mut dropped = 0u64;
        for term in terms {
            if !bucket.contains_key(&term) && bucket.len() >= MAX_TRACKED_TERMS_PER_MINUTE {
                dropped += 1;
                continue;
            }
            let tally = bucket.entry(term).or_default();
            tally.posts -= 1;
            tally.sentiment -= score;
        }
        if dropped > 0 {
            metrics::counter!(names::TERM_REMOVALS_DROPPED).increment(dropped);
        }
        self.bound();
    }

    fn bound(&mut self) {
        while self.minutes.len() > MAX_PENDING_MINUTES {
            self.minutes.pop_first();
        }
    }

    /// What `term_rollups` lacks, taken as written: each minute's kept terms (the
    /// [`MAX_TERMS_PER_MINUTE`] weightiest, see [`cutoff`]) at their counts so far, every other
    /// term at none, taking back what it wrote while it was kept. A negative count (deletions
    /// of posts whose terms were counted before this minute's counts began) is written as it
    /// is, to take them out of what was written then. Then forgets the minutes no longer open
    /// at `now`: a late post of theirs starts its minute's counts anew.
    fn take_writes(&mut self, now: DateTime<Utc>) -> TermDeltas {
        let mut deltas = TermDeltas::new();
        for (minute, bucket) in &mut self.minutes {
            let bar = cutoff(bucket);
            let mut writes = BTreeMap::new();
            for (term, tally) in bucket.iter_mut() {
                let kept = tally.posts > 0 && bar.is_none_or(|bar| tally.weight() > bar);
                let target = if kept || tally.posts < 0 {
                    (tally.posts, tally.sentiment)
                } else {
                    (0, 0.0)
                };
                let posts = target.0 - tally.written.0;
                // The rollup adds or takes back posts; a change of the sentiment sum alone
                // waits for the posts to change.
                if posts != 0 {
                    writes.insert(term.clone(), (posts, target.1 - tally.written.1));
                    tally.written = target;
                }
            }
            if !writes.is_empty() {
                deltas.insert(*minute, writes);
            }
            // Removals written, and terms whose posts were all deleted, hold nothing more to
            // write: forgotten, a later post of theirs counts from nothing, as it should.
            bucket.retain(|_, t| t.posts > 0 || t.written.0 != t.posts);
        }
        // A post dated ahead of this clock is not waited for past its minute's start.
        let (first_open, last_open) = (now - MINUTE_OPEN_FOR, now + TimeDelta::minutes(1));
        self.minutes
            .retain(|minute, _| (first_open..=last_open).contains(minute));
        deltas
    }

    /// Gives back `deltas` whose write failed, for a later flush to write.
    fn unwrite(&mut self, deltas: TermDeltas) {
        for (minute, writes) in deltas {
            let bucket = self.minutes.entry(minute).or_default();
            for (term, (posts, sentiment)) in writes {
                match bucket.get_mut(&term) {
                    Some(tally) => {
                        tally.written.0 -= posts;
                        tally.written.1 -= sentiment;
                    }
                    // Forgotten since (its minute closed, or it was taken back in full and then
                    // forgotten): what it had to write is all there is of it.
                    None => {
                        let tally = bucket.entry(term).or_default();
                        tally.posts = posts;
                        tally.sentiment = sentiment;
                    }
                }
            }
        }
        self.bound();
    }
}

/// The weight a term of `bucket` must pass to be kept, when more than
/// [`MAX_TERMS_PER_MINUTE`] terms hold posts: that of the first one past the cap. Terms tied
/// with it are left out with it, so the cap holds without an arbitrary choice among them.
fn cutoff(bucket: &MinuteTerms) -> Option<(usize, i64)> {
    let mut weights: Vec<(usize, i64)> = bucket
        .values()
        .filter(|t| t.posts > 0)
        .map(Tally::weight)
        .collect();
    if weights.len() <= MAX_TERMS_PER_MINUTE {
        return None;
    }
    let (_, first_out, _) = weights.select_nth_unstable_by(MAX_TERMS_PER_MINUTE, |a, b| b.cmp(a));
    Some(*first_out)
}

/// Forgets the lightest terms of `bucket` that nothing was written of, down to half of
/// [`MAX_TRACKED_TERMS_PER_MINUTE`]. Terms with a count written stay, to take it back should
/// they drop out; so do removals, which are still to be written.
fn forget_lightest(bucket: &mut MinuteTerms) {
    let excess = bucket
        .len()
        .saturating_sub(MAX_TRACKED_TERMS_PER_MINUTE / 2);
    let mut candidates: Vec<((usize, i64), String)> = bucket
        .iter()
        .filter(|(_, t)| t.written.0 == 0 && t.posts >= 0)
        .map(|(term, t)| (t.weight(), term.clone()))
        .collect();
    candidates.sort_unstable();
    for (_, term) in candidates.into_iter().take(excess) {
        bucket.remove(&term);
    }
}

async fn write_terms(pool: &Pool, terms: &TermDeltas) -> anyhow::Result<()> {
    if terms.is_empty() {
        return Ok(());
    }
    let mut client = pool.get().await?;
    crate::db::rollups::apply_terms(&mut client, terms).await
}

fn first_stats(items: Vec<KeyedStats>) -> serde_json::Value {
    serde_json::to_value(
        items
            .into_iter()
            .next()
            .map(|k| k.stats)
            .unwrap_or_default(),
    )
    .unwrap_or_default()
}

/// Computes the snapshot; returns it and, when recomputed, the 24 h overall stats.
async fn snapshot(
    pool: &Pool,
    high_churn: f32,
    cached_day: Option<serde_json::Value>,
) -> anyhow::Result<(serde_json::Value, Option<serde_json::Value>)> {
    let client = pool.get().await?;
    let now = Utc::now();
    let mut windows = serde_json::Map::new();
    for window in [Window::OneMinute, Window::FiveMinutes, Window::OneHour] {
        let period = Period::window(window, now);
        let items = by_dimension(&client, Dimension::Overall, period, &[], high_churn).await?;
        windows.insert(window.as_str().into(), first_stats(items));
    }
    let fresh_day = match cached_day {
        Some(day) => {
            windows.insert(Window::OneDay.as_str().into(), day);
            None
        }
        None => {
            let items = by_dimension(
                &client,
                Dimension::Overall,
                Period::window(Window::OneDay, now),
                &[],
                high_churn,
            )
            .await?;
            let day = first_stats(items);
            windows.insert(Window::OneDay.as_str().into(), day.clone());
            Some(day)
        }
    };
    let mut dimensions = serde_json::Map::new();
    for dimension in [
        Dimension::Platform,
        Dimension::Product,
        Dimension::Channel,
        Dimension::City,
        Dimension::Country,
    ] {
        let items = by_dimension(
            &client,
            dimension,
            Period::window(Window::FiveMinutes, now),
            &[],
            high_churn,
        )
        .await?;
        let top: Vec<KeyedStats> = items
            .into_iter()
            .take(SNAPSHOT_KEYS_PER_DIMENSION)
            .collect();
        dimensions.insert(dimension.as_str().into(), serde_json::to_value(top)?);
    }
    let value = json!({
        "at": now,
        "overall": windows,
        "by_dimension": {"window": Window::FiveMinutes.as_str(), "items": dimensions},
    });
    Ok((value, fresh_day))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of a minute.
    fn minute() -> DateTime<Utc> {
        DateTime::from_timestamp(29_000_000 * 60, 0).unwrap()
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    fn by(author: &str) -> u64 {
        author_key("reddit", author)
    }

    /// Adds what a flush wrote of each term to `totals`.
    fn add(totals: &mut HashMap<String, i64>, deltas: &TermDeltas) {
        for writes in deltas.values() {
            for (term, (posts, _)) in writes {
                *totals.entry(term.clone()).or_default() += posts;
            }
        }
    }

    #[test]
    fn one_authors_flood_of_words_pushes_out_no_term_that_several_people_use() {
        let start = minute();
        let flood: Vec<String> = (0..1_100).map(|i| format!("junk{i}")).collect();
        let (mut counts, mut written) = (TermCounts::default(), HashMap::new());
        // Every 5 s of the minute, the flood twice, and three people on the battery.
        for flush in 0..12 {
            for _ in 0..2 {
                counts.count(start, by("flooder"), 0.0, flood.clone());
            }
            for person in 0..3 {
                let fan = by(&format!("fan-{flush}-{person}"));
                counts.count(start, fan, 0.5, words("battery camera"));
            }
            let now = start + TimeDelta::seconds(5 * flush + 5);
            add(&mut written, &counts.take_writes(now));
        }
        assert_eq!(written.get("battery"), Some(&36));
        assert_eq!(written.get("camera"), Some(&36));
        assert!(
            flood.iter().all(|w| written.get(w).is_none_or(|n| *n == 0)),
            "{written:?}"
        );
    }

    #[test]
    fn a_term_kept_late_in_its_minute_is_written_with_its_earlier_posts() {
        let start = minute();
        let mut counts = TermCounts::default();
        // More terms of one post than the cap, all tied: none is kept.
        for i in 0..MAX_TERMS_PER_MINUTE + 10 {
            counts.count(start, by(&format!("a{i}")), 0.0, vec![format!("w{i}")]);
        }
        let first = counts.take_writes(start + TimeDelta::seconds(5));
        assert!(first.is_empty(), "{first:?}");
        // Two more people use one of them.
        for author in ["b", "c"] {
            counts.count(start, by(author), 0.5, words("w0"));
        }
        let second = counts.take_writes(start + TimeDelta::seconds(10));
        assert_eq!(second[&start].len(), 1, "{second:?}");
        assert_eq!(second[&start]["w0"], (3, 1.0));
    }

    #[test]
    fn a_term_that_drops_out_of_its_minutes_cap_takes_back_what_it_wrote() {
        let start = minute();
        let mut counts = TermCounts::default();
        // The cap filled: terms of three people, and one of two.
        for i in 0..MAX_TERMS_PER_MINUTE - 1 {
            for author in ["a", "b", "c"] {
                counts.count(start, by(author), 0.0, vec![format!("w{i}")]);
            }
        }
        for author in ["a", "b"] {
            counts.count(start, by(author), 1.0, words("faint"));
        }
        let first = counts.take_writes(start + TimeDelta::seconds(5));
        assert_eq!(first[&start].len(), MAX_TERMS_PER_MINUTE);
        assert_eq!(first[&start]["faint"], (2, 2.0));
        // One more term of three people: the one of two is the first past the cap.
        for author in ["a", "b", "c"] {
            counts.count(start, by(author), 0.0, words("strong"));
        }
        let second = counts.take_writes(start + TimeDelta::seconds(10));
        assert_eq!(second[&start].len(), 2, "{second:?}");
        assert_eq!(second[&start]["strong"], (3, 0.0));
        assert_eq!(second[&start]["faint"], (-2, -2.0));
    }

    #[test]
    fn what_a_failed_write_held_is_written_by_the_next_flush() {
        let start = minute();
        let mut counts = TermCounts::default();
        counts.count(start, by("a"), 0.5, words("battery camera"));
        let failed = counts.take_writes(start + TimeDelta::seconds(5));
        counts.unwrite(failed);
        counts.count(start, by("b"), 0.5, words("battery"));
        let next = counts.take_writes(start + TimeDelta::seconds(10));
        assert_eq!(next[&start]["battery"], (2, 1.0));
        assert_eq!(next[&start]["camera"], (1, 0.5));

        // A minute no longer open is forgotten once taken; given back, it is written again.
        let old = start - TimeDelta::hours(1);
        counts.count(old, by("c"), -0.5, words("refund"));
        let failed = counts.take_writes(start + TimeDelta::seconds(15));
        assert_eq!(failed[&old]["refund"], (1, -0.5));
        assert!(!counts.minutes.contains_key(&old));
        counts.unwrite(failed.clone());
        assert_eq!(counts.take_writes(start + TimeDelta::seconds(20)), failed);
        assert!(counts
            .take_writes(start + TimeDelta::seconds(25))
            .is_empty());
    }

    #[test]
    fn a_deleted_posts_terms_are_taken_back_whether_counted_here_or_not() {
        let start = minute();
        let mut counts = TermCounts::default();
        counts.count(start, by("a"), 0.5, words("battery camera"));
        counts.take_writes(start + TimeDelta::seconds(5));
        counts.uncount(start, 0.5, words("battery camera"));
        let deleted = counts.take_writes(start + TimeDelta::seconds(10));
        assert_eq!(deleted[&start]["battery"], (-1, -0.5));
        assert_eq!(deleted[&start]["camera"], (-1, -0.5));
        // A post of a minute whose counts were forgotten, or made by another process.
        let old = start - TimeDelta::hours(1);
        counts.uncount(old, 0.5, words("refund"));
        let deleted = counts.take_writes(start + TimeDelta::seconds(15));
        assert_eq!(deleted[&old]["refund"], (-1, -0.5));
    }

    /// Each post of thousands of distinct words, deleted at once, left a removal of each word
    /// its minute had already forgotten, held until the minute closed: 200 pairs held 800,000.
    #[test]
    fn deleting_posts_of_many_distinct_words_holds_a_bounded_number_of_removals() {
        let start = minute();
        let mut counts = TermCounts::default();
        for pair in 0..200 {
            let words: Vec<String> = (0..4_000).map(|i| format!("w{pair}x{i}")).collect();
            counts.count(start, by("x"), 0.0, words.clone());
            counts.uncount(start, 0.0, words);
            assert!(counts.minutes[&start].len() <= 2 * MAX_TRACKED_TERMS_PER_MINUTE);
        }
        counts.take_writes(start + TimeDelta::seconds(5));
        assert!(counts.minutes[&start].len() <= MAX_TRACKED_TERMS_PER_MINUTE);
        // What was written stays taken back: nothing more is written for it.
        assert!(counts
            .take_writes(start + TimeDelta::seconds(10))
            .is_empty());
    }

    #[test]
    fn a_minute_of_very_many_distinct_words_holds_a_bounded_number_and_keeps_the_weightiest() {
        let start = minute();
        let mut counts = TermCounts::default();
        for author in ["a", "b", "c"] {
            counts.count(start, by(author), 0.0, words("battery"));
        }
        for i in 0..3 * MAX_TRACKED_TERMS_PER_MINUTE {
            counts.count(start, by("d"), 0.0, vec![format!("w{i}")]);
            assert!(counts.minutes[&start].len() <= MAX_TRACKED_TERMS_PER_MINUTE);
        }
        assert_eq!(counts.minutes[&start]["battery"].posts, 3);
    }
}
