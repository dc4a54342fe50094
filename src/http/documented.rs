//! The error responses the OpenAPI document gives alike to several operations (the 404 of a
//! rule, a topic, a schedule...; a refused filter), each written once for the operations'
//! `responses(...)`, beside the shared 503 ([`super::error::PostgresUnavailable`]). What the
//! operations of one module share is declared there; what several modules share, here. (A
//! path parameter stays written in each operation: one given by type would be documented
//! twice, since the route's own `{id}` is documented too unless a parameter names it.)

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// `error_responses! { NoRule: 404 = "No rule with this id", }` declares `NoRule`, a response
/// of that status, so described, with an [`ErrorBody`](super::error::ErrorBody); one per line.
macro_rules! error_responses {
    ($($name:ident: $status:literal = $description:literal,)*) => {$(
        #[doc = concat!("The ", $status, ": ", $description, ".")]
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::http::documented::with_error_body($status, $description)
            }
        }
    )*};
}
pub(crate) use error_responses;

error_responses! {
    BadFilter: 400 = "A bad filter or limit (`invalid_query`)",
    BadExportQuery: 400 = "A bad query, filter or format",
    AnalysisBusy: 429 = "The caller's previous analysis is still running (`rate_limited`, `details.scope` `analysis`)",
    PostgresBusy: 503 = "PostgreSQL is unavailable or busy",
    ReadTimedOut: 504 = "A read ran past the API's statement timeout",
    CostlyReadBusy: 429 = "The caller's previous costly read (a search counting facets, a digest previewed or sent, a topic's trending terms, the review queue's next posts) ran on for 10 s after this one came (`rate_limited`, `details.scope` `costly_read`)",
}

/// The 204 of a deletion, which has no body.
#[derive(utoipa::IntoResponses)]
#[response(status = 204, description = "Deleted")]
pub struct Deleted;

/// The response `status`, so described, with the one error body.
pub fn with_error_body(status: u16, description: &str) -> BTreeMap<String, RefOr<Response>> {
    BTreeMap::from([(status.to_string(), error_body(description).into())])
}

/// A response so described whose body is an `ErrorBody`.
pub fn error_body(description: &str) -> Response {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
        .build()
}
