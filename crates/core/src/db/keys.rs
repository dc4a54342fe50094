//! The `api_keys` table: ids, names, roles, Argon2 hashes and their revocation.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::GenericClient;

use super::table::Table;
use crate::models::key_scope::KeyScope;
use crate::models::role::Role;

/// A key as listed: everything but its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the key was last exchanged for a token (`POST /api/v1/auth/token`); a key sent
    /// directly in `X-API-Key` is checked from memory and not recorded here.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key whose producer this one speaks as (it was made by rotating that line of
    /// keys); null for a key that speaks as itself.
    pub speaks_as: Option<String>,
    /// What the key may send; null for a key that may send anything.
    pub scope: Option<KeyScope>,
}

const COLUMNS: &str =
    "id, name, role, created_at, created_by, revoked_at, last_used_at, speaks_as, scope";

/// A stored scope: `None` for null; one this version cannot read (written by a newer one)
/// admits nothing, rather than everything. A list longer than this version allows is read
/// only in part, so it makes the scope one that cannot be read.
fn scope(value: Option<serde_json::Value>) -> Option<KeyScope> {
    value.map(|v| {
        serde_json::from_value::<KeyScope>(v)
            .ok()
            .filter(|s| s.overlong_list().is_none())
            .unwrap_or_else(KeyScope::unreadable)
    })
}

fn info(row: &tokio_postgres::Row) -> KeyInfo {
    KeyInfo {
        id: row.get(0),
        name: row.get(1),
        role: Role::parse(row.get(2)).unwrap_or(Role::Ingest),
        created_at: row.get(3),
        created_by: row.get(4),
        revoked_at: row.get(5),
        last_used_at: row.get(6),
        speaks_as: row.get(7),
        scope: scope(row.get(8)),
    }
}

const KEYS: Table<KeyInfo> = Table {
    name: "api_keys",
    columns: COLUMNS,
    read: info,
};

/// What a key is stored with besides its id and hash.
#[derive(Debug, Clone, Copy)]
pub struct NewKeyRow<'a> {
    pub name: &'a str,
    pub role: Role,
    /// Who made it (the audit log's actor).
    pub actor: &'a str,
    /// The key whose producer it speaks as, if not itself.
    pub speaks_as: Option<&'a str>,
    pub scope: Option<&'a KeyScope>,
}

/// Stores key `id` with the hash of its secret.
pub async fn insert(
    client: &impl GenericClient,
    id: &str,
    hash: &str,
    key: NewKeyRow<'_>,
) -> anyhow::Result<KeyInfo> {
    let scope = stored_scope(key.scope)?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO api_keys (id, name, role, hash, created_by, speaks_as, scope) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &key.name,
                &key.role.as_str(),
                &hash,
                &key.actor,
                &key.speaks_as,
                &scope,
            ],
        )
        .await?;
    Ok(info(&row))
}

/// A scope as stored: null when it limits nothing. One this version could not read is not
/// stored again: written back, it would lose what it limits.
fn stored_scope(scope: Option<&KeyScope>) -> anyhow::Result<Option<serde_json::Value>> {
    match scope.filter(|s| !s.is_unlimited()) {
        Some(s) if s.is_unreadable() => anyhow::bail!(
            "the key's scope was written by a newer version of Pulse; change it with that version"
        ),
        Some(s) => Ok(Some(serde_json::to_value(s)?)),
        None => Ok(None),
    }
}

/// Sets the scope of key `id`; `None` when there is no such key, or it is revoked.
pub async fn set_scope(
    client: &impl GenericClient,
    id: &str,
    scope: &KeyScope,
) -> anyhow::Result<Option<KeyInfo>> {
    let scope = stored_scope(Some(scope))?;
    Ok(super::read_opt(
        client,
        &format!(
            "UPDATE api_keys SET scope = $2 WHERE id = $1 AND revoked_at IS NULL \
             RETURNING {COLUMNS}"
        ),
        &[&id, &scope],
        info,
    )
    .await?)
}

