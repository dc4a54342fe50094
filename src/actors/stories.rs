//! Stories in the pipeline: the desk places each analysed post in a story before its batch is
//! stored (so the post is stored and pushed with its `story_id`), and the keeper writes what the
//! batch changed in the stories once it is committed, and publishes it on the `stories` topic.
//!
//! Each process places the posts it commits. Story ids come from a story's words, so two
//! processes of a group that see halves of one story usually name it the same, and the stored
//! row adds both halves up (docs/stories.md says what holds and what does not).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::messages::{Committed, Publish, StoryChanges};
use crate::config::StorySettings;
use crate::db::stories::StoryRow;
use crate::models::live::{FilterKeys, Topic, STORY_NEW, STORY_UPDATE};
use crate::models::AnalyzedPost;
use crate::stories::{StoryEvent, StoryId, StoryTracker};
use crate::telemetry::names;

/// Places posts in stories; shared by the commits of one process.
pub struct StoryDesk {
    tracker: Mutex<StoryTracker<String>>,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl StoryDesk {
    pub fn new(settings: &StorySettings) -> Self {
        StoryDesk {
            tracker: Mutex::new(StoryTracker::new(settings.clone())),
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
                    tracing::warn!(error = %e, "writing story changes failed; the stories of this batch's posts stand, their counts lag");
                }
            }),
        );
    }
}
