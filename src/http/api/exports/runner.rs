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
use futures::FutureExt;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::actors::ingester::IngestContext;
use crate::config::ExportSettings;
use crate::db::export_jobs::{self as db, Chunk, Job, Step};
use crate::db::search::After;
use crate::http::api::search::export::{csv_header, encode, read_page};
use crate::http::api::search::{prepare, SearchQuery};
use crate::telemetry::names;

/// How long a worker waits for a job before looking again (a job created by another process
/// does not wake this one).
const POLL: Duration = Duration::from_secs(2);
/// How long a worker rests after a failure.
const BACKOFF: Duration = Duration::from_secs(5);
/// How often expired jobs are removed.
const SWEEP: Duration = Duration::from_secs(60);

/// A job claimed this often without being finished fails (each claim follows a process's
/// stop, a lease run out or a failure part way).
const MAX_ATTEMPTS: i32 = 10;

/// The running workers.
pub struct ExportRunner {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pool: Pool,
    /// The prefix of this process's workers' names.
    process: String,
}

/// What every worker shares.
struct Shared {
    settings: ExportSettings,
    pool: Pool,
    wake: Arc<Notify>,
    ingest: Option<Arc<IngestContext>>,
}

impl ExportRunner {
    /// Starts `settings.workers` workers named after `consumer`, with connections of their own
    /// (one each, and one to sweep and release).
    pub fn start(
        settings: &ExportSettings,
        database_url: &str,
        consumer: &str,
        wake: Arc<Notify>,
        ingest: Option<Arc<IngestContext>>,
    ) -> anyhow::Result<ExportRunner> {
        let pool = crate::db::pool(database_url, settings.workers + 1)?;
        let process = format!("{consumer}/{:016x}", rand::random::<u64>());
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            pool: pool.clone(),
            wake,
            ingest,
        });
        // Each worker has a name of its own, so a job one of them lost to another (its lease
        // ran out) cannot be written by both.
        let tasks = (0..settings.workers)
            .map(|n| {
                tokio::spawn(work(
                    shared.clone(),
                    stopped.clone(),
                    format!("{process}/{n}"),
                    n == 0,
                ))
            })
            .collect();
        Ok(ExportRunner {
            stop,
            tasks,
            pool,
            process,
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
        let release = async {
            let client = self.pool.get().await?;
            anyhow::Ok(db::release(&**client, &self.process).await?)
        };
        match tokio::time::timeout(Duration::from_secs(5), release).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %format_args!("{e:#}"), "could not release export jobs; they wait for their lease")
            }
            Err(_) => tracing::warn!("releasing export jobs timed out; they wait for their lease"),
        }
    }
}

/// One worker's loop until `stopped`.
async fn work(
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    worker: String,
    sweeps: bool,
) {
    let mut swept: Option<Instant> = None;
    while !*stopped.borrow() {
        if sweeps && swept.is_none_or(|at| at.elapsed() >= SWEEP) {
            swept = Some(Instant::now());
            match sweep(&shared.pool).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "removed expired exports"),
                Err(e) => {
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "removing expired exports failed")
                }
            }
        }
        let claimed = match shared.pool.get().await {
            Ok(client) => db::claim(&**client, &worker, shared.settings.lease_secs as f64)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        let pause = match claimed {
            Ok(Some(job)) => {
                let id = job.id;
                // A panic part way is a failure of this job, not the end of the worker.
                let attempt =
                    std::panic::AssertUnwindSafe(attempt(&shared, &worker, job)).catch_unwind();
                tokio::select! {
                    outcome = attempt => match outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("panicked"))) {
                        Ok(()) => Duration::ZERO,
                        Err(e) => {
                            tracing::warn!(error = %format_args!("{e:#}"), job = id, "an export job failed part way; it goes on from its last chunk");
                            if let Err(e) = note(&shared.pool, id, &worker, &e.to_string()).await {
                                tracing::warn!(error = %format_args!("{e:#}"), job = id, "could not record an export job's failure");
                            }
                            BACKOFF
                        }
                    },
                    _ = stopped.changed() => break,
                }
            }
            Ok(None) => POLL,
            Err(e) => {
                pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "looking for export jobs failed");
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

