//! `POST /api/v1/events`: producers without a Redis client push the same JSON they would
//! XADD. A request is all-or-nothing: if any event is invalid, none is appended and the
//! response lists every invalid index with its reason; the events are appended in one Redis
//! transaction, so a Redis that refuses writes part way appends none of them either.
//!
//! Each event is judged on its own bytes by the stream's decoder and appended as sent, so the
//! ingester reaches the same verdict on it: an event accepted here is never dead-lettered for
//! its content later.
//!
//! Four budgets keep producers from burying the pipeline and each other:
//! - each key (each network on an open server) may append `limits.per_key_events_per_sec`
//!   events (a token bucket counted in events; past it 429 with `Retry-After`);
//! - no request is appended while the consumer group has more than `ingest.max_backlog`
//!   entries to read or acknowledge, while its oldest unacknowledged entry has waited more
//!   than `ingest.max_backlog_secs`, or while the stream holds more than
//!   `ingest.max_backlog_bytes` in Redis (503 `busy` with `Retry-After`, as sources and `pulse
//!   import` pause);
//! - once the group is `ingest.fair_share_after_secs` behind (its oldest unacknowledged entry,
//!   and the delay a new entry faces), what it drains is shared between the producers asking
//!   ([`crate::http::api::events::fair_share`]): one asking more than its share gets 503 `busy` (`reason`
//!   `share`) with `Retry-After`, so a flood waits and a quiet producer does not;
//! - a producer whose appended entries the group has not taken yet fill a window (what the
//!   group drains in `ingest.fair_share_after_secs`, at least 500 entries) appends no more
//!   until it has taken some ([`crate::http::api::events::outstanding`]), so the first seconds of a burst do not
//!   queue seconds of work ahead of everyone (503 `busy`, `reason` `share`).
//!
//! The body must be declared JSON (`Content-Type: application/json`), as on every other route
//! that takes one, else 415: a web page can make a browser POST `text/plain` anywhere without
//! asking first, and on a server without authentication that would append its events.

pub mod backlog;
pub mod fair_share;
pub mod outstanding;

use crate::models::errors::ErrorCode;
use actix_web::{post, web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::http::answer::Answer;
use crate::http::error::{payload_error, ApiError, ErrorBody};
use crate::http::state::State;
use crate::models::bounded::Bounded;
use crate::models::{producer, Event};
use crate::telemetry::names;
use crate::telemetry::traces::RequestSpan;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The schema of what `POST /api/v1/events` takes: one event, or a non-empty array of events
/// (at most `http.max_events_per_request`). The handler reads each element as an [`Event`], so
/// this schema is built from [`Event`]'s.
pub struct EventsInput;

impl utoipa::PartialSchema for EventsInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        use utoipa::openapi::Ref;
        let event = || Ref::from_schema_name(Event::name());
        OneOfBuilder::new()
            .item(event())
            .item(ArrayBuilder::new().items(event()).min_items(Some(1)))
            .description(Some(
                "One event, or an array of at least one event (at most \
                 `http.max_events_per_request`)",
            ))
            .into()
    }
}

impl ToSchema for EventsInput {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            Event::name().into(),
            <Event as utoipa::PartialSchema>::schema(),
        ));
        <Event as ToSchema>::schemas(schemas);
    }
}

/// The answer to an accepted request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventsAccepted {
    /// Events appended to the stream.
    pub accepted: usize,
    /// Their stream entry ids, in request order.
    pub ids: Vec<String>,
}

