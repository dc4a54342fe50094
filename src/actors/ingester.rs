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

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, ResponseFuture, WrapFuture,
};
use fred::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::adaptive::{AdaptiveRoute, Route};
use super::analyzer::AnalyzerWorker;
use super::messages::{
    AnalyzeBatch, AnalyzedBatch, Committed, Drain, DrainReport, RawEntry, RejectReason, Rejected,
    StoreBatch, StoreError, StoreOutcome,
};
use super::store::Store;
use super::supervisor::Supervised;
use crate::config::Settings;
use crate::telemetry::names;

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
    pub consumer: String,
    /// Dedicated connection for blocking reads.
    pub reader: Client,
    /// Shared connection for acknowledgements, dead letters and claims.
    pub redis: Client,
    pub analyzer: Supervised<AnalyzerWorker>,
    /// The lexicon pool that takes new posts while the model is behind, if any.
    pub fallback: Option<Supervised<AnalyzerWorker>>,
    /// Which of the two pools gets the next batch.
    pub route: AdaptiveRoute,
    pub store: Supervised<Store>,
    credits: Arc<Semaphore>,
    batch_slots: Arc<Semaphore>,
    in_flight: AtomicUsize,
    batches_in_flight: AtomicUsize,
    /// Ids of the entries being processed here, by batch: what the heartbeat keeps fresh.
    held: Mutex<HashMap<u64, Arc<[String]>>>,
    next_batch: AtomicU64,
    subscribers: RwLock<Vec<Recipient<Committed>>>,
    state: AtomicU8,
}

