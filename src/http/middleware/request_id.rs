//! Every response carries `x-request-id`: the caller's, when it sent a sane one, else a new
//! UUID. The id is attached to the request's log span so a report can be traced, and to its
//! OpenTelemetry span when traces are on (the span is in the request's extensions, for
//! handlers whose work continues it).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing::Instrument;

use crate::http::AppState;
use crate::telemetry::names;
use crate::telemetry::traces::{self, RequestSpan};

/// The header name.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest caller-supplied id that is echoed back.
const MAX_ID_LEN: usize = 128;

/// The request's id as answered in `x-request-id`, in the request's extensions for whatever
/// records the request (the audit log).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware function, used with `actix_web::middleware::from_fn`.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_ID_LEN
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span =
        tracing::info_span!("http", method = %req.method(), path = %req.path(), request_id = %id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let otel = request_span(&req, &id);
    if let Some(otel) = &otel {
        req.extensions_mut().insert(otel.clone());
    }
    let res = next.call(req).instrument(span).await;
    let mut res = match res {
        Ok(res) => res,
        Err(e) => {
            if let Some(otel) = &otel {
                otel.end(e.as_response_error().status_code().as_u16());
            }
            return Err(e);
        }
    };
    if let Some(otel) = &otel {
        otel.end(res.status().as_u16());
    }
    let class = match res.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!(names::HTTP_RESPONSES, "status" => class).increment(1);
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// Starts the request's OpenTelemetry span, when traces are on.
fn request_span(req: &ServiceRequest, id: &str) -> Option<RequestSpan> {
    let state = req.app_data::<web::Data<AppState>>()?;
    if !state.traces.enabled() {
        return None;
    }
    let route = req.match_pattern();
    state.traces.request(traces::HttpRequest {
        method: req.method().as_str(),
        route: route.as_deref(),
        path: req.path(),
        request_id: id,
        headers: &Headers(req.headers()),
    })
}

/// Request headers read as a trace carrier.
struct Headers<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}
