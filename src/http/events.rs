//! `POST /api/v1/events`: producers without a Redis client push the same JSON they would
//! XADD. A request is all-or-nothing: if any event is invalid, none is appended and the
//! response lists every invalid index with its reason.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::error::{payload_error, ApiError, ErrorBody};
use super::AppState;
use crate::models::Event;
use crate::telemetry::names;

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
    tag = "events",
    operation_id = "append_events",
    summary = "Append events to the stream",
    request_body(content = EventsInput, content_type = "application/json",
        description = "One event or an array of events; all-or-nothing"),
    responses(
        (status = 202, description = "Every event was appended", body = EventsAccepted),
        (status = 400, description = "Not JSON (`invalid_json`), not an event or array \
            (`invalid_event`, `details.errors` lists each invalid index), or empty (`empty_batch`)",
            body = ErrorBody),
        (status = 413, description = "Body larger than 8 MiB (`payload_too_large`) or more \
            events than allowed (`too_many_events`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "Redis is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/events")]
pub async fn create(
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body.to_bytes_limited(MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    })?;
    let bytes = bytes.map_err(payload_error)?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => {
            return Err(ApiError::bad_request(
                "invalid_event",
                "expected an event object or an array of events",
            ))
        }
    };
    let max = state.settings.http.max_events_per_request;
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "no events in the request",
        ));
    }
    if items.len() > max {
        return Err(ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!("{} events in one request; the limit is {max}", items.len()),
        )
        .with_details(json!({"limit": max, "received": items.len()})));
    }

    let mut encoded = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match Event::from_value(item) {
            Ok(event) => encoded.push(serde_json::to_string(&event).map_err(ApiError::internal)?),
            Err(e) => {
                errors.push(json!({"index": index, "code": e.class(), "reason": e.to_string()}))
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_event",
            format!(
                "{} of {} events are invalid; none was accepted",
                errors.len(),
                errors.len() + encoded.len()
            ),
        )
        .with_details(json!({"errors": errors})));
    }

    let stream = state.settings.redis.stream.as_str();
    let ids = crate::producer::xadd_events(&state.redis, stream, &encoded).await?;
    metrics::counter!(names::HTTP_EVENTS_ACCEPTED).increment(ids.len() as u64);
    Ok(HttpResponse::Accepted().json(EventsAccepted {
        accepted: ids.len(),
        ids,
    }))
}
