//! Stories in the pipeline: the desk places each analysed post in a story before its batch is
//! stored (so the post is stored and pushed with its `story_id`), and the keeper writes what the
//! batch changed in the stories once it is committed, and publishes it on the `stories` topic.
//!
//! Each process places the posts it commits. A story born in one process of a group is announced
//! to the others with its `story:new` message (through the fan-out), and they take it in, so
//! their posts of the same story join it under its id; the stored row adds up what each process
//! placed (docs/stories.md says what holds and what does not).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::messages::{Committed, Publish, StoryChanges};
use crate::config::StorySettings;
use crate::db::stories::{StoredCentre, StoryRow};
use crate::models::live::{FilterKeys, Topic, STORY_NEW, STORY_UPDATE};
use crate::models::AnalyzedPost;
use crate::stories::{AnnouncedStory, StoryEvent, StoryId, StoryTracker};
use crate::telemetry::names;

/// Places posts in stories; shared by the commits of one process.
pub struct StoryDesk {
    tracker: Mutex<StoryTracker<String>>,
    /// Stories the other processes announced, taken in before the next batch is placed (so
    /// the fan-out never waits for a batch being placed).
    announced: Mutex<VecDeque<AnnouncedStory>>,
}

/// Announcements held at most until the next batch; the oldest go first past this.
pub const MAX_ANNOUNCED: usize = 4096;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl StoryDesk {
    pub fn new(settings: &StorySettings) -> Self {
        StoryDesk {
            tracker: Mutex::new(StoryTracker::new(settings.clone())),
            announced: Mutex::new(VecDeque::new()),
        }
    }

    /// Reads another process's `story:new` message (the whole `{"type","data"}` text) and
    /// holds the story for the next batch; anything else is ignored.
    pub fn hear(&self, message: &str) {
        let Some(story) = announced_story(message) else {
            return;
        };
        let mut queue = self
            .announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if queue.len() >= MAX_ANNOUNCED {
            queue.pop_front();
        }
        queue.push_back(story);
    }

    /// Holds the live stories stored by earlier processes (oldest first) for the first batch,
    /// so a process that starts or restarts goes on with the group's stories under their ids.
    pub fn take_in_stored(&self, stored: Vec<StoredCentre>) {
        let mut queue = self
            .announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in stored.into_iter().rev() {
            if queue.len() >= MAX_ANNOUNCED {
                queue.pop_front();
            }
            queue.push_back(announced(
                s.id,
                s.terms,
                &s.weights,
                [s.born_at, s.first_at, s.last_at],
            ));
        }
    }

    /// Places the batch's posts in time order and sets their `story_id`.
    pub fn place(&self, posts: &mut [AnalyzedPost]) -> StoryChanges {
        let started = std::time::Instant::now();
        let mut order: Vec<usize> = (0..posts.len()).collect();
        order.sort_by_key(|&i| (posts[i].post.created_at, i));
        let mut tracker = self
            .tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let announced: Vec<AnnouncedStory> = self
            .announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
            .collect();
        for story in &announced {
            if tracker.adopt(story) {
                metrics::counter!(names::STORIES_ADOPTED).increment(1);
            }
        }
        let mut changes = StoryChanges::default();
        let mut added: HashMap<StoryId, i64> = HashMap::new();
        let mut in_batch: HashMap<&str, usize> = HashMap::new();
        for &i in &order {
            in_batch.insert(posts[i].post.id.as_str(), i);
        }
        let mut assigned: Vec<(usize, StoryId)> = Vec::new();
        for &i in &order {
            let post = &posts[i];
            let story = tracker.place(
                post.post.id.clone(),
                post.post.created_at.timestamp_millis(),
                &post.post.text,
            );
            if let Some(id) = story {
                assigned.push((i, id));
                *added.entry(id).or_default() += 1;
            }
            for event in tracker.drain_events() {
                let (id, members, born) = match event {
                    StoryEvent::Born { id, members } => (id, members, true),
                    StoryEvent::Grew { id, members } => (id, members, false),
                    StoryEvent::Merged { from, into } => {
                        changes.write.merges.push((from, into));
                        for (_, s) in assigned.iter_mut() {
                            if *s == from {
                                *s = into;
                            }
                        }
                        if let Some(n) = added.remove(&from) {
                            *added.entry(into).or_default() += n;
                        }
                        continue;
                    }
                    StoryEvent::Faded { id } => {
                        changes.write.faded.push(id);
                        continue;
                    }
                    StoryEvent::Left { id, count } => {
                        *added.entry(id).or_default() -= count as i64;
                        changes.write.left.push(id);
                        continue;
                    }
                };
                {
                    let mut earlier = Vec::new();
                    for key in members {
                        match in_batch.get(key.as_str()) {
                            Some(&j) if j != i => {
                                assigned.push((j, id));
                                *added.entry(id).or_default() += 1;
                            }
                            Some(_) => {}
                            None => {
                                earlier.push(key);
                                *added.entry(id).or_default() += 1;
                            }
                        }
                    }
                    if !earlier.is_empty() {
                        changes.write.founders.push((id, earlier));
                    }
                    if born {
                        changes.born.push(id);
                    }
                }
            }
        }
        for (i, id) in assigned {
            posts[i].story_id = Some(id);
        }
        let born: HashSet<StoryId> = changes.born.iter().copied().collect();
        changes.born = born
            .into_iter()
            .filter(|id| tracker.snapshot(*id).is_some())
            .collect();
        changes.born.sort_unstable();
        for (id, n) in added {
            let Some(s) = tracker.snapshot(id) else {
                continue;
            };
            changes.write.rows.push(StoryRow {
                id,
                label: s
                    .terms
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
                terms: s.terms,
                weights: s.weights,
                born_at: at(s.born_ms),
                first_at: at(s.first_ms),
                last_at: at(s.last_ms),
                added: n,
                representatives: s.representatives.into_iter().map(|r| r.key).collect(),
            });
        }
        changes.write.rows.sort_by_key(|r| r.id);
        metrics::gauge!(names::STORIES_LIVE).set(tracker.live() as f64);
        metrics::histogram!(names::STORY_PLACEMENT_SECONDS).record(started.elapsed().as_secs_f64());
        changes
    }
}

