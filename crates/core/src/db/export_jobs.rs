//! Export jobs and their chunks (migration V22): created under the budgets, claimed by one
//! process at a time, written chunk by chunk with the job's place in the same transaction,
//! read back for a download and removed when their link expires.

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};

use super::table::Table;

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub owner: String,
    pub created_by: Option<String>,
    pub params: serde_json::Value,
    pub format: String,
    pub state: String,
    pub token: String,
    pub rows: i64,
    pub bytes: i64,
    pub chunks: i32,
    /// Every match newer than this (time, id) has been written.
    pub after: Option<(DateTime<Utc>, String)>,
    pub range_start: Option<DateTime<Utc>>,
    pub range_end: DateTime<Utc>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Times a process took the job.
    pub attempts: i32,
}

const COLUMNS: &str = "id, owner, created_by, params, format, state, token, rows, bytes, chunks, \
    after_created_at, after_id, range_start, range_end, error, created_at, finished_at, expires_at, \
    attempts";

fn job(r: &Row) -> Job {
    let after_at: Option<DateTime<Utc>> = r.get(10);
    let after_id: Option<String> = r.get(11);
    Job {
        id: r.get(0),
        owner: r.get(1),
        created_by: r.get(2),
        params: r.get(3),
        format: r.get(4),
        state: r.get(5),
        token: r.get(6),
        rows: r.get(7),
        bytes: r.get(8),
        chunks: r.get(9),
        after: after_at.zip(after_id),
        range_start: r.get(12),
        range_end: r.get(13),
        error: r.get(14),
        created_at: r.get(15),
        finished_at: r.get(16),
        expires_at: r.get(17),
        attempts: r.get(18),
    }
}

const JOBS: Table<Job> = Table {
    name: "export_jobs",
    columns: COLUMNS,
    read: job,
};

/// A job to store.
pub struct NewJob<'a> {
    pub owner: &'a str,
    pub created_by: Option<&'a str>,
    pub params: &'a serde_json::Value,
    pub format: &'a str,
    pub token: &'a str,
    pub range_start: Option<DateTime<Utc>>,
    pub range_end: DateTime<Utc>,
}

/// What a new job may not pass.
pub struct Budget {
    pub per_caller: i64,
    /// Jobs one caller keeps, in any state, until their links expire: a job that finishes at
    /// once is cheap to make, and every job stays in the table that each create and each chunk
    /// written sums over.
    pub kept_per_caller: i64,
    pub in_all: i64,
    pub stored_bytes: i64,
    pub stored_bytes_per_caller: i64,
}

/// Why a job was not stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("this caller keeps {0} exports")]
    CallerKeeps(i64),
    #[error("this caller has {0} exports queued or running")]
    CallerBusy(i64),
    #[error("{0} exports are queued or running")]
    Busy(i64),
    #[error("the stored exports hold {0} bytes")]
    Full(i64),
    #[error("this caller's stored exports hold {0} bytes")]
    CallerFull(i64),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// Stores a job unless it would pass `budget`.
pub async fn create(
    client: &mut deadpool_postgres::ClientWrapper,
    new: &NewJob<'_>,
    budget: &Budget,
) -> Result<Job, CreateError> {
    let tx = client.transaction().await?;
    let row = super::count_in_turns(
        &tx,
        "export_jobs/create",
        "SELECT count(*) FILTER (WHERE state IN ('queued', 'running') AND owner = $1), \
                count(*) FILTER (WHERE state IN ('queued', 'running')), \
                COALESCE(sum(bytes) FILTER (WHERE state <> 'failed'), 0)::int8, \
                COALESCE(sum(bytes) FILTER (WHERE state <> 'failed' AND owner = $1), 0)::int8, \
                count(*) FILTER (WHERE owner = $1 AND (expires_at IS NULL OR expires_at > now())) \
         FROM export_jobs",
        &[&new.owner],
    )
    .await?;
    let (mine, all, bytes, my_bytes, kept): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    // Before the running ones: ending one would not make room for another.
    if kept >= budget.kept_per_caller {
        return Err(CreateError::CallerKeeps(kept));
    }
    if mine >= budget.per_caller {
        return Err(CreateError::CallerBusy(mine));
    }
    if all >= budget.in_all {
        return Err(CreateError::Busy(all));
    }
    if bytes >= budget.stored_bytes {
        return Err(CreateError::Full(bytes));
    }
    if my_bytes >= budget.stored_bytes_per_caller {
        return Err(CreateError::CallerFull(my_bytes));
    }
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO export_jobs \
                   (owner, created_by, params, format, token, range_start, range_end) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
            ),
            &[
                &new.owner,
                &new.created_by,
                new.params,
                &new.format,
                &new.token,
                &new.range_start,
                &new.range_end,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(job(&row))
}

/// The oldest time a stored post carries, for a search without `from`.
pub async fn oldest_post(
    client: &impl GenericClient,
) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT created_at FROM posts ORDER BY created_at LIMIT 1",
            &[],
        )
        .await?
        .map(|r| r.get(0)))
}

