//! The ingester: reads the stream through the consumer group, within a credit limit, and
//! acknowledges each entry only after what it produced is committed.
//!
//! - Reads use a dedicated Redis connection (a blocking XREADGROUP must not delay others).
//! - Credits: at most `max_in_flight` entries are read and not yet acknowledged; a new read
//!   asks only for as many entries as there are free credits.
//! - Batch slots: at most `max_batches_in_flight` batches are in flight. When every slot is
//!   busy the reader waits, and what arrives meanwhile is read as one bigger batch. Without
//!   this, a backlog under a steady feed was read in slivers as credits trickled back (each
//!   finished batch of a few entries freed room for another of a few), thousands of tiny
//!   batches each paid a full statement and its rollup upserts, and throughput stayed at a
//!   fraction of what large batches reach.
//! - On start it first re-reads this consumer's own pending entries (id `0`), then new ones.
//! - At start and every `claim_interval_ms` it XAUTOCLAIMs entries idle on other consumers
//!   (a dead process) and dead-letters those delivered more than `max_deliveries` times.
//! - Every quarter of `claim_idle_ms` it resets the idle time of the entries it still holds
//!   (XCLAIM JUSTID, which leaves their delivery count alone), so a batch that is slow or
//!   retrying through an outage is never taken for abandoned: only a process that stopped
//!   working (killed, frozen, cut off from Redis) has its entries claimed, and an entry's
//!   delivery count counts real redeliveries.
//! - Entries that cannot be decoded, analysed or stored go to `<stream>:dead` with their
//!   reason and original fields, then are acknowledged. Failing batches are split in halves so
//!   one bad entry never holds back its neighbours.
//!
//! Reading is in `read`, committing (analysis, storage, dead letters, acknowledgement) in
//! `commit` (what it records in traces in `traced`), credits and batch slots in `lease`, and
//! keeping held entries alive and claiming abandoned ones in `claim`.

mod claim;
mod commit;
mod lease;
mod read;
mod traced;
mod turns;
pub mod waits;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, ResponseFuture, WrapFuture,
};
use fred::prelude::*;
use tokio::sync::Semaphore;

pub use self::commit::MAX_TRIALS;
use super::analyzer::AnalyzerWorker;
use super::messages::{Committed, CommittedSink, Drain, DrainReport, RawEntry};
use super::store::Store;
use super::supervisor::Supervised;
use crate::actors::analyzer::adaptive::AdaptiveRoute;
use crate::config::Settings;
use crate::streams::group::Member;
use crate::telemetry::traces::Traces;

/// Longest pause between retries of a batch whose stage is unavailable.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);
/// First pause between retries.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);
/// Most claim pages taken in one claim round, so claiming cannot starve new entries.
const MAX_CLAIM_PAGES: usize = 20;

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const ABANDONED: u8 = 2;

/// State shared by every incarnation of the ingester (it survives a restart).
pub struct IngestContext {
    pub settings: Arc<Settings>,
    /// Spans of each sampled post's path (off unless configured).
    pub traces: Traces,
    pub consumer: String,
    /// Dedicated connection for reads.
    pub reader: Client,
    /// Shared connection for acknowledgements, dead letters and claims.
    pub redis: Client,
    pub analyzer: Supervised<AnalyzerWorker>,
    /// The lexicon pool that takes new posts while the model is behind, if any.
    pub fallback: Option<Supervised<AnalyzerWorker>>,
    /// Which of the two pools gets the next batch.
    pub route: AdaptiveRoute,
    /// What `POST /api/v1/analyze` may take of the analyzer.
    pub api_share: crate::actors::analyzer::share::AnalyzerShare,
    pub store: Arc<Store>,
    /// Places posts in stories before they are stored (off when `stories.enabled` is false).
    pub stories: Option<Arc<crate::actors::stories::StoryDesk>>,
    /// How long each producer's entries waited to be committed here.
    pub waits: waits::ProducerWaits,
    credits: Arc<Semaphore>,
    batch_slots: Arc<Semaphore>,
    in_flight: AtomicUsize,
    batches_in_flight: AtomicUsize,
    /// Ids of the entries being processed here, by batch: what the heartbeat keeps fresh.
    held: Mutex<HashMap<u64, Arc<[String]>>>,
    next_batch: AtomicU64,
    /// Batches, by the number `next_batch` gave them, take their turn at the story desk in
    /// read order.
    story_turns: turns::Turns,
    subscribers: RwLock<Vec<Arc<dyn CommittedSink>>>,
    state: AtomicU8,
    /// Makes the next dead-lettering fail after Redis applied it, as a lost reply would.
    #[cfg(feature = "fault-injection")]
    lose_dead_letter_reply: std::sync::atomic::AtomicBool,
}

