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

use std::collections::BTreeMap;
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

/// How often counted terms are written to PostgreSQL.
pub const TERM_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// How often the 24 h window of the snapshot is recomputed.
pub const SLOW_WINDOW_REFRESH: Duration = Duration::from_secs(10);
/// Keys per dimension in a snapshot (the busiest); REST serves the full lists. Every
/// subscriber's connection buffers a snapshot, so its size is paid once per session.
pub const SNAPSHOT_KEYS_PER_DIMENSION: usize = 10;
/// Most distinct terms kept per minute; the rarest are dropped first.
pub const MAX_TERMS_PER_MINUTE: usize = 500;
/// Most minutes of unflushed terms kept while the database is unreachable.
const MAX_PENDING_MINUTES: usize = 60;

/// The aggregator actor.
pub struct Aggregator {
    settings: Arc<Settings>,
    pool: Pool,
    terms: BTreeMap<DateTime<Utc>, BTreeMap<String, (i64, f64)>>,
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
            terms: BTreeMap::new(),
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
        let new = msg.new_post_ids();
        for post in msg
            .batch
            .posts
            .iter()
            .filter(|p| new.contains(p.post.id.as_str()))
        {
            let minute = post
                .post
                .created_at
                .duration_trunc(TimeDelta::minutes(1))
                .unwrap_or(post.post.created_at);
            let score = f64::from(post.analysis.sentiment_score.get());
            let bucket = self.terms.entry(minute).or_default();
            for term in extract_terms(&post.post.text) {
                let slot = bucket.entry(term).or_insert((0, 0.0));
                slot.0 += 1;
                slot.1 += score;
            }
            if bucket.len() > MAX_TERMS_PER_MINUTE * 2 {
                prune(bucket);
            }
        }
        while self.terms.len() > MAX_PENDING_MINUTES {
            self.terms.pop_first();
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
            let bucket = self.terms.entry(minute).or_default();
            for term in extract_terms(&post.text) {
                let slot = bucket.entry(term).or_insert((0, 0.0));
                slot.0 -= 1;
                slot.1 -= score;
            }
        }
        while self.terms.len() > MAX_PENDING_MINUTES {
            self.terms.pop_first();
        }
    }

    fn flush_terms(&mut self, ctx: &mut Context<Self>) {
        if self.terms.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.terms);
        for bucket in pending.values_mut() {
            prune(bucket);
        }
        let pool = self.pool.clone();
        let batch = pending.clone();
        ctx.spawn(wrap_future::<_, Self>(async move { write_terms(&pool, &batch).await }).map(
            move |result, this, _| {
                if let Err(e) = result {
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "writing trending terms failed; keeping them for the next flush");
                    for (minute, bucket) in pending {
                        let target = this.terms.entry(minute).or_default();
                        for (term, (n, s)) in bucket {
                            let slot = target.entry(term).or_insert((0, 0.0));
                            slot.0 += n;
                            slot.1 += s;
                        }
                    }
                }
            },
        ));
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
        if !self.terms.is_empty() {
            let (pool, terms) = (self.pool.clone(), std::mem::take(&mut self.terms));
            actix_rt::spawn(async move {
                let _ = write_terms(&pool, &terms).await;
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
    type Result = actix::ResponseFuture<()>;

    fn handle(&mut self, _: FlushTerms, _: &mut Self::Context) -> Self::Result {
        let (pool, terms) = (self.pool.clone(), std::mem::take(&mut self.terms));
        Box::pin(async move {
            if let Err(e) = write_terms(&pool, &terms).await {
                pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "writing trending terms failed");
            }
        })
    }
}

/// Keeps the most frequent terms of a minute.
fn prune(bucket: &mut BTreeMap<String, (i64, f64)>) {
    if bucket.len() <= MAX_TERMS_PER_MINUTE {
        return;
    }
    let mut counts: Vec<i64> = bucket.values().map(|(n, _)| *n).collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let cutoff = counts[MAX_TERMS_PER_MINUTE - 1];
    // Removals (negative counts, of deleted posts) are kept: they undo what was written.
    bucket.retain(|_, (n, _)| *n > cutoff || *n < 0);
    // Ties at the cutoff are dropped together, so the bucket never exceeds the cap.
}

async fn write_terms(
    pool: &Pool,
    terms: &BTreeMap<DateTime<Utc>, BTreeMap<String, (i64, f64)>>,
) -> anyhow::Result<()> {
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

    #[test]
    fn prune_keeps_the_cap() {
        let mut bucket: BTreeMap<String, (i64, f64)> = (0..(MAX_TERMS_PER_MINUTE as i64 + 50))
            .map(|i| (format!("t{i}"), (i % 7, 0.0)))
            .collect();
        prune(&mut bucket);
        assert!(bucket.len() <= MAX_TERMS_PER_MINUTE);
        assert!(bucket.values().all(|(n, _)| *n > 0));
    }
}
