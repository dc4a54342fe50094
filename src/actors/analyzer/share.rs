//! The analyzer's time that `POST /api/v1/analyze` may take from the pipeline. The endpoint
//! runs on the pipeline's own pool (a second pool would hold a second copy of every model),
//! so it gets a share the pipeline can always take back:
//!
//! - a request's texts go to the pool in chunks of [`CHUNK_TEXTS`], one chunk at a time per
//!   process, so a pipeline batch waits behind at most one chunk;
//! - the turn passes chunk by chunk, in the order the callers asked for it: a request waits at
//!   most `analyzer.api_wait_ms` for its first chunk's turn, then is answered 503 `busy`; once
//!   under way, its later chunks queue behind the chunks of the requests that came meanwhile, so
//!   a request of many chunks does not keep the others waiting until it ends;
//! - a caller has at most one request waiting or analysing (a second is refused at once), so
//!   one caller's loop cannot queue ahead of everyone else's;
//! - after a chunk that took `t`, the next one (whichever request's) waits
//!   `t × (1/share − 1)` (`analyzer.api_share`), so the API takes at most that share of one
//!   worker however hard it is called;
//! - no chunk starts while the pipeline is behind (the lexicon fallback is on, or the batch it
//!   read last was over [`BEHIND_AFTER`] old).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::adaptive::AdaptiveRoute;
use super::AnalyzerWorker;
use crate::actors::messages::{AnalyzeError, AnalyzeTexts, AnalyzedTexts};
use crate::actors::supervisor::Supervised;
use crate::config::AnalyzerSettings;

/// Texts sent to the pool at once.
pub const CHUNK_TEXTS: usize = 16;
/// The age of the entries the pipeline reads past which it counts as behind.
pub const BEHIND_AFTER: Duration = Duration::from_secs(1);
/// How often a request waiting for the pipeline to catch up looks again.
const YIELD_POLL: Duration = Duration::from_millis(50);

/// Why texts were not analysed.
#[derive(Debug)]
pub enum ShareError {
    /// No turn, or the pipeline stayed behind, within `analyzer.api_wait_ms`.
    Busy,
    /// The caller has a request waiting or analysing already.
    CallerBusy,
    /// The pool is restarting.
    Unavailable,
    /// A backend failed on the texts.
    Failed(AnalyzeError),
}

/// See the module documentation.
#[derive(Debug)]
pub struct AnalyzerShare {
    /// One chunk at a time, in the order asked; held through the rest the chunk owes.
    turn: Arc<Semaphore>,
    /// Callers with a request waiting or analysing.
    callers: Callers,
    share: f64,
    wait: Duration,
}

/// The callers with a request of some kind under way, so that each has at most one.
#[derive(Debug, Default)]
pub struct Callers(Mutex<HashSet<String>>);

/// Why a caller was given no place.
#[derive(Debug, PartialEq, Eq)]
pub enum NoPlace {
    /// The caller holds one already.
    Caller,
    /// Every place of the process is held, by other callers.
    Full,
}

impl Callers {
    /// `caller`'s place, given back when dropped; `None` while it holds one.
    pub fn take(&self, caller: &str) -> Option<CallerSlot<'_>> {
        self.take_within(caller, usize::MAX).ok()
    }

    /// `caller`'s place while fewer than `most` are held in all (at least one is always
    /// allowed), given back when dropped.
    pub fn take_within(&self, caller: &str, most: usize) -> Result<CallerSlot<'_>, NoPlace> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if held.contains(caller) {
            return Err(NoPlace::Caller);
        }
        if held.len() >= most.max(1) {
            return Err(NoPlace::Full);
        }
        held.insert(caller.to_string());
        Ok(CallerSlot {
            callers: self,
            caller: caller.to_string(),
        })
    }
}

/// A caller's place: its one request, given back when dropped.
pub struct CallerSlot<'a> {
    callers: &'a Callers,
    caller: String,
}

impl Drop for CallerSlot<'_> {
    fn drop(&mut self) {
        self.callers
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.caller);
    }
}

impl AnalyzerShare {
    /// The share the settings give.
    pub fn new(settings: &AnalyzerSettings) -> AnalyzerShare {
        AnalyzerShare {
            turn: Arc::new(Semaphore::new(1)),
            callers: Callers::default(),
            share: settings.api_share.clamp(0.001, 1.0),
            wait: Duration::from_millis(settings.api_wait_ms),
        }
    }

    /// Analyses `texts` (their language detected) for `caller` on `pool` within the share
    /// (see the module documentation).
    pub async fn analyze(
        &self,
        pool: &Supervised<AnalyzerWorker>,
        route: &AdaptiveRoute,
        caller: &str,
        texts: Vec<String>,
    ) -> Result<AnalyzedTexts, ShareError> {
        let untagged = texts.into_iter().map(|t| (t, None)).collect();
        self.analyze_tagged(pool, route, caller, untagged).await
    }

