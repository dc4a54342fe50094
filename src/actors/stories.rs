//! Stories in the pipeline: the desk places each analysed post in a story before its batch is
//! stored (so the post is stored and pushed with its `story_id`), and keeps what the placements
//! changed, with the posts each store wrote new, until a batch commits; the keeper then writes
//! it in the stories and publishes it on the `stories` topic.
//!
//! What a placement changed waits at the desk, not in its batch: a batch retried or split is
//! placed again, and a post placed again only answers its story, so the births, founders,
//! merges and fades of the first try would go with it. A story's size counts the posts stored
//! new in it, never a placement: a post sent twice, redelivered or refused is stored once or
//! not at all.
//!
//! Each process places the posts it commits. A story born in one process of a group is announced
//! to the others with its `story:new` message (through the fan-out), and they take it in, so
//! their posts of the same story join it under its id; the stored row adds up what each process
//! stored in it (docs/stories.md says what holds and what does not).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::messages::{Committed, Publish, StoryChanges};
use crate::config::StorySettings;
use crate::db::stories::{PlacedPost, StoredCentre, StoryRow, StoryWrite};
use crate::models::live::{FilterKeys, Topic, STORY_NEW, STORY_UPDATE};
use crate::models::AnalyzedPost;
use crate::stories::{AnnouncedStory, StoryEvent, StoryId, StorySnapshot, StoryTracker};
use crate::telemetry::names;

/// Places posts in stories; shared by the commits of one process.
pub struct StoryDesk {
    /// Posts are known by their id and producer: another producer's copy of a post (refused
    /// by the store) is placed on its own and never stands for the stored one.
    tracker: Mutex<StoryTracker<PlacedPost>>,
    /// Stories the other processes announced, taken in before the next batch is placed (so
    /// the fan-out never waits for a batch being placed).
    announced: Mutex<VecDeque<AnnouncedStory>>,
    /// The live stories stored by earlier processes, taken in before the first batch, and never
    /// merged with each other (see [`StoryTracker::restore`]).
    stored: Mutex<Vec<AnnouncedStory>>,
    /// What placements and stores changed that no committed batch has carried out yet, by
    /// the turn (read order) of the batch that made it.
    unpublished: Mutex<BTreeMap<u64, Unpublished>>,
}

/// The placements' changes and the posts stored new, in the order they happened, waiting for
/// a committed batch to carry them out.
#[derive(Debug, Default)]
struct Unpublished {
    /// Each story placed in, as it looked after its latest placement (`added` left at 0).
    rows: HashMap<StoryId, StoryRow>,
    /// Posts stored new, by the story they were stored in.
    added: HashMap<StoryId, i64>,
    founders: Vec<(StoryId, Vec<PlacedPost>)>,
    left: Vec<StoryId>,
    merges: Vec<(StoryId, StoryId)>,
    faded: Vec<StoryId>,
    born: HashSet<StoryId>,
}

