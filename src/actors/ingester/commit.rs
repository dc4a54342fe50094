//! Committing a batch: analysis, storage, dead letters, then the acknowledgement, retried
//! while a stage is unavailable and split when a stage refuses it.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fred::prelude::*;

use super::turns::MAX_TURN_WAIT;
use super::{backoff, traced, IngestContext};
use crate::actors::analyzer::adaptive::Route;
use crate::actors::analyzer::AnalyzerWorker;
use crate::actors::messages::{
    oldest_age_secs, AnalyzeBatch, AnalyzeError, AnalyzedBatch, Committed, RawEntry, RejectReason,
    Rejected, StoreError, StoreOutcome, StoryChanges,
};
use crate::actors::supervisor::Supervised;
use crate::streams::group::{self, DeadLetter};
use crate::telemetry::causes::causes;
use crate::telemetry::names;
use crate::telemetry::traces::BatchTrace;

/// The spans of a batch's sampled posts, when traces are on.
type Trace = Option<Arc<BatchTrace>>;

/// Commits a batch read from the stream.
///
/// An entry delivered more than `ingest.max_deliveries` times was in a batch whose process
/// died before committing it, again and again. That may be the entry's fault or not (a
/// process in a crash loop takes good entries down with it), so it is tried once more on
/// its own, with the trial recorded in Redis first: only an entry whose lone trials were cut
/// short [`MAX_TRIALS`] times, so that it took its process down alone, is dead-lettered.
///
/// `turn` is the batch's number in read order, its turn at the story desk.
pub(super) async fn commit_entries(
    ctx: Arc<IngestContext>,
    entries: Vec<RawEntry>,
    trace: Trace,
    turn: u64,
) {
    let max = ctx.settings.ingest.max_deliveries;
    let (fresh, worn_out): (Vec<RawEntry>, Vec<RawEntry>) =
        entries.into_iter().partition(|e| e.deliveries <= max);
    let mut rejected = Vec::new();
    for entry in worn_out {
        let trials = group::count_trial(&ctx.redis, ctx.stream(), &entry.id, TRIAL_TTL_SECS).await;
        match trials {
            Ok(n) if n > MAX_TRIALS => {
                let reason = RejectReason::TooManyDeliveries(entry.deliveries);
                rejected.push(Rejected { entry, reason });
            }
            _ => {
                tracing::info!(entry = %entry.id, deliveries = entry.deliveries, "trying an often redelivered entry on its own");
                metrics::counter!(names::ENTRY_TRIALS).increment(1);
                let id = entry.id.clone();
                let lone = vec![entry];
                let (lone_ctx, trace) = (ctx.clone(), trace.clone());
                commit_batch(lone_ctx, lone, Vec::new(), trace, turn, false, None).await;
                group::forget_trials(&ctx.redis, ctx.stream(), &id).await;
            }
        }
    }
    commit_batch(ctx, fresh, rejected, trace, turn, false, None).await;
}

/// Lone trials of an often redelivered entry that may be cut short before it is dead-lettered.
pub const MAX_TRIALS: i64 = 2;
/// How long a trial is remembered, in seconds.
const TRIAL_TTL_SECS: i64 = 86_400;

