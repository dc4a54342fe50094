//! `/api/v1/digests/schedules`: what is reported, how often, to whom; and `send now`.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{runner, scope_of, ScopeInput};
use crate::db::digests::{self as db, DigestRecord, NewSchedule, Schedule};
use crate::http::answer::{self, Answer};
use crate::http::documented::{error_responses, Deleted};
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::errors::ErrorCode;
use crate::models::metrics::{minute_of, Period};

error_responses! {
    NoSchedule: 404 = "No schedule with this id",
}

/// Channels one schedule may send to.
pub const MAX_CHANNELS: usize = 20;
/// Seconds between two digests sent on request of one schedule, and to one channel by any
/// schedule, whoever asks and through whichever process: requests repeated, or schedules made
/// anew to repeat them, would flood the channels.
const SEND_NOW_EVERY_SECS: f64 = 60.0;
/// Schedules a deployment may hold: every process computes each one's due periods every
/// round, so their number is what a caller could otherwise grow without bound.
pub const MAX_SCHEDULES: i64 = 200;
/// Schedules one key may have created (an administrator's count only towards
/// [`MAX_SCHEDULES`]).
pub const MAX_SCHEDULES_PER_KEY: i64 = 50;
/// Digests of a schedule listed with it.
const RECENT: i64 = 20;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidDigest, message)
}

/// How often a digest is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cadence {
    /// Each day, at `at`.
    Daily,
    /// Each week, on `weekday` at `at`.
    Weekly,
}

impl Cadence {
    fn as_str(self) -> &'static str {
        match self {
            Cadence::Daily => "daily",
            Cadence::Weekly => "weekly",
        }
    }

    fn length(self) -> TimeDelta {
        match self {
            Cadence::Daily => TimeDelta::days(1),
            Cadence::Weekly => TimeDelta::days(7),
        }
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// ISO number: Monday 1 .. Sunday 7.
    fn iso(self) -> i16 {
        self as i16 + 1
    }
}

/// `POST /api/v1/digests/schedules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDigestSchedule {
    pub name: String,
    pub scope: ScopeInput,
    pub cadence: Cadence,
    /// The day a weekly period ends on; required for `weekly`, refused for `daily`.
    pub weekday: Option<Weekday>,
    /// The local time a period ends at, `HH:MM` (24 hours).
    #[schema(example = "08:00")]
    pub at: String,
    /// An IANA time zone, such as `Europe/Paris`.
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
    /// Channels (`GET /api/v1/webhooks`) to send to: e-mail, Slack, Teams or webhook; 1 to 20
    /// ids.
    #[serde(deserialize_with = "crate::models::bounded::at_most::<_, _, MAX_CHANNELS>")]
    #[schema(min_items = 1, max_items = 20)]
    pub channels: Vec<i64>,
    /// A shared saved view (`GET /api/v1/views`) the digest's link opens, with the digest's
    /// period.
    #[serde(default)]
    pub view: Option<i64>,
}

/// `PATCH /api/v1/digests/schedules/{id}`: what is given changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleChange {
    /// `false` pauses it; `true` resumes it, and the periods that ended while it was paused are
    /// never sent.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A shared saved view the link opens; `null`: the scope and period alone.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<i64>)]
    pub view: Option<Option<i64>>,
}

/// A field present in the body, `null` included (absent: `None`, through `default`).
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Checks that a digest may link to view `id`: a view the caller sees and shared, since the
/// digest's readers open it.
async fn linkable_view(
    client: &tokio_postgres::Client,
    state: &State,
    id: i64,
) -> Result<(), ApiError> {
    let owner = state.owner();
    let reader = crate::db::saved_views::Reader {
        owner: &owner,
        all: state.is_admin(),
    };
    match crate::db::saved_views::get(client, id, reader).await? {
        None => Err(invalid(format!("no saved view {id} that you may see"))),
        Some(v) if !v.shared => Err(invalid(format!(
            "saved view {id} is not shared: a digest's readers could not open it; share it first"
        ))),
        Some(_) => Ok(()),
    }
}

/// Schedules, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    pub items: Vec<Schedule>,
}

/// A schedule and its newest digests.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// Channels it names that no longer exist (their digests are not sent).
    pub missing_channels: Vec<i64>,
    /// Its newest digests, newest period first.
    pub digests: Vec<DigestRecord>,
}

/// What `send now` made.
#[derive(Debug, Serialize, ToSchema)]
pub struct SentNow {
    pub from: chrono::DateTime<Utc>,
    pub to: chrono::DateTime<Utc>,
    pub posts: i64,
    pub negative_share: f64,
}