/// Appends one event or an array of events to the stream.
#[utoipa::path(
    tag = "events", operation_id = "append_events", summary = "Append events to the stream",
    request_body(content = EventsInput, content_type = "application/json", description = "One event or an array of events; all-or-nothing"),
    responses(
        (status = 202, description = "Every event was appended", body = EventsAccepted),
        (status = 400, description = "Not JSON (`invalid_json`), not an event or array \
            (`invalid_event`, `details.errors` lists each invalid index), or empty (`empty_batch`)", body = ErrorBody),
        (status = 413, description = "Body larger than 8 MiB (`payload_too_large`) or more \
            events than allowed (`too_many_events`)", body = ErrorBody),
        (status = 403, description = "Events outside the key's scope (`out_of_scope`, \
            `details.errors` lists each index with its reason); none was appended", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json \
            (`unsupported_media_type`)", body = ErrorBody),
        (status = 429, description = "The key's events budget is spent (`rate_limited`, \
            `details.scope` `events`; `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Redis is unavailable, or the consumer group is behind: \
            more than `ingest.max_backlog` entries (`busy`, `details.reason` `backlog`), its \
            oldest entry older than `ingest.max_backlog_secs` (`backlog_age`), the stream holding \
            more than `ingest.max_backlog_bytes` in Redis (`backlog_bytes`), or this producer \
            over its share of what the group drains or with its window of entries not yet taken \
            (`share`); `Retry-After`", body = ErrorBody),
    )
)]
#[post("/api/v1/events")]
pub async fn create(state: State, req: HttpRequest, body: web::Payload) -> Answer {
    if !declares_json(&req) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ));
    }
    let bytes = body.to_bytes_limited(MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    })?;
    let bytes = bytes.map_err(payload_error)?;
    let max = state.settings.http.max_events_per_request;
    let split = split_events(&bytes, max)?;
    ApiError::check_batch(split.received, max, "events", ErrorCode::TooManyEvents)?;
    let items = split.items;
    // Before any event is checked: a refused request costs the server no more than its split.
    let mut admitted = admit(&state, items.len()).await?;

    let principal = req.extensions().get::<crate::auth::Principal>().cloned();
    let scope = principal.as_ref().and_then(|p| p.scope.clone());
    let total = items.len();
    let mut encoded = Vec::with_capacity(total);
    let mut errors = Vec::new();
    let mut outside = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match Event::from_slice(item.get().as_bytes()) {
            Ok(event) => {
                if let Some(reason) = scope.as_deref().and_then(|s| s.refuses(&event)) {
                    outside.push(json!({"index": index, "reason": reason}));
                }
                encoded.push(item.get());
            }
            Err(e) => {
                errors.push(json!({"index": index, "code": e.class(), "reason": e.to_string()}))
            }
        }
    }
    if !errors.is_empty() {
        return Err(refuse_all(
            ErrorCode::InvalidEvent,
            "are invalid",
            errors,
            total,
        ));
    }
    // Before anything is appended, so a post outside the key's scope never owns its id.
    if !outside.is_empty() {
        metrics::counter!(names::EVENTS_REFUSED, "reason" => "out_of_scope")
            .increment(outside.len() as u64);
        return Err(refuse_all(
            ErrorCode::OutOfScope,
            "are outside this key's scope",
            outside,
            total,
        ));
    }

    let stream = state.settings.redis.stream.as_str();
    // Each post continues this request's trace (when traces are on and it is sampled).
    let mut fields = state
        .traces
        .entry_fields(req.extensions().get::<RequestSpan>());
    // The caller's events carry who sent them; the field is not part of an event, so no
    // caller can name another producer. A key made by rotation speaks as its line's first.
    let producer = match principal.and_then(|p| p.producer) {
        Some(key_id) => producer::key(&key_id),
        None => producer::OPEN_HTTP.to_string(),
    };
    fields.push((producer::PRODUCER_FIELD, producer));
    let ids =
        crate::streams::producer::xadd_events_atomically(&state.redis, stream, &encoded, &fields)
            .await?;
    metrics::counter!(names::HTTP_EVENTS_ACCEPTED).increment(ids.len() as u64);
    state.backlog.appended(ids.len() as u64);
    admitted.appended();
    Ok(HttpResponse::Accepted().json(EventsAccepted {
        accepted: ids.len(),
        ids,
    }))
}

