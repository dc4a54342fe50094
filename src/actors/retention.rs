//! Retention: deletes what would otherwise grow without bound, in small batches off the hot
//! path, so deletes never hold long locks or stall ingest.
//!
//! - Raw posts and engagements, `store.retention_days` after they reached Pulse (by arrival,
//!   not by their own timestamps: a backfilled post from years ago stays as long as a live
//!   one), and per-minute term counts of that age.
//! - History, `store.history_retention_days` after it ended: resolved alerts, delivered and
//!   dead webhook deliveries, finished cascades and their predictions, digests (a scheduled
//!   one once no process could catch up on its period again).
//! - The audit log, `store.audit_retention_days` after each record.
//! - Deleted topics, once nothing names them ([`crate::db::topics::purge_deleted`]).
//!
//! Per-minute metric rollups are small and kept, so long-range time series stay available.
//! A setting of 0 days keeps that family forever.

use std::time::Duration;

use actix::{fut::wrap_future, Actor, AsyncContext, Context};
use deadpool_postgres::Pool;

use std::sync::{Arc, Mutex};

use crate::actors::ingester::IngestContext;
use crate::config::StoreSettings;
use crate::db::deletions::{self, HeldCursor};
pub use crate::db::retention::{sweep, RetentionPolicy};
use crate::db::statistics;
use crate::telemetry::causes::causes;
use crate::telemetry::names;

/// How often deletions that raced their post, engagements held for their post, and the
/// statistics of young tables ([`crate::db::statistics`]) are looked at.
const SETTLE_EVERY: Duration = Duration::from_secs(2);

/// What the retention actor settles besides retention: raced deletions and held engagements
/// ([`crate::db::deletions`]).
pub struct Settling {
    /// Churn risk at or above which a post counts as high-churn in the rollups.
    pub high_churn: f32,
    /// The `actor=owner` pairs of `ingest.producer_trust`.
    pub trust: Vec<String>,
    /// `ingest.unknown_post_hold_secs`.
    pub hold_secs: u64,
    /// Told of the posts marked deleted.
    pub ingest: Option<Arc<IngestContext>>,
}

/// The retention actor. It also settles deletions that raced their post and held
/// engagements, and analyses young tables as they grow: upkeep of the same kind, off the
/// hot path.
pub struct Retention {
    pool: Pool,
    policy: RetentionPolicy,
    every: Duration,
    settling: Arc<Settling>,
    held_cursor: Arc<Mutex<HeldCursor>>,
}

impl Retention {
    /// Retention under `settings`, through `pool`.
    pub fn new(pool: Pool, settings: &StoreSettings, settling: Settling) -> Self {
        Self {
            pool,
            policy: RetentionPolicy::of(settings),
            every: Duration::from_secs(settings.retention_interval_secs.max(1)),
            settling: Arc::new(settling),
            held_cursor: Arc::default(),
        }
    }

    fn spawn_settle(&self, ctx: &mut Context<Self>) {
        let (pool, settling) = (self.pool.clone(), self.settling.clone());
        let cursor = self.held_cursor.clone();
        ctx.spawn(wrap_future(async move {
            let mut client = match pool.get().await {
                Ok(client) => client,
                Err(e) => {
                    tracing::debug!(error = %causes(&e), "no connection to settle deletions");
                    return;
                }
            };
            match deletions::mark_raced(&mut client, settling.high_churn, &settling.trust).await {
                Ok(marked) if marked.is_empty() => {}
                Ok(marked) => {
                    metrics::counter!(names::POSTS_DELETED).increment(marked.len() as u64);
                    tracing::debug!(
                        marked = marked.len(),
                        "posts whose deletion raced them marked"
                    );
                    if let Some(ingest) = &settling.ingest {
                        ingest.publish_deleted(marked);
                    }
                }
                Err(e) => pulse_core::warn_repeated!(error = %causes(&e), "marking raced deletions failed"),
            }
            let hold = settling.hold_secs as f64;
            let after = cursor.lock().expect("the cursor is only copied").clone();
            match deletions::settle_held(&mut client, &settling.trust, hold, &after).await {
                Ok((settled, next)) => {
                    *cursor.lock().expect("the cursor is only copied") = next;
                    for (reason, n) in [
                        ("not_owner_engagement", settled.refused),
                        ("unknown_post", settled.dropped),
                    ] {
                        if n > 0 {
                            metrics::counter!(names::EVENTS_NOT_OWNED, "reason" => reason)
                                .increment(n as u64);
                        }
                    }
                    if settled != Default::default() {
                        tracing::debug!(?settled, "held engagements settled");
                    }
                }
                Err(e) => pulse_core::warn_repeated!(error = %causes(&e), "settling held engagements failed"),
            }
            match statistics::analyze_grown(&**client).await {
                Ok(tables) if tables.is_empty() => {}
                Ok(tables) => tracing::debug!(?tables, "grown tables analysed"),
                Err(e) => pulse_core::warn_repeated!(error = %causes(&e), "analysing grown tables failed"),
            }
        }));
    }

    fn spawn_sweep(&self, ctx: &mut Context<Self>) {
        let (pool, policy) = (self.pool.clone(), self.policy);
        ctx.spawn(wrap_future(async move {
            match sweep(&pool, &policy).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "retention removed old rows"),
                Err(e) => pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "retention sweep failed"),
            }
        }));
    }
}

impl Actor for Retention {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.spawn_sweep(ctx);
        ctx.run_interval(self.every, |this, ctx| this.spawn_sweep(ctx));
        ctx.run_interval(SETTLE_EVERY, |this, ctx| this.spawn_settle(ctx));
    }
}
