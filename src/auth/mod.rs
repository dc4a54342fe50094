//! Who may do what. Clients hold API keys (random, shown once, stored as Argon2 hashes) and
//! exchange them for short-lived JWT bearer tokens; each key has one [`Role`]. The route
//! policy ([`policy`]) says which role every request needs, so access is decided in one
//! place for the REST API and the WebSocket alike.

pub mod cli;
pub mod keys;
pub mod policy;
pub mod registry;
pub mod token;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use self::registry::Authenticator;

/// What a key may do. `admin` may do everything; `analyst` reads (REST, WebSocket) and
/// works alerts; `ingest` only appends events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ingest,
    Analyst,
    Admin,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 3] = [Role::Ingest, Role::Analyst, Role::Admin];

    /// The name used in keys, tokens and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self == needed || self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
            .ok_or_else(|| format!("unknown role `{s}`; expected ingest, analyst or admin"))
    }
}

/// The authenticated caller of one request, kept in the request's extensions for the
/// handlers, the audit log and the WebSocket session.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The API key's public id; `None` on an open server.
    pub key_id: Option<Arc<str>>,
    pub role: Role,
    /// When the credential stops being valid (a token's `exp`); `None` for API keys used
    /// directly and on an open server.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// Everyone, on a server that runs without authentication.
    pub fn open() -> Principal {
        Principal {
            key_id: None,
            role: Role::Admin,
            expires_at: None,
        }
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match &self.key_id {
            Some(id) => format!("key:{id}"),
            None => "anonymous (open server)".into(),
        }
    }
}

/// Why credentials were refused. The messages are safe to return: they never echo a key
/// or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send `Authorization: Bearer <token>` (from POST /api/v1/auth/token) or `X-API-Key: <key>`")]
    Missing,
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    #[error("invalid API key")]
    InvalidKey,
    #[error("the API key was revoked")]
    Revoked,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("the token expired; exchange the API key for a new one")]
    Expired,
    #[error("credentials cannot be checked now: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The stable code of the API's error shape.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "unauthorized",
            AuthError::Malformed(_) => "malformed_credentials",
            AuthError::InvalidKey => "invalid_api_key",
            AuthError::Revoked => "revoked_api_key",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::Expired => "token_expired",
            AuthError::Unavailable(_) => "unavailable",
        }
    }
}
