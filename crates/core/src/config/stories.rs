//! Settings of story detection (docs/stories.md).

use serde::{Deserialize, Serialize};

/// Story detection (`stories::StoryTracker`); the defaults were chosen by leaving collections of
/// labelled crisis events out in turn (`scripts/stories-tune.py`, docs/stories.md).
///
/// The join threshold is low on purpose: word weights come from a month of posts, so a post
/// that shares one distinctive word with a live story's centre belongs to it more often than not;
/// `join_relative` keeps such a post free to found a story of its own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StorySettings {
    /// Find stories in the posts this process commits.
    pub enabled: bool,
    /// Cosine similarity to a story's centre at which a post joins it.
    pub join_similarity: f32,
    /// Share of a story's cohesion (how alike its posts were to its centre when they joined) a
    /// post must reach to join it firmly; a post that only reaches `join_similarity` joins
    /// loosely and may still found a story of its own with alike posts (0: every join is firm).
    pub join_relative: f32,
    /// Cosine similarity to one recent post that joined a story firmly at which a post joins
    /// that story (its nearest neighbour), when no centre is close enough.
    pub link_similarity: f32,
    /// Cosine similarity between two recent posts in no story (or loosely in one) at which they
    /// count as alike.
    pub birth_similarity: f32,
    /// Alike posts (the newest included) that give birth to a story.
    pub birth_posts: usize,
    /// How long a post waits for alike posts, in event-time seconds.
    pub birth_window_secs: i64,
    /// A story with no post for this long (event time) is over.
    pub fade_secs: i64,
    /// Cosine similarity of two centres at which the younger story is folded into the older.
    pub merge_similarity: f32,
    /// Half-life of a story centre's weights, in event-time seconds.
    pub half_life_secs: i64,
    /// Half-life of the word frequencies that make a word rare or common, in event-time
    /// seconds: long, so that the words of the story of the week stay distinctive.
    pub vocabulary_half_life_secs: i64,
    /// Terms a story centre keeps.
    pub centre_terms: usize,
    /// Live stories kept; beyond it the quietest fades.
    pub max_stories: usize,
    /// Unplaced posts kept waiting.
    pub max_pending: usize,
    /// Waiting posts compared per term of a new post (the newest).
    pub per_term_candidates: usize,
}

impl Default for StorySettings {
    fn default() -> Self {
        StorySettings {
            enabled: true,
            join_similarity: 0.02,
            join_relative: 0.15,
            link_similarity: 0.5,
            birth_similarity: 0.15,
            birth_posts: 3,
            birth_window_secs: 24 * 3600,
            fade_secs: 4 * 86_400,
            merge_similarity: 0.3,
            half_life_secs: 7 * 86_400,
            vocabulary_half_life_secs: 30 * 86_400,
            centre_terms: 200,
            max_stories: 2_000,
            max_pending: 50_000,
            per_term_candidates: 64,
        }
    }
}

impl StorySettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        anyhow::ensure!(
            unit(self.join_similarity)
                && unit(self.join_relative)
                && unit(self.link_similarity)
                && unit(self.birth_similarity)
                && unit(self.merge_similarity),
            "stories: similarities must be within 0..=1"
        );
        anyhow::ensure!(
            self.birth_posts >= 2,
            "stories.birth_posts must be at least 2"
        );
        anyhow::ensure!(
            self.birth_window_secs > 0
                && self.fade_secs > 0
                && self.half_life_secs > 0
                && self.vocabulary_half_life_secs > 0,
            "stories: windows must be positive"
        );
        anyhow::ensure!(
            self.centre_terms >= 4
                && self.max_stories >= 1
                && self.max_pending >= self.birth_posts
                && self.per_term_candidates >= 1,
            "stories: centre_terms >= 4, max_stories >= 1, max_pending >= birth_posts"
        );
        Ok(())
    }
}
