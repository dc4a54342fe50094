//! Every message the pipeline actors exchange, in one place.

pub use crate::db::batch::{Refusals, StoreError, StoreOutcome};
pub use crate::models::event::{StreamedDeletion, StreamedEngagement};
pub use crate::models::AnalyzedPost;
pub use crate::streams::entry::RawEntry;
use std::collections::HashSet;
use std::sync::Arc;

use actix::Message;

use crate::models::live::{FilterKeys, Topic};
use crate::models::EventError;

/// An entry that cannot be processed, with the reason it goes to the dead-letter stream.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub entry: RawEntry,
    pub reason: RejectReason,
}

/// Why an entry was dead-lettered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RejectReason {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("delivered {0} times without being committed")]
    TooManyDeliveries(u64),
    #[error(
        "the stream entry is {} bytes in {} fields, over ingest.max_entry_bytes or \
         ingest.max_entry_fields; read as a truncated copy", .0.bytes, .0.fields
    )]
    EntryTooLarge(crate::streams::entry::Cut),
    #[error("analysis failed: {0}")]
    Analysis(String),
    #[error("the database refused it: {0}")]
    Storage(String),
}

impl RejectReason {
    /// Every value [`RejectReason::class`] can take.
    pub const CLASSES: &'static [&'static str] = &[
        "missing_event_field",
        "invalid_utf8",
        "too_large",
        "malformed",
        "invalid_field",
        "max_deliveries",
        "entry_too_large",
        "analysis_failed",
        "storage_refused",
    ];

    /// A low-cardinality class for metric labels.
    pub fn class(&self) -> &'static str {
        match self {
            RejectReason::Event(e) => e.class(),
            RejectReason::TooManyDeliveries(_) => "max_deliveries",
            RejectReason::EntryTooLarge(_) => "entry_too_large",
            RejectReason::Analysis(_) => "analysis_failed",
            RejectReason::Storage(_) => "storage_refused",
        }
    }
}

/// Decode and analyse a batch of raw entries (sent to the analyzer pool). The answer is `None`
/// when the batch was handed back unanalysed (see `hand_back_after_secs`).
#[derive(Message)]
#[rtype(result = "Result<Option<AnalyzedBatch>, AnalyzeError>")]
pub struct AnalyzeBatch {
    pub entries: Arc<Vec<RawEntry>>,
    /// Set on batches sent to the model while a lexicon fallback exists: a worker that reaches
    /// the batch only when its oldest entry is older than this hands it back, because the
    /// batch waited in the pool's queue, where the route cannot see its age, and the lexicon
    /// would analyse it now.
    pub hand_back_after_secs: Option<f64>,
}

/// Seconds since the oldest of `entries` arrived in the stream, if any carries its time (see
/// [`RawEntry::arrived_at_ms`]).
pub fn oldest_age_secs(entries: &[RawEntry]) -> Option<f64> {
    let oldest = entries.iter().filter_map(RawEntry::arrived_at_ms).min()?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    Some((now_ms - oldest).max(0) as f64 / 1000.0)
}

/// What placements in stories and stores changed that a committed batch carries out: written
/// and published by the story keeper.
#[derive(Debug, Default, Clone)]
pub struct StoryChanges {
    pub write: crate::db::stories::StoryWrite,
    /// Stories born since the last changes went out.
    pub born: Vec<crate::stories::StoryId>,
}

impl StoryChanges {
    /// Adds `later`'s changes after its own (see [`crate::db::stories::StoryWrite::append`]).
    pub fn append(&mut self, later: StoryChanges) {
        self.write.append(later.write);
        self.born.extend(later.born);
        self.born.sort_unstable();
        self.born.dedup();
    }
}

/// The analyzer pool's answer: what to store and what to dead-letter.
#[derive(Debug, Default)]
pub struct AnalyzedBatch {
    pub posts: Vec<AnalyzedPost>,
    pub engagements: Vec<StreamedEngagement>,
    pub deletions: Vec<StreamedDeletion>,
    pub rejected: Vec<Rejected>,
}

/// The analyzer failed on a batch (a panic in a backend); the batch is retried in halves.
#[derive(Debug, thiserror::Error)]
#[error("analyzer failed: {0}")]
pub struct AnalyzeError(pub String);

/// Analyse texts given directly, outside the stream (the synchronous analyze and forecast
/// endpoints), each with the language its caller gave, if any: routed as a post so tagged.
#[derive(Message)]
#[rtype(result = "Result<AnalyzedTexts, AnalyzeError>")]
pub struct AnalyzeTexts(pub Vec<(String, Option<String>)>);