/// Refuses every event of a request of `total` because of `refused`, each with its index and
/// reason; `why` says what those events are.
fn refuse_all(
    code: ErrorCode,
    why: &str,
    refused: Vec<serde_json::Value>,
    total: usize,
) -> ApiError {
    ApiError::new(
        code,
        format!(
            "{} of {total} events {why}; none was accepted",
            refused.len()
        ),
    )
    .with_details(json!({"errors": refused}))
}

/// A request admitted, holding its entries' place in its producer's window until they are
/// appended: a request that fails or is dropped before (its client gone) gives it back.
struct Admitted<'a> {
    state: &'a State,
    caller: String,
    reservation: Option<crate::http::api::events::outstanding::Reservation>,
}

impl Admitted<'_> {
    fn appended(&mut self) {
        self.reservation = None;
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            self.state.outstanding.release(&self.caller, reservation);
        }
    }
}

/// Whether `n` more events may be appended now: the group's backlog (in entries, then in
/// time), what the caller already has waiting (its window), its events budget, then its fair
/// share while the group is behind (see the module documentation).
async fn admit(state: &State, n: usize) -> Result<Admitted<'_>, ApiError> {
    let ingest = &state.settings.ingest;
    let needs_backlog = ingest.max_backlog > 0
        || ingest.max_backlog_secs > 0.0
        || ingest.max_backlog_bytes > 0
        || ingest.fair_share_after_secs > 0.0;
    let backlog = if needs_backlog {
        Some(state.backlog.read(&state.redis, &state.settings).await?)
    } else {
        None
    };
    if let Some(backlog) = backlog {
        let max = ingest.max_backlog;
        if max > 0 && backlog.entries > max {
            metrics::counter!(names::EVENTS_REFUSED, "reason" => "backlog").increment(n as u64);
            return Err(ApiError::busy_for(
                "backlog",
                format!(
                    "the pipeline is {} entries behind (ingest.max_backlog is {max}); \
                     retry shortly",
                    backlog.entries
                ),
                1,
            ));
        }
        let max_bytes = ingest.max_backlog_bytes;
        if let Some(bytes) = backlog
            .backlog_bytes
            .filter(|b| max_bytes > 0 && *b as u64 > max_bytes)
        {
            metrics::counter!(names::EVENTS_REFUSED, "reason" => "backlog_bytes")
                .increment(n as u64);
            return Err(ApiError::busy_for(
                "backlog_bytes",
                format!(
                    "the entries the pipeline has not drained hold about {bytes} bytes in Redis \
                     (ingest.max_backlog_bytes is {max_bytes}); retry shortly"
                ),
                1,
            ));
        }
        let max_secs = ingest.max_backlog_secs;
        if let Some(age) = backlog
            .oldest_age_secs
            .filter(|age| max_secs > 0.0 && *age > max_secs)
        {
            metrics::counter!(names::EVENTS_REFUSED, "reason" => "backlog_age").increment(n as u64);
            return Err(ApiError::busy_for(
                "backlog_age",
                format!(
                    "the oldest entry the pipeline has not stored waited {age:.0} s \
                     (ingest.max_backlog_secs is {max_secs}); retry shortly"
                ),
                (age - max_secs).clamp(1.0, 30.0) as u64,
            ));
        }
    }
    let caller = state.client_id();
    // From here, a refusal gives the window's reservation back as `admitted` is dropped.
    let mut admitted = Admitted {
        state,
        caller: caller.clone(),
        reservation: None,
    };
    let target = ingest.fair_share_after_secs;
    let windowed = backlog.filter(|b| target > 0.0 && !b.stalled);
    if let Some((b, acknowledged)) = windowed.and_then(|b| Some((b, b.acknowledged?))) {
        let at = crate::http::api::events::outstanding::Position {
            acknowledged,
            ahead: b.entries,
            seq: b.seq,
        };
        let window =
            crate::http::api::events::outstanding::window(b.drained_per_sec, b.consumers, target);
        let now = std::time::Instant::now();
        let reserved =
            state
                .outstanding
                .reserve(&caller, n as u64, at, window, b.drained_per_sec, now);
        match reserved {
            Ok(reservation) => admitted.reservation = Some(reservation),
            Err(wait) => return Err(window_full(state, &caller, n, window, wait, now)),
        }
    }
    if state.limiter.enabled() {
        if let Err(wait) = state.limiter.events_per_key.take_n(&caller, n as f64) {
            metrics::counter!(names::EVENTS_REFUSED, "reason" => "rate").increment(n as u64);
            let secs = crate::http::middleware::rate_limit::retry_after_secs(wait);
            return Err(ApiError::rate_limited(
                "events",
                format!(
                    "this key may append {} events per second (limits.per_key_events_per_sec); \
                     retry in {secs} s",
                    state.settings.limits.per_key_events_per_sec
                ),
                wait,
            ));
        }
    }
    let capacity = backlog.and_then(|b| {
        state.sharing.capacity(
            crate::http::api::events::fair_share::Load {
                oldest_age_secs: b.oldest_age_secs,
                backlog: b.entries,
                drained_per_sec: b.drained_per_sec,
                processes: b.consumers,
            },
            ingest.fair_share_after_secs,
        )
    });
    if let Err(wait) = state
        .fair
        .admit(&caller, n, capacity, std::time::Instant::now())
    {
        metrics::counter!(names::EVENTS_REFUSED, "reason" => "share").increment(n as u64);
        let secs = crate::http::middleware::rate_limit::retry_after_secs(wait);
        let mut refusal = ApiError::busy_for(
            "share",
            format!(
                "the pipeline is behind and this producer asks more than its share of what it \
                 drains ({:.0} events a second shared between the producers asking); retry in \
                 {secs} s",
                capacity.unwrap_or_default()
            ),
            secs,
        );
        refusal.details["limit"] = json!("share");
        return Err(refusal);
    }
    Ok(admitted)
}

