//! Runs export jobs: each of `export.workers` tasks takes the oldest job no process holds, and
//! writes it a chunk at a time, each chunk committed with the job's place and a renewed lease
//! in one transaction ([`db::write_step`]). A process that stops (or dies) leaves its job at
//! its last committed chunk; another takes it over when its lease runs out (at once after a
//! graceful stop) and goes on from there, so nothing is written twice or lost. While the
//! pipeline has entries in flight a job works `export.busy_share` of the time, as re-tagging
//! does; otherwise without rest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::export::{csv_header, encode, read_page};
use super::search::{prepare, SearchQuery};
use crate::actors::ingester::IngestContext;
use crate::config::ExportSettings;
use crate::db::export_jobs::{self as db, Chunk, Job, Step};
use crate::db::search::After;
use crate::telemetry::names;

/// How long a worker waits for a job before looking again (a job created by another process
/// does not wake this one).
const POLL: Duration = Duration::from_secs(2);
/// How long a worker rests after a failure.
const BACKOFF: Duration = Duration::from_secs(5);
/// How often expired jobs are removed.
const SWEEP: Duration = Duration::from_secs(60);

/// The running workers.
pub struct ExportRunner {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pool: Pool,
    worker: String,
}

/// What every worker shares.
struct Shared {
    settings: ExportSettings,
    pool: Pool,
    wake: Arc<Notify>,
    ingest: Option<Arc<IngestContext>>,
    worker: String,
}

impl ExportRunner {
    /// Starts `settings.workers` workers named after `consumer`, with connections of their own.
    pub fn start(
        settings: &ExportSettings,
        database_url: &str,
        consumer: &str,
        wake: Arc<Notify>,
        ingest: Option<Arc<IngestContext>>,
    ) -> anyhow::Result<ExportRunner> {
        let pool = crate::db::pool(database_url, settings.workers.max(1))?;
        let worker = format!("{consumer}/{:016x}", rand::random::<u64>());
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            pool: pool.clone(),
            wake,
            ingest,
            worker: worker.clone(),
        });
        let tasks = (0..settings.workers)
            .map(|n| tokio::spawn(work(shared.clone(), stopped.clone(), n == 0)))
            .collect();
        Ok(ExportRunner {
            stop,
            tasks,
            pool,
            worker,
        })
    }

    /// Stops the workers at their next chunk and lets another process take their jobs at once.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!(
                    "an export worker did not stop in time; its job waits for its lease"
                );
            }
        }
        let released = match self.pool.get().await {
            Ok(client) => db::release(&**client, &self.worker)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release export jobs; they wait for their lease");
        }
    }
}

/// One worker's loop until `stopped`.
async fn work(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>, sweeps: bool) {
    let mut swept = Instant::now() - SWEEP;
    while !*stopped.borrow() {
        if sweeps && swept.elapsed() >= SWEEP {
            swept = Instant::now();
            match sweep(&shared.pool).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "removed expired exports"),
                Err(e) => tracing::warn!(error = %e, "removing expired exports failed"),
            }
        }
        let claimed = match shared.pool.get().await {
            Ok(client) => db::claim(&**client, &shared.worker, shared.settings.lease_secs as f64)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        let pause = match claimed {
            Ok(Some(job)) => {
                let id = job.id;
                tokio::select! {
                    outcome = run(&shared, job) => match outcome {
                        Ok(()) => Duration::ZERO,
                        Err(e) => {
                            tracing::warn!(error = %e, job = id, "an export job failed part way; it goes on from its last chunk");
                            BACKOFF
                        }
                    },
                    _ = stopped.changed() => break,
                }
            }
            Ok(None) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "looking for export jobs failed");
                BACKOFF
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => break,
            }
        }
    }
}

async fn sweep(pool: &Pool) -> anyhow::Result<u64> {
    let client = pool.get().await?;
    Ok(db::sweep(&**client).await?)
}

