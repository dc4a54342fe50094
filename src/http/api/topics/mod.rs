//! Topics: create, list, read, edit (a new version when the query changes), pause, delete,
//! preview against the stored posts, and re-tag stored posts (docs/topics.md).

pub mod relevance;

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::actors::analyzer::share::NoPlace;
use crate::db::retags::{self, RetagJob};
use crate::db::topics::{self as db, TopicEdit, TopicError};
use crate::http::answer::{self, Answer};
use crate::http::documented::{error_responses, Deleted, ReadTimedOut};
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::errors::ErrorCode;
use crate::models::topic::{TopicStatus, TopicVersionView, TopicView};
use crate::models::views::PostView;
use crate::topics::{self, QueryError, TopicSet, Verdict};

error_responses! {
    NoTopic: 404 = "No live topic with this id",
    NoRetag: 404 = "No such re-tagging of this topic",
    NotAnInteger: 400 = "An id is not an integer (`invalid_path`)",
}

/// Longest topic name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most stored posts a preview reads per query.
const PREVIEW_PAGE: i64 = 5_000;
/// Most bytes of stored posts a preview reads per query (as [`db::text_page`] counts them):
/// posts of 20,000 bytes made a page of rows alone 100 MB, held through its matching after its
/// connection went back. A page is held about twice over at most (as read, then as matched), so
/// the previews of a process hold about `2 × 4 MiB × topics.preview_max_running`.
pub const PREVIEW_PAGE_BYTES: i64 = 4 << 20;
/// Most hours a preview looks back.
pub const MAX_PREVIEW_HOURS: i64 = 168;
/// Most samples of each kind a preview returns.
pub const MAX_PREVIEW_SAMPLES: usize = 50;

/// A new topic.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    /// 1 to 200 characters, not blank, without control, zero-width or direction-changing characters; unique among live topics
    /// whatever the case.
    pub name: String,
    /// A query in the topic language (docs/topics.md).
    pub query: String,
    /// Default `active`.
    pub status: Option<TopicStatus>,
}

/// The fields of a topic to change; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicPatch {
    pub name: Option<String>,
    /// A different query makes a new version.
    pub query: Option<String>,
    /// `paused` stops matching new posts; `active` resumes.
    pub status: Option<TopicStatus>,
}

/// A page of live topics.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicList {
    /// By id.
    pub items: Vec<TopicView>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<i64>,
}

/// Which page of topics.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopicListQuery {
    /// Topics after this id: the previous page's `next_after`.
    pub after: Option<i64>,
    /// 1 to 1,000 (default 1,000).
    pub limit: Option<i64>,
}

/// Most topics a page of `GET /api/v1/topics` holds: with queries of up to 4,096 characters,
/// a page is at most about 17 MB, where every topic of a full deployment in one answer was
/// 170 MB a request.
pub const MAX_TOPIC_PAGE: i64 = 1_000;

/// The versions of a topic's query.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionList {
    /// Newest first.
    pub items: Vec<TopicVersionView>,
}

/// What a query would match, asked before saving it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub query: String,
    /// How far back to look, 1 to 168 (default 24).
    #[schema(minimum = 1, maximum = 168)]
    pub hours: Option<i64>,
    /// Samples of each kind, 0 to 50 (default 20).
    #[schema(minimum = 0, maximum = 50)]
    pub samples: Option<usize>,
}

/// Posts of a preview: how many, and the newest of them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreviewPosts {
    pub count: i64,
    /// `count` per hour of the stretch read.
    pub per_hour: f64,
    pub samples: Vec<PostView>,
}

/// What a query matches among the stored posts of a recent stretch.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Preview {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Posts read, newest first, up to `topics.preview_max_posts`.
    pub scanned: i64,
    /// Whether every post of the stretch was read (else `from` is where reading stopped).
    pub complete: bool,
    pub matches: PreviewPosts,
    /// Posts holding the query's words that a `NOT` or a field left out: the noise the query
    /// cuts.
    pub near_misses: PreviewPosts,
}

