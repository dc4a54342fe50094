//! The analyzer pool: N worker threads (an actix `SyncArbiter`), each owning one analyzer
//! backend. Workers decode and validate entries as well as analyse them, so the CPU work of
//! a batch never runs on the I/O thread.

pub mod adaptive;
pub mod share;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Handler, SyncContext};

use crate::actors::messages::{
    oldest_age_secs, AnalyzeBatch, AnalyzeError, AnalyzeTexts, AnalyzedBatch, AnalyzedPost,
    AnalyzedTexts, RejectReason, Rejected, StreamedDeletion, StreamedEngagement,
};
use crate::analysis::calibration::LiveCalibration;
use crate::analysis::{self, routing::LanguageRouter, Backend};
use crate::config::AnalyzerSettings;
use crate::models::{Analysis, Event};
use crate::telemetry::names;
use crate::topics::relevance::{self, Filters};
use crate::topics::{LiveTopics, PostFields, TopicSet};

/// One worker of the pool.
pub struct AnalyzerWorker {
    backend: Backend,
    settings: Arc<AnalyzerSettings>,
    analyzer: LanguageRouter,
    /// The topics each post is matched against; none for a pool that only analyses texts.
    topics: Option<Arc<LiveTopics>>,
    /// The deployment's sentiment calibration, applied to what the shipped models give.
    calibration: Option<Arc<LiveCalibration>>,
    fail_next: bool,
    last_release: Instant,
}

/// How often a worker kept busy by full batches hands freed pages back. Returning them after
/// every batch made the next batch fault them in again (with the 4-layer model, 14% of a busy
/// worker's time was spent in the kernel); once a second still returns them while a burst lasts.
const BUSY_RELEASE_INTERVAL: Duration = Duration::from_secs(1);

impl AnalyzerWorker {
    /// Builds a worker; the backend was already checked to load at start-up.
    pub fn new(backend: Backend, settings: Arc<AnalyzerSettings>) -> Self {
        let analyzer =
            analysis::build_router(backend, &settings).expect("analyzer backend failed to load");
        Self::with_router(backend, settings, analyzer)
    }

    /// A worker around an already loaded backend.
    pub fn with_router(
        backend: Backend,
        settings: Arc<AnalyzerSettings>,
        analyzer: LanguageRouter,
    ) -> Self {
        Self {
            backend,
            settings,
            analyzer,
            topics: None,
            calibration: None,
            fail_next: false,
            last_release: Instant::now(),
        }
    }

    /// Matches every post it analyses against `topics`.
    pub fn matching(mut self, topics: Arc<LiveTopics>) -> Self {
        self.topics = Some(topics);
        self
    }

    /// Applies the calibration in use to every analysis.
    pub fn calibrated(mut self, calibration: Arc<LiveCalibration>) -> Self {
        self.calibration = Some(calibration);
        self
    }

    /// Analyses posts given as (text, producer's language tag), calibrated.
    fn analyze_posts(&mut self, posts: &[(&str, Option<&str>)]) -> Vec<Analysis> {
        #[cfg(feature = "fault-injection")]
        faults::panic_on_marked(posts);
        let mut analyses = self.analyzer.analyze_posts(posts);
        if let Some(c) = self.calibration.as_ref().and_then(|live| live.get()) {
            let adapted = c.apply(&mut analyses, posts);
            if adapted > 0 {
                metrics::counter!(names::CALIBRATED_POSTS).increment(adapted as u64);
            }
        }
        analyses
    }

    /// Replaces a backend that panicked (it may hold broken state) with a fresh one, counted
    /// as a restart of the analyzer whichever message it panicked on.
    fn rebuild(&mut self) {
        metrics::counter!(names::ACTOR_RESTARTS, "actor" => "analyzer").increment(1);
        match analysis::build_router(self.backend, &self.settings) {
            Ok(fresh) => self.analyzer = fresh,
            // The backend loaded at start-up, so its files or the memory went away since; the
            // worker goes on with the backend that panicked rather than with none.
            Err(e) => tracing::error!(
                error = %format_args!("{e:#}"),
                backend = ?self.backend,
                "rebuilding the analyzer backend after a panic failed; keeping the old one"
            ),
        }
    }

