//! Alert rules (`/api/v1/alert-rules`: create, list, read, update, delete, enable, disable)
//! and alerts (`/api/v1/alerts`: list with filters and pagination, acknowledge, resolve).

use crate::models::errors::ErrorCode;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::alerts::{self as db, AlertFilter};
use crate::http::answer::{self, Answer};
use crate::http::documented::{error_responses, BadFilter, Deleted};
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::http::{cursor, filters};
pub use crate::models::alerts::{AlertRule, AlertStatus, AlertView, RuleInput, RuleKind, Severity};

error_responses! {
    NoRule: 404 = "No rule with this id",
    NoAlert: 404 = "No alert with this id",
}

/// Page size of the alert list when the caller does not ask for one.
const DEFAULT_PAGE: i64 = 50;
/// Largest page of the alert list. It needs no bound in bytes besides: an alert's evidence
/// quotes five posts at most, each cut to [`EVIDENCE_TEXT_CHARS`](crate::models::alerts::EVIDENCE_TEXT_CHARS)
/// characters (at most 4,000 bytes stored, 6,000 as JSON, where a control character takes six),
/// with ids of at most 256 bytes, ten terms of at most 30 letters and a story's summary: about
/// 36 KB of JSON an alert at worst, so a full page is about 12 MB read and 18 MB written, less
/// than a full page of posts (500 whole texts of 20,000 bytes).
const MAX_PAGE: i64 = 500;

/// The body of `POST /api/v1/alert-rules`: a [`RuleInput`] whose `name` and `kind` are
/// required (the handler answers 400 without them). Only a schema: the handler reads a
/// [`RuleInput`].
pub struct NewRule;

impl utoipa::PartialSchema for NewRule {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        use utoipa::openapi::{Ref, RefOr};
        let RefOr::T(Schema::Object(mut object)) = <RuleInput as utoipa::PartialSchema>::schema()
        else {
            panic!("the schema of RuleInput is not an object");
        };
        object.required = vec!["name".into(), "kind".into()];
        object.properties.insert(
            "name".into(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(200))
                .pattern(Some("\\S"))
                .description(Some(
                    "1 to 200 bytes, not blank, without control, zero-width or direction-changing characters.",
                ))
                .into(),
        );
        object.properties.insert(
            "kind".into(),
            Ref::from_schema_name(<RuleKind as ToSchema>::name()).into(),
        );
        object.description = Some(
            "A new rule: `name` and `kind` are required, every other field has a default.".into(),
        );
        object.into()
    }
}

impl ToSchema for NewRule {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <RuleInput as ToSchema>::schemas(schemas);
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidRule, message)
}

fn validate(input: &RuleInput) -> Result<(), ApiError> {
    input.check().map_err(invalid)
}

/// Refuses channel ids that name no channel.
async fn known_channels(
    client: &tokio_postgres::Client,
    input: &RuleInput,
) -> Result<(), ApiError> {
    if let Some(Some(ids)) = &input.channels {
        let unknown = crate::db::webhooks::unknown(client, ids).await?;
        if !unknown.is_empty() {
            return Err(invalid(format!("channels {unknown:?} do not exist")));
        }
    }
    Ok(())
}

fn no_rule(id: i64) -> ApiError {
    ApiError::not_found(format!("no alert rule {id}"))
}

/// Writes the given fields of `input` to rule `id`.
async fn apply(
    client: &impl tokio_postgres::GenericClient,
    id: i64,
    input: &RuleInput,
) -> Result<AlertRule, ApiError> {
    db::update_rule(client, id, input)
        .await?
        .ok_or_else(|| no_rule(id))
}

/// Every alert rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    /// Oldest first.
    pub items: Vec<AlertRule>,
}

