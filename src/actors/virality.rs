//! The virality tracker: follows every post's cascade from committed engagements, rescores
//! the cascades that changed every `virality.score_interval_ms`, writes their latest
//! prediction (and, when it moved, a history row) to PostgreSQL, and publishes
//! `virality:update` when a score moved by `virality.publish_step` or more.
//!
//! **One tracker per database.** A cascade must see every engagement of its post, whichever
//! process of the group committed it, and its rows must be written once. So one process at a
//! time runs the tracker: the one holding a PostgreSQL advisory lock, taken on a connection
//! of its own. The others stand by and try to take the lock every
//! `virality.takeover_interval_ms`; when the tracking process dies its connection closes, the
//! lock goes with it and a standing-by process takes over.
//!
//! **Fed from PostgreSQL.** The tracker reads committed engagements from the `engagements`
//! table by transaction id (`tx`, the inserting transaction's id): every
//! `virality.feed_interval_ms` it reads the rows of transactions between its position and the
//! oldest transaction still running (`pg_snapshot_xmin`), all of which have ended, so a row is
//! read exactly once, whichever process committed it and however commits interleave. Its
//! position is written in the same transaction as the cascades it accounts for, on the
//! connection that holds the lock: a process that lost the lock cannot write, and a process
//! that takes over rebuilds the active cascades from the engagements before that position and
//! reads the feed from it, so no engagement is lost or counted twice across a takeover.
//!
//! Memory is bounded: at most `virality.max_cascades` cascades (the least recently active
//! are finished first), at most `virality.max_tracked_shares` shares per tree, and a
//! cascade without engagement for `virality.inactive_expiry_secs` is finished (its final
//! counts stay in `virality_cascades` as history for the thresholds).
//!
//! Predictions are made at each cascade's latest event time, so they are a function of the
//! events alone. Every input is checked; nothing a producer sends can make this actor panic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::messages::Committed;
use super::messages::Publish;
use crate::config::{Settings, ViralitySettings};
use crate::db::lock::{Conn, PgSession};
use crate::db::virality::{
    feed_row, horizon, learned_thresholds, load_meta, meta_of, read_feed, CascadeRow, FeedRead,
    FeedRow, HistoryRow, MomentumRow, WriteJob, WriteResult, FEED_COLUMNS,
};
use crate::models::live::VIRALITY_UPDATE;
use crate::models::live::{FilterKeys, Topic};
use crate::models::{Platform, SentimentLabel};
use crate::telemetry::names;
use crate::virality::calibration::Calibration;
use crate::virality::momentum::Momentum;
use crate::virality::recent::RecentPosts;
use crate::virality::{self, unix_seconds, Model, PostMeta, Tracker, Virality};

/// The advisory lock (per database) whose holder runs the tracker.
pub const TRACKER_LOCK: i64 = 0x7075_6c73_6576_6972;
/// Posts whose metadata is looked up in PostgreSQL per tick.
const META_LOOKUPS_PER_TICK: usize = 500;
/// Lookups of one post's metadata on consecutive ticks; after them, one every
/// [`SLOW_LOOKUP_TICKS`] ticks while the cascade lives (its post may be committed late, by
/// another process).
const MAX_META_LOOKUPS: u8 = 5;
/// Ticks between the later lookups of a post's metadata.
const SLOW_LOOKUP_TICKS: u64 = 30;
/// How often the thresholds are relearned from finished cascades.
const THRESHOLD_REFRESH: Duration = Duration::from_secs(60);
/// Posts of the batch engagements are loaded for at once during a rebuild.
const REBUILD_CHUNK: usize = 500;
/// Most product and hashtag momentum keys kept.
const MAX_MOMENTUM_KEYS: usize = 10_000;
/// Relative change of the predicted final size that adds a history row.
const HISTORY_RELATIVE_STEP: f64 = 0.1;

struct Entry {
    tracker: Tracker,
    last_activity: Instant,
    last_published: f64,
    last_recorded: Option<(f64, f64)>,
    meta_lookups: u8,
    meta_pending: bool,
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The `virality:update` payload and the API's post virality object share this shape.
#[derive(Debug, Clone, Serialize)]
pub struct PostVirality<'a> {
    pub post_id: &'a str,
    pub platform: Option<&'static str>,
    pub product: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub city: Option<&'a str>,
    pub country: Option<&'a str>,
    pub sentiment: Option<&'static str>,
    pub hashtags: &'a [String],
    pub status: &'static str,
    #[serde(flatten)]
    pub virality: &'a Virality,
}