/// `owner`'s job `id`.
pub async fn get(
    client: &impl GenericClient,
    id: i64,
    owner: &str,
) -> Result<Option<Job>, tokio_postgres::Error> {
    job_where(client, id, "owner", owner, "").await
}

/// A job made with a key (owner `key:<first key of its line>`) is served by its link only
/// while a key of that line is in force. The link is as much the key's reach as a token is:
/// revoking a line's last key (a leaked one, a departed user's) would otherwise leave every
/// file it had exported downloadable by whoever copied the links, until they expire. A key
/// made by rotation keeps the line, and its links, alive.
const LINE_IN_FORCE: &str = "AND (export_jobs.owner NOT LIKE 'key:%' OR EXISTS (\
    SELECT 1 FROM api_keys k WHERE k.revoked_at IS NULL \
    AND COALESCE(k.speaks_as, k.id) = substr(export_jobs.owner, 5)))";

/// Job `id` if `token` is its token and the caller who made it may still use the API (see
/// `LINE_IN_FORCE`).
pub async fn by_token(
    client: &impl GenericClient,
    id: i64,
    token: &str,
) -> Result<Option<Job>, tokio_postgres::Error> {
    job_where(client, id, "token", token, LINE_IN_FORCE).await
}

/// Job `id` if its text column `column` holds `value` and the condition `also` holds.
async fn job_where(
    client: &impl GenericClient,
    id: i64,
    column: &'static str,
    value: &str,
    also: &'static str,
) -> Result<Option<Job>, tokio_postgres::Error> {
    JOBS.row(
        client,
        &format!("WHERE id = $1 AND {column} = $2 {also}"),
        &[&id, &value],
    )
    .await
}

/// `owner`'s newest jobs.
pub async fn list(
    client: &impl GenericClient,
    owner: &str,
    limit: i64,
) -> Result<Vec<Job>, tokio_postgres::Error> {
    JOBS.rows(
        client,
        "WHERE owner = $1 ORDER BY id DESC LIMIT $2",
        &[&owner, &limit],
    )
    .await
}

/// Removes `owner`'s job `id` and its file, running or not; whether there was one. A process
/// writing it finds it gone at its next chunk and stops.
pub async fn remove(
    client: &impl GenericClient,
    id: i64,
    owner: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "DELETE FROM export_jobs WHERE id = $1 AND owner = $2",
            &[&id, &owner],
        )
        .await?
        == 1)
}

/// Takes the oldest job no process holds (queued, or running under a lease that has run
/// out) for `worker` until `lease_secs` from now.
pub async fn claim(
    client: &impl GenericClient,
    worker: &str,
    lease_secs: f64,
) -> Result<Option<Job>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE export_jobs SET state = 'running', worker = $1, attempts = attempts + 1, \
                        lease_until = now() + make_interval(secs => $2) \
                 WHERE id = (SELECT id FROM export_jobs \
                             WHERE state IN ('queued', 'running') \
                               AND (lease_until IS NULL OR lease_until < now()) \
                             ORDER BY id LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED) \
                 RETURNING {COLUMNS}"
            ),
            &[&worker, &lease_secs],
        )
        .await?;
    Ok(row.as_ref().map(job))
}

/// A piece of a job's file: its bytes, and each post's id and the end of its row.
#[derive(Debug, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub ids: Vec<String>,
    pub ends: Vec<i32>,
}

/// What one step of a job wrote.
pub struct Step<'a> {
    pub job: i64,
    pub worker: &'a str,
    /// The chunk's number: the job's chunks so far.
    pub seq: i32,
    /// `None` when the step read no match (the job's place moves on all the same).
    pub chunk: Option<&'a Chunk>,
    pub after: (DateTime<Utc>, &'a str),
    pub lease_secs: f64,
}

/// Commits a step: the chunk and the job's new place and lease together, only while `worker`
/// still holds the job at `seq` chunks. `false` when it does not (the job was removed, or
/// taken over after its lease ran out): nothing is written then.
pub async fn write_step(
    client: &mut deadpool_postgres::ClientWrapper,
    step: &Step<'_>,
) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let (rows, bytes, chunks) = match step.chunk {
        Some(c) => (c.ids.len() as i64, c.data.len() as i64, 1),
        None => (0, 0, 0),
    };
    let held = tx
        .execute(
            "UPDATE export_jobs SET rows = rows + $1, bytes = bytes + $2, chunks = chunks + $3, \
                    after_created_at = $4, after_id = $5, \
                    lease_until = now() + make_interval(secs => $6) \
             WHERE id = $7 AND worker = $8 AND state = 'running' AND chunks = $9",
            &[
                &rows,
                &bytes,
                &chunks,
                &step.after.0,
                &step.after.1,
                &step.lease_secs,
                &step.job,
                &step.worker,
                &step.seq,
            ],
        )
        .await?;
    let chunk = step.chunk.map(|c| (&c.data[..], &c.ids[..], &c.ends[..]));
    add_chunk(tx, held, step.job, step.seq, chunk).await
}

