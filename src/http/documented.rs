//! The error responses the OpenAPI document gives alike to several operations (the 404 of a
//! rule, a topic, a schedule...; a refused filter), each written once for the operations'
//! `responses(...)`, beside the shared 503 ([`super::error::PostgresUnavailable`]). What the
//! operations of one module share is declared there; what several modules share, here. (A
//! path parameter stays written in each operation: one given by type would be documented
//! twice, since the route's own `{id}` is documented too unless a parameter names it.)

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// `error_response!(NoRule, 404, "No rule with this id");` declares `NoRule`, a response
/// with an [`ErrorBody`](super::error::ErrorBody), of that status, so described.
macro_rules! error_response {
    ($name:ident, $status:literal, $description:literal) => {
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
    };
}
pub(crate) use error_response;

error_response!(BadFilter, 400, "A bad filter or limit (`invalid_query`)");
error_response!(BadExportQuery, 400, "A bad query, filter or format");
error_response!(
    AnalysisBusy,
    429,
    "The caller's previous analysis is still running (`rate_limited`, `details.scope` `analysis`)"
);
error_response!(PostgresBusy, 503, "PostgreSQL is unavailable or busy");
error_response!(
    ReadTimedOut,
    504,
    "A read ran past the API's statement timeout"
);

/// The response `status`, its body an `ErrorBody`.
pub fn with_error_body(status: u16, description: &str) -> BTreeMap<String, RefOr<Response>> {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
        .build();
    BTreeMap::from([(status.to_string(), response.into())])
}
