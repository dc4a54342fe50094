//! Credits and batch slots: what a batch holds from its read until its acknowledgement, and
//! the task each batch is committed in.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::commit::commit_entries;
use super::IngestContext;
use crate::actors::messages::RawEntry;
use crate::telemetry::{names, traces};

/// What a batch holds until it is acknowledged: a batch slot and one credit per entry
/// (dropping the lease frees both).
pub(super) struct Lease {
    pub(super) _slot: OwnedSemaphorePermit,
    pub(super) credits: OwnedSemaphorePermit,
}

/// Waits for a permit of `semaphore` (`n` of them), waking now and then to notice a drain;
/// None once the ingester stops running.
pub(super) async fn acquire(
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
pub(super) async fn take_lease(ctx: &IngestContext) -> Option<Lease> {
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

/// Hands a read batch (whose read began at `read_started`) to a task of its own, returning
/// unused credits at once.
pub(super) fn dispatch(
    ctx: &Arc<IngestContext>,
    mut entries: Vec<RawEntry>,
    mut lease: Lease,
    read_started: SystemTime,
) {
    if entries.is_empty() {
        return;
    }
    crate::streams::future_ids::stamp(ctx.stream(), &mut entries);
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
    let trace = ctx.traces.batch(
        entries.iter().map(|e| traces::Entry {
            id: &e.id,
            added_at_ms: e.arrived_at_ms(),
            deliveries: e.deliveries,
            fields: &e.fields,
        }),
        read_started,
    );
    let ctx = ctx.clone();
    actix_rt::spawn(async move {
        commit_entries(ctx.clone(), entries, trace, held).await;
        // A batch that never reached the story desk (its analysis failed) gives up its turn.
        ctx.story_turns.pass(held);
        ctx.release(held);
        let now = ctx.in_flight.fetch_sub(n, Ordering::Relaxed) - n;
        let batches = ctx.batches_in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        drop(lease);
        metrics::gauge!(names::IN_FLIGHT).set(now as f64);
        metrics::gauge!(names::IN_FLIGHT_BATCHES).set(batches as f64);
    });
}
