//! The gate every request passes before its handler, in this order: one spelling per path
//! ([`crate::http::middleware::canonical`]), a `Host` this server answers to ([`crate::http::middleware::peer`]), CORS
//! preflights (answered here, [`crate::http::middleware::security_headers::preflight`]), the route the
//! router will match and the role it needs ([`crate::auth::policy`]), authentication, rate
//! limits, the WebSocket's Origin check, body limits, and the audit record of admin changes.
//!
//! Access is decided on the matched route (its pattern), found with the router's own resource
//! map on the router's own decoded path, never on the path text as sent. Handlers check it
//! again after routing ([`crate::http::state::State`]), so a request that reaches a protected
//! handler without an admitted caller is refused there too.
//!
//! Each refusal is a 4xx in the API's error shape (400 for a second spelling of a path, a
//! foreign Host or an encoded NUL, 401 without valid credentials, 403 for a role that may not,
//! 404 for an API path no route serves, 413/400/408 for oversize, too deep or too slow bodies),
//! and each one spends a request of the caller's address's budget and of its network's (/24,
//! /64): refusals are what guessing and probing are made of, so they are never free, and an
//! empty budget answers 429 with `Retry-After`. A granted CORS preflight is the one request
//! that spends no budget. A key that would cost an Argon2 check is paid
//! for the same way before it is checked. Bodies are charged to their client's share of memory
//! as they arrive ([`crate::http::middleware::body_budget`]). Metered responses carry `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Scope` (`key` or `ip`).

use crate::models::errors::ErrorCode;
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use serde_json::{json, Value};

use crate::auth::policy::{self, Access};
use crate::auth::{AuthError, Principal, Role};
use crate::db::audit::{self, Outcome};
use crate::http::error::ApiError;
use crate::http::middleware::connections::OverConnectionCap;
use crate::http::middleware::rate_limit::{retry_after_secs, Buckets};
use crate::http::middleware::request_id::RequestId;
use crate::http::middleware::security_headers;
use crate::http::{middleware::canonical, middleware::peer, AppState};
use crate::telemetry::causes::causes;
use crate::telemetry::names;

/// Longest query string accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Query parameter carrying a token where headers cannot (browser WebSockets).
pub const TOKEN_QUERY: &str = "access_token";

/// The route pattern of the WebSocket upgrade.
pub const WS_PATTERN: &str = "/ws";

/// Whether the guard checks the `Origin` of a request of `method` to the route `pattern`: on
/// the WebSocket handshake and on every request that changes something. The OpenAPI document
/// lists 403 `origin_not_allowed` on the operations it holds for.
pub fn checks_origin(method: &Method, pattern: &str) -> bool {
    pattern == WS_PATTERN || !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The route whose bodies may be as large as `limits.max_events_body_bytes`.
const EVENTS_PATTERN: &str = "/api/v1/events";

/// Largest body of a request without credentials (the token exchange's is a hundred bytes):
/// a body anyone may send is one anyone may send slowly, many times over.
pub const MAX_PUBLIC_BODY_BYTES: usize = 16 * 1024;

/// Requests a full bucket allows (the burst).
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// Requests left in the bucket this request was counted in.
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// Which budget the request was counted in: `key` (the caller's) or `ip` (its address's).
const RATELIMIT_SCOPE: HeaderName = HeaderName::from_static("ratelimit-scope");

/// Credentials as presented.
enum Credentials<'a> {
    Token(&'a str),
    Key(&'a str),
}

fn credentials<'a>(
    req: &'a ServiceRequest,
    pattern: &str,
) -> Result<Option<Credentials<'a>>, AuthError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| AuthError::Malformed("Authorization is not ASCII"))?;
        let (scheme, rest) = value.split_once(' ').ok_or(AuthError::Malformed(
            "expected `Authorization: Bearer <token>`",
        ))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed("only the Bearer scheme is supported"));
        }
        let rest = rest.trim();
        return Ok(Some(if rest.starts_with(crate::auth::keys::KEY_PREFIX) {
            Credentials::Key(rest)
        } else {
            Credentials::Token(rest)
        }));
    }
    if let Some(value) = req.headers().get("x-api-key") {
        let value = value
            .to_str()
            .map_err(|_| AuthError::Malformed("X-API-Key is not ASCII"))?;
        return Ok(Some(Credentials::Key(value.trim())));
    }
    if pattern == WS_PATTERN {
        let token = req.query_string().split('&').find_map(|pair| {
            pair.strip_prefix(TOKEN_QUERY)
                .and_then(|rest| rest.strip_prefix('='))
        });
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::Token(token)));
        }
    }
    Ok(None)
}