/// Locks `mutex`; a placement that panicked (it is caught) leaves what it holds usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
            stored: Mutex::new(Vec::new()),
            unpublished: Mutex::new(BTreeMap::new()),
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
        let mut held = lock(&self.stored);
        for s in stored.into_iter().take(MAX_ANNOUNCED).rev() {
            held.push(announced(
                s.id,
                s.terms,
                &s.weights,
                [s.born_at, s.first_at, s.last_at],
            ));
        }
    }

    /// Places the batch of turn `turn` in time order and sets its posts' `story_id`. What the
    /// placement changed waits at the desk until a batch of that turn or a later one commits
    /// (see [`StoryDesk::take_unpublished`]).
    pub fn place(&self, posts: &mut [AnalyzedPost], turn: u64) {
        let started = std::time::Instant::now();
        let mut order: Vec<usize> = (0..posts.len()).collect();
        order.sort_by_key(|&i| (posts[i].post.created_at, i));
        let mut tracker = lock(&self.tracker);
        self.adopt_announced(&mut tracker);
        let mut placement = Placement::default();
        {
            let in_batch: HashMap<PlacedPost, usize> =
                order.iter().map(|&i| (placed_post(&posts[i]), i)).collect();
            for &i in &order {
                let post = &posts[i].post;
                let story = tracker.place(
                    placed_post(&posts[i]),
                    post.created_at.timestamp_millis(),
                    &post.text,
                );
                if let Some(id) = story {
                    placement.assigned.push((i, id));
                    placement.touched.insert(id);
                }
                for event in tracker.drain_events() {
                    placement.record(event, i, &in_batch);
                }
            }
        }
        settle(posts, &placement.assigned);
        let rows = placement.rows(&tracker);
        metrics::gauge!(names::STORIES_LIVE).set(tracker.live() as f64);
        drop(tracker);
        let placed = placement.into_unpublished(rows);
        lock(&self.unpublished)
            .entry(turn)
            .or_default()
            .append(placed);
        metrics::histogram!(names::STORY_PLACEMENT_SECONDS).record(started.elapsed().as_secs_f64());
    }

    /// Takes in the stories stored by earlier processes, then those the other processes
    /// announced since the last batch.
    fn adopt_announced(&self, tracker: &mut StoryTracker<PlacedPost>) {
        let stored: Vec<AnnouncedStory> = lock(&self.stored).drain(..).collect();
        for story in &stored {
            if tracker.restore(story) {
                metrics::counter!(names::STORIES_ADOPTED).increment(1);
            }
        }
        let announced: Vec<AnnouncedStory> = lock(&self.announced).drain(..).collect();
        for story in &announced {
            if tracker.adopt(story) {
                metrics::counter!(names::STORIES_ADOPTED).increment(1);
            }
        }
    }

    /// Counts the posts the store of the batch of turn `turn` wrote new in the stories they
    /// were placed in. A post stored before (sent again, redelivered, stored by an earlier try)
    /// or refused is not among `inserted` and counts nowhere; one the batch holds twice counts
    /// once, in the story of its first copy, the one the store wrote (a later copy, maybe
    /// another producer's, was refused).
    pub fn stored(&self, posts: &[AnalyzedPost], inserted: &[String], turn: u64) {
        let mut new: HashSet<&str> = inserted.iter().map(String::as_str).collect();
        let mut added: HashMap<StoryId, i64> = HashMap::new();
        for post in posts {
            if !new.remove(post.post.id.as_str()) {
                continue;
            }
            if let Some(id) = post.story_id {
                *added.entry(id).or_default() += 1;
            }
        }
        if added.is_empty() {
            return;
        }
        let mut unpublished = lock(&self.unpublished);
        let bucket = unpublished.entry(turn).or_default();
        for (id, n) in added {
            *bucket.added.entry(id).or_default() += n;
        }
    }

    /// Hands over what the batches of turns up to `turn` changed, for the batch of `turn` that
    /// just committed to carry out. Each change is handed over once, whichever of its batch's
    /// tries made it. A later batch's changes wait for its own turn to commit (or a later
    /// one): the founders it names are posts of earlier batches, which have usually been
    /// stored by then, and a story is announced no sooner than its first posts are stored.
    pub fn take_unpublished(&self, turn: u64) -> StoryChanges {
        let taken = {
            let mut unpublished = lock(&self.unpublished);
            let later = unpublished.split_off(&turn.saturating_add(1));
            std::mem::replace(&mut *unpublished, later)
        };
        let mut all = Unpublished::default();
        for bucket in taken.into_values() {
            all.append(bucket);
        }
        all.into_changes()
    }
}

/// What placing one batch found, before it joins what waits at the desk.
#[derive(Default)]
struct Placement {
    /// `(post, story)` by the post's index in the batch; a later pair overrides an earlier one.
    assigned: Vec<(usize, StoryId)>,
    /// Stories placed in, founded or grown: their rows change.
    touched: HashSet<StoryId>,
    founders: Vec<(StoryId, Vec<PlacedPost>)>,
    left: Vec<StoryId>,
    merges: Vec<(StoryId, StoryId)>,
    faded: Vec<StoryId>,
    born: Vec<StoryId>,
}

