//! `GET /api/v1/search/export`: every post a search matches, as CSV or JSON lines, streamed
//! page by page (flat memory whatever the size: a page is read only when the client has taken
//! the previous one). One export at a time per caller and [`MAX_EXPORTS`] in all; each is
//! recorded in the audit log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{get, web, HttpMessage, HttpRequest, HttpResponse};

use tokio_postgres::GenericClient;

use crate::actors::ingester::IngestContext;
use crate::db::audit::{self, Outcome};
use crate::db::search::{self as db, After, Order};
use crate::http::answer::Answer;
use crate::http::api::search::{fields, prepare, Prepared, SearchQuery};
use crate::http::documented::BadExportQuery;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::locks::lock;
use crate::http::middleware::guard::is_head;
use crate::http::middleware::request_id::RequestId;
use crate::http::state::{CallerDb, Standing, State};
use crate::models::errors::ErrorCode;
use crate::models::views::PostView;
use crate::telemetry::names;

/// Exports running at once in a process.
pub const MAX_EXPORTS: usize = 4;
/// Rows read from PostgreSQL at a time.
const PAGE_ROWS: i64 = 2_000;

/// The columns of a CSV export, in order (docs/search.md describes each).
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "created_at",
    "platform",
    "author_id",
    "author_followers",
    "lang",
    "country",
    "city",
    "product",
    "channel",
    "url",
    "parent_id",
    "likes",
    "shares",
    "comments",
    "views",
    "sentiment",
    "sentiment_score",
    "emotion",
    "anger",
    "joy",
    "optimism",
    "sadness",
    "toxicity",
    "hate",
    "churn_risk",
    "model",
    "language_support",
    "story_id",
    "topics",
    "ingested_at",
    "text",
];

/// How long a running export or download may go unread before its place can be given to
/// another caller: the server writes only as fast as the client reads, so a client that stops
/// reading (a tiny receive window) would otherwise hold the place as long as its connection
/// lasts. A slow reader keeps its place while no one else waits for one.
pub const STALLED_AFTER: Duration = Duration::from_secs(60);

/// The longest a stream waiting for its caller's share of the database sleeps before it looks
/// at its place and its caller again ([`Pacing`]): well under [`STALLED_AFTER`], so a stream
/// that waits is never taken for one unread, and a key revoked during a wait of up to a minute
/// ends the stream about this soon rather than when the wait is over.
pub const PACE_STEP: Duration = Duration::from_secs(1);

/// The slowest a client may read while others wait for a place, in bytes a second of the time
/// the client took to take what it was handed (the server's own reads and waits for its share
/// of the database not counted): 4 clients reading 10 KB a second held every place of a
/// process for as long as a day's download link lasts.
pub const MIN_READ_RATE: u64 = 64 * 1024;
/// How much of the client's time a stream is given before its rate is judged.
pub const SLOW_AFTER: Duration = Duration::from_secs(60);
const _: () = assert!(PACE_STEP.as_millis() * 10 <= STALLED_AFTER.as_millis());

/// What a stream's read of a page or a chunk gave: the page, or, its caller being in debt for
/// the API's connections, how long until it is paid back (and nothing was read).
pub enum Read<T> {
    Got(T),
    Paced(Duration),
}

/// A stream's waits for its caller's share of the API's connections
/// (`limits.per_caller_db_share`): a stream under way whose caller is in debt waits until it
/// is paid back rather than end part way.
///
/// The wait is apart from the read, which never waits for the share itself: after each step
/// of at most [`PACE_STEP`] the stream checks its place and its caller again, as before every
/// read, and only then tries to read. A wait inside the read (up to
/// `per_caller_db_burst_secs` over the share, a minute at the defaults) would come after those
/// checks, and a page be read and sent for a key revoked, or a place given away, meanwhile.
///
/// Waiting counts as reading: the client has asked for the next chunk and is waiting for it,
/// so each look renews the stream's place, and a stream paced at its caller's share is not
/// taken for a stalled one and cut.
#[derive(Debug, Default)]
pub struct Pacing {
    waiting: bool,
}

