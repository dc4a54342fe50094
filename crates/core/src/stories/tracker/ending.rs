//! How live stories end: folded into an older one whose centre turned out the same, faded when
//! quiet past `fade_secs`, or the quietest faded to make room past `max_stories`.

use std::collections::HashMap;

use super::{
    remember, CentreTerm, Story, StoryEvent, StoryTracker, COMMON_WORD_STORIES, MERGE_CHECK_POSTS,
};
use crate::stories::features::{PostVector, Weighted};

impl<K: Clone + std::hash::Hash + Eq> StoryTracker<K> {
    /// Folds the story at `slot` into an older live story whose centre is close enough, or a
    /// younger one into it.
    pub(super) fn maybe_merge(&mut self, slot: usize) {
        let size = self.slot(slot).size;
        if size > 8 && !size.is_power_of_two() && !size.is_multiple_of(MERGE_CHECK_POSTS) {
            return;
        }
        let story = self.slot(slot);
        let mut dots: HashMap<usize, f32> = HashMap::new();
        let mut passed_over = false;
        for (term, c) in &story.centre {
            let slots = self.index.get(term).map_or(&[][..], Vec::as_slice);
            if slots.len() > COMMON_WORD_STORIES {
                passed_over = true;
                continue;
            }
            for &other in slots {
                if other == slot {
                    continue;
                }
                if let Some(o) = self.slot(other).centre.get(term) {
                    *dots.entry(other).or_default() += c.weight * o.weight;
                }
            }
        }
        let cosine =
            |other: usize, dot: f32| dot / (story.norm * self.slot(other).norm).max(f32::EPSILON);
        let best = dots
            .into_iter()
            .map(|(other, dot)| (other, cosine(other, dot)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((other, mut cos)) = best else { return };
        if passed_over {
            let centre = &self.slot(other).centre;
            let dot: f32 = story
                .centre
                .iter()
                .filter_map(|(term, c)| centre.get(term).map(|o| c.weight * o.weight))
                .sum();
            cos = cosine(other, dot);
        }
        if cos < self.settings.merge_similarity {
            return;
        }
        let (a, b) = (self.slot(slot), self.slot(other));
        let (keep, fold) = if (a.born_ms, a.id) <= (b.born_ms, b.id) {
            (slot, other)
        } else {
            (other, slot)
        };
        self.merge(keep, fold);
    }

    pub(super) fn merge(&mut self, keep: usize, fold: usize) {
        let folded = self.remove(fold);
        let now = self.now_ms;
        let factor = self.decay_factor(folded.centre_ms, now);
        let into = self.slot(keep).id;
        let centre: Vec<(u32, CentreTerm)> = folded.centre.into_iter().collect();
        let mut vector = PostVector::default();
        for (term, c) in centre {
            vector.terms.push(Weighted {
                term,
                weight: c.weight * factor,
            });
            vector.words.push(c.word);
        }
        let (size, first, last, reps) = (
            folded.size,
            folded.first_ms,
            folded.last_ms,
            folded.representatives,
        );
        // Join the folded centre as one weighted post, then fix the counts.
        let placeholder = reps.first().map(|r| r.key.clone());
        if let Some(key) = placeholder {
            self.join(keep, key, last, &vector, 0.0);
            let story = self.slot_mut(keep);
            story.size = story.size - 1 + size;
            story.first_ms = story.first_ms.min(first);
            story.representatives.retain(|r| r.similarity > 0.0);
            for r in reps {
                remember(&mut story.representatives, r.key, r.similarity);
            }
        }
        for w in &mut self.waiting {
            if w.story == Some(folded.id) {
                w.story = Some(into);
            }
        }
        self.events.push(StoryEvent::Merged {
            from: folded.id,
            into,
        });
    }

    /// A slot for a new story: one a faded or merged story left, else a new one.
    pub(super) fn free_slot(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.stories.push(None);
            self.stories.len() - 1
        })
    }

    pub(super) fn remove(&mut self, slot: usize) -> Story<K> {
        let story = self.stories[slot]
            .take()
            .expect("indexed slots hold a story");
        for term in story.centre.keys() {
            if let Some(slots) = self.index.get_mut(term) {
                slots.retain(|&s| s != slot);
                if slots.is_empty() {
                    self.index.remove(term);
                }
            }
        }
        self.by_id.remove(&story.id);
        self.free.push(slot);
        story
    }

    pub(super) fn fade_quiet(&mut self) {
        let oldest = self.now_ms.saturating_sub(self.settings.fade_secs * 1000);
        let quiet: Vec<usize> = self
            .by_id
            .values()
            .copied()
            .filter(|&slot| self.slot(slot).last_ms < oldest)
            .collect();
        for slot in quiet {
            let story = self.remove(slot);
            self.events.push(StoryEvent::Faded { id: story.id });
        }
    }

    pub(super) fn fade_quietest(&mut self) {
        let quietest = self
            .by_id
            .values()
            .copied()
            .min_by_key(|&slot| (self.slot(slot).last_ms, self.slot(slot).id));
        if let Some(slot) = quietest {
            let story = self.remove(slot);
            self.events.push(StoryEvent::Faded { id: story.id });
        }
    }
}