impl Placement {
    /// Takes in one of the tracker's events, raised as the post at `placing` was placed.
    fn record(
        &mut self,
        event: StoryEvent<PlacedPost>,
        placing: usize,
        in_batch: &HashMap<PlacedPost, usize>,
    ) {
        match event {
            StoryEvent::Born { id, members } => {
                self.born.push(id);
                self.found(id, members, placing, in_batch);
            }
            StoryEvent::Grew { id, members } => self.found(id, members, placing, in_batch),
            StoryEvent::Merged { from, into } => {
                self.merges.push((from, into));
                for (_, story) in &mut self.assigned {
                    if *story == from {
                        *story = into;
                    }
                }
                self.touched.insert(into);
            }
            StoryEvent::Faded { id } => self.faded.push(id),
            // The founders that left are moved, and counted, when the write updates them.
            StoryEvent::Left { id, .. } => self.left.push(id),
        }
    }

    /// Story `id` was founded (or grown) by `members`: those of this batch are stored in it,
    /// earlier ones are moved to it by the write. The post being placed answered its story
    /// itself.
    fn found(
        &mut self,
        id: StoryId,
        members: Vec<PlacedPost>,
        placing: usize,
        in_batch: &HashMap<PlacedPost, usize>,
    ) {
        self.touched.insert(id);
        let mut earlier = Vec::new();
        for key in members {
            match in_batch.get(&key) {
                Some(&j) if j != placing => self.assigned.push((j, id)),
                Some(_) => {}
                None => earlier.push(key),
            }
        }
        if !earlier.is_empty() {
            self.founders.push((id, earlier));
        }
    }

    /// The rows of the stories it touched that are still live, as they look now.
    fn rows(&self, tracker: &StoryTracker<PlacedPost>) -> Vec<StoryRow> {
        self.touched
            .iter()
            .filter_map(|&id| tracker.snapshot(id))
            .map(row)
            .collect()
    }

    /// Its changes as they wait at the desk, with the `rows` of the stories it touched; a birth
    /// counts when the story is still live after the placement.
    fn into_unpublished(self, rows: Vec<StoryRow>) -> Unpublished {
        let born = self
            .born
            .into_iter()
            .filter(|id| rows.iter().any(|r| r.id == *id))
            .collect();
        Unpublished {
            rows: rows.into_iter().map(|r| (r.id, r)).collect(),
            added: HashMap::new(),
            founders: self.founders,
            left: self.left,
            merges: self.merges,
            faded: self.faded,
            born,
        }
    }
}

/// Sets each post's story from `assigned`. Every copy of a post a producer sent more than once
/// in the batch gets that copy's latest story, so whichever is stored is stored in it; another
/// producer's copy of the same id keeps its own, which the store refuses with it.
fn settle(posts: &mut [AnalyzedPost], assigned: &[(usize, StoryId)]) {
    let stories: Vec<Option<StoryId>> = {
        let mut story_of: HashMap<(&str, &str), StoryId> = HashMap::new();
        for &(i, id) in assigned {
            let p = &posts[i];
            story_of.insert((p.producer.as_str(), p.post.id.as_str()), id);
        }
        posts
            .iter()
            .map(|p| {
                story_of
                    .get(&(p.producer.as_str(), p.post.id.as_str()))
                    .copied()
            })
            .collect()
    };
    for (post, story) in posts.iter_mut().zip(stories) {
        post.story_id = story;
    }
}

/// How the tracker knows `post`.
fn placed_post(post: &AnalyzedPost) -> PlacedPost {
    PlacedPost {
        id: post.post.id.clone(),
        producer: post.producer.clone(),
    }
}

/// A story's row as the tracker sees it, before any post is counted in it.
fn row(s: StorySnapshot<PlacedPost>) -> StoryRow {
    StoryRow {
        id: s.id,
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
        added: 0,
        representatives: s.representatives.into_iter().map(|r| r.key.id).collect(),
    }
}

impl Unpublished {
    /// Adds `later`'s changes after its own; a story's later look replaces the one before.
    fn append(&mut self, later: Unpublished) {
        self.rows.extend(later.rows);
        for (id, n) in later.added {
            *self.added.entry(id).or_default() += n;
        }
        self.founders.extend(later.founders);
        self.left.extend(later.left);
        self.merges.extend(later.merges);
        self.faded.extend(later.faded);
        self.born.extend(later.born);
    }

