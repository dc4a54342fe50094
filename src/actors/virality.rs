//! The virality tracker: follows every post's cascade from committed engagements, rescores
//! the cascades that changed every `virality.score_interval_ms`, writes their latest
//! prediction (and, when it moved, a history row) to PostgreSQL, and publishes
//! `virality:update` when a score moved by `virality.publish_step` or more.
//!
//! Memory is bounded: at most `virality.max_cascades` cascades (the least recently active
//! are finished first), at most `virality.max_tracked_shares` shares per tree, and a
//! cascade without engagement for `virality.inactive_expiry_secs` is finished (its final
//! counts stay in `virality_cascades` as history for the thresholds).
//!
//! On start the active cascades are rebuilt from `virality_cascades` and the `engagements`
//! they point at, so a restarted process predicts exactly what it predicted before.
//! Committed batches that arrive meanwhile wait (bounded) and are applied afterwards.
//!
//! Predictions are made at each cascade's latest event time, so they are a function of the
//! events alone. Every input is checked; nothing a producer sends can make this actor panic.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::messages::{Committed, InjectFault};
use super::store::engagement_key;
use crate::config::{Settings, ViralitySettings};
use crate::models::{EngagementKind, Platform, SentimentLabel};
use crate::telemetry::names;
use crate::virality::calibration::Calibration;
use crate::virality::momentum::Momentum;
use crate::virality::{self, unix_seconds, Model, PostMeta, Tracker, Virality};
use crate::ws::protocol::VIRALITY_UPDATE;
use crate::ws::{FilterKeys, Publish, Topic};

/// Committed batches kept while the state is being rebuilt; older ones are dropped.
const MAX_WAITING_BATCHES: usize = 2_000;
/// Posts whose metadata is looked up in PostgreSQL per tick.
const META_LOOKUPS_PER_TICK: usize = 500;
/// Lookups of one post's metadata before giving up on it.
const MAX_META_LOOKUPS: u8 = 5;
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

/// A row of `virality_cascades`, written as JSON through `jsonb_to_recordset`.
#[derive(Debug, Clone, Serialize)]
struct CascadeRow {
    post_id: String,
    platform: Option<&'static str>,
    product: Option<String>,
    channel: Option<String>,
    city: Option<String>,
    country: Option<String>,
    sentiment: Option<&'static str>,
    hashtags: Vec<String>,
    author_followers: i64,
    post_known: bool,
    created_at: DateTime<Utc>,
    observed_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    status: &'static str,
    shares: i64,
    likes: i64,
    comments: i64,
    views: i64,
    reach: i64,
    depth: i64,
    breadth: i64,
    structural_virality: f64,
    velocity: f64,
    acceleration: f64,
    virality_score: f64,
    virality_probability: f64,
    viral: bool,
    predicted_final_shares: f64,
    ci_lower: f64,
    ci_upper: f64,
    ci_level: f64,
    threshold: f64,
    branching: f64,
    dynamics: &'static str,
    model_name: String,
    model_version: String,
    params_hash: String,
}

/// A row of `virality_predictions`.
#[derive(Debug, Clone, Serialize)]
struct HistoryRow {
    post_id: String,
    observed_at: DateTime<Utc>,
    age_secs: f64,
    shares: i64,
    virality_score: f64,
    virality_probability: f64,
    viral: bool,
    predicted_final_shares: f64,
    ci_lower: f64,
    ci_upper: f64,
    dynamics: &'static str,
    structural_virality: f64,
    velocity: f64,
    acceleration: f64,
    params_hash: String,
}

