//! Exports as jobs: `POST /api/v1/exports` with a search's parameters starts one, `GET
//! /api/v1/exports` and `GET /api/v1/exports/{id}` follow its progress, `DELETE` cancels it or
//! removes its file, and `GET /api/v1/exports/{id}/download?token=...` serves the file to
//! whoever holds the link, until it expires. A job is written by any process of the group
//! (see [`crate::http::api::exports::runner`]), so it outlives the process that started it; its file lives
//! in PostgreSQL, so every process serves it. A download leaves out the posts deleted since
//! the file was written.

pub mod runner;

use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::actors::ingester::IngestContext;
use crate::db::audit::{self, Outcome};
use crate::db::export_jobs::{self as db, Budget, CreateError, Job, NewJob};
use crate::http::answer::{self, Answer};
use crate::http::api::search::export::{audit_entry, export_query, ExportSlot, Pacing, Read};
use crate::http::api::search::SearchQuery;
use crate::http::documented::{error_responses, BadExportQuery};
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::middleware::guard::is_head;
use crate::http::state::{CallerDb, State};
use crate::models::errors::ErrorCode;
use crate::telemetry::names;

error_responses! {
    NoJob: 404 = "No job of this caller with this id",
}

/// Jobs a listing shows, newest first; also the jobs one caller may keep until their links
/// expire, so the listing shows every one.
const LISTED: i64 = 100;
/// Characters of a download token (32 random bytes, hex).
const TOKEN_CHARS: usize = 64;

/// An export job as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportJob {
    pub id: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// `csv` or `jsonl`.
    pub format: String,
    /// The search exported, as `GET /api/v1/search` takes it.
    #[schema(value_type = Object)]
    pub search: serde_json::Value,
    /// Posts written so far.
    pub rows: i64,
    /// Bytes written so far.
    pub bytes: i64,
    /// Share of the search's time range written so far, 0 to 1 (newest first; 1 when done).
    pub progress: f64,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the file and its link are removed (finished jobs).
    pub expires_at: Option<DateTime<Utc>>,
    /// Why a failed job failed.
    pub error: Option<String>,
    /// The file, for anyone holding this link, until `expires_at` (finished jobs only).
    pub download_url: Option<String>,
}

impl From<Job> for ExportJob {
    fn from(j: Job) -> Self {
        let progress = match (&*j.state, &j.after, j.range_start) {
            ("done", _, _) => 1.0,
            (_, Some((at, _)), Some(start)) if j.range_end > start => {
                let covered = (j.range_end - *at).num_milliseconds() as f64;
                let whole = (j.range_end - start).num_milliseconds() as f64;
                (covered / whole).clamp(0.0, 0.99)
            }
            _ => 0.0,
        };
        let download_url = (j.state == "done")
            .then(|| format!("/api/v1/exports/{}/download?token={}", j.id, j.token));
        ExportJob {
            id: j.id,
            state: j.state,
            format: j.format,
            search: j.params,
            rows: j.rows,
            bytes: j.bytes,
            progress,
            created_at: j.created_at,
            finished_at: j.finished_at,
            expires_at: j.expires_at,
            error: j.error,
            download_url,
        }
    }
}

/// Export jobs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportJobList {
    pub items: Vec<ExportJob>,
}