/// Reads the live stories stored by earlier processes into `desk`, before the first batch. A
/// failure only costs continuity: the stories are found again from their next posts.
pub async fn take_in_stored(desk: &StoryDesk, pool: &Pool, settings: &StorySettings) {
    let limit = settings.max_stories.min(MAX_ANNOUNCED) as i64;
    let read = async {
        let client = pool.get().await.map_err(anyhow::Error::from)?;
        crate::db::stories::live_centres(&client, limit)
            .await
            .map_err(anyhow::Error::from)
    };
    match read.await {
        Ok(stored) => {
            tracing::info!(
                stories = stored.len(),
                "live stories read for the story tracker"
            );
            desk.take_in_stored(stored);
        }
        Err(e) => {
            metrics::counter!(names::STORY_ERRORS, "operation" => "read").increment(1);
            tracing::warn!(error = %format_args!("{e:#}"), "reading the live stories failed; they are found again from their next posts");
        }
    }
}

/// The story a `story:new` message announces, if it is one.
fn announced_story(message: &str) -> Option<AnnouncedStory> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        r#type: String,
        data: Announcement,
    }
    #[derive(serde::Deserialize)]
    struct Announcement {
        id: StoryId,
        terms: Vec<String>,
        #[serde(default)]
        weights: Vec<f32>,
        born_at: DateTime<Utc>,
        first_at: DateTime<Utc>,
        last_at: DateTime<Utc>,
    }
    let envelope: Envelope = serde_json::from_str(message).ok()?;
    if envelope.r#type != STORY_NEW {
        return None;
    }
    let a = envelope.data;
    Some(announced(
        a.id,
        a.terms,
        &a.weights,
        [a.born_at, a.first_at, a.last_at],
    ))
}

/// A story to take in from its terms, their weights and its birth, first and last post times.
/// Terms without a weight (an older sender, a row stored before weights were) weigh by their
/// rank.
fn announced(
    id: StoryId,
    terms: Vec<String>,
    weights: &[f32],
    [born, first, last]: [DateTime<Utc>; 3],
) -> AnnouncedStory {
    let weights = (0..terms.len()).map(|i| {
        weights
            .get(i)
            .copied()
            .unwrap_or(1.0 / (i as f32 + 1.0).sqrt())
    });
    AnnouncedStory {
        id,
        born_ms: born.timestamp_millis(),
        first_ms: first.timestamp_millis(),
        last_ms: last.timestamp_millis(),
        terms: terms.iter().cloned().zip(weights).collect(),
    }
}

/// Writes each committed batch's story changes and publishes them, in commit order.
pub struct StoryKeeper {
    pool: Pool,
    publish: Option<Recipient<Publish>>,
}

impl StoryKeeper {
    pub fn new(pool: Pool, publish: Option<Recipient<Publish>>) -> Self {
        StoryKeeper { pool, publish }
    }

    fn announce(&self, changes: &StoryChanges) {
        let Some(publish) = &self.publish else { return };
        for row in &changes.write.rows {
            let kind = if changes.born.contains(&row.id) {
                STORY_NEW
            } else {
                STORY_UPDATE
            };
            let data = serde_json::json!({
                "id": row.id,
                "label": row.label,
                "terms": row.terms,
                "weights": row.weights,
                "born_at": row.born_at,
                "first_at": row.first_at,
                "last_at": row.last_at,
                "added": row.added,
            });
            publish.do_send(Publish {
                topic: Topic::Stories,
                event_type: kind.to_string(),
                data: Arc::from(data.to_string()),
                keys: FilterKeys::default(),
            });
        }
    }
}

impl Actor for StoryKeeper {
    type Context = Context<Self>;
}

impl Handler<Committed> for StoryKeeper {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Self::Context) {
        let Some(changes) = msg.batch.stories.clone() else {
            return;
        };
        if changes.write.is_empty() {
            return;
        }
        let pool = self.pool.clone();
        let write = changes.clone();
        // One write at a time, in the order batches committed.
        ctx.wait(
            actix::fut::wrap_future::<_, Self>(async move {
                let mut client = pool.get().await.map_err(anyhow::Error::from)?;
                crate::db::stories::apply(&mut client, &write.write)
                    .await
                    .map_err(anyhow::Error::from)
            })
            .map(move |result, this, _| match result {
                Ok(()) => {
                    metrics::counter!(names::STORIES_BORN).increment(changes.born.len() as u64);
                    this.announce(&changes);
                }
                Err(e) => {
                    metrics::counter!(names::STORY_ERRORS, "operation" => "write").increment(1);
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "writing story changes failed; the stories of this batch's posts stand, their counts lag");
                }
            }),
        );
    }
}