/// Every rule, oldest first.
#[utoipa::path(
    tag = "alerts", summary = "List alert rules",
    responses(
        (status = 200, description = "Every rule, oldest first", body = RuleList),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/alert-rules")]
pub async fn list_rules(state: State) -> Answer {
    let client = state.db().await?;
    let rules = db::rules(&client, false).await?;
    Ok(HttpResponse::Ok().json(RuleList { items: rules }))
}

/// Creates a rule; `name` and `kind` are required, the rest have defaults.
#[utoipa::path(
    tag = "alerts", summary = "Create an alert rule", request_body = NewRule,
    responses(
        (status = 201, description = "The rule as stored", body = AlertRule),
        (status = 400, description = "A missing or invalid field (`invalid_rule`) or a body \
            that is not a rule (`invalid_json`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/alert-rules")]
pub async fn create_rule(state: State, input: web::Json<RuleInput>) -> Answer {
    let input = input.into_inner();
    validate(&input)?;
    let (Some(name), Some(kind)) = (&input.name, input.kind) else {
        return Err(invalid("name and kind are required"));
    };
    let mut client = state.db().await?;
    known_channels(&client, &input).await?;
    // In one transaction: the alerter never sees the rule with its defaults (enabled, on
    // every post) before its fields are written, nor keeps it when writing them fails.
    let tx = client.transaction().await?;
    let id = db::create_rule(&*tx, name, kind).await?;
    let rule = apply(&*tx, id, &input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(rule))
}

/// One rule.
#[utoipa::path(
    tag = "alerts", summary = "One alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule", body = AlertRule),
        NoRule, PostgresUnavailable,
    )
)]
#[get("/api/v1/alert-rules/{id}")]
pub async fn get_rule(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    answer::found(db::rule(&**client, *id).await?, || no_rule(*id))
}

/// Updates the given fields of a rule.
#[utoipa::path(
    tag = "alerts", summary = "Update an alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    request_body(content = RuleInput, description = "The fields to change; absent fields keep their value"),
    responses(
        (status = 200, description = "The rule as stored", body = AlertRule),
        (status = 400, description = "The id is not an integer (`invalid_path`), an invalid \
            field (`invalid_rule`) or a body that is not a rule (`invalid_json`)", body = ErrorBody),
        NoRule, PostgresUnavailable,
    )
)]
#[patch("/api/v1/alert-rules/{id}")]
pub async fn update_rule(state: State, id: web::Path<i64>, input: web::Json<RuleInput>) -> Answer {
    validate(&input)?;
    let client = state.db().await?;
    known_channels(&client, &input).await?;
    Ok(HttpResponse::Ok().json(apply(&**client, *id, &input).await?))
}

/// Deletes a rule; its alerts stay, without a rule.
#[utoipa::path(
    tag = "alerts", summary = "Delete an alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(Deleted, NoRule, PostgresUnavailable)
)]
#[delete("/api/v1/alert-rules/{id}")]
pub async fn delete_rule(state: State, id: web::Path<i64>) -> Answer {
    let client = state.db().await?;
    answer::deleted(db::delete_rule(&client, *id).await?, || no_rule(*id))
}

/// Enables a rule.
#[utoipa::path(
    tag = "alerts", summary = "Enable an alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule as stored", body = AlertRule),
        NoRule, PostgresUnavailable,
    )
)]
#[post("/api/v1/alert-rules/{id}/enable")]
pub async fn enable_rule(state: State, id: web::Path<i64>) -> Answer {
    set_enabled(&state, *id, true).await
}

/// Disables a rule.
#[utoipa::path(
    tag = "alerts", summary = "Disable an alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule as stored", body = AlertRule),
        NoRule, PostgresUnavailable,
    )
)]
#[post("/api/v1/alert-rules/{id}/disable")]
pub async fn disable_rule(state: State, id: web::Path<i64>) -> Answer {
    set_enabled(&state, *id, false).await
}

async fn set_enabled(state: &State, id: i64, enabled: bool) -> Answer {
    let client = state.db().await?;
    let input = RuleInput {
        enabled: Some(enabled),
        ..Default::default()
    };
    Ok(HttpResponse::Ok().json(apply(&**client, id, &input).await?))
}

