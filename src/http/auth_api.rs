//! Authentication and administration endpoints: the token exchange, the server's auth mode,
//! API keys (`/api/v1/admin/keys`) and the audit log (`/api/v1/admin/audit`).

use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::AppState;
use crate::auth::{keys, AuthError, Principal, Role};
use crate::telemetry::names;

/// Longest key name accepted.
const MAX_NAME_BYTES: usize = 128;
/// Most audit records per page.
const MAX_AUDIT_PAGE: i64 = 500;

/// Whether this server asks for credentials, so the dashboard knows to show a sign-in or
/// the open-server warning.
#[get("/api/v1/auth/status")]
pub async fn auth_status(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "mode": if state.auth.is_some() { "token" } else { "open" },
        "token_ttl_secs": state.settings.auth.token_ttl_secs,
    }))
}

/// The token exchange's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub api_key: String,
}

/// Exchanges an API key for an access token (`Authorization: Bearer <token>`).
#[post("/api/v1/auth/token")]
pub async fn token(
    state: web::Data<AppState>,
    input: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let Some(auth) = &state.auth else {
        return Err(ApiError::bad_request(
            "auth_disabled",
            "this server runs without authentication; requests need no token",
        ));
    };
    match auth.exchange(input.api_key.trim()).await {
        Ok(issued) => {
            metrics::counter!(names::AUTH_TOKENS_ISSUED).increment(1);
            tracing::info!(key_id = %issued.key_id, role = %issued.role, "access token issued");
            Ok(HttpResponse::Ok().json(issued))
        }
        Err(e) => {
            metrics::counter!(names::AUTH_REFUSED, "reason" => e.code()).increment(1);
            let status = match e {
                AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            Err(ApiError::new(status, e.code(), e.to_string()))
        }
    }
}

fn principal(req: &HttpRequest) -> Principal {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::open)
}

/// Every API key, without secrets.
#[get("/api/v1/admin/keys")]
pub async fn list_keys(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let items = keys::list(&**client).await.map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// A new key's role and name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub role: String,
    pub name: Option<String>,
}

/// Creates a key. The response holds the key itself, the only time it is shown.
#[post("/api/v1/admin/keys")]
pub async fn create_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    input: web::Json<NewKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let role = Role::parse(&input.role).ok_or_else(|| {
        ApiError::bad_request("invalid_key", "role must be ingest, analyst or admin")
    })?;
    let name = input.name.as_deref().unwrap_or("").trim();
    if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_key",
            format!("name must be at most {MAX_NAME_BYTES} bytes without control characters"),
        ));
    }
    let client = state.pool.get().await?;
    let key = keys::create(&**client, role, name, &principal(&req).actor())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(key_id = %key.info.id, role = %role, "API key created");
    Ok(HttpResponse::Created().json(key))
}

/// Revokes a key: its tokens and direct uses stop working in every process within
/// `auth.key_refresh_secs` (at once in this one).
#[delete("/api/v1/admin/keys/{id}")]
pub async fn revoke_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    if !keys::revoke(&**client, &id, &principal(&req).actor())
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found("no such active key"));
    }
    if let Some(auth) = &state.auth {
        auth.revoked(&id);
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// Filters of the audit listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// The audit log, newest first, with keyset pagination (`next_before`).
#[get("/api/v1/admin/audit")]
pub async fn audit_log(
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_AUDIT_PAGE}"),
        ));
    }
    let client = state.pool.get().await?;
    let items = crate::audit::list(
        &**client,
        &crate::audit::Query {
            action: q.action,
            actor: q.actor,
            outcome: q.outcome,
            since: q.since,
            before: q.before,
            limit,
        },
    )
    .await?;
    let next_before = (items.len() as i64 == limit)
        .then(|| items.last().map(|r| r.id))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_before": next_before })))
}