/// Writes `job` from where it stands to its end, unless it is removed or taken over meanwhile.
async fn run(shared: &Shared, job: Job) -> anyhow::Result<()> {
    let settings = &shared.settings;
    let mut client = shared.pool.get().await?;
    let prepared = serde_json::from_value::<SearchQuery>(job.params.clone())
        .map_err(|e| e.to_string())
        .and_then(|q| prepare(&q).map_err(|e| e.to_string()));
    let prepared = match prepared {
        Ok(p) => Arc::new(p),
        Err(why) => {
            end(
                &client,
                &job,
                shared,
                Some(&format!("the search no longer runs: {why}")),
            )
            .await?;
            return Ok(());
        }
    };
    let jsonl = job.format == "jsonl";
    let mut seq = job.chunks;
    if !jsonl && seq == 0 {
        if !db::write_header(&mut client, job.id, &shared.worker, csv_header().as_bytes()).await? {
            return Ok(());
        }
        seq = 1;
    }
    let few = super::search::few(&**client, &prepared.scope).await?;
    let mut after = job.after.clone().map(|(created_at, id)| After {
        rank: 0.0,
        created_at,
        id,
    });
    let (mut rows, mut bytes) = (job.rows, job.bytes);
    let max_bytes = settings
        .max_stored_mb
        .min(settings.max_stored_mb_per_caller)
        .saturating_mul(1 << 20);
    loop {
        let started = Instant::now();
        let Some((posts, last)) = read_page(
            &**client,
            &prepared,
            after.as_ref(),
            settings.chunk_rows,
            few,
        )
        .await?
        else {
            if end(&client, &job, shared, None).await? {
                tracing::info!(job = job.id, rows, bytes, "export written");
            }
            return Ok(());
        };
        let chunk = (!posts.is_empty()).then(|| {
            let mut out = String::new();
            let mut ends = Vec::with_capacity(posts.len());
            encode(&posts, jsonl, &mut out, &mut ends);
            Chunk {
                data: out.into_bytes(),
                ids: posts.into_iter().map(|p| p.id).collect(),
                ends,
            }
        });
        if let Some(c) = &chunk {
            rows += c.ids.len() as i64;
            bytes += c.data.len() as i64;
        }
        if rows > settings.max_rows || bytes > max_bytes {
            let why = format!(
                "the search matches more than export.max_rows ({}) posts or its file passes \
                 {} MB (export.max_stored_mb_per_caller); narrow it",
                settings.max_rows,
                max_bytes >> 20
            );
            end(&client, &job, shared, Some(&why)).await?;
            return Ok(());
        }
        let step = Step {
            job: job.id,
            worker: &shared.worker,
            seq,
            chunk: chunk.as_ref(),
            after: (last.created_at, &last.id),
            lease_secs: settings.lease_secs as f64,
        };
        if !db::write_step(&mut client, &step).await? {
            tracing::info!(job = job.id, "export removed or taken over; stopped");
            return Ok(());
        }
        if let Some(c) = &chunk {
            seq += 1;
            metrics::counter!(names::EXPORTED_ROWS).increment(c.ids.len() as u64);
        }
        after = Some(last);
        if IngestContext::busy(shared.ingest.as_ref()) {
            let rest = started.elapsed().mul_f64(1.0 / settings.busy_share - 1.0);
            tokio::time::sleep(rest).await;
        }
    }
}

/// Ends the job, done or failed; whether this worker still held it.
async fn end(
    client: &deadpool_postgres::Object,
    job: &Job,
    shared: &Shared,
    error: Option<&str>,
) -> anyhow::Result<bool> {
    let ended = db::finish(
        &***client,
        job.id,
        &shared.worker,
        error,
        f64::from(shared.settings.link_hours),
    )
    .await?;
    if ended {
        let event = if error.is_some() { "failed" } else { "done" };
        metrics::counter!(names::EXPORT_JOBS, "event" => event).increment(1);
    }
    Ok(ended)
}