/// Asks for a re-tagging of stored posts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetagRequest {
    /// Posts created in the last `days` days, 1 to `topics.retag_max_days` (default 90).
    #[schema(minimum = 1)]
    pub days: i64,
}

/// The re-taggings of a topic.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetagList {
    /// Newest first, at most 50.
    pub items: Vec<RetagJob>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidTopic, message)
}

/// The 400 of a query the language refuses, with where and what was expected.
pub fn query_error(e: QueryError) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidTopicQuery, e.to_string())
        .with_details(json!({"position": e.position, "expected": e.expected}))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    name_problem(name).map_or(Ok(()), |why| Err(invalid(why)))
}

/// What is wrong with `name` as the name of a topic or a saved search, if anything.
pub fn name_problem(name: &str) -> Option<String> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_NAME_CHARS {
        return Some(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters, not blank"
        ));
    }
    if crate::models::printable::has_unshowable(name) {
        return Some(
            "name must not contain control, zero-width or direction-changing characters".into(),
        );
    }
    None
}

/// `query` parsed; it is stored as the text given, once it parses.
pub fn parsed(query: &str) -> Result<topics::Expr, ApiError> {
    if query.contains('\0') {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidTopicQuery,
            "the query contains a NUL character",
        )
        .with_details(
            json!({"position": query.chars().position(|c| c == '\0'), "expected": "text"}),
        ));
    }
    topics::parse(query).map_err(query_error)
}

fn topic_error(e: TopicError) -> ApiError {
    match e {
        TopicError::NameTaken(name) => ApiError::new(
            ErrorCode::NameTaken,
            format!("a topic named `{name}` exists"),
        ),
        TopicError::TooMany(limit) => ApiError::limit_reached(
            limit,
            "topics",
            Some(["topics.max_topics_per_key", "topics.max_topics"]),
        ),
        TopicError::Db(e) => e.into(),
    }
}

fn no_topic(id: i64) -> ApiError {
    ApiError::not_found(format!("no topic {id}"))
}

fn no_retag(id: i64, job: i64) -> ApiError {
    ApiError::not_found(format!("no re-tagging {job} of topic {id}"))
}

/// Live topics, a page at a time.
#[utoipa::path(
    tag = "topics", summary = "List topics", params(TopicListQuery),
    responses(
        (status = 200, description = "Live topics by id, up to `limit`", body = TopicList),
        (status = 400, description = "A limit out of range (`invalid_query`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/topics")]
pub async fn list(state: State, q: web::Query<TopicListQuery>) -> Answer {
    let limit = crate::http::filters::page_limit(q.limit, MAX_TOPIC_PAGE, MAX_TOPIC_PAGE)?;
    let client = state.db().await?;
    let items = db::list(&**client, q.after.unwrap_or(0), limit).await?;
    let next_after = crate::http::cursor::after_full_page(&items, limit, |t| t.id);
    Ok(HttpResponse::Ok().json(TopicList { items, next_after }))
}

/// Creates a topic; new posts are matched against it within `topics.refresh_ms`.
#[utoipa::path(
    tag = "topics", summary = "Create a topic", request_body = NewTopic,
    responses(
        (status = 201, description = "The topic as stored (version 1)", body = TopicView),
        (status = 400, description = "A query that does not parse (`invalid_topic_query`, with \
            `details.position` and `details.expected`), a bad name (`invalid_topic`) or a body \
            that is not a topic (`invalid_json`)", body = ErrorBody),
        (status = 409, description = "The name is taken (`name_taken`), or the caller's key \
            holds `topics.max_topics_per_key` topics or the deployment `topics.max_topics` \
            (`limit_reached`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/topics")]
pub async fn create(state: State, input: web::Json<NewTopic>) -> Answer {
    check_name(&input.name)?;
    parsed(&input.query)?;
    let actor = state.actor();
    let mut client = state.db().await?;
    let topic = db::create(
        &mut client,
        input.name.trim(),
        &input.query,
        input.status.unwrap_or(TopicStatus::Active),
        Some(&actor),
        state.caps(
            &actor,
            state.settings.topics.max_topics_per_key as i64,
            state.settings.topics.max_topics as i64,
        ),
    )
    .await
    .map_err(topic_error)?;
    Ok(HttpResponse::Created().json(topic))
}