/// The refusal of a request whose producer's window is full, counted with the fair shares'.
fn window_full(
    state: &State,
    caller: &str,
    n: usize,
    window: f64,
    wait: std::time::Duration,
    now: std::time::Instant,
) -> ApiError {
    metrics::counter!(names::EVENTS_REFUSED, "reason" => "share").increment(n as u64);
    state.fair.refused_elsewhere(caller, n, wait, now);
    let secs = crate::http::middleware::rate_limit::retry_after_secs(wait);
    let mut refusal = ApiError::busy_for(
        "share",
        format!(
            "this producer has {} events the pipeline has not stored yet, a window's worth \
             ({window:.0}: what it drains in ingest.fair_share_after_secs, at least {floor}); \
             retry in {secs} s",
            state.outstanding.waiting(caller),
            floor = crate::http::api::events::outstanding::WINDOW_FLOOR,
        ),
        secs,
    );
    refusal.details["limit"] = json!("window");
    refusal
}

/// Whether the request declares a JSON body, by the rule the `Json` extractor applies on the
/// other routes (`application/json`, or a `+json` type), so every route that takes JSON
/// accepts and refuses the same content types. A missing `Content-Type` is refused too.
pub fn declares_json(req: &HttpRequest) -> bool {
    use actix_web::mime;
    matches!(req.mime_type(), Ok(Some(m)) if m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
}

/// Splits a request body, one event object or an array of them, into each event's own JSON
/// text, as the client wrote it (surrounding whitespace aside).
///
/// The events are not parsed into `serde_json::Value`s: a `Value` silently keeps the last of
/// two equal keys, which the stream's decoder refuses, and an event encoded again from one can
/// grow past the stream's size limit (control characters come back as six-byte escapes).
/// Of an array, the first `keep` events are kept and the rest only counted.
pub fn split_events(body: &[u8], keep: usize) -> Result<Bounded<&RawValue>, ApiError> {
    let invalid_json =
        |e: serde_json::Error| ApiError::bad_request(ErrorCode::InvalidJson, e.to_string());
    let whole: &RawValue = serde_json::from_slice(body).map_err(invalid_json)?;
    match whole.get().as_bytes().first() {
        Some(b'[') => Bounded::read(&mut serde_json::Deserializer::from_str(whole.get()), keep)
            .map_err(invalid_json),
        Some(b'{') => Ok(Bounded {
            items: vec![whole],
            received: 1,
        }),
        _ => Err(ApiError::bad_request(
            ErrorCode::InvalidEvent,
            "expected an event object or an array of events",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::event::MAX_EVENT_BYTES;
    use crate::models::EventError;

    const ENGAGEMENT: &str =
        r#"{"type":"engagement","post_id":"p1","kind":"like","at":"2026-01-01T00:00:00Z"}"#;

    fn texts(body: &str) -> Vec<String> {
        let items = split_events(body.as_bytes(), usize::MAX).unwrap().items;
        items.iter().map(|item| item.get().to_string()).collect()
    }

    #[test]
    fn events_past_the_limit_are_counted_not_kept() {
        let body = format!("[{ENGAGEMENT},{ENGAGEMENT},{ENGAGEMENT},1,{{}}]");
        let split = split_events(body.as_bytes(), 2).unwrap();
        assert_eq!((split.items.len(), split.received), (2, 5));
        assert_eq!(split.items[1].get(), ENGAGEMENT);
    }

    #[test]
    fn only_a_json_content_type_is_taken() {
        use actix_web::test::TestRequest;
        let with = |ct: &str| {
            declares_json(
                &TestRequest::post()
                    .insert_header(("content-type", ct))
                    .to_http_request(),
            )
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("application/vnd.pulse+json"));
        for refused in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "not a type",
        ] {
            assert!(!with(refused), "{refused}");
        }
        assert!(!declares_json(&TestRequest::post().to_http_request()));
    }

    #[test]
    fn splits_one_event_or_an_array_into_the_texts_sent() {
        assert_eq!(texts(&format!(" {ENGAGEMENT}\n")), vec![ENGAGEMENT]);
        let pretty = "{ \"type\" : \"ping\" }";
        assert_eq!(
            texts(&format!("[ {ENGAGEMENT} ,\n\t{pretty} ]")),
            vec![ENGAGEMENT, pretty]
        );
        assert!(texts("[]").is_empty());
        for (body, code) in [
            ("{not json", ErrorCode::InvalidJson),
            ("[1,", ErrorCode::InvalidJson),
            ("42", ErrorCode::InvalidEvent),
            ("\"event\"", ErrorCode::InvalidEvent),
        ] {
            assert_eq!(
                split_events(body.as_bytes(), usize::MAX).unwrap_err().code,
                code,
                "{body}"
            );
        }
    }

    /// Both cases were accepted here and then dead-lettered by the ingester: the body went
    /// through `serde_json::Value`, which drops duplicated keys, and was encoded again.
    #[test]
    fn refuses_what_the_stream_would_refuse() {
        let duplicate = ENGAGEMENT.replace(r#""kind""#, r#""post_id":"p2","kind""#);
        let items = split_events(duplicate.as_bytes(), usize::MAX)
            .unwrap()
            .items;
        let verdict = Event::from_slice(items[0].get().as_bytes()).unwrap_err();
        assert_eq!(verdict.class(), "malformed", "{verdict}");

        // 12,000 bytes of text, within its limit, written as 72,000 bytes of escapes.
        let text = "\u{1}".repeat(12_000);
        let post = serde_json::json!({
            "type": "post", "id": "p1", "platform": "other",
            "author": {"id": "a1", "followers": 0},
            "text": text, "created_at": "2026-01-01T00:00:00Z",
        })
        .to_string();
        assert!(post.len() > MAX_EVENT_BYTES);
        let items = split_events(post.as_bytes(), usize::MAX).unwrap().items;
        assert_eq!(
            Event::from_slice(items[0].get().as_bytes()),
            Err(EventError::TooLarge(post.len()))
        );
    }
}