/// Filters of the alert list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    #[param(inline)]
    pub status: Option<AlertStatus>,
    /// The rule kind (an unknown kind matches nothing).
    pub kind: Option<String>,
    /// The severity (an unknown severity matches nothing).
    pub severity: Option<String>,
    /// The dimension (an unknown dimension matches nothing).
    pub dimension: Option<String>,
    pub key: Option<String>,
    pub rule_id: Option<i64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only alerts with an id below this (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Only alerts fired at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub from: Option<DateTime<Utc>>,
    /// Only alerts fired before this time (RFC 3339).
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    pub to: Option<DateTime<Utc>>,
}

/// A page of alerts, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertView>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// Alerts, newest first.
#[utoipa::path(
    tag = "alerts", summary = "List alerts", params(AlertQuery),
    responses(
        (status = 200, description = "A page of alerts, newest first", body = AlertPage),
        BadFilter, PostgresUnavailable,
    )
)]
#[get("/api/v1/alerts")]
pub async fn list_alerts(state: State, query: web::Query<AlertQuery>) -> Answer {
    let q = query.into_inner();
    let limit = filters::page_limit(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
    filters::no_nul_in_query([
        ("kind", q.kind.as_deref()),
        ("severity", q.severity.as_deref()),
        ("dimension", q.dimension.as_deref()),
        ("key", q.key.as_deref()),
    ])?;
    let filter = AlertFilter {
        status: q.status,
        kind: q.kind,
        severity: q.severity,
        dimension: q.dimension,
        key: q.key,
        rule_id: q.rule_id,
        before: q.before,
        fired_from: q.from,
        fired_before: q.to,
    };
    let client = state.db().await?;
    let mut items = db::alerts(&client, filter, limit + 1).await?;
    let next_before = cursor::trim_to_page(&mut items, limit, |a| a.id);
    Ok(HttpResponse::Ok().json(AlertPage { items, next_before }))
}

/// Acknowledges a firing alert (someone is on it).
#[utoipa::path(
    tag = "alerts", operation_id = "acknowledge_alert", summary = "Acknowledge an alert",
    params(("id" = i64, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "The alert, now acknowledged", body = AlertView),
        (status = 409, description = "The alert is not firing (`invalid_transition`)", body = ErrorBody),
        NoAlert, PostgresUnavailable,
    )
)]
#[post("/api/v1/alerts/{id}/ack")]
pub async fn acknowledge(state: State, id: web::Path<i64>) -> Answer {
    transition(&state, *id, AlertStatus::Acknowledged).await
}

/// Resolves an alert by hand. The channels that were told of its firing are told it was
/// resolved manually (by the caller's key, when it has one), not that its condition cleared.
#[utoipa::path(
    tag = "alerts", operation_id = "resolve_alert", summary = "Resolve an alert",
    params(("id" = i64, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "The alert, now resolved", body = AlertView),
        (status = 409, description = "The alert is already resolved (`invalid_transition`)", body = ErrorBody),
        NoAlert, PostgresUnavailable,
    )
)]
#[post("/api/v1/alerts/{id}/resolve")]
pub async fn resolve(state: State, id: web::Path<i64>) -> Answer {
    transition(&state, *id, AlertStatus::Resolved).await
}

async fn transition(state: &State, id: i64, to: AlertStatus) -> Answer {
    let client = state.db().await?;
    let key_id = state.caller().and_then(|c| c.key_id.as_deref());
    let moved = db::transition(&client, id, to, key_id).await?;
    let alert = db::alert(&client, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    if !moved {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            format!("alert {id} is {}", alert.status),
        ));
    }
    Ok(HttpResponse::Ok().json(alert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_rule_requires_name_and_kind() {
        let schema = serde_json::to_value(<NewRule as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["name", "kind"]));
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["kind"]["$ref"],
            "#/components/schemas/RuleKind"
        );
    }
}