impl IngestContext {
    /// Context for a consumer named `consumer`.
    pub fn new(
        settings: Arc<Settings>,
        consumer: String,
        reader: Client,
        redis: Client,
        analyzer: Supervised<AnalyzerWorker>,
        fallback: Option<Supervised<AnalyzerWorker>>,
        store: Supervised<Store>,
    ) -> Self {
        let credits = Arc::new(Semaphore::new(settings.ingest.max_in_flight.max(1)));
        let batch_slots = Arc::new(Semaphore::new(settings.ingest.max_batches_in_flight.max(1)));
        let route = AdaptiveRoute::new(&settings.analyzer, fallback.is_some());
        Self {
            settings,
            consumer,
            reader,
            redis,
            analyzer,
            fallback,
            route,
            store,
            credits,
            batch_slots,
            in_flight: AtomicUsize::new(0),
            batches_in_flight: AtomicUsize::new(0),
            held: Mutex::new(HashMap::new()),
            next_batch: AtomicU64::new(0),
            subscribers: RwLock::new(Vec::new()),
            state: AtomicU8::new(RUNNING),
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
        self.subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(recipient);
    }

    fn publish(&self, committed: Committed) {
        let subscribers = self.subscribers.read().unwrap_or_else(|p| p.into_inner());
        for s in subscribers.iter() {
            s.do_send(committed.clone());
        }
    }

    /// Entries read and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
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
        ctx.spawn(read_loop(shared).into_actor(self).map(|_, _, _| ()));
        let shared = self.ctx.clone();
        ctx.spawn(heartbeat_loop(shared).into_actor(self).map(|_, _, _| ()));
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

/// Creates the consumer group (and the stream) if missing.
pub async fn ensure_group(redis: &Client, stream: &str, group: &str) -> Result<(), Error> {
    let created: Result<Value, Error> = redis.xgroup_create(stream, group, "0", true).await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

async fn read_loop(ctx: Arc<IngestContext>) {
    let mut failures = 0u32;
    while ctx.running() {
        match ensure_group(&ctx.redis, ctx.stream(), ctx.group()).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create the consumer group yet; retrying");
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
    tracing::info!(consumer = %ctx.consumer, stream = %ctx.stream(), group = %ctx.group(), "ingester reading");

    // Our own pending entries first: they were read by an earlier incarnation of this
    // consumer and never acknowledged.
    let mut own_pending_from: Option<String> = Some("0".into());
    let claim_every = Duration::from_millis(ctx.settings.ingest.claim_interval_ms.max(1));
    let mut next_claim = Instant::now();
    let mut failures = 0u32;

    while ctx.running() {
        // Claims wait until our own pending entries are re-read: a claimed entry joins our
        // pending list and must not be read a second time through it.
        if own_pending_from.is_none() && Instant::now() >= next_claim {
            claim_stale(&ctx).await;
            next_claim = Instant::now() + claim_every;
        }
        let Some(lease) = take_lease(&ctx).await else {
            break;
        };
        let want = lease.credits.num_permits();
        let id = own_pending_from.clone().unwrap_or_else(|| ">".to_string());
        let reply = match read_bounded(&ctx, want as u64, &id).await {
            // Nothing new: wait for the next entry, then read the rest of the batch.
            Ok(entries) if entries.is_empty() && own_pending_from.is_none() => {
                wait_then_read(&ctx, want as u64).await
            }
            other => other,
        };
        match reply {
            Ok(mut entries) => {
                failures = 0;
                if own_pending_from.is_some() {
                    own_pending_from = entries.last().map(|e| e.id.clone());
                    fill_delivery_counts(&ctx, &mut entries).await;
                } else {
                    fill_batch(&ctx, &mut entries, want).await;
                }
                dispatch(&ctx, entries, lease);
            }
            Err(e) => {
                drop(lease);
                failures += 1;
                let kind = if e.details().contains("NOGROUP") {
                    let _ = ensure_group(&ctx.redis, ctx.stream(), ctx.group()).await;
                    "nogroup"
                } else {
                    "redis"
                };
                metrics::counter!(names::READ_ERRORS, "error_type" => kind).increment(1);
                tracing::warn!(error = %e, "stream read failed; retrying");
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
    tracing::info!(consumer = %ctx.consumer, "ingester stopped reading");
}

/// Dynamic batching: a read that returned fewer than `analyzer.batch_size` new entries waits
/// up to `analyzer.batch_wait_ms` for more, so the model runs on full batches under load while
/// a lone post is still analysed within milliseconds. Off for the lexicon, which gains nothing
/// from batching.
async fn fill_batch(ctx: &IngestContext, entries: &mut Vec<RawEntry>, credits: usize) {
    let analyzer = &ctx.settings.analyzer;
    let target = analyzer.batch_size.min(credits);
    if analyzer.backend == crate::analysis::Backend::Lexicon
        || analyzer.batch_wait_ms == 0
        || entries.is_empty()
        || entries.len() >= target
    {
        return;
    }
    let deadline = Instant::now() + Duration::from_millis(analyzer.batch_wait_ms);
    while entries.len() < target && ctx.running() && Instant::now() < deadline {
        match read_bounded(ctx, (target - entries.len()) as u64, ">").await {
            Ok(more) if more.is_empty() => tokio::time::sleep(FILL_POLL).await,
            Ok(more) => entries.extend(more),
            // What was read so far is dispatched; the main loop handles the error.
            Err(_) => break,
        }
    }
}

/// How often a batch being filled looks for more entries.
const FILL_POLL: Duration = Duration::from_millis(1);

/// Reads up to `count` entries from `id` without blocking, each bounded in size.
async fn read_bounded(ctx: &IngestContext, count: u64, id: &str) -> Result<Vec<RawEntry>, Error> {
    let value = crate::streams::bounded::read_group(
        &ctx.reader,
        ctx.stream(),
        ctx.group(),
        &ctx.consumer,
        count,
        id,
        ctx.settings.ingest.max_entry_bytes,
    )
    .await?;
    Ok(parse_read_reply(value))
}

/// Blocks up to `ingest.block_ms` for one new entry (bounded as soon as it arrives), then
/// reads up to `count - 1` more without blocking.
async fn wait_then_read(ctx: &IngestContext, count: u64) -> Result<Vec<RawEntry>, Error> {
    let value = crate::streams::bounded::wait_for_one(
        &ctx.reader,
        ctx.stream(),
        ctx.group(),
        &ctx.consumer,
        ctx.settings.ingest.block_ms,
    )
    .await?;
    let mut entries = parse_read_reply(value);
    for entry in &mut entries {
        if entry.oversize.is_none() {
            entry.oversize = crate::streams::bounded::bound_entry(
                &mut entry.fields,
                ctx.settings.ingest.max_entry_bytes,
            );
        }
    }
    if !entries.is_empty() && count > 1 {
        entries.extend(read_bounded(ctx, count - 1, ">").await?);
    }
    Ok(entries)
}

/// What a batch holds until it is acknowledged: a batch slot and one credit per entry
/// (dropping the lease frees both).
struct Lease {
    _slot: OwnedSemaphorePermit,
    credits: OwnedSemaphorePermit,
}

/// Waits for a permit of `semaphore` (`n` of them), waking now and then to notice a drain;
/// None once the ingester stops running.
async fn acquire(
    ctx: &IngestContext,
    semaphore: &Arc<Semaphore>,
    n: u32,
) -> Option<OwnedSemaphorePermit> {
    loop {
        if !ctx.running() {
            return None;
        }
        match tokio::time::timeout(
            Duration::from_millis(200),
            semaphore.clone().acquire_many_owned(n),
        )
        .await
        {
            Ok(Ok(p)) => return Some(p),
            Ok(Err(_)) => return None,
            Err(_) => continue,
        }
    }
}

/// Waits for a batch slot and at least one credit, then takes as many more credits as are
/// free, up to a read batch.
async fn take_lease(ctx: &IngestContext) -> Option<Lease> {
    let slot = acquire(ctx, &ctx.batch_slots, 1).await?;
    let mut credits = acquire(ctx, &ctx.credits, 1).await?;
    let want = ctx.settings.ingest.read_batch.max(1);
    let extra = want.saturating_sub(1).min(ctx.credits.available_permits());
    if extra > 0 {
        if let Ok(more) = ctx.credits.clone().try_acquire_many_owned(extra as u32) {
            credits.merge(more);
        }
    }
    Some(Lease {
        _slot: slot,
        credits,
    })
}

/// Hands a read batch to a task of its own, returning unused credits at once.
fn dispatch(ctx: &Arc<IngestContext>, entries: Vec<RawEntry>, mut lease: Lease) {
    if entries.is_empty() {
        return;
    }
    let unused = lease.credits.num_permits().saturating_sub(entries.len());
    if unused > 0 {
        drop(lease.credits.split(unused));
    }
    let n = entries.len();
    metrics::counter!(names::ENTRIES_READ).increment(n as u64);
    let now = ctx.in_flight.fetch_add(n, Ordering::Relaxed) + n;
    metrics::gauge!(names::IN_FLIGHT).set(now as f64);
    let batches = ctx.batches_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::gauge!(names::IN_FLIGHT_BATCHES).set(batches as f64);
    let held = ctx.hold(&entries);
    let ctx = ctx.clone();
    actix_rt::spawn(async move {
        commit_entries(ctx.clone(), entries).await;
        ctx.release(held);
        let now = ctx.in_flight.fetch_sub(n, Ordering::Relaxed) - n;
        let batches = ctx.batches_in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        drop(lease);
        metrics::gauge!(names::IN_FLIGHT).set(now as f64);
        metrics::gauge!(names::IN_FLIGHT_BATCHES).set(batches as f64);
    });
}

/// Commits a batch read from the stream.
///
/// An entry delivered more than `ingest.max_deliveries` times was in a batch whose process
/// died before committing it, again and again. That may be the entry's fault or not (a
/// process in a crash loop takes good entries down with it), so it is tried once more on
/// its own, with the trial recorded in Redis first: only an entry whose lone trials were cut
/// short [`MAX_TRIALS`] times, so that it took its process down alone, is dead-lettered.
async fn commit_entries(ctx: Arc<IngestContext>, entries: Vec<RawEntry>) {
    let max = ctx.settings.ingest.max_deliveries;
    let (fresh, worn_out): (Vec<RawEntry>, Vec<RawEntry>) =
        entries.into_iter().partition(|e| e.deliveries <= max);
    let mut rejected = Vec::new();
    for entry in worn_out {
        let key = format!("{}:trial:{}", ctx.stream(), entry.id);
        let trials: Result<i64, Error> = ctx.redis.incr(&key).await;
        let _: Result<bool, Error> = ctx.redis.expire(&key, TRIAL_TTL_SECS, None).await;
        match trials {
            Ok(n) if n > MAX_TRIALS => {
                let reason = RejectReason::TooManyDeliveries(entry.deliveries);
                rejected.push(Rejected { entry, reason });
            }
            _ => {
                tracing::info!(entry = %entry.id, deliveries = entry.deliveries, "trying an often redelivered entry on its own");
                metrics::counter!(names::ENTRY_TRIALS).increment(1);
                commit_batch(ctx.clone(), vec![entry], Vec::new()).await;
                let _: Result<i64, Error> = ctx.redis.del(&key).await;
            }
        }
    }
    commit_batch(ctx, fresh, rejected).await;
}

/// Lone trials of an often redelivered entry that may be cut short before it is dead-lettered.
pub const MAX_TRIALS: i64 = 2;
/// How long a trial is remembered, in seconds.
const TRIAL_TTL_SECS: i64 = 86_400;

/// Analyses, stores, dead-letters and acknowledges `entries` with `rejected`, retrying while
/// stages are unavailable and splitting batches a stage refuses.
fn commit_batch(
    ctx: Arc<IngestContext>,
    entries: Vec<RawEntry>,
    mut rejected: Vec<Rejected>,
) -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(async move {
        let entries = Arc::new(entries);
        let mut attempt = 0u32;
        let mut retried_analysis = false;
        loop {
            if ctx.abandoned() {
                return;
            }
            let outcome = if entries.is_empty() {
                Attempt::Done(Arc::default(), StoreOutcome::default())
            } else {
                try_once(&ctx, entries.clone()).await
            };
            match outcome {
                Attempt::Done(batch, outcome) => {
                    let refused = batch.rejected.clone();
                    // Worn-out entries are not in `entries`; the analyzer's rejects are.
                    let worn_out: Vec<&str> =
                        rejected.iter().map(|r| r.entry.id.as_str()).collect();
                    let ids: Vec<&str> = entries
                        .iter()
                        .map(|e| e.id.as_str())
                        .chain(worn_out)
                        .collect();
                    let mut dead = rejected.clone();
                    dead.extend(refused);
                    match finish(&ctx, &dead, &ids).await {
                        Ok(()) => {
                            record_latency(&entries);
                            ctx.publish(Committed {
                                batch,
                                outcome: Arc::new(outcome),
                                acked_at_ms: chrono::Utc::now().timestamp_millis(),
                            });
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "dead-lettering or acknowledging failed; retrying");
                            retry_pause(&ctx, &mut attempt, "ack").await;
                        }
                    }
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
                    let mut left = Arc::unwrap_or_clone(entries);
                    let right = left.split_off(left.len() / 2);
                    commit_batch(ctx.clone(), left, Vec::new()).await;
                    commit_batch(ctx.clone(), right, Vec::new()).await;
                    if !rejected.is_empty() {
                        commit_entries_rejected(&ctx, rejected).await;
                    }
                    return;
                }
                Attempt::Refused(reason) => {
                    let entry = entries[0].clone();
                    rejected.push(Rejected { entry, reason });
                    commit_entries_rejected(&ctx, rejected).await;
                    return;
                }
                Attempt::Unavailable(stage) => retry_pause(&ctx, &mut attempt, stage).await,
            }
        }
    })
}

/// Dead-letters and acknowledges entries that were already rejected.
async fn commit_entries_rejected(ctx: &IngestContext, rejected: Vec<Rejected>) {
    let mut attempt = 0u32;
    let ids: Vec<String> = rejected.iter().map(|r| r.entry.id.clone()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    while !ctx.abandoned() {
        match finish(ctx, &rejected, &ids).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "dead-lettering failed; retrying");
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
}

/// The pool for a batch: the model, or the lexicon while entries arrive too old.
fn pool_for<'a>(ctx: &'a IngestContext, entries: &[RawEntry]) -> &'a Supervised<AnalyzerWorker> {
    let Some(fallback) = &ctx.fallback else {
        return &ctx.analyzer;
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let Some(oldest) = entries.iter().filter_map(RawEntry::added_at_ms).min() else {
        return &ctx.analyzer;
    };
    let age = (now_ms - oldest).max(0) as f64 / 1000.0;
    metrics::histogram!(names::INGEST_ENTRY_AGE_SECONDS).record(age);
    match ctx.route.route(age) {
        Route::Model => &ctx.analyzer,
        Route::Lexicon => fallback,
    }
}

async fn try_once(ctx: &IngestContext, entries: Arc<Vec<RawEntry>>) -> Attempt {
    let pool = pool_for(ctx, &entries);
    let analyzed = match pool.addr().send(AnalyzeBatch(entries)).await {
        Ok(Ok(batch)) => Arc::new(batch),
        Ok(Err(e)) => return Attempt::Refused(RejectReason::Analysis(e.0)),
        Err(_) => return Attempt::Unavailable("analyzer"),
    };
    match ctx.store.addr().send(StoreBatch(analyzed.clone())).await {
        Ok(Ok(outcome)) => Attempt::Done(analyzed, outcome),
        Ok(Err(StoreError::Refused(reason))) => Attempt::Refused(RejectReason::Storage(reason)),
        Ok(Err(StoreError::Unavailable(reason))) => {
            tracing::warn!(%reason, "store unavailable");
            Attempt::Unavailable("store")
        }
        Err(_) => Attempt::Unavailable("store"),
    }
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

/// Writes dead letters, then acknowledges every id. Dead letters are written first so a
/// crash in between re-delivers the entry rather than losing it.
async fn finish(ctx: &IngestContext, rejected: &[Rejected], ids: &[&str]) -> Result<(), Error> {
    if !rejected.is_empty() {
        let dead = ctx.settings.dead_letter_stream();
        let pipeline = ctx.redis.pipeline();
        for r in rejected {
            let mut fields: Vec<(String, Value)> = vec![
                ("dead_reason".into(), r.reason.to_string().into()),
                ("dead_reason_class".into(), r.reason.class().into()),
                ("dead_entry_id".into(), r.entry.id.clone().into()),
                ("dead_stream".into(), ctx.stream().to_string().into()),
                ("dead_deliveries".into(), (r.entry.deliveries as i64).into()),
                ("dead_consumer".into(), ctx.consumer.clone().into()),
                (
                    "dead_entry_bytes".into(),
                    r.entry
                        .oversize
                        .map_or_else(|| entry_bytes(&r.entry) as i64, |n| n as i64)
                        .into(),
                ),
            ];
            for (name, value) in &r.entry.fields {
                fields.push((name.clone(), Value::Bytes(value.clone().into())));
            }
            let cap = ("MAXLEN", "~", ctx.settings.redis.dead_letter_max_len);
            let _: () = pipeline.xadd(&dead, false, cap, "*", fields).await?;
        }
        let _: Vec<Value> = pipeline.all().await?;
        for r in rejected {
            tracing::warn!(entry = %r.entry.id, reason = %r.reason, "entry dead-lettered");
            metrics::counter!(names::DEAD_LETTERS, "reason" => r.reason.class()).increment(1);
        }
    }
    if !ids.is_empty() {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let n = ids.len();
        let _: i64 = ctx.redis.xack(ctx.stream(), ctx.group(), ids).await?;
        metrics::counter!(names::ENTRIES_ACKED).increment(n as u64);
    }
    Ok(())
}

fn record_latency(entries: &[RawEntry]) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let histogram = metrics::histogram!(names::PIPELINE_LATENCY_SECONDS);
    for entry in entries {
        if let Some(added) = entry.added_at_ms() {
            histogram.record((now_ms - added).max(0) as f64 / 1000.0);
        }
    }
}

/// How often the heartbeat runs, and how idle a held entry must be before it is refreshed:
/// a quarter and a half of the claim timeout, so a held entry is never idle longer than
/// three quarters of it.
fn heartbeat_timing(claim_idle_ms: u64) -> (Duration, u64) {
    (
        Duration::from_millis((claim_idle_ms / 4).max(1)),
        claim_idle_ms / 2,
    )
}

/// Keeps the entries this process holds from looking abandoned, until the process stops.
async fn heartbeat_loop(ctx: Arc<IngestContext>) {
    let (every, min_idle) = heartbeat_timing(ctx.settings.ingest.claim_idle_ms);
    while !ctx.abandoned() {
        tokio::time::sleep(every).await;
        if let Err(e) = refresh_held(&ctx, min_idle).await {
            tracing::warn!(error = %e, "refreshing held entries failed");
        }
    }
}

/// Resets the idle time of held entries idle at least `min_idle_ms` without counting a
/// delivery (XCLAIM ... JUSTID); entries already acknowledged are skipped by Redis. Returns
/// how many were refreshed.
pub async fn refresh_held(ctx: &IngestContext, min_idle_ms: u64) -> Result<usize, Error> {
    let ids = ctx.held_ids();
    let mut refreshed = 0;
    for chunk in ids.chunks(1_000) {
        let touched: Value = ctx
            .redis
            .xclaim(
                ctx.stream(),
                ctx.group(),
                ctx.consumer.as_str(),
                min_idle_ms,
                chunk.to_vec(),
                None,
                None,
                None,
                false,
                true,
            )
            .await?;
        if let Value::Array(touched) = touched {
            refreshed += touched.len();
        }
    }
    Ok(refreshed)
}

/// Claims entries idle on other consumers and processes them here.
async fn claim_stale(ctx: &Arc<IngestContext>) {
    let mut cursor = "0-0".to_string();
    for _ in 0..MAX_CLAIM_PAGES {
        if !ctx.running() {
            return;
        }
        let count = ctx.settings.ingest.read_batch.max(1) as u64;
        let reply = crate::streams::bounded::claim(
            &ctx.redis,
            ctx.stream(),
            ctx.group(),
            &ctx.consumer,
            ctx.settings.ingest.claim_idle_ms,
            &cursor,
            count,
            ctx.settings.ingest.max_entry_bytes,
        )
        .await;
        let (next, mut entries) = match reply {
            Ok(value) => parse_claim_reply(value),
            Err(e) => {
                if e.details().contains("NOGROUP") {
                    let _ = ensure_group(&ctx.redis, ctx.stream(), ctx.group()).await;
                } else {
                    tracing::warn!(error = %e, "claiming stale entries failed");
                }
                return;
            }
        };
        if !entries.is_empty() {
            fill_delivery_counts(ctx, &mut entries).await;
            metrics::counter!(names::ENTRIES_CLAIMED).increment(entries.len() as u64);
            tracing::info!(
                claimed = entries.len(),
                "claimed entries left by another consumer"
            );
            let want = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            let Some(slot) = acquire(ctx, &ctx.batch_slots, 1).await else {
                return;
            };
            let Some(credits) = acquire(ctx, &ctx.credits, want).await else {
                return;
            };
            dispatch(
                ctx,
                entries,
                Lease {
                    _slot: slot,
                    credits,
                },
            );
        }
        if next == "0-0" || next.is_empty() {
            return;
        }
        cursor = next;
    }
}

/// Reads how many times each claimed entry has been delivered (XAUTOCLAIM does not say).
async fn fill_delivery_counts(ctx: &IngestContext, entries: &mut [RawEntry]) {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return;
    };
    let reply: Result<Value, Error> = ctx
        .redis
        .xpending(
            ctx.stream(),
            ctx.group(),
            (
                first.id.as_str(),
                last.id.as_str(),
                entries.len() as u64,
                ctx.consumer.as_str(),
            ),
        )
        .await;
    let Ok(Value::Array(rows)) = reply else {
        return;
    };
    for row in rows {
        let Value::Array(cols) = row else { continue };
        let (Some(id), Some(count)) = (cols.first().and_then(as_string), cols.get(3)) else {
            continue;
        };
        let count = match count {
            Value::Integer(n) => *n as u64,
            other => as_string(other).and_then(|s| s.parse().ok()).unwrap_or(1),
        };
        if let Some(entry) = entries.iter_mut().find(|e| e.id == id) {
            entry.deliveries = count;
        }
    }
}

/// Parses an XREADGROUP reply: `[[stream, [[id, [field, value, ...]], ...]]]` or nil.
pub fn parse_read_reply(value: Value) -> Vec<RawEntry> {
    let Value::Array(streams) = value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            continue;
        };
        if parts.len() < 2 {
            continue;
        }
        if let Value::Array(entries) = parts.swap_remove(1) {
            out.extend(entries.into_iter().filter_map(parse_entry));
        }
    }
    out
}

/// Parses an XAUTOCLAIM reply: `[next_cursor, [[id, fields], ...], [deleted ids]]`.
pub fn parse_claim_reply(value: Value) -> (String, Vec<RawEntry>) {
    let Value::Array(mut parts) = value else {
        return (String::new(), Vec::new());
    };
    if parts.len() < 2 {
        return (String::new(), Vec::new());
    }
    let entries = match parts.swap_remove(1) {
        Value::Array(entries) => entries.into_iter().filter_map(parse_entry).collect(),
        _ => Vec::new(),
    };
    let next = as_string(&parts[0]).unwrap_or_default();
    (next, entries)
}

fn parse_entry(value: Value) -> Option<RawEntry> {
    let Value::Array(mut parts) = value else {
        return None;
    };
    if parts.len() < 2 {
        return None;
    }
    let fields_value = parts.swap_remove(1);
    let id = as_string(&parts[0])?;
    let mut fields = match fields_value {
        Value::Array(flat) => {
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(name), Some(value)) = (it.next(), it.next()) {
                fields.push((as_string(&name).unwrap_or_default(), as_bytes(value)));
            }
            fields
        }
        Value::Map(map) => map
            .inner()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.as_str().map(|s| s.to_string()).unwrap_or_default(),
                    as_bytes(v),
                )
            })
            .collect(),
        // A pending entry whose data was trimmed away: nothing left to process, but it must
        // still be acknowledged, so it travels on with no fields and is dead-lettered.
        _ => Vec::new(),
    };
    // A bounded read's mark of an oversize entry (see `streams::bounded`).
    let oversize = match fields.last() {
        Some((name, size)) if name == crate::streams::bounded::ENTRY_BYTES_FIELD => {
            let size = std::str::from_utf8(size).ok().and_then(|s| s.parse().ok());
            fields.pop();
            size
        }
        _ => None,
    };
    Some(RawEntry {
        id,
        fields,
        deliveries: 1,
        oversize,
    })
}