/// Starts an export job.
#[utoipa::path(
    tag = "search", operation_id = "create_export", summary = "Start an export job",
    description = "Exports a search as a job that any process of the group carries on if the \
            one that started it stops: every post the search matches, newest first, as CSV or JSON \
            lines (the columns of `GET /api/v1/search/export`). Takes that endpoint's parameters \
            in the query string. Follow it with `GET /api/v1/exports/{id}`; once `done`, its \
            `download_url` serves the file without a key until `expires_at` \
            (`export.link_hours`). At most `export.max_jobs_per_caller` queued or running per \
            caller and `export.max_jobs` in all, and 100 per caller in any state until their \
            links expire.",
    params(SearchQuery),
    responses(
        (status = 202, description = "Queued", body = ExportJob),
        (status = 409, description = "The stored exports hold `export.max_stored_mb`, or this \
            caller's `export.max_stored_mb_per_caller`, or this caller keeps 100 jobs whose \
            links have not expired (`limit_reached`)", body = ErrorBody),
        (status = 429, description = "This caller has as many jobs queued or running as it may", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable, or the group has as many jobs \
            as it may", body = ErrorBody),
        BadExportQuery,
    )
)]
#[post("/api/v1/exports")]
pub async fn create(state: State, req: HttpRequest) -> Answer {
    let (query, prepared, jsonl) = export_query(req.query_string())?;
    let settings = &state.settings.export;
    let mut client = state.db().await?;
    let range_start = match prepared.scope.from {
        Some(from) => Some(from),
        None => db::oldest_post(&**client).await?,
    };
    // The parameters given, as the search takes them (`q`, `platform`, `from`, `format`...).
    let mut params = serde_json::to_value(&query).map_err(ApiError::internal)?;
    if let Some(given) = params.as_object_mut() {
        given.retain(|_, v| !v.is_null());
    }
    let token: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        crate::models::hex::hex(&bytes)
    };
    let owner = state.job_owner();
    let actor = state.actor();
    let new = NewJob {
        owner: &owner,
        created_by: Some(&actor),
        params: &params,
        format: if jsonl { "jsonl" } else { "csv" },
        token: &token,
        range_start,
        range_end: prepared.scope.to.unwrap_or_else(Utc::now),
    };
    let budget = Budget {
        per_caller: settings.max_jobs_per_caller,
        kept_per_caller: LISTED,
        in_all: settings.max_jobs,
        stored_bytes: settings.max_stored_mb.saturating_mul(1 << 20),
        stored_bytes_per_caller: settings.max_stored_mb_per_caller.saturating_mul(1 << 20),
    };
    let job = match db::create(&mut client, &new, &budget).await {
        Ok(job) => job,
        Err(CreateError::CallerKeeps(n)) => {
            return Err(ApiError::new(
                ErrorCode::LimitReached,
                format!(
                    "this caller keeps {n} exports, as many as one caller may ({LISTED}); \
                     delete some or wait until their links expire"
                ),
            ))
        }
        Err(CreateError::CallerBusy(n)) => {
            return Err(ApiError::rate_limited(
                "export_jobs",
                format!(
                    "this caller has {n} exports queued or running, as many as \
                     export.max_jobs_per_caller allows; wait for one to end or delete one"
                ),
                std::time::Duration::from_secs(5),
            ))
        }
        Err(CreateError::Busy(n)) => {
            return Err(ApiError::busy_for(
                "export_jobs",
                format!("{n} exports are queued or running in the group; try again later"),
                30,
            ))
        }
        Err(CreateError::Full(bytes)) => {
            return Err(ApiError::new(
                ErrorCode::LimitReached,
                format!(
                    "the stored exports hold {} MB, as much as export.max_stored_mb allows; \
                     delete some or wait until their links expire",
                    bytes >> 20
                ),
            ))
        }
        Err(CreateError::CallerFull(bytes)) => {
            return Err(ApiError::new(
                ErrorCode::LimitReached,
                format!(
                    "this caller's stored exports hold {} MB, as much as \
                     export.max_stored_mb_per_caller allows; delete some or wait until their \
                     links expire",
                    bytes >> 20
                ),
            ))
        }
        Err(CreateError::Db(e)) => return Err(e.into()),
    };
    let entry = audit_entry(
        &state,
        &req,
        "search.export_job",
        format!("{}?{}", req.path(), req.query_string()),
        params.clone(),
    );
    audit::record(&**client, &entry, Outcome::Succeeded, Some(202)).await?;
    metrics::counter!(names::EXPORT_JOBS, "event" => "created").increment(1);
    state.export_wake.notify_one();
    let location = format!("/api/v1/exports/{}", job.id);
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", location))
        .json(ExportJob::from(job)))
}