/// Writes the header chunk of a job that has none yet; `false` when `worker` does not hold it.
pub async fn write_header(
    client: &mut deadpool_postgres::ClientWrapper,
    job: i64,
    worker: &str,
    header: &[u8],
) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let held = tx
        .execute(
            "UPDATE export_jobs SET bytes = bytes + $1, chunks = 1 \
             WHERE id = $2 AND worker = $3 AND state = 'running' AND chunks = 0",
            &[&(header.len() as i64), &job, &worker],
        )
        .await?;
    add_chunk(tx, held, job, 0, Some((header, &[], &[]))).await
}

/// Once the statement that moved the job on found it held (`held` rows), adds its chunk
/// `seq` (data, post ids and row ends), if any, and commits; `false`, with nothing written,
/// when it was not held.
async fn add_chunk(
    tx: deadpool_postgres::Transaction<'_>,
    held: u64,
    job: i64,
    seq: i32,
    chunk: Option<(&[u8], &[String], &[i32])>,
) -> Result<bool, tokio_postgres::Error> {
    if held == 0 {
        return Ok(false);
    }
    if let Some((data, ids, ends)) = chunk {
        tx.execute(
            "INSERT INTO export_chunks (job_id, seq, data, ids, ends) VALUES ($1, $2, $3, $4, $5)",
            &[&job, &seq, &data, &ids, &ends],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Ends `worker`'s job: done (its link valid for `link_hours`), or failed with `error` (its
/// chunks removed in the same transaction, the job kept as long to say why).
pub async fn finish(
    client: &mut deadpool_postgres::ClientWrapper,
    job: i64,
    worker: &str,
    error: Option<&str>,
    link_hours: f64,
) -> Result<bool, tokio_postgres::Error> {
    let state = if error.is_some() { "failed" } else { "done" };
    let tx = client.transaction().await?;
    let ended = tx
        .execute(
            "UPDATE export_jobs SET state = $1, error = $2, finished_at = now(), \
                    expires_at = now() + make_interval(secs => $3::float8 * 3600), \
                    worker = NULL, lease_until = NULL \
             WHERE id = $4 AND worker = $5 AND state = 'running'",
            &[&state, &error, &link_hours, &job, &worker],
        )
        .await?
        == 1;
    if ended && error.is_some() {
        tx.execute("DELETE FROM export_chunks WHERE job_id = $1", &[&job])
            .await?;
    }
    tx.commit().await?;
    Ok(ended)
}

/// Records why `worker`'s job failed part way; it stays running, to be taken again.
pub async fn note_failure(
    client: &impl GenericClient,
    job: i64,
    worker: &str,
    error: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE export_jobs SET error = $1 WHERE id = $2 AND worker = $3 AND state = 'running'",
            &[&error, &job, &worker],
        )
        .await
}

/// Bytes the stored exports hold (failed jobs keep none): in all, and `owner`'s.
pub async fn stored(
    client: &impl GenericClient,
    owner: &str,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT COALESCE(sum(bytes) FILTER (WHERE state <> 'failed'), 0)::int8, \
                    COALESCE(sum(bytes) FILTER (WHERE state <> 'failed' AND owner = $1), 0)::int8 \
             FROM export_jobs",
            &[&owner],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Lets another process take the running jobs of the workers named `process/...` at once (at
/// shutdown).
pub async fn release(
    client: &impl GenericClient,
    process: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE export_jobs SET lease_until = now() \
             WHERE left(worker, length($1) + 1) = $1 || '/' AND state = 'running'",
            &[&process],
        )
        .await
}

/// Removes the jobs whose link has expired, with their files; how many.
pub async fn sweep(client: &impl GenericClient) -> Result<u64, tokio_postgres::Error> {
    client
        .execute("DELETE FROM export_jobs WHERE expires_at < now()", &[])
        .await
}

/// Chunk `seq` of job `job`, while its link is in force (`LINE_IN_FORCE`).
pub async fn chunk(
    client: &impl GenericClient,
    job: i64,
    seq: i32,
) -> Result<Option<Chunk>, tokio_postgres::Error> {
    // Read under the link's rule at every chunk, not only at the download's start: revoking
    // the line's last key ends a download under way too.
    let row = client
        .query_opt(
            &format!(
                "SELECT c.data, c.ids, c.ends FROM export_chunks c \
                 JOIN export_jobs ON export_jobs.id = c.job_id \
                 WHERE c.job_id = $1 AND c.seq = $2 {LINE_IN_FORCE}"
            ),
            &[&job, &seq],
        )
        .await?;
    Ok(row.map(|r| Chunk {
        data: r.get(0),
        ids: r.get(1),
        ends: r.get(2),
    }))
}

/// Which of `ids` are stored posts not deleted.
pub async fn live(
    client: &impl GenericClient,
    ids: &[String],
) -> Result<std::collections::HashSet<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id FROM posts WHERE id = ANY($1) AND deleted_at IS NULL",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