    /// Analyses texts, each with the language its caller gave (detected where none), for
    /// `caller` on `pool` within the share.
    pub async fn analyze_tagged(
        &self,
        pool: &Supervised<AnalyzerWorker>,
        route: &AdaptiveRoute,
        caller: &str,
        texts: Vec<(String, Option<String>)>,
    ) -> Result<AnalyzedTexts, ShareError> {
        let Some(_slot) = self.callers.take(caller) else {
            return Err(ShareError::CallerBusy);
        };
        // Only the first turn is refused after the wait: a request under way is finished.
        let mut deadline = Some(Instant::now() + self.wait);
        let mut out: Option<AnalyzedTexts> = None;
        for chunk in texts.chunks(CHUNK_TEXTS) {
            // Taken again for every chunk (the semaphore serves its waiters in order), so the
            // callers that asked while this request ran take their turns between its chunks;
            // it comes after the rest the previous chunk, whoever's, owes.
            let asked = self.turn.clone().acquire_owned();
            let turn = match deadline.take() {
                Some(deadline) => tokio::time::timeout_at(deadline, asked)
                    .await
                    .map_err(|_| ShareError::Busy)?,
                None => asked.await,
            }
            .map_err(|_| ShareError::Unavailable)?;
            let patience = Instant::now() + self.wait;
            while route.behind(BEHIND_AFTER) {
                if Instant::now() >= patience {
                    return Err(ShareError::Busy);
                }
                tokio::time::sleep(YIELD_POLL).await;
            }
            // A task of its own, so that a caller who goes away (its connection closed, its
            // handler dropped) still leaves the turn held through the rest its chunk owes,
            // which the worker runs to its end regardless.
            let (addr, chunk, share) = (pool.addr(), chunk.to_vec(), self.share);
            let reply = tokio::spawn(async move {
                let started = Instant::now();
                let reply = addr.send(AnalyzeTexts(chunk)).await;
                // Served by whoever takes the turn next, without keeping this caller.
                hold(turn, rest_after(share, started.elapsed()));
                reply
            })
            .await;
            let reply = match reply {
                Ok(Ok(Ok(reply))) => reply,
                Ok(Ok(Err(e))) => return Err(ShareError::Failed(e)),
                Ok(Err(_)) | Err(_) => return Err(ShareError::Unavailable),
            };
            match &mut out {
                None => out = Some(reply),
                Some(all) => {
                    all.analyses.extend(reply.analyses);
                    all.thresholds_each.extend(reply.thresholds_each);
                }
            }
        }
        out.ok_or(ShareError::Failed(AnalyzeError("no texts".into())))
    }
}

/// What a chunk that took `took` of a worker owes before the next may start, at `share`.
fn rest_after(share: f64, took: Duration) -> Duration {
    took.mul_f64(1.0 / share - 1.0)
}

