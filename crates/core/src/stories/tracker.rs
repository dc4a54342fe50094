//! Online story detection in event time: each post joins the live story whose centre it is
//! closest to, or waits among the recent unplaced posts; a story is born when enough of those
//! are alike, grows, absorbs a story that turns out to be the same, and fades when quiet.
//!
//! Memory and work per post are bounded whatever the stream's length: at most `max_stories`
//! live stories of at most `2 x centre_terms` terms each, at most `max_pending` waiting posts,
//! at most `per_term_candidates` waiting posts compared per term of a post, and at most
//! [`COMMON_WORD_STORIES`] stories looked up per term.

use std::collections::{HashMap, HashSet, VecDeque};

use super::features::{words, DocumentFrequencies, PostVector};
pub use crate::config::StorySettings;

mod ending;

/// A story's id: derived from the post it was born with, so the same posts in the same order
/// give the same ids in any process, a live stream or an import.
pub type StoryId = i64;

/// What happened to the live stories while placing posts, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum StoryEvent<K> {
    /// A story was born; `members` are the waiting posts it was born from (the placed post is
    /// among them and is also answered by `place`).
    Born { id: StoryId, members: Vec<K> },
    /// Waiting posts alike enough to found a story turned out to be a live story's: its posts now.
    Grew { id: StoryId, members: Vec<K> },
    /// Story `from` turned out to be story `into`: its posts are `into`'s now.
    Merged { from: StoryId, into: StoryId },
    /// The story went quiet (or was the quietest when too many were live).
    Faded { id: StoryId },
    /// `count` posts that had joined story `id` loosely left it to found another (the `Born`
    /// that follows names them).
    Left { id: StoryId, count: u64 },
}

/// A post close to a story's centre, for the story's representative posts.
#[derive(Debug, Clone, PartialEq)]
pub struct Representative<K> {
    pub key: K,
    pub similarity: f32,
}

/// A story another process of the group found: enough of its centre for posts here to join it
/// under the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnouncedStory {
    pub id: StoryId,
    pub born_ms: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Its heaviest words with their weights.
    pub terms: Vec<(String, f32)>,
}

impl<K> From<StorySnapshot<K>> for AnnouncedStory {
    /// What a process announces of a story born in it.
    fn from(s: StorySnapshot<K>) -> Self {
        AnnouncedStory {
            id: s.id,
            born_ms: s.born_ms,
            first_ms: s.first_ms,
            last_ms: s.last_ms,
            terms: s.terms.into_iter().zip(s.weights).collect(),
        }
    }
}

/// What a live story looks like now.
#[derive(Debug, Clone, PartialEq)]
pub struct StorySnapshot<K> {
    pub id: StoryId,
    /// Its heaviest words, heaviest first.
    pub terms: Vec<String>,
    /// The words' weights in the centre (same order), relative to the heaviest.
    pub weights: Vec<f32>,
    pub born_ms: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub size: u64,
    /// Up to five posts closest to the centre when they joined, closest first.
    pub representatives: Vec<Representative<K>>,
}

struct CentreTerm {
    weight: f32,
    word: Box<str>,
}

struct Story<K> {
    id: StoryId,
    centre: HashMap<u32, CentreTerm>,
    norm: f32,
    norm_sq: f32,
    centre_ms: i64,
    born_ms: i64,
    first_ms: i64,
    last_ms: i64,
    size: u64,
    /// How alike its posts were to its centre when they joined, on average (the newest weigh
    /// most): what a post has to come near to join it firmly.
    cohesion: f32,
    /// Posts counted in `cohesion`.
    cohesion_posts: u32,
    representatives: Vec<Representative<K>>,
}

/// Posts after which a story's cohesion follows its newest posts rather than all of them.
const COHESION_POSTS: u32 = 32;

/// A recent post: a neighbour new posts may link to, or, while in no story, a possible founder.
struct Waiting<K> {
    key: K,
    at_ms: i64,
    vector: PostVector,
    story: Option<StoryId>,
    /// It joined `story` loosely (alike to its centre, far less than its posts are): it may
    /// still found a story of its own with alike posts.
    loose: bool,
}