    fn analyze(&mut self, batch: &[crate::actors::messages::RawEntry]) -> AnalyzedBatch {
        let mut out = AnalyzedBatch::default();
        let mut posts = Vec::new();
        for entry in batch {
            if let Some(cut) = entry.cut {
                out.rejected.push(Rejected {
                    entry: entry.clone(),
                    reason: RejectReason::EntryTooLarge(cut),
                });
                continue;
            }
            let decoded = entry.producer().and_then(|p| Ok((p, entry.decode()?)));
            match decoded {
                Ok((producer, Event::Post(post))) => posts.push((entry.id.clone(), producer, post)),
                Ok((producer, Event::Engagement(engagement))) => {
                    out.engagements.push(StreamedEngagement {
                        entry_id: entry.id.clone(),
                        producer,
                        engagement,
                    })
                }
                Ok((producer, Event::Delete(deletion))) => out.deletions.push(StreamedDeletion {
                    entry_id: entry.id.clone(),
                    producer,
                    deletion,
                }),
                Err(e) => out.rejected.push(Rejected {
                    entry: entry.clone(),
                    reason: e.into(),
                }),
            }
        }
        if self.fail_next {
            self.fail_next = false;
            panic!("injected analyzer fault");
        }
        let texts: Vec<(&str, Option<&str>)> = posts
            .iter()
            .map(|(_, _, p)| (p.text.as_str(), p.lang.as_deref()))
            .collect();
        let analyses = self.analyze_posts(&texts);
        debug_assert_eq!(analyses.len(), posts.len());
        out.posts = posts
            .into_iter()
            .zip(analyses)
            .map(|((entry_id, producer, post), analysis)| AnalyzedPost {
                entry_id,
                producer,
                post,
                analysis,
                story_id: None,
                topics: Vec::new(),
                filtered_topics: Vec::new(),
                search: Vec::new(),
            })
            .collect();
        if let Some(topics) = &self.topics {
            let (set, filters) = topics.with_filters();
            match_topics(&set, &filters, &mut out.posts);
            index(&mut out.posts);
        }
        out
    }
}

/// Matches each post against every topic of `set`, once, as analysed (its resolved language),
/// and leaves out of each topic whose relevance filter says so the posts it does not keep.
fn match_topics(set: &TopicSet, filters: &Filters, posts: &mut [AnalyzedPost]) {
    if set.is_empty() || posts.is_empty() {
        return;
    }
    let started = Instant::now();
    let (mut matched, mut filtered) = (0, 0);
    for p in posts.iter_mut() {
        let matches = set.matches(&PostFields::of(p));
        matched += matches.len();
        let read = relevance::Post {
            text: &p.post.text,
            author: Some(&p.post.author.id),
            lang: p.analysis.lang.as_deref(),
            matched: true,
        };
        let (kept, left_out) = filters.split(matches, &read);
        filtered += left_out.len();
        p.topics = kept;
        p.filtered_topics = left_out;
    }
    metrics::histogram!(names::TOPIC_MATCH_SECONDS).record(started.elapsed());
    metrics::counter!(names::TOPIC_MATCHES).increment(matched as u64);
    if filtered > 0 {
        metrics::counter!(names::TOPIC_FILTERED_POSTS).increment(filtered as u64);
    }
}

/// Writes each post's search vector, read as topics read it.
fn index(posts: &mut [AnalyzedPost]) {
    for p in posts.iter_mut() {
        p.search = crate::search::vector::encode(&PostFields::of(p));
    }
}

impl Actor for AnalyzerWorker {
    type Context = SyncContext<Self>;
}

impl Handler<AnalyzeBatch> for AnalyzerWorker {
    type Result = Result<Option<AnalyzedBatch>, AnalyzeError>;

    fn handle(&mut self, msg: AnalyzeBatch, _: &mut Self::Context) -> Self::Result {
        if let Some(limit) = msg.hand_back_after_secs {
            if oldest_age_secs(&msg.entries).is_some_and(|age| age > limit) {
                return Ok(None);
            }
        }
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| self.analyze(&msg.entries))) {
            Ok(batch) => {
                // The lexicon allocates little, and its pool is the one that must be fast. A batch
                // short of full means the stream has run dry and the worker is about to wait.
                let busy = msg.entries.len() >= self.settings.batch_size;
                if self.backend == Backend::Onnx
                    && (!busy || self.last_release.elapsed() >= BUSY_RELEASE_INTERVAL)
                {
                    release_free_memory();
                    self.last_release = Instant::now();
                }
                count_analyses(batch.posts.iter().map(|p| &p.analysis));
                metrics::histogram!(names::ANALYZE_BATCH_SECONDS).record(started.elapsed());
                Ok(Some(batch))
            }
            Err(panic) => {
                let reason = panic_message(&panic);
                tracing::error!(%reason, entries = msg.entries.len(), "analyzer panicked; restarting its backend");
                self.rebuild();
                Err(AnalyzeError(reason))
            }
        }
    }
}

impl Handler<AnalyzeTexts> for AnalyzerWorker {
    type Result = Result<AnalyzedTexts, AnalyzeError>;