/// One live topic.
#[utoipa::path(
    tag = "topics", summary = "One topic",
    params(("id" = i64, Path, description = "The topic's id")),
    responses(
        (status = 200, description = "The topic", body = TopicView),
        NoTopic, PostgresUnavailable,
    )
)]
#[get("/api/v1/topics/{id}")]
pub async fn get_one(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    answer::found(db::get(&**client, *id).await?, || no_topic(*id))
}

/// Changes a topic's name, query or status; a changed query is a new version, which new posts
/// are matched against (stored posts keep the version they matched until re-tagged).
#[utoipa::path(
    tag = "topics", summary = "Edit a topic",
    params(("id" = i64, Path, description = "The topic's id")), request_body = TopicPatch,
    responses(
        (status = 200, description = "The topic as stored", body = TopicView),
        (status = 400, description = "A query that does not parse (`invalid_topic_query`), a \
            bad name (`invalid_topic`), an id that is not an integer (`invalid_path`) or a body \
            that is not a change (`invalid_json`)", body = ErrorBody),
        (status = 409, description = "The name is taken (`name_taken`)", body = ErrorBody),
        NoTopic, PostgresUnavailable,
    )
)]
#[patch("/api/v1/topics/{id}")]
pub async fn update(state: State, id: web::Path<i64>, input: web::Json<TopicPatch>) -> Answer {
    if let Some(name) = &input.name {
        check_name(name)?;
    }
    if let Some(query) = &input.query {
        parsed(query)?;
    }
    let actor = state.actor();
    let client = state.db().await?;
    let edit = TopicEdit {
        name: input.name.as_deref().map(str::trim),
        query: input.query.as_deref(),
        status: input.status,
    };
    let topic = db::update(&**client, *id, &edit, Some(&actor))
        .await
        .map_err(topic_error)?
        .ok_or_else(|| no_topic(*id))?;
    Ok(HttpResponse::Ok().json(topic))
}

/// Deletes a topic: it leaves the listings and the matcher (within `topics.refresh_ms`), its
/// id is never given again, and posts keep the ids they matched.
#[utoipa::path(
    tag = "topics", summary = "Delete a topic",
    params(("id" = i64, Path, description = "The topic's id")),
    responses(Deleted, NoTopic, PostgresUnavailable)
)]
#[delete("/api/v1/topics/{id}")]
pub async fn remove(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    answer::deleted(db::delete(&**client, *id).await?, || no_topic(*id))
}

/// The versions of a topic's query, the newest 500.
#[utoipa::path(
    tag = "topics", summary = "A topic's versions",
    params(("id" = i64, Path, description = "The topic's id")),
    responses(
        (status = 200, description = "The newest 500 versions, newest first", body = VersionList),
        NoTopic, PostgresUnavailable,
    )
)]
#[get("/api/v1/topics/{id}/versions")]
pub async fn versions(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    let items = db::versions(&**client, *id).await?;
    if items.is_empty() {
        return Err(no_topic(*id));
    }
    Ok(HttpResponse::Ok().json(VersionList { items }))
}