async fn checked(
    client: &tokio_postgres::Client,
    input: &NewDigestSchedule,
) -> Result<(NaiveTime, Option<i64>), ApiError> {
    if let Some(why) = crate::http::api::topics::name_problem(&input.name) {
        return Err(invalid(why));
    }
    let at = NaiveTime::parse_from_str(&input.at, "%H:%M")
        .map_err(|_| invalid(format!("at must be a time HH:MM, not `{}`", input.at)))?;
    match (input.cadence, input.weekday) {
        (Cadence::Weekly, None) => return Err(invalid("a weekly digest needs a weekday")),
        (Cadence::Daily, Some(_)) => {
            return Err(invalid("a daily digest takes no weekday"));
        }
        _ => {}
    }
    if input.timezone.len() > 64
        || input.timezone.contains('\0')
        || !db::known_timezone(client, &input.timezone).await?
    {
        return Err(invalid(
            "timezone must be an IANA time zone, such as Europe/Paris",
        ));
    }
    // The list as sent is what the bound is on: read, it holds at most one id past it.
    if input.channels.is_empty() || input.channels.len() > MAX_CHANNELS {
        return Err(invalid(format!(
            "channels must name 1 to {MAX_CHANNELS} channels"
        )));
    }
    let mut channels = input.channels.clone();
    channels.sort_unstable();
    channels.dedup();
    let found = db::channel_kinds(client, &channels).await?;
    for id in &channels {
        match found.iter().find(|(c, _)| c == id) {
            None => return Err(invalid(format!("no channel with id {id}"))),
            Some((_, kind)) if kind == "pagerduty" => {
                return Err(invalid(format!(
                    "channel {id} is PagerDuty, which opens incidents; send digests to e-mail, \
                     Slack, Teams or a webhook"
                )))
            }
            Some(_) => {}
        }
    }
    // A topic that is not live is the schedule's fault; the database away is not.
    let scope = scope_of(client, &input.scope)
        .await
        .map_err(|e| match e.code {
            ErrorCode::InvalidQuery => invalid(e.message),
            _ => e,
        })?;
    Ok((at, scope.topic))
}

/// Creates a schedule.
#[utoipa::path(
    tag = "digests", operation_id = "create_digest_schedule", summary = "Create a digest schedule",
    request_body = NewDigestSchedule,
    responses(
        (status = 201, description = "The schedule as stored", body = Schedule),
        (status = 400, description = "A bad name, cadence, weekday, time, time zone, scope or \
            channel (`invalid_digest`), or a body that is not a schedule (`invalid_json`)", body = ErrorBody),
        (status = 409, description = "The caller's key holds 50 schedules or the deployment \
            200 (`limit_reached`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/digests/schedules")]
pub async fn create(state: State, input: web::Json<NewDigestSchedule>) -> Answer {
    let actor = state.actor();
    let mut client = state.db().await?;
    let (at, topic) = checked(&client, &input).await?;
    if let Some(view) = input.view {
        linkable_view(&client, &state, view).await?;
    }
    let mut channels = input.channels.clone();
    channels.sort_unstable();
    channels.dedup();
    let schedule = db::create(
        &mut client,
        &NewSchedule {
            name: input.name.trim().to_string(),
            topic,
            cadence: input.cadence.as_str().into(),
            weekday: input.weekday.map(Weekday::iso),
            at,
            timezone: input.timezone.clone(),
            channels,
            view: input.view,
            created_by: Some(actor.clone()),
        },
        state.caps(&actor, MAX_SCHEDULES_PER_KEY, MAX_SCHEDULES),
    )
    .await?
    .map_err(|limit| ApiError::limit_reached(limit, "digest schedules", None))?;
    Ok(HttpResponse::Created().json(schedule))
}

/// Every schedule.
#[utoipa::path(
    tag = "digests", operation_id = "list_digest_schedules", summary = "List digest schedules",
    responses(
        (status = 200, description = "Schedules, oldest first", body = ScheduleList),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/digests/schedules")]
pub async fn list(state: State) -> Answer {
    let client = state.db().await?;
    let items = db::list(&**client).await?;
    Ok(HttpResponse::Ok().json(ScheduleList { items }))
}

fn no_schedule(id: i64) -> ApiError {
    ApiError::not_found(format!("no digest schedule {id}"))
}

async fn found(client: &tokio_postgres::Client, id: i64) -> Result<Schedule, ApiError> {
    db::get(client, id).await?.ok_or_else(|| no_schedule(id))
}

/// One schedule with its newest digests and how their deliveries went.
#[utoipa::path(
    tag = "digests", operation_id = "get_digest_schedule", summary = "A digest schedule",
    params(("id" = i64, Path, description = "The schedule's id")),
    responses(
        (status = 200, description = "The schedule and its newest digests", body = ScheduleView),
        NoSchedule, PostgresUnavailable,
    )
)]
#[get("/api/v1/digests/schedules/{id}")]
pub async fn get_one(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    let schedule = found(&client, *id).await?;
    let present = db::channel_kinds(&**client, &schedule.channels).await?;
    let missing_channels = schedule
        .channels
        .iter()
        .copied()
        .filter(|c| !present.iter().any(|(p, _)| p == c))
        .collect();
    let digests = db::recent(&**client, *id, RECENT).await?;
    Ok(HttpResponse::Ok().json(ScheduleView {
        schedule,
        missing_channels,
        digests,
    }))
}