impl IngestContext {
    /// Context for a consumer named `consumer`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Arc<Settings>,
        traces: Traces,
        consumer: String,
        reader: Client,
        redis: Client,
        analyzer: Supervised<AnalyzerWorker>,
        fallback: Option<Supervised<AnalyzerWorker>>,
        store: Arc<Store>,
        stories: Option<Arc<crate::actors::stories::StoryDesk>>,
    ) -> Self {
        let credits = Arc::new(Semaphore::new(settings.ingest.max_in_flight.max(1)));
        let batch_slots = Arc::new(Semaphore::new(settings.ingest.max_batches_in_flight.max(1)));
        let route = AdaptiveRoute::new(&settings.analyzer, fallback.is_some());
        let api_share = crate::actors::analyzer::share::AnalyzerShare::new(&settings.analyzer);
        Self {
            settings,
            traces,
            consumer,
            reader,
            redis,
            analyzer,
            fallback,
            route,
            api_share,
            store,
            stories,
            waits: Default::default(),
            credits,
            batch_slots,
            in_flight: AtomicUsize::new(0),
            batches_in_flight: AtomicUsize::new(0),
            held: Mutex::new(HashMap::new()),
            next_batch: AtomicU64::new(0),
            story_turns: turns::Turns::default(),
            subscribers: RwLock::new(Vec::new()),
            state: AtomicU8::new(RUNNING),
            #[cfg(feature = "fault-injection")]
            lose_dead_letter_reply: Default::default(),
        }
    }

    /// Makes the next dead-lettering fail after Redis applied it, as a lost reply would.
    #[cfg(feature = "fault-injection")]
    pub fn lose_next_dead_letter_reply(&self) {
        self.lose_dead_letter_reply.store(true, Ordering::Release);
    }

    fn member(&self) -> Member<'_> {
        Member {
            stream: self.stream(),
            group: self.group(),
            consumer: &self.consumer,
        }
    }

    /// What one read may return of each entry.
    fn entry_limits(&self) -> crate::streams::bounded::EntryLimits {
        crate::streams::bounded::EntryLimits {
            bytes: self.settings.ingest.max_entry_bytes,
            fields: self.settings.ingest.max_entry_fields,
        }
    }

    fn stream(&self) -> &str {
        &self.settings.redis.stream
    }

    fn group(&self) -> &str {
        &self.settings.redis.group
    }

    fn running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    fn abandoned(&self) -> bool {
        self.state.load(Ordering::Acquire) == ABANDONED
    }

    /// Registers a stage that receives every committed batch.
    pub fn subscribe(&self, recipient: Recipient<Committed>) {
        self.subscribe_sink(Arc::new(recipient));
    }

    /// Registers a stage that receives every committed batch through a hand-off of its own.
    pub fn subscribe_sink(&self, sink: Arc<dyn CommittedSink>) {
        self.subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(sink);
    }

    fn publish(&self, committed: Committed) {
        let subscribers = self.subscribers.read().unwrap_or_else(|p| p.into_inner());
        for s in subscribers.iter() {
            s.take(committed.clone());
        }
    }

    /// Tells every subscriber of posts that upkeep marked deleted (deletions that raced
    /// their post), as a committed batch that holds nothing else: the stages take a deleted
    /// post out of what they show the same way whichever path deleted it.
    pub fn publish_deleted(&self, deleted: Vec<crate::models::deletion::DeletedPost>) {
        if deleted.is_empty() {
            return;
        }
        let outcome = super::messages::StoreOutcome {
            deleted_posts: deleted.iter().map(|p| p.id.clone()).collect(),
            deleted,
            ..Default::default()
        };
        self.publish(Committed {
            batch: Default::default(),
            outcome: std::sync::Arc::new(outcome),
            stories: None,
            acked_at_ms: chrono::Utc::now().timestamp_millis(),
            trace: None,
        });
    }

    /// Entries read and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the pipeline of `ingest` (none in a process without one) has entries in flight:
    /// the work that gives way to it (re-tagging, indexing, exports) rests only then.
    pub fn busy(ingest: Option<&Arc<IngestContext>>) -> bool {
        ingest.is_some_and(|i| i.in_flight() > 0)
    }

    /// The rest after a piece of such work that took `took`: while the pipeline of `ingest` is
    /// busy, enough for the work to take `share` of the time; none while it is idle.
    pub fn rest_after(ingest: Option<&Arc<IngestContext>>, took: Duration, share: f64) -> Duration {
        if Self::busy(ingest) {
            Self::rest_while_busy(took, share)
        } else {
            Duration::ZERO
        }
    }

    /// The rest after a piece of work that took `took` while the pipeline is busy: enough for
    /// the work to take `share` of the time.
    pub fn rest_while_busy(took: Duration, share: f64) -> Duration {
        took.mul_f64(1.0 / share - 1.0)
    }

    /// Ids of every entry held here (read or claimed, not yet acknowledged).
    pub fn held_ids(&self) -> Vec<String> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.values().flat_map(|ids| ids.iter().cloned()).collect()
    }

    fn hold(&self, entries: &[RawEntry]) -> u64 {
        let batch = self.next_batch.fetch_add(1, Ordering::Relaxed);
        let ids: Arc<[String]> = entries.iter().map(|e| e.id.clone()).collect();
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(batch, ids);
        batch
    }

    fn release(&self, batch: u64) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&batch);
    }
}

