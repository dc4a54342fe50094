//! The tracker's state, apart from how it reaches PostgreSQL: the live cascades with their
//! post metadata, which of them changed since they were last scored, product and hashtag
//! momentum, and the rows and live updates waiting to be written or sent. Plain data driven
//! by the actor, so its rules are tested without a database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use crate::actors::messages::{Committed, Publish};
use crate::config::ViralitySettings;
use crate::db::virality::{
    CascadeRow, FeedRow, HistoryRow, MomentumRow, RebuildBounds, StoredCascade,
};
use crate::models::live::{FilterKeys, Topic, VIRALITY_UPDATE};
use crate::models::views::saturating_i64;
use crate::models::{Platform, SentimentLabel};
use crate::telemetry::names;
use crate::virality::calibration::Calibration;
use crate::virality::momentum::Momentum;
use crate::virality::recent::RecentPosts;
use crate::virality::thresholds::Learned;
use crate::virality::{self, unix_seconds, Model, PostMeta, Tracker, Virality};

/// Lookups of one post's metadata on consecutive ticks; after them, one every
/// [`SLOW_LOOKUP_TICKS`] ticks while the cascade lives (its post may be committed late, by
/// another process).
const MAX_META_LOOKUPS: u8 = 5;
/// Ticks between the later lookups of a post's metadata.
const SLOW_LOOKUP_TICKS: u64 = 30;
/// Most product and hashtag momentum keys kept.
const MAX_MOMENTUM_KEYS: usize = 10_000;
/// Relative change of the predicted final size that adds a history row.
const HISTORY_RELATIVE_STEP: f64 = 0.1;
/// History rows kept for the next write after a failed one; older ones are dropped first.
const MAX_PENDING_HISTORY: usize = 100_000;

struct Entry {
    tracker: Tracker,
    last_activity: Instant,
    last_published: f64,
    last_recorded: Option<(f64, f64)>,
    meta_lookups: u8,
    meta_pending: bool,
}

impl Entry {
    fn new(tracker: Tracker) -> Entry {
        let meta_pending = tracker.meta.is_none();
        Entry {
            tracker,
            last_activity: Instant::now(),
            last_published: 0.0,
            last_recorded: None,
            meta_lookups: 0,
            meta_pending,
        }
    }

    /// Shares its tree keeps in memory (`virality.max_total_shares` counts them).
    fn shares_kept(&self) -> usize {
        self.tracker.tree.nodes().len()
    }
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

/// What one write carries, taken out of the state together.
pub struct Pending {
    pub rows: Vec<CascadeRow>,
    pub history: Vec<HistoryRow>,
    pub momentum: Vec<MomentumRow>,
}

/// The cascades one tracking process follows.
pub struct Cascades {
    cfg: ViralitySettings,
    model: Model,
    entries: HashMap<String, Entry>,
    dirty: HashSet<String>,
    /// Metadata of recent posts without engagement yet (bounded, oldest dropped).
    recent: RecentPosts,
    pending_rows: HashMap<String, CascadeRow>,
    pending_history: Vec<HistoryRow>,
    products: HashMap<String, (Momentum, Instant)>,
    hashtags: HashMap<String, (Momentum, Instant)>,
    momentum_dirty: HashSet<(&'static str, String)>,
    /// Metadata lookup rounds so far, pacing the later lookups.
    lookup_rounds: u64,
}

impl Cascades {
    pub fn new(cfg: &ViralitySettings) -> Cascades {
        let mut model = Model::new(
            Calibration::shared(),
            cfg.interval_level,
            cfg.classify_probability,
        );
        model.set_thresholds(Learned::default(), cfg.threshold_shares);
        Cascades {
            cfg: cfg.clone(),
            model,
            entries: HashMap::new(),
            dirty: HashSet::new(),
            recent: RecentPosts::new(cfg.max_cascades),
            pending_rows: HashMap::new(),
            pending_history: Vec::new(),
            products: HashMap::new(),
            hashtags: HashMap::new(),
            momentum_dirty: HashSet::new(),
            lookup_rounds: 0,
        }
    }