/// What a query would match among the stored posts of the last hours, and the near misses
/// its `NOT`s and fields cut, before it is saved. One preview at a time per caller and at most
/// `topics.preview_max_running` in the process; it reads at most `topics.preview_max_posts`
/// posts through the API's connections, in pages of at most 5,000 posts and 4 MiB.
#[utoipa::path(
    tag = "topics", summary = "Preview a query", request_body = PreviewRequest,
    responses(
        (status = 200, description = "Matches and near misses among recent posts", body = Preview),
        (status = 400, description = "A query that does not parse (`invalid_topic_query`), \
            hours or samples out of range (`invalid_topic`) or a body that is not a preview \
            (`invalid_json`)", body = ErrorBody),
        (status = 429, description = "This caller's previous preview is still running \
            (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable or busy, or the process runs \
            `topics.preview_max_running` previews (`busy`, `details.reason` `preview`, \
            `Retry-After`)", body = ErrorBody),
        ReadTimedOut,
    )
)]
#[post("/api/v1/topic-preview")]
pub async fn preview(state: State, input: web::Json<PreviewRequest>) -> Answer {
    let hours = input.hours.unwrap_or(24);
    if !(1..=MAX_PREVIEW_HOURS).contains(&hours) {
        return Err(invalid(format!("hours must be 1 to {MAX_PREVIEW_HOURS}")));
    }
    let wanted = input.samples.unwrap_or(20);
    if wanted > MAX_PREVIEW_SAMPLES {
        return Err(invalid(format!(
            "samples must be 0 to {MAX_PREVIEW_SAMPLES}"
        )));
    }
    let expr = parsed(&input.query)?;
    let caller = state.client_id();
    let running = state.settings.topics.preview_max_running;
    let _slot = match state.previews.take_within(&caller, running) {
        Ok(slot) => slot,
        Err(NoPlace::Caller) => {
            return Err(ApiError::rate_limited(
                "preview",
                "this caller's previous preview is still running; one at a time",
                std::time::Duration::from_secs(1),
            ))
        }
        Err(NoPlace::Full) => {
            return Err(ApiError::busy_for(
                "preview",
                format!(
                    "{running} previews are running (topics.preview_max_running); retry shortly"
                ),
                1,
            ))
        }
    };
    let set = std::sync::Arc::new(TopicSet::of(0, 0, &expr));
    let to = Utc::now();
    let from = to - TimeDelta::hours(hours);
    let max = state.settings.topics.preview_max_posts as i64;
    let mut tally = Tally::default();
    let mut cursor: Option<(DateTime<Utc>, String)> = None;
    let mut complete = false;
    let mut reached = to;
    while tally.scanned < max {
        let limit = PREVIEW_PAGE.min(max - tally.scanned);
        let db::TextPage {
            posts: page,
            last: last_page,
        } = {
            let client = state.db().await?;
            let after = cursor.as_ref().map(|(at, id)| (*at, id.as_str()));
            db::text_page(&**client, (from, to), after, limit, PREVIEW_PAGE_BYTES).await?
        };
        if let Some(last) = page.last() {
            cursor = Some((last.created_at, last.id.clone()));
            reached = last.created_at;
        }
        let set = set.clone();
        let verdicts = web::block(move || {
            page.iter()
                .map(|p| (p.id.clone(), set.verdict(&p.fields())))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(ApiError::internal)?;
        tally.add(verdicts, wanted);
        if last_page {
            complete = true;
            break;
        }
    }
    let start = if complete { from } else { reached };
    let hours_read = ((to - start).num_seconds() as f64 / 3600.0).max(1.0 / 60.0);
    let client = state.db().await?;
    let match_samples = crate::db::posts::by_ids(&client, &tally.match_ids).await?;
    let near_samples = crate::db::posts::by_ids(&client, &tally.near_ids).await?;
    Ok(HttpResponse::Ok().json(Preview {
        from: start,
        to,
        scanned: tally.scanned,
        complete,
        matches: PreviewPosts {
            count: tally.matches,
            per_hour: tally.matches as f64 / hours_read,
            samples: match_samples,
        },
        near_misses: PreviewPosts {
            count: tally.near,
            per_hour: tally.near as f64 / hours_read,
            samples: near_samples,
        },
    }))
}

/// What a preview counted so far.
#[derive(Default)]
struct Tally {
    scanned: i64,
    matches: i64,
    near: i64,
    match_ids: Vec<String>,
    near_ids: Vec<String>,
}

impl Tally {
    fn add(&mut self, verdicts: Vec<(String, Verdict)>, wanted: usize) {
        self.scanned += verdicts.len() as i64;
        for (id, verdict) in verdicts {
            let (count, ids) = match verdict {
                Verdict::Matches => (&mut self.matches, &mut self.match_ids),
                Verdict::NearMiss => (&mut self.near, &mut self.near_ids),
                Verdict::Other => continue,
            };
            *count += 1;
            if ids.len() < wanted {
                ids.push(id);
            }
        }
    }
}

/// Re-tags the stored posts of the last `days` days for the topic's current version: posts
/// that match gain it (or keep it, at this version), posts that no longer match lose it, with
/// the topic's metrics. Runs in the background within a share the pipeline takes back.
#[utoipa::path(
    tag = "topics", summary = "Apply a topic to stored posts",
    params(("id" = i64, Path, description = "The topic's id")), request_body = RetagRequest,
    responses(
        (status = 202, description = "The re-tagging, queued; it supersedes the topic's \
            earlier open ones", body = RetagJob),
        (status = 400, description = "days out of range (`invalid_topic`), an id that is not \
            an integer (`invalid_path`) or a body that is not a request (`invalid_json`)", body = ErrorBody),
        (status = 504, description = "Counting the posts ran past the API's statement timeout", body = ErrorBody),
        NoTopic, PostgresUnavailable,
    )
)]
#[post("/api/v1/topics/{id}/retags")]
pub async fn retag(state: State, id: web::Path<i64>, input: web::Json<RetagRequest>) -> Answer {
    let max_days = i64::from(state.settings.topics.retag_max_days);
    if !(1..=max_days).contains(&input.days) {
        return Err(invalid(format!(
            "days must be 1 to {max_days} (topics.retag_max_days)"
        )));
    }
    let to = Utc::now();
    let from = to - TimeDelta::days(input.days);
    let actor = state.actor();
    let client = state.db().await?;
    if db::get(&**client, *id).await?.is_none() {
        return Err(no_topic(*id));
    }
    let total = db::count_between(&**client, from, to).await?;
    let job = retags::create(&**client, *id, from, to, total, Some(&actor))
        .await?
        .ok_or_else(|| no_topic(*id))?;
    Ok(HttpResponse::Accepted().json(job))
}

