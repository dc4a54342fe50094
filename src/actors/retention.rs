//! Retention: deletes raw posts, engagements and term counts older than the configured age,
//! in small batches off the hot path, so deletes never hold long locks or stall ingest.
//! Per-minute metric rollups are small and kept, so long-range time series stay available.

use std::time::Duration;

use actix::{fut::wrap_future, Actor, AsyncContext, Context};
use deadpool_postgres::Pool;

use crate::telemetry::names;

const DELETE_POSTS: &str = "
DELETE FROM posts WHERE id IN (
    SELECT id FROM posts WHERE created_at < now() - make_interval(days => $1) LIMIT $2)";
const DELETE_ENGAGEMENTS: &str = "
DELETE FROM engagements WHERE key IN (
    SELECT key FROM engagements WHERE at < now() - make_interval(days => $1) LIMIT $2)";
const DELETE_TERMS: &str = "
DELETE FROM term_rollups WHERE (minute, term) IN (
    SELECT minute, term FROM term_rollups WHERE minute < now() - make_interval(days => $1) LIMIT $2)";
/// Pause between two delete batches, leaving room for the store's writes.
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(50);

/// The retention actor.
pub struct Retention {
    pool: Pool,
    days: i32,
    batch: i64,
    every: Duration,
}

impl Retention {
    /// Retention keeping `days` days (0 keeps everything), deleting `batch` rows per
    /// statement, every `every`.
    pub fn new(pool: Pool, days: u32, batch: i64, every: Duration) -> Self {
        Self {
            pool,
            days: i32::try_from(days).unwrap_or(i32::MAX),
            batch: batch.max(1),
            every,
        }
    }

    fn spawn_sweep(&self, ctx: &mut Context<Self>) {
        let (pool, days, batch) = (self.pool.clone(), self.days, self.batch);
        ctx.spawn(wrap_future(async move {
            match sweep(&pool, days, batch).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, days, "retention removed old rows"),
                Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
            }
        }));
    }
}

impl Actor for Retention {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.days == 0 {
            return;
        }
        self.spawn_sweep(ctx);
        ctx.run_interval(self.every, |this, ctx| this.spawn_sweep(ctx));
    }
}

/// Deletes expired rows batch by batch until none are left; returns how many went.
pub async fn sweep(pool: &Pool, days: i32, batch: i64) -> anyhow::Result<u64> {
    let client = pool.get().await?;
    let mut total = 0;
    for (table, sql) in [
        ("posts", DELETE_POSTS),
        ("engagements", DELETE_ENGAGEMENTS),
        ("term_rollups", DELETE_TERMS),
    ] {
        let statement = client.prepare_cached(sql).await?;
        loop {
            let deleted = client.execute(&statement, &[&days, &batch]).await?;
            total += deleted;
            metrics::counter!(names::RETENTION_DELETED, "table" => table).increment(deleted);
            if deleted < batch as u64 {
                break;
            }
            tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
        }
    }
    Ok(total)
}