    /// The write and the births to publish. Posts stored in a story that this write merges
    /// away are moved by the merge, so they count in the story they end in.
    fn into_changes(mut self) -> StoryChanges {
        for &(from, into) in &self.merges {
            if let Some(n) = self.added.remove(&from) {
                *self.added.entry(into).or_default() += n;
            }
        }
        let mut rows: Vec<StoryRow> = Vec::with_capacity(self.rows.len());
        for (id, mut row) in self.rows {
            row.added = self.added.remove(&id).unwrap_or(0);
            rows.push(row);
        }
        rows.sort_by_key(|r| r.id);
        let mut grown: Vec<(StoryId, i64)> =
            self.added.into_iter().filter(|&(_, n)| n != 0).collect();
        grown.sort_unstable();
        let mut born: Vec<StoryId> = self.born.into_iter().collect();
        born.sort_unstable();
        StoryChanges {
            write: StoryWrite {
                rows,
                founders: self.founders,
                left: self.left,
                merges: self.merges,
                faded: self.faded,
                grown,
            },
            born,
        }
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

/// Writes the story changes each committed batch carries and publishes them, in commit order.
///
/// A write that fails is tried again, with backoff, until it passes or PostgreSQL refuses the
/// write itself: its transaction rolled back, and its changes exist nowhere else (the desk
/// handed them over). Changes that commit meanwhile wait behind it folded into one write, so
/// what waits grows with the stories changed, not with the batches: and while PostgreSQL is
/// away no batch commits, so nothing new arrives.
pub struct StoryKeeper {
    pool: Pool,
    publish: Option<Recipient<Publish>>,
    /// Changes that committed while a write was under way, for the next write.
    waiting: Option<StoryChanges>,
    writing: bool,
}

/// The first wait before a failed story write is tried again; it doubles up to
/// [`WRITE_RETRY_MAX`].
const WRITE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(200);
const WRITE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

impl StoryKeeper {
    pub fn new(pool: Pool, publish: Option<Recipient<Publish>>) -> Self {
        StoryKeeper {
            pool,
            publish,
            waiting: None,
            writing: false,
        }
    }

    /// Starts writing what waits, unless a write is under way (its end starts the next).
    fn write_next(&mut self, ctx: &mut Context<Self>) {
        if self.writing {
            return;
        }
        let Some(changes) = self.waiting.take() else {
            return;
        };
        self.writing = true;
        let pool = self.pool.clone();
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(async move {
                let written = write_until_done(&pool, &changes.write).await;
                (changes, written)
            })
            .map(|(changes, written), this, ctx| {
                this.writing = false;
                match written {
                    Ok(joined) => {
                        metrics::counter!(names::STORIES_BORN)
                            .increment(changes.born.len() as u64);
                        this.announce(&changes, &joined);
                    }
                    Err(e) => {
                        tracing::error!(error = %format_args!("{e:#}"), "PostgreSQL refused the story changes; they are dropped, the stories of these posts stand and their counts lag");
                    }
                }
                this.write_next(ctx);
            }),
        );
    }

    /// Publishes each written story; `joined` holds the founders the write moved into each.
    fn announce(&self, changes: &StoryChanges, joined: &HashMap<StoryId, i64>) {
        let Some(publish) = &self.publish else { return };
        for row in &changes.write.rows {
            let kind = if changes.born.contains(&row.id) {
                STORY_NEW
            } else {
                STORY_UPDATE
            };
            let added = row.added + joined.get(&row.id).copied().unwrap_or(0);
            let data = serde_json::json!({
                "id": row.id,
                "label": row.label,
                "terms": row.terms,
                "weights": row.weights,
                "born_at": row.born_at,
                "first_at": row.first_at,
                "last_at": row.last_at,
                "added": added,
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

/// Applies `write`, trying again after each failure that rolled it back, until it passes or
/// PostgreSQL refuses the write itself (that error is answered). Each failure counts.
async fn write_until_done(
    pool: &Pool,
    write: &StoryWrite,
) -> anyhow::Result<HashMap<StoryId, i64>> {
    let mut backoff = crate::models::backoff::Backoff::new(WRITE_RETRY_FIRST, WRITE_RETRY_MAX);
    loop {
        let failed = match write_once(pool, write).await {
            Ok(joined) => return Ok(joined),
            Err(e) => e,
        };
        metrics::counter!(names::STORY_ERRORS, "operation" => "write").increment(1);
        let refused = failed
            .downcast_ref::<tokio_postgres::Error>()
            .is_some_and(crate::db::refused);
        if refused {
            return Err(failed);
        }
        pulse_core::warn_repeated!(error = %format_args!("{failed:#}"), "writing story changes failed; trying again, later changes wait behind it");
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

async fn write_once(pool: &Pool, write: &StoryWrite) -> anyhow::Result<HashMap<StoryId, i64>> {
    let mut client = pool.get().await?;
    Ok(crate::db::stories::apply(&mut client, write).await?)
}

impl Actor for StoryKeeper {
    type Context = Context<Self>;
}

impl Handler<Committed> for StoryKeeper {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Self::Context) {
        let Some(changes) = msg.stories else {
            return;
        };
        if changes.write.is_empty() {
            return;
        }
        let changes = Arc::unwrap_or_clone(changes);
        match &mut self.waiting {
            Some(waiting) => waiting.append(changes),
            None => self.waiting = Some(changes),
        }
        self.write_next(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::fixtures::{self, OUTAGE};

    const MINUTE: i64 = 60_000;
    const START_MS: i64 = 1_700_000_000_000;

    /// An analysed post `key` written `minute` minutes after the start.
    fn post(key: &str, minute: i64, text: &str) -> AnalyzedPost {
        fixtures::analyzed(
            fixtures::post(key, text, at(START_MS + minute * MINUTE)),
            "0-0",
        )
    }

    /// A desk that has placed an hour of unrelated chatter, so word weights are those of a
    /// running stream (in a stream of one conversation every word is common), and has
    /// handed over what that changed.
    fn desk() -> StoryDesk {
        let desk = StoryDesk::new(&StorySettings::default());
        let mut chatter: Vec<AnalyzedPost> = (0..60)
            .map(|i| {
                let text = format!("chatter{i} about topic{} and thing{}", i * 7, i * 13);
                post(&format!("bg{i}"), i - 60, &text)
            })
            .collect();
        desk.place(&mut chatter, 0);
        desk.take_unpublished(0);
        desk
    }

    /// The ids of `posts`, as a store that wrote them all new answers them.
    fn ids(posts: &[AnalyzedPost]) -> Vec<String> {
        posts.iter().map(|p| p.post.id.clone()).collect()
    }

    #[test]
    fn what_a_failed_try_placed_goes_out_with_the_retry_that_commits() {
        let desk = desk();
        let mut earlier = vec![post("a0", 0, OUTAGE[0]), post("a1", 1, OUTAGE[1])];
        desk.place(&mut earlier, 1);
        assert!(earlier.iter().all(|p| p.story_id.is_none()));
        desk.stored(&earlier, &ids(&earlier), 1);

        let batch = || {
            vec![
                post("b2", 2, OUTAGE[2]),
                post("b3", 3, OUTAGE[3]),
                post("b4", 4, OUTAGE[4]),
            ]
        };
        // The first try founds the story with the earlier posts; then its store fails.
        let mut first = batch();
        desk.place(&mut first, 2);
        let id = first[2].story_id.expect("the outage is a story");
        // The earlier batch commits meanwhile: it carries nothing of the later one.
        let earlier_changes = desk.take_unpublished(1);
        assert!(earlier_changes.born.is_empty());
        assert!(earlier_changes.write.founders.is_empty());
        // The retry places the same posts again: each only answers its story.
        let mut retry = batch();
        desk.place(&mut retry, 2);
        assert!(retry.iter().all(|p| p.story_id == Some(id)));
        desk.stored(&retry, &ids(&retry), 2);

        let changes = desk.take_unpublished(2);
        assert_eq!(changes.born, vec![id], "the birth is published");
        let founders: HashSet<&str> = changes
            .write
            .founders
            .iter()
            .filter(|(story, _)| *story == id)
            .flat_map(|(_, keys)| keys.iter().map(|k| k.id.as_str()))
            .collect();
        assert_eq!(founders, HashSet::from(["a0", "a1"]));
        let row = changes.write.rows.iter().find(|r| r.id == id).unwrap();
        assert_eq!(row.added, 3);
        assert!(
            desk.take_unpublished(2).write.is_empty(),
            "nothing goes twice"
        );
    }

    #[test]
    fn a_post_counts_in_its_story_once_however_often_it_is_sent() {
        let desk = desk();
        // The last post twice in one batch: the store writes it once.
        let mut batch: Vec<AnalyzedPost> = OUTAGE
            .iter()
            .enumerate()
            .map(|(i, text)| post(&format!("p{i}"), i as i64, text))
            .collect();
        batch.push(post("p4", 4, OUTAGE[4]));
        desk.place(&mut batch, 1);
        let id = batch[4].story_id.expect("the outage is a story");
        assert_eq!(batch[5].story_id, Some(id));
        desk.stored(&batch, &ids(&batch[..5]), 1);
        // Sent again later, a post is placed in its story and the store finds it stored.
        let mut again = vec![post("p0", 0, OUTAGE[0])];
        desk.place(&mut again, 2);
        assert_eq!(again[0].story_id, Some(id));
        desk.stored(&again, &[], 2);

        let changes = desk.take_unpublished(2);
        let row = changes.write.rows.iter().find(|r| r.id == id).unwrap();
        assert_eq!(row.added, 5);
        assert!(changes.write.grown.is_empty());
    }

    /// A stored live story whose eight heaviest words share two with any other such story.
    fn stored_story(id: StoryId, own: &str) -> StoredCentre {
        let mut terms = vec!["shared".to_string(), "words".to_string()];
        terms.extend((0..6).map(|i| format!("{own}{i}")));
        let mut weights = vec![1.0, 1.0];
        weights.extend([0.8; 6]);
        StoredCentre {
            id,
            terms,
            weights,
            born_at: at(START_MS),
            first_at: at(START_MS),
            last_at: at(START_MS + MINUTE),
        }
    }

    /// The live stories read at start were taken in as if announced, and so compared on their
    /// few stored words: two that the process which stored them kept apart were merged.
    #[test]
    fn stories_read_at_start_are_not_merged_with_each_other() {
        let desk = desk();
        desk.take_in_stored(vec![stored_story(2, "south"), stored_story(1, "north")]);
        let mut batch = vec![post("q0", 1, "made pancakes for breakfast")];
        desk.place(&mut batch, 1);
        let changes = desk.take_unpublished(1);
        assert_eq!(changes.write.merges, vec![]);
    }

    #[test]
    fn another_producers_copy_of_a_post_is_placed_as_its_own_and_founds_as_its_own() {
        let desk = desk();
        let as_rival = |mut p: AnalyzedPost| {
            p.producer = "source:rival".into();
            p
        };
        // The owner's `a0` says something else; the rival sends its own `a0` (the store
        // refuses it) in the same batch, then the rest of the outage.
        let mut first = vec![
            post("a0", 0, "made pancakes for breakfast"),
            as_rival(post("a0", 0, OUTAGE[0])),
            as_rival(post("a1", 1, OUTAGE[1])),
        ];
        desk.place(&mut first, 1);
        assert_eq!(first[0].story_id, None);
        let mut rest: Vec<AnalyzedPost> = OUTAGE[2..]
            .iter()
            .enumerate()
            .map(|(i, text)| as_rival(post(&format!("b{i}"), i as i64 + 2, text)))
            .collect();
        desk.place(&mut rest, 2);
        let id = rest
            .last()
            .and_then(|p| p.story_id)
            .expect("the outage is a story");
        assert_eq!(first[0].story_id, None, "the owner's post stays in none");

        let changes = desk.take_unpublished(2);
        let founders: Vec<&PlacedPost> = changes
            .write
            .founders
            .iter()
            .filter(|(story, _)| *story == id)
            .flat_map(|(_, keys)| keys)
            .collect();
        assert!(
            founders.iter().any(|k| k.id == "a0"),
            "the rival's a0 founded the story: {founders:?}"
        );
        assert!(
            founders.iter().all(|k| k.producer == "source:rival"),
            "only the rival's copies found it: {founders:?}"
        );
    }
}