/// Key `id` as listed, if it exists.
pub async fn get(client: &impl GenericClient, id: &str) -> anyhow::Result<Option<KeyInfo>> {
    Ok(KEYS.row(client, "WHERE id = $1", &[&id]).await?)
}

/// Revokes key `id`; `false` when there is no such key or it was already revoked.
pub async fn revoke(client: &impl GenericClient, id: &str, actor: &str) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "UPDATE api_keys SET revoked_at = now(), revoked_by = $2 \
             WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &actor],
        )
        .await?;
    Ok(n == 1)
}

/// Ids of the keys still in force that `creator` made: for the keys made by whoever reached a
/// server while it ran without authentication.
pub async fn active_made_by(
    client: &impl GenericClient,
    creator: &str,
) -> anyhow::Result<Vec<String>> {
    Ok(super::read_rows(
        client,
        "SELECT id FROM api_keys WHERE created_by = $1 AND revoked_at IS NULL ORDER BY id",
        &[&creator],
        |r| r.get(0),
    )
    .await?)
}

/// Every key, newest first.
pub async fn list(client: &impl GenericClient) -> anyhow::Result<Vec<KeyInfo>> {
    Ok(KEYS
        .rows(client, "ORDER BY created_at DESC, id", &[])
        .await?)
}

/// What authentication keeps of a key: its role, whether it is revoked, whom it speaks as and
/// what it may send.
#[derive(Debug, Clone)]
pub struct Standing {
    pub role: Role,
    pub revoked: bool,
    pub speaks_as: Option<String>,
    pub scope: Option<KeyScope>,
}

/// The columns [`standing`] reads.
const STANDING_COLUMNS: &str = "role, revoked_at IS NOT NULL, speaks_as, scope";

/// The standing read from [`STANDING_COLUMNS`] at `at` of `row`; a role this version does not
/// know is `unknown_role`, or no standing when that is `None`.
fn standing(row: &tokio_postgres::Row, at: usize, unknown_role: Option<Role>) -> Option<Standing> {
    Some(Standing {
        role: Role::parse(row.get(at)).or(unknown_role)?,
        revoked: row.get(at + 1),
        speaks_as: row.get(at + 2),
        scope: scope(row.get(at + 3)),
    })
}

/// What verification needs of one key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub hash: String,
    pub standing: Standing,
}

/// The stored hash and standing of key `id`.
pub async fn find(client: &impl GenericClient, id: &str) -> anyhow::Result<Option<StoredKey>> {
    let sql = format!("SELECT hash, {STANDING_COLUMNS} FROM api_keys WHERE id = $1");
    Ok(client.query_opt(&sql, &[&id]).await?.and_then(|row| {
        Some(StoredKey {
            hash: row.get(0),
            standing: standing(&row, 1, Some(Role::Ingest))?,
        })
    }))
}

/// Notes that key `id` was just exchanged for a token.
pub async fn touch(client: &impl GenericClient, id: &str) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE api_keys SET last_used_at = now() WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(())
}

/// One key's standing, by id.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub id: String,
    pub standing: Standing,
}

/// Every key's standing; keys with a role this version does not know are left out.
pub async fn states(client: &impl GenericClient) -> anyhow::Result<Vec<KeyStatus>> {
    let sql = format!("SELECT id, {STANDING_COLUMNS} FROM api_keys");
    Ok(client
        .query(&sql, &[])
        .await?
        .iter()
        .filter_map(|r| {
            Some(KeyStatus {
                id: r.get(0),
                standing: standing(r, 1, None)?,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::key_scope::MAX_SCOPE_VALUES;

    #[test]
    fn a_stored_scope_with_a_list_longer_than_allowed_admits_nothing() {
        let prefixes = |n: usize| (0..n).map(|i| format!("p{i}:")).collect::<Vec<_>>();
        let fits = scope(Some(
            serde_json::json!({"id_prefixes": prefixes(MAX_SCOPE_VALUES)}),
        ));
        assert_eq!(fits.unwrap().id_prefixes.len(), MAX_SCOPE_VALUES);
        let longer = scope(Some(serde_json::json!({"id_prefixes": prefixes(1_000)})));
        assert!(longer.unwrap().is_unreadable());
    }
}
