//! The one error shape of the API: `{"error":{"code":"...","message":"...","details":{}}}`,
//! used for every 4xx and 5xx, including the extractor errors actix produces itself.

use crate::telemetry::causes::causes;
use actix_web::http::StatusCode;
use actix_web::{error, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

pub use crate::models::errors::ErrorCode;

/// The 503 of every operation that queries PostgreSQL, written once: a handler's document names
/// it in its `responses(...)`, and the document's conventions ([`super::openapi`]) describe it
/// and add the 504 of the statement timeout.
pub struct PostgresUnavailable;

impl utoipa::IntoResponses for PostgresUnavailable {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        let response = utoipa::openapi::Ref::from_response_name(Self::NAME);
        std::collections::BTreeMap::from([("503".to_string(), response.into())])
    }
}

impl PostgresUnavailable {
    pub const NAME: &'static str = "PostgresUnavailable";
    pub const DESCRIPTION: &'static str = "PostgreSQL is unavailable";
}

/// The body of every 4xx and 5xx response; the OpenAPI document's `ErrorBody` is this type, so
/// the documented shape and the one sent cannot differ.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code to branch on, a message for people, structured details.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable machine-readable code, the same over HTTP and the WebSocket.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// Structured details (which field, which limit); `{}` when there are none.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// An API error with its HTTP status, a stable machine-readable code and details.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    /// A 409 `limit_reached` for a creation past `limit`: `what` names the rows (plural),
    /// `settings`, where they are set, the caps per key and per deployment.
    pub fn limit_reached(limit: crate::db::Limit, what: &str, settings: Option<[&str; 2]>) -> Self {
        let set_by = |i: usize| settings.map_or_else(String::new, |s| format!(" ({})", s[i]));
        let message = match limit {
            crate::db::Limit::Owner(n) => format!(
                "your key holds {n} {what}, the most one key may{}; delete one first",
                set_by(0)
            ),
            crate::db::Limit::Deployment(n) => format!(
                "{n} {what} exist, the most this deployment holds{}; delete one first",
                set_by(1)
            ),
        };
        ApiError::new(ErrorCode::LimitReached, message)
    }

    /// A 400 with `code` and `message`.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        debug_assert_eq!(code.status(), 400, "{code} is not a 400");
        Self::new(code, message)
    }

    /// A 400 `invalid_query`: a query parameter the endpoint cannot take.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorCode::InvalidQuery, message)
    }

    /// A 404 for a missing resource.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// A 503 when a backing service is down; the client should retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// A 500 for an unexpected failure; the cause is logged, not returned.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// An error with `code` (which decides the status) and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    /// Refuses a batch of `received` `what` (a plural noun) that is empty (`empty_batch`) or
    /// holds more than `limit` (`too_many`).
    pub fn check_batch(
        received: usize,
        limit: usize,
        what: &str,
        too_many: ErrorCode,
    ) -> Result<(), ApiError> {
        if received == 0 {
            return Err(Self::bad_request(
                ErrorCode::EmptyBatch,
                format!("no {what} in the request"),
            ));
        }
        if received > limit {
            return Err(Self::new(
                too_many,
                format!("{received} {what} in one request; the limit is {limit}"),
            )
            .with_details(json!({"limit": limit, "received": received})));
        }
        Ok(())
    }

    /// Attaches structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The JSON body, in the documented [`ErrorBody`] shape.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status());
        if let Some(secs) = self.details.get("retry_after_secs").and_then(Value::as_u64) {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs));
        }
        res.json(self.body())
    }
}

impl ApiError {
    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A 503 when every database connection the API may use is busy: the database answers,
    /// this server is at its limit; the client should retry shortly.
    pub fn busy() -> Self {
        Self::busy_for(
            "pool",
            "the server is busy answering other queries; retry shortly",
            1,
        )
    }

    /// A 503 `busy` for a shared budget other than the connections, named by `reason` (the
    /// metric's label and `details.reason`), with `Retry-After: retry_after_secs`.
    pub fn busy_for(
        reason: &'static str,
        message: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        metrics::counter!(crate::telemetry::names::API_BUSY, "reason" => reason).increment(1);
        Self::new(ErrorCode::Busy, message)
            .with_details(json!({"retry_after_secs": retry_after_secs.max(1), "reason": reason}))
    }

    /// A 429 `rate_limited` for `scope` (the metric's label and `details.scope`), with
    /// `Retry-After` the whole seconds of `wait`, at least one.
    pub fn rate_limited(
        scope: &'static str,
        message: impl Into<String>,
        wait: std::time::Duration,
    ) -> Self {
        metrics::counter!(crate::telemetry::names::RATE_LIMITED, "scope" => scope).increment(1);
        let secs = crate::http::middleware::rate_limit::retry_after_secs(wait);
        Self::new(ErrorCode::RateLimited, message)
            .with_details(json!({"retry_after_secs": secs, "scope": scope}))
    }