const REPRESENTATIVES: usize = 5;

/// Words a snapshot (and so an announcement to the group) carries.
const SNAPSHOT_TERMS: usize = 8;

/// A growing story looks for its duplicates at birth, as it doubles, and every this many posts.
const MERGE_CHECK_POSTS: u64 = 32;

/// Live stories holding a word past which the word finds no story: it says nothing of which
/// one a post belongs to (a brand's name in every story of a brand's stream), and walking
/// every story that holds it, for each post that uses it, cost up to `max_stories` lookups a
/// word. It still counts in the similarity of a story found through the post's other words.
const COMMON_WORD_STORIES: usize = 128;

/// The story detector. One per process that places posts (the leader, in a group).
pub struct StoryTracker<K> {
    settings: StorySettings,
    frequencies: DocumentFrequencies,
    stories: Vec<Option<Story<K>>>,
    free: Vec<usize>,
    by_id: HashMap<StoryId, usize>,
    /// Term -> slots of the stories whose centre holds it.
    index: HashMap<u32, Vec<usize>>,
    waiting: VecDeque<Waiting<K>>,
    /// Sequence number of `waiting[0]`.
    first_seq: u64,
    /// Term -> sequence numbers of waiting posts holding it, oldest first.
    waiting_index: HashMap<u32, VecDeque<u64>>,
    /// Key -> sequence number of recent posts, so a post placed again (a batch retried or
    /// delivered twice) is answered, not counted twice.
    recent_keys: HashMap<K, u64>,
    now_ms: i64,
    next_fade_ms: i64,
    placed: u64,
    events: Vec<StoryEvent<K>>,
}

impl<K: Clone + std::hash::Hash + Eq> StoryTracker<K> {
    pub fn new(settings: StorySettings) -> Self {
        StoryTracker {
            frequencies: DocumentFrequencies::new(settings.vocabulary_half_life_secs as f64),
            settings,
            stories: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            index: HashMap::new(),
            waiting: VecDeque::new(),
            first_seq: 0,
            waiting_index: HashMap::new(),
            recent_keys: HashMap::new(),
            now_ms: i64::MIN,
            next_fade_ms: i64::MIN,
            placed: 0,
            events: Vec::new(),
        }
    }

    pub fn settings(&self) -> &StorySettings {
        &self.settings
    }

    /// Places one post written at `at_ms` (event time); answers its story, if any yet. Posts
    /// should come in time order; a late one is placed against the stories live now.
    pub fn place(&mut self, key: K, at_ms: i64, text: &str) -> Option<StoryId> {
        if let Some(&seq) = self.recent_keys.get(&key) {
            let story = self.waiting[(seq - self.first_seq) as usize].story;
            return story.and_then(|id| self.current(id));
        }
        self.now_ms = self.now_ms.max(at_ms);
        self.placed += 1;
        // Quiet stories fade before a post can join them.
        if self.now_ms >= self.next_fade_ms {
            self.fade_quiet();
            self.next_fade_ms = self
                .now_ms
                .saturating_add(self.settings.fade_secs * 1000 / 32);
        }
        let vector = self.frequencies.vector(at_ms, words(text));
        if vector.is_empty() {
            return None;
        }
        self.expire_waiting();
        let by_centre = self
            .closest_story(&vector)
            .filter(|&(_, similarity)| similarity >= self.settings.join_similarity);
        let firm = by_centre.filter(|&(slot, similarity)| {
            similarity >= self.settings.join_relative * self.slot(slot).cohesion
        });
        // Most posts join by a centre; only the others are compared with recent posts.
        let neighbours = if firm.is_some() {
            Vec::new()
        } else {
            self.neighbours(&vector)
        };
        let by_neighbour = || {
            neighbours
                .iter()
                .filter(|n| n.1 >= self.settings.link_similarity)
                .filter_map(|&(seq, sim)| {
                    let w = &self.waiting[(seq - self.first_seq) as usize];
                    if w.loose {
                        return None;
                    }
                    self.by_id.get(&w.story?).map(|&slot| (slot, sim))
                })
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        };
        if let Some((slot, _)) = firm.or_else(by_neighbour) {
            let similarity = self.similarity(slot, &vector);
            self.join(slot, key.clone(), at_ms, &vector, similarity);
            let id = self.slot(slot).id;
            self.remember_recent(key, at_ms, vector, Some(id), false);
            self.maybe_merge(slot);
            return self.current(id);
        }
        let alike: Vec<u64> = neighbours
            .iter()
            .filter(|&&(seq, sim)| {
                let w = &self.waiting[(seq - self.first_seq) as usize];
                sim >= self.settings.birth_similarity && (w.story.is_none() || w.loose)
            })
            .map(|n| n.0)
            .collect();
        if alike.len() + 1 >= self.settings.birth_posts {
            let id = self.give_birth(key, at_ms, vector, alike);
            return self.current(id);
        }
        if let Some((slot, _)) = by_centre {
            // Alike enough to belong, not enough to shape the story or to hold the post from
            // founding one of its own: counted, its words left out of the centre.
            self.count_post(slot, at_ms);
            let id = self.slot(slot).id;
            self.remember_recent(key, at_ms, vector, Some(id), true);
            self.maybe_merge(slot);
            return self.current(id);
        }
        self.remember_recent(key, at_ms, vector, None, false);
        None
    }