/// Analyses, stores, dead-letters and acknowledges `entries` with `rejected`, retrying while
/// stages are unavailable and splitting batches a stage refuses.
///
/// A failed analysis is tried once more, unless `retried_analysis` says the batch this one
/// was split from had that retry already. Each try after an analyzer panic rebuilds the
/// backend (with the model, reloading its sessions), so a poison entry must not earn a retry
/// at every level of the split: the split is what isolates it, and a transient fault had its
/// second chance on the whole batch.
///
/// A write PostgreSQL fails [`SUSPECT_TRIES`] times in a row with an error that may be the
/// data's or the database's ([`StoreError::Suspect`]) is split like a refused one. An entry
/// alone is dead-lettered only when another batch committed since the failures began, which
/// the database's own fault would not let happen; without one it goes back to `suspects`,
/// the batch it was split from, which tries such entries again once its other halves had
/// their chance to commit, and splits no more while nothing commits (the database's own fault:
/// a batch waits as it does while PostgreSQL is down).
fn commit_batch(
    ctx: Arc<IngestContext>,
    entries: Vec<RawEntry>,
    mut rejected: Vec<Rejected>,
    trace: Trace,
    turn: u64,
    mut retried_analysis: bool,
    suspects: Option<Suspects>,
) -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(async move {
        let mut entries = Arc::new(entries);
        let mut attempt = 0u32;
        let mut suspect = SuspectState::default();
        loop {
            if ctx.abandoned() {
                return;
            }
            let outcome = if entries.is_empty() {
                Attempt::Done(Arc::default(), StoreOutcome::default())
            } else {
                try_once(&ctx, entries.clone(), trace.as_deref(), turn).await
            };
            match outcome {
                Attempt::Done(batch, outcome) => {
                    let done = Stored {
                        entries: &entries,
                        worn_out: rejected,
                        batch,
                        outcome,
                    };
                    acknowledge_stored(&ctx, done, trace, turn, &mut attempt).await;
                    return;
                }
                // A panicking backend was rebuilt; a transient fault passes on a second try,
                // a poison entry fails again and is isolated below.
                Attempt::Refused(RejectReason::Analysis(reason)) if !retried_analysis => {
                    tracing::warn!(%reason, entries = entries.len(), "analysis failed; retrying once");
                    metrics::counter!(names::BATCH_RETRIES, "stage" => "analyzer").increment(1);
                    retried_analysis = true;
                }
                Attempt::Refused(reason) if entries.len() > 1 => {
                    tracing::info!(%reason, entries = entries.len(), "batch refused; splitting it");
                    let halves = Halves {
                        turn,
                        retried_analysis,
                        suspects: suspects.clone(),
                    };
                    halves
                        .commit(&ctx, std::mem::take(&mut entries), &trace)
                        .await;
                    if !rejected.is_empty() {
                        commit_entries_rejected(&ctx, rejected, trace.as_deref()).await;
                    }
                    return;
                }
                Attempt::Refused(reason) => {
                    let entry = entries[0].clone();
                    rejected.push(Rejected { entry, reason });
                    commit_entries_rejected(&ctx, rejected, trace.as_deref()).await;
                    return;
                }
                Attempt::Unavailable(stage) => retry_pause(&ctx, &mut attempt, stage).await,
                Attempt::Suspect(reason) => {
                    pulse_core::warn_repeated!(%reason, entries = entries.len(), "store failed a batch");
                    let since = *suspect.since.get_or_insert(ctx.store.commits());
                    suspect.tries += 1;
                    let vouched = ctx.store.commits() > since;
                    if suspect.tries < SUSPECT_TRIES
                        || (suspects.is_none() && suspect.split && !vouched)
                    {
                        retry_pause(&ctx, &mut attempt, "store").await;
                        continue;
                    }
                    if entries.len() == 1 {
                        if vouched {
                            let entry = entries[0].clone();
                            let reason = RejectReason::Storage(reason);
                            rejected.push(Rejected { entry, reason });
                            commit_entries_rejected(&ctx, rejected, trace.as_deref()).await;
                            return;
                        }
                        if let Some(suspects) = &suspects {
                            suspects.borrow_mut().push(entries[0].clone());
                            if !rejected.is_empty() {
                                commit_entries_rejected(&ctx, rejected, trace.as_deref()).await;
                            }
                            return;
                        }
                        retry_pause(&ctx, &mut attempt, "store").await;
                        continue;
                    }
                    tracing::info!(%reason, entries = entries.len(), "batch failed alike; splitting it");
                    let own = suspects.clone().unwrap_or_default();
                    let halves = Halves {
                        turn,
                        retried_analysis,
                        suspects: Some(own.clone()),
                    };
                    halves
                        .commit(&ctx, std::mem::take(&mut entries), &trace)
                        .await;
                    if !rejected.is_empty() {
                        let done = std::mem::take(&mut rejected);
                        commit_entries_rejected(&ctx, done, trace.as_deref()).await;
                    }
                    if suspects.is_some() {
                        return;
                    }
                    let left = std::mem::take(&mut *own.borrow_mut());
                    if left.is_empty() {
                        return;
                    }
                    // Tried again as one batch, keeping when the failures began: a half that
                    // committed since vouches for the database, and each entry failing again
                    // is then dead-lettered.
                    entries = Arc::new(left);
                    suspect.tries = 0;
                    suspect.split = true;
                }
            }
        }
    })
}

/// How many times in a row a write may fail with [`StoreError::Suspect`] before its batch is
/// split: a fault of the database's that passes (a plan invalidated by a migration) passes on
/// a retry, a datum PostgreSQL's own checks refuse does not.
pub const SUSPECT_TRIES: u32 = 3;

