//! Saved views: `GET`, `POST /api/v1/views`, `GET`, `PUT`, `DELETE /api/v1/views/{id}`. The
//! dashboard's state (a topic, filters, a window or a period, the panels shown) under a name,
//! opened by link (`/?saved_view=<id>`). A view is its owner's until shared; shared, every reader
//! lists and opens it, and only its owner (or an administrator) changes or deletes it.

use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::saved_views::{self as db, Reader, SavedView};
use crate::http::answer::{self, Answer};
use crate::http::api::topics::name_problem;
use crate::http::documented::{error_responses, Deleted};
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::errors::ErrorCode;
use crate::models::event::MAX_LABEL_BYTES;
use crate::models::metrics::Window;
use crate::models::Platform;

error_responses! {
    NoView: 404 = "No view with this id that the caller sees",
    NotOwner: 403 = "A shared view the caller does not own (`forbidden`)",
}

/// Views one caller may hold.
pub const MAX_VIEWS_PER_OWNER: i64 = 200;
/// Views a deployment may hold.
pub const MAX_VIEWS: i64 = 5_000;
/// Panels a view may name.
pub const MAX_PANELS: usize = 40;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidView, message)
}

/// The label filters of a view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewFilters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

/// The dashboard's state a view keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewState {
    /// A live topic's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<i64>,
    #[serde(default)]
    pub filters: ViewFilters,
    /// The rolling window the panels show (`1m`, `5m`, `1h`, `24h`), when no period is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// A fixed period instead of a rolling window: both or neither.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::models::time::bounded"
    )]
    pub from: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::models::time::bounded"
    )]
    pub to: Option<DateTime<Utc>>,
    /// The panels shown, by the dashboard's panel ids; empty: every panel.
    #[serde(
        default,
        deserialize_with = "crate::models::bounded::at_most::<_, _, MAX_PANELS>"
    )]
    #[schema(max_items = 40)]
    pub panels: Vec<String>,
}

/// `POST /api/v1/views` and `PUT /api/v1/views/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewInput {
    /// 1 to 200 characters.
    pub name: String,
    pub state: ViewState,
    /// Listed to every reader (default: its owner only).
    #[serde(default)]
    pub shared: bool,
}

/// The views a caller sees.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ViewList {
    /// Its own and the shared ones (an administrator: every view), by name.
    pub items: Vec<SavedView>,
}

/// Why a view's state cannot be kept, if it cannot.
fn state_problem(state: &ViewState) -> Option<String> {
    let f = &state.filters;
    for (name, value) in [
        ("product", &f.product),
        ("channel", &f.channel),
        ("country", &f.country),
        ("city", &f.city),
    ] {
        if let Some(v) = value {
            // A label no post can hold would match nothing. One with an unseen or reordering
            // character would also show as another ("pulse\u{200B}phone" reads "pulsephone"),
            // and a shared view is opened by every reader and linked from digests.
            if v.trim().is_empty()
                || v.len() > MAX_LABEL_BYTES
                || crate::models::printable::has_unshowable(v)
            {
                return Some(format!(
                    "filters.{name} must be 1 to {MAX_LABEL_BYTES} bytes, without control, \
                     zero-width or direction-changing characters"
                ));
            }
        }
    }
    match (state.from, state.to) {
        (Some(from), Some(to)) if from >= to => return Some("from must be before to".into()),
        (Some(_), None) | (None, Some(_)) => return Some("a period needs both from and to".into()),
        (Some(_), Some(_)) if state.window.is_some() => {
            return Some("a view keeps a window or a period, not both".into())
        }
        _ => {}
    }
    if state.panels.len() > MAX_PANELS {
        return Some(format!("a view names at most {MAX_PANELS} panels"));
    }
    for (i, panel) in state.panels.iter().enumerate() {
        let valid = (1..=32).contains(&panel.len())
            && panel.starts_with(|c: char| c.is_ascii_lowercase())
            && panel
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Some(format!(
                "panels[{i}] must be a panel id: 1 to 32 lowercase letters, digits or `-`"
            ));
        }
        if state.panels[..i].contains(panel) {
            return Some(format!("panels[{i}] names `{panel}` twice"));
        }
    }
    None
}

/// Checks a view's input against the database: its name, state and topic.
async fn checked(client: &tokio_postgres::Client, input: &ViewInput) -> Result<(), ApiError> {
    if let Some(why) = name_problem(&input.name) {
        return Err(invalid(why));
    }
    if let Some(why) = state_problem(&input.state) {
        return Err(invalid(why));
    }
    if let Some(topic) = input.state.topic {
        if crate::db::topics::get(client, topic).await?.is_none() {
            return Err(invalid(format!("no live topic with id {topic}")));
        }
    }
    Ok(())
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("no saved view {id} that you may see"))
}

/// Lists the views the caller sees.
#[utoipa::path(
    tag = "views", operation_id = "list_views", summary = "List saved views",
    responses(
        (status = 200, description = "The caller's views and the shared ones, by name", body = ViewList),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/views")]
pub async fn list(state: State) -> Answer {
    let owner = state.owner();
    let client = state.db().await?;
    let items = db::list(&**client, reader(&state, &owner)).await?;
    Ok(HttpResponse::Ok().json(ViewList { items }))
}

fn reader<'a>(state: &State, owner: &'a str) -> Reader<'a> {
    Reader {
        owner,
        all: state.is_admin(),
    }
}

/// Saves a view, the caller's.
#[utoipa::path(
    tag = "views", operation_id = "create_view", summary = "Save a view", request_body = ViewInput,
    responses(
        (status = 201, description = "The view", body = SavedView),
        (status = 400, description = "A bad name, filter, period, panel or topic \
            (`invalid_view`), or a body that is not a view (`invalid_json`)", body = ErrorBody),
        (status = 409, description = "The caller holds 200 views, or the deployment 5,000 \
            (`limit_reached`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/views")]
