//! Retention: deletes what would otherwise grow without bound, in small batches off the hot
//! path, so deletes never hold long locks or stall ingest.
//!
//! - Raw posts and engagements, `store.retention_days` after they reached Pulse (by arrival,
//!   not by their own timestamps: a backfilled post from years ago stays as long as a live
//!   one), and per-minute term counts of that age.
//! - History, `store.history_retention_days` after it ended: resolved alerts, delivered and
//!   dead webhook deliveries, finished cascades and their predictions.
//! - The audit log, `store.audit_retention_days` after each record.
//!
//! Per-minute metric rollups are small and kept, so long-range time series stay available.
//! A setting of 0 days keeps that family forever.

use std::time::Duration;

use actix::{fut::wrap_future, Actor, AsyncContext, Context};
use deadpool_postgres::Pool;

use crate::config::StoreSettings;
pub use crate::db::retention::{sweep, RetentionPolicy};

/// The retention actor.
pub struct Retention {
    pool: Pool,
    policy: RetentionPolicy,
    every: Duration,
}

impl Retention {
    /// Retention under `settings`, through `pool`.
    pub fn new(pool: Pool, settings: &StoreSettings) -> Self {
        Self {
            pool,
            policy: RetentionPolicy::of(settings),
            every: Duration::from_secs(settings.retention_interval_secs.max(1)),
        }
    }

    fn spawn_sweep(&self, ctx: &mut Context<Self>) {
        let (pool, policy) = (self.pool.clone(), self.policy);
        ctx.spawn(wrap_future(async move {
            match sweep(&pool, &policy).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "retention removed old rows"),
                Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
            }
        }));
    }
}

impl Actor for Retention {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.spawn_sweep(ctx);
        ctx.run_interval(self.every, |this, ctx| this.spawn_sweep(ctx));
    }
}