/// The virality tracker actor. Started in every process where `virality.enabled`; it tracks
/// only while it holds the tracker lock, and stands by otherwise.
pub struct ViralityTracker {
    settings: Arc<Settings>,
    pool: Pool,
    publisher: Option<Recipient<Publish>>,
    model: Model,
    entries: HashMap<String, Entry>,
    dirty: HashSet<String>,
    /// Metadata of recent posts without engagement yet (bounded, oldest dropped).
    recent: RecentPosts,
    /// The lock-holding connection while this process tracks.
    leader: Option<PgSession>,
    /// A connection kept while standing by, to try the lock on.
    standby: Option<PgSession>,
    /// A takeover attempt is under way.
    acquiring: bool,
    /// Shutting down: never take the tracker (again).
    retired: bool,
    /// Bumped at every takeover and step-down, so results of work started under an earlier
    /// leadership are ignored.
    epoch: u64,
    /// Rebuilt and reading the feed.
    ready: bool,
    /// Every committed engagement of a transaction below this id has been applied.
    cursor: Option<u64>,
    /// The position last written with the cascades.
    persisted_cursor: Option<u64>,
    /// The epoch of the feed read under way.
    polling: Option<u64>,
    /// Held by the write under way: writes never overlap, so rows and position are written
    /// in the order their state was taken.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    looking_up: bool,
    /// Ticks since start, pacing the later metadata lookups.
    ticks: u64,
    pending_rows: HashMap<String, CascadeRow>,
    pending_history: Vec<HistoryRow>,
    products: HashMap<String, (Momentum, Instant)>,
    hashtags: HashMap<String, (Momentum, Instant)>,
    momentum_dirty: HashSet<(&'static str, String)>,
    /// Names this process in `virality_feed.holder`.
    holder: String,
}

impl ViralityTracker {
    /// A tracker writing through `pool`, publishing updates to `publisher`.
    pub fn new(settings: Arc<Settings>, pool: Pool, publisher: Option<Recipient<Publish>>) -> Self {
        let v = &settings.virality;
        let mut model = Model::new(
            Calibration::shared(),
            v.interval_level,
            v.classify_probability,
        );
        model.set_thresholds(BTreeMap::new(), v.threshold_shares);
        let holder = format!(
            "{}-{}",
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            std::process::id()
        );
        let recent = RecentPosts::new(v.max_cascades);
        ViralityTracker {
            settings,
            pool,
            publisher,
            model,
            entries: HashMap::new(),
            dirty: HashSet::new(),
            recent,
            leader: None,
            standby: None,
            acquiring: false,
            retired: false,
            epoch: 0,
            ready: false,
            cursor: None,
            persisted_cursor: None,
            polling: None,
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            looking_up: false,
            ticks: 0,
            pending_rows: HashMap::new(),
            pending_history: Vec::new(),
            products: HashMap::new(),
            hashtags: HashMap::new(),
            momentum_dirty: HashSet::new(),
            holder,
        }
    }

    fn cfg(&self) -> &ViralitySettings {
        &self.settings.virality
    }

    fn window_min(&self) -> i64 {
        (self.cfg().momentum_window_secs / 60).max(1) as i64
    }