/// Gives the turn back after `rest`, without keeping the caller waiting for it.
fn hold(turn: OwnedSemaphorePermit, rest: Duration) {
    if rest.is_zero() {
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep(rest).await;
        drop(turn);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::SyncArbiter;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_process_holds_at_most_its_places_and_a_caller_one() {
        let callers = Callers::default();
        let first = callers.take_within("a", 2).unwrap();
        assert_eq!(callers.take_within("a", 2).err(), Some(NoPlace::Caller));
        let second = callers.take_within("b", 2).unwrap();
        assert_eq!(callers.take_within("c", 2).err(), Some(NoPlace::Full));
        drop(first);
        let third = callers.take_within("c", 2).unwrap();
        drop((second, third));
        assert!(callers.take_within("a", 0).is_ok(), "one place at least");
    }

    fn settings(share: f64, wait_ms: u64) -> AnalyzerSettings {
        AnalyzerSettings {
            api_share: share,
            api_wait_ms: wait_ms,
            ..AnalyzerSettings::default()
        }
    }

    fn lexicon_pool() -> Supervised<AnalyzerWorker> {
        let settings = Arc::new(AnalyzerSettings::default());
        Supervised::start("test analyzer", move || {
            let settings = settings.clone();
            SyncArbiter::start(1, move || {
                AnalyzerWorker::new(crate::analysis::Backend::Lexicon, settings.clone())
            })
        })
    }

    #[actix_rt::test]
    async fn texts_come_back_whole_and_in_order_across_chunks() {
        let share = AnalyzerShare::new(&settings(1.0, 1_000));
        let route = AdaptiveRoute::new(&AnalyzerSettings::default(), false);
        let texts: Vec<String> = (0..(CHUNK_TEXTS * 2 + 3))
            .map(|i| {
                if i % 2 == 0 {
                    "I love it".into()
                } else {
                    "I hate this, awful".into()
                }
            })
            .collect();
        let out = share
            .analyze(&lexicon_pool(), &route, "a", texts.clone())
            .await
            .unwrap();
        assert_eq!(out.analyses.len(), texts.len());
        assert_eq!(out.thresholds_each.len(), texts.len());
        for (i, a) in out.analyses.iter().enumerate() {
            let positive = a.sentiment_score.get() > 0.0;
            assert_eq!(positive, i % 2 == 0, "text {i}");
        }
    }

    #[actix_rt::test]
    async fn nothing_runs_while_the_pipeline_is_behind() {
        let share = AnalyzerShare::new(&settings(1.0, 100));
        let route = AdaptiveRoute::new(&AnalyzerSettings::default(), false);
        route.observe(30.0);
        let refused = share
            .analyze(&lexicon_pool(), &route, "a", vec!["hello".into()])
            .await;
        assert!(matches!(refused, Err(ShareError::Busy)), "{refused:?}");
        route.observe(0.01);
        assert!(share
            .analyze(&lexicon_pool(), &route, "a", vec!["hello".into()])
            .await
            .is_ok());
    }

    #[actix_rt::test]
    async fn a_second_request_waits_for_the_first_and_its_rest() {
        // A share this small makes the first request's rest far longer than the wait.
        let share = AnalyzerShare::new(&settings(0.001, 50));
        let route = AdaptiveRoute::new(&AnalyzerSettings::default(), false);
        let pool = lexicon_pool();
        let long: Vec<String> = (0..CHUNK_TEXTS).map(|_| "word ".repeat(2_000)).collect();
        share.analyze(&pool, &route, "a", long).await.unwrap();
        let refused = share.analyze(&pool, &route, "b", vec!["hi".into()]).await;
        assert!(matches!(refused, Err(ShareError::Busy)), "{refused:?}");
    }

    #[actix_rt::test]
    async fn a_request_given_up_during_its_chunk_still_owes_its_rest() {
        let share = AnalyzerShare::new(&settings(0.001, 50));
        let route = AdaptiveRoute::new(&AnalyzerSettings::default(), false);
        let pool = lexicon_pool();
        let long: Vec<String> = (0..CHUNK_TEXTS).map(|_| "word ".repeat(2_000)).collect();
        // Given up (as a closed connection drops its handler) once its chunk is sent.
        let mut given_up = Box::pin(share.analyze(&pool, &route, "a", long));
        assert!(futures::poll!(&mut given_up).is_pending());
        drop(given_up);
        let refused = share.analyze(&pool, &route, "b", vec!["hi".into()]).await;
        assert!(matches!(refused, Err(ShareError::Busy)), "{refused:?}");
    }

    #[actix_rt::test]
    async fn a_long_request_takes_turns_with_the_requests_behind_it() {
        // Nothing is refused, however slow the machine: a minute's wait.
        let share = AnalyzerShare::new(&settings(1.0, 60_000));
        let route = AdaptiveRoute::new(&AnalyzerSettings::default(), false);
        let pool = lexicon_pool();
        let long: Vec<String> = (0..CHUNK_TEXTS * 3)
            .map(|_| "word ".repeat(4_000))
            .collect();
        let finished = AtomicUsize::new(0);
        let done = || finished.fetch_add(1, Ordering::SeqCst);
        let ((long_answer, long_rank), (short_answer, short_rank)) = futures::join!(
            async { (share.analyze(&pool, &route, "a", long).await, done()) },
            async {
                tokio::task::yield_now().await;
                let answer = share.analyze(&pool, &route, "b", vec!["hi".into()]).await;
                (answer, done())
            },
        );
        assert!(long_answer.is_ok(), "{long_answer:?}");
        assert_eq!(short_answer.unwrap().analyses.len(), 1);
        // One text, asked during the first of three chunks, is answered before the last: it
        // waited for one chunk, not for the whole request.
        assert_eq!((short_rank, long_rank), (0, 1));
    }

    #[actix_rt::test]
    async fn a_caller_has_one_request_at_a_time() {
        // Another caller waits for the first request, however slow the machine: a minute.
        let share = Arc::new(AnalyzerShare::new(&settings(1.0, 60_000)));
        let route = Arc::new(AdaptiveRoute::new(&AnalyzerSettings::default(), false));
        let pool = lexicon_pool();
        let long: Vec<String> = (0..CHUNK_TEXTS * 2)
            .map(|_| "word ".repeat(4_000))
            .collect();
        let (first, second, other) = futures::join!(
            share.analyze(&pool, &route, "a", long.clone()),
            async {
                tokio::task::yield_now().await;
                share.analyze(&pool, &route, "a", vec!["hi".into()]).await
            },
            async {
                tokio::task::yield_now().await;
                share.analyze(&pool, &route, "b", vec!["hi".into()]).await
            },
        );
        assert!(first.is_ok());
        assert!(matches!(second, Err(ShareError::CallerBusy)), "{second:?}");
        assert!(other.is_ok(), "{other:?}");
        // Once its request is answered, the caller may ask again.
        assert!(share
            .analyze(&pool, &route, "a", vec!["hi".into()])
            .await
            .is_ok());
    }
}