/// Where a request comes from, as the budgets and the audit log know it.
struct Client {
    /// The address (the audit log's `ip`).
    address: String,
    /// Its network (/24, /64): the budgets of callers without a key.
    network: String,
}

fn client_of(req: &ServiceRequest, state: &AppState) -> Client {
    let forwarded = peer::forwarded_for(req.headers());
    match state
        .proxies
        .client(req.peer_addr().map(|a| a.ip()), forwarded.as_deref())
    {
        Some(ip) => Client {
            address: ip.to_string(),
            network: peer::network_of(ip),
        },
        None => Client {
            address: "unknown".into(),
            network: "unknown".into(),
        },
    }
}

/// A request's place in one budget, for the response's rate-limit headers.
struct Metered {
    scope: &'static str,
    limit: u64,
    remaining: u64,
}

fn with_rate_headers(
    mut res: ServiceResponse<BoxBody>,
    metered: Option<Metered>,
) -> ServiceResponse<BoxBody> {
    if let Some(m) = metered {
        let headers = res.headers_mut();
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(m.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(m.remaining));
        headers.insert(RATELIMIT_SCOPE, HeaderValue::from_static(m.scope));
    }
    res
}

fn rate_limited(scope: &'static str, wait: Duration) -> ApiError {
    let secs = retry_after_secs(wait);
    ApiError::rate_limited(scope, format!("too many requests; retry in {secs} s"), wait)
}

/// Takes one request of `who`'s budget in `buckets`: `Ok` with the headers to send, or the
/// 429 to answer instead.
fn spend(
    state: &AppState,
    buckets: &Buckets,
    scope: &'static str,
    who: &str,
) -> Result<Option<Metered>, ApiError> {
    if !state.limiter.enabled() {
        return Ok(None);
    }
    match buckets.take(who) {
        Ok(remaining) => Ok(Some(Metered {
            scope,
            limit: buckets.burst(),
            remaining,
        })),
        Err(wait) => Err(rate_limited(scope, wait)),
    }
}

/// Takes one request of the client's address budget and of its network's: both must allow it.
fn spend_address(state: &AppState, client: &Client) -> Result<Option<Metered>, ApiError> {
    let metered = spend(state, &state.limiter.per_ip, "ip", &client.address)?;
    spend(
        state,
        &state.limiter.per_network,
        "network",
        &client.network,
    )?;
    Ok(metered)
}