#[derive(Debug, Clone, Serialize)]
struct MomentumRow {
    dimension: &'static str,
    key: String,
    velocity: f64,
    acceleration: f64,
    posts: i64,
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

/// The virality tracker actor.
pub struct ViralityTracker {
    settings: Arc<Settings>,
    pool: Pool,
    stream: String,
    publisher: Option<Recipient<Publish>>,
    model: Model,
    entries: HashMap<String, Entry>,
    dirty: HashSet<String>,
    /// Metadata of recent posts without engagement yet (bounded, oldest dropped).
    recent: HashMap<String, PostMeta>,
    recent_order: VecDeque<String>,
    ready: bool,
    waiting: VecDeque<Committed>,
    writing: bool,
    looking_up: bool,
    pending_rows: HashMap<String, CascadeRow>,
    pending_history: Vec<HistoryRow>,
    products: HashMap<String, (Momentum, Instant)>,
    hashtags: HashMap<String, (Momentum, Instant)>,
    momentum_dirty: HashSet<(&'static str, String)>,
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
        ViralityTracker {
            stream: settings.redis.stream.clone(),
            settings,
            pool,
            publisher,
            model,
            entries: HashMap::new(),
            dirty: HashSet::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            ready: false,
            waiting: VecDeque::new(),
            writing: false,
            looking_up: false,
            pending_rows: HashMap::new(),
            pending_history: Vec::new(),
            products: HashMap::new(),
            hashtags: HashMap::new(),
            momentum_dirty: HashSet::new(),
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
        if self.recent.insert(id.to_string(), meta).is_none() {
            self.recent_order.push_back(id.to_string());
        }
        while self.recent_order.len() > self.cfg().max_cascades.max(1) {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
    }

    fn apply(&mut self, msg: &Committed) {
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
        if msg.outcome.inserted_engagement_keys.is_empty() {
            return;
        }
        let new_keys: HashSet<&str> = msg
            .outcome
            .inserted_engagement_keys
            .iter()
            .map(String::as_str)
            .collect();
        let window = self.window_min();
        let max_shares = self.cfg().max_tracked_shares;
        let mut applied = 0u64;
        for e in &msg.batch.engagements {
            let key = engagement_key(&self.stream, e.engagement.id.as_deref(), &e.entry_id);
            if !new_keys.contains(key.as_str()) {
                continue;
            }
            let eng = &e.engagement;
            let post_id = eng.post_id.as_str();
            if !self.entries.contains_key(post_id) {
                let meta = self.recent.remove(post_id);
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
            let share_id = eng.id.as_deref().unwrap_or(key.as_str());
            let at = unix_seconds(eng.at);
            let count = eng.count.unwrap_or(1);
            if entry.tracker.add(
                Some(share_id),
                eng.kind,
                at,
                eng.actor_followers,
                eng.via.as_deref(),
                count,
                window,
            ) {
                applied += 1;
                entry.last_activity = Instant::now();
                if let Some(meta) = &entry.tracker.meta {
                    let now = Instant::now();
                    if let Some(product) = &meta.product {
                        bump(&mut self.products, product, at, count, window, now);
                        self.momentum_dirty.insert(("product", product.clone()));
                    }
                    for tag in &meta.hashtags {
                        bump(&mut self.hashtags, tag, at, count, window, now);
                        self.momentum_dirty.insert(("hashtag", tag.clone()));
                    }
                }
                if !self.dirty.contains(post_id) {
                    self.dirty.insert(post_id.to_string());
                }
            }
        }
        metrics::counter!(names::VIRALITY_EVENTS).increment(applied);
        let _ = EngagementKind::Share;
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

    fn write(&mut self, ctx: &mut Context<Self>) {
        if self.writing
            || (self.pending_rows.is_empty()
                && self.pending_history.is_empty()
                && self.momentum_dirty.is_empty())
        {
            return;
        }
        self.writing = true;
        let rows: Vec<CascadeRow> = self.pending_rows.drain().map(|(_, r)| r).collect();
        let history = std::mem::take(&mut self.pending_history);
        let momentum = self.momentum_rows();
        let pool = self.pool.clone();
        let started = Instant::now();
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let result = write_rows(&pool, &rows, &history, &momentum).await;
                (result, rows, history)
            })
            .map(move |(result, rows, history), this, _| {
                this.writing = false;
                metrics::histogram!(names::VIRALITY_TICK_SECONDS).record(started.elapsed());
                if let Err(e) = result {
                    metrics::counter!(names::VIRALITY_ERRORS, "operation" => "write").increment(1);
                    tracing::warn!(error = %e, "writing virality state failed; retrying next tick");
                    for row in rows {
                        this.pending_rows.entry(row.post_id.clone()).or_insert(row);
                    }
                    if this.pending_history.len() < 100_000 {
                        let mut history = history;
                        history.append(&mut this.pending_history);
                        this.pending_history = history;
                    }
                }
            }),
        );
    }

    fn look_up_meta(&mut self, ctx: &mut Context<Self>) {
        if self.looking_up {
            return;
        }
        let ids: Vec<String> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.meta_pending && e.meta_lookups < MAX_META_LOOKUPS)
            .take(META_LOOKUPS_PER_TICK)
            .map(|(id, e)| {
                e.meta_lookups += 1;
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
        let pool = self.pool.clone();
        let settings = self.settings.clone();
        let stream = self.stream.clone();
        ctx.spawn(
            wrap_future::<_, Self>(async move { load_state(&pool, &settings, &stream).await }).map(
                |result, this, ctx| match result {
                    Ok((entries, thresholds)) => {
                        let n = entries.len();
                        this.model
                            .set_thresholds(thresholds, this.cfg().threshold_shares);
                        for (id, entry) in entries {
                            this.dirty.insert(id.clone());
                            this.entries.insert(id, entry);
                        }
                        this.ready = true;
                        let waiting = std::mem::take(&mut this.waiting);
                        for msg in &waiting {
                            this.apply(msg);
                        }
                        tracing::info!(cascades = n, "virality state rebuilt from PostgreSQL");
                    }
                    Err(e) => {
                        metrics::counter!(names::VIRALITY_ERRORS, "operation" => "rebuild")
                            .increment(1);
                        tracing::warn!(error = %e, "rebuilding virality state failed; retrying");
                        ctx.run_later(Duration::from_secs(1), |this, ctx| this.rebuild(ctx));
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
        self.rebuild(ctx);
        let every = Duration::from_millis(self.cfg().score_interval_ms.max(10));
        ctx.run_interval(every, |this, ctx| this.tick(ctx));
        ctx.run_interval(THRESHOLD_REFRESH, |this, ctx| this.refresh_thresholds(ctx));
    }
}

impl Handler<Committed> for ViralityTracker {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Self::Context) {
        if self.ready {
            self.apply(&msg);
        } else {
            if self.waiting.len() >= MAX_WAITING_BATCHES {
                self.waiting.pop_front();
                tracing::warn!("virality state still rebuilding; dropped the oldest waiting batch");
            }
            self.waiting.push_back(msg);
        }
    }
}

/// Rescores and writes everything now (tests and shutdown).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct FlushVirality;

impl Handler<FlushVirality> for ViralityTracker {
    type Result = actix::ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushVirality, _: &mut Self::Context) -> Self::Result {
        if self.ready {
            self.score_dirty();
        }
        let rows: Vec<CascadeRow> = self.pending_rows.drain().map(|(_, r)| r).collect();
        let history = std::mem::take(&mut self.pending_history);
        let momentum = self.momentum_rows();
        let pool = self.pool.clone();
        Box::pin(
            wrap_future::<_, Self>(async move {
                if let Err(e) = write_rows(&pool, &rows, &history, &momentum).await {
                    tracing::warn!(error = %e, "writing virality state failed");
                }
            })
            .map(|_, _, _| ()),
        )
    }
}

impl Handler<InjectFault> for ViralityTracker {
    type Result = ();

    fn handle(&mut self, _: InjectFault, _: &mut Self::Context) {
        panic!("injected virality fault");
    }
}

const UPSERT_CASCADES: &str = "
INSERT INTO virality_cascades AS c (
    post_id, platform, product, channel, city, country, sentiment, hashtags, author_followers,
    post_known, created_at, observed_at, last_activity_at, status, shares, likes, comments,
    views, reach, depth, breadth, structural_virality, velocity, acceleration, virality_score,
    virality_probability, viral, predicted_final_shares, ci_lower, ci_upper, ci_level,
    threshold, branching, dynamics, model_name, model_version, params_hash, updated_at)
SELECT post_id, platform, product, channel, city, country, sentiment, hashtags,
       author_followers, post_known, created_at, observed_at, last_activity_at, status, shares,
       likes, comments, views, reach, depth, breadth, structural_virality, velocity,
       acceleration, virality_score, virality_probability, viral, predicted_final_shares,
       ci_lower, ci_upper, ci_level, threshold, branching, dynamics, model_name,
       model_version, params_hash, now()
FROM jsonb_to_recordset($1::jsonb) AS r(
    post_id text, platform text, product text, channel text, city text, country text,
    sentiment text, hashtags text[], author_followers int8, post_known bool,
    created_at timestamptz, observed_at timestamptz, last_activity_at timestamptz,
    status text, shares int8, likes int8, comments int8, views int8, reach int8, depth int4,
    breadth int8, structural_virality float8, velocity float8, acceleration float8,
    virality_score float8, virality_probability float8, viral bool,
    predicted_final_shares float8, ci_lower float8, ci_upper float8, ci_level float8,
    threshold float8, branching float8, dynamics text, model_name text,
    model_version text, params_hash text)
ORDER BY post_id
ON CONFLICT (post_id) DO UPDATE SET
    platform = EXCLUDED.platform, product = EXCLUDED.product, channel = EXCLUDED.channel,
    city = EXCLUDED.city, country = EXCLUDED.country, sentiment = EXCLUDED.sentiment,
    hashtags = EXCLUDED.hashtags, author_followers = EXCLUDED.author_followers,
    post_known = EXCLUDED.post_known, created_at = EXCLUDED.created_at,
    observed_at = EXCLUDED.observed_at, last_activity_at = EXCLUDED.last_activity_at,
    status = EXCLUDED.status, shares = EXCLUDED.shares, likes = EXCLUDED.likes,
    comments = EXCLUDED.comments, views = EXCLUDED.views, reach = EXCLUDED.reach,
    depth = EXCLUDED.depth, breadth = EXCLUDED.breadth,
    structural_virality = EXCLUDED.structural_virality, velocity = EXCLUDED.velocity,
    acceleration = EXCLUDED.acceleration, virality_score = EXCLUDED.virality_score,
    virality_probability = EXCLUDED.virality_probability, viral = EXCLUDED.viral,
    predicted_final_shares = EXCLUDED.predicted_final_shares, ci_lower = EXCLUDED.ci_lower,
    ci_upper = EXCLUDED.ci_upper, ci_level = EXCLUDED.ci_level,
    threshold = EXCLUDED.threshold, branching = EXCLUDED.branching,
    dynamics = EXCLUDED.dynamics, model_name = EXCLUDED.model_name,
    model_version = EXCLUDED.model_version, params_hash = EXCLUDED.params_hash,
    updated_at = now()";

const INSERT_HISTORY: &str = "
INSERT INTO virality_predictions (
    post_id, observed_at, age_secs, shares, virality_score, virality_probability, viral,
    predicted_final_shares, ci_lower, ci_upper, dynamics, structural_virality, velocity,
    acceleration, params_hash)
SELECT post_id, observed_at, age_secs, shares, virality_score, virality_probability, viral,
       predicted_final_shares, ci_lower, ci_upper, dynamics, structural_virality, velocity,
       acceleration, params_hash
FROM jsonb_to_recordset($1::jsonb) AS r(
    post_id text, observed_at timestamptz, age_secs float8, shares int8,
    virality_score float8, virality_probability float8, viral bool,
    predicted_final_shares float8, ci_lower float8, ci_upper float8, dynamics text,
    structural_virality float8, velocity float8, acceleration float8, params_hash text)";

const UPSERT_MOMENTUM: &str = "
INSERT INTO virality_momentum AS m (dimension, key, velocity, acceleration, posts, updated_at)
SELECT dimension, key, velocity, acceleration, posts, now()
FROM jsonb_to_recordset($1::jsonb) AS r(
    dimension text, key text, velocity float8, acceleration float8, posts int8)
ORDER BY dimension, key
ON CONFLICT (dimension, key) DO UPDATE SET velocity = EXCLUDED.velocity,
    acceleration = EXCLUDED.acceleration, updated_at = now()";

/// Rows per statement.
const WRITE_CHUNK: usize = 2_000;

async fn write_rows(
    pool: &Pool,
    rows: &[CascadeRow],
    history: &[HistoryRow],
    momentum: &[MomentumRow],
) -> anyhow::Result<()> {
    if rows.is_empty() && history.is_empty() && momentum.is_empty() {
        return Ok(());
    }
    let client = pool.get().await?;
    for chunk in rows.chunks(WRITE_CHUNK) {
        client
            .execute(UPSERT_CASCADES, &[&serde_json::to_value(chunk)?])
            .await?;
    }
    for chunk in history.chunks(WRITE_CHUNK) {
        client
            .execute(INSERT_HISTORY, &[&serde_json::to_value(chunk)?])
            .await?;
    }
    for chunk in momentum.chunks(WRITE_CHUNK) {
        client
            .execute(UPSERT_MOMENTUM, &[&serde_json::to_value(chunk)?])
            .await?;
    }
    Ok(())
}

/// Thresholds learned from finished cascades (feedback outcomes win over observed counts):
/// the `quantile` of final shares per platform with at least `min_history` cascades.
pub async fn learned_thresholds(
    client: &tokio_postgres::Client,
    quantile: f64,
    min_history: i64,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let rows = client
        .query(
            "SELECT c.platform, count(*),
                    percentile_disc($1::float8) WITHIN GROUP (ORDER BY COALESCE(f.final_shares, c.shares))
             FROM virality_cascades c
             LEFT JOIN LATERAL (
                 SELECT final_shares FROM virality_feedback
                 WHERE post_id = c.post_id AND final_shares IS NOT NULL
                 ORDER BY id DESC LIMIT 1) f ON true
             WHERE c.status = 'finished' AND c.platform IS NOT NULL
             GROUP BY c.platform",
            &[&quantile.clamp(0.5, 0.9999)],
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let platform: String = row.get(0);
        let n: i64 = row.get(1);
        let value: i64 = row.get(2);
        if n >= min_history.max(1) {
            out.insert(platform, (value as f64).max(1.0));
        }
    }
    Ok(out)
}

fn meta_of(row: &tokio_postgres::Row, offset: usize) -> PostMeta {
    let platform: Option<String> = row.get(offset);
    let sentiment: Option<String> = row.get(offset + 5);
    let created: DateTime<Utc> = row.get(offset + 8);
    PostMeta {
        platform: platform.as_deref().and_then(Platform::parse),
        product: row.get(offset + 1),
        channel: row.get(offset + 2),
        city: row.get(offset + 3),
        country: row.get(offset + 4),
        sentiment: sentiment.as_deref().and_then(SentimentLabel::parse),
        hashtags: row.get(offset + 6),
        author_followers: u64::try_from(row.get::<_, i64>(offset + 7)).unwrap_or(0),
        created_at: unix_seconds(created),
    }
}

async fn load_meta(pool: &Pool, ids: &[String]) -> anyhow::Result<Vec<(String, PostMeta)>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, platform, product, channel, city, country, sentiment_label, text,
                    author_followers, created_at
             FROM posts WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let platform: String = row.get(1);
            let sentiment: String = row.get(6);
            let text: String = row.get(7);
            let created: DateTime<Utc> = row.get(9);
            (
                row.get(0),
                PostMeta {
                    platform: Platform::parse(&platform),
                    product: row.get(2),
                    channel: row.get(3),
                    city: row.get(4),
                    country: row.get(5),
                    sentiment: SentimentLabel::parse(&sentiment),
                    hashtags: virality::hashtags(&text),
                    author_followers: u64::try_from(row.get::<_, i64>(8)).unwrap_or(0),
                    created_at: unix_seconds(created),
                },
            )
        })
        .collect())
}

type Rebuilt = (Vec<(String, Entry)>, BTreeMap<String, f64>);

/// Finishes cascades that went quiet while no process tracked them, then rebuilds the
/// active ones from their stored engagements.
async fn load_state(pool: &Pool, settings: &Settings, stream: &str) -> anyhow::Result<Rebuilt> {
    let v = &settings.virality;
    let client = pool.get().await?;
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
        let rows = client
            .query(
                "SELECT post_id, key, kind, at, actor_followers, via, count
                 FROM engagements WHERE post_id = ANY($1) ORDER BY at, key",
                &[&chunk],
            )
            .await?;
        for row in rows {
            let post_id: String = row.get(0);
            let Some(entry) = entries.get_mut(&post_id) else {
                continue;
            };
            let key: String = row.get(1);
            let kind: String = row.get(2);
            let at: DateTime<Utc> = row.get(3);
            let followers: Option<i64> = row.get(4);
            let via: Option<String> = row.get(5);
            let count: i32 = row.get(6);
            let kind = match kind.as_str() {
                "share" => EngagementKind::Share,
                "like" => EngagementKind::Like,
                "comment" => EngagementKind::Comment,
                _ => EngagementKind::View,
            };
            // The live path names a share by its producer id, else by its key.
            let share_id = key.strip_prefix("id:").unwrap_or(&key);
            entry.tracker.add(
                Some(share_id),
                kind,
                unix_seconds(at),
                followers.and_then(|f| u64::try_from(f).ok()),
                via.as_deref(),
                u32::try_from(count).unwrap_or(1),
                window,
            );
        }
    }
    let _ = stream;
    let thresholds =
        learned_thresholds(&client, v.threshold_quantile, v.threshold_min_history).await?;
    Ok((entries.into_iter().collect(), thresholds))
}