    fn window_min(&self) -> i64 {
        window_minutes(&self.cfg)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets everything (the tracker was given up).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dirty.clear();
        self.recent.clear();
        self.pending_rows.clear();
        self.pending_history.clear();
        self.products.clear();
        self.hashtags.clear();
        self.momentum_dirty.clear();
    }

    /// Sets the learned thresholds; every cascade is rescored when they changed.
    pub fn set_thresholds(&mut self, thresholds: Learned) -> bool {
        if thresholds == self.model.thresholds {
            return false;
        }
        self.model
            .set_thresholds(thresholds, self.cfg.threshold_shares);
        self.dirty.extend(self.entries.keys().cloned());
        true
    }

    pub fn thresholds(&self) -> &Learned {
        &self.model.thresholds
    }

    /// Takes over stored cascades and their engagements before the feed position.
    pub fn restore(&mut self, stored: Vec<StoredCascade>, engagements: &[FeedRow]) {
        let now = Utc::now();
        let window = self.window_min();
        for c in stored {
            let idle = (now - c.last_activity_at).to_std().unwrap_or_default();
            let mut tracker = Tracker::new(self.cfg.max_tracked_shares);
            tracker.meta = c.meta;
            let mut entry = Entry::new(tracker);
            // Stored cascades keep no topics: read once more with the post, or the live
            // updates of a restored cascade never reach a subscriber filtering by topic.
            entry.meta_pending = true;
            entry.last_activity = Instant::now()
                .checked_sub(idle)
                .unwrap_or_else(Instant::now);
            entry.last_published = c.virality_score;
            entry.last_recorded = Some((c.virality_score, c.predicted_final_shares));
            self.dirty.insert(c.post_id.clone());
            self.entries.insert(c.post_id, entry);
        }
        let clock = unix_seconds(now);
        for r in engagements {
            if let Some(entry) = self.entries.get_mut(&r.post_id) {
                add_engagement(&mut entry.tracker, r, clock, window);
            }
        }
    }

    /// Takes finished cascades up again, from their engagements before the feed position,
    /// because the feed brought a new engagement of theirs. Cascades tracked meanwhile are
    /// left as they are.
    pub fn revive(&mut self, stored: Vec<StoredCascade>, engagements: &[FeedRow]) {
        let stored: Vec<StoredCascade> = stored
            .into_iter()
            .filter(|c| !self.entries.contains_key(&c.post_id))
            .collect();
        let revived: HashSet<&str> = stored.iter().map(|c| c.post_id.as_str()).collect();
        let engagements: Vec<FeedRow> = engagements
            .iter()
            .filter(|r| revived.contains(r.post_id.as_str()))
            .cloned()
            .collect();
        metrics::counter!(names::VIRALITY_REVIVED).increment(stored.len() as u64);
        self.restore(stored, &engagements);
    }

    pub fn remember_post(&mut self, id: &str, meta: PostMeta) {
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
    pub fn remember_posts(&mut self, msg: &Committed) {
        for p in msg.new_posts() {
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
                topics: p.topics.iter().map(|t| t.id).collect(),
                producer: Some(p.producer.clone()),
            };
            self.remember_post(&p.post.id, meta);
        }
    }

    /// Post ids of `rows` whose metadata is not known yet.
    pub fn unknown_posts(&self, rows: &[FeedRow]) -> Vec<String> {
        let mut seen = HashSet::new();
        rows.iter()
            .map(|r| r.post_id.as_str())
            .filter(|id| !self.entries.contains_key(*id) && !self.recent.contains(id))
            .filter(|id| seen.insert(*id))
            .map(str::to_string)
            .collect()
    }

