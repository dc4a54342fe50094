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
        model.set_thresholds(BTreeMap::new(), cfg.threshold_shares);
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
    pub fn set_thresholds(&mut self, thresholds: BTreeMap<String, f64>) -> bool {
        if thresholds == self.model.thresholds {
            return false;
        }
        self.model
            .set_thresholds(thresholds, self.cfg.threshold_shares);
        self.dirty.extend(self.entries.keys().cloned());
        true
    }

    pub fn thresholds(&self) -> &BTreeMap<String, f64> {
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
    /// least recently active.
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
        let mut shares: usize = self.entries.values().map(Entry::shares_kept).sum();
        if self.entries.len() > cap || shares > shares_cap {
            let entries = self.entries.iter().map(|(id, e)| (id, e.last_activity));
            let mut surplus = self.entries.len().saturating_sub(cap);
            for id in least_recent_first(entries) {
                if surplus == 0 && shares <= shares_cap {
                    break;
                }
                shares -= self.entries.get(&id).map_or(0, Entry::shares_kept);
                surplus = surplus.saturating_sub(1);
                self.finish(&id, "evicted");
            }
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
mod tests {
    use super::*;
    use crate::models::EngagementKind;

    fn settings() -> ViralitySettings {
        ViralitySettings {
            max_cascades: 3,
            publish_step: 0.0,
            ..ViralitySettings::default()
        }
    }

    fn share(post: &str, share: &str, at: f64, via: Option<&str>) -> FeedRow {
        FeedRow {
            post_id: post.to_string(),
            share_id: share.to_string(),
            kind: EngagementKind::Share,
            at,
            followers: Some(100),
            via: via.map(str::to_string),
            count: 1,
        }
    }

    fn meta(product: &str) -> PostMeta {
        PostMeta {
            platform: Some(Platform::Twitter),
            product: Some(product.to_string()),
            hashtags: vec!["launch".to_string()],
            author_followers: 1_000,
            created_at: 1_700_000_000.0,
            ..PostMeta::default()
        }
    }

    #[test]
    fn a_replayed_engagement_is_counted_once() {
        let mut c = Cascades::new(&settings());
        let rows = [share("p", "s1", 1_700_000_010.0, None)];
        c.apply(&rows);
        c.apply(&rows);
        c.score_changed();
        let pending = c.take_pending();
        assert_eq!(pending.rows.len(), 1);
        assert_eq!(pending.rows[0].shares, 1);
    }

    #[test]
    fn metadata_seen_before_the_first_share_is_used_and_needs_no_lookup() {
        let mut c = Cascades::new(&settings());
        c.remember_post("p", meta("buds"));
        let rows = [share("p", "s1", 1_700_000_010.0, None)];
        assert!(c.unknown_posts(&rows).is_empty());
        c.apply(&rows);
        assert!(c.posts_to_look_up(10).is_empty());
        let updates = c.score_changed();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].keys.product.as_deref(), Some("buds"));
        let pending = c.take_pending();
        assert!(pending.rows[0].post_known);
        assert!(pending
            .momentum
            .iter()
            .any(|m| m.dimension == "product" && m.key == "buds"));
    }

    #[test]
    fn a_post_without_metadata_is_looked_up_a_few_times_then_slowly() {
        let mut c = Cascades::new(&settings());
        c.apply(&[share("p", "s1", 1_700_000_010.0, None)]);
        let mut asked = 0;
        for _ in 0..SLOW_LOOKUP_TICKS {
            asked += c.posts_to_look_up(10).len();
        }
        assert_eq!(asked, usize::from(MAX_META_LOOKUPS) + 1);
        c.found_meta(vec![("p".to_string(), meta("buds"))]);
        for _ in 0..SLOW_LOOKUP_TICKS {
            assert!(c.posts_to_look_up(10).is_empty());
        }
    }

    #[test]
    fn past_the_cap_the_least_recently_active_cascades_finish() {
        let mut c = Cascades::new(&settings());
        for (i, post) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            c.apply(&[share(post, "s", 1_700_000_000.0 + i as f64, None)]);
        }
        c.expire();
        assert_eq!(c.len(), 3);
        let pending = c.take_pending();
        let mut finished: Vec<&str> = pending
            .rows
            .iter()
            .filter(|r| r.status == "finished")
            .map(|r| r.post_id.as_str())
            .collect();
        finished.sort();
        assert_eq!(finished, ["a", "b"]);
    }

    /// The ids of the cascades finished so far, sorted.
    fn finished(c: &mut Cascades) -> Vec<String> {
        let mut ids: Vec<String> = c
            .take_pending()
            .rows
            .into_iter()
            .filter(|r| r.status == "finished")
            .map(|r| r.post_id)
            .collect();
        ids.sort();
        ids
    }

    // Failed while only the count of cascades and each tree's shares were capped: 100,000
    // cascades of 20,000 kept shares each could be held.
    #[test]
    fn past_the_total_of_kept_shares_the_least_recently_active_cascades_finish() {
        let mut c = Cascades::new(&ViralitySettings {
            max_cascades: 100,
            max_total_shares: 10,
            ..settings()
        });
        for post in ["a", "b", "c", "d"] {
            let rows: Vec<FeedRow> = (0..4)
                .map(|i| share(post, &format!("s{i}"), 1_700_000_000.0 + f64::from(i), None))
                .collect();
            c.apply(&rows);
        }
        c.expire();
        assert_eq!(
            c.len(),
            2,
            "16 kept shares, 10 allowed: two cascades of 4 remain"
        );
        assert_eq!(finished(&mut c), ["a", "b"]);
        c.apply(&[share("c", "s9", 1_700_000_009.0, None)]);
        c.expire();
        assert_eq!(c.len(), 2, "9 kept shares are within the cap");
    }

    // Failed while a full map turned every new key away: ten thousand keys moved once kept
    // every product and hashtag after them out of momentum until they went quiet.
    #[test]
    fn a_new_momentum_key_finds_room_in_a_full_map() {
        let mut c = Cascades::new(&settings());
        let now = unix_seconds(Utc::now());
        let tagged = |c: &mut Cascades, post: &str, tag: &str| {
            c.remember_post(
                post,
                PostMeta {
                    hashtags: vec![tag.to_string()],
                    ..meta("buds")
                },
            );
            c.apply(&[share(post, "s", now, None)]);
        };
        for i in 0..MAX_MOMENTUM_KEYS {
            tagged(&mut c, &format!("p{i}"), &format!("junk{i}"));
        }
        c.take_pending();
        tagged(&mut c, "real", "launch");
        let rows = momentum_rows(&mut c);
        let live: Vec<&str> = rows
            .iter()
            .filter(|m| m.0 == "hashtag" && m.2 > 0.0)
            .map(|m| m.1.as_str())
            .collect();
        assert_eq!(live, ["launch"]);
        let gone: HashSet<&str> = rows
            .iter()
            .filter(|m| m.0 == "hashtag" && m.2 == 0.0)
            .map(|m| m.1.as_str())
            .collect();
        assert_eq!(
            gone.len(),
            MAX_MOMENTUM_KEYS / 8,
            "an eighth leaves with a zero row"
        );
        assert!(
            gone.contains("junk0"),
            "the least recently moved leave first"
        );
        assert!(!gone.contains(format!("junk{}", MAX_MOMENTUM_KEYS - 1).as_str()));
    }

    #[test]
    fn a_failed_write_is_queued_again_behind_newer_rows() {
        let mut c = Cascades::new(&settings());
        c.apply(&[share("p", "s1", 1_700_000_010.0, None)]);
        c.score_changed();
        let old = c.take_pending();
        assert!(!c.has_pending());
        c.apply(&[share("p", "s2", 1_700_000_020.0, Some("s1"))]);
        c.score_changed();
        c.requeue(old.rows, old.history);
        let pending = c.take_pending();
        assert_eq!(pending.rows.len(), 1);
        assert_eq!(pending.rows[0].shares, 2, "the newer row wins");
        assert_eq!(pending.history.len(), 2, "history keeps both, oldest first");
        assert!(pending.history[0].shares <= pending.history[1].shares);
    }

    #[test]
    fn a_takeover_restores_cascades_with_their_engagements() {
        let mut c = Cascades::new(&settings());
        c.restore(
            vec![StoredCascade {
                post_id: "p".to_string(),
                meta: Some(meta("buds")),
                last_activity_at: Utc::now(),
                virality_score: 0.2,
                predicted_final_shares: 3.0,
            }],
            &[
                share("p", "s1", 1_700_000_010.0, None),
                share("p", "s2", 1_700_000_011.0, Some("s1")),
                share("other", "s3", 1_700_000_012.0, None),
            ],
        );
        assert_eq!(c.len(), 1);
        c.score_changed();
        let pending = c.take_pending();
        assert_eq!(pending.rows[0].shares, 2);
        assert!(pending.rows[0].depth >= 2);
        // Its topics, which stored cascades do not keep, are read again with its post: a
        // restored cascade's updates never reached a subscriber filtering by topic.
        assert_eq!(c.posts_to_look_up(10), ["p"]);
        let mut with_topics = meta("buds");
        with_topics.topics = vec![7];
        c.found_meta(vec![("p".to_string(), with_topics)]);
        assert!(c.posts_to_look_up(10).is_empty());
    }

    #[test]
    fn a_revived_cascade_keeps_its_tree_and_a_live_one_is_not_replaced() {
        let mut c = Cascades::new(&settings());
        c.apply(&[share("live", "l1", 1_700_000_010.0, None)]);
        let stored = |id: &str| StoredCascade {
            post_id: id.to_string(),
            meta: Some(meta("buds")),
            last_activity_at: Utc::now() - chrono::TimeDelta::hours(2),
            virality_score: 0.2,
            predicted_final_shares: 3.0,
        };
        c.revive(
            vec![stored("quiet"), stored("live")],
            &[
                share("quiet", "q1", 1_700_000_000.0, None),
                share("quiet", "q2", 1_700_000_001.0, Some("q1")),
                share("live", "l1", 1_700_000_010.0, None),
                share("live", "l0", 1_700_000_009.0, None),
            ],
        );
        c.apply(&[share("quiet", "q3", 1_700_007_200.0, Some("q2"))]);
        c.expire();
        assert_eq!(c.len(), 2, "the engagement made the revived cascade active");
        c.score_changed();
        let rows = c.take_pending().rows;
        let row = |id: &str| rows.iter().find(|r| r.post_id == id).unwrap();
        assert_eq!((row("quiet").shares, row("quiet").depth), (3, 3));
        assert_eq!(row("quiet").status, "active");
        assert_eq!(row("live").shares, 1, "a live cascade is left as it is");
    }

    /// `(dimension, key, velocity, acceleration)` of each momentum row, by dimension and key.
    fn momentum_rows(c: &mut Cascades) -> Vec<(&'static str, String, f64, f64)> {
        let mut rows: Vec<_> = c
            .take_pending()
            .momentum
            .into_iter()
            .map(|m| (m.dimension, m.key, m.velocity, m.acceleration))
            .collect();
        rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        rows
    }

    #[test]
    fn a_quiet_momentum_key_leaves_with_a_row_of_zero_momentum() {
        let mut c = Cascades::new(&settings());
        c.remember_post("p", meta("junk"));
        let now = unix_seconds(Utc::now());
        c.apply(&[FeedRow {
            count: 1_000_000,
            ..share("p", "s1", now, None)
        }]);
        let burst = momentum_rows(&mut c);
        assert_eq!(burst.len(), 2, "{burst:?}");
        assert!(burst.iter().all(|m| m.2 == 200_000.0), "{burst:?}");

        let quiet = Duration::from_secs(settings().inactive_expiry_secs + 1);
        c.expire_at(Instant::now() + quiet);
        assert_eq!(
            momentum_rows(&mut c),
            [
                ("hashtag", "launch".to_string(), 0.0, 0.0),
                ("product", "junk".to_string(), 0.0, 0.0)
            ]
        );
        c.expire_at(Instant::now() + quiet);
        assert!(momentum_rows(&mut c).is_empty(), "written once");
    }

    /// Cascades that took one share of post `p` (of product `buds`) dated five minutes ahead,
    /// as far as a producer may be (a window's length), then ten dated now.
    fn ten_shares_now_after_one_ahead() -> Cascades {
        let mut c = Cascades::new(&settings());
        c.remember_post("p", meta("buds"));
        let now = unix_seconds(Utc::now());
        let mut rows = vec![share("p", "ahead", now + 300.0, None)];
        rows.extend((0..10).map(|i| share("p", &format!("s{i}"), now, None)));
        c.apply(&rows);
        c
    }

    #[test]
    fn an_engagement_dated_ahead_leaves_the_engagements_of_now_in_the_window() {
        let mut c = ten_shares_now_after_one_ahead();
        let momentum = momentum_rows(&mut c);
        let (_, _, velocity, _) = momentum
            .iter()
            .find(|m| m.0 == "product")
            .expect("the product's row");
        assert!((velocity - 11.0 / 5.0).abs() < 1e-9, "{momentum:?}");
    }

    // Failed while the post's own momentum took the engagement's time as sent: its window
    // ended five minutes ahead and held one engagement, not eleven.
    #[test]
    fn an_engagement_dated_ahead_counts_as_now_in_its_posts_velocity() {
        let mut c = ten_shares_now_after_one_ahead();
        c.score_changed();
        let rows = c.take_pending().rows;
        let row = rows
            .iter()
            .find(|r| r.post_id == "p")
            .expect("the post's row");
        assert!((row.velocity - 11.0 / 5.0).abs() < 1e-9, "{}", row.velocity);
        assert!(
            row.observed_at <= Utc::now(),
            "observed at {}, ahead of the clock",
            row.observed_at
        );
    }

    #[test]
    fn changed_thresholds_rescore_every_cascade() {
        let mut c = Cascades::new(&settings());
        c.apply(&[share("p", "s1", 1_700_000_010.0, None)]);
        c.score_changed();
        c.take_pending();
        let learned = BTreeMap::from([("twitter".to_string(), 50.0)]);
        assert!(c.set_thresholds(learned.clone()));
        assert!(!c.set_thresholds(learned));
        c.score_changed();
        assert_eq!(c.take_pending().rows.len(), 1);
    }
}