pub async fn create(state: State, input: web::Json<ViewInput>) -> Answer {
    let owner = state.owner();
    let mut client = state.db().await?;
    checked(&client, &input).await?;
    let value = serde_json::to_value(&input.state).map_err(ApiError::internal)?;
    let saved = db::create(
        &mut client,
        input.name.trim(),
        &value,
        &owner,
        input.shared,
        (MAX_VIEWS_PER_OWNER, MAX_VIEWS),
    )
    .await?
    .map_err(|limit| ApiError::limit_reached(limit, "saved views", None))?;
    Ok(HttpResponse::Created().json(saved))
}

/// One view, if the caller sees it.
#[utoipa::path(
    tag = "views", operation_id = "get_view", summary = "One saved view",
    params(("id" = i64, Path, description = "The view's id")),
    responses(
        (status = 200, description = "The view", body = SavedView),
        (status = 404, description = "No view with this id that the caller sees (another's \
            unshared view reads as absent)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/views/{id}")]
pub async fn get_one(state: State, id: web::Path<i64>) -> Answer {
    let owner = state.owner();
    let client = state.db().await?;
    answer::found(
        db::get(&**client, *id, reader(&state, &owner)).await?,
        || not_found(*id),
    )
}

/// Replaces a view's name, state and sharing.
#[utoipa::path(
    tag = "views", operation_id = "update_view", summary = "Change a saved view",
    params(("id" = i64, Path, description = "The view's id")), request_body = ViewInput,
    responses(
        (status = 200, description = "The view", body = SavedView),
        (status = 400, description = "A bad id, name, filter, period, panel or topic", body = ErrorBody),
        NotOwner, NoView, PostgresUnavailable,
    )
)]
#[put("/api/v1/views/{id}")]
pub async fn update(state: State, id: web::Path<i64>, input: web::Json<ViewInput>) -> Answer {
    let owner = state.owner();
    let who = reader(&state, &owner);
    let client = state.db().await?;
    checked(&client, &input).await?;
    let value = serde_json::to_value(&input.state).map_err(ApiError::internal)?;
    match db::update(&**client, *id, who, input.name.trim(), &value, input.shared).await? {
        Some(v) => Ok(HttpResponse::Ok().json(v)),
        None => Err(refused(&client, *id, who).await?),
    }
}

/// Why a change of view `id` was refused: absent to the caller, or someone else's.
async fn refused(
    client: &tokio_postgres::Client,
    id: i64,
    who: Reader<'_>,
) -> Result<ApiError, ApiError> {
    Ok(match db::get(client, id, who).await? {
        Some(_) => ApiError::new(
            ErrorCode::Forbidden,
            format!("saved view {id} is shared with you; only its owner changes it"),
        ),
        None => not_found(id),
    })
}

/// Deletes a view; digests pointing at it link to their scope and period alone from then on.
#[utoipa::path(
    tag = "views", operation_id = "delete_view", summary = "Delete a saved view",
    params(("id" = i64, Path, description = "The view's id")),
    responses(Deleted, NotOwner, NoView, PostgresUnavailable)
)]
#[delete("/api/v1/views/{id}")]
pub async fn remove(state: State, id: web::Path<i64>) -> Answer {
    let owner = state.owner();
    let who = reader(&state, &owner);
    let client = state.db().await?;
    if db::delete(&**client, *id, who).await? {
        return Ok(HttpResponse::NoContent().finish());
    }
    Err(refused(&client, *id, who).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(json: serde_json::Value) -> Result<ViewState, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn a_dashboard_state_round_trips() {
        let s = state(serde_json::json!({
            "topic": 3, "filters": {"platform": "reddit", "city": "Lyon"}, "window": "1h",
            "panels": ["overall", "trend"]
        }))
        .unwrap();
        assert_eq!(state_problem(&s), None);
        assert_eq!(state(serde_json::to_value(&s).unwrap()).unwrap(), s);
    }

    #[test]
    fn unknown_fields_platforms_and_windows_are_refused() {
        assert!(state(serde_json::json!({"colour": "red"})).is_err());
        assert!(state(serde_json::json!({"filters": {"platform": "myspace"}})).is_err());
        assert!(state(serde_json::json!({"window": "3d"})).is_err());
        assert!(state(serde_json::json!({"from": "0001-01-01T00:00:00Z"})).is_err());
    }

    #[test]
    fn periods_panels_and_filters_are_checked() {
        let bad = [
            serde_json::json!({"from": "2026-01-02T00:00:00Z"}),
            serde_json::json!({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
            serde_json::json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "window": "1h"}),
            serde_json::json!({"panels": ["Overall"]}),
            serde_json::json!({"panels": ["trend", "trend"]}),
            serde_json::json!({"panels": [""]}),
            serde_json::json!({"filters": {"city": " "}}),
            serde_json::json!({"filters": {"product": "x".repeat(129)}}),
            serde_json::json!({"filters": {"product": "pulse\u{200B}phone"}}),
            serde_json::json!({"filters": {"channel": "\u{202E}troppus"}}),
            serde_json::json!({"filters": {"country": "F\u{2066}R"}}),
            serde_json::json!({"filters": {"city": "Ly\ton"}}),
        ];
        for b in bad {
            assert!(state_problem(&state(b.clone()).unwrap()).is_some(), "{b}");
        }
        let many: Vec<String> = (0..41).map(|i| format!("p{i}")).collect();
        assert!(state_problem(&state(serde_json::json!({ "panels": many })).unwrap()).is_some());
    }
}
