//! The read loop: own pending entries first, then new ones, in batches sized by the free
//! credits, each handed to a task of its own.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fred::prelude::*;

use super::claim::claim_stale;
use super::lease::{dispatch, take_lease};
use super::{backoff, IngestContext};
use crate::actors::messages::RawEntry;
use crate::streams::bounded;
use crate::streams::group::{self, ensure_group};
use crate::telemetry::causes::causes;
use crate::telemetry::names;

/// Reads until the ingester stops running; a failed read is retried with backoff.
pub(super) async fn read_loop(ctx: Arc<IngestContext>) {
    let mut failures = 0u32;
    while ctx.running() {
        match ensure_group(&ctx.redis, ctx.stream(), ctx.group()).await {
            Ok(()) => break,
            Err(e) => {
                pulse_core::warn_repeated!(error = %causes(&e), "cannot create the consumer group yet; retrying");
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
    let mut idle = IdlePause::new(Duration::from_millis(ctx.settings.ingest.idle_poll_ms));

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
        let read_started = SystemTime::now();
        match read_bounded(&ctx, want as u64, &id).await {
            // Nothing new: look again after a pause that grows while the stream stays idle.
            Ok(entries) if entries.is_empty() && own_pending_from.is_none() => {
                drop(lease);
                failures = 0;
                tokio::time::sleep(idle.next_pause()).await;
            }
            Ok(mut entries) => {
                failures = 0;
                idle.entries(Instant::now());
                if own_pending_from.is_some() {
                    own_pending_from = entries.last().map(|e| e.id.clone());
                    group::fill_delivery_counts(&ctx.redis, ctx.member(), &mut entries).await;
                } else {
                    fill_batch(&ctx, &mut entries, want).await;
                }
                dispatch(&ctx, entries, lease, read_started);
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
                pulse_core::warn_repeated!(error = %causes(&e), "stream read failed; retrying");
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
    bounded::read_group(&ctx.reader, ctx.member(), count, id, ctx.entry_limits()).await
}

/// The pauses of a reader whose stream has nothing new. While entries came within the last
/// [`IdlePause::BUSY_SPELL`], 1 ms: producers append in bursts a few milliseconds apart, and
/// a pause that grew between two bursts would hold the next one back for as long. After that,
/// doubling up to `ingest.idle_poll_ms`, so an idle stream costs Redis a cheap script call
/// every few tens of milliseconds.
struct IdlePause {
    /// Pauses since the last entries, past the busy spell.
    idle: u32,
    max: Duration,
    entries_at: Option<Instant>,
}

impl IdlePause {
    const FIRST: Duration = Duration::from_millis(1);
    const BUSY_SPELL: Duration = Duration::from_millis(200);

    fn new(max: Duration) -> IdlePause {
        IdlePause {
            idle: 0,
            max: max.max(Self::FIRST),
            entries_at: None,
        }
    }

    fn next_pause(&mut self) -> Duration {
        self.next_pause_at(Instant::now())
    }

    fn next_pause_at(&mut self, now: Instant) -> Duration {
        if self
            .entries_at
            .is_some_and(|at| now.saturating_duration_since(at) < Self::BUSY_SPELL)
        {
            return Self::FIRST;
        }
        let pause = crate::models::backoff::ceiling(Self::FIRST, self.max, self.idle);
        self.idle = self.idle.saturating_add(1);
        pause
    }

    /// A read returned entries at `now`.
    fn entries(&mut self, now: Instant) {
        self.idle = 0;
        self.entries_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_pauses_stay_short_while_entries_are_recent_then_double_up_to_the_setting() {
        let start = Instant::now();
        let mut idle = IdlePause::new(Duration::from_millis(20));
        let pauses: Vec<u128> = (0..7)
            .map(|_| idle.next_pause_at(start).as_millis())
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 20, 20]);

        idle.entries(start);
        let busy = start + IdlePause::BUSY_SPELL / 2;
        for _ in 0..10 {
            assert_eq!(idle.next_pause_at(busy), Duration::from_millis(1));
        }
        let quiet = start + IdlePause::BUSY_SPELL;
        let pauses: Vec<u128> = (0..6)
            .map(|_| idle.next_pause_at(quiet).as_millis())
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 20]);
        assert_eq!(
            IdlePause::new(Duration::ZERO).next_pause_at(start),
            Duration::from_millis(1)
        );
    }
}