    /// The live story that holds a story's posts now (itself, or the one it was folded into).
    fn current(&self, id: StoryId) -> Option<StoryId> {
        if self.by_id.contains_key(&id) {
            Some(id)
        } else {
            self.resolve(id)
        }
    }

    /// The events since the last call, in order.
    pub fn drain_events(&mut self) -> Vec<StoryEvent<K>> {
        std::mem::take(&mut self.events)
    }

    /// Takes in a story another process of the group was born with, so that posts placed here
    /// join it under its id instead of founding a story of their own; a story of this process
    /// that turns out to be the same merges with it the same way in both processes (the older
    /// birth stays). Answers whether it was new here.
    pub fn adopt(&mut self, story: &AnnouncedStory) -> bool {
        let Some(slot) = self.take_in(story) else {
            return false;
        };
        self.maybe_merge(slot);
        true
    }

    /// Takes in a live story stored by an earlier process, as a process starts. It is never
    /// compared with the others taken in: the process that stored them kept them apart with
    /// their whole centres, and the few heaviest words stored of each can look alike where the
    /// centres did not. Answers whether it was new here.
    pub fn restore(&mut self, story: &AnnouncedStory) -> bool {
        self.take_in(story).is_some()
    }

    /// Gives `story` a slot with its centre; `None` when it is here already or has no terms.
    fn take_in(&mut self, story: &AnnouncedStory) -> Option<usize> {
        if self.by_id.contains_key(&story.id) || story.terms.is_empty() {
            return None;
        }
        if self.by_id.len() >= self.settings.max_stories {
            self.fade_quietest();
        }
        let mut by_term: HashMap<u32, (f32, Box<str>)> = HashMap::new();
        for (word, weight) in story.terms.iter().take(self.settings.centre_terms) {
            if weight.is_finite() && *weight > 0.0 {
                by_term
                    .entry(super::features::term_of(word))
                    .or_insert((0.0, word.as_str().into()))
                    .0 += weight;
            }
        }
        let mut terms: Vec<(u32, f32, Box<str>)> = by_term
            .into_iter()
            .map(|(t, (w, word))| (t, w, word))
            .collect();
        terms.sort_by_key(|t| t.0);
        let norm = terms.iter().map(|t| t.1 * t.1).sum::<f32>().sqrt();
        if norm <= 0.0 {
            return None;
        }
        let mut vector = PostVector::default();
        for (term, weight, word) in terms {
            vector.terms.push(super::features::Weighted {
                term,
                weight: weight / norm,
            });
            vector.words.push(word);
        }
        if self.now_ms == i64::MIN {
            self.now_ms = story.last_ms;
        }
        let slot = self.free_slot();
        self.stories[slot] = Some(Story {
            id: story.id,
            centre: HashMap::new(),
            norm: 0.0,
            norm_sq: 0.0,
            centre_ms: self.now_ms,
            born_ms: story.born_ms,
            first_ms: story.first_ms,
            last_ms: story.last_ms,
            size: 0,
            cohesion: 0.0,
            cohesion_posts: 0,
            representatives: Vec::new(),
        });
        self.by_id.insert(story.id, slot);
        self.add_to_centre(slot, &vector);
        Some(slot)
    }