/// Runs `job`, unless it was claimed too often already: then it fails with the last reason.
async fn attempt(shared: &Shared, worker: &str, job: Job) -> anyhow::Result<()> {
    if job.attempts > MAX_ATTEMPTS {
        let why = format!(
            "gave up after {MAX_ATTEMPTS} attempts; the last failure: {}",
            job.error.as_deref().unwrap_or("none recorded")
        );
        let mut client = shared.pool.get().await?;
        end(&mut client, &job, worker, shared, Some(&why)).await?;
        return Ok(());
    }
    run(shared, worker, job).await
}

/// Records why a job failed part way (it stays leased, and is taken again once the lease runs
/// out, from its last chunk).
async fn note(pool: &Pool, job: i64, worker: &str, error: &str) -> anyhow::Result<()> {
    let client = pool.get().await?;
    db::note_failure(&**client, job, worker, error).await?;
    Ok(())
}

async fn sweep(pool: &Pool) -> anyhow::Result<u64> {
    let client = pool.get().await?;
    Ok(db::sweep(&**client).await?)
}

/// Writes `job` from where it stands to its end, unless it is removed or taken over meanwhile.
async fn run(shared: &Shared, worker: &str, job: Job) -> anyhow::Result<()> {
    let settings = &shared.settings;
    let mut client = shared.pool.get().await?;
    let prepared = serde_json::from_value::<SearchQuery>(job.params.clone())
        .map_err(|e| e.to_string())
        .and_then(|q| prepare(&q).map_err(|e| e.to_string()));
    let prepared = match prepared {
        Ok(p) => Arc::new(p),
        Err(why) => {
            let why = format!("the search no longer runs: {why}");
            end(&mut client, &job, worker, shared, Some(&why)).await?;
            return Ok(());
        }
    };
    let jsonl = job.format == "jsonl";
    let mut seq = job.chunks;
    if !jsonl && seq == 0 {
        if !db::write_header(&mut client, job.id, worker, csv_header().as_bytes()).await? {
            return Ok(());
        }
        seq = 1;
    }
    let few = crate::http::api::search::few(&**client, &prepared.scope).await?;
    let mut after = job.after.clone().map(|(created_at, id)| After {
        rank: 0.0,
        created_at,
        id,
    });
    let (mut rows, mut bytes) = (job.rows, job.bytes);
    let per_caller = settings.max_stored_mb_per_caller.saturating_mul(1 << 20);
    let in_all = settings.max_stored_mb.saturating_mul(1 << 20);
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
            if end(&mut client, &job, worker, shared, None).await? {
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
        let added = chunk.as_ref().map_or(0, |c| c.data.len() as i64);
        let (stored, owners) = db::stored(&**client, &job.owner).await?;
        let over = if rows > settings.max_rows {
            Some(format!(
                "the search matches more than export.max_rows ({}) posts; narrow it",
                settings.max_rows
            ))
        } else if owners + added > per_caller {
            Some(format!(
                "this caller's stored exports would pass export.max_stored_mb_per_caller ({} MB); \
                 narrow the search, or delete older exports",
                settings.max_stored_mb_per_caller
            ))
        } else if stored + added > in_all {
            Some(format!(
                "the stored exports would pass export.max_stored_mb ({} MB); try again when \
                 older ones expire",
                settings.max_stored_mb
            ))
        } else {
            None
        };
        if let Some(why) = over {
            end(&mut client, &job, worker, shared, Some(&why)).await?;
            return Ok(());
        }
        let step = Step {
            job: job.id,
            worker,
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
        // Never so long that the lease runs out between two chunks.
        let rest = IngestContext::rest_after(
            shared.ingest.as_ref(),
            started.elapsed(),
            settings.busy_share,
        )
        .min(Duration::from_secs(settings.lease_secs) / 3);
        if !rest.is_zero() {
            tokio::time::sleep(rest).await;
        }
    }
}

/// Ends the job, done or failed; whether this worker still held it.
async fn end(
    client: &mut deadpool_postgres::Object,
    job: &Job,
    worker: &str,
    shared: &Shared,
    error: Option<&str>,
) -> anyhow::Result<bool> {
    let ended = db::finish(
        client,
        job.id,
        worker,
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
