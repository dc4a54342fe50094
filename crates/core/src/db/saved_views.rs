//! Saved views: a dashboard's state under a name, kept by the caller that saved it and listed
//! to everyone who may read posts once shared.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::{GenericClient, Row};
use utoipa::ToSchema;

/// A saved view as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SavedView {
    pub id: i64,
    pub name: String,
    /// The dashboard's state: `topic`, `filters`, `window`, `from`, `to`, `panels`.
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
    /// Who saved it: `key:<id>` (the first key of a rotated key's line), or
    /// `anonymous (open server)`.
    pub owner: String,
    /// Whether every reader sees it, or its owner only.
    pub shared: bool,
    /// Whether the caller may change and delete it: its owner, or an administrator.
    pub editable: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of a view, and whether the reader (`$owner`, `$all`) may change it.
fn columns(owner: &str, all: &str) -> String {
    format!("id, name, state, owner, shared, created_at, updated_at, ({all} OR owner = {owner})")
}

fn view(r: &Row) -> SavedView {
    SavedView {
        id: r.get(0),
        name: r.get(1),
        state: r.get(2),
        owner: r.get(3),
        shared: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
        editable: r.get(7),
    }
}

/// Who asks: every view is visible to `all` (an administrator), the others see their own and
/// the shared ones.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub owner: &'a str,
    pub all: bool,
}

/// Stores a view unless its owner holds `per_owner` views or the deployment `total`; the cap
/// reached then.
pub async fn create(
    client: &mut deadpool_postgres::ClientWrapper,
    name: &str,
    state: &serde_json::Value,
    owner: &str,
    shared: bool,
    (per_owner, total): (i64, i64),
) -> Result<Result<SavedView, super::Limit>, tokio_postgres::Error> {
    let row = super::insert_in_turns(
        client,
        "saved_views/create",
        "SELECT count(*) FILTER (WHERE owner = $1), count(*) FROM saved_views",
        super::Caps {
            owner: Some(owner),
            per_owner,
            total,
        },
        &format!(
            "INSERT INTO saved_views (name, state, owner, shared) VALUES ($1, $2, $3, $4) \
             RETURNING {}",
            columns("$3", "true")
        ),
        &[&name, state, &owner, &shared],
    )
    .await?;
    Ok(row.map(|row| view(&row)))
}

/// The views `reader` may see, by name.
pub async fn list(
    client: &impl GenericClient,
    reader: Reader<'_>,
) -> Result<Vec<SavedView>, tokio_postgres::Error> {
    super::read_rows(
        client,
        &format!(
            "SELECT {} FROM saved_views WHERE $2 OR shared OR owner = $1 \
             ORDER BY lower(name), id",
            columns("$1", "$2")
        ),
        &[&reader.owner, &reader.all],
        view,
    )
    .await
}

/// One view, if `reader` may see it.
pub async fn get(
    client: &impl GenericClient,
    id: i64,
    reader: Reader<'_>,
) -> Result<Option<SavedView>, tokio_postgres::Error> {
    super::read_opt(
        client,
        &format!(
            "SELECT {} FROM saved_views WHERE id = $1 AND ($3 OR shared OR owner = $2)",
            columns("$2", "$3")
        ),
        &[&id, &reader.owner, &reader.all],
        view,
    )
    .await
}

/// Replaces a view's name, state and sharing, if `reader` owns it (or sees every view).
pub async fn update(
    client: &impl GenericClient,
    id: i64,
    reader: Reader<'_>,
    name: &str,
    state: &serde_json::Value,
    shared: bool,
) -> Result<Option<SavedView>, tokio_postgres::Error> {
    super::read_opt(
        client,
        &format!(
            "UPDATE saved_views SET name = $4, state = $5, shared = $6, updated_at = now() \
             WHERE id = $1 AND ($3 OR owner = $2) RETURNING {}",
            columns("$2", "$3")
        ),
        &[&id, &reader.owner, &reader.all, &name, state, &shared],
        view,
    )
    .await
}

/// Deletes a view `reader` owns (or sees every view of); whether it did. A digest pointing at
/// it links to its scope and period alone from then on.
pub async fn delete(
    client: &impl GenericClient,
    id: i64,
    reader: Reader<'_>,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "DELETE FROM saved_views WHERE id = $1 AND ($3 OR owner = $2)",
            &[&id, &reader.owner, &reader.all],
        )
        .await?
        > 0)
}