    /// A 504 when a query ran past the API's statement timeout.
    pub fn query_timeout() -> Self {
        metrics::counter!(crate::telemetry::names::API_BUSY, "reason" => "timeout").increment(1);
        Self::new(
            ErrorCode::QueryTimeout,
            "the query took longer than the server allows (database.api_statement_timeout_ms); \
             narrow it (a shorter window, fewer filters) or retry",
        )
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::{PoolError, TimeoutType};
        match e {
            PoolError::Timeout(TimeoutType::Wait) => ApiError::busy(),
            PoolError::Backend(e) => {
                tracing::warn!(error = %crate::db::describe(&e), "database unavailable");
                ApiError::unavailable("the database is unavailable")
            }
            e => {
                tracing::warn!(error = %causes(&e), "database unavailable");
                ApiError::unavailable("the database is unavailable")
            }
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
            ApiError::query_timeout()
        } else if e.is_closed() || e.code().is_none_or(refuses_for_now) {
            tracing::warn!(error = %crate::db::describe(&e), "database unavailable");
            ApiError::unavailable("the database is unavailable")
        } else if e.code().is_some_and(|c| c.code().starts_with("40")) {
            // A transaction rollback: a deadlock or serialization failure with a concurrent
            // request. Nothing was written; the same request succeeds when asked again.
            tracing::warn!(error = %crate::db::describe(&e), "a transaction met a concurrent one");
            ApiError::unavailable("the request met a concurrent one in the database; ask again")
        } else if e.code().is_some_and(|c| c.code().starts_with("22")) {
            // A data exception: a value the request carried that PostgreSQL cannot hold (a
            // time out of its range, a NUL in text). The request is what is wrong.
            tracing::warn!(
                error = %crate::db::describe(&e),
                "a request parameter was refused by the database"
            );
            ApiError::invalid_query(
                "a value in the request is outside what the server can store or compare",
            )
        } else {
            ApiError::internal(crate::db::describe(&e))
        }
    }
}

/// PostgreSQL errors that say the server cannot take the request now rather than that the
/// request is wrong: connection exceptions (08), insufficient resources such as a full disk
/// (53), operator intervention such as a shutdown (57), and a database set read-only.
fn refuses_for_now(code: &tokio_postgres::error::SqlState) -> bool {
    let code = code.code();
    ["08", "53", "57"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION.code()
}

impl ApiError {
    /// An error of a query function that reports with `anyhow`: PostgreSQL's and the pool's
    /// errors keep their meaning (503, 504, 400 as above); anything else is internal.
    pub fn from_store(e: anyhow::Error) -> Self {
        let e = match e.downcast::<tokio_postgres::Error>() {
            Ok(e) => return e.into(),
            Err(e) => e,
        };
        match e.downcast::<deadpool_postgres::PoolError>() {
            Ok(e) => e.into(),
            Err(e) => ApiError::internal(format!("{e:#}")),
        }
    }
}

impl From<crate::db::cascades::ReadError> for ApiError {
    fn from(e: crate::db::cascades::ReadError) -> Self {
        match e {
            crate::db::cascades::ReadError::Db(e) => e.into(),
            crate::db::cascades::ReadError::Corrupt(what) => ApiError::internal(what),
        }
    }
}

impl From<fred::error::Error> for ApiError {
    fn from(e: fred::error::Error) -> Self {
        tracing::warn!(error = %causes(&e), "redis unavailable");
        ApiError::unavailable("redis is unavailable")
    }
}

/// Maps JSON body errors into the error shape.
pub fn json_error(err: error::JsonPayloadError, _: &HttpRequest) -> error::Error {
    let api = match &err {
        error::JsonPayloadError::OverflowKnownLength { .. }
        | error::JsonPayloadError::Overflow { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, err.to_string())
        }
        error::JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        _ => ApiError::bad_request(ErrorCode::InvalidJson, err.to_string()),
    };
    api.into()
}

/// Maps query-string errors into the error shape.
pub fn query_error(err: error::QueryPayloadError, _: &HttpRequest) -> error::Error {
    ApiError::invalid_query(err.to_string()).into()
}

/// Maps path errors into the error shape.
pub fn path_error(err: error::PathError, _: &HttpRequest) -> error::Error {
    ApiError::bad_request(ErrorCode::InvalidPath, err.to_string()).into()
}

/// Maps raw body read errors into the error shape.
pub fn payload_error(err: actix_web::Error) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidBody, err.to_string())
}

/// The response for routes that do not exist.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