/// The ingester actor. Its read loop runs inside the actor, so a crash of the actor stops
/// the loop and a restart starts a fresh one.
pub struct Ingester {
    ctx: Arc<IngestContext>,
}

impl Ingester {
    /// An ingester over the shared context.
    pub fn new(ctx: Arc<IngestContext>) -> Self {
        Self { ctx }
    }
}

impl Actor for Ingester {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let shared = self.ctx.clone();
        ctx.spawn(read::read_loop(shared).into_actor(self).map(|_, _, _| ()));
        let shared = self.ctx.clone();
        ctx.spawn(
            claim::heartbeat_loop(shared)
                .into_actor(self)
                .map(|_, _, _| ()),
        );
    }
}

impl Handler<Drain> for Ingester {
    type Result = ResponseFuture<DrainReport>;

    fn handle(&mut self, msg: Drain, _: &mut Self::Context) -> Self::Result {
        let shared = self.ctx.clone();
        Box::pin(async move {
            let _ = shared.state.compare_exchange(
                RUNNING,
                DRAINING,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            let all =
                u32::try_from(shared.settings.ingest.max_in_flight.max(1)).unwrap_or(u32::MAX);
            match tokio::time::timeout(msg.timeout, shared.credits.acquire_many(all)).await {
                Ok(Ok(permits)) => {
                    drop(permits);
                    DrainReport::Drained
                }
                _ => {
                    shared.state.store(ABANDONED, Ordering::Release);
                    DrainReport::TimedOut {
                        in_flight: shared.in_flight(),
                    }
                }
            }
        })
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<super::messages::InjectFault> for Ingester {
    type Result = ();

    fn handle(&mut self, _: super::messages::InjectFault, _: &mut Self::Context) {
        panic!("injected ingester fault");
    }
}

fn backoff(attempt: u32) -> Duration {
    crate::models::backoff::ceiling(
        FIRST_RETRY_DELAY,
        MAX_RETRY_DELAY,
        attempt.saturating_sub(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), FIRST_RETRY_DELAY);
        assert!(backoff(3) > backoff(2));
        assert_eq!(backoff(30), MAX_RETRY_DELAY);
    }
}