/// Turns a schedule on or off.
#[utoipa::path(
    tag = "digests", operation_id = "update_digest_schedule",
    summary = "Enable or disable a digest schedule, or point it at a saved view",
    params(("id" = i64, Path, description = "The schedule's id")), request_body = ScheduleChange,
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 400, description = "A bad id or body, or a view that is not shared or \
            not seen by the caller (`invalid_digest`)", body = ErrorBody),
        NoSchedule, PostgresUnavailable,
    )
)]
#[patch("/api/v1/digests/schedules/{id}")]
pub async fn update(state: State, id: web::Path<i64>, input: web::Json<ScheduleChange>) -> Answer {
    let client = state.db().await?;
    let schedule = found(&client, *id).await?;
    if let Some(Some(view)) = input.view {
        linkable_view(&client, &state, view).await?;
    }
    if let Some(enabled) = input.enabled {
        if !db::set_enabled(&**client, schedule.id, enabled).await? {
            return Err(no_schedule(*id));
        }
    }
    if let Some(view) = input.view {
        if !db::set_view(&**client, schedule.id, view).await? {
            return Err(no_schedule(*id));
        }
    }
    Ok(HttpResponse::Ok().json(found(&client, *id).await?))
}

/// Deletes a schedule and the digests made of it (deliveries not yet sent are not sent).
#[utoipa::path(
    tag = "digests", operation_id = "delete_digest_schedule", summary = "Delete a digest schedule",
    params(("id" = i64, Path, description = "The schedule's id")),
    responses(Deleted, NoSchedule, PostgresUnavailable)
)]
#[delete("/api/v1/digests/schedules/{id}")]
pub async fn remove(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    answer::deleted(db::remove(&**client, *id).await?, || no_schedule(*id))
}

/// Sends the schedule's digest of the period that ends now (a day or a week up to the end of
/// this minute) to its channels, at once, besides its scheduled ones.
#[utoipa::path(
    tag = "digests", operation_id = "send_digest_now", summary = "Send a digest now",
    params(("id" = i64, Path, description = "The schedule's id")),
    responses(
        (status = 202, description = "Made; its deliveries are queued", body = SentNow),
        (status = 429, description = "The schedule was sent on request less than a minute ago \
            (`rate_limited`, `details.scope` `send_now`), or the caller's previous costly read \
            ran on for 10 s after this one came (`details.scope` `costly_read`)", body = ErrorBody),
        NoSchedule, PostgresUnavailable,
    )
)]
#[post("/api/v1/digests/schedules/{id}/send")]
pub async fn send_now(state: State, id: web::Path<i64>) -> Answer {
    let _costly = state.costly_read().await?;
    let client = state.db().await?;
    let schedule = found(&client, *id).await?;
    if let Err(wait) =
        db::claim_send_on_request(&**client, schedule.id, SEND_NOW_EVERY_SECS).await?
    {
        return Err(ApiError::rate_limited(
            "send_now",
            format!(
                "digest schedule {}, or a channel of it, was sent a digest on request less \
                 than a minute ago",
                schedule.id
            ),
            std::time::Duration::from_secs_f64(wait.max(0.0)),
        ));
    }
    let cadence = match schedule.cadence.as_str() {
        "weekly" => Cadence::Weekly,
        _ => Cadence::Daily,
    };
    // Up to the end of this minute, as a window: the posts of the last seconds count.
    let to = minute_of(Utc::now()) + TimeDelta::minutes(1);
    let period = Period::between(to - cadence.length(), to);
    let scope = super::schedule_scope(&client, schedule.topic).await?;
    let digest = super::compute_against_equal_periods(
        &client,
        &state.settings,
        scope,
        period,
        schedule.view,
    )
    .await?;
    let sent = SentNow {
        from: digest.from,
        to: digest.to,
        posts: digest.posts,
        negative_share: digest.negative_share,
    };
    runner::store(
        &client,
        Some(schedule.id),
        &schedule.channels,
        digest,
        (period.from, to),
        false,
        true,
    )
    .await
    .map_err(ApiError::from_store)?;
    Ok(HttpResponse::Accepted().json(sent))
}
