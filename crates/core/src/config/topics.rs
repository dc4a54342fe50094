//! Settings of topics (docs/topics.md): how soon a change reaches every process, how many
//! topics a deployment holds, and what previews and re-tagging may take.

use serde::{Deserialize, Serialize};

/// Fewest labelled posts a topic's relevance may be trained on: fewer could never hold the
/// labels of each class a model needs (`MIN_PER_CLASS` of the relevance model, which checks
/// that the two agree).
pub const MIN_TRAINING_LABELS: usize = 10;

/// Topics: what a team listens for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicSettings {
    /// How often a process looks for changed topics, in milliseconds: the most a change takes
    /// to reach the matcher of every process of the group.
    pub refresh_ms: u64,
    /// Most live topics (active or paused) a deployment holds.
    pub max_topics: usize,
    /// Most live topics one key may have created (an administrator's count only towards
    /// `max_topics`), so one key cannot take every place.
    pub max_topics_per_key: usize,
    /// Most stored posts a preview reads, newest first.
    pub preview_max_posts: usize,
    /// Most previews a process runs at once, whoever asks (each caller runs one at a time):
    /// each holds a page of stored posts, up to 4 MiB of them, while it matches it.
    pub preview_max_running: usize,
    /// Stored posts a re-tagging reads, matches and writes in one transaction.
    pub retag_chunk: usize,
    /// The same, while the pipeline has entries in flight: smaller, so its batches wait
    /// behind less.
    pub retag_busy_chunk: usize,
    /// Longest stretch a re-tagging may cover, in days.
    pub retag_max_days: u32,
    /// Share of its time a re-tagging works while the pipeline has entries in flight (it
    /// rests `t × (1/share − 1)` after a chunk that took `t`); with nothing in flight it
    /// works without rest. Search indexing and the relevance learner rest by it too.
    pub retag_busy_share: f64,
    /// Labels one reviewer may give per second, on average, per process.
    pub label_rate_per_sec: f64,
    /// Labels one reviewer may give at once above that rate.
    pub label_burst: u32,
    /// How long a post handed to a reviewer by the review queue is theirs alone, in seconds.
    pub review_claim_secs: u64,
    /// How often a process looks for topics with new labels to learn from, and stored posts to
    /// re-score, in milliseconds.
    pub relevance_every_ms: u64,
    /// Stored posts a re-scoring under a newly adopted model reads and moves per transaction.
    pub relevance_rescore_chunk: usize,
    /// How long after `topics.refresh_ms` a re-scoring waits, from its start, before it reads
    /// once more the posts stored since it began, in milliseconds: the time a batch matched
    /// before a process loaded the change takes to be stored.
    pub relevance_settle_ms: u64,
    /// The newest labelled posts a topic's relevance is trained on: training time and memory
    /// grow with the labels read, and a topic's labels only grow.
    pub relevance_training_labels: usize,
    /// Shortest time between two trainings of one topic, in milliseconds: labels given and
    /// undone meanwhile wait for the next, which trains on them all, so a reviewer's every
    /// label does not cost a round (up to 11 trainings) of its own. A label is trained on
    /// within this and `relevance_every_ms` (its own post moves at once).
    pub relevance_train_gap_ms: u64,
}

impl Default for TopicSettings {
    fn default() -> Self {
        TopicSettings {
            refresh_ms: 1_000,
            max_topics: 10_000,
            max_topics_per_key: 1_000,
            preview_max_posts: 100_000,
            preview_max_running: 4,
            retag_chunk: 2_000,
            retag_busy_chunk: 500,
            retag_max_days: 90,
            retag_busy_share: 0.3,
            label_rate_per_sec: 5.0,
            label_burst: 100,
            review_claim_secs: 300,
            relevance_every_ms: 1_000,
            relevance_rescore_chunk: 500,
            relevance_settle_ms: 10_000,
            relevance_training_labels: 5_000,
            relevance_train_gap_ms: 5_000,
        }
    }
}

impl TopicSettings {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        super::check_share("topics.retag_busy_share", self.retag_busy_share)?;
        if !(self.label_rate_per_sec > 0.0 && self.label_rate_per_sec.is_finite())
            || self.label_burst == 0
            || self.review_claim_secs == 0
            || self.relevance_every_ms == 0
            || self.relevance_rescore_chunk == 0
        {
            return Err(
                "topics.label_rate_per_sec, topics.label_burst, topics.review_claim_secs, \
                 topics.relevance_every_ms and topics.relevance_rescore_chunk must be above 0"
                    .into(),
            );
        }
        if self.relevance_training_labels < MIN_TRAINING_LABELS {
            return Err(format!(
                "topics.relevance_training_labels must be at least {MIN_TRAINING_LABELS}, the \
                 labels a model needs, not {}",
                self.relevance_training_labels
            ));
        }
        if self.retag_chunk == 0
            || self.retag_busy_chunk == 0
            || self.refresh_ms == 0
            || self.preview_max_running == 0
            || self.max_topics_per_key == 0
        {
            return Err(
                "topics.retag_chunk, topics.retag_busy_chunk, topics.refresh_ms, \
                 topics.preview_max_running and topics.max_topics_per_key must be above 0"
                    .into(),
            );
        }
        Ok(())
    }
}