/// Bytes of an entry's field names and values.
fn entry_bytes(entry: &RawEntry) -> usize {
    entry.fields.iter().map(|(k, v)| k.len() + v.len()).sum()
}

fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn as_bytes(value: Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.into_inner().to_vec(),
        Value::Bytes(b) => b.to_vec(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Double(d) => d.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(10));
    (FIRST_RETRY_DELAY * factor).min(MAX_RETRY_DELAY)
}

/// Consumer-group figures for readiness and metrics.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct GroupStats {
    /// Entries not yet delivered to the group (None if Redis cannot tell).
    pub lag: Option<i64>,
    /// Entries delivered and not yet acknowledged.
    pub pending: i64,
    /// Consumers known to the group.
    pub consumers: i64,
    /// Length of the stream.
    pub length: i64,
    /// Length of the dead-letter stream.
    pub dead_letters: i64,
    /// The last entry id delivered to the group.
    #[serde(skip)]
    pub last_delivered_id: Option<String>,
}

/// Reads the group's lag and pending count from XINFO GROUPS.
pub async fn group_stats(redis: &Client, settings: &Settings) -> Result<GroupStats, Error> {
    let stream = settings.redis.stream.as_str();
    let length: i64 = redis.xlen(stream).await?;
    let dead_letters: i64 = redis.xlen(settings.dead_letter_stream()).await?;
    let mut stats = GroupStats {
        length,
        dead_letters,
        ..Default::default()
    };
    let groups: Value = match redis.xinfo_groups(stream).await {
        Ok(v) => v,
        Err(e) if e.details().contains("no such key") => return Ok(stats),
        Err(e) => return Err(e),
    };
    let Value::Array(groups) = groups else {
        return Ok(stats);
    };
    for group in groups {
        let pairs: Vec<(String, Value)> = match group {
            Value::Array(flat) => {
                let mut it = flat.into_iter();
                let mut pairs = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((as_string(&k).unwrap_or_default(), v));
                }
                pairs
            }
            Value::Map(map) => map
                .inner()
                .into_iter()
                .map(|(k, v)| (k.as_str().map(|s| s.to_string()).unwrap_or_default(), v))
                .collect(),
            _ => continue,
        };
        let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if field("name").and_then(as_string).as_deref() != Some(settings.redis.group.as_str()) {
            continue;
        }
        let int = |v: Option<&Value>| match v {
            Some(Value::Integer(i)) => Some(*i),
            Some(other) => as_string(other).and_then(|s| s.parse().ok()),
            None => None,
        };
        stats.pending = int(field("pending")).unwrap_or(0);
        stats.consumers = int(field("consumers")).unwrap_or(0);
        stats.lag = int(field("lag"));
        stats.last_delivered_id = field("last-delivered-id").and_then(as_string);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn parses_read_replies_including_binary_and_trimmed_entries() {
        let reply = Value::Array(vec![Value::Array(vec![
            s("pulse:events"),
            Value::Array(vec![
                Value::Array(vec![
                    s("1-0"),
                    Value::Array(vec![s("event"), Value::Bytes(vec![0xff, 0x00].into())]),
                ]),
                Value::Array(vec![s("2-0"), Value::Null]),
            ]),
        ])]);
        let entries = parse_read_reply(reply);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].event_bytes(), Some(&[0xff, 0x00][..]));
        assert_eq!(entries[0].added_at_ms(), Some(1));
        assert!(entries[1].fields.is_empty());
        assert!(parse_read_reply(Value::Null).is_empty());
    }

    #[test]
    fn parses_claim_replies() {
        let reply = Value::Array(vec![
            s("5-0"),
            Value::Array(vec![Value::Array(vec![
                s("3-1"),
                Value::Array(vec![s("event"), s("{}")]),
            ])]),
            Value::Array(vec![]),
        ]);
        let (next, entries) = parse_claim_reply(reply);
        assert_eq!(next, "5-0");
        assert_eq!(entries[0].id, "3-1");
    }

    #[test]
    fn held_entries_are_refreshed_well_before_they_can_be_claimed() {
        for claim_idle in [1_000, 30_000] {
            let (every, min_idle) = heartbeat_timing(claim_idle);
            // Refreshed at the first beat after reaching `min_idle`: always under the timeout.
            assert!(min_idle as u128 + every.as_millis() < claim_idle as u128);
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), FIRST_RETRY_DELAY);
        assert!(backoff(3) > backoff(2));
        assert_eq!(backoff(30), MAX_RETRY_DELAY);
    }
}