/// The response for `error`, with `Retry-After` when it is a 429.
fn respond(req: ServiceRequest, error: ApiError) -> ServiceResponse<BoxBody> {
    let retry = error
        .details
        .get("retry_after_secs")
        .and_then(Value::as_u64);
    let mut res = req.into_response(error.error_response());
    if let Some(secs) = retry {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// Refuses `req` with `error`, spending a request of the address's budget (see the module
/// documentation); an empty budget answers 429 instead.
fn refuse(
    req: ServiceRequest,
    state: &AppState,
    client: &Client,
    error: ApiError,
) -> ServiceResponse<BoxBody> {
    metrics::counter!(names::HTTP_REFUSED, "reason" => error.code.as_str()).increment(1);
    match spend_address(state, client) {
        Ok(metered) => with_rate_headers(respond(req, error), metered),
        Err(limited) => respond(req, limited),
    }
}

fn auth_refusal(error: &AuthError) -> ApiError {
    let code = error.code();
    metrics::counter!(names::AUTH_REFUSED, "reason" => code.as_str()).increment(1);
    ApiError::new(code, error.to_string())
}

/// Why a request was not admitted as a caller.
enum Unadmitted {
    /// Its credentials are missing or wrong.
    Refused(AuthError),
    /// Checking its key would cost a hash its address's budget cannot pay for.
    Limited(ApiError),
}

/// The caller behind the request's credentials. A key not verified lately costs an Argon2
/// check, so it is paid for from the address's budget first: a flood of made-up keys gets
/// 429s, not hashing.
async fn authenticate(
    state: &AppState,
    req: &ServiceRequest,
    pattern: &str,
    client: &Client,
) -> Result<Principal, Unadmitted> {
    let Some(auth) = &state.auth else {
        return Ok(Principal::open());
    };
    let refused = Unadmitted::Refused;
    match credentials(req, pattern).map_err(refused)? {
        Some(Credentials::Token(t)) => auth.authenticate_token(t).await.map_err(refused),
        Some(Credentials::Key(k)) => {
            if !auth.remembers(k) {
                spend_address(state, client).map_err(Unadmitted::Limited)?;
            }
            auth.authenticate_key(k, &client.network)
                .await
                .map_err(refused)
        }
        None => Err(refused(AuthError::Missing)),
    }
}

/// Middleware function, used with `actix_web::middleware::from_fn`.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let method = req.method().clone();
    let path = req.path().to_string();
    let client = client_of(&req, &state);
    let ip = client.address.clone();
    req.extensions_mut()
        .insert(peer::ClientNetwork(client.network.clone()));
    req.extensions_mut()
        .insert(peer::ClientAddress(client.address.clone()));

    if req.conn_data::<OverConnectionCap>().is_some() {
        let error = ApiError::rate_limited(
            "connections",
            format!(
                "this network holds {} connections already \
                 (http.max_connections_per_network); reuse or close one",
                state.settings.http.max_connections_per_network
            ),
            std::time::Duration::from_secs(1),
        );
        let mut res = respond(req, error);
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(res);
    }

    if let Some(problem) = canonical::problem(&path) {
        let error = ApiError::bad_request(ErrorCode::NonCanonicalPath, problem)
            .with_details(json!({"rule": "one spelling per path: no encoded letters, digits or `-._~`, no `//`, `.` or `..` segments, no backslash, no NUL"}));
        return Ok(refuse(req, &state, &client, error));
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !peer::host_allowed(&state.settings.http.allowed_hosts, host.as_deref()) {
        let error = ApiError::bad_request(
            ErrorCode::HostNotAllowed,
            "this server does not answer to that Host; add the name to http.allowed_hosts",
        );
        return Ok(refuse(req, &state, &client, error));
    }
    if req.query_string().len() > MAX_QUERY_BYTES {
        metrics::counter!(names::INPUT_REFUSED, "reason" => "query_too_long").increment(1);
        let error = ApiError::new(
            ErrorCode::QueryTooLong,
            format!("the query string is longer than {MAX_QUERY_BYTES} bytes"),
        );
        return Ok(refuse(req, &state, &client, error));
    }
    // No text Pulse stores or compares can hold NUL (PostgreSQL's text cannot).
    if has_encoded_nul(req.query_string()) {
        metrics::counter!(names::INPUT_REFUSED, "reason" => "nul").increment(1);
        let error = ApiError::invalid_query("the query string holds a NUL (%00)");
        return Ok(refuse(req, &state, &client, error));
    }

    // A CORS preflight: browsers send it without credentials, so it is answered here, before
    // any route's role is asked for. A refused one is paid for as every refusal is; a granted
    // one is free: a browser preflights each URL a key-using page calls (`Authorization` is
    // not a simple header), so an office behind one address using an allowed app would
    // otherwise spend its budget on them and see its calls fail as opaque CORS errors, and a
    // grant costs no database work.
    if security_headers::is_preflight(&req) {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        let answer = security_headers::preflight(&state.settings.http.cors_origins, origin);
        return Ok(match answer {
            Ok(grant) => req.into_response(grant),
            Err(error) => refuse(req, &state, &client, error),
        });
    }

    // The route the router will match, on the path the router matches.
    let pattern = req.resource_map().match_pattern(req.match_info().as_str());
    let Some(pattern) = pattern else {
        if policy::is_api_path(&path) {
            let error = ApiError::new(
                ErrorCode::RouteNotFound,
                format!("no route for {method} {path}"),
            );
            return Ok(refuse(req, &state, &client, error));
        }
        // The dashboard's files and client-side routes: free, but a miss is a refusal like
        // any other (probing for files costs the address's budget).
        let res = next.call(req).await?.map_into_boxed_body();
        if res.status() != StatusCode::NOT_FOUND {
            return Ok(res);
        }
        metrics::counter!(names::HTTP_REFUSED, "reason" => "route_not_found").increment(1);
        return Ok(match spend_address(&state, &client) {
            Ok(metered) => with_rate_headers(res, metered),
            Err(limited) => {
                let (req, _) = res.into_parts();
                ServiceResponse::new(req.clone(), limited.error_response())
            }
        });
    };

    // Who is calling, and may they?
    let principal = match state.policy.required(&method, Some(&pattern), &path) {
        Access::Public => None,
        Access::Role(needed) => {
            let principal = match authenticate(&state, &req, &pattern, &client).await {
                Ok(p) => p,
                Err(Unadmitted::Limited(limited)) => return Ok(respond(req, limited)),
                Err(Unadmitted::Refused(e)) => {
                    let mut res = refuse(req, &state, &client, auth_refusal(&e));
                    if res.status() == StatusCode::UNAUTHORIZED {
                        res.headers_mut().insert(
                            header::WWW_AUTHENTICATE,
                            HeaderValue::from_static("Bearer realm=\"pulse\""),
                        );
                    }
                    return Ok(res);
                }
            };
            if !principal.role.allows(needed) {
                return Ok(forbid(req, &state, &client, &principal, needed, &pattern).await);
            }
            Some(principal)
        }
    };

    // Rate limits: per key for callers with one, per address otherwise. An open server's
    // callers have no key: the key budget is their network's, or a host with a /64 of
    // addresses would have a budget for each.
    let metered = if pattern == "/health" && matches!(method, Method::GET | Method::HEAD) {
        None
    } else {
        let spent = match &principal {
            Some(Principal {
                key_id: Some(id), ..
            }) => spend(&state, &state.limiter.per_key, "key", id),
            Some(_) => spend(&state, &state.limiter.per_key, "key", &client.network),
            None => spend_address(&state, &client),
        };
        match spent {
            Ok(m) => m,
            Err(limited) => return Ok(respond(req, limited)),
        }
    };

    // Browsers send their page's Origin on WebSocket handshakes and on every request that
    // changes something. A page elsewhere needs no preflight for a change without a JSON body
    // (a form, or `fetch` in `no-cors` mode: enabling a rule, sending a digest), which an open
    // server would run; only the dashboard's own origin and the configured ones may.
    if checks_origin(&method, &pattern) {
        if let Some(origin) = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        {
            if !security_headers::same_origin(origin, host.as_deref())
                && !security_headers::origin_allowed(&state.settings.http.cors_origins, origin)
            {
                let message = if pattern == WS_PATTERN {
                    metrics::counter!(names::WS_REJECTED, "reason" => "origin").increment(1);
                    "WebSocket connections from this origin are not allowed (http.cors_origins)"
                } else {
                    "requests that change something are not accepted from this origin \
                     (http.cors_origins)"
                };
                let error = ApiError::new(ErrorCode::OriginNotAllowed, message);
                return Ok(refuse(req, &state, &client, error));
            }
        }
    }

    // Bodies: size, depth and time, charged to the caller's share, before any handler reads
    // them; the charge is held until the response is ready.
    let mut body = None;
    let mut _charge = None;
    if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        let limits = &state.settings.limits;
        let body_limits = crate::http::middleware::body_limits::BodyLimits {
            bytes: if principal.is_none() {
                MAX_PUBLIC_BODY_BYTES
            } else if pattern == EVENTS_PATTERN {
                limits.max_events_body_bytes
            } else {
                limits.max_body_bytes
            },
            max_depth: limits.max_json_depth,
            timeout: Duration::from_secs(limits.body_timeout_secs.max(1)),
        };
        let key_id = principal.as_ref().and_then(|p| p.key_id.as_deref());
        let owner = peer::client_id(key_id, &client.network);
        let mut charge = match state.bodies.start(&owner, principal.is_none()) {
            Ok(charge) => charge,
            Err(refusal) => {
                let error = crate::http::middleware::body_limits::budget_refusal(refusal);
                return Ok(with_rate_headers(respond(req, error), metered));
            }
        };
        match crate::http::middleware::body_limits::check(&mut req, body_limits, &mut charge).await
        {
            Ok(bytes) => body = Some(bytes),
            Err(e) => {
                let mut res = with_rate_headers(respond(req, e), metered);
                // The rest of an unread body would be read as the next request.
                res.response_mut()
                    .head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
                return Ok(res);
            }
        }
        _charge = Some(charge);
    }

    // Handlers are routed by GET alone; a HEAD is answered by the GET handler, which can
    // tell ([`is_head`]), with its body dropped unread. A WebSocket handshake is a GET and
    // nothing else.
    let head = method == Method::HEAD && pattern != WS_PATTERN;
    if head {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(Head);
    }

    let Some(principal) = principal else {
        let res = next.call(req).await?.map_into_boxed_body();
        return Ok(with_rate_headers(headers_only(res, head), metered));
    };
    req.extensions_mut().insert(principal.clone());
    if !state.policy.audited(&method, &pattern) {
        let res = next.call(req).await?.map_into_boxed_body();
        return Ok(with_rate_headers(headers_only(res, head), metered));
    }

    // Admin changes: recorded before they run; no record, no change.
    let payload = match body.as_deref().filter(|b| !b.is_empty()) {
        Some(body) => kept_payload(&state, &principal, &client, body),
        None => Value::Null,
    };
    let entry = audit_entry(&req, &principal, &path, &pattern, payload, &ip);
    let admin = principal.role == crate::auth::Role::Admin;
    let audit_id = match audit_client(&state, admin).await {
        Ok(client) => audit::record(&**client, &entry, Outcome::Attempted, None)
            .await
            .ok(),
        Err(_) => None,
    };
    let Some(audit_id) = audit_id else {
        let error = ApiError::unavailable(
            "the audit log cannot be written; admin changes are refused until it can",
        );
        return Ok(with_rate_headers(respond(req, error), metered));
    };
    let res = next.call(req).await?;
    let status = res.status();
    let (res, created) = created_id(res, status).await;
    let outcome = if status.is_success() {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    let target = created.map(|id| format!("{}/{id}", path.trim_end_matches('/')));
    let status = status.as_u16() as i16;
    if let Err(e) = finish_audit(&state, admin, audit_id, outcome, status, target.as_deref()).await
    {
        tracing::error!(error = %causes(e.as_ref()), audit_id, "could not complete an audit record");
    }
    Ok(with_rate_headers(headers_only(res, head), metered))
}

/// What the audit record of `body` keeps: its JSON, redacted, while the caller's allowance of
/// audit bytes lasts, then its size and hash. Records are kept a year; bodies of 16 KiB
/// refused by the handler, a hundred a second, would otherwise add 140 GB a day.
fn kept_payload(state: &AppState, principal: &Principal, client: &Client, body: &[u8]) -> Value {
    let payload =
        serde_json::from_slice(body).unwrap_or_else(|_| json!({"note": "body is not JSON"}));
    let payload = audit::redact(payload);
    let bytes = payload.to_string().len() as f64;
    let owner = peer::client_id(principal.key_id.as_deref(), &client.network);
    match state.limiter.audit_payload.take_n(&owner, bytes) {
        Ok(_) => payload,
        Err(_) => audit::withheld(body),
    }
}

/// Marks a `HEAD` the guard hands to a `GET` handler ([`is_head`]).
#[derive(Clone, Copy)]
struct Head;

/// Whether the request is a `HEAD` answered by its route's `GET` handler: such a handler
/// answers with the headers alone, and starts nothing a body would need (a place, an audit
/// record, a read).
pub fn is_head(req: &actix_web::HttpRequest) -> bool {
    req.extensions().get::<Head>().is_some()
}

/// For a `HEAD` (`head`), `res` with its body dropped unread, its headers and announced size
/// kept. The server leaves a HEAD's body out, but only after polling it to its end, and a body
/// no one reads is polled as fast as it is made: a streamed export read whole from PostgreSQL
/// and compressed, for nothing.
fn headers_only(res: ServiceResponse<BoxBody>, head: bool) -> ServiceResponse<BoxBody> {
    if !head {
        return res;
    }
    res.map_body(|_, body| BoxBody::new(Unread(body.size())))
}

/// A body of the given size that ends before its first byte: a HEAD's.
struct Unread(BodySize);

impl MessageBody for Unread {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        self.0
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<actix_web::web::Bytes, Self::Error>>> {
        std::task::Poll::Ready(None)
    }
}

/// How many times an audit write waits for a connection. The API's connections rest (the duty
/// cycle) three times as long as they were held: after the handler's query of a second, one
/// wait of `database.api_wait_ms` ran out and the record stayed `attempted`; before it, an
/// earlier request's rest refused the change with 503.
const AUDIT_CONNECTION_TRIES: usize = 10;

/// A connection for an audit write, waiting out its rest: for an administrator's change the
/// reserved one, which other callers' reads never hold.
async fn audit_client(
    state: &AppState,
    admin: bool,
) -> Result<crate::db::ApiConnection, deadpool_postgres::PoolError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let got = if admin {
            state.pool.get_reserved().await
        } else {
            state.pool.get().await
        };
        match got {
            Err(_) if tries < AUDIT_CONNECTION_TRIES => continue,
            got => return got,
        }
    }
}

