//! [`State`]: the application state as handlers receive it, given only to a request whose
//! caller the policy of the route the router actually matched allows.
//!
//! The [guard](super::guard) already admits or refuses every request before routing; this is
//! the second, independent check after routing, on `HttpRequest::match_pattern` (the route
//! that is about to run). Handlers take `State` instead of `web::Data<AppState>`, so no
//! handler can reach the database, Redis or the pipeline on a request the policy does not
//! allow, whatever path spelling or middleware mistake brought it there. It never falls back
//! to an open server's all-powerful caller: the guard attaches that caller, once the
//! server was started open, and a request without one is refused.

use std::future::{ready, Ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::error::ApiError;
use super::AppState;
use crate::auth::policy::{self, Access};
use crate::auth::Principal;
use crate::telemetry::names;

/// See the module documentation.
pub struct State {
    app: web::Data<AppState>,
    caller: Option<Principal>,
}

impl State {
    /// The admitted caller; `None` only on public routes.
    pub fn caller(&self) -> Option<&Principal> {
        self.caller.as_ref()
    }

    /// How the audit log and the key records name the caller.
    pub fn actor(&self) -> String {
        self.caller
            .as_ref()
            .map_or_else(|| "anonymous".into(), Principal::actor)
    }
}

impl Deref for State {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.app
    }
}

/// Refusal of a request that got past the guard without the caller its route needs: a bug
/// somewhere before the handler, so it is logged and counted as one.
fn unguarded(req: &HttpRequest, status: StatusCode, code: &'static str) -> ApiError {
    metrics::counter!(names::AUTH_REFUSED, "reason" => "unguarded").increment(1);
    tracing::error!(method = %req.method(), path = %req.path(), "a request reached a protected handler without an admitted caller; refused");
    ApiError::new(status, code, "this route needs a caller with another role")
}

/// The check itself, apart from the extractor so tests can call it.
fn admit(req: &HttpRequest) -> Result<State, ApiError> {
    let app = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("the application state is missing"))?;
    let pattern = req.match_pattern();
    let caller = req.extensions().get::<Principal>().cloned();
    match policy::required(req.method(), pattern.as_deref(), req.path()) {
        Access::Public => Ok(State { app, caller }),
        Access::Role(needed) => match caller {
            Some(p) if p.role.allows(needed) => Ok(State {
                app,
                caller: Some(p),
            }),
            Some(_) => Err(unguarded(req, StatusCode::FORBIDDEN, "forbidden")),
            None => Err(unguarded(req, StatusCode::UNAUTHORIZED, "unauthorized")),
        },
    }
}

impl FromRequest for State {
    type Error = ApiError;
    type Future = Ready<Result<State, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(admit(req))
    }
}