/// Entries a split batch's parts handed back: each failed alone with no commit since to tell
/// whether the fault was its own.
type Suspects = Rc<RefCell<Vec<RawEntry>>>;

/// A batch's failures of [`StoreError::Suspect`].
#[derive(Default)]
struct SuspectState {
    /// The store's commits when they began.
    since: Option<u64>,
    /// In a row, since the last split.
    tries: u32,
    /// Whether the batch was split once already.
    split: bool,
}

/// How the halves of a split batch are committed, one after the other.
struct Halves {
    turn: u64,
    retried_analysis: bool,
    suspects: Option<Suspects>,
}

impl Halves {
    async fn commit(self, ctx: &Arc<IngestContext>, entries: Arc<Vec<RawEntry>>, trace: &Trace) {
        let mut left = Arc::unwrap_or_clone(entries);
        let right = left.split_off(left.len() / 2);
        for half in [left, right] {
            let (ctx, trace) = (ctx.clone(), trace.clone());
            let suspects = self.suspects.clone();
            commit_batch(
                ctx,
                half,
                Vec::new(),
                trace,
                self.turn,
                self.retried_analysis,
                suspects,
            )
            .await;
        }
    }
}

/// A batch the store committed, with the entries to dead-letter beside it.
struct Stored<'a> {
    entries: &'a [RawEntry],
    /// Worn-out entries, not in `entries`, to dead-letter with those the analyzer rejected.
    worn_out: Vec<Rejected>,
    batch: Arc<AnalyzedBatch>,
    outcome: StoreOutcome,
}

/// Dead-letters and acknowledges a stored batch, then publishes what the store wrote.
///
/// Only this step is retried while Redis fails: the batch is not analysed and stored again,
/// since a second store finds everything written already and reports nothing new, and the
/// live stages (sockets, trending, alerts, virality) would never hear of the batch's posts
/// and deletions. A batch abandoned before its acknowledgement went through is not
/// published; its entries stay pending for another consumer.
async fn acknowledge_stored(
    ctx: &IngestContext,
    stored: Stored<'_>,
    trace: Trace,
    turn: u64,
    attempt: &mut u32,
) {
    let Stored {
        entries,
        worn_out,
        batch,
        outcome,
    } = stored;
    let ids: Vec<&str> = entries
        .iter()
        .chain(worn_out.iter().map(|r| &r.entry))
        .map(|e| e.id.as_str())
        .collect();
    let mut dead = worn_out.clone();
    dead.extend(batch.rejected.iter().cloned());
    while let Err(e) = finish(ctx, &dead, &ids, trace.as_deref()).await {
        pulse_core::warn_repeated!(error = %causes(&e), "dead-lettering or acknowledging failed; retrying");
        retry_pause(ctx, attempt, "ack").await;
        if ctx.abandoned() {
            return;
        }
    }
    record_latency(ctx, entries);
    ctx.publish(Committed {
        batch,
        outcome: Arc::new(outcome),
        stories: story_changes(ctx, turn),
        acked_at_ms: chrono::Utc::now().timestamp_millis(),
        trace,
    });
}

/// Dead-letters and acknowledges entries that were already rejected.
async fn commit_entries_rejected(
    ctx: &IngestContext,
    rejected: Vec<Rejected>,
    trace: Option<&BatchTrace>,
) {
    let mut attempt = 0u32;
    let ids: Vec<String> = rejected.iter().map(|r| r.entry.id.clone()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    while !ctx.abandoned() {
        match finish(ctx, &rejected, &ids, trace).await {
            Ok(()) => return,
            Err(e) => {
                pulse_core::warn_repeated!(error = %causes(&e), "dead-lettering failed; retrying");
                retry_pause(ctx, &mut attempt, "ack").await;
            }
        }
    }
}

enum Attempt {
    /// Committed; the batch still carries the entries the analyzer rejected, to dead-letter.
    Done(Arc<AnalyzedBatch>, StoreOutcome),
    Refused(RejectReason),
    Unavailable(&'static str),
    Suspect(String),
}

/// The pool for a batch: the model, or the lexicon while entries arrive too old.
fn pool_for<'a>(ctx: &'a IngestContext, entries: &[RawEntry]) -> &'a Supervised<AnalyzerWorker> {
    let Some(age) = oldest_age_secs(entries) else {
        return &ctx.analyzer;
    };
    metrics::histogram!(names::INGEST_ENTRY_AGE_SECONDS).record(age);
    ctx.route.observe(age);
    let Some(fallback) = &ctx.fallback else {
        return &ctx.analyzer;
    };
    match ctx.route.route(age) {
        Route::Model => &ctx.analyzer,
        Route::Lexicon => fallback,
    }
}

