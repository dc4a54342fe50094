//! `POST /api/v1/events`: producers without a Redis client push the same JSON they would
//! XADD. A request is all-or-nothing: if any event is invalid, none is appended and the
//! response lists every invalid index with its reason.

use actix_web::{post, web, HttpResponse};
use serde_json::{json, Value};

use super::error::{payload_error, ApiError};
use super::AppState;
use crate::models::Event;
use crate::telemetry::names;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Appends one event or an array of events to the stream.
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
    Ok(HttpResponse::Accepted().json(json!({"accepted": ids.len(), "ids": ids})))
}