impl Pacing {
    /// Waits up to [`PACE_STEP`] of `wait`, what a read answered ([`Read::Paced`]); the
    /// first wait before a read is counted.
    pub async fn wait(&mut self, wait: Duration) {
        if !std::mem::replace(&mut self.waiting, true) {
            metrics::counter!(names::EXPORTS_PACED).increment(1);
        }
        tokio::time::sleep(wait.min(PACE_STEP)).await;
    }

    /// Notes a read: a wait after it is another.
    pub fn read(&mut self) {
        self.waiting = false;
    }
}

/// The callers with an export running, and how many run.
#[derive(Debug)]
pub struct Exports {
    running: Mutex<HashMap<String, Arc<Lease>>>,
    stalled_after: Duration,
    slow_after: Duration,
}

impl Default for Exports {
    fn default() -> Self {
        Self::stalling_after(STALLED_AFTER)
    }
}

/// A running export's place: when its stream last asked for a chunk, how fast its client
/// takes what it is handed, and whether the place was taken back.
#[derive(Debug)]
struct Lease {
    started: Instant,
    /// Milliseconds from `started` to the last chunk asked for.
    read_at_ms: AtomicU64,
    /// Milliseconds from `started` to the last chunk handed out, until the next is asked for
    /// ([`NOT_HANDED`] meanwhile).
    handed_at_ms: AtomicU64,
    /// Milliseconds the client took to ask for the next chunk after each was handed out.
    client_ms: AtomicU64,
    /// Bytes handed out.
    sent: AtomicU64,
    taken_back: AtomicBool,
}

/// No chunk handed out and not yet asked past.
const NOT_HANDED: u64 = u64::MAX;