    fn handle(&mut self, msg: AnalyzeTexts, _: &mut Self::Context) -> Self::Result {
        let texts: Vec<(&str, Option<&str>)> = msg
            .0
            .iter()
            .map(|(text, lang)| (text.as_str(), lang.as_deref()))
            .collect();
        match catch_unwind(AssertUnwindSafe(|| self.analyze_posts(&texts))) {
            Ok(analyses) => Ok(AnalyzedTexts {
                thresholds_each: analyses
                    .iter()
                    .map(|a| self.analyzer.decision_thresholds_of(a))
                    .collect(),
                analyses,
                thresholds: self.analyzer.decision_thresholds(),
            }),
            Err(panic) => {
                let reason = panic_message(&panic);
                tracing::error!(%reason, texts = texts.len(), "analyzer panicked on direct texts; restarting its backend");
                self.rebuild();
                Err(AnalyzeError(reason))
            }
        }
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<super::messages::InjectFault> for AnalyzerWorker {
    type Result = ();

    fn handle(&mut self, _: super::messages::InjectFault, _: &mut Self::Context) {
        self.fail_next = true;
    }
}

/// A poison text for tests: one that makes the analysis panic every time it is analysed, as a
/// post that trips a bug in a backend would. Only compiled with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub mod faults {
    use std::sync::{Mutex, PoisonError};

    /// What a text holds to make every analysis it is part of panic.
    pub const PANIC_MARKER: &str = "pulse-injected-analyzer-panic";

    /// The marked text of each analysis that panicked, one per panic: tests run side by side
    /// in one process, so each counts the panics of its own text.
    static PANICKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Panics when one of `texts` holds [`PANIC_MARKER`].
    pub(super) fn panic_on_marked(texts: &[(&str, Option<&str>)]) {
        if let Some((text, _)) = texts.iter().find(|(t, _)| t.contains(PANIC_MARKER)) {
            PANICKED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(text.to_string());
            panic!("injected analyzer panic");
        }
    }

    /// How many analyses `text` made panic.
    pub fn panics_on(text: &str) -> usize {
        PANICKED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|t| *t == text)
            .count()
    }
}

/// Counts analysed posts per model and per language support class, one increment per distinct
/// label set of the batch.
fn count_analyses<'a>(analyses: impl Iterator<Item = &'a crate::models::Analysis>) {
    let mut counts: Vec<(&str, crate::models::LanguageSupport, u64)> = Vec::new();
    for a in analyses {
        match counts
            .iter_mut()
            .find(|(m, s, _)| *m == a.model && *s == a.language_support)
        {
            Some(c) => c.2 += 1,
            None => counts.push((a.model.as_str(), a.language_support, 1)),
        }
    }
    for (model, support, n) in counts {
        metrics::counter!(names::ANALYZED_POSTS, "model" => model.to_string()).increment(n);
        metrics::counter!(names::POSTS_BY_LANGUAGE_SUPPORT, "support" => support.as_str())
            .increment(n);
    }
}

/// The text of a caught panic, for logs and dead-letter reasons.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// Hands the pages a batch's inference freed back to the system. ONNX Runtime's activations are
/// freed after every run, but the allocator keeps them, scattered over its arenas, so without
/// this the resident size grows to every worker's largest batch at once and stays there.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only returns free memory; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::messages::RawEntry;
    use actix::SyncArbiter;

    fn entry_added_secs_ago(secs: i64) -> RawEntry {
        let ms = chrono::Utc::now().timestamp_millis() - secs * 1000;
        RawEntry {
            id: format!("{ms}-0"),
            fields: vec![(
                "event".to_string(),
                br#"{"type":"engagement","post_id":"p1","kind":"like","at":"2026-01-01T00:00:00Z"}"#
                    .to_vec(),
            )],
            deliveries: 1,
            cut: None,
            seen_at_ms: None,
        }
    }

    #[actix_rt::test]
    async fn a_batch_that_waited_past_the_threshold_is_handed_back_unanalysed() {
        let settings = Arc::new(AnalyzerSettings::default());
        let worker = SyncArbiter::start(1, move || {
            AnalyzerWorker::new(Backend::Lexicon, settings.clone())
        });
        let ask = |age: i64, limit: Option<f64>| {
            worker.send(AnalyzeBatch {
                entries: Arc::new(vec![entry_added_secs_ago(age)]),
                hand_back_after_secs: limit,
            })
        };
        assert!(ask(30, Some(10.0)).await.unwrap().unwrap().is_none());
        let fresh = ask(1, Some(10.0))
            .await
            .unwrap()
            .unwrap()
            .expect("analysed");
        assert_eq!(fresh.engagements.len(), 1);
        assert!(ask(30, None).await.unwrap().unwrap().is_some());
    }
}