    /// Live stories now.
    pub fn live(&self) -> usize {
        self.by_id.len()
    }

    pub fn snapshot(&self, id: StoryId) -> Option<StorySnapshot<K>> {
        let story = self.slot(*self.by_id.get(&id)?);
        let mut terms: Vec<(&CentreTerm, u32)> =
            story.centre.iter().map(|(t, c)| (c, *t)).collect();
        terms.sort_by(|a, b| b.0.weight.total_cmp(&a.0.weight).then(a.1.cmp(&b.1)));
        terms.truncate(SNAPSHOT_TERMS);
        let heaviest = terms
            .first()
            .map_or(1.0, |(c, _)| c.weight.max(f32::EPSILON));
        Some(StorySnapshot {
            id: story.id,
            terms: terms.iter().map(|(c, _)| c.word.to_string()).collect(),
            weights: terms.iter().map(|(c, _)| c.weight / heaviest).collect(),
            born_ms: story.born_ms,
            first_ms: story.first_ms,
            last_ms: story.last_ms,
            size: story.size,
            representatives: story.representatives.clone(),
        })
    }

    /// Approximate bytes held: the frequency table, the centres and the waiting posts.
    pub fn memory_bytes(&self) -> usize {
        let centre: usize = self
            .stories
            .iter()
            .flatten()
            .map(|s| {
                s.centre.capacity() * 48 + s.centre.values().map(|c| c.word.len()).sum::<usize>()
            })
            .sum();
        let waiting: usize = self
            .waiting
            .iter()
            .map(|w| {
                64 + w.vector.terms.capacity() * 8
                    + w.vector.words.iter().map(|w| w.len() + 16).sum::<usize>()
            })
            .sum();
        let index: usize = self
            .index
            .values()
            .map(|v| 32 + v.capacity() * 8)
            .sum::<usize>()
            + self
                .waiting_index
                .values()
                .map(|v| 40 + v.capacity() * 8)
                .sum::<usize>();
        self.frequencies.memory_bytes() + centre + waiting + index
    }

    fn slot(&self, slot: usize) -> &Story<K> {
        self.stories[slot]
            .as_ref()
            .expect("indexed slots hold a story")
    }

    fn slot_mut(&mut self, slot: usize) -> &mut Story<K> {
        self.stories[slot]
            .as_mut()
            .expect("indexed slots hold a story")
    }

    /// A story id that was merged away, followed to the story that holds its posts now.
    fn resolve(&self, id: StoryId) -> Option<StoryId> {
        let merged_into = |id: StoryId| {
            self.events.iter().rev().find_map(|e| match e {
                StoryEvent::Merged { from, into } if *from == id => Some(*into),
                _ => None,
            })
        };
        // An id can come back (born again from the same words, or announced again) and be
        // merged the other way: the chain is followed at most once round.
        let mut current = merged_into(id)?;
        for _ in 0..self.events.len() {
            match merged_into(current) {
                Some(next) if next != id => current = next,
                _ => break,
            }
        }
        Some(current)
    }