/// Analyses of [`AnalyzeTexts`], in order, with the backend's decision thresholds.
#[derive(Debug, Clone)]
pub struct AnalyzedTexts {
    pub analyses: Vec<crate::models::Analysis>,
    /// The English backend's decision thresholds.
    pub thresholds: crate::analysis::DecisionThresholds,
    /// The thresholds of the backend that analysed each text, in order.
    pub thresholds_each: Vec<crate::analysis::DecisionThresholds>,
}

/// Makes the receiving actor panic. Only compiled with the `fault-injection` feature (the test
/// command enables it) and never reachable from the network, to prove that supervision
/// restarts a crashed stage.
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectFault;

/// Stop reading new entries, wait for in-flight batches to commit and be acknowledged.
#[derive(Message)]
#[rtype(result = "DrainReport")]
pub struct Drain {
    pub timeout: std::time::Duration,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainReport {
    /// Every batch read was committed and acknowledged.
    Drained,
    /// The timeout passed with batches still in flight; they stay pending in Redis.
    TimedOut { in_flight: usize },
}

/// A batch that is committed and acknowledged, for stages downstream of the store (live
/// metrics, subscribers, benchmarks). Only posts and engagements new to the database count.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Committed {
    pub batch: Arc<AnalyzedBatch>,
    pub outcome: Arc<StoreOutcome>,
    /// What this batch, and the batches read before it, changed in the stories and no batch
    /// carried out yet.
    pub stories: Option<Arc<StoryChanges>>,
    /// When the acknowledgement returned, in Unix milliseconds.
    pub acked_at_ms: i64,
    /// The spans of the batch's sampled posts, for the stages that publish them.
    pub trace: Option<Arc<crate::telemetry::traces::BatchTrace>>,
}

impl Committed {
    /// The batch's posts that were new to the database, each once: the copy the store wrote.
    /// A batch may hold one post id several times (a producer sending it twice, another
    /// producer's copy the store refused), and the copies' texts, authors and keys differ; a
    /// copy that was not stored must count nowhere, or a producer could count one post as many
    /// (terms that no deletion takes back out) or lend its keys to another producer's post.
    pub fn new_posts(&self) -> impl Iterator<Item = &AnalyzedPost> {
        let stored: HashSet<&str> = self
            .outcome
            .inserted_entries
            .iter()
            .map(String::as_str)
            .collect();
        self.batch
            .posts
            .iter()
            .filter(move |p| stored.contains(p.entry_id.as_str()))
    }
}

/// A stage that committed batches are handed to: an actor's mailbox, or a hand-off of the
/// stage's own that bounds what waits for it (see `ws::broadcaster::LiveIntake`). Handing
/// over never waits.
pub trait CommittedSink: Send + Sync {
    fn take(&self, committed: Committed);
}

impl CommittedSink for actix::Recipient<Committed> {
    fn take(&self, committed: Committed) {
        self.do_send(committed);
    }
}

/// A live metrics snapshot (pre-serialised JSON, shared by every subscriber).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct MetricsUpdate {
    pub json: Arc<str>,
}

/// A live event of another topic (`alerts`, `virality`), already serialized, delivered as
/// `{"type": event_type, "data": data}` to subscribers of `topic` whose filter matches
/// `keys`. Queued like posts, but dropped only when a session holds nothing else.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Publish {
    pub topic: Topic,
    /// The message `type`, e.g. `alert:negative_spike` or `virality:update`.
    pub event_type: String,
    /// The message `data` as JSON.
    pub data: Arc<str>,
    /// What the event is about, matched against session filters.
    pub keys: FilterKeys,
}

/// Stops a stage that works on timers, at shutdown. Its timers would otherwise keep it
/// running after the application shut down: harmless in a process that exits next, but an
/// application run inside a test or a benchmark would go on evaluating rules, delivering
/// webhooks or sweeping tables of a database it no longer owns.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reject_class_is_listed() {
        let reasons = [
            RejectReason::Event(EventError::MissingEventField),
            RejectReason::Event(EventError::InvalidUtf8),
            RejectReason::Event(EventError::TooLarge(1)),
            RejectReason::Event(EventError::Malformed(String::new())),
            RejectReason::Event(EventError::Invalid {
                field: "text",
                reason: String::new(),
            }),
            RejectReason::TooManyDeliveries(9),
            RejectReason::EntryTooLarge(crate::streams::entry::Cut {
                bytes: 1,
                fields: 1,
            }),
            RejectReason::Analysis(String::new()),
            RejectReason::Storage(String::new()),
        ];
        let classes: Vec<&str> = reasons.iter().map(RejectReason::class).collect();
        assert_eq!(classes, RejectReason::CLASSES);
    }
}