    /// Applies committed engagements to their cascades, starting the cascades they begin.
    pub fn apply(&mut self, rows: &[FeedRow]) {
        let window = self.window_min();
        let max_shares = self.cfg.max_tracked_shares;
        let mut applied = 0u64;
        let clock = unix_seconds(Utc::now());
        for r in rows {
            let post_id = r.post_id.as_str();
            if !self.entries.contains_key(post_id) {
                let mut tracker = Tracker::new(max_shares);
                tracker.meta = self.recent.take(post_id);
                self.entries
                    .insert(post_id.to_string(), Entry::new(tracker));
            }
            let Some(entry) = self.entries.get_mut(post_id) else {
                continue;
            };
            if !add_engagement(&mut entry.tracker, r, clock, window) {
                continue;
            }
            applied += 1;
            let now = Instant::now();
            entry.last_activity = now;
            let at = not_ahead(r.at, clock);
            if let Some(meta) = &entry.tracker.meta {
                let dirty = &mut self.momentum_dirty;
                if let Some(product) = &meta.product {
                    let key = MomentumKey::new("product", product, dirty);
                    bump(&mut self.products, key, at, r.count, window, now);
                }
                for tag in &meta.hashtags {
                    let key = MomentumKey::new("hashtag", tag, dirty);
                    bump(&mut self.hashtags, key, at, r.count, window, now);
                }
            }
            if !self.dirty.contains(post_id) {
                self.dirty.insert(post_id.to_string());
            }
        }
        metrics::counter!(names::VIRALITY_EVENTS).increment(applied);
    }

    /// Finishes cascades that went quiet and, past either cap (cascades, shares kept), the
    /// least recently active of the producer holding the most (see [`over_the_caps`]).
    pub fn expire(&mut self) {
        self.expire_at(Instant::now());
    }

    /// [`Cascades::expire`] as of `now`. Product and hashtag momentum keys that went quiet
    /// leave memory too, each with a last row of zero momentum: its table row is written only
    /// when the key moves, and would otherwise keep the key's last rates, a burst of one
    /// engagement counted a million times included, until retention deleted it.
    fn expire_at(&mut self, now: Instant) {
        let expiry = Duration::from_secs(self.cfg.inactive_expiry_secs.max(1));
        let quiet: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_activity) >= expiry)
            .map(|(id, _)| id.clone())
            .collect();
        for id in quiet {
            self.finish(&id, "inactive");
        }
        let cap = self.cfg.max_cascades.max(1);
        let shares_cap = self.cfg.max_total_shares.max(1);
        for id in over_the_caps(&self.entries, cap, shares_cap) {
            self.finish(&id, "evicted");
        }
        let dirty = &mut self.momentum_dirty;
        for (dimension, keys) in [
            ("product", &mut self.products),
            ("hashtag", &mut self.hashtags),
        ] {
            keys.retain(|key, (_, at)| {
                let live = now.saturating_duration_since(*at) < expiry;
                if !live {
                    dirty.insert((dimension, key.clone()));
                }
                live
            });
        }
        metrics::gauge!(names::VIRALITY_CASCADES).set(self.entries.len() as f64);
    }

    /// Finishes the cascades of posts just deleted: no more scores or updates for them (the
    /// API and trending leave them out from now on).
    pub fn finish_deleted(&mut self, ids: &[String]) {
        for id in ids {
            self.recent.take(id);
            self.finish(id, "deleted");
        }
    }

    fn finish(&mut self, id: &str, reason: &'static str) {
        if let Some(entry) = self.entries.remove(id) {
            self.dirty.remove(id);
            let v = self.model.score(&entry.tracker, self.window_min());
            let row = cascade_row(id, &entry, &v, "finished");
            self.pending_rows.insert(id.to_string(), row);
            metrics::counter!(names::VIRALITY_FINISHED, "reason" => reason).increment(1);
        }
    }

