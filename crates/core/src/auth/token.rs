//! Access tokens: HS256 JWTs signed with `auth.jwt_secret`, carrying the key id and role and
//! expiring after `auth.token_ttl_secs`. The algorithm is pinned, so a token that names
//! another (`none` included) is refused; so is one from another issuer.

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{AuthError, Role};

/// Shortest secret accepted: HS256 is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 32;
/// Least entropy a secret's characters must show, in bits, by their frequencies: what
/// `openssl rand -hex 32` gives has about 240, a 32-character phrase about 120.
pub const MIN_SECRET_BITS: f64 = 128.0;
/// Words that mark a value copied from an example rather than generated.
const PLACEHOLDER_WORDS: [&str; 7] = [
    "replace", "change", "example", "secret", "password", "your-", "xxxx",
];

/// Why `secret` is not fit to sign tokens, if it is not: an example's placeholder, or text too
/// regular to be random (estimated from its characters' frequencies, a lower bound for any
/// random string and a generous estimate for phrases).
pub fn weakness(secret: &str) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return Some("like a placeholder");
    }
    let mut counts = std::collections::HashMap::new();
    for c in secret.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = secret.chars().count() as f64;
    let bits: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -(k as f64) * p.log2()
        })
        .sum();
    (bits < MIN_SECRET_BITS).then_some("too regular to be random")
}

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
        if let Some(why) = weakness(secret) {
            anyhow::bail!(
                "auth.jwt_secret looks {why}: use random bytes, e.g. `openssl rand -hex 32`"
            );
        }
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
    fn placeholder_and_regular_secrets_are_refused() {
        for weak in [
            "replace-with-openssl-rand-hex-32",
            "my-jwt-secret-for-production-use-only",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababababab",
            "pulsepulsepulsepulsepulsepulsepulse",
        ] {
            assert!(weakness(weak).is_some(), "{weak}");
            assert!(TokenCodec::new(weak, "pulse", 60).is_err(), "{weak}");
        }
        // What `openssl rand -hex 32` and `-base64 32` print.
        for strong in [
            "9d1f4b7e2a6c80d35e9f1b2c4a6d8e0f13579bdf2468ace0f1e2d3c4b5a69788",
            "q3J8v+T1zKc0Wm5yR9hN2bX7pLa4sE6dF0gH1iJ2kL8=",
        ] {
            assert_eq!(weakness(strong), None, "{strong}");
        }
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

        let other = TokenCodec::new(
            "f7e6d5c4b3a2918070615243342516079f8e7d6c5b4a3928",
            "pulse",
            60,
        )
        .unwrap();
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