    fn remember_post(&mut self, id: &str, meta: PostMeta) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.tracker.meta = Some(meta);
            entry.meta_pending = false;
            self.dirty.insert(id.to_string());
            return;
        }
        self.recent.insert(id, meta);
    }

    /// Remembers the metadata of the posts this process committed, so cascades of local
    /// posts need no lookup.
    fn remember_posts(&mut self, msg: &Committed) {
        let new_posts: HashSet<&str> = msg
            .outcome
            .inserted_posts
            .iter()
            .map(String::as_str)
            .collect();
        for p in &msg.batch.posts {
            if !new_posts.contains(p.post.id.as_str()) {
                continue;
            }
            let meta = PostMeta {
                platform: Some(p.post.platform),
                product: p.post.product.clone(),
                channel: p.post.channel.clone(),
                city: p.post.city().map(str::to_string),
                country: p.post.country().map(str::to_string),
                sentiment: Some(p.analysis.sentiment_label),
                hashtags: virality::hashtags(&p.post.text),
                author_followers: p.post.author.followers,
                created_at: unix_seconds(p.post.created_at),
            };
            self.remember_post(&p.post.id, meta);
        }
    }

    /// Post ids of `rows` whose metadata is not known yet.
    fn unknown_posts(&self, rows: &[FeedRow]) -> Vec<String> {
        let mut seen = HashSet::new();
        rows.iter()
            .map(|r| r.post_id.as_str())
            .filter(|id| !self.entries.contains_key(*id) && !self.recent.contains(id))
            .filter(|id| seen.insert(*id))
            .map(str::to_string)
            .collect()
    }

    /// Applies committed engagements read from the feed to their cascades.
    fn apply_feed(&mut self, rows: &[FeedRow], metas: Vec<(String, PostMeta)>) {
        for (id, meta) in metas {
            self.remember_post(&id, meta);
        }
        let window = self.window_min();
        let max_shares = self.cfg().max_tracked_shares;
        let mut applied = 0u64;
        for r in rows {
            let post_id = r.post_id.as_str();
            if !self.entries.contains_key(post_id) {
                let meta = self.recent.take(post_id);
                let mut tracker = Tracker::new(max_shares);
                let pending = meta.is_none();
                tracker.meta = meta;
                self.entries.insert(
                    post_id.to_string(),
                    Entry {
                        tracker,
                        last_activity: Instant::now(),
                        last_published: 0.0,
                        last_recorded: None,
                        meta_lookups: 0,
                        meta_pending: pending,
                    },
                );
            }
            let Some(entry) = self.entries.get_mut(post_id) else {
                continue;
            };
            if entry.tracker.add(
                Some(&r.share_id),
                r.kind,
                r.at,
                r.followers,
                r.via.as_deref(),
                r.count,
                window,
            ) {
                applied += 1;
                entry.last_activity = Instant::now();
                if let Some(meta) = &entry.tracker.meta {
                    let now = Instant::now();
                    if let Some(product) = &meta.product {
                        bump(&mut self.products, product, r.at, r.count, window, now);
                        self.momentum_dirty.insert(("product", product.clone()));
                    }
                    for tag in &meta.hashtags {
                        bump(&mut self.hashtags, tag, r.at, r.count, window, now);
                        self.momentum_dirty.insert(("hashtag", tag.clone()));
                    }
                }
                if !self.dirty.contains(post_id) {
                    self.dirty.insert(post_id.to_string());
                }
            }
        }
        metrics::counter!(names::VIRALITY_EVENTS).increment(applied);
    }

    /// Finishes cascades that went quiet and, past the cap, the least recently active.
    fn expire(&mut self) {
        let expiry = Duration::from_secs(self.cfg().inactive_expiry_secs.max(1));
        let quiet: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.last_activity.elapsed() >= expiry)
            .map(|(id, _)| id.clone())
            .collect();
        for id in quiet {
            self.finish(&id, "inactive");
        }
        let cap = self.cfg().max_cascades.max(1);
        if self.entries.len() > cap {
            let mut by_age: Vec<(Instant, String)> = self
                .entries
                .iter()
                .map(|(id, e)| (e.last_activity, id.clone()))
                .collect();
            by_age.sort();
            let surplus = self.entries.len() - cap;
            for (_, id) in by_age.into_iter().take(surplus) {
                self.finish(&id, "evicted");
            }
        }
        let window = expiry;
        self.products.retain(|_, (_, at)| at.elapsed() < window);
        self.hashtags.retain(|_, (_, at)| at.elapsed() < window);
        metrics::gauge!(names::VIRALITY_CASCADES).set(self.entries.len() as f64);
    }

    fn finish(&mut self, id: &str, reason: &'static str) {
        if let Some(entry) = self.entries.remove(id) {
            self.dirty.remove(id);
            let v = self.model.score(&entry.tracker, self.window_min());
            let row = self.row(id, &entry, &v, "finished");
            self.pending_rows.insert(id.to_string(), row);
            metrics::counter!(names::VIRALITY_FINISHED, "reason" => reason).increment(1);
        }
    }

    fn row(&self, id: &str, entry: &Entry, v: &Virality, status: &'static str) -> CascadeRow {
        let t = &entry.tracker;
        let meta = t.meta.clone().unwrap_or_default();
        let idle = chrono::TimeDelta::from_std(entry.last_activity.elapsed()).unwrap_or_default();
        CascadeRow {
            post_id: id.to_string(),
            platform: meta.platform.map(Platform::as_str),
            product: meta.product,
            channel: meta.channel,
            city: meta.city,
            country: meta.country,
            sentiment: meta.sentiment.map(SentimentLabel::as_str),
            hashtags: meta.hashtags,
            author_followers: clamp_i64(meta.author_followers),
            post_known: t.meta.is_some(),
            created_at: virality::from_unix_seconds(t.origin()),
            observed_at: v.observed_at,
            last_activity_at: Utc::now() - idle,
            status,
            shares: clamp_i64(v.counts.shares),
            likes: clamp_i64(v.counts.likes),
            comments: clamp_i64(v.counts.comments),
            views: clamp_i64(v.counts.views),
            reach: clamp_i64(v.reach),
            depth: i64::from(v.structure.depth),
            breadth: clamp_i64(v.structure.breadth),
            structural_virality: v.structure.structural_virality,
            velocity: v.momentum.velocity,
            acceleration: v.momentum.acceleration,
            virality_score: v.virality_score,
            virality_probability: v.virality_probability,
            viral: v.viral_classification == "yes",
            predicted_final_shares: v.predicted_final_shares,
            ci_lower: v.confidence_interval.lower,
            ci_upper: v.confidence_interval.upper,
            ci_level: v.confidence_interval.level,
            threshold: v.threshold,
            branching: v.branching,
            dynamics: v.virality_dynamics.as_str(),
            model_name: v.model_lineage.name.clone(),
            model_version: v.model_lineage.version.clone(),
            params_hash: v.model_lineage.params_hash.clone(),
        }
    }

    /// Rescores every changed cascade; queues its row, history and live update.
    fn score_dirty(&mut self) {
        let dirty: Vec<String> = self.dirty.drain().collect();
        let window = self.window_min();
        let (publish_step, history_step) = (self.cfg().publish_step, self.cfg().history_step);
        let mut scored = 0u64;
        let mut updates = 0u64;
        for id in dirty {
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            let v = self.model.score(&entry.tracker, window);
            scored += 1;
            let row = self.row(&id, entry, &v, "active");
            let record = match entry.last_recorded {
                None => true,
                Some((score, predicted)) => {
                    (v.virality_score - score).abs() >= history_step
                        || (v.predicted_final_shares - predicted).abs()
                            >= HISTORY_RELATIVE_STEP * predicted.max(1.0)
                }
            };
            let publish = (v.virality_score - entry.last_published).abs() >= publish_step;
            if record {
                self.pending_history.push(HistoryRow {
                    post_id: id.clone(),
                    observed_at: v.observed_at,
                    age_secs: v.age_secs,
                    shares: row.shares,
                    virality_score: v.virality_score,
                    virality_probability: v.virality_probability,
                    viral: row.viral,
                    predicted_final_shares: v.predicted_final_shares,
                    ci_lower: v.confidence_interval.lower,
                    ci_upper: v.confidence_interval.upper,
                    dynamics: row.dynamics,
                    structural_virality: v.structure.structural_virality,
                    velocity: v.momentum.velocity,
                    acceleration: v.momentum.acceleration,
                    params_hash: row.params_hash.clone(),
                });
            }
            if publish {
                if let Some(publisher) = &self.publisher {
                    let meta = entry.tracker.meta.clone().unwrap_or_default();
                    let body = PostVirality {
                        post_id: &id,
                        platform: meta.platform.map(Platform::as_str),
                        product: meta.product.as_deref(),
                        channel: meta.channel.as_deref(),
                        city: meta.city.as_deref(),
                        country: meta.country.as_deref(),
                        sentiment: meta.sentiment.map(SentimentLabel::as_str),
                        hashtags: &meta.hashtags,
                        status: "active",
                        virality: &v,
                    };
                    if let Ok(data) = serde_json::to_string(&body) {
                        publisher.do_send(Publish {
                            topic: Topic::Virality,
                            event_type: VIRALITY_UPDATE.to_string(),
                            data: Arc::from(data),
                            keys: FilterKeys {
                                platform: meta.platform,
                                product: meta.product.clone(),
                                city: meta.city.clone(),
                                country: meta.country.clone(),
                                channel: meta.channel.clone(),
                                sentiment: meta.sentiment,
                            },
                        });
                        updates += 1;
                    }
                }
            }
            if let Some(entry) = self.entries.get_mut(&id) {
                if record {
                    entry.last_recorded = Some((v.virality_score, v.predicted_final_shares));
                }
                if publish {
                    entry.last_published = v.virality_score;
                }
            }
            self.pending_rows.insert(id, row);
        }
        metrics::counter!(names::VIRALITY_PREDICTIONS).increment(scored);
        metrics::counter!(names::VIRALITY_UPDATES).increment(updates);
    }

    fn momentum_rows(&mut self) -> Vec<MomentumRow> {
        let window = self.window_min();
        let mut rows = Vec::new();
        for (dimension, key) in self.momentum_dirty.drain() {
            let map = if dimension == "product" {
                &self.products
            } else {
                &self.hashtags
            };
            if let Some((m, _)) = map.get(&key) {
                let r = m.rates(window);
                rows.push(MomentumRow {
                    dimension,
                    key,
                    velocity: r.velocity,
                    acceleration: r.acceleration,
                    posts: 0,
                });
            }
        }
        rows
    }

    /// Takes what is to be written (rows, history, momentum) together with the feed position
    /// they account for; `None` when there is nothing new.
    fn take_write(&mut self) -> Option<WriteJob> {
        let conn = self.leader.as_ref()?.client.clone();
        if self.pending_rows.is_empty()
            && self.pending_history.is_empty()
            && self.momentum_dirty.is_empty()
            && self.cursor == self.persisted_cursor
        {
            return None;
        }
        Some(WriteJob {
            conn,
            rows: self.pending_rows.drain().map(|(_, r)| r).collect(),
            history: std::mem::take(&mut self.pending_history),
            momentum: self.momentum_rows(),
            cursor: self.cursor,
            holder: self.holder.clone(),
            epoch: self.epoch,
        })
    }

    /// What a write's outcome changes: the persisted position, or the rows queued again.
    fn written(&mut self, job_epoch: u64, cursor: Option<u64>, result: WriteResult) {
        if job_epoch != self.epoch {
            // Written under a leadership this process has since given up: whoever tracks
            // now rebuilt from what was committed.
            return;
        }
        match result {
            Ok(()) => self.persisted_cursor = cursor,
            Err((e, rows, history)) => {
                for row in rows {
                    self.pending_rows.entry(row.post_id.clone()).or_insert(row);
                }
                if self.pending_history.len() < 100_000 {
                    let mut history = history;
                    history.append(&mut self.pending_history);
                    self.pending_history = history;
                }
                self.on_leader_error("write", &e);
            }
        }
    }

    fn write(&mut self, ctx: &mut Context<Self>) {
        // One write at a time; the gate is taken here, before the state is, so writes reach
        // the database in the order their state was taken.
        let Ok(guard) = self.write_gate.clone().try_lock_owned() else {
            return;
        };
        let Some(job) = self.take_write() else {
            return;
        };
        let (epoch, cursor) = (job.epoch, job.cursor);
        let started = Instant::now();
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let result = job.run().await;
                drop(guard);
                result
            })
            .map(move |result, this, _| {
                metrics::histogram!(names::VIRALITY_TICK_SECONDS).record(started.elapsed());
                this.written(epoch, cursor, result);
            }),
        );
    }

    /// Counts a failed operation on the tracking connection; gives the tracker up when the
    /// connection is gone (the lock went with it, another process may hold it already).
    fn on_leader_error(&mut self, operation: &'static str, e: &anyhow::Error) {
        metrics::counter!(names::VIRALITY_ERRORS, "operation" => operation).increment(1);
        if self.leader.as_ref().is_some_and(PgSession::is_closed) {
            self.step_down("its PostgreSQL connection was lost");
        } else {
            tracing::warn!(error = %e, operation, "virality tracker operation failed; retrying");
        }
    }

    /// Tries to take the tracker lock (standing by when another process holds it).
    fn try_take_over(&mut self, ctx: &mut Context<Self>) {
        if self.retired || self.leader.is_some() || self.acquiring {
            return;
        }
        self.acquiring = true;
        let standby = self.standby.take().filter(|s| !s.is_closed());
        let url = self.settings.database.url.clone();
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let session = match standby {
                    Some(s) => s,
                    None => PgSession::open(&url).await?,
                };
                let locked: bool = session
                    .client
                    .lock()
                    .await
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&TRACKER_LOCK])
                    .await?
                    .get(0);
                anyhow::Ok((session, locked))
            })
            .map(|result, this, ctx| {
                this.acquiring = false;
                match result {
                    Ok((session, true)) if !this.retired => this.lead(session, ctx),
                    // Shutting down meanwhile: dropping the session releases the lock.
                    Ok((_, true)) => {}
                    Ok((session, false)) => this.standby = Some(session),
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot try the virality tracker lock now")
                    }
                }
            }),
        );
    }

    /// Becomes the tracking process: rebuilds the active cascades, then reads the feed.
    fn lead(&mut self, session: PgSession, ctx: &mut Context<Self>) {
        self.epoch += 1;
        self.leader = Some(session);
        self.standby = None;
        metrics::gauge!(names::VIRALITY_LEADER).set(1.0);
        metrics::counter!(names::VIRALITY_TAKEOVERS).increment(1);
        tracing::info!("this process now runs the virality tracker; rebuilding its cascades");
        self.rebuild(ctx);
    }

    /// Stops tracking and forgets every cascade; dropping the connection releases the lock,
    /// and the process that takes over rebuilds from what was committed.
    fn step_down(&mut self, why: &str) {
        if self.leader.take().is_some() {
            if self.retired {
                tracing::info!(why, "virality tracker handed over");
            } else {
                tracing::warn!(
                    why,
                    "virality tracker given up; another process takes it over"
                );
            }
        }
        metrics::gauge!(names::VIRALITY_LEADER).set(0.0);
        self.epoch += 1;
        self.ready = false;
        self.cursor = None;
        self.persisted_cursor = None;
        self.polling = None;
        self.entries.clear();
        self.dirty.clear();
        self.recent.clear();
        self.pending_rows.clear();
        self.pending_history.clear();
        self.products.clear();
        self.hashtags.clear();
        self.momentum_dirty.clear();
        metrics::gauge!(names::VIRALITY_CASCADES).set(0.0);
    }

    /// Reads the engagements committed since the position and applies them.
    fn poll(&mut self, ctx: &mut Context<Self>) {
        if !self.ready || self.polling.is_some() {
            return;
        }
        let (Some(session), Some(cursor)) = (&self.leader, self.cursor) else {
            return;
        };
        let conn = session.client.clone();
        let epoch = self.epoch;
        self.polling = Some(epoch);
        ctx.spawn(
            wrap_future::<_, Self>(async move { read_feed(&conn, cursor).await }).map(
                move |result, this, ctx| {
                    if this.epoch != epoch {
                        return;
                    }
                    match result {
                        Ok(read) => this.feed_read(read, ctx),
                        Err(e) => {
                            this.polling = None;
                            this.on_leader_error("feed", &e);
                        }
                    }
                },
            ),
        );
    }

    /// Applies one read of the feed, looking up the posts it names that are not known yet
    /// first, then moves the position past it.
    fn feed_read(&mut self, read: FeedRead, ctx: &mut Context<Self>) {
        metrics::counter!(names::VIRALITY_FEED_ROWS).increment(read.rows.len() as u64);
        let unknown = self.unknown_posts(&read.rows);
        let epoch = self.epoch;
        if unknown.is_empty() {
            self.feed_applied(read, Vec::new(), ctx);
            return;
        }
        let pool = self.pool.clone();
        ctx.spawn(
            wrap_future::<_, Self>(async move { load_meta(&pool, &unknown).await }).map(
                move |metas, this, ctx| {
                    if this.epoch != epoch {
                        return;
                    }
                    let metas = metas.unwrap_or_else(|e| {
                        metrics::counter!(names::VIRALITY_ERRORS, "operation" => "lookup")
                            .increment(1);
                        tracing::debug!(error = %e, "post lookup failed; retried per cascade");
                        Vec::new()
                    });
                    this.feed_applied(read, metas, ctx);
                },
            ),
        );
    }

    fn feed_applied(
        &mut self,
        read: FeedRead,
        metas: Vec<(String, PostMeta)>,
        ctx: &mut Context<Self>,
    ) {
        self.apply_feed(&read.rows, metas);
        self.cursor = Some(read.upper);
        self.polling = None;
        if read.more {
            ctx.run_later(Duration::ZERO, |this, ctx| this.poll(ctx));
        }
    }

    fn look_up_meta(&mut self, ctx: &mut Context<Self>) {
        if self.looking_up {
            return;
        }
        self.ticks += 1;
        let slow_round = self.ticks.is_multiple_of(SLOW_LOOKUP_TICKS);
        let ids: Vec<String> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.meta_pending && (e.meta_lookups < MAX_META_LOOKUPS || slow_round))
            .take(META_LOOKUPS_PER_TICK)
            .map(|(id, e)| {
                e.meta_lookups = e.meta_lookups.saturating_add(1);
                id.clone()
            })
            .collect();
        if ids.is_empty() {
            return;
        }
        self.looking_up = true;
        let pool = self.pool.clone();
        ctx.spawn(
            wrap_future::<_, Self>(async move { load_meta(&pool, &ids).await }).map(
                |result, this, _| {
                    this.looking_up = false;
                    match result {
                        Ok(found) => {
                            for (id, meta) in found {
                                if let Some(e) = this.entries.get_mut(&id) {
                                    e.tracker.meta = Some(meta);
                                    e.meta_pending = false;
                                    this.dirty.insert(id);
                                }
                            }
                        }
                        Err(e) => {
                            metrics::counter!(names::VIRALITY_ERRORS, "operation" => "lookup")
                                .increment(1);
                            tracing::debug!(error = %e, "post lookup failed");
                        }
                    }
                },
            ),
        );
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.leader.as_ref().is_some_and(PgSession::is_closed) {
            self.step_down("its PostgreSQL connection was lost");
        }
        if !self.ready {
            return;
        }
        self.expire();
        self.look_up_meta(ctx);
        self.score_dirty();
        self.write(ctx);
    }

    fn refresh_thresholds(&mut self, ctx: &mut Context<Self>) {
        let pool = self.pool.clone();
        let (quantile, min_history) = (
            self.cfg().threshold_quantile,
            self.cfg().threshold_min_history,
        );
        let fixed = self.cfg().threshold_shares;
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let client = pool.get().await?;
                learned_thresholds(&client, quantile, min_history).await
            })
            .map(move |result: anyhow::Result<_>, this, _| match result {
                Ok(thresholds) => {
                    if thresholds != this.model.thresholds {
                        tracing::info!(?thresholds, "virality thresholds learned from history");
                        this.model.set_thresholds(thresholds, fixed);
                        let ids: Vec<String> = this.entries.keys().cloned().collect();
                        this.dirty.extend(ids);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "learning virality thresholds failed"),
            }),
        );
    }

    fn rebuild(&mut self, ctx: &mut Context<Self>) {
        let Some(session) = &self.leader else {
            return;
        };
        let conn = session.client.clone();
        let settings = self.settings.clone();
        let epoch = self.epoch;
        ctx.spawn(
            wrap_future::<_, Self>(async move { load_state(&conn, &settings).await }).map(
                move |result, this, ctx| {
                    if this.epoch != epoch {
                        return;
                    }
                    match result {
                        Ok(rebuilt) => {
                            let n = rebuilt.entries.len();
                            this.model
                                .set_thresholds(rebuilt.thresholds, this.cfg().threshold_shares);
                            for (id, entry) in rebuilt.entries {
                                this.dirty.insert(id.clone());
                                this.entries.insert(id, entry);
                            }
                            this.cursor = Some(rebuilt.cursor);
                            this.persisted_cursor = rebuilt.stored_cursor;
                            this.ready = true;
                            tracing::info!(
                                cascades = n,
                                position = rebuilt.cursor,
                                "virality state rebuilt from PostgreSQL; reading committed engagements from there"
                            );
                            this.poll(ctx);
                        }
                        Err(e) => {
                            metrics::counter!(names::VIRALITY_ERRORS, "operation" => "rebuild")
                                .increment(1);
                            if this.leader.as_ref().is_some_and(PgSession::is_closed) {
                                this.step_down("its PostgreSQL connection was lost");
                                return;
                            }
                            tracing::warn!(error = %e, "rebuilding virality state failed; retrying");
                            ctx.run_later(Duration::from_secs(1), move |this, ctx| {
                                if this.epoch == epoch {
                                    this.rebuild(ctx);
                                }
                            });
                        }
                    }
                },
            ),
        );
    }
}