    /// The posts whose metadata is to be looked up now (at most `limit`): each on its first
    /// [`MAX_META_LOOKUPS`] rounds, then every [`SLOW_LOOKUP_TICKS`] rounds.
    pub fn posts_to_look_up(&mut self, limit: usize) -> Vec<String> {
        self.lookup_rounds += 1;
        let slow_round = self.lookup_rounds.is_multiple_of(SLOW_LOOKUP_TICKS);
        self.entries
            .iter_mut()
            .filter(|(_, e)| e.meta_pending && (e.meta_lookups < MAX_META_LOOKUPS || slow_round))
            .take(limit)
            .map(|(id, e)| {
                e.meta_lookups = e.meta_lookups.saturating_add(1);
                id.clone()
            })
            .collect()
    }

    /// Metadata found by a lookup, for cascades that may still lack it.
    pub fn found_meta(&mut self, found: Vec<(String, PostMeta)>) {
        for (id, meta) in found {
            if let Some(e) = self.entries.get_mut(&id) {
                e.tracker.meta = Some(meta);
                e.meta_pending = false;
                self.dirty.insert(id);
            }
        }
    }

    /// Rescores every changed cascade and queues its row and, when it moved enough, a history
    /// row; returns the live updates for the cascades whose score moved by
    /// `virality.publish_step` or more.
    pub fn score_changed(&mut self) -> Vec<Publish> {
        let dirty: Vec<String> = self.dirty.drain().collect();
        let window = self.window_min();
        let (publish_step, history_step) = (self.cfg.publish_step, self.cfg.history_step);
        let mut updates = Vec::new();
        let mut scored = 0u64;
        for id in dirty {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            let v = self.model.score(&entry.tracker, window);
            scored += 1;
            let row = cascade_row(&id, entry, &v, "active");
            let record = match entry.last_recorded {
                None => true,
                Some((score, predicted)) => {
                    (v.virality_score - score).abs() >= history_step
                        || (v.predicted_final_shares - predicted).abs()
                            >= HISTORY_RELATIVE_STEP * predicted.max(1.0)
                }
            };
            if record {
                entry.last_recorded = Some((v.virality_score, v.predicted_final_shares));
                self.pending_history.push(history_row(&row, &v));
            }
            if (v.virality_score - entry.last_published).abs() >= publish_step {
                entry.last_published = v.virality_score;
                if let Some(update) = live_update(&id, entry.tracker.meta.as_ref(), &v) {
                    updates.push(update);
                }
            }
            self.pending_rows.insert(id, row);
        }
        metrics::counter!(names::VIRALITY_PREDICTIONS).increment(scored);
        updates
    }

    /// Whether anything waits to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending_rows.is_empty()
            || !self.pending_history.is_empty()
            || !self.momentum_dirty.is_empty()
    }

    /// Takes what waits to be written.
    pub fn take_pending(&mut self) -> Pending {
        let window = self.window_min();
        let mut momentum = Vec::new();
        for (dimension, key) in self.momentum_dirty.drain() {
            let map = if dimension == "product" {
                &self.products
            } else {
                &self.hashtags
            };
            // A key no longer in memory expired (only tracked keys are marked): nothing moves it.
            let r = map
                .get(&key)
                .map(|(m, _)| m.rates(window))
                .unwrap_or_default();
            momentum.push(MomentumRow {
                dimension,
                key,
                velocity: r.velocity,
                acceleration: r.acceleration,
                posts: 0,
            });
        }
        Pending {
            rows: self.pending_rows.drain().map(|(_, r)| r).collect(),
            history: std::mem::take(&mut self.pending_history),
            momentum,
        }
    }

    /// Queues again what a failed write gave back, behind anything newer for the same post.
    pub fn requeue(&mut self, rows: Vec<CascadeRow>, mut history: Vec<HistoryRow>) {
        for row in rows {
            self.pending_rows.entry(row.post_id.clone()).or_insert(row);
        }
        if self.pending_history.len() < MAX_PENDING_HISTORY {
            history.append(&mut self.pending_history);
            self.pending_history = history;
        }
    }
}

