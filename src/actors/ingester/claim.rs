//! Keeping the entries this process holds from looking abandoned, and claiming the entries
//! other consumers abandoned.

use std::sync::Arc;
use std::time::Duration;

use super::lease::{acquire, dispatch, Lease};
use super::{IngestContext, MAX_CLAIM_PAGES};
use crate::streams::bounded;
use crate::streams::group::{self, ensure_group};
use crate::telemetry::causes::causes;
use crate::telemetry::names;

/// How often the heartbeat runs, and how idle a held entry must be before it is refreshed:
/// a quarter and a half of the claim timeout, so a held entry is never idle longer than
/// three quarters of it.
pub(super) fn heartbeat_timing(claim_idle_ms: u64) -> (Duration, u64) {
    (
        Duration::from_millis((claim_idle_ms / 4).max(1)),
        claim_idle_ms / 2,
    )
}

/// Keeps the entries this process holds from looking abandoned, until the process stops.
pub(super) async fn heartbeat_loop(ctx: Arc<IngestContext>) {
    let (every, min_idle) = heartbeat_timing(ctx.settings.ingest.claim_idle_ms);
    while !ctx.abandoned() {
        tokio::time::sleep(every).await;
        let held = ctx.held_ids();
        if let Err(e) = group::refresh_held(&ctx.redis, ctx.member(), &held, min_idle).await {
            pulse_core::warn_repeated!(error = %causes(&e), "refreshing held entries failed");
        }
    }
}

/// Claims entries idle on other consumers and processes them here.
pub(super) async fn claim_stale(ctx: &Arc<IngestContext>) {
    let mut cursor = "0-0".to_string();
    for _ in 0..MAX_CLAIM_PAGES {
        if !ctx.running() {
            return;
        }
        // Never more than the credits that exist: a claim of more would wait for them for ever.
        let count = ctx
            .settings
            .ingest
            .read_batch
            .min(ctx.settings.ingest.max_in_flight)
            .max(1) as u64;
        let claim_started = std::time::SystemTime::now();
        let reply = bounded::claim(
            &ctx.redis,
            ctx.member(),
            ctx.settings.ingest.claim_idle_ms,
            &cursor,
            count,
            ctx.entry_limits(),
        )
        .await;
        let (next, mut entries) = match reply {
            Ok(claimed) => claimed,
            Err(e) => {
                if e.details().contains("NOGROUP") {
                    let _ = ensure_group(&ctx.redis, ctx.stream(), ctx.group()).await;
                } else {
                    pulse_core::warn_repeated!(error = %causes(&e), "claiming stale entries failed");
                }
                return;
            }
        };
        if !entries.is_empty() {
            group::fill_delivery_counts(&ctx.redis, ctx.member(), &mut entries).await;
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
                claim_started,
            );
        }
        if next == "0-0" || next.is_empty() {
            return;
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_entries_are_refreshed_well_before_they_can_be_claimed() {
        for claim_idle in [1_000, 30_000] {
            let (every, min_idle) = heartbeat_timing(claim_idle);
            // Refreshed at the first beat after reaching `min_idle`: always under the timeout.
            assert!(min_idle as u128 + every.as_millis() < claim_idle as u128);
        }
    }
}