fn bump(
    map: &mut HashMap<String, (Momentum, Instant)>,
    key: &str,
    at: f64,
    count: u32,
    window: i64,
    now: Instant,
) {
    if !map.contains_key(key) && map.len() >= MAX_MOMENTUM_KEYS {
        return;
    }
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| (Momentum::default(), now));
    slot.0.add(at, u64::from(count), window);
    slot.1 = now;
}

impl Actor for ViralityTracker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::gauge!(names::VIRALITY_LEADER).set(0.0);
        self.try_take_over(ctx);
        let takeover = Duration::from_millis(self.cfg().takeover_interval_ms.max(10));
        ctx.run_interval(takeover, |this, ctx| this.try_take_over(ctx));
        let every = Duration::from_millis(self.cfg().score_interval_ms.max(10));
        ctx.run_interval(every, |this, ctx| this.tick(ctx));
        let feed = Duration::from_millis(self.cfg().feed_interval_ms.max(10));
        ctx.run_interval(feed, |this, ctx| this.poll(ctx));
        ctx.run_interval(THRESHOLD_REFRESH, |this, ctx| {
            if this.ready {
                this.refresh_thresholds(ctx);
            }
        });
    }
}

impl Handler<Committed> for ViralityTracker {
    type Result = ();

    /// Engagements come from the feed; a local batch only tells the metadata of its posts.
    fn handle(&mut self, msg: Committed, _: &mut Self::Context) {
        if self.leader.is_some() {
            self.remember_posts(&msg);
        }
    }
}

