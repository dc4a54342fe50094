//! Access tokens: HS256 JWTs signed with `auth.jwt_secret`, carrying the key id and role and
//! expiring after `auth.token_ttl_secs`. The algorithm is pinned, so a token that names
//! another (`none` included) is refused; so is one from another issuer.

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{AuthError, Role};

/// Shortest secret accepted: HS256 is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims Pulse signs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The API key's id.
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token, for tracing one token through the logs.
    pub jti: String,
}

/// A token handed to a client.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Issued {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_in: u64,
    pub expires_at: DateTime<Utc>,
    pub role: Role,
    pub key_id: String,
}

/// Signs and checks tokens with one secret.
pub struct TokenCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: u64,
}

impl TokenCodec {
    /// A codec for `secret` (at least [`MIN_SECRET_BYTES`]).
    pub fn new(secret: &str, issuer: &str, ttl_secs: u64) -> anyhow::Result<TokenCodec> {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "auth.jwt_secret must be at least {MIN_SECRET_BYTES} bytes (it is {})",
            secret.len()
        );
        anyhow::ensure!(ttl_secs > 0, "auth.token_ttl_secs must be positive");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        Ok(TokenCodec {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            issuer: issuer.to_string(),
            ttl_secs,
        })
    }

    /// A token for key `key_id` with `role`, valid from `now`.
    pub fn issue(&self, key_id: &str, role: Role, now: DateTime<Utc>) -> anyhow::Result<Issued> {
        let exp = now.timestamp() + self.ttl_secs as i64;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: key_id.to_string(),
            role,
            iat: now.timestamp(),
            exp,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let access_token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(Issued {
            access_token,
            token_type: "Bearer",
            expires_in: self.ttl_secs,
            expires_at: Utc.timestamp_opt(exp, 0).single().unwrap_or(now),
            role,
            key_id: key_id.to_string(),
        })
    }

    /// The claims of a genuine, unexpired token of this issuer.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::InvalidToken("bad signature".into()),
                ErrorKind::InvalidAlgorithm => {
                    AuthError::InvalidToken("algorithm must be HS256".into())
                }
                ErrorKind::InvalidIssuer => AuthError::InvalidToken("wrong issuer".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    AuthError::InvalidToken(format!("missing claim `{c}`"))
                }
                _ => AuthError::InvalidToken("not a valid token".into()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn codec() -> TokenCodec {
        TokenCodec::new(SECRET, "pulse", 60).unwrap()
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenCodec::new("short", "pulse", 60).is_err());
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let issued = codec().issue("abc", Role::Analyst, Utc::now()).unwrap();
        let claims = codec().verify(&issued.access_token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("abc", Role::Analyst));
        assert_eq!(issued.expires_in, 60);
    }

    #[test]
    fn expired_forged_and_foreign_tokens_are_refused() {
        let old = Utc::now() - chrono::Duration::seconds(120);
        let expired = codec().issue("abc", Role::Admin, old).unwrap();
        assert_eq!(
            codec().verify(&expired.access_token).unwrap_err(),
            AuthError::Expired
        );

        let other = TokenCodec::new(&"x".repeat(32), "pulse", 60).unwrap();
        let forged = other.issue("abc", Role::Admin, Utc::now()).unwrap();
        assert!(matches!(
            codec().verify(&forged.access_token),
            Err(AuthError::InvalidToken(_))
        ));

        let foreign = TokenCodec::new(SECRET, "elsewhere", 60).unwrap();
        let token = foreign.issue("abc", Role::Admin, Utc::now()).unwrap();
        assert!(codec().verify(&token.access_token).is_err());

        // A token that claims no algorithm at all.
        let genuine = codec().issue("abc", Role::Ingest, Utc::now()).unwrap();
        let payload = genuine.access_token.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(codec().verify(&none).is_err());

        // The genuine token with its role raised: the signature no longer matches.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = String::from_utf8(b64.decode(payload).unwrap()).unwrap();
        let raised = b64.encode(claims.replace("\"ingest\"", "\"admin\""));
        assert_ne!(raised, payload);
        let parts: Vec<&str> = genuine.access_token.split('.').collect();
        let tampered = format!("{}.{raised}.{}", parts[0], parts[2]);
        assert_eq!(
            codec().verify(&tampered).unwrap_err(),
            AuthError::InvalidToken("bad signature".into())
        );
        assert!(codec().verify("not.a.token").is_err());
        assert!(codec().verify("").is_err());
    }
}
