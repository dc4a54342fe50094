//! [`State`]: the application state as handlers receive it, given only to a request whose
//! caller the policy of the route the router actually matched allows.
//!
//! The [guard](super::middleware::guard) already admits or refuses every request before routing; this is
//! the second, independent check after routing, on `HttpRequest::match_pattern` (the route
//! that is about to run). Handlers take `State` instead of `web::Data<AppState>`, so no
//! handler can reach the database, Redis or the pipeline on a request the policy does not
//! allow, whatever path spelling or middleware mistake brought it there. It never falls back
//! to an open server's all-powerful caller: the guard attaches that caller, once the
//! server was started open, and a request without one is refused.

use crate::models::errors::ErrorCode;
use std::future::{ready, Ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::error::ApiError;
use super::AppState;
use crate::auth::policy::Access;
use crate::auth::Principal;
use crate::telemetry::names;

/// See the module documentation.
pub struct State {
    app: web::Data<AppState>,
    caller: Option<Principal>,
    /// An administrator's change: its database work goes to the reserved connection.
    reserved: bool,
    /// The client the request is budgeted to ([`State::client_id`]).
    client: String,
}

/// Connection time a caller needs in hand to start a query, in seconds: anything above a debt.
const DB_TIME_TO_START: f64 = 1e-3;

/// How long a costly read waits for the same caller's previous one to end.
pub const COSTLY_READ_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl State {
    /// A connection of the API's pool: the reserved one for an administrator's change (see
    /// [`crate::db::ApiPool`]), so no other caller's reads can keep it from the database.
    ///
    /// Other callers' connection time is budgeted ([`RateLimiter::db_time`]): each use and the
    /// rest after it are charged to the caller when the connection is given back, and a caller
    /// in debt is refused (429, `details.scope` `database`) until it is paid back, so one
    /// caller's slow reads cannot keep the API's few connections from everyone else.
    ///
    /// [`RateLimiter::db_time`]: super::middleware::rate_limit::RateLimiter::db_time
    pub async fn db(&self) -> Result<crate::db::ApiConnection, ApiError> {
        self.caller_db().get().await
    }

    /// The API's connections as [`State::db`] gives them to this caller, for reads that go on
    /// after the handler has returned (a streamed body's pages and chunks).
    pub fn caller_db(&self) -> CallerDb {
        CallerDb {
            pool: self.app.pool.clone(),
            limiter: self.app.limiter.clone(),
            client: self.client.clone(),
            reserved: self.reserved,
        }
    }

    /// The admitted caller; `None` only on public routes.
    pub fn caller(&self) -> Option<&Principal> {
        self.caller.as_ref()
    }

    /// The client the request is budgeted to (see [`super::middleware::peer::client_id`]).
    pub fn client_id(&self) -> String {
        self.client.clone()
    }

    /// The address the request came from, as the gate read it: what the audit log records as
    /// `ip` (`unknown` when the gate did not run).
    pub fn client_address(&self, req: &HttpRequest) -> String {
        req.extensions()
            .get::<super::middleware::peer::ClientAddress>()
            .map_or_else(|| "unknown".to_string(), |a| a.0.clone())
    }

    /// The caller's place for a costly read ([`super::AppState::costly_reads`]): a read asked
    /// while the caller's previous one runs waits for it (a dashboard asks again before the
    /// last answer came), up to [`COSTLY_READ_WAIT`], then is a 429.
    pub async fn costly_read(
        &self,
    ) -> Result<crate::actors::analyzer::share::CallerSlot<'_>, ApiError> {
        let caller = &self.client;
        let started = std::time::Instant::now();
        loop {
            if let Some(slot) = self.costly_reads.take(caller) {
                return Ok(slot);
            }
            if started.elapsed() >= COSTLY_READ_WAIT {
                return Err(ApiError::rate_limited(
                    "costly_read",
                    format!(
                        "this caller's previous costly read (a search counting facets, a \
                         digest previewed or sent, a topic's trending terms, the review \
                         queue's next posts) ran on for {} s; one at a time",
                        COSTLY_READ_WAIT.as_secs()
                    ),
                    std::time::Duration::from_secs(1),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Who owns what the caller saves: `key:<id>` of the first key of its key's line, so a
    /// rotated key keeps its views; `anonymous (open server)` on an open server.
    pub fn owner(&self) -> String {
        self.key_line().unwrap_or_else(|| self.actor())
    }

    /// `key:<id>` of the first key of the caller's key's line; `None` without a key.
    fn key_line(&self) -> Option<String> {
        let first = self.caller.as_ref()?.producer.as_deref()?;
        Some(format!("key:{first}"))
    }

    /// Who owns what the caller has run for it (export jobs): as [`Self::owner`] with a key,
    /// so a rotated key keeps its jobs and their budget; without one, its network, as its
    /// budgets are counted ([`Self::client_id`]).
    pub fn job_owner(&self) -> String {
        self.key_line().unwrap_or_else(|| self.client_id())
    }

    /// Whether the caller is an administrator (everyone, on an open server).
    pub fn is_admin(&self) -> bool {
        self.caller
            .as_ref()
            .is_some_and(|c| c.role == crate::auth::Role::Admin)
    }

    /// The caps of a creation by this caller, whose rows name it `actor` ([`Self::actor`]): an
    /// administrator's rows count only towards the deployment's total.
    pub fn caps<'a>(&self, actor: &'a str, per_key: i64, total: i64) -> crate::db::Caps<'a> {
        crate::db::Caps {
            owner: (!self.is_admin()).then_some(actor),
            per_owner: per_key,
            total,
        }
    }

    /// How the audit log and the key records name the caller.
    pub fn actor(&self) -> String {
        self.caller
            .as_ref()
            .map_or_else(|| "anonymous".into(), Principal::actor)
    }
}

/// The API's connections as one caller takes them: its budget of their time
/// (`limits.per_caller_db_share`) asked before each use and charged after it. A streamed
/// answer's reads, made long after its handler returned, are one caller's reads like any
/// other: left to the pool alone, four streams at full speed held the API's connections with
/// nothing charged.
#[derive(Clone)]
pub struct CallerDb {
    pool: crate::db::ApiPool,
    limiter: std::sync::Arc<crate::http::middleware::rate_limit::RateLimiter>,
    client: String,
    reserved: bool,
}

impl CallerDb {
    /// A connection charged to the caller, or, without waiting, how long until its debt is
    /// paid back. A stream under way waits that long itself, and checks its place and its
    /// caller again before it reads (see [`crate::http::api::search::export::Pacing`]).
    pub async fn try_get(
        &self,
    ) -> Result<Result<crate::db::ApiConnection, std::time::Duration>, deadpool_postgres::PoolError>
    {
        if self.reserved {
            return Ok(Ok(self.pool.get_reserved().await?));
        }
        if !self.limiter.enabled() {
            return Ok(Ok(self.pool.get().await?));
        }
        if let Err(wait) = self.limiter.db_time.take_n(&self.client, DB_TIME_TO_START) {
            return Ok(Err(wait));
        }
        let (limiter, client) = (self.limiter.clone(), self.client.clone());
        Ok(Ok(self.pool.get().await?.on_release(Box::new(
            move |took| {
                limiter.db_time.charge(&client, took.as_secs_f64());
            },
        ))))
    }

    /// A connection; a caller in debt is refused (429, `details.scope` `database`).
    pub async fn get(&self) -> Result<crate::db::ApiConnection, ApiError> {
        self.try_get().await?.map_err(|wait| {
            ApiError::rate_limited(
                "database",
                "this caller's queries took more of the API's database connections than \
                 limits.per_caller_db_share allows; wait for Retry-After",
                wait,
            )
        })
    }
}

impl Deref for State {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.app
    }
}

/// Whether the caller a long answer (a streamed export) was started for may still read it:
/// its key not revoked and its token not expired. Checked as the answer goes on, as the
/// WebSocket's sessions are closed, so a revoked key does not read on for hours at the pace
/// its client chooses.
#[derive(Clone, Default)]
pub struct Standing {
    pub(crate) auth: Option<std::sync::Arc<crate::auth::Authenticator>>,
    pub(crate) key_id: Option<std::sync::Arc<str>>,
    pub(crate) expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Standing {
    pub fn holds(&self) -> bool {
        let revoked = match (&self.auth, &self.key_id) {
            (Some(auth), Some(id)) => auth.is_revoked(id),
            _ => false,
        };
        !revoked && self.expires_at.is_none_or(|at| chrono::Utc::now() < at)
    }
}

impl State {
    /// The caller's standing, to check again as a long answer goes on.
    pub fn standing(&self) -> Standing {
        Standing {
            auth: self.app.auth.clone(),
            key_id: self.caller.as_ref().and_then(|c| c.key_id.clone()),
            expires_at: self.caller.as_ref().and_then(|c| c.expires_at),
        }
    }
}

/// Refusal of a request that got past the guard without the caller its route needs: a bug
/// somewhere before the handler, so it is logged and counted as one.
fn unguarded(req: &HttpRequest, code: ErrorCode) -> ApiError {
    metrics::counter!(names::AUTH_REFUSED, "reason" => "unguarded").increment(1);
    tracing::error!(method = %req.method(), path = %req.path(), "a request reached a protected handler without an admitted caller; refused");
    ApiError::new(code, "this route needs a caller with another role")
}

/// The client a request of `caller` is budgeted to: its key, or its network without one.
fn client_of(caller: Option<&Principal>, req: &HttpRequest) -> String {
    let network = req
        .extensions()
        .get::<super::middleware::peer::ClientNetwork>()
        .map_or_else(|| "unknown".to_string(), |n| n.0.clone());
    super::middleware::peer::client_id(caller.and_then(|c| c.key_id.as_deref()), &network)
}

/// The check itself, apart from the extractor so tests can call it.
fn admit(req: &HttpRequest) -> Result<State, ApiError> {
    let app = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("the application state is missing"))?;
    let pattern = req.match_pattern();
    let caller = req.extensions().get::<Principal>().cloned();
    let change = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let client = client_of(caller.as_ref(), req);
    match app
        .policy
        .required(req.method(), pattern.as_deref(), req.path())
    {
        Access::Public => Ok(State {
            app,
            caller,
            reserved: false,
            client,
        }),
        Access::Role(needed) => match caller {
            Some(p) if p.role.allows(needed) => Ok(State {
                reserved: change
                    && p.role == crate::auth::Role::Admin
                    && pattern
                        .as_deref()
                        .is_some_and(|pattern| app.policy.audited(req.method(), pattern)),
                app,
                caller: Some(p),
                client,
            }),
            Some(_) => Err(unguarded(req, ErrorCode::Forbidden)),
            None => Err(unguarded(req, ErrorCode::Unauthorized)),
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

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use actix_web::{test, web, App, HttpMessage, HttpResponse};

    use super::*;
    use crate::auth::Role;
    use crate::config::Settings;

    /// An application state whose connections are never opened (nothing here queries).
    pub(crate) fn app_state() -> web::Data<AppState> {
        let settings = Settings::default();
        let pipeline_pool = crate::db::pool(&settings.database.url, 1).unwrap();
        let redis = fred::types::Builder::default_centralized()
            .build()
            .expect("a client that is never connected");
        let metrics = crate::telemetry::metrics_handle();
        web::Data::new(
            AppState::new(
                Arc::new(settings),
                pipeline_pool,
                redis,
                metrics,
                "test".into(),
            )
            .unwrap(),
        )
    }

    /// The caller of key `k1`, unscoped, with `role`.
    fn caller(role: Role) -> Principal {
        Principal {
            key_id: Some(Arc::from("k1")),
            producer: Some(Arc::from("k1")),
            role,
            scope: None,
            expires_at: None,
        }
    }

    async fn handler(state: State) -> HttpResponse {
        HttpResponse::Ok().body(state.actor())
    }

    /// Without the guard in front, handlers still refuse a caller the route's policy does not
    /// allow, and never stand in the open server's caller for a missing one.
    #[actix_web::test]
    async fn handlers_refuse_what_the_matched_route_does_not_allow_without_the_guard() {
        let app = test::init_service(
            App::new()
                .app_data(app_state())
                .route("/api/v1/admin/keys", web::get().to(handler))
                .route("/api/v1/posts", web::get().to(handler))
                .route("/health", web::get().to(handler)),
        )
        .await;
        let cases = [
            ("/api/v1/admin/keys", None, 401),
            ("/api/v1/admin/keys", Some(caller(Role::Analyst)), 403),
            ("/api/v1/admin/keys", Some(caller(Role::Admin)), 200),
            ("/api/v1/posts", None, 401),
            ("/api/v1/posts", Some(caller(Role::Ingest)), 403),
            ("/api/v1/posts", Some(caller(Role::Analyst)), 200),
            ("/health", None, 200),
        ];
        for (path, principal, status) in cases {
            let req = test::TestRequest::get().uri(path).to_request();
            if let Some(p) = &principal {
                req.extensions_mut().insert(p.clone());
            }
            let res = test::call_service(&app, req).await;
            assert_eq!(res.status().as_u16(), status, "{path} as {principal:?}");
        }
        // A second spelling reaches the same handler, which judges it by the matched route.
        let req = test::TestRequest::get()
            .uri("/api/v1/%61dmin/keys")
            .to_request();
        req.extensions_mut().insert(caller(Role::Analyst));
        assert_eq!(test::call_service(&app, req).await.status().as_u16(), 403);
    }

    async fn reserved(state: State) -> HttpResponse {
        HttpResponse::Ok().body(state.reserved.to_string())
    }

    /// Every admin `POST` took the one connection kept for admins' changes, unbudgeted and
    /// without rest: a loop of digest previews kept another admin from revoking a key.
    #[actix_web::test]
    async fn only_an_admins_audited_change_takes_the_reserved_connection() {
        let app = test::init_service(
            App::new()
                .app_data(app_state())
                .route("/api/v1/digests/preview", web::post().to(reserved))
                .route("/api/v1/topic-preview", web::post().to(reserved))
                .route("/api/v1/admin/keys/{id}", web::delete().to(reserved)),
        )
        .await;
        let admin = caller(Role::Admin);
        for (req, expected) in [
            (
                test::TestRequest::post().uri("/api/v1/digests/preview"),
                "false",
            ),
            (
                test::TestRequest::post().uri("/api/v1/topic-preview"),
                "false",
            ),
            (
                test::TestRequest::delete().uri("/api/v1/admin/keys/7"),
                "true",
            ),
        ] {
            let req = req.to_request();
            req.extensions_mut().insert(admin.clone());
            let res = test::call_service(&app, req).await;
            assert_eq!(res.status().as_u16(), 200);
            let body = test::read_body(res).await;
            assert_eq!(body, expected.as_bytes());
        }
    }
}