/// Lists the caller's export jobs.
#[utoipa::path(
    tag = "search", operation_id = "list_exports", summary = "List export jobs",
    description = "The caller's newest 100 export jobs, newest first: every one whose link \
            has not expired, since a caller keeps at most 100.",
    responses((status = 200, description = "The jobs", body = ExportJobList), PostgresUnavailable)
)]
#[get("/api/v1/exports")]
pub async fn list(state: State) -> Answer {
    let client = state.db().await?;
    let jobs = db::list(&**client, &state.job_owner(), LISTED).await?;
    Ok(HttpResponse::Ok().json(ExportJobList {
        items: jobs.into_iter().map(ExportJob::from).collect(),
    }))
}

fn no_export(id: i64) -> ApiError {
    ApiError::not_found(format!("no export {id}"))
}

/// Reads one of the caller's export jobs.
#[utoipa::path(
    tag = "search", operation_id = "get_export", summary = "Read an export job",
    params(("id" = i64, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = ExportJob), NoJob, PostgresUnavailable)
)]
#[get("/api/v1/exports/{id}")]
pub async fn get_one(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    let job = db::get(&**client, *id, &state.job_owner()).await?;
    answer::found(job.map(ExportJob::from), || no_export(*id))
}

/// Cancels an export job, or removes its file.
#[utoipa::path(
    tag = "search", operation_id = "delete_export", summary = "Cancel or delete an export job",
    description = "A queued or running job stops at its next chunk; a finished one's file and \
            link are removed.",
    params(("id" = i64, Path, description = "The job's id")),
    responses((status = 204, description = "Cancelled or deleted"), NoJob, PostgresUnavailable)
)]
#[delete("/api/v1/exports/{id}")]
pub async fn remove(state: State, req: HttpRequest, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    if !db::remove(&**client, *id, &state.job_owner()).await? {
        return Err(no_export(*id));
    }
    let entry = job_audit(&state, &req, "search.export_delete", *id);
    audit::record(&**client, &entry, Outcome::Succeeded, Some(204)).await?;
    metrics::counter!(names::EXPORT_JOBS, "event" => "deleted").increment(1);
    Ok(HttpResponse::NoContent().finish())
}

/// The audit log's record of an action on job `id` (the query string, with a link's token,
/// is left out).
fn job_audit(state: &State, req: &HttpRequest, action: &str, id: i64) -> audit::Entry {
    audit_entry(
        state,
        req,
        action,
        req.path().to_string(),
        serde_json::json!({ "export": id }),
    )
}

/// A download link's token.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// The token of the job's `download_url`.
    pub token: String,
}

/// Downloads a finished export.
#[utoipa::path(
    tag = "search", operation_id = "download_export", summary = "Download an export",
    description = "The file of a finished export job, for whoever holds its link (no key), \
            until the job's `expires_at`. Posts deleted since the file was written are left out. \
            One download at a time per client, four per process; each is audited. A `HEAD` \
            answers with the headers alone, taking no place and leaving no audit record.",
    params(("id" = i64, Path, description = "The job's id"), DownloadQuery),
    responses(
        (status = 200, description = "The file, streamed", content_type = "text/csv"),
        (status = 404, description = "No such export, a wrong token, or an expired link", body = ErrorBody),
        (status = 409, description = "The job has not finished (`invalid_transition`)", body = ErrorBody),
        (status = 429, description = "This client's previous download is still running", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/exports/{id}/download")]
pub async fn download(state: State, req: HttpRequest, id: web::Path<i64>) -> Answer {
    let unknown = || ApiError::not_found("no such export, or its link has expired");
    let query = web::Query::<DownloadQuery>::from_query(req.query_string())
        .map_err(|_| unknown())?
        .into_inner();
    if query.token.len() != TOKEN_CHARS || !query.token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let job = {
        let client = state.db().await?;
        db::by_token(&**client, *id, &query.token).await?
    }
    .filter(|j| j.expires_at.is_none_or(|at| at > Utc::now()) && j.state != "failed")
    .ok_or_else(unknown)?;
    if job.state != "done" {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            format!(
                "the export is {} ({} rows so far); download it when it is done",
                job.state, job.rows
            ),
        ));
    }
    let name = format!("pulse-export-{}", job.id);
    let mut response = crate::http::api::search::export::attachment(job.format == "jsonl", &name);
    // A HEAD is answered with the headers alone: no place, no audit record, no chunk read.
    if is_head(&req) {
        return Ok(response.streaming(futures::stream::empty::<Result<Bytes, actix_web::Error>>()));
    }
    let slot = state.downloads.take(&state.client_id())?;
    {
        let client = state.db().await?;
        let entry = job_audit(&state, &req, "search.export_download", job.id);
        audit::record(&**client, &entry, Outcome::Succeeded, Some(200)).await?;
    }
    metrics::counter!(names::EXPORT_JOBS, "event" => "downloaded").increment(1);
    let read = Download {
        db: state.caller_db(),
        ingest: state.ingest.clone(),
        job: job.id,
        seq: 0,
        chunks: job.chunks,
        slot,
        pacing: Pacing::default(),
    };
    let body = futures::stream::unfold(read, |mut read| async move {
        let chunk = read.next().await;
        chunk.map(|c| (c, read))
    });
    Ok(response.streaming(body))
}