/// The momentum window, in whole minutes.
fn window_minutes(cfg: &ViralitySettings) -> i64 {
    (cfg.momentum_window_secs / 60).max(1) as i64
}

/// What a rebuild reads of a cascade row by row: the shares its tree tracks, and the minutes
/// its momentum still counts (two windows, and one minute either side of them).
pub fn rebuild_bounds(cfg: &ViralitySettings) -> RebuildBounds {
    RebuildBounds {
        max_shares: cfg.max_tracked_shares,
        recent_minutes: 2 * window_minutes(cfg) + 2,
    }
}

/// `at`, or `clock` when `at` is later. Momentum windows end at the latest minute seen: one
/// engagement dated ahead of the clock (producers may be minutes ahead) would move them
/// forward and count the engagements of now in the window before, so it counts as now. (A NaN
/// time stays NaN: not counted.)
fn not_ahead(at: f64, clock: f64) -> f64 {
    if at > clock {
        clock
    } else {
        at
    }
}

/// Adds a committed engagement to its cascade, dated no later than `clock`; false for a share
/// seen before.
fn add_engagement(tracker: &mut Tracker, r: &FeedRow, clock: f64, window: i64) -> bool {
    // A summed row of shares past the tracked tree has no id to dedupe by.
    tracker.add(
        Some(r.share_id.as_str()).filter(|id| !id.is_empty()),
        r.kind,
        not_ahead(r.at, clock),
        r.followers,
        r.via.as_deref(),
        r.count,
        window,
    )
}

fn cascade_row(id: &str, entry: &Entry, v: &Virality, status: &'static str) -> CascadeRow {
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
        author_followers: saturating_i64(meta.author_followers),
        post_known: t.meta.is_some(),
        producer: meta.producer,
        created_at: virality::from_unix_seconds(t.origin()),
        observed_at: v.observed_at,
        last_activity_at: Utc::now() - idle,
        status,
        shares: saturating_i64(v.counts.shares),
        likes: saturating_i64(v.counts.likes),
        comments: saturating_i64(v.counts.comments),
        views: saturating_i64(v.counts.views),
        reach: saturating_i64(v.reach),
        depth: i64::from(v.structure.depth),
        breadth: saturating_i64(v.structure.breadth),
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

fn history_row(row: &CascadeRow, v: &Virality) -> HistoryRow {
    HistoryRow {
        post_id: row.post_id.clone(),
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
    }
}

fn live_update(id: &str, meta: Option<&PostMeta>, v: &Virality) -> Option<Publish> {
    let meta = meta.cloned().unwrap_or_default();
    let body = PostVirality {
        post_id: id,
        platform: meta.platform.map(Platform::as_str),
        product: meta.product.as_deref(),
        channel: meta.channel.as_deref(),
        city: meta.city.as_deref(),
        country: meta.country.as_deref(),
        sentiment: meta.sentiment.map(SentimentLabel::as_str),
        hashtags: &meta.hashtags,
        status: "active",
        virality: v,
    };
    let data = serde_json::to_string(&body).ok()?;
    Some(Publish {
        topic: Topic::Virality,
        event_type: VIRALITY_UPDATE.to_string(),
        data: Arc::from(data),
        keys: FilterKeys {
            platform: meta.platform,
            product: meta.product,
            city: meta.city,
            country: meta.country,
            channel: meta.channel,
            sentiment: meta.sentiment,
            lang: None,
            topics: meta.topics,
        },
    })
}

/// The cascades to finish so that at most `cap` stay, keeping at most `shares_cap` shares:
/// each time the least recently active cascade of the producer holding the most cascades
/// (then, for the shares, the most shares kept). A producer flooding the tracker with cascades
/// or huge trees finishes its own first, not everyone's quietest; with one producer it is
/// plain least recently active first. Cascades whose post is not known yet are one producer.
fn over_the_caps(entries: &HashMap<String, Entry>, cap: usize, shares_cap: usize) -> Vec<String> {
    let mut shares: usize = entries.values().map(Entry::shares_kept).sum();
    if entries.len() <= cap && shares <= shares_cap {
        return Vec::new();
    }
    struct Held<'a> {
        /// Least recently active last, so the next to go is popped.
        cascades: Vec<(Instant, &'a String, usize)>,
        shares: usize,
    }
    let mut held: BTreeMap<&str, Held> = BTreeMap::new();
    for (id, e) in entries {
        let producer = e
            .tracker
            .meta
            .as_ref()
            .and_then(|m| m.producer.as_deref())
            .unwrap_or("");
        let h = held.entry(producer).or_insert(Held {
            cascades: Vec::new(),
            shares: 0,
        });
        h.cascades.push((e.last_activity, id, e.shares_kept()));
        h.shares += e.shares_kept();
    }
    for h in held.values_mut() {
        h.cascades
            .sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(a.1)));
    }
    let mut count = entries.len();
    let mut out = Vec::new();
    while count > cap || shares > shares_cap {
        let by_count = count > cap;
        let heaviest = held
            .values_mut()
            .filter(|h| !h.cascades.is_empty())
            .max_by_key(|h| if by_count { h.cascades.len() } else { h.shares });
        let Some((_, id, kept)) = heaviest.and_then(|h| {
            let next = h.cascades.pop();
            h.shares -= next.map_or(0, |n| n.2);
            next
        }) else {
            break;
        };
        count -= 1;
        shares -= kept;
        out.push(id.clone());
    }
    out
}

