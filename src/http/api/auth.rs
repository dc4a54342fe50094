//! Authentication and administration endpoints: the token exchange, the server's auth mode,
//! API keys (`/api/v1/admin/keys`) and the audit log (`/api/v1/admin/audit`).

use crate::models::errors::ErrorCode;
use actix_web::{delete, get, post, put, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{keys, Role};
use crate::http::answer::Answer;
use crate::http::documented::error_responses;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::key_scope::KeyScope;
use crate::telemetry::names;

error_responses! {
    NoKey: 404 = "No active key with this id (`not_found`)",
    BadKeyId: 400 = "Bad id (`invalid_path`)",
    BodyTooLarge: 413 = "Body larger than the limit (`payload_too_large`)",
    AddressLimited: 429 = "Too many requests from this address (`rate_limited`)",
    AuditUnavailable: 503 = "PostgreSQL or the audit log is unavailable",
}

/// Most audit records per page.
const MAX_AUDIT_PAGE: i64 = 500;

/// How this server authenticates.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Everyone is an admin: no credentials are asked for.
    Open,
    /// API keys and bearer tokens are required.
    Token,
}

/// `GET /api/v1/auth/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthStatus {
    pub mode: AuthMode,
    /// Lifetime of the tokens `POST /api/v1/auth/token` issues.
    pub token_ttl_secs: u64,
}

/// Whether this server asks for credentials, so the dashboard knows to show a sign-in or
/// the open-server warning.
#[utoipa::path(
    tag = "auth", summary = "Whether the server requires credentials",
    responses(
        (status = 200, description = "The authentication mode", body = AuthStatus),
        AddressLimited,
    )
)]
#[get("/api/v1/auth/status")]
pub async fn auth_status(state: State) -> HttpResponse {
    HttpResponse::Ok().json(AuthStatus {
        mode: if state.auth.is_some() {
            AuthMode::Token
        } else {
            AuthMode::Open
        },
        token_ttl_secs: state.settings.auth.token_ttl_secs,
    })
}

/// The token exchange's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub api_key: String,
}

/// Exchanges an API key for an access token (`Authorization: Bearer <token>`).
#[utoipa::path(
    tag = "auth", summary = "Exchange an API key for an access token",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A bearer token for the key's role", body = crate::auth::token::Issued),
        (status = 400, description = "Not a token request (`invalid_json`), or the server runs open (`auth_disabled`)", body = ErrorBody),
        (status = 401, description = "The key is unknown, wrong (`invalid_api_key`) or revoked (`revoked_api_key`)", body = ErrorBody),
        (status = 503, description = "Keys cannot be checked now", body = ErrorBody),
        BodyTooLarge, AddressLimited,
    )
)]
#[post("/api/v1/auth/token")]
pub async fn token(state: State, req: HttpRequest, input: web::Json<TokenRequest>) -> Answer {
    let Some(auth) = &state.auth else {
        return Err(ApiError::bad_request(
            ErrorCode::AuthDisabled,
            "this server runs without authentication; requests need no token",
        ));
    };
    // Set by the guard, which every request passes; without it the key shares one place.
    let network = req
        .extensions()
        .get::<crate::http::middleware::peer::ClientNetwork>()
        .map_or_else(|| "unknown".to_string(), |n| n.0.clone());
    match auth.exchange(input.api_key.trim(), &network).await {
        Ok(issued) => {
            metrics::counter!(names::AUTH_TOKENS_ISSUED).increment(1);
            tracing::info!(key_id = %issued.key_id, role = %issued.role, "access token issued");
            Ok(secret(HttpResponse::Ok()).json(issued))
        }
        Err(e) => {
            metrics::counter!(names::AUTH_REFUSED, "reason" => e.code().as_str()).increment(1);
            Err(ApiError::new(e.code(), e.to_string()))
        }
    }
}

/// `GET /api/v1/admin/keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<keys::KeyInfo>,
}

/// Every API key, without secrets.
#[utoipa::path(
    tag = "admin", summary = "List API keys",
    responses(
        (status = 200, description = "Every key, newest first, without secrets", body = KeyList),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/admin/keys")]
pub async fn list_keys(state: State) -> Answer {
    let client = state.db().await?;
    let items = keys::list(&**client).await.map_err(ApiError::from_store)?;
    Ok(HttpResponse::Ok().json(KeyList { items }))
}

/// A new key's role and name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    #[schema(value_type = Role)]
    pub role: String,
    /// A label for people, at most 128 bytes.
    pub name: Option<String>,
    /// What the key may send; absent, anything.
    pub scope: Option<KeyScope>,
}

/// Creates a key. The response holds the key itself, the only time it is shown.
#[utoipa::path(
    tag = "admin", summary = "Create an API key", request_body = NewKeyRequest,
    responses(
        (status = 201, description = "The key, shown this once", body = keys::NewKey),
        (status = 400, description = "Unknown role, bad name or scope (`invalid_key`), or not JSON (`invalid_json`)", body = ErrorBody),
        BodyTooLarge, AuditUnavailable,
    )
)]
#[post("/api/v1/admin/keys")]
pub async fn create_key(state: State, input: web::Json<NewKeyRequest>) -> Answer {
    let role = Role::parse(&input.role).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidKey,
            "role must be ingest, analyst or admin",
        )
    })?;
    let name = keys::checked_name(input.name.as_deref().unwrap_or(""))
        .map_err(|problem| ApiError::bad_request(ErrorCode::InvalidKey, problem))?;
    let scope = input.scope.as_ref().map(valid_scope).transpose()?;
    let client = state.db().await?;
    let key = keys::create(&**client, role, name, scope, &state.actor())
        .await
        .map_err(ApiError::from_store)?;
    tracing::info!(key_id = %key.info.id, role = %role, "API key created");
    Ok(secret(HttpResponse::Created()).json(key))
}