/// The re-taggings of a topic.
#[utoipa::path(
    tag = "topics", summary = "A topic's re-taggings",
    params(("id" = i64, Path, description = "The topic's id")),
    responses(
        (status = 200, description = "Newest first, at most 50", body = RetagList),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/topics/{id}/retags")]
pub async fn retags_of(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    Ok(HttpResponse::Ok().json(RetagList {
        items: retags::of_topic(&**client, *id).await?,
    }))
}

/// One re-tagging and its progress.
#[utoipa::path(
    tag = "topics", summary = "One re-tagging",
    params(("id" = i64, Path, description = "The topic's id"), ("job" = i64, Path, description = "The re-tagging's id")),
    responses(
        (status = 200, description = "The re-tagging", body = RetagJob),
        NotAnInteger, NoRetag, PostgresUnavailable,
    )
)]
#[get("/api/v1/topics/{id}/retags/{job}")]
pub async fn retag_one(state: State, path: web::Path<(i64, i64)>) -> Answer {
    let (id, job) = *path;
    let client = state.db().await?;
    answer::found(retags::get(&**client, id, job).await?, || no_retag(id, job))
}

/// Cancels an open re-tagging; what it changed stays.
#[utoipa::path(
    tag = "topics", summary = "Cancel a re-tagging",
    params(("id" = i64, Path, description = "The topic's id"), ("job" = i64, Path, description = "The re-tagging's id")),
    responses(
        (status = 200, description = "The re-tagging, cancelled", body = RetagJob),
        (status = 409, description = "It has ended already (`invalid_transition`)", body = ErrorBody),
        NotAnInteger, NoRetag, PostgresUnavailable,
    )
)]
#[post("/api/v1/topics/{id}/retags/{job}/cancel")]
pub async fn cancel_retag(state: State, path: web::Path<(i64, i64)>) -> Answer {
    let (id, job) = *path;
    let client = state.db().await?;
    let cancelled = retags::cancel(&**client, id, job).await?;
    let found = retags::get(&**client, id, job)
        .await?
        .ok_or_else(|| no_retag(id, job))?;
    if !cancelled {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            format!("re-tagging {job} has ended ({})", found.status),
        ));
    }
    Ok(HttpResponse::Ok().json(found))
}
