//! What a handler answers ([`Answer`]), and the answers many give alike: one thing looked up
//! by its id, or the 404 of its absence; a deletion's 204, or the same 404.

use actix_web::HttpResponse;
use serde::Serialize;

use super::error::ApiError;

/// A handler's answer: its response, or an error in the API's one shape.
pub type Answer = Result<HttpResponse, ApiError>;

/// 200 with `found` as its JSON body, or the error `missing` makes when nothing was found.
pub fn found<T: Serialize>(found: Option<T>, missing: impl FnOnce() -> ApiError) -> Answer {
    Ok(HttpResponse::Ok().json(found.ok_or_else(missing)?))
}

/// 204 when something was deleted, or the error `missing` makes when there was nothing to delete.
pub fn deleted(deleted: bool, missing: impl FnOnce() -> ApiError) -> Answer {
    if !deleted {
        return Err(missing());
    }
    Ok(HttpResponse::NoContent().finish())
}