async fn finish_audit(
    state: &AppState,
    admin: bool,
    audit_id: i64,
    outcome: Outcome,
    status: i16,
    target: Option<&str>,
) -> anyhow::Result<()> {
    let client = audit_client(state, admin).await?;
    Ok(audit::finish(&**client, audit_id, outcome, status, target).await?)
}

/// Whether a query string percent-encodes a NUL character.
fn has_encoded_nul(query: &str) -> bool {
    query
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// The 403 for a caller whose role may not use the route. It spends the address's budget
/// like every refusal, and only a refusal the budget allows is written to the audit log, so
/// a flood of forbidden admin changes costs a few rows, then 429s.
async fn forbid(
    req: ServiceRequest,
    state: &AppState,
    client: &Client,
    principal: &Principal,
    needed: Role,
    pattern: &str,
) -> ServiceResponse<BoxBody> {
    metrics::counter!(names::AUTH_REFUSED, "reason" => "forbidden").increment(1);
    let method = req.method().clone();
    let path = req.path().to_string();
    let error = ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "role `{}` may not {method} {path}; it needs `{needed}`{}",
            principal.role,
            match needed {
                Role::Admin => "",
                Role::Analyst => ", `editor` or `admin`",
                _ => " or `admin`",
            }
        ),
    );
    metrics::counter!(names::HTTP_REFUSED, "reason" => error.code.as_str()).increment(1);
    let metered = match spend_address(state, client) {
        Ok(m) => m,
        Err(limited) => return respond(req, limited),
    };
    if state.policy.audited(&method, pattern) {
        let entry = audit_entry(
            &req,
            principal,
            &path,
            pattern,
            Value::Null,
            &client.address,
        );
        if let Ok(client) = state.pool.get().await {
            let _ = audit::record(&**client, &entry, Outcome::Denied, Some(403)).await;
        }
    }
    with_rate_headers(respond(req, error), metered)
}