/// Rescores and writes everything now, then hands the tracker over: the lock is released so
/// another process takes over without waiting (shutdown). A standing-by process only stops
/// trying.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct FlushVirality;

impl Handler<FlushVirality> for ViralityTracker {
    type Result = actix::ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushVirality, _: &mut Self::Context) -> Self::Result {
        self.retired = true;
        self.standby = None;
        let gate = self.write_gate.clone();
        Box::pin(
            // After the write under way, if any, so that this one is the last.
            wrap_future::<_, Self>(gate.lock_owned())
                .then(|guard, this, _| {
                    if this.ready {
                        this.score_dirty();
                    }
                    let job = this.take_write();
                    wrap_future::<_, Self>(async move {
                        let outcome = match job {
                            Some(job) => Some((job.epoch, job.cursor, job.run().await)),
                            None => None,
                        };
                        drop(guard);
                        outcome
                    })
                })
                .map(|outcome, this, _| {
                    if let Some((epoch, cursor, result)) = outcome {
                        if let Err((e, _, _)) = &result {
                            tracing::warn!(error = %e, "writing virality state at shutdown failed");
                        }
                        this.written(epoch, cursor, result);
                    }
                    this.step_down("shutting down");
                }),
        )
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<super::messages::InjectFault> for ViralityTracker {
    type Result = ();

    fn handle(&mut self, _: super::messages::InjectFault, _: &mut Self::Context) {
        panic!("injected virality fault");
    }
}

/// What a takeover starts from.
struct Rebuilt {
    entries: Vec<(String, Entry)>,
    thresholds: BTreeMap<String, f64>,
    /// Where the feed resumes: the stored position, or the present on a first start.
    cursor: u64,
    /// The stored position, if any.
    stored_cursor: Option<u64>,
}

/// Finishes cascades that went quiet while no process tracked them, then rebuilds the
/// active ones from their engagements before the stored feed position (the ones after it
/// come through the feed).
async fn load_state(conn: &Conn, settings: &Settings) -> anyhow::Result<Rebuilt> {
    let v = &settings.virality;
    let client = conn.lock().await;
    let now_horizon = horizon(&client).await?;
    let stored: Option<u64> = client
        .query_opt("SELECT position::text FROM virality_feed", &[])
        .await?
        .map(|r| r.get::<_, String>(0).parse())
        .transpose()?;
    let cursor = match stored {
        Some(position) if position <= now_horizon => position,
        Some(position) => {
            // Transaction ids went back (the database was restored elsewhere): ids stored
            // with old rows mean nothing here. Those rows count for rebuilds only; the feed
            // starts from now.
            tracing::warn!(
                position,
                horizon = now_horizon,
                "stored virality feed position is ahead of this database's transactions; restarting the feed from now"
            );
            client
                .execute(
                    "UPDATE engagements SET tx = NULL WHERE tx >= $1::text::xid8",
                    &[&now_horizon.to_string()],
                )
                .await?;
            now_horizon
        }
        None => now_horizon,
    };
    let expiry = v.inactive_expiry_secs as f64;
    client
        .execute(
            "UPDATE virality_cascades SET status = 'finished', updated_at = now()
             WHERE status = 'active' AND last_activity_at < now() - make_interval(secs => $1)",
            &[&expiry],
        )
        .await?;
    let limit = i64::try_from(v.max_cascades).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT post_id, post_known, last_activity_at, virality_score, predicted_final_shares,
                    platform, product, channel, city, country, sentiment, hashtags,
                    author_followers, created_at
             FROM virality_cascades WHERE status = 'active'
             ORDER BY last_activity_at DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    let window = (v.momentum_window_secs / 60).max(1) as i64;
    let now = Utc::now();
    let mut entries: HashMap<String, Entry> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.get(0);
        let known: bool = row.get(1);
        let last: DateTime<Utc> = row.get(2);
        let idle = (now - last).to_std().unwrap_or_default();
        let mut tracker = Tracker::new(v.max_tracked_shares);
        if known {
            tracker.meta = Some(meta_of(row, 5));
        }
        let score: f64 = row.get(3);
        let predicted: f64 = row.get(4);
        entries.insert(
            id,
            Entry {
                tracker,
                last_activity: Instant::now()
                    .checked_sub(idle)
                    .unwrap_or_else(Instant::now),
                last_published: score,
                last_recorded: Some((score, predicted)),
                meta_lookups: 0,
                meta_pending: !known,
            },
        );
    }
    let ids: Vec<String> = entries.keys().cloned().collect();
    for chunk in ids.chunks(REBUILD_CHUNK) {
        // Rows without a transaction id predate the feed; all of them are before it.
        let rows = client
            .query(
                &format!(
                    "SELECT {FEED_COLUMNS} FROM engagements
                     WHERE post_id = ANY($1) AND (tx IS NULL OR tx < $2::text::xid8)
                     ORDER BY at, key"
                ),
                &[&chunk, &cursor.to_string()],
            )
            .await?;
        for row in rows {
            let r = feed_row(&row);
            let Some(entry) = entries.get_mut(&r.post_id) else {
                continue;
            };
            entry.tracker.add(
                Some(&r.share_id),
                r.kind,
                r.at,
                r.followers,
                r.via.as_deref(),
                r.count,
                window,
            );
        }
    }
    let thresholds =
        learned_thresholds(&client, v.threshold_quantile, v.threshold_min_history).await?;
    Ok(Rebuilt {
        entries: entries.into_iter().collect(),
        thresholds,
        cursor,
        stored_cursor: stored.filter(|p| *p == cursor),
    })
}
