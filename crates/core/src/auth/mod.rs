//! Who may do what. Clients hold API keys (random, shown once, stored as Argon2 hashes) and
//! exchange them for short-lived JWT bearer tokens; each key has one [`Role`]. The route
//! policy ([`policy`]) says which role every request needs, so access is decided in one
//! place for the REST API and the WebSocket alike.

pub mod cli;
pub mod hashing;
pub mod keys;
pub mod policy;
pub mod registry;
pub mod token;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use self::registry::Authenticator;
use crate::models::errors::ErrorCode;
use crate::models::key_scope::KeyScope;
pub use crate::models::role::Role;

/// The authenticated caller of one request, kept in the request's extensions for the
/// handlers, the audit log and the WebSocket session.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The API key's public id; `None` on an open server.
    pub key_id: Option<Arc<str>>,
    /// The key id whose producer the key speaks as (`key:<id>`): its own, or for a key made
    /// by rotation, the first key of its line's.
    pub producer: Option<Arc<str>>,
    pub role: Role,
    /// What the key may send; `None` for a key that may send anything (and on an open
    /// server).
    pub scope: Option<Arc<KeyScope>>,
    /// When the credential stops being valid (a token's `exp`); `None` for API keys used
    /// directly and on an open server.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// Everyone, on a server that runs without authentication.
    pub fn open() -> Principal {
        Principal {
            key_id: None,
            producer: None,
            role: Role::Admin,
            scope: None,
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
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Missing => ErrorCode::Unauthorized,
            AuthError::Malformed(_) => ErrorCode::MalformedCredentials,
            AuthError::InvalidKey => ErrorCode::InvalidApiKey,
            AuthError::Revoked => ErrorCode::RevokedApiKey,
            AuthError::InvalidToken(_) => ErrorCode::InvalidToken,
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}
