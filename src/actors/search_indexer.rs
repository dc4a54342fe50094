//! Writes the search vectors of posts stored before there were any (or by a process that did
//! not write them), newest first, in chunks that give way to the pipeline as re-tagging does:
//! small chunks and a rest in proportion to their time while entries are in flight. Until a
//! post has its vector, searches check it one by one, so nothing is missed meanwhile; several
//! processes may index at once, and a vector is written only where there is none.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, ContextFutureSpawner};
use deadpool_postgres::Pool;

use super::ingester::IngestContext;
use crate::config::TopicSettings;
use crate::db::search::{self as db, TsVector};
use crate::telemetry::names;

/// How long the indexer rests when there is nothing to index, or after a failure.
const IDLE: Duration = Duration::from_secs(5);

pub struct SearchIndexer {
    pool: Pool,
    settings: TopicSettings,
    ingest: Option<Arc<IngestContext>>,
}

impl SearchIndexer {
    /// An indexer that works in the re-tagging's chunks and busy share (`topics.retag_*`).
    pub fn new(pool: Pool, settings: &TopicSettings, ingest: Option<Arc<IngestContext>>) -> Self {
        Self {
            pool,
            settings: settings.clone(),
            ingest,
        }
    }

    fn pipeline_busy(&self) -> bool {
        IngestContext::busy(self.ingest.as_ref())
    }

    fn step(&mut self, ctx: &mut Context<Self>) {
        let chunk = if self.pipeline_busy() {
            self.settings.retag_busy_chunk
        } else {
            self.settings.retag_chunk
        };
        let (pool, chunk) = (self.pool.clone(), chunk.max(1) as i64);
        wrap_future::<_, Self>(async move {
            let started = Instant::now();
            (index_once(&pool, chunk).await, started.elapsed())
        })
        .map(|(worked, took), actor: &mut Self, ctx| {
            let pause = match worked {
                Ok(0) => IDLE,
                Ok(_) => {
                    let share = actor.settings.retag_busy_share;
                    IngestContext::rest_after(actor.ingest.as_ref(), took, share)
                }
                Err(e) => {
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "writing search vectors failed; trying again");
                    IDLE
                }
            };
            ctx.run_later(pause, |actor, ctx| actor.step(ctx));
        })
        .spawn(ctx);
    }
}

impl Actor for SearchIndexer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_later(IDLE, |actor, ctx| actor.step(ctx));
    }
}

/// Writes the vectors of up to `chunk` posts that have none; how many it read.
pub async fn index_once(pool: &Pool, chunk: i64) -> anyhow::Result<usize> {
    let client = pool.get().await?;
    let posts = db::unindexed(&**client, chunk).await?;
    if posts.is_empty() {
        return Ok(0);
    }
    let read = posts.len();
    let (ids, vectors) = tokio::task::spawn_blocking(move || {
        let vectors: Vec<Vec<u8>> = posts
            .iter()
            .map(|p| crate::search::vector::encode(&p.fields()))
            .collect();
        let ids: Vec<String> = posts.into_iter().map(|p| p.id).collect();
        (ids, vectors)
    })
    .await?;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let vectors: Vec<TsVector> = vectors.iter().map(|v| TsVector(v)).collect();
    let written = db::write_vectors(&**client, &ids, &vectors).await?;
    metrics::counter!(names::SEARCH_INDEXED).increment(written);
    Ok(read)
}