impl Lease {
    fn new() -> Lease {
        Lease {
            started: Instant::now(),
            read_at_ms: AtomicU64::new(0),
            handed_at_ms: AtomicU64::new(NOT_HANDED),
            client_ms: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            taken_back: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn stalled(&self, after: Duration) -> bool {
        let read_at = Duration::from_millis(self.read_at_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(read_at) >= after
    }

    /// Whether its client, given at least `after` of its own time, took less than
    /// [`MIN_READ_RATE`] a second of it (the chunk it holds now counted).
    fn slow(&self, after: Duration) -> bool {
        let handed = self.handed_at_ms.load(Ordering::Relaxed);
        let holding = if handed == NOT_HANDED {
            0
        } else {
            self.now_ms().saturating_sub(handed)
        };
        let client_ms = self.client_ms.load(Ordering::Relaxed) + holding;
        let sent = self.sent.load(Ordering::Relaxed);
        u128::from(client_ms) >= after.as_millis()
            && u128::from(sent) * 1000 < u128::from(MIN_READ_RATE) * u128::from(client_ms)
    }
}

/// A running export's place, given back when the stream ends or the client leaves.
pub struct ExportSlot {
    exports: Arc<Exports>,
    caller: String,
    lease: Arc<Lease>,
}

impl Exports {
    /// Places that stall after `after` unread.
    pub fn stalling_after(after: Duration) -> Self {
        Self::with_limits(after, SLOW_AFTER)
    }

    /// Places that stall after `stalled_after` unread, and whose client's rate is judged
    /// after `slow_after` of its time.
    pub fn with_limits(stalled_after: Duration, slow_after: Duration) -> Self {
        Exports {
            running: Mutex::new(HashMap::new()),
            stalled_after,
            slow_after,
        }
    }

    /// `caller`'s place, or why it has none. Places unread past `stalled_after`, or read
    /// slower than [`MIN_READ_RATE`], are taken back when they are wanted: the caller's own,
    /// or any when every place is taken.
    pub fn take(self: &Arc<Self>, caller: &str) -> Result<ExportSlot, ApiError> {
        let mut running = lock(&self.running);
        let stalled =
            |lease: &Arc<Lease>| lease.stalled(self.stalled_after) || lease.slow(self.slow_after);
        if running.get(caller).is_some_and(stalled) || running.len() >= MAX_EXPORTS {
            running.retain(|_, lease| {
                let keep = !stalled(lease);
                if !keep {
                    lease.taken_back.store(true, Ordering::Relaxed);
                    metrics::counter!(names::EXPORTS_TAKEN_BACK).increment(1);
                }
                keep
            });
        }
        if running.contains_key(caller) {
            return Err(ApiError::rate_limited(
                "export",
                "this caller's previous export is still running; one at a time",
                std::time::Duration::from_secs(1),
            ));
        }
        if running.len() >= MAX_EXPORTS {
            return Err(ApiError::new(
                ErrorCode::Busy,
                format!("{MAX_EXPORTS} exports are running; try again when one ends"),
            ));
        }
        let lease = Arc::new(Lease::new());
        running.insert(caller.to_string(), lease.clone());
        Ok(ExportSlot {
            exports: self.clone(),
            caller: caller.to_string(),
            lease,
        })
    }
}

impl ExportSlot {
    /// Notes that the stream is asked for its next chunk; false once its place was taken
    /// back (it stalled while others waited), and the stream ends.
    pub fn reading(&self) -> bool {
        if self.lease.taken_back.load(Ordering::Relaxed) {
            return false;
        }
        let now = self.lease.now_ms();
        let handed = self.lease.handed_at_ms.swap(NOT_HANDED, Ordering::Relaxed);
        if handed != NOT_HANDED {
            let took = now.saturating_sub(handed);
            self.lease.client_ms.fetch_add(took, Ordering::Relaxed);
        }
        self.lease.read_at_ms.store(now, Ordering::Relaxed);
        true
    }

    /// Notes a chunk of `bytes` handed to the client: the time until the next is asked for
    /// is the client's.
    pub fn handed(&self, bytes: usize) {
        self.lease.sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.lease
            .handed_at_ms
            .store(self.lease.now_ms(), Ordering::Relaxed);
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        let mut running = lock(&self.exports.running);
        // A place taken back may have been given to the same caller again since.
        if running
            .get(&self.caller)
            .is_some_and(|lease| Arc::ptr_eq(lease, &self.lease))
        {
            running.remove(&self.caller);
        }
    }
}

/// The end of a stream whose place was taken back: the client sees a cut download.
pub fn taken_back() -> actix_web::Error {
    tracing::warn!("an export or download unread for too long gave its place to another caller");
    actix_web::error::ErrorServiceUnavailable("the download stalled and gave its place away")
}

/// The export's parameters from a query string: the search's, less what an export cannot
/// take, and `format`; whether the format is JSON lines.
pub fn export_query(raw: &str) -> Result<(SearchQuery, Prepared, bool), ApiError> {
    let query = web::Query::<SearchQuery>::from_query(raw)
        .map_err(|e| ApiError::invalid_query(e.to_string()))?
        .into_inner();
    let jsonl = match query.format.as_deref() {
        None | Some("csv") => false,
        Some("jsonl") => true,
        Some(other) => {
            return Err(ApiError::invalid_query(format!(
                "format must be csv or jsonl, not `{other}`"
            )))
        }
    };
    for (name, given) in [
        ("limit", query.limit.is_some()),
        ("cursor", query.cursor.is_some()),
        ("facets", query.facets.is_some()),
        ("interval", query.interval.is_some()),
        ("order", query.order.is_some()),
    ] {
        if given {
            return Err(ApiError::invalid_query(format!(
                "an export takes every match, newest first: `{name}` does not apply"
            )));
        }
    }
    let prepared = prepare(&query)?;
    Ok((query, prepared, jsonl))
}

/// The audit log's record of `action` by the caller of `req` on `target`, named as the gate's
/// records are: the request id the response carries (the header as sent may be any text, and
/// a refused one is answered under a new id) and the client's address (a download through a
/// link has no key, and its network alone does not say who took the file).
pub fn audit_entry(
    state: &State,
    req: &HttpRequest,
    action: &str,
    target: String,
    payload: serde_json::Value,
) -> audit::Entry {
    audit::Entry {
        actor: state.actor(),
        actor_role: state.caller().map(|c| c.role.to_string()),
        action: action.into(),
        target: Some(target),
        payload,
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
        ip: Some(state.client_address(req)),
    }
}

/// A 200 whose body is a file of posts to save: JSON lines when `jsonl`, CSV otherwise,
/// named `<name>.jsonl` or `<name>.csv`.
pub fn attachment(jsonl: bool, name: &str) -> actix_web::HttpResponseBuilder {
    let (content_type, extension) = if jsonl {
        ("application/x-ndjson; charset=utf-8", "jsonl")
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    let mut response = HttpResponse::Ok();
    response.content_type(content_type).insert_header((
        "Content-Disposition",
        format!("attachment; filename=\"{name}.{extension}\""),
    ));
    response
}

/// Exports a search.
#[utoipa::path(
    tag = "search", operation_id = "export_search", summary = "Export a search",
    description = "Every post the search matches, newest first, as CSV (UTF-8, a header row, \
            the columns of docs/search.md) or JSON lines (one post as `GET /api/v1/posts/{id}` \
            answers it per line), streamed. Takes the search's parameters (`limit`, `cursor`, \
            `order` and `facets` aside) and `format`. One export at a time per caller. A `HEAD` \
            answers with the headers alone, taking no place and leaving no audit record. For an \
            export that should outlive the connection, see `POST /api/v1/exports`.",
    params(SearchQuery),
    responses(
        (status = 200, description = "The posts, streamed", content_type = "text/csv"),
        (status = 429, description = "This caller's previous export is still running", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable, or the process runs as many \
            exports as it may", body = ErrorBody),
        BadExportQuery,
    )
)]
#[get("/api/v1/search/export")]
pub async fn export(state: State, req: HttpRequest) -> Answer {
    let (query, prepared, jsonl) = export_query(req.query_string())?;
    let mut response = attachment(jsonl, "pulse-search");
    // A HEAD is answered with the headers alone: no place, no audit record, no page read.
    if is_head(&req) {
        return Ok(response.streaming(futures::stream::empty::<Result<Bytes, actix_web::Error>>()));
    }
    let slot = state.exports.take(&state.client_id())?;
    let entry = audit_entry(
        &state,
        &req,
        "search.export",
        format!("{}?{}", req.path(), req.query_string()),
        serde_json::to_value(&query).unwrap_or_default(),
    );
    let few = {
        let client = state.db().await?;
        audit::record(&**client, &entry, Outcome::Succeeded, Some(200)).await?;
        crate::http::api::search::few(&**client, &prepared.scope).await?
    };
    metrics::counter!(names::SEARCHES, "kind" => "export").increment(1);
    let pages = Store {
        db: state.caller_db(),
        ingest: state.ingest.clone(),
        prepared: Arc::new(prepared),
        few,
        after: None,
    };
    let run = Run::new(pages, jsonl, slot).for_caller(state.standing());
    let body = futures::stream::unfold(run, |mut run| async move {
        let chunk = run.next().await;
        chunk.map(|c| (c, run))
    });
    Ok(response.streaming(body))
}

/// A page of a streamed export: its matches (none when no candidate of the page matched) and
/// where it ended; `None` past the last.
type Page = Option<(Vec<PostView>, After)>;

/// Where a streamed export's pages come from.
trait Pages {
    /// The next page, or how long until the caller may read it ([`Pacing`]).
    async fn page(&mut self) -> anyhow::Result<Read<Page>>;
}

/// The pages of a search, read from the store.
struct Store {
    /// The caller's connections: each page is charged to its share of their time.
    db: CallerDb,
    ingest: Option<Arc<IngestContext>>,
    prepared: Arc<Prepared>,
    few: bool,
    after: Option<After>,
}

impl Pages for Store {
    /// The next page, through a connection that rests after it as every API read does while
    /// the pipeline has entries in flight, and not otherwise (it has nothing to give way to).
    async fn page(&mut self) -> anyhow::Result<Read<Page>> {
        let candidates = {
            let mut client = match self.db.try_get().await? {
                Ok(client) => client,
                Err(wait) => return Ok(Read::Paced(wait)),
            };
            let candidates = db::candidates(
                &**client,
                &self.prepared.scope,
                Order::Newest,
                self.after.as_ref(),
                PAGE_ROWS,
                self.few,
            )
            .await;
            if !IngestContext::busy(self.ingest.as_ref()) {
                client.skip_rest();
            }
            candidates?
        };
        // The connection is given back before the candidates are checked.
        let page = matches(&self.prepared, candidates).await?;
        if let Some((_, last)) = &page {
            self.after = Some(last.clone());
        }
        Ok(Read::Got(page))
    }
}

/// An export under way.
struct Run<P> {
    pages: P,
    header: bool,
    jsonl: bool,
    done: bool,
    slot: ExportSlot,
    caller: Standing,
    pacing: Pacing,
}

impl<P: Pages> Run<P> {
    /// A run from its start: a CSV body opens with its header line, JSON lines have none.
    fn new(pages: P, jsonl: bool, slot: ExportSlot) -> Self {
        Run {
            pages,
            header: !jsonl,
            jsonl,
            done: false,
            slot,
            caller: Standing::default(),
            pacing: Pacing::default(),
        }
    }

    /// The run ends once `caller` no longer stands (its key revoked, its token expired).
    fn for_caller(mut self, caller: Standing) -> Self {
        self.caller = caller;
        self
    }

    /// The next chunk of the body; `None` at the end. A failure part way ends the body
    /// early (the client sees a truncated download, and the error is logged).
    async fn next(&mut self) -> Option<Result<Bytes, actix_web::Error>> {
        if self.done {
            return None;
        }
        let mut out = String::new();
        if std::mem::take(&mut self.header) {
            out.push_str(&csv_header());
        }
        loop {
            // Before every page, not only every chunk, and after every wait for the caller's
            // share of the database ([`Pacing`]): an export reading on through pages where
            // nothing matched, or waiting for its share, is at work, not unread, and keeps its
            // place; and one whose place was given away ends here, rather than read on beside
            // the export that took it (one caller could otherwise hold any number of scans, a
            // minute apart).
            if !self.slot.reading() {
                self.done = true;
                return Some(Err(taken_back()));
            }
            if !self.caller.holds() {
                self.done = true;
                tracing::info!(
                    "an export ended part way: its key was revoked or its token expired"
                );
                return Some(Err(actix_web::error::ErrorForbidden(
                    "the key this export was started with was revoked, or its token expired",
                )));
            }
            let page = match self.pages.page().await {
                Ok(Read::Paced(wait)) => {
                    self.pacing.wait(wait).await;
                    continue;
                }
                Ok(Read::Got(page)) => {
                    self.pacing.read();
                    Ok(page)
                }
                Err(e) => Err(e),
            };
            match page {
                Ok(Some((posts, _))) => {
                    if posts.is_empty() {
                        // A page of candidates none of which matched: read on, without an
                        // empty chunk.
                        continue;
                    }
                    metrics::counter!(names::EXPORTED_ROWS).increment(posts.len() as u64);
                    encode(&posts, self.jsonl, &mut out, &mut Vec::new());
                    self.slot.handed(out.len());
                    return Some(Ok(Bytes::from(out)));
                }
                Ok(None) => {
                    self.done = true;
                    return (!out.is_empty()).then(|| Ok(Bytes::from(out)));
                }
                Err(e) => {
                    tracing::warn!(error = %format_args!("{e:#}"), "an export stopped part way");
                    self.done = true;
                    return Some(Err(actix_web::error::ErrorInternalServerError(
                        "the export stopped part way",
                    )));
                }
            }
        }
    }
}

/// The matches among the next `rows` candidates after `after`, newest first, and where they
/// ended (the list may be empty when none matched); `None` past the last.
pub async fn read_page(
    client: &impl GenericClient,
    prepared: &Arc<Prepared>,
    after: Option<&After>,
    rows: i64,
    few: bool,
) -> anyhow::Result<Option<(Vec<PostView>, After)>> {
    let candidates =
        db::candidates(client, &prepared.scope, Order::Newest, after, rows, few).await?;
    matches(prepared, candidates).await
}

/// The candidates that match, and where they ended; `None` for no candidates.
async fn matches(
    prepared: &Arc<Prepared>,
    candidates: Vec<db::Candidate>,
) -> anyhow::Result<Option<(Vec<PostView>, After)>> {
    let Some(last) = candidates.last() else {
        return Ok(None);
    };
    let last = After {
        rank: 0.0,
        created_at: last.post.created_at,
        id: last.post.id.clone(),
    };
    let prepared = prepared.clone();
    let posts: Vec<PostView> = tokio::task::spawn_blocking(move || {
        candidates
            .into_iter()
            .filter(|c| {
                (prepared.exact && !c.unsure) || !prepared.set.matches(&fields(&c.post)).is_empty()
            })
            .map(|c| c.post)
            .collect()
    })
    .await?;
    Ok(Some((posts, last)))
}

/// The CSV header row.
pub fn csv_header() -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    out
}

/// Appends `posts` to `out` as CSV rows or JSON lines, and where each ends to `ends`.
pub fn encode(posts: &[PostView], jsonl: bool, out: &mut String, ends: &mut Vec<i32>) {
    for p in posts {
        if jsonl {
            out.push_str(&serde_json::to_string(p).unwrap_or_default());
            out.push('\n');
        } else {
            csv_row(out, p);
        }
        ends.push(i32::try_from(out.len()).unwrap_or(i32::MAX));
    }
}

/// One post as a CSV row (RFC 4180: quoted where needed, CRLF).
fn csv_row(out: &mut String, p: &PostView) {
    let a = &p.analysis;
    let m = p.metrics.as_ref();
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let topics: Vec<String> = p.topics.iter().map(i64::to_string).collect();
    let e = &a.emotions;
    let cells: [String; 32] = [
        p.id.clone(),
        p.created_at.to_rfc3339(),
        p.platform.as_str().to_string(),
        p.author.id.clone(),
        p.author.followers.to_string(),
        p.lang.clone().unwrap_or_default(),
        p.geo.country.clone().unwrap_or_default(),
        p.geo.city.clone().unwrap_or_default(),
        p.product.clone().unwrap_or_default(),
        p.channel.clone().unwrap_or_default(),
        p.url.clone().unwrap_or_default(),
        p.parent_id.clone().unwrap_or_default(),
        opt(m.map(|m| m.likes)),
        opt(m.and_then(|m| m.shares)),
        opt(m.and_then(|m| m.comments)),
        opt(m.and_then(|m| m.views)),
        a.sentiment.label.as_str().to_string(),
        a.sentiment.score.to_string(),
        a.emotion
            .map(|e| e.as_str().to_string())
            .unwrap_or_default(),
        e.anger.get().to_string(),
        e.joy.get().to_string(),
        e.optimism.get().to_string(),
        e.sadness.get().to_string(),
        a.toxicity.to_string(),
        a.hate.to_string(),
        a.churn_risk.to_string(),
        a.model.clone(),
        a.language_support.as_str().to_string(),
        p.story_id.map(|s| s.to_string()).unwrap_or_default(),
        topics.join(" "),
        p.ingested_at.to_rfc3339(),
        p.text.clone(),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(out, cell);
    }
    out.push_str("\r\n");
}

/// Characters a spreadsheet reads as the start of a formula.
const FORMULA_STARTS: [char; 4] = ['=', '+', '-', '@'];
/// Characters after which a spreadsheet may start a new cell: a line break, and the separators
/// of locales that split on `;` (Excel in most of Europe) or of a tab-separated import.
const CELL_BREAKS: [char; 4] = [';', '\t', '\r', '\n'];

/// A cell, quoted when it holds a comma, a quote or a line break. A cell a spreadsheet would
/// read as a formula (`=`, `+`, `-`, `@`, a tab or a carriage return first) starts with `'`, and
/// so does any formula start after a `;`, a tab or a line break inside it: where the list
/// separator is `;`, `Love it;=1+1` is two cells, the second a formula.
fn csv_cell(out: &mut String, cell: &str) {
    let formula =
        cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.parse::<f64>().is_err();
    let quote = formula || cell.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    let mut after_break = false;
    for c in cell.chars() {
        if after_break && FORMULA_STARTS.contains(&c) {
            out.push('\'');
        }
        after_break = CELL_BREAKS.contains(&c);
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

#[cfg(test)]
mod tests;
