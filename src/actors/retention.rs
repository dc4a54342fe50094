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

/// How often deletions that raced their post are looked for.
const RACED_DELETIONS_EVERY: Duration = Duration::from_secs(2);

/// The retention actor. It also marks posts whose deletion raced them
/// ([`crate::db::deletions`]): upkeep of the same kind, off the hot path.
pub struct Retention {
    pool: Pool,
    policy: RetentionPolicy,
    every: Duration,
    high_churn: f32,
}

impl Retention {
    /// Retention under `settings`, through `pool`.
    pub fn new(pool: Pool, settings: &StoreSettings, high_churn: f32) -> Self {
        Self {
            pool,
            policy: RetentionPolicy::of(settings),
            every: Duration::from_secs(settings.retention_interval_secs.max(1)),
            high_churn,
        }
    }

    fn spawn_mark_raced(&self, ctx: &mut Context<Self>) {
        let (pool, high_churn) = (self.pool.clone(), self.high_churn);
        ctx.spawn(wrap_future(async move {
            let marked = match pool.get().await {
                Ok(client) => crate::db::deletions::mark_raced(&client, high_churn).await,
                Err(e) => {
                    tracing::debug!(error = %e, "no connection to mark raced deletions");
                    return;
                }
            };
            match marked {
                Ok(0) => {}
                Ok(n) => {
                    metrics::counter!(crate::telemetry::names::POSTS_DELETED).increment(n as u64);
                    tracing::debug!(marked = n, "posts whose deletion raced them marked");
                }
                Err(e) => tracing::warn!(error = %e, "marking raced deletions failed"),
            }
        }));
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
        ctx.run_interval(RACED_DELETIONS_EVERY, |this, ctx| {
            this.spawn_mark_raced(ctx)
        });
    }
}