/// Analyses a batch in the pool `pool_for` picks; a batch the model hands back because it
/// waited too long in its queue goes to the lexicon, and the route switches with it.
async fn analyze(
    ctx: &IngestContext,
    entries: &Arc<Vec<RawEntry>>,
) -> Result<Result<AnalyzedBatch, AnalyzeError>, &'static str> {
    let pool = pool_for(ctx, entries);
    let on_model = std::ptr::eq(pool, &ctx.analyzer);
    let hand_back_after_secs = if on_model {
        ctx.fallback.as_ref().and(ctx.route.fallback_after_secs())
    } else {
        None
    };
    let msg = AnalyzeBatch {
        entries: entries.clone(),
        hand_back_after_secs,
    };
    match pool.addr().send(msg).await {
        Ok(Ok(Some(batch))) => return Ok(Ok(batch)),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => return Ok(Err(e)),
        Err(_) => return Err("analyzer"),
    }
    let Some(fallback) = &ctx.fallback else {
        return Err("analyzer");
    };
    metrics::counter!(names::ANALYZER_HANDED_BACK).increment(1);
    if let Some(age) = oldest_age_secs(entries) {
        ctx.route.route(age);
    }
    let msg = AnalyzeBatch {
        entries: entries.clone(),
        hand_back_after_secs: None,
    };
    match fallback.addr().send(msg).await {
        Ok(Ok(Some(batch))) => Ok(Ok(batch)),
        Ok(Ok(None)) => Err("analyzer"),
        Ok(Err(e)) => Ok(Err(e)),
        Err(_) => Err("analyzer"),
    }
}

async fn try_once(
    ctx: &IngestContext,
    entries: Arc<Vec<RawEntry>>,
    trace: Option<&BatchTrace>,
    turn: u64,
) -> Attempt {
    let started = SystemTime::now();
    let analyzed = analyze(ctx, &entries).await;
    traced::analysis(trace, &entries, &analyzed, started);
    let analyzed = match analyzed {
        Ok(Ok(batch)) => Arc::new(place_in_stories(ctx, batch, turn).await),
        Ok(Err(e)) => return Attempt::Refused(RejectReason::Analysis(e.0)),
        Err(stage) => return Attempt::Unavailable(stage),
    };
    let started = SystemTime::now();
    let stored = ctx.store.store(&analyzed).await;
    traced::store(trace, &entries, &analyzed, &stored, started);
    if let (Some(desk), Ok(outcome)) = (&ctx.stories, &stored) {
        // Counted as soon as the store commits, whether or not the acknowledgement goes
        // through: the posts are written, and whoever stores them again (the entries
        // redelivered after an abandoned batch) finds none of them new.
        desk.stored(&analyzed.posts, &outcome.inserted_posts, turn);
    }
    match stored {
        Ok(outcome) => Attempt::Done(analyzed, outcome),
        Err(StoreError::Refused(reason)) => Attempt::Refused(RejectReason::Storage(reason)),
        Err(StoreError::Unavailable(reason)) => {
            pulse_core::warn_repeated!(%reason, "store unavailable");
            Attempt::Unavailable("store")
        }
        Err(StoreError::Suspect(reason)) => Attempt::Suspect(reason),
    }
}

