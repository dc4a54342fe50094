//! Saved searches: a name for a query and its filters, shared by everyone who may read posts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::{GenericClient, Row};
use utoipa::ToSchema;

use super::table::Table;

/// A saved search as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SavedSearch {
    pub id: i64,
    pub name: String,
    /// The query, in the topics language.
    pub query: String,
    /// The search's filters by parameter name (`platform`, `topic`, `from`...).
    #[schema(value_type = Object)]
    pub filters: serde_json::Value,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, query, filters, created_by, created_at, updated_at";

fn saved(r: &Row) -> SavedSearch {
    SavedSearch {
        id: r.get(0),
        name: r.get(1),
        query: r.get(2),
        filters: r.get(3),
        created_by: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
    }
}

const SAVED_SEARCHES: Table<SavedSearch> = Table {
    name: "saved_searches",
    columns: COLUMNS,
    read: saved,
};

/// Why a saved search was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("a saved search named `{0}` exists")]
    NameTaken(String),
    #[error("a cap on saved searches is reached: {0:?}")]
    TooMany(super::Limit),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// Stores a saved search unless one of `caps` is reached.
pub async fn create(
    client: &mut deadpool_postgres::ClientWrapper,
    name: &str,
    query: &str,
    filters: &serde_json::Value,
    by: Option<&str>,
    caps: super::Caps<'_>,
) -> Result<SavedSearch, SaveError> {
    let row = super::insert_in_turns(
        client,
        "saved_searches/create",
        "SELECT count(*) FILTER (WHERE created_by = $1), count(*) FROM saved_searches",
        caps,
        &format!(
            "INSERT INTO saved_searches (name, query, filters, created_by) \
             VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
        ),
        &[&name, &query, filters, &by],
    )
    .await
    .map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            SaveError::NameTaken(name.to_string())
        } else {
            SaveError::Db(e)
        }
    })?;
    row.map(|row| saved(&row)).map_err(SaveError::TooMany)
}

/// Every saved search, by name.
pub async fn list(client: &impl GenericClient) -> Result<Vec<SavedSearch>, tokio_postgres::Error> {
    SAVED_SEARCHES
        .rows(client, "ORDER BY lower(name), id", &[])
        .await
}

/// One saved search.
pub async fn get(
    client: &impl GenericClient,
    id: i64,
) -> Result<Option<SavedSearch>, tokio_postgres::Error> {
    SAVED_SEARCHES.row(client, "WHERE id = $1", &[&id]).await
}

/// Deletes a saved search; whether it existed.
pub async fn delete(client: &impl GenericClient, id: i64) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute("DELETE FROM saved_searches WHERE id = $1", &[&id])
        .await?
        > 0)
}