fn audit_entry(
    req: &ServiceRequest,
    principal: &Principal,
    path: &str,
    pattern: &str,
    payload: Value,
    ip: &str,
) -> audit::Entry {
    audit::Entry {
        actor: principal.actor(),
        actor_role: Some(principal.role.to_string()),
        action: audit::action_for(req.method().as_str(), pattern),
        target: Some(path.to_string()),
        payload,
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
        ip: Some(ip.to_string()),
    }
}

/// The largest `201 Created` body read for the id of what was created.
const CREATED_READ_BYTES: u64 = 64 * 1024;

/// For a `201 Created`, the `id` of what was created (read from the small JSON response,
/// which is passed on unchanged; a larger or streamed one is passed on unread).
async fn created_id(
    res: ServiceResponse<impl MessageBody + 'static>,
    status: StatusCode,
) -> (ServiceResponse<BoxBody>, Option<String>) {
    let small =
        matches!(res.response().body().size(), BodySize::Sized(n) if n <= CREATED_READ_BYTES);
    if status != StatusCode::CREATED || !small {
        return (res.map_into_boxed_body(), None);
    }
    let (req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes_limited(body, CREATED_READ_BYTES as usize)
        .await
        .map_err(|_| ())
        .and_then(|r| r.map_err(|_| ()))
    else {
        let response = head.set_body(BoxBody::new(()));
        return (ServiceResponse::new(req, response), None);
    };
    let id = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .map(|id| match id {
            Value::String(s) => s,
            other => other.to_string(),
        });
    let response = head.set_body(BoxBody::new(bytes));
    (ServiceResponse::new(req, response), id)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use actix_web::middleware::from_fn;
    use actix_web::{test, App, HttpRequest, HttpResponse};
    use futures::StreamExt;

    use super::*;

    /// What the handler saw and how much of its body was read.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        saw_head: AtomicBool,
    }

    /// A GET handler whose streamed body of ten chunks counts the chunks asked for.
    async fn streamed(req: HttpRequest, probe: web::Data<Arc<Probe>>) -> HttpResponse {
        probe.saw_head.store(is_head(&req), Ordering::Relaxed);
        let probe = Arc::clone(&probe);
        let body = futures::stream::iter(0..10).map(move |_| {
            probe.polls.fetch_add(1, Ordering::Relaxed);
            Ok::<_, actix_web::Error>(web::Bytes::from_static(b"chunk"))
        });
        HttpResponse::Ok().content_type("text/csv").streaming(body)
    }

    /// The server leaves a HEAD's body out only after reading it to its end, as fast as it is
    /// made: the guard drops it unread, its headers kept, and tells the handler.
    #[actix_web::test]
    async fn a_head_is_answered_by_the_get_handler_with_its_body_unread() {
        let probe = Arc::new(Probe::default());
        let app = test::init_service(
            App::new()
                .app_data(crate::http::state::tests::app_state())
                .app_data(web::Data::new(probe.clone()))
                .wrap(from_fn(guard))
                .route("/api/v1/probe", web::get().to(streamed)),
        )
        .await;

        let req = test::TestRequest::default()
            .method(Method::HEAD)
            .uri("/api/v1/probe")
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), "text/csv");
        assert_eq!(res.response().body().size(), BodySize::Stream);
        assert!(test::read_body(res).await.is_empty());
        assert!(probe.saw_head.load(Ordering::Relaxed));
        assert_eq!(probe.polls.load(Ordering::Relaxed), 0, "no chunk was made");

        // The same route as a GET is read whole, as the server reads every body.
        let req = test::TestRequest::get().uri("/api/v1/probe").to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(test::read_body(res).await.len(), 50);
        assert!(!probe.saw_head.load(Ordering::Relaxed));
        assert_eq!(probe.polls.load(Ordering::Relaxed), 10);
    }
}
