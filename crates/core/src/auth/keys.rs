//! API keys: `pulse_<id>_<secret>`. The id is public and indexes the row; the secret is 32
//! random bytes, shown once and stored only as an Argon2id hash, so a leaked database does
//! not leak usable keys.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::Serialize;
use tokio_postgres::GenericClient;

use super::Role;
use crate::db;
use crate::db::keys::NewKeyRow;
pub use crate::db::keys::{find, list, revoke, set_scope, touch, KeyInfo, Standing, StoredKey};
use crate::models::key_scope::KeyScope;

pub use crate::models::key_text::{parse, ParsedKey, KEY_PREFIX};
use crate::models::key_text::{ID_HEX, SECRET_HEX};

/// A freshly created key: the one time its full text exists outside the caller's hands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The key itself; not stored, not shown again.
    pub key: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    crate::models::hex::hex(&buf)
}

/// The Argon2id (default parameters) PHC string of `secret`.
pub fn hash_secret(secret: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a key: {e}"))
}

/// Longest key name accepted.
pub const MAX_NAME_BYTES: usize = 128;

/// `name` as a key's name, without its outer whitespace, or why it cannot be one: names are
/// shown in listings and the audit log, where a control, zero-width or direction-changing
/// character could pass one key for another.
pub fn checked_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.len() > MAX_NAME_BYTES || crate::models::printable::has_unshowable(name) {
        return Err(format!(
            "name must be at most {MAX_NAME_BYTES} bytes without control, zero-width or \
             direction-changing characters"
        ));
    }
    Ok(name)
}

/// Creates a key with `role`, limited to `scope` when one is given, recorded as made by
/// `actor`.
pub async fn create(
    client: &impl GenericClient,
    role: Role,
    name: &str,
    scope: Option<&KeyScope>,
    actor: &str,
) -> anyhow::Result<NewKey> {
    let fresh = Fresh::make().await?;
    let row = NewKeyRow {
        name,
        role,
        actor,
        speaks_as: None,
        scope,
    };
    let info = db::keys::insert(client, &fresh.id, &fresh.hash, row).await?;
    Ok(fresh.with(info))
}

/// A new key's id, secret and the secret's hash, before the key is stored.
struct Fresh {
    id: String,
    secret: String,
    hash: String,
}

impl Fresh {
    async fn make() -> anyhow::Result<Fresh> {
        let id = random_hex(ID_HEX / 2);
        let secret = random_hex(SECRET_HEX / 2);
        let hash = {
            let secret = secret.clone();
            tokio::task::spawn_blocking(move || hash_secret(&secret)).await??
        };
        Ok(Fresh { id, secret, hash })
    }

    /// The key as shown once, stored as `info`.
    fn with(self, info: KeyInfo) -> NewKey {
        NewKey {
            info,
            key: format!("{KEY_PREFIX}{}_{}", self.id, self.secret),
        }
    }
}

/// A new key in place of key `old` (`None` when there is no such key, or it is revoked): the
/// same name, role and scope, speaking as the producer `old` spoke as, so the posts stored
/// under any key of the line stay its own. `old` stays valid until it is revoked, so producers
/// can switch over. A revoked key has no successor: rotating it would bring back, under a new
/// secret, the identity and the private things of a credential taken away.
pub async fn rotate(
    client: &impl GenericClient,
    old: &str,
    actor: &str,
) -> anyhow::Result<Option<NewKey>> {
    let Some(previous) = db::keys::get(client, old)
        .await?
        .filter(|k| k.revoked_at.is_none())
    else {
        return Ok(None);
    };
    let fresh = Fresh::make().await?;
    let speaks_as = previous.speaks_as.as_deref().unwrap_or(&previous.id);
    let row = NewKeyRow {
        name: &previous.name,
        role: previous.role,
        actor,
        speaks_as: Some(speaks_as),
        scope: previous.scope.as_ref(),
    };
    let info = db::keys::insert(client, &fresh.id, &fresh.hash, row).await?;
    Ok(Some(fresh.with(info)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_only_in_their_own_shape() {
        let id = "0123456789ab";
        let secret = "f".repeat(64);
        let key = format!("pulse_{id}_{secret}");
        assert_eq!(
            parse(&key),
            Some(ParsedKey {
                id,
                secret: &secret
            })
        );
        assert_eq!(parse(&key[1..]), None);
        assert_eq!(parse(&format!("pulse_{id}_{}", &secret[1..])), None);
        assert_eq!(parse(&format!("pulse_0123456789ag_{secret}")), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("pulse__"), None);
    }

    #[test]
    fn hashes_verify_only_their_secret() {
        let hash = hash_secret("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let verify = |secret: &str, hash: &str| {
            super::super::hashing::verify_with(secret, hash, &mut Vec::new())
        };
        assert!(verify("correct horse", &hash));
        assert!(!verify("correct hors", &hash));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(hash, hash_secret("correct horse").unwrap(), "salted");
    }
}
