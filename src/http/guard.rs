//! The gate every request passes before its handler: rate limits, authentication, the
//! route policy ([`crate::auth::policy`]), the WebSocket's Origin check, body limits, and the
//! audit record of admin changes. Each refusal is a 4xx in the API's error shape (401
//! without valid credentials, 403 for a role that may not, 413/400 for oversize or too
//! deep bodies, 429 with `Retry-After`).

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use serde_json::{json, Value};

use super::error::ApiError;
use super::rate_limit::retry_after_secs;
use super::request_id::REQUEST_ID;
use super::AppState;
use crate::audit::{self, Outcome};
use crate::auth::policy::{self, Access};
use crate::auth::{AuthError, Principal, Role};
use crate::telemetry::names;

/// Longest query string accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Query parameter carrying a token where headers cannot (browser WebSockets).
pub const TOKEN_QUERY: &str = "access_token";

/// Credentials as presented.
enum Credentials<'a> {
    Token(&'a str),
    Key(&'a str),
}

fn credentials(req: &ServiceRequest) -> Result<Option<Credentials<'_>>, AuthError> {
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
    if req.path() == "/ws" {
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

fn client_ip(req: &ServiceRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn refuse(req: ServiceRequest, error: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(error.error_response())
}

fn rate_limited(scope: &'static str, wait: Duration) -> ApiError {
    metrics::counter!(names::RATE_LIMITED, "scope" => scope).increment(1);
    let secs = retry_after_secs(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {secs} s"),
    )
    .with_details(json!({"retry_after_secs": secs, "scope": scope}))
}

fn with_retry_after(
    mut res: ServiceResponse<BoxBody>,
    error_details: &Value,
) -> ServiceResponse<BoxBody> {
    if let Some(secs) = error_details
        .get("retry_after_secs")
        .and_then(Value::as_u64)
    {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

fn auth_refusal(error: &AuthError) -> ApiError {
    let reason = error.code();
    metrics::counter!(names::AUTH_REFUSED, "reason" => reason).increment(1);
    let status = match error {
        AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    };
    ApiError::new(status, reason, error.to_string())
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
    let access = policy::required(&method, &path);
    let ip = client_ip(&req);
    let limits = &state.limiter;
    let unmetered = matches!(path.as_str(), "/health" | "/ready" | "/metrics")
        || !(path.starts_with("/api") || path == "/ws");

    if req.query_string().len() > MAX_QUERY_BYTES {
        metrics::counter!(names::INPUT_REFUSED, "reason" => "query_too_long").increment(1);
        return Ok(refuse(
            req,
            ApiError::new(
                StatusCode::URI_TOO_LONG,
                "query_too_long",
                format!("the query string is longer than {MAX_QUERY_BYTES} bytes"),
            ),
        ));
    }

    // Who is calling, and may they?
    let principal = match access {
        Access::Public => None,
        Access::Role(needed) => {
            let principal = match &state.auth {
                None => Principal::open(),
                Some(auth) => {
                    let presented = credentials(&req);
                    let result = match presented {
                        Ok(Some(Credentials::Token(t))) => auth.authenticate_token(t).await,
                        Ok(Some(Credentials::Key(k))) => auth.authenticate_key(k).await,
                        Ok(None) => Err(AuthError::Missing),
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(p) => p,
                        Err(e) => {
                            // Failed credentials spend the address's budget: guessing is slow.
                            if limits.enabled() {
                                if let Err(wait) = limits.per_ip.take(&ip) {
                                    let err = rate_limited("ip", wait);
                                    let details = err.details.clone();
                                    return Ok(with_retry_after(refuse(req, err), &details));
                                }
                            }
                            let mut res = refuse(req, auth_refusal(&e));
                            res.headers_mut().insert(
                                header::WWW_AUTHENTICATE,
                                HeaderValue::from_static("Bearer realm=\"pulse\""),
                            );
                            return Ok(res);
                        }
                    }
                }
            };
            if !principal.role.allows(needed) {
                metrics::counter!(names::AUTH_REFUSED, "reason" => "forbidden").increment(1);
                if policy::audited(&method, &path) {
                    let entry = audit_entry(&req, &principal, &path, Value::Null, &ip);
                    if let Ok(client) = state.pool.get().await {
                        let _ = audit::record(&**client, &entry, Outcome::Denied, Some(403)).await;
                    }
                }
                return Ok(refuse(
                    req,
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        format!(
                            "role `{}` may not {method} {path}; it needs `{needed}`{}",
                            principal.role,
                            if needed == Role::Admin {
                                ""
                            } else {
                                " or `admin`"
                            }
                        ),
                    ),
                ));
            }
            Some(principal)
        }
    };

    // Rate limits: per key for callers with one, per address otherwise.
    if limits.enabled() && !unmetered {
        let taken = match &principal {
            Some(Principal {
                key_id: Some(id), ..
            }) => limits.per_key.take(id).map_err(|w| ("key", w)),
            Some(_) => limits.per_key.take(&ip).map_err(|w| ("key", w)),
            None => limits.per_ip.take(&ip).map_err(|w| ("ip", w)),
        };
        if let Err((scope, wait)) = taken {
            let err = rate_limited(scope, wait);
            let details = err.details.clone();
            return Ok(with_retry_after(refuse(req, err), &details));
        }
    }

    // Browsers send their page's Origin on WebSocket handshakes; only the dashboard's own
    // origin and the configured ones may open one.
    if path == "/ws" {
        if let Some(origin) = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok());
            if !super::security_headers::same_origin(origin, host)
                && !super::security_headers::origin_allowed(
                    &state.settings.http.cors_origins,
                    origin,
                )
            {
                metrics::counter!(names::WS_REJECTED, "reason" => "origin").increment(1);
                return Ok(refuse(
                    req,
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "origin_not_allowed",
                        "WebSocket connections from this origin are not allowed (http.cors_origins)",
                    ),
                ));
            }
        }
    }

    // Bodies: size and depth, before any handler reads them.
    let mut body = None;
    if matches!(method, Method::POST | Method::PUT | Method::PATCH) && path.starts_with("/api") {
        let limit = if path == "/api/v1/events" {
            state.settings.limits.max_events_body_bytes
        } else {
            state.settings.limits.max_body_bytes
        };
        match super::body_limits::check(&mut req, limit, state.settings.limits.max_json_depth).await
        {
            Ok(bytes) => body = Some(bytes),
            Err(e) => return Ok(refuse(req, e)),
        }
    }

    let Some(principal) = principal else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    req.extensions_mut().insert(principal.clone());
    if !policy::audited(&method, &path) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }

    // Admin changes: recorded before they run; no record, no change.
    let payload = body
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(|b| serde_json::from_slice(b).unwrap_or_else(|_| json!({"note": "body is not JSON"})))
        .unwrap_or(Value::Null);
    let entry = audit_entry(&req, &principal, &path, payload, &ip);
    let audit_id = match state.pool.get().await {
        Ok(client) => audit::record(&**client, &entry, Outcome::Attempted, None)
            .await
            .ok(),
        Err(_) => None,
    };
    let Some(audit_id) = audit_id else {
        return Ok(refuse(
            req,
            ApiError::unavailable(
                "the audit log cannot be written; admin changes are refused until it can",
            ),
        ));
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
    match state.pool.get().await {
        Ok(client) => {
            if let Err(e) = audit::finish(
                &**client,
                audit_id,
                outcome,
                status.as_u16() as i16,
                target.as_deref(),
            )
            .await
            {
                tracing::error!(error = %e, audit_id, "could not complete an audit record");
            }
        }
        Err(e) => tracing::error!(error = %e, audit_id, "could not complete an audit record"),
    }
    Ok(res)
}

fn audit_entry(
    req: &ServiceRequest,
    principal: &Principal,
    path: &str,
    payload: Value,
    ip: &str,
) -> audit::Entry {
    audit::Entry {
        actor: principal.actor(),
        actor_role: Some(principal.role.to_string()),
        action: audit::action_for(req.method().as_str(), path),
        target: Some(path.to_string()),
        payload,
        request_id: req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ip: Some(ip.to_string()),
    }
}

/// For a `201 Created`, the `id` of what was created (read from the small JSON response,
/// which is passed on unchanged).
async fn created_id(
    res: ServiceResponse<impl MessageBody + 'static>,
    status: StatusCode,
) -> (ServiceResponse<BoxBody>, Option<String>) {
    if status != StatusCode::CREATED {
        return (res.map_into_boxed_body(), None);
    }
    let (req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes_limited(body, 64 * 1024)
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