    /// The live story most similar to a vector (cosine), through the term index; a word held
    /// by more than [`COMMON_WORD_STORIES`] stories finds none.
    fn closest_story(&self, vector: &PostVector) -> Option<(usize, f32)> {
        let mut dots: HashMap<usize, f32> = HashMap::new();
        let mut passed_over = false;
        for t in &vector.terms {
            let Some(slots) = self.index.get(&t.term) else {
                continue;
            };
            if slots.len() > COMMON_WORD_STORIES {
                passed_over = true;
                continue;
            }
            for &slot in slots {
                let story = self.slot(slot);
                if let Some(c) = story.centre.get(&t.term) {
                    *dots.entry(slot).or_default() += t.weight * c.weight;
                }
            }
        }
        let (slot, similarity) = dots
            .into_iter()
            .map(|(slot, dot)| (slot, dot / self.slot(slot).norm.max(f32::EPSILON)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
        if passed_over {
            return Some((slot, self.similarity(slot, vector)));
        }
        Some((slot, similarity))
    }

    fn similarity(&self, slot: usize, vector: &PostVector) -> f32 {
        let s = self.slot(slot);
        let dot: f32 = vector
            .terms
            .iter()
            .filter_map(|t| s.centre.get(&t.term).map(|c| c.weight * t.weight))
            .sum();
        dot / s.norm.max(f32::EPSILON)
    }

    fn decay_factor(&self, from_ms: i64, to_ms: i64) -> f32 {
        let dt = (to_ms - from_ms).max(0) as f64 / 1000.0;
        (-(dt * std::f64::consts::LN_2) / self.settings.half_life_secs as f64).exp() as f32
    }

    fn join(&mut self, slot: usize, key: K, at_ms: i64, vector: &PostVector, similarity: f32) {
        self.add_to_centre(slot, vector);
        self.count_post(slot, at_ms);
        let story = self.slot_mut(slot);
        if similarity > 0.0 {
            story.cohesion_posts = (story.cohesion_posts + 1).min(COHESION_POSTS);
            story.cohesion += (similarity - story.cohesion) / story.cohesion_posts as f32;
        }
        remember(&mut story.representatives, key, similarity);
    }

    /// Counts a post written at `at_ms` in the story's size and time span.
    fn count_post(&mut self, slot: usize, at_ms: i64) {
        let story = self.slot_mut(slot);
        story.size += 1;
        story.first_ms = story.first_ms.min(at_ms);
        story.last_ms = story.last_ms.max(at_ms);
    }

    /// Decays the centre to now and adds `vector` to it, keeping the index in step.
    fn add_to_centre(&mut self, slot: usize, vector: &PostVector) {
        let now = self.now_ms;
        let factor = {
            let s = self.slot(slot);
            self.decay_factor(s.centre_ms, now)
        };
        let cap = self.settings.centre_terms;
        let mut added = Vec::new();
        let mut removed = Vec::new();
        {
            let story = self.slot_mut(slot);
            // Decay is applied once it is worth a pass over the centre; until then the centre
            // keeps the time it was last decayed to.
            if factor < 0.999 {
                for c in story.centre.values_mut() {
                    c.weight *= factor;
                }
                story.norm_sq *= factor * factor;
                story.centre_ms = now;
            }
            for (t, word) in vector.terms.iter().zip(&vector.words) {
                let w = t.weight;
                match story.centre.entry(t.term) {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        let c = e.get_mut();
                        story.norm_sq += 2.0 * c.weight * w + w * w;
                        c.weight += w;
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        added.push(t.term);
                        story.norm_sq += w * w;
                        e.insert(CentreTerm {
                            weight: w,
                            word: word.clone(),
                        });
                    }
                }
            }
            if story.centre.len() > 2 * cap {
                let mut weights: Vec<(u32, f32)> =
                    story.centre.iter().map(|(t, c)| (*t, c.weight)).collect();
                weights.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                for (t, _) in weights.into_iter().skip(cap) {
                    story.centre.remove(&t);
                    removed.push(t);
                }
                // Recomputed here, which also keeps rounding from adding up.
                story.norm_sq = story.centre.values().map(|c| c.weight * c.weight).sum();
            }
            story.norm = story.norm_sq.max(0.0).sqrt();
        }
        // A term added and pruned in the same step was never indexed.
        let pruned_new: Vec<u32> = added
            .iter()
            .copied()
            .filter(|t| removed.contains(t))
            .collect();
        added.retain(|t| !pruned_new.contains(t));
        removed.retain(|t| !pruned_new.contains(t));
        for t in added {
            self.index.entry(t).or_default().push(slot);
        }
        for t in removed {
            self.unindex(t, slot);
        }
    }

    fn unindex(&mut self, term: u32, slot: usize) {
        if let Some(slots) = self.index.get_mut(&term) {
            slots.retain(|&s| s != slot);
            if slots.is_empty() {
                self.index.remove(&term);
            }
        }
    }

    /// Recent posts within the birth window sharing a term with `vector`, with their
    /// similarity (at most `per_term_candidates` per term, the newest).
    fn neighbours(&self, vector: &PostVector) -> Vec<(u64, f32)> {
        let mut seen: HashSet<u64> = HashSet::new();
        let mut out = Vec::new();
        let oldest = self
            .now_ms
            .saturating_sub(self.settings.birth_window_secs * 1000);
        for t in &vector.terms {
            let Some(seqs) = self.waiting_index.get(&t.term) else {
                continue;
            };
            for &seq in seqs.iter().rev().take(self.settings.per_term_candidates) {
                if seq < self.first_seq || !seen.insert(seq) {
                    continue;
                }
                let w = &self.waiting[(seq - self.first_seq) as usize];
                if w.at_ms < oldest {
                    continue;
                }
                let sim = w.vector.dot(vector);
                if sim
                    >= self
                        .settings
                        .birth_similarity
                        .min(self.settings.link_similarity)
                {
                    out.push((seq, sim));
                }
            }
        }
        out
    }

    fn remember_recent(
        &mut self,
        key: K,
        at_ms: i64,
        vector: PostVector,
        story: Option<StoryId>,
        loose: bool,
    ) {
        let seq = self.first_seq + self.waiting.len() as u64;
        self.recent_keys.insert(key.clone(), seq);
        for t in &vector.terms {
            let seqs = self.waiting_index.entry(t.term).or_default();
            seqs.push_back(seq);
            if seqs.len() > self.settings.per_term_candidates * 2 {
                seqs.pop_front();
            }
        }
        self.waiting.push_back(Waiting {
            key,
            at_ms,
            vector,
            story,
            loose,
        });
    }

    fn give_birth(&mut self, key: K, at_ms: i64, vector: PostVector, alike: Vec<u64>) -> StoryId {
        let mut founders: Vec<(K, i64, PostVector)> = alike
            .iter()
            .map(|&seq| {
                let w = &self.waiting[(seq - self.first_seq) as usize];
                (w.key.clone(), w.at_ms, w.vector.clone())
            })
            .collect();
        founders.push((key.clone(), at_ms, vector.clone()));
        let id = story_id(&founders);
        let mut left: Vec<(StoryId, u64)> = Vec::new();
        for &seq in &alike {
            let w = &mut self.waiting[(seq - self.first_seq) as usize];
            let before = w.story.replace(id);
            w.loose = false;
            let Some(before) = before else { continue };
            if let Some(from) = self.current(before).filter(|&from| from != id) {
                let slot = self.by_id[&from];
                let story = self.slot_mut(slot);
                story.size = story.size.saturating_sub(1);
                match left.iter_mut().find(|l| l.0 == from) {
                    Some(l) => l.1 += 1,
                    None => left.push((from, 1)),
                }
            }
        }
        for (from, count) in left {
            self.events.push(StoryEvent::Left { id: from, count });
        }
        self.remember_recent(key, at_ms, vector, Some(id), false);
        if let Some(&slot) = self.by_id.get(&id) {
            // The live story with the same words: the founders are its posts.
            let mut members = Vec::with_capacity(founders.len());
            for (key, at, vector) in founders {
                let similarity = self.similarity(slot, &vector);
                self.join(slot, key.clone(), at, &vector, similarity);
                members.push(key);
            }
            self.events.push(StoryEvent::Grew { id, members });
            return id;
        }
        if self.by_id.len() >= self.settings.max_stories {
            self.fade_quietest();
        }
        let slot = self.free_slot();
        self.stories[slot] = Some(Story {
            id,
            centre: HashMap::new(),
            norm: 0.0,
            norm_sq: 0.0,
            centre_ms: self.now_ms,
            born_ms: self.now_ms,
            first_ms: at_ms,
            last_ms: at_ms,
            size: 0,
            cohesion: 0.0,
            cohesion_posts: 0,
            representatives: Vec::new(),
        });
        self.by_id.insert(id, slot);
        let mut members = Vec::with_capacity(founders.len());
        for (key, at, vector) in &founders {
            self.join(slot, key.clone(), *at, vector, 0.0);
            members.push(key.clone());
        }
        // Founders' closeness is measured against the finished centre.
        let reps: Vec<Representative<K>> = founders
            .iter()
            .map(|(key, _, v)| Representative {
                key: key.clone(),
                similarity: self.similarity(slot, v),
            })
            .collect();
        let story = self.slot_mut(slot);
        story.representatives.clear();
        for r in reps {
            remember(&mut story.representatives, r.key, r.similarity);
        }
        self.events.push(StoryEvent::Born { id, members });
        self.maybe_merge(slot);
        id
    }

    fn expire_waiting(&mut self) {
        let oldest = self
            .now_ms
            .saturating_sub(self.settings.birth_window_secs * 1000);
        while let Some(front) = self.waiting.front() {
            if self.waiting.len() <= self.settings.max_pending && front.at_ms >= oldest {
                break;
            }
            if let Some(gone) = self.waiting.pop_front() {
                if self.recent_keys.get(&gone.key) == Some(&self.first_seq) {
                    self.recent_keys.remove(&gone.key);
                }
            }
            self.first_seq += 1;
        }
        if self.placed.is_multiple_of(4096) {
            let first = self.first_seq;
            self.waiting_index.retain(|_, seqs| {
                while seqs.front().is_some_and(|&s| s < first) {
                    seqs.pop_front();
                }
                !seqs.is_empty()
            });
        }
    }
}

fn remember<K>(reps: &mut Vec<Representative<K>>, key: K, similarity: f32) {
    if reps.len() == REPRESENTATIVES && reps.last().is_some_and(|r| r.similarity >= similarity) {
        return;
    }
    let at = reps
        .iter()
        .position(|r| r.similarity < similarity)
        .unwrap_or(reps.len());
    reps.insert(at, Representative { key, similarity });
    reps.truncate(REPRESENTATIVES);
}

/// A story's id from its founders' heaviest words: processes that see different halves of one
/// story, or see it again after it faded, usually name it the same.
fn story_id<K>(founders: &[(K, i64, PostVector)]) -> StoryId {
    use std::hash::Hasher;
    let mut weights: HashMap<u32, (f32, &str)> = HashMap::new();
    for (_, _, v) in founders {
        for (t, w) in v.terms.iter().zip(&v.words) {
            weights.entry(t.term).or_insert((0.0, w)).0 += t.weight;
        }
    }
    let mut heaviest: Vec<(f32, &str)> = weights.into_values().collect();
    heaviest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let mut top: Vec<&str> = heaviest.iter().take(ID_WORDS).map(|h| h.1).collect();
    top.sort_unstable();
    let mut hasher = Fnv64(0xcbf2_9ce4_8422_2325);
    for word in top {
        hasher.write(word.as_bytes());
        hasher.write(&[0xff]);
    }
    // 53 bits: a JSON number every client reads exactly.
    (hasher.finish() >> 11) as i64
}

/// Words that name a story.
const ID_WORDS: usize = 3;

/// FNV-1a: unlike the standard library's hasher it has no per-process key, so every process
/// derives the same id.
struct Fnv64(u64);

impl std::hash::Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests;