/// Places the batch's posts in stories on a blocking thread (a batch takes milliseconds, which
/// the event loop must not wait out), once the batches read before it were placed (see
/// `turns`). Placing again a post placed by an earlier try answers its story unchanged; what
/// the earlier try changed waits at the desk until this batch's turn, or a later one, commits.
async fn place_in_stories(
    ctx: &IngestContext,
    mut batch: AnalyzedBatch,
    turn: u64,
) -> AnalyzedBatch {
    let Some(desk) = ctx.stories.clone() else {
        return batch;
    };
    // A batch of engagements or deletions only has nothing to place: it waits for no one.
    if batch.posts.is_empty() {
        ctx.story_turns.pass(turn);
        return batch;
    }
    let in_turn = ctx.story_turns.wait(turn, MAX_TURN_WAIT).await;
    let outcome = if in_turn { "in_turn" } else { "timed_out" };
    metrics::counter!(names::STORY_TURNS, "outcome" => outcome).increment(1);
    let posts = std::mem::take(&mut batch.posts);
    let placed = tokio::task::spawn_blocking(move || {
        let mut posts = posts;
        // A fault in story detection must not lose the posts: they are stored in no story.
        let placed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            desk.place(&mut posts, turn)
        }));
        (posts, placed)
    })
    .await
    .expect("the placement task catches its panics");
    let (posts, placed) = placed;
    ctx.story_turns.pass(turn);
    batch.posts = posts;
    if placed.is_err() {
        metrics::counter!(names::STORY_ERRORS, "operation" => "place").increment(1);
        tracing::error!("placing posts in stories panicked; the batch is stored without stories");
        for post in &mut batch.posts {
            post.story_id = None;
        }
    }
    batch
}

/// What the batches placed up to turn `turn` changed in the stories, for the batch of that
/// turn that just committed to carry out (none when nothing changed). It is taken at the
/// commit, not at the placement: a try that failed, or a half of a split batch, leaves its
/// changes at the desk for the try or the half that commits.
fn story_changes(ctx: &IngestContext, turn: u64) -> Option<Arc<StoryChanges>> {
    let changes = ctx.stories.as_ref()?.take_unpublished(turn);
    (!changes.write.is_empty()).then(|| Arc::new(changes))
}

async fn retry_pause(ctx: &IngestContext, attempt: &mut u32, stage: &'static str) {
    *attempt += 1;
    metrics::counter!(names::BATCH_RETRIES, "stage" => stage).increment(1);
    let pause = backoff(*attempt);
    let deadline = Instant::now() + pause;
    while Instant::now() < deadline && !ctx.abandoned() {
        tokio::time::sleep(Duration::from_millis(50).min(pause)).await;
    }
}

/// Writes dead letters and acknowledges every id, in one step Redis applies whole (see
/// [`group::dead_letter_and_ack`]): a retry after a reply that was lost writes no letter twice.
async fn finish(
    ctx: &IngestContext,
    rejected: &[Rejected],
    ids: &[&str],
    trace: Option<&BatchTrace>,
) -> Result<(), Error> {
    let started = SystemTime::now();
    let finished = dead_letter_and_ack(ctx, rejected, ids).await;
    traced::finish(trace, rejected, ids, finished.is_ok(), started);
    finished
}

async fn dead_letter_and_ack(
    ctx: &IngestContext,
    rejected: &[Rejected],
    ids: &[&str],
) -> Result<(), Error> {
    let letters: Vec<DeadLetter> = rejected
        .iter()
        .map(|r| DeadLetter {
            entry: &r.entry,
            reason: r.reason.to_string(),
            class: r.reason.class(),
        })
        .collect();
    let dead = ctx.settings.dead_letter_stream();
    let cap = ctx.settings.redis.dead_letter_max_len;
    let written =
        group::dead_letter_and_ack(&ctx.redis, ctx.member(), &dead, cap, &letters, ids).await?;
    #[cfg(feature = "fault-injection")]
    if !letters.is_empty() && ctx.lose_dead_letter_reply.swap(false, Ordering::AcqRel) {
        return Err(Error::new(
            ErrorKind::IO,
            "injected fault: the reply to dead-lettering was lost",
        ));
    }
    for (r, written) in rejected.iter().zip(written) {
        if written {
            tracing::warn!(entry = %r.entry.id, reason = %r.reason, "entry dead-lettered");
            metrics::counter!(names::DEAD_LETTERS, "reason" => r.reason.class()).increment(1);
        } else {
            tracing::info!(entry = %r.entry.id, reason = %r.reason, "entry no longer pending (dead-lettered by an earlier try, or finished by another consumer); no second letter written");
        }
    }
    if !ids.is_empty() {
        metrics::counter!(names::ENTRIES_ACKED).increment(ids.len() as u64);
    }
    Ok(())
}

fn record_latency(ctx: &IngestContext, entries: &[RawEntry]) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    ctx.waits.committed(entries, now_ms);
    let histogram = metrics::histogram!(names::PIPELINE_LATENCY_SECONDS);
    for entry in entries {
        if let Some(added) = entry.arrived_at_ms() {
            histogram.record((now_ms - added).max(0) as f64 / 1000.0);
        }
    }
}