/// A download under way, a chunk at a time.
struct Download {
    /// The caller's connections: each chunk is charged to its share of their time.
    db: CallerDb,
    ingest: Option<Arc<IngestContext>>,
    job: i64,
    seq: i32,
    chunks: i32,
    slot: ExportSlot,
    pacing: Pacing,
}

impl Download {
    async fn next(&mut self) -> Option<Result<Bytes, actix_web::Error>> {
        loop {
            if self.seq >= self.chunks {
                return None;
            }
            // Before every chunk and after every wait for the client's share of the database
            // ([`Pacing`]): the wait renews the place, and a place given away ends the
            // download before another chunk is read.
            if !self.slot.reading() {
                self.seq = self.chunks;
                return Some(Err(crate::http::api::search::export::taken_back()));
            }
            match self.read(self.seq).await {
                Ok(Read::Paced(wait)) => self.pacing.wait(wait).await,
                Ok(Read::Got(bytes)) => {
                    self.pacing.read();
                    self.seq += 1;
                    self.slot.handed(bytes.len());
                    return Some(Ok(bytes));
                }
                Err(e) => {
                    tracing::warn!(error = %format_args!("{e:#}"), job = self.job, "a download stopped part way");
                    self.seq = self.chunks;
                    return Some(Err(actix_web::error::ErrorInternalServerError(
                        "the download stopped part way",
                    )));
                }
            }
        }
    }

    /// Chunk `seq` without the rows of posts deleted (or removed) since it was written, or
    /// how long until the client may read it ([`Pacing`]).
    async fn read(&mut self, seq: i32) -> anyhow::Result<Read<Bytes>> {
        let mut client = match self.db.try_get().await? {
            Ok(client) => client,
            Err(wait) => return Ok(Read::Paced(wait)),
        };
        let chunk = db::chunk(&**client, self.job, seq).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "the export was deleted during its download, or the last key of its line revoked"
            )
        })?;
        let live = if chunk.ids.is_empty() {
            None
        } else {
            Some(db::live(&**client, &chunk.ids).await?)
        };
        if !IngestContext::busy(self.ingest.as_ref()) {
            client.skip_rest();
        }
        let Some(live) = live.filter(|l| l.len() < chunk.ids.len()) else {
            return Ok(Read::Got(Bytes::from(chunk.data)));
        };
        let mut kept = Vec::with_capacity(chunk.data.len());
        let mut start = 0usize;
        for (id, end) in chunk.ids.iter().zip(&chunk.ends) {
            let end = (*end as usize).min(chunk.data.len());
            if live.contains(id) {
                kept.extend_from_slice(&chunk.data[start.min(end)..end]);
            }
            start = end;
        }
        Ok(Read::Got(Bytes::from(kept)))
    }
}