/// Revokes a key: its tokens and direct uses stop working in every process within
/// `auth.key_refresh_secs` (at once in this one).
#[utoipa::path(
    tag = "admin", summary = "Revoke an API key",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        BadKeyId, NoKey, AuditUnavailable,
    )
)]
#[delete("/api/v1/admin/keys/{id}")]
pub async fn revoke_key(state: State, id: web::Path<String>) -> Answer {
    let client = state.db().await?;
    if !keys::revoke(&**client, &id, &state.actor())
        .await
        .map_err(ApiError::from_store)?
    {
        return Err(no_key());
    }
    if let Some(auth) = &state.auth {
        auth.revoked(&id);
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// Makes a new key in place of one: the same name, role and scope, speaking as the same
/// producer, so the posts stored under the old key stay the new one's to delete and engage
/// with. The old key stays valid until it is revoked (`DELETE /api/v1/admin/keys/{id}`), so
/// producers can switch over first.
#[utoipa::path(
    tag = "admin", summary = "Rotate an API key",
    params(("id" = String, Path, description = "The id of the key to replace")),
    responses(
        (status = 201, description = "The new key, shown this once", body = keys::NewKey),
        BadKeyId, NoKey, AuditUnavailable,
    )
)]
#[post("/api/v1/admin/keys/{id}/rotate")]
pub async fn rotate_key(state: State, id: web::Path<String>) -> Answer {
    let client = state.db().await?;
    let key = keys::rotate(&**client, &id, &state.actor())
        .await
        .map_err(ApiError::from_store)?
        .ok_or_else(no_key)?;
    tracing::info!(key_id = %key.info.id, replaces = %id, "API key rotated");
    Ok(secret(HttpResponse::Created()).json(key))
}

/// Replaces what a key may send; every process applies it within `auth.key_refresh_secs`
/// (at once in this one). An empty scope lets the key send anything.
#[utoipa::path(
    tag = "admin", summary = "Set an API key's scope",
    params(("id" = String, Path, description = "The key's id")), request_body = KeyScope,
    responses(
        (status = 200, description = "The key with its new scope", body = keys::KeyInfo),
        (status = 400, description = "Bad id (`invalid_path`), bad scope (`invalid_key`) or not JSON (`invalid_json`)", body = ErrorBody),
        NoKey, BodyTooLarge, AuditUnavailable,
    )
)]
#[put("/api/v1/admin/keys/{id}/scope")]
pub async fn set_key_scope(
    state: State,
    id: web::Path<String>,
    input: web::Json<KeyScope>,
) -> Answer {
    let scope = valid_scope(&input)?;
    let client = state.db().await?;
    let key = keys::set_scope(&**client, &id, scope)
        .await
        .map_err(ApiError::from_store)?
        .ok_or_else(no_key)?;
    if let Some(auth) = &state.auth {
        auth.rescoped(&id, key.scope.clone());
    }
    tracing::info!(key_id = %id, "API key scope set");
    Ok(HttpResponse::Ok().json(key))
}

fn no_key() -> ApiError {
    ApiError::not_found("no such active key")
}

fn valid_scope(scope: &KeyScope) -> Result<&KeyScope, ApiError> {
    scope
        .validate()
        .map_err(|reason| ApiError::bad_request(ErrorCode::InvalidKey, reason))?;
    Ok(scope)
}

/// Filters of the audit listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// e.g. `rule.create`, `webhook.delete`, `key.revoke`.
    pub action: Option<String>,
    /// e.g. `key:<id>` or `cli:<user>`.
    pub actor: Option<String>,
    /// `attempted`, `succeeded`, `failed` or `denied`.
    pub outcome: Option<String>,
    /// Only records at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub since: Option<DateTime<Utc>>,
    /// Only records with an id below this (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// `GET /api/v1/admin/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<crate::db::audit::Record>,
    /// Pass as `before` for the next page; null on the last.
    pub next_before: Option<i64>,
}

/// The audit log, newest first, with keyset pagination (`next_before`).
#[utoipa::path(
    tag = "admin", summary = "The audit log of admin changes", params(AuditQuery),
    responses(
        (status = 200, description = "Records, newest first", body = AuditPage),
        (status = 400, description = "A bad filter (`invalid_query`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/admin/audit")]
pub async fn audit_log(state: State, query: web::Query<AuditQuery>) -> Answer {
    let q = query.into_inner();
    let limit = crate::http::filters::page_limit(q.limit, 100, MAX_AUDIT_PAGE)?;
    let client = state.db().await?;
    let items = crate::db::audit::list(
        &**client,
        &crate::db::audit::Query {
            action: q.action,
            actor: q.actor,
            outcome: q.outcome,
            since: q.since,
            before: q.before,
            limit,
        },
    )
    .await?;
    let next_before = crate::http::cursor::after_full_page(&items, limit, |r| r.id);
    Ok(HttpResponse::Ok().json(AuditPage { items, next_before }))
}

/// A response that carries a credential is never compressed: compressed next to text an
/// attacker can make the server reflect, its length would leak the secret (BREACH).
fn secret(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response.insert_header((actix_web::http::header::CONTENT_ENCODING, "identity"));
    response
}