/// The keys, the least recently active first (ties by key).
fn least_recent_first<'a>(items: impl Iterator<Item = (&'a String, Instant)>) -> Vec<String> {
    let mut by_age: Vec<(Instant, &String)> = items.map(|(key, at)| (at, key)).collect();
    by_age.sort_unstable();
    by_age.into_iter().map(|(_, key)| key.clone()).collect()
}

/// A product or hashtag whose momentum an engagement moves, with the keys waiting to be
/// written.
struct MomentumKey<'a> {
    dimension: &'static str,
    key: &'a str,
    dirty: &'a mut HashSet<(&'static str, String)>,
}

impl<'a> MomentumKey<'a> {
    fn new(
        dimension: &'static str,
        key: &'a str,
        dirty: &'a mut HashSet<(&'static str, String)>,
    ) -> Self {
        MomentumKey {
            dimension,
            key,
            dirty,
        }
    }
}

/// Counts an engagement in a key's momentum and marks the key to be written. A new key finding
/// the map full ([`MAX_MOMENTUM_KEYS`]) first makes room: the least recently moved eighth of
/// the keys leave, each with a last row of zero momentum (as a quiet key leaves). Keys that
/// filled the map once cannot shut out every product and hashtag that comes after them, and
/// one sort pays for an eighth of the map's new keys.
fn bump(
    map: &mut HashMap<String, (Momentum, Instant)>,
    k: MomentumKey<'_>,
    at: f64,
    count: u32,
    window: i64,
    now: Instant,
) {
    if !map.contains_key(k.key) && map.len() >= MAX_MOMENTUM_KEYS {
        let by_age = least_recent_first(map.iter().map(|(key, (_, at))| (key, *at)));
        let leaving = (map.len() + 1 - MAX_MOMENTUM_KEYS).max(MAX_MOMENTUM_KEYS / 8);
        for key in by_age.into_iter().take(leaving) {
            map.remove(&key);
            k.dirty.insert((k.dimension, key));
        }
        metrics::counter!(names::VIRALITY_MOMENTUM_KEYS_EVICTED).increment(leaving as u64);
    }
    let slot = map
        .entry(k.key.to_string())
        .or_insert_with(|| (Momentum::default(), now));
    slot.0.add(at, u64::from(count), window);
    slot.1 = now;
    k.dirty.insert((k.dimension, k.key.to_string()));
}

#[cfg(test)]
mod tests;
